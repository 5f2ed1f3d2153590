"""timm sweep: every ``timm.list_models()`` architecture traced and analysed, one row each.

(Not ``benchmarks/timm.py``: a script of that name would shadow the ``timm`` package it imports.)

Each model is built with ``pretrained=False`` on the meta device (nothing downloaded, no weight
memory) and traced at its default ``pretrained_cfg`` input size, in ``--jobs`` worker processes; a
model that crashes its worker or runs past ``--timeout`` costs only its row. Rows are appended to
``results/<name>.jsonl`` as they arrive, so an interrupted sweep resumes where it stopped
(``--fresh`` starts over). At the end ``results/<name>.md`` (coverage by reason and error, then
per model the final map's RF, jump, start, global and from where, and the RF of each
``feature_info`` stage) and ``results/<name>.json`` are written:

    python benchmarks/zoo_timm.py                       # all 1371 models, 2 jobs -> results/timm.md, .json
    python benchmarks/zoo_timm.py --models 'resnet*,vit_*' --name timm_sample
    python benchmarks/zoo_timm.py --fresh --timeout 60
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"


def _parse():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", metavar="PATTERN", help="glob pattern(s) on timm names, comma-separated")
    p.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per model (default 120)")
    p.add_argument("--name", default="timm", help="results/<name>.{jsonl,md,json} (default timm)")
    p.add_argument("--fresh", action="store_true", help="ignore the rows of an earlier run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args()


def _cell(v):
    from rfgraph.render._format import per_axis

    return per_axis(v) if v else ""


def _markdown(rows, info):
    from rfgraph.render import zoo as report

    lines = [f"# timm {info['timm']}: receptive fields of every architecture", "",
             f"`{info['command']}` on {info['date']}: {len(rows)} models, {info['jobs']} jobs, "
             f"wall {info['wall_s']:.0f} s (this run; {info['resumed']} rows from an earlier run), "
             f"timeout {info['timeout_s']:g} s per model. torch {info['torch']}.", "",
             "Built with `pretrained=False` on the meta device, traced at each model's default "
             "`pretrained_cfg` input size. The final map is the last module output torch reports as a "
             "map with more than one feature per axis; *global* says from which node and why.", ""]
    lines.append(report.coverage_markdown(rows))
    lines += ["## Models", "", "| model | input | final map | n | rf | jump | start | global | stages (module /reduction: rf/jump) | error |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        glob = ""
        if r.ok and r.is_global and any(r.is_global):
            glob = f"from {r.global_from}: {r.global_why}" if r.global_from else "covers input"
            glob = glob.replace("|", "/")[:140]
        elif r.ok:
            glob = "no"
        stages = "; ".join(f"{m} /{red}: {'global' if g else _cell(rf) + '/' + _cell(j)}"
                           for m, red, rf, j, _st, g, _src in r.feature_stages)
        lines.append(f"| {r.model} | {'x'.join(map(str, r.input_shape[1:]))} | {r.module} | {_cell(r.n)} | "
                     f"{_cell(r.rf)} | {_cell(r.jump)} | {_cell(r.start)} | {glob} | {stages} | "
                     f"{r.error.replace('|', '/')[:160]} |")
    return "\n".join(lines) + "\n"


def main():
    args = _parse()
    import timm
    import torch

    from rfgraph.render import zoo as report
    from rfgraph.tools import runner
    from rfgraph.tools.catalogue import list_timm

    RESULTS.mkdir(parents=True, exist_ok=True)
    partial = RESULTS / f"{args.name}.jsonl"
    entries = list_timm(args.models)
    done = {}
    if partial.exists() and not args.fresh:
        for line in partial.read_text().splitlines():
            if line.strip():
                d = json.loads(line)
                done[d["model"]] = runner.ZooRow(**d)
    elif partial.exists():
        partial.unlink()
    todo = [e for e in entries if e.label not in done]
    print(f"{len(entries)} models, {len(done)} from an earlier run, {len(todo)} to do", file=sys.stderr)

    with partial.open("a") as f:
        def save(row):
            f.write(json.dumps(dataclasses.asdict(row), default=list) + "\n")
            f.flush()

        with runner.progress_bar(len(todo), enabled=False if args.no_progress else None) as progress:
            rows, info = runner.run_isolated(todo, jobs=args.jobs, timeout=args.timeout, on_row=save,
                                             progress=progress)
    by_name = {**done, **{r.model: r for r in rows}}
    rows = [by_name[e.label] for e in entries if e.label in by_name]
    info.update(command="python benchmarks/zoo_timm.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                date=datetime.date.today().isoformat(), timm=timm.__version__, torch=torch.__version__,
                resumed=len(done), machine=runner.machine(), coverage=report.coverage(rows))
    (RESULTS / f"{args.name}.md").write_text(_markdown(rows, info))
    (RESULTS / f"{args.name}.json").write_text(report.to_json(rows, info))
    c = info["coverage"]
    failed = sum(len(v) for v in c["failed"].values())
    print(f"{len(rows) - failed} of {len(rows)} analysed, {failed} failed; wall {info['wall_s']:.0f} s "
          f"-> {RESULTS / (args.name + '.md')}", file=sys.stderr)
    for why, models in list(c["failed"].items())[:20]:
        print(f"  {len(models):4d}  {why}", file=sys.stderr)


if __name__ == "__main__":
    main()
