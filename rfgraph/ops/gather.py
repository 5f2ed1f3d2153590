"""Resampling by an explicit source-coordinate rule: ``resample_map`` (ONNX ``Resize``).

Output feature ``d`` along an axis reads the input around the source coordinate ``x(d)`` given by
``transform`` (ONNX's ``coordinate_transformation_mode``), with ``s`` the scale (``scale``, or
``size / n_in`` when ``size`` is given):

==========================  =============================================================
``half_pixel``              ``(d + 1/2) / s - 1/2``
``pytorch_half_pixel``      the same when ``n_out > 1``, else 0
``align_corners``           ``d (n_in - 1) / (n_out - 1)`` (0 when ``n_out == 1``)
``asymmetric``              ``d / s``
``tf_half_pixel_for_nn``    ``(d + 1/2) / s``
``half_pixel_symmetric``    ``n_in/2 (1 - n_out / (s n_in)) + (d + 1/2) / s - 1/2``
``tf_crop_and_resize``      ``a (n_in - 1) + d (b - a)(n_in - 1) / (n_out - 1)`` with ``roi``
                            ``(a, b)`` (``(a + b)/2 (n_in - 1)`` when ``n_out == 1``); a sample
                            outside ``[0, n_in - 1]`` reads no pixel (ONNX's extrapolation_value)
==========================  =============================================================

``mode`` nearest reads one pixel: ``x`` rounded by ``nearest_mode`` (round_prefer_floor,
round_prefer_ceil, floor, ceil), clamped into the input. linear reads ``floor(x)`` and
``floor(x) + 1`` of ``x`` clamped into ``[0, n_in - 1]`` (the second only where its weight is not
0). cubic reads ``floor(x) - 1 .. floor(x) + 2`` with Keys' kernel (``cubic_a``, default -0.75):
indices clamped into the input, or dropped when ``exclude_outside``; a pixel whose total weight
is exactly 0 is not read. Coordinates and weights are exact fractions (a float scale is the
exact binary value it holds), so a sample on a pixel is not rounded to its neighbour.

Parameters: ``scale`` (positive numbers) or ``size`` (ints), or both: ``size`` the output and
``scale`` the ``s`` of the coordinates (ONNX's ``keep_aspect_ratio_policy``; read as the ratio of
ints it is, e.g. 4/3); ``mode``,
``transform`` and ``nearest_mode`` (a word, or one per axis); ``exclude_outside`` (False) and
``cubic_a`` (-0.75); ``antialias`` (False: with a scale below 1, linear and cubic filters
widened by ``1/s``, ONNX's ``antialias=1``); ``roi`` (per axis a pair ``(start, end)`` of numbers, the crop as fractions
of ``n_in - 1``) with and only with ``tf_crop_and_resize``.

>>> from rfgraph.ops import get_op
>>> get_op("resample_map").text({"op": "resample_map", "scale": 2, "mode": "linear",
...                              "transform": "asymmetric"}, 2)
'resample_map scale 2 linear asymmetric'
>>> resample_support(3, 6, Fraction(2), "nearest", "asymmetric", "floor")
[(0,), (0,), (1,), (1,), (2,), (2,)]
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .base import DEFAULT, AxisState, Op, _short, too_small

__all__ = ["MODES", "TRANSFORMS", "NEAREST_MODES", "exact_scale", "source_coordinate", "resample_support",
           "support_of_taps"]

MODES = ("nearest", "linear", "cubic")
TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
              "half_pixel_symmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_HALF = Fraction(1, 2)


def source_coordinate(d: int, n_in: int, n_out: int, s: Fraction, transform: str, roi=None) -> Fraction:
    """The exact source coordinate of output ``d`` (see the module docstring); ``roi`` is the
    ``(start, end)`` pair of ``tf_crop_and_resize``.

    >>> source_coordinate(1, 4, 6, Fraction(3, 2), "half_pixel")
    Fraction(1, 2)
    >>> source_coordinate(2, 5, 3, None, "tf_crop_and_resize", (Fraction(1, 4), Fraction(3, 4)))
    Fraction(3, 1)
    """
    if transform == "tf_crop_and_resize":
        a, b = (Fraction(v) for v in roi)
        if n_out == 1:
            return (a + b) / 2 * (n_in - 1)
        return a * (n_in - 1) + Fraction(d) * (b - a) * (n_in - 1) / (n_out - 1)
    if transform == "align_corners":
        return Fraction(d * (n_in - 1), n_out - 1) if n_out > 1 else Fraction(0)
    if transform == "asymmetric":
        return d / s
    if transform == "tf_half_pixel_for_nn":
        return (d + _HALF) / s
    x = (d + _HALF) / s - _HALF
    if transform == "pytorch_half_pixel":
        return x if n_out > 1 else Fraction(0)
    if transform == "half_pixel_symmetric":
        return Fraction(n_in, 2) * (1 - n_out / (s * n_in)) + x
    return x  # half_pixel


def _round(x: Fraction, nearest_mode: str) -> int:
    if nearest_mode == "floor":
        return math.floor(x)
    if nearest_mode == "ceil":
        return math.ceil(x)
    if nearest_mode == "round_prefer_ceil":
        return math.floor(x + _HALF)
    return math.ceil(x - _HALF)  # round_prefer_floor


def _keys(t: Fraction, a: Fraction) -> Fraction:
    """Keys' cubic kernel at distance ``t``."""
    t = abs(t)
    if t <= 1:
        return ((a + 2) * t - (a + 3)) * t * t + 1
    if t < 2:
        return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return Fraction(0)


def _antialiased(x, last, s, mode, a, exclude_outside):
    """The pixels read with ONNX's antialias filter at scale ``s < 1``: pixel ``p`` weighs
    ``k((p - x) s)`` (triangle of half-width 1, or Keys' kernel), taps outside the input clamped
    onto the edge (or dropped when ``exclude_outside``); a pixel of total weight 0 is not read."""
    reach = 1 if mode == "linear" else 2
    weights = {}
    for p in range(math.floor(x - reach / s), math.ceil(x + reach / s) + 1):
        if exclude_outside and not 0 <= p <= last:
            continue
        t = (p - x) * s
        w = max(1 - abs(t), Fraction(0)) if mode == "linear" else _keys(t, a)
        q = min(max(p, 0), last)
        weights[q] = weights.get(q, 0) + w
    return tuple(sorted(q for q, w in weights.items() if w != 0))


def resample_support(n_in, n_out, s, mode, transform, nearest_mode="round_prefer_floor",
                     exclude_outside=False, cubic_a=Fraction(-3, 4), outputs=None, roi=None, antialias=False):
    """The input pixels each of ``n_out`` outputs (or of ``outputs`` only) reads, as sorted tuples
    (exact arithmetic); ``()`` for a ``tf_crop_and_resize`` sample outside the input.
    ``antialias`` widens linear and cubic filters by ``1/s`` when ``s < 1``."""
    last = n_in - 1
    a = Fraction(cubic_a)
    out = []
    for d in (range(n_out) if outputs is None else outputs):
        x = source_coordinate(d, n_in, n_out, s, transform, roi)
        if transform == "tf_crop_and_resize" and not 0 <= x <= last:
            out.append(())
            continue
        if antialias and mode != "nearest" and s < 1:
            out.append(_antialiased(x, last, Fraction(s), mode, a, exclude_outside))
            continue
        if mode == "nearest":
            out.append((min(max(_round(x, nearest_mode), 0), last),))
            continue
        if mode == "linear":
            x = min(max(x, Fraction(0)), Fraction(last))
            x0 = math.floor(x)
            out.append((x0,) if x == x0 else (x0, x0 + 1))
            continue
        x0 = math.floor(x)
        if x == x0:  # on a pixel: the kernel is 1 there and 0 at every other integer
            out.append((min(max(x0, 0), last),))
            continue
        weights = {}
        for p in range(x0 - 1, x0 + 3):
            if exclude_outside and not 0 <= p <= last:
                continue
            q = min(max(p, 0), last)
            weights[q] = weights.get(q, 0) + _keys(x - p, a)
        out.append(tuple(sorted(q for q, w in weights.items() if w != 0)))
    return out


def exact_scale(value) -> Fraction:
    """A float scale as the rational it was written as: the shortest decimal that gives the float
    (0.6 is 3/5, not the binary value next to it), so ``(d + 1/2) / 0.6`` lands on pixels.

    >>> exact_scale(0.6), exact_scale(2.5)
    (Fraction(3, 5), Fraction(5, 2))
    """
    return Fraction(repr(float(value)))


def support_of_taps(taps, n_out):
    """The pixels each output reads under an index map (``[(idx, mask), ...]``), as sorted tuples."""
    out = [set() for _ in range(n_out)]
    for idx, mask in taps:
        for o in range(n_out):
            if mask is None or mask[o]:
                out[o].add(int(idx[o]))
    return [tuple(sorted(s)) for s in out]


def _scale(p, ax, n_in):
    if p["scale"] is None:
        return Fraction(p["size"][ax], n_in)
    if p["size"] is not None:  # keep_aspect_ratio_policy: a ratio of ints (4/3, not 1.3333333333333333)
        return Fraction(p["scale"][ax]).limit_denominator(1 << 20)
    return exact_scale(p["scale"][ax])


def _out_size(p, ax, n_in):
    return p["size"][ax] if p["size"] is not None else math.floor(n_in * exact_scale(p["scale"][ax]))


def _axis_support(p, ax, n_in, n_out, outputs=None):
    roi = p["roi"][ax] if p["roi"] is not None else None
    return resample_support(n_in, n_out, _scale(p, ax, n_in), p["mode"][ax], p["transform"][ax],
                            p["nearest_mode"][ax], p["exclude_outside"], p["cubic_a"], outputs, roi,
                            p["antialias"])


def _words(r, key, choices, default):
    value = r.get(key, default)
    values = r._entries(value, key) if isinstance(value, (list, tuple)) else (value,) * r.naxes
    for v in values:
        if v not in choices:
            r.fail(f"{key} must be one of {', '.join(choices)}, got {v!r}")
    return tuple(values)


def _parse(r):
    if "scale" not in r and "size" not in r:
        r.fail("resample_map needs 'scale' or 'size' (or both: the output size, and the scale of its coordinates)")
    p = {"scale": None, "size": None}
    if "scale" in r:
        p["scale"] = r.positive_numbers("scale")
    if "size" in r:
        p["size"] = r.per_axis("size", minimum=1)
    p["mode"] = _words(r, "mode", MODES, "nearest")
    p["transform"] = _words(r, "transform", TRANSFORMS, "half_pixel")
    p["nearest_mode"] = _words(r, "nearest_mode", NEAREST_MODES, "round_prefer_floor")
    p["exclude_outside"] = r.bool("exclude_outside")
    p["antialias"] = r.bool("antialias")
    a = r.get("cubic_a", -0.75)
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a):
        r.fail(f"cubic_a must be a finite number, got {a!r}")
    p["cubic_a"] = float(a)
    p["roi"] = None
    crop = "tf_crop_and_resize" in p["transform"]
    if ("roi" in r) != crop:
        r.fail("resample_map takes 'roi' with and only with transform tf_crop_and_resize")
    if crop:
        pairs = r.get("roi")
        if not isinstance(pairs, (list, tuple)):
            r.fail(f"roi must be one (start, end) pair per axis, got {pairs!r}")
        pairs = r._entries(pairs, "roi")
        roi = []
        for pair in pairs:
            if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                    or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                           for v in pair)):
                r.fail(f"roi must be one (start, end) pair of finite numbers per axis, got {pair!r}")
            roi.append(tuple(exact_scale(v) for v in pair))
        p["roi"] = tuple(roi)
    return p


def _taps(node, ax, n_in, n_out):
    support = _axis_support(node.params, ax, n_in, n_out)
    width = max(1, max(len(t) for t in support))
    taps = []
    for k in range(width):  # an output reading nothing (outside a crop) is masked out of every tap
        idx = np.array([t[k] if k < len(t) else (t[0] if t else 0) for t in support], dtype=np.int64)
        mask = None if all(len(t) > k for t in support) else np.array([len(t) > k for t in support])
        taps.append((idx, mask))
    return taps


def _summary(node, inputs):
    """Exact per position; jump n_in/n_out (1/scale when a scale is given; (n_in-1)/(n_out-1) for
    align_corners), feature 0 = the hull of the pixels output 0 reads. An identity map (same
    size, every output reading its own pixel) passes the input's state through; over an input
    whose features all read the same pixels (jump 0), exact when every output reads one."""
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        n = _out_size(p, ax, x.n)
        if n < 1:
            too_small(node, ax, x.n, f"scale {p['scale'][ax]}" if p["scale"] is not None else "size")
        if n == x.n and _axis_support(p, ax, x.n, n) == [(i,) for i in range(n)]:
            out.append(x)
            continue
        if x.jump == 0 and x.exact and all(_axis_support(p, ax, x.n, n)):
            out.append(x.replace(n=n))  # each output reads features that all read the same pixels
            continue
        first = _axis_support(p, ax, x.n, n, outputs=(0,))[0]
        if p["transform"][ax] == "align_corners":
            ratio = (x.n - 1) / (n - 1) if n > 1 else 0.0
        elif p["transform"][ax] == "tf_crop_and_resize":
            start, end = p["roi"][ax]
            ratio = float((end - start) * (x.n - 1) / (n - 1)) if n > 1 else 0.0
            if not first:  # output 0 reads nothing: the pixel its sample would sit on
                first = (math.floor(source_coordinate(0, x.n, n, None, "tf_crop_and_resize", p["roi"][ax])),)
        else:
            ratio = 1.0 / p["scale"][ax] if p["scale"] is not None else x.n / n
        out.append(AxisState(n, x.jump * ratio, x.lo + first[0] * x.jump, x.hi + first[-1] * x.jump, None,
                             x.global_from, False, x.size))
    return tuple(out)


def _label(attrs, naxes):
    bits = ["resample_map"]
    for key in ("size", "scale"):
        if attrs.get(key) is not None:
            bits.append(f"{key} {_short(attrs[key])}")
    for key, default in (("mode", "nearest"), ("transform", "half_pixel"), ("nearest_mode", "round_prefer_floor")):
        value = attrs.get(key, default)
        values = value if isinstance(value, (list, tuple)) else (value,)
        if key == "nearest_mode" and attrs.get("mode", "nearest") != "nearest":
            continue
        if any(v != default for v in values) or key == "mode":
            bits.append("x".join(dict.fromkeys(map(str, values))))
    if attrs.get("exclude_outside"):
        bits.append("exclude_outside")
    if attrs.get("antialias"):
        bits.append("antialias")
    if attrs.get("cubic_a", -0.75) != -0.75:
        bits.append(f"a {attrs['cubic_a']}")
    if attrs.get("roi") is not None:
        bits.append("roi " + ",".join(f"{_short(a)}:{_short(b)}" for a, b in attrs["roi"]))
    return " ".join(bits)


DEFAULT.add(Op(
    "resample_map", _summary, parse=_parse,
    accepts={"scale", "size", "mode", "transform", "nearest_mode", "exclude_outside", "cubic_a", "roi",
             "antialias"},
    taps=_taps, label=_label,
    doc="resampling by ONNX Resize's coordinate rules (nearest, linear, cubic): exact per position"))
