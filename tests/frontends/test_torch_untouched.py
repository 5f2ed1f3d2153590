"""A trace never modifies the model: parameters, buffers and whatever the forward caches."""

import pytest

torch = pytest.importorskip("torch")

import rfgraph  # noqa: E402


class Caching(torch.nn.Module):
    """Caches a grid per input size, as ultralytics' Detect caches its anchors."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("scale", torch.ones(1))
        self.shape = None
        self.grid = None

    def forward(self, x):
        if self.shape != x.shape:
            self.shape = x.shape
            self.grid = torch.zeros(x.shape[-2:], device=x.device)
            self.calls = getattr(self, "calls", 0) + 1
        self.scale = self.scale * 1  # replaces a buffer
        return self.conv(x) + self.grid


def test_trace_leaves_the_model_as_it_was():
    net = Caching()
    x = torch.rand(1, 3, 8, 8)
    net(x)
    before = (net.shape, net.grid, net.scale, net.calls, dict(net.named_parameters()))
    G = rfgraph.from_torch(net, (3, 16, 16))
    assert rfgraph.analyze(G)["conv"].rf == (3, 3)
    after = (net.shape, net.grid, net.scale, net.calls, dict(net.named_parameters()))
    assert all(a is b for a, b in zip(before[:4], after[:4])) and before[4] == after[4]
    assert net.grid.device.type == "cpu"
    net(torch.rand(1, 3, 8, 8))  # a real forward at the cached size still works

    fresh = Caching()
    rfgraph.from_torch(fresh, (3, 16, 16))
    assert fresh.grid is None and not hasattr(fresh, "calls")  # attributes set by the trace are gone


def test_a_cache_from_a_real_forward_at_the_traced_size_is_used_on_meta():
    # the real forward cached a CPU grid for 8 x 8; the trace at 8 x 8 reuses it (no refresh),
    # and the CPU grid meets meta tensors: it stands in on meta, the graph is the fresh model's
    net = Caching()
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        y0 = net(x)
    grid = net.grid
    G = rfgraph.from_torch(net, (3, 8, 8))
    assert list(G) == list(rfgraph.from_torch(Caching(), (3, 8, 8)))
    assert net.grid is grid and net.grid.device.type == "cpu" and net.calls == 1
    with torch.no_grad():
        assert torch.equal(net(x), y0)


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for v in out for t in _tensors(v)] if isinstance(out, (list, tuple)) else []


def test_ultralytics_yolo_traces_after_a_real_forward():
    tasks = pytest.importorskip("ultralytics.nn.tasks", reason="ultralytics is not installed")
    torch.manual_seed(0)
    model = tasks.DetectionModel("yolov8n.yaml", verbose=False).eval()
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        y0 = _tensors(model(x))  # Detect caches its anchors and strides for this shape, on the CPU
    G = rfgraph.from_torch(model, (3, 256, 256))
    a = rfgraph.analyze(G)
    # the three raw maps at strides 8, 16, 32 (the decoded boxes join all three scales)
    maps = sorted(a[v].n for v in G.graph["outputs"] if a[v].n != (1, 1))
    assert maps == [(8, 8), (16, 16), (32, 32)]
    with torch.no_grad():
        y1 = _tensors(model(x))
    assert len(y0) == len(y1) and all(torch.equal(p, q) for p, q in zip(y0, y1))
