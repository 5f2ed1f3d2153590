"""Exact per-position answers: every feature's RF bounds, and whether every feature reads every
input pixel (through :mod:`rfgraph.coverage`, in memory proportional to the features).

Computed on demand from the propagated states and each op's index map (``taps``, or ``runs`` in
closed form) or its own hooks (``bounds``, ``coverage``), for a node and all its ancestors at
once, and cached. Shortcuts that change no answer (checked against the plain computation in
``tests/engine/test_clean.py``) keep most nodes at O(1): the no-holes certificate
(:meth:`ExactBounds.window`, closed-form bounds and ``is_global``), aliases (a pointwise node or a
join of copies shares its input's arrays), globality inherited from a global input
(:meth:`ExactBounds._global_by_input`) or from features known to read every pixel
(:meth:`ExactBounds._full`), axes computed once when they are alike (:meth:`ExactBounds.twin`:
a square map through ops that treat both axes the same), one gather per array for unmasked
index maps, and bit matrices for the pixel sets of small axes (:meth:`ExactBounds.dense`). An
:class:`ExactBounds` holds the graph's adjacency, the plans and the states, never the analysis or
its records, so records can keep a handle to it without making a reference cycle.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .. import coverage
from ..errors import ParameterError
from ..schema import inputs_in_order

__all__ = ["ExactBounds"]

_BIG = np.iinfo(np.int64).max // 4

#: (id of op, id of params, axis, n_in, n_out) -> (op, params, runs) of an index map met before, in
#: any analysis: the engine reuses one params object for a layer configuration parsed before
#: (``propagate._PARSED``), and ``runs`` depends on nothing else, so a zoo sweep or a notebook
#: asks each op only once. The entry holds the op and params it was computed for (so an id reused
#: by a new object never matches). Bounded: cleared when full.
_RUNS: dict = {}
_RUNS_MAX = 8192
#: The same for :meth:`ExactBounds._index_map` (read-only arrays), keyed by (id of op, id of
#: params, axis, n_in, n_out); bounded by the elements its arrays hold.
_INDEX_MAPS: dict = {}
_INDEX_MAPS_HELD = [0]
_INDEX_MAPS_MAX = 1 << 22
#: The same for :meth:`ExactBounds._map_key` (what a map is, as a key equal on axes with the same
#: map), keyed by (id of op, id of params, axis, n_in, n_out, the input's jump).
_MAP_KEYS: dict = {}
#: Axes of at most this many features x pixels have their coverage checked as bit matrices
#: (:meth:`ExactBounds.dense`): fixed, so memory stays O(features + input length) as an axis grows.
DENSE_MAX = 1 << 16
#: The most elements one gather over an index map's taps makes at once there (more: tap by tap).
_DENSE_GATHER_MAX = 1 << 20


#: The same for the certificate's facts about an index map (``kind``: "regular", "reads",
#: "alike", "identity"), keyed by (kind, id of op, id of params, axis, sizes). Bounded like _RUNS.
_FACTS: dict = {}


def _shared_fact(kind, plan, axis, sizes, compute):
    """``compute()``, a fact that depends only on the op, its params, the axis and the sizes,
    from :data:`_FACTS` when an earlier analysis computed it for the same op and params."""
    op, params = plan.op, plan.node.params
    key = (kind, id(op), id(params), axis, sizes)
    found = _FACTS.get(key)
    if found is not None and found[0] is op and found[1] is params:
        return found[2]
    fact = compute()
    if len(_FACTS) >= _RUNS_MAX:
        _FACTS.clear()
    _FACTS[key] = (op, params, fact)
    return fact


def _shared_runs(plan, v, axis, m, n):
    """``plan.op.runs`` of ``plan`` along ``axis`` for sizes ``m`` -> ``n``, from :data:`_RUNS`."""
    op, params = plan.op, plan.node.params
    key = (id(op), id(params), axis, m, n)
    found = _RUNS.get(key)
    if found is not None and found[0] is op and found[1] is params:
        return found[2]
    runs = op.runs(plan.named(v), axis, m, n)
    if len(_RUNS) >= _RUNS_MAX:
        _RUNS.clear()
    _RUNS[key] = (op, params, runs)
    return runs


class ExactBounds:
    """Per-position bounds and pixel coverage of the nodes of one propagation."""

    def __init__(self, pred, order, plans, states, input_size):
        self._pred = pred
        self._order = order
        self._rank = None
        self._plans = plans
        self._states = states
        self.input_size = input_size
        self._bounds: dict = {}
        self._coverage: dict = {}
        self._global: dict = {}
        self._clean: list = []  # per axis: node -> its window, None when not certified
        self._alias: dict = {}  # pointwise node -> the node whose answers it shares (see _certify)
        self._copies: dict = {}  # the other way: node -> its aliases
        self._regular: dict = {}
        self._reads: dict = {}
        self._alike_maps: dict = {}
        self._maps: dict = {}
        self._identity: dict = {}
        self._fulls: dict = {}
        self._dense: dict = {}
        self._tokens: dict = {}  # node -> per axis, the number of its answers (see tokens)
        self._numbered = 0  # how far along the order the nodes have tokens
        self._interned: dict = {}
        self._maps_by_axis: dict = {}
        self._taps_of: dict = {}
        self._runs_of: dict = {}
        self._plan_of = None
        self._ins: dict = {}  # node -> its inputs in join order (filled by _certify; not to be mutated)

    def inputs(self, v) -> list:
        """``v``'s inputs in join order (a shared list: read it, do not change it)."""
        found = self._ins.get(v)
        if found is None:
            found = self._ins[v] = inputs_in_order(self._pred[v])
        return found

    def node(self, v):
        return self._plan(v).named(v)

    def _plan(self, v):
        """``v``'s plan, by name (the plans look a node up by its parameter key)."""
        if self._plan_of is None:
            self._plan_of = dict(zip(self._order, self._plans.in_order))
        return self._plan_of[v]

    # -- bounds ---------------------------------------------------------------------------------
    def bounds(self, node, axis: int = 0, clip: bool = True):
        """Exact per-feature RF bounds of ``node`` along ``axis``; see :meth:`RF.bounds`."""
        if node not in self._states:
            raise KeyError(f"no node {node!r} in the graph")
        naxes = len(self.input_size)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise ParameterError(f"axis must be an integer (0 .. {naxes - 1}), got {axis!r}", node=node)
        if not -naxes <= axis < naxes:
            raise IndexError(f"axis {axis} out of range for {naxes} spatial axes")
        axis %= naxes
        lo_u, hi_u, lo_c, hi_c = self.exact(node, axis)
        if not clip:
            return lo_u.copy(), hi_u.copy()
        empty = lo_c > hi_c
        return np.where(empty, -1, lo_c), np.where(empty, -1, hi_c)

    def exact(self, node, axis):
        """``(lo, hi, lo_clipped, hi_clipped)`` int64 arrays over ``node``'s features (cached)."""
        return self._cached(node, axis, self._bounds, self._exact_one, self._certified)

    def _certified(self, v, axis) -> bool:
        """``v`` answers from its certificate alone, without its inputs' entries (see _cached)."""
        return self.clean(v, axis) and v not in self._alias  # (clean runs the certificate, which finds the aliases)

    def _settled(self, v, axis) -> bool:
        """The same, or ``v`` is already known global along ``axis`` (every feature reads every
        pixel: its coverage, pixel sets and fullness need no input)."""
        if self._certified(v, axis):
            return True
        return v not in self._alias and self._known_global(v, axis)

    def _known_global(self, v, axis) -> bool:
        """``v`` was already answered global along ``axis`` (every feature reads every pixel)."""
        answer = self._global.get(v)
        return answer is not None and answer[axis]

    def _cached(self, node, axis, cache, one, leaf=None):
        """``cache[(node, axis)]``, first filled with ``one(v, axis)`` for ``node`` and every
        ancestor it lacks, in topological order (asked in that order, as records are: only the
        node itself), the walk stopping at nodes for which ``leaf(v, axis)`` says that ``one``
        needs no input. A node whose answers along ``axis`` are those along a lower axis
        (:meth:`twin`) takes that axis's entry."""
        found = cache.get((node, axis))
        if found is None and axis and node in self._states:
            a = self.twin(node, axis)
            if a is not None:  # no walk over the ancestors along this axis: the lower one's entry
                found = cache[(node, axis)] = self._cached(node, a, cache, one, leaf)
                return found
        if found is None:
            todo = [node] if node in self._states and all((u, axis) in cache for u in self._pred[node]) \
                else self._uncached(node, axis, cache, leaf)
            copies = self._copies
            for v in todo:
                if (v, axis) in cache:  # an alias, filled with its rep
                    continue
                found = cache[(v, axis)] = self._one(v, axis, cache, one, leaf)
                for w in copies.get(v, ()):  # its aliases share it (and their successors find it)
                    cache[(w, axis)] = found
            found = cache[(node, axis)]
        return found

    def _one(self, v, axis, cache, one, leaf):
        if axis:
            a = self.twin(v, axis)
            if a is not None:
                return self._cached(v, a, cache, one, leaf)
        return one(v, axis)

    # -- axes with the same answers ---------------------------------------------------------------
    def twin(self, node, axis):
        """A lower axis along which every per-position answer of ``node`` (bounds, coverage,
        is_global) equals its answer along ``axis``, or None: a square map of a network that
        treats its axes alike (Swin's windows) is computed once. See :meth:`tokens`."""
        if not axis:
            return None
        t = self.tokens(node)
        mine = t[axis]
        for a in range(axis):
            if t[a] == mine:
                return a
        return None

    def tokens(self, node) -> tuple:
        """Per axis, a number for what ``node``'s answers along it are computed from: equal
        numbers (on any two axes) mean equal bounds, coverage and is_global.

        A node's answers along an axis follow from its inputs' answers along it and its own
        index map there, so the number stands for that pair: the map in closed form (``runs``
        with the sizes and the input's jump, which extends bounds into the padding), or the
        op's taps (compared between axes), or its hooks' :attr:`~rfgraph.ops.Op.axis_key` and
        state, or its state alone (the affine summary); and the inputs' numbers. A map that is
        the identity keeps its input's number (Swin's patch merging slices one axis, then the
        other: the two axes meet again), and so does an alias. A join takes the union of its
        inputs, so their numbers count as a set (the four slices Swin's patch merging
        concatenates are the same set along both axes). Numbered in one pass along the
        propagation order, as far as ``node``."""
        found = self._tokens.get(node)
        if found is None:
            if node not in self._states:
                raise KeyError(f"no node {node!r} in the graph")
            if not self._clean:
                self._certify()  # the aliases
            order, plans, tokens, alias = self._order, self._plans.in_order, self._tokens, self._alias
            i = self._numbered
            while found is None:
                v, plan = order[i], plans[i]
                i += 1
                rep = alias.get(v)
                tokens[v] = tokens[rep] if rep is not None else self._tokens_one(v, plan)
                found = tokens.get(node)
            self._numbered = i
        return found

    def _tokens_one(self, v, plan) -> tuple:
        us = self.inputs(v)
        ins_all = [self._tokens[u] for u in us]
        op = plan.op
        xs = self._states[v]
        hooks = op.bounds is not None or op.coverage is not None
        node = plan.named(v) if hooks else None
        interned = self._interned
        out = []
        for axis, x in enumerate(xs):  # in axis order: taps are named by the lowest axis
            ins = tuple([t[axis] for t in ins_all])
            if op.join:  # a union of its inputs' features: their order and repeats do not matter
                ins = tuple(sorted(set(ins)))
            if hooks:
                if op.axis_key is None:
                    out.append(self._fresh())
                    continue
                key = ("hooks", id(op), op.axis_key(node, axis), _fields(x), op.taps is not None and
                       self._map_key(v, plan, axis, self._states[us[0]][axis] if len(us) == 1 else None, x.n))
            elif op.taps is not None and len(us) == 1:
                key = self._map_key(v, plan, axis, self._states[us[0]][axis], x.n)
                if key is _IDENTITY:
                    out.append(ins[0])
                    continue
            else:
                key = ("affine", _fields(x))
            out.append(interned.setdefault((key, ins), len(interned)))
        return tuple(out)

    def _fresh(self) -> int:
        n = len(self._interned)
        self._interned[object()] = n  # a number no other key gets
        return n

    def _map_key(self, v, plan, axis, y, n):
        """What ``v``'s index map along ``axis`` is, as a key equal on every axis where the map
        is the same (cached per op parameters and sizes); ``_IDENTITY`` for the identity."""
        if y is None:
            return None
        key = (id(plan), axis, y.n, n, y.jump)
        found = self._maps_by_axis.get(key)
        if found is None:
            found = self._maps_by_axis[key] = self._shared_map_key(v, plan, axis, y.n, n, y.jump)
        return found

    def _shared_map_key(self, v, plan, axis, m, n, jump):
        """:meth:`_map_key` from :data:`_MAP_KEYS` (like :data:`_RUNS`: it depends only on the
        op, its params, the axis and the sizes). A map without a closed form is named by the
        lowest axis named before with the same sizes and the same taps."""
        op, params = plan.op, plan.node.params
        key = (id(op), id(params), axis, m, n, jump)
        found = _MAP_KEYS.get(key)
        if found is not None and found[0] is op and found[1] is params:
            return found[2]
        runs = self._runs(v, plan, axis, m, n)
        if runs is not None:
            value = _IDENTITY if runs == (0, 1, 1) and m == n else ("runs", runs, m, n, jump)
        else:
            for a in range(axis):  # a lower axis already named with these sizes (see tokens)
                lower = self._maps_by_axis.get((id(plan), a, m, n, jump))
                if lower is not None and _same_taps(self._taps(v, plan, a, m, n), self._taps(v, plan, axis, m, n)):
                    value = lower
                    break
            else:  # the op and params stay alive in the entry (and in the plan): unique ids
                value = ("taps", id(op), id(params), axis, m, n, jump)
        if len(_MAP_KEYS) >= _RUNS_MAX:
            _MAP_KEYS.clear()
        _MAP_KEYS[key] = (op, params, value)
        return value

    def _exact_one(self, v, axis):
        rep = self._alias.get(v)
        if rep is not None:  # computed already: an ancestor
            return self._bounds[(rep, axis)]
        plan = self._plan(v)
        x = self._states[v][axis]
        window = self.window(v, axis)
        if window is not None:
            return _affine(x, window)
        ins = [self._bounds[(u, axis)] for u in self.inputs(v)]
        op = plan.op
        if op.bounds is not None:
            return op.bounds(plan.named(v), axis, x, ins)
        if op.taps is None or len(ins) != 1:
            return _affine(x)  # an op without an index map: its affine summary is all there is
        y = self._states[self.inputs(v)[0]][axis]
        idx, left, right, taps = self._index_map(v, plan, axis, y.n, x.n)
        if idx is None or (left or right) and not (type(y.jump) is int or float(y.jump).is_integer()):
            return _through_taps(taps if taps is not None else self._taps(v, plan, axis, y.n, x.n), x.n, y, ins[0])
        parts = ins[0]
        if left or right:  # taps into the padding: the arrays extended by it (see _through_taps)
            parts = _padded(parts, left, right, int(y.jump))
        if len(idx) == 1:  # a gather per array
            return tuple([a[idx[0]] for a in parts])
        lo, hi, lo_c, hi_c = (a[idx] for a in parts)  # and a reduction over the taps
        return lo.min(axis=0), hi.max(axis=0), lo_c.min(axis=0), hi_c.max(axis=0)

    def _runs(self, v, plan, axis, m, n):
        """The op's index map in closed form, or None (see :attr:`~rfgraph.ops.Op.runs`; cached
        per op parameters and sizes: the certificate, the index maps and the tokens read it)."""
        if plan.op.runs is None:
            return None
        key = (id(plan), axis, m, n)
        found = self._runs_of.get(key, self)
        if found is self:
            found = self._runs_of[key] = _shared_runs(plan, v, axis, m, n)
        return found

    def _taps(self, v, plan, axis, m, n):
        """The op's taps (cached per op parameters and sizes on axes of at most
        ``coverage.CHUNK`` features: the tokens compare them, the bounds and coverage read them)."""
        key = (id(plan), axis, m, n)
        found = self._taps_of.get(key)
        if found is None:
            found = plan.op.taps(plan.named(v), axis, m, n)
            if n <= coverage.CHUNK:
                self._taps_of[key] = found
        return found

    def _index_map(self, v, plan, axis, m, n):
        """``(idx, left, right, taps)``: when no tap is masked (on axes of at most
        ``coverage.CHUNK`` features), ``idx`` is a ``(taps, n)`` array of input features shifted
        by ``left``, the most any tap reaches into the padding before the input (``right``:
        after it), from the op's closed form when it has one, and ``taps`` None; else ``idx`` is
        None and ``taps`` the op's taps. Cached per op parameters and sizes (bounds and coverage
        both read it)."""
        key = (id(plan), axis, m, n)
        found = self._maps.get(key)
        if found is None:
            found = self._maps[key] = self._shared_index_map(v, plan, axis, m, n)
        return found

    def _shared_index_map(self, v, plan, axis, m, n):
        """:meth:`_index_map` from :data:`_INDEX_MAPS` (like :data:`_RUNS`: it depends only on
        the op, its params, the axis and the sizes; Swin's rolls and windows have taps and no
        closed form, each built again by every analysis before)."""
        op, params = plan.op, plan.node.params
        key = (id(op), id(params), axis, m, n)
        entry = _INDEX_MAPS.get(key)
        if entry is not None and entry[0] is op and entry[1] is params:
            return entry[2]
        found = self._build_index_map(v, plan, axis, m, n)
        idx = found[0]
        if idx is not None and idx.size <= _INDEX_MAPS_MAX:
            idx.flags.writeable = False  # shared: read only
            if _INDEX_MAPS_HELD[0] + idx.size > _INDEX_MAPS_MAX:
                _INDEX_MAPS.clear()
                _INDEX_MAPS_HELD[0] = 0
            _INDEX_MAPS_HELD[0] += idx.size
            _INDEX_MAPS[key] = (op, params, found)
        return found

    def _build_index_map(self, v, plan, axis, m, n):
        """The index map itself (see :meth:`_index_map`)."""
        runs = self._runs(v, plan, axis, m, n) if n <= coverage.CHUNK else None
        if runs is not None:
            offset, stride, length = runs
            idx = (np.arange(n, dtype=np.int64) * stride + offset)[None, :] + np.arange(length)[:, None]
            first, last = offset, offset + (n - 1) * stride + length - 1
            taps = None
        else:
            taps = self._taps(v, plan, axis, m, n)
            if n <= coverage.CHUNK and taps and all(mask is None for _, mask in taps):
                idx = np.stack([t for t, _ in taps])
                first, last = int(idx.min()), int(idx.max())
                taps = None
            else:
                idx = first = last = None
        if idx is None:
            return (None, 0, 0, taps)
        left, right = max(0, -first), max(0, last - (m - 1))
        return (idx + left if left else idx, left, right, None)

    # -- coverage -------------------------------------------------------------------------------
    def is_global(self, node) -> tuple:
        """Per axis: every feature of ``node`` really reads every input pixel (cached)."""
        if not self._clean:
            self._certify()  # also answers every node certified on all axes
        out = self._global.get(node)
        if out is None:
            rep = self._alias.get(node)
            if rep is not None:
                out = self.is_global(rep)
            else:
                out = []
                for ax, x in enumerate(self._states[node]):
                    window = self._clean[ax][node]
                    if window is not None:
                        out.append(_edges_cover(x, window))
                    elif self._global_by_input(node, ax):
                        out.append(True)
                    else:
                        a = self.twin(node, ax)
                        out.append(out[a] if a is not None else self._covers(node, ax, x))
                out = tuple(out)
            self._global[node] = out
        return out

    def _global_by_input(self, v, ax) -> bool:
        """Global because an input already is (answered before ``v``: asked in topological
        order, as records are) and every feature reads some feature of it.

        Every op reads, per feature, a set of its inputs' features and the union of their
        pixels (what taps, joins, global and pass-through hooks compute), so a feature that reads
        any feature of a global input reads every pixel. A join reads every input's feature;
        a one-input op reads one where the feature reads any pixel at all (its clipped bounds
        are not empty). False means "not decided here"."""
        us = self.inputs(v)
        answers = self._global
        if not any(answers.get(u, (False,) * (ax + 1))[ax] for u in us):
            return False
        if self._plans.op(v).join:
            return True
        if len(us) != 1:
            return False
        _, _, lo, hi = self.exact(v, ax)
        return bool((lo <= hi).all())

    def _covers(self, v, ax, x) -> bool:
        if x.exact and _misses_a_pixel(x):
            return False  # cheap: even the theoretical RF of some feature misses part of the input
        _, _, lo, hi = self.exact(v, ax)  # clipped; a feature reading nothing fails either test
        if not ((lo == 0).all() and (hi == x.size - 1).all()):
            return False
        if x.n * x.size <= DENSE_MAX:
            bits = self.dense(v, ax)
            if bits is not False:
                return bool(bits.all())
        if self._all_full(v, ax):
            return True
        # the hull covers, but a pixel may still be unread inside it (holes that only padding
        # would have filled, wrap-around padding): look at what every feature really reads
        return coverage.covers_all(self.coverage(v, ax), x.size)

    def _all_full(self, v, ax) -> bool:
        """Every feature of ``v`` reads some input feature known to read every pixel (see
        :meth:`_full`): a cheap proof of globality where a global map was padded, rolled or
        cropped and a window brings it back (Swin V2's padded windows). Not tried on axes longer
        than ``coverage.CHUNK`` features (audio), whose coverage works in slices."""
        if self._states[v][ax].n > coverage.CHUNK:
            return False
        return bool(self._full(v, ax).all())

    def _full(self, node, axis):
        """Per feature of ``node``: known to read every input pixel along ``axis`` (a bool array;
        False means "not known"). Sound, not complete: a feature is known full when the node is
        global, when its certified hull covers the input, or when it reads (through taps, a
        join, a pass-through or the op's own coverage hook, e.g. a global op) an input feature
        known full -- the union of what it reads then holds every pixel (the per-feature form of
        :meth:`_global_by_input`, which decides the common case in O(1)). Cached, computed for
        the ancestors it needs."""
        return self._cached(node, axis, self._fulls, self._full_one, self._settled)

    def _full_one(self, v, axis):
        x = self._states[v][axis]
        if self._known_global(v, axis):
            return np.ones(x.n, dtype=bool)
        rep = self._alias.get(v)
        if rep is not None:
            return self._fulls[(rep, axis)]
        if self.clean(v, axis):
            _, _, lo, hi = self.exact(v, axis)
            return (lo <= 0) & (hi >= x.size - 1)
        us = self.inputs(v)
        if not us:
            return np.full(x.n, x.size == 1)  # the input: pixel i reads pixel i only
        ins = [self._fulls[(u, axis)] for u in us]
        plan = self._plan(v)
        op = plan.op
        if op.join:
            out = ins[0]
            for f in ins[1:]:
                out = out | f  # a size-1 input broadcasts
            return np.broadcast_to(out, (x.n,))
        if len(us) != 1:
            return np.zeros(x.n, dtype=bool)
        f = ins[0]
        y = self._states[us[0]][axis]
        if op.taps is not None:
            idx, left, right, taps = self._index_map(v, plan, axis, y.n, x.n)
            if idx is not None:
                if left or right:
                    f = np.concatenate((np.zeros(left, dtype=bool), f, np.zeros(right, dtype=bool)))
                return f[idx].any(axis=0)
            out = np.zeros(x.n, dtype=bool)
            for t, mask in taps:
                inside = (t >= 0) & (t < y.n)
                hit = inside & f[np.clip(t, 0, y.n - 1)]
                out |= hit if mask is None else hit & mask
            return out
        if op.pointwise or x is y:  # each feature is its input's feature
            return f
        if op.coverage is not None:
            # the op's own coverage of a probe that reads pixel 0 exactly where the input's
            # feature is known full: a feature reads pixel 0 iff it reads such a feature
            probe = coverage.Coverage(np.where(f, 0, _BIG), np.where(f, 0, -_BIG))
            return op.coverage(plan.named(v), axis, x, [probe]).lo == 0
        return np.zeros(x.n, dtype=bool)

    def coverage(self, node, axis) -> coverage.Coverage:
        """What each feature of ``node`` really reads along ``axis`` (cached apart from the
        bounds: only asked when a hull covers the whole input)."""
        return self._cached(node, axis, self._coverage, self._coverage_one, self._settled)

    def _coverage_one(self, v, axis):
        rep = self._alias.get(v)
        if rep is not None:
            return self._coverage[(rep, axis)]
        if self._known_global(v, axis):  # every feature reads every pixel
            x = self._states[v][axis]
            return coverage.Coverage(np.zeros(x.n, dtype=np.int64), np.full(x.n, x.size - 1, dtype=np.int64))
        if self.clean(v, axis):  # its hulls are what it reads; the inputs' coverage is not needed
            _, _, lo, hi = self.exact(v, axis)
            empty = lo > hi
            return coverage.Coverage(np.where(empty, _BIG, lo), np.where(empty, -_BIG, hi))
        plan = self._plan(v)
        x = self._states[v][axis]
        ins = [self._coverage[(u, axis)] for u in self.inputs(v)]
        op = plan.op
        if op.coverage is not None:
            return op.coverage(plan.named(v), axis, x, ins)
        if op.taps is None or len(ins) != 1:  # what its bounds say, assumed contiguous
            lo, hi = self.bounds(v, axis)
            return coverage.Coverage(np.where(lo < 0, _BIG, lo), np.where(lo < 0, -_BIG, hi))
        m = len(ins[0].lo)
        idx, left, right, taps = self._index_map(v, plan, axis, m, x.n)
        if idx is not None:
            return coverage.gather_inside(coverage.padded(ins[0], left, right), idx)
        return coverage.gather([(ins[0], idx, mask) for idx, mask in taps], x.n)

    def dense(self, node, axis):
        """:meth:`coverage` as a ``(features, pixels)`` bool matrix (see
        :func:`rfgraph.coverage.to_dense`), or False where ``node`` or an ancestor it needs has
        more than :data:`DENSE_MAX` features x pixels (cached). The same answers in a few array
        operations per node, whatever the holes."""
        return self._cached(node, axis, self._dense, self._dense_one, self._settled)

    def _dense_one(self, v, axis):
        rep = self._alias.get(v)
        if rep is not None:
            return self._dense[(rep, axis)]
        x = self._states[v][axis]
        if x.n * x.size > DENSE_MAX:
            return False
        if self._known_global(v, axis):  # every feature reads every pixel
            return np.ones((x.n, x.size), dtype=bool)
        if self.clean(v, axis):  # its hulls are what it reads
            _, _, lo, hi = self.exact(v, axis)
            return coverage.dense_hulls(lo, hi, x.size)
        ins = [self._dense[(u, axis)] for u in self.inputs(v)]
        if any(b is False for b in ins):
            return False
        plan = self._plan(v)
        op = plan.op
        if op.join:  # the union of its inputs' features (a size-1 input broadcasts)
            out = ins[0]
            for b in ins[1:]:
                out = out | b
            return np.broadcast_to(out, (x.n, x.size))
        if op.taps is None and len(ins) == 1 and x.global_from == v:
            # a global op: every feature reads the union of all input features (as certified)
            return np.broadcast_to(ins[0].any(axis=0), (x.n, x.size))
        if op.coverage is not None:  # the op's own hook, on the interval form
            found = op.coverage(plan.named(v), axis, x, [coverage.from_dense(b) for b in ins])
            return coverage.to_dense(found, x.size)
        if op.taps is None or len(ins) != 1:  # what its bounds say, assumed contiguous (as coverage)
            lo, hi = self.bounds(v, axis)
            return coverage.dense_hulls(np.where(lo < 0, _BIG, lo), hi, x.size)
        b = ins[0]
        m = len(b)
        idx, left, right, taps = self._index_map(v, plan, axis, m, x.n)
        if idx is not None:
            if left or right:
                b = np.concatenate((np.zeros((left, x.size), dtype=bool), b, np.zeros((right, x.size), dtype=bool)))
            if len(idx) == 1:
                return b[idx[0]]
            if idx.size * x.size <= _DENSE_GATHER_MAX:
                return b[idx].any(axis=0)
            out = b[idx[0]]  # a copy (a gather), then tap by tap
            for t in idx[1:]:
                out |= b[t]
            return out
        out = np.zeros((x.n, x.size), dtype=bool)
        for t, mask in taps:
            use = (t >= 0) & (t < m)
            if mask is not None:
                use &= mask
            out |= b[np.clip(t, 0, m - 1)] & use[:, None]
        return out

    # -- the no-holes certificate ------------------------------------------------------------------
    def clean(self, node, axis) -> bool:
        """Whether ``node`` is certified along ``axis``: every feature ``i`` reads exactly its
        affine hull ``[lo + i*jump, hi + i*jump)`` cut to the node's :meth:`window` (no hole, no
        pixel reached only through padding). See :meth:`window`."""
        return self.window(node, axis) is not None

    def window(self, node, axis):
        """``(A, B)`` such that every feature ``i`` of ``node`` reads exactly the pixels
        ``[lo + i*jump, hi + i*jump) & [A, B)`` along ``axis``; None when not certified.

        A certificate, decided per node from its inputs' windows, its own summary and (for an
        index map) the shape of its taps, in O(1) per node. The input's window is the whole axis.
        A node with an exact, contiguous, integral summary whose inputs are certified is
        certified when

        * it is pointwise or a join of inputs with the same window (the union of hulls cut to
          one window is the union cut to it): that window;
        * it starts a global dependency (``global_from`` is the node itself: the union of all its
          input's features), passes its input's state through unchanged, or keeps the same hull
          over a global input whose features all read the same pixels: the input's window;
        * it is an index map whose every feature reads a run of consecutive input features, at
          least one of them inside the input: the input's window cut to the hull of all input
          features (what no input feature reads, no feature of this node reads -- so taps into
          the padding stand for nothing the window holds);
        * it is an index map of any shape whose every feature reads at least one feature of an
          input whose features all read the same pixels (jump 0), keeping that hull: the
          input's window (nearest upsampling of a globally pooled map).

        A node is then global exactly when its window is the whole axis and its two edge
        features cover it. None means "not certified": the exact per-feature computation
        decides. Proof sketch and the equivalence check against that computation:
        ``tests/engine/test_clean.py``.
        """
        if not self._clean:
            self._certify()
        return self._clean[axis][node]

    def _certify(self):
        """One pass over the whole graph, every axis at once: O(1) per node. A node certified on
        every axis gets its is_global answer on the way."""
        states, answers, alias, copies = self._states, self._global, self._alias, self._copies
        naxes = len(self.input_size)
        windows = self._clean = [{} for _ in range(naxes)]
        pred = self._pred
        window_one = self._window_one
        ins = self._ins
        for v, plan in zip(self._order, self._plans.in_order):
            p = pred[v]
            xs = states[v]
            us = ins[v] = list(p) if len(p) < 2 else inputs_in_order(p)
            rep = self._passes_through(plan, us, xs)
            if rep is not None:
                alias[v] = rep
                found = copies.get(rep)
                if found is None:
                    copies[rep] = [v]
                else:
                    found.append(v)
                for w in windows:
                    w[v] = w[rep]
                found = answers.get(rep)
                if found is not None:
                    answers[v] = found
                continue
            if naxes == 1:
                w = window_one(v, 0, xs[0], plan, us, windows[0])
                windows[0][v] = w
                if w is not None:
                    answers[v] = (_edges_cover(xs[0], w),)
                continue
            certified = True
            for ax, x in enumerate(xs):
                if ax and x is xs[ax - 1] and (not x.exact or self._alike(v, plan, us, ax, windows)):
                    # (a position-dependent state is never certified, on any axis)
                    w = windows[ax][v] = windows[ax - 1][v]  # one state, one map: one answer
                else:
                    w = windows[ax][v] = window_one(v, ax, x, plan, us, windows[ax])
                if w is None:
                    certified = False
            if certified:
                answers[v] = tuple([_edges_cover(x, w[v]) for x, w in zip(xs, windows)])

    def _alike(self, v, plan, us, ax, windows) -> bool:
        """``v``'s window along ``ax`` is the one along ``ax - 1``, given one state on both: so
        are its inputs' states and windows, and its index map (if any) is the same on both (the
        rest of :meth:`_window_one` reads only the states, windows and the op's flags)."""
        states = self._states
        for u in us:
            ys = states[u]
            if ys[ax] is not ys[ax - 1] or windows[ax][u] != windows[ax - 1][u]:
                return False
        if plan.op.taps is None:
            return True
        m, n = states[us[0]][ax].n, states[v][ax].n
        key = (id(plan), ax, m, n)
        found = self._alike_maps.get(key)
        if found is None:
            def alike():
                runs = self._runs(v, plan, ax, m, n)
                return runs is not None and runs == self._runs(v, plan, ax - 1, m, n)
            found = self._alike_maps[key] = _shared_fact("alike", plan, ax, (m, n), alike)
        return found

    def alias(self, node):
        """The node whose bounds, coverage and answers ``node`` shares (a pointwise node that
        passes its input's states on, a join of such copies of one node: see
        :meth:`_passes_through`), never itself an alias; or None."""
        if not self._clean:
            self._certify()
        return self._alias.get(node)

    def _passes_through(self, plan, us, xs):
        """The node whose window, bounds, coverage and answer a node with inputs ``us`` and
        states ``xs`` shares (an ancestor that is no alias itself), or None:

        * a pointwise op (each feature is its input's feature), or an index map that is the
          identity on every axis (a 1x1 stride-1 convolution: ``runs`` says ``(0, 1, 1)``),
          that returns its input's states;
        * a join whose inputs all share one node's answers (``q @ k`` of one token map, ``x +
          mlp(x)``) and whose states equal that node's: the union of equal pixel sets.

        The generic rules would give each the same window (see :meth:`window`)."""
        alias = self._alias
        op = plan.op
        if len(us) == 1:
            if self._states[us[0]] is xs and (op.pointwise or self._identity_map(plan, xs)):
                return alias.get(us[0], us[0])
            return None
        if not op.join:
            return None
        rep = alias.get(us[0], us[0])
        for u in us:
            if alias.get(u, u) != rep:
                return None
        return rep if self._states[rep] == xs else None

    def _identity_map(self, plan, xs) -> bool:
        """Feature ``o`` reads input feature ``o`` on every axis (input and output of one size)."""
        op = plan.op
        if op.runs is None:
            return False
        key = (id(plan), tuple([x.n for x in xs]))
        found = self._identity.get(key)
        if found is None:
            found = self._identity[key] = _shared_fact("identity", plan, None, key[1], lambda: all(
                _shared_runs(plan, plan.node.name, ax, x.n, x.n) == (0, 1, 1) for ax, x in enumerate(xs)))
        return found

    def _window_one(self, v, axis, x, plan, us, windows):
        """:meth:`window` of ``v`` (state ``x`` along ``axis``) from its inputs' ``windows``."""
        lo, hi, jump = x.lo, x.hi, x.jump
        if not (x.exact and x.pattern is None and jump >= 0):
            return None
        if not (type(lo) is int and type(hi) is int and type(jump) is int) and not (
                _integral(lo) and _integral(hi) and _integral(jump)):
            return None
        op = plan.op
        if op.source:
            return (0, x.size)
        if not us:
            return None
        w = windows[us[0]]
        if w is None:
            return None
        if len(us) > 1:
            for u in us:
                if windows[u] != w:
                    return None
        if op.join or op.pointwise:
            return w
        if len(us) != 1:
            return None
        y = self._states[us[0]][axis]
        if op.taps is None:  # hooks: certified only where the summary pins the semantics down
            if x is y or x.global_from == v:  # passed through; or the union of all input features
                return w
            # over a global input whose features all read the same pixels: so do its own
            same = (x.global_from is not None and x.global_from == y.global_from and y.jump == 0
                    and lo == y.lo and hi == y.hi)
            return w if same else None
        m, n = y.n, x.n
        if y.jump == 0 and jump == 0 and lo == y.lo and hi == y.hi:
            # every input feature reads the same pixels: a feature reading any of them reads those
            regular = self._reads_one(v, plan, axis, m, n)
        else:
            regular = self._regular.get((id(plan), axis, m, n))
            if regular is None:
                regular = self._regular_taps(v, plan, axis, m, n)
        if not regular:
            return None
        # the input is certified, so its numbers are integral
        first, last = y.lo, y.hi + (m - 1) * y.jump
        if type(first) is not int or type(last) is not int:
            first, last = int(first), int(last)
        return (w[0] if w[0] >= first else first, w[1] if w[1] <= last else last)

    def _regular_taps(self, v, plan, axis, m, n) -> bool:
        """Every feature's taps are one run of consecutive indices (the same run shifted by a
        fixed stride from feature to feature) with at least one inside the input, and no mask.
        Cached per op parameters and sizes: a network has few distinct convolutions."""
        key = (id(plan), axis, m, n)
        found = self._regular.get(key)
        if found is None:
            def regular():
                runs = self._runs(v, plan, axis, m, n)
                if runs is not None:  # the closed form: one run per feature, moving right with it
                    return runs[1] >= 0 and _runs_read_one(runs, m, n)
                return _regular(self._taps(v, plan, axis, m, n), m)
            found = self._regular[key] = _shared_fact("regular", plan, axis, (m, n), regular)
        return found

    def _reads_one(self, v, plan, axis, m, n) -> bool:
        """Every feature reads at least one input feature (a tap inside the input, not masked).
        Cached per op parameters and sizes, like :meth:`_regular_taps`."""
        key = (id(plan), axis, m, n)
        found = self._reads.get(key)
        if found is None:
            def reads():
                runs = self._runs(v, plan, axis, m, n)
                if runs is not None:
                    return _runs_read_one(runs, m, n)
                hit = np.zeros(n, dtype=bool)
                for t, mask in self._taps(v, plan, axis, m, n):
                    inside = (t >= 0) & (t < m)
                    hit |= inside if mask is None else inside & mask
                return bool(hit.all())
            found = self._reads[key] = _shared_fact("reads", plan, axis, (m, n), reads)
        return found

    def _uncached(self, node, axis, cache, leaf=None) -> list:
        """``node`` and its ancestors not yet in ``cache``, in topological order, not looking past
        a node for which ``leaf(v, axis)`` holds (see :meth:`_cached`).

        Iterative (deep chains exceed Python's recursion limit).
        """
        todo, stack, seen = [], [node], set()
        while stack:
            v = stack.pop()
            if v in seen or (v, axis) in cache:
                continue
            seen.add(v)
            todo.append(v)
            if leaf is None or not leaf(v, axis):
                stack.extend(self._pred[v])
        if len(todo) > 1:
            if self._rank is None:
                self._rank = dict(zip(self._order, range(len(self._order))))
            todo.sort(key=self._rank.__getitem__)
        return todo


_IDENTITY = ("identity",)


def _fields(x) -> tuple:
    return (x.n, x.jump, x.lo, x.hi, x.pattern, x.global_from, x.exact, x.size)


def _same_taps(ta, tb) -> bool:
    """Two tap lists are the same."""
    return len(ta) == len(tb) and all(
        np.array_equal(ia, ib) and (ma is None and mb is None or ma is not None and mb is not None and np.array_equal(ma, mb))
        for (ia, ma), (ib, mb) in zip(ta, tb))


def _integral(v) -> bool:
    return type(v) is int or float(v).is_integer()


def _runs_read_one(runs, m, n) -> bool:
    """Every feature of a closed-form map (see :attr:`~rfgraph.ops.Op.runs`) reads an input
    feature: feature ``o`` reads ``a + t`` for ``a = offset + o*stride`` and ``t < length``; the
    run starts move monotonically, so the end features decide."""
    offset, stride, length = runs
    last = offset + (n - 1) * stride
    return length >= 1 and offset + length > 0 and last + length > 0 and offset < m and last < m


def _regular(taps, m) -> bool:
    """See :meth:`ExactBounds._regular_taps`."""
    if not taps or any(mask is not None and not np.all(mask) for _, mask in taps):
        return False
    first, last = taps[0][0], taps[-1][0]
    n = len(first)
    if len(taps) > 1 and not (np.stack([t for t, _ in taps]) - first == np.arange(len(taps))[:, None]).all():
        return False  # tap t of every feature must read input feature first + t
    if n > 1 and not (np.diff(first) == first[1] - first[0]).all() or first[-1] < first[0]:
        return False  # the run moves by a fixed, non-negative stride
    # runs move right with the feature: the first and the last feature decide
    return int(last[0]) >= 0 and int(first[-1]) <= m - 1  # else some feature reads only padding


def _misses_a_pixel(x) -> bool:
    """Some feature of exact state ``x`` reads no pixel of part of the input, by its summary alone
    (pixels as :func:`_affine` rounds them): its first feature's hull ends before the input does,
    its last one's starts after pixel 0, or a hole of some feature's pattern (one of a dilation's
    gaps) lies on input pixels. False means "not decided here": a hole that falls only on padding
    hides nothing."""
    n, jump, size = x.n, x.jump, x.size
    if math.floor(x.lo + (n - 1) * jump) > 0 or math.ceil(x.hi) < size:
        return True
    if x.pattern is None or type(jump) is not int or jump < 0:
        return False
    for (_, h0), (h1, _) in zip(x.pattern, x.pattern[1:]):  # the hole [h0, h1) of feature 0
        if type(h0) is not int or type(h1) is not int:
            return False
        # feature i has it at [h0 + i*jump, h1 + i*jump): on pixels when it meets [0, size)
        first = 0 if h1 > 0 else (-h1) // jump + 1 if jump else n
        if first < n and h0 + first * jump < size:
            return True
    return False


def _edges_cover(x, window) -> bool:
    """A certified node is global along this axis: its window is the whole axis and its first
    and last features' hulls reach both ends."""
    return window == (0, x.size) and x.lo + (x.n - 1) * x.jump <= 0 and x.hi >= x.size


def _affine(x, window=None):
    """Bounds that follow the affine summary: feature ``i`` spans ``[lo + i*jump, hi + i*jump)``,
    cut to ``window`` (default the whole axis) for the clipped pair."""
    a, b = (0, x.size) if window is None else window
    if type(x.jump) is int and type(x.lo) is int and type(x.hi) is int:  # integers: no rounding
        i = np.arange(x.lo, x.lo + x.n * x.jump, x.jump, dtype=np.int64) if x.jump else np.full(x.n, x.lo, dtype=np.int64)
        lo, hi = i, i + (x.hi - x.lo - 1)
        return lo, hi, np.maximum(lo, a), np.minimum(hi, b - 1)
    i = np.arange(x.n, dtype=np.float64) * x.jump
    lo = np.floor(x.lo + i).astype(np.int64)
    hi = np.ceil(x.hi + i).astype(np.int64) - 1
    return lo, hi, np.maximum(lo, a), np.minimum(hi, b - 1)


def _padded(parts, left, right, jump):
    """Bounds arrays extended by ``left`` virtual features before the input and ``right`` after
    it (padding): unclipped bounds extrapolated from the edge feature by the (integral) jump,
    clipped ones empty -- what :func:`_through_taps` gives a tap outside the input."""
    lo, hi = parts[0], parts[1]
    m = len(lo)
    out = np.empty((4, left + m + right), dtype=np.int64)  # one array, its rows the four results
    out[:, left:left + m] = parts
    if left:
        before = np.arange(-left, 0, dtype=np.int64) * jump
        out[0, :left] = before + lo[0]
        out[1, :left] = before + hi[0]
        out[2:, :left] = _EMPTY
    if right:
        after = np.arange(1, right + 1, dtype=np.int64) * jump
        out[0, left + m:] = after + lo[-1]
        out[1, left + m:] = after + hi[-1]
        out[2:, left + m:] = _EMPTY
    return out[0], out[1], out[2], out[3]


_EMPTY = np.array([[_BIG], [-_BIG]], dtype=np.int64)  # clipped bounds of a feature that reads nothing


def _through_taps(taps, n, y, parts):
    """Bounds of ``n`` features that read input features ``idx[o]`` (where ``mask[o]``), from the
    input's bounds ``parts``; taps outside the input are padding, extrapolated by its jump.

    All taps at once, as ``(taps, n)`` arrays: a handful of numpy calls per node, whatever its
    kernel size."""
    lo_u_in, hi_u_in, lo_c_in, hi_c_in = parts
    m = y.n
    idx = np.stack([t for t, _ in taps]) if len(taps) > 1 else taps[0][0][None, :]
    valid = None
    if any(mask is not None for _, mask in taps):
        valid = np.stack([np.ones(n, dtype=bool) if mask is None else mask for _, mask in taps])
    inside = (idx >= 0) & (idx < m)
    safe = np.clip(idx, 0, m - 1)
    use = inside if valid is None else inside & valid
    lo_c = np.where(use, lo_c_in[safe], _BIG).min(axis=0)
    hi_c = np.where(use, hi_c_in[safe], -_BIG).max(axis=0)
    # outside the input: padding, extrapolated from the nearest edge feature by the jump
    shift = (np.minimum(idx, 0) + np.maximum(idx - (m - 1), 0)) * y.jump
    lo_in, hi_in = lo_u_in[safe], hi_u_in[safe]
    if type(y.jump) is int or float(y.jump).is_integer():
        ext_lo = lo_in + shift.astype(np.int64)
        ext_hi = hi_in + shift.astype(np.int64)
    else:
        ext_lo = np.floor(lo_in + shift).astype(np.int64)
        ext_hi = np.ceil(hi_in + shift).astype(np.int64)
    ext_lo = np.where(inside, lo_in, ext_lo)
    ext_hi = np.where(inside, hi_in, ext_hi)
    if valid is not None:
        ext_lo = np.where(valid, ext_lo, _BIG)
        ext_hi = np.where(valid, ext_hi, -_BIG)
    return ext_lo.min(axis=0), ext_hi.max(axis=0), lo_c, hi_c
