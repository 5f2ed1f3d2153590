"""rfgraph.tiling on real networks: tiles with the reported halo reproduce whole-image inference
(float64, random weights, max abs difference <= 1e-9), and one pixel less of halo on either side
of either axis does not (the halo is tight)."""

import json

import networkx as nx
import pytest

import rfgraph
from rfgraph.answers import AnswerError

torch = pytest.importorskip("torch")
import nets  # noqa: E402  (tests/answers is on sys.path through conftest)


def run_tiled(model, x, t, shrink=None):
    """Stitch the network's outputs over ``t``'s tiles. ``shrink=(axis, side)`` replaces, in every
    crop, the image beyond ``halo - 1`` pixels on that side of the tile with noise (a crop that
    holds one pixel less of real image there); elsewhere beyond the halo too, which must not
    matter."""
    [out_node] = t.outputs
    whole = None
    gen = torch.Generator().manual_seed(1)
    for crop, outs in t.tiles():
        xc = x[(Ellipsis,) + crop].clone()
        for ax, (sl, span) in enumerate(zip(crop, _spans(t, crop))):
            before, after = t.halo[ax]
            if shrink == (ax, 0):
                before -= 1
            if shrink == (ax, 1):
                after -= 1
            keep0, keep1 = span.keep
            lo = keep0 - before - sl.start if keep0 > 0 else 0
            hi = keep1 + after - sl.start if keep1 < t.input_size[ax] else sl.stop - sl.start
            dim = xc.ndim - len(crop) + ax
            noise = torch.randn(xc.shape, generator=gen, dtype=xc.dtype)
            idx = torch.arange(xc.shape[dim]).view([-1 if d == dim else 1 for d in range(xc.ndim)])
            xc = torch.where((idx < lo) | (idx >= hi), noise, xc)
        y = model(xc)
        if whole is None:
            shape = list(y.shape[:y.ndim - len(crop)]) + [
                span.outputs[0][1][1] for span in (axis[-1] for axis in t.plan)]
            whole = y.new_full(shape, float("nan"))
        tile_sl, whole_sl = outs[out_node]
        whole[(Ellipsis,) + whole_sl] = y[(Ellipsis,) + tile_sl]
    return whole


def _spans(t, crop):
    return [next(s for s in axis if s.crop == (sl.start, sl.stop)) for axis, sl in zip(t.plan, crop)]


CASES = {
    # name: (network, input shape, tile, expected halo per axis, grid multiple)
    "unet": (nets.UNet, (1, 1, 96, 96), 32, None, 4),
    "resnet_fcn": (nets.ResNetFCN, (1, 1, 128, 128), 32, None, 8),
    # a 3x3 conv dilated d reaches d pixels each side: 1 + 2 + 4 + 8 + 1 = 16
    "dilated": (nets.Dilated, (1, 1, 72, 64), (24, 16), ((16, 16), (16, 16)), 1),
    # each residual block: two k3 convs dilated d, 2d per side: 2 * (1 + 2 + 4 + 8) = 30
    "tcn": (nets.TCN, (1, 1, 400), 64, ((30, 30),), 1),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_tiles_reproduce_whole_image_and_halo_is_tight(name):
    cls, shape, tile, halo, multiple = CASES[name]
    model = nets.seeded(cls)
    t = rfgraph.tiling(model, tile=tile, input_shape=shape[1:])
    assert t.multiple == (multiple,) * (len(shape) - 2)
    if halo is not None:
        assert t.halo == halo
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = model(x)
        tiled = run_tiled(model, x, t)
        assert tiled.shape == whole.shape
        assert (tiled - whole).abs().max().item() <= 1e-9
        for ax in range(len(shape) - 2):
            for side in (0, 1):
                if t.halo[ax][side] == 0:
                    continue
                short = run_tiled(model, x, t, shrink=(ax, side))
                assert (short - whole).abs().max().item() > 1e-9, (ax, side)  # (round-off: ~1e-15)


def test_global_op_makes_the_axis_unbounded_naming_it():
    G = rfgraph.chain([("c1", "conv", 3, 1, 1)], (32, 32))
    G.add_node("se", op="global")  # squeeze: every feature reads the whole map
    G.add_node("scale", op="mul")
    G.add_edges_from([("c1", "se"), ("c1", "scale"), ("se", "scale")])
    t = rfgraph.tiling(G, tile=8)
    assert t.unbounded == ("se", "se") and t.halo == (None, None) and not t.bounded
    assert [len(axis) for axis in t.plan] == [1, 1]  # the whole axis is one tile
    assert t.as_dict()["halo"] == [None, None]


def test_tile_must_be_a_multiple_of_the_grid():
    G = rfgraph.chain([("c1", "conv", 3, 2, 1), ("c2", "conv", 3, 2, 1)], (32,))
    with pytest.raises(AnswerError, match="not a multiple of 4.*try 8 or 12"):
        rfgraph.tiling(G, tile=10)


def test_align_corners_interpolation_is_not_shift_invariant():
    G = rfgraph.chain([("p", "avgpool", 2, 2, 0)], (64,))
    G.add_node("up", op="upsample", scale=2, mode="linear", align_corners=True)
    G.add_edge("p", "up")
    with pytest.raises(AnswerError, match="node 'up'.*not shift-invariant"):
        rfgraph.tiling(G, tile=16)
    G.nodes["up"]["align_corners"] = False   # half-pixel centres: repeats every 2 pixels
    # output 16 blends pooled features 7 and 8, i.e. pixels 14..17: 2 before pixel 16; output 15
    # blends 7 and 8 too: 2 after pixel 15
    assert rfgraph.tiling(G, tile=16).halo == ((2, 2),)


def test_cli_tile_json(capsys, tmp_path):
    from rfgraph.cli import main
    from rfgraph.frontends.spec import write_spec

    spec = tmp_path / "net.json"
    write_spec(rfgraph.chain([("c1", "conv", 3, 1, 1), ("c2", "conv", 3, 1, 2, 2)], (20,)), spec)
    assert main(["tile", str(spec), "--tile", "8", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["halo"] == [[3, 3]] and doc["multiple"] == [1]
    assert [s["crop"] for s in doc["plan"][0]] == [[0, 11], [5, 19], [13, 20]]
    write_spec(rfgraph.chain([("c1", "conv", 3, 2, 1)], (20,)), spec)
    assert main(["tile", str(spec), "--tile", "7"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rfgraph: error: tile 7 along axis 0 is not a multiple of 2") and err.count("\n") == 1
