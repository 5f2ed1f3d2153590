"""The :class:`Analysis`: records per node, joins and their alignment, module lookup."""

from __future__ import annotations

import gc
from contextlib import contextmanager

import numpy as np

from .. import schema
from ..errors import GraphError
from ..record import RF, Branch, Misalignment, num
from .bounds import ExactBounds
from .propagate import propagate

__all__ = ["Analysis"]


class Analysis:
    """Result of :func:`rfgraph.analyze`: records per node, alignment report and tables.

    Attributes
    ----------
    graph : networkx.DiGraph
        The analysed graph (not modified).
    order : list
        Nodes in the topological order used.
    inputs : list
        The input nodes.
    input_size : tuple
        The (shared) input size per axis.
    """

    def __init__(self, G, registry):
        self.graph = G
        with _gc_paused():
            prop = propagate(G, registry)
        self.order = prop.order
        self.inputs = prop.inputs
        self.input_size = prop.input_size
        self._plans = prop.plans
        self._states = prop.states
        self._mis = prop.misalignment
        self._notes = prop.notes
        self._records: dict = {}
        self._exact = ExactBounds(G._pred, self.order, self._plans, self._states, self.input_size)

    # -- access ---------------------------------------------------------------------------------
    def __getitem__(self, node) -> RF:
        rec = self._records.get(node)
        if rec is None:
            if node not in self._states:
                raise KeyError(f"no node {node!r} in the graph")
            rec = self._records[node] = self._make_record(node)
        return rec

    def __contains__(self, node):
        return node in self._states

    def __iter__(self):
        return iter(self.order)

    def __len__(self):
        return len(self.order)

    def records(self) -> list:
        """All records in topological order."""
        with _gc_paused():  # many new long-lived objects: see _gc_paused
            return [self[v] for v in self.order]

    @property
    def sinks(self) -> list:
        """Nodes without successors, in topological order."""
        succ = self.graph._succ
        return [v for v in self.order if not succ[v]]

    @property
    def outputs(self) -> dict:
        """Records of every sink (node without successors), by name."""
        return {v: self[v] for v in self.sinks}

    @property
    def output(self) -> RF:
        """Record of the graph's single sink; an error if there are several."""
        sinks = self.sinks
        if len(sinks) != 1:
            raise GraphError(f"the graph has {len(sinks)} outputs ({', '.join(map(repr, sinks[:5]))}"
                             f"{', ...' if len(sinks) > 5 else ''}); use analysis.outputs")
        return self[sinks[0]]

    def module(self, name: str) -> RF:
        """Record of the node that produces module ``name``'s output (torch graphs).

        Uses the graph's ``module_outputs`` (see :mod:`rfgraph.schema`) when a front-end
        provides it, otherwise the last node (in topological order) whose ``module`` attribute is
        ``name`` or inside it.
        """
        outs = schema.module_outputs(self.graph)
        if name in outs:
            return self[outs[name]]
        prefix = name + "."
        last = None
        nodes = self.graph._node
        for v in self.order:
            m = nodes[v].get("module")
            if isinstance(m, str) and (m == name or m.startswith(prefix)):
                last = v
        if last is None:
            known = sorted(outs) or sorted({nodes[v].get("module") for v in self.order} - {None}, key=str)
            hint = f" Known modules include: {', '.join(map(str, known[:8]))}" if known else ""
            raise KeyError(f"no module named {name!r} in the graph.{hint}")
        return self[last]

    def bounds(self, node, axis: int = 0, clip: bool = True):
        """Exact per-feature RF bounds of ``node`` along ``axis``; see :meth:`RF.bounds`."""
        return self._exact.bounds(node, axis, clip)

    def is_global(self, node) -> tuple:
        """Per axis: every feature of ``node`` really reads every input pixel."""
        if node not in self._states:
            raise KeyError(f"no node {node!r} in the graph")
        return self._exact.is_global(node)

    def misaligned(self, tol: float = 0.0) -> list:
        """Joins whose branches' RF centres differ by more than ``tol`` pixels on some axis (at
        any feature: for branches without an exact summary, checked position by position)."""
        out = []
        for v in self.order:
            if v in self._mis:
                rec = self[v]
                if any(abs(x) > tol for x in rec.misalignment):
                    out.append(Misalignment(v, rec.op, rec.misalignment, rec.branches, rec.note))
        return out

    # -- records --------------------------------------------------------------------------------
    def _position_misalignment(self, v, ax, summary):
        """Largest centre difference between a join's branches over all its features.

        Exact branches with one jump differ by the same amount at every feature (the summary's
        number). Otherwise (nearest upsampling in an FPN top-down path, mixed jumps) the centres
        are compared feature by feature from the exact unclipped bounds.
        """
        preds = self._exact.inputs(v)
        n = self._states[v][ax].n
        full = [u for u in preds if self._states[u][ax].n == n and self._states[u][ax].global_from is None]
        if len(full) < 2 or all(self._states[u][ax].exact for u in full) and \
                len({self._states[u][ax].jump for u in full}) == 1:
            return summary
        centres = []
        for u in full:
            lo, hi = self._exact.bounds(u, ax, clip=False)
            centres.append((lo + hi + 1) / 2)
        spread = np.max(centres, axis=0) - np.min(centres, axis=0)
        return float(spread.max())

    def _make_record(self, v) -> RF:
        axes = self._states[v]
        attrs = self.graph._node[v]
        naxes = len(axes)
        contiguous, gaps = [], []
        for x in axes:
            if not x.exact:
                contiguous.append(None)
                gaps.append(())
            elif x.pattern is None:
                contiguous.append(True)
                gaps.append(())
            else:
                contiguous.append(False)
                gaps.append(tuple((num(hi0 - x.lo), num(lo1 - x.lo - 1))
                                  for (_, hi0), (lo1, _) in zip(x.pattern, x.pattern[1:])))
        branches = ()
        mis = self._mis.get(v)
        rf_range = None
        if mis is not None:
            centre = [(x.lo + x.hi) / 2 for x in axes]
            blist = []
            for u in self._exact.inputs(v):
                ys = self._states[u]
                blist.append(Branch(u, tuple(num(y.hi - y.lo) for y in ys),
                                    tuple(num((y.lo + y.hi) / 2) for y in ys),
                                    tuple(num((y.lo + y.hi) / 2 - centre[ax]) for ax, y in enumerate(ys))))
            branches = tuple(blist)
            rf_range = tuple((min(b.rf[ax] for b in blist), max(b.rf[ax] for b in blist)) for ax in range(naxes))
            mis = tuple(num(self._position_misalignment(v, ax, m)) for ax, m in enumerate(mis))
        return RF(
            name=v, op=self._plans[v].op.name,
            n=tuple(x.n for x in axes), jump=tuple(num(x.jump) for x in axes),
            rf=tuple(num(x.hi - x.lo) for x in axes), start=tuple(num((x.lo + x.hi) / 2) for x in axes),
            padding=tuple(num(-x.lo) for x in axes), global_from=tuple(x.global_from for x in axes),
            exact=tuple(x.exact for x in axes), contiguous=tuple(contiguous), gaps=tuple(gaps),
            branches=branches, misalignment=mis, rf_range=rf_range, note=self._notes.get(v, ""),
            module=attrs.get("module"), source=attrs.get("source"), _exact=self._exact,
        )


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while many long-lived objects are made.

    Propagation and records make no reference cycles, and on a big graph each full collection
    would traverse every object of the graph again (~30% of the time). On the way out the new
    objects go straight to the oldest generation (``freeze`` + ``unfreeze`` just move lists),
    where the collector would have moved them anyway after a first costly pass; skipped if the
    caller has frozen objects of its own, which ``unfreeze`` would release.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()
