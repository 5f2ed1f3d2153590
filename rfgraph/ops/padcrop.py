"""``pad`` and ``slice``: shifting the grid, re-reading border pixels, cropping.

``pad``: ``padding`` as ``(before, after)`` per axis (negative values crop) and ``mode``
(constant, reflect, replicate, circular; default constant). ``slice``: Python slicing
``start``/``stop``/``step`` per axis (None for the defaults).

>>> from rfgraph.ops import get_op
>>> get_op("pad").read("p", {"op": "pad", "padding": ((0, 1), 2)}, 2).params["padding"]
((0, 1), (2, 2))
"""

from __future__ import annotations

from .. import arith
from ..errors import ParameterError
from .base import DEFAULT, AxisState, Op, too_small

PAD_MODES = ("constant", "reflect", "replicate", "circular")


def _parse_pad(r):
    r.require("padding", " as (before, after) pairs per axis")
    return {"padding": r.pairs("padding", signed=True), "mode": r.choice("mode", PAD_MODES, "constant")}


def _pad_taps(node, ax, n_in, n_out):
    before, after = node.params["padding"][ax]
    return arith.pad_taps(n_in, n_out, before, node.params["mode"], after)


def _pad_runs(node, ax, n_in, n_out):
    """Constant padding in closed form: output ``o`` is input ``o - before``."""
    return (-node.params["padding"][ax][0], 1, 1) if node.params["mode"] == "constant" else None


def _pad(node, inputs):
    """Shift by the padding before; constant padding is exact, other modes re-read pixels near
    the border (exact per position)."""
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        before, after = p["padding"][ax]
        n = x.n + before + after
        if n < 1:
            too_small(node, ax, x.n, f"padding ({before}, {after})")
        if p["mode"] == "reflect" and max(before, after) >= x.n:
            raise ParameterError(f"reflect padding ({before}, {after}) must be smaller than the input "
                                 f"size {x.n} on axis {ax}", node=node.name, op=node.op)
        if p["mode"] == "circular" and max(before, after) > x.n:
            raise ParameterError(f"circular padding ({before}, {after}) wraps around more than once "
                                 f"(input size {x.n} on axis {ax}); PyTorch refuses it too",
                                 node=node.name, op=node.op)
        exact = x.exact and (p["mode"] == "constant" or (before <= 0 and after <= 0))
        shift = -before * x.jump
        pattern = None
        if x.pattern is not None and exact:
            pattern = tuple((lo + shift, hi + shift) for lo, hi in x.pattern)
        out.append(AxisState(n, x.jump, x.lo + shift, x.hi + shift, pattern, x.global_from, exact, x.size))
    return tuple(out)


def _parse_slice(r):
    step = r.get("step")
    return {"start": r.optional_ints("start"), "stop": r.optional_ints("stop"),
            "step": r.per_axis("step", minimum=1, value=1 if step is None else step)}


def _slice_range(node, ax, n_in):
    p = node.params
    return range(*slice(p["start"][ax], p["stop"][ax], p["step"][ax]).indices(n_in))


def _slice_taps(node, ax, n_in, n_out):
    r = _slice_range(node, ax, n_in)
    return arith.slice_taps(n_out, r.start, r.step)


def _slice_runs(node, ax, n_in, n_out):
    r = _slice_range(node, ax, n_in)
    return r.start, r.step, 1


def _slice(node, inputs):
    """Python slicing start:stop:step along each axis: jump*step, feature 0 = input feature start."""
    out = []
    for ax, x in enumerate(inputs[0]):
        r = _slice_range(node, ax, x.n)
        if len(r) < 1:
            too_small(node, ax, x.n, "empty slice")
        shift = r.start * x.jump
        pattern = None if x.pattern is None else tuple((lo + shift, hi + shift) for lo, hi in x.pattern)
        out.append(AxisState(len(r), x.jump * r.step, x.lo + shift, x.hi + shift, pattern,
                             x.global_from, x.exact, x.size))
    return tuple(out)


DEFAULT.add(Op("pad", _pad, parse=_parse_pad, accepts={"padding", "mode"}, taps=_pad_taps, runs=_pad_runs,
               label_params=(("padding", "p"), ("mode", "")), defaults={"padding": 0},
               doc=_pad.__doc__.splitlines()[0]))
DEFAULT.add(Op("slice", _slice, parse=_parse_slice, accepts={"start", "stop", "step"}, taps=_slice_taps,
               runs=_slice_runs,
               label_params=(("start", "start"), ("stop", "stop"), ("step", "step")),
               doc=_slice.__doc__.splitlines()[0]))
