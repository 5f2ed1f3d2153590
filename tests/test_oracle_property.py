"""Property test: rfgraph's engine against the gradient-support oracle on random DAGs.

For every generated graph (see :mod:`dag_gen`) and several of its nodes, along every axis:

* ``rec.n`` is the torch output size;
* ``rec.bounds(axis, clip=True)`` is, for every output position ``i``, the hull of the input
  pixels the features at ``position[axis] = i`` depend on (the union over the other axes; ``-1,
  -1`` when they see only padding);
* where the engine calls the axis ``exact``, at *interior* positions (features that read no
  padding along the axis anywhere upstream; the oracle's padding markers tell) ``rf``,
  ``start + i*jump`` (centre), the shift ``jump`` between neighbours, ``gaps`` and
  ``contiguous`` match the oracle;
* below only affine ops, with joins that agree on the jump and do not broadcast, the engine must
  call the axis exact; an ``is_global`` axis really sees the whole input everywhere.

The default run checks ``RFGRAPH_ORACLE_DAGS`` graphs (default 300, seeds ``0 .. N-1``); the
``slow`` marker (``make test-all``) adds the seeds up to 3000. A failure prints the graph as code
(``dag_gen.graph_source``); ``random_dag(seed)`` rebuilds it.
"""

from __future__ import annotations

import os
import random

import networkx as nx
import numpy as np
import pytest

pytest.importorskip("torch", reason="the gradient-support oracle runs each graph in PyTorch")

import rfgraph  # noqa: E402
from dag_gen import AFFINE_OPS, graph_source, random_dag  # noqa: E402
from oracle import SupportProbe, axis_projection, gap_runs  # noqa: E402

N_DAGS = int(os.environ.get("RFGRAPH_ORACLE_DAGS", "300"))
NODES_PER_DAG = 4


def oracle_hulls(probe, node, axis):
    """Per output position along ``axis``: sorted support pixels (projection onto ``axis``)."""
    return [axis_projection(mask, axis) for mask in probe.axis_supports(node, axis)]


def interior_positions(probe, node, axis):
    """Positions ``i`` where features ``i`` and ``i+1`` read no padding along ``axis`` upstream.

    Such features see their full theoretical RF (nothing clipped, not even by an intermediate
    layer's padding that maps onto real pixels after a crop), so the affine summary must hold.
    """
    pad = probe.axis_padding(node, axis)
    return [i for i in range(len(pad) - 1) if not pad[i] and not pad[i + 1]]


def expect_exact(G, analysis, node, axis):
    """True when only affine ops lie upstream and every join agrees on jump without broadcasting."""
    for v in nx.ancestors(G, node) | {node}:
        attrs = G.nodes[v]
        if attrs["op"] not in AFFINE_OPS or attrs.get("mode", "constant") != "constant":
            return False
        preds = list(G.predecessors(v))
        if attrs["op"] in ("add", "mul", "concat"):
            recs = [analysis[u] for u in preds]
            if len({r.jump[axis] for r in recs}) > 1 or len({r.n[axis] for r in recs}) > 1:
                return False
    return True


def _first_of_each(where, found):
    """One line per kind of disagreement: the first case, and how many positions share it."""
    out = []
    for kind, cases in found.items():
        more = f" (and {len(cases) - 1} more positions)" if len(cases) > 1 else ""
        out.append(f"{where}: {kind}: {cases[0]}{more}")
    return out


def check_bounds(rec, pix, axis, N):
    """``bounds(axis, clip=True)`` and ``is_global`` against the oracle's per-position pixels."""
    found = {}
    lo, hi = rec.bounds(axis, clip=True)
    for i, p in enumerate(pix):
        want = (int(p[0]), int(p[-1])) if len(p) else (-1, -1)
        if (lo[i], hi[i]) != want:
            found.setdefault("bounds", []).append(f"i={i} engine ({lo[i]}, {hi[i]}), oracle {want}")
    if rec.is_global[axis]:
        partial = [i for i, p in enumerate(pix) if len(p) != N]
        if partial:
            found["is_global"] = [f"True, but feature {i} sees {len(pix[i])} of {N} pixels"
                                  for i in partial]
    return found


def check_summary(rec, pix, axis, interior):
    """``rf``, centre, ``jump``, ``gaps`` and ``contiguous`` at interior positions."""
    found = {}

    def bad(kind, msg):
        found.setdefault(kind, []).append(msg)

    for i in interior:
        p, q = pix[i], pix[i + 1]
        if not len(p) or not len(q):
            continue  # sees nothing (e.g. between the taps of a strided convtranspose)
        width, centre, gaps = int(p[-1] - p[0] + 1), (p[0] + p[-1] + 1) / 2, gap_runs(p)
        if rec.rf[axis] != width:
            bad("rf", f"i={i} engine {rec.rf[axis]}, oracle {width}")
        if rec.start[axis] + i * rec.jump[axis] != centre:
            bad("centre", f"i={i} engine start + i*jump = {rec.start[axis]} + {i}*"
                          f"{rec.jump[axis]}, oracle {centre}")
        if rec.jump[axis] != q[0] - p[0]:
            bad("jump", f"i={i} engine {rec.jump[axis]}, oracle shift {q[0] - p[0]}")
        if tuple(map(tuple, rec.gaps[axis])) != gaps:
            bad("gaps", f"i={i} engine {rec.gaps[axis]}, oracle {gaps}")
        if rec.contiguous[axis] != (not gaps):
            bad("contiguous", f"i={i} engine {rec.contiguous[axis]}, oracle gaps {gaps}")
    return found


def check_node(G, analysis, probe, node):
    """All disagreements between engine and oracle at ``node``, as readable strings."""
    rec = analysis[node]
    shape = probe.shape(node)
    if tuple(rec.n) != shape:
        return [f"{node}: n={rec.n}, torch output size {shape}"]
    problems = []
    for a in range(len(shape)):
        pix = oracle_hulls(probe, node, a)
        found = check_bounds(rec, pix, a, probe.net.size[a])
        if expect_exact(G, analysis, node, a) and not rec.exact[a]:
            found["exact"] = ["False, but only affine ops (with agreeing joins) lie upstream"]
        if rec.exact[a]:
            found.update(check_summary(rec, pix, a, interior_positions(probe, node, a)))
        problems += _first_of_each(f"{node} ({rec.op}) axis {a}", found)
    return problems


def nodes_to_check(G, seed):
    """The sinks plus a few random other non-input nodes."""
    rng = random.Random(seed)
    sinks = [v for v in G if G.out_degree(v) == 0 and G.nodes[v]["op"] != "input"]
    others = sorted(v for v in G if G.nodes[v]["op"] != "input" and v not in sinks)
    rng.shuffle(others)
    return (sinks + others)[:NODES_PER_DAG]


SEEDS = [*range(N_DAGS), *(pytest.param(s, marks=pytest.mark.slow) for s in range(N_DAGS, 3000))]


@pytest.mark.parametrize("seed", SEEDS)
def test_engine_matches_gradient_support(seed):
    G = random_dag(seed)
    if G.number_of_nodes() == len([v for v in G if G.nodes[v]["op"] == "input"]):
        pytest.skip("generator produced no layer")  # practically never; not counted as a pass
    analysis = rfgraph.analyze(G)
    probe = SupportProbe(G)
    problems = []
    for node in nodes_to_check(G, seed):
        problems += check_node(G, analysis, probe, node)
    assert not problems, "\n".join(problems[:20]) + "\n\n" + graph_source(G)
