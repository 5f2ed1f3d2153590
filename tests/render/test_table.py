"""The plain-text table, the per-stage view and ``describe``; the library prints what the CLI prints."""

import pytest

import rfgraph
from rfgraph import cli
from rfgraph.render.stages import misaligned_summary, select, stages
from rfgraph.render.table import describe, format_table, rows
from model_graphs import resnet_like


def analyze_cli(capsys, *args):
    assert cli.main(["analyze", *map(str, args)]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("graph", ["tiny", "staged"])
def test_format_table_prints_what_rfgraph_analyze_prints(graph, tiny, tmp_path, capsys):
    G = tiny if graph == "tiny" else resnet_like((1, 1, 1, 1), size=64)
    spec = rfgraph.write_spec(G, tmp_path / "net.json")
    a = rfgraph.analyze(rfgraph.read_spec(spec))
    assert analyze_cli(capsys, spec) == format_table(a) + "\n"
    assert analyze_cli(capsys, spec, "--all-nodes") == format_table(a, a.order) + "\n"


def test_stage_view():
    a = rfgraph.analyze(resnet_like((1, 1, 1, 1), size=64))
    top = stages(a)
    assert list(top)[:2] == ["conv1", "bn1"] and top["layer2"] == "layer2.0.relu_2"
    nodes, modules = select(a)
    assert modules == top and nodes[0] in a.inputs and nodes[-1] in a.sinks
    lines = format_table(a).splitlines()
    assert lines[0].split()[:3] == ["stage", "node", "op"]
    assert [line.split()[0] for line in lines[1:]] == ["(input)", "conv1", "bn1", "relu", "maxpool", "layer1",
                                                       "layer2", "layer3", "layer4", "avgpool", "fc"]
    # explicit nodes: no stage column unless modules are given
    assert format_table(a, ["layer2.0.relu_2"]).split()[0] == "node"
    assert format_table(a, ["layer2.0.relu_2"], modules={"layer2": "layer2.0.relu_2"}).splitlines()[1].startswith(
        "layer2  layer2.0.relu_2")


def test_misaligned_joins_footer(tiny):
    a = rfgraph.analyze(tiny)
    assert misaligned_summary(a) == "1 misaligned join: add"
    assert format_table(a).endswith("\n\n1 misaligned join: add")
    assert "misaligned" not in format_table(rows(a))  # rows carry no analysis
    assert misaligned_summary(rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, 1)], 8))) == ""


def test_describe_a_module_output(tiny):
    a = rfgraph.analyze(tiny)
    text = describe(a["add"], module="block")
    assert text.startswith("module      block (its output is node add)\nnode        add\n")
    assert text.split("\n", 1)[1] == describe(a["add"])
    # c1 3x3 s2 p1 on 8 pixels: feature 3 covers 2*3 - 1 .. 2*3 + 1 = 5..7
    assert "feature 3   rows 5..7 (in the input 5..7)" in describe(
        rfgraph.analyze(rfgraph.chain([("c1", "conv", 3, 2, 1)], 8))["c1"])
