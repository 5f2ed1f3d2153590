"""timm sweep: every ``timm.list_models()`` architecture traced and analysed, one row each.

(Not ``benchmarks/timm.py``: a script of that name would shadow the ``timm`` package it imports.)

A thin script over ``rfgraph zoo --source timm``'s code (:func:`rfgraph.tools.runner.sweep`, the
same per-model function :func:`rfgraph.tools.runner.model_row`, and :mod:`rfgraph.render.zoo`).
Each model is built with ``pretrained=False`` on the meta device (nothing downloaded, no weight
memory) and traced at its default ``pretrained_cfg`` input size, in ``--jobs`` worker processes
(or Ray tasks, ``--backend ray``); a model that crashes its worker or runs past ``--timeout``
costs only its row. Rows are appended to ``results/<name>.jsonl`` as they arrive, so an
interrupted sweep resumes where it stopped (``--fresh`` starts over). At the end
``results/<name>.md`` (coverage by reason and error, then per model the final map's RF, jump,
start, global and from where, and the RF of each ``feature_info`` stage) and
``results/<name>.json`` are written:

    python benchmarks/zoo_timm.py                       # all 1371 models, 2 jobs -> results/timm.md, .json
    python benchmarks/zoo_timm.py --models 'resnet*,vit_*' --name timm_sample
    python benchmarks/zoo_timm.py --fresh --timeout 60
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"

INTRO = ("Built with `pretrained=False` on the meta device, traced at each model's default "
         "`pretrained_cfg` input size. The final map is the last module output torch reports as a map "
         "with more than one feature per axis; *global* says from which node and why; `stages` are the "
         "model's `feature_info` stages (what `features_only=True` returns) with their RF and jump.")


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", metavar="PATTERN", help="glob pattern(s) on timm names, comma-separated")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per model (default 120)")
    p.add_argument("--backend", choices=("process", "ray"), default="process")
    p.add_argument("--name", default="timm", help="results/<name>.{jsonl,md,json} (default timm)")
    p.add_argument("--fresh", action="store_true", help="ignore the rows of an earlier run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args()


def main():
    args = _parse()
    from rfgraph.render import zoo as report
    from rfgraph.tools import runner
    from rfgraph.tools.catalogue import list_timm

    RESULTS.mkdir(parents=True, exist_ok=True)
    partial = RESULTS / f"{args.name}.jsonl"
    if args.fresh and partial.exists():
        partial.unlink()
    entries = list_timm(args.models)
    import timm

    with runner.progress_bar(len(entries), enabled=False if args.no_progress else None) as progress:
        rows, info = runner.sweep(entries, resume=partial, jobs=args.jobs, timeout=args.timeout,
                                  backend=args.backend, progress=progress)
    info.update(command="python benchmarks/zoo_timm.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                date=datetime.date.today().isoformat(), timm=timm.__version__,
                process_wall_s=round(time.perf_counter() - T_START, 2), machine=runner.machine(),
                coverage=report.coverage(rows))
    title = f"timm {timm.__version__}: receptive fields of every architecture"
    (RESULTS / f"{args.name}.md").write_text(report.to_markdown(rows, info, title=title, intro=INTRO))
    (RESULTS / f"{args.name}.json").write_text(report.to_json(rows, info))
    c = info["coverage"]
    failed = sum(len(v) for v in c["failed"].values())
    print(f"{len(rows) - failed} of {len(rows)} analysed, {failed} failed; sweep wall {info['wall_s']:.0f} s "
          f"({info['resumed']} rows from an earlier run), process {info['process_wall_s']:.0f} s "
          f"-> {RESULTS / (args.name + '.md')}", file=sys.stderr)
    for why, models in list(c["failed"].items())[:20]:
        print(f"  {len(models):4d}  {why}", file=sys.stderr)


if __name__ == "__main__":
    main()
