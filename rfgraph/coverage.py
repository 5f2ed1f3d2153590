"""Which input pixels each feature really reads, along one axis, in O(features) memory.

A :class:`Coverage` holds, per feature, the hull ``[lo, hi]`` (inclusive pixel indices; ``lo = BIG,
hi = -BIG`` for a feature that reads only padding, which unions and ``min``/``max`` rely on) of the
pixels it reads, plus the exact pieces of the few
features whose pixels are not one interval (holes from dilation or strides, wrap-around padding).
Contiguous features cost two integers; a feature with holes costs its intervals, never a row of
the input's length. The engine uses it to tell whether every feature reads every pixel; on small
axes (features x pixels up to a fixed bound) it uses the same sets as bit matrices instead
(:func:`to_dense`, :func:`from_dense`), whatever their holes.

>>> c = gather([(identity(5), np.arange(3) * 2, None), (identity(5), np.arange(3) * 2 + 2, None)], 3)
>>> c.lo.tolist(), c.hi.tolist(), c.parts  # feature o reads pixels 2o and 2o+2: holes everywhere
([0, 2, 4], [2, 4, 4], {0: ((0, 0), (2, 2)), 1: ((2, 2), (4, 4))})
>>> covers_all(sweep(c, 1), 5)  # the union of all features: 0, 2, 4 only
False
"""

from __future__ import annotations

import numpy as np

__all__ = ["Coverage", "identity", "gather", "gather_inside", "union", "padded", "sweep", "covers_all", "merge",
           "to_dense", "from_dense", "dense_hulls"]

_BIG = np.iinfo(np.int64).max // 4
#: Output features handled at once by :func:`gather` (bounds its temporaries on long inputs).
CHUNK = 1 << 16


class Coverage:
    """Per feature: hull ``lo``, ``hi`` (int64 arrays) and ``parts`` ({feature: intervals})."""

    __slots__ = ("lo", "hi", "parts")

    def __init__(self, lo, hi, parts=None):
        self.lo = lo
        self.hi = hi
        self.parts = parts or {}

    def intervals(self, o) -> tuple:
        """Feature ``o``'s pixels as disjoint inclusive intervals (empty tuple: none)."""
        if o in self.parts:
            return self.parts[o]
        lo, hi = int(self.lo[o]), int(self.hi[o])
        return ((lo, hi),) if lo <= hi else ()


def identity(n: int) -> Coverage:
    """The input itself: feature ``i`` reads pixel ``i``."""
    ar = np.arange(n, dtype=np.int64)
    return Coverage(ar, ar.copy())


def merge(intervals) -> tuple:
    """Sort and merge inclusive integer intervals that overlap or touch.

    >>> merge([(4, 5), (0, 1), (2, 2)])
    ((0, 2), (4, 5))
    """
    out = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _gather_slice(sources, a, b):
    """Hull and "needs an exact merge" of output features ``a .. b-1`` (see :func:`gather`)."""
    first = sources[0][0]
    if len(sources) > 1 and all(c is first and idx is not None for c, idx, _ in sources):
        L, H, holey = _taps_slice(first, sources, a, b)  # an index map: every tap at once
        return _hull_and_need(L, H, holey)
    los, his = [], []
    holey = np.zeros(b - a, dtype=bool)
    for cov, idx, mask in sources:
        keys = np.fromiter(cov.parts, dtype=np.int64, count=len(cov.parts)) if cov.parts else None
        if idx is None and mask is None:  # feature o of an input of n features (empties are BIG, -BIG)
            los.append(cov.lo[a:b])
            his.append(cov.hi[a:b])
            if keys is not None:
                inside = keys[(keys >= a) & (keys < b)]
                holey[inside - a] = True
            continue
        m = len(cov.lo)
        idx = np.arange(a, b) if idx is None else idx[a:b]
        use = (idx >= 0) & (idx < m)
        if mask is not None:
            use &= mask[a:b]
        safe = np.clip(idx, 0, m - 1)
        lo = np.where(use, cov.lo[safe], _BIG)
        hi = np.where(use, cov.hi[safe], -_BIG)
        lo = np.where(lo <= hi, lo, _BIG)  # an empty source feature adds nothing
        hi = np.where(lo <= hi, hi, -_BIG)
        los.append(lo)
        his.append(hi)
        if keys is not None:
            holey |= use & np.isin(safe, keys)
    return _hull_and_need(np.stack(los), np.stack(his), holey)


def _taps_slice(cov, sources, a, b):
    """``(taps, features)`` arrays of the intervals the taps of one coverage read."""
    m = len(cov.lo)
    idx = np.stack([idx[a:b] for _, idx, _ in sources])
    use = (idx >= 0) & (idx < m)
    if any(mask is not None for _, _, mask in sources):
        use &= np.stack([np.ones(b - a, dtype=bool) if mask is None else mask[a:b] for _, _, mask in sources])
    safe = np.clip(idx, 0, m - 1)
    L = np.where(use, cov.lo[safe], _BIG)
    H = np.where(use, cov.hi[safe], -_BIG)
    empty = L > H  # an empty source feature adds nothing
    L[empty], H[empty] = _BIG, -_BIG
    holey = np.zeros(b - a, dtype=bool)
    if cov.parts:
        keys = np.fromiter(cov.parts, dtype=np.int64, count=len(cov.parts))
        holey = (use & np.isin(safe, keys)).any(axis=0)
    return L, H, holey


def _hull_and_need(L, H, holey):
    need = holey
    if len(L) > 1:
        # intervals that all reach a common point (the last start is at most one past the first
        # end) are one interval: the usual case, with nothing to sort
        valid = L <= H
        last_start = np.where(valid, L, -_BIG).max(axis=0)
        first_end = np.where(valid, H, _BIG).min(axis=0)
        unsure = np.flatnonzero(last_start > first_end + 1)
        if len(unsure):
            # sort those features' intervals by their start; a gap is a valid interval starting
            # more than one pixel after everything before it ends
            Lu, Hu = L[:, unsure], H[:, unsure]
            order = np.argsort(Lu, axis=0, kind="stable")
            Ls = np.take_along_axis(Lu, order, axis=0)
            Hs = np.take_along_axis(Hu, order, axis=0)
            reach = np.maximum.accumulate(Hs, axis=0)
            gap = (Ls[1:] <= Hs[1:]) & (reach[:-1] > -_BIG) & (Ls[1:] > reach[:-1] + 1)
            need = need.copy()
            need[unsure[gap.any(axis=0)]] = True
    return L.min(axis=0), H.max(axis=0), need


def gather(sources, n: int) -> Coverage:
    """Coverage of ``n`` features, each the union of source features.

    ``sources`` is a list of ``(coverage, index, mask)``: output feature ``o`` reads feature
    ``index[o]`` of ``coverage`` where ``mask[o]`` (None: everywhere) and the index lies inside it
    (outside: padding, which reads no pixel); ``index`` None means feature ``o`` itself (a join of
    inputs of ``n`` features). Vectorised over features; only features whose union is not one
    interval are merged one by one.
    """
    sources = [(cov, None if idx is None else np.broadcast_to(idx, (n,)), mask) for cov, idx, mask in sources]
    out_lo = np.empty(n, dtype=np.int64)
    out_hi = np.empty(n, dtype=np.int64)
    need = np.zeros(n, dtype=bool)
    for a in range(0, n, CHUNK):  # in slices of features: temporaries stay small on long inputs
        b = min(n, a + CHUNK)
        out_lo[a:b], out_hi[a:b], need[a:b] = _gather_slice(sources, a, b)
    parts = {}
    for o in np.flatnonzero(need).tolist():
        pieces = []
        for cov, idx, mask in sources:
            i = o if idx is None else int(idx[o])
            if 0 <= i < len(cov.lo) and (mask is None or mask[o]):
                pieces.extend(cov.intervals(i))
        merged = merge(pieces)
        if len(merged) > 1:
            parts[o] = merged
    return Coverage(out_lo, out_hi, parts)


def gather_inside(cov: Coverage, idx) -> Coverage:
    """:func:`gather` of one coverage through an index map whose every tap lies inside it, none
    masked: ``idx`` is a ``(taps, n)`` array, feature ``o`` reads features ``idx[:, o]`` (a
    window of consecutive features, a permutation, a nearest upsample). The same result in a
    handful of array operations.

    >>> c = gather_inside(identity(6), np.array([[0, 2, 4], [1, 3, 5]]))  # pairs of pixels
    >>> c.lo.tolist(), c.hi.tolist(), c.parts
    ([0, 2, 4], [1, 3, 5], {})
    >>> gather_inside(gather_inside(identity(6), np.array([[0, 3], [1, 4]])), np.array([[0], [1]])).parts
    {0: ((0, 1), (3, 4))}
    """
    holey_in = None  # per input feature: it has holes
    if cov.parts:
        holey_in = np.zeros(len(cov.lo), dtype=bool)
        holey_in[np.fromiter(cov.parts, dtype=np.int64, count=len(cov.parts))] = True
    if len(idx) == 1:  # one input feature each: its pixels (empties stay as the input has them)
        i = idx[0]
        parts = {}
        if holey_in is not None:
            for o in np.flatnonzero(holey_in[i]).tolist():
                parts[o] = cov.parts[int(i[o])]
        return Coverage(cov.lo[i], cov.hi[i], parts)
    L, H = cov.lo[idx], cov.hi[idx]
    empty = L > H
    L[empty], H[empty] = _BIG, -_BIG
    holey = holey_in[idx].any(axis=0) if holey_in is not None else np.zeros(idx.shape[1], dtype=bool)
    lo, hi, need = _hull_and_need(L, H, holey)
    parts = {}
    for o in np.flatnonzero(need).tolist():
        pieces = []
        for i in idx[:, o].tolist():
            pieces.extend(cov.intervals(i))
        merged = merge(pieces)
        if len(merged) > 1:
            parts[o] = merged
    return Coverage(lo, hi, parts)


def union(covs, n: int) -> Coverage:
    """Per feature, the union of the inputs' features (a join); an input of one feature is
    read by every feature (broadcast). :func:`gather` of ``(cov, None, None)`` sources, in a
    handful of array operations.

    >>> c = union([gather_inside(identity(4), np.array([[0, 2]])), padded(identity(2), 0, 0)], 2)
    >>> [c.intervals(o) for o in range(2)]
    [((0, 0),), ((1, 2),)]
    """
    if len(covs) == 1 and len(covs[0].lo) == n:
        return covs[0]
    if n > CHUNK:  # long axes: gather works in slices, so its temporaries stay small
        return gather([(c, None if len(c.lo) == n else np.zeros(n, dtype=np.int64), None) for c in covs], n)
    L = np.stack([np.broadcast_to(c.lo, (n,)) for c in covs])
    H = np.stack([np.broadcast_to(c.hi, (n,)) for c in covs])
    holey = np.zeros(n, dtype=bool)
    for c in covs:
        if c.parts:
            if len(c.lo) == n:
                holey[np.fromiter(c.parts, dtype=np.int64, count=len(c.parts))] = True
            else:
                holey[:] = True
    lo, hi, need = _hull_and_need(L, H, holey)
    parts = {}
    for o in np.flatnonzero(need).tolist():
        pieces = []
        for c in covs:
            pieces.extend(c.intervals(o if len(c.lo) == n else 0))
        merged = merge(pieces)
        if len(merged) > 1:
            parts[o] = merged
    return Coverage(lo, hi, parts)


def padded(cov: Coverage, left: int, right: int) -> Coverage:
    """``cov`` with ``left`` features before and ``right`` after it that read nothing (padding):
    index ``i`` of the input is index ``i + left`` of the result.

    >>> c = padded(identity(2), 1, 2)
    >>> [c.intervals(i) for i in range(5)]
    [(), ((0, 0),), ((1, 1),), (), ()]
    """
    if not left and not right:
        return cov
    lo = np.concatenate((np.full(left, _BIG, dtype=np.int64), cov.lo, np.full(right, _BIG, dtype=np.int64)))
    hi = np.concatenate((np.full(left, -_BIG, dtype=np.int64), cov.hi, np.full(right, -_BIG, dtype=np.int64)))
    return Coverage(lo, hi, {o + left: iv for o, iv in cov.parts.items()})


def sweep(cov: Coverage, n: int) -> Coverage:
    """``n`` features that each read the union of every feature of ``cov`` (a global op)."""
    valid = cov.lo <= cov.hi
    plain = valid.copy()
    if cov.parts:
        plain[np.fromiter(cov.parts, dtype=np.int64, count=len(cov.parts))] = False
    lo, hi = cov.lo[plain], cov.hi[plain]
    order = np.argsort(lo, kind="stable")
    lo, hi = lo[order], hi[order]
    extra = [iv for ivs in cov.parts.values() for iv in ivs]
    if len(lo):
        # merge the contiguous features' intervals in one vectorised pass
        reach = np.maximum.accumulate(hi)
        starts = np.concatenate(([True], lo[1:] > reach[:-1] + 1))
        first = np.flatnonzero(starts)
        ends = np.append(first[1:], len(lo)) - 1
        extra.extend(zip(lo[first].tolist(), reach[ends].tolist()))
    merged = merge(extra)
    if not merged:
        return Coverage(np.full(n, _BIG, dtype=np.int64), np.full(n, -_BIG, dtype=np.int64))
    parts = {o: merged for o in range(n)} if len(merged) > 1 else {}
    return Coverage(np.full(n, merged[0][0], dtype=np.int64), np.full(n, merged[-1][1], dtype=np.int64), parts)


def covers_all(cov: Coverage, size: int) -> bool:
    """Every feature reads every one of the ``size`` pixels."""
    return not cov.parts and bool((cov.lo == 0).all() and (cov.hi == size - 1).all())


# -- small axes as bit matrices --------------------------------------------------------------------
# Where features x pixels is small (a 56-feature map of a 224-pixel input: 12544 bits), the pixels
# every feature reads fit in one boolean matrix, and a node's matrix is a gather and an ``any`` over
# its taps or an ``or`` over a join's inputs: a handful of array operations per node, however many
# holes the features have (Swin's shifted windows give dozens per node, each merged in Python
# above). The engine uses them below a fixed size only (``bounds.DENSE_MAX``), so memory stays
# O(features + input length) per axis as the axis grows.

def dense_hulls(lo, hi, size: int):
    """``(n, size)`` bool matrix: feature ``o`` reads pixels ``lo[o] .. hi[o]`` (inclusive; none
    where ``lo > hi``).

    >>> dense_hulls(np.array([0, 2]), np.array([1, 1]), 3).astype(int).tolist()
    [[1, 1, 0], [0, 0, 0]]
    """
    px = np.arange(size)
    return (px >= np.asarray(lo)[:, None]) & (px <= np.asarray(hi)[:, None])


def to_dense(cov: Coverage, size: int):
    """``cov`` as a ``(features, size)`` bool matrix (row ``o``: the pixels feature ``o`` reads).

    >>> to_dense(gather_inside(identity(4), np.array([[0, 1], [3, 3]])), 4).astype(int).tolist()
    [[1, 0, 0, 1], [0, 1, 0, 1]]
    """
    bits = dense_hulls(cov.lo, cov.hi, size)
    for o, ivs in cov.parts.items():
        row = bits[o]
        row[:] = False
        for lo, hi in ivs:
            row[lo:hi + 1] = True
    return bits


def from_dense(bits) -> Coverage:
    """The :class:`Coverage` of a bool matrix (the inverse of :func:`to_dense`).

    >>> c = from_dense(np.array([[True, False, True], [False, False, False], [False, True, True]]))
    >>> [c.intervals(o) for o in range(3)]
    [((0, 0), (2, 2)), (), ((1, 2),)]
    """
    n, size = bits.shape
    reads = bits.any(axis=1)
    lo = np.where(reads, bits.argmax(axis=1), _BIG).astype(np.int64)
    hi = np.where(reads, size - 1 - bits[:, ::-1].argmax(axis=1), -_BIG).astype(np.int64)
    holey = np.flatnonzero(reads & (bits.sum(axis=1) < hi - lo + 1))
    parts = {}
    for o in holey.tolist():
        edges = np.flatnonzero(np.diff(np.concatenate(([False], bits[o], [False])).astype(np.int8)))
        parts[o] = tuple(zip(edges[0::2].tolist(), (edges[1::2] - 1).tolist()))
    return Coverage(lo, hi, parts)
