"""Every example runs (smoke) and prints the numbers it is about."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

EXPECT = {
    "classic_chain.py": ["fc6-conv", "355", "113.5"],
    "residual_block.py": ["add", "misaligned joins: none"],
    "inception_block.py": ["rf (H, W) = (7, 7)", "a cross, not a square"],
    "dilated_stack.py": ["dilations (2, 2, 2): rf 13, contiguous False", "dilations (1, 2, 5): rf 17, contiguous True"],
    "misaligned.py": ["MISALIGNED join 'add'", "differ by (1, 1)", "aligned: no misaligned joins"],
    "own_model.py": ["down2: rf (9, 9)", "misaligned join add: centres differ by (2, 2)"],
    "torchvision_models.py": ["layer4.2.relu_2", "427", "Mixed_7c", "overlay of three layer2 features"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECT)


# examples that build torchvision models
NEEDS = {"torchvision_models.py": ("torch", "torchvision")}


def missing(name):
    return [m for m in NEEDS.get(name, ()) if importlib.util.find_spec(m) is None]


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=pytest.mark.skipif(bool(missing(n)), reason=f"needs {', '.join(missing(n))}"))
    for n in sorted(EXPECT)])
def test_example_runs(name, tmp_path):
    env = dict(os.environ, RFGRAPH_OUT=str(tmp_path))
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, env=env,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for words in EXPECT[name]:
        assert words in proc.stdout, (name, words)
