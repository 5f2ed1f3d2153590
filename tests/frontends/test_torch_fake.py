"""A forward that asks a tensor for a value: traced again with fake tensors, which code that knows
tracing recognises (transformers' mask checks); otherwise our error names the model's line."""

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import rfgraph  # noqa: E402
from rfgraph.errors import ExportError  # noqa: E402
from torch._subclasses.fake_tensor import FakeTensor  # noqa: E402


class MaskCheck(nn.Module):
    """transformers' shape: skip the mask when nothing is masked, unless tracing (fake tensors)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.calls = 0

    def forward(self, x):
        mask = torch.ones_like(x[:, 0])
        if not isinstance(mask, FakeTensor) and mask.all():  # a data read on a meta tensor
            mask = None
        self.calls += 1
        y = self.conv(x)
        return y if mask is None else y * mask[:, None]


class AsksAlways(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x):
        y = self.conv(x)
        if y.mean() > 0:  # data-dependent control flow no trace without data can follow
            y = y * 2
        return y


def test_a_mask_check_that_knows_fake_tensors_is_traced_with_them():
    net = MaskCheck()
    G = rfgraph.from_torch(net, (1, 8, 8))
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert (rec.n, rec.rf) == ((8, 8), (3, 3))
    assert net.calls == 0  # the trace left the model as it was (the retry too)


def test_a_value_no_trace_can_answer_is_our_error_naming_the_line():
    with pytest.raises(ExportError) as info:
        rfgraph.from_torch(AsksAlways(), (1, 8, 8))
    msg = str(info.value)
    assert "aten::_local_scalar_dense" in msg and f"{__file__}:" in msg and "fake tensors" in msg


def test_a_cpu_tensor_read_inside_forward_still_works():
    class Reads(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            k = int(torch.tensor([2]).item())  # real data: answered
            return self.conv(x)[..., ::k]

    G = rfgraph.from_torch(Reads(), (1, 9, 9))
    assert rfgraph.analyze(G)[G.graph["outputs"][0]].n == (7, 4)
