"""Before/after in one run: the scaling benchmark's cases on two checkouts, interleaved.

Each round runs every case once on checkout A, then on checkout B (``python
CHECKOUT/benchmarks/scaling.py --case SHAPE N``: a fresh process importing that checkout's
rfgraph), so both see the same machine load; the medians over rounds and the B/A ratio of
each round's pair are written to ``benchmarks/results/scaling-ab.md``.

    git worktree add /tmp/before <commit>
    python benchmarks/scaling_ab.py /tmp/before . --rounds 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scaling-ab.md"
CASES = ("chain:100000", "residual:100000", "inception:100000")


def run(checkout: Path, shape: str, n: int) -> dict:
    cmd = [sys.executable, str(checkout / "benchmarks" / "scaling.py"), "--case", shape, str(n)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{checkout}: case {shape} {n} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _git(checkout: Path) -> str:
    proc = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h %s"],
                          capture_output=True, text=True, check=False)
    return proc.stdout.strip() or str(checkout)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", type=Path, help="checkout A (before)")
    ap.add_argument("b", type=Path, help="checkout B (after)")
    ap.add_argument("--cases", default=",".join(CASES), help="SHAPE:N, comma-separated")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in args.cases.split(",")]
    metrics = ("analyze_s", "records_s", "max_rss")
    got = {(c, side): [] for c in cases for side in "ab"}
    for r in range(args.rounds):
        for case in cases:
            for side, checkout in (("a", args.a), ("b", args.b)):
                got[(case, side)].append(run(checkout.resolve(), *case))
            a, b = got[(case, "a")][-1], got[(case, "b")][-1]
            print(f"round {r + 1}: {case[0]} {case[1]:,}: analyze {a['analyze_s']:.3f} -> {b['analyze_s']:.3f} s, "
                  f"records {a['records_s']:.3f} -> {b['records_s']:.3f} s", flush=True)
    lines = [
        "# Scaling benchmark, before and after, in one run",
        "",
        f"A (before): `{_git(args.a)}`; B (after): `{_git(args.b)}`.",
        f"Command: `python benchmarks/scaling_ab.py A B --cases {args.cases} --rounds {args.rounds}`; "
        "rounds interleave A and B. Medians over rounds; the ratio is the median of each round's B/A.",
        "",
        "| case | analyze A (s) | analyze B (s) | B/A | records A (s) | records B (s) | B/A | max RSS A (MiB) | max RSS B (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for case in cases:
        a, b = got[(case, "a")], got[(case, "b")]
        cells = []
        for m in metrics:
            va = [x[m] for x in a]
            vb = [x[m] for x in b]
            if m == "max_rss":
                cells += [f"{statistics.median(va) / 2**20:.0f}", f"{statistics.median(vb) / 2**20:.0f}"]
            else:
                ratio = statistics.median(y / x for x, y in zip(va, vb))
                cells += [f"{statistics.median(va):.3f}", f"{statistics.median(vb):.3f}", f"{ratio:.2f}"]
        lines.append(f"| {case[0]} {case[1]:,} | " + " | ".join(cells) + " |")
        if [x["output_rf"] for x in a] != [x["output_rf"] for x in b]:
            lines.append(f"\n**{case[0]}: the last node's RF differs between A and B.**\n")
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
