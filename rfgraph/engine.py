"""The engine: propagate receptive fields through a DAG in topological order.

``analyze(G)`` computes every node's per-axis summary with the rules of :mod:`rfgraph.rules`
(cheap scalar arithmetic, so it scales to millions of nodes); records and exact per-position
bounds are built lazily, on first access, and cached. The graph is never mutated.
"""

from __future__ import annotations

import numpy as np
import networkx as nx

from .errors import GraphError, RFGraphError, ShapeError
from .graph import parse_node, topological_order
from .record import RF, Branch, Misalignment, num
from .rules import Axis, Out, get_rule

__all__ = ["analyze", "Analysis"]

_BIG = np.iinfo(np.int64).max // 4


def analyze(G, input_shape=None, **options) -> "Analysis":
    """Receptive fields of every node of a network.

    Parameters
    ----------
    G : networkx.DiGraph or torch.nn.Module
        A graph in rfgraph's schema (see the README), or a PyTorch module, which is first traced
        with :func:`rfgraph.from_torch` (then ``input_shape`` is required).
    input_shape : tuple, optional
        Only for modules: ``(C, H, W)`` (or ``(C, L)``, ``(C, T, H, W)``).
    **options
        Passed to :func:`rfgraph.from_torch` for modules (e.g. ``on_unsupported``).

    Returns
    -------
    Analysis
        ``analysis[node]`` is the node's :class:`~rfgraph.record.RF` record.

    Raises
    ------
    RFGraphError
        A subclass naming the node, op and problem for any invalid graph.

    Examples
    --------
    >>> import networkx as nx, rfgraph
    >>> G = nx.DiGraph()
    >>> G.add_node("x", op="input", size=(32, 32))
    >>> G.add_node("conv", op="conv", kernel=3, padding=1)
    >>> G.add_node("pool", op="maxpool", kernel=2)
    >>> G.add_edges_from([("x", "conv"), ("conv", "pool")])
    >>> rec = rfgraph.analyze(G)["pool"]
    >>> rec.n, rec.jump, rec.rf, rec.start
    ((16, 16), (2, 2), (4, 4), (1, 1))
    """
    if not isinstance(G, nx.DiGraph):
        if hasattr(G, "forward") and hasattr(G, "parameters"):
            from .frontends.torch import from_torch

            if input_shape is None:
                raise RFGraphError("analyzing a torch module needs input_shape, e.g. (3, 224, 224)")
            G = from_torch(G, input_shape, **options)
        else:
            raise GraphError(f"expected a networkx.DiGraph or a torch.nn.Module, got {type(G).__name__}")
    elif options or input_shape is not None:
        raise TypeError("input_shape and front-end options only apply to torch modules")
    return Analysis(G)


class Analysis:
    """Result of :func:`analyze`: records per node, alignment report and tables.

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

    def __init__(self, G: nx.DiGraph):
        self.graph = G
        self.order = topological_order(G)
        nodes = G.nodes
        self.inputs = [v for v in self.order if nodes[v].get("op") == "input"]
        if not self.inputs:
            raise GraphError("the graph has no input node (a node with op='input' and a size)")
        first = parse_node(self.inputs[0], nodes[self.inputs[0]], 1)
        size = first["size"]
        self.input_size = size
        naxes = len(size)
        self._specs = {}
        self._preds = {}
        self._states = {}
        self._notes = {}
        self._mis = {}
        self._records = {}
        self._bounds_cache = {}
        self._propagate(naxes)

    # -- propagation ----------------------------------------------------------------------
    def _propagate(self, naxes):
        G = self.graph
        nodes, pred = G.nodes, G.pred
        specs, preds_of, states = self._specs, self._preds, self._states
        size = self.input_size
        input_state = tuple(Axis(N, 1, 0, 1, None, None, True, N) for N in size)
        for v in self.order:
            attrs = nodes[v]
            spec = parse_node(v, attrs, naxes)
            specs[v] = spec
            p = pred[v]
            if len(p) > 1 and all("index" in d for d in p.values()):
                preds = [u for u, _ in sorted(p.items(), key=lambda item: item[1]["index"])]
            else:
                preds = list(p)
            preds_of[v] = preds
            if spec.op == "input":
                if preds:
                    raise GraphError("an input node cannot have incoming edges", node=v, op="input")
                if spec["size"] != size:
                    raise ShapeError(
                        f"input size {spec['size']} differs from {size} of input {self.inputs[0]!r}; "
                        "several inputs must share one pixel grid", node=v, op="input")
                states[v] = input_state
                continue
            if not preds:
                raise GraphError("has no inputs, so it is not reachable from any input node; "
                                 "connect it or remove it", node=v, op=spec.op)
            rule = get_rule(spec.op)
            lo, hi = rule.arity
            if len(preds) < lo or (hi is not None and len(preds) > hi):
                want = f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}..{hi}"
                raise GraphError(f"has {len(preds)} inputs ({', '.join(map(repr, preds))}) but {spec.op} "
                                 f"takes {want}", node=v, op=spec.op)
            try:
                out = rule.summary(spec, [states[u] for u in preds])
            except RFGraphError:
                raise
            except Exception as exc:  # a user rule's bug: say where it happened
                raise RFGraphError(f"rule for {spec.op!r} failed: {exc}", node=v, op=spec.op) from exc
            if isinstance(out, Out):
                if out.misalignment is not None:
                    self._mis[v] = out.misalignment
                if out.note:
                    self._notes[v] = out.note
                out = out.axes
            for x in out:
                if x.glob is not None and (x.a != 0 or x.b != x.size):
                    # once global, a feature's RF is the whole input, whatever follows
                    out = tuple(Axis(y.n, y.j, 0, y.size, None, y.glob, True, y.size)
                                if y.glob is not None else y for y in out)
                    break
            states[v] = out

    # -- access ---------------------------------------------------------------------------
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

    def records(self):
        """All records in topological order."""
        return [self[v] for v in self.order]

    @property
    def sinks(self) -> list:
        return [v for v in self.order if not self.graph.succ[v]]

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

        Uses the graph's ``module_outputs`` map when a front-end provides it, otherwise the last
        node (in topological order) whose ``module`` attribute is ``name`` or inside it.
        """
        outs = self.graph.graph.get("module_outputs", {})
        if name in outs:
            return self[outs[name]]
        prefix = name + "."
        last = None
        for v in self.order:
            m = self.graph.nodes[v].get("module")
            if m is not None and (m == name or m.startswith(prefix)):
                last = v
        if last is None:
            known = sorted(outs) or sorted({self.graph.nodes[v].get("module") for v in self.order} - {None})
            hint = f" Known modules include: {', '.join(known[:8])}" if known else ""
            raise KeyError(f"no module named {name!r} in the graph.{hint}")
        return self[last]

    def misaligned(self, tol: float = 0.0) -> list:
        """Joins whose branches' RF centres differ by more than ``tol`` pixels on some axis."""
        out = []
        for v in self.order:
            m = self._mis.get(v)
            if m is not None and any(abs(x) > tol for x in m):
                rec = self[v]
                out.append(Misalignment(v, rec.op, tuple(num(x) for x in m), rec.branches, rec.note))
        return out

    def table(self, nodes=None) -> list:
        """The blog-style per-layer table: one dict per node (name, op, n, jump, rf, start,
        padding, notes); a value is a scalar when all axes agree."""
        from .render.table import rows

        return rows(self, nodes)

    # -- records --------------------------------------------------------------------------
    def _make_record(self, v) -> RF:
        spec = self._specs[v]
        axes = self._states[v]
        attrs = self.graph.nodes[v]
        naxes = len(axes)
        rf = tuple(num(x.b - x.a) for x in axes)
        start = tuple(num((x.a + x.b) / 2) for x in axes)
        padding = tuple(num(-x.a) for x in axes)
        contiguous, gaps, is_global = [], [], []
        for ax, x in enumerate(axes):
            if not x.exact:
                contiguous.append(None)
                gaps.append(())
            elif x.pattern is None:
                contiguous.append(True)
                gaps.append(())
            else:
                contiguous.append(False)
                gaps.append(tuple((num(hi0 - x.a), num(lo1 - x.a - 1))
                                  for (_, hi0), (lo1, _) in zip(x.pattern, x.pattern[1:])))
            is_global.append(x.glob is not None or self._covers(v, ax, x))
        branches = ()
        mis = self._mis.get(v)
        rf_range = None
        if mis is not None:
            centre = [(x.a + x.b) / 2 for x in axes]
            blist = []
            for u in self._preds[v]:
                ys = self._states[u]
                blist.append(Branch(u, tuple(num(y.b - y.a) for y in ys),
                                    tuple(num((y.a + y.b) / 2) for y in ys),
                                    tuple(num((y.a + y.b) / 2 - centre[ax]) for ax, y in enumerate(ys))))
            branches = tuple(blist)
            rf_range = tuple((min(b.rf[ax] for b in blist), max(b.rf[ax] for b in blist)) for ax in range(naxes))
            mis = tuple(num(m) for m in mis)
        return RF(
            name=v, op=spec.op,
            n=tuple(x.n for x in axes), jump=tuple(num(x.j) for x in axes), rf=rf, start=start,
            padding=padding, is_global=tuple(is_global), global_from=tuple(x.glob for x in axes),
            exact=tuple(x.exact for x in axes), contiguous=tuple(contiguous), gaps=tuple(gaps),
            branches=branches, misalignment=mis, rf_range=rf_range, note=self._notes.get(v, ""),
            module=attrs.get("module"), source=attrs.get("source"), _analysis=self,
        )

    def _covers(self, v, ax, x) -> bool:
        """Every feature's RF covers the whole input along ``ax`` (without holes)."""
        if x.exact:
            # the last feature still starts at or before pixel 0, the first still ends at or after N
            return x.pattern is None and x.a + (x.n - 1) * x.j <= 0 and x.b >= x.size
        lo, hi = self.bounds(v, ax, clip=True)
        return bool((lo == 0).all() and (hi == x.size - 1).all())

    # -- exact per-position bounds -------------------------------------------------------
    def bounds(self, node, axis: int = 0, clip: bool = True):
        """Exact per-feature RF bounds of ``node`` along ``axis``; see :meth:`RF.bounds`."""
        if node not in self._states:
            raise KeyError(f"no node {node!r} in the graph")
        naxes = len(self.input_size)
        if not -naxes <= axis < naxes:
            raise IndexError(f"axis {axis} out of range for {naxes} spatial axes")
        axis %= naxes
        lo_u, hi_u, lo_c, hi_c = self._exact(node, axis)
        if not clip:
            return lo_u.copy(), hi_u.copy()
        empty = lo_c > hi_c
        return np.where(empty, -1, lo_c), np.where(empty, -1, hi_c)

    def _exact(self, node, axis):
        cache = self._bounds_cache
        key = (node, axis)
        if key in cache:
            return cache[key]
        # Iterative post-order over the uncached ancestors (deep chains exceed Python's recursion).
        todo, stack, seen = [], [node], set()
        while stack:
            v = stack.pop()
            if v in seen or (v, axis) in cache:
                continue
            seen.add(v)
            todo.append(v)
            stack.extend(self._preds[v])
        pos = {v: i for i, v in enumerate(self.order)} if len(todo) > 64 else None
        todo.sort(key=(pos.__getitem__ if pos else self.order.index))
        for v in todo:
            cache[(v, axis)] = self._exact_one(v, axis)
        return cache[key]

    def _exact_one(self, v, axis):
        x = self._states[v][axis]
        n = x.n
        spec = self._specs[v]
        if spec.op == "input":
            ar = np.arange(n, dtype=np.int64)
            return ar, ar, ar, ar
        if x.glob is not None:
            lo = np.zeros(n, dtype=np.int64)
            hi = np.full(n, x.size - 1, dtype=np.int64)
            return lo, hi, lo, hi
        preds = self._preds[v]
        rule = get_rule(spec.op)
        if rule.arity[1] != 1:  # a join: union (min/max), broadcasting size-1 inputs
            parts = [self._bounds_cache[(u, axis)] for u in preds]
            return tuple(np.minimum.reduce([np.broadcast_to(p[i], (n,)) for p in parts]) if i % 2 == 0
                         else np.maximum.reduce([np.broadcast_to(p[i], (n,)) for p in parts])
                         for i in range(4))
        u = preds[0]
        y = self._states[u][axis]
        lo_u_in, hi_u_in, lo_c_in, hi_c_in = self._bounds_cache[(u, axis)]
        if rule.taps is None:
            # user rule without an index map: follow its affine summary
            i = np.arange(n, dtype=np.float64) * x.j
            lo = np.floor(x.a + i).astype(np.int64)
            hi = np.ceil(x.b + i).astype(np.int64) - 1
            return lo, hi, np.maximum(lo, 0), np.minimum(hi, x.size - 1)
        lo_u = np.full(n, _BIG, dtype=np.int64)
        hi_u = np.full(n, -_BIG, dtype=np.int64)
        lo_c = lo_u.copy()
        hi_c = hi_u.copy()
        m = y.n
        for idx, mask in rule.taps(spec, axis, m, n):
            inside = (idx >= 0) & (idx < m)
            safe = np.clip(idx, 0, m - 1)
            use = inside if mask is None else inside & mask
            lo_c = np.minimum(lo_c, np.where(use, lo_c_in[safe], _BIG))
            hi_c = np.maximum(hi_c, np.where(use, hi_c_in[safe], -_BIG))
            # outside the input: padding, extrapolated from the nearest edge feature by the jump
            below = np.minimum(idx, 0)
            above = np.maximum(idx - (m - 1), 0)
            ext_lo = np.where(inside, lo_u_in[safe],
                              np.floor(lo_u_in[safe] + (below + above) * y.j).astype(np.int64))
            ext_hi = np.where(inside, hi_u_in[safe],
                              np.ceil(hi_u_in[safe] + (below + above) * y.j).astype(np.int64))
            valid = np.ones(n, dtype=bool) if mask is None else mask
            lo_u = np.minimum(lo_u, np.where(valid, ext_lo, _BIG))
            hi_u = np.maximum(hi_u, np.where(valid, ext_hi, -_BIG))
        return lo_u, hi_u, lo_c, hi_c
