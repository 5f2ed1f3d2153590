"""Resampling: ``upsample`` (``F.interpolate``) and adaptive pooling.

``upsample``: exactly one of ``scale`` (positive numbers) or ``size`` (ints), ``mode`` (nearest,
nearest-exact, linear, bilinear, trilinear, bicubic; default nearest), ``align_corners``
(False; linear and cubic modes only). ``adaptive_avgpool`` / ``adaptive_maxpool``:
``output_size`` (required).

>>> from rfgraph.ops import get_op
>>> get_op("upsample").text({"op": "upsample", "scale": 2, "mode": "bilinear"}, 2)
'upsample scale 2 bilinear'
"""

from __future__ import annotations

from .. import arith
from .base import DEFAULT, AxisState, Op, too_small

UPSAMPLE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic")
# pixels an interior feature blends, left and right of its nearest source feature
_BLEND = {"nearest": (0, 0), "nearest-exact": (0, 0), "bicubic": (1, 2)}


def _parse_upsample(r):
    if ("scale" in r) == ("size" in r):
        r.fail("upsample needs exactly one of 'scale' or 'size'")
    p = {"scale": None, "size": None}
    if "scale" in r:
        p["scale"] = r.positive_numbers("scale")
    else:
        p["size"] = r.per_axis("size", minimum=1)
    p["mode"] = r.choice("mode", UPSAMPLE_MODES, "nearest")
    p["align_corners"] = r.bool("align_corners")
    if p["align_corners"] and p["mode"].startswith("nearest"):
        r.fail("align_corners only applies to linear/bilinear/bicubic modes")
    return p


def _upsample_taps(node, ax, n_in, n_out):
    p = node.params
    scale = p["scale"][ax] if p["scale"] is not None else None
    return arith.upsample_taps(n_in, n_out, p["mode"], p["align_corners"], scale)


def _upsample(node, inputs):
    """Interpolation: exact per position; summary jump/scale, feature 0 = input feature 0, and
    r + jump (linear) or r + 3 jump (cubic) for the neighbours an interior feature blends.
    Exact over an input whose features all read the same pixels (jump 0)."""
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        size = p["size"][ax] if p["size"] is not None else None
        scale = p["scale"][ax] if p["scale"] is not None else None
        n = arith.upsample_out_size(x.n, scale, size)
        if n < 1:
            too_small(node, ax, x.n, f"scale {scale}")
        if n == x.n and (scale in (None, 1.0)):
            out.append(x)
            continue
        if x.jump == 0 and x.exact:  # every input feature reads the same pixels: so does each output
            out.append(x.replace(n=n))  # (every output feature reads one at least)
            continue
        if p["align_corners"]:
            ratio = (x.n - 1) / (n - 1) if n > 1 else 0.0
        else:
            ratio = x.n / n if scale is None else 1.0 / scale
        left, right = _BLEND.get(p["mode"], (0, 1))
        out.append(AxisState(n, x.jump * ratio, x.lo - left * x.jump, x.hi + right * x.jump, None,
                             x.global_from, False, x.size))
    return tuple(out)


DEFAULT.add(Op(
    "upsample", _upsample, parse=_parse_upsample, accepts={"scale", "size", "mode", "align_corners"},
    taps=_upsample_taps,
    label_params=(("size", "size"), ("scale", "scale"), ("mode", ""), ("align_corners", "align_corners")),
    doc="interpolation (nearest, linear, cubic): exact per position"))


def _adaptive_taps(node, ax, n_in, n_out):
    return arith.adaptive_taps(n_in, n_out)


def _adaptive_runs(node, ax, n_in, n_out):
    """When ``n_out`` divides ``n_in``: windows of ``n_in / n_out`` side by side, a plain pool."""
    if n_in % n_out:
        return None
    k = n_in // n_out
    return 0, k, k


def _adaptive(node, inputs):
    """Window [floor(o*N/n), ceil((o+1)*N/n)); exact (a plain pool) when n divides N, or when
    every input feature reads the same pixels (jump 0)."""
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        n = p["output_size"][ax]
        if x.n % n == 0:
            k = x.n // n
            j, lo, hi = arith.window_summary(x.jump, x.lo, x.hi, k, k, 1, 0)
            pattern = arith.dilate_pattern(x.pattern, x.lo, x.hi, x.jump, k, 1, 0) if x.exact else None
            out.append(AxisState(n, j, lo, hi, pattern, x.global_from, x.exact, x.size))
        elif x.jump == 0 and x.exact:  # every window reads features that all read the same pixels
            out.append(x.replace(n=n))
        else:
            first, end = arith.adaptive_window(0, x.n, n)
            out.append(AxisState(n, x.jump * x.n / n, x.lo + first * x.jump, x.hi + (end - 1) * x.jump,
                                 None, x.global_from, False, x.size))
    return tuple(out)


for _name in ("adaptive_avgpool", "adaptive_maxpool"):
    DEFAULT.add(Op(_name, _adaptive, parse=lambda r: {"output_size": r.per_axis("output_size", minimum=1)},
                   accepts={"output_size"}, taps=_adaptive_taps, runs=_adaptive_runs, label_params=(("output_size", "out"),),
                   doc=_adaptive.__doc__.splitlines()[0]))
