"""Receptive-field arithmetic on plain numbers (the summary) and numpy arrays (exact bounds).

Conventions (see the README and ``shared/reference.md``): input pixel ``i`` spans ``[i, i+1)``.
The *summary* of a node along one axis is its output size ``n``, jump ``j`` and the continuous
hull ``[a, b)`` of the RF of output feature 0, so that ``rf = b - a`` and ``start = (a + b) / 2``;
feature ``i`` spans ``[a + i*j, b + i*j)``. The input is ``n=N, j=1, a=0, b=1``.

*Exact bounds* are per output position: for each op an index map lists, for every output position,
the input positions it reads ("taps"), and the engine takes min/max over them.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = [
    "effective_kernel",
    "same_padding",
    "window_out_size",
    "window_summary",
    "dilate_pattern",
    "merge_intervals",
    "convtranspose_out_size",
    "upsample_out_size",
    "adaptive_window",
    "window_taps",
    "transpose_taps",
    "upsample_taps",
    "adaptive_taps",
    "pad_taps",
    "slice_taps",
]


def effective_kernel(k: int, d: int) -> int:
    """Span of a dilated kernel: ``d*(k-1) + 1``.

    >>> effective_kernel(3, 2)
    5
    """
    return d * (k - 1) + 1


def same_padding(n: int, k: int, s: int, d: int) -> tuple[int, int]:
    """TensorFlow's ``SAME`` padding as ``(before, after)``; extra padding goes after.

    >>> same_padding(224, 3, 2, 1)  # total = (112-1)*2 + 3 - 224 = 1
    (0, 1)
    >>> same_padding(7, 3, 1, 1)
    (1, 1)
    """
    ke = effective_kernel(k, d)
    total = max((-(-n // s) - 1) * s + ke - n, 0)
    return total // 2, total - total // 2


def window_out_size(n: int, k: int, s: int, d: int, pl: int, pr: int, ceil_mode: bool = False) -> int:
    """Output size of a conv/pool window op, with PyTorch's ``ceil_mode`` rule.

    With ``ceil_mode`` the last window must start inside the input or the left padding.

    >>> window_out_size(227, 11, 4, 1, 0, 0)
    55
    >>> window_out_size(6, 3, 2, 1, 0, 0, ceil_mode=True)  # windows at 0, 2, 4 (4 is inside)
    3
    >>> window_out_size(5, 2, 2, 1, 0, 0, ceil_mode=True)  # windows at 0, 2, 4
    3
    >>> window_out_size(7, 2560, 2560, 1, 0, 0, ceil_mode=True)  # one window, larger than the input
    1
    >>> window_out_size(2, 5, 3, 1, 0, 0, ceil_mode=True)  # (2 - 5 + 2) // 3 + 1 = 0: PyTorch refuses too
    0
    """
    span = n + pl + pr - effective_kernel(k, d)
    if ceil_mode:
        # PyTorch's pooling_output_shape: div_rtn(span + s - 1, s) + 1 (floor division, so a
        # kernel larger than the input still gives one window when it starts in the input)
        out = (span + s - 1) // s + 1
        if out > 0 and (out - 1) * s >= n + pl:
            out -= 1
        return max(out, 0)
    return span // s + 1 if span >= 0 else 0


def window_summary(j, a, b, k, s, d, pl):
    """The classic recurrence for one conv/pool layer on the feature-0 hull.

    ``j_out = j*s``; the hull of feature 0 grows by ``pl*j`` on the left and
    ``(ke - 1 - pl)*j`` on the right, so ``r_out = r + (ke-1)*j`` and
    ``start_out = start + ((ke-1)/2 - pl)*j``.

    >>> window_summary(1, 0, 1, 11, 4, 1, 0)  # AlexNet conv1: r=11, start=5.5
    (4, 0, 11)
    """
    ke = effective_kernel(k, d)
    return j * s, a - pl * j, b + (ke - 1 - pl) * j


def merge_intervals(intervals):
    """Sort and merge touching or overlapping ``[lo, hi)`` intervals.

    >>> merge_intervals([(4, 5), (0, 1), (1, 2)])
    ((0, 2), (4, 5))
    """
    out = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def dilate_pattern(pattern, a, b, j, k, d, pl):
    """Pixels of feature 0 after a window op, as merged intervals, or None if contiguous.

    ``pattern`` is None (the RF ``[a, b)`` is contiguous) or a tuple of disjoint intervals.
    A dilated kernel whose taps are further apart than the RF is wide leaves gaps.

    >>> dilate_pattern(None, 0, 1, 1, 3, 2, 0)  # a k=3, d=2 conv on the input: {0, 2, 4}
    ((0, 1), (2, 3), (4, 5))
    >>> dilate_pattern(None, 0, 3, 1, 3, 2, 0) is None  # RF 3 wide, taps 2 apart: no gap
    True
    """
    if pattern is None and (k == 1 or d * j <= b - a):
        return None
    base = pattern if pattern is not None else ((a, b),)
    shifted = [(lo + (t * d - pl) * j, hi + (t * d - pl) * j) for t in range(k) for lo, hi in base]
    merged = merge_intervals(shifted)
    return None if len(merged) == 1 else merged


def sweep_pattern(pattern, a, b, j, n):
    """Pixels seen by the union of ``n`` features ``j`` apart (feature 0 seen as ``pattern`` or
    the contiguous ``[a, b)``), as merged intervals, or None if contiguous.

    >>> sweep_pattern(None, 0, 1, 2, 5)  # every other pixel: a strided slice, then global
    ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9))
    >>> sweep_pattern(None, 0, 3, 2, 5) is None
    True
    """
    if pattern is None and (n == 1 or j <= b - a):
        return None
    base = pattern if pattern is not None else ((a, b),)
    merged = merge_intervals([(lo + i * j, hi + i * j) for i in range(n) for lo, hi in base])
    return None if len(merged) == 1 else merged


def convtranspose_out_size(n, k, s, p, output_padding, d):
    """PyTorch's transposed-conv output size.

    >>> convtranspose_out_size(4, 2, 2, 0, 0, 1)
    8
    """
    return (n - 1) * s - 2 * p + effective_kernel(k, d) + output_padding


def upsample_out_size(n, scale, size):
    """``F.interpolate`` output size: ``size`` if given, else ``floor(n * scale)``.

    >>> upsample_out_size(7, 2.0, None)
    14
    """
    return size if size is not None else int(math.floor(n * scale))


def adaptive_window(o, n_in, n_out):
    """Input window ``[start, end)`` of adaptive pooling output ``o`` (PyTorch's rule).

    >>> [adaptive_window(o, 5, 3) for o in range(3)]
    [(0, 2), (1, 4), (3, 5)]
    """
    return (o * n_in) // n_out, -(-(o + 1) * n_in // n_out)


# ---------------------------------------------------------------------------------------------
# Index maps for exact per-position bounds. Each returns a list of (index array, mask or None):
# output position o reads input position idx[o] wherever mask[o] is true. Indices outside
# [0, n_in) are padding ("virtual" positions): they contribute nothing real.


def window_taps(n_out, k, s, d, pl):
    """Taps of a conv/pool window: ``o*s - pl + t*d`` for each kernel tap ``t``."""
    o = np.arange(n_out, dtype=np.int64) * s - pl
    return [(o + t * d, None) for t in range(k)]


def transpose_taps(n_out, k, s, d, p):
    """Taps of a transposed conv: output ``o`` reads input ``i`` when ``i*s - p + t*d == o``."""
    o = np.arange(n_out, dtype=np.int64)
    taps = []
    for t in range(k):
        num = o + p - t * d
        taps.append((num // s, num % s == 0))
    return taps


def _source_scale(n_in, n_out, scale, align_corners):
    # PyTorch's area_pixel_compute_scale: a given scale factor is used as 1/scale.
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    if scale is not None and scale > 0:
        return 1.0 / scale
    return n_in / n_out


def _exact_ratio(n_in, n_out, scale, align_corners):
    """The source scale as an exact fraction (see :func:`_source_scale`)."""
    if align_corners:
        return Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
    if scale is not None and scale > 0:
        return 1 / Fraction(scale)
    return Fraction(n_in, n_out)


def upsample_taps(n_in, n_out, mode, align_corners, scale):
    """Taps of ``F.interpolate`` (nearest, nearest-exact, (bi/tri)linear, bicubic), exactly.

    A tap whose interpolation weight is exactly zero (the sample falls on a pixel) is masked out.
    Indices are clamped into the input as PyTorch does, so every tap is a real pixel. Source
    coordinates are computed in exact integer/fraction arithmetic where PyTorch's float maths is
    exact, so a coordinate that falls exactly on a pixel is not rounded to its neighbour.

    >>> [t.tolist() for t, _ in upsample_taps(2, 4, "nearest", False, None)]
    [[0, 0, 1, 1]]
    """
    last = n_in - 1
    if mode in ("nearest", "nearest-exact"):
        o = np.arange(n_out, dtype=np.int64)
        if scale is None:  # PyTorch: floor(o * n_in / n_out), in exact integers here
            src = (o * n_in) // n_out if mode == "nearest" else ((2 * o + 1) * n_in) // (2 * n_out)
        else:  # float64 o * (1/scale), as the kernel computes it
            of = o.astype(np.float64)
            src = np.floor((of if mode == "nearest" else of + 0.5) * (1.0 / scale)).astype(np.int64)
        return [(np.minimum(src, last), None)]
    if n_out == n_in and mode != "bicubic":  # PyTorch copies the input through unchanged
        return [(np.arange(n_out, dtype=np.int64), None)]
    ratio = _exact_ratio(n_in, n_out, scale, align_corners)
    xs = [ratio * o if align_corners else ratio * (2 * o + 1) / 2 - Fraction(1, 2) for o in range(n_out)]
    if mode == "bicubic":
        x0 = np.array([math.floor(x) for x in xs], dtype=np.int64)
        nz = np.array([x != math.floor(x) for x in xs], dtype=bool)
        taps = [(np.clip(x0, 0, last), None)]
        for off in (-1, 1, 2):
            taps.append((np.clip(x0 + off, 0, last), nz))
        return taps
    # linear family: negative source coordinates clamp to 0
    xs = [max(x, Fraction(0)) for x in xs]
    x0 = np.array([min(math.floor(x), last) for x in xs], dtype=np.int64)
    frac = np.array([x - min(math.floor(x), last) > 0 for x in xs], dtype=bool)
    x1 = np.minimum(x0 + 1, last)
    return [(x0, None), (x1, frac)]


def adaptive_taps(n_in, n_out):
    """Taps of adaptive pooling: output ``o`` reads ``[floor(o*n_in/n_out), ceil((o+1)*n_in/n_out))``."""
    o = np.arange(n_out, dtype=np.int64)
    lo = (o * n_in) // n_out
    hi = -(-(o + 1) * n_in // n_out)
    width = int((hi - lo).max())
    return [(lo + t, lo + t < hi) for t in range(width)]


def pad_taps(n_in, n_out, before, mode, after=0):
    """Taps of padding: constant padding reads nothing; reflect/replicate/circular re-read pixels.

    Negative amounts crop first, as ``F.pad`` does: the other side then wraps or mirrors the
    cropped input, not the whole one.

    >>> pad_taps(5, 5, -2, "circular", 2)[0][0].tolist()  # keep 2..4, then wrap to 2, 3
    [2, 3, 4, 2, 3]
    """
    first = max(-before, 0)
    kept = n_in - first - max(-after, 0)
    i = np.arange(n_out, dtype=np.int64) - max(before, 0)  # index into the kept part
    if mode == "replicate":
        i = np.clip(i, 0, kept - 1)
    elif mode == "circular":
        i = np.mod(i, kept)
    elif mode == "reflect":
        period = 2 * (kept - 1) if kept > 1 else 1
        i = np.mod(i, period)
        i = np.where(i >= kept, period - i, i)
    return [(first + i, None)]


def slice_taps(n_out, start, step):
    """Taps of strided slicing: output ``o`` is input ``start + o*step``."""
    return [(start + np.arange(n_out, dtype=np.int64) * step, None)]
