"""Hand-derived checks of the gradient-support oracle itself (no rfgraph import).

If the oracle is wrong, the property test compares the engine with nonsense; these cases pin the
oracle to numbers worked out by hand or taken from ``shared/reference.md``.
"""

import itertools

import networkx as nx
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the oracle's self-check runs in PyTorch")
import torch.nn.functional as F  # noqa: E402

import rfgraph  # noqa: E402
from oracle import (  # noqa: E402
    DTYPE,
    SupportProbe,
    axis_projection,
    build_module,
    gap_runs,
    gradient_support,
    interpolation_pattern,
    support_hull,
    window_out_size,
)


def chain(size, *layers):
    """A linear graph ``x -> l0 -> l1 ...``; each layer is ``(name, attrs)``."""
    G = nx.DiGraph()
    G.add_node("x", op="input", size=size)
    prev = "x"
    for name, attrs in layers:
        G.add_node(name, **attrs)
        G.add_edge(prev, name)
        prev = name
    return G


def pixels(G, node, position):
    """Sorted input pixels of a 1-D support."""
    return axis_projection(gradient_support(G, node, position), 0).tolist()


# AlexNet (k, s, p) and the reference table (n, j, r, start), along one axis.
ALEXNET = [
    ("conv1", "conv", 11, 4, 0, (55, 4, 11, 5.5)),
    ("pool1", "maxpool", 3, 2, 0, (27, 8, 19, 9.5)),
    ("conv2", "conv", 5, 1, 2, (27, 8, 51, 9.5)),
    ("pool2", "maxpool", 3, 2, 0, (13, 16, 67, 17.5)),
    ("conv3", "conv", 3, 1, 1, (13, 16, 99, 17.5)),
    ("conv4", "conv", 3, 1, 1, (13, 16, 131, 17.5)),
    ("conv5", "conv", 3, 1, 1, (13, 16, 163, 17.5)),
    ("pool5", "maxpool", 3, 2, 0, (6, 32, 195, 33.5)),
    ("fc6", "conv", 6, 1, 0, (1, 32, 355, 113.5)),
    ("fc7", "conv", 1, 1, 0, (1, 32, 355, 113.5)),
]


def test_alexnet_table_along_one_axis():
    """Every feature of every AlexNet layer: hull = reference interval clipped to the input."""
    N = 227
    G = chain((N,), *[(name, dict(op=op, kernel=k, stride=s, padding=p))
                      for name, op, k, s, p, _ in ALEXNET])
    probe = SupportProbe(G)
    for name, *_, (n, j, r, start) in ALEXNET:
        assert probe.shape(name) == (n,)
        masks = probe.axis_supports(name, 0)
        for i, mask in enumerate(masks):
            lo = start + i * j - r / 2
            expect = (max(0, int(lo)), min(N - 1, int(lo) + r - 1))
            assert support_hull(mask) == [expect], (name, i)
            # AlexNet uses no dilation: every RF is contiguous.
            assert gap_runs(axis_projection(mask, 0)) == ()


def test_alexnet_conv1_in_2d():
    G = chain((227, 227), ("conv1", dict(op="conv", kernel=11, stride=4)))
    mask = gradient_support(G, "conv1", (3, 7))
    assert support_hull(mask) == [(12, 22), (28, 38)]
    assert mask.sum() == 11 * 11


def test_dilated_conv_has_gaps():
    G = chain((20,), ("c", dict(op="conv", kernel=3, dilation=2)))
    assert pixels(G, "c", (5,)) == [5, 7, 9]
    assert gap_runs([5, 7, 9]) == ((1, 1), (3, 3))


def test_dilated_maxpool_taps():
    # max pooling (here: its positive-window stand-in) honours dilation too.
    G = chain((20,), ("p", dict(op="maxpool", kernel=2, stride=3, dilation=3)))
    assert pixels(G, "p", (2,)) == [6, 9]


def test_stacked_dilation_fills_gaps():
    # k3 d1 then k3 d2: RF 7, taps of the second layer 2 apart over 3-wide RFs: no gap.
    G = chain((30,), ("a", dict(op="conv", kernel=3)), ("b", dict(op="conv", kernel=3, dilation=2)))
    assert pixels(G, "b", (4,)) == list(range(4, 11))
    # k2 then k3 d3: 2-wide pieces 3 apart leave one-pixel gaps.
    G = chain((30,), ("a", dict(op="conv", kernel=2)), ("b", dict(op="conv", kernel=3, dilation=3)))
    assert pixels(G, "b", (0,)) == [0, 1, 3, 4, 6, 7]


@pytest.mark.parametrize("n,k,s,p,d", [
    (n, k, s, p, d)
    for n, k, s, d in itertools.product((5, 6, 7, 10), (1, 2, 3, 4), (1, 2, 3), (1, 2))
    for p in range(0, k // 2 + 1)
    if (k - 1) * d + 1 <= n + 2 * p
])
def test_pool_size_matches_torch(n, k, s, p, d):
    """window_out_size (incl. ceil_mode) agrees with torch's own max_pool1d."""
    for ceil_mode in (False, True):
        y = F.max_pool1d(torch.zeros(1, 1, n), k, s, p, d, ceil_mode=ceil_mode)
        assert window_out_size(n, k, s, d, p, p, ceil_mode) == y.shape[-1]
        G = chain((n,), ("m", dict(op="maxpool", kernel=k, stride=s, padding=p, dilation=d,
                                   ceil_mode=ceil_mode)))
        assert SupportProbe(G).shape("m") == (y.shape[-1],)


def test_pool_size_matches_torch_in_every_corner():
    """Kernels larger than the input, windows starting in the padding, ceil_mode: the oracle's
    window_out_size and rfgraph's engine both give torch's output size, or refuse where torch does."""
    checked = 0
    for n, k, s in itertools.product(range(1, 8), range(1, 11), range(1, 11)):
        for p, ceil_mode, pool in itertools.product(range(0, k // 2 + 1), (False, True),
                                                    (F.max_pool1d, F.avg_pool1d)):
            try:
                want = pool(torch.zeros(1, 1, n), k, s, p, ceil_mode=ceil_mode).shape[-1]
            except RuntimeError:
                want = 0
            assert window_out_size(n, k, s, 1, p, p, ceil_mode) == want, (n, k, s, p, ceil_mode)
            op = "maxpool" if pool is F.max_pool1d else "avgpool"
            G = rfgraph.chain([], (n,))
            G.add_node("m", op=op, kernel=k, stride=s, padding=p, ceil_mode=ceil_mode)
            G.add_edge("input", "m")
            if want == 0:
                with pytest.raises(rfgraph.ShapeError):
                    rfgraph.analyze(G)
            else:
                assert rfgraph.analyze(G)["m"].n == (want,), (n, k, s, p, ceil_mode, op)
                checked += 1
    assert checked > 3000


def test_true_maxpool_gradient_lies_in_window():
    """The real max pool's gradient (the argmax) is inside the stand-in's support."""
    G = chain((12,), ("m", dict(op="maxpool", kernel=3, stride=2, padding=1, ceil_mode=True)))
    probe = SupportProbe(G)
    x = probe.inputs[0].detach().clone().requires_grad_(True)
    y = F.max_pool1d(x, 3, 2, 1, ceil_mode=True)
    for i in range(y.shape[-1]):
        (g,) = torch.autograd.grad(y[0, 0, i], x, retain_graph=True)
        window = probe.support("m", (i,))
        assert ((g[0, 0] != 0).numpy() <= window).all()
        assert window.sum() == (1 if i == y.shape[-1] - 1 else 2 if i == 0 else 3)


def test_ceil_mode_last_window_runs_past_padding():
    # n=6, k=3, s=2, p=0, ceil: windows start at 0, 2, 4; the last reads pixels 4, 5 (and 6 = pad).
    G = chain((6,), ("m", dict(op="maxpool", kernel=3, stride=2, ceil_mode=True)))
    assert [pixels(G, "m", (i,)) for i in range(3)] == [[0, 1, 2], [2, 3, 4], [4, 5]]


def test_same_padding_tf_rule():
    # n=10, k=4, s=1: total 3, before 1, after 2.
    G = chain((10,), ("c", dict(op="conv", kernel=4, padding="same")))
    assert pixels(G, "c", (0,)) == [0, 1, 2]
    assert pixels(G, "c", (9,)) == [8, 9]
    # n=224, k=3, s=2: total 1, all after (reference.md's example).
    G = chain((224,), ("c", dict(op="conv", kernel=3, stride=2, padding="same")))
    assert pixels(G, "c", (0,)) == [0, 1, 2]
    assert pixels(G, "c", (111,)) == [222, 223]


def test_padding_pairs_shift_the_window():
    G = chain((10,), ("c", dict(op="conv", kernel=3, padding=((0, 2),))))
    assert SupportProbe(G).shape("c") == (10,)
    assert pixels(G, "c", (0,)) == [0, 1, 2]
    assert pixels(G, "c", (9,)) == [9]


def test_crop_then_padding_is_not_input():
    # After a crop, the conv's padding maps to real input pixels that are nevertheless unused.
    G = chain((20,), ("s", dict(op="slice", start=5, stop=15)),
              ("c", dict(op="conv", kernel=3, padding=1)))
    assert pixels(G, "c", (0,)) == [5, 6]
    assert pixels(G, "c", (9,)) == [13, 14]


def test_pad_region_has_empty_support():
    G = chain((8,), ("p", dict(op="pad", padding=((2, -3),))))
    probe = SupportProbe(G)
    assert probe.shape("p") == (7,)
    assert support_hull(probe.support("p", (1,))) is None
    assert pixels(G, "p", (2,)) == [0]
    assert pixels(G, "p", (6,)) == [4]


def test_reflect_pad():
    G = chain((8,), ("p", dict(op="pad", padding=((2, 2),), mode="reflect")))
    assert pixels(G, "p", (0,)) == [2]
    assert pixels(G, "p", (11,)) == [5]


def test_strided_slice():
    G = chain((20,), ("s", dict(op="slice", start=1, stop=None, step=3)))
    assert SupportProbe(G).shape("s") == (7,)
    assert pixels(G, "s", (4,)) == [13]


def test_upsample_nearest_and_linear():
    G = chain((6,), ("u", dict(op="upsample", scale=2, mode="nearest")))
    assert [pixels(G, "u", (i,)) for i in range(4)] == [[0], [0], [1], [1]]
    # linear, align_corners=False: source x = (o + 0.5)/2 - 0.5, clamped at 0, so o=0 -> {0}.
    G = chain((6,), ("u", dict(op="upsample", scale=2, mode="linear")))
    assert [pixels(G, "u", (i,)) for i in range(3)] == [[0], [0, 1], [0, 1]]
    assert pixels(G, "u", (11,)) == [5]
    # align_corners=True, 4 -> 7: x = o/2, integer for even o: one pixel, two for odd o.
    G = chain((4,), ("u", dict(op="upsample", size=7, mode="linear", align_corners=True)))
    assert [pixels(G, "u", (i,)) for i in range(7)] == [[0], [0, 1], [1], [1, 2], [2], [2, 3], [3]]


def test_upsample_ignores_float_roundoff():
    # 49 -> 95, align_corners: output 47 sits exactly on pixel 24 (47*48/94); float64 computes
    # 23.999..., which gives pixel 23 a 1e-15 weight: round-off, not a dependency.
    G = chain((49,), ("u", dict(op="upsample", size=95, mode="linear", align_corners=True)))
    assert pixels(G, "u", (47,)) == [24]
    # 2 -> 6: output 1's source coordinate is exactly 0 ((1 + 0.5)/3 - 0.5)
    G = chain((2,), ("u", dict(op="upsample", size=6, mode="linear")))
    assert pixels(G, "u", (1,)) == [0]
    # nearest, 48 -> 88: output 55 reads floor(55*48/88) = 30 (ATen: float32 index math)
    G = chain((48,), ("u", dict(op="upsample", size=88, mode="nearest")))
    assert pixels(G, "u", (55,)) == [30]


def test_interpolation_pattern_matches_interpolate_support():
    """Away from round-off the pattern is exactly where F.interpolate's weights are non-zero."""
    for mode, align in [("nearest", False), ("nearest-exact", False), ("linear", False),
                        ("linear", True)]:
        for n_in, n_out in [(5, 8), (7, 16), (6, 13)]:
            kw = {} if mode.startswith("nearest") else {"align_corners": align}
            w = F.interpolate(torch.eye(n_in, dtype=DTYPE).view(n_in, 1, n_in), size=n_out,
                              mode=mode, **kw)[:, 0, :].T
            pattern = interpolation_pattern(n_in, mode, align, size=n_out)
            assert ((w != 0) == (pattern != 0)).all(), (mode, align, n_in, n_out)


def test_bilinear_2d_is_separable():
    G = chain((5, 6), ("u", dict(op="upsample", scale=(2, 1.5), mode="bilinear")))
    probe = SupportProbe(G)
    assert probe.shape("u") == (10, 9)
    x = torch.rand(1, 1, 5, 6, dtype=DTYPE, requires_grad=True)
    y = F.interpolate(x, scale_factor=(2, 1.5), mode="bilinear")
    for pos in [(0, 0), (3, 4), (9, 8), (5, 2)]:
        (g,) = torch.autograd.grad(y[0, 0][pos], x)
        assert ((g[0, 0] != 0).numpy() == probe.support("u", pos)).all(), pos


def test_global_along_one_axis():
    G = chain((6, 7), ("g", dict(op="global", axes=1)))
    probe = SupportProbe(G)
    assert probe.shape("g") == (6, 1)
    assert support_hull(probe.support("g", (2, 0))) == [(2, 2), (0, 6)]


def test_upsample_bicubic_skips_zero_taps():
    # bicubic, align_corners=True, 4 -> 7: even outputs hit a pixel exactly (other taps weigh 0).
    G = chain((4, 4), ("u", dict(op="upsample", size=7, mode="bicubic", align_corners=True)))
    mask = gradient_support(G, "u", (2, 3))
    assert axis_projection(mask, 0).tolist() == [1]
    assert axis_projection(mask, 1).tolist() == [0, 1, 2, 3]


def test_adaptive_pool_windows():
    G = chain((5,), ("a", dict(op="adaptive_maxpool", output_size=3)))
    assert [pixels(G, "a", (i,)) for i in range(3)] == [[0, 1], [1, 2, 3], [3, 4]]


def test_convtranspose_taps():
    # output o reads input i with 2*i + t == o, t in 0..2
    G = chain((5,), ("t", dict(op="convtranspose", kernel=3, stride=2)))
    assert SupportProbe(G).shape("t") == (11,)
    assert [pixels(G, "t", (o,)) for o in range(5)] == [[0], [0], [0, 1], [1], [1, 2]]


def test_cross_from_1x3_and_3x1_branches():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(9, 9))
    G.add_node("h", op="conv", kernel=(1, 3), padding="same")
    G.add_node("v", op="conv", kernel=(3, 1), padding="same")
    G.add_node("s", op="add")
    G.add_edges_from([("x", "h"), ("x", "v"), ("h", "s"), ("v", "s")])
    mask = gradient_support(G, "s", (4, 4))
    assert mask.sum() == 5  # a cross, not a square
    assert support_hull(mask) == [(3, 5), (3, 5)]


def test_squeeze_excitation_sees_everything():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(10, 10))
    G.add_node("c", op="conv", kernel=3, padding=1)
    G.add_node("g", op="global")
    G.add_node("e", op="conv", kernel=1)
    G.add_node("m", op="mul")
    G.add_edges_from([("x", "c"), ("c", "g"), ("g", "e"), ("e", "m"), ("c", "m")])
    assert SupportProbe(G).shape("e") == (1, 1)
    assert gradient_support(G, "m", (5, 5)).all()


def test_concat_and_two_inputs():
    G = nx.DiGraph()
    G.add_node("a", op="input", size=(12,))
    G.add_node("b", op="input", size=(12,))
    G.add_node("c", op="conv", kernel=3)
    G.add_node("k", op="concat")
    G.add_node("s", op="slice", start=0, stop=10)
    G.add_edges_from([("a", "c"), ("b", "s"), ("c", "k", {"index": 1}), ("s", "k", {"index": 0})])
    net = build_module(G)
    assert net.inputs == ["a", "b"]
    # union over both inputs: pixels 4..6 from a, pixel 4 from b
    assert pixels(G, "k", (4,)) == [4, 5, 6]


def test_slab_support_is_union_of_points():
    G = chain((7, 9), ("c", dict(op="conv", kernel=(2, 3), stride=(1, 2), padding=((1, 0), 1))))
    probe = SupportProbe(G)
    n0, n1 = probe.shape("c")
    for i in range(n0):
        union = np.zeros((7, 9), dtype=bool)
        for j in range(n1):
            union |= probe.support("c", (i, j))
        assert (probe.axis_supports("c", 0)[i] == union).all()
        assert (probe.support("c", (i, None)) == union).all()


def test_position_checks():
    G = chain((7,), ("c", dict(op="conv", kernel=3)))
    with pytest.raises(IndexError):
        gradient_support(G, "c", (5,))
    with pytest.raises(ValueError):
        gradient_support(G, "c", (1, 1))


def test_float64_positive_weights():
    net = build_module(chain((6,), ("c", dict(op="conv", kernel=3))))
    out = net(torch.ones(1, 1, 6, dtype=DTYPE))["c"]
    assert out.dtype == torch.float64 and (out > 0).all()
    assert net.weights and all((w > 0).all() for w in net.weights.values())


def test_padding_markers_1d():
    G = chain((10,), ("c", dict(op="conv", kernel=3, padding=1)))
    assert SupportProbe(G).axis_padding("c", 0).tolist() == [True] + [False] * 8 + [True]


def test_padding_marker_after_crop():
    # pixel 4 is real but the conv reads the crop's padding there: feature 0 is not interior
    G = chain((20,), ("s", dict(op="slice", start=5, stop=15)),
              ("c", dict(op="conv", kernel=3, padding=1)))
    probe = SupportProbe(G)
    assert probe.axis_padding("c", 0).tolist() == [True] + [False] * 8 + [True]
    assert probe.reads_padding("c", (0,)) == (True,)


def test_padding_markers_pad_op_and_ceil_mode():
    G = chain((8,), ("p", dict(op="pad", padding=((2, -3),))),
              ("m", dict(op="maxpool", kernel=2, stride=2, ceil_mode=True)))
    probe = SupportProbe(G)
    assert probe.axis_padding("p", 0).tolist() == [True, True] + [False] * 5
    # 7 -> windows at 0, 2, 4, 6; the last runs past the end
    assert probe.axis_padding("m", 0).tolist() == [True, False, False, True]


def test_padding_markers_convtranspose():
    # stride 1, k3: output o reads inputs o, o-1, o-2
    G = chain((5,), ("t", dict(op="convtranspose", kernel=3)))
    assert SupportProbe(G).axis_padding("t", 0).tolist() == [True, True, False, False, False,
                                                             True, True]


def test_padding_markers_are_per_axis():
    G = chain((6, 6), ("c", dict(op="conv", kernel=(1, 3), padding=(0, 1))))
    probe = SupportProbe(G)
    assert not probe.axis_padding("c", 0).any()
    assert probe.axis_padding("c", 1).tolist() == [True, False, False, False, False, True]
    assert probe.reads_padding("c", (2, 0)) == (False, True)
