"""``convtranspose`` (rfgraph/ops/convtranspose.py): output o reads input i when i*s - p + t*d == o.

n_out = (n - 1)*s - 2p + d(k - 1) + output_padding + 1. Stride 1 is a conv with padding d(k-1) - p
(exact); a larger stride gives jump/s and per-position bounds.
"""

import pytest

import rfgraph
from rfgraph import ParameterError
from hand_graphs import check_bad_node


def after_input(input_size, **attrs):
    G = rfgraph.chain([], input_size)
    G.add_node("t", op="convtranspose", **attrs)
    G.add_edge("input", "t")
    return rfgraph.analyze(G)["t"]


def test_k2_s2_doubles_each_pixel():
    # n = (4-1)*2 + 1 + 1 = 8; o = 2i + t, t in {0, 1}: o reads i = o // 2 only
    rec = after_input((4,), kernel=2, stride=2)
    assert rec.n == (8,) and rec.jump == (0.5,) and rec.exact == (False,)
    # feature 0 reads inputs ceil((0-1)/2) = 0 .. floor(0/2) = 0: rf 1, start 0.5
    assert rec.rf == (1,) and rec.start == (0.5,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == hi.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_k3_s2_p1_alternates_one_and_two_inputs():
    # n = (4-1)*2 - 2 + 2 + 1 = 7; o = 2i - 1 + t: even o reads i = o/2 (t = 1),
    # odd o reads i = (o+1)/2 (t = 0) and (o-1)/2 (t = 2) -> {0}, {0,1}, {1}, {1,2}, {2}, {2,3}, {3}
    rec = after_input((4,), kernel=3, stride=2, padding=1)
    assert rec.n == (7,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 0, 1, 1, 2, 2, 3] and hi.tolist() == [0, 1, 1, 2, 2, 3, 3]


def test_stride_1_is_a_conv():
    # k3 s1 p1 on 5: n = 4 - 2 + 2 + 1 = 5; a conv k3 with padding 2 - 1 = 1: r 3, start 0.5, exact
    rec = after_input((5,), kernel=3, padding=1)
    conv = rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, 1)], (5,)))["c"]
    assert (rec.n, rec.jump, rec.rf, rec.start, rec.exact) == ((5,), (1,), (3,), (0.5,), (True,))
    assert [b.tolist() for b in rec.bounds(0)] == [b.tolist() for b in conv.bounds(0)]


def test_output_padding_adds_a_last_feature():
    # k2 s2 output_padding 1 on 3: n = 2*2 + 1 + 1 + 1 = 7; o = 6 = 2i + t needs i = 3: no input,
    # so the last feature sees nothing (-1, -1)
    rec = after_input((3,), kernel=2, stride=2, output_padding=1)
    assert rec.n == (7,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 0, 1, 1, 2, 2, -1] and hi.tolist() == [0, 0, 1, 1, 2, 2, -1]


@pytest.mark.parametrize("attrs, words", [
    ({"op": "convtranspose"}, "needs 'kernel'"),
    # output_padding must be < max(stride, dilation) = 1
    ({"op": "convtranspose", "kernel": 2, "output_padding": 1}, "output_padding 1 must be smaller"),
    ({"op": "convtranspose", "kernel": 2, "padding": (1, 2, 3)}, "3 entries but the input has 2"),
])
def test_bad_parameters(attrs, words):
    check_bad_node(attrs, ParameterError, words)
