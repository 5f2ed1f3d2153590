"""rfgraph.answers.sizes: the reported sizes are those at which the real model runs and every
input pixel reaches the output (gradient support), and at no other size of the range."""

import json

import pytest

import rfgraph
from rfgraph.answers.sizes import valid_sizes

torch = pytest.importorskip("torch")
import nets  # noqa: E402


def behaviour(model, shape, ax, n):
    """``"ok"``: the model runs at size ``n`` along spatial axis ``ax`` and the first and last
    input rows reach the output; ``"fails"``; or ``"drops"`` pixels (zero gradient there)."""
    shape = list(shape)
    shape[1 + ax] = n
    x = torch.rand([1] + shape, requires_grad=True, generator=torch.Generator().manual_seed(0))
    try:
        y = model(x)
    except RuntimeError:
        return "fails"
    y = y["out"] if isinstance(y, dict) else y
    (g,) = torch.autograd.grad(y.abs().sum(), x)
    g = g.abs().movedim(2 + ax, 0).flatten(1).amax(1)
    return "ok" if g[0] > 0 and g[-1] > 0 else "drops"


def check(model, shape, lo, hi, axes=(0,)):
    s = valid_sizes(model, range=(lo, hi), input_shape=shape)
    for ax in axes:
        seen = {n: behaviour(model, shape, ax, n) for n in range(lo, hi + 1)}
        assert tuple(n for n, b in seen.items() if b == "ok") == s.valid[ax], seen
    return s


def test_unet_multiple_of_4_and_fails_elsewhere():
    model = nets.seeded(nets.UNet).float()
    s = check(model, (1, 48, 48), 32, 64, axes=(0, 1))
    assert s.rule == ("multiple of 4", "multiple of 4") and s.smallest == (32, 32)
    assert "confirmed by building it again" in s.method
    assert "inputs disagree on size" in s.invalid[0][33]


class Strided(torch.nn.Module):
    """Three 3-wide stride-2 convs without padding: runs at every size, loses the last pixels
    unless the size is 8k - 1 (15 -> 7 -> 3 -> 1)."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(*(torch.nn.Conv2d(1, 1, 3, 2) for _ in range(3)))

    def forward(self, x):
        return self.body(x)


def test_flooring_drops_pixels_except_at_8k_minus_1():
    torch.manual_seed(0)
    s = check(Strided().eval(), (1, 40, 40), 32, 80)
    assert s.valid[0] == (39, 47, 55, 63, 71, 79) and s.rule[0] == "8k - 1"
    assert "lost to flooring" in s.invalid[0][32]


def test_cli_sizes_json(capsys, tmp_path):
    from rfgraph.cli import main
    from rfgraph.frontends.spec import write_spec

    spec = tmp_path / "net.json"
    write_spec(rfgraph.chain([("p1", "maxpool", 2, 2, 0), ("p2", "maxpool", 2, 2, 0)], (64,)), spec)
    assert main(["sizes", str(spec), "--range", "8:24", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] == [[8, 12, 16, 20, 24]] and doc["rule"] == ["multiple of 4"]


def _smp(name):
    smp = pytest.importorskip("segmentation_models_pytorch", reason="pip install 'rfgraph[smp]'")
    torch.manual_seed(0)
    return getattr(smp, name)("resnet18", encoder_weights=None).eval()  # nothing downloaded


@pytest.mark.slow
@pytest.mark.parametrize("name, rule", [("Unet", "every size"), ("FPN", "multiple of 32"),
                                        ("DeepLabV3Plus", "multiple of 16")])
def test_segmentation_models_pytorch(name, rule):
    s = check(_smp(name), (3, 64, 64), 32, 96)
    assert s.rule[0] == rule


@pytest.mark.slow
def test_torchvision_fcn_every_size():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    model = torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None).eval()
    s = check(model, (3, 64, 64), 32, 72)
    assert s.rule[0] == "every size"
