"""The command line, run as users run it: ``python -m rfgraph ...`` in a subprocess."""

import importlib.util
import json
import shutil
import subprocess
import sys

import pytest

import rfgraph
from residual_block import residual_block
from render.model_graphs import resnet_like

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
# torchvision targets go through the PyTorch front-end (rfgraph/frontends/torch.py)
needs_torch = pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None or importlib.util.find_spec("rfgraph.frontends.torch") is None,
    reason="needs torch, torchvision and rfgraph's PyTorch front-end")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rfgraph", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def ok(*args, cwd=None):
    proc = run(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def fails(*args, cwd=None, code=1):
    proc = run(*args, cwd=cwd)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    if code == 1:
        lines = proc.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("rfgraph: error: "), proc.stderr
    return proc.stderr


@pytest.fixture
def block(tmp_path):
    return rfgraph.write_spec(residual_block(), tmp_path / "block.json")


@pytest.fixture
def staged(tmp_path):
    """A ResNet-like spec with modules and module_outputs, as the torch front-end writes them."""
    return rfgraph.write_spec(resnet_like((1, 1, 1, 1), size=64), tmp_path / "staged.json")


def test_analyze_table_of_a_spec(block):
    out = ok("analyze", block)
    lines = out.splitlines()
    assert lines[0].split() == ["node", "op", "n", "jump", "rf", "start", "padding", "notes"]
    # add: hull of conv2 (rf 7) and the 1x1 shortcut (rf 1); see tests/ops/test_joins.py
    assert lines[6].split() == ["add", "add", "28", "2", "7", "0.5", "3", "add", "of", "2"]


def test_analyze_formats(block):
    doc = json.loads(ok("analyze", block, "--format", "json"))
    assert doc["schema_version"] == 1 and doc["input_size"] == [56, 56]
    assert [n["name"] for n in doc["nodes"]][-1] == "relu2"
    assert "| add | add | 28 | 2 | 7 | 0.5 | 3 | add of 2 |" in ok("analyze", block, "--format", "markdown")
    assert "add,add,28,2,7,0.5,3,add of 2" in ok("analyze", block, "--format", "csv").splitlines()


def test_analyze_at_a_node(block):
    out = ok("analyze", block, "--at", "add")
    assert "node        add" in out and "  branch    shortcut: rf 1, start 0.5, offset 0" in out
    assert "feature 0   rows -3..3 (in the input 0..3), cols -3..3 (in the input 0..3)" in out
    doc = json.loads(ok("analyze", block, "--at", "add", "--format", "json"))
    assert [n["name"] for n in doc["nodes"]] == ["add"]


def test_analyze_input_size_overrides_the_spec(block):
    doc = json.loads(ok("analyze", block, "--input-size", "32", "--format", "json"))
    assert doc["input_size"] == [32, 32] and doc["nodes"][-1]["n"] == [16, 16]


def test_analyze_stages_and_modules(staged):
    out = ok("analyze", staged).splitlines()
    assert out[0].split()[:3] == ["stage", "node", "op"]
    stages = [line.split()[0] for line in out[1:]]
    assert stages == ["(input)", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4",
                      "avgpool", "fc"]
    assert len(ok("analyze", staged, "--all-nodes").splitlines()) == 1 + len(rfgraph.read_spec(staged))
    module = ok("analyze", staged, "--at", "layer2")
    assert module.startswith("module      layer2 (its output is node layer2.0.relu_2)\nnode        layer2.0.relu_2")
    doc = json.loads(ok("analyze", staged, "--format", "json"))
    assert doc["modules"]["layer2"] == "layer2.0.relu_2"


def test_unknown_node_suggests_names(block):
    err = fails("analyze", block, "--at", "ad")
    assert "no node or module named 'ad'; did you mean add" in err


@needs_dot
def test_render_svg(block, tmp_path):
    out = ok("render", block, "-o", tmp_path / "block.svg")
    assert out == f"wrote {tmp_path / 'block.svg'} (DOT source: {tmp_path / 'block.dot'})\n"
    svg = (tmp_path / "block.svg").read_text()
    assert "<svg" in svg and "add of 2, branch rf 1..7" in svg


def test_render_dot_with_depth(staged, tmp_path):
    ok("render", staged, "-o", tmp_path / "s.dot", "--depth", "0")
    dot = (tmp_path / "s.dot").read_text()
    assert '"module layer1"' in dot and '"layer1.0.conv1"' not in dot
    ok("render", staged, "-o", tmp_path / "all.dot", "--depth", "all")
    assert '"layer1.0.conv1"' in (tmp_path / "all.dot").read_text()
    fails("render", staged, "-o", tmp_path / "x.dot", "--depth", "-1", code=2)


def test_overlay(block, tmp_path):
    out = ok("overlay", block, "--at", "add", "-o", tmp_path / "rf.svg", "--feature", "0,0", "--feature", "27,27")
    assert out == f"wrote {tmp_path / 'rf.svg'}\n"
    svg = (tmp_path / "rf.svg").read_text()
    assert "feature (27, 27): rows 51..57 (sees 51..55)" in svg and "feature (14, 14)" not in svg


def test_factory_target(tmp_path):
    (tmp_path / "mynets.py").write_text(
        "import rfgraph\n"
        "def tiny():\n"
        "    return rfgraph.chain([('c1', 'conv', 3, 2, 1)], 16)\n")
    out = ok("analyze", "mynets:tiny", cwd=tmp_path)
    assert out.splitlines()[-1].split()[:5] == ["c1", "conv", "8", "2", "3"]
    assert "has no attribute 'nope'" in fails("analyze", "mynets:nope", cwd=tmp_path)
    assert "cannot import 'nonexistent_pkg_xyz'" in fails("analyze", "nonexistent_pkg_xyz:f", cwd=tmp_path)


# -- bad input ----------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    err = fails("analyze", tmp_path / "missing.json")
    assert err == f"rfgraph: error: no such file: {tmp_path / 'missing.json'}\n"


def test_malformed_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "nodes": [}')
    assert f"rfgraph: error: {bad}: invalid JSON at line 1 column 33" in fails("analyze", bad)


def test_cycle_in_a_spec(tmp_path):
    path = tmp_path / "cycle.json"
    path.write_text(json.dumps({"schema_version": 1, "nodes": [
        {"name": "x", "op": "input", "size": [8]}, {"name": "a", "op": "conv", "kernel": 1},
        {"name": "b", "op": "add"}], "edges": [["x", "b"], ["b", "a"], ["a", "b"]]}))
    assert "the graph has a cycle" in fails("analyze", path)
    assert "the graph has a cycle" in fails("render", path, "-o", tmp_path / "c.svg")


def test_debug_shows_the_traceback(tmp_path):
    proc = run("analyze", tmp_path / "missing.json", "--debug")
    assert proc.returncode == 1 and "Traceback" in proc.stderr and "FileNotFoundError" in proc.stderr
    proc = run("--debug", "analyze", tmp_path / "missing.json")
    assert "Traceback" in proc.stderr


@pytest.mark.parametrize("command", [[], ["analyze"], ["render"], ["overlay"]])
def test_every_help_shows_an_example(command):
    out = ok(*command, "--help")
    assert "examples:" in out and "rfgraph " in out.split("examples:")[1]


def test_usage_errors_exit_2(block):
    assert "required" in fails(code=2)
    fails("render", block, code=2)  # no -o
    fails("analyze", block, "--input-size", "0", code=2)
    fails("analyze", block, "--input-size", "3", "--input-shape", "3,8,8", code=2)


# -- torchvision models (need torch, torchvision and rfgraph.frontends.torch) -------------------------------


@needs_torch
def test_torchvision_model_stages_and_module_details():
    out = ok("analyze", "resnet18").splitlines()
    rows = {line.split()[0]: line.split() for line in out[1:]}
    # ResNet-18 at 224: conv1 k7 s2 -> rf 7, j 2; maxpool k3 s2 -> 11, j 4; layer1 four 3x3 -> 43;
    # layer2 -> 51 (j 8) + 3*16 = 99; layer3 -> 115 (j 16) + 3*32 = 211; layer4 -> 243 (j 32) + 3*64 = 435
    assert rows["layer4"][3:6] == ["7", "32", "435"]
    assert "global (from avgpool)" in " ".join(rows["avgpool"])  # and the note of the approximation
    detail = ok("analyze", "torchvision:resnet18", "--at", "layer1", "--input-size", "64")
    assert detail.startswith("module      layer1 (its output is node ")


@needs_torch
def test_unknown_torchvision_model():
    err = fails("analyze", "resnet5")
    assert "unknown model 'resnet5'" in err and "did you mean resnet50" in err
