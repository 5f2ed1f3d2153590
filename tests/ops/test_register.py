"""Adding an op is one ``rfgraph.register_op`` call (rfgraph/ops/base.py); it then works everywhere.

The ``shift`` op here moves every feature ``by`` pixels (zero-filled, the size kept): output o is
input o - by. That is exactly a constant ``pad`` of ``(by, -by)`` (pad by before, crop by after),
which the checks below use as the independent expectation, with the bounds also derived by numpy.
"""

import json

import networkx as nx
import numpy as np
import pytest

import rfgraph
from rfgraph.render.json import to_json


def shift_summary(node, inputs):
    # feature 0 now shows input feature -by: the hull moves by -by jumps; n, jump, exactness stay
    out = []
    for by, x in zip(node["by"], inputs[0]):
        d = -by * x.jump
        pattern = None if x.pattern is None else tuple((lo + d, hi + d) for lo, hi in x.pattern)
        out.append(x.replace(lo=x.lo + d, hi=x.hi + d, pattern=pattern))
    return tuple(out)


def shift_taps(node, axis, n_in, n_out):
    # output o reads input o - by; an index outside 0..n_in-1 reads zero padding
    return [(np.arange(n_out, dtype=np.int64) - node["by"][axis], None)]


def register_shift():
    """The one call that teaches rfgraph the shift op."""
    return rfgraph.register_op(
        "shift", shift_summary, parse=lambda r: {"by": r.per_axis("by", 0, minimum=None)}, accepts={"by"},
        taps=shift_taps, label_params=(("by", "by"),), defaults={"by": 0},
        doc="move every feature by pixels (zero-filled)")


def shift_op():
    return rfgraph.Op("shift", shift_summary, parse=lambda r: {"by": r.per_axis("by", 0, minimum=None)},
                      accepts={"by"}, taps=shift_taps, label_params=(("by", "by"),), defaults={"by": 0})


def conv_then(op_attrs, size=(8, 6)):
    # conv k3 s1 p1 on 8x6: n 8x6, jump 1, rf 3, start 0.5; feature i reads i-1 .. i+1
    G = rfgraph.chain([("c", "conv", 3, 1, 1)], size)
    G.add_node("s", **op_attrs)
    G.add_edge("c", "s")
    return G


BY = (1, -2)
# shift by (1, -2) == pad ((1, -1), (-2, 2)): n 8x6, jump 1, rf 3, start (0.5 - 1, 0.5 + 2) = (-0.5, 2.5)
AS_PAD = {"op": "pad", "padding": ((1, -1), (-2, 2))}


def numpy_bounds(by, n, clip):
    """Output o is conv feature i = o - by, which reads pixels i-1 .. i+1 (clipped to 0..n-1);
    an i outside the conv's n features is zero padding: it sees nothing (-1, -1) when clipped."""
    i = np.arange(n) - by
    lo, hi = i - 1, i + 1
    if clip:
        inside = (i >= 0) & (i < n)
        lo = np.where(inside, np.maximum(lo, 0), -1)
        hi = np.where(inside, np.minimum(hi, n - 1), -1)
    return lo.tolist(), hi.tolist()


def test_shift_is_one_register_op_call_and_works_everywhere():
    with rfgraph.ops.registered():
        op = register_shift()
        assert isinstance(op, rfgraph.Op) and "shift" in rfgraph.registered_ops()
        a = rfgraph.analyze(conv_then({"op": "shift", "by": BY}))
        dot = rfgraph.to_dot(a)
    expected = rfgraph.analyze(conv_then(AS_PAD))

    # analyze: the summary, against the pad that is the same map
    rec, pad = a["s"], expected["s"]
    assert (rec.n, rec.jump, rec.rf, rec.start) == ((8, 6), (1, 1), (3, 3), (-0.5, 2.5))
    assert (rec.n, rec.jump, rec.rf, rec.start, rec.padding, rec.exact, rec.gaps) == (
        pad.n, pad.jump, pad.rf, pad.start, pad.padding, pad.exact, pad.gaps)
    assert rec.op == "shift" and rec.is_global == (False, False)

    # bounds(): exact per position, against numpy and the pad, clipped and not
    for axis, (by, n) in enumerate(zip(BY, (8, 6))):
        for clip in (True, False):
            lo, hi = rec.bounds(axis, clip=clip)
            assert (lo.tolist(), hi.tolist()) == numpy_bounds(by, n, clip), (axis, clip)
            assert [b.tolist() for b in pad.bounds(axis, clip=clip)] == [lo.tolist(), hi.tolist()]
    # e.g. H, by 1: output 0 reads conv feature -1 (padding): nothing; output 1 reads pixels 0..1
    assert rec.bounds(0)[0].tolist()[:2] == [-1, 0] and rec.bounds(0)[1].tolist()[:2] == [-1, 1]

    # the table: one row, its numbers per axis (after the scope closed: the records are values)
    line = next(ln for ln in rfgraph.format_table(a, a.order).splitlines() if ln.split()[0] == "s")
    assert line.split()[:6] == ["s", "shift", "8x6", "1", "3", "-0.5x2.5"]

    # JSON: the record as a dict, numbers and op name included
    node = next(n for n in json.loads(to_json(a))["nodes"] if n["name"] == "s")
    assert node["op"] == "shift" and node["rf"] == [3, 3] and node["start"] == [-0.5, 2.5]
    assert node["n"] == [8, 6] and node["exact"] == [True, True]

    # the DOT diagram (drawn in the scope): the label shows the op with its parameters and the RF
    label = next(ln for ln in dot.splitlines() if ln.strip().startswith('"s" [label='))
    assert "s\\nshift by 1x-2\\nn 8x6  jump 1\\nrf 3  start -0.5x2.5" in label
    assert '"c" -> "s";' in dot


@pytest.mark.parametrize("how", ["after the scope", "extra_ops"])
def test_diagram_labels_the_op_of_the_analysis_not_of_the_registry_in_force(how):
    G = conv_then({"op": "shift", "by": BY})
    if how == "extra_ops":
        a = rfgraph.analyze(G, extra_ops=[shift_op()])
    else:
        with rfgraph.ops.registered():
            register_shift()
            a = rfgraph.analyze(G)
    assert "\\nshift by 1x-2\\n" in rfgraph.to_dot(a)


def test_shift_label_leaves_out_the_default():
    with rfgraph.ops.registered():
        register_shift()
        assert rfgraph.ops.get_op("shift").text({"op": "shift", "by": 2}, 1) == "shift by 2"
        assert rfgraph.ops.get_op("shift").text({"op": "shift", "by": 0}, 1) == "shift"


def test_registering_a_name_twice_raises_and_the_scope_leaks_nothing():
    before = rfgraph.registered_ops()
    with rfgraph.ops.registered():
        register_shift()
        with pytest.raises(ValueError, match="'shift' is already registered"):
            register_shift()
        with pytest.raises(ValueError, match="'conv' is already registered"):
            rfgraph.register_op("conv", shift_summary)  # a built-in is no exception
        # a bad parameter is checked by the op's own parse, with our error
        with pytest.raises(rfgraph.ParameterError, match="by must be an integer"):
            rfgraph.analyze(conv_then({"op": "shift", "by": 0.5}))
    assert rfgraph.registered_ops() == before and "shift" not in before
    with pytest.raises(rfgraph.UnsupportedOpError, match="register_op"):
        rfgraph.analyze(conv_then({"op": "shift", "by": BY}))


def test_shift_for_one_analysis_only():
    G = conv_then({"op": "shift", "by": BY})
    rec = rfgraph.analyze(G, extra_ops=[shift_op()])["s"]
    assert rec.start == (-0.5, 2.5)
    assert rec.bounds(1)[0].tolist() == numpy_bounds(-2, 6, True)[0]
    assert "shift" not in rfgraph.registered_ops()
    with pytest.raises(ValueError, match="already registered"):
        rfgraph.analyze(conv_then({"op": "conv", "kernel": 1}), extra_ops=[rfgraph.Op("conv", shift_summary)])


def test_user_op_registration():
    def shift_right(node, inputs):
        return tuple(x.replace(lo=x.lo - x.jump, hi=x.hi - x.jump) for x in inputs[0])

    with rfgraph.ops.registered():
        rfgraph.register_op("test_shift", shift_right)
        with pytest.raises(ValueError):
            rfgraph.register_op("test_shift", shift_right)
        G = rfgraph.chain([], (8,))
        G.add_node("s", op="test_shift")
        G.add_edge("input", "s")
        rec = rfgraph.analyze(G)["s"]
    assert "test_shift" not in rfgraph.registered_ops()  # the scope did not leak
    assert rec.start == (-0.5,)
    lo, hi = rec.bounds(0)
    # feature 0 reads pixel -1, which is padding: it sees nothing (-1, -1); feature 1 sees pixel 0
    assert lo.tolist()[:2] == [-1, 0] and hi.tolist()[:2] == [-1, 0]
    # the same op for one analysis only
    assert rfgraph.analyze(G, extra_ops=[rfgraph.Op("test_shift", shift_right)])["s"].start == (-0.5,)
    with pytest.raises(rfgraph.UnsupportedOpError, match="register_op"):
        rfgraph.analyze(G)


def test_user_op_with_two_inputs_and_no_taps():
    # a user "pick the first" op of two inputs of different sizes: its bounds follow its summary
    def first(node, inputs):
        return inputs[0]

    pick = rfgraph.Op("test_first_of_two", first, arity=(2, 2))
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8,))
    G.add_node("big", op="conv", kernel=3, padding=1)
    G.add_node("small", op="conv", kernel=3, stride=2)
    G.add_node("f", op="test_first_of_two")
    G.add_edges_from([("x", "big"), ("x", "small"), ("big", "f"), ("small", "f")])
    lo, hi = rfgraph.analyze(G, extra_ops=[pick])["f"].bounds(0)
    assert lo.tolist() == [0, 0, 1, 2, 3, 4, 5, 6] and hi.tolist() == [1, 2, 3, 4, 5, 6, 7, 7]
