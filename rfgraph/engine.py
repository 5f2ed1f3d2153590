"""The engine: propagate receptive fields through a DAG in topological order.

``analyze(G)`` computes every node's per-axis summary with the rules of :mod:`rfgraph.rules`
(cheap scalar arithmetic, so it scales to millions of nodes); records and exact per-position
bounds are built lazily, on first access, and cached. The graph is never mutated.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

import numpy as np
import networkx as nx

from .errors import GraphError, RFGraphError, ShapeError
from .graph import JOIN_OPS, OPS, Spec, check_digraph, parse_node, spec_key, topological_order_info
from .record import RF, Branch, Misalignment, num
from . import rules
from .rules import Axis, Out, get_rule, join_fast, settle_global, window_plan

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
        check_digraph(G)
        with _gc_paused():
            # Optimistic: builders and front-ends add nodes after their inputs, so try insertion
            # order (which the topological sort then returns) without sorting first. A node met
            # before one of its inputs fails (its input has no state yet), and so does any real
            # error; only then is the order checked, so a cycle is still reported first.
            try:
                self._run(list(G._pred), as_inserted=True)
                return
            except Exception as exc:
                error = exc
            order, as_inserted = topological_order_info(G)  # CycleError on a cycle
            if as_inserted:
                raise error  # a genuine error, met in the right order
            self._run(order, as_inserted=False)

    def _run(self, order, as_inserted):
        G = self.graph
        self.order = order
        self._plans = {}  # spec_key(attrs) -> _Plan: one per distinct parameter set (see _spec)
        self._specs = {}  # node -> Spec, for nodes without a shared plan
        self._states = {}
        self._notes = {}
        self._mis = {}
        self._records = {}
        self._bounds_cache = {}
        self._pixel_cache = {}
        self._global_cache = {}
        nodes = G._node  # the attribute dicts themselves (G.nodes[v] costs a view call per node)
        self.inputs = [v for v, attrs in nodes.items() if attrs.get("op") == "input"]
        if len(self.inputs) > 1 and not as_inserted:  # list them in topological order
            rank = {v: i for i, v in enumerate(order)}
            self.inputs.sort(key=rank.__getitem__)
        if not self.inputs:
            raise GraphError("the graph has no input node (a node with op='input' and a size)")
        first = parse_node(self.inputs[0], nodes[self.inputs[0]], 1)
        self.input_size = size = first["size"]
        self._input_state = tuple(Axis(N, 1, 0, 1, None, None, True, N) for N in size)
        self._propagate(len(size), as_inserted)

    # -- propagation ----------------------------------------------------------------------
    # The hot loop: a few microseconds per node. Parsing is cached per distinct parameter set
    # (a _Plan), and identity, window and join nodes take fast paths that give the rules' exact
    # results; anything unusual (errors included) goes through the general path.

    def _propagate(self, naxes, as_inserted):
        G = self.graph
        nodes, pred = G._node, G._pred
        plans, specs, states, mis_of = self._plans, self._specs, self._states, self._mis
        if as_inserted and list(nodes) == self.order:
            # networkx keeps the attribute and predecessor dicts in the same (insertion) order:
            # walk them side by side rather than look each node up twice (on big graphs every
            # lookup is a cache miss)
            walk = zip(self.order, nodes.values(), pred.values())
        else:
            walk = ((v, nodes[v], pred[v]) for v in self.order)
        for v, attrs, p in walk:
            key = spec_key(attrs)
            plan = plans.get(key)  # None for key None: it is never stored
            if plan is None:
                plan = _Plan(v, attrs, naxes)
                if key is not None and plan.spec.op in OPS:  # user ops keep their own spec
                    plans[key] = plan
                else:
                    specs[v] = plan.spec
            kind = plan.kind
            if len(p) == 1:
                if kind is _IDENTITY:
                    [u] = p
                    states[v] = states[u]  # already settled: nothing to normalise
                    continue
                if kind is _WINDOW:
                    [u] = p
                    out = plan.fast(states[u])  # settled by the plan
                    if out is not None:
                        states[v] = out
                        continue
            elif kind is _JOIN and p:
                fast = join_fast([states[u] for u in _ordered(p)])
                if fast is not None:
                    states[v], mis_of[v] = fast  # not global, so already settled
                    continue
            out = self._general(v, plan, _ordered(p))
            if out is not None:  # None: an input node
                states[v] = settle_global(out)

    def _general(self, v, plan, preds):
        """One node through its rule, with every structural check; None for an input node."""
        spec = self._spec(v, plan.spec)
        states = self._states
        if spec.op == "input":
            if preds:
                raise GraphError("an input node cannot have incoming edges", node=v, op="input")
            if spec["size"] != self.input_size:
                raise ShapeError(
                    f"input size {spec['size']} differs from {self.input_size} of input {self.inputs[0]!r}; "
                    "several inputs must share one pixel grid", node=v, op="input")
            states[v] = self._input_state
            return None
        if not preds:
            raise GraphError("has no inputs, so it is not reachable from any input node; "
                             "connect it or remove it", node=v, op=spec.op)
        rule = plan.rule
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
        return out

    def _inputs(self, v) -> list:
        """``v``'s inputs in join order (computed on demand: only joins' records and exact
        bounds need them)."""
        return _ordered(self.graph._pred[v])

    def _spec(self, v, spec=None) -> Spec:
        """Node ``v``'s spec under its own name (a shared plan's spec carries the first node's)."""
        if spec is None:
            spec = self._specs.get(v)
            if spec is None:  # a node with a shared plan: find it again by its key
                spec = self._plans[spec_key(self.graph._node[v])].spec
        return spec if spec.name is v else Spec(v, spec.op, spec.params)

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
        with _gc_paused():  # many new long-lived objects: see _gc_paused
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
        """Joins whose branches' RF centres differ by more than ``tol`` pixels on some axis (at
        any feature: for branches without an exact summary, checked position by position)."""
        out = []
        for v in self.order:
            if v in self._mis:
                rec = self[v]
                if any(abs(x) > tol for x in rec.misalignment):
                    out.append(Misalignment(v, rec.op, rec.misalignment, rec.branches, rec.note))
        return out

    def _position_misalignment(self, v, ax, summary):
        """Largest centre difference between a join's branches over all its features.

        Exact branches with one jump differ by the same amount at every feature (the summary's
        number). Otherwise (nearest upsampling in an FPN top-down path, mixed jumps) the centres
        are compared feature by feature from the exact unclipped bounds.
        """
        ys = [self._states[u][ax] for u in self._inputs(v)]
        n = self._states[v][ax].n
        full = [u for u, y in zip(self._inputs(v), ys) if y.n == n and y.glob is None]
        if len(full) < 2 or all(self._states[u][ax].exact for u in full) and \
                len({self._states[u][ax].j for u in full}) == 1:
            return summary
        centres = []
        for u in full:
            lo, hi = self.bounds(u, ax, clip=False)
            centres.append((lo + hi + 1) / 2)
        spread = np.max(centres, axis=0) - np.min(centres, axis=0)
        return float(spread.max())

    def table(self, nodes=None) -> list:
        """The blog-style per-layer table: one dict per node (name, op, n, jump, rf, start,
        padding, notes); a value is a scalar when all axes agree."""
        from .render.table import rows

        return rows(self, nodes)

    # -- records --------------------------------------------------------------------------
    def _make_record(self, v) -> RF:
        axes = self._states[v]
        attrs = self.graph._node[v]
        op = attrs["op"]  # the parsed spec's op (no need to look the spec up again)
        naxes = len(axes)
        rf = tuple(num(x.b - x.a) for x in axes)
        start = tuple(num((x.a + x.b) / 2) for x in axes)
        padding = tuple(num(-x.a) for x in axes)
        contiguous, gaps = [], []
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
        branches = ()
        mis = self._mis.get(v)
        rf_range = None
        if mis is not None:
            centre = [(x.a + x.b) / 2 for x in axes]
            blist = []
            for u in self._inputs(v):
                ys = self._states[u]
                blist.append(Branch(u, tuple(num(y.b - y.a) for y in ys),
                                    tuple(num((y.a + y.b) / 2) for y in ys),
                                    tuple(num((y.a + y.b) / 2 - centre[ax]) for ax, y in enumerate(ys))))
            branches = tuple(blist)
            rf_range = tuple((min(b.rf[ax] for b in blist), max(b.rf[ax] for b in blist)) for ax in range(naxes))
            mis = tuple(num(self._position_misalignment(v, ax, m)) for ax, m in enumerate(mis))
        return RF(
            name=v, op=op,
            n=tuple(x.n for x in axes), jump=tuple(num(x.j) for x in axes), rf=rf, start=start,
            padding=padding, global_from=tuple(x.glob for x in axes),
            exact=tuple(x.exact for x in axes), contiguous=tuple(contiguous), gaps=tuple(gaps),
            branches=branches, misalignment=mis, rf_range=rf_range, note=self._notes.get(v, ""),
            module=attrs.get("module"), source=attrs.get("source"), _analysis=self,
        )

    def is_global(self, node) -> tuple:
        """Per axis: every feature of ``node`` really reads every input pixel (cached)."""
        out = self._global_cache.get(node)
        if out is None:
            out = self._global_cache[node] = tuple(
                self._covers(node, ax, x) for ax, x in enumerate(self._states[node]))
        return out

    def _covers(self, v, ax, x) -> bool:
        if x.exact and not (x.pattern is None and x.a + (x.n - 1) * x.j <= 0 and x.b >= x.size):
            return False  # cheap: even the theoretical RF of some feature misses part of the input
        lo, hi = self.bounds(v, ax, clip=True)
        if not ((lo == 0).all() and (hi == x.size - 1).all()):
            return False
        # the hull covers, but a pixel may still be unread inside it (holes that only padding
        # would have filled): look at every feature's pixels
        return bool(self._pixels(v, ax).all())

    def _uncached(self, node, axis, cache) -> list:
        """``node`` and its ancestors not yet in ``cache``, in topological order.

        Iterative (deep chains exceed Python's recursion limit).
        """
        todo, stack, seen = [], [node], set()
        while stack:
            v = stack.pop()
            if v in seen or (v, axis) in cache:
                continue
            seen.add(v)
            todo.append(v)
            stack.extend(self._inputs(v))
        pos = {v: i for i, v in enumerate(self.order)} if len(todo) > 64 else None
        todo.sort(key=(pos.__getitem__ if pos else self.order.index))
        return todo

    def _pixels(self, node, axis):
        """Boolean matrix (features x input pixels) of what each feature really reads along
        ``axis``; only built for the rare question "does every feature read every pixel?" on
        axes without an exact summary, so it is cached separately and computed on demand."""
        cache = self._pixel_cache
        if (node, axis) in cache:
            return cache[(node, axis)]
        for v in self._uncached(node, axis, cache):
            cache[(v, axis)] = self._pixels_one(v, axis)
        return cache[(node, axis)]

    def _pixels_one(self, v, axis):
        x = self._states[v][axis]
        spec = self._spec(v)
        N = self.input_size[axis]
        if spec.op == "input":
            return np.eye(N, dtype=bool)
        preds = self._inputs(v)
        ins = [self._pixel_cache[(u, axis)] for u in preds]
        if spec.op == "global":
            if axis not in spec.params["axes"]:
                return ins[0]
            return np.broadcast_to(ins[0].any(axis=0), (x.n, N))
        rule = get_rule(spec.op)
        if spec.op in JOIN_OPS:
            out = np.zeros((x.n, N), dtype=bool)
            for m in ins:
                out |= np.broadcast_to(m, (x.n, N))
            return out
        if rule.taps is None:  # a user rule: what its bounds say, assumed contiguous
            lo, hi = self.bounds(v, axis)
            cols = np.arange(N)
            return (cols >= lo[:, None]) & (cols <= hi[:, None])
        m_in = ins[0]
        m = m_in.shape[0]
        out = np.zeros((x.n, N), dtype=bool)
        for idx, mask in rule.taps(spec, axis, m, x.n):
            use = (idx >= 0) & (idx < m)
            if mask is not None:
                use &= mask
            out |= m_in[np.clip(idx, 0, m - 1)] & use[:, None]
        return out

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
        for v in self._uncached(node, axis, cache):
            cache[(v, axis)] = self._exact_one(v, axis)
        return cache[key]

    def _exact_one(self, v, axis):
        x = self._states[v][axis]
        n = x.n
        spec = self._spec(v)
        if spec.op == "input":
            ar = np.arange(n, dtype=np.int64)
            return ar, ar, ar, ar
        preds = self._inputs(v)
        if spec.op == "global":
            parts = self._bounds_cache[(preds[0], axis)]
            if axis not in spec.params["axes"]:  # not reduced here: positions pass through
                return parts
            # every feature sees the union of what all input features see
            lo_c, hi_c = parts[2], parts[3]
            seen = lo_c <= hi_c
            lo_c = lo_c[seen].min() if seen.any() else _BIG
            hi_c = hi_c[seen].max() if seen.any() else -_BIG
            return (np.full(n, parts[0].min(), dtype=np.int64), np.full(n, parts[1].max(), dtype=np.int64),
                    np.full(n, lo_c, dtype=np.int64), np.full(n, hi_c, dtype=np.int64))
        rule = get_rule(spec.op)
        if spec.op in JOIN_OPS:  # a join: union (min/max), broadcasting size-1 inputs
            parts = [self._bounds_cache[(u, axis)] for u in preds]
            return tuple(np.minimum.reduce([np.broadcast_to(p[i], (n,)) for p in parts]) if i % 2 == 0
                         else np.maximum.reduce([np.broadcast_to(p[i], (n,)) for p in parts])
                         for i in range(4))
        u = preds[0]
        y = self._states[u][axis]
        lo_u_in, hi_u_in, lo_c_in, hi_c_in = self._bounds_cache[(u, axis)]
        if rule.taps is None:  # (also a user rule with several inputs: its summary is all we have)
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


@contextmanager
def _gc_paused():
    """Pause the cyclic garbage collector while the analysis is built.

    Propagation makes no reference cycles, and on a big graph each full collection would traverse
    every object of the graph again (~30% of the time). On the way out the new objects, which live
    as long as the analysis, go straight to the oldest generation (``freeze`` + ``unfreeze`` just
    move lists), where the collector would have moved them anyway after a first costly pass;
    skipped if the caller has frozen objects of its own, which ``unfreeze`` would release.
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


def _ordered(p) -> list:
    """Predecessors (a node's ``G.pred`` dict) in input order: the edges' ``index`` when every
    in-edge has one, else insertion order (as :func:`rfgraph.graph.ordered_inputs`)."""
    if len(p) > 1:
        index = [d["index"] for d in p.values() if "index" in d]
        if len(index) == len(p) and index != sorted(index):  # (usually added in index order)
            return sorted(p, key=lambda u: p[u]["index"])  # stable, like ordered_inputs
    return list(p)


# -- plans: one per distinct parameter set ----------------------------------------------------

_IDENTITY, _WINDOW, _JOIN = "identity", "window", "join"


class _Plan:
    """A parsed node configuration: its spec, rule and fast path, shared by every node with the
    same params (the spec's name is the first such node's; see :meth:`Analysis._spec`).

    ``kind`` picks a fast path in the engine, only when the op's rule is the built-in one (a rule
    replaced with ``register_rule(..., replace=True)`` always goes through the general path).
    """

    __slots__ = ("spec", "rule", "kind", "fast")

    def __init__(self, name, attrs, naxes):
        spec = self.spec = parse_node(name, attrs, naxes)
        self.rule = None if spec.op == "input" else get_rule(spec.op)
        self.kind = self.fast = None
        if spec.op not in OPS or self.rule is None:
            return
        summary = self.rule.summary
        if summary is rules._identity:
            self.kind = _IDENTITY
        elif summary is rules._window:
            self.fast = window_plan(spec.params)
            self.kind = _WINDOW if self.fast is not None else None
        elif summary is rules._join:
            self.kind = _JOIN
