"""Each torch op mapping, checked against gradient support on the same module.

For every small module below, rfgraph's exact bounds of the output (clip=True) must equal the
gradient support's hull at every checked position, and the output size must equal torch's.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: checked against gradient support in PyTorch")

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import rfgraph  # noqa: E402
from rfgraph.tools.verify import hull, positive_copy, support  # noqa: E402


class Fn(nn.Module):
    def __init__(self, fn, *mods):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleList(mods)

    def forward(self, x):
        return self.fn(x, *self.mods)


def conv(cin=1, cout=2, k=3, nd=2, **kw):
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[nd](cin, cout, k, **kw)


CASES = {
    # name: (module, input shape (C, *spatial), expected canonical ops present)
    "conv2d_dilated_strided": (conv(k=3, stride=2, dilation=2, padding=1), (1, 17, 15), {"conv"}),
    "conv1d": (conv(nd=1, k=5, stride=2, padding=2), (1, 31), {"conv"}),
    "conv3d": (conv(nd=3, k=(1, 3, 3), padding=(0, 1, 1), stride=(1, 2, 2)), (1, 4, 9, 9), {"conv"}),
    "grouped_depthwise": (nn.Sequential(conv(1, 4, 1), nn.Conv2d(4, 4, 3, padding=1, groups=4)), (1, 12, 12), {"conv"}),
    "asymmetric_kernel_padding": (conv(k=(1, 7), padding=(0, 3)), (1, 9, 16), {"conv"}),
    "explicit_pad_then_conv": (Fn(lambda x, c: c(F.pad(x, (0, 1, 2, 0))), conv(k=3, stride=2)), (1, 12, 12), {"pad", "conv"}),
    "reflect_pad": (Fn(lambda x, c: c(F.pad(x, (2, 2, 2, 2), mode="reflect")), conv(k=3)), (1, 10, 10), {"pad"}),
    "replicate_pad": (Fn(lambda x, c: c(F.pad(x, (1, 3, 0, 2), mode="replicate")), conv(k=3)), (1, 10, 10), {"pad"}),
    "conv_padding_mode_circular": (conv(k=3, padding=1, padding_mode="circular"), (1, 9, 9), {"conv"}),
    "transposed_conv": (nn.Sequential(conv(k=3, padding=1), nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1)), (1, 8, 8), {"convtranspose"}),
    "transposed_conv_k4s2": (nn.ConvTranspose2d(1, 1, 4, stride=2, padding=1), (1, 7, 7), {"convtranspose"}),
    "maxpool_ceil": (nn.MaxPool2d(3, 2, padding=1, ceil_mode=True), (1, 14, 13), {"maxpool"}),
    "avgpool": (nn.AvgPool2d(2), (1, 11, 11), {"avgpool"}),
    "functional_maxpool": (Fn(lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True)), (1, 16, 16), {"maxpool"}),
    "adaptive_avg": (nn.AdaptiveAvgPool2d((3, 5)), (1, 10, 11), {"adaptive_avgpool"}),
    "adaptive_max": (nn.AdaptiveMaxPool2d(4), (1, 9, 9), {"adaptive_maxpool"}),
    "mean_spatial": (Fn(lambda x: x.mean((2, 3), keepdim=True)), (1, 6, 6), {"global"}),
    "residual_add_sub": (Fn(lambda x, a, b: a(x) - b(x), conv(k=3, padding=1), conv(k=1)), (1, 10, 10), {"add"}),
    "mul_div": (Fn(lambda x, a, b: a(x) * b(x) / (b(x) + 1), conv(k=3, padding=1), conv(k=5, padding=2)), (1, 10, 10), {"mul"}),
    "cat_stack": (Fn(lambda x, a, b: torch.stack([torch.cat([a(x), b(x)], 1)], 0).sum(0), conv(k=3, padding=1), conv(k=1)), (1, 8, 8), {"concat"}),
    "activations_norms": (nn.Sequential(conv(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.GELU(), nn.SiLU(), nn.Hardswish(), nn.LeakyReLU(), nn.Dropout()), (1, 9, 9), {"identity"}),
    "upsample_nearest_scale": (nn.Sequential(conv(k=3), nn.Upsample(scale_factor=2)), (1, 7, 7), {"upsample"}),
    "upsample_nearest_size": (Fn(lambda x: F.interpolate(x, size=(11, 5))), (1, 7, 7), {"upsample"}),
    "upsample_bilinear": (nn.Upsample(scale_factor=2, mode="bilinear"), (1, 6, 6), {"upsample"}),
    "upsample_bilinear_align": (Fn(lambda x: F.interpolate(x, size=(9, 13), mode="bilinear", align_corners=True)), (1, 5, 6), {"upsample"}),
    "upsample_bicubic": (Fn(lambda x: F.interpolate(x, scale_factor=2, mode="bicubic")), (1, 6, 6), {"upsample"}),
    "upsample_linear1d": (Fn(lambda x: F.interpolate(x, size=17, mode="linear")), (1, 7), {"upsample"}),
    "strided_slice": (Fn(lambda x, c: c(x)[:, :, 1::2, ::3], conv(k=3, padding=1)), (1, 12, 12), {"slice"}),
    "pixel_shuffle": (nn.Sequential(conv(1, 4, 3, padding=1), nn.PixelShuffle(2)), (1, 6, 6), {"upsample"}),
    "pixel_unshuffle": (nn.Sequential(nn.PixelUnshuffle(2), nn.Conv2d(4, 1, 3)), (1, 10, 10), {"avgpool"}),
    "channel_shuffle": (Fn(lambda x, c: c(x).view(1, 2, 2, 8, 8).transpose(1, 2).reshape(1, 4, 8, 8), conv(1, 4, 3, padding=1)), (1, 8, 8), {"conv"}),
    "channels_last_linear": (Fn(lambda x, c, l: l(c(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2), conv(1, 4, 3), nn.Linear(4, 2)), (1, 9, 9), {"identity"}),
    "flatten_linear": (nn.Sequential(conv(k=3), nn.Flatten(), nn.Linear(2 * 7 * 7, 3)), (1, 9, 9), {"global"}),
    "roll": (Fn(lambda x, c: c(torch.roll(x, shifts=(2, -3), dims=(2, 3))), conv(k=3)), (1, 10, 10), {"roll"}),
    "split_spatial": (Fn(lambda x, c: torch.split(c(x), 4, dim=3)[1], conv(k=3, padding=1)), (1, 8, 12), {"slice"}),
    "chunk_channels": (Fn(lambda x, c: c(x).chunk(2, dim=1)[0], conv(1, 4, 3)), (1, 8, 8), {"conv"}),
    "squeeze_excitation": (Fn(lambda x, c, f: c(x) * torch.sigmoid(f(c(x).mean((2, 3), keepdim=True))), conv(1, 2, 3), nn.Conv2d(2, 2, 1)), (1, 8, 8), {"mul", "global"}),
    "attention": (Fn(lambda x, c: F.scaled_dot_product_attention(*(c(x).flatten(2).transpose(1, 2).unsqueeze(1),) * 3), conv(1, 4, 3)), (1, 6, 6), {"global"}),
    "group_norm": (nn.Sequential(conv(1, 4, 3), nn.GroupNorm(2, 4)), (1, 8, 8), {"global"}),
    "instance_norm": (nn.Sequential(conv(1, 4, 3), nn.InstanceNorm2d(4)), (1, 8, 8), {"global"}),
}


def _positions(n):
    """A few positions per axis: both ends and the middle."""
    return sorted({0, n // 2, n - 1})


@pytest.mark.parametrize("name", sorted(CASES))
def test_op_mapping_matches_gradient_support(name):
    module, shape, ops = CASES[name]
    torch.manual_seed(0)
    G = rfgraph.from_torch(module, shape)
    present = {G.nodes[v]["op"] for v in G}
    assert ops <= present, f"{name}: expected ops {ops} in {present}"
    a = rfgraph.analyze(G)
    [out] = G.graph["outputs"]
    rec = a[out]
    m = positive_copy(module)
    with torch.no_grad():
        y = m(torch.rand((1,) + shape, dtype=torch.float64) + 0.5)
    spatial = tuple(y.shape[2:]) if y.dim() >= 2 + len(shape) - 1 else None
    if spatial is not None and len(spatial) == len(shape) - 1:
        n_expected = tuple(1 if (g and s == 1) else s for s, g in zip(spatial, rec.is_global))
        assert tuple(rec.n) == n_expected or all(rec.is_global), (rec.n, spatial)
    else:  # the output has no spatial dims left: it must be global
        assert all(rec.is_global)
        return
    grids = [_positions(n) for n in rec.n]
    positions = [tuple(p) for p in np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(grids), -1).T]
    masks = support(m, None, shape, positions)
    bounds = [rec.bounds(ax) for ax in range(rec.naxes)]
    for pos, mask in zip(positions, masks):
        h = hull(mask)
        for ax in range(rec.naxes):
            lo, hi, _ = h[ax]
            assert (bounds[ax][0][pos[ax]], bounds[ax][1][pos[ax]]) == (lo, hi), (name, pos, ax)
        full = all(lo == 0 and hi == mask.shape[ax] - 1 for ax, (lo, hi, _) in enumerate(h))
        if all(rec.is_global):
            assert full, (name, pos)


def test_unsupported_op_raises_with_context():
    class Weird(nn.Module):
        def forward(self, x):
            return torch.fft.fft2(x).real

    with pytest.raises(rfgraph.UnsupportedOpError) as info:
        rfgraph.from_torch(Weird(), (1, 8, 8))
    msg = str(info.value)
    assert "aten::_fft" in msg and "register_torch_op" in msg and "on_unsupported" in msg
    assert "test_torch_ops.py" in msg  # the user's source line
    G = rfgraph.from_torch(Weird(), (1, 8, 8), on_unsupported="global")
    rec = rfgraph.analyze(G).output
    assert all(rec.is_global) and "treated as global" in G.nodes[rec.name]["note"]
    G = rfgraph.from_torch(Weird(), (1, 8, 8), on_unsupported="identity")
    assert not any(rfgraph.analyze(G).output.is_global)


def test_names_are_module_qualnames_and_module_lookup():
    torchvision = pytest.importorskip("torchvision", reason="needs torchvision")

    with torch.device("meta"):
        m = torchvision.models.resnet18(weights=None)
    G = rfgraph.from_torch(m, (3, 224, 224))
    for name in ("conv1", "bn1", "maxpool", "layer1.0.conv1", "layer3.1.conv2", "layer1.0.add", "fc"):
        assert name in G, name
    assert G.nodes["layer3.1.conv2"]["module"] == "layer3.1.conv2"
    assert G.nodes["layer1.0.add"]["source"].endswith(".py:" + G.nodes["layer1.0.add"]["source"].rsplit(":", 1)[1])
    a = rfgraph.analyze(G)
    # layer3 ends with layer3.1's final relu; its RF is documented torchvision lore: 211 at jump 16
    rec = a.module("layer3")
    assert rec.jump == (16, 16) and rec.rf == (211, 211)
    assert a.module("layer3").name == G.graph["module_outputs"]["layer3"]
    with pytest.raises(KeyError, match="no module named 'layer9'"):
        a.module("layer9")


def test_a_module_shared_by_several_parents_is_named_after_each_call_site():
    # ultralytics' Conv blocks hold one SiLU between them: each call is the block's own "act",
    # not the first block's "act" with a suffix; a module called twice by one parent (a
    # ResNet block's relu) still gets a suffix
    act = nn.ReLU()

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.act = nn.Conv2d(2, 2, 3, padding=1), act

        def forward(self, x):
            return self.act(self.act(self.conv(x)))

    net = nn.Sequential(nn.Conv2d(1, 2, 1), Block(), Block())
    G = rfgraph.from_torch(net, (1, 8, 8))
    assert [v for v in G if "act" in v] == ["1.act", "1.act_1", "2.act", "2.act_1"]
    assert G.nodes["2.act"]["module"] == "2.act"
    outs = G.graph["module_outputs"]
    assert outs["1.act"] == "1.act_1" and outs["2.act"] == "2.act_1" and outs["2"] == "2.act_1"
    # a shared module called by a module that does not hold it keeps its first qualname
    net = Fn(lambda x, c, b: b.act(c(x)), nn.Conv2d(1, 2, 1), Block())
    assert "mods.1.act" in rfgraph.from_torch(net, (1, 8, 8))


def test_ultralytics_shared_activation_is_named_after_its_conv():
    tasks = pytest.importorskip("ultralytics.nn.tasks", reason="ultralytics is not installed")
    model = tasks.DetectionModel("yolov8n.yaml", verbose=False)  # its constructor runs a forward: on the CPU
    G = rfgraph.from_torch(model, (3, 256, 256))
    acts = [v for v in G if G.nodes[v]["op"] == "identity" and v.endswith(".act")]
    assert "model.0.act" in acts and "model.1.act" in acts and "model.22.cv2.0.1.act" in acts
    assert not [v for v in G if v.startswith("model.0.act_")]
    assert all(G.nodes[v]["module"] == v for v in acts)


def test_model_is_not_modified():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rfgraph.from_torch(net, (1, 8, 8))
    assert net.training and all(m.training for m in net.modules())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert next(net.parameters()).device.type == "cpu"


@pytest.mark.parametrize("shape, words", [((8, 8), "too few dims"), ((1, 2, 2), "too small"), ((2, 8, 8), "channels come first")])
def test_bad_input_shape(shape, words):
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Conv2d(2, 2, 3))
    with pytest.raises(rfgraph.ExportError) as info:
        rfgraph.from_torch(net, shape)
    assert words in str(info.value)


def test_batch_dimension_accepted_and_analyze_module_directly():
    net = nn.Sequential(nn.Conv2d(3, 2, 3, stride=2))
    a = rfgraph.analyze(net, input_shape=(1, 3, 17, 17))
    assert a.output.n == (8, 8) and a.output.rf == (3, 3)


def test_two_inputs_optical_flow_style():
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 2, 3)
            self.b = nn.Conv2d(1, 2, 5, padding=1)

        def forward(self, x, y):
            return self.a(x) + self.b(y)

    G = rfgraph.from_torch(Two(), [(1, 12, 12), (1, 12, 12)])
    rec = rfgraph.analyze(G).output
    assert rec.rf == (5, 5) and rec.n == (10, 10)
