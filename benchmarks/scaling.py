"""Scaling benchmark: rfgraph's engine on synthetic DAGs of 1k .. 1M nodes.

Three shapes, all 2-D with a 224x224 input, in rfgraph's schema:

* ``chain``     -- a stem (7x7/2 conv, 3x3/2 max pool) then a long mix of 3x3 convs, 1x1 convs,
  identities (ReLU/BN) and stride-1 pools, all padded so the size stays 56x56;
* ``residual``  -- ResNet basic blocks: conv, identity, conv, add with the block input, identity;
* ``inception`` -- wide towers: four parallel branches (1x1 / 1x3 then 3x1 / 3x3 / 3x3 max pool
  then 1x1) joined by a concat.

For every shape and size the script times graph construction (networkx) separately from
``rfgraph.analyze(G)`` (the engine's propagation; records are lazy) and from touching every record
through ``analysis.records()`` (up to ``--records-max`` nodes), and measures the peak memory of
the analyze call (tracemalloc, in a second run: tracing slows Python down) and the process' max
RSS (graph + analysis + records). Every case runs in a fresh subprocess, so each max RSS is that
case's own. Results are printed and written to ``benchmarks/results/scaling.md``.

    python benchmarks/scaling.py               # 1k, 10k, 100k, 1M nodes (a few minutes)
    python benchmarks/scaling.py --quick       # 1k and 10k
    python benchmarks/scaling.py --max-nodes 100000
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import rfgraph  # noqa: E402

SIZES = (1_000, 10_000, 100_000, 1_000_000)
INPUT = (224, 224)
RESULTS = ROOT / "benchmarks" / "results" / "scaling.md"


# -- graph builders ---------------------------------------------------------------------------
# Each returns a DiGraph with exactly ``n`` nodes. Nodes and edges are collected in lists and added
# in bulk (the fastest way to fill a networkx graph); every node gets its own attribute dict, as a
# front-end would produce.


def _finish(nodes, edges, n):
    nodes = nodes[:n]
    keep = {name for name, _ in nodes}
    G = nx.DiGraph()
    G.add_nodes_from(nodes)
    G.add_edges_from(e for e in edges if e[0] in keep and e[1] in keep)
    return G


def chain_graph(n: int) -> nx.DiGraph:
    """A linear chain: stem to 56x56, then conv 3x3 / identity / conv 1x1 / pool / ... repeated."""
    nodes = [("input", {"op": "input", "size": INPUT}),
             ("stem", {"op": "conv", "kernel": 7, "stride": 2, "padding": 3}),
             ("stem_pool", {"op": "maxpool", "kernel": 3, "stride": 2, "padding": 1})]
    cycle = (
        ("c3", {"op": "conv", "kernel": 3, "padding": 1}),
        ("relu", {"op": "identity"}),
        ("c1", {"op": "conv", "kernel": 1}),
        ("bn", {"op": "identity"}),
        ("c3b", {"op": "conv", "kernel": (3, 3), "padding": (1, 1)}),
        ("mp", {"op": "maxpool", "kernel": 3, "stride": 1, "padding": 1}),
        ("c1x3", {"op": "conv", "kernel": (1, 3), "padding": (0, 1)}),
        ("ap", {"op": "avgpool", "kernel": 3, "stride": 1, "padding": 1}),
    )
    i = 0
    while len(nodes) < n:
        tag, attrs = cycle[i % len(cycle)]
        nodes.append((f"{tag}_{i}", dict(attrs)))
        i += 1
    names = [name for name, _ in nodes[:n]]
    return _finish(nodes, list(zip(names, names[1:])), n)


def _stem():
    """The input, a 7x7 stride-2 conv and a 3x3 stride-2 max pool (ResNet's stem), as lists."""
    nodes = [("input", {"op": "input", "size": INPUT}),
             ("stem", {"op": "conv", "kernel": 7, "stride": 2, "padding": 3}),
             ("stem_pool", {"op": "maxpool", "kernel": 3, "stride": 2, "padding": 1})]
    return nodes, [("input", "stem"), ("stem", "stem_pool")]


def residual_graph(n: int) -> nx.DiGraph:
    """A tower of basic blocks: x -> conv -> relu -> conv -> add(x) -> relu."""
    nodes, edges = _stem()
    x = "stem_pool"
    b = 0
    while len(nodes) < n:
        c1, r1, c2, add, r2 = (f"b{b}.conv1", f"b{b}.relu1", f"b{b}.conv2", f"b{b}.add", f"b{b}.relu2")
        nodes += [(c1, {"op": "conv", "kernel": 3, "padding": 1}), (r1, {"op": "identity"}),
                  (c2, {"op": "conv", "kernel": 3, "padding": 1}), (add, {"op": "add"}),
                  (r2, {"op": "identity"})]
        edges += [(x, c1), (c1, r1), (r1, c2), (c2, add), (x, add), (add, r2)]
        x = r2
        b += 1
    return _finish(nodes, edges, n)


def inception_graph(n: int) -> nx.DiGraph:
    """A tower of inception blocks: 1x1 | 1x3 -> 3x1 | 3x3 | maxpool -> 1x1, concatenated."""
    nodes, edges = _stem()
    x = "stem_pool"
    b = 0
    while len(nodes) < n:
        p = f"m{b}."
        nodes += [
            (p + "b1", {"op": "conv", "kernel": 1}),
            (p + "b13", {"op": "conv", "kernel": (1, 3), "padding": (0, 1)}),
            (p + "b31", {"op": "conv", "kernel": (3, 1), "padding": (1, 0)}),
            (p + "b33", {"op": "conv", "kernel": 3, "padding": 1}),
            (p + "pool", {"op": "maxpool", "kernel": 3, "stride": 1, "padding": 1}),
            (p + "proj", {"op": "conv", "kernel": 1}),
            (p + "cat", {"op": "concat"}),
        ]
        edges += [(x, p + "b1"), (x, p + "b13"), (p + "b13", p + "b31"), (x, p + "b33"),
                  (x, p + "pool"), (p + "pool", p + "proj")]
        edges += [(u, p + "cat", {"index": i}) for i, u in enumerate((p + "b1", p + "b31", p + "b33", p + "proj"))]
        x = p + "cat"
        b += 1
    return _finish(nodes, edges, n)


SHAPES = {"chain": chain_graph, "residual": residual_graph, "inception": inception_graph}


# -- one case, in its own process ---------------------------------------------------------------


def _max_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def _current_rss_bytes():
    """Resident memory now (Linux), or None."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def touch_graph(G) -> float:
    """Seconds to merely visit every node's attribute and predecessor dicts and store one result
    per node: the floor of any pass over the graph. It grows per node with the graph's size
    (cache and TLB misses), which is where most of analyze's per-node growth comes from."""
    nodes, pred = G._node, G._pred
    gc.disable()
    try:
        t0 = time.perf_counter()
        out = {}
        for v in pred:
            out[v] = (nodes[v], pred[v])
        return time.perf_counter() - t0
    finally:
        gc.enable()


def run_case(shape: str, n: int, records_max: int) -> dict:
    """Build one graph, time analyze (best of a few runs for small graphs) and records."""
    rss0 = _current_rss_bytes()
    t0 = time.perf_counter()
    G = SHAPES[shape](n)
    t_build = time.perf_counter() - t0
    rss1 = _current_rss_bytes()
    graph_rss = None if rss0 is None or rss1 is None else rss1 - rss0
    assert G.number_of_nodes() == n
    repeats = 5 if n <= 10_000 else 3 if n <= 100_000 else 2
    t_analyze = float("inf")
    analysis = None
    for _ in range(repeats):
        analysis = None  # one analysis alive at a time
        gc.collect()
        t0 = time.perf_counter()
        analysis = rfgraph.analyze(G)
        t_analyze = min(t_analyze, time.perf_counter() - t0)
    t_touch = min(touch_graph(G) for _ in range(repeats))
    t_records = None
    if n <= records_max:
        t0 = time.perf_counter()
        recs = analysis.records()
        t_records = time.perf_counter() - t0
        assert len(recs) == n
        del recs
    out_rf = analysis[analysis.order[-1]].rf
    del analysis
    gc.collect()
    tracemalloc.start()
    analysis = rfgraph.analyze(G)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"shape": shape, "nodes": n, "edges": G.number_of_edges(), "build_s": t_build,
            "analyze_s": t_analyze, "touch_s": t_touch, "records_s": t_records, "tracemalloc_peak": peak, "graph_rss": graph_rss,
            "max_rss": _max_rss_bytes(), "output_rf": list(out_rf)}


# -- driver ----------------------------------------------------------------------------------------


def _mb(b):
    mib = b / 2**20
    return f"{mib:,.1f}" if mib < 100 else f"{mib:,.0f}"


def _rate(n, t):
    return f"{n / t:,.0f}" if t else "-"


def machine() -> dict:
    try:
        import numpy
        np_version = numpy.__version__
    except ImportError:  # pragma: no cover
        np_version = "?"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1, 5, 15 min, when the run started)"
    except OSError:
        load = "?"
    return {"cores": os.cpu_count(), "cpu": cpu, "memory": mem, "load average": load,
            "python": f"{platform.python_implementation()} {platform.python_version()}",
            "networkx": nx.__version__, "numpy": np_version, "rfgraph": rfgraph.__version__,
            "platform": platform.platform(),
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}


def table(results) -> list[str]:
    lines = ["| shape | nodes | edges | build (s) | analyze (s) | analyze nodes/s | records (s) "
             "| records nodes/s | analyze tracemalloc peak (MiB) | graph RSS (MiB) | process max RSS (MiB) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results:
        rec = r["records_s"]
        graph = r.get("graph_rss")
        lines.append(
            f"| {r['shape']} | {r['nodes']:,} | {r['edges']:,} | {r['build_s']:.3f} | {r['analyze_s']:.3f} "
            f"| {_rate(r['nodes'], r['analyze_s'])} | {'-' if rec is None else f'{rec:.3f}'} "
            f"| {'-' if rec is None else _rate(r['nodes'], rec)} | {_mb(r['tracemalloc_peak'])} "
            f"| {'-' if graph is None else _mb(graph)} | {_mb(r['max_rss'])} |")
    return lines


def linearity(results) -> list[str]:
    """Per shape: nodes/s at the largest size relative to the smallest (1.0 = perfectly linear)."""
    lines = []
    for shape in SHAPES:
        rs = [r for r in results if r["shape"] == shape]
        if len(rs) < 2:
            continue
        rates = [r["nodes"] / r["analyze_s"] for r in rs]
        times = ", ".join(f"{1e6 * r['analyze_s'] / r['nodes']:.2f}" for r in rs)
        touch = ", ".join(f"{1e6 * r['touch_s'] / r['nodes']:.2f}" for r in rs)
        sizes = ", ".join(f"{r['nodes']:,}" for r in rs)
        lines.append(f"- {shape}: analyze time per node {times} µs (sizes {sizes}); nodes/s at the "
                     f"largest size is {rates[-1] / rates[0]:.2f}x that at the smallest. Merely "
                     f"visiting each node's dicts: {touch} µs per node")
    return lines


def write_markdown(results, info, command, path=RESULTS):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# rfgraph scaling benchmark",
        "",
        "Synthetic 2-D graphs (input 224x224) in rfgraph's schema; see `benchmarks/scaling.py` for the",
        "three shapes. *analyze* is `rfgraph.analyze(G)` (the engine's propagation over the whole",
        "graph; records are built lazily), best of 5 runs up to 10k nodes, of 3 at 100k, of 2 at 1M.",
        "*records* is touching every record afterwards (`analysis.records()`). The tracemalloc peak is",
        "that of one analyze call (the analysis' own allocations; the graph is already built); graph",
        "RSS is how much the process grew while building the networkx graph; max RSS is the whole",
        "benchmark process of that case (interpreter, graph, analyses, records).",
        "",
        f"Command: `{command}`",
        "",
        *table(results),
        "",
        "Linear growth (analyze time per node should stay flat):",
        "",
        *linearity(results),
        "",
        "The engine does a constant amount of work per node and edge (one pass in insertion or",
        "topological order, no per-node search). What grows is the cost of memory access: a pass",
        "that only reads each node's attribute and predecessor dicts and stores one entry per node",
        "(`touch_graph`, last figures above) slows down per node as the graph outgrows the CPU",
        "caches, by about as much as analyze does.",
        "",
        "Machine:",
        "",
        *[f"- {k}: {v}" for k, v in info.items()],
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-nodes", type=int, default=1_000_000, help="largest graph size (default 1M)")
    ap.add_argument("--quick", action="store_true", help="sizes up to 10k only")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated subset of " + ", ".join(SHAPES))
    ap.add_argument("--records-max", type=int, default=100_000,
                    help="time analysis.records() up to this many nodes (default 100k)")
    ap.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    ap.add_argument("--case", nargs=2, metavar=("SHAPE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.case:  # child process: one case, JSON on stdout
        print(json.dumps(run_case(args.case[0], int(args.case[1]), args.records_max)))
        return

    limit = min(args.max_nodes, 10_000) if args.quick else args.max_nodes
    sizes = [s for s in SIZES if s <= limit] or [limit]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = set(shapes) - set(SHAPES)
    if unknown:
        ap.error(f"unknown shape(s) {', '.join(sorted(unknown))}")
    argv_used = sys.argv[1:] if argv is None else list(argv)
    command = "python benchmarks/scaling.py" + ("" if not argv_used else " " + shlex.join(argv_used))
    info = machine()
    print(f"rfgraph {info['rfgraph']} on {info['cores']} cores, {info['python']}; sizes {sizes}")
    results = []
    for shape in shapes:
        for n in sizes:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--case", shape, str(n),
                   "--records-max", str(args.records_max)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"case {shape} {n} failed")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            rec = r["records_s"]
            print(f"{shape:>9} {n:>9,} nodes: build {r['build_s']:7.2f}s  analyze {r['analyze_s']:7.3f}s "
                  f"({_rate(n, r['analyze_s']):>9} nodes/s)  records "
                  f"{'-' if rec is None else f'{rec:.2f}s':>7}  tracemalloc peak {_mb(r['tracemalloc_peak']):>6} MiB"
                  f"  graph RSS {'-' if r['graph_rss'] is None else _mb(r['graph_rss']):>6} MiB"
                  f"  max RSS {_mb(r['max_rss']):>6} MiB", flush=True)
    print()
    print("\n".join(linearity(results)))
    write_markdown(results, info, command, args.output)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
