"""rfgraph.tools.runner: summary rows, final feature map, verification, the sweep; and the rows
rendered by rfgraph.render.zoo (which needs real rows, so torch, to test).

The zoo-wide sweep is marked slow (``make test-all``); the figures live in benchmarks/results/.
"""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from rfgraph.render import zoo as report  # noqa: E402
from rfgraph.tools import runner  # noqa: E402
from rfgraph.tools.catalogue import list_zoo  # noqa: E402


@pytest.fixture(scope="module")
def resnet18_row():
    [entry] = list_zoo("classification", "resnet18")
    return runner.summarize(entry)


def test_summarize_resnet18(resnet18_row):
    row = resnet18_row
    assert row.ok, row.error
    # layer4 of ResNet-18: 7x7 stem /2 (rf 7), maxpool 3/2 (11), then 3x3 convs at jumps 4, 8, 16,
    # 32 (layer1: +4*2*2=16 -> 27; layer2: +2*4 +3*8*2... = 99 - see the classic table) -> 435
    assert (row.module, row.n, row.rf, row.jump) == ("layer4", (7, 7), (435, 435), (32, 32))
    # start 0.5: the centre of feature 0 is pixel 0's centre; padding = rf/2 - start = 217
    assert row.start == (0.5, 0.5) and row.padding == (217, 217)
    assert row.is_global == (False, False) and row.global_from == ""
    assert row.out_global_from == "avgpool" and row.misaligned == 0 and row.nodes == 69
    stages = {m: (rf, jump, g, src) for m, rf, jump, g, src in row.stages}
    assert stages["layer1"] == ((43, 43), (4, 4), False, "")
    assert stages["layer4"] == ((435, 435), (32, 32), False, "") and stages["fc"][2:] == (True, "avgpool")
    assert row.trace_s > 0 and row.analyze_s > 0


def test_final_map_skips_the_head():
    # VGG's adaptive 7x7 average pool resizes for the classifier: the final map is `features`
    [vgg] = list_zoo("classification", "vgg11")
    row = runner.summarize(vgg)
    assert (row.module, row.rf, row.jump) == ("features", (150, 150), (32, 32))
    # EfficientNet's squeeze-and-excitation makes the final map global, and says from where
    [eff] = list_zoo("classification", "efficientnet_b0")
    row = runner.summarize(eff)
    assert row.module == "features" and row.is_global == (True, True)
    # global: the union of all features' RFs, which reaches into the padding (>= the input)
    assert row.global_from == "features.1.0.block.1.avgpool" and row.rf[0] >= 224 and row.jump == (0, 0)


def test_outputs(resnet18_row):
    info = {"wall_s": 1.0, "jobs": 1, "peak_rss_mb": 700.0, "machine": runner.machine(), "command": "rfgraph zoo"}
    md = report.to_markdown([resnet18_row], info)
    assert "## classification" in md and "| resnet18 | 224x224 | layer4 | 7 | 435 | 32 | 0.5 | 217 | no |" in md
    assert "- **resnet18**: conv1 7/2, bn1 7/2, relu 7/2, maxpool 11/4, layer1 43/4" in md
    doc = json.loads(report.to_json([resnet18_row], info))
    assert doc["models"][0]["rf"] == [435, 435] and doc["info"]["command"] == "rfgraph zoo"
    text = report.format_rows([resnet18_row])
    assert text.splitlines()[0].split()[:5] == ["model", "input", "final", "map", "n"]


def test_run_reports_time_and_memory():
    entries = list_zoo("classification", "squeezenet1_1")
    seen = []
    rows, info = runner.run(entries, progress=lambda k, n, e: seen.append((k, n, e and e.name)))
    assert seen == [(0, 1, "squeezenet1_1"), (1, 1, None)] and rows[0].ok
    assert rows[0].peak_rss_mb > 0 and info["peak_rss_mb"] >= rows[0].peak_rss_mb and info["wall_s"] > 0


def test_verify_against_gradient_support():
    # SqueezeNet 1.1: its final map is the 1x1 conv classifier (13x13 at 224, rf 207, jump 16), so
    # the check runs at 288 where the support is interior
    [entry] = list_zoo("classification", "squeezenet1_1")
    row = runner.summarize(entry)
    v = runner.verify(entry, row)
    assert v["status"] == "ok", v
    [check] = v["checks"]
    assert v["input"] == [3, 288, 288] and check["module"] == "classifier.2" and all(check["interior"])
    (lo, hi), _ = check["measured"]
    assert hi - lo + 1 == row.rf[0] == 207


def test_verify_skips_what_does_not_fit():
    [entry] = list_zoo("classification", "resnet18")
    row = runner.summarize(entry)
    v = runner.verify(entry, row, max_activation_bytes=2**20)
    assert v["status"] == "skipped" and "GB of float64 activations > 0 GB" in v["reason"]
    v = runner.verify(entry, row, max_param_bytes=2**20)
    assert v["status"] == "skipped" and "12M parameters" in v["reason"]


@pytest.mark.slow
def test_whole_classification_zoo_is_analysed():
    rows, info = runner.run(list_zoo("classification"))
    assert [r.model for r in rows if not r.ok] == []
    assert all(r.rf and r.module for r in rows)


def test_progress_bar_only_on_a_terminal_unless_forced():
    import io

    with runner.progress_bar(3, file=io.StringIO()) as progress:
        assert progress is None  # not a terminal
    with runner.progress_bar(3, enabled=False) as progress:
        assert progress is None
    pytest.importorskip("tqdm")
    buf = io.StringIO()
    with runner.progress_bar(2, enabled=True, file=buf) as progress:
        for k, e in enumerate(list_zoo("classification", "alexnet,resnet18")):
            progress(k, 2, e)
        progress(2, 2, None)
    assert "resnet18" in buf.getvalue() and "2/2" in buf.getvalue()


def test_summarize_an_smp_model():
    pytest.importorskip("segmentation_models_pytorch")
    from rfgraph.tools.catalogue import list_smp

    [entry] = list_smp("Unet:resnet34", input_size=64)
    row = runner.summarize(entry)
    assert row.ok, row.error
    # the segmentation head is the final map, at the input's size; ResNet-34's RF covers 64 px
    assert (row.module, row.n, row.is_global, row.global_from) == ("segmentation_head", (64, 64), (True, True), "")
    assert row.feature_stages == [] and row.family == "smp"


def test_verify_reads_channels_last_maps_where_the_trace_found_them():
    # the stage's output is (1, 8, 8, 8): read as (N, C, H, W) its "feature (4, 4)" would be a
    # column of 8 rows across the map, whose support spans every input row. The front-end
    # records the layout (module_layouts), and the check reads the map's own features
    from rfgraph import analyze, from_torch, schema
    from rfgraph.tools import verify as V

    from nets import ChannelsLast

    model = V.positive_model(ChannelsLast).eval()
    G = from_torch(model, (3, 16, 16))
    layouts = schema.module_layouts(G)
    assert layouts["stage"] == (1, 2) and layouts["stem"] == layouts["head"] == (2, 3)
    a = analyze(G)
    recs = {"stage": a.module("stage"), "head": a.module("head")}
    [stage, head] = V.compare(model, (3, 16, 16), recs, layouts=layouts)
    assert stage.ok and head.ok, stage.mismatches + head.mismatches
    assert stage.measured == [(7, 9), (7, 9)]  # feature (4, 4) of a 3x3 stride-2 conv, padding 1: 2*4 - 1 .. 2*4 + 1
    [wrong] = V.compare(model, (3, 16, 16), {"stage": recs["stage"]})  # the old NCHW reading
    assert not wrong.ok and wrong.measured[0] == (0, 15)


def test_verify_checks_timm_channels_last_models():
    # timm's MambaOut keeps its stages channels-last; the zoo's check used to skip such models
    pytest.importorskip("timm")
    from rfgraph.tools.catalogue import list_timm

    [entry] = list_timm("mambaout_femto", input_size=64)
    v = runner.verify(entry, runner.summarize(entry))
    assert v["status"] == "ok", v
    assert v["checks"] and all(c["ok"] for c in v["checks"])


def test_spatial_outputs_are_modules_whose_output_is_a_map():
    # a module that works on windows, (N * 4, 16, C), and one that puts them back: one node (the
    # reversal is views), two module outputs; only the second is a map. The shorter name used
    # to win, so the window module was listed (and verify failed to index its output)
    from rfgraph import analyze, from_torch, schema
    from rfgraph.tools import verify as V

    class Windowed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 4)

        def forward(self, x):
            n, c, h, w = x.shape
            win = x.view(n, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 3, 5, 1).reshape(-1, 16, c)
            return self.lin(win)

    class Back(torch.nn.Module):
        def forward(self, win):
            return win.view(1, 2, 2, 4, 4, 4).permute(0, 5, 1, 3, 2, 4).reshape(1, 4, 8, 8)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.win, self.back = torch.nn.Conv2d(1, 4, 3, padding=1), Windowed(), Back()

        def forward(self, x):
            return self.back(self.win(self.stem(x)))

    model = V.positive_model(Net).eval()
    G = from_torch(model, (1, 8, 8))
    a = analyze(G)
    spatial = runner._spatial_outputs(a, G)
    assert [m for _, m in spatial] == ["stem", "back"]
    assert runner.final_map(a, G)[1] == "back"
    checks = V.compare(model, (1, 8, 8), {m: a.module(m) for _, m in spatial}, layouts=schema.module_layouts(G))
    assert all(c.ok for c in checks), [c.mismatches for c in checks]
