"""torchvision models exported to ONNX give the same receptive fields as the torch front-end.

Each model is exported with both of torch's exporters (random weights, CPU): the TorchScript
exporter (``dynamo=False``) at opsets 13 and 18, and the dynamo exporter (``dynamo=True``, which
needs ``onnxscript``) at opset 18. The file is read back with :func:`rfgraph.from_onnx`, and every
stage (top-level module) is compared with :func:`rfgraph.from_torch` on the same model: n, jump,
rf, start and is_global identical; for the dynamo exporter, whose module scopes come from
``metadata_props``, every module it recorded is compared too. A few models run by default; the
sweep is marked slow. No dynamo exporter at opset 13: torch 2.14's (onnxscript 0.7) exports
opset 18 and down-converts, which fails on ReduceMean's axes input (resnet18, squeezenet1_0,
mobilenet_v2, vgg11) and leaves the file at opset 18, the case already here.
"""

import contextlib
import io
import warnings

import pytest

onnx = pytest.importorskip("onnx", reason="needs the onnx package: pip install 'rfgraph[onnx]'")
torch = pytest.importorskip("torch", reason="needs torch to export the models")
torchvision = pytest.importorskip("torchvision", reason="needs torchvision")

import rfgraph  # noqa: E402
from rfgraph.render.stages import stages  # noqa: E402

QUICK = [("resnet18", 64), ("squeezenet1_0", 64), ("mobilenet_v2", 64)]

SWEEP = [
    # VGG and AlexNet at 224: the exporter refuses an adaptive pooling whose size does not divide
    ("alexnet", 224), ("vgg11", 224), ("regnet_x_1_6gf", 64), ("resnet34", 64), ("resnet50", 64), ("resnet101", 64),
    ("resnext50_32x4d", 64), ("wide_resnet50_2", 64), ("squeezenet1_1", 64), ("mobilenet_v3_small", 64),
    ("mobilenet_v3_large", 64), ("mnasnet0_5", 64), ("mnasnet1_0", 64), ("shufflenet_v2_x0_5", 64),
    ("shufflenet_v2_x1_0", 64), ("densenet121", 64), ("densenet169", 64), ("efficientnet_b0", 64),
    ("efficientnet_b1", 64), ("efficientnet_v2_s", 64), ("regnet_x_400mf", 64), ("regnet_y_400mf", 64),
    ("regnet_y_800mf", 64), ("googlenet", 64), ("inception_v3", 96), ("convnext_tiny", 64),
    ("resnet152", 64), ("efficientnet_b2", 64), ("mobilenet_v2", 96), ("resnet18", 97), ("regnet_x_800mf", 64),
    ("mnasnet0_75", 64), ("swin_t", 224), ("maxvit_t", 224),
]
EXPORTERS = [("torchscript", 13), ("torchscript", 18), ("dynamo", 18)]


def export(model, size, opset, exporter="torchscript", shape=None):
    x = (torch.randn(*(shape or (1, 3, size, size))),)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            pytest.importorskip("onnxscript", reason="the dynamo exporter needs onnxscript: pip install 'rfgraph[onnx]'")
            prog = torch.onnx.export(model, x, dynamo=True, opset_version=opset, verbose=False)
            return prog.model_proto.SerializeToString()
        buf = io.BytesIO()
        torch.onnx.export(model, x, buf, dynamo=False, opset_version=opset)
        return buf.getvalue()


def build(name):
    torch.manual_seed(0)
    kw = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    return torchvision.models.get_model(name, weights=None, **kw).eval()


def record(a, module):
    r = a.module(module)
    return r.n, r.jump, r.rf, r.start, r.is_global


def compare(name, size, opset, exporter="torchscript", data=None):
    model = build(name)
    g_onnx = rfgraph.from_onnx(data or export(model, size, opset, exporter))
    a_onnx = rfgraph.analyze(g_onnx)
    a_torch = rfgraph.analyze(rfgraph.from_torch(model, (3, size, size)))
    if exporter == "dynamo":  # its scopes are full qualnames: every recorded module is a torch module
        mods = g_onnx.graph["module_outputs"]
        assert len(mods) > 5, (name, list(mods))
        for m in mods:
            assert record(a_onnx, m) == record(a_torch, m), (name, exporter, m)
    top = stages(a_torch)
    assert top, name
    checked = 0
    for stage in top:
        try:
            r1 = a_onnx.module(stage)
        except KeyError:  # the exporter dropped the module (eval-mode dropout, a Conv fused into its BN)
            continue
        r2 = a_torch.module(stage)
        got = (r1.n, r1.jump, r1.rf, r1.start, r1.is_global)
        want = (r2.n, r2.jump, r2.rf, r2.start, r2.is_global)
        assert got == want, (name, exporter, opset, stage, got, want)
        checked += 1
    assert checked >= len(top) - 2, (name, checked, list(top))
    return checked


@pytest.mark.parametrize("opset", [13, 18])
@pytest.mark.parametrize("name, size", QUICK)
def test_exported_model_stages_match_torch_frontend(name, size, opset):
    compare(name, size, opset)


def test_dynamo_exported_resnet_matches_torch_frontend(tmp_path, capsys):
    """The dynamo exporter fuses each BatchNorm into its Conv (the fused node keeps the
    BatchNorm's scope, so ``conv1`` itself is gone) and names nodes ``node_Conv_292``: the modules
    come from ``pkg.torch.onnx.name_scopes``, and ``--at layer3`` works."""
    from rfgraph.cli import main

    data = export(build("resnet18"), 64, 18, "dynamo")
    assert compare("resnet18", 64, 18, "dynamo", data) >= 9
    path = tmp_path / "resnet18.onnx"
    path.write_bytes(data)
    assert main(["analyze", str(path), "--at", "layer3"]) == 0
    out = capsys.readouterr().out
    assert "module      layer3" in out and "rf          211" in out and "jump        16" in out


def test_at_layer3_on_an_exported_resnet(tmp_path, capsys):
    from rfgraph.cli import main

    path = tmp_path / "resnet18.onnx"
    path.write_bytes(export(build("resnet18"), 224, 13))
    assert main(["analyze", str(path), "--at", "layer3"]) == 0
    out = capsys.readouterr().out
    assert "module      layer3" in out and "rf          211" in out and "jump        16" in out


@pytest.mark.slow
@pytest.mark.parametrize("exporter, opset", EXPORTERS)
@pytest.mark.parametrize("name, size", SWEEP)
def test_zoo_exported_models_match_torch_frontend(name, size, exporter, opset):
    compare(name, size, opset, exporter)


class _Stage(torch.nn.Module):
    """A torchvision Swin's stages, output as a (N, C, H, W) map."""

    def __init__(self, v2, depths):
        super().__init__()
        tv = torchvision.models.swin_transformer
        torch.manual_seed(0)
        self.m = tv.SwinTransformer(patch_size=[2, 2], embed_dim=4, depths=depths, num_heads=[1] * len(depths),
                                    window_size=[4, 4], mlp_ratio=1.0,
                                    block=tv.SwinTransformerBlockV2 if v2 else tv.SwinTransformerBlock).eval()

    def forward(self, x):
        return self.m.features(x).permute(0, 3, 1, 2)


@pytest.mark.parametrize("v2", [False, True])
@pytest.mark.parametrize("hw, exporter, opset", [((20, 20), "torchscript", 17), ((20, 8), "torchscript", 17),
                                                 ((20, 8), "dynamo", 18)])
def test_exported_swin_windows_are_followed_exactly(hw, exporter, opset, v2):
    # the exported shifted-window attention: the window padding computed with Mod on the shape
    # (folded), torch.roll as two Slices and a Concat (a roll; by 0 along an axis one window
    # spans), the partition as Reshape/Transpose and the attention as MatMuls within windows.
    # Every feature's bounds equal the torch front-end's, and gradient support agrees
    from rfgraph.tools.verify import hull, positive_copy, support

    net = _Stage(v2, [2])
    go = rfgraph.from_onnx(export(net, None, opset, exporter, shape=(1, 3, *hw)))
    assert not [v for v in go if go.nodes[v]["op"] == "global"]
    assert {"roll", "avgpool", "upsample"} <= {go.nodes[v]["op"] for v in go}
    r_onnx = rfgraph.analyze(go)[go.graph["outputs"][0]]
    a_torch = rfgraph.analyze(rfgraph.from_torch(net, (3, *hw)))
    r_torch = a_torch[a_torch.graph.graph["outputs"][0]]
    assert r_onnx.n == r_torch.n and r_onnx.is_global == r_torch.is_global
    for ax in range(2):
        for got, want in zip(r_onnx.bounds(ax), r_torch.bounds(ax)):
            assert (got == want).all(), (ax, got, want)
    positions = [(0, 0), (r_onnx.n[0] // 2, r_onnx.n[1] // 2), (r_onnx.n[0] - 1, r_onnx.n[1] - 1)]
    for p, mask in zip(positions, support(positive_copy(net), None, (3, *hw), positions)):
        for ax, (lo, hi, _) in enumerate(hull(mask)):
            assert (r_onnx.bounds(ax)[0][p[ax]], r_onnx.bounds(ax)[1][p[ax]]) == (lo, hi), (p, ax)


class _EinsumWindows(torch.nn.Module):
    """Window attention written with einsum (MaxViT's form): q·kᵀ and weights @ v per window."""

    def __init__(self, dim=4, s=4):
        super().__init__()
        self.s, self.conv, self.qkv = s, torch.nn.Conv2d(3, dim, 3, padding=1), torch.nn.Linear(dim, 3 * dim)

    def forward(self, x):
        y = self.conv(x)
        n, c, h, w = y.shape
        s = self.s
        win = y.view(n, c, h // s, s, w // s, s).permute(0, 2, 4, 3, 5, 1).reshape(-1, s * s, c)
        q, k, v = self.qkv(win).reshape(win.shape[0], s * s, 3, 1, c).permute(2, 0, 3, 1, 4).unbind(0)
        attn = torch.einsum("bhid,bhjd->bhij", q, k).softmax(-1)
        o = torch.einsum("bhij,bhjd->bhid", attn, v).transpose(1, 2).reshape(-1, s * s, c)
        return o.view(n, h // s, w // s, s, s, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, h, w)


@pytest.mark.parametrize("exporter, opset", [("torchscript", 17), ("dynamo", 18)])
def test_exported_einsum_attention_within_windows_is_exact(exporter, opset):
    torch.manual_seed(0)
    net = _EinsumWindows().eval()
    go = rfgraph.from_onnx(export(net, None, opset, exporter, shape=(1, 3, 12, 8)))
    assert not [v for v in go if go.nodes[v]["op"] == "global"]
    _assert_output_like_torch_and_support(go, net, (3, 12, 8))


def _assert_output_like_torch_and_support(go, net, shape):
    """The ONNX graph's output has the torch front-end's bounds at every feature, and gradient
    support's at the corners and the middle; returns its record."""
    from rfgraph.tools.verify import hull, positive_copy, support

    rec = rfgraph.analyze(go)[go.graph["outputs"][0]]
    a_torch = rfgraph.analyze(rfgraph.from_torch(net, shape))
    want = a_torch[a_torch.graph.graph["outputs"][0]]
    for ax in range(2):
        for got, exp in zip(rec.bounds(ax), want.bounds(ax)):
            assert (got == exp).all()
    assert rec.is_global == want.is_global
    positions = [(0, 0), (shape[1] // 2, shape[2] // 2), (shape[1] - 1, shape[2] - 1)]
    for p, mask in zip(positions, support(positive_copy(net), None, shape, positions)):
        for ax, (lo, hi, _) in enumerate(hull(mask)):
            assert (rec.bounds(ax)[0][p[ax]], rec.bounds(ax)[1][p[ax]]) == (lo, hi), (p, ax)
    return rec


def test_an_einsum_that_is_not_a_matrix_product_is_reported():
    from rfgraph.errors import UnsupportedOpError

    class Three(torch.nn.Module):
        def forward(self, x):
            y = x.flatten(2)  # (N, C, HW)
            return torch.einsum("ncp,ndp,nep->ncde", y, y, y).flatten(2).unsqueeze(-1)

    with pytest.raises(UnsupportedOpError, match="Einsum.*not a two-operand product"):
        rfgraph.from_onnx(export(Three(), None, 17, shape=(1, 2, 4, 4)))


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("exporter, opset", [("torchscript", 17), ("dynamo", 18)])
def test_exported_attention_onto_reduced_keys_is_exact(exporter, opset, fused):
    # keys and values from a strided conv over the tokens (PVT, SegFormer): once refused (a join
    # of the 10 x 8 queries with the 3 x 2 keys); a query reads its own position and every key
    from test_torch_layouts import ReducedAttention

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), ReducedAttention(fused=fused)).eval()
    go = rfgraph.from_onnx(export(net, None, opset, exporter, shape=(1, 3, 10, 8)))
    assert _assert_output_like_torch_and_support(go, net, (3, 10, 8)).is_global == (False, False)


class _EinsumByTable(torch.nn.Module):
    """MViT's relative positions: each position's channels times a learned table of its row
    (``bhwc,hkc->bhwk``), then a 3x3 conv: the einsum reads each position alone."""

    def __init__(self, h=6, c=4):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, c, 3, padding=1)
        self.table = torch.nn.Parameter(torch.rand(h, 5, c))
        self.mix = torch.nn.Conv2d(5, 2, 3, padding=1)

    def forward(self, x):
        y = self.conv(x).permute(0, 2, 3, 1)  # (N, H, W, C)
        r = torch.einsum("bhwc,hkc->bhwk", y, self.table)
        return self.mix(r.permute(0, 3, 1, 2))


@pytest.mark.parametrize("exporter, opset", [("torchscript", 17), ("dynamo", 18)])
def test_exported_einsum_with_a_constant_reads_each_position(exporter, opset):
    torch.manual_seed(0)
    net = _EinsumByTable().eval()
    go = rfgraph.from_onnx(export(net, None, opset, exporter, shape=(1, 3, 6, 7)))
    assert "global" not in [go.nodes[v]["op"] for v in go]
    assert _assert_output_like_torch_and_support(go, net, (3, 6, 7)).rf == (5, 5)


class _SliceAssign(torch.nn.Module):
    """``y[:, :, 0:, 0:] = f(y)`` (timm's MViT writes its relative positions so): the TorchScript
    exporter writes it as a ScatterND that overwrites every element in order."""

    def __init__(self, start=0):
        super().__init__()
        self.start = start
        self.a, self.b = torch.nn.Conv2d(3, 2, 3, padding=1), torch.nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        y = self.a(x)
        z = y.clone()
        z[:, :, self.start:, self.start:] = self.b(y)[:, :, self.start:, self.start:]
        return z


@pytest.mark.parametrize("start", [0, 2])
def test_exported_slice_assignment(start):
    torch.manual_seed(0)
    net = _SliceAssign(start).eval()
    go = rfgraph.from_onnx(export(net, None, 17, "torchscript", shape=(1, 3, 6, 7)))
    ops = [go.nodes[v]["op"] for v in go]
    if start == 0:  # every element overwritten, in order: the output is the second conv's
        assert "global" not in ops
        _assert_output_like_torch_and_support(go, net, (3, 6, 7))
    else:  # a part: not followed, and said so
        [g] = [v for v in go if go.nodes[v]["op"] == "global"]
        assert "ScatterND" in go.nodes[g]["note"]


def test_exported_xcit_class_attention_before_the_grid():
    # XCiT's class-attention blocks concatenate the class token's output, whose dims hold no
    # positions, before the grid's tokens: the Concat read the first input's dims and was
    # refused (a join of a 1 x 1 map with the 14 x 14 grid); the grid modules now equal the
    # torch front-end
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    net = timm.create_model("xcit_nano_12_p16_224", pretrained=False).eval()
    go = rfgraph.from_onnx(export(net, None, 17, "torchscript", shape=(1, 3, 224, 224)))
    ao, at = rfgraph.analyze(go), rfgraph.analyze(rfgraph.from_torch(net, (3, 224, 224)))
    for m in ("patch_embed", "blocks.0", "blocks.11", "cls_attn_blocks.1"):
        assert record(ao, m)[1:] == record(at, m)[1:], m  # n: a class token and a grid, a convention


@pytest.mark.parametrize("attention", [False, True])
@pytest.mark.parametrize("exporter, opset", [("torchscript", 17), ("dynamo", 18)])
def test_exported_mobilevit_unfold_is_followed(exporter, opset, attention):
    # MobileViT merges the channels with H's coarse piece ((N*C*H/2, 2, W/2, 2)); read as
    # scrambled, the layer norm over each token's channels was global, the maps after it kept the
    # wrong size, and at 13 x 11 (resized to 14 x 12 and back) the block's concat was refused
    from test_torch_layouts import _mobilevit_block

    net = _mobilevit_block(attention)
    go = rfgraph.from_onnx(export(net, None, opset, exporter, shape=(1, 4, 13, 11)))
    assert "global" not in [go.nodes[v]["op"] for v in go]
    _assert_output_like_torch_and_support(go, net, (4, 13, 11))


@pytest.mark.parametrize("exporter, opset", [("torchscript", 17), ("dynamo", 18)])
def test_exported_conv_on_each_window(exporter, opset):
    # EfficientViT-M's local window attention, with its depthwise conv on each window's queries:
    # once global (a conv over merged spatial dims); padded to whole windows and cropped back
    msra = pytest.importorskip("timm.models.efficientvit_msra")
    torch.manual_seed(0)
    attn = msra.LocalWindowAttention(8, 4, num_heads=2, attn_ratio=1, resolution=10, window_resolution=4,
                                     kernels=(3, 3))
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), attn).eval()
    go = rfgraph.from_onnx(export(net, None, opset, exporter, shape=(1, 1, 10, 9)))
    ops = [go.nodes[v]["op"] for v in go]
    assert "window_conv" in ops and "global" not in ops
    _assert_output_like_torch_and_support(go, net, (1, 10, 9))
