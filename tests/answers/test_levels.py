"""A detector's levels (rfgraph.levels, `rfgraph analyze --levels`) against gradient support.

The levels' numbers are checked on the real module (rfgraph.tools.verify: positive weights, max
pooling as average pooling, float64): per level, features around the centre are measured and
their support's hull must be the record's bounds exactly; where a feature's support stays clear of
the input border its width must lie in the level's RF range, and the support must move by the
stride per feature (over one period of the top-down path's nearest upsampling).
"""

import json

import pytest

import rfgraph
from rfgraph import cli
from rfgraph.answers import queries

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from rfgraph.tools import verify  # noqa: E402  (needs torch)
from rfgraph.tools.catalogue import build_model  # noqa: E402


def _run(argv, capsys):
    rc = cli.main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


def measure(model, shape, analysis, ls, outputs, offsets):
    """Per level: ``(positions, hulls, bounds)`` for the features ``offsets(level)`` steps from the
    centre along the diagonal, measured on ``model`` (positive) whose ``outputs(y)`` are the
    levels' tensors."""
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand((1,) + tuple(shape), generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    with verify.num_threads(1), verify.max_as_avg():
        ys = outputs(model(x))
        assert [tuple(y.shape[2:]) for y in ys] == [lv.n for lv in ls]
        jobs = []
        for k, (lv, y) in enumerate(zip(ls, ys)):
            c = tuple(n // 2 for n in lv.n)
            for d in offsets(lv):
                pos = tuple(min(ci + d, n - 1) for ci, n in zip(c, lv.n))
                jobs.append((k, pos, y))
        got = [[] for _ in ls]
        for j, (k, pos, y) in enumerate(jobs):
            w = torch.rand(y.shape[1], generator=gen, dtype=torch.float64) + 0.5
            (g,) = torch.autograd.grad((y[(0, slice(None)) + pos] * w).sum(), x, retain_graph=j + 1 < len(jobs))
            got[k].append((pos, verify.hull((g[0].abs().sum(0) > 0).numpy())))
    out = []
    for lv, hs in zip(ls, got):
        rec = analysis[lv.node]
        bnds = [rec.bounds(ax) for ax in range(len(lv.n))]
        want = [[(int(bnds[ax][0][p[ax]]), int(bnds[ax][1][p[ax]])) for ax in range(len(lv.n))] for p, _ in hs]
        out.append(([p for p, _ in hs], [[h[:2] for h in hull] for _, hull in hs], want))
    return out


def check_levels(ls, measured, spatial, period):
    """Bounds exact everywhere; widths within the RF range and, where interior, the support of the
    feature ``period(level)`` steps on (``positions[-1]``) shifted by that many strides."""
    interior_seen = 0
    for lv, (positions, hulls, want) in zip(ls, measured):
        assert hulls == want, f"{lv.node}: gradient support {hulls}, rfgraph bounds {want}"
        if any(g is not None for g in lv.global_from):
            continue
        for ax, size in enumerate(spatial):
            inside = [h[ax][0] > 0 and h[ax][1] < size - 1 for h in hulls]
            lo, hi = lv.rf_extent[ax]
            for h, ok in zip(hulls, inside):
                if ok:
                    interior_seen += 1
                    assert lo <= h[ax][1] - h[ax][0] + 1 <= hi, (lv.node, h, lv.rf_extent)
            p = period(lv)
            if positions[-1][ax] - positions[0][ax] == p and inside[0] and inside[-1]:
                assert hulls[-1][ax][0] - hulls[0][ax][0] == p * lv.stride[ax]
                assert hulls[-1][ax][1] - hulls[0][ax][1] == p * lv.stride[ax]
    return interior_seen


def fpn_period(lv, top=32):
    """Positions after which a level's bounds repeat shifted: the nearest x2 upsampling from the
    stride-32 level makes a stride-s level's RF vary with period 32 / s."""
    return max(1, top // lv.stride[0]) if lv.stride[0] else 1


def torchvision_backbone_levels(name, size, offsets=lambda lv: (0, 1, fpn_period(lv))):
    shape = (3, size, size)
    analysis = rfgraph.analyze(build_model(name, part="backbone").eval(), shape)  # meta, no weights
    ls = queries.levels(analysis)
    model = build_model(name, part="backbone", make=verify.positive_model).eval()
    measured = measure(model, shape, analysis, ls, lambda y: list(y.values()),
                       lambda lv: sorted(set(offsets(lv))))
    return ls, measured, check_levels(ls, measured, shape[1:], fpn_period)


def test_fasterrcnn_levels_match_gradient_support():
    # 160 px: every level's support is clipped by the border (RF 427..491), so the bounds carry
    # the check; the slow variant below is large enough for interior features
    ls, _, _ = torchvision_backbone_levels("fasterrcnn_resnet50_fpn", 160, offsets=lambda lv: (0, 1))
    assert [lv.stride[0] for lv in ls] == [4, 8, 16, 32, 64]
    assert [lv.n[0] for lv in ls] == [40, 20, 10, 5, 3]


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [("fasterrcnn_resnet50_fpn", 640), ("retinanet_resnet50_fpn", 768),
                                        ("fcos_resnet50_fpn", 768)])
def test_detector_levels_interior_match_gradient_support(name, size):
    ls, measured, interior = torchvision_backbone_levels(name, size)
    assert interior > 0  # some features clear of the border: their RF width and shift are checked


def test_cli_levels_on_torchvision_detector(capsys):
    out = _run(["analyze", "retinanet_resnet50_fpn", "--levels", "--input-size", "256"], capsys)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["level", "n", "stride", "rf", "global"]
    assert [r[2] for r in rows[1:]] == ["8", "16", "32", "64", "128"]
    assert all(r[-1] == "no" for r in rows[1:])
    data = json.loads(_run(["analyze", "retinanet_resnet50_fpn", "--levels", "--input-size", "256",
                            "--format", "json"], capsys))
    assert [lv["stride"] for lv in data["levels"]] == [[s, s] for s in (8, 16, 32, 64, 128)]
    assert data["levels"][-1]["node"] == "fpn.extra_blocks.p7"


def yolov8n_levels(size, offsets):
    # ImportError too: opencv-python (imported by ultralytics) needs libGL, absent on some machines
    tasks = pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    from rfgraph.tools.catalogue import yolo_neck

    shape = (3, size, size)
    # built from the yaml bundled with ultralytics: no weights, nothing downloaded (on the CPU: the
    # constructor runs a forward pass to find the strides, which the meta device cannot)
    built = tasks.DetectionModel("yolov8n.yaml", verbose=False).eval()
    analysis = rfgraph.analyze(yolo_neck(built).eval(), shape)
    ls = queries.levels(analysis)
    model = yolo_neck(verify.positive_model(tasks.DetectionModel, "yolov8n.yaml", verbose=False)).eval()
    measured = measure(model, shape, analysis, ls, list, lambda lv: sorted(set(offsets(lv))))
    return ls, measured, check_levels(ls, measured, shape[1:], fpn_period)


def test_yolov8n_levels_match_gradient_support():
    ls, _, _ = yolov8n_levels(160, lambda lv: (0, 1))
    # Detect's inputs P3, P4, P5 (layers 15, 18, 21); the RF exceeds 160 px, so bounds carry the check
    assert [lv.stride for lv in ls] == [(8, 8), (16, 16), (32, 32)]
    assert [lv.rf_extent[0] for lv in ls] == [(855, 879), (935, 959), (1095, 1095)]


@pytest.mark.slow
def test_yolov8n_levels_interior_match_gradient_support():
    ls, _, interior = yolov8n_levels(1408, lambda lv: (0, 1, fpn_period(lv)))
    assert interior > 0
