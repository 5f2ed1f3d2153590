"""The :class:`Analysis`: records per node, joins and their alignment, module lookup."""

from __future__ import annotations

import gc
from contextlib import contextmanager

import numpy as np

from .. import schema
from ..errors import GraphError
from ..record import RF, Branch, Misalignment, num, record_fields, record_from
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
        self._front: dict = {}  # exact node -> its feature 0's numbers, for join branches
        self._by_states: dict = {}  # id of an exact states tuple -> its records' per-axis fields
        self._by_node: dict = {}  # node -> the per-axis fields of the pointwise nodes it feeds
        self._by_axis: dict = {}  # id of an exact axis state -> its fields (see _exact_axis)
        self._numbers_of: dict = {}  # (node, axis) -> _numbers of a position-dependent axis
        self._twins: dict = {}  # (node, axis, branches) -> _twin
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
            records, make = self._records, self._make_record
            out = []
            for v in self.order:  # self[v] without its call and check per node (v is in the graph)
                rec = records.get(v)
                if rec is None:
                    rec = records[v] = make(v)
                out.append(rec)
            return out

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

    def op(self, node):
        """The :class:`~rfgraph.ops.Op` this analysis used for ``node`` (its label, its docs)."""
        if node not in self._plans:
            raise KeyError(f"no node {node!r} in the graph")
        return self._plans[node].op

    def bounds(self, node, axis: int = 0, clip: bool = True):
        """Exact per-feature RF bounds of ``node`` along ``axis``; see :meth:`RF.bounds`."""
        return self._exact.bounds(node, axis, clip)

    def _repr_html_(self) -> str:
        """Jupyter shows the stage table (the rows ``rfgraph analyze`` prints) as HTML."""
        from ..render.notebook import to_html_table  # the engine never imports render at load time

        return to_html_table(self)

    def diagram(self, **options):
        """The annotated diagram, displayed as SVG in Jupyter (needs Graphviz's ``dot``).

        ``options`` go to :func:`rfgraph.to_dot` (``depth``, ``fold``, ``rankdir``, ...); the
        returned object has ``source`` (the DOT text), ``svg()`` and ``_repr_svg_``.
        """
        from ..render.notebook import Diagram

        return Diagram(self, **options)

    def pixels(self, node, axis: int, feature: int) -> tuple:
        """The input pixels feature ``feature`` of ``node`` really reads along ``axis``, as
        disjoint inclusive intervals (holes from dilation or strides show as several; empty:
        only padding).

        >>> import rfgraph
        >>> G = rfgraph.chain([("c", "conv", 3, 1, 0)], (9,))
        >>> G.nodes["c"]["dilation"] = 2
        >>> rfgraph.analyze(G).pixels("c", 0, 1)
        ((1, 1), (3, 3), (5, 5))
        """
        if node not in self._states:
            raise KeyError(f"no node {node!r} in the graph")
        return self._exact.coverage(node, axis).intervals(feature)

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
    def _numbers(self, v, ax):
        """``(rf, start, padding, (rf_min, rf_max))`` of node ``v`` along ``ax``: feature 0's own
        numbers and the range of the RF size over all features.

        Exact axes take them from the affine summary (every feature alike). Position-dependent
        ones (upsampling, transposed convs, adaptive pooling, mixed joins) from the exact
        unclipped bounds, so the record never shows a value no feature has.
        """
        x = self._states[v][ax]
        if x.exact:
            return self._exact_axis(x)[2:6]
        rep = self._exact.alias(v)  # a pointwise node has its input's bounds
        key = (v if rep is None else rep, ax)
        found = self._numbers_of.get(key)
        if found is None:
            a = self._twin(v, ax)
            if a is not None:  # the same answers as along a lower axis
                found = self._numbers(v, a)
            else:  # bounds asked of v itself, so v's entry is filled too (an alias's is the rep's)
                found = self._numbers_from_bounds(x, *self._exact.exact(v, ax)[:2])
            self._numbers_of[key] = found
        return found

    def _twin(self, v, ax, branches=False):
        """A lower axis whose record numbers ``v`` shares along ``ax``: the same exact answers
        (:meth:`ExactBounds.twin`) and the same state; with ``branches``, also each input's
        (a join's misalignment compares them one by one); or None."""
        key = (v, ax, branches)
        found = self._twins.get(key, -1)
        if found != -1:
            return found
        exact = self._exact
        found = a = exact.twin(v, ax)
        states = self._states
        if a is not None and states[v][a] is not states[v][ax] and not states[v][a] == states[v][ax]:
            found = None
        elif a is not None and branches:
            for u in exact.inputs(v):
                t = exact.tokens(u)
                if t[a] != t[ax] or states[u][a] is not states[u][ax] and not states[u][a] == states[u][ax]:
                    found = None
                    break
        self._twins[key] = found
        return found

    @staticmethod
    def _numbers_from_bounds(x, lo, hi):
        l0, h0 = int(lo[0]), int(hi[0])
        if l0 > h0:  # a feature no input reaches (a transposed conv's gap) has no RF
            rf = num(x.hi - x.lo)
            first = (rf, num((x.lo + x.hi) / 2), num(-x.lo))
        else:
            first = (h0 - l0 + 1, num((l0 + h0 + 1) / 2), -l0)
        widths = hi - lo  # one less than each RF size
        least, most = int(widths.min()) + 1, int(widths.max()) + 1
        if least <= 0:  # leave the features without an RF out
            widths = widths[widths >= 0]
            least, most = (int(widths.min()) + 1, int(widths.max()) + 1) if len(widths) else (first[0], first[0])
        return first + ((least, most),)

    def _centres(self, u, ax, n):
        """Centre of each of ``n`` features of ``u`` along ``ax`` (exact bounds when needed)."""
        y = self._states[u][ax]
        if y.exact:
            return (y.lo + y.hi) / 2 + np.arange(n) * y.jump
        lo, hi = self._exact.exact(u, ax)[:2]  # read only: no copies
        return (lo + hi + 1) / 2

    def _span(self, u, ax, i):
        """``[lo, hi)`` of feature ``i`` of ``u`` along ``ax`` (feature 0 of a broadcast input)."""
        y = self._states[u][ax]
        i = i if y.n > 1 else 0
        if y.exact:
            return y.lo + i * y.jump, y.hi + i * y.jump
        lo, hi = self._exact.exact(u, ax)[:2]
        return int(lo[i]), int(hi[i]) + 1

    def _misalignment(self, v, ax, summary):
        """``(spread, feature)``: the largest difference between a join's branch centres over its
        features, and a feature where it occurs.

        Exact branches with one jump differ by the same amount at every feature (the summary's
        number, at feature 0). Otherwise (nearest upsampling in an FPN top-down path, mixed jumps)
        the centres are compared feature by feature from the exact unclipped bounds.
        """
        x = self._states[v][ax]
        if x.exact and x.global_from is None:
            return summary, 0  # exact join of exact inputs with one jump: the summary's number
        preds = self._exact.inputs(v)
        n = x.n
        full = [u for u in preds if self._states[u][ax].n == n and self._states[u][ax].global_from is None]
        if len(full) < 2 or all(self._states[u][ax].exact for u in full) and \
                len({self._states[u][ax].jump for u in full}) == 1:
            return summary, 0
        if len(full) == 2:  # the usual residual add: one difference
            spread = np.abs(self._centres(full[0], ax, n) - self._centres(full[1], ax, n))
        else:
            centres = np.array([self._centres(u, ax, n) for u in full])
            spread = centres.max(axis=0) - centres.min(axis=0)
        at = int(spread.argmax())
        return float(spread[at]), at

    def _make_record(self, v) -> RF:
        axes = self._states[v]
        attrs = self.graph._node[v]
        values = self._axis_fields(v, axes).copy()  # every field, the per-axis ones filled in
        values["name"] = v
        values["op"] = attrs["op"]  # the op's name, as the node spells it (no plan lookup)
        own, rule = attrs.get("note"), self._notes.get(v)  # see _note
        if own or rule:
            values["note"] = self._note(v)
        values["module"] = attrs.get("module")
        values["source"] = attrs.get("source")
        mis = self._mis.get(v)
        if mis is not None and self._exact.alias(v) is not None and not all(x.exact for x in axes):
            # a join of copies of one node (x + mlp(x) on attention's windows): every branch has
            # that node's bounds, so each is its feature 0 (this record's own numbers) with no
            # offset, and nothing is misaligned (exact axes take the cheap path below)
            zeros = (0,) * len(axes)
            rf, start = values["rf"], values["start"]
            values["branches"] = tuple([Branch(u, rf, start, zeros) for u in self._exact.inputs(v)])
            values["misalignment"] = values["misaligned_at"] = zeros
            values["rf_range"] = tuple([(r, r) for r in rf])
        elif mis is not None:
            naxes = len(axes)
            found = []
            for ax, m in enumerate(mis):
                a = self._twin(v, ax, branches=True) if ax and not axes[ax].exact else None
                found.append(found[a] if a is not None else self._misalignment(v, ax, m))
            at = tuple(w for _, w in found)
            preds = self._exact.inputs(v)
            states = self._states
            if not any(at) and all(x.exact for x in axes) and all(y.exact for u in preds for y in states[u]):
                # the usual join (exact, so its hull is its branches' hull at every feature): the
                # offsets are the same at every feature, feature 0's
                centre = [(x.lo + x.hi) / 2 for x in axes]
                blist = []
                for u in preds:
                    rf_u, start_u, centre_u, centred = self._feature0(u)
                    if centre_u == centre:  # on the join's centre (a DenseNet layer in every later concat)
                        blist.append(centred)
                    else:
                        blist.append(Branch(u, rf_u, start_u, tuple([num(c - w) for c, w in zip(centre_u, centre)])))
            else:
                blist = self._branches(v, preds, at, naxes)
            values["branches"] = tuple(blist)
            values["misalignment"] = tuple(num(m) for m, _ in found)
            values["misaligned_at"] = at
            values["rf_range"] = tuple((min(r), max(r)) for r in zip(*[b.rf for b in blist]))
        return record_from(values)

    def _axis_fields(self, v, axes) -> dict:
        """A record's fields with the per-axis ones (n, jump, rf, start, padding, rf_extent,
        global_from, exact, contiguous, gaps) filled in, the rest at their defaults: a template
        the caller copies.

        Shared where they must be equal: by every node whose states are the same objects when
        all axes are exact (the numbers follow from the states alone; most nodes of a network
        pass their input's states on), and by a pointwise node with its input (the same
        features, so the same exact bounds)."""
        found = self._by_states.get(id(axes))  # exact states only; the states dict keeps them alive
        if found is not None:
            return found
        if axes[0].exact and all(x.exact for x in axes):  # (no generator for a position-dependent first axis)
            found = self._by_states[id(axes)] = self._compute_fields(v, axes)
            return found
        rep = self._exact.alias(v)
        if rep is None:
            return self._compute_fields(v, axes)
        found = self._by_node.get(rep)
        if found is None:
            found = self._by_node[rep] = self._compute_fields(rep, self._states[rep])
        return found

    def _compute_fields(self, v, axes) -> dict:
        per_axis = [self._exact_axis(x) if x.exact else self._dependent_axis(v, ax, x) for ax, x in enumerate(axes)]
        return record_fields(*zip(*per_axis), self._exact)

    def _exact_axis(self, x) -> tuple:
        """One exact axis's ``(n, jump, rf, start, padding, rf_extent, global_from, exact,
        contiguous, gaps)``: every feature alike, the summary's numbers (cached per state:
        networks share axis states between nodes and between axes)."""
        found = self._by_axis.get(id(x))
        if found is None:
            lo, hi, jump = x.lo, x.hi, x.jump
            if x.pattern is None:
                contiguous, gaps = True, ()
            else:
                contiguous = False
                gaps = tuple((num(hi0 - lo), num(lo1 - lo - 1)) for (_, hi0), (lo1, _) in zip(x.pattern, x.pattern[1:]))
            if type(lo) is int and type(hi) is int and type(jump) is int:  # no float to show as an int
                r, twice = hi - lo, lo + hi
                start = twice / 2 if twice & 1 else twice >> 1
                found = (x.n, jump, r, start, -lo, (r, r), x.global_from, True, contiguous, gaps)
            else:
                r = num(hi - lo)
                found = (x.n, num(jump), r, num((lo + hi) / 2), num(-lo), (r, r), x.global_from, True, contiguous, gaps)
            self._by_axis[id(x)] = found
        return found

    def _dependent_axis(self, v, ax, x) -> tuple:
        """The same for a position-dependent axis: feature 0's numbers and the range over features."""
        r, s, p, e = self._numbers(v, ax)
        return (x.n, num(x.jump), r, s, p, e, x.global_from, False, None, ())

    def _feature0(self, u):
        """``(rf, start, centre, branch)`` of exact node ``u``'s feature 0, per axis, and ``u`` as
        a branch centred on its join (cached: a DenseNet layer is a branch of every later concat
        of its block)."""
        f = self._front.get(u)
        if f is None:
            ys = self._states[u]
            fields = [self._exact_axis(y) for y in ys]
            rf, start = tuple([f[2] for f in fields]), tuple([f[3] for f in fields])
            f = self._front[u] = (rf, start, [(y.lo + y.hi) / 2 for y in ys], Branch(u, rf, start, (0,) * len(ys)))
        return f

    def _branches(self, v, preds, at, naxes) -> list:
        """Each branch's feature-0 numbers and its offset from the join's centre, measured at the
        feature where the branches differ most (``at``)."""
        spans = [[self._span(u, ax, w) for u in preds] for ax, w in enumerate(at)]
        middles = [(min([lo for lo, _ in sp]) + max([hi for _, hi in sp])) / 2 for sp in spans]
        blist = []
        records = self._records
        for k, u in enumerate(preds):
            offset = tuple([num((sp[k][0] + sp[k][1]) / 2 - mid) for sp, mid in zip(spans, middles)])
            rec = records.get(u)  # made already when the records are made in order: its numbers
            if rec is not None:
                blist.append(Branch(u, rec.rf, rec.start, offset))
                continue
            nums = [self._numbers(u, ax) for ax in range(naxes)]
            blist.append(Branch(u, tuple([b[0] for b in nums]), tuple([b[1] for b in nums]), offset))
        return blist

    def _note(self, v) -> str:
        """The node's own ``note`` (a front-end's approximation, say) and the op's, joined."""
        own = self.graph._node[v].get("note")
        rule = self._notes.get(v)
        if not own:
            return rule or ""
        return f"{own}; {rule}" if rule else str(own)


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
