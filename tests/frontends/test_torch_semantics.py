"""Torch ops whose exact index map the tracer must keep: wrap-around padding, flip, roll, and ops
PyTorch lowers through another rank (1-D pooling runs the 2-D kernel on an unsqueezed tensor).

Every case is checked against gradient support (rfgraph.tools.verify: positive weights, max pooling
as average pooling, float64): for **every** output feature, rfgraph's clipped bounds per axis must
equal the hull of the input pixels whose gradient is non-zero.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import rfgraph  # noqa: E402
from rfgraph.tools.verify import hull, positive_copy, support  # noqa: E402
from test_torch_ops import Fn, conv  # noqa: E402  (the op table's module helpers)


def check(module, shape, every=True):
    """Trace ``module`` on ``(C, *spatial)``, compare every output feature's bounds with the
    gradient support; returns the graph and the output record."""
    G = rfgraph.from_torch(module, shape)
    a = rfgraph.analyze(G)
    [out] = G.graph["outputs"]
    rec = a[out]
    m = positive_copy(module)
    with torch.no_grad():
        y = m(torch.rand((1,) + tuple(shape), dtype=torch.float64) + 0.5)
    assert tuple(rec.n) == tuple(y.shape[2:]), (rec.n, y.shape)
    grids = [range(n) if every else sorted({0, n // 2, n - 1}) for n in rec.n]
    positions = [tuple(int(v) for v in p) for p in np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(grids), -1).T]
    masks = support(m, None, shape, positions)
    bounds = [rec.bounds(ax) for ax in range(len(rec.n))]
    for pos, mask in zip(positions, masks):
        for ax, (lo, hi, _) in enumerate(hull(mask)):
            got = (int(bounds[ax][0][pos[ax]]), int(bounds[ax][1][pos[ax]]))
            assert got == (lo, hi), f"feature {pos} axis {ax}: rfgraph {got}, gradient support {(lo, hi)}"
    return G, rec


def ops(G):
    return [G.nodes[v]["op"] for v in G]


# -- circular (and reflect / replicate) padding: one pad node, then the conv without padding --------


def test_circular_conv_is_one_pad_and_a_conv():
    # the issue's case: one 3x3 circular conv on 16x16 was rf 35 with four fake misaligned joins
    G, rec = check(conv(k=3, padding=1, padding_mode="circular"), (1, 16, 16))
    assert ops(G) == ["input", "pad", "conv"]
    pad = next(v for v in G if G.nodes[v]["op"] == "pad")
    assert G.nodes[pad]["mode"] == "circular" and G.nodes[pad]["padding"] == ((1, 1), (1, 1))
    assert G.nodes[pad]["target"] == "aten::pad" and "opposite border" in G.nodes[pad]["note"]
    convs = [v for v in G if G.nodes[v]["op"] == "conv"]
    assert convs == [""] and G.nodes[""]["padding"] == (0, 0)  # the conv keeps the module's name
    assert rec.misalignment is None and rfgraph.analyze(G).misaligned() == []
    assert not rec.exact[0] and not any(rec.is_global)
    lo, hi = rec.bounds(0)
    # feature 0 reads rows 15, 0, 1: its hull is the whole input, the wrap-around is real;
    # an interior feature reads its 3 rows (the old decomposition said rf 35)
    assert (lo[0], hi[0]) == (0, 15) and (lo[1], hi[1]) == (0, 2) and (lo[15], hi[15]) == (0, 15)
    assert (hi - lo + 1)[1:15].tolist() == [3] * 14


def test_circular_conv_in_a_named_module_keeps_its_name():
    net = nn.Sequential(conv(k=3, padding=2, padding_mode="circular", stride=2), nn.ReLU())
    G, _ = check(net, (1, 11, 12))
    assert ops(G) == ["input", "pad", "conv", "identity"]
    assert "0" in G and G.nodes["0"]["op"] == "conv" and G.nodes["0.pad"]["op"] == "pad"
    assert G.graph["module_outputs"]["0"] == "0"


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate"])
@pytest.mark.parametrize("nd, shape", [(1, (1, 13)), (2, (1, 9, 10)), (3, (1, 5, 6, 7))])
def test_conv_padding_modes_in_every_rank(mode, nd, shape):
    G, _ = check(conv(nd=nd, k=3, padding=1, padding_mode=mode, dilation=2 if nd == 1 else 1), shape)
    assert ops(G) == ["input", "pad", "conv"]


@pytest.mark.parametrize("mode", ["circular", "reflect", "replicate", "constant"])
def test_functional_pad_modes_are_one_node(mode):
    module = Fn(lambda x, c: c(F.pad(x, (2, 1, 0, 3), mode=mode)), conv(k=3, stride=2))
    G, _ = check(module, (1, 9, 10))
    assert ops(G) == ["input", "pad", "0"] or ops(G) == ["input", "pad", "conv"]
    pad = next(v for v in G if G.nodes[v]["op"] == "pad")
    assert G.nodes[pad]["mode"] == mode and G.nodes[pad]["padding"] == ((0, 3), (2, 1))


def test_circular_pad_module_and_torch_c_pad():
    G, _ = check(nn.Sequential(nn.CircularPad1d((3, 1)), conv(nd=1, k=2)), (1, 8))
    assert ops(G) == ["input", "pad", "conv"]
    module = Fn(lambda x, c: c(torch._C._nn.pad(x, (1, 1, 1, 1), "circular")), conv(k=3))
    G, _ = check(module, (1, 7, 7))
    assert ops(G) == ["input", "pad", "conv"]


def test_circular_pad_after_a_conv_keeps_the_join_free():
    module = Fn(lambda x, a, b: b(F.pad(a(x), (1, 1, 1, 1), mode="circular")) + a(x),
                conv(k=3, padding=1), conv(k=3, cin=2))
    G, rec = check(module, (1, 10, 10))
    assert ops(G).count("add") == 1 and ops(G).count("pad") == 1


# -- flip and roll -----------------------------------------------------------------------------------


def test_flip_is_a_reversal_not_global():
    G, rec = check(Fn(lambda x, c: torch.flip(c(x), (2,)), conv(k=3, padding=1)), (1, 9, 8))
    [flip] = [v for v in G if G.nodes[v]["op"] == "flip"]
    assert G.nodes[flip]["axes"] == (0,)
    assert rec.is_global == (False, False) and rec.exact == (False, True)
    assert rec.bounds(0)[0].tolist() == [7, 6, 5, 4, 3, 2, 1, 0, 0]


@pytest.mark.parametrize("dims", [(2,), (3,), (2, 3), (1,), (1, 2), (-1, -2)])
def test_flip_then_conv(dims):
    G, rec = check(Fn(lambda x, a, b: b(torch.flip(a(x), dims)), conv(k=(3, 1), padding=(1, 0), stride=(2, 1)),
                      conv(k=(1, 5), cin=2, dilation=(1, 2))), (1, 11, 13))
    assert "global" not in ops(G)
    if dims == (1,):  # channels only: positions unchanged, no node
        assert "flip" not in ops(G)


def test_flip_of_one_feature_and_of_the_flattened_map():
    G, rec = check(Fn(lambda x, c: torch.flip(c(x).mean(2, keepdim=True), (2, 3)), conv(k=3)), (1, 6, 7))
    # axis 0 has one (global) feature: reversing it changes nothing, the summary stays exact there
    assert rec.n == (1, 5) and rec.is_global == (True, False) and rec.exact == (True, False)
    module = Fn(lambda x, c: torch.flip(c(x).flatten(2), (2,)).view(1, 2, 5, 6), conv(k=3, padding=(0, 1)))
    G, rec = check(module, (1, 7, 6))
    [flip] = [v for v in G if G.nodes[v]["op"] == "flip"]
    assert G.nodes[flip]["axes"] == (0, 1)


@pytest.mark.parametrize("shifts, dims", [((2, -3), (2, 3)), (5, 3), ((1, 1), (2, 2)), (10, 2), (3, 1)])
def test_roll(shifts, dims):
    G, rec = check(Fn(lambda x, c, d: d(torch.roll(c(x), shifts, dims)), conv(k=3, padding=1),
                      conv(k=3, cin=2, stride=2)), (1, 10, 9))
    assert "global" not in ops(G) and "slice" not in ops(G)
    if dims == 1:
        assert "roll" not in ops(G)
    elif shifts == 10:  # a whole turn: nothing moves, the summary stays exact
        assert rec.exact == (True, True)
    else:
        assert "roll" in ops(G)


@pytest.mark.parametrize("cut, slices", [
    (lambda y: y[:, :, 1:7][:, :, :, 2:9:2], 1),  # rows, then columns: one slice cutting both
    (lambda y: y[:, :, :, 2:9:2][:, :, 1:7], 1),
    (lambda y: y[:, :, 1:9][:, :, 2:6], 2),  # the same axis twice: two slices
    (lambda y: torch.relu(y[:, :, 1:7])[:, :, :, 2:9], 2),  # another op between them
])
def test_slices_of_a_slice_along_other_axes_are_one_node(cut, slices):
    G, _ = check(Fn(lambda x, c, d: d(cut(c(x))), conv(1, 2, 3, padding=1), conv(2, 2, 3)), (1, 12, 11))
    assert ops(G).count("slice") == slices


def test_roll_in_1d_and_3d():
    check(Fn(lambda x, c: c(torch.roll(x, -4, 2)), conv(nd=1, k=4, stride=3)), (1, 17))
    check(Fn(lambda x, c: c(torch.roll(x, (1, 2), (2, 4))), conv(nd=3, k=(1, 3, 3))), (1, 3, 5, 6))


def test_flip_and_roll_ops_in_hand_built_graphs():
    G = rfgraph.chain([("c", "conv", 3, 2, 1)], (9,))
    G.add_node("r", op="roll", shifts=(-2,), axes=(0,))
    G.add_node("f", op="flip")
    G.add_edges_from([("c", "r"), ("r", "f")])
    a = rfgraph.analyze(G)
    # c: 5 features, feature i spans rows 2i-1..2i+1; roll by -2: r[o] = c[(o+2) % 5]
    assert a["r"].bounds(0)[0].tolist() == [3, 5, 7, 0, 1]
    # flip: f[o] = r[4-o]
    assert a["f"].bounds(0)[0].tolist() == [1, 0, 7, 5, 3]
    assert (a["f"].n, a["f"].jump) == ((5,), (2,))
    assert "roll by -2" in rfgraph.to_dot(a)
    with pytest.raises(rfgraph.ParameterError, match="shifts"):
        G.nodes["r"]["shifts"] = (1, 2)
        rfgraph.analyze(G)
    G.nodes["r"]["shifts"] = 1
    G.nodes["f"]["axes"] = (3,)
    with pytest.raises(rfgraph.ParameterError, match="not a spatial axis"):
        rfgraph.analyze(G)


# -- ops PyTorch lowers through another rank ---------------------------------------------------------


RANKS = {
    "avgpool1d": (nn.Sequential(conv(nd=1, cin=2), nn.AvgPool1d(3, 2)), (2, 20)),
    "maxpool1d": (nn.Sequential(conv(nd=1, cin=2), nn.MaxPool1d(3, 2)), (2, 20)),
    "maxpool1d_ceil_pad": (nn.Sequential(conv(nd=1), nn.MaxPool1d(4, 3, padding=2, ceil_mode=True)), (1, 19)),
    "avgpool1d_ceil": (Fn(lambda x: F.avg_pool1d(x, 3, 2, padding=1, ceil_mode=True)), (1, 14)),
    "adaptive_avg1d": (nn.Sequential(conv(nd=1), nn.AdaptiveAvgPool1d(5)), (1, 19)),
    "adaptive_max1d": (nn.Sequential(conv(nd=1), nn.AdaptiveMaxPool1d(7)), (1, 19)),
    "interpolate_area1d": (Fn(lambda x: F.interpolate(x, size=6, mode="area")), (1, 17)),
    "interpolate_nearest1d": (nn.Sequential(conv(nd=1), nn.Upsample(scale_factor=3)), (1, 7)),
    "interpolate_linear1d": (Fn(lambda x: F.interpolate(x, size=13, mode="linear", align_corners=True)), (1, 6)),
    "convtranspose1d": (nn.Sequential(conv(nd=1), nn.ConvTranspose1d(2, 1, 4, stride=2, padding=1)), (1, 9)),
    "avgpool3d": (nn.Sequential(conv(nd=3, k=(1, 3, 3)), nn.AvgPool3d((1, 2, 2))), (1, 3, 8, 9)),
    "maxpool3d": (nn.Sequential(conv(nd=3), nn.MaxPool3d(2, ceil_mode=True)), (1, 5, 7, 8)),
    "adaptive3d": (nn.Sequential(conv(nd=3), nn.AdaptiveAvgPool3d((2, 3, 4)), nn.AdaptiveMaxPool3d(2)), (1, 5, 7, 8)),
    "interpolate_trilinear": (Fn(lambda x: F.interpolate(x, scale_factor=2, mode="trilinear")), (1, 3, 4, 3)),
    "interpolate_nearest3d": (Fn(lambda x: F.interpolate(x, size=(4, 7, 5))), (1, 3, 4, 3)),
    "convtranspose3d": (nn.Sequential(conv(nd=3), nn.ConvTranspose3d(2, 1, 3, stride=(1, 2, 2))), (1, 4, 5, 5)),
    "pool1d_over_one_axis_of_a_2d_map": (
        Fn(lambda x, c: F.max_pool1d(c(x).mean(2), 3, 2).unsqueeze(2), conv(k=3)), (1, 6, 13)),
    "conv1d_over_one_axis_of_a_2d_map": (
        Fn(lambda x, c, d: d(c(x).sum(2)).unsqueeze(2), conv(k=3), conv(nd=1, cin=2, k=4, stride=2)), (1, 6, 13)),
}


@pytest.mark.parametrize("name", sorted(RANKS))
def test_ops_lowered_through_another_rank(name):
    module, shape = RANKS[name]
    G, rec = check(module, shape, every=len(shape) <= 3)
    assert "global" not in ops(G) or "over_one_axis" in name


def test_issue_example_1d_pooling():
    G, rec = check(nn.Sequential(nn.Conv1d(2, 2, 3), nn.AvgPool1d(3, 2)), (2, 20))
    # conv k3: rf 3; pool k3 s2: rf 3 + 2*1 = 5, jump 2, n = floor((18 - 3)/2) + 1 = 8
    assert (rec.n, rec.rf, rec.jump, rec.start) == ((8,), (5,), (2,), (2.5,))
    G, rec = check(nn.Sequential(nn.Conv1d(2, 2, 3), nn.MaxPool1d(3, 2)), (2, 20))
    assert (rec.n, rec.rf, rec.jump) == ((8,), (5,), (2,))


# -- every approximation is visible: a node whose map the tracer approximates says so -------------


class FFT(nn.Module):
    def forward(self, x):
        return torch.fft.fft2(x).real


APPROXIMATIONS = {
    # name: (module, input shape); each traces to at least one global node
    "mean": (Fn(lambda x, c: c(x).mean((2, 3)), conv()), (1, 8, 8)),
    "softmax_over_positions": (Fn(lambda x, c: c(x).flatten(2).softmax(-1), conv()), (1, 8, 8)),
    "cat_along_width": (Fn(lambda x, c: torch.cat([c(x), c(x)], 3), conv()), (1, 8, 8)),
    "flatten_linear": (nn.Sequential(conv(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3)), (1, 8, 8)),
    "attention": (Fn(lambda x, c: F.scaled_dot_product_attention(*(c(x).flatten(2).transpose(1, 2),) * 3), conv()),
                  (1, 6, 6)),
    "group_norm": (nn.Sequential(conv(1, 4), nn.GroupNorm(2, 4)), (1, 8, 8)),
    "grid_sample": (Fn(lambda x: F.grid_sample(x, torch.zeros(1, 4, 4, 2, device=x.device, dtype=x.dtype),
                                               align_corners=False)), (1, 8, 8)),
    "repeat": (Fn(lambda x: x.repeat(1, 1, 2, 1)), (1, 8, 8)),
    "roll_flattened": (Fn(lambda x: torch.roll(x, 3)), (1, 8, 8)),
    "flip_of_window_partitions": (Fn(lambda x: torch.flip(x.view(1, 1, 2, 4, 8).transpose(2, 3), (3,))), (1, 8, 8)),
}


@pytest.mark.parametrize("name", sorted(APPROXIMATIONS))
def test_every_global_mapping_has_a_note_naming_the_aten_op(name):
    module, shape = APPROXIMATIONS[name]
    G = rfgraph.from_torch(module, shape)
    glob = [v for v in G if G.nodes[v]["op"] == "global"]
    assert glob, ops(G)
    for v in glob:
        note = G.nodes[v].get("note", "")
        assert G.nodes[v]["target"] in note and note.split(": ", 1)[1], (v, note)


def test_unsupported_policies_leave_a_noted_node():
    with pytest.raises(rfgraph.UnsupportedOpError, match="--on-unsupported"):
        rfgraph.from_torch(FFT(), (1, 8, 8))
    G = rfgraph.from_torch(FFT(), (1, 8, 8), on_unsupported="global")
    glob = [v for v in G if G.nodes[v]["op"] == "global"]
    assert glob and G.nodes[glob[0]]["target"].startswith("aten::_fft")
    for v in glob:  # each op with no rule (the fft, then view_as_real) names itself
        assert G.nodes[v]["target"] in G.nodes[v]["note"] and "on_unsupported='global'" in G.nodes[v]["note"]
    # identity used to pass the input through with no node, so its note was lost
    G = rfgraph.from_torch(FFT(), (1, 8, 8), on_unsupported="identity")
    noted = [v for v in G if "on_unsupported='identity'" in G.nodes[v].get("note", "")]
    assert noted and all(G.nodes[v]["op"] == "identity" for v in noted)
    assert "aten::_fft" in G.nodes[noted[0]]["note"]
    assert not any(rfgraph.analyze(G).output.is_global)


@pytest.mark.parametrize("shape, words", [
    (64, "must be a tuple of positive ints"), ((), "must be a tuple"), ("3,8,8", "must be a tuple"),
    ([(1, 8, 8), 8], "each must be a tuple"), ((1, 8.0, 8), "positive ints")])
def test_input_shape_of_the_wrong_form_is_our_error(shape, words):
    with pytest.raises(rfgraph.ExportError, match=words):
        rfgraph.analyze(conv(), input_shape=shape)


def test_pooling_a_correlation_volume_whose_axes_also_fill_the_batch_dim():
    # RAFT's pyramid: a (H*W, 1, H, W) volume holds fmap1's positions in dim 0 and fmap2's in the
    # last two; pooling it must not give the axes a second, smaller size (a concat then failed)
    def corr(x, c):
        f = c(x).flatten(2)
        vol = (f.transpose(1, 2) @ f).view(64, 1, 8, 8)
        return torch.cat([vol.view(1, 64, -1), F.avg_pool2d(vol, 2).view(1, 64, -1)], 2)

    G = rfgraph.from_torch(Fn(corr, conv(k=3, padding=1)), (1, 8, 8))
    assert all(rfgraph.analyze(G).output.is_global)


# -- the oracle itself: a gate past the float64 saturation of its sigmoid -------------------------


@pytest.mark.parametrize("gate", [nn.Sigmoid, nn.Hardsigmoid, nn.Tanh])
def test_a_saturated_gate_still_shows_in_the_gradient_support(gate):
    # squeeze-and-excitation whose gate input is ~100 (EfficientNet V2's reach 270-790 with
    # positive weights): sigmoid's float64 gradient is exactly 0 there, so the measured support
    # lost the gate's global read (rows 7..9 for the feature at row 8, not 0..15); verify swaps it for one
    # whose gradient never vanishes
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc, self.gate = conv(1, 4, 3, padding=1), conv(4, 4, 1), gate()

        def forward(self, x):
            y = self.conv(x)
            return y * self.gate(100 * self.fc(y.mean((2, 3), keepdim=True)))

    G, rec = check(Gated(), (1, 16, 12), every=False)
    assert all(rec.is_global)


@pytest.mark.parametrize("form", ["method", "functional", "module", "fused"])
def test_saturated_attention_still_shows_in_the_gradient_support(form):
    # attention scores of positive weights that differ by hundreds (a deep residual stack:
    # Visformer at 224): float64 softmax gives all keys but one a weight and a gradient of
    # exactly 0, so the measured support of a token was its own pixels, not the whole map;
    # verify measures with softplus normalised instead (same dependencies, never saturates)
    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.soft = conv(1, 4, 3, padding=1), nn.Softmax(-1)

        def forward(self, x):
            t = self.conv(x).flatten(2).transpose(1, 2)  # (N, HW, C)
            if form == "fused":
                y = nn.functional.scaled_dot_product_attention(t, t, t, scale=1e4)
            else:
                s = 1e4 * t @ t.transpose(1, 2)
                w = {"method": lambda: s.softmax(-1), "functional": lambda: nn.functional.softmax(s, -1),
                     "module": lambda: self.soft(s)}[form]()
                y = w @ t
            return y.transpose(1, 2).reshape(x.shape[0], 4, *x.shape[2:])

    G, rec = check(Attend(), (1, 8, 6), every=False)
    assert all(rec.is_global)


def test_an_overflowing_positive_copy_is_reported_not_compared():
    # StarNet multiplies two branches in every block: with positive weights the activations
    # square each time and pass float64's range (inf, no gradient), which once read as
    # "gradient support empty" mismatches at every checked feature
    from rfgraph.errors import RFGraphError
    from rfgraph.tools.verify import compare

    class Star(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList(conv(1 if i == 0 else 2, 2, 3, padding=1) for i in range(12))

        def forward(self, x):
            for c in self.convs:
                x = c(x) * c(x) * 1e3
            return x

    net = Star()
    rec = rfgraph.analyze(rfgraph.from_torch(net, (1, 8, 8))).output
    with pytest.raises(RFGraphError, match="overflows .* at the model's output"):
        compare(positive_copy(net), (1, 8, 8), {None: rec})
