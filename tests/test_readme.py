"""Every code block in the README runs: python blocks in one namespace, console blocks as commands.

`rfgraph ...` lines run through ``python -m rfgraph`` (exit code 0); `make ...` lines run as
``make -n`` (the targets exist and their recipes expand: running them here would recurse).
"""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
HAVE_TORCHVISION = all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))
NEEDS_TORCHVISION = "needs torch and torchvision (the README's torchvision examples)"


def needs_torch(code):
    return re.search(r"^\s*(import|from) torch", code, flags=re.M) is not None


def test_readme_has_blocks():
    kinds = {k for k, _ in BLOCKS}
    assert kinds <= {"python", "console"}, kinds
    assert sum(k == "python" for k, _ in BLOCKS) >= 4


def test_python_blocks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns = {}
    for kind, code in BLOCKS:
        if kind == "python":
            if needs_torch(code) and not HAVE_TORCHVISION:
                pytest.skip(NEEDS_TORCHVISION)  # the blocks before it ran; later ones may use it
            exec(compile(code, "README.md", "exec"), ns)


CONSOLE = [line[2:].split("  #")[0].strip() for kind, code in BLOCKS if kind == "console"
           for line in code.splitlines() if line.startswith("$ ")]


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    """The README's ``model.onnx``: torchvision's ResNet-18 (random weights) exported at 64x64."""
    pytest.importorskip("onnx", reason="the README's ONNX lines need the onnx extra")
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    model = torchvision.models.resnet18(weights=None).eval()
    torch.onnx.export(model, (torch.zeros(1, 3, 64, 64),), str(path), dynamo=False, opset_version=13)
    return path


def zoo_target(command):
    """``rfgraph analyze resnet18``: a model name, not a file, is built with torchvision."""
    words = command.split()
    return words[0] == "rfgraph" and len(words) > 2 and "/" not in words[2] and "." not in words[2]


@pytest.mark.parametrize("command", [
    pytest.param(c, marks=pytest.mark.skipif(zoo_target(c) and not HAVE_TORCHVISION, reason=NEEDS_TORCHVISION))
    for c in CONSOLE])
def test_console_lines(command, tmp_path, request):
    words = command.split()
    (tmp_path / "out").mkdir()
    if "model.onnx" in words:
        (tmp_path / "model.onnx").write_bytes(request.getfixturevalue("onnx_model").read_bytes())
    if words[0] == "make":
        proc = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
    else:
        assert words[0] == "rfgraph"
        args = [str(ROOT / w) if w.startswith("examples/") else w for w in words[1:]]
        proc = subprocess.run([sys.executable, "-m", "rfgraph", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
