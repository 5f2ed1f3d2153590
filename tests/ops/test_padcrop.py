"""``pad`` and ``slice`` (rfgraph/ops/padcrop.py): shifting the grid, re-reading the border, cropping."""

import pytest

import rfgraph
from rfgraph import ParameterError, ShapeError
from hand_graphs import check_bad_node


def after_input(input_size, **attrs):
    G = rfgraph.chain([], input_size)
    G.add_node("p", **attrs)
    G.add_edge("input", "p")
    return rfgraph.analyze(G)["p"]


def test_constant_pad_shifts_the_grid():
    # (1, 1) on 4: n = 6, output o is input o - 1: start 0.5 - 1 = -0.5, exact;
    # o = 0 and o = 5 are padding and see nothing (-1, -1)
    rec = after_input((4,), op="pad", padding=((1, 1),))
    assert (rec.n, rec.jump, rec.rf, rec.start, rec.exact) == ((6,), (1,), (1,), (-0.5,), (True,))
    lo, hi = rec.bounds(0)
    assert lo.tolist() == hi.tolist() == [-1, 0, 1, 2, 3, -1]
    assert rec.bounds(0, clip=False)[0].tolist() == [-1, 0, 1, 2, 3, 4]


@pytest.mark.parametrize("mode, reads", [
    ("reflect", [1, 0, 1, 2, 3, 2]),    # [b a b c d c]: the edge pixel is not repeated
    ("replicate", [0, 0, 1, 2, 3, 3]),  # [a a b c d d]
    ("circular", [3, 0, 1, 2, 3, 0]),   # [d a b c d a]
])
def test_border_modes_re_read_pixels(mode, reads):
    # (1, 1) on pixels [a b c d]: each output reads one input pixel, which the mode picks
    rec = after_input((4,), op="pad", padding=1, mode=mode)
    assert rec.n == (6,) and rec.exact == (False,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == hi.tolist() == reads


def test_negative_padding_crops():
    # (-1, -2) on 6: n = 3, output o is input o + 1: start 1.5, exact
    rec = after_input((6,), op="pad", padding=((-1, -2),))
    assert (rec.n, rec.start, rec.exact) == ((3,), (1.5,), (True,))
    assert rec.bounds(0)[0].tolist() == [1, 2, 3]


def test_strided_slice():
    # 1::2 on 8: inputs 1, 3, 5, 7: n 4, jump 2, start 1.5
    rec = after_input((8,), op="slice", start=1, step=2)
    assert (rec.n, rec.jump, rec.rf, rec.start) == ((4,), (2,), (1,), (1.5,))
    assert rec.bounds(0)[0].tolist() == [1, 3, 5, 7]


def test_slice_from_the_end_after_a_conv():
    # conv k3 p1 on 8 (rf 3, start 0.5), then [-3:]: features 5, 6, 7, centred 5.5 ..;
    # feature 7 reads pixels 6..8 and 8 is padding, so its clipped bounds are 6..7
    G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))
    G.add_node("s", op="slice", start=-3)
    G.add_edge("c", "s")
    rec = rfgraph.analyze(G)["s"]
    assert rec.n == (3,) and rec.rf == (3,) and rec.start == (5.5,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [4, 5, 6] and hi.tolist() == [6, 7, 7]


@pytest.mark.parametrize("attrs, exc, words", [
    ({"op": "pad"}, ParameterError, "needs 'padding'"),
    ({"op": "pad", "padding": 1, "mode": "wrap"}, ParameterError, "mode must be one of"),
    ({"op": "pad", "padding": 16, "mode": "reflect"}, ParameterError, "must be smaller than the input size 16"),
    ({"op": "pad", "padding": -8}, ShapeError, "would be < 1"),        # 16 - 8 - 8 = 0
    ({"op": "slice", "start": 20}, ShapeError, "empty slice"),         # range(20, 16) is empty
    ({"op": "slice", "step": 0}, ParameterError, "step must be >= 1"),
])
def test_bad_parameters(attrs, exc, words):
    check_bad_node(attrs, exc, words)
