"""Bad input on the command line ends in one line ``rfgraph: error: ...`` (exit 1, no traceback),
and a reader that leaves (``| head -0``) or a closed stdout ends quietly.

Run as users run it: ``python -m rfgraph ...`` in a subprocess.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torchvision") is None, reason="needs torch and torchvision")

SPEC = {"schema_version": 1,
        "nodes": [{"name": "x", "op": "input", "size": [8, 8]}, {"name": "c", "op": "conv", "kernel": 3}],
        "edges": [["x", "c"]]}


def run(*args, cwd=None, **kw):
    return subprocess.run([sys.executable, "-m", "rfgraph", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, **kw)


def one_line_error(proc):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfgraph: error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def spec(tmp_path, name="net.json", graph=None, prefix=b""):
    data = dict(SPEC, **({"graph": graph} if graph is not None else {}))
    path = tmp_path / name
    path.write_bytes(prefix + json.dumps(data).encode())
    return path


# -- spec files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, words", [
    (["c"], "'graph'.module_outputs must be an object mapping module names to node names, got a list"),
    ("c", "got a string"),
    (3, "got a number"),
])
def test_module_outputs_not_a_mapping(tmp_path, value, words):
    path = spec(tmp_path, graph={"module_outputs": value})
    for args in (("analyze", path), ("analyze", path, "--at", "c"), ("render", path, "-o", tmp_path / "n.dot")):
        msg = one_line_error(run(*args))
        assert words in msg and "net.json" in msg, msg


def test_module_outputs_naming_a_missing_node(tmp_path):
    path = spec(tmp_path, graph={"module_outputs": {"layer1": "nope"}})
    for args in (("analyze", path), ("analyze", path, "--at", "layer1"), ("overlay", path, "--at", "c", "-o",
                                                                            tmp_path / "o.svg")):
        msg = one_line_error(run(*args))
        assert "net.json" in msg and "'layer1'" in msg and "'nope'" in msg and "not a node" in msg, msg
        assert "did you mean" not in msg


def test_outputs_naming_a_missing_node(tmp_path):
    msg = one_line_error(run("analyze", spec(tmp_path, graph={"outputs": ["c", "q"]})))
    assert "'graph'.outputs names 'q'" in msg


def test_spec_with_a_byte_order_mark_is_accepted(tmp_path):
    proc = run("analyze", spec(tmp_path, prefix="\ufeff".encode()), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1].startswith("c,conv,6,1,3")


def test_at_a_module_whose_node_is_missing_says_so(tmp_path):
    # a factory's graph is not a spec file: the accessor's message, not "did you mean layer1?"
    (tmp_path / "badmeta.py").write_text(textwrap.dedent("""
        import networkx as nx

        def make():
            G = nx.DiGraph()
            G.add_node("x", op="input", size=(8, 8))
            G.add_node("c", op="conv", kernel=3, module="layer2")
            G.add_edge("x", "c")
            G.graph["module_outputs"] = {"layer1": "gone"}
            return G
    """))
    msg = one_line_error(run("analyze", "badmeta:make", "--at", "layer1", cwd=tmp_path))
    assert "'layer1'" in msg and "'gone'" in msg and "did you mean layer1" not in msg, msg


# -- stdout that goes away ---------------------------------------------------------------------------


def test_closed_stdout_is_a_quiet_exit(tmp_path):
    path = spec(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "rfgraph", "analyze", str(path), "--all-nodes"],
                          stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300,
                          preexec_fn=lambda: os.close(1))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_reader_that_leaves_is_a_quiet_exit(tmp_path, fmt):
    # `rfgraph analyze net.json | head -0`: the pipe is closed before rfgraph writes
    path = spec(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "rfgraph", "analyze", str(path), "--format", fmt],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=300)
    assert proc.returncode == 0 and err == "", err


def test_errors_still_reach_stderr_with_stdout_closed(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rfgraph", "analyze", str(tmp_path / "missing.json")],
                          stderr=subprocess.PIPE, text=True, timeout=300, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 1 and proc.stderr.startswith("rfgraph: error: no such file"), proc.stderr


# -- torch models: --on-unsupported ------------------------------------------------------------------


FFT_MODEL = """
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return torch.fft.fft2(self.conv(x)).real
"""


@needs_torch
def test_on_unsupported_policies(tmp_path):
    (tmp_path / "fftnet.py").write_text(textwrap.dedent(FFT_MODEL))
    msg = one_line_error(run("analyze", "fftnet:Net", "--input-size", "16", cwd=tmp_path))
    assert "aten::_fft" in msg and "--on-unsupported global or identity" in msg
    proc = run("analyze", "fftnet:Net", "--input-size", "16", "--all-nodes", "--format", "json",
               "--on-unsupported", "global", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    nodes = {n["name"]: n for n in json.loads(proc.stdout)["nodes"]}
    assert nodes["conv"]["rf"] == [3, 3]
    assert all(nodes[v]["is_global"] == [True, True] for v in nodes if v not in ("input", "conv"))
    proc = run("analyze", "fftnet:Net", "--input-size", "16", "--all-nodes", "--on-unsupported", "identity",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "treated as identity" in proc.stdout
    proc = run("analyze", "fftnet:Net", "--on-unsupported", "sometimes", cwd=tmp_path)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


# -- zoo ---------------------------------------------------------------------------------------------


@needs_torch
def test_zoo_failure_shows_the_error_column():
    proc = run("zoo", "--models", "alexnet", "--input-size", "8", "--no-progress")
    msg = one_line_error(proc)
    assert "see the error column" in msg
    header, row = proc.stdout.splitlines()[:2]
    assert header.split()[-1] == "error"
    assert row.startswith("alexnet") and "ERROR" in row and "too small" in row


def test_render_options_and_file_names(tmp_path):
    import subprocess
    import sys

    import rfgraph

    G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8, 8))
    G.add_node("relu", op="identity")
    G.add_edge("c", "relu")
    spec = tmp_path / "net.json"
    rfgraph.write_spec(G, spec)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "rfgraph", "render", str(spec), *args],
                              capture_output=True, text=True, cwd=tmp_path)

    ok = run("-o", str(tmp_path / "net.dot"), "--rankdir", "LR", "--no-legend", "--title", "T",
             "--keep-pointwise")
    assert ok.returncode == 0, ok.stderr
    dot = (tmp_path / "net.dot").read_text()
    assert "rankdir=LR" in dot and 'label="T"' in dot and '"legend"' not in dot and '"relu" [' in dot
    for args, words in ((["-o", str(tmp_path / "net.jpg")], "unknown diagram format 'jpg'"),
                        (["-o", str(tmp_path / "x.svg"), "--format", "png"], "named .svg but --format png"),
                        (["-o", str(tmp_path)], "is a directory")):
        bad = run(*args)
        assert bad.returncode == 1 and bad.stderr.startswith("rfgraph: error:") and words in bad.stderr
        assert "Traceback" not in bad.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.dot", "net.json"]  # nothing stray
