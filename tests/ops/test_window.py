"""Hand-derived receptive fields; each case shows its derivation in a comment."""

import networkx as nx
import numpy as np
import pytest

import rfgraph
from rfgraph.render.table import rows as table_rows
from classic_chain import ALEXNET
from hand_graphs import inception_block
from residual_block import residual_block

# reference.md's AlexNet table: layer -> (n, j, r, start)
ALEXNET_TABLE = {
    "conv1": (55, 4, 11, 5.5),
    "pool1": (27, 8, 19, 9.5),
    "conv2": (27, 8, 51, 9.5),
    "pool2": (13, 16, 67, 17.5),
    "conv3": (13, 16, 99, 17.5),
    "conv4": (13, 16, 131, 17.5),
    "conv5": (13, 16, 163, 17.5),
    "pool5": (6, 32, 195, 33.5),
    "fc6-conv": (1, 32, 355, 113.5),
    "fc7-conv": (1, 32, 355, 113.5),
}


def test_alexnet_table_exactly():
    a = rfgraph.analyze(rfgraph.chain(ALEXNET, 227))
    for layer, (n, j, r, start) in ALEXNET_TABLE.items():
        rec = a[layer]
        assert (rec.n, rec.jump, rec.rf, rec.start) == ((n, n), (j, j), (r, r), (start, start)), layer
    rows = {row["node"]: row for row in table_rows(a)}
    assert rows["pool5"]["rf"] == 195 and rows["pool5"]["start"] == 33.5
    assert a.output.name == "fc7-conv"


def test_input_conventions():
    a = rfgraph.analyze(rfgraph.chain([], (10,)))
    rec = a["input"]
    assert (rec.n, rec.jump, rec.rf, rec.start, rec.padding) == ((10,), (1,), (1,), (0.5,), (0,))


def test_residual_block_with_strided_shortcut():
    # conv1 3x3 s2 p1: j=2, r=1+2*1=3, start=0.5+(1-1)*1=0.5
    # conv2 3x3 s1 p1: r=3+2*2=7, start=0.5+(1-1)*2=0.5
    # shortcut 1x1 s2: r=1, start=0.5.  add: hull of [-3,4) and [0,1) -> r=7, start=0.5, aligned.
    a = rfgraph.analyze(residual_block(56))
    add = a["add"]
    assert add.n == (28, 28) and add.jump == (2, 2) and add.rf == (7, 7) and add.start == (0.5, 0.5)
    assert add.misalignment == (0, 0) and not add.is_misaligned
    assert {b.node: b.rf for b in add.branches} == {"conv2": (7, 7), "shortcut": (1, 1)}
    assert add.rf_range == ((1, 7), (1, 7))
    assert a.misaligned() == []
    assert add.padding == (3, 3)  # rf/2 - start = 3.5 - 0.5


def test_inception_block_1x7_7x1_and_cross():
    # b7a 1x7 p(0,3): (H, W) rf (1, 7), start (0.5, 0.5-3+3)=0.5; b7b 7x1: rf (7, 7).
    # b13: rf (1, 3); b31: rf (3, 1). concat hull: (7, 7); per-branch range (1..7, 1..7).
    a = rfgraph.analyze(inception_block())
    assert a["b7a"].rf == (1, 7) and a["b7b"].rf == (7, 7)
    cat = a["cat"]
    assert cat.rf == (7, 7) and cat.start == (0.5, 0.5) and cat.n == (17, 17)
    assert [b.node for b in cat.branches] == ["b1", "b7b", "b13", "b31"]
    assert cat.rf_range == ((1, 7), (1, 7))
    assert not cat.is_misaligned


def test_cross_shaped_union_keeps_branch_boxes():
    # 1x3 and 3x1 branches: the union is a cross; per axis the hull is 3, the branch boxes say how.
    G = inception_block()
    G.remove_nodes_from(["b1", "b7a", "b7b"])
    cat = rfgraph.analyze(G)["cat"]
    assert cat.rf == (3, 3)
    assert sorted(b.rf for b in cat.branches) == [(1, 3), (3, 1)]


def test_misaligned_tf_same_padding():
    # input 8 (even), 3x3 s2 'same': total=(4-1)*2+3-8=1 -> (0, 1), pL=0 -> start=0.5+1*1=1.5
    # shortcut 1x1 s2: start 0.5. The add's centres differ by 1 pixel on each axis.
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8, 8))
    G.add_node("c", op="conv", kernel=3, stride=2, padding="same")
    G.add_node("s", op="conv", kernel=1, stride=2)
    G.add_node("add", op="add")
    G.add_edges_from([("x", "c"), ("x", "s"), ("c", "add"), ("s", "add")])
    a = rfgraph.analyze(G)
    assert a["c"].start == (1.5, 1.5) and a["c"].padding == (0, 0)
    add = a["add"]
    # hull of [0,3) and [0,1) is [0,3): rf 3, start 1.5
    assert add.rf == (3, 3) and add.start == (1.5, 1.5)
    assert add.misalignment == (1, 1) and add.is_misaligned
    [m] = a.misaligned()
    assert m.node == "add" and m.offsets == (1, 1)
    assert {b.node: b.offset for b in m.branches} == {"c": (0, 0), "s": (-1, -1)}


def test_dilated_gaps():
    # k=3, d=2 on the input: feature 0 reads pixels {0, 2, 4}: rf 5, holes at offsets 1 and 3.
    G = rfgraph.chain([("d", "conv", 3, 1, 0, 2)], (20,))
    rec = rfgraph.analyze(G)["d"]
    assert rec.rf == (5,) and rec.contiguous == (False,) and rec.gaps == (((1, 1), (3, 3)),)
    # a second k=3, d=1 conv fills the holes: taps 1 pixel apart, RF pieces 1 wide -> {0..6}
    G = rfgraph.chain([("d", "conv", 3, 1, 0, 2), ("c", "conv", 3, 1, 0)], (20,))
    rec = rfgraph.analyze(G)["c"]
    assert rec.rf == (7,) and rec.contiguous == (True,) and rec.gaps == ((),)


def test_dilated_block_gaps_survive_a_join():
    # two dilated branches, d=2 and d=4, k=3, 'same'-style padding, joined by add:
    # d=2: {-2, 0, 2}; d=4: {-4, 0, 4} around the centre -> union {-4,-2,0,2,4}: rf 9, 4 holes
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(32,))
    G.add_node("d2", op="conv", kernel=3, dilation=2, padding=2)
    G.add_node("d4", op="conv", kernel=3, dilation=4, padding=4)
    G.add_node("add", op="add")
    G.add_edges_from([("x", "d2"), ("x", "d4"), ("d2", "add"), ("d4", "add")])
    rec = rfgraph.analyze(G)["add"]
    assert rec.rf == (9,) and rec.start == (0.5,)
    assert rec.gaps == (((1, 1), (3, 3), (5, 5), (7, 7)),)


def test_bounds_clip_and_unclipped():
    # 3x3 p1 then 3x3 s2 p1 on 9 pixels: unclipped feature i covers [2i-2, 2i+2]
    G = rfgraph.chain([("c1", "conv", 3, 1, 1), ("c2", "conv", 3, 2, 1)], (9,))
    rec = rfgraph.analyze(G)["c2"]
    lo, hi = rec.bounds(0, clip=False)
    assert lo.tolist() == [-2, 0, 2, 4, 6] and hi.tolist() == [2, 4, 6, 8, 10]
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 0, 2, 4, 6] and hi.tolist() == [2, 4, 6, 8, 8]


def test_bounds_agree_with_affine_summary_on_exact_nodes():
    a = rfgraph.analyze(rfgraph.chain(ALEXNET, 227))
    for layer in ALEXNET_TABLE:
        rec = a[layer]
        lo, hi = rec.bounds(1, clip=False)
        i = np.arange(rec.n[1])
        assert (lo == rec.start[1] + i * rec.jump[1] - rec.rf[1] / 2).all()
        assert (hi == rec.start[1] + i * rec.jump[1] + rec.rf[1] / 2 - 1).all()


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
    G = rfgraph.chain([], (6, 10))
    G.add_node("mean_h", op="global", axes=0)
    G.add_edge("input", "mean_h")
    rec = rfgraph.analyze(G)["mean_h"]
    assert rec.n == (1, 10) and rec.is_global == (True, False) and rec.rf == (6, 1)


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


def test_analyze_does_not_mutate_graph():
    G = residual_block()
    before = (dict(G.nodes(data=True)), list(G.edges(data=True)), dict(G.graph))
    rfgraph.analyze(G).records()
    assert before == (dict(G.nodes(data=True)), list(G.edges(data=True)), dict(G.graph))


def test_three_d_network():
    G = rfgraph.chain([("c", "conv", (3, 7, 7), (1, 2, 2), (1, 3, 3)), ("p", "maxpool", (1, 3, 3), (1, 2, 2), (0, 1, 1))],
                      (16, 112, 112))
    rec = rfgraph.analyze(G)["p"]
    # c: r (3, 7, 7), j (1, 2, 2); p: r (3, 7+2*2, 11), j (1, 4, 4)
    assert rec.n == (16, 28, 28) and rec.rf == (3, 11, 11) and rec.jump == (1, 4, 4)


def test_user_op_registration():
    def shift_right(node, inputs):
        return tuple(x.replace(lo=x.lo - x.jump, hi=x.hi - x.jump) for x in inputs[0])

    with rfgraph.ops.registered():
        rfgraph.register_op("test_shift", shift_right)
        with pytest.raises(ValueError):
            rfgraph.register_op("test_shift", shift_right)
        G = rfgraph.chain([], (8,))
        G.add_node("s", op="test_shift")
        G.add_edge("input", "s")
        rec = rfgraph.analyze(G)["s"]
    assert "test_shift" not in rfgraph.registered_ops()  # the scope did not leak
    assert rec.start == (-0.5,)
    lo, hi = rec.bounds(0)
    # feature 0 reads pixel -1, which is padding: it sees nothing (-1, -1); feature 1 sees pixel 0
    assert lo.tolist()[:2] == [-1, 0] and hi.tolist()[:2] == [-1, 0]
    # the same op for one analysis only
    assert rfgraph.analyze(G, extra_ops=[rfgraph.Op("test_shift", shift_right)])["s"].start == (-0.5,)
    with pytest.raises(rfgraph.UnsupportedOpError, match="register_op"):
        rfgraph.analyze(G)


def test_fpn_nearest_upsample_is_misaligned_position_by_position():
    # coarse: 1x1 stride 2 -> feature m centred at 0.5 + 2m; nearest x2 -> fine i reads m = i // 2,
    # centred at 0.5 + 2*(i//2); lateral 1x1 stride 1 -> 0.5 + i. Odd i differ by 1 pixel; i = 0 does
    # not, so feature 0's summary alone would miss it.
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(16,))
    G.add_node("coarse", op="conv", kernel=1, stride=2)
    G.add_node("up", op="upsample", scale=2, mode="nearest")
    G.add_node("lateral", op="conv", kernel=1)
    G.add_node("add", op="add")
    G.add_edges_from([("x", "coarse"), ("coarse", "up"), ("up", "add"), ("x", "lateral"), ("lateral", "add")])
    a = rfgraph.analyze(G)
    assert a["add"].misalignment == (1,)
    [m] = a.misaligned()
    assert m.node == "add" and m.offsets == (1,)


def test_user_op_with_two_inputs_and_no_taps():
    # a user "pick the first" op of two inputs of different sizes: its bounds follow its summary
    def first(node, inputs):
        return inputs[0]

    pick = rfgraph.Op("test_first_of_two", first, arity=(2, 2))
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8,))
    G.add_node("big", op="conv", kernel=3, padding=1)
    G.add_node("small", op="conv", kernel=3, stride=2)
    G.add_node("f", op="test_first_of_two")
    G.add_edges_from([("x", "big"), ("x", "small"), ("big", "f"), ("small", "f")])
    lo, hi = rfgraph.analyze(G, extra_ops=[pick])["f"].bounds(0)
    assert lo.tolist() == [0, 0, 1, 2, 3, 4, 5, 6] and hi.tolist() == [1, 2, 3, 4, 5, 6, 7, 7]
