"""Model sources (rfgraph.tools.catalogue.build_source and the CLI's TARGET): every source builds
without the network, factory arguments are literals, a constructor that needs data is built on the
CPU and says so, and a model with two inputs takes two --input-shape."""

import socket
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from rfgraph import cli  # noqa: E402
from rfgraph.tools import catalogue  # noqa: E402

FACTORY = """\
import torch


class Net(torch.nn.Module):
    def __init__(self, width=4, stride=2):
        super().__init__()
        # computes with tensor values: cannot be built on the meta device
        self.k = int(torch.tensor([3]).item())
        self.conv = torch.nn.Conv2d(3, width, self.k, stride=stride, padding=1)

    def forward(self, x):
        return self.conv(x)


def build(width=4, stride=2):
    return Net(width, stride)
"""


@pytest.fixture
def no_network(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise OSError("network access during a test (rfgraph must never download)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def test_parse_source():
    assert catalogue.parse_source("torchvision:resnet18") == ("torchvision", ("resnet18",))
    assert catalogue.parse_source("smp:FPN") == ("smp", ("FPN", "resnet34"))
    assert catalogue.parse_source("a/b.py:make") == ("file", ("a/b.py", "make"))
    with pytest.raises(ValueError):
        catalogue.parse_source("timm:")
    # ultralytics YOLO: a bundled name, or any .yaml/.yml path (a drive letter's colon included)
    assert catalogue.parse_source("yolo:yolo11n") == ("yolo", ("yolo11n",))
    assert catalogue.parse_source("yolov8n-seg.yaml") == ("yolo", ("yolov8n-seg.yaml",))
    assert catalogue.parse_source(r"C:\models\y.YML") == ("yolo", (r"C:\models\y.YML",))
    assert catalogue.parse_source("yolo:cfg/y.yaml") == ("yolo", ("cfg/y.yaml",))


def test_factory_args_are_literals_never_code():
    args = catalogue.parse_factory_args(["n=3", "t=(1, 2)", "s='x'", "word=relu", "code=__import__('os')"])
    assert args == {"n": 3, "t": (1, 2), "s": "x", "word": "relu", "code": "__import__('os')"}
    with pytest.raises(ValueError):
        catalogue.parse_factory_args(["no equals sign"])


def _sources(tmp_path):
    (tmp_path / "usernet.py").write_text(FACTORY)
    out = ["torchvision:fcn_resnet50", "timm:resnet18", f"{tmp_path / 'usernet.py'}:build"]
    for mod, target in (("segmentation_models_pytorch", "smp:Unet:resnet18"), ("transformers", "hf:vit"),
                        ("ultralytics", "yolo:yolov8n"), ("ultralytics", "yolov8n-seg.yaml")):
        try:
            __import__(mod)
        except ImportError:
            continue
        out.append(target)
    return out


def test_every_source_builds_offline(no_network, tmp_path):
    pytest.importorskip("timm")
    for target in _sources(tmp_path):
        built = catalogue.build_source(target)
        assert isinstance(built.model, torch.nn.Module), target
        assert all(len(s) == 3 for s in built.input_shapes), target
    # weights are never asked for: torchvision's backbone and timm's pretrained are off
    assert catalogue.build_kwargs("fcn_resnet50") == {"weights": None, "weights_backbone": None}
    with pytest.raises(ValueError, match="never downloads"):
        catalogue.build_source("timm:resnet18", factory_args={"pretrained": True})


def test_file_factory_needs_data_cpu_build(no_network, tmp_path):
    (tmp_path / "usernet.py").write_text(FACTORY)
    built = catalogue.build_source(f"{tmp_path / 'usernet.py'}:build", factory_args={"width": 6})
    assert "built on the CPU" in built.note and built.model.conv.out_channels == 6
    # conv 3/2, padding 1 on 32: n 16, rf 3, jump 2
    G = cli.load_target(f"{tmp_path / 'usernet.py'}:build", input_size=(32,), factory_args=["stride=2"])
    import rfgraph

    rec = rfgraph.analyze(G)["conv"]
    assert (rec.n, rec.rf, rec.jump) == ((16, 16), (3, 3), (2, 2))


def test_cli_factory_arg_and_note(tmp_path):
    (tmp_path / "usernet.py").write_text(FACTORY)
    proc = subprocess.run([sys.executable, "-m", "rfgraph", "analyze", "usernet.py:build", "--input-size", "32",
                           "--factory-arg", "stride=1"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "built on the CPU" in proc.stderr
    assert proc.stdout.splitlines()[-1].split()[:5] == ["conv", "conv", "conv", "32", "1"]


def test_two_inputs():
    # raft_small takes two frames: one --input-shape each
    G = cli.load_target("raft_small", input_shape=[(3, 128, 128), (3, 128, 128)])
    assert sorted(v for v, op in G.nodes(data="op") if op == "input") == ["input", "input_1"]


def test_yolo_yaml_target_in_a_subprocess(tmp_path):
    # `rfgraph analyze yolov8n.yaml --levels`: the yaml bundled with ultralytics (no file here),
    # built on the meta device (no note on stderr), the Detect head's inputs P3/P4/P5
    pytest.importorskip("ultralytics.nn.tasks", exc_type=ImportError)
    proc = subprocess.run([sys.executable, "-m", "rfgraph", "analyze", "yolov8n.yaml", "--levels"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    rows = [line.split()[:4] for line in proc.stdout.splitlines()[1:]]
    assert rows == [["P3", "model.15", "80", "8"], ["P4", "model.18", "40", "16"], ["P5", "model.21", "20", "32"]]
