"""Window ops (rfgraph/ops/window.py): conv, maxpool, avgpool; each case shows its derivation.

The recurrence per axis (reference.md): n = (n_in + pl + pr - ke) // s + 1 with ke = d(k-1) + 1,
j = j_in * s, r = r_in + (ke - 1) * j_in, start = start_in + ((ke - 1)/2 - pl) * j_in.
"""

import networkx as nx
import pytest

import rfgraph
from rfgraph import ParameterError, ShapeError
from rfgraph.render.table import rows as table_rows
from classic_chain import ALEXNET
from hand_graphs import check_bad_node

# reference.md's AlexNet table (input 227): layer -> (n, j, r, start)
ALEXNET_TABLE = {
    "conv1": (55, 4, 11, 5.5),       # k11 s4: n = (227-11)//4+1 = 55, j = 4, r = 11, start = 0.5+5 = 5.5
    "pool1": (27, 8, 19, 9.5),       # k3 s2: n = (55-3)//2+1 = 27, j = 8, r = 11+2*4 = 19, start = 5.5+1*4
    "conv2": (27, 8, 51, 9.5),       # k5 p2: n = 27, r = 19+4*8 = 51, start = 9.5+(2-2)*8
    "pool2": (13, 16, 67, 17.5),     # k3 s2: n = (27-3)//2+1 = 13, j = 16, r = 51+2*8 = 67, start = 9.5+8
    "conv3": (13, 16, 99, 17.5),     # k3 p1: r = 67+2*16 = 99, start unchanged
    "conv4": (13, 16, 131, 17.5),    # k3 p1: r = 99+2*16 = 131
    "conv5": (13, 16, 163, 17.5),    # k3 p1: r = 131+2*16 = 163
    "pool5": (6, 32, 195, 33.5),     # k3 s2: n = (13-3)//2+1 = 6, j = 32, r = 163+2*16 = 195, start = 17.5+16
    "fc6-conv": (1, 32, 355, 113.5),  # k6: n = 1, r = 195+5*32 = 355, start = 33.5+2.5*32 = 113.5
    "fc7-conv": (1, 32, 355, 113.5),  # k1: nothing changes
}


def test_alexnet_table_exactly():
    a = rfgraph.analyze(rfgraph.chain(ALEXNET, 227))
    for layer, (n, j, r, start) in ALEXNET_TABLE.items():
        rec = a[layer]
        assert (rec.n, rec.jump, rec.rf, rec.start) == ((n, n), (j, j), (r, r), (start, start)), layer
    rows = {row["node"]: row for row in table_rows(a)}
    assert rows["pool5"]["rf"] == 195 and rows["pool5"]["start"] == 33.5
    assert a.output.name == "fc7-conv"


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


def test_three_d_network():
    G = rfgraph.chain([("c", "conv", (3, 7, 7), (1, 2, 2), (1, 3, 3)), ("p", "maxpool", (1, 3, 3), (1, 2, 2), (0, 1, 1))],
                      (16, 112, 112))
    rec = rfgraph.analyze(G)["p"]
    # c: r (3, 7, 7), j (1, 2, 2); p: r (3, 7+2*2, 11), j (1, 4, 4)
    assert rec.n == (16, 28, 28) and rec.rf == (3, 11, 11) and rec.jump == (1, 4, 4)


def test_pooling_stride_defaults_to_the_kernel():
    # avgpool k3 p1 on 5, stride = kernel = 3: n = (5+2-3)//3+1 = 2, j = 3, r = 3,
    # start = 0.5 + (1 - 1)*1 = 0.5; feature 1 spans pixels 3*1-1 .. 3*1+1 = 2..4
    G = rfgraph.chain([], (5,))
    G.add_node("p", op="avgpool", kernel=3, padding=1)
    G.add_edge("input", "p")
    rec = rfgraph.analyze(G)["p"]
    assert (rec.n, rec.jump, rec.rf, rec.start) == ((2,), (3,), (3,), (0.5,))
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 2] and hi.tolist() == [1, 4]


def test_maxpool_ceil_mode_keeps_the_last_partial_window():
    # k2 s2 on 5: floor gives n = (5-2)//2+1 = 2; ceil_mode gives ceil(3/2)+1 = 3, whose window
    # starts at pixel 4 and reads only pixel 4 (pixel 5 does not exist)
    G = rfgraph.chain([], (5,))
    G.add_node("p", op="maxpool", kernel=2, ceil_mode=True)
    G.add_edge("input", "p")
    rec = rfgraph.analyze(G)["p"]
    assert rec.n == (3,) and rec.jump == (2,) and rec.rf == (2,) and rec.start == (1,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 2, 4] and hi.tolist() == [1, 3, 4]


def test_uneven_padding_pair():
    # k2, padding (0, 1) on 4: n = (4+0+1-2)//1+1 = 4, r = 2, start = 0.5 + (1/2 - 0) = 1;
    # the last feature reads pixel 3 and the one padding pixel after it
    G = rfgraph.chain([], (4,))
    G.add_node("c", op="conv", kernel=2, padding=((0, 1),))
    G.add_edge("input", "c")
    rec = rfgraph.analyze(G)["c"]
    assert rec.n == (4,) and rec.rf == (2,) and rec.start == (1,)
    assert rec.bounds(0)[1].tolist() == [1, 2, 3, 3] and rec.bounds(0, clip=False)[1].tolist() == [1, 2, 3, 4]


# Parameter errors of window ops: each names the node, the op and the parameter (input 16x16).
@pytest.mark.parametrize(
    "attrs, exc, words",
    [
        ({"op": "conv"}, ParameterError, "needs 'kernel'"),
        ({"op": "conv", "kernel": 0}, ParameterError, "kernel must be >= 1"),
        ({"op": "conv", "kernel": -3}, ParameterError, "kernel must be >= 1"),
        ({"op": "conv", "kernel": 3, "stride": 0}, ParameterError, "stride must be >= 1"),
        ({"op": "conv", "kernel": 3, "padding": -1}, ParameterError, "padding must be >= 0"),
        ({"op": "conv", "kernel": (3, 3, 3)}, ParameterError, "3 entries but the input has 2"),
        ({"op": "conv", "kernel": 2.5}, ParameterError, "must be an integer"),
        ({"op": "conv", "kernel": True}, ParameterError, "must be an integer"),
        ({"op": "conv", "kernel": 3, "padding": "full"}, ParameterError, "'same' or 'valid'"),
        # PyTorch: pool padding <= k/2; 2 > 3/2
        ({"op": "maxpool", "kernel": 3, "padding": 2}, ParameterError, "half the kernel"),
        ({"op": "conv", "kernel": 3, "strides": 2}, ParameterError, "unknown parameter(s) strides"),
        # n = (16-17)//1+1 = 0
        ({"op": "conv", "kernel": 17}, ShapeError, "output size along axis 0 would be < 1"),
        ({"op": "maxpool", "kernel": 2, "ceil_mode": "yes"}, ParameterError, "ceil_mode"),
    ],
)
def test_bad_parameters(attrs, exc, words):
    check_bad_node(attrs, exc, words)
