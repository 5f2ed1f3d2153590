"""``global``: every output feature sees the union of what all input features see.

Global pooling, squeeze-and-excitation gates, attention over all positions, flatten + linear.
``axes`` (default all spatial axes) are reduced; ``size`` is the output size along them (default
1; None keeps the input's size, e.g. softmax or attention over positions).

>>> import rfgraph
>>> G = rfgraph.chain([("c", "conv", 3, 2, 1)], (8,))
>>> G.add_node("pool", op="global"); G.add_edge("c", "pool")
>>> rec = rfgraph.analyze(G)["pool"]
>>> rec.n, rec.jump, rec.global_from, rec.is_global
((1,), (0,), ('pool',), (True,))
"""

from __future__ import annotations

import numpy as np

from .. import arith, coverage
from .base import DEFAULT, AxisState, Op, _short

_BIG = np.iinfo(np.int64).max // 4


def _parse(r):
    size = r.get("size", 1)
    # size None keeps the input size (softmax or attention over positions, group norm)
    return {"axes": r.axes("axes"), "size": None if size is None else r.per_axis("size", value=size, minimum=1)}


def _summary(node, inputs):
    """Every output feature sees the union of what all input features see, along the given axes:
    the hull of feature 0's RF through the last feature's, with jump 0 (features do not move)."""
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        if ax not in p["axes"]:
            out.append(x)
            continue
        n = x.n if p["size"] is None else p["size"][ax]
        glob = x.global_from if x.global_from is not None else node.name
        pattern = arith.sweep_pattern(x.pattern, x.lo, x.hi, x.jump, x.n) if x.exact else None
        out.append(AxisState(n, 0, x.lo, x.hi + (x.n - 1) * x.jump, pattern, glob, x.exact, x.size))
    return tuple(out)


def _bounds(node, axis, state, inputs):
    parts = inputs[0]
    if axis not in node.params["axes"]:  # not reduced here: positions pass through
        return parts
    lo_c, hi_c = parts[2], parts[3]
    seen = lo_c <= hi_c
    lo_c = lo_c[seen].min() if seen.any() else _BIG
    hi_c = hi_c[seen].max() if seen.any() else -_BIG
    n = state.n
    return (np.full(n, parts[0].min(), dtype=np.int64), np.full(n, parts[1].max(), dtype=np.int64),
            np.full(n, lo_c, dtype=np.int64), np.full(n, hi_c, dtype=np.int64))


def _coverage(node, axis, state, inputs):
    if axis not in node.params["axes"]:
        return inputs[0]
    return coverage.sweep(inputs[0], state.n)


def _axis_key(node, axis):
    return axis in node.params["axes"]  # reduced along it or not (its size is the state's n)


def _label(attrs, naxes):
    bits = ["global"]
    if attrs.get("size", 1) != 1:
        bits.append(f"size {_short(attrs['size'])}")
    axes = attrs.get("axes")
    if axes is not None:
        # global over every axis is the common case and says nothing; list only a subset
        axes = axes if isinstance(axes, (list, tuple)) else (axes,)
        if {a % naxes for a in axes if isinstance(a, int)} != set(range(naxes)):
            bits.append("axes " + ",".join(map(str, axes)))
    return " ".join(bits)


DEFAULT.add(Op("global", _summary, parse=_parse, accepts={"axes", "size"}, bounds=_bounds, coverage=_coverage,
               axis_key=_axis_key, label=_label, doc=_summary.__doc__.splitlines()[0]))
