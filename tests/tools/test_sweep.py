"""rfgraph.tools.runner's sweep: isolated workers (a crash or a hang costs one row), the resumable
JSON-lines file, the Ray backend (slow), and the same rows whichever way they are made."""

import json
import sys
import textwrap

import pytest

torch = pytest.importorskip("torch")

from rfgraph.tools import runner  # noqa: E402
from rfgraph.tools.catalogue import ZooModel  # noqa: E402

NETS = '''
import os
import time

import torch


def ok(width=4):
    with open(os.path.join(os.path.dirname(__file__), "pids.txt"), "a") as f:
        f.write(f"{os.getpid()}\\n")  # which worker built it
    return torch.nn.Sequential(torch.nn.Conv2d(3, width, 3), torch.nn.Conv2d(width, width, 3, stride=2))


def crash():
    os._exit(3)  # as a segfault or the OOM killer would: no exception, no row from the worker


def hang():
    time.sleep(600)


def fail():
    raise RuntimeError("this constructor always fails")
'''


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(textwrap.dedent(NETS))

    def entry(factory, side=16):
        return ZooModel(f"{path}:{factory}", "file", (3, side, side), source="file")

    entry.pids = lambda: (tmp_path / "pids.txt").read_text().split()
    return entry


def _errors(rows):
    return [r.error.split(":")[0] if not r.ok else "ok" for r in rows]


def test_a_crash_or_a_hang_costs_only_its_row(nets):
    entries = [nets("crash"), nets("ok"), nets("hang"), nets("fail"), nets("ok", 20)]
    seen, saved = [], []
    rows, info = runner.run_isolated(entries, jobs=2, timeout=5, on_row=saved.append,
                                     progress=lambda k, n, e: seen.append(k))
    # rows in the order of the entries; the worker that died or hung was replaced
    assert [r.model for r in rows] == [e.label for e in entries]
    assert _errors(rows) == ["WorkerCrashed", "ok", "Timeout", "RuntimeError", "ok"]
    assert "exit code 3" in rows[0].error and "more than 5 s" in rows[2].error
    assert "this constructor always fails" in rows[3].error
    # 16 -> 3x3 conv 14 -> 3x3/2 conv 6: rf 5, jump 2
    assert (rows[1].rf, rows[1].jump, rows[1].n) == ((5, 5), (2, 2), (6, 6))
    assert rows[4].n == (8, 8) and rows[1].cpu_s > 0
    assert sorted(r.model for r in saved) == sorted(e.label for e in entries)
    assert seen == [0, 1, 2, 3, 4, 5] and info["backend"] == "process" and info["timeout_s"] == 5


def test_a_worker_imports_once_and_handles_model_after_model(nets):
    rows, _ = runner.run_isolated([nets("ok"), nets("ok", 6), nets("ok", 8)], jobs=1, timeout=60)
    assert all(r.ok for r in rows)
    assert len(set(nets.pids())) == 1  # one worker process built all three


def test_run_picks_in_process_or_isolated(nets, monkeypatch):
    calls = []
    monkeypatch.setattr(runner, "run_isolated", lambda entries, **kw: calls.append(kw) or ([], {}))
    runner.run([nets("ok")], jobs=2)
    runner.run([nets("ok")], timeout=30)
    runner.run([nets("ok")], jobs=2, verify=True)
    assert [(c["jobs"], c["timeout"], c["verify"]) for c in calls] == [(2, 120.0, False), (1, 30, False), (2, 600.0, True)]
    rows, info = runner.run([nets("ok")])  # jobs=1, no timeout: this process
    assert rows[0].ok and info["backend"] == "in-process" and calls[3:] == []
    with pytest.raises(ValueError, match="unknown backend 'dask'"):
        runner.run([nets("ok")], backend="dask")


def test_resume_skips_the_rows_already_saved(nets, tmp_path):
    path = tmp_path / "out" / "sweep.jsonl"
    first = [nets("ok"), nets("fail")]
    rows, info = runner.sweep(first, resume=path)
    assert _errors(rows) == ["ok", "RuntimeError"] and info["resumed"] == 0
    assert len(path.read_text().splitlines()) == 2
    with path.open("a") as f:
        f.write('{"model": "half a line')  # a sweep killed while writing
    seen = []
    more = first + [nets("ok", 12)]
    rows, info = runner.sweep(more, resume=path, progress=lambda k, n, e: seen.append((k, n)))
    assert info["resumed"] == 2 and seen[0] == (0, 1)  # only the new model runs
    assert [r.model for r in rows] == [e.label for e in more] and _errors(rows) == ["ok", "RuntimeError", "ok"]
    # the rows read back are the same rows (tuples and all)
    assert rows[0].rf == (5, 5) and rows[0].input_shape == (3, 16, 16) and rows[2].n == (4, 4)
    # another input size is another row
    assert runner.row_key(nets("ok", 32)) not in {runner.row_key(r) for r in runner.read_rows(path)}
    # a row made without the gradient-support check is not done for a sweep with it
    rows, info = runner.sweep(first[:1], resume=path, verify=True)
    assert info["resumed"] == 0 and rows[0].verify["status"] == "ok"
    rows, info = runner.sweep(first[:1], resume=path, verify=True)
    assert info["resumed"] == 1 and rows[0].verify["status"] == "ok"


def test_rows_survive_json():
    import dataclasses

    row = runner.ZooRow("m", "timm", (3, 8, 8), ok=True, rf=(3, 3), stages=[("conv", (3, 3), (1, 1), False, "")],
                        feature_stages=[("conv", 1, (3, 3), (1, 1), (0.5, 0.5), False, "")])
    saved = json.loads(json.dumps(dataclasses.asdict(row)))
    assert runner.row_from_dict(saved) == row
    # a file written by a later version with a field this one does not know
    assert runner.row_from_dict({**saved, "added_later": 1}) == row


def test_ray_missing_says_how_to_install(monkeypatch):
    from rfgraph.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'rfgraph\[ray\]'"):
        runner.run_ray([], jobs=1)


@pytest.mark.slow
def test_ray_backend_makes_the_same_rows(nets):
    ray = pytest.importorskip("ray")
    entries = [nets("ok"), nets("crash"), nets("hang"), nets("fail"), nets("ok", 20)]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        rows, info = runner.run(entries, jobs=2, timeout=10, backend="ray")
    finally:
        ray.shutdown()
    assert info["backend"] == "ray" and [r.model for r in rows] == [e.label for e in entries]
    assert _errors(rows) == ["ok", "WorkerCrashed", "Timeout", "RuntimeError", "ok"]
    here, _ = runner.run([entries[0], entries[4]])
    for a, b in zip((rows[0], rows[4]), here):
        assert (a.module, a.n, a.rf, a.jump, a.start, a.is_global) == (b.module, b.n, b.rf, b.jump, b.start, b.is_global)
