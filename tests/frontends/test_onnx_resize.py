"""ONNX Resize in every (mode, coordinate_transformation_mode, nearest_mode, exclude_outside)
combination, against onnxruntime measured independently.

For each input pixel i a one-hot input e_i goes through onnxruntime; the outputs that change
(|y| > 1e-12) depend on pixel i. Each output's support is the set of pixels that changed it: its
hull along every axis must equal rfgraph's exact bounds, and rfgraph's n onnxruntime's output size.
"""

import itertools
from fractions import Fraction

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="needs the onnx package: pip install 'rfgraph[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'rfgraph[onnx]'")

from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import rfgraph  # noqa: E402
from rfgraph.frontends.onnx import from_onnx  # noqa: E402
from rfgraph.ops.gather import _scale  # noqa: E402

TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
              "half_pixel_symmetric")
NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
COMBOS = ([("nearest", t, nm, 0) for t in TRANSFORMS for nm in NEAREST]
          + [("linear", t, "round_prefer_floor", 0) for t in TRANSFORMS]
          + [("cubic", t, "round_prefer_floor", e) for t in TRANSFORMS for e in (0, 1)])
# (input spatial shape, "scales" or "sizes", values per spatial axis): up and down, 1-D and 2-D
SIZES = [
    ((5,), "sizes", (8,)), ((8,), "sizes", (5,)), ((6,), "sizes", (5,)), ((5,), "sizes", (1,)),
    ((4,), "sizes", (6,)), ((5,), "scales", (1.5,)), ((7,), "scales", (0.6,)), ((6,), "scales", (0.5,)),
    ((3,), "scales", (3.0,)), ((5,), "scales", (2.5,)), ((5,), "scales", (0.75,)),
    ((5, 7), "sizes", (8, 4)), ((4, 6), "scales", (2.0, 0.75)), ((6, 3), "scales", (0.5, 1.5)),
]


def resize_model(shape, batch, mode, ctm, nearest_mode, exclude_outside, kind, values, dtype, roi=None,
                 extra=None, spatial_axes=False):
    """One Resize node on a [batch, 1, *shape] input (opset 11 for tf_half_pixel_for_nn, which
    later opsets dropped; 19 otherwise). ``roi``: (start, end) per spatial axis; ``extra``: more
    attributes; ``spatial_axes``: sizes for the spatial axes only, with ``axes``."""
    opset = 11 if ctm == "tf_half_pixel_for_nn" else 19
    elem = T.DOUBLE if dtype == np.float64 else T.FLOAT
    full = [] if roi is None else [0, 0, *[a for a, _ in roi], 1, 1, *[b for _, b in roi]]
    inits = [numpy_helper.from_array(np.array(full, dtype=np.float32), "roi")]
    if kind == "scales":
        inits.append(numpy_helper.from_array(np.array([1, 1, *values], dtype=np.float32), "scales"))
        ins = ["x", "roi", "scales"]
    else:
        inits.append(numpy_helper.from_array(np.zeros(0, dtype=np.float32), "scales"))
        given = list(values) if spatial_axes else [batch, 1, *values]
        inits.append(numpy_helper.from_array(np.array(given, dtype=np.int64), "sizes"))
        ins = ["x", "roi", "scales", "sizes"]
    attrs = dict(mode=mode, coordinate_transformation_mode=ctm)
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    if mode == "cubic":
        attrs["exclude_outside"] = exclude_outside
    attrs.update(extra or {})
    if spatial_axes:
        attrs["axes"] = list(range(2, 2 + len(shape)))
    node = h.make_node("Resize", ins, ["y"], name="rs", **attrs)
    g = h.make_graph([node], "resize", [h.make_tensor_value_info("x", elem, [batch, 1, *shape])],
                     [h.make_tensor_value_info("y", elem, None)], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def measured_support(shape, *case, tol=1e-12, one_by_one=False, **kw):
    """Per output position, the input pixels whose one-hot input changes it (onnxruntime), and
    the output's spatial shape. float64 where onnxruntime's Resize takes it, else float32.
    ``one_by_one``: a batch of 1 run once per pixel (where the batch size changes the output)."""
    npix = int(np.prod(shape))
    onehot = np.eye(npix).reshape(npix, 1, *shape)
    for dtype in (np.float64, np.float32):
        m = resize_model(shape, 1 if one_by_one else npix, *case, dtype, **kw)
        try:
            sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - no kernel for this dtype
            continue
        x = onehot.astype(dtype)
        if one_by_one:
            y = np.concatenate([sess.run(None, {"x": x[i:i + 1]})[0][:, 0] for i in range(npix)])
        else:
            y = sess.run(None, {"x": x})[0][:, 0]
        break
    changed = np.abs(y) > tol  # [pixel, *out]
    return changed, y.shape[1:]


@pytest.mark.parametrize("shape, kind, values", SIZES, ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(map(str, c)))
def test_resize_bounds_equal_onnxruntime_support(combo, shape, kind, values):
    mode = combo[0]
    if mode == "cubic" and len(shape) == 1:  # onnxruntime's cubic takes 2-D and 4-D tensors only: H = 1
        shape, values = (1, *shape), ((1 if kind == "sizes" else 1.0), *values)
    case = (*combo, kind, values)
    check_against_onnxruntime(shape, case)


def check_against_onnxruntime(shape, case, may_read_nothing=False, tol=1e-12, one_by_one=False, **kw):
    """rfgraph's output size and exact bounds equal onnxruntime's one-hot support; an output
    that reads no pixel (a crop's extrapolated sample) has bounds (-1, -1) on some axis."""
    mode = case[0]
    changed, out_shape = measured_support(shape, *case, tol=tol, one_by_one=one_by_one, **kw)
    G = from_onnx(resize_model(shape, 1, *case, np.float32, **kw))
    assert {G.nodes[v]["op"] for v in G} <= {"input", "upsample", "resample_map"}
    rec = rfgraph.analyze(G).output
    assert tuple(rec.n) == tuple(out_shape)
    bounds = [rec.bounds(ax) for ax in range(len(shape))]
    pix = np.array(list(itertools.product(*(range(s) for s in shape))))  # [pixel, axis]
    for o in itertools.product(*(range(s) for s in out_shape)):
        readers = pix[changed[(slice(None), *o)]]
        if not len(readers):
            assert may_read_nothing, o  # every output reads some pixel
            assert any(bounds[ax][0][o[ax]] == -1 == bounds[ax][1][o[ax]] for ax in range(len(shape))), o
            continue
        for ax, (lo, hi) in enumerate(bounds):
            k = o[ax]
            assert (lo[k], hi[k]) == (readers[:, ax].min(), readers[:, ax].max()), (ax, o, readers.tolist())
            if mode == "nearest":  # one pixel: the exact index
                assert len(readers) == 1 and lo[k] == hi[k] == readers[0, ax]
    return rec


CROP_COMBOS = ([("nearest", "tf_crop_and_resize", nm, 0) for nm in ("round_prefer_floor", "ceil")]
               + [("linear", "tf_crop_and_resize", "round_prefer_floor", 0)]
               + [("cubic", "tf_crop_and_resize", "round_prefer_floor", e) for e in (0, 1)])
# (input spatial shape, "scales" or "sizes", values, roi per spatial axis): inside the input,
# reaching outside it on one or both sides, reversed, and an output of 1. onnxruntime computes the
# coordinate in float32, rfgraph exactly: rois here put no sample exactly on a pixel (where
# float32 may land just beside it). With scales the output is floor(n_in * scale), as onnxruntime
# runs it (not the spec's floor(n_in * (end - start) * scale)).
CROPS = [
    ((7,), "sizes", (5,), [(0.2, 0.8)]), ((6,), "sizes", (9,), [(0.13, 0.71)]), ((8,), "sizes", (6,), [(-0.35, 1.2)]),
    ((5,), "sizes", (7,), [(0.4, 1.5)]), ((6,), "sizes", (4,), [(-0.6, 0.35)]), ((6,), "sizes", (5,), [(0.9, 0.15)]),
    ((5,), "sizes", (1,), [(0.3, 0.6)]), ((5,), "sizes", (1,), [(1.2, 1.6)]), ((8,), "scales", (1.5,), [(0.25, 0.75)]),
    ((6,), "scales", (2.0,), [(-0.2, 1.3)]), ((5, 6), "sizes", (4, 7), [(0.1, 0.9), (-0.25, 1.1)]),
]


@pytest.mark.parametrize("shape, kind, values, roi", CROPS, ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("combo", CROP_COMBOS, ids=lambda c: "-".join(map(str, c)))
def test_tf_crop_and_resize_bounds_equal_onnxruntime_support(combo, shape, kind, values, roi):
    if combo[0] == "cubic" and len(shape) == 1:  # 2-D for onnxruntime's cubic: H = 1
        shape, values, roi = (1, *shape), ((1 if kind == "sizes" else 1.0), *values), [(0.0, 1.0), *roi]
    check_against_onnxruntime(shape, (*combo, kind, values), may_read_nothing=True, roi=roi,
                              extra={"extrapolation_value": 0.0})


AA_COMBOS = ([("linear", t, "round_prefer_floor", 0) for t in TRANSFORMS if t != "tf_half_pixel_for_nn"]
             + [("cubic", t, "round_prefer_floor", e) for t in ("half_pixel", "align_corners", "asymmetric")
                for e in (0, 1)])
# down by 1/2, 2/5, 3/7, 1/4, 0.3 and 0.6 (a filter 2-7 pixels wide each side), one up, 2-D
AA_SIZES = [((8,), "sizes", (4,)), ((10,), "sizes", (4,)), ((7,), "sizes", (3,)), ((12,), "scales", (0.25,)),
            ((10,), "scales", (0.3,)), ((5,), "scales", (0.6,)), ((4,), "sizes", (6,)),
            ((9, 6), "sizes", (4, 3))]
# asymmetric at 0.6 puts pixel 0 exactly on the filter's edge for output 1 (x = 5/3, half-width
# 5/3; cubic: Keys' zero at t = 1): weight 0 exactly, which rfgraph follows; onnxruntime's float32
# gives it 3.7e-8 and 3.4e-8. Below 1e-6 is float noise there.
AA_TIES = {("asymmetric", 0.6)}


@pytest.mark.parametrize("shape, kind, values", AA_SIZES, ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("combo", AA_COMBOS, ids=lambda c: "-".join(map(str, c)))
def test_antialias_bounds_equal_onnxruntime_support(combo, shape, kind, values):
    if combo[0] == "cubic" and len(shape) == 1:  # 2-D for onnxruntime's cubic: H = 1
        shape, values = (1, *shape), ((1 if kind == "sizes" else 1.0), *values)
    tie = (combo[1], values[-1]) in AA_TIES
    check_against_onnxruntime(shape, (*combo, kind, values), tol=1e-6 if tie else 1e-12, extra={"antialias": 1})


POLICY_COMBOS = ([("nearest", t, "round_prefer_floor", 0) for t in ("half_pixel", "asymmetric", "align_corners")]
                 + [("linear", t, "round_prefer_floor", 0) for t in ("half_pixel", "pytorch_half_pixel",
                                                                     "half_pixel_symmetric")]
                 + [("cubic", "half_pixel", "round_prefer_floor", 0)])
# (input, requested sizes, axes given): the policy's scale is min (not_larger) or max (not_smaller)
# of size / n_in over the resized dims, the output round(scale * n_in). Without axes that is every
# dim: N and C give 1, and a scale other than 1 resizes them too (onnxruntime does): rfgraph
# refuses that where N or C changes size, and takes the batch of 1 it leaves alone.
POLICY_SIZES = [((4, 6), (6, 12), True), ((5, 7), (8, 8), True), ((8, 6), (5, 3), True), ((6, 9), (4, 8), True),
                ((4, 6), (6, 12), False), ((8, 6), (5, 3), False), ((5, 4), (3, 7), False)]


@pytest.mark.parametrize("shape, values, spatial_axes", POLICY_SIZES, ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
@pytest.mark.parametrize("combo", POLICY_COMBOS, ids=lambda c: "-".join(map(str, c)))
def test_keep_aspect_ratio_policy_bounds_equal_onnxruntime_support(combo, policy, shape, values, spatial_axes):
    case = (*combo, "sizes", values)
    kw = dict(spatial_axes=spatial_axes, extra={"keep_aspect_ratio_policy": policy})
    ratios = [Fraction(v, n) for v, n in zip(values, shape)] + ([] if spatial_axes else [Fraction(1)])
    r = min(ratios) if policy == "not_larger" else max(ratios)
    if not spatial_axes and int(r + Fraction(1, 2)) != 1:  # N = C = 1 become round(r)
        with pytest.raises(rfgraph.UnsupportedOpError, match="node 'rs'.*batch or channel"):
            from_onnx(resize_model(shape, 1, *case, np.float32, **kw))
        return
    if not spatial_axes and r != 1 and combo[0] != "nearest":
        # onnxruntime's linear and cubic refuse an N or C scale other than 1, so there is no oracle
        # run here (the same index maps are checked with axes above); rfgraph maps it, at the
        # spec's output size
        rec = rfgraph.analyze(from_onnx(resize_model(shape, 1, *case, np.float32, **kw))).output
        assert tuple(rec.n) == tuple(int(r * n + Fraction(1, 2)) for n in shape)
        return
    rec = check_against_onnxruntime(shape, case, one_by_one=not spatial_axes, **kw)
    assert tuple(rec.n) == tuple(int(r * n + Fraction(1, 2)) for n in shape)  # the spec's formula


@pytest.mark.parametrize("mode, ctm, nearest_mode, expected", [
    ("nearest", "asymmetric", "floor", "upsample"), ("linear", "half_pixel", "round_prefer_floor", "upsample"),
    ("nearest", "half_pixel", "floor", "resample_map"), ("linear", "asymmetric", "round_prefer_floor", "resample_map")])
def test_pytorch_maps_keep_upsample(mode, ctm, nearest_mode, expected):
    G = from_onnx(resize_model((4, 4), 1, mode, ctm, nearest_mode, 0, "scales", (2.0, 2.0), np.float32))
    assert G.nodes["rs"]["op"] == expected


def test_empty_roi_raises_naming_the_node():
    m = resize_model((5,), 1, "linear", "half_pixel", "round_prefer_floor", 0, "scales", (0.5,), np.float32)
    [ctm] = [a for a in m.graph.node[0].attribute if a.name == "coordinate_transformation_mode"]
    ctm.s = b"tf_crop_and_resize"  # with an empty roi
    with pytest.raises(rfgraph.UnsupportedOpError, match="node 'rs'.*Resize.*roi of 0 values"):
        from_onnx(m)


def test_resample_map_label_and_parameter_errors():
    op = rfgraph.ops.get_op("resample_map")
    assert op.text({"op": "resample_map", "size": (8, 4), "mode": "cubic", "exclude_outside": True}, 2) == \
        "resample_map size 8x4 cubic exclude_outside"
    assert op.text({"op": "resample_map", "scale": 0.5, "mode": "linear", "antialias": True}, 1) == \
        "resample_map scale 0.5 linear antialias"
    assert op.text({"op": "resample_map", "size": 4, "mode": "linear", "transform": "tf_crop_and_resize",
                    "roi": [(0.25, 0.75)]}, 1) == "resample_map size 4 linear tf_crop_and_resize roi 0.25:0.75"
    with pytest.raises(rfgraph.ParameterError, match="node 'r'.*transform"):
        op.read("r", {"scale": 2, "transform": "tf_crop"}, 1)
    with pytest.raises(rfgraph.ParameterError, match="node 'r'.*roi"):
        op.read("r", {"scale": 2, "transform": "tf_crop_and_resize"}, 1)
    with pytest.raises(rfgraph.ParameterError, match="node 'r'.*roi"):
        op.read("r", {"scale": 2, "roi": [(0, 1)]}, 1)
    with pytest.raises(rfgraph.ParameterError, match="'scale' or 'size'"):
        op.read("r", {"mode": "linear"}, 1)
    # both: the output size, and the coordinates' scale (keep_aspect_ratio_policy), 4/3 exactly
    node = op.read("r", {"scale": 4 / 3, "size": 5, "mode": "nearest"}, 1)
    assert _scale(node.params, 0, 4) == Fraction(4, 3)


def gap_resize_model(batch, n, roi):
    """GlobalAveragePool, a nearest Resize to 4 and a linear crop-and-resize to 7 (``roi``), on a
    [batch, 1, n] input; the Resizes name their spatial axis only."""
    inits = [numpy_helper.from_array(np.zeros(0, dtype=np.float32), "none"),
             numpy_helper.from_array(np.array(roi, dtype=np.float32), "roi"),
             numpy_helper.from_array(np.array([4], dtype=np.int64), "s4"),
             numpy_helper.from_array(np.array([7], dtype=np.int64), "s7")]
    nodes = [h.make_node("GlobalAveragePool", ["x"], ["g"], name="gap"),
             h.make_node("Resize", ["g", "none", "none", "s4"], ["u"], name="up", mode="nearest", axes=[2],
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
             h.make_node("Resize", ["u", "roi", "none", "s7"], ["y"], name="crop", mode="linear", axes=[2],
                         coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=0.0)]
    g = h.make_graph(nodes, "gap_resize", [h.make_tensor_value_info("x", T.FLOAT, [batch, 1, n])],
                     [h.make_tensor_value_info("y", T.FLOAT, None)], inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 19)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("roi, reads_all", [((0.2, 0.9), True), ((-0.5, 1.5), False)])
def test_resizing_a_globally_pooled_map_is_exact_where_every_output_reads(roi, reads_all):
    # after a global pool (and a nearest Resize) every feature reads every pixel (jump 0): a
    # crop-and-resize is then exact when every sample lands inside the input, position-dependent
    # when some read nothing (extrapolated); each output's bounds against onnxruntime's support
    # (pixel i depends where adding 1 to it moves the output: positive weights only)
    n = 6
    run = ort.InferenceSession(gap_resize_model(n + 1, n, roi).SerializeToString(),
                               providers=["CPUExecutionProvider"]).run
    y = run(None, {"x": np.vstack([np.ones((1, n)), np.ones((n, n)) + np.eye(n)]).reshape(n + 1, 1, n)
                   .astype(np.float32)})[0][:, 0]
    changed = np.abs(y[1:] - y[0]) > 1e-6  # [pixel, output]
    a = rfgraph.analyze(from_onnx(gap_resize_model(1, n, roi)))
    crop = a.output
    assert a["up"].exact == (True,) and a["up"].jump == (0,)
    assert crop.exact == (reads_all,) and a._exact.clean(crop.name, 0) is reads_all
    lo, hi = crop.bounds(0)
    for o in range(7):
        readers = np.flatnonzero(changed[:, o])
        if len(readers):
            assert (lo[o], hi[o]) == (readers.min(), readers.max()) == (0, n - 1), o
        else:
            assert not reads_all and lo[o] == hi[o] == -1, o
    assert bool(changed.any(axis=0).all()) is reads_all
