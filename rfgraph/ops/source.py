"""``input``: the network's input, ``size`` per spatial axis (its number sets the axes).

Its features are its pixels: ``n = size``, ``jump = 1``, ``rf = 1``, ``start = 0.5``. Several
inputs must share one pixel grid (e.g. the two frames of an optical-flow model).

>>> from rfgraph.ops import get_op
>>> get_op("input").text({"op": "input", "size": (32, 32)}, 2)
'input 32x32'
"""

from __future__ import annotations

import numpy as np

from .. import coverage
from .base import DEFAULT, AxisState, Op


def _parse(r):
    size = r.require("size", ", e.g. size=(224, 224)")
    size = tuple(size) if isinstance(size, (list, tuple)) else (size,)
    if not size:
        r.fail("size must have at least one spatial axis")
    return {"size": tuple(r.int(v, "size", 1) for v in size)}


def _summary(node, inputs):
    made = {}  # one state per size: equal axes share it (the engine then answers them once)
    for N in node.params["size"]:
        if N not in made:
            made[N] = AxisState(N, 1, 0, 1, None, None, True, N)
    return tuple([made[N] for N in node.params["size"]])


def _bounds(node, axis, state, inputs):
    ar = np.arange(state.n, dtype=np.int64)
    return ar, ar, ar, ar


def _coverage(node, axis, state, inputs):
    return coverage.identity(state.n)


def _axis_key(node, axis):
    return ()  # its size along the axis is its state's n


def _label(attrs, naxes):
    size = attrs.get("size", "")
    return "input " + ("x".join(map(str, size)) if isinstance(size, (list, tuple)) else str(size))


DEFAULT.add(Op("input", _summary, parse=_parse, accepts={"size"}, bounds=_bounds, coverage=_coverage,
               axis_key=_axis_key, arity=(0, 0), source=True, label=_label, doc="the network's input (its pixels)"))
