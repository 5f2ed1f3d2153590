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
    assert rows[0] == ["level", "layer", "n", "stride", "rf", "global"]
    assert [r[0] for r in rows[1:]] == ["P3", "P4", "P5", "P6", "P7"]
    assert [r[3] for r in rows[1:]] == ["8", "16", "32", "64", "128"]
    assert [r[1] for r in rows[1:]] == ["fpn.layer_blocks.0", "fpn.layer_blocks.1", "fpn.layer_blocks.2",
                                        "fpn.extra_blocks.p6", "fpn.extra_blocks.p7"]
    assert all(r[-1] == "no" for r in rows[1:])
    data = json.loads(_run(["analyze", "retinanet_resnet50_fpn", "--levels", "--input-size", "256",
                            "--format", "json"], capsys))
    assert [lv["stride"] for lv in data["levels"]] == [[s, s] for s in (8, 16, 32, 64, 128)]
    assert data["levels"][-1]["node"] == "fpn.extra_blocks.p7" and data["levels"][-1]["erf"] is None


# -- ultralytics YOLO -------------------------------------------------------------------------------
# Built from the yaml bundled with ultralytics (no weights, nothing downloaded): on the meta device
# for rfgraph (catalogue.build_source), for real (positive, float64) for the gradient support.


def _cpu(factory, *args, **kwargs):
    return factory(*args, **kwargs), ""


def _positive(factory, *args, **kwargs):
    return verify.positive_model(factory, *args, **kwargs), ""


def yolo_levels(target, size, offsets):
    # ImportError too: opencv-python (imported by ultralytics) needs libGL, absent on some machines
    pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    from rfgraph.tools.catalogue import build_source, model_part

    shape = (3, size, size)
    built = build_source(target)
    assert next(built.model.parameters()).is_meta and built.input_shapes == ((3, 640, 640),)
    analysis = rfgraph.analyze(model_part(built.model, "neck").eval(), shape)
    ls = queries.levels(analysis)
    model = model_part(build_source(target, make=_positive).model, "neck").eval()
    measured = measure(model, shape, analysis, ls, list, lambda lv: sorted(set(offsets(lv))))
    return ls, measured, check_levels(ls, measured, shape[1:], fpn_period)


def test_yolov8n_levels_match_gradient_support():
    ls, _, _ = yolo_levels("yolo:yolov8n", 160, lambda lv: (0, 1))
    # Detect's inputs P3, P4, P5 (layers 15, 18, 21), named by their layer, not by the activation
    # module ultralytics shares between its convs; the RF exceeds 160 px, so bounds carry the check
    assert [(lv.label, lv.module) for lv in ls] == [("P3", "model.15"), ("P4", "model.18"), ("P5", "model.21")]
    assert [lv.node for lv in ls] == ["model.15.cv2.act", "model.18.cv2.act", "model.21.cv2.act"]
    assert [lv.stride for lv in ls] == [(8, 8), (16, 16), (32, 32)]
    assert [lv.rf_extent[0] for lv in ls] == [(855, 879), (935, 959), (1095, 1095)]


def test_yolov8n_seg_levels_match_gradient_support():
    # the Segment head takes the same P3/P4/P5 (its prototype branch reads P3 inside the head)
    ls, _, _ = yolo_levels("yolo:yolov8n-seg", 160, lambda lv: (0, 1))
    assert [(lv.label, lv.module) for lv in ls] == [("P3", "model.15"), ("P4", "model.18"), ("P5", "model.21")]
    assert [lv.stride for lv in ls] == [(8, 8), (16, 16), (32, 32)]
    assert [lv.rf_extent[0] for lv in ls] == [(855, 879), (935, 959), (1095, 1095)]


def test_yolo11n_levels_are_global_from_its_attention():
    # YOLO11's C2PSA (layer 10) attends over every P5 position: P5 and, through the top-down
    # path, P4 and P3 read the whole input; the gradient support is the whole input too
    ls, measured, _ = yolo_levels("yolo:yolo11n", 160, lambda lv: (0, 1))
    assert [(lv.label, lv.module) for lv in ls] == [("P3", "model.16"), ("P4", "model.19"), ("P5", "model.22")]
    assert [lv.stride for lv in ls] == [(8, 8), (16, 16), (32, 32)]  # the grid's: 160 / n
    assert all(g == "model.10.m.0.attn.bmm_global" for lv in ls for g in lv.global_from)  # over the keys
    for _, hulls, _ in measured:
        assert all(h == [(0, 159), (0, 159)] for h in hulls)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["yolo:yolov8n", "yolo:yolov8n-seg"])
def test_yolo_levels_interior_match_gradient_support(target):
    ls, _, interior = yolo_levels(target, 1408, lambda lv: (0, 1, fpn_period(lv)))
    assert interior > 0


def test_yolo_levels_of_a_model_built_by_ultralytics():
    # the Python API on a model ultralytics built itself (its activation shared by every conv):
    # the graph nodes are named after the call site of the shared module, as the levels
    tasks = pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    from rfgraph.tools.catalogue import yolo_neck

    model = tasks.DetectionModel("yolov8n.yaml", verbose=False).eval()
    ls = rfgraph.levels(yolo_neck(model), input_shape=(3, 128, 128))
    assert [(lv.label, lv.module) for lv in ls] == [("P3", "model.15"), ("P4", "model.18"), ("P5", "model.21")]
    assert [lv.node for lv in ls] == ["model.15.cv2.act", "model.18.cv2.act", "model.21.cv2.act"]


def test_yolo_model_runs_after_analysis():
    # built on the CPU and traced (the whole model, then the levels of its neck), it still runs
    # and computes the same detections; the build leaves ultralytics' classes as they were
    pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    from ultralytics.nn.modules import Detect, conv

    from rfgraph.tools.catalogue import build_source, model_part

    act, bias_init = conv.Conv.default_act, Detect.bias_init
    torch.manual_seed(0)
    model = build_source("yolo:yolov8n", make=_cpu).model.eval()
    acts = [m.act for m in model.modules() if isinstance(m, conv.Conv)]
    assert len({id(a) for a in acts}) == len(acts)  # one activation per conv: nodes named by layer
    # traced first: Detect caches its anchors per input shape in forward, and the trace must not
    # leave meta tensors there (the other order, a forward at the traced shape and then the whole
    # model traced, meets the cached CPU anchors: the neck, which --levels traces, has no Detect)
    assert rfgraph.analyze(model, (3, 128, 128)).sinks == ["model.22.cat_3"]
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x)[0]
    ls = rfgraph.levels(model_part(model, "neck"), input_shape=(3, 128, 128))
    with torch.no_grad():
        after = model(x)[0]
    assert [lv.n for lv in ls] == [(16, 16), (8, 8), (4, 4)]
    assert before.shape == (1, 84, 336) and torch.equal(before, after)
    assert conv.Conv.default_act is act and Detect.bias_init is bias_init


def test_cli_levels_on_yolo_yaml(capsys, tmp_path, monkeypatch):
    pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    from pathlib import Path

    import ultralytics

    out = _run(["analyze", "yolo:yolov8n", "--levels", "--input-size", "320"], capsys)
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["level", "layer", "n", "stride", "rf", "global"]
    assert [r[:4] for r in rows[1:]] == [["P3", "model.15", "40", "8"], ["P4", "model.18", "20", "16"],
                                         ["P5", "model.21", "10", "32"]]
    # a yaml file of one's own (here the bundled one, with an activation: built, never evaluated)
    monkeypatch.chdir(tmp_path)
    src = Path(ultralytics.__file__).parent / "cfg" / "models" / "v8" / "yolov8.yaml"
    (tmp_path / "mine-yolov8n.yaml").write_text("activation: nn.ReLU()\n" + src.read_text())
    data = json.loads(_run(["analyze", "mine-yolov8n.yaml", "--levels", "--input-size", "320",
                            "--format", "json"], capsys))
    assert [lv["label"] for lv in data["levels"]] == ["P3", "P4", "P5"]
    assert [lv["stride"] for lv in data["levels"]] == [[8, 8], [16, 16], [32, 32]]
    assert data["levels"][0]["node"] == "model.15.cv2.act"


def test_cli_yolo_errors(capsys, tmp_path, monkeypatch):
    pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evil.yaml").write_text("activation: __import__('os').system('touch pwned')\n"
                                        "backbone: [[-1, 1, Conv, [16, 3, 2]]]\nhead: [[-1, 1, Detect, [80]]]\n")
    (tmp_path / "call.yaml").write_text("backbone: [[-1, 1, attempt_load_weights, ['x.pt']]]\n"
                                        "head: [[-1, 1, Detect, [80]]]\n")
    (tmp_path / "cls.yaml").write_text("backbone: [[-1, 1, Conv, [16, 3, 2]]]\nhead: [[-1, 1, Classify, [10]]]\n")
    (tmp_path / "list.yaml").write_text("- 1\n")
    (tmp_path / "broken.yml").write_text("backbone: [\n")
    for argv, msg in [(["yolo:yolov8q"], "no ultralytics model yaml 'yolov8q.yaml'"),
                      (["missing/model.yaml"], "no such file: missing/model.yaml"),
                      (["yolo:https://example.com/m.yaml"], "rfgraph never downloads"),
                      (["evil.yaml"], "is not nn.NAME(literal arguments)"),
                      (["call.yaml"], "layer 0 is 'attempt_load_weights', not an ultralytics or torch.nn module"),
                      (["cls.yaml"], "is not one of ultralytics' Detect heads"),
                      (["list.yaml"], "list.yaml: not an ultralytics model yaml"),
                      (["broken.yml"], "broken.yml: not a readable yaml")]:
        assert cli.main(["analyze", *argv, "--levels"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and msg in err, err
    assert not (tmp_path / "pwned").exists()


# -- the ERF per level --------------------------------------------------------------------------------


def check_erf_levels(ls):
    """Every level has an ERF: finite, inside its unit's TRF, growing with the level."""
    import math

    for lv in ls:
        e = lv.erf
        assert e is not None and e.module == lv.module
        assert all(math.isfinite(s) and s > 0 for s in e.sigma)
        assert e.mass_outside_trf() < 1e-9
        assert all(2 * s < hi - lo + 1 for s, (lo, hi) in zip(e.sigma, e.trf_bounds))
        half, most = e.area_ratio[0.5], e.area_ratio[0.99]
        assert half.side <= most.side <= max(hi - lo + 1 for lo, hi in e.trf_bounds)
    for a, b in zip(ls, ls[1:]):
        assert all(x < y for x, y in zip(a.erf.sigma, b.erf.sigma)), (a.erf.sigma, b.erf.sigma)
        assert a.erf.area_ratio[0.5].side <= b.erf.area_ratio[0.5].side


def test_levels_erf_on_a_small_fpn():
    from nets import TinyFPN

    torch.manual_seed(0)
    ls = rfgraph.levels(TinyFPN().eval(), input_shape=(3, 256, 256), erf={"samples": 4})
    assert [(lv.label, lv.module) for lv in ls] == [("P3", "out.0"), ("P4", "out.1"), ("P5", "out.2")]
    check_erf_levels(ls)
    # the TRFs (187..219, 203..219, 251 px) fit in 256 px: the centre units' are not clipped
    assert [lv.erf.trf_bounds[0] for lv in ls] == [(35, 221), (3, 221), (3, 253)]
    assert queries.levels_text(ls).splitlines()[0].split()[6:] == ["erf", "sigma", "erf", "50%", "erf", "99%"]


def test_cli_levels_erf_json(capsys):
    from pathlib import Path

    nets = Path(__file__).with_name("nets.py")
    data = json.loads(_run(["analyze", f"{nets}:TinyFPN", "--input-size", "256", "--levels", "--erf",
                            "--erf-samples", "2", "--format", "json"], capsys))
    erfs = [lv["erf"] for lv in data["levels"]]
    assert [e["module"] for e in erfs] == ["out.0", "out.1", "out.2"] and {e["samples"] for e in erfs} == {2}
    assert all(e["mass_outside_trf"] < 1e-9 and min(e["sigma"]) > 0 for e in erfs)
    assert erfs[0]["sigma"] < erfs[1]["sigma"] < erfs[2]["sigma"]
    out = _run(["analyze", f"{nets}:TinyFPN", "--input-size", "256", "--levels", "--erf", "--erf-samples", "2"],
               capsys)
    assert out.splitlines()[0].split()[6:] == ["erf", "sigma", "erf", "50%", "erf", "99%"]
    assert cli.main(["analyze", f"{nets}:TinyFPN", "--erf"]) == 1
    assert "--erf goes with --levels" in capsys.readouterr().err


def test_cli_levels_erf_weights(capsys, tmp_path):
    from pathlib import Path

    from nets import TinyFPN

    nets = Path(__file__).with_name("nets.py")
    torch.manual_seed(3)
    torch.save(TinyFPN().state_dict(), tmp_path / "w.pt")
    args = ["analyze", f"{nets}:TinyFPN", "--input-size", "128", "--levels", "--erf", "--erf-samples", "1",
            "--format", "json"]
    a = json.loads(_run(args, capsys))["levels"]
    b = json.loads(_run(args + ["--weights", str(tmp_path / "w.pt")], capsys))["levels"]
    assert [x["erf"]["sigma"] for x in a] != [x["erf"]["sigma"] for x in b]  # other weights, other ERF
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert cli.main(args + ["--weights", str(tmp_path / "bad.pt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read weights" in err


def test_levels_erf_on_a_torchvision_detector():
    # fasterrcnn's P6 is F.max_pool2d in LastLevelMaxPool, no module's output: it is measured on
    # the model's output that is the level
    torch.manual_seed(0)
    model = build_model("fasterrcnn_mobilenet_v3_large_fpn", part="backbone", make=lambda f, *a, **kw: f(*a, **kw))
    ls = rfgraph.levels(model.eval(), input_shape=(3, 128, 128), erf={"samples": 1})
    assert [lv.module for lv in ls][-1] == "fpn.extra_blocks"
    assert all(lv.erf is not None and lv.erf.mass_outside_trf() < 1e-9 for lv in ls)


def test_cli_levels_erf_on_yolov8n(capsys):
    # 640 px, 4 samples, 3 levels: about 5 s on one core
    pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    data = json.loads(_run(["analyze", "yolo:yolov8n", "--levels", "--erf", "--erf-samples", "4",
                            "--format", "json"], capsys))
    erfs = [lv["erf"] for lv in data["levels"]]
    assert [e["module"] for e in erfs] == ["model.15", "model.18", "model.21"]
    assert all(e["mass_outside_trf"] < 1e-9 for e in erfs)
    assert erfs[0]["sigma"] < erfs[1]["sigma"] < erfs[2]["sigma"]


def test_levels_erf_of_global_levels_at_the_centre():
    # YOLO11's levels are global (C2PSA's attention): every feature's TRF is the whole input, so
    # the unit is the feature whose grid cell holds the input centre, and its ERF is centred there
    # (the hull of its branches is not: it picked a unit 3/4 of the way across before)
    pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    from rfgraph.tools.catalogue import build_source, model_part

    torch.manual_seed(0)
    model = model_part(build_source("yolo:yolo11n", make=_cpu).model, "neck").eval()
    ls = rfgraph.levels(model, input_shape=(3, 256, 256), erf={"samples": 1})
    assert [lv.erf.unit for lv in ls] == [(16, 16), (8, 8), (4, 4)]
    for lv in ls:
        assert lv.erf.trf_centre == (128.0, 128.0) and lv.erf.trf_bounds == ((0, 255), (0, 255))
        assert all(abs(c - 128) < lv.stride[0] for c in lv.erf.centre_of_mass), (lv.label, lv.erf.centre_of_mass)
