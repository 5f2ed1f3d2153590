"""The rule registry: canonical op name -> pure receptive-field rule.

A rule has two parts, both pure functions of plain data:

``summary(spec, inputs) -> Out``
    From the node's :class:`~rfgraph.graph.Spec` and its inputs' per-axis states (each a tuple of
    :class:`Axis`, one per spatial axis), the node's per-axis states and, for joins, what each
    branch contributed.
``taps(spec, axis, n_in, n_out) -> list[(index, mask)]``
    The exact index map along one axis (see :mod:`rfgraph.arith`), used for per-position bounds.
    Joins and global ops are handled by the engine and have no taps.

The engine (:mod:`rfgraph.engine`) knows nothing of ops beyond this table; a front-end maps its
framework's ops to these canonical names. Register a new op with :func:`register_rule`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from . import arith
from .errors import ParameterError, ShapeError
from .graph import JOIN_OPS, WINDOW_OPS

__all__ = ["Axis", "Out", "Rule", "settle_global", "register_rule", "get_rule", "is_registered", "registered_ops"]


class Axis:
    """Summary of one node along one spatial axis.

    ``n`` features, jump ``j``, continuous hull ``[a, b)`` of feature 0's RF, ``pattern`` (None when
    the RF is contiguous, else the disjoint intervals of feature 0), ``glob`` (None, or the node
    from which every feature depends on the whole input), ``exact`` (the affine summary describes
    every feature exactly) and ``size`` (the input's size along this axis).
    """

    __slots__ = ("n", "j", "a", "b", "pattern", "glob", "exact", "size")

    def __init__(self, n, j, a, b, pattern=None, glob=None, exact=True, size=0):
        self.n = n
        self.j = j
        self.a = a
        self.b = b
        self.pattern = pattern
        self.glob = glob
        self.exact = exact
        self.size = size

    def __repr__(self):
        return (f"Axis(n={self.n}, j={self.j}, a={self.a}, b={self.b}, pattern={self.pattern}, "
                f"glob={self.glob!r}, exact={self.exact})")


def settle_global(axes: tuple) -> tuple:
    """Hook applied to every rule's output (kept for the fast paths). A global axis needs no
    resetting: its jump is 0, so every op below it keeps the union hull as it is."""
    return axes


@dataclass(frozen=True)
class Out:
    """What a rule returns: per-axis states and, for joins, the per-axis misalignment."""

    axes: tuple
    misalignment: Optional[tuple] = None
    note: str = ""


@dataclass(frozen=True)
class Rule:
    """A registered rule: ``summary`` and optional ``taps`` (see the module docstring)."""

    op: str
    summary: Callable
    taps: Optional[Callable] = None
    arity: tuple = (1, 1)  # (min, max) number of inputs; max None = any
    doc: str = field(default="", compare=False)


_REGISTRY: dict[str, Rule] = {}


def register_rule(op: str, summary: Callable, *, taps: Callable | None = None, arity=(1, 1),
                  doc: str = "", replace: bool = False) -> Rule:
    """Register a receptive-field rule for a canonical op name.

    Parameters
    ----------
    op : str
        The op name nodes use (``G.nodes[n]["op"]``).
    summary : callable
        ``summary(spec, inputs) -> Out`` or a tuple of :class:`Axis` (see the module docstring).
    taps : callable, optional
        ``taps(spec, axis, n_in, n_out)`` exact index map; without it, bounds below this node
        follow the affine summary.
    arity : (int, int or None)
        Allowed number of inputs.
    replace : bool
        Registering an op twice is an error unless ``replace=True``.

    Examples
    --------
    A "shift" op that moves every feature one pixel to the right:

    >>> from rfgraph.rules import Axis, register_rule
    >>> def shift(spec, inputs):
    ...     return tuple(Axis(x.n, x.j, x.a - x.j, x.b - x.j, x.pattern, x.glob, x.exact, x.size)
    ...                  for x in inputs[0])
    >>> _ = register_rule("shift_right", shift, replace=True)
    """
    if op in _REGISTRY and not replace:
        raise ValueError(f"a rule for op {op!r} is already registered; pass replace=True to override it")
    rule = Rule(op, summary, taps, tuple(arity), doc)
    _REGISTRY[op] = rule
    return rule


def get_rule(op: str) -> Rule:
    return _REGISTRY[op]


def is_registered(op: str) -> bool:
    return op in _REGISTRY


def registered_ops() -> list[str]:
    return sorted(_REGISTRY)


def _builtin(op, arity=(1, 1), taps=None):
    def deco(fn):
        register_rule(op, fn, taps=taps, arity=arity, doc=(fn.__doc__ or "").strip())
        return fn

    return deco


def _too_small(spec, ax, n_in, what):
    raise ShapeError(f"output size along axis {ax} would be < 1 (input size {n_in}, {what}); "
                     "the input is too small for this op", node=spec.name, op=spec.op)


# --- window ops: conv, maxpool, avgpool ---------------------------------------------------


def _window_padding(spec, ax, n_in):
    p = spec.params
    if p["padding"] == "same":
        return arith.same_padding(n_in, p["kernel"][ax], p["stride"][ax], p["dilation"][ax])
    return p["padding"][ax]


def _window_taps(spec, ax, n_in, n_out):
    p = spec.params
    pl, _ = _window_padding(spec, ax, n_in)
    return arith.window_taps(n_out, p["kernel"][ax], p["stride"][ax], p["dilation"][ax], pl)


def _window(spec, inputs):
    """Classic recurrence: j*=s, r+=(ke-1)*j, start+=((ke-1)/2-pL)*j; exact."""
    p = spec.params
    out = []
    for ax, x in enumerate(inputs[0]):
        k, s, d = p["kernel"][ax], p["stride"][ax], p["dilation"][ax]
        pl, pr = _window_padding(spec, ax, x.n)
        n = arith.window_out_size(x.n, k, s, d, pl, pr, p["ceil_mode"])
        if n < 1:
            _too_small(spec, ax, x.n, f"kernel {k}, dilation {d}, padding ({pl}, {pr})")
        j, a, b = arith.window_summary(x.j, x.a, x.b, k, s, d, pl)
        pattern = arith.dilate_pattern(x.pattern, x.a, x.b, x.j, k, d, pl) if x.exact else None
        out.append(Axis(n, j, a, b, pattern, x.glob, x.exact, x.size))
    return tuple(out)


for _op in WINDOW_OPS:
    register_rule(_op, _window, taps=_window_taps, doc=_window.__doc__)


def window_plan(params):
    """A fast version of :func:`_window` for these params, or None.

    Large networks repeat a few layer configurations, so the engine makes one plan per distinct
    params and applies it to every node that has them: ``plan(inputs[0])`` gives the node's axes,
    already settled (:func:`settle_global`). Plans cover explicit padding without ``ceil_mode``.
    A plan returns None (the engine then calls the rule) when the input is too small or anything
    else is unusual, so errors stay the rule's. Same arithmetic in the same order as the rule,
    so the results are identical, types included.
    """
    if params["padding"] == "same" or params["ceil_mode"]:
        return None
    axes = tuple(
        (k, s, d, pl, pr, ke, ke - 1 - pl, k == 1 and s == 1 and pl == 0 and pr == 0)
        for k, s, d, (pl, pr), ke in zip(
            params["kernel"], params["stride"], params["dilation"], params["padding"],
            (arith.effective_kernel(k, d) for k, d in zip(params["kernel"], params["dilation"])))
    )
    dilate = arith.dilate_pattern
    naxes = len(axes)
    all_unit = all(ax[-1] for ax in axes)

    def plan(inputs):
        try:
            if len(inputs) != naxes:
                return None
            if all_unit:  # a 1x1 stride-1 conv: the input's state itself, as on unit axes below
                for x in inputs:
                    if not (x.pattern is None and type(x.n) is type(x.j) is type(x.a) is type(x.b) is int):
                        break
                else:
                    return inputs
            out = []
            glob = False
            for (k, s, d, pl, pr, ke, right, unit), x in zip(axes, inputs):
                j, pattern = x.j, x.pattern
                if unit and pattern is None and type(x.n) is type(j) is type(x.a) is type(x.b) is int:
                    # 1 wide, stride 1, unpadded (a 1x1 conv's axis): the rule would rebuild the
                    # same axis (with integers, n, j, a and b come out unchanged), so keep it
                    out.append(x)
                    continue
                span = x.n + pl + pr - ke
                if span < 0:
                    return None
                a, b = x.a, x.b
                if pattern is None and (k == 1 or d * j <= b - a):
                    pass  # contiguous stays contiguous (dilate_pattern's own shortcut)
                elif x.exact:
                    pattern = dilate(pattern, a, b, j, k, d, pl)
                else:
                    pattern = None
                if x.glob is not None:
                    glob = True
                out.append(Axis(span // s + 1, j * s, a - pl * j, b + right * j, pattern, x.glob, x.exact, x.size))
            return settle_global(tuple(out)) if glob else tuple(out)
        except Exception:  # odd values from a user rule upstream: the rule says what is wrong
            return None

    return plan


# --- pointwise ---------------------------------------------------------------------------


@_builtin("identity")
def _identity(spec, inputs):
    """Each position maps to itself (activations, normalisation, dropout, channel ops)."""
    return inputs[0]


def _identity_taps(spec, ax, n_in, n_out):
    return arith.slice_taps(n_out, 0, 1)


_REGISTRY["identity"] = Rule("identity", _identity, _identity_taps, (1, 1), _identity.__doc__)


# --- transposed conv ---------------------------------------------------------------------


def _ct_taps(spec, ax, n_in, n_out):
    p = spec.params
    return arith.transpose_taps(n_out, p["kernel"][ax], p["stride"][ax], p["dilation"][ax], p["padding"][ax])


@_builtin("convtranspose", taps=_ct_taps)
def _convtranspose(spec, inputs):
    """Output o reads inputs i with i*s - p + t*d == o; exact when s == 1, else per position.

    Summary: j/s, and feature 0's hull spans inputs ceil((p-(k-1)d)/s) .. floor(p/s).
    """
    p = spec.params
    out = []
    for ax, x in enumerate(inputs[0]):
        k, s, d, pad = p["kernel"][ax], p["stride"][ax], p["dilation"][ax], p["padding"][ax]
        n = arith.convtranspose_out_size(x.n, k, s, pad, p["output_padding"][ax], d)
        if n < 1:
            _too_small(spec, ax, x.n, f"kernel {k}, stride {s}, padding {pad}")
        if s == 1:
            # a stride-1 transposed conv is a conv with padding (k-1)d - p, flipped kernel
            pl = d * (k - 1) - pad
            j, a, b = arith.window_summary(x.j, x.a, x.b, k, 1, d, pl)
            pattern = arith.dilate_pattern(x.pattern, x.a, x.b, x.j, k, d, pl) if x.exact else None
            out.append(Axis(n, j, a, b, pattern, x.glob, x.exact, x.size))
            continue
        ilo = -((-(pad - (k - 1) * d)) // s)
        ihi = pad // s
        out.append(Axis(n, x.j / s, x.a + ilo * x.j, x.b + ihi * x.j, None, x.glob, False, x.size))
    return tuple(out)


# --- upsample ------------------------------------------------------------------------------


_BLEND = {"nearest": (0, 0), "nearest-exact": (0, 0), "bicubic": (1, 2)}


def _up_taps(spec, ax, n_in, n_out):
    p = spec.params
    scale = p["scale"][ax] if p["scale"] is not None else None
    return arith.upsample_taps(n_in, n_out, p["mode"], p["align_corners"], scale)


@_builtin("upsample", taps=_up_taps)
def _upsample(spec, inputs):
    """Interpolation: exact per position; summary j/scale, feature 0 = input feature 0, and
    r + j (linear) or r + 3j (cubic) for the neighbours an interior feature blends."""
    p = spec.params
    out = []
    for ax, x in enumerate(inputs[0]):
        size = p["size"][ax] if p["size"] is not None else None
        scale = p["scale"][ax] if p["scale"] is not None else None
        n = arith.upsample_out_size(x.n, scale, size)
        if n < 1:
            _too_small(spec, ax, x.n, f"scale {scale}")
        if n == x.n and (scale in (None, 1.0)):
            out.append(x)
            continue
        if p["align_corners"]:
            ratio = (x.n - 1) / (n - 1) if n > 1 else 0.0
        else:
            ratio = x.n / n if scale is None else 1.0 / scale
        # pixels an interior feature blends, left and right of its nearest source feature
        left, right = _BLEND.get(p["mode"], (0, 1))
        out.append(Axis(n, x.j * ratio, x.a - left * x.j, x.b + right * x.j, None, x.glob, False, x.size))
    return tuple(out)


# --- adaptive pooling --------------------------------------------------------------------


def _adaptive_taps(spec, ax, n_in, n_out):
    return arith.adaptive_taps(n_in, n_out)


def _adaptive(spec, inputs):
    """Window [floor(o*N/n), ceil((o+1)*N/n)); exact (a plain pool) when n divides N."""
    p = spec.params
    out = []
    for ax, x in enumerate(inputs[0]):
        n = p["output_size"][ax]
        if x.n % n == 0:
            k = x.n // n
            j, a, b = arith.window_summary(x.j, x.a, x.b, k, k, 1, 0)
            pattern = arith.dilate_pattern(x.pattern, x.a, x.b, x.j, k, 1, 0) if x.exact else None
            out.append(Axis(n, j, a, b, pattern, x.glob, x.exact, x.size))
        else:
            lo, hi = arith.adaptive_window(0, x.n, n)
            out.append(Axis(n, x.j * x.n / n, x.a + lo * x.j, x.b + (hi - 1) * x.j, None, x.glob, False, x.size))
    return tuple(out)


for _op in ("adaptive_avgpool", "adaptive_maxpool"):
    register_rule(_op, _adaptive, taps=_adaptive_taps, doc=_adaptive.__doc__)


# --- pad and slice -----------------------------------------------------------------------


def _pad_taps(spec, ax, n_in, n_out):
    return arith.pad_taps(n_in, n_out, spec.params["padding"][ax][0], spec.params["mode"])


@_builtin("pad", taps=_pad_taps)
def _pad(spec, inputs):
    """Shift by the padding before; constant padding is exact, other modes re-read pixels near
    the border (exact per position)."""
    p = spec.params
    out = []
    for ax, x in enumerate(inputs[0]):
        before, after = p["padding"][ax]
        n = x.n + before + after
        if n < 1:
            _too_small(spec, ax, x.n, f"padding ({before}, {after})")
        if p["mode"] == "reflect" and max(before, after) >= x.n:
            raise ParameterError(f"reflect padding ({before}, {after}) must be smaller than the input "
                                 f"size {x.n} on axis {ax}", node=spec.name, op=spec.op)
        exact = x.exact and (p["mode"] == "constant" or (before <= 0 and after <= 0))
        shift = -before * x.j
        pattern = None
        if x.pattern is not None and exact:
            pattern = tuple((lo + shift, hi + shift) for lo, hi in x.pattern)
        out.append(Axis(n, x.j, x.a + shift, x.b + shift, pattern, x.glob, exact, x.size))
    return tuple(out)


def _slice_range(spec, ax, n_in):
    p = spec.params
    return range(*slice(p["start"][ax], p["stop"][ax], p["step"][ax]).indices(n_in))


def _slice_taps(spec, ax, n_in, n_out):
    r = _slice_range(spec, ax, n_in)
    return arith.slice_taps(n_out, r.start, r.step)


@_builtin("slice", taps=_slice_taps)
def _slice(spec, inputs):
    """Python slicing start:stop:step along each axis: j*step, feature 0 = input feature start."""
    out = []
    for ax, x in enumerate(inputs[0]):
        r = _slice_range(spec, ax, x.n)
        if len(r) < 1:
            _too_small(spec, ax, x.n, "empty slice")
        shift = r.start * x.j
        pattern = None if x.pattern is None else tuple((lo + shift, hi + shift) for lo, hi in x.pattern)
        out.append(Axis(len(r), x.j * r.step, x.a + shift, x.b + shift, pattern, x.glob, x.exact, x.size))
    return tuple(out)


# --- global ------------------------------------------------------------------------------


@_builtin("global")
def _global(spec, inputs):
    """Every output feature sees the union of what all input features see, along the given axes:
    the hull of feature 0's RF through the last feature's, with jump 0 (features do not move)."""
    p = spec.params
    out = []
    for ax, x in enumerate(inputs[0]):
        if ax not in p["axes"]:
            out.append(x)
            continue
        n = x.n if p["size"] is None else p["size"][ax]
        glob = x.glob if x.glob is not None else spec.name
        pattern = arith.sweep_pattern(x.pattern, x.a, x.b, x.j, x.n) if x.exact else None
        out.append(Axis(n, 0, x.a, x.b + (x.n - 1) * x.j, pattern, glob, x.exact, x.size))
    return tuple(out)


# --- joins ---------------------------------------------------------------------------------


def _join(spec, inputs):
    """Union of the inputs' RF intervals per feature; hull gives rf and start. Inputs must agree
    on n (add/mul may broadcast a size-1 input); differing centres are reported as misalignment."""
    naxes = len(inputs[0])
    out, mis, notes = [], [], []
    for ax in range(naxes):
        xs = [inp[ax] for inp in inputs]
        n = max(x.n for x in xs)
        for x in xs:
            if x.n != n and (x.n != 1 or spec.op == "concat"):
                sizes = ", ".join(str(y.n) for y in xs)
                raise ShapeError(f"inputs disagree on size along axis {ax} ({sizes}); "
                                 + ("concat needs equal sizes" if spec.op == "concat"
                                    else "add/mul need equal sizes or a broadcast size 1"),
                                 node=spec.name, op=spec.op)
        size = xs[0].size
        glob = next((x.glob for x in xs if x.glob is not None), None)
        if glob is not None:
            # a global input: every feature sees its union plus the others' feature at that position;
            # the summary is the union over all positions, exact when the global hull contains it
            ga = min(x.a for x in xs if x.glob is not None)
            gb = max(x.b for x in xs if x.glob is not None)
            a = min(x.a for x in xs)
            b = max(x.b + (x.n - 1) * x.j for x in xs)
            exact = all(x.exact for x in xs) and a >= ga and b <= gb
            pieces = []
            for x in xs:
                swept = arith.sweep_pattern(x.pattern, x.a, x.b, x.j, x.n) if exact else None
                pieces.extend(swept if swept is not None else ((x.a, x.b + (x.n - 1) * x.j),))
            merged = arith.merge_intervals(pieces) if exact else ()
            out.append(Axis(n, 0, a, b, merged if len(merged) > 1 else None, glob, exact, size))
            mis.append(0.0)
            continue
        full = [x for x in xs if x.n == n]
        bcast = [x for x in xs if x.n != n]
        a = min(x.a for x in xs)
        b = max(x.b for x in xs)
        js = {x.j for x in full}
        j = max(js)
        centres = [(x.a + x.b) / 2 for x in full]
        spread = max(centres) - min(centres)
        exact = all(x.exact for x in xs) and len(js) == 1 and not bcast
        pattern = None
        if exact:
            pieces = []
            for x in full:
                pieces.extend(x.pattern if x.pattern is not None else ((x.a, x.b),))
            merged = arith.merge_intervals(pieces)
            pattern = None if len(merged) == 1 else merged
        if len(js) > 1:
            notes.append(f"jumps differ on axis {ax} ({', '.join(str(v) for v in sorted(js))})")
        out.append(Axis(n, j, a, b, pattern, None, exact, size))
        mis.append(spread)
    return Out(tuple(out), tuple(mis), "; ".join(notes))


for _op in JOIN_OPS:
    register_rule(_op, _join, arity=(1, None), doc=_join.__doc__)


def join_fast(inputs):
    """:func:`_join` for the common case, or None: every input has the same ``n`` and ``j`` on
    every axis, none is global and all are exact. Returns ``(axes, misalignment)``, identical to
    the rule's (min and max keep the first of equal values, as the builtins do)."""
    out, mis = [], []
    try:
        for xs in zip(*inputs, strict=True):  # per axis, the inputs' states
            x0 = xs[0]
            n, j, a, b = x0.n, x0.j, x0.a, x0.b
            lo = hi = (a + b) / 2  # smallest and largest branch centre
            for x in xs:
                if x.n != n or x.j != j or x.glob is not None or not x.exact:
                    return None
                xa, xb = x.a, x.b
                if xa < a:
                    a = xa
                if xb > b:
                    b = xb
                c = (xa + xb) / 2
                if c < lo:
                    lo = c
                if c > hi:
                    hi = c
            for x in xs:
                if x.pattern is None and x.a == a and x.b == b:
                    pattern = None  # one contiguous input spans the hull: so does the union
                    break
            else:
                pieces = []
                for x in xs:
                    pieces.extend(x.pattern if x.pattern is not None else ((x.a, x.b),))
                merged = arith.merge_intervals(pieces)
                pattern = None if len(merged) == 1 else merged
            out.append(Axis(n, j, a, b, pattern, None, True, x0.size))
            mis.append(hi - lo)
    except Exception:  # inputs with different numbers of axes, odd values: the rule decides
        return None
    return tuple(out), tuple(mis)


BUILTIN_OPS = frozenset(_REGISTRY)
