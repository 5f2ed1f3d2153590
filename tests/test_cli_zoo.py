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


needs_timm = pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="needs timm")


@needs_timm
def test_zoo_timm_source_in_workers_with_feature_stages():
    proc = run("zoo", "--source", "timm", "--models", "resnet18,vit_tiny*", "--jobs", "2", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    models = {m["model"]: m for m in doc["models"]}
    assert len(models) == 6 and {m["family"] for m in models.values()} == {"timm"}
    assert doc["info"]["backend"] == "process" and doc["info"]["jobs"] == 2 and doc["info"]["machine"]["timm"]
    r = models["resnet18"]
    assert (r["module"], r["rf"], r["jump"], r["start"]) == ("layer4", [435, 435], [32, 32], [0.5, 0.5])
    # timm's feature_info: (module, reduction, rf, jump, start, is_global, global_from) per stage
    stages = {s[0]: s for s in r["feature_stages"]}
    assert list(stages) == ["act1", "layer1", "layer2", "layer3", "layer4"]
    assert stages["act1"][1:4] == [2, [7, 7], [2, 2]] and stages["layer1"][1:4] == [4, [43, 43], [4, 4]]
    vit = models["vit_tiny_patch16_224"]
    assert vit["input_shape"] == [3, 224, 224] and models["vit_tiny_patch16_384"]["input_shape"] == [3, 384, 384]
    assert vit["out_global_from"].startswith("blocks.0.attn")  # the first attention makes it global


@needs_timm
def test_zoo_resume_runs_only_the_new_models(tmp_path):
    path = tmp_path / "timm.jsonl"
    proc = run("zoo", "--source", "timm", "--models", "resnet18", "--resume", path)
    assert proc.returncode == 0, proc.stderr
    assert len(path.read_text().splitlines()) == 1
    proc = run("zoo", "--source", "timm", "--models", "resnet18,resnet10t", "--resume", path, "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    assert len(path.read_text().splitlines()) == 2  # resnet18's row was read back, not made again
    assert "- 1 row read back from an earlier run" in proc.stdout and "## timm" in proc.stdout
    assert "| resnet10t | 176x176 |" in proc.stdout and "| resnet18 | 224x224 | layer4 |" in proc.stdout
    proc = run("zoo", "--source", "timm", "--models", "resnet18,resnet10t", "--resume", path)
    assert "2 of 2 models analysed" in proc.stdout and "(2 rows read back from" in proc.stdout


def test_zoo_source_errors():
    proc = run("zoo", "--source", "timm", "--family", "detection")
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        "rfgraph: error: --family picks torchvision models; it does not apply to --source timm"]
    proc = run("zoo", "--source", "keras")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr
    proc = run("zoo", "--timeout", "0")
    assert proc.returncode == 2 and "expected a positive number of seconds" in proc.stderr
    if importlib.util.find_spec("timm") is not None:
        proc = run("zoo", "--source", "timm", "--models", "no_such_net*")
        assert proc.stderr.splitlines() == [
            "rfgraph: error: no timm model matches 'no_such_net*' (timm.list_models() lists them)"]
