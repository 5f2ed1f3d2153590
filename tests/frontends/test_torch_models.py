"""rfgraph on real networks against gradient support measured on the same torch module.

For each checked module output, at the centre feature (and its neighbour): the exact bounds must
equal the support's hull; where the support stays inside the input, ``rf``, ``start`` and ``jump``
must match it exactly; ``is_global`` must agree with whether the support covers the input.
The torchvision sweep is marked slow (``make test-all``); a quick subset runs by default.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs torch: checked against gradient support in PyTorch")

import torch.nn as nn  # noqa: E402

import rfgraph  # noqa: E402
from rfgraph.tools.verify import hull, positive_copy, support  # noqa: E402


def check_module(model, input_shape, module_name, analysis=None, G=None):
    """Compare rfgraph with the oracle at ``module_name``'s centre feature and its neighbour."""
    if analysis is None:
        G = rfgraph.from_torch(model, input_shape)
        analysis = rfgraph.analyze(G)
    rec = analysis.module(module_name)
    centre = tuple(n // 2 for n in rec.n)
    nxt = tuple(min(c + 1, n - 1) for c, n in zip(centre, rec.n))
    # a feature whose RF does not cover the input, if any: is_global must then be False
    lo0, hi0 = rec.bounds(0)
    positions = [centre, nxt]
    masks = support(model, module_name, input_shape, positions)
    hulls = [hull(m) for m in masks]
    N = input_shape[1:]
    for pos, h, mask in zip(positions, hulls, masks):
        for ax in range(rec.naxes):
            lo, hi = rec.bounds(ax)
            assert (lo[pos[ax]], hi[pos[ax]]) == h[ax][:2], (module_name, pos, ax, h[ax])
            inside = h[ax][0] > 0 and h[ax][1] < N[ax] - 1
            if inside and rec.exact[ax] and not any(rec.is_global):
                assert rec.rf[ax] == h[ax][1] - h[ax][0] + 1, (module_name, ax)
                assert rec.start[ax] + pos[ax] * rec.jump[ax] == (h[ax][0] + h[ax][1] + 1) / 2, (module_name, ax)
        covers = bool(mask.all())
        if all(rec.is_global):
            assert covers, (module_name, pos)
    for ax in range(rec.naxes):
        (l0, h0, _), (l1, h1, _) = hulls[0][ax], hulls[1][ax]
        interior = l0 > 0 and h1 < N[ax] - 1 and positions[1][ax] == positions[0][ax] + 1
        if interior and rec.exact[ax] and not rec.is_global[ax]:
            assert l1 - l0 == rec.jump[ax] and h1 - h0 == rec.jump[ax], (module_name, ax)
    return rec


def torchvision_model(name, **kw):
    torchvision = pytest.importorskip("torchvision", reason="needs torchvision")

    torch.manual_seed(0)
    return positive_copy(torchvision.models.get_model(name, weights=None, **kw))


class UNetToy(nn.Module):
    """Two levels down (conv + maxpool), two up (transposed conv), skip concats."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1), nn.ReLU())
        self.bottom = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(2, 2, 3, padding=1))
        self.up2 = nn.ConvTranspose2d(2, 2, 2, stride=2)
        self.dec2 = nn.Conv2d(4, 2, 3, padding=1)
        self.up1 = nn.ConvTranspose2d(2, 2, 2, stride=2)
        self.dec1 = nn.Conv2d(4, 1, 3, padding=1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        b = self.bottom(e2)
        d2 = self.dec2(torch.cat([self.up2(b), e2], 1))
        return self.dec1(torch.cat([self.up1(d2), e1], 1))


def test_unet_toy_every_position():
    model = positive_copy(UNetToy())
    G = rfgraph.from_torch(model, (1, 24, 24))
    a = rfgraph.analyze(G)
    rec = a[G.graph["outputs"][0]]
    assert {G.nodes[v]["op"] for v in G} >= {"convtranspose", "concat", "maxpool"}
    positions = [(i, j) for i in range(0, 24, 5) for j in (0, 11, 23)]
    masks = support(model, None, (1, 24, 24), positions)
    for pos, mask in zip(positions, masks):
        h = hull(mask)
        for ax in range(2):
            lo, hi = rec.bounds(ax)
            assert (lo[pos[ax]], hi[pos[ax]]) == h[ax][:2], (pos, ax)


def test_resnet18_quick():
    model = torchvision_model("resnet18")
    G = rfgraph.from_torch(model, (3, 160, 160))
    a = rfgraph.analyze(G)
    for m in ("layer1", "layer2"):
        check_module(model, (3, 160, 160), m, a, G)
    # the shortcut join of layer2.0 is aligned: 1x1 stride-2 conv vs 3x3 stride-2 + 3x3
    assert not a["layer2.0.add"].is_misaligned


def test_squeeze_excitation_global_quick():
    model = torchvision_model("mobilenet_v3_small")
    shape = (3, 96, 96)
    G = rfgraph.from_torch(model, shape)
    a = rfgraph.analyze(G)
    rec = check_module(model, shape, "features.1", a, G)
    assert all(rec.is_global) and all(g is not None for g in rec.global_from)
    assert not any(a.module("features.0").is_global)


ZOO = [
    # model, input size, modules to check
    ("alexnet", 480, ["features.2", "features.5", "features.12"]),
    ("vgg16", 480, ["features.4", "features.16", "features.30"]),
    ("resnet18", 640, ["layer1", "layer2", "layer3", "layer4"]),
    ("resnet50", 640, ["maxpool", "layer1", "layer2", "layer3", "layer4"]),
    ("googlenet", 512, ["maxpool2", "inception3b", "inception4e", "inception5b"]),
    ("inception_v3", 640, ["Conv2d_4a_3x3", "Mixed_5d", "Mixed_6a"]),
    ("densenet121", 480, ["features.denseblock1", "features.transition2", "features.denseblock3"]),
    ("squeezenet1_0", 320, ["features.3", "features.7", "features.12"]),
    ("mobilenet_v2", 640, ["features.3", "features.7", "features.18"]),
    ("shufflenet_v2_x1_0", 640, ["maxpool", "stage2", "stage3", "conv5"]),
    ("efficientnet_b0", 224, ["features.0", "features.1", "features.8"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, size, modules", ZOO, ids=[z[0] for z in ZOO])
def test_torchvision_against_gradient_support(name, size, modules):
    model = torchvision_model(name, **({"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}))
    shape = (3, size, size)
    G = rfgraph.from_torch(model, shape)
    a = rfgraph.analyze(G)
    for m in modules:
        check_module(model, shape, m, a, G)
    if name == "efficientnet_b0":
        assert all(a.module("features.1").is_global) and not any(a.module("features.0").is_global)


@pytest.mark.slow
def test_fcn_resnet50_backbone_dilation():
    torchvision = pytest.importorskip("torchvision", reason="needs torchvision")

    torch.manual_seed(0)
    model = positive_copy(torchvision.models.get_model("fcn_resnet50", weights=None, weights_backbone=None).backbone)
    shape = (3, 320, 320)
    G = rfgraph.from_torch(model, shape)
    a = rfgraph.analyze(G)
    assert a.module("layer4").jump == (8, 8)  # dilation instead of stride
    for m in ("layer2", "layer3"):
        check_module(model, shape, m, a, G)
