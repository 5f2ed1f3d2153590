"""The no-holes certificate (:meth:`ExactBounds.clean`) against the exact per-feature computation.

Why it is sound (one axis; ``I(i) = [lo + i*jump, hi + i*jump)``, ``clip`` cuts to the input):
a node is *clean* when feature ``i`` reads exactly ``clip(I(i))``, ``clip`` cutting to the node's
window ``W`` (the whole axis for the input). For a clean input ``u`` and an exact, contiguous
summary of ``v``:

* join / pointwise: ``v``'s feature reads the union of clean hulls, ``U clip(I_k) = clip(U I_k)``
  (clipping distributes over a union) and ``U I_k`` is one interval (the summary says contiguous);
* global (``global_from`` is ``v``): every feature reads ``U_i clip(I_u(i)) = clip(U_i I_u(i))``,
  one interval by the summary, the same for every feature (jump 0); over an input that is already
  global (jump 0, every feature the same pixels) with the same hull, the same pixels again;
* taps: feature ``o`` reads the inside part ``a'..b'`` of a run ``a..b`` of consecutive input
  features, ``U clip(I_u(i))`` over ``a'..b'`` is ``[lo_u + a'j, hi_u + b'j)`` cut to ``W_u``.
  ``v``'s window is ``W_u`` cut to ``[lo_u, hi_u + (m-1)j)``, the hull of all input features (no
  input feature reads outside it, so no feature of ``v`` does): when the run reaches into the
  left padding (``a < 0 = a'``), ``[lo_u + aj, lo_u)`` lies left of the window, so cutting the
  whole run's hull to it equals cutting the inside part's; the same on the right.
* joins need one window for all inputs (each input's features cut to the same ``W``).

So a clean node is global exactly when its window is the whole axis and its two edge features
cover it. The tests below
check the certificate never changes an answer: every bound, every coverage and every is_global of
random DAGs and of real networks equal those of the uncertified computation.
"""

from __future__ import annotations

import pytest

import rfgraph
from rfgraph.engine import bounds as bounds_module
from rfgraph.engine.bounds import ExactBounds

from dag_gen import random_dag
from hand_graphs import squeeze_excited


def _answers(G):
    a = rfgraph.analyze(G)
    out = {}
    for v in a.order:
        for ax in range(len(a.input_size)):
            lo, hi = a.bounds(v, ax, clip=False)
            clo, chi = a.bounds(v, ax)
            cov = a._exact.coverage(v, ax)
            out[(v, ax)] = (lo.tolist(), hi.tolist(), clo.tolist(), chi.tolist(),
                            [cov.intervals(o) for o in range(len(lo))])
        out[v] = a.is_global(v)
    out["records"] = [r.as_dict() for r in a.records()]
    return a, out


def _compare(G, monkeypatch):
    fast, with_cert = _answers(G)
    certified = sum(fast._exact.clean(v, ax) for v in fast.order for ax in range(len(fast.input_size)))
    with monkeypatch.context() as m:  # every shortcut off: the exact per-feature computation
        m.setattr(ExactBounds, "_window_one", lambda self, *args: None)
        m.setattr(ExactBounds, "_passes_through", lambda self, *args: None)
        m.setattr(ExactBounds, "_global_by_input", lambda self, *args: False)
        m.setattr(ExactBounds, "_all_full", lambda self, *args: False)
        m.setattr(bounds_module, "DENSE_MAX", -1)  # no bit matrices: the intervals of rfgraph.coverage
        m.setattr(ExactBounds, "twin", lambda self, *args: None)
        m.setattr(ExactBounds, "_index_map",
                  lambda self, v, plan, axis, m_, n: (None, 0, 0, plan.op.taps(plan.named(v), axis, m_, n)))
        _, without = _answers(G)
    assert with_cert == without
    return certified


@pytest.mark.parametrize("seed", range(120))
def test_certificate_changes_no_answer_on_random_dags(seed, monkeypatch):
    _compare(random_dag(seed), monkeypatch)


@pytest.mark.parametrize("seed", range(40))
def test_shared_axes_change_no_answer_on_square_random_dags(seed, monkeypatch):
    _compare(random_dag(seed, square=True), monkeypatch)


def test_axes_are_shared_on_most_square_random_nodes():
    shared = total = 0
    for seed in range(20):
        a = rfgraph.analyze(random_dag(seed, square=True))
        total += len(a.order)
        shared += sum(a._exact.twin(v, 1) == 0 for v in a.order)
    assert shared > total / 5  # not a corner case (the random params differ per axis a third of the time)


def test_certificate_is_used_on_most_random_nodes(monkeypatch):
    certified = total = 0
    for seed in range(40):
        G = random_dag(seed)
        a = rfgraph.analyze(G)
        total += len(a.order) * len(a.input_size)
        certified += sum(a._exact.clean(v, ax) for v in a.order for ax in range(len(a.input_size)))
    assert certified > total / 3  # it is a fast path that matters, not a corner case


def test_a_dropped_pixel_narrows_the_window():
    # input 5, conv k2 s2: features read 0-1 and 2-3, pixel 4 is dropped; the next conv (k3 p1)
    # reaches pixel 4's place only through its padding: feature 1's hull ends at pixel 5, but it
    # reads pixels 0..3 only -- the window [0, 4) says so, and no feature of b is global
    G = rfgraph.chain([("a", "conv", 2, 2, 0), ("b", "conv", 3, 1, 1), ("c", "conv", 3, 1, 1)], (5,))
    a = rfgraph.analyze(G)
    assert a._exact.window("a", 0) == (0, 5) and a._exact.window("b", 0) == (0, 4)
    assert a.bounds("b", 0)[1].tolist() == [3, 3]
    assert a.is_global("b") == (False,) and a.is_global("c") == (False,)
    assert a["c"].rf == (10,) and a.bounds("c", 0)[1].max() == 3  # a hull over all 5 pixels; 4 unread


def test_dilated_holes_are_not_certified():
    G = rfgraph.chain([("a", "conv", 2, 2, 0), ("b", "conv", 3, 1, 0, 2)], (12,))
    a = rfgraph.analyze(G)
    assert a._exact.clean("a", 0) and not a._exact.clean("b", 0)


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "densenet121", "googlenet", "squeezenet1_0",
                                  "swin_t"])
def test_certificate_changes_no_answer_on_torchvision(name, monkeypatch):
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    with torch.device("meta"):
        model = getattr(tv.models, name)(weights=None, **({"aux_logits": False, "init_weights": False}
                                                          if name == "googlenet" else {}))
    G = rfgraph.from_torch(model.eval(), (1, 3, 96, 96))
    certified = _compare(G, monkeypatch)
    if name != "swin_t":  # shifted windows: position-dependent after the first block, never certified
        assert certified > len(G)  # most node-axes certified


@pytest.mark.parametrize("closing", [("avgpool", {"kernel": 3}), ("global", {})])
def test_a_padded_global_map_brought_back_by_a_window_is_global(closing, monkeypatch):
    # a global map, padded (its border features read nothing: not global), then a window over
    # all of it: each feature reads a feature known to read every pixel (Swin V2's padded
    # windows) -- decided without the exact coverage, and the same as the exact answer
    G = rfgraph.chain([("g", "conv", 8, 1, 0)], (8,))
    G.add_node("p", op="pad", padding=[(1, 1)])
    op, attrs = closing
    G.add_node("w", op=op, **attrs)
    G.add_edges_from([("g", "p"), ("p", "w")])
    a = rfgraph.analyze(G)
    asked = []
    monkeypatch.setattr(ExactBounds, "coverage", lambda self, *args: asked.append(args))
    assert a.is_global("g") == (True,) and a.is_global("p") == (False,) and a.is_global("w") == (True,)
    assert not asked  # no exact coverage needed
    monkeypatch.undo()
    _compare(G, monkeypatch)


@pytest.mark.parametrize("tail", [
    [("up", "upsample", {"scale": 3})],
    [("up", "upsample", {"scale": 1.5, "mode": "linear"}), ("ad", "adaptive_maxpool", {"output_size": 5})],
    [("p", "pad", {"padding": [(2, 1)]}), ("up", "upsample", {"scale": 2})],  # border features read nothing
    [("rm", "resample_map", {"size": 7, "transform": "tf_crop_and_resize", "roi": [(-0.5, 1.5)]})],
    [("rm", "resample_map", {"size": 7, "transform": "tf_crop_and_resize", "roi": [(0.2, 0.9)]})],
    [("cv", "conv", {"kernel": 3, "padding": 4})]])  # pads past the kernel: border features read nothing
def test_features_that_all_read_the_same_pixels_certify_any_index_map(tail, monkeypatch):
    # over a global gate (jump 0), an index map of any shape keeps the input's window when every
    # feature reads some input feature, and is not certified when one reads none
    G = squeeze_excited((9,), *tail)
    a = rfgraph.analyze(G)
    last = tail[-1][0]
    reads_all = bool((a.bounds(last, 0)[0] >= 0).all())
    assert a._exact.clean(last, 0) is (reads_all and "p" not in G)
    _compare(G, monkeypatch)


def _square(*nodes, size=8):
    """A chain on a ``size`` x ``size`` input: ``(name, op, attrs, inputs)`` rows (inputs
    default to the previous node)."""
    import networkx as nx

    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size, size))
    last = "x"
    for name, op, attrs, *ins in nodes:
        G.add_node(name, op=op, **attrs)
        for i, u in enumerate(ins[0] if ins else [last]):
            G.add_edge(u, name, index=i)
        last = name
    return G


def test_patch_merging_slices_meet_again_on_both_axes(monkeypatch):
    # Swin's patch merging: x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2], each
    # traced as a slice of one axis, then of the other, then concatenated: after the second
    # slice the two axes of x[0::2, 0::2] are alike again, and the concat reads the same set of
    # slices along both axes (nearest upsampling first: the answers are position-dependent)
    rows = [("up", "upsample", {"scale": 2}, ["x"])]
    tips = []
    for i, (s0, s1) in enumerate([(0, 0), (1, 0), (0, 1), (1, 1)]):
        rows.append((f"a{i}", "slice", {"start": (s0, None), "step": (2, 1)}, ["up"]))
        rows.append((f"b{i}", "slice", {"start": (None, s1), "step": (1, 2)}, [f"a{i}"]))
        tips.append(f"b{i}")
    rows.append(("cat", "concat", {}, tips))
    G = _square(*rows)
    a = rfgraph.analyze(G)
    twins = {v: a._exact.twin(v, 1) for v in a.order}
    assert twins["up"] == 0 and twins["a0"] is None and twins["b0"] == 0 and twins["b3"] == 0
    assert twins["b1"] is None and twins["cat"] == 0
    assert not all(a["cat"].exact)  # position-dependent: the shared arrays are real work
    _compare(G, monkeypatch)


@pytest.mark.parametrize("op, attrs, shared", [
    ("flip", {"axes": 0}, False), ("flip", {}, True),
    ("roll", {"axes": (0, 1), "shifts": (3, 3)}, True), ("roll", {"axes": (0, 1), "shifts": (3, 2)}, False),
    ("global", {"axes": 0, "size": None}, False), ("global", {}, True)])
def test_an_op_that_treats_the_axes_differently_is_not_shared(op, attrs, shared, monkeypatch):
    G = _square(("up", "upsample", {"scale": 2, "mode": "bilinear"}), ("o", op, attrs),
                ("c", "conv", {"kernel": 3, "padding": 1}))
    a = rfgraph.analyze(G)
    assert (a._exact.twin("o", 1) == 0) is shared and (a._exact.twin("c", 1) == 0) is shared
    _compare(G, monkeypatch)


def test_an_op_with_hooks_is_shared_only_when_it_names_its_axis_key():
    # a user op whose bounds hook reads a per-axis parameter of its own: without an axis_key the
    # engine cannot know the two axes agree, so it computes both; with one, equal keys share
    from rfgraph.ops import Op, get_op

    ident = get_op("identity")

    def widen(node, axis, state, inputs):
        lo, hi, lo_c, hi_c = inputs[0]
        w = node.params["by"][axis]
        return lo - w, hi + w, lo_c, hi_c

    def parse(r):
        return {"by": r.per_axis("by")}

    results = {}
    for key in (None, lambda node, axis: node.params["by"][axis]):
        op = Op("widen", ident.summary, parse=parse, accepts={"by"}, bounds=widen, coverage=ident.coverage,
                axis_key=key)
        for by in ((1, 1), (1, 2)):
            G = _square(("up", "upsample", {"scale": 2}), ("w", "widen", {"by": by}))
            a = rfgraph.analyze(G, extra_ops=[op])
            results[(key is None, by)] = a._exact.twin("w", 1)
            assert (a.bounds("w", 1, clip=False)[0] - a.bounds("up", 1, clip=False)[0] == -by[1]).all()
    assert results == {(True, (1, 1)): None, (True, (1, 2)): None, (False, (1, 1)): 0, (False, (1, 2)): None}


def test_a_join_of_copies_of_a_position_dependent_node(monkeypatch):
    # x + f(x) where f is pointwise and x position-dependent (attention's windows, then the
    # residual around the MLP): the join shares x's answers, and its record lists each branch
    # with x's feature 0 and no offset -- the same record as the computation without aliases
    G = _square(("c", "conv", {"kernel": 3}, ["x"]), ("up", "upsample", {"scale": 3}, ["c"]),
                ("act", "identity", {}, ["up"]), ("sum", "add", {}, ["up", "act"]), size=5)
    a = rfgraph.analyze(G)
    rec = a["sum"]
    assert a._exact.alias("sum") == "up" and not any(rec.exact)
    assert [(b.node, b.rf, b.start, b.offset) for b in rec.branches] == [
        ("up", a["up"].rf, a["up"].start, (0, 0)), ("act", a["up"].rf, a["up"].start, (0, 0))]
    assert rec.misalignment == (0, 0) and rec.rf_range == tuple((r, r) for r in a["up"].rf)
    _compare(G, monkeypatch)


@pytest.mark.parametrize("size, dense, tap_by_tap", [(64, True, False), (64, True, True), (8192, False, False)])
def test_shifted_windows_are_decided_on_bit_matrices_only_on_small_axes(size, dense, tap_by_tap, monkeypatch):
    # Swin's shifted windows in 1-D: patches, windows, the windows shifted by half (the
    # wrapped window reads both ends: holes), then windows of windows. The holes are real, so
    # is_global needs each feature's pixel set: bit matrices where features x pixels is small,
    # the intervals of rfgraph.coverage on longer axes (memory O(features + pixels)); the same
    # answers either way, and the same as every shortcut off
    import networkx as nx

    n, w = size // 4, size // 16
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size,))
    rows = [("patch", "conv", {"kernel": 4, "stride": 4}), ("roll", "roll", {"shifts": w // 2, "axes": 0}),
            ("win", "avgpool", {"kernel": w, "stride": w}), ("back", "upsample", {"scale": w}),
            ("unroll", "roll", {"shifts": -(w // 2), "axes": 0}),
            ("win2", "avgpool", {"kernel": n // 2, "stride": n // 2}), ("all", "avgpool", {"kernel": 2})]
    last = "x"
    for name, op, attrs in rows:
        G.add_node(name, op=op, **attrs)
        G.add_edge(last, name)
        last = name
    if tap_by_tap:  # windows too big for one gather over all taps
        monkeypatch.setattr(bounds_module, "_DENSE_GATHER_MAX", 0)
    a = rfgraph.analyze(G)
    assert a._exact.coverage("unroll", 0).parts  # holes: the wrapped windows
    assert a.is_global("win2") == (False,) and a.is_global("all") == (True,)
    assert (a._exact.dense("all", 0) is not False) is dense
    _compare(G, monkeypatch)


def test_a_walk_stops_at_a_node_known_global(monkeypatch):
    # Swin V2 pads a global map and brings it back with a window, block after block: the window's
    # pixel sets follow from the padded map's, and those from the global map, which needs no
    # input -- the walk goes no further back than it
    import networkx as nx

    G = nx.DiGraph()
    G.add_node("x", op="input", size=(64,))
    rows = [("patch", "conv", {"kernel": 4, "stride": 4}), ("roll", "roll", {"shifts": 2, "axes": 0}),
            ("win", "avgpool", {"kernel": 4, "stride": 4}), ("back", "upsample", {"scale": 4}),
            ("unroll", "roll", {"shifts": -2, "axes": 0}), ("all", "avgpool", {"kernel": 16}),
            ("up", "upsample", {"scale": 4}), ("pad", "pad", {"padding": [(1, 1)]}),
            ("w3", "avgpool", {"kernel": 3, "stride": 3})]
    last = "x"
    for name, op, attrs in rows:
        G.add_node(name, op=op, **attrs)
        G.add_edge(last, name)
        last = name
    a = rfgraph.analyze(G)
    for v in a.order[:-2]:
        a.is_global(v)
    assert a.is_global("all") == (True,) and not a._exact.clean("all", 0)
    a._exact._dense.clear()  # as if the earlier answers had been found another way
    assert a.is_global("pad") == (False,) and a.is_global("w3") == (True,)
    assert {v for v, _ in a._exact._dense} == {"up", "pad", "w3"}  # up: known global, a leaf
    _compare(G, monkeypatch)
