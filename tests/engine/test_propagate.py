"""The engine's speed-ups give the same results as the plain rules.

The engine parses each distinct parameter set once (a cache keyed by ``param_key``), takes fast
paths for identity, window and join nodes, propagates in insertion order when that is
topological, and pauses the garbage collector while it runs. These tests check that none of it
changes a result, an error or the order.
"""

import gc
import random
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import rfgraph
from rfgraph.engine.propagate import param_key
from rfgraph.ops import AxisState, Op, get_op
from rfgraph.schema import topological_order

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import scaling  # noqa: E402


def axis_tuple(x):
    """Every field of an AxisState, with types, so 2 and 2.0 differ."""
    fields = (x.n, x.jump, x.lo, x.hi, x.pattern, x.global_from, x.exact, x.size)
    return tuple((type(f).__name__, f) for f in fields)


def same_axes(xs, ys):
    return [axis_tuple(x) for x in xs] == [axis_tuple(y) for y in ys]


# -- the spec cache -------------------------------------------------------------------------------


def conv_chain(*attr_dicts, size=(16, 16)):
    G = nx.DiGraph()
    G.add_node("x", op="input", size=size)
    prev = "x"
    for i, attrs in enumerate(attr_dicts):
        G.add_node(f"c{i}", **attrs)
        G.add_edge(prev, f"c{i}")
        prev = f"c{i}"
    return G


@pytest.mark.parametrize("good, bad", [
    ({"kernel": 1}, {"kernel": True}),              # True == 1, but a bool kernel is an error
    ({"kernel": 3}, {"kernel": 3.0}),               # 3.0 == 3, but a float kernel is an error
    ({"kernel": (1, 3)}, {"kernel": (1.0, 3)}),     # inside a tuple too
    ({"kernel": 3, "padding": ((1, 1), (1, 1))}, {"kernel": 3, "padding": ((True, 1), (1, 1))}),
])
def test_cache_does_not_accept_an_equal_value_of_another_type(good, bad):
    G = conv_chain({"op": "conv", **good}, {"op": "conv", **bad})
    with pytest.raises(rfgraph.ParameterError) as err:
        rfgraph.analyze(G)
    assert err.value.node == "c1"


def test_cache_keeps_ceil_mode_bool_apart_from_int():
    G = conv_chain({"op": "maxpool", "kernel": 2, "ceil_mode": True},
                   {"op": "maxpool", "kernel": 2, "ceil_mode": 1})
    with pytest.raises(rfgraph.ParameterError, match="ceil_mode"):
        rfgraph.analyze(G)


def test_cache_does_not_leak_between_different_params():
    # same op, params differing in one entry: each node gets its own numbers
    G = conv_chain({"op": "conv", "kernel": 3, "padding": 1},
                   {"op": "conv", "kernel": 3, "padding": 1, "label": "same params, other label"},
                   {"op": "conv", "kernel": 5, "padding": 2},
                   {"op": "conv", "kernel": [3, 3], "padding": [1, 1]},
                   {"op": "conv", "kernel": (3, 1), "padding": (1, 0)},
                   {"op": "conv", "kernel": 3, "padding": 1, "dilation": 2})
    a = rfgraph.analyze(G)
    assert [a[f"c{i}"].rf for i in range(6)] == [(3, 3), (5, 5), (9, 9), (11, 11), (13, 11), (17, 15)]
    # nodes sharing a parsed spec still have their own name in it
    for v in G:
        assert a._plans[v].named(v).name == v
    assert param_key(G.nodes["c0"]) == param_key(G.nodes["c1"]) != param_key(G.nodes["c2"])


def test_shared_spec_errors_name_the_failing_node():
    # identical valid convs: the third one finds its input too small (16 -> 12 -> 8 -> 4 -> 0)
    G = conv_chain(*[{"op": "conv", "kernel": 5}] * 5)
    with pytest.raises(rfgraph.ShapeError) as err:
        rfgraph.analyze(G)
    assert err.value.node == "c3"


def test_shared_spec_global_names_its_own_node():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8, 8))
    for b in ("g1", "g2"):
        G.add_node(b, op="global")
        G.add_edge("x", b)
    a = rfgraph.analyze(G)
    assert a["g1"].global_from == ("g1", "g1") and a["g2"].global_from == ("g2", "g2")


def test_uncacheable_values_still_parse():
    # numpy ints are valid integers but not cache keys: each such node is parsed on its own
    G = conv_chain({"op": "conv", "kernel": np.int64(3), "padding": 1},
                   {"op": "conv", "kernel": 3, "padding": np.int64(1)})
    assert param_key(G.nodes["c0"]) is None
    assert rfgraph.analyze(G)["c1"].rf == (5, 5)


def test_parses_are_reused_across_analyses_only_for_the_same_op():
    # a configuration parsed in one analysis is reused by the next -- unless the name now
    # means another op: a swapped rule must be the one that runs
    G = conv_chain({"op": "conv", "kernel": 3, "padding": 1}, size=(8,))
    assert rfgraph.analyze(G)["c0"].rf == (3,)

    conv = get_op("conv")

    def wide(node, inputs):  # a conv rule that reads two more pixels on each side
        return tuple(x.replace(lo=x.lo - 2, hi=x.hi + 2) for x in conv.summary(node, inputs))

    swapped = Op("conv", wide, parse=conv.parse, accepts=conv.accepts)
    with rfgraph.ops.registered(swapped, replace=True):
        assert rfgraph.analyze(G)["c0"].rf == (7,)
    assert rfgraph.analyze(G)["c0"].rf == (3,)


def test_reused_parses_name_each_analysis_own_nodes_and_errors():
    ok = conv_chain(*[{"op": "conv", "kernel": 5}] * 2)
    rfgraph.analyze(ok)
    bad = conv_chain(*[{"op": "conv", "kernel": 5}] * 5)
    bad = nx.relabel_nodes(bad, {f"c{i}": f"layer{i}" for i in range(5)})
    with pytest.raises(rfgraph.ShapeError) as err:
        rfgraph.analyze(bad)
    assert err.value.node == "layer3"
    a = rfgraph.analyze(nx.relabel_nodes(ok, {"c0": "first", "c1": "second"}))
    assert a._plans["second"].named("second").name == "second" and a["second"].name == "second"
    for _ in range(2):  # a bad parameter is an error every time, never remembered as a parse
        with pytest.raises(rfgraph.ParameterError):
            rfgraph.analyze(conv_chain({"op": "conv", "kernel": 0}))


def test_the_parse_memo_is_bounded(monkeypatch):
    from rfgraph.engine import propagate as P

    monkeypatch.setattr(P, "_PARSED", {})
    monkeypatch.setattr(P, "_PARSED_MAX", 8)
    for k in range(1, 30):
        assert rfgraph.analyze(conv_chain({"op": "conv", "kernel": k}, size=(40,)))["c0"].rf == (k,)
        assert len(P._PARSED) <= 8


def _ceil_pool_net():
    # a ceil-mode pool takes the general path (a summary builds each axis anew), then convs
    return conv_chain({"op": "maxpool", "kernel": 3, "stride": 2, "ceil_mode": True},
                      {"op": "conv", "kernel": 3, "padding": 1}, {"op": "conv", "kernel": 1},
                      {"op": "conv", "kernel": 3, "stride": 2}, size=(20, 20))


def test_equal_axes_of_a_general_path_node_are_one_state(monkeypatch):
    from rfgraph.engine import propagate as P

    a = rfgraph.analyze(_ceil_pool_net())
    assert all(a._states[v][0] is a._states[v][1] for v in ("c0", "c1", "c3"))
    answers = [(r.as_dict(), a.bounds(r.name, 1)[0].tolist()) for r in a.records()]
    monkeypatch.setattr(P, "_shared_axes", lambda states: states)
    b = rfgraph.analyze(_ceil_pool_net())
    assert b._states["c1"][0] is not b._states["c1"][1]  # what sharing changes: only identity
    assert [(r.as_dict(), b.bounds(r.name, 1)[0].tolist()) for r in b.records()] == answers


def test_axes_equal_in_value_but_not_in_type_stay_apart():
    # 0 == 0.0: a rule giving one axis float numbers keeps its own state (the rules downstream see
    # the numbers it gave)
    def mixed(node, inputs):
        x, y = inputs[0]
        return (x, y.replace(jump=float(y.jump), lo=float(y.lo), hi=float(y.hi)))

    G = conv_chain({"op": "mixed"}, {"op": "conv", "kernel": 3}, size=(8, 8))
    with rfgraph.ops.registered(Op("mixed", mixed)):
        a = rfgraph.analyze(G)
        assert a._states["c0"][0] == a._states["c0"][1] and a._states["c0"][0] is not a._states["c0"][1]
        assert type(a._states["c0"][1].lo) is float and type(a._states["c0"][0].lo) is int


def test_param_key_ignores_only_info_attributes():
    base = {"op": "conv", "kernel": 3}
    assert param_key(base) == param_key({**base, "module": "m", "source": "s", "note": "n", "info": 1})
    assert param_key(base) != param_key({**base, "stride": 1})  # an explicit default is another key
    assert param_key(base) != param_key({**base, "op": "maxpool"})
    assert param_key({"op": "add"}) != param_key({"op": "mul"})
    assert param_key({"op": "conv", "kernel": [1, [2]]}) != param_key({"op": "conv", "kernel": [1, 2]})


# -- fast paths against the rules ------------------------------------------------------------------


def random_axis(rng, glob_ok=True):
    j = rng.choice([1, 2, 4, 0.5, 1.5])
    a = rng.choice([0, -1, -3, 0.5, -2.5])
    b = a + rng.choice([1, 2, 3, 7])
    n = rng.randint(1, 30)
    size = 32
    exact = rng.random() < 0.8
    pattern = None
    if exact and rng.random() < 0.2:
        pattern = ((a, a + 1), (b - 1, b)) if b - a > 2 else None
    glob = None
    if glob_ok and rng.random() < 0.15:
        glob, a, b, pattern, exact = "g", 0, size, None, True
    return AxisState(n, j, a, b, pattern, glob, exact, size)


def test_window_plan_matches_the_rule():
    rng = random.Random(0)
    checked = 0
    for _ in range(3000):
        naxes = rng.choice([1, 2, 3])
        attrs = {"op": rng.choice(["conv", "maxpool", "avgpool"]),
                 "kernel": tuple(rng.choice([1, 1, 2, 3, 5]) for _ in range(naxes)),
                 "stride": tuple(rng.choice([1, 1, 2, 3]) for _ in range(naxes))}
        if attrs["op"] != "avgpool" and rng.random() < 0.3:
            attrs["dilation"] = tuple(rng.choice([1, 2, 3]) for _ in range(naxes))
        ke = [d * (k - 1) + 1 for k, d in zip(attrs["kernel"], attrs.get("dilation", (1,) * naxes))]
        limit = [e - 1 if attrs["op"] == "conv" else e // 2 for e in ke]
        attrs["padding"] = tuple((rng.randint(0, m), rng.randint(0, m)) for m in limit)
        op = get_op(attrs["op"])
        spec = op.read("v", attrs, naxes)
        plan = op.fast(spec.params)
        assert plan is not None
        x = tuple(random_axis(rng) for _ in range(naxes))
        fast = plan([x])
        try:
            slow = op.summary(spec, [x])
        except rfgraph.ShapeError:
            assert fast is None  # too small: the plan leaves the error to the rule
            continue
        assert fast is not None and same_axes(fast, slow), (attrs, x)
        checked += 1
    assert checked > 2000


def test_window_plan_of_a_1x1_conv_keeps_the_state_only_when_unchanged():
    rng = random.Random(3)
    conv = get_op("conv")
    spec = conv.read("v", {"op": "conv", "kernel": 1}, 2)
    plan = conv.fast(spec.params)
    kept = 0
    for _ in range(500):
        x = (random_axis(rng), random_axis(rng))
        fast = plan([x])
        assert same_axes(fast, conv.summary(spec, [x]))
        kept += fast is x
    assert kept > 50  # integer jumps, no holes: the input's state itself


def test_window_plan_declines_same_padding_and_ceil_mode():
    for attrs in ({"op": "conv", "kernel": 3, "padding": "same"}, {"op": "maxpool", "kernel": 3, "ceil_mode": True}):
        op = get_op(attrs["op"])
        assert op.fast(op.read("v", attrs, 2).params) is None


def test_join_fast_matches_the_rule():
    rng = random.Random(1)
    taken = dependent = 0
    for _ in range(3000):
        naxes = rng.choice([1, 2])
        k = rng.randint(1, 4)
        n = rng.randint(1, 5)
        inputs = []
        for _ in range(k):
            axes = []
            for _ in range(naxes):
                x = random_axis(rng, glob_ok=rng.random() < 0.3)
                if rng.random() < 0.9:  # mostly joinable: same n and j
                    x = AxisState(n, 2, x.lo, x.hi, x.pattern, x.global_from, x.exact, x.size)
                axes.append(x)
            inputs.append(tuple(axes))
        op = get_op(rng.choice(["add", "mul", "concat"]))
        spec = op.read("v", {"op": op.name}, naxes)
        fast = op.fast(spec.params)(inputs)
        try:
            slow = op.summary(spec, inputs)
        except rfgraph.ShapeError:
            assert fast is None
            continue
        if fast is None:
            continue
        taken += 1
        axes, mis = fast.states, fast.misalignment
        assert same_axes(axes, slow.states) and mis == slow.misalignment and not slow.note
        assert [type(m) for m in mis] == [type(m) for m in slow.misalignment]
        dependent += not all(x.exact for x in axes)
    assert taken > 300
    assert dependent > 100  # position-dependent inputs (Swin's residual adds) take it too


def test_replaced_builtin_op_is_used_not_the_fast_path():
    G = conv_chain({"op": "conv", "kernel": 3, "padding": 1}, {"op": "identity"})
    calls = []
    conv = get_op("conv")

    def conv_twice(spec, inputs):
        calls.append(spec.name)
        return conv.summary(spec, [conv.summary(spec, inputs)])

    def identity_shift(spec, inputs):
        calls.append(spec.name)
        return tuple(x.replace(lo=x.lo + 1, hi=x.hi + 1) for x in inputs[0])

    with rfgraph.ops.registered(Op("conv", conv_twice, parse=conv.parse, accepts=conv.accepts, taps=conv.taps),
                                Op("identity", identity_shift), replace=True):
        a = rfgraph.analyze(G)
        assert calls == ["c0", "c1"]
        assert a["c0"].rf == (5, 5) and a["c1"].start == (1.5, 1.5)
    assert rfgraph.analyze(G)["c1"].rf == (3, 3)


# -- order -------------------------------------------------------------------------------------


def test_order_prefers_insertion_order():
    G = nx.DiGraph()
    G.add_nodes_from(["a", "b", "c", "d", "e"])
    G.add_edges_from([("c", "b"), ("a", "d"), ("e", "a")])
    rank = {v: i for i, v in enumerate(G)}
    expected = list(nx.lexicographical_topological_sort(G, key=rank.__getitem__))
    assert topological_order(G) == expected == ["c", "b", "e", "a", "d"]


def test_order_matches_networkx_on_random_dags():
    rng = random.Random(2)
    for _ in range(200):
        n = rng.randint(1, 40)
        names = list(range(n))
        rng.shuffle(names)
        G = nx.DiGraph()
        G.add_nodes_from(names)
        G.add_edges_from((u, v) for u in range(n) for v in range(u + 1, n) if rng.random() < 0.1)
        rank = {v: i for i, v in enumerate(G)}
        assert topological_order(G) == list(nx.lexicographical_topological_sort(G, key=rank.__getitem__))


def test_analysis_order_when_nodes_come_before_their_inputs():
    G = nx.DiGraph()
    G.add_node("c2", op="conv", kernel=3)
    G.add_node("x", op="input", size=(8,))
    G.add_node("c1", op="conv", kernel=3)
    G.add_edges_from([("x", "c1"), ("c1", "c2")])
    a = rfgraph.analyze(G)
    assert a.order == ["x", "c1", "c2"] and a["c2"].rf == (5,)


def test_errors_come_in_topological_order_not_insertion_order():
    # both convs are invalid; c1 comes first in the topological order though it was added last
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8,))
    G.add_node("c2", op="conv", kernel=0)
    G.add_node("c1", op="conv", kernel=-1)
    G.add_edges_from([("x", "c1"), ("c1", "c2")])
    with pytest.raises(rfgraph.ParameterError) as err:
        rfgraph.analyze(G)
    assert err.value.node == "c1"


def test_a_cycle_is_reported_before_a_node_error():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8,))
    G.add_node("bad", op="conv", kernel=True)
    G.add_node("a", op="identity")
    G.add_node("b", op="identity")
    G.add_edges_from([("x", "bad"), ("bad", "a"), ("a", "b"), ("b", "a")])
    with pytest.raises(rfgraph.CycleError):
        rfgraph.analyze(G)
    G = nx.DiGraph([("a", "b"), ("b", "a")])  # and before "no input node"
    with pytest.raises(rfgraph.CycleError):
        rfgraph.analyze(G)


def test_first_input_in_topological_order_sets_the_size():
    G = nx.DiGraph()
    G.add_node("a", op="input", size=(16,))
    G.add_node("b", op="input", size=(8,))
    G.add_node("c", op="conv", kernel=3)
    G.add_edge("b", "c")
    with pytest.raises(rfgraph.ShapeError) as err:
        rfgraph.analyze(G)
    assert err.value.node == "b" and "differs from (16,) of input 'a'" in str(err.value)
    # not in insertion order: a conv added before its input
    G = nx.DiGraph()
    G.add_node("c", op="conv", kernel=3)
    G.add_node("b", op="input", size=(8,))
    G.add_node("a", op="input", size=(8,))
    G.add_edge("b", "c")
    a = rfgraph.analyze(G)
    assert a.order == ["b", "c", "a"] and a.inputs == ["b", "a"] and a["c"].n == (6,)


def test_join_inputs_follow_the_edge_index():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8,))
    G.add_node("c3", op="conv", kernel=3, padding=1)
    G.add_node("c1", op="conv", kernel=1)
    G.add_node("cat", op="concat")
    G.add_edges_from([("x", "c3"), ("x", "c1")])
    G.add_edge("c3", "cat", index=1)
    G.add_edge("c1", "cat", index=0)
    assert [b.node for b in rfgraph.analyze(G)["cat"].branches] == ["c1", "c3"]


def test_graph_views_analyse_like_copies():
    G = scaling.inception_graph(40)
    G.add_node("orphan", op="identity")  # not reachable: dropped by the view below
    view = G.subgraph([v for v in G if v != "orphan"])
    a, b = rfgraph.analyze(view), rfgraph.analyze(nx.DiGraph(view))
    assert a.order == b.order
    assert [r.as_dict() for r in a.records()] == [r.as_dict() for r in b.records()]
    with pytest.raises(rfgraph.GraphError, match="no inputs"):
        rfgraph.analyze(G)


# -- garbage collector -------------------------------------------------------------------------


def test_gc_state_is_restored():
    assert gc.isenabled()
    rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, 1)], 8))
    assert gc.isenabled()
    with pytest.raises(rfgraph.ParameterError):
        rfgraph.analyze(rfgraph.chain([("c", "conv", 0, 1, 1)], 8))
    assert gc.isenabled()
    gc.disable()
    try:
        rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, 1)], 8))
        assert not gc.isenabled()
    finally:
        gc.enable()
    # objects the caller froze stay frozen
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, 1)], 8))
        assert gc.get_freeze_count() == frozen and gc.isenabled()
    finally:
        gc.unfreeze()


# -- the benchmark's graphs --------------------------------------------------------------------


@pytest.mark.parametrize("shape", sorted(scaling.SHAPES))
def test_benchmark_graphs(shape):
    G = scaling.SHAPES[shape](1000)
    assert G.number_of_nodes() == 1000
    a = rfgraph.analyze(G)
    recs = a.records()
    assert all(r.n == (56, 56) for r in recs[3:])  # the stem takes 224 to 56, then it stays
    assert not a.misaligned()
    # the RF grows with depth and stays a box (the inception union is its 3x3 branch's box)
    last = recs[-1]
    assert min(last.rf) > 1000 and last.contiguous == (True, True)


def test_join_fast_of_equal_global_inputs_matches_the_rule():
    # x + attention(x) in a transformer: equal global inputs of jump 0 take the fast path
    rng = random.Random(2)
    taken = 0
    for _ in range(500):
        naxes = rng.choice([1, 2])
        axes = []
        for _ in range(naxes):
            x = random_axis(rng, glob_ok=True)
            glob = x.global_from if x.global_from is not None else "g"
            axes.append(AxisState(rng.randint(1, 5), 0, x.lo, x.hi, None, glob, rng.random() < 0.8, x.size))
        k = rng.randint(2, 4)
        inputs = [tuple(AxisState(x.n, x.jump, x.lo, x.hi, x.pattern, x.global_from, x.exact, x.size) for x in axes)
                  for _ in range(k)]
        op = get_op(rng.choice(["add", "mul", "concat"]))
        spec = op.read("v", {"op": op.name}, naxes)
        fast = op.fast(spec.params)(inputs)
        slow = op.summary(spec, inputs)
        assert fast is not None
        taken += 1
        assert same_axes(fast.states, slow.states) and fast.misalignment == slow.misalignment and not slow.note
        assert [type(m) for m in fast.misalignment] == [type(m) for m in slow.misalignment]
    assert taken == 500
