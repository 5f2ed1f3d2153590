"""rfgraph.coverage: per-feature pixel sets in O(features) memory, against a brute-force set union."""

import random

import numpy as np
import pytest

from rfgraph import coverage as C


def brute(sources, n):
    """Per output feature, the set of pixels: the union of its sources' sets (Python sets)."""
    out = []
    for o in range(n):
        px = set()
        for cov, idx, mask in sources:
            i = o if idx is None else int(np.broadcast_to(idx, (n,))[o])
            if 0 <= i < len(cov.lo) and (mask is None or mask[o]):
                for lo, hi in cov.intervals(i):
                    px.update(range(lo, hi + 1))
        out.append(px)
    return out


def as_sets(cov, n):
    return [set(p for lo, hi in cov.intervals(o) for p in range(lo, hi + 1)) for o in range(n)]


def random_coverage(rng, n, size):
    lo = np.array([rng.randint(0, size - 1) for _ in range(n)], dtype=np.int64)
    hi = np.minimum(lo + np.array([rng.randint(0, 4) for _ in range(n)]), size - 1)
    parts = {}
    for o in range(n):
        if size > 4 and rng.random() < 0.2:  # a feature with holes
            pieces = C.merge([(p, p + rng.randint(0, 1)) for p in rng.sample(range(size - 1), 3)])
            if len(pieces) > 1:
                parts[o] = pieces
                lo[o], hi[o] = pieces[0][0], pieces[-1][1]
        elif rng.random() < 0.1:  # reads only padding
            lo[o], hi[o] = C._BIG, -C._BIG
    return C.Coverage(lo, hi, parts)


def _check(got, want):
    """``got`` reads exactly the pixel sets ``want``; its hull and pieces agree with them."""
    assert as_sets(got, len(want)) == want
    for o, px in enumerate(want):  # the hull and the pieces agree with the sets
        if px:
            assert (got.lo[o], got.hi[o]) == (min(px), max(px))
            assert (o in got.parts) == (len(px) != max(px) - min(px) + 1)
        else:
            assert got.lo[o] > got.hi[o]


@pytest.mark.parametrize("chunk", [1, 3, 1 << 16])
def test_gather_equals_the_union_of_sets(chunk, monkeypatch):
    monkeypatch.setattr(C, "CHUNK", chunk)  # slices of features must give the same answer
    rng = random.Random(chunk)
    for _ in range(200):
        n, size = rng.randint(1, 12), rng.randint(2, 30)
        sources = []
        shared = random_coverage(rng, rng.randint(1, 12), size) if rng.random() < 0.5 else None
        for _ in range(rng.randint(1, 4)):
            # taps of one index map read one coverage (gather's all-taps-at-once path)
            cov = shared if shared is not None else random_coverage(rng, rng.randint(1, 12), size)
            m = len(cov.lo)
            if m == n and rng.random() < 0.5:
                sources.append((cov, None, None))
            else:
                idx = np.array([rng.randint(-2, m + 1) for _ in range(n)], dtype=np.int64)
                mask = None if rng.random() < 0.5 else np.array([rng.random() < 0.7 for _ in range(n)])
                sources.append((cov, idx, mask))
        got = C.gather(sources, n)
        want = brute(sources, n)
        _check(got, want)


def test_sweep_is_the_union_of_every_feature():
    rng = random.Random(5)
    for _ in range(200):
        n, size = rng.randint(1, 12), rng.randint(2, 30)
        cov = random_coverage(rng, n, size)
        union = set().union(*as_sets(cov, n))
        out = C.sweep(cov, 3)
        assert as_sets(out, 3) == [union] * 3
        assert C.covers_all(out, size) == (union == set(range(size)))


@pytest.mark.parametrize("chunk", [3, 1 << 16])
def test_union_of_joined_inputs_equals_the_union_of_sets(chunk, monkeypatch):
    # a join: feature o reads feature o of every input, feature 0 of a broadcast (size-1) one
    monkeypatch.setattr(C, "CHUNK", chunk)  # long axes go through gather's slices
    rng = random.Random(7)
    for _ in range(300):
        n, size = rng.randint(1, 12), rng.randint(2, 30)
        covs = [random_coverage(rng, n if rng.random() < 0.8 else 1, size) for _ in range(rng.randint(1, 4))]
        got = C.union(covs, n)
        want = brute([(c, None if len(c.lo) == n else np.zeros(n, dtype=np.int64), None) for c in covs], n)
        _check(got, want)


def test_gather_inside_and_padded_equal_the_union_of_sets():
    # an index map whose taps are all unmasked, some into the padding (the engine's one-gather path)
    rng = random.Random(8)
    for _ in range(300):
        n, size = rng.randint(1, 12), rng.randint(2, 30)
        cov = random_coverage(rng, rng.randint(1, 12), size)
        m = len(cov.lo)
        idx = np.array([[rng.randint(-3, m + 2) for _ in range(n)] for _ in range(rng.randint(1, 4))], dtype=np.int64)
        left, right = max(0, -int(idx.min())), max(0, int(idx.max()) - (m - 1))
        got = C.gather_inside(C.padded(cov, left, right), idx + left)
        want = brute([(cov, t, None) for t in idx], n)
        _check(got, want)


def test_bit_matrices_hold_the_same_pixel_sets():
    # to_dense and from_dense translate between the two forms without losing a pixel: every
    # row is the feature's set, and the way back gives the same hulls and pieces
    rng = random.Random(7)
    for _ in range(300):
        n, size = rng.randint(1, 12), rng.randint(2, 30)
        cov = random_coverage(rng, n, size)
        bits = C.to_dense(cov, size)
        want = as_sets(cov, n)
        assert [set(np.flatnonzero(row).tolist()) for row in bits] == want
        _check(C.from_dense(bits), want)
    lo, hi = np.array([0, 3, 2]), np.array([2, 3, 1])  # the last one reads nothing
    assert C.dense_hulls(lo, hi, 4).astype(int).tolist() == [[1, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
