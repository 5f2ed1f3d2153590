"""``rfgraph zoo`` as users run it: ``python -m rfgraph zoo ...`` in a subprocess."""

import importlib.util
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="needs torchvision")


def run(*args):
    return subprocess.run([sys.executable, "-m", "rfgraph", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_zoo_one_model_table():
    proc = run("zoo", "--models", "resnet18", "--family", "classification")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:10] == ["model", "input", "final", "map", "n", "rf", "jump", "start", "padding", "global"]
    # layer4 of ResNet-18 at 224: 7x7 features, RF 435, jump 32, start 0.5, padding 217
    assert lines[1].split()[:10] == ["resnet18", "224x224", "layer4", "7", "435", "32", "0.5", "217", "no", "avgpool"]
    assert "1 of 1 models analysed" in proc.stdout
    assert proc.stderr == ""  # no progress line when stderr is not a terminal


def test_zoo_json_and_input_size():
    proc = run("zoo", "--models", "vgg11", "--input-size", "320", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    [m] = doc["models"]
    assert m["input_shape"] == [3, 320, 320] and m["module"] == "features" and m["rf"] == [150, 150]
    assert doc["info"]["machine"]["cpus"] >= 1


def test_zoo_errors():
    proc = run("zoo", "--models", "no_such_net*")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "rfgraph: error: no classification model matches 'no_such_net*' (torchvision.models.list_models() lists them)"]
    proc = run("zoo", "--family", "audio")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = run("zoo", "--jobs", "0")
    assert proc.returncode == 2 and "expected a positive integer" in proc.stderr


def test_zoo_help_has_an_example():
    proc = run("zoo", "--help")
    assert proc.returncode == 0 and "rfgraph zoo --models resnet18,resnet50" in proc.stdout


def test_zoo_progress_bar_when_forced():
    pytest.importorskip("tqdm")
    proc = run("zoo", "--models", "alexnet", "--progress")
    assert proc.returncode == 0, proc.stderr
    # tqdm's bar on stderr (cleared at the end); the table on stdout is unchanged
    assert "alexnet:   0%" in proc.stderr and "0/1" in proc.stderr
    assert proc.stdout.splitlines()[1].split()[:3] == ["alexnet", "224x224", "features"]
    proc = run("zoo", "--models", "alexnet", "--no-progress")
    assert proc.returncode == 0 and proc.stderr == ""
