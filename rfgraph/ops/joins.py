"""Joins: ``add``, ``mul``, ``concat``: the RF of a feature is the union of its inputs' RFs.

Inputs must agree on ``n`` (add and mul may broadcast a size-1 input); the union's hull gives
``rf`` and ``start``; differing branch centres are reported as misalignment, per axis.

>>> import networkx as nx, rfgraph
>>> G = nx.DiGraph()
>>> G.add_node("x", op="input", size=(16,))
>>> G.add_node("a", op="conv", kernel=3, padding=1); G.add_node("b", op="conv", kernel=5, padding=2)
>>> G.add_node("sum", op="add"); G.add_edges_from([("x", "a"), ("x", "b"), ("a", "sum"), ("b", "sum")])
>>> rec = rfgraph.analyze(G)["sum"]
>>> rec.rf, rec.misalignment, rec.rf_range
((5,), (0,), ((3, 5),))
"""

from __future__ import annotations

import numpy as np

from .. import arith, coverage
from ..errors import ShapeError
from .base import DEFAULT, AxisState, Op, Out


def _join(node, inputs):
    """Union of the inputs' RF intervals per feature; hull gives rf and start. Inputs must agree
    on n (add/mul may broadcast a size-1 input); differing centres are reported as misalignment."""
    naxes = len(inputs[0])
    out, mis, notes = [], [], []
    for ax in range(naxes):
        xs = [inp[ax] for inp in inputs]
        n = max(x.n for x in xs)
        for x in xs:
            if x.n != n and (x.n != 1 or node.op == "concat"):
                sizes = ", ".join(str(y.n) for y in xs)
                raise ShapeError(f"inputs disagree on size along axis {ax} ({sizes}); "
                                 + ("concat needs equal sizes" if node.op == "concat"
                                    else "add/mul need equal sizes or a broadcast size 1"),
                                 node=node.name, op=node.op)
        size = xs[0].size
        glob = next((x.global_from for x in xs if x.global_from is not None), None)
        if glob is not None:
            # a global input: every feature sees its union plus the others' feature at that position;
            # the summary is the union over all positions, exact when the global hull contains it
            glo = min(x.lo for x in xs if x.global_from is not None)
            ghi = max(x.hi for x in xs if x.global_from is not None)
            lo = min(x.lo for x in xs)
            hi = max(x.hi + (x.n - 1) * x.jump for x in xs)
            exact = all(x.exact for x in xs) and lo >= glo and hi <= ghi
            pieces = []
            for x in xs:
                swept = arith.sweep_pattern(x.pattern, x.lo, x.hi, x.jump, x.n) if exact else None
                pieces.extend(swept if swept is not None else ((x.lo, x.hi + (x.n - 1) * x.jump),))
            merged = arith.merge_intervals(pieces) if exact else ()
            out.append(AxisState(n, 0, lo, hi, merged if len(merged) > 1 else None, glob, exact, size))
            mis.append(0.0)
            continue
        full = [x for x in xs if x.n == n]
        bcast = [x for x in xs if x.n != n]
        lo = min(x.lo for x in xs)
        hi = max(x.hi for x in xs)
        js = {x.jump for x in full}
        j = max(js)
        centres = [(x.lo + x.hi) / 2 for x in full]
        spread = max(centres) - min(centres)
        exact = all(x.exact for x in xs) and len(js) == 1 and not bcast
        pattern = None
        if exact:
            pieces = []
            for x in full:
                pieces.extend(x.pattern if x.pattern is not None else ((x.lo, x.hi),))
            merged = arith.merge_intervals(pieces)
            pattern = None if len(merged) == 1 else merged
        if len(js) > 1:
            notes.append(f"jumps differ on axis {ax} ({', '.join(str(v) for v in sorted(js))})")
        out.append(AxisState(n, j, lo, hi, pattern, None, exact, size))
        mis.append(spread)
    return Out(tuple(out), tuple(mis), "; ".join(notes))


def _join_fast(inputs):
    """:func:`_join` for the common cases, or None: every input has the same ``n`` and ``jump``
    on every axis and none is global (exact or not); or all are equal, global with jump 0. Identical to the summary's result (min and
    max keep the first of equal values, as the builtins do)."""
    out, mis = [], []
    for xs in zip(*inputs):  # per axis, the inputs' states
        x0 = xs[0]
        if out and all([x is inp[0] for x, inp in zip(xs, inputs)]):
            out.append(out[0])  # every input has one state on every axis (a square map): one answer
            mis.append(mis[0])
            continue
        if x0.global_from is not None:
            # equal global inputs (x + attention(x) in a transformer): the summary's union of
            # one contiguous hull with itself, so the input's own state
            if x0.jump == 0 and x0.pattern is None and all(x == x0 for x in xs):
                out.append(x0)
                mis.append(0.0)
                continue
            return None
        n, j, lo, hi = x0.n, x0.jump, x0.lo, x0.hi
        least = most = (lo + hi) / 2  # smallest and largest branch centre
        exact = True
        for x in xs:
            if x.n != n or x.jump != j or x.global_from is not None:
                return None
            if not x.exact:
                exact = False
            xlo, xhi = x.lo, x.hi
            if xlo < lo:
                lo = xlo
            if xhi > hi:
                hi = xhi
            c = (xlo + xhi) / 2
            if c < least:
                least = c
            if c > most:
                most = c
        if not exact:  # a position-dependent input: the summary's hull, position-dependent too
            out.append(AxisState(n, j, lo, hi, None, None, False, x0.size))
            mis.append(most - least)
            continue
        for x in xs:
            if x.pattern is None and x.lo == lo and x.hi == hi:
                pattern = None  # one contiguous input spans the hull: so does the union
                break
        else:
            pieces = []
            for x in xs:
                pieces.extend(x.pattern if x.pattern is not None else ((x.lo, x.hi),))
            merged = arith.merge_intervals(pieces)
            pattern = None if len(merged) == 1 else merged
        out.append(AxisState(n, j, lo, hi, pattern, None, True, x0.size))
        mis.append(most - least)
    return Out(tuple(out), tuple(mis))


def _plan(params):
    return _join_fast


def _bounds(node, axis, state, inputs):
    """Union per feature: min of the lower, max of the upper bounds (size-1 inputs broadcast)."""
    first, *rest = inputs
    if not rest:  # concat of one input
        return first
    lo, hi, lo_c, hi_c = first
    for p in rest:  # pairwise: numpy broadcasts a size-1 input
        lo, hi, lo_c, hi_c = np.minimum(lo, p[0]), np.maximum(hi, p[1]), np.minimum(lo_c, p[2]), np.maximum(hi_c, p[3])
    return lo, hi, lo_c, hi_c


def _coverage(node, axis, state, inputs):
    """Union per feature; a size-1 input (broadcast) is read by every feature."""
    return coverage.union(inputs, state.n)


def _no_params(node, axis):
    return ()  # the hooks read an axis only through its state and inputs


# add and mul of one input would be a join of nothing (write identity); concat of one is fine
for _name, _least in (("add", 2), ("mul", 2), ("concat", 1)):
    DEFAULT.add(Op(_name, _join, accepts=frozenset(), parse=lambda r: {}, bounds=_bounds, coverage=_coverage,
                   axis_key=_no_params, fast=_plan, arity=(_least, None), join=True, doc=_join.__doc__.splitlines()[0]))
