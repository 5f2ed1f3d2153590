"""Window ops: ``conv``, ``maxpool``, ``avgpool`` (the classic recurrence), and ``window_conv``.

Parameters (one int for every axis, or one entry per axis): ``kernel`` (required), ``stride``
(default 1 for conv, the kernel for pooling), ``dilation`` (1; not for avgpool), ``padding``
(an int, per-axis ints, ``(before, after)`` pairs, ``"same"`` or ``"valid"``; default 0) and
``ceil_mode`` (pooling, False).

``window_conv`` is a conv run on each window of a partition of every axis into ``window``
features (explicit padding, applied at each window's edges; no ``ceil_mode``): feature ``o`` of
window ``o // w_out`` reads the taps of its place in the window that fall inside that window
(``w_out`` is the conv's output size on one window). Per feature, not affine, unless one window
spans the axis.

>>> from rfgraph.ops import get_op
>>> get_op("conv").read("c1", {"op": "conv", "kernel": 3, "padding": 1}, 2).params["padding"]
((1, 1), (1, 1))
>>> get_op("maxpool").read("p1", {"op": "maxpool", "kernel": 2}, 1).params["stride"]
(2,)
"""

from __future__ import annotations

import numpy as np

from .. import arith
from ..errors import ShapeError
from .base import DEFAULT, AxisState, Op, too_small

__all__ = ["window_padding", "window_summary", "window_taps", "window_runs", "window_fast"]


def _parse(r, op):
    k = r.per_axis("kernel", minimum=1)
    p = {
        "kernel": k,
        "stride": r.per_axis("stride", 1 if op == "conv" else k, minimum=1),
        "dilation": r.per_axis("dilation", 1, minimum=1),
        "padding": r.pairs("padding", 0, words=True),
        "ceil_mode": r.bool("ceil_mode"),
    }
    # A conv may pad more than its kernel (PyTorch allows it): the border features then read
    # only padding, and their clipped bounds say so (empty).
    if op != "conv" and p["padding"] != "same":
        for ax, ((pl, pr), k_, d) in enumerate(zip(p["padding"], p["kernel"], p["dilation"])):
            ke = arith.effective_kernel(k_, d)
            if 2 * max(pl, pr) > ke:
                # PyTorch's rule for pooling: pad should be at most half of the (effective) kernel.
                r.fail(f"padding ({pl}, {pr}) on axis {ax} is more than half the kernel {ke} "
                       "(PyTorch requires pad <= kernel/2 for pooling)")
    return p


def window_padding(node, ax, n_in):
    """``(before, after)`` padding of a window op along ``ax`` (``"same"`` resolved for ``n_in``)."""
    p = node.params
    if p["padding"] == "same":
        return arith.same_padding(n_in, p["kernel"][ax], p["stride"][ax], p["dilation"][ax])
    return p["padding"][ax]


def window_taps(node, ax, n_in, n_out):
    p = node.params
    pl, _ = window_padding(node, ax, n_in)
    return arith.window_taps(n_out, p["kernel"][ax], p["stride"][ax], p["dilation"][ax], pl)


def window_runs(node, ax, n_in, n_out):
    """``window_taps`` in closed form: ``o*s - pl + t`` for ``t < k`` when the kernel's taps are
    consecutive (no dilation, or one tap)."""
    p = node.params
    k, d = p["kernel"][ax], p["dilation"][ax]
    if k > 1 and d != 1:
        return None
    return -window_padding(node, ax, n_in)[0], p["stride"][ax], k


def window_summary(node, inputs):
    """Classic recurrence: jump*=s, r+=(ke-1)*jump, start+=((ke-1)/2-pL)*jump; exact."""
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        k, s, d = p["kernel"][ax], p["stride"][ax], p["dilation"][ax]
        pl, pr = window_padding(node, ax, x.n)
        n = arith.window_out_size(x.n, k, s, d, pl, pr, p["ceil_mode"])
        if n < 1:
            too_small(node, ax, x.n, f"kernel {k}, dilation {d}, padding ({pl}, {pr})")
        j, lo, hi = arith.window_summary(x.jump, x.lo, x.hi, k, s, d, pl)
        pattern = arith.dilate_pattern(x.pattern, x.lo, x.hi, x.jump, k, d, pl) if x.exact else None
        out.append(AxisState(n, j, lo, hi, pattern, x.global_from, x.exact, x.size))
    return tuple(out)


def window_fast(params):
    """A fast version of :func:`window_summary` for these params, or None.

    Large networks repeat a few layer configurations, so the engine makes one plan per distinct
    params and applies it to every node that has them. Plans cover explicit padding without
    ``ceil_mode``; a plan returns None (the engine then calls the summary) when the input is too
    small, so errors stay the summary's. Same arithmetic in the same order as the summary, so the
    results are identical, types included.
    """
    if params["padding"] == "same" or params["ceil_mode"]:
        return None
    axes = []
    for k, s, d, (pl, pr) in zip(params["kernel"], params["stride"], params["dilation"], params["padding"]):
        ke = arith.effective_kernel(k, d)
        axes.append((k, s, d, pl, pr, ke, ke - 1 - pl, k == 1 and s == 1 and pl == 0 and pr == 0))
    dilate = arith.dilate_pattern
    all_unit = all([ax[-1] for ax in axes])
    alike = all([ax == axes[0] for ax in axes])  # the same parameters on every axis

    def plan(inputs):
        [states] = inputs
        if all_unit:  # a 1x1 stride-1 conv: the summary would rebuild the same states
            for x in states:
                if not (x.pattern is None and type(x.n) is type(x.jump) is type(x.lo) is type(x.hi) is int):
                    break
            else:
                return states
        out = []
        for (k, s, d, pl, pr, ke, right, unit), x in zip(axes, states):
            if alike and out and x is states[0]:  # one state on every axis (a square map): one answer
                out.append(out[0])
                continue
            j, pattern, lo, hi = x.jump, x.pattern, x.lo, x.hi
            if unit and pattern is None and type(x.n) is type(j) is type(lo) is type(hi) is int:
                out.append(x)  # 1 wide, stride 1, unpadded: n, jump, lo and hi come out unchanged
                continue
            span = x.n + pl + pr - ke
            if span < 0:
                return None
            if pattern is None and (k == 1 or d * j <= hi - lo):
                pass  # contiguous stays contiguous (dilate_pattern's own shortcut)
            elif x.exact:
                pattern = dilate(pattern, lo, hi, j, k, d, pl)
            else:
                pattern = None
            out.append(AxisState(span // s + 1, j * s, lo - pl * j, hi + right * j, pattern,
                                 x.global_from, x.exact, x.size))
        return tuple(out)

    return plan


_COMMON = {"kernel", "stride", "padding"}
_LABEL = (("kernel", "k"), ("stride", "s"), ("padding", "p"), ("dilation", "d"), ("ceil_mode", "ceil"))

for _name, _accepts, _defaults in (
        ("conv", _COMMON | {"dilation"}, {"stride": 1, "padding": 0, "dilation": 1}),
        ("maxpool", _COMMON | {"dilation", "ceil_mode"}, {"padding": 0, "dilation": 1}),
        ("avgpool", _COMMON | {"ceil_mode"}, {"padding": 0})):
    DEFAULT.add(Op(_name, window_summary, parse=lambda r, _op=_name: _parse(r, _op), accepts=_accepts,
                   taps=window_taps, runs=window_runs, fast=window_fast, label_params=_LABEL, defaults=_defaults,
                   doc=window_summary.__doc__.splitlines()[0]))


# -- a convolution run on each window of a partition on its own ---------------------------------


def _parse_in_windows(r):
    p = _parse(r, "conv")
    if p["padding"] == "same" or p["ceil_mode"]:
        r.fail("takes explicit padding and no ceil_mode (each window is padded on its own)")
    del p["ceil_mode"]
    p["window"] = r.per_axis("window", minimum=1)
    return p


def _windows(node, ax, n_in):
    """``(w, w_out)``: the window along ``ax`` and the output's window, checked against ``n_in``."""
    p = node.params
    w = p["window"][ax]
    if n_in % w:
        raise ShapeError(f"input size {n_in} along axis {ax} is not a multiple of the window {w}",
                         node=node.name, op=node.op)
    k, s, d = p["kernel"][ax], p["stride"][ax], p["dilation"][ax]
    pl, pr = p["padding"][ax]
    w_out = arith.window_out_size(w, k, s, d, pl, pr)
    if w_out < 1:
        too_small(node, ax, w, f"the window; kernel {k}, dilation {d}, padding ({pl}, {pr})")
    return w, w_out


def in_windows_summary(node, inputs):
    """A conv on each window on its own (zero padding at every window's edges): n = windows x
    the window's output size; feature 0's numbers as the conv's; exact when one window spans the
    axis, else per feature (the edge features of each window read fewer taps)."""
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        w, w_out = _windows(node, ax, x.n)
        k, s, d = p["kernel"][ax], p["stride"][ax], p["dilation"][ax]
        pl = p["padding"][ax][0]
        j, lo, hi = arith.window_summary(x.jump, x.lo, x.hi, k, s, d, pl)
        if k == 1 and s == 1 and pl == 0 and w_out == w:  # each feature reads its own: the input
            out.append(x)
            continue
        exact = x.exact and x.n == w
        pattern = arith.dilate_pattern(x.pattern, x.lo, x.hi, x.jump, k, d, pl) if exact else None
        out.append(AxisState(x.n // w * w_out, j, lo, hi, pattern, x.global_from, exact, x.size))
    return tuple(out)


def in_windows_taps(node, ax, n_in, n_out):
    """Output ``o`` of window ``o // w_out`` reads ``window*w + (o % w_out)*s - pl + t*d`` where
    that offset lies inside its own window."""
    p = node.params
    w, w_out = _windows(node, ax, n_in)
    o = np.arange(n_out, dtype=np.int64)
    base, inner = (o // w_out) * w, (o % w_out) * p["stride"][ax] - p["padding"][ax][0]
    taps = []
    for t in range(p["kernel"][ax]):
        off = inner + t * p["dilation"][ax]
        taps.append((base + off, (off >= 0) & (off < w)))
    return taps


DEFAULT.add(Op("window_conv", in_windows_summary, parse=_parse_in_windows,
               accepts={"kernel", "stride", "padding", "dilation", "window"}, taps=in_windows_taps,
               label_params=(("kernel", "k"), ("stride", "s"), ("padding", "p"), ("dilation", "d"),
                             ("window", "in windows of")),
               defaults={"stride": 1, "padding": 0, "dilation": 1},
               doc="a conv on each window of a partition on its own, zero-padded at the window's edges "
                   "(EfficientViT-M's depthwise conv on the queries): exact per feature"))
