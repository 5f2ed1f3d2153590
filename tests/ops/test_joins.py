"""Joins (rfgraph/ops/joins.py): add, mul, concat; each case shows its derivation.

A join's RF is the union of its inputs' RFs: the hull gives rf and start, each branch keeps its
own box, and differing branch centres are reported as misalignment.
"""

import networkx as nx

import rfgraph
from hand_graphs import inception_block
from residual_block import residual_block


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


def test_mul_of_misaligned_branches_per_position():
    # a: k2 p(1,0) on 6: feature i reads i-1..i, centre i; b: k1: centre i + 0.5.
    # mul: hull [-1, 1) of feature 0, rf 2, start 0; the centres differ by 0.5 everywhere.
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(6,))
    G.add_node("a", op="conv", kernel=2, padding=((1, 0),))
    G.add_node("b", op="conv", kernel=1)
    G.add_node("m", op="mul")
    G.add_edges_from([("x", "a"), ("x", "b"), ("a", "m"), ("b", "m")])
    rec = rfgraph.analyze(G)["m"]
    assert rec.rf == (2,) and rec.start == (0,) and rec.misalignment == (0.5,)
    # feature i reads pixels i-1..i (clipped at 0); b adds nothing outside that
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 0, 1, 2, 3, 4] and hi.tolist() == [0, 1, 2, 3, 4, 5]
