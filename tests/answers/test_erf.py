"""rfgraph.erf: the uniform case against numpy, the support inside the exact TRF, Luo's √n law."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import rfgraph  # noqa: E402
from rfgraph.answers.erf import ErfError, area_ratios  # noqa: E402

from nets import ChannelsLast, UNet, seeded  # noqa: E402


# -- (a) the uniform case is exact ------------------------------------------------------------------

# (kernel, stride, dilation, padding) per layer
LAYERS = [
    [(3, 1, 1, 1)] * 4,
    [(3, 2, 1, 1), (3, 1, 2, 2), (5, 1, 1, 2), (2, 2, 1, 0), (3, 1, 3, 3)],
    [(7, 2, 1, 3), (3, 1, 1, 1), (3, 2, 2, 2), (3, 1, 1, 0)],
]


def numpy_erf_1d(layers, length, unit):
    """Back-propagate a one at ``unit`` through all-ones convs, each step an np.convolve with the
    (dilated) box of the layer on the stride-upsampled gradient; independent of torch and rfgraph."""
    sizes = [length]
    for k, s, d, p in layers:
        sizes.append((sizes[-1] + 2 * p - d * (k - 1) - 1) // s + 1)
    g = np.zeros(sizes[-1])
    g[unit] = 1.0
    for (k, s, d, p), n_in in zip(reversed(layers), reversed(sizes[:-1])):
        up = np.zeros((g.size - 1) * s + 1)
        up[::s] = g
        box = np.zeros((k - 1) * d + 1)
        box[::d] = 1.0
        full = np.convolve(up, box)  # full[j] = sum over o, t with o*s + t*d = j
        pad = np.zeros(n_in + 2 * p + full.size)
        pad[:full.size] = full
        g = pad[p:p + n_in]  # padded coordinate j is input pixel j - p
    return g / g.sum()


def _stack(layers, dims, ones=True, c=2):
    Conv = nn.Conv1d if dims == 1 else nn.Conv2d
    mods = []
    cin = 1
    for k, s, d, p in layers:
        conv = Conv(cin, c, k, stride=s, dilation=d, padding=p)
        if ones:
            with torch.no_grad():
                conv.weight.fill_(1.0)
                conv.bias.zero_()
        mods += [conv, nn.Identity()]
        cin = c
    return nn.Sequential(*mods).double()


@pytest.mark.parametrize("layers", LAYERS)
@pytest.mark.parametrize("length", [61, 64])
def test_uniform_1d_equals_box_convolutions(layers, length):
    net = _stack(layers, 1)
    for init in (None, "uniform"):  # all-ones weights as given, and Luo's uniform init
        e = rfgraph.erf(net, (1, length), init=init, samples=3)
        want = numpy_erf_1d(layers, length, e.unit[0])
        np.testing.assert_allclose(e.map, want, rtol=1e-12, atol=1e-15)
        # the numpy support is the TRF rfgraph reports for that unit
        nz = np.flatnonzero(want)
        assert (nz[0], nz[-1]) == e.trf_bounds[0]


@pytest.mark.parametrize("layers", LAYERS[1:])
def test_uniform_2d_equals_outer_product(layers):
    h, w = 57, 64
    net = _stack(layers, 2)
    e = rfgraph.erf(net, (1, h, w), samples=2)
    want = np.outer(numpy_erf_1d(layers, h, e.unit[0]), numpy_erf_1d(layers, w, e.unit[1]))
    np.testing.assert_allclose(e.map, want, rtol=1e-12, atol=1e-15)
    u = rfgraph.erf(_stack(layers, 2, ones=False), (1, h, w), init="uniform", samples=2)
    np.testing.assert_allclose(u.map, want, rtol=1e-12, atol=1e-15)


def test_unit_is_nearest_trf_centre_not_index_centre():
    # a 2x2 stride-2 conv with padding 0 then a conv with padding (2 left, 0 right in effect):
    # on 16 pixels the index centre n//2 is not the feature looking at pixel 8
    net = nn.Sequential(nn.ConstantPad1d((4, 0), 0.0), nn.Conv1d(1, 1, 3, stride=2)).double()
    e = rfgraph.erf(net, (1, 16), init="uniform", samples=1)
    lo, hi = e.trf.bounds(0, clip=False)
    centres = (lo + hi + 1) / 2
    assert e.unit[0] == int(np.argmin(abs(centres - 8)))
    assert e.unit[0] != e.trf.n[0] // 2
    assert abs(e.trf_centre[0] - 8) <= 1


def test_area_ratio_replknet_definition():
    d = np.zeros((9, 9))
    d[4, 4], d[4, 5], d[0, 0] = 6.0, 3.0, 1.0
    r = area_ratios(d, (4, 4), 81)
    assert r[0.5].side == 1 and r[0.3].side == 1
    assert r[0.99].side == 9 and r[0.99].of_input == 1.0
    assert abs(r[0.5].of_input - 1 / 81) < 1e-15


# -- (b) support inside the TRF ---------------------------------------------------------------------


def _inside(e):
    outside = np.ones(e.map.shape, bool)
    outside[tuple(slice(lo, hi + 1) for lo, hi in e.trf_bounds)] = False
    assert e.map.sum() == pytest.approx(1.0)
    assert not e.map[outside].any(), f"mass outside the TRF {e.trf_bounds}"
    assert e.map.any()


@pytest.mark.parametrize("at", ["layer1", "layer2"])
def test_support_resnet18(at):
    tv = pytest.importorskip("torchvision")
    e = rfgraph.erf(tv.models.resnet18(), (3, 128, 128), at=at, init="random", samples=2)
    assert e.module == at
    assert all(hi - lo + 1 < 128 for lo, hi in e.trf_bounds)  # a TRF smaller than the input
    _inside(e)


def test_channels_last_module_is_read_as_a_map():
    # ChannelsLast's stage is (1, 8, 8, 8): read as (N, C, H, W), its unit would be a column of
    # rows across the map and the ERF would spread outside the TRF; the front-end's layout
    # puts the unit where it is
    e = rfgraph.erf(seeded(ChannelsLast), (3, 16, 16), at="stage", init="random", samples=2)
    assert e.module == "stage" and e.trf_bounds == ((7, 9), (7, 9))
    _inside(e)


def test_support_unet_and_warning():
    net = seeded(UNet)
    e = rfgraph.erf(net, (1, 64, 64), samples=2)  # default: the head, the last spatial map
    assert e.module == "head" and e.unit == (32, 32)
    _inside(e)
    e = rfgraph.erf(net, (1, 40, 40), at="enc2", samples=2)
    _inside(e)
    tiny = rfgraph.erf(net, (1, 16, 16), samples=1)
    assert any("RepLKNet-pytorch#25" in w for w in tiny.warnings)


def test_replknet_recipe_and_errors(tmp_path):
    net = seeded(UNet)
    e = rfgraph.erf(net, (1, 48, 48), at="enc2", samples=2, recipe="replknet")
    _inside(e)
    with pytest.raises(ErfError, match="recipe"):
        rfgraph.erf(net, (1, 48, 48), recipe="gauss")
    with pytest.raises(ErfError, match="no module or node"):
        rfgraph.erf(net, (1, 48, 48), at="nope")
    with pytest.raises(ErfError, match="does not exist"):
        rfgraph.erf(net, (1, 48, 48), weights=tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ErfError, match="do not fit"):
        rfgraph.erf(net, (1, 48, 48), weights=bad)
    good = tmp_path / "good.pt"
    torch.save(net.state_dict(), good)
    w = rfgraph.erf(seeded(UNet, seed=5), (1, 48, 48), at="enc2", samples=2, recipe="replknet", weights=good)
    np.testing.assert_allclose(w.map, e.map, rtol=1e-10, atol=1e-15)


def test_images_dir(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for i in range(3):
        PIL.fromarray(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
    e = rfgraph.erf(net, (3, 32, 32), images=tmp_path, samples=8)
    assert e.samples == 3
    _inside(e)


def test_openerf_recipe_inputs_and_unit():
    # openerf's recipe by hand: per input d mean_c y[c, unit] / dx, averaged over input channels,
    # clamped at 0 per input, summed, normalised
    net = seeded(UNet)
    xs = torch.randn(3, 1, 40, 40, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    e = rfgraph.erf(net, (1, 40, 40), at="enc2", recipe="openerf", inputs=xs, unit=(5, 4), batch=2)
    assert e.unit == (5, 4) and e.samples == 3
    feats = {}
    h = net.enc2.register_forward_hook(lambda _m, _i, o: feats.__setitem__("y", o))
    acc = 0
    for x in xs:
        x = x[None].clone().requires_grad_(True)
        net.eval()(x)
        (g,) = torch.autograd.grad(feats["y"][0, :, 5, 4].mean(), x)
        acc = acc + g[0].mean(dim=0).clamp(min=0).double()
    h.remove()
    np.testing.assert_allclose(e.map, (acc / acc.sum()).numpy(), rtol=1e-5, atol=1e-9)
    _inside(e)
    with pytest.raises(ErfError, match="not a feature"):
        rfgraph.erf(net, (1, 40, 40), at="enc2", inputs=xs, unit=(99, 0))
    with pytest.raises(ErfError, match="expected"):
        rfgraph.erf(net, (1, 40, 40), inputs=xs[:, :, :20])


def test_openerf_itself(tmp_path):
    # the same map as openerf 0.6.1 on a timm model with random weights (benchmarks/erf.py at length)
    openerf_erf = pytest.importorskip("openerf.erf")
    timm = pytest.importorskip("timm")
    from PIL import Image
    from openerf.data import build_timm_eval_transform

    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False).eval()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (240, 250, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    transform, cfg = build_timm_eval_transform(model)
    xs = torch.stack([transform(Image.open(tmp_path / f"{i}.png").convert("RGB")) for i in range(2)])
    theirs = openerf_erf.compute_erf(model, image_dir=tmp_path, device="cpu", show_progress=False)
    ours = rfgraph.erf(model, tuple(cfg["input_size"]), at="layer4", recipe="openerf", inputs=xs, unit=(3, 3))
    assert np.abs(theirs.erf_map - ours.map).max() <= 1e-6 * theirs.erf_map.max()


@pytest.mark.slow
def test_support_resnet50():
    tv = pytest.importorskip("torchvision")
    for at in ("layer2", "layer3"):
        e = rfgraph.erf(tv.models.resnet50(), (3, 288, 288), at=at, init="random", samples=2)
        _inside(e)


# -- (c) Luo's growth law ---------------------------------------------------------------------------

DEPTHS = (5, 10, 20, 40)


def growth_table(depths=DEPTHS, act=nn.Identity, channels=4, size=129, samples=4):
    """Per depth: TRF side and ERF σ (mean of the axes) of random-weight 3x3 conv stacks (PyTorch's
    init, no bias, ``act`` between the convs); the README's table comes from this."""
    rows = []
    for n in depths:
        torch.manual_seed(n)
        mods = []
        for i in range(n):
            mods += [nn.Conv2d(1 if i == 0 else channels, channels, 3, padding=1, bias=False), act()]
        e = rfgraph.erf(nn.Sequential(*mods[:-1]), (1, size, size), init="random", seed=n, samples=samples)
        rows.append((n, e.trf_bounds[0][1] - e.trf_bounds[0][0] + 1, float(np.mean(e.sigma))))
    return rows


def exponents(rows):
    n = np.log([r[0] for r in rows])
    return (np.polyfit(n, np.log([r[2] for r in rows]), 1)[0], np.polyfit(n, np.log([r[1] for r in rows]), 1)[0])


@pytest.mark.parametrize("act, channels", [(nn.Identity, 4), pytest.param(nn.ReLU, 8, marks=pytest.mark.slow)])
def test_luo_sqrt_law(act, channels):
    rows = growth_table(act=act, channels=channels)
    sigma_exp, trf_exp = exponents(rows)
    assert 0.4 <= sigma_exp <= 0.6, (sigma_exp, rows)
    assert [r[1] for r in rows] == [2 * d + 1 for d in DEPTHS]  # the TRF grows like n
    assert trf_exp > 0.9


if __name__ == "__main__":  # the README's table: python tests/answers/test_erf.py
    for act, c in ((nn.Identity, 4), (nn.ReLU, 8)):
        rows = growth_table(act=act, channels=c)
        s, t = exponents(rows)
        print(f"{act.__name__}, {c} channels: " + ", ".join(f"n={n} TRF {r} σ {g:.2f}" for n, r, g in rows)
              + f"; exponents σ {s:.3f}, TRF {t:.3f}")


# -- the command line and the picture ---------------------------------------------------------------


def test_cli_erf_picture_json_and_errors(tmp_path, capsys):
    pytest.importorskip("torchvision")
    pytest.importorskip("matplotlib")
    pytest.importorskip("safetensors")
    import json

    from rfgraph.cli import main

    w1, w2 = tmp_path / "a.pt", tmp_path / "b.safetensors"
    torch.manual_seed(1)
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), w1)
    from safetensors.torch import save_file

    save_file(torchvision.models.resnet18().state_dict(), str(w2))
    png = tmp_path / "erf.png"
    assert main(["erf", "resnet18", "--input-size", "64", "--at", "layer2", "--samples", "2",
                 "--weights", str(w1), "--weights", str(w2), "-o", str(png), "--format", "json"]) == 0
    docs = json.loads(capsys.readouterr().out.split("\nwrote ")[0])
    assert [d["module"] for d in docs] == ["layer2", "layer2"] and png.stat().st_size > 10_000
    assert docs[0]["area_ratio"]["0.5"]["side"] % 2 == 1 and docs[0]["mass_outside_trf"] == 0
    assert main(["erf", "resnet18", "--input-size", "64", "--at", "nope", "-o", str(png)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no module or node named 'nope'" in err
    assert main(["erf", "resnet18", "--weights", str(tmp_path / "no.pt"), "--format", "json"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_images_use_the_models_own_normalisation(tmp_path):
    # a timm model says its mean/std in pretrained_cfg (no weights needed); others get ImageNet's
    from PIL import Image

    from rfgraph.answers.erf import IMAGENET_MEAN, IMAGENET_STD, _load_images, model_normalisation

    Image.fromarray(np.full((4, 4, 3), 128, dtype=np.uint8)).save(tmp_path / "a.png")

    class Net:
        pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "interpolation": "bilinear"}

    own = _load_images(tmp_path, 1, (3, 4, 4), model_normalisation(Net()))
    assert np.allclose(own, (128 / 255 - 0.5) / 0.25)
    plain = _load_images(tmp_path, 1, (3, 4, 4), model_normalisation(object()))
    want = (128 / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    assert np.allclose(plain[0].transpose(1, 2, 0), want)
