"""The ONNX front-end on hand-built files (onnx.helper), one op or attribute each.

Every case is an ONNX graph and its torch twin. onnxruntime runs the ONNX file to give the true
output size; gradient support on the twin (positive weights, float64, see rfgraph.tools.verify)
gives each output feature's true input range, which rfgraph's exact bounds must equal.
"""

import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="needs the onnx package: pip install 'rfgraph[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: pip install 'rfgraph[onnx]'")
torch = pytest.importorskip("torch", reason="needs torch: checked against gradient support in PyTorch")

import torch.nn.functional as F  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import rfgraph  # noqa: E402
from rfgraph.cli import main  # noqa: E402
from rfgraph.frontends.onnx import annotate_onnx, from_onnx  # noqa: E402
from rfgraph.tools.verify import hull, support  # noqa: E402


def const(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def weight(name, shape):
    return numpy_helper.from_array(np.ones(shape, dtype=np.float32), name)


def model(nodes, shape, inits=(), opset=13, out="y"):
    g = h.make_graph(nodes, "case", [h.make_tensor_value_info("x", T.FLOAT, shape)],
                     [h.make_tensor_value_info(out, T.FLOAT, None)], list(inits))
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def ones(*shape):
    return torch.ones(shape, dtype=torch.float64)


def conv(x, k, cout=1, **kw):
    k = (k, k) if isinstance(k, int) else k
    return F.conv2d(x, ones(cout, x.shape[1], *k), **kw)


class Twin(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def run_onnx(m, shape):
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": np.random.rand(*shape).astype(np.float32)})[0]


def check(m, shape, twin, ops=(), twin_shape=None):
    """rfgraph on the ONNX file == onnxruntime's output size == the twin's gradient support
    (the twin reads ``twin_shape``, NCHW, when the ONNX input is laid out otherwise)."""
    G = from_onnx(m)
    present = {G.nodes[v]["op"] for v in G}
    assert set(ops) <= present, present
    a = rfgraph.analyze(G)
    [out] = G.graph["outputs"]
    rec = a[out]
    y = run_onnx(m, shape)
    shape = twin_shape or shape
    if y.ndim == len(shape):
        assert tuple(rec.n) == tuple(y.shape[2:]) or all(rec.is_global), (rec.n, y.shape)
    with torch.no_grad():
        yt = twin(torch.rand(shape, dtype=torch.float64) + 0.5)
    assert tuple(yt.shape) == tuple(y.shape), "the torch twin is not the same network"
    if yt.dim() != len(shape):
        assert all(rec.is_global)
        return rec
    grids = [sorted({0, n // 2, n - 1}) for n in rec.n]
    positions = [tuple(p) for p in np.array(np.meshgrid(*grids, indexing="ij")).reshape(len(grids), -1).T]
    masks = support(Twin(twin), None, shape[1:], positions)
    bounds = [rec.bounds(ax) for ax in range(rec.naxes)]
    for pos, mask in zip(positions, masks):
        hl = hull(mask)
        want = [(bounds[ax][0][pos[ax]], bounds[ax][1][pos[ax]]) for ax in range(rec.naxes)]
        if (-1, -1) in want:  # reads only padding along one axis: no input pixel at all
            want = [(-1, -1)] * rec.naxes
        for ax in range(rec.naxes):
            assert want[ax] == hl[ax][:2], (pos, ax)
        if all(rec.is_global):
            assert mask.all(), pos
    return rec


W = weight("w", (1, 1, 3, 3))


def _same(n, k, s, d=1):
    """TF SAME: total = max((ceil(n/s)-1)*s + ke - n, 0), the odd pixel after (UPPER)."""
    ke = d * (k - 1) + 1
    total = max((math.ceil(n / s) - 1) * s + ke - n, 0)
    return total // 2, total - total // 2


CASES = {
    "conv_pads_strides_dilations": (
        [h.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 2, 1], strides=[2, 1], dilations=[1, 2])],
        (1, 1, 15, 14), [W], lambda x: conv(F.pad(x, (0, 1, 1, 2)), 3, stride=(2, 1), dilation=(1, 2)), {"conv"}),
    # 15 with k3 s2: total = 7*2 + 3 - 15 = 2 -> (1, 1); 14: total = 6*2 + 3 - 14 = 1 -> UPPER (0, 1)
    "conv_same_upper": (
        [h.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])],
        (1, 1, 15, 14), [W], lambda x: conv(F.pad(x, (0, 1, 1, 1)), 3, stride=2), {"conv"}),
    "conv_same_lower": (
        [h.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_LOWER", strides=[2, 2])],
        (1, 1, 15, 14), [W], lambda x: conv(F.pad(x, (1, 0, 1, 1)), 3, stride=2), {"conv"}),
    "conv_valid_grouped_kernel_from_weight": (
        [h.make_node("Conv", ["x", "wg"], ["y"], auto_pad="VALID", group=2)],
        (1, 2, 9, 9), [weight("wg", (2, 1, 1, 5))], lambda x: F.conv2d(x, ones(2, 1, 1, 5), groups=2), {"conv"}),
    "conv_1d": (
        [h.make_node("Conv", ["x", "w1"], ["y"], pads=[2, 2], strides=[3])],
        (1, 1, 20), [weight("w1", (1, 1, 5))], lambda x: F.conv1d(x, ones(1, 1, 5), padding=2, stride=3), {"conv"}),
    "conv_transpose_pads_output_padding": (
        [h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 0])],
        (1, 1, 6, 7), [W],
        lambda x: F.conv_transpose2d(x, ones(1, 1, 3, 3), stride=2, padding=1, output_padding=(1, 0)),
        {"convtranspose"}),
    # asymmetric pads (0 before, 2 after): the full output (2*5+3 = 13) cropped by 2 at the end
    "conv_transpose_asymmetric": (
        [h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[0, 0, 2, 2])],
        (1, 1, 6, 6), [W], lambda x: F.conv_transpose2d(x, ones(1, 1, 3, 3), stride=2)[..., :11, :11],
        {"convtranspose"}),
    # SAME_UPPER: output n*s = 12; full = 2*5 + 3 = 13, total 1: (0 before, 1 after)
    "conv_transpose_same_upper": (
        [h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], auto_pad="SAME_UPPER")],
        (1, 1, 6, 6), [W], lambda x: F.conv_transpose2d(x, ones(1, 1, 3, 3), stride=2)[..., :12, :12],
        {"convtranspose"}),
    # output_shape (pads ignored): total = 13 - want; NOTSET puts the odd pixel first, SAME_UPPER last
    "conv_transpose_output_shape": (
        [h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], pads=[3, 3, 3, 3], output_shape=[12, 11])],
        (1, 1, 6, 6), [W], lambda x: F.conv_transpose2d(x, ones(1, 1, 3, 3), stride=2)[..., 1:13, 1:12],
        {"convtranspose"}),
    "conv_transpose_output_shape_same_upper": (
        [h.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], output_shape=[12, 11], auto_pad="SAME_UPPER")],
        (1, 1, 6, 6), [W], lambda x: F.conv_transpose2d(x, ones(1, 1, 3, 3), stride=2)[..., 0:12, 1:12],
        {"convtranspose"}),
    "maxpool_ceil_pads": (
        [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)],
        (1, 1, 14, 13), [], lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), {"maxpool"}),
    "maxpool_dilated": (
        [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 3], strides=[1, 2], dilations=[2, 2])],
        (1, 1, 11, 12), [], lambda x: conv(x, (2, 3), stride=(1, 2), dilation=2), {"maxpool"}),
    "maxpool_same_upper": (
        [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")],
        (1, 1, 14, 13), [], lambda x: conv(F.pad(x, (1, 1, 0, 1)), 3, stride=2), {"maxpool"}),
    "averagepool_stride_default_1": (
        [h.make_node("AveragePool", ["x"], ["y"], kernel_shape=[2, 2])],
        (1, 1, 9, 9), [], lambda x: F.avg_pool2d(x, 2, 1), {"avgpool"}),
    "pad_constant_opset11_negative_crops": (
        [h.make_node("Pad", ["x", "pads"], ["p"]), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 12, 12), [W, const("pads", [0, 0, 2, -1, 0, 0, -1, 3])],
        lambda x: conv(F.pad(x, (-1, 3, 2, -1)), 3), {"pad"}),
    "pad_reflect": (
        [h.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 10, 10), [W, const("pads", [0, 0, 2, 2, 0, 0, 2, 2])],
        lambda x: conv(F.pad(x, (2, 2, 2, 2), mode="reflect"), 3), {"pad"}),
    "pad_edge": (
        [h.make_node("Pad", ["x", "pads"], ["p"], mode="edge"), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 10, 10), [W, const("pads", [0, 0, 1, 0, 0, 0, 3, 2])],
        lambda x: conv(F.pad(x, (0, 2, 1, 3), mode="replicate"), 3), {"pad"}),
    "pad_wrap_axes_opset18": (
        [h.make_node("Pad", ["x", "pads", "", "axes"], ["p"], mode="wrap"), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 9, 9), [W, const("pads", [2, 1]), const("axes", [3])],
        lambda x: conv(F.pad(x, (2, 1, 0, 0), mode="circular"), 3), {"pad"}),
    "pad_opset2_attribute": (
        [h.make_node("Pad", ["x"], ["p"], pads=[0, 0, 1, 1, 0, 0, 1, 1]), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 8, 8), [W], lambda x: conv(F.pad(x, (1, 1, 1, 1)), 3), {"pad"}),
    # the pads computed from the input's shape: Shape -> Gather -> Sub -> Concat, folded
    "pad_from_folded_shape_subgraph": (
        [h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "i3"], ["w3"], axis=0),
         h.make_node("Sub", ["w3", "nine"], ["extra"]),
         h.make_node("Concat", ["z2", "extra", "z5"], ["pads"], axis=0),
         h.make_node("Pad", ["x", "pads"], ["p"]), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 12, 12), [W, const("i3", [3]), const("nine", [9]), const("z2", [0, 0]), const("z5", [0] * 5)],
        lambda x: conv(F.pad(x, (0, 0, 3, 0)), 3), {"pad"}),
    # torchvision Swin's window padding, (4 - W % 4) % 4 after the width, as its exporter writes it:
    # Mod on the shape, the pads as (begin, end) rows per dim, transposed and flattened
    "pad_to_a_window_multiple_mod_transpose": (
        [h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "i3"], ["w3"], axis=0),
         h.make_node("Mod", ["w3", "four"], ["r"]), h.make_node("Sub", ["four", "r"], ["d"]),
         h.make_node("Mod", ["d", "four"], ["extra"]),
         h.make_node("Concat", ["z7", "extra"], ["flat"], axis=0),
         h.make_node("Reshape", ["flat", "rows"], ["pairs"]), h.make_node("Transpose", ["pairs"], ["cols"], perm=[1, 0]),
         h.make_node("Reshape", ["cols", "minus1"], ["pads"]),
         h.make_node("Pad", ["x", "pads"], ["p"]), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 10, 9), [W, const("i3", [3]), const("four", [4]), const("z7", [0] * 7), const("rows", [4, 2]),
                        const("minus1", [-1])],
        lambda x: conv(F.pad(x, (0, 3)), 3), {"pad"}),
    # pads written into zeros by ScatterND, the value chosen by Where(Equal(...)) and Expanded:
    # how torch exports a mask or pads built by assignment; every step folded
    "pad_from_scatter_where_expand": (
        [h.make_node("Shape", ["x"], ["s"]), h.make_node("Gather", ["s", "i3"], ["w3"], axis=0),
         h.make_node("Mod", ["w3", "two"], ["r"]), h.make_node("Equal", ["r", "one"], ["odd"]),
         h.make_node("Not", ["odd"], ["even"]), h.make_node("Where", ["even", "zero", "one"], ["e"]),
         h.make_node("Expand", ["e", "shape1"], ["upd"]),
         h.make_node("ConstantOfShape", ["eight"], ["zeros"], value=h.make_tensor("v", T.INT64, [1], [0])),
         h.make_node("ScatterND", ["zeros", "at7", "upd"], ["pads"]),
         h.make_node("Pad", ["x", "pads"], ["p"]), h.make_node("Conv", ["p", "w"], ["y"])],
        (1, 1, 10, 9), [W, const("i3", [3]), const("two", 2), const("one", 1), const("zero", 0), const("shape1", [1]),
                        const("eight", [8]), const("at7", [[7]])],
        lambda x: conv(F.pad(x, (0, 1)), 3), {"pad"}),
    # torch.roll(x, -3, 3) as torch exports it: x[..., 3:] then x[..., :3], one exact roll
    "roll_as_two_slices_and_a_concat": (
        [h.make_node("Conv", ["x", "w"], ["c"]),
         h.make_node("Slice", ["c", "three", "big", "a3"], ["tail"]),
         h.make_node("Slice", ["c", "zero", "three", "a3"], ["head"]),
         h.make_node("Concat", ["tail", "head"], ["y"], axis=3)],
        (1, 1, 8, 11), [W, const("three", [3]), const("big", [2**62]), const("zero", [0]), const("a3", [3])],
        lambda x: torch.roll(conv(x, 3), -3, 3), {"roll"}),
    "resize_nearest_asymmetric_floor_scales": (
        [h.make_node("Resize", ["c", "", "scales"], ["y"], mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor"), h.make_node("Conv", ["x", "w"], ["c"])],
        (1, 1, 7, 7), [W, const("scales", [1, 1, 2, 3], np.float32)],
        lambda x: F.interpolate(conv(x, 3), scale_factor=(2, 3), mode="nearest"), {"upsample"}),
    "resize_nearest_half_pixel_sizes": (
        [h.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest")],
        (1, 1, 5, 7), [const("sizes", [1, 1, 10, 14])],
        lambda x: F.interpolate(x, size=(10, 14), mode="nearest"), {"upsample"}),
    # half_pixel + round_prefer_ceil is PyTorch's nearest-exact, also for a non-integer ratio
    "resize_nearest_exact_non_integer": (
        [h.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest", nearest_mode="round_prefer_ceil")],
        (1, 1, 5, 7), [const("sizes", [1, 1, 8, 11])],
        lambda x: F.interpolate(x, size=(8, 11), mode="nearest-exact"), {"upsample"}),
    "resize_linear_half_pixel": (
        [h.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear")],
        (1, 1, 6, 6), [const("scales", [1, 1, 2, 2], np.float32)],
        lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), {"upsample"}),
    "resize_linear_align_corners": (
        [h.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear", coordinate_transformation_mode="align_corners")],
        (1, 1, 5, 6), [const("sizes", [1, 1, 9, 13])],
        lambda x: F.interpolate(x, size=(9, 13), mode="bilinear", align_corners=True), {"upsample"}),
    "resize_cubic_pytorch_half_pixel": (
        [h.make_node("Resize", ["x", "", "scales"], ["y"], mode="cubic", coordinate_transformation_mode="pytorch_half_pixel")],
        (1, 1, 6, 6), [const("scales", [1, 1, 2, 2], np.float32)],
        lambda x: F.interpolate(x, scale_factor=2, mode="bicubic"), {"upsample"}),
    # the sizes computed from the input's shape times 2 (what exporters emit for scale_factor)
    "resize_sizes_from_folded_shape": (
        [h.make_node("Shape", ["x"], ["s"]), h.make_node("Slice", ["s", "st", "en"], ["hw"]),
         h.make_node("Mul", ["hw", "two"], ["hw2"]), h.make_node("Slice", ["s", "z", "st"], ["nc"]),
         h.make_node("Concat", ["nc", "hw2"], ["sizes"], axis=0),
         h.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="nearest",
                     coordinate_transformation_mode="asymmetric", nearest_mode="floor")],
        (1, 1, 5, 6), [const("st", [2]), const("en", [4]), const("z", [0]), const("two", [2])],
        lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), {"upsample"}),
    "upsample_opset9": (
        [h.make_node("Upsample", ["x", "scales"], ["y"], mode="nearest")],
        (1, 1, 5, 5), [const("scales", [1, 1, 2, 2], np.float32)],
        lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), {"upsample"}),
    "squeeze_excitation_mul_broadcast": (
        [h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), h.make_node("GlobalAveragePool", ["c"], ["g"]),
         h.make_node("Sigmoid", ["g"], ["s"]), h.make_node("Mul", ["c", "s"], ["y"])],
        (1, 1, 8, 8), [W], lambda x: conv(x, 3, padding=1) * torch.sigmoid(conv(x, 3, padding=1).mean((2, 3), keepdim=True)),
        {"mul", "global"}),
    "residual_add_sub_div_max_min_sum": (
        [h.make_node("Conv", ["x", "w"], ["a"], pads=[1, 1, 1, 1]), h.make_node("Conv", ["x", "w5"], ["b"], pads=[2, 2, 2, 2]),
         h.make_node("Add", ["a", "b"], ["s1"]), h.make_node("Sub", ["s1", "a"], ["s2"]),
         h.make_node("Div", ["s2", "two"], ["s3"]), h.make_node("Max", ["s3", "a"], ["s4"]),
         h.make_node("Min", ["s4", "x"], ["s5"]), h.make_node("Sum", ["s5", "b", "a"], ["y"])],
        (1, 1, 10, 10), [W, weight("w5", (1, 1, 5, 5)), const("two", [2.0], np.float32)],
        lambda x: conv(x, 5, padding=2) + conv(x, 3, padding=1) + x, {"add"}),
    "concat_channels": (
        [h.make_node("Conv", ["x", "w"], ["a"]), h.make_node("Conv", ["x", "w3"], ["b"], pads=[0, 0, 0, 0], dilations=[1, 1]),
         h.make_node("Concat", ["a", "b"], ["y"], axis=1)],
        (1, 1, 9, 9), [W, weight("w3", (2, 1, 3, 3))], lambda x: torch.cat([conv(x, 3), conv(x, 3, cout=2)], 1),
        {"concat"}),
    "reduce_mean_spatial_keepdims": (
        [h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("ReduceMean", ["c"], ["y"], axes=[2, 3], keepdims=1)],
        (1, 1, 7, 7), [W], lambda x: conv(x, 3).mean((2, 3), keepdim=True), {"global"}),
    "reduce_sum_channels_opset18_axes_input": (
        [h.make_node("Conv", ["x", "w3"], ["c"]), h.make_node("ReduceSum", ["c", "ax"], ["y"], keepdims=1)],
        (1, 1, 7, 7), [weight("w3", (2, 1, 3, 3)), const("ax", [1])], lambda x: conv(x, 3, cout=2).sum(1, keepdim=True),
        {"conv"}),
    "slice_spatial_steps": (
        [h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         h.make_node("Slice", ["c", "st", "en", "ax", "sp"], ["y"])],
        (1, 1, 12, 12), [W, const("st", [1, 0]), const("en", [100, -1]), const("ax", [2, 3]), const("sp", [2, 3])],
        lambda x: conv(x, 3, padding=1)[:, :, 1::2, 0:-1:3], {"slice"}),
    "slice_negative_step": (
        [h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("Slice", ["c", "st", "en", "ax", "sp"], ["y"])],
        (1, 1, 12, 12), [W, const("st", [-1]), const("en", [-100]), const("ax", [3]), const("sp", [-2])],
        lambda x: torch.flip(conv(x, 3), (3,))[..., ::2], {"slice", "flip"}),
    "split_spatial": (
        [h.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), h.make_node("Split", ["c", "sp"], ["a", "y"], axis=3)],
        (1, 1, 8, 12), [W, const("sp", [5, 7])], lambda x: conv(x, 3, padding=1)[..., 5:], {"slice"}),
    "gather_row": (
        [h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("Gather", ["c", "i"], ["g"], axis=2),
         h.make_node("Unsqueeze", ["g", "ax"], ["y"])],
        (1, 1, 9, 9), [W, const("i", 4), const("ax", [2])], lambda x: conv(x, 3)[:, :, 4:5], {"slice"}),
    "depth_to_space": (
        [h.make_node("Conv", ["x", "w4"], ["c"], pads=[1, 1, 1, 1]), h.make_node("DepthToSpace", ["c"], ["y"], blocksize=2)],
        (1, 1, 6, 6), [weight("w4", (4, 1, 3, 3))], lambda x: F.pixel_shuffle(conv(x, 3, cout=4, padding=1), 2),
        {"upsample"}),
    "space_to_depth": (
        [h.make_node("SpaceToDepth", ["x"], ["s"], blocksize=2), h.make_node("Conv", ["s", "w4t"], ["y"])],
        (1, 1, 10, 10), [weight("w4t", (1, 4, 3, 3))], lambda x: conv(F.pixel_unshuffle(x, 2), 3), {"avgpool"}),
    # a TensorFlow-style NHWC input (the twin reads NCHW): transposed to NCHW for the conv
    "nhwc_transpose_conv": (
        [h.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]), h.make_node("Conv", ["t", "w3c"], ["y"], strides=[2, 2])],
        (1, 11, 11, 3), [weight("w3c", (1, 3, 3, 3))], lambda x: conv(x, 3, stride=2), {"conv"}),
    "pointwise_chain": (
        [h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("Relu", ["c"], ["r"]),
         h.make_node("BatchNormalization", ["r", "bs", "bb", "bm", "bv"], ["b"]),
         h.make_node("Clip", ["b", "lo", "hi"], ["cl"]), h.make_node("Dropout", ["cl"], ["d"]),
         h.make_node("Identity", ["d"], ["i"]), h.make_node("LeakyRelu", ["i"], ["y"])],
        (1, 1, 9, 9), [W, *(const(n, [v], np.float32) for n, v in (("bs", 1), ("bb", 0), ("bm", 0), ("bv", 1))),
                       const("lo", 0.0, np.float32), const("hi", 6.0, np.float32)],
        lambda x: conv(x, 3), {"conv", "identity"}),
    # ShuffleNet's channel shuffle (Reshape/Transpose/Reshape), then a Slice and a Split over the
    # channels whose bounds are computed from the shape by Constant nodes (Shape -> Gather -> Div):
    # folded, so both halves keep their spatial shape
    "channel_shuffle_slice_split_folded": (
        [h.make_node("Conv", ["x", "w4"], ["c"], pads=[1, 1, 1, 1]),
         *(h.make_node("Constant", [], [n], value=const(n + "v", v)) for n, v in (
             ("s5", [1, 2, 2, 8, 8]), ("s4", [1, -1, 8, 8]), ("i1", [1]), ("two", [2]), ("ax1", [1]))),
         h.make_node("Reshape", ["c", "s5"], ["r1"]), h.make_node("Transpose", ["r1"], ["t"], perm=[0, 2, 1, 3, 4]),
         h.make_node("Reshape", ["t", "s4"], ["r2"]), h.make_node("Shape", ["r2"], ["sh"]),
         h.make_node("Gather", ["sh", "i1"], ["nc"], axis=0), h.make_node("Div", ["nc", "two"], ["half"]),
         h.make_node("Slice", ["r2", "half", "nc", "ax1"], ["hi"]), h.make_node("Concat", ["half", "half"], ["sp"], axis=0),
         h.make_node("Split", ["r2", "sp"], ["lo", "lo2"], axis=1),
         h.make_node("Conv", ["hi", "w2"], ["a"], pads=[1, 1, 1, 1]),
         h.make_node("Conv", ["lo2", "w2"], ["b"], pads=[2, 2, 2, 2], dilations=[2, 2]), h.make_node("Add", ["a", "b"], ["y"])],
        (1, 1, 8, 8), [weight("w4", (4, 1, 3, 3)), weight("w2", (1, 2, 3, 3))],
        lambda x: (lambda r: conv(r[:, 2:], 3, padding=1) + conv(r[:, 2:], 3, padding=2, dilation=2))(
            conv(x, 3, cout=4, padding=1).reshape(1, 2, 2, 8, 8).transpose(1, 2).reshape(1, 4, 8, 8)),
        {"conv", "add"}),
    "flatten_gemm_global": (
        [h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("Flatten", ["c"], ["f"]),
         h.make_node("Gemm", ["f", "fw"], ["y"], transB=1)],
        (1, 1, 7, 7), [W, weight("fw", (3, 25))], lambda x: conv(x, 3).flatten(1) @ ones(25, 3), {"global"}),
    "softmax_over_positions": (
        [h.make_node("Conv", ["x", "w"], ["c"]), h.make_node("Reshape", ["c", "shp"], ["r"]),
         h.make_node("Softmax", ["r"], ["s"], axis=-1), h.make_node("Reshape", ["s", "back"], ["y"])],
        (1, 1, 7, 7), [W, const("shp", [1, 1, 25]), const("back", [1, 1, 5, 5])],
        lambda x: torch.softmax(conv(x, 3).reshape(1, 1, 25), -1).reshape(1, 1, 5, 5), {"global"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_op_matches_gradient_support(name):
    nodes, shape, inits, twin, ops = CASES[name]
    opset = 18 if "opset18" in name else 9 if "opset9" in name else 2 if "opset2" in name else 13
    m = model(nodes, shape, inits, opset=11 if opset == 2 else opset)
    if opset == 2:
        m.opset_import[0].version = 10  # Pad's pads as an attribute (before opset 11)
    check(m, shape, twin, ops, twin_shape=(1, 3, 11, 11) if name.startswith("nhwc") else None)


def test_a_classifier_output_has_one_position_as_in_the_torch_front_end():
    # Gemm on the flattened map: no dim of its output holds a spatial axis, so it has one
    # position per axis (it kept the conv's 5x5 before), the same record as from_torch's
    nodes, shape, inits, _, _ = CASES["flatten_gemm_global"]
    rec = rfgraph.analyze(from_onnx(model(nodes, shape, inits))).output
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3), torch.nn.Flatten(), torch.nn.Linear(25, 3))
    want = rfgraph.analyze(rfgraph.from_torch(net, (1, 7, 7))).output
    assert rec.n == want.n == (1, 1) and rec.is_global == want.is_global == (True, True)
    assert (rec.rf, rec.start, rec.jump) == (want.rf, want.start, want.jump)


def test_same_padding_helper_matches_the_cases():
    assert _same(15, 3, 2) == (1, 1) and _same(14, 3, 2) == (0, 1)


@pytest.mark.parametrize("ctm, attrs", [("tf_crop_and_resize", {}), ("half_pixel", {"antialias": 1})])
def test_resize_we_cannot_represent_raises_naming_the_node(ctm, attrs):
    # (half_pixel with nearest_mode floor, refused before, is an exact resample_map now:
    # tests/frontends/test_onnx_resize.py checks it against onnxruntime)
    m = model([h.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="up", mode="nearest",
                           coordinate_transformation_mode=ctm, nearest_mode="floor", **attrs)],
              (1, 1, 5, 7), [const("sizes", [1, 1, 8, 11])], opset=18)
    with pytest.raises(rfgraph.UnsupportedOpError, match="node 'up'.*Resize"):
        from_onnx(m)
    rec = rfgraph.analyze(from_onnx(m, on_unsupported="global")).output
    assert all(rec.is_global)


def test_unrepresentable_resize_with_the_identity_policy_notes_it():
    m = model([h.make_node("Resize", ["x", "", "", "sizes"], ["y"], mode="linear",
                           coordinate_transformation_mode="tf_crop_and_resize")],
              (1, 1, 5, 5), [const("sizes", [1, 1, 10, 10])], opset=18)
    with pytest.raises(rfgraph.UnsupportedOpError, match="tf_crop_and_resize"):
        from_onnx(m)
    G = from_onnx(m, on_unsupported="identity")
    assert "on_unsupported='identity'" in G.nodes["y"]["note"]


def test_linear_asymmetric_is_an_exact_resample_map():
    m = model([h.make_node("Resize", ["x", "", "scales"], ["y"], mode="linear",
                           coordinate_transformation_mode="asymmetric")],
              (1, 1, 5, 5), [const("scales", [1, 1, 2, 2], np.float32)])
    G = from_onnx(m)
    assert {G.nodes[v]["op"] for v in G} == {"input", "resample_map"}
    # asymmetric: output o samples x = o / 2; o = 3 blends pixels 1 and 2, o = 4 is pixel 2 exactly
    lo, hi = rfgraph.analyze(G).output.bounds(0)
    assert (lo[3], hi[3]) == (1, 2) and (lo[4], hi[4]) == (2, 2)


def test_unknown_op_error_names_op_node_and_policy():
    m = model([h.make_node("Conv", ["x", "w"], ["c"], name="/block/conv/Conv"),
               h.make_node("Det", ["c"], ["y"], name="/block/Det")], (1, 1, 8, 8), [W])
    with pytest.raises(rfgraph.UnsupportedOpError) as info:
        from_onnx(m)
    msg = str(info.value)
    assert "'/block/Det'" in msg and "Det" in msg and "on_unsupported" in msg and "module 'block'" in msg
    rec = rfgraph.analyze(from_onnx(m, on_unsupported="global")).output
    assert all(rec.is_global)


def test_dynamic_spatial_dims_need_input_size():
    m = model([h.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2])], ("N", 1, "H", "W"), [W])
    with pytest.raises(rfgraph.ExportError, match="dynamic spatial dim.*input size"):
        from_onnx(m)
    rec = rfgraph.analyze(from_onnx(m, input_size=(17, 9))).output
    assert rec.n == (8, 4)


def test_module_paths_and_module_outputs_from_exporter_names():
    m = model([h.make_node("Conv", ["x", "w"], ["a"], name="/layer1/layer1.0/conv1/Conv", pads=[1, 1, 1, 1]),
               h.make_node("Relu", ["a"], ["r"], name="/layer1/layer1.0/relu/Relu"),
               h.make_node("Add", ["r", "x"], ["s"], name="/layer1/layer1.0/Add"),
               h.make_node("Conv", ["s", "w"], ["y"], name="/head/Conv")], (1, 1, 8, 8), [W])
    G = from_onnx(m)
    assert G.nodes["/layer1/layer1.0/conv1/Conv"]["module"] == "layer1.0.conv1"
    assert G.graph["module_outputs"]["layer1"] == "/layer1/layer1.0/Add"
    assert rfgraph.analyze(G).module("layer1.0").rf == (3, 3)


def test_cycle_and_missing_input_are_clear_errors():
    cyc = model([h.make_node("Relu", ["x2"], ["x1"], name="a"), h.make_node("Add", ["x", "x1"], ["x2"], name="b"),
                 h.make_node("Relu", ["x2"], ["y"], name="c")], (1, 1, 4, 4))
    with pytest.raises(rfgraph.CycleError, match="cycle"):
        from_onnx(cyc)
    gone = model([h.make_node("Add", ["x", "nowhere"], ["y"], name="b")], (1, 1, 4, 4))
    with pytest.raises(rfgraph.ExportError, match="'nowhere' is made by no node"):
        from_onnx(gone)


def test_annotate_keeps_the_model_valid_and_its_outputs(tmp_path):
    nodes, shape, inits, _, _ = CASES["squeeze_excitation_mul_broadcast"]
    m = onnx.shape_inference.infer_shapes(model(nodes, shape, inits))  # typed outputs, for the checker
    out, analysis = annotate_onnx(m)
    onnx.checker.check_model(out)
    doc = {n.output[0]: n.doc_string for n in out.graph.node}
    assert doc["c"] == "rfgraph: rf 3x3, jump 1x1, start 0.5x0.5, n 8x8, global no"
    assert doc["y"].endswith("global yes")
    meta = {p.key: p.value for p in out.metadata_props}
    assert meta["rfgraph.input_size"] == "8x8" and "rfgraph.output.y" in meta
    x = {"x": np.random.rand(*shape).astype(np.float32)}
    before = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)
    after = ort.InferenceSession(out.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, x)
    assert all(np.array_equal(a, b) for a, b in zip(before, after))


def _cli(args, capsys):
    status = main(args)
    cap = capsys.readouterr()
    return status, cap.out, cap.err


def test_cli_analyze_and_annotate(tmp_path, capsys):
    nodes, shape, inits, _, _ = CASES["conv_same_upper"]
    path = tmp_path / "m.onnx"
    onnx.save(model(nodes, shape, inits), str(path))
    status, out, _ = _cli(["analyze", str(path), "--format", "json"], capsys)
    assert status == 0 and '"rf"' in out
    dst = tmp_path / "m.rf.onnx"
    status, out, _ = _cli(["annotate", str(path), "-o", str(dst)], capsys)
    assert status == 0 and dst.is_file()
    assert "rfgraph: rf 3x3" in onnx.load(str(dst)).graph.node[0].doc_string
    dyn = tmp_path / "dyn.onnx"
    onnx.save(model(nodes, ("N", 1, "H", "W"), inits), str(dyn))
    assert _cli(["analyze", str(dyn), "--input-size", "15,14"], capsys)[0] == 0


def _hostile(tmp_path, kind):
    good = model(CASES["conv_same_upper"][0], (1, 1, 15, 14), [W])
    path = tmp_path / f"{kind}.onnx"
    if kind == "not_onnx":
        path.write_text("this is not a protobuf \x00\xff")
    elif kind == "truncated":
        path.write_bytes(good.SerializeToString()[:40])
    elif kind == "external_missing":  # a shape (int64) among the missing tensors: needed, not only weights
        from onnx.external_data_helper import convert_model_to_external_data

        good = model(CASES["conv_same_upper"][0] + [h.make_node("Reshape", ["y", "shp"], ["z"])], (1, 1, 15, 14),
                     [W, const("shp", [1, 1, 8, 7])], out="z")
        convert_model_to_external_data(good, location="weights.bin", size_threshold=0)
        onnx.save(good, str(path))
        (tmp_path / "weights.bin").unlink()
    elif kind == "dynamic":
        onnx.save(model(CASES["conv_same_upper"][0], ("N", 1, "H", "W"), [W]), str(path))
    elif kind == "unknown_op":
        onnx.save(model([h.make_node("Det", ["x"], ["y"], name="det")], (1, 1, 4, 4)), str(path))
    elif kind == "cycle":
        cyc = model([h.make_node("Relu", ["x2"], ["x1"], name="a"), h.make_node("Add", ["x", "x1"], ["x2"], name="b"),
                     h.make_node("Relu", ["x2"], ["y"], name="c")], (1, 1, 4, 4))
        path.write_bytes(cyc.SerializeToString())
    return path


@pytest.mark.parametrize("kind, words", [
    ("not_onnx", "not a readable ONNX model"), ("truncated", "ONNX model"),
    ("external_missing", "external data file 'weights.bin', which is missing"),
    ("dynamic", "dynamic spatial dim"), ("unknown_op", "no receptive-field rule for ONNX op Det"),
    ("cycle", "cycle")])
@pytest.mark.parametrize("command", ["analyze", "annotate"])
def test_hostile_files_one_line_no_partial_output(tmp_path, capsys, kind, words, command):
    path = _hostile(tmp_path, kind)
    dst = tmp_path / "out.rf.onnx"
    args = [command, str(path)] + (["-o", str(dst)] if command == "annotate" else [])
    status, out, err = _cli(args, capsys)
    assert status == 1 and err.startswith("rfgraph: error: ") and err.count("\n") == 1, err
    assert words in err and "Traceback" not in err
    assert not dst.exists() and not list(tmp_path.glob("*.tmp"))


def _external_weights(tmp_path, nodes, inits, shape=(1, 1, 15, 14), threshold=100):
    from onnx.external_data_helper import convert_model_to_external_data

    m = model(nodes, shape, inits)
    convert_model_to_external_data(m, location="weights.bin", size_threshold=threshold)
    path = tmp_path / "m.onnx"
    onnx.save(m, str(path))
    return path


def test_external_data_present_is_read_small_tensors_included(tmp_path):
    """Every initializer external (size_threshold 0), the file present: the shape tensor's
    value is read (the Reshape keeps the spatial dims), the weights' bytes are not needed."""
    nodes = CASES["conv_same_upper"][0] + [h.make_node("Reshape", ["y", "shp"], ["z"])]
    m = model(nodes, (1, 1, 15, 14), [W, const("shp", [1, 1, 8, 7])], out="z")
    want = rfgraph.analyze(from_onnx(m)).output
    path = _external_weights(tmp_path, nodes, [W, const("shp", [1, 1, 8, 7])], threshold=0)
    G = from_onnx(path)
    got = rfgraph.analyze(G).output
    assert (got.rf, got.jump, got.n, got.is_global) == (want.rf, want.jump, want.n, want.is_global)
    assert (got.n, got.is_global) == ((8, 7), (False, False)) and "note" not in G.nodes["x"]


def test_missing_weights_file_analyzes_on_shapes_with_a_note(tmp_path, capsys):
    """Only float weights are in the missing file: the receptive fields need their dims only, so
    analyze carries on and the input node says so; annotate, which writes the weights back, and
    a node that needs a missing float value (Resize's scales) give one clear error each."""
    nodes, shape, inits, _, _ = CASES["conv_same_upper"]
    path = _external_weights(tmp_path, nodes, [weight("w", (1, 1, 3, 3)), weight("big", (64, 64))])
    (tmp_path / "weights.bin").unlink()
    G = from_onnx(path)
    assert rfgraph.analyze(G).output.rf == (3, 3)
    assert "external data file 'weights.bin' is missing" in G.nodes["x"]["note"]
    status, out, err = _cli(["analyze", str(path)], capsys)
    assert status == 0 and "weights not loaded" in out and not err, (out, err)
    status, out, err = _cli(["annotate", str(path), "-o", str(tmp_path / "o.onnx")], capsys)
    assert status == 1 and "which is missing" in err and err.count("\n") == 1
    rs = [h.make_node("Resize", ["x", "", "sc"], ["y"], name="up", mode="nearest")]
    path = _external_weights(tmp_path, rs, [const("sc", [1, 1, 2, 2], np.float32)], threshold=0)
    (tmp_path / "weights.bin").unlink()
    with pytest.raises(rfgraph.ExportError, match="scales.*'sc'.*external data file 'weights.bin', which is missing"):
        from_onnx(path)


def test_a_concatenation_of_pieces_along_a_spatial_axis_is_global_not_an_error():
    # two pieces of different widths (3 and 4 columns) side by side: no roll; each position reads
    # one piece's position, which rfgraph does not track: global along that axis, with the reason
    # (the union of the pieces used to be taken first, and failed on their different sizes)
    m = model([h.make_node("Conv", ["x", "w"], ["c"]),
               h.make_node("Slice", ["c", "zero", "three", "a3"], ["left"]),
               h.make_node("Slice", ["c", "five", "big", "a3"], ["right"]),
               h.make_node("Concat", ["left", "right"], ["y"], axis=3)],
              (1, 1, 8, 11), [W, const("three", [3]), const("big", [2**62]), const("zero", [0]), const("five", [5]),
                              const("a3", [3])])
    G = from_onnx(m)
    rec = rfgraph.analyze(G)[G.graph["outputs"][0]]
    assert rec.n == (6, 7) == tuple(run_onnx(m, (1, 1, 8, 11)).shape[2:])
    assert rec.is_global == (False, True) and "concatenation along a spatial axis" in rec.note


def test_shapes_that_need_many_rounds_of_folding_are_found():
    # twelve pads in a row, each computed from the shape the previous one made: ONNX's data
    # propagation does not read initializers, so every pad needs a round of folding and
    # inference (torchvision Swin's window padding took 16 rounds; the limit was 8)
    nodes, inits, x = [], [const("i3", [3]), const("z7", [0] * 7), const("two", [2])], "x"
    for k in range(12):  # pad the width to even
        nodes += [h.make_node("Shape", [x], [f"s{k}"]), h.make_node("Gather", [f"s{k}", "i3"], [f"w{k}"], axis=0),
                  h.make_node("Mod", [f"w{k}", "two"], [f"e{k}"]),
                  h.make_node("Concat", ["z7", f"e{k}"], [f"pads{k}"], axis=0),
                  h.make_node("Pad", [x, f"pads{k}"], [f"p{k}"])]
        x = f"p{k}"
    nodes.append(h.make_node("Conv", [x, "w"], ["y"]))
    m = model(nodes, (1, 1, 8, 9), inits + [W])
    rec = rfgraph.analyze(from_onnx(m))["y"]
    # 9 -> 10 (one column padded), then even: no more padding
    assert rec.n == (6, 8) == tuple(run_onnx(m, (1, 1, 8, 9)).shape[2:])
