"""The front-end's speed-ups change nothing but time: memoised meta kernels, batch norm's meta
outputs without its decomposition, and model construction without initialisation on meta."""

import contextlib

import pytest

torch = pytest.importorskip("torch", reason="needs torch: the PyTorch front-end's speed-ups")
torchvision = pytest.importorskip("torchvision", reason="needs torchvision: models built on meta")

import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import rfgraph  # noqa: E402
import rfgraph.frontends.torch as T  # noqa: E402


class Mixed(nn.Module):
    """Broadcasts, scalars of three types, concat, interpolation, an in-place op."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 1, stride=2)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.bn(self.a(x)).relu_()
        s = y.mean((2, 3), keepdim=True).sigmoid()
        z = y * s + 1 - 0.5 * y
        z = z * True
        u = F.interpolate(self.b(x), size=z.shape[-2:], mode="nearest")
        return torch.cat([z, u], 1)


def _graph(model, shape, cached=True):
    saved = T._meta_call
    if not cached:
        T._meta_call = lambda func, args, kwargs: func(*args, **kwargs)
    try:
        G = rfgraph.from_torch(model, shape)
    finally:
        T._meta_call = saved
    return G


def _same(G1, G2):
    assert list(G1.nodes(data=True)) == list(G2.nodes(data=True))
    assert list(G1.edges(data=True)) == list(G2.edges(data=True))
    assert G1.graph["shapes"] == G2.graph["shapes"] and G1.graph["module_outputs"] == G2.graph["module_outputs"]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small"])
def test_memoised_meta_kernels_give_the_same_graph(name):
    model = T.meta_model(torchvision.models.get_model, name, weights=None)
    _same(_graph(model, (3, 96, 96)), _graph(model, (3, 96, 96), cached=False))
    # second run: every functional op replayed from the cache
    _same(_graph(model, (3, 96, 96)), _graph(model, (3, 96, 96), cached=False))


def test_memoised_meta_kernels_mixed_ops():
    model = Mixed()
    _same(_graph(model, (3, 20, 20)), _graph(model, (3, 20, 20), cached=False))
    _same(_graph(model, (3, 20, 20)), _graph(model, (3, 20, 20), cached=False))


def test_signature_tells_scalar_types_apart():
    Tensor = torch.Tensor
    assert T._sig((1,), Tensor) != T._sig((1.0,), Tensor) != T._sig((True,), Tensor)
    x = torch.empty(2, 3, device="meta")
    assert T._sig((x, [1, 2]), Tensor) == T._sig((torch.empty(2, 3, device="meta"), [1, 2]), Tensor)
    with pytest.raises(T._Uncacheable):  # values of real tensors may matter
        T._sig((torch.zeros(2),), Tensor)


@pytest.mark.parametrize("fmt", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_fast_path_matches_the_meta_kernel(fmt, dtype, affine):
    x = torch.empty(2, 6, 5, 7, device="meta", dtype=dtype).contiguous(memory_format=fmt)
    stat = torch.empty(6, device="meta", dtype=dtype)
    w = stat if affine else None
    for func, args in ((torch.ops.aten._native_batch_norm_legit_no_training.default, (x, w, w, stat, stat, 0.1, 1e-5)),
                       (torch.ops.aten.native_batch_norm.default, (x, w, w, stat, stat, False, 0.1, 1e-5))):
        fast = T._bn_no_training(args, {}, torch)
        real = func(*args)
        assert [(t.shape, t.stride(), t.dtype) for t in fast] == [(t.shape, t.stride(), t.dtype) for t in real]
    # training mode is not the plain case
    assert T._bn_no_training((x, w, w, stat, stat, True, 0.1, 1e-5), {}, torch) is None


def test_meta_model_skips_init_only_while_building():
    before = {n: getattr(nn.init, n) for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")}
    calls = []

    def factory():
        t = torch.empty(3)
        nn.init.constant_(t, 2.0)  # a CPU tensor is still initialised
        calls.append(t.tolist())
        return nn.Conv2d(3, 8, 3)

    model = T.meta_model(factory)
    assert calls == [[2.0, 2.0, 2.0]] and model.weight.device.type == "meta"
    assert {n: getattr(nn.init, n) for n in before} == before


def test_meta_model_fallback_still_works():
    # RegNet computes its widths with tensors (.tolist() fails on meta): the fallback path
    with contextlib.ExitStack():
        model = T.meta_model(torchvision.models.get_model, "regnet_x_400mf", weights=None)
    assert {p.device.type for p in model.parameters()} == {"meta"}
