"""Exactness that scales: every output of an analysis, at input sizes from 10^3 to 10^8 samples.

Two networks in rfgraph's schema:

* ``audio`` (1-D, about 10^3 .. 10^8 samples): the wav2vec2 feature encoder (conv k10 s5, k3 s2 x4, k2 s2 x2), a residual
  block of two k3 convs, a x2 nearest upsample joined with its input by a strided slice (a
  position-dependent join), and a global mean;
* ``image`` (2-D): a ResNet stem (7x7/2 conv, 3x3/2 max pool), two residual blocks with a
  strided 1x1 shortcut, a dilated 3x3 conv (holes), a x2 bilinear upsample, and a global mean.

For each size, a fresh process builds the graph and times (and measures the peak RSS of)
``analyze``, the table of every node, JSON of every node (which asks ``is_global`` of each) and
the exact per-feature bounds of every node along every axis. ``--before DIR`` runs the same cases
on another checkout in the same run (rounds interleave), under a memory cap, so a case that needs
more memory than the machine has is reported as such instead of swapping.

    python benchmarks/exactness.py                      # every size, this checkout
    python benchmarks/exactness.py --before /tmp/before --max-audio 1000000 --max-image 2048
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "exactness.md"
# 320 m + 80 samples: the encoder's windows (RF 400, jump 320) use every sample, so the global
# mean really reads the whole input and is_global must look at every feature's pixels
AUDIO_SIZES = tuple(320 * round(10**p / 320) + 80 for p in range(3, 9))
IMAGE_SIZES = (256, 512, 1024, 2048, 4096, 8192)
MEMORY_CAP = 12 * 2**30  # bytes of address space a case may use


def audio_graph(n, nx):
    G = nx.DiGraph()
    G.add_node("input", op="input", size=(n,))
    prev = "input"
    for i, (k, s) in enumerate([(10, 5)] + [(3, 2)] * 4 + [(2, 2)] * 2):
        G.add_node(f"conv{i}", op="conv", kernel=k, stride=s)
        G.add_node(f"gelu{i}", op="identity")
        G.add_edges_from([(prev, f"conv{i}"), (f"conv{i}", f"gelu{i}")])
        prev = f"gelu{i}"
    G.add_node("res.a", op="conv", kernel=3, padding=1)
    G.add_node("res.b", op="conv", kernel=3, padding=1)
    G.add_node("res.add", op="add")
    G.add_edges_from([(prev, "res.a"), ("res.a", "res.b"), ("res.b", "res.add"), (prev, "res.add")])
    G.add_node("up", op="upsample", scale=2, mode="nearest")
    G.add_node("down", op="slice", step=2)
    G.add_node("fuse", op="add")
    G.add_edges_from([("res.add", "up"), ("up", "down"), ("down", "fuse"), ("res.add", "fuse")])
    G.add_node("pool", op="global")
    G.add_edge("fuse", "pool")
    return G


def image_graph(n, nx):
    G = nx.DiGraph()
    G.add_node("input", op="input", size=(n, n))
    G.add_node("stem", op="conv", kernel=7, stride=2, padding=3)
    G.add_node("pool", op="maxpool", kernel=3, stride=2, padding=1)
    G.add_edges_from([("input", "stem"), ("stem", "pool")])
    prev = "pool"
    for b, stride in enumerate((1, 2)):
        a, c, add = f"b{b}.conv1", f"b{b}.conv2", f"b{b}.add"
        G.add_node(a, op="conv", kernel=3, stride=stride, padding=1)
        G.add_node(c, op="conv", kernel=3, padding=1)
        G.add_node(add, op="add")
        G.add_edges_from([(prev, a), (a, c), (c, add)])
        if stride == 1:
            G.add_edge(prev, add)
        else:
            G.add_node(f"b{b}.down", op="conv", kernel=1, stride=2)
            G.add_edges_from([(prev, f"b{b}.down"), (f"b{b}.down", add)])
        prev = add
    G.add_node("dilated", op="conv", kernel=3, dilation=4, padding=4)
    G.add_node("up", op="upsample", scale=2, mode="bilinear")
    G.add_node("gap", op="global")
    G.add_edges_from([(prev, "dilated"), ("dilated", "up"), ("up", "gap")])
    return G


def run_case(net: str, n: int) -> dict:
    import networkx as nx

    import rfgraph
    from rfgraph.render.json import to_json
    from rfgraph.render.table import format_table, rows

    G = (audio_graph if net == "audio" else image_graph)(n, nx)
    t0 = time.perf_counter()
    a = rfgraph.analyze(G)
    t1 = time.perf_counter()
    format_table(rows(a, list(a.order)))
    t2 = time.perf_counter()
    try:
        text = to_json(a, nodes=list(a.order))
    except TypeError:  # an older checkout: to_json(analysis) of every node
        text = to_json(a)
    t3 = time.perf_counter()
    for v in a.order:
        for ax in range(len(a.input_size)):
            a[v].bounds(ax)
    t4 = time.perf_counter()
    return {"net": net, "n": n, "nodes": len(G), "analyze_s": t1 - t0, "table_s": t2 - t1,
            "json_s": t3 - t2, "bounds_s": t4 - t3, "total_s": t4 - t0, "json_bytes": len(text),
            "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "pool_global": a[a.order[-1]].is_global}


def _child(checkout: Path, net: str, n: int, timeout: float) -> dict:
    code = (f"import sys, json, resource; sys.path.insert(0, {str(checkout)!r}); "
            f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_CAP}, {MEMORY_CAP})); "
            f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import exactness; "
            f"print(json.dumps(exactness.run_case({net!r}, {n})))")
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return {"net": net, "n": n, "error": f"over {timeout:.0f} s"}
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["exit " + str(proc.returncode)])[-1]
        if "MemoryError" in last:  # numpy's message names the array it could not allocate
            size = last.split("allocate", 1)[-1].split("for", 1)[0].strip()
            last = f"MemoryError (an array of {size})" if size else "MemoryError"
        return {"net": net, "n": n, "error": last[:120]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cell(r, key):
    if "error" in r:
        return r["error"] if key == "total_s" else "-"
    if key == "peak_rss":
        return f"{r[key] / 2**20:,.0f}"
    return f"{r[key]:.3f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, help="another checkout to run the same cases on (e.g. the previous commit)")
    ap.add_argument("--max-audio", type=int, default=AUDIO_SIZES[-1])
    ap.add_argument("--max-image", type=int, default=IMAGE_SIZES[-1])
    ap.add_argument("--before-max-audio", type=int, default=10**6, help="largest audio size for --before")
    ap.add_argument("--before-max-image", type=int, default=2048, help="largest image size for --before")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per case")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    cases = [("audio", n) for n in AUDIO_SIZES if n <= args.max_audio] + \
            [("image", n) for n in IMAGE_SIZES if n <= args.max_image]
    rows = []
    for net, n in cases:
        after = _child(ROOT, net, n, args.timeout)
        before = None
        if args.before is not None and n <= (args.before_max_audio if net == "audio" else args.before_max_image):
            before = _child(args.before.resolve(), net, n, args.timeout)
        rows.append((after, before))
        print(f"{net} {n:,}: after {_cell(after, 'total_s')} s / {_cell(after, 'peak_rss')} MiB"
              + ("" if before is None else f"; before {_cell(before, 'total_s')} s / {_cell(before, 'peak_rss')} MiB"),
              flush=True)
    lines = ["# Exactness that scales: every output at 10^3 .. 10^8 samples and 256² .. 8192²", "",
             "Command: `python benchmarks/exactness.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`",
             "", "Per case a fresh process: `analyze`, the table of every node, JSON of every node "
             "(is_global of each), the exact bounds of every node on every axis; peak RSS of that "
             f"process (address space capped at {MEMORY_CAP / 2**30:.0f} GiB). Sizes are samples (audio) or "
             "the side of a square image.", ""]
    head = "| net | size | nodes | analyze (s) | table (s) | JSON (s) | bounds (s) | total (s) | peak RSS (MiB) |"
    if args.before is not None:
        head += " before: total (s) | before: peak RSS (MiB) |"
    lines += [head, "|" + " --- |" * (head.count("|") - 1)]
    for after, before in rows:
        cells = [after["net"], f"{after['n']:,}", str(after.get("nodes", "-"))] + \
                [_cell(after, k) for k in ("analyze_s", "table_s", "json_s", "bounds_s", "total_s", "peak_rss")]
        if args.before is not None:
            cells += ["not run" if before is None else _cell(before, "total_s"),
                      "-" if before is None else _cell(before, "peak_rss")]
        lines.append("| " + " | ".join(cells) + " |")
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
