"""Resampling (rfgraph/ops/resample.py): upsample and adaptive pooling, exact per position."""

import networkx as nx
import pytest

import rfgraph
from rfgraph import ParameterError
from hand_graphs import check_bad_node, squeeze_excited


def after_input(input_size, **attrs):
    G = rfgraph.chain([], input_size)
    G.add_node("r", **attrs)
    G.add_edge("input", "r")
    return rfgraph.analyze(G)["r"]


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


def test_nearest_upsample_repeats_each_pixel():
    # scale 2 on 4: n = 8, output o reads input o // 2; jump 1/2, feature 0 is pixel 0
    rec = after_input((4,), op="upsample", scale=2)
    assert rec.n == (8,) and rec.jump == (0.5,) and rec.rf == (1,) and rec.start == (0.5,)
    assert rec.exact == (False,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == hi.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_bilinear_upsample_blends_two_neighbours():
    # scale 2 on 4, align_corners False: source x = (o + 0.5)/2 - 0.5, clamped at 0, reads floor(x)
    # and floor(x)+1 (clamped to 3); weight 0 on the second at o = 0 (x = 0) and o = 7 (x = 3)
    rec = after_input((4,), op="upsample", scale=2, mode="linear")
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 0, 0, 1, 1, 2, 2, 3]
    assert hi.tolist() == [0, 1, 1, 2, 2, 3, 3, 3]


def test_upsample_to_a_size():
    # size 6 from 3: ratio 3/6, nearest reads floor(o * 3/6) = o // 2
    rec = after_input((3,), op="upsample", size=6)
    assert rec.n == (6,) and rec.jump == (0.5,)
    assert rec.bounds(0)[0].tolist() == [0, 0, 1, 1, 2, 2]


def test_adaptive_pool_that_divides_is_a_plain_pool():
    # output 2 from 6: k = s = 6/2 = 3: n 2, jump 3, rf 3, start 0.5 + (3-1)/2 = 1.5, exact
    rec = after_input((6,), op="adaptive_avgpool", output_size=2)
    assert (rec.n, rec.jump, rec.rf, rec.start, rec.exact) == ((2,), (3,), (3,), (1.5,), (True,))


def test_adaptive_pool_that_does_not_divide():
    # output 4 from 6: window o is [floor(6o/4), ceil(6(o+1)/4)) -> [0,2), [1,3), [3,5), [4,6)
    rec = after_input((6,), op="adaptive_maxpool", output_size=4)
    assert rec.n == (4,) and rec.exact == (False,)
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 1, 3, 4] and hi.tolist() == [1, 2, 4, 5]


# Parameter errors of upsample (input 16x16): each names the node, the op and the parameter.
@pytest.mark.parametrize(
    "attrs, exc, words",
    [
        ({"op": "upsample"}, ParameterError, "exactly one of 'scale' or 'size'"),
        ({"op": "upsample", "scale": 2, "mode": "area"}, ParameterError, "mode must be one of"),
        ({"op": "upsample", "scale": -2}, ParameterError, "positive number"),
        ({"op": "upsample", "scale": 2, "align_corners": True}, ParameterError, "align_corners only applies"),
        ({"op": "adaptive_avgpool"}, ParameterError, "needs 'output_size'"),
    ],
)
def test_bad_parameters(attrs, exc, words):
    check_bad_node(attrs, exc, words)


UNIFORM_TAIL = [("near", "upsample", {"scale": 2}), ("lin", "upsample", {"scale": 1.5, "mode": "linear"}),
                ("adapt", "adaptive_avgpool", {"output_size": 7}), ("cubic", "upsample", {"size": 9, "mode": "bicubic"})]


@pytest.mark.parametrize("size", [(12,), (10, 12)])
def test_resampling_features_that_all_read_the_same_pixels_is_exact(size):
    # after a global gate every feature reads the whole input: however an upsample or an
    # adaptive pool picks its features, each output reads the same pixels, so the summary is
    # exact (no per-feature arrays) and the certificate answers is_global in O(1) -- checked
    # feature by feature against the gradient support
    pytest.importorskip("torch", reason="the gradient-support oracle builds the network in torch")
    from oracle import SupportProbe, axis_projection

    G = squeeze_excited(size, *UNIFORM_TAIL)
    a = rfgraph.analyze(G)
    probe = SupportProbe(G)
    naxes = len(size)
    for name, _, _ in UNIFORM_TAIL:
        rec = a[name]
        assert rec.exact == (True,) * naxes and rec.jump == (0,) * naxes, name
        assert all(a._exact.clean(name, ax) for ax in range(naxes)), name
        assert a.is_global(name) == (True,) * naxes
        for ax in range(naxes):
            lo, hi = a.bounds(name, ax)
            for i in range(rec.n[ax]):
                pos = tuple(i if b == ax else None for b in range(naxes))
                px = axis_projection(probe.support(name, pos), ax)
                assert (lo[i], hi[i]) == (px[0], px[-1]) == (0, size[ax] - 1), (name, ax, i)
                assert rec.rf[ax] == len(px) and rec.rf_extent[ax] == (len(px), len(px))


def test_resampling_a_map_whose_features_differ_stays_position_dependent():
    G = squeeze_excited((12,), ("near", "upsample", {"scale": 2}))
    G.add_node("up_c", op="upsample", scale=2)
    G.add_edge("c", "up_c")
    a = rfgraph.analyze(G)
    assert a["near"].exact == (True,) and a["up_c"].exact == (False,)
    assert a["up_c"].rf_extent == ((3, 3),) and a.bounds("up_c", 0)[0][:4].tolist() == [0, 0, 1, 1]
