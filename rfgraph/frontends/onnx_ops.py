"""The ONNX op table: ONNX ops -> rfgraph's canonical ops (this module only translates).

Each translator receives a :class:`Ctx` (the ONNX node, its attributes read **by name**, the
constant inputs the front-end folded, the inferred shapes and the traced inputs) and either
emits a node in the graph schema, passes its input's node through with new dimension tags
(reshapes, transposes, casts), or applies the unsupported-op policy.

Register a translator for another op with :func:`register_onnx_op`.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .. import arith
from ..errors import ExportError, ShapeError, UnsupportedOpError
from ..ops.gather import exact_scale, resample_support, support_of_taps
from . import torch_layout as L
from .torch_ops import _conflicting_axes

__all__ = ["register_onnx_op", "handle", "Ctx", "TRANSLATORS"]

#: ONNX op type (``"Conv"``, or ``"domain::Op"`` outside the default domain) -> translator(ctx).
TRANSLATORS = {}


def register_onnx_op(op_type: str, translator=None, *, replace: bool = False):
    """Register ``translator(ctx)`` for an ONNX op type (``"MyOp"``, or ``"my.domain::MyOp"`` for a
    custom domain). Usable as a decorator.

    >>> _ = register_onnx_op("com.example::Swish", lambda ctx: ctx.unary("identity"), replace=True)
    """

    def deco(fn):
        if op_type in TRANSLATORS and not replace:
            raise ValueError(f"a translator for {op_type!r} is already registered; pass replace=True")
        TRANSLATORS[op_type] = fn
        return fn

    return deco(translator) if translator is not None else deco


def op(*op_types):
    def deco(fn):
        for t in op_types:
            register_onnx_op(t, fn)
        return fn

    return deco


class Ctx:
    """One ONNX node being translated."""

    def __init__(self, builder, node):
        from .onnx import module_of

        self.b = builder
        self.node = node
        self.op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        self.name = node.name or node.output[0]
        self.module = module_of(node)
        self.naxes = builder.naxes
        self.opset = builder.opset
        self.tracked = [(x, builder.traced[x]) for x in dict.fromkeys(node.input) if x in builder.traced]
        self._emitted = 0

    # -- reading the node -------------------------------------------------------------------------
    def attr(self, name, default=None):
        from .onnx import _a

        return _a(self.node, name, default)

    def input(self, i):
        """Name of input ``i`` (None when absent or empty)."""
        return self.node.input[i] if i < len(self.node.input) and self.node.input[i] else None

    def const(self, i):
        """Value of input ``i`` when it is a known constant (an initializer or folded), else None."""
        from .onnx import _ShapeOnly

        x = self.input(i)
        v = self.b.consts.get(x) if x else None
        return None if v is None or isinstance(v, _ShapeOnly) else v

    def need_const(self, i, what):
        v = self.const(i)
        if v is None and self.input(i) in self.b.missing:
            raise ExportError(f"its {what} (input {i}, {self.input(i)!r}) is stored in external data file "
                              f"{self.b.missing[self.input(i)]!r}, which is missing; copy it next to the model",
                              node=self.name, op=self.op)
        if v is None:
            raise ExportError(f"its {what} (input {i}, {self.input(i)!r}) is computed at run time from "
                              "values the front-end cannot fold; only small constant subgraphs on "
                              "initializers and shapes are evaluated", node=self.name, op=self.op)
        return v

    def shape(self, tensor):
        from .onnx import _ShapeOnly

        if tensor in self.b.consts:
            v = self.b.consts[tensor]
            return tuple(v.shape) if isinstance(v, (np.ndarray, _ShapeOnly)) else ()
        s = self.b.shapes.get(tensor)
        return None if s is None or None in s else tuple(s)

    def need_shape(self, tensor):
        s = self.shape(tensor)
        if s is None:
            raise ShapeError(f"ONNX shape inference gives no static shape for {tensor!r}; give the input size "
                             "(--input-size) or simplify the model (onnxsim)", node=self.name, op=self.op)
        return s

    @property
    def x(self):
        return self.tracked[0][0]

    @property
    def tags(self):
        return self.tracked[0][1].tags

    @property
    def src(self):
        return self.tracked[0][1].node

    def out_shape(self, i=0):
        return self.shape(self.node.output[i]) if i < len(self.node.output) else None

    # -- writing the graph --------------------------------------------------------------------------
    def emit(self, op, params=None, inputs=None, tags=None, note=None, out=0, suffix=None):
        """Add a node; output ``out`` of the ONNX node becomes its result (None: no output)."""
        base = self.name if suffix is None and not self._emitted else f"{self.name}.{suffix or self._emitted}"
        self._emitted += 1
        tags = self.tags if tags is None else tuple(tags)
        oshape = self.out_shape(out) if out is not None else None
        shape = None
        if oshape is not None and L.is_standard(tags, oshape, self.naxes) and len(oshape) == len(tags):
            shape = oshape[-self.naxes:]
        name = self.b.add(base, op, params or {}, [self.src] if inputs is None else inputs, module=self.module,
                          target=self.op, note=note, shape=shape)
        if out is not None:
            self.set(self.node.output[out], name, tags)
        return name

    def set(self, tensor, node, tags):
        from .onnx import Traced

        if tensor:
            self.b.traced[tensor] = Traced(node, tags)

    def unary(self, op, params=None, tags=None, note=None):
        return self.emit(op, params, tags=tags, note=note)

    def passthrough(self, tags=None, out=0):
        """No new node: the output's elements have the input's receptive fields."""
        self.set(self.node.output[out], self.src, self.tags if tags is None else tags)

    def global_over(self, axes, tags, why, keep=True, inputs=None):
        """A ``global`` node over ``axes`` (a ``note`` says why, naming the ONNX op)."""
        inputs = list(dict.fromkeys(inputs or [self.src]))
        if len(inputs) > 1:  # the union of the inputs first, then the global op
            inputs = [self.emit("add", {}, inputs, tags, out=None, suffix="inputs")]
        axes = tuple(sorted(axes))
        if not axes:
            return self.emit("identity", {}, inputs, tags)
        self.b.global_ops[self.op] = self.b.global_ops.get(self.op, 0) + 1
        size = None if keep else 1
        out = self.out_shape()
        if keep and out is not None and len(tags) == len(out):
            # an axis no dim of the output holds (a classifier's Gemm on the flattened map) has
            # one position, not the input's: as the torch front-end, the output's own size
            held = frozenset().union(*(L.spatial_axes(t) for t in tags))
            sizes = L.axis_sizes(tags, out, self.naxes)
            if not set(axes) <= held and all(a not in held or sizes[a] is not None for a in axes):
                size = tuple(sizes[a] if a in held else 1 for a in range(self.naxes))
        return self.emit("global", {"axes": axes, "size": size}, inputs, tags, note=f"ONNX {self.op}: {why}")

    def global_all(self, why):
        axes = frozenset().union(*(L.spatial_axes(t) for _, tr in self.tracked for t in tr.tags))
        out = self.out_shape()
        tags = self.tags if out is not None and len(out) == len(self.tags) else (None,) * len(out or ())
        return self.global_over(axes or range(self.naxes), tags, why, inputs=[tr.node for _, tr in self.tracked])

    def unsupported(self, why="no rule"):
        """Apply the policy for an op with no rule: raise, or map it to global / identity."""
        policy = self.b.policy
        if policy == "raise":
            where = f" in module {self.module!r}" if self.module else ""
            raise UnsupportedOpError(
                f"no receptive-field rule for ONNX op {self.op} ({why}){where}. Map it with "
                f"rfgraph.frontends.onnx_ops.register_onnx_op({self.op!r}, translator), or choose a policy: "
                "from_onnx(..., on_unsupported='global' or 'identity') (on the command line: "
                "--on-unsupported global or identity)", node=self.name, op=self.op)
        if policy == "global":
            return self.global_all(f"{why}; treated as global (on_unsupported='global')")
        out = self.out_shape()
        tags = self.tags if out is None or len(out) == len(self.tags) else (None,) * len(out)
        return self.emit("identity", {}, tags=tags,
                         note=f"ONNX {self.op}: {why}; treated as identity of its first traced input "
                              "(on_unsupported='identity')")


def handle(ctx):
    """Translate one ONNX node that reads at least one traced tensor."""
    fn = TRANSLATORS.get(ctx.op)
    if fn is None:
        return ctx.unsupported()
    fn(ctx)


# --- convolution and pooling -----------------------------------------------------------------


def _window_layout_ok(ctx, what):
    """True for a plain ``(N, C, *spatial)`` input; otherwise the node is emitted here (identity
    over non-spatial dims, global over scrambled ones) and False returned."""
    shape = ctx.need_shape(ctx.x)
    if len(shape) == ctx.naxes + 2 and L.is_standard(ctx.tags, shape, ctx.naxes):
        return True
    axes = frozenset().union(*(L.spatial_axes(t) for t in ctx.tags[2:]))
    if not axes:
        ctx.unary("identity", note=f"ONNX {ctx.op}: {what} over non-spatial dims")
    else:
        ctx.global_over(axes, ctx.tags, f"{what} over reordered or merged spatial dims: treated as global "
                                        "(not tractable)")
    return False


def _padding(ctx, kernel, stride, dilation):
    """``(before, after)`` per axis from ``pads`` / ``auto_pad`` (SAME_UPPER puts the odd pixel
    after, SAME_LOWER before, as the ONNX spec says)."""
    nd = len(kernel)
    auto = ctx.attr("auto_pad", "NOTSET")
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        n_in = ctx.need_shape(ctx.x)[2:]
        out = []
        for n, k, s, d in zip(n_in, kernel, stride, dilation):
            before, after = arith.same_padding(n, k, s, d)
            out.append((before, after) if auto == "SAME_UPPER" else (after, before))
        return tuple(out)
    if auto == "VALID":
        return ((0, 0),) * nd
    if auto not in ("NOTSET", ""):
        raise ExportError(f"unknown auto_pad {auto!r}", node=ctx.name, op=ctx.op)
    pads = list(ctx.attr("pads", [0] * 2 * nd))
    return tuple((int(pads[i]), int(pads[i + nd])) for i in range(nd))


def _ints(ctx, name, nd, default):
    v = ctx.attr(name)
    return tuple(int(x) for x in v) if v else (default,) * nd


@op("Conv")
def _conv(ctx):
    if _conv_in_windows(ctx):
        return
    if not _window_layout_ok(ctx, "convolution"):
        return
    w = ctx.need_shape(ctx.input(1))
    kernel = tuple(int(k) for k in (ctx.attr("kernel_shape") or w[2:]))
    nd = len(kernel)
    stride, dilation = _ints(ctx, "strides", nd, 1), _ints(ctx, "dilations", nd, 1)
    ctx.unary("conv", dict(kernel=kernel, stride=stride, dilation=dilation,
                           padding=_padding(ctx, kernel, stride, dilation)))


def _conv_in_windows(ctx) -> bool:
    """A Conv over the dims of a window partition (``(N*windows, C, w, w)``, EfficientViT-M) runs
    on each window on its own: a ``window_conv`` when it keeps the window's size (a 1x1 one
    changes no position: identity); False when the input is not so laid out."""
    shape, out = ctx.need_shape(ctx.x), ctx.out_shape()
    nd = len(shape) - 2
    windows = L.partition_windows(ctx.tags, nd, shape)
    if windows is None or out is None or tuple(out[2:]) != tuple(shape[2:]):
        return False
    w = ctx.need_shape(ctx.input(1))
    kernel = tuple(int(k) for k in (ctx.attr("kernel_shape") or w[2:]))
    stride, dilation = _ints(ctx, "strides", nd, 1), _ints(ctx, "dilations", nd, 1)
    padding = _padding(ctx, kernel, stride, dilation)
    if all(k == 1 for k in kernel) and all(s == 1 for s in stride) and not any(a or b for a, b in padding):
        ctx.unary("identity", note=f"ONNX {ctx.op}: 1x1 convolution within windows: positions unchanged")
        return True
    params = {"kernel": [1] * ctx.naxes, "stride": [1] * ctx.naxes, "dilation": [1] * ctx.naxes,
              "padding": [(0, 0)] * ctx.naxes, "window": [1] * ctx.naxes}
    for d, (ax, size) in enumerate(windows):
        for key, value in (("kernel", kernel[d]), ("stride", stride[d]), ("dilation", dilation[d]),
                           ("padding", padding[d]), ("window", size)):
            params[key][ax] = value
    ctx.unary("window_conv", {k: tuple(v) for k, v in params.items()})
    return True


@op("ConvTranspose")
def _conv_transpose(ctx):
    if not _window_layout_ok(ctx, "transposed convolution"):
        return
    w = ctx.need_shape(ctx.input(1))
    kernel = tuple(int(k) for k in (ctx.attr("kernel_shape") or w[2:]))
    nd = len(kernel)
    stride, dilation = _ints(ctx, "strides", nd, 1), _ints(ctx, "dilations", nd, 1)
    extra = _ints(ctx, "output_padding", nd, 0)
    n_in = ctx.need_shape(ctx.x)[2:]
    auto = ctx.attr("auto_pad", "NOTSET")
    target = ctx.attr("output_shape")
    pairs = []
    for ax in range(nd):
        full = stride[ax] * (n_in[ax] - 1) + extra[ax] + dilation[ax] * (kernel[ax] - 1) + 1
        if target or auto in ("SAME_UPPER", "SAME_LOWER"):
            want = int(target[-nd + ax]) if target else n_in[ax] * stride[ax]
            total = full - want
            small, big = total // 2, total - total // 2
            pairs.append((small, big) if auto == "SAME_UPPER" else (big, small))
        elif auto == "VALID":
            pairs.append((0, 0))
        else:
            pads = list(ctx.attr("pads", [0] * 2 * nd))
            pairs.append((int(pads[ax]), int(pads[ax + nd])))
    # PyTorch's form: symmetric padding p crops p on both sides, output_padding adds at the end
    outpad = tuple(extra[ax] + pairs[ax][0] - pairs[ax][1] for ax in range(nd))
    if all(0 <= o < max(s, d) for o, s, d in zip(outpad, stride, dilation)):
        return ctx.unary("convtranspose", dict(kernel=kernel, stride=stride, dilation=dilation,
                                               padding=tuple(p for p, _ in pairs), output_padding=outpad))
    full = ctx.emit("convtranspose", dict(kernel=kernel, stride=stride, dilation=dilation), out=None,
                    suffix="full")
    ctx.emit("pad", {"padding": tuple((-b, e - a) for (b, a), e in zip(pairs, extra)), "mode": "constant"},
             [full])


@op("MaxPool", "AveragePool", "LpPool")
def _pool(ctx):
    if not _window_layout_ok(ctx, "pooling"):
        return
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        ctx.b.traced.pop(ctx.node.output[1], None)  # MaxPool's indices: not followed
    kernel = tuple(int(k) for k in ctx.attr("kernel_shape"))
    nd = len(kernel)
    stride, dilation = _ints(ctx, "strides", nd, 1), _ints(ctx, "dilations", nd, 1)
    params = dict(kernel=kernel, stride=stride, padding=_padding(ctx, kernel, stride, dilation),
                  ceil_mode=bool(ctx.attr("ceil_mode", 0)))
    note = None
    kind = "maxpool" if ctx.op == "MaxPool" else "avgpool"
    if any(d != 1 for d in dilation):
        # the same window as a dilated max pooling (our avgpool has no dilation)
        kind, note = "maxpool", f"ONNX {ctx.op} with dilations: the window of a dilated max pooling"
    if kind == "maxpool":
        params["dilation"] = dilation
    ctx.unary(kind, params, note=note)


@op("GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool")
def _global_pool(ctx):
    axes = frozenset().union(*(L.spatial_axes(t) for t in ctx.tags[2:]))
    ctx.global_over(axes, ctx.tags, "global pooling over spatial positions", keep=False)


@op("ReduceMean", "ReduceMax", "ReduceMin", "ReduceSum", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
    "ReduceLogSumExp", "ReduceSumSquare", "ArgMax", "ArgMin")
def _reduce(ctx):
    if ctx.op.startswith("Arg"):
        axes = [ctx.attr("axis", 0)]
    else:
        v = ctx.const(1) if ctx.input(1) else None
        if ctx.input(1) and v is None:
            v = ctx.need_const(1, "axes")
        axes = [int(a) for a in (v if v is not None else ctx.attr("axes") or [])]
        if not axes and ctx.attr("noop_with_empty_axes", 0):
            return ctx.passthrough()
    tags, mixed = L.reduce_tags(ctx.tags, axes, bool(ctx.attr("keepdims", 1)))
    if not mixed:
        return ctx.unary("identity", tags=tags)
    ctx.global_over(mixed, tags, "reduction over spatial positions", keep=False)


# --- pointwise and joins -----------------------------------------------------------------------

_UNARY = ("Relu", "Sigmoid", "Tanh", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "HardSigmoid", "HardSwish",
          "Softplus", "Softsign", "Mish", "Swish", "Clip", "BatchNormalization", "Abs", "Neg", "Exp", "Log", "Sqrt",
          "Reciprocal", "Erf", "Floor", "Ceil", "Round", "Sign", "Not", "Sin", "Cos", "Tan", "Atan", "Asin", "Acos",
          "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "ThresholdedRelu", "Shrink", "IsNaN", "IsInf", "LRN",
          "QuantizeLinear", "DequantizeLinear", "Add", "Sub", "Mul", "Div", "Sum", "Max", "Min", "Mean", "Pow",
          "Where", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or", "Xor", "Mod",
          "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "PRelu", "Trilu")
_MUL = ("Mul", "Div", "Pow", "Mod", "And")


@op(*dict.fromkeys(_UNARY))
def _elementwise(ctx):
    """Elementwise, with broadcasting: one traced input -> identity; several -> a join (the union
    of their RFs; an input of size 1 along an axis, e.g. a squeeze-and-excitation gate,
    broadcasts)."""
    out = ctx.need_shape(ctx.node.output[0])
    shapes_tags = [(ctx.need_shape(x), tr.tags) for x, tr in ctx.tracked]
    tags = L.broadcast_tags(shapes_tags, len(out))
    inputs = [_expanded(ctx, x, tr, out) for x, tr in ctx.tracked]
    inputs = list(dict.fromkeys(inputs))
    conflict = _conflicting_axes(shapes_tags, len(out))
    if conflict:
        return ctx.global_over(conflict, tags, "elementwise op on inputs whose spatial dims do not line up",
                               inputs=inputs)
    if len(inputs) == 1:
        return ctx.emit("identity", {}, inputs, tags)
    ctx.emit("mul" if ctx.op in _MUL else "add", {}, inputs, tags)


def _expanded(ctx, x, tr, out):
    """A traced size-1 spatial dim broadcast against a bigger constant: every output position
    reads position 0 (nearest upsampling to the output size)."""
    shape = ctx.need_shape(x)
    if len(shape) != len(out) or not L.is_standard(tr.tags, shape, ctx.naxes):
        return tr.node
    ins, outs = shape[-ctx.naxes:], out[-ctx.naxes:]
    if ins != outs and not any(ctx.shape(y)[-ctx.naxes:] == outs for y, t2 in ctx.tracked if t2 is not tr):
        return ctx.emit("upsample", {"size": outs, "mode": "nearest"}, [tr.node], out=None, suffix="broadcast")
    return tr.node


@op("Identity", "Dropout", "Cast", "CastLike")
def _alias(ctx):
    ctx.passthrough()
    for o in ctx.node.output[1:]:
        ctx.b.traced.pop(o, None)  # Dropout's mask


@op("Concat")
def _concat(ctx):
    out = ctx.need_shape(ctx.node.output[0])
    axis = int(ctx.attr("axis")) % len(out)
    tags = ctx.tags
    for _, tr in ctx.tracked:  # a class token before the tokens of a grid: the grid's dim holds positions
        if len(tr.tags) == len(out) and L.spatial_axes(tr.tags[axis]) and not L.spatial_axes(tags[axis]):
            tags = tr.tags
            break
    inputs = list(dict.fromkeys(tr.node for _, tr in ctx.tracked))
    if isinstance(tags[axis], int) and not isinstance(tags[axis], bool):
        rolled = _rotation(ctx, tags[axis], out[axis])
        if rolled is not None:  # torch.roll as exported: x[s:] then x[:s]
            src, shift = rolled
            if not shift:
                return ctx.emit("identity", {}, [src], tags)
            return ctx.emit("roll", {"shifts": (shift,), "axes": (tags[axis],)}, [src], tags,
                            note=f"ONNX Concat of two slices of one tensor along axis {tags[axis]}: a roll by "
                                 f"{shift}, exactly")
    if isinstance(tags[axis], int) or isinstance(tags[axis], (frozenset, L.Merged)):
        why = "concatenation along a spatial axis: global (not tractable)"
        axes = L.spatial_axes(tags[axis])
        if len(inputs) > 1:  # pieces of different sizes: each one global first, at the output's size
            sizes = L.axis_sizes(tags, out, ctx.naxes)
            if all(sizes[a] is not None for a in axes):
                size = tuple(sizes[a] if a in axes else 1 for a in range(ctx.naxes))  # 1: not reduced, unread
                ctx.b.global_ops[ctx.op] = ctx.b.global_ops.get(ctx.op, 0) + 1
                parts = [ctx.emit("global", {"axes": tuple(sorted(axes)), "size": size}, [u], tags, out=None,
                                  suffix=f"part{k}", note=f"ONNX {ctx.op}: {why}") for k, u in enumerate(inputs)]
                return ctx.emit("add", {}, parts, tags, note=f"ONNX {ctx.op}: {why}")
        return ctx.global_over(axes, tags, why, inputs=inputs)
    if len(inputs) == 1:
        return ctx.passthrough()
    ctx.emit("concat", {}, inputs, tags)


def _rotation(ctx, ax, n):
    """``(source, shift)`` when the Concat's inputs, in order, are ``slice`` nodes of one source
    along spatial axis ``ax`` only, step 1, that take ``[s, n)`` then ``[0, s)`` (one of them
    empty when ``s`` is 0): the source rolled by ``-s`` (how torch exports ``torch.roll``); else
    None."""
    G = ctx.b.G
    pieces, src = [], None
    for x in ctx.node.input:
        tr = ctx.b.traced.get(x)
        if tr is None:
            return None
        attrs, preds = G.nodes[tr.node], list(G.pred[tr.node])
        if attrs.get("op") != "slice":  # a slice of the whole axis is the source itself
            whole = (None,) * ctx.naxes
            attrs, preds = {"start": whole, "stop": whole, "step": (1,) * ctx.naxes}, [tr.node]
        if len(preds) != 1 or src not in (None, preds[0]):
            return None
        src = preds[0]
        start, stop, step = attrs.get("start"), attrs.get("stop"), attrs.get("step")
        if not all(isinstance(v, tuple) and len(v) == ctx.naxes for v in (start, stop, step)):
            return None
        for a in range(ctx.naxes):
            if step[a] != 1 or a != ax and (start[a] not in (None, 0) or stop[a] is not None):
                return None
        lo, hi = start[ax] or 0, n if stop[ax] is None else stop[ax]
        if not (0 <= lo <= hi <= n):
            return None
        if lo < hi:  # a roll by 0 is exported with an empty second slice
            pieces.append((lo, hi))
    if pieces == [(0, n)]:
        return src, 0
    if len(pieces) != 2 or pieces[0][1] != n or pieces[1] != (0, pieces[0][0]):
        return None
    return src, -pieces[0][0]


# --- normalisation, reductions along one axis, matrix products ----------------------------------


@op("InstanceNormalization", "GroupNormalization", "MeanVarianceNormalization")
def _norm_over_positions(ctx):
    axes = frozenset().union(*(L.spatial_axes(t) for t in ctx.tags))
    ctx.global_over(axes, ctx.tags, "normalisation statistics over spatial positions")


@op("LayerNormalization")
def _layer_norm(ctx):
    axis = int(ctx.attr("axis", -1)) % len(ctx.tags)
    axes = frozenset().union(*(L.spatial_axes(t) for t in ctx.tags[axis:]))
    if not axes:
        return ctx.unary("identity")
    ctx.global_over(axes, ctx.tags, "layer norm over spatial positions")


@op("Softmax", "LogSoftmax", "Hardmax", "CumSum")
def _along_axis(ctx):
    nd = len(ctx.tags)
    if ctx.op == "CumSum":
        dims = [int(ctx.need_const(1, "axis").reshape(-1)[0])]
    elif ctx.opset < 13:  # the input is flattened from `axis` on
        dims = list(range(int(ctx.attr("axis", 1)) % nd, nd))
    else:
        dims = [int(ctx.attr("axis", -1))]
    mixed = frozenset().union(*(L.spatial_axes(ctx.tags[d % nd]) for d in dims))
    if not mixed:
        return ctx.unary("identity")
    ctx.global_over(mixed, ctx.tags, f"{ctx.op} over spatial positions")


def _tags_of(ctx, i):
    x = ctx.input(i)
    tr = ctx.b.traced.get(x)
    return tr.tags if tr is not None else (None,) * len(ctx.need_shape(x))


@op("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul")
def _matmul(ctx):
    a, b = (0, 3) if ctx.op == "QLinearMatMul" else (0, 1)
    ta, tb = _tags_of(ctx, a), _tags_of(ctx, b)
    if ctx.op == "Gemm":
        if ctx.attr("transA", 0):
            ta = ta[::-1]
        if ctx.attr("transB", 0):
            tb = tb[::-1]
    ta1 = (None,) + ta if len(ta) == 1 else ta
    tb1 = tb + (None,) if len(tb) == 1 else tb
    mixed = L.spatial_axes(ta1[-1]) | L.spatial_axes(tb1[-2])
    lead = ta1[:-2] if len(ta1) >= len(tb1) else tb1[:-2]
    tags = lead + (ta1[-2], tb1[-1])
    out = ctx.need_shape(ctx.node.output[0])
    if len(tags) != len(out):
        tags = (None,) * len(out)
    _product(ctx, ta1, None if ctx.op == "Gemm" else tb1, tags, mixed, operands=(a, b))


def _product(ctx, ta1, tb1, tags, mixed, order=None, operands=(0, 1)):
    """A matrix product of operands tagged ``ta1`` (rows, contracted) and ``tb1`` (contracted,
    columns; None for a weight), whose output in matrix order is tagged ``tags`` and mixes the
    positions of ``mixed``; ``order`` puts matrix-order dims in the output's order (Einsum);
    ``operands`` are the two factors' input indices."""
    inputs = list(dict.fromkeys(tr.node for _, tr in ctx.tracked))
    place = (lambda t: t) if order is None else (lambda t: tuple(t[d] for d in order))
    if mixed:
        # a contraction over the positions of one window (attention weights @ v, Swin's exports)
        # reads that window; over anything else, every position
        plan = L.contraction_window(ta1, tb1)
        if plan is not None and _window_mix(ctx, plan, inputs, place(tags),
                                            f"{ctx.op} contracts over the positions of a window"):
            return
        if tb1 is not None and not L.spatial_axes(ta1[-1]) and not L.spatial_axes(tb1[-1]) and _per_query(
                ctx, operands, ta1, tb1, inputs, place(tags), "attention weights @ v, each query position "
                "reads every value position (an upper bound where a mask hides some)"):
            return  # the key dim spent (see below): row i reads its weights and every value
        return ctx.global_over(mixed, place(tags), f"{ctx.op} contracts over spatial positions", inputs=inputs)
    plan = L.scores_window(ta1, tb1) if tb1 is not None else None
    # the key dim is spent: softmax and @ v over it add nothing
    if plan is not None and _window_mix(ctx, plan, inputs, place(tags[:-1] + (None,)),
                                        f"{ctx.op}: attention scores within windows"):
        return
    if tb1 is not None and L.spatial_axes(ta1[-2]) and L.spatial_axes(tb1[-1]) and _per_query(
            ctx, operands, ta1, tb1, inputs, place(tags[:-1] + (None,)),
            "attention scores, each query position reads every key position (an upper bound where a mask "
            "hides some)"):
        return  # q @ kᵀ: row i, all a softmax over the keys and @ v use, reads query i and every key
    ctx.emit("identity" if len(inputs) == 1 else "add", {}, inputs, place(tags))


def _per_query(ctx, operands, ta1, tb1, inputs, tags, what):
    """The torch front-end's rule for attention products (``torch_ops._per_query``): output row
    ``i`` reads row ``i`` of the first factor and every position of the second, so the first
    factor's node joined to a ``global`` of the second's (queries and keys on different grids:
    PVT's spatial reduction). Only where the positions are in the rows of the first factor and
    in the second factor's matrix dims alone, and the factors are different nodes and the
    product's only inputs; the node, or None (nothing emitted)."""
    tra, trb = (ctx.b.traced.get(ctx.input(i)) for i in operands)
    if tra is None or trb is None or tra.node == trb.node or set(inputs) != {tra.node, trb.node}:
        return None
    if any(L.spatial_axes(t) for t in ta1[:-2] + tb1[:-2] + ta1[-1:]) or not L.spatial_axes(ta1[-2]):
        return None
    out = ctx.out_shape()
    if out is None or len(tags) != len(out):
        return None
    axes = tuple(range(ctx.naxes))
    ctx.b.global_ops[ctx.op] = ctx.b.global_ops.get(ctx.op, 0) + 1
    g = ctx.emit("global", {"axes": axes, "size": 1}, [trb.node], trb.tags, out=None, suffix="global",
                 note=f"ONNX {ctx.op}: {what}")
    return ctx.emit("add", {}, [tra.node, g], tags)


@op("Einsum")
def _einsum(ctx):
    """A two-operand Einsum that is a batched matrix product: every letter is a batch letter (in
    both operands and the output), a row or a column (in one operand and the output) or
    contracted (in both operands, not the output), at most one row, column and contracted
    letter (MaxViT's ``bhid,bhjd->bhij`` and ``bhij,bhjd->bhid``): read as that product. Anything
    else: the unsupported-op policy."""
    eq = str(ctx.attr("equation", "")).replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != 2 or not _ or "." in eq or any(len(set(t)) != len(t) for t in terms + [rhs]):
        return ctx.unsupported(f"equation {eq!r} is not a two-operand product")
    a, b = terms
    traced = [ctx.input(i) in ctx.b.traced for i in (0, 1)]
    if traced.count(True) == 1:
        return _einsum_by_constant(ctx, eq, terms[traced.index(True)], _tags_of(ctx, traced.index(True)), rhs)
    tag_a, tag_b = dict(zip(a, _tags_of(ctx, 0))), dict(zip(b, _tags_of(ctx, 1)))
    tags = {}  # per letter of the output: its operands' tag (a batch letter's must agree)
    for letter in rhs:
        found = {tag_a.get(letter), tag_b.get(letter)} - {None}
        if len(found) > 1:
            return ctx.unsupported(f"equation {eq!r} pairs dims holding different positions")
        tags[letter] = found.pop() if found else None
    batch = [c for c in rhs if c in a and c in b]
    rows = [c for c in rhs if c in a and c not in b]
    cols = [c for c in rhs if c in b and c not in a]
    summed = [c for c in a if c in b and c not in rhs]
    if len(rows) > 1 or len(cols) > 1 or len(summed) > 1 or set(rhs) - set(a) - set(b) or \
            set(a) - set(rhs) - set(summed) or set(b) - set(rhs) - set(summed):
        return ctx.unsupported(f"equation {eq!r} is not a batched matrix product")
    r, c, k = (rows or [None])[0], (cols or [None])[0], (summed or [None])[0]
    ta1 = tuple(tag_a[x] for x in batch) + (tag_a.get(r), tag_a.get(k))
    tb1 = tuple(tag_b[x] for x in batch) + (tag_b.get(k), tag_b.get(c))
    matrix = batch + [r, c]  # the output's dims in matrix order (None: a dim it does not have)
    order = [matrix.index(x) for x in rhs]
    mixed = L.spatial_axes(tag_a.get(k)) | L.spatial_axes(tag_b.get(k))
    _product(ctx, ta1, tb1, tuple(tags.get(x) for x in matrix), mixed, order)


def _einsum_by_constant(ctx, eq, letters, tags, rhs):
    """An Einsum of one traced operand (dims ``letters``, tagged ``tags``) with a constant (MViT's
    relative positions, ``byhwc,hkc->byhwk``): an output element reads the traced elements of its
    own letters, all values of the summed ones. Where no summed letter holds positions, each
    output position reads that position: an identity, the output's dims tagged by the traced
    operand's letters (the constant's own letters hold none); else a global over the summed
    positions."""
    tag = dict(zip(letters, tags))
    summed = frozenset().union(*(L.spatial_axes(tag[c]) for c in letters if c not in rhs))
    out_tags = tuple(tag.get(c) for c in rhs)
    if summed:
        return ctx.global_over(summed, out_tags, f"equation {eq!r} sums over spatial positions")
    return ctx.emit("identity", {}, [ctx.src], out_tags)


def _window_mix(ctx, plan, inputs, tags, what):
    """Emit the exact index map of mixing positions within windows (the steps of
    :func:`~rfgraph.frontends.torch_layout.window_steps`) into an output tagged ``tags``; the
    output node's name, or None (nothing emitted) when the inputs' grids do not fit."""
    grids = {L.axis_sizes(tr.tags, ctx.need_shape(x), ctx.naxes) for x, tr in ctx.tracked}
    if len(grids) != 1:
        return None
    found = L.window_steps(plan, grids.pop(), tags, ctx.naxes)
    if found is None:
        return None
    steps, tags, where = found
    node = inputs[0] if len(inputs) == 1 else ctx.emit("add", {}, inputs, tags, out=None, suffix="inputs")
    for op_name, params, short in steps[:-1]:
        node = ctx.emit(op_name, params, [node], tags, out=None, suffix=short)
    op_name, params, _ = steps[-1]
    return ctx.emit(op_name, params, [node], tags,
                    note=f"ONNX {ctx.op}: {what} ({where}): each position reads exactly its window")


@op("GridSample", "GatherElements", "GatherND", "ScatterElements", "TopK", "NonZero", "RoiAlign",
    "MaxRoiPool", "NonMaxSuppression", "Compress", "Attention")
def _data_dependent(ctx):
    ctx.global_all(f"spatial index map depends on data or is not one of ours ({ctx.op}): treated as global")


@op("ScatterND")
def _scatter_nd(ctx):
    """``data`` with ``updates`` written at constant ``indices``. Where they overwrite every
    element of ``data`` in its own order (how the TorchScript exporter writes ``x[:, :, 0:] = y``),
    the output is ``updates``: no node. Anything else: global, said so."""
    data, indices, updates = ctx.input(0), ctx.const(1), ctx.input(2)
    tr = ctx.b.traced.get(updates) if updates else None
    shape, ushape = ctx.shape(data), ctx.shape(updates) if updates else None
    if tr is not None and indices is not None and shape is not None and shape == ushape and \
            ctx.attr("reduction", "none") == "none" and _writes_all_in_order(np.asarray(indices, dtype=np.int64), tuple(shape)):
        return ctx.set(ctx.node.output[0], tr.node, tr.tags)
    return _data_dependent(ctx)


def _writes_all_in_order(indices, shape) -> bool:
    """ScatterND's ``indices`` (``(..., k)``) write update ``i`` to element ``i`` of every one of the
    ``shape[:k]`` leading positions (the updates then are the data, element for element)."""
    k = indices.shape[-1] if indices.ndim else 0
    if not 0 < k <= len(shape) or indices.shape[:-1] != tuple(shape[:k]):
        return False
    flat = indices.reshape(-1, k)
    want = np.indices(shape[:k]).reshape(k, -1).T
    return bool(np.array_equal(flat, want))


# --- shapes, layout, slicing, padding, resampling ------------------------------------------------


@op("Shape", "Size")
def _shape_of(ctx):
    """No node: the value is the inferred shape, a constant for the folding evaluator."""
    from .onnx import FOLD, _ShapeOnly

    shape = ctx.shape(ctx.x)
    if shape is not None:
        ctx.b.consts[ctx.node.output[0]] = np.asarray(FOLD[ctx.op](ctx.node, [_ShapeOnly(shape)], ctx.opset))


@op("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _view(ctx):
    ins, out = ctx.shape(ctx.x), ctx.out_shape()
    if ins is None or out is None:
        return ctx.global_all(f"{ctx.op} to a shape shape inference does not know: treated as global")
    ctx.passthrough(tags=L.view_tags(ins, ctx.tags, out))


@op("Transpose")
def _transpose(ctx):
    perm = ctx.attr("perm") or list(range(len(ctx.tags)))[::-1]
    ctx.passthrough(tags=L.permute_tags(ctx.tags, [int(p) for p in perm]))


def _slice_params(ctx, ranges):
    """Our ``slice`` params from ``{axis: range}``; a negative step is a flip, then a slice."""
    start, stop, step = [None] * ctx.naxes, [None] * ctx.naxes, [1] * ctx.naxes
    flips = []
    for ax, r in ranges.items():
        if r.step < 0:
            flips.append(ax)
            n = ctx.need_shape(ctx.x)[ctx.tags.index(ax)]
            r = range(n - 1 - r.start, n - 1 - r.start - r.step * len(r), -r.step)
        start[ax], stop[ax], step[ax] = r.start, r.start + r.step * (len(r) - 1) + 1, r.step
    return {"start": tuple(start), "stop": tuple(stop), "step": tuple(step)}, tuple(sorted(flips))


def _emit_slice(ctx, ranges, tags=None, out=0, suffix=None):
    params, flips = _slice_params(ctx, ranges)
    src = ctx.src
    if flips:
        src = ctx.emit("flip", {"axes": flips}, [src], out=None, suffix="flip")
    return ctx.emit("slice", params, [src], tags, out=out, suffix=suffix)


def _spatial_ranges(ctx, dims_ranges):
    """``{axis: range}`` for the dims that hold one spatial axis and are really sliced; the
    scrambled axes sliced (which make the node global)."""
    shape = ctx.need_shape(ctx.x)
    ranges, scrambled = {}, set()
    for d, r in dims_ranges.items():
        tag = ctx.tags[d]
        if r == range(shape[d]) or tag is None:
            continue
        if isinstance(tag, int):
            ranges[tag] = r
        else:
            scrambled |= L.spatial_axes(tag)
    return ranges, scrambled


@op("Slice")
def _slice(ctx):
    shape = ctx.need_shape(ctx.x)
    if ctx.opset < 10:
        starts, ends, axes, steps = ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes"), None
    else:
        starts, ends = ctx.need_const(1, "starts").tolist(), ctx.need_const(2, "ends").tolist()
        axes = ctx.need_const(3, "axes").tolist() if ctx.input(3) else None
        steps = ctx.need_const(4, "steps").tolist() if ctx.input(4) else None
    axes = axes or list(range(len(starts)))
    steps = steps or [1] * len(starts)
    dims = {int(a) % len(shape): range(*slice(int(s), int(e), int(st)).indices(shape[int(a) % len(shape)]))
            for s, e, a, st in zip(starts, ends, axes, steps)}
    ranges, scrambled = _spatial_ranges(ctx, dims)
    if scrambled:
        return ctx.global_over(scrambled, ctx.tags, "slicing a dim of reordered positions: treated as global")
    if not ranges:
        return ctx.passthrough()
    _emit_slice(ctx, ranges)


@op("Split")
def _split(ctx):
    shape = ctx.need_shape(ctx.x)
    axis = int(ctx.attr("axis", 0)) % len(shape)
    pos = 0
    for k, o in enumerate(ctx.node.output):
        size = ctx.need_shape(o)[axis]
        ranges, scrambled = _spatial_ranges(ctx, {axis: range(pos, pos + size)})
        pos += size
        if scrambled:
            return ctx.global_over(scrambled, ctx.tags, "splitting a dim of reordered positions: treated as global")
        if not ranges:
            ctx.passthrough(out=k)
        else:
            _emit_slice(ctx, ranges, out=k, suffix=str(k) if k else None)


@op("Gather")
def _gather(ctx):
    if ctx.input(0) != ctx.x:  # traced indices into a constant table: data-dependent
        return _data_dependent(ctx)
    shape = ctx.need_shape(ctx.x)
    axis = int(ctx.attr("axis", 0)) % len(shape)
    idx = ctx.need_const(1, "indices").astype(np.int64)
    tag = ctx.tags[axis]
    tags = ctx.tags[:axis] + (None,) * idx.ndim + ctx.tags[axis + 1:]
    if tag is None:
        return ctx.passthrough(tags=tags)
    flat = np.where(idx < 0, idx + shape[axis], idx).reshape(-1)
    step = int(flat[1] - flat[0]) if flat.size > 1 else 1
    regular = flat.size and step > 0 and np.array_equal(flat, flat[0] + step * np.arange(flat.size))
    if not isinstance(tag, int) or not regular or idx.ndim > 1:
        return ctx.global_over(L.spatial_axes(tag), tags, "gathering positions along a spatial axis: global")
    if idx.ndim == 0:
        tags = ctx.tags[:axis] + ctx.tags[axis + 1:]
    _emit_slice(ctx, {tag: range(int(flat[0]), int(flat[-1]) + 1, step)}, tags=tags)


@op("Expand", "Tile")
def _expand(ctx):
    ins, out = ctx.need_shape(ctx.x), ctx.need_shape(ctx.node.output[0])
    extra = len(out) - len(ins)
    tags = (None,) * extra + ctx.tags
    grown = [t for t, i, o in zip(ctx.tags, ins, out[extra:]) if i != o and t is not None]
    if not grown:
        return ctx.passthrough(tags=tags)
    if ctx.op == "Expand" and L.is_standard(ctx.tags, ins, ctx.naxes):
        return ctx.emit("upsample", {"size": out[-ctx.naxes:], "mode": "nearest"}, tags=tags)
    axes = frozenset().union(*(L.spatial_axes(t) for t in grown))
    ctx.global_over(axes, tags, f"{ctx.op} along spatial axes: global (not tractable)")


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}


@op("Pad")
def _pad(ctx):
    mode = ctx.attr("mode", "constant")
    if mode not in _PAD_MODES:
        raise ExportError(f"unknown pad mode {mode!r} (ONNX has constant, reflect, edge, wrap)",
                          node=ctx.name, op=ctx.op)
    rank = len(ctx.tags)
    pads = ctx.attr("pads") if ctx.opset < 11 else ctx.need_const(1, "pads").tolist()
    axes = ctx.need_const(3, "axes").tolist() if ctx.opset >= 18 and ctx.input(3) else list(range(rank))
    n = len(axes)
    pairs = [(0, 0)] * ctx.naxes
    touched = False
    for i, a in enumerate(axes):
        before, after = int(pads[i]), int(pads[i + n])
        tag = ctx.tags[int(a) % rank]
        if before == 0 and after == 0 or tag is None:
            continue
        if not isinstance(tag, int):
            return ctx.global_over(L.spatial_axes(tag), ctx.tags, "padding a dim of reordered positions: global")
        pairs[tag] = (before, after)
        touched = True
    if not touched:
        return ctx.passthrough()
    ours = _PAD_MODES[mode]
    note = "circular padding: features near a border read the opposite border" if ours == "circular" else None
    ctx.unary("pad", {"padding": tuple(pairs), "mode": ours}, note=note)


@op("DepthToSpace")
def _depth_to_space(ctx):
    if _window_layout_ok(ctx, "DepthToSpace"):
        # output position o reads input position floor(o / r) (both DCR and CRD): nearest by r
        ctx.unary("upsample", {"scale": float(ctx.attr("blocksize")), "mode": "nearest"})


@op("SpaceToDepth")
def _space_to_depth(ctx):
    if _window_layout_ok(ctx, "SpaceToDepth"):
        # the feature vector at o gathers the r x r block: a window with kernel = stride = r
        ctx.unary("avgpool", {"kernel": int(ctx.attr("blocksize"))})


def onnx_nearest(n_in, n_out, scale, mode, nearest_mode):
    """The input index each output index reads in ONNX ``Resize`` (mode nearest), or None for a
    coordinate transformation that needs more than the sizes (``tf_crop_and_resize``).

    >>> onnx_nearest(3, 6, 2.0, "half_pixel", "round_prefer_floor").tolist()
    [0, 0, 1, 1, 2, 2]
    """
    d = np.arange(n_out, dtype=np.float64)
    if mode == "half_pixel":
        x = (d + 0.5) / scale - 0.5
    elif mode == "pytorch_half_pixel":
        x = (d + 0.5) / scale - 0.5 if n_out > 1 else np.zeros(n_out)
    elif mode == "align_corners":
        x = d * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
    elif mode == "asymmetric":
        x = d / scale
    elif mode == "tf_half_pixel_for_nn":
        x = (d + 0.5) / scale
    elif mode == "half_pixel_symmetric":
        adj = n_out / (scale * n_in)
        x = n_in / 2 * (1 - adj) + (d + 0.5) / scale - 0.5
    else:
        return None
    rounding = {"round_prefer_floor": lambda v: np.ceil(v - 0.5), "round_prefer_ceil": lambda v: np.floor(v + 0.5),
                "floor": np.floor, "ceil": np.ceil}.get(nearest_mode)
    if rounding is None:
        return None
    return np.clip(rounding(x), 0, n_in - 1).astype(np.int64)


_TRANSFORMS = ("half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
               "half_pixel_symmetric")


def _f32(v):
    """A float32 value as the decimal it was written as (0.6, not 0.6000000238...)."""
    return float(str(np.float32(v)))


def _resize(ctx, mode, ctm, nearest_mode, scales, sizes, exclude_outside=0, cubic_a=-0.75, roi=None,
            antialias=False, aspect=None):
    """PyTorch's ``upsample`` where its index map is ONNX's (torchvision exports keep their op),
    else ``resample_map``, which follows ONNX's coordinate rules exactly. ``roi``: the
    ``(start, end)`` pair of every dim, for ``tf_crop_and_resize``; ``antialias``: ONNX's
    antialias filter (linear and cubic); ``aspect``: with ``sizes`` (the output), the scale of
    every dim that ``keep_aspect_ratio_policy`` chose (exact fractions)."""
    if not _window_layout_ok(ctx, "resizing"):
        return
    ins = ctx.need_shape(ctx.x)
    nd = len(ins)
    crop = ctm == "tf_crop_and_resize"
    if sizes is not None:
        out = tuple(int(v) for v in sizes)
        scale = [o / i for o, i in zip(out, ins)]
    else:
        scale = [_f32(v) for v in scales]
        # floor(n_in * scale) for tf_crop_and_resize too, as onnxruntime does (the spec's
        # floor(n_in * (end - start) * scale) is not what it runs)
        out = tuple(math.floor(i * exact_scale(s)) for i, s in zip(ins, scale))
    if len(out) != nd or out[:2] != ins[:2]:
        return ctx.unsupported(f"resizing the batch or channel dims (from {ins} to {out})")
    if crop and any(n > 1 and tuple(roi[d]) != (0, 1) for d, n in enumerate(ins[:2])):
        return ctx.unsupported(f"tf_crop_and_resize cropping the batch or channel dims (roi {roi[:2]})")
    n_in, n_out, sc = ins[2:], out[2:], scale[2:]
    by_scale = sizes is None and not crop  # a crop's coordinates follow the output size
    base = {"scale": tuple(sc)} if by_scale else {"size": n_out}
    if crop and sizes is None:  # the output size, and the scale an antialias filter widens by
        base["scale"] = tuple(sc)
    policy = aspect is not None and any(Fraction(b, a) != r for a, b, r in zip(n_in, n_out, aspect[2:]))
    if policy:  # the stretch map with the policy's scale, not size / n_in
        base["scale"] = tuple(float(r) for r in aspect[2:])
    why = f"mode {mode!r} with coordinate_transformation_mode {ctm!r}"
    if mode not in ("nearest", "linear", "cubic"):
        return ctx.unsupported(f"interpolation mode {mode!r}")
    if ctm not in _TRANSFORMS and not crop:
        return ctx.unsupported(f"{why} (only {', '.join(_TRANSFORMS)} and tf_crop_and_resize are supported)")
    if mode == "nearest" and nearest_mode not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
        return ctx.unsupported(f"{why} and nearest_mode {nearest_mode!r}")
    general = dict(base, mode=mode, transform=ctm, nearest_mode=nearest_mode, exclude_outside=bool(exclude_outside),
                   cubic_a=float(cubic_a))
    if antialias and mode == "nearest":  # onnxruntime and ONNX's reference refuse it too
        return ctx.unsupported("antialias with mode 'nearest' (only linear and cubic take it)")
    if antialias:
        general["antialias"] = True
    if crop or policy:  # no upsample has this index map
        if crop:
            general["roi"] = tuple(tuple(r) for r in roi[2:])
        return ctx.unary("resample_map", general)
    exact = [resample_support(a, b, exact_scale(s) if by_scale else Fraction(b, a), mode, ctm, nearest_mode,
                              bool(exclude_outside), cubic_a, antialias=bool(antialias))
             for a, b, s in zip(n_in, n_out, sc)]

    def same(ours, align_corners=False, by_size=False):  # upsample's index map is ONNX's on every axis
        return all(support_of_taps(arith.upsample_taps(a, b, ours, align_corners, None if by_size or not by_scale else s),
                                   b) == want for a, b, s, want in zip(n_in, n_out, sc, exact))

    if mode == "nearest":
        for ours in ("nearest", "nearest-exact"):
            if same(ours):
                return ctx.unary("upsample", dict(base, mode=ours))
        return ctx.unary("resample_map", general)
    ours = {"linear": "linear", "cubic": "bicubic"}[mode]
    ok = ctm == "half_pixel" or ctm == "align_corners" or (ctm == "pytorch_half_pixel" and all(b > 1 for b in n_out))
    if ours == "bicubic" and (exclude_outside or cubic_a != -0.75):
        ok = False
    if ok and ctm == "align_corners" and same(ours, align_corners=True, by_size=True):
        return ctx.unary("upsample", dict(size=n_out, mode=ours, align_corners=True))
    if ok and ctm != "align_corners" and same(ours):
        return ctx.unary("upsample", dict(base, mode=ours))
    ctx.unary("resample_map", general)


@op("Resize")
def _resize_op(ctx):
    policy = ctx.attr("keep_aspect_ratio_policy", "stretch")
    if policy not in ("stretch", "not_larger", "not_smaller"):
        return ctx.unsupported(f"keep_aspect_ratio_policy {policy!r}")
    given_sizes = False
    if ctx.opset < 11:
        scales, sizes = ctx.need_const(1, "scales"), None
    else:
        scales = ctx.const(2) if ctx.input(2) else None
        sizes = ctx.const(3) if ctx.input(3) else None
        given_sizes = sizes is not None
        if scales is not None and scales.size == 0:
            scales = None
        if scales is None and sizes is None:
            out = ctx.out_shape()
            if out is None:
                ctx.need_const(3 if ctx.input(3) else 2, "sizes or scales")
            sizes = np.array(out)
    axes = ctx.attr("axes")
    ins = ctx.need_shape(ctx.x)
    if axes:  # opset 18: scales/sizes for these axes only
        full = list(ins) if sizes is not None else [1.0] * len(ins)
        for a, v in zip(axes, (sizes if sizes is not None else scales)):
            full[int(a) % len(ins)] = v
        sizes, scales = (full, None) if sizes is not None else (None, full)
    aspect = None
    if policy != "stretch" and sizes is not None:  # the spec's rule: one scale for the resized dims
        if not given_sizes:
            return ctx.unsupported(f"keep_aspect_ratio_policy {policy!r} with sizes known only at run time")
        dims = [int(a) % len(ins) for a in axes] if axes else list(range(len(ins)))
        ratios = [Fraction(int(sizes[d]), ins[d]) for d in dims]
        r = min(ratios) if policy == "not_larger" else max(ratios)
        aspect = [r if d in dims else Fraction(1) for d in range(len(ins))]
        sizes = [math.floor(r * ins[d] + Fraction(1, 2)) if d in dims else ins[d] for d in range(len(ins))]
    mode = ctx.attr("mode", "nearest")
    ctm = ctx.attr("coordinate_transformation_mode", "half_pixel" if ctx.opset >= 11 else "asymmetric")
    nearest = ctx.attr("nearest_mode", "round_prefer_floor") if ctx.opset >= 11 else "floor"
    roi = None
    if ctm == "tf_crop_and_resize":
        given = ctx.need_const(1, "roi").astype(np.float64).ravel() if ctx.input(1) else np.zeros(0)
        k = len(axes) if axes else len(ins)
        if given.size != 2 * k:
            return ctx.unsupported(f"tf_crop_and_resize with a roi of {given.size} values (needs {2 * k})")
        pairs = [(_f32(a), _f32(b)) for a, b in zip(given[:k], given[k:])]
        roi = [(0.0, 1.0)] * len(ins)
        for d, pair in zip([int(a) % len(ins) for a in axes] if axes else range(len(ins)), pairs):
            roi[d] = pair
    _resize(ctx, mode, ctm, nearest, None if sizes is not None else scales, sizes,
            ctx.attr("exclude_outside", 0), ctx.attr("cubic_coeff_a", -0.75), roi, ctx.attr("antialias", 0),
            aspect)


@op("Upsample")
def _upsample_op(ctx):
    scales = ctx.attr("scales")
    if scales is None:
        scales = ctx.need_const(1, "scales")
    mode = ctx.attr("mode", "nearest")
    # Upsample (opsets 7-9) maps output d to input d / scale, flooring for nearest
    _resize(ctx, "linear" if mode in ("linear", "bilinear") else mode, "asymmetric", "floor", scales, None)
