"""Exact per-position bounds (rfgraph/engine/bounds.py): clipping, and agreement with the summary."""

import numpy as np

import rfgraph
from classic_chain import ALEXNET


def test_bounds_clip_and_unclipped():
    # 3x3 p1 then 3x3 s2 p1 on 9 pixels: unclipped feature i covers [2i-2, 2i+2]
    G = rfgraph.chain([("c1", "conv", 3, 1, 1), ("c2", "conv", 3, 2, 1)], (9,))
    rec = rfgraph.analyze(G)["c2"]
    lo, hi = rec.bounds(0, clip=False)
    assert lo.tolist() == [-2, 0, 2, 4, 6] and hi.tolist() == [2, 4, 6, 8, 10]
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 0, 2, 4, 6] and hi.tolist() == [2, 4, 6, 8, 8]


def test_bounds_agree_with_affine_summary_on_exact_nodes():
    # on an exact node feature i spans [start + i*jump - rf/2, start + i*jump + rf/2): its first
    # pixel is the low end, its last pixel the high end minus 1
    a = rfgraph.analyze(rfgraph.chain(ALEXNET, 227))
    for layer in [row[0] for row in ALEXNET]:
        rec = a[layer]
        lo, hi = rec.bounds(1, clip=False)
        i = np.arange(rec.n[1])
        assert (lo == rec.start[1] + i * rec.jump[1] - rec.rf[1] / 2).all()
        assert (hi == rec.start[1] + i * rec.jump[1] + rec.rf[1] / 2 - 1).all()
