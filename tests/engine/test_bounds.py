"""Exact per-position bounds (rfgraph/engine/bounds.py): clipping, and agreement with the summary."""

import numpy as np

import pytest

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


def _conv_counting_runs(calls):
    """The conv op with a ``runs`` that counts its calls (the same answers)."""
    import dataclasses

    conv = rfgraph.ops.get_op("conv")

    def runs(node, axis, m, n):
        calls.append((node.params["kernel"][axis], axis, m, n))
        return conv.runs(node, axis, m, n)

    return dataclasses.replace(conv, runs=runs)


def _two_convs():
    return rfgraph.chain([("c1", "conv", 3, 1, 1), ("c2", "conv", 1, 1, 0), ("c3", "conv", 3, 2, 1)], (12, 12))


def test_index_maps_are_shared_by_later_analyses_of_the_same_op_only(monkeypatch):
    from rfgraph.engine import bounds as B

    monkeypatch.setattr(B, "_RUNS", {})
    monkeypatch.setattr(B, "_MAP_KEYS", {})
    calls = []
    op = _conv_counting_runs(calls)
    with rfgraph.ops.registered(op, replace=True):
        first = [r.is_global for r in rfgraph.analyze(_two_convs()).records()]
        assert calls  # the certificate and the aliases (the 1x1 conv) asked the op
        asked = len(calls)
        again = rfgraph.analyze(_two_convs())  # a fresh graph, the same configurations
        assert [r.is_global for r in again.records()] == first and len(calls) == asked
        assert again._exact.alias("c2") == "c1"  # the 1x1 conv is still the identity map
    other = []
    with rfgraph.ops.registered(_conv_counting_runs(other), replace=True):  # another op, same name
        assert [r.is_global for r in rfgraph.analyze(_two_convs()).records()] == first
        assert len(other) == asked  # asked afresh: never served another op's answers


def _rolled():
    G = rfgraph.chain([("c1", "conv", 3, 1, 1)], (10, 10))
    G.add_node("r", op="roll", shifts=(3, -2), axes=(0, 1))
    G.add_node("c2", op="conv", kernel=3, padding=1)
    G.add_edges_from([("c1", "r"), ("r", "c2")])
    return G


def test_tapped_index_maps_are_shared_by_later_analyses_of_the_same_op_only(monkeypatch):
    # roll has taps and no closed form: its index map, built from the taps, is reused by a later
    # analysis of a fresh graph of the same configuration, never handed to another op; read only
    import dataclasses

    from rfgraph.engine import bounds as B

    monkeypatch.setattr(B, "_INDEX_MAPS", {})
    monkeypatch.setattr(B, "_INDEX_MAPS_HELD", [0])
    roll = rfgraph.ops.get_op("roll")

    def counting(calls):
        def taps(node, axis, m, n):
            calls.append(axis)
            return roll.taps(node, axis, m, n)
        return dataclasses.replace(roll, taps=taps)

    def answers():
        a = rfgraph.analyze(_rolled())
        return a, [(r.is_global, r.rf, tuple(map(tuple, a.bounds(r.name, 1)))) for r in a.records()]

    calls = []
    with rfgraph.ops.registered(counting(calls), replace=True):
        a, first = answers()
        asked = len(calls)
        assert asked
        a2, again = answers()
        assert again == first and len(calls) == asked
        idx = a2._exact._index_map("r", a2._exact._plan("r"), 0, 10, 10)[0]
        with pytest.raises(ValueError):
            idx[0, 0] = 5
    other = []
    with rfgraph.ops.registered(counting(other), replace=True):
        assert answers()[1] == first and len(other) == asked


def test_shared_tapped_index_maps_are_bounded(monkeypatch):
    from rfgraph.engine import bounds as B

    cold = [r.rf for r in rfgraph.analyze(_rolled()).records()]
    monkeypatch.setattr(B, "_INDEX_MAPS", {})
    monkeypatch.setattr(B, "_INDEX_MAPS_HELD", [0])
    monkeypatch.setattr(B, "_INDEX_MAPS_MAX", 15)  # one roll map (10 elements) at a time; the convs (30) none
    for _ in range(3):
        assert [r.rf for r in rfgraph.analyze(_rolled()).records()] == cold
        assert B._INDEX_MAPS_HELD[0] <= 15 and sum(e[2][0].size for e in B._INDEX_MAPS.values()) == B._INDEX_MAPS_HELD[0]


def test_shared_index_maps_are_bounded_and_change_no_answer(monkeypatch):
    from rfgraph.engine import bounds as B

    def answers():
        G = rfgraph.chain([(f"c{k}", "conv", k, 1, k // 2) for k in range(1, 12)], (30, 30))
        a = rfgraph.analyze(G)
        return [(r.is_global, r.rf, tuple(map(tuple, a.bounds(r.name, 1)))) for r in a.records()]

    cold = answers()
    monkeypatch.setattr(B, "_RUNS", {})
    monkeypatch.setattr(B, "_MAP_KEYS", {})
    monkeypatch.setattr(B, "_FACTS", {})
    monkeypatch.setattr(B, "_RUNS_MAX", 4)
    for _ in range(3):
        assert answers() == cold
        assert len(B._RUNS) <= 4 and len(B._MAP_KEYS) <= 4 and len(B._FACTS) <= 4


def test_the_certificates_map_facts_are_shared_by_later_analyses_of_the_same_op_only(monkeypatch):
    # whether a conv's taps are one regular run per feature is asked once per configuration,
    # in the first analysis; a later one reuses it, another op under the name asks again
    import dataclasses

    from rfgraph.engine import bounds as B

    monkeypatch.setattr(B, "_FACTS", {})
    calls = []
    original = B._runs_read_one
    monkeypatch.setattr(B, "_runs_read_one", lambda *args: calls.append(args) or original(*args))

    def answers():
        G = rfgraph.chain([("c1", "conv", 3, 1, 1), ("c2", "conv", 3, 2, 0), ("c3", "conv", 3, 1, 1)], (12, 12))
        a = rfgraph.analyze(G)
        return [(r.is_global, a._exact.clean(r.name, 0), a._exact.clean(r.name, 1)) for r in a.records()]

    first = answers()
    asked = len(calls)
    assert asked and all(c for _, c, _ in first)  # every conv certified, on the facts asked
    assert answers() == first and len(calls) == asked
    conv = rfgraph.ops.get_op("conv")
    with rfgraph.ops.registered(dataclasses.replace(conv), replace=True):
        assert answers() == first and len(calls) == 2 * asked
