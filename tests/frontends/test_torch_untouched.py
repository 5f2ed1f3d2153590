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
