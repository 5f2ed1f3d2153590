"""No silent wrong number (issue 10, engine side), each case against the gradient-support oracle.

Position-dependent nodes show feature 0's own numbers and the range over features; joins name the
feature where they are misaligned and measure the branch offsets there; a conv may pad more than
its kernel; add and mul need two inputs; numbers print exactly.
"""

import networkx as nx
import numpy as np
import pytest

pytest.importorskip("torch", reason="the gradient-support oracle builds the network in torch")

import rfgraph  # noqa: E402
from oracle import SupportProbe, axis_projection  # noqa: E402
from rfgraph.render.table import describe, format_table, rows  # noqa: E402


def fpn_1d():
    """An FPN top-down add without padding (so every support is unclipped): a coarse path
    (1x1 stride 2) upsampled x2 (nearest) and added to a lateral 1x1 of the fine map."""
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(34,))
    G.add_node("c1", op="conv", kernel=3)               # n 32, j 1, rf 3
    G.add_node("c2", op="conv", kernel=1, stride=2)     # n 16, j 2, rf 3: coarse m = pixels 2m..2m+2
    G.add_node("up", op="upsample", scale=2, mode="nearest")  # n 32: fine i reads coarse i // 2
    G.add_node("lat", op="conv", kernel=1)              # n 32, rf 3, centre i + 1.5
    G.add_node("add", op="add")
    G.add_edges_from([("x", "c1"), ("c1", "c2"), ("c2", "up"), ("c1", "lat"), ("up", "add"), ("lat", "add")])
    return G


def oracle_spans(probe, node, n):
    """Per feature ``[lo, hi]`` (inclusive) of the measured support along axis 0."""
    out = []
    for i in range(n):
        px = axis_projection(probe.support(node, (i,)), 0)
        out.append((int(px[0]), int(px[-1])))
    return out


def test_position_dependent_record_shows_feature_0_and_the_range():
    G = fpn_1d()
    a = rfgraph.analyze(G)
    probe = SupportProbe(G)
    for node in ("up", "add"):
        rec = a[node]
        spans = oracle_spans(probe, node, rec.n[0])
        widths = [hi - lo + 1 for lo, hi in spans]
        # up: feature i reads coarse i // 2 = pixels 2(i//2) .. 2(i//2) + 2 (rf 3); add: the union
        # with the lateral's [i, i+2]: rf 3 at even i, [i-1, i+2] = 4 at odd i
        assert rec.rf == (widths[0],) and rec.start == ((spans[0][0] + spans[0][1] + 1) / 2,)
        assert rec.rf_extent == ((min(widths), max(widths)),)
        assert rec.padding == (-spans[0][0],)
    assert a["add"].rf_extent == ((3, 4),) and a["add"].position_dependent
    row = next(r for r in rows(a) if r["node"] == "add")
    assert row["rf"] == "3..4" and "position-dependent" in row["notes"]
    text = describe(a["add"])
    assert "rf          3 (feature 0; 3..4 over all features)" in text


def test_misaligned_join_names_the_feature_and_its_offsets():
    G = fpn_1d()
    a = rfgraph.analyze(G)
    probe = SupportProbe(G)
    rec = a["add"]
    n = rec.n[0]
    up, lat = oracle_spans(probe, "up", n), oracle_spans(probe, "lat", n)
    centre = lambda span: (span[0] + span[1] + 1) / 2  # noqa: E731
    spread = [abs(centre(u) - centre(v)) for u, v in zip(up, lat)]
    # even i: both centred at i + 1.5; odd i: up at i + 0.5, lateral at i + 1.5 -> 1 pixel, while
    # feature 0 is aligned: its offsets (0) would not show the misalignment
    assert rec.misalignment == (max(spread),) == (1,)
    assert spread[0] == 0
    [w] = rec.misaligned_at
    assert spread[w] == max(spread)
    both = [up[w], lat[w]]
    middle = (min(s[0] for s in both) + max(s[1] for s in both) + 1) / 2
    offsets = {b.node: b.offset[0] for b in rec.branches}
    assert offsets == {"up": centre(up[w]) - middle, "lat": centre(lat[w]) - middle}
    assert any(o != 0 for o in offsets.values())  # the offsets shown make it misaligned
    assert "at feature" in describe(rec)


def test_conv_padding_beyond_its_kernel_leaves_border_features_empty():
    # Conv1d(k=1, padding=1) on 6: n = 6 + 2 - 1 + 1 = 8; features 0 and 7 read only padding
    G = rfgraph.chain([("c", "conv", 1, 1, 1)], (6,))
    G.add_node("c2", op="conv", kernel=3, padding=4)  # padding 4 > kernel 3: n = 8 + 8 - 2 = 14
    G.add_edge("c", "c2")
    a = rfgraph.analyze(G)
    probe = SupportProbe(G)
    for node in ("c", "c2"):
        rec = a[node]
        lo, hi = rec.bounds(0)
        assert probe.shape(node) == rec.n
        for i in range(rec.n[0]):
            px = axis_projection(probe.support(node, (i,)), 0)
            assert (lo[i], hi[i]) == ((px[0], px[-1]) if len(px) else (-1, -1)), (node, i)
    assert a["c"].rf == (1,) and a["c"].padding == (1,) and a["c"].exact == (True,)
    assert a["c2"].bounds(0)[0].tolist()[:4] == [-1, -1, -1, 0]  # 2 + 1 features of padding only


@pytest.mark.parametrize("op", ["add", "mul"])
def test_add_and_mul_need_two_inputs(op):
    G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))
    G.add_node("j", op=op)
    G.add_edge("c", "j")
    with pytest.raises(rfgraph.GraphError, match=f"has 1 inputs .* but {op} takes at least 2"):
        rfgraph.analyze(G)
    G.nodes["j"]["op"] = "concat"  # a concat of one input is fine
    assert rfgraph.analyze(G)["j"].rf == (3,)


def test_numbers_print_exactly():
    # half of 30 s at 16 kHz cut away: feature 0 is sample 240000, centred at 240000.5, which six
    # significant digits would print as 240000
    G = rfgraph.chain([], (480001,))
    G.add_node("half", op="slice", start=240000)
    G.add_edge("input", "half")
    a = rfgraph.analyze(G)
    assert a["half"].start == (240000.5,)
    table = format_table(a)
    assert "240000.5" in table and "240000 " not in table
    assert any(line.split() == ["start", "240000.5"] for line in describe(a["half"]).splitlines())


@pytest.mark.parametrize("extra, covers", [(0, True), (1, False)])
def test_is_global_at_a_million_samples(extra, covers):
    # c0 k10 s5 on 1000010 + extra: n0 = (1000000 + extra)//5 + 1 = 200001, every sample read only
    # when extra = 0; c1 k3 s2: (200001 - 3) % 2 = 0, every c0 feature read. The global mean then
    # reads the whole input exactly when extra = 0. A features x pixels matrix here would need
    # 200001 x 1000010 bytes (186 GiB): the answer must come from O(features) coverage.
    G = rfgraph.chain([("c0", "conv", 10, 5, 0), ("c1", "conv", 3, 2, 0)], (1_000_010 + extra,))
    G.add_node("pool", op="global")
    G.add_edge("c1", "pool")
    a = rfgraph.analyze(G)
    assert a["pool"].is_global == (covers,)
    assert a["c1"].is_global == (False,)
    lo, hi = a["pool"].bounds(0)
    assert (lo[0], hi[0]) == (0, 1_000_009)  # the hull is the same: only the last pixel differs


@pytest.mark.parametrize("axis", ["0", 0.0, True, None])
def test_bounds_axis_must_be_an_integer(axis):
    rec = rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, 1)], (8,)))["c"]
    with pytest.raises(rfgraph.ParameterError, match="axis must be an integer"):
        rec.bounds(axis)
    with pytest.raises(IndexError):
        rec.bounds(1)


# -- is_global where a dilation's holes fall on padding ----------------------------------------------


def _dilated_pair(size, k2, d2, pad1, pad2):
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size,))
    G.add_node("a", op="conv", kernel=2, padding=(pad1,))
    G.add_node("b", op="conv", kernel=k2, dilation=d2, padding=(pad2,))
    G.add_edges_from([("x", "a"), ("a", "b")])
    return G


def test_holes_only_on_padding_still_read_every_pixel():
    # 2 pixels; a 2-wide conv padded right, then a 2-tap conv dilated 3 padded right by 2: its one
    # feature reads pixels {0, 1} and padding, its RF's hole (offset 2) lies past the input. It
    # was reported not global ("the pattern has holes"); gradient support reads both pixels
    G = _dilated_pair(2, 2, 3, (0, 1), (0, 2))
    a = rfgraph.analyze(G)
    assert a["b"].gaps == (((2, 2),),) and a.pixels("b", 0, 0) == ((0, 1),)
    assert axis_projection(SupportProbe(G).support("b", (0,)), 0).tolist() == [0, 1]
    assert a["b"].is_global == (True,)


@pytest.mark.parametrize("seed", range(100))
def test_is_global_of_dilated_convs_equals_gradient_support(seed):
    # small inputs, dilations and paddings up to the effective kernel, drawn so that the dilated
    # conv has one or two features (where a hole can fall past the input while every pixel is
    # read): is_global is "every feature's support is every pixel", whatever the pattern's holes
    rng = np.random.default_rng(seed)
    size, k2, d2 = int(rng.integers(2, 6)), int(rng.integers(2, 4)), int(rng.integers(2, 5))
    ke = d2 * (k2 - 1) + 1
    pad1 = tuple(int(p) for p in rng.integers(0, 2, 2))
    n_a = size + sum(pad1) - 1
    left = int(rng.integers(0, ke))
    right = min(ke - 1, max(0, ke - n_a - left) + int(rng.integers(0, 2)))
    if n_a + left + right < ke:
        left = ke - n_a - right
    G = _dilated_pair(size, k2, d2, pad1, (left, right))
    a, probe = rfgraph.analyze(G), SupportProbe(G)
    for v in ("a", "b"):
        n = a[v].n[0]
        full = all(axis_projection(probe.support(v, (i,)), 0).tolist() == list(range(size)) for i in range(n))
        assert a[v].is_global == (full,), (v, size, k2, d2, pad1, (left, right))


def test_is_global_agrees_with_the_pixels_of_a_fractional_summary():
    # a rule's exact summary with half-pixel edges: every feature's pixels (rounded outwards, as
    # the bounds are) are the whole input, so it is global; it was not ("hi 7.5 < 8")
    def wide(node, inputs):
        return tuple(x.replace(lo=0.5, hi=x.size - 0.5, jump=0) for x in inputs[0])

    with rfgraph.ops.registered():
        rfgraph.register_op("wide", wide)
        G = nx.DiGraph()
        G.add_node("x", op="input", size=(8,))
        G.add_node("w", op="wide")
        G.add_edge("x", "w")
        a = rfgraph.analyze(G)
        assert all(a.pixels("w", 0, i) == ((0, 7),) for i in range(8))
        assert a["w"].is_global == (True,)
