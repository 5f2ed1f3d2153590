"""rfgraph.answers.queries: the first node covering an extent, per path group; a detector's levels."""

import json

import pytest

import rfgraph
from rfgraph.answers import queries

torch = pytest.importorskip("torch")


def test_resnet18_first_node_seeing_100_pixels():
    torchvision = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model = torchvision.models.resnet18(weights=None)
    a = rfgraph.analyze(model.eval(), (3, 224, 224))
    c = queries.cover(a, 100)
    # layer2's output sees 99 pixels; layer3's first 3x3 conv (jump 8 -> +2*8) 115
    assert a.module("layer2").rf == (99, 99)
    assert c.first["fc"] == "layer3.0.conv1" and a["layer3.0.conv1"].rf == (115, 115)
    # the 1x1 shortcut path is covered first at the join it feeds
    assert [(r.node, r.via) for r in c.frontier["fc"]] == [
        ("layer3.0.conv1", "layer2.1.relu_1"), ("layer3.0.add", "layer3.0.downsample.1")]
    for r in c.frontier["fc"]:  # each covers 100 while the input it comes from does not
        assert min(a[r.node].rf) >= 100 > min(a[r.via].rf)


def test_fasterrcnn_fpn_levels():
    pytest.importorskip("torchvision")
    from rfgraph.tools.catalogue import build_model

    backbone = build_model("fasterrcnn_resnet50_fpn", part="backbone").eval()  # weights=None, meta
    ls = queries.levels(backbone, input_shape=(3, 512, 512))
    assert [lv.node for lv in ls] == ["fpn.layer_blocks.0.0", "fpn.layer_blocks.1.0", "fpn.layer_blocks.2.0",
                                      "fpn.layer_blocks.3.0", "fpn.extra_blocks"]
    assert [lv.stride[0] for lv in ls] == [4, 8, 16, 32, 64] and [lv.n[0] for lv in ls] == [128, 64, 32, 16, 8]
    # the nearest-upsampled top-down path makes the finer levels' RF vary with position
    assert [lv.rf_extent[0] for lv in ls] == [(427, 459), (427, 459), (443, 459), (491, 491), (491, 491)]
    # named by their layer (the outermost module whose output the level is), labelled P<log2 stride>
    assert [(lv.label, lv.module) for lv in ls] == [
        ("P2", "fpn.layer_blocks.0"), ("P3", "fpn.layer_blocks.1"), ("P4", "fpn.layer_blocks.2"),
        ("P5", "fpn.layer_blocks.3"), ("P6", "fpn.extra_blocks")]
    assert "P2     fpn.layer_blocks.0  128  4       427..459  no" in queries.levels_text(ls)


def test_cover_in_seconds_from_the_cli(capsys, tmp_path):
    from rfgraph.cli import main
    from rfgraph.frontends.spec import write_spec

    spec = tmp_path / "wav.json"  # wav2vec2's encoder: k/s 10/5, 3/2 x4, 2/2 x2
    layers = [("c0", "conv", 10, 5, 0)] + [(f"c{i}", "conv", 3, 2, 0) for i in range(1, 5)] + \
             [(f"c{i}", "conv", 2, 2, 0) for i in (5, 6)]
    write_spec(rfgraph.chain(layers, (16000,)), spec)
    assert main(["analyze", str(spec), "--cover", "10ms", "--sample-rate", "16000", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    # 10 ms = 160 samples: c3 sees 10 + 5*2 + 10*2 + 20*2 = 80, c4 80 + 40*2 = 160
    assert doc["cover"]["extent"] == [160] and doc["cover"]["first"] == {"c6": "c4"}
    assert main(["analyze", str(spec), "--cover", "1s"]) == 1
    assert "needs a sample rate" in capsys.readouterr().err
    assert main(["analyze", str(spec), "--cover", "1s", "--sample-rate", "16000"]) == 0
    assert "c6: none (no path to it covers 16000)" in capsys.readouterr().out
