"""``flip`` and ``roll``: the same features, in another order along some axes.

``flip``: ``axes`` (default every spatial axis) are reversed: output feature ``o`` is input feature
``n-1-o`` (``torch.flip``). ``roll``: ``shifts`` and ``axes`` (parallel, as ``torch.roll`` takes
them; an int shift applies to every listed axis) shift features circularly: output feature ``o`` is
input feature ``(o - shift) mod n``. Other axes are untouched.

Neither map is the affine ``start + o*jump`` of the summary (a reversal steps backwards, a roll
wraps around), so along a reordered axis ``exact`` is False: the summary gives ``n``, the distance
``jump`` between adjacent features and feature 0's own RF, and ``bounds()`` is exact per feature.
A reordering that changes nothing (one feature, a shift of a multiple of ``n``, features that all
see the same pixels) keeps the input's exactness.

>>> import rfgraph
>>> G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8, 8))
>>> G.add_node("f", op="flip", axes=(1,)); G.add_edge("c", "f")
>>> rec = rfgraph.analyze(G)["f"]
>>> rec.exact, rec.start, rec.bounds(1)[0][:3].tolist()
((True, False), (0.5, 7.5), [6, 5, 4])
"""

from __future__ import annotations

import numbers

import numpy as np

from .base import DEFAULT, AxisState, Op


def _axis_list(r, value, key):
    if value is None:
        return tuple(range(r.naxes))
    vals = value if isinstance(value, (list, tuple)) else (value,)
    out = []
    for v in vals:
        a = r.int(v, key)
        if not -r.naxes <= a < r.naxes:
            r.fail(f"{key} entry {a} is not a spatial axis (the input has {r.naxes})")
        out.append(a % r.naxes)
    return tuple(out)


def _parse_flip(r):
    axes = _axis_list(r, r.get("axes"), "axes")
    if len(set(axes)) != len(axes):
        r.fail(f"axes {axes} lists an axis twice")
    return {"axes": tuple(sorted(axes))}


def _parse_roll(r):
    axes = _axis_list(r, r.require("axes", " (the spatial axes to shift)"), "axes")
    shifts = r.require("shifts", " (one shift per axis in 'axes')")
    if isinstance(shifts, numbers.Integral) and not isinstance(shifts, bool):
        shifts = (shifts,) * len(axes)
    if not isinstance(shifts, (list, tuple)) or len(shifts) != len(axes):
        r.fail(f"shifts must be an int or one int per entry of axes {axes}, got {shifts!r}")
    return {"shifts": tuple(r.int(s, "shifts") for s in shifts), "axes": axes}


def _shift(node, ax):
    """The roll's total shift along ``ax`` (torch adds up repeated axes)."""
    return sum(s for s, a in zip(node.params["shifts"], node.params["axes"]) if a == ax)


def _first(node, ax, n):
    """The input feature that output feature 0 reads along ``ax``, or None when the op leaves
    the order along ``ax`` unchanged."""
    if node.op == "flip":
        return n - 1 if ax in node.params["axes"] and n > 1 else None
    s = _shift(node, ax) % n
    return (n - s) % n if s else None


def _summary(node, inputs):
    """Along a reordered axis: same n and jump, feature 0's RF is that of the input feature it
    reads; not affine (exact per feature)."""
    out = []
    for ax, x in enumerate(inputs[0]):
        src = _first(node, ax, x.n)
        if src is None or x.jump == 0:  # nothing moves (or every feature sees the same pixels)
            out.append(x)
            continue
        shift = src * x.jump
        pattern = None if x.pattern is None or not x.exact else tuple((a + shift, b + shift) for a, b in x.pattern)
        out.append(AxisState(x.n, x.jump, x.lo + shift, x.hi + shift, pattern, x.global_from, False, x.size))
    return tuple(out)


def _taps(node, ax, n_in, n_out):
    o = np.arange(n_out, dtype=np.int64)
    if node.op == "flip":
        return [((n_in - 1 - o) if ax in node.params["axes"] else o, None)]
    return [(np.mod(o - _shift(node, ax), n_in), None)]


DEFAULT.add(Op("flip", _summary, parse=_parse_flip, accepts={"axes"}, taps=_taps,
               label_params=(("axes", "axes"),),
               doc="features in reverse order along axes (torch.flip): exact per feature"))
DEFAULT.add(Op("roll", _summary, parse=_parse_roll, accepts={"shifts", "axes"}, taps=_taps,
               label_params=(("shifts", "by"), ("axes", "axes")),
               doc="circular shift of the features along axes (torch.roll): exact per feature"))
