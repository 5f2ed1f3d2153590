"""An op's ``runs`` (its index map in closed form) against its ``taps``: the same input features,
feature by feature, wherever ``runs`` answers; None where the map is not a run of consecutive
features (dilated kernels, reflect/replicate/circular padding)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rfgraph.ops import get_op


def _expand(runs, n_out):
    offset, stride, length = runs
    o = np.arange(n_out, dtype=np.int64) * stride + offset
    return [(o + t, None) for t in range(length)]


def _same(op, node, n_in, n_out):
    taps = op.taps(node, 0, n_in, n_out)
    runs = op.runs(node, 0, n_in, n_out)
    if runs is None:
        return None
    expanded = _expand(runs, n_out)
    assert len(expanded) == len(taps)
    for (a, ma), (b, mb) in zip(expanded, taps):
        assert ma is None and (mb is None or mb.all())  # a mask that keeps every tap is none
        assert a.tolist() == b.tolist()
    return True


@pytest.mark.parametrize("seed", range(60))
def test_window_runs_equal_their_taps(seed):
    rng = random.Random(seed)
    name = rng.choice(["conv", "maxpool", "avgpool"])
    k, s = rng.randint(1, 5), rng.randint(1, 4)
    d = 1 if name == "avgpool" else rng.choice([1, 1, 2, 3])
    ke = d * (k - 1) + 1
    pad = rng.randint(0, 2 * ke) if name == "conv" else rng.randint(0, ke // 2)
    attrs = {"op": name, "kernel": k, "stride": s, "padding": [(pad, rng.randint(0, pad))]}
    if name != "avgpool":
        attrs["dilation"] = d
    op = get_op(name)
    node = op.read("w", attrs, 1)
    n_in = rng.randint(ke, 40)
    n_out = (n_in + sum(node.params["padding"][0]) - ke) // s + 1
    found = _same(op, node, n_in, n_out)
    assert found is (None if k > 1 and d > 1 else True)


@pytest.mark.parametrize("seed", range(40))
def test_slice_and_pad_runs_equal_their_taps(seed):
    rng = random.Random(seed)
    n_in = rng.randint(1, 30)
    if seed % 2:
        op = get_op("slice")
        start, stop, step = rng.randint(-n_in, n_in - 1), rng.choice([None, n_in, rng.randint(1, n_in)]), rng.randint(1, 4)
        node = op.read("s", {"op": "slice", "start": start, "stop": stop, "step": step}, 1)
        n_out = len(range(*slice(start, stop, step).indices(n_in)))
        if n_out < 1:
            return
        assert _same(op, node, n_in, n_out)
    else:
        op = get_op("pad")
        mode = rng.choice(["constant", "constant", "reflect", "replicate", "circular"])
        before, after = rng.randint(-min(n_in - 1, 3), 3), rng.randint(0, 3)
        if mode == "reflect" and max(before, after) >= n_in:
            return
        node = op.read("p", {"op": "pad", "padding": [(before, after)], "mode": mode}, 1)
        found = _same(op, node, n_in, n_in + before + after)
        assert found is (True if mode == "constant" else None)


@pytest.mark.parametrize("n_in,n_out", [(7, 7), (14, 7), (12, 4), (7, 1), (7, 3), (10, 4), (5, 7)])
def test_adaptive_runs_where_the_size_divides(n_in, n_out):
    op = get_op("adaptive_avgpool")
    node = op.read("a", {"op": "adaptive_avgpool", "output_size": n_out}, 1)
    assert _same(op, node, n_in, n_out) is (True if n_in % n_out == 0 else None)
