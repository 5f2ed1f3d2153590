"""Where a timm sweep's time goes: a seeded sample of timm models, per model and phase.

The sweep's target is all of ``timm.list_models()`` (1371 architectures in timm 1.0.31) in under
3 minutes of wall time with ``--jobs 2``. This script measures a sample instead of the whole sweep:

1. **per model and phase, in this process** (after one warm-up model): build (the model on the
   meta device), trace (``from_torch``), analyze (propagation + the records the row reads) and the
   process' CPU time for the whole row -- exactly :func:`rfgraph.tools.runner.model_row`, the
   per-model function every backend runs;
2. **before/after** on the same models in the same run: the build with timm's own initialisers
   running on meta (before the value-write skip of ``catalogue._no_init_on_meta``) and the
   analysis with every node's record made (``summarize(all_records=True)``, as before);
3. **start-up**: importing torch + timm + rfgraph in this process, listing the models, and the
   time until ``--jobs`` workers are ready: forked from the pool's fork server (which imports
   once), and, for comparison, spawned interpreters that each import (as before);
4. **the sample through the real pool** (:func:`rfgraph.tools.runner.run_isolated`, ``--jobs``
   workers, timeout 120 s): the wall time, as a sweep sees it.

From these it projects the whole sweep (CPU per model x models / jobs + start-up) and writes
``benchmarks/results/zoo_speed.md``; the machine's load average is reported next to each figure
(this machine is shared: a busy neighbour slows every phase alike).

    python benchmarks/zoo_speed.py                      # 40 models, seed 0, 2 jobs
    python benchmarks/zoo_speed.py --sample 60 --seed 1 --output /tmp/speed.md
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "zoo_speed.md"


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sample", type=int, default=40, help="models in the sample (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random.Random(seed).sample of timm.list_models()")
    p.add_argument("--jobs", type=int, default=2, help="worker processes for the pool run (default 2)")
    p.add_argument("--output", type=Path, default=RESULTS)
    return p.parse_args()


def _workers_ready(jobs, packages):
    """Seconds until ``jobs`` sweep workers (started together, as :func:`run_isolated` starts
    them: from its fork server, which imports first) are ready for a model; and the same for
    spawned interpreters that import each (how the workers started before)."""
    import multiprocessing as mp

    from rfgraph.tools import runner

    return _ready(runner._context(packages), jobs, packages), _ready(mp.get_context("spawn"), jobs, packages)


def _ready(ctx, jobs, packages):
    from rfgraph.tools import runner

    t = time.perf_counter()
    procs = []
    for _ in range(jobs):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=runner._worker, args=(child, packages), daemon=True)
        proc.start()
        procs.append((proc, parent))
    ready = []
    for proc, conn in procs:
        conn.recv()
        ready.append(time.perf_counter() - t)
        conn.send(None)
        proc.join(5)
    return max(ready)


def _load():
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main():
    args = _parse()
    t = time.perf_counter()
    import timm  # noqa: F401 - timed here
    import torch  # noqa: F401

    import rfgraph.frontends.torch  # noqa: F401
    from rfgraph.tools import catalogue, runner
    from rfgraph.tools.catalogue import list_timm

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    everything = list_timm()
    list_s = time.perf_counter() - t
    sample = sorted(random.Random(args.seed).sample(everything, args.sample), key=lambda e: e.name)
    loads = {"start": _load()}

    # 1 + 2: per model, after then before (the before build has its own meta-kernel warm-up cost,
    # so it runs second: the trace numbers of the 'after' row are the ones a sweep sees)
    runner.model_row(list_timm("resnet18")[0])  # warm-up: lazy imports, first dispatches
    after, before = [], []
    for e in sample:
        after.append(runner.model_row(e))
        with _init_on_meta(catalogue):
            before.append(runner.summarize(e, all_records=True))
    loads["in-process"] = _load()

    # 3: workers' start-up
    ready_s, spawn_s = _workers_ready(args.jobs, runner._packages(sample))
    loads["start-up"] = _load()

    # 4: the sample through the pool
    rows, info = runner.run_isolated(sample, jobs=args.jobs, timeout=120.0)
    loads["pool"] = _load()

    md = _report(args, sample, after, before, rows, info, import_s, list_s, (ready_s, spawn_s), len(everything), loads)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(md)
    print(md.split("\n## Per model")[0])
    print(f"wrote {args.output}")


@contextlib.contextmanager
def _init_on_meta(catalogue):
    """The build as it was: value writes on meta run (timm's initialisers' Python meta kernels)."""
    saved = catalogue._no_init_on_meta
    catalogue._no_init_on_meta = contextlib.nullcontext
    try:
        yield
    finally:
        catalogue._no_init_on_meta = saved


def _sum(rows, key):
    return sum(getattr(r, key) for r in rows)


def _report(args, sample, after, before, pool_rows, info, import_s, list_s, ready, total, loads):
    from rfgraph.tools import runner

    ready_s, spawn_s = ready
    n = len(sample)
    ok = sum(r.ok for r in after)
    cpu = _sum(after, "cpu_s")
    per_model = cpu / n
    phases = {k: _sum(after, k) for k in ("build_s", "trace_s", "analyze_s")}
    old = {k: _sum(before, k) for k in ("build_s", "analyze_s")}
    startup = import_s + list_s + ready_s
    projected_cpu = per_model * total / args.jobs + startup
    pool_wall = info["wall_s"]
    pool_rate = max(pool_wall - ready_s, 1e-9) / n  # seconds per model with jobs workers, after start-up
    projected_pool = pool_rate * total + ready_s + import_s + list_s
    m = runner.machine()
    med = statistics.median(r.cpu_s for r in after)
    slow = sorted(after, key=lambda r: -r.cpu_s)[:8]
    cmd = "python benchmarks/zoo_speed.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out = [
        "# Speed of the timm sweep: where the time goes", "",
        f"`{cmd}` on {datetime.date.today().isoformat()}: a sample of {n} of timm {m.get('timm', '?')}'s "
        f"{total} architectures (`random.Random({args.seed}).sample`), {ok} analysed. Machine: "
        f"{m.get('cpu', '?')}, {m.get('cpus_usable', m.get('cpus'))} usable CPUs shared with other jobs; "
        f"torch {m.get('torch')}. Load average (1/5/15 min) at the start {loads['start']}, after the "
        f"in-process runs {loads['in-process']}, after the pool run {loads['pool']}.", "",
        "## Per phase, on the sample (one process, after a warm-up model)", "",
        "| phase | sum over the sample, s | per model, s | before this work, s |",
        "| --- | ---: | ---: | ---: |",
        f"| build (meta device) | {phases['build_s']:.2f} | {phases['build_s'] / n:.3f} | {old['build_s']:.2f} |",
        f"| trace (`from_torch`) | {phases['trace_s']:.2f} | {phases['trace_s'] / n:.3f} | (unchanged) |",
        f"| analyze (the row's records) | {phases['analyze_s']:.2f} | {phases['analyze_s'] / n:.3f} | "
        f"{old['analyze_s']:.2f} (every record) |",
        f"| **CPU for the whole row** (`model_row`) | **{cpu:.2f}** | **{per_model:.3f}** (median {med:.3f}) | |",
        "",
        "## Start-up (paid once per sweep, or once per worker)", "",
        "| what | s |", "| --- | ---: |",
        f"| import torch + timm + rfgraph (the parent) | {import_s:.1f} |",
        f"| list the {total} models with their pretrained_cfg input sizes | {list_s:.2f} |",
        f"| {args.jobs} workers ready, forked from the fork server (it imports torch + timm + rfgraph once) | {ready_s:.1f} |",
        f"| before: {args.jobs} spawned workers ready (each imports them, at the same time) | {spawn_s:.1f} |",
        "",
        f"## The sample through the pool (`run_isolated`, {args.jobs} workers)", "",
        f"{n} models in **{pool_wall:.1f} s wall** including the workers' start-up "
        f"({sum(r.ok for r in pool_rows)} analysed); {pool_rate:.3f} s per model after start-up, "
        f"{pool_rate * args.jobs:.3f} s per model per worker; the workers' CPU per model "
        f"{_sum(pool_rows, 'cpu_s') / n:.3f} s (in one process: {per_model:.3f} s). Wall above CPU is "
        "time the workers waited for a core.", "",
        "## Projection for the whole sweep", "",
        f"- from the CPU per model: {per_model:.3f} s x {total} / {args.jobs} jobs + {startup:.0f} s start-up "
        f"= **{projected_cpu:.0f} s** (an idle machine: the two workers each get a core)",
        f"- from the pool's rate on this sample: {pool_rate:.3f} s x {total} + {startup:.0f} s "
        f"= **{projected_pool:.0f} s** (this machine as loaded during the run)",
        "- target: 180 s. " + ("Both projections are under it." if max(projected_cpu, projected_pool) < 180 else
                               "Met on an idle machine only." if projected_cpu < 180 else
                               "Not met by this projection: see below."),
        "",
        "## Slowest rows of the sample (CPU, s)", "",
        "| model | nodes | build | trace | analyze | CPU |", "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    out += [f"| {r.model} | {r.nodes} | {r.build_s:.3f} | {r.trace_s:.3f} | {r.analyze_s:.3f} | {r.cpu_s:.3f} |"
            for r in slow]
    out += ["", "## Per model", "",
            "| model | input | nodes | build | trace | analyze | CPU | before: build | before: analyze | error |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for a, b in zip(after, before):
        out.append(f"| {a.model} | {'x'.join(map(str, a.input_shape[1:]))} | {a.nodes} | {a.build_s:.3f} | "
                   f"{a.trace_s:.3f} | {a.analyze_s:.3f} | {a.cpu_s:.3f} | {b.build_s:.3f} | {b.analyze_s:.3f} | "
                   f"{a.error.replace('|', '/')[:80]} |")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
