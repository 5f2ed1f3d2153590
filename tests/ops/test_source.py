"""``input`` (rfgraph/ops/source.py): the network's pixels, ``n = size, jump 1, rf 1, start 0.5``."""

import networkx as nx
import pytest

import rfgraph
from rfgraph import ParameterError


def test_input_conventions():
    # pixel i spans [i, i+1): n = 10, jump 1, rf 1, centre 0.5, no padding
    a = rfgraph.analyze(rfgraph.chain([], (10,)))
    rec = a["input"]
    assert (rec.n, rec.jump, rec.rf, rec.start, rec.padding) == ((10,), (1,), (1,), (0.5,), (0,))


def test_input_bounds_are_its_pixels():
    # feature i is pixel i, clipped or not
    rec = rfgraph.analyze(rfgraph.chain([], (4, 3)))["input"]
    for axis, size in enumerate((4, 3)):
        for clip in (True, False):
            lo, hi = rec.bounds(axis, clip=clip)
            assert lo.tolist() == hi.tolist() == list(range(size))


def test_two_inputs_share_a_grid():
    G = nx.DiGraph()
    G.add_node("frame1", op="input", size=(16, 16))
    G.add_node("frame2", op="input", size=(16, 16))
    G.add_node("c1", op="conv", kernel=3)
    G.add_node("c2", op="conv", kernel=5, padding=1)
    G.add_node("cat", op="concat")
    G.add_edges_from([("frame1", "c1"), ("frame2", "c2"), ("c1", "cat"), ("c2", "cat")])
    rec = rfgraph.analyze(G)["cat"]
    # c1: [0,3) start 1.5; c2: [-1,4) start 1.5; hull rf 5
    assert rec.rf == (5, 5) and rec.start == (1.5, 1.5) and rec.n == (14, 14)


@pytest.mark.parametrize("attrs, words", [
    ({"op": "input"}, "needs 'size'"),
    ({"op": "input", "size": ()}, "at least one spatial axis"),
    ({"op": "input", "size": (8, 0)}, "size must be >= 1"),
])
def test_bad_input_parameters(attrs, words):
    G = nx.DiGraph()
    G.add_node("x", **attrs)
    with pytest.raises(ParameterError) as info:
        rfgraph.analyze(G)
    assert words in str(info.value) and "'x'" in str(info.value) and info.value.node == "x"
