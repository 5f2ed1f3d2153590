"""``global`` (rfgraph/ops/global_op.py): every output feature sees the union of all input features."""

import networkx as nx
import pytest

import rfgraph
from rfgraph import ParameterError
from hand_graphs import check_bad_node


def test_squeeze_excitation_is_global():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(16, 16))
    G.add_node("c", op="conv", kernel=3, padding=1)
    G.add_node("pool", op="global")
    G.add_node("fc", op="conv", kernel=1)
    G.add_node("scale", op="mul")
    G.add_node("after", op="conv", kernel=3, padding=1)
    G.add_edges_from([("x", "c"), ("c", "pool"), ("pool", "fc"), ("fc", "scale"), ("c", "scale"),
                      ("scale", "after")])
    a = rfgraph.analyze(G)
    assert a["c"].is_global == (False, False)
    assert a["pool"].n == (1, 1) and a["pool"].is_global == (True, True)
    rec = a["scale"]
    assert rec.n == (16, 16) and rec.is_global == (True, True) and rec.global_from == ("pool", "pool")
    # global: the union of c's 16 features, [-1, 2) swept by 15 -> [-1, 17): rf 18, start 8,
    # jump 0 (features do not move); the mul and the conv after it keep that union
    assert a["pool"].rf == (18, 18) and a["pool"].jump == (0, 0) and a["pool"].start == (8, 8)
    assert a["after"].is_global == (True, True) and a["after"].rf == (18, 18)
    lo, hi = a["after"].bounds(0)
    assert (lo == 0).all() and (hi == 15).all()


def test_global_on_one_axis_only():
    # axes=0 on 6x10: H reduced to 1 feature seeing [0, 6) (rf 6), W untouched (n 10, rf 1)
    G = rfgraph.chain([], (6, 10))
    G.add_node("mean_h", op="global", axes=0)
    G.add_edge("input", "mean_h")
    rec = rfgraph.analyze(G)["mean_h"]
    assert rec.n == (1, 10) and rec.is_global == (True, False) and rec.rf == (6, 1)


def test_global_keeping_its_size_is_attention_over_positions():
    # size=None keeps n = 8; every feature sees the union of the conv's 8 features:
    # k3 s1 p1 hull [-1, 2) swept by 7 -> [-1, 9): rf 10, start 4; clipped bounds 0..7 everywhere
    G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))
    G.add_node("attn", op="global", size=None)
    G.add_edge("c", "attn")
    rec = rfgraph.analyze(G)["attn"]
    assert rec.n == (8,) and rec.jump == (0,) and rec.rf == (10,) and rec.start == (4,)
    assert rec.is_global == (True,) and rec.global_from == ("attn",)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0] * 8 and hi.tolist() == [7] * 8


@pytest.mark.parametrize("attrs, words", [
    ({"op": "global", "axes": 2}, "axes entry 2 out of range for 2 spatial axes"),  # axes of 16x16 are 0, 1
    ({"op": "global", "size": 0}, "size must be >= 1"),
])
def test_bad_parameters(attrs, words):
    check_bad_node(attrs, ParameterError, words)
