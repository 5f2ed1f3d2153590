"""Zoo benchmark: every torchvision model traced and analysed in one process, with timings.

A thin script over :mod:`rfgraph.tools` and :mod:`rfgraph.render.zoo` (the same code as ``rfgraph zoo``). It writes a Markdown
table grouped by family and the JSON of every row, with the machine, the command, the wall time,
the time split (import / build / trace / analyze) and the peak RSS:

    python benchmarks/zoo.py                        # classification -> results/zoo.md, zoo.json
    python benchmarks/zoo.py --family all --name zoo_all
    python benchmarks/zoo.py --verify               # + gradient support -> results/verify.md, .json
    python benchmarks/zoo.py --baseline --name zoo_baseline   # front-end speed-ups switched off
    python benchmarks/zoo.py --profile              # + cProfile summary in results/<name>_profile.txt
    python benchmarks/zoo.py --jobs 2               # worker processes (isolated: a crash costs a row)

Models are built with weights=None on the meta device (no download, no weight memory).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import datetime  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"

# What was changed to make the sweep fast (measured on this benchmark; see --baseline).
CHANGES = """\
## Where the time goes, and what was changed

Per model the work is: **build** (construct the torchvision module on the meta device), **trace**
(one forward pass on meta tensors under rfgraph's dispatch mode: torch runs each op's meta kernel,
rfgraph translates the op into a graph node) and **analyze** (`rfgraph.analyze` plus materialising
every node's record). Importing torch and torchvision is a fixed cost of about 3 s per process.

Profiling the sweep (`--profile`) showed that rfgraph's own code was a small part of it; the time
went into PyTorch's *Python* meta kernels and initialisers:

1. **Memoised meta kernels** (`rfgraph/frontends/torch.py`, `_meta_call`). Batch norm's meta
   kernel is a Python decomposition (about 3 ms per call) and every elementwise op computes its
   output's strides in `torch._refs`/`torch._prims`. On meta tensors an op's output metadata is a
   pure function of its inputs' metadata and its non-tensor arguments, and networks repeat the
   same shapes block after block, so functional ops (no mutation, no aliasing, fresh Tensor
   outputs, only meta tensor arguments) run once per distinct signature and are replayed with
   `torch.empty_strided`; eval-mode batch norm's outputs are made directly (`_bn_no_training`,
   pinned by a test against the real meta kernel).
2. **No initialisation on meta** (`meta_model`, `_skip_meta_init`). `torch.nn.init` functions
   (kaiming/trunc-normal/uniform fills) run Python reference kernels on meta tensors, which have
   no values to fill; while a model is built they now return meta tensors untouched. The CLI's
   torchvision targets use `meta_model` too.

`--baseline` switches both off to reproduce the "before" numbers on the same machine.

What remains (cProfile shares of the trace, which inflate Python code): about 40% torch's meta
kernels (the first call per signature), 25-30% rfgraph's op translation (`torch_ops.handle`:
arguments bound by name, dimension tags, graph nodes, the user's source line), the rest the models'
own Python `forward` and the module hooks that name nodes after module qualnames.

Analysis is now a third of the sweep, nearly all of it `is_global`: the engine computes it on first
access from exact per-feature pixel sets (bounds of every ancestor), about 10 ms per record
queried, and a zoo row queries the final map and every stage. Propagation and all records of all
80 models take about 1 s. Records are plain values (no reference back to their analysis), so a
model's graph and records are freed as soon as its row is made: the sweep needs no garbage
collections of its own.
"""


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default="classification",
                   choices=("classification", "segmentation", "detection", "video", "optical_flow", "all"))
    p.add_argument("--models", metavar="PATTERN", help="glob pattern(s), comma-separated")
    p.add_argument("--input-size", type=int, metavar="N")
    p.add_argument("--verify", action="store_true", help="also check every model by gradient support")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (rfgraph.tools.runner.run_isolated); 1 = this process")
    p.add_argument("--name", help="results/<name>.md and .json (default: zoo, or verify with --verify)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--baseline", action="store_true",
                   help="switch off the front-end speed-ups (memoised meta kernels, no init on meta)")
    p.add_argument("--profile", action="store_true", help="write a cProfile summary next to the results")
    p.add_argument("--compare-jobs", type=int, default=2, metavar="N",
                   help="after the sweep, time it again with N worker processes (0: skip; "
                        "only for a plain one-process run)")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p.parse_args()


def _before_after(info, out_dir):
    """Lines comparing this run with results/zoo_baseline.json (the speed-ups switched off)."""
    import json

    path = out_dir / "zoo_baseline.json"
    if not path.exists():
        return []
    base = json.loads(path.read_text())["info"]
    if base.get("split_s") is None:
        return []
    b, a = base["split_s"], info["split_s"]
    rows = [("import torch + torchvision", base["import_s"], info["import_s"]),
            ("build (sum over models)", b["build_s"], a["build_s"]),
            ("trace (sum over models)", b["trace_s"], a["trace_s"]),
            ("analyze (sum over models)", b["analyze_s"], a["analyze_s"]),
            ("**whole process, wall**", base["process_wall_s"], info["process_wall_s"])]
    out = ["", f"Before and after on this machine (before: `{base['command']}`, {base['date']}):", "",
           "| phase | before, s | after, s |", "| --- | ---: | ---: |"]
    out += [f"| {name} | {x:.1f} | {y:.1f} |" for name, x, y in rows]
    return out + [""]


def _baseline():
    """The front-end as it was before the speed-ups (for the before/after figures)."""
    import contextlib

    import rfgraph.frontends.torch as T

    T._meta_call = lambda func, args, kwargs: func(*args, **kwargs)
    T._skip_meta_init = contextlib.nullcontext


def main():
    args = _parse()
    t0 = time.perf_counter()
    import torch  # noqa: F401
    import torchvision  # noqa: F401

    import rfgraph.frontends.torch  # noqa: F401
    from rfgraph.render import zoo as report
    from rfgraph.tools import runner
    from rfgraph.tools.catalogue import list_zoo

    import_s = time.perf_counter() - t0
    if args.baseline:
        if args.jobs > 1:
            sys.exit("--baseline works in one process only")
        _baseline()
    entries = list_zoo(args.family, args.models, args.input_size)
    if not entries:
        sys.exit(f"no model matches {args.models!r}")

    def log(k, n, entry):
        # stderr is not a terminal (a log file): one line per model, with the memory so far
        sys.stderr.write(f"[{k}/{n}] {entry.label if entry else 'done'} (peak RSS of the last model "
                         f"{runner.peak_rss_mb():.0f} MB, {time.perf_counter() - T_START:.0f} s)\n")
        sys.stderr.flush()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    prof = None
    if args.profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    # on a terminal a tqdm bar; in a log, one line per model
    with runner.progress_bar(len(entries), enabled=None if args.progress else False) as bar:
        progress = bar or (log if args.progress else None)
        rows, info = runner.run(entries, verify=args.verify, jobs=args.jobs, progress=progress)
    if prof is not None:
        prof.disable()
    total_s = time.perf_counter() - T_START
    jobs_note = None
    if args.compare_jobs > 1 and args.jobs == 1 and not args.verify and not args.baseline:
        t1 = time.perf_counter()
        rows2, _ = runner.run(entries, jobs=args.compare_jobs)
        jobs_note = (args.compare_jobs, time.perf_counter() - t1, sum(1 for r in rows2 if r.ok))
    ok = [r for r in rows if r.ok]
    split = {k: round(sum(getattr(r, k) for r in ok), 2) for k in ("build_s", "trace_s", "analyze_s")}
    info.update({
        "command": "python benchmarks/zoo.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": runner.machine(),
        "import_s": round(import_s, 2),
        "process_wall_s": round(total_s, 2),
        "split_s": split,
        "baseline": args.baseline,
        "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    })
    if info["peak_rss_mb"] is None:  # workers: the largest single-worker peak
        info["peak_rss_mb_worker"] = max((r.peak_rss_mb for r in rows), default=0)
    name = args.name or ("verify" if args.verify else "zoo")
    title = "rfgraph zoo: torchvision models" + (" verified by gradient support" if args.verify else "")
    if args.baseline:
        title += " (baseline: front-end speed-ups off)"
    md = report.to_markdown(rows, info, title=title)
    summary = (f"**Total: {len(rows)} models, {total_s:.1f} s wall for the whole process** (import "
               f"{import_s:.1f} s, sweep {info['wall_s']:.1f} s: build {split['build_s']:.1f} s, trace "
               f"{split['trace_s']:.1f} s, analyze {split['analyze_s']:.1f} s), peak RSS "
               f"{info['peak_rss_mb'] or info.get('peak_rss_mb_worker', 0):.0f} MB.\n\n")
    head, _, rest = md.partition("\n\n")
    md = head + "\n\n" + summary + rest
    if not args.verify and not args.baseline:
        md = md.rstrip() + "\n\n" + CHANGES + "\n".join(_before_after(info, args.out_dir))
        if jobs_note:
            n, wall, nok = jobs_note
            info["jobs_compare"] = {"jobs": n, "wall_s": round(wall, 2), "ok": nok}
            md = md.rstrip() + (
                f"\n\n**Worker processes.** The same sweep with `--jobs {n}` (a pool of {n} worker "
                f"processes forked from a server that imports torch once) took {wall:.1f} s against {info['wall_s']:.1f} s "
                f"in one process, on {info['machine'].get('cpus_usable', '?')} usable CPUs shared with "
                "other jobs: " + ("it helps." if wall < 0.85 * info["wall_s"] else
                                  "no gain worth having here; one process is the default.") + "\n")
    if prof is not None:
        import io
        import pstats

        buf = io.StringIO()
        st = pstats.Stats(prof, stream=buf)
        st.sort_stats("cumulative").print_stats(40)
        st.sort_stats("tottime").print_stats(25)
        (args.out_dir / f"{name}_profile.txt").write_text(buf.getvalue())
    (args.out_dir / f"{name}.md").write_text(md)
    (args.out_dir / f"{name}.json").write_text(report.to_json(rows, info))
    print(summary.strip().replace("**", ""))
    print(f"wrote {args.out_dir / (name + '.md')} and {name}.json")
    failed = [r.model for r in rows if not r.ok]
    if failed:
        print(f"{len(failed)} failed: {', '.join(failed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
