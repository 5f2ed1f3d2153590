"""The torch op table: aten ops -> rfgraph's canonical ops (this module only translates).

Each handler receives a :class:`Ctx` (the op, its arguments bound **by name** from the op's
schema, the traced inputs and the output) and either emits a node in the graph schema, passes the
input's node through with new dimension tags (views, copies), or applies the unsupported-op policy.

Register a handler for a new op with :func:`register_torch_op`.
"""

from __future__ import annotations

import itertools

from ..errors import RFGraphError
from . import torch_layout as L

__all__ = ["register_torch_op", "handle", "Ctx", "HANDLERS"]

HANDLERS = {}
_SCHEMAS = {}
_MISSING = object()


def register_torch_op(packet: str, handler=None, *, replace: bool = False):
    """Register ``handler(ctx)`` for an aten op packet (``"my_op"`` for ``aten::my_op``, or a
    custom namespace's ``"mylib::op"``). Usable as a decorator.

    Examples
    --------
    Map a custom pointwise op to identity:

    >>> from rfgraph.frontends.torch_ops import register_torch_op
    >>> _ = register_torch_op("my_swish", lambda ctx: ctx.unary("identity", {}), replace=True)
    """

    def deco(fn):
        key = packet.split("::", 1)[1] if packet.startswith("aten::") else packet
        if key in HANDLERS and not replace:
            raise ValueError(f"a handler for {packet!r} is already registered; pass replace=True")
        HANDLERS[key] = fn
        return fn

    return deco(handler) if handler is not None else deco


def _bind(func, args, kwargs):
    """Arguments by name, defaults filled in from the op's schema."""
    spec = _SCHEMAS.get(func)
    if spec is None:
        spec = _SCHEMAS[func] = [
            (a.name, a.default_value if a.has_default_value() else _MISSING) for a in func._schema.arguments
        ]
    out = {}
    for i, (name, default) in enumerate(spec):
        if i < len(args):
            out[name] = args[i]
        elif name in kwargs:
            out[name] = kwargs[name]
        elif default is not _MISSING:
            out[name] = default
    return out


class Ctx:
    """One op being translated."""

    def __init__(self, builder, func, args, kwargs, out, tracked, packet):
        self.b = builder
        self.func = func
        self.a = _bind(func, args, kwargs)
        self.out = out
        self.tracked = tracked  # list of (tensor, Traced) in argument order
        self.packet = packet
        self.aten = f"aten::{packet}" if func.namespace == "aten" else str(func)
        self.short = packet.strip("_")
        self.naxes = builder.naxes

    # -- helpers ----------------------------------------------------------------------------
    @property
    def x(self):
        """The first traced input tensor."""
        return self.tracked[0][0]

    @property
    def tags(self):
        return self.tracked[0][1].tags

    @property
    def node(self):
        return self.tracked[0][1].node

    def out_tensor(self, i=0):
        import torch

        o = self.out
        if isinstance(o, (list, tuple)):
            o = o[i]
        return o if isinstance(o, torch.Tensor) else None

    def spatial_shape(self, t, tags):
        if L.is_standard(tags, tuple(t.shape), self.naxes):
            return tuple(t.shape[-self.naxes:])
        return None

    def emit(self, op, params, inputs, tags, short=None, note=None, out=None):
        """Add a node and mark the output tensor as its result."""
        t = self.out_tensor() if out is None else out
        shape = self.spatial_shape(t, tags) if t is not None else None
        name = self.b.add(op, params, inputs, short or self.short, aten=self.aten, note=note, shape=shape)
        self._track_uniform(name, op, params, inputs)
        if t is not None:
            self.b.set(t, name, tags)
            sizes = L.axis_sizes(tags, tuple(t.shape), self.naxes) if len(tags) == t.dim() else None
            if sizes is not None and all(v is not None for v in sizes):
                self.b.grid[name] = sizes
        return name

    def _track_uniform(self, name, op, params, inputs):
        """Which axes the new node's features all see alike (see ``Builder.uniform``): a global
        node's axes; an identity keeps its input's; a join keeps what all its inputs share."""
        uni = self.b.uniform
        if op == "global":
            axes = frozenset(params.get("axes") or range(self.naxes))
        elif op == "identity" and len(inputs) == 1:
            axes = uni.get(inputs[0])
        elif op in ("add", "mul"):
            # an element of a sum sees its inputs' elements: one that sees the whole input along
            # an axis makes every sum see it (the engine's join of a global input); ViT's
            # residual adds after attention are global
            axes = frozenset().union(*(uni.get(v, frozenset()) for v in inputs))
        elif op == "concat" and all(v in uni for v in inputs):
            # a feature vector holds every input's channels: alike only where all inputs are
            axes = frozenset.intersection(*(uni[v] for v in inputs))
        else:
            axes = None
        if axes:
            uni[name] = axes

    def grids_differ(self, nodes):
        """True when the nodes' outputs are known to hold different numbers of positions along
        some axis (a size 1 broadcasts), or when some node's grid is unknown: a join of them would
        pair positions that do not correspond."""
        grids = [self.b.grid.get(v) for v in nodes]
        if any(g is None for g in grids):
            return True
        for ax in range(self.naxes):
            sizes = {g[ax] for g in grids} - {1}
            if len(sizes) > 1:
                return True
        return False

    def out_sizes(self, tags):
        """Positions per axis of the output tensor as its tags tell (None where they do not)."""
        t = self.out_tensor()
        if t is None or len(tags) != t.dim():
            return (None,) * self.naxes
        return L.axis_sizes(tags, tuple(t.shape), self.naxes)

    def unary(self, op, params, tags=None, note=None):
        return self.emit(op, params, [self.node], self.tags if tags is None else tags, note=note)

    def passthrough(self, tags=None, out=None):
        """No new node: the output's elements have the input's receptive fields."""
        t = self.out_tensor() if out is None else out
        if t is not None:
            self.b.set(t, self.node, self.tags if tags is None else tags)
        return self.node

    def global_over(self, axes, tags, note, keep=True, inputs=None):
        """A node whose features depend on the whole input along ``axes``; ``note`` says why (the
        node's ``note`` names the aten op: every global mapping is visible where users look)."""
        if self.aten not in note:
            note = f"{self.aten}: {note}"
        axes = tuple(sorted(axes))
        inputs = list(inputs or [self.node])
        if len(inputs) > 1 and self.grids_differ(inputs):
            # inputs on different grids (queries and downsampled keys, a class token and a
            # token grid): each is reduced to one feature over every axis, then joined
            axes = tuple(range(self.naxes))
            self.b.global_ops[self.aten] = self.b.global_ops.get(self.aten, 0) + 1
            parts = [self.b.add("global", {"axes": axes, "size": 1}, [v], self.short + "_global", aten=self.aten,
                                note=note) for v in inputs]
            inputs = [self.b.add("add", {}, parts, self.short + "_inputs", aten=self.aten)]
            keep = False
        elif len(inputs) > 1:  # the union of the inputs first, then the global op
            inputs = [self.b.add("add", {}, inputs, self.short + "_inputs", aten=self.aten)]
        if not axes:
            return self.emit("identity" if len(inputs or [self.node]) == 1 else "add", {},
                             inputs or [self.node], tags)
        self.b.global_ops[self.aten] = self.b.global_ops.get(self.aten, 0) + 1
        # the output's own number of positions where its tags tell it (a global node must not keep
        # a size its input had before a reshape), else the input's (keep) or one feature
        sizes = self.out_sizes(tags)
        t = self.out_tensor()
        if t is not None and len(tags) == t.dim():
            # an axis no dim of the output holds (attention from learned queries onto the map:
            # DETR's decoder) has one position, not the input's
            held = frozenset().union(*(L.spatial_axes(x) for x in tags))
            sizes = tuple(1 if n is None and a not in held else n for a, n in enumerate(sizes))
        if all(sizes[a] is not None for a in axes):
            size = tuple(sizes[a] if a in axes else 1 for a in range(self.naxes))
            if keep and self.b.grid.get(inputs[0]) is not None and all(
                    self.b.grid[inputs[0]][a] == size[a] for a in axes):
                size = None
        else:
            size = None if keep else 1
        node = self.emit("global", {"axes": axes, "size": size}, inputs or [self.node], tags, note=note)
        return node

    def identity_approx(self, note):
        """An ``identity`` node standing for an op whose map is not known (the identity policy):
        a node, not a pass-through, so that its ``note`` shows in the table, JSON and diagram."""
        out = self.out_tensor()
        tags = self.tags if out is None or out.dim() == len(self.tags) else (None,) * out.dim()
        return self.emit("identity", {}, [self.node], tags, note=note)

    def global_all(self, note):
        axes = set()
        for _, tr in self.tracked:
            for t in tr.tags:
                axes |= L.spatial_axes(t)
        inputs = list(dict.fromkeys(tr.node for _, tr in self.tracked))
        out = self.out_tensor()
        tags = tuple(None for _ in out.shape) if out is not None else ()
        if out is not None and len(out.shape) == len(self.tags):
            tags = self.tags
        return self.global_over(axes or range(self.naxes), tags, note, keep=True, inputs=inputs)

    def dim_tag(self, dim, tags=None):
        tags = self.tags if tags is None else tags
        return tags[dim % len(tags)]


def _ints(v, n):
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(x) for x in v)
    return v * n if len(v) == 1 else v


def handle(builder, func, args, kwargs, out):
    """Translate one aten op (called by the tracer after the op ran on meta tensors)."""
    import torch

    tracked = []
    for a in args:
        if isinstance(a, torch.Tensor):
            tr = builder.get(a)
            if tr is not None:
                tracked.append((a, tr))
        elif isinstance(a, (list, tuple)):
            for t in a:
                if isinstance(t, torch.Tensor):
                    tr = builder.get(t)
                    if tr is not None:
                        tracked.append((t, tr))
    for a in kwargs.values():
        if isinstance(a, torch.Tensor) and builder.get(a) is not None:
            tracked.append((a, builder.get(a)))
    if not tracked:
        return
    if builder.uniform:
        tracked = [(t, _as_map(builder, t, tr)) for t, tr in tracked]
    packet = func._overloadpacket.__name__
    handler = HANDLERS.get(packet)
    if handler is None and func.namespace != "aten":
        handler = HANDLERS.get(f"{func.namespace}::{packet}")
    ctx = Ctx(builder, func, args, kwargs, out, tracked, packet)
    if handler is None:
        if torch.Tag.pointwise in func.tags:
            handler = _pointwise
        elif packet.endswith("_like") or packet.startswith("new_"):
            return  # a fresh tensor of the same shape: its values do not come from the input
        else:
            return builder.unsupported(ctx, "no handler")
    try:
        handler(ctx)
    except RFGraphError:
        raise
    except Exception as exc:  # a layout no handler foresaw: honestly global, never a crash
        module = builder.module_stack[-1] or "<top level>"
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
        ctx.global_all(f"{ctx.aten} in module {module!r}: its layout could not be followed "
                       f"({type(exc).__name__}: {why}); treated as global")


def op(*packets):
    def deco(fn):
        for p in packets:
            register_torch_op(p, fn)
        return fn

    return deco


# --- convolution and pooling ---------------------------------------------------------------


def _check_layout(ctx, what, nd=None):
    """True when the input is a plain ``(N, C, *spatial)`` map; otherwise the node is emitted here
    (identity over non-spatial dims, global over scrambled ones) and False returned."""
    t, tags = ctx.x, ctx.tags
    if L.is_standard(tags, tuple(t.shape), ctx.naxes) and nd in (None, ctx.naxes):
        return True
    nd = ctx.naxes if nd is None else nd
    axes = frozenset().union(*(L.spatial_axes(x) for x in tags[-nd:]))
    if not axes:  # a window over non-spatial dims (e.g. a conv over channels): positions unchanged
        ctx.unary("identity", {}, note=f"{what} over non-spatial dims")
        return False
    out = ctx.out_tensor()
    held = frozenset().union(*(L.spatial_axes(x) for x in tags))
    if out is not None and out.dim() == len(tags) and nd == ctx.naxes and held <= axes == frozenset(range(nd)):
        # global over every axis, its features all see alike: the output is the map its shape
        # says, with the op's own output size (an upsample over scrambled dims must not keep
        # the input's size, or a later join with a real map of that size fails)
        tags = (None,) * (len(tags) - nd) + tuple(range(nd))
    ctx.global_over(axes, tags, f"{ctx.aten}: {what} over scrambled spatial dims: treated as global "
                                "(not tractable)")
    return False


def _window_axes(ctx, nd, what):
    """The network axis behind each of an ``nd``-D window op's dims (the input's last ``nd``), None
    for a dim without positions, or None after emitting a fallback node (see :func:`_check_layout`).

    PyTorch lowers 1-D pooling through the 2-D kernel on an unsqueezed ``(N, C, 1, L)`` tensor, and
    a 1-D op may run over one axis of a 2-D map: a window dim holding no positions (tag None) is
    left out, a network axis outside the window is untouched by the op.
    """
    tags, shape = ctx.tags, tuple(ctx.x.shape)
    if nd == ctx.naxes and L.is_standard(tags, shape, nd):
        return list(range(nd))
    win = tags[-nd:] if len(tags) >= nd else ()
    axes = [t if isinstance(t, int) else None for t in win]
    ints = [a for a in axes if a is not None]
    # an axis whose positions also sit in another dim (RAFT's correlation volume pools fmap2's
    # positions while fmap1's fill the batch dim) has no single size for the node to follow
    elsewhere = frozenset().union(*(L.spatial_axes(t) for t in tags[:len(tags) - nd]))
    if len(win) != nd or not ints or len(set(ints)) != len(ints) or elsewhere & set(ints) or any(
            t is not None and not isinstance(t, int) for t in win):
        _check_layout(ctx, what, nd)
        return None
    return axes


def _per_axis(ctx, values, axes, neutral):
    """Per network axis: the value of the window dim holding it, ``neutral`` on the others."""
    out = [neutral] * ctx.naxes
    for v, ax in zip(values, axes):
        if ax is not None:
            out[ax] = v
    return tuple(out)


@op("convolution", "_convolution")
def _conv(ctx):
    a = ctx.a
    nd = a["weight"].dim() - 2
    pointwise = (all(k == 1 for k in a["weight"].shape[2:]) and all(v == 1 for v in _ints(a["stride"], nd))
                 and not any(_ints(a["padding"], nd)) and not a["transposed"])
    if pointwise and not L.is_standard(ctx.tags, tuple(ctx.x.shape), ctx.naxes) and len(ctx.tags) > nd and \
            not L.spatial_axes(ctx.tags[-nd - 1]):
        # a 1x1 conv mixes channels only, whatever the spatial dims hold (windows of MaxViT's NCHW
        # attention): positions unchanged
        return ctx.unary("identity", {}, note="1x1 convolution over a re-laid-out map: positions unchanged")
    windows = None if a["transposed"] else L.partition_windows(ctx.tags, nd, tuple(ctx.x.shape))
    if windows is not None and _in_windows(ctx, nd, windows, "conv", dict(
            kernel=tuple(a["weight"].shape[2:]), stride=_ints(a["stride"], nd), dilation=_ints(a["dilation"], nd),
            padding=_ints(a["padding"], nd))):
        return
    axes = _window_axes(ctx, nd, "convolution")
    if axes is None:
        return
    k = tuple(a["weight"].shape[2:])
    params = dict(kernel=_per_axis(ctx, k, axes, 1), stride=_per_axis(ctx, _ints(a["stride"], nd), axes, 1),
                  dilation=_per_axis(ctx, _ints(a["dilation"], nd), axes, 1),
                  padding=_per_axis(ctx, _ints(a["padding"], nd), axes, 0))
    if a["transposed"]:
        params["output_padding"] = _per_axis(ctx, _ints(a["output_padding"], nd), axes, 0)
        ctx.emit("convtranspose", params, [ctx.node], ctx.tags, short="convtranspose")
    else:
        ctx.emit("conv", params, [ctx.node], ctx.tags, short="conv")


def _in_windows(ctx, nd, windows, kind, params):
    """A conv or pooling over the dims of a window partition (``(N*windows, C, w, w)``) runs on
    each window on its own. Where no window reaches past its own (no padding, strides dividing
    the windows, kernels no wider than their strides: SAM2's Hiera pools each window's queries)
    it is that op on the whole map, the windows shrunk by the strides; where it keeps each
    window's size (EfficientViT-M's depthwise conv on the queries, zero-padded at each window's
    edges), a ``window_conv``. Else False: the caller's fallback. ``params`` are per window dim."""
    out = ctx.out_tensor()
    if out is None:
        return False
    axes = [ax for ax, _ in windows]
    sizes = [w for _, w in windows]
    k, s, d, pad = (params[key] for key in ("kernel", "stride", "dilation", "padding"))
    shrunk = {}
    for i, (ax, w) in enumerate(windows):
        if pad[i] or w % s[i] or d[i] * (k[i] - 1) + 1 > s[i] or out.shape[-nd + i] != w // s[i]:
            shrunk = None
            break
        if s[i] > 1:
            shrunk[ax] = w // s[i]
    per_axis = {key: _per_axis(ctx, v, axes, 1 if key != "padding" else 0) for key, v in params.items()}
    if shrunk is not None:
        if kind == "avgpool":
            per_axis.pop("dilation")
        tags = tuple(L.with_window(t, shrunk) for t in ctx.tags)
        ctx.emit(kind, per_axis, [ctx.node], tags, short=f"{kind}_in_windows")
        return True
    if tuple(out.shape[-nd:]) != tuple(ctx.x.shape[-nd:]):
        return False
    per_axis["window"] = _per_axis(ctx, tuple(sizes), axes, 1)
    ctx.emit("window_conv", per_axis, [ctx.node], ctx.tags, short=f"{kind}_in_windows")
    return True


def _rank(packet):
    """The window rank an aten packet name says (``max_pool2d_with_indices`` -> 2)."""
    return next(int(c) for c in ("1", "2", "3") if f"{c}d" in packet)


@op("max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d")
def _pool(ctx):
    a = ctx.a
    nd = _rank(ctx.packet)
    k = _ints(a["kernel_size"], nd)
    stride = a.get("stride") or k
    kind = "maxpool" if ctx.packet.startswith("max") else "avgpool"
    windows = L.partition_windows(ctx.tags, nd, tuple(ctx.x.shape)) if not a.get("ceil_mode") else None
    if windows is not None and _in_windows(ctx, nd, windows, kind, dict(
            kernel=k, stride=_ints(stride, nd), dilation=_ints(a.get("dilation", 1), nd),
            padding=_ints(a.get("padding", 0), nd))):
        return
    axes = _window_axes(ctx, nd, "pooling")
    if axes is None:
        return
    params = dict(kernel=_per_axis(ctx, k, axes, 1), stride=_per_axis(ctx, _ints(stride, nd), axes, 1),
                  padding=_per_axis(ctx, _ints(a.get("padding", 0), nd), axes, 0),
                  ceil_mode=bool(a.get("ceil_mode", False)))
    if kind == "maxpool":
        params["dilation"] = _per_axis(ctx, _ints(a.get("dilation", 1), nd), axes, 1)
    ctx.emit(kind, params, [ctx.node], ctx.tags, short=kind)


@op("_adaptive_avg_pool1d", "adaptive_avg_pool1d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d")
def _adaptive(ctx):
    nd = _rank(ctx.packet)
    axes = _window_axes(ctx, nd, "adaptive pooling")
    if axes is None:
        return
    out = ctx.out_tensor()
    # an axis outside the window keeps its size (1 when no dim holds it: reduced or selected away)
    kept = [1] * ctx.naxes
    for d, tag in enumerate(ctx.tags):
        if isinstance(tag, int):
            kept[tag] = ctx.x.shape[d]
    size = _per_axis(ctx, tuple(out.shape[-nd:]), axes, None)
    size = tuple(s if s is not None else k for s, k in zip(size, kept))
    kind = "adaptive_maxpool" if "max" in ctx.packet else "adaptive_avgpool"
    ctx.emit(kind, {"output_size": size}, [ctx.node], ctx.tags, short=kind)


@op("unfold")
def _tensor_unfold(ctx):
    """``Tensor.unfold(dim, size, step)`` (halo attention's windows): along an axis in order, a
    window of ``size`` every ``step`` positions, its elements in a new last dim."""
    a = ctx.a
    dim = a["dimension"] % len(ctx.tags)
    tag = ctx.tags[dim]
    out = ctx.out_tensor()
    tags = ctx.tags + (None,)
    if tag is None:
        return ctx.passthrough(tags=tags)
    if not isinstance(tag, int):
        return ctx.global_over(L.spatial_axes(tag), tags, "unfold along a dim of scrambled positions: "
                               "treated as global (not tractable)")
    k = [1] * ctx.naxes
    st = [1] * ctx.naxes
    k[tag], st[tag] = int(a["size"]), int(a["step"])
    del out
    ctx.emit("conv", {"kernel": tuple(k), "stride": tuple(st)}, [ctx.node], tags, short="unfold")


@op("im2col")
def _im2col(ctx):
    # F.unfold: a window op whose output positions are then flattened into one dim
    a = ctx.a
    if ctx.naxes != 2 or not _check_layout(ctx, "unfold"):
        return ctx.b.unsupported(ctx, "unfold outside a 2-D network") if ctx.naxes != 2 else None
    params = dict(kernel=_ints(a["kernel_size"], 2), stride=_ints(a["stride"], 2),
                  dilation=_ints(a["dilation"], 2), padding=_ints(a["padding"], 2))
    out = ctx.out_tensor()
    # the blocks sit in the last dim in row-major order: a later view can split them back into
    # the grid, and F.fold (col2im) can put them back in place
    blocks = _blocks(tuple(ctx.x.shape[-2:]), params)
    tags = (None,) * (out.dim() - 1) + (L.flat_tag(blocks),)
    ctx.emit("conv", params, [ctx.node], tags, short="unfold")


def _blocks(sizes, p):
    """Number of sliding blocks per axis of ``F.unfold``/``F.fold`` over a map of ``sizes``."""
    return tuple((n + 2 * pad - d * (k - 1) - 1) // s + 1
                 for n, k, s, d, pad in zip(sizes, p["kernel"], p["stride"], p["dilation"], p["padding"]))


@op("col2im")
def _col2im(ctx):
    """``F.fold``: block ``b``'s column ``t`` is summed into position ``b*s - p + t*d``, the index map
    of a transposed convolution over the grid of blocks.

    Positions here are feature vectors: after ``F.unfold`` the vector of block ``b`` reads its
    window, so the fold's output reads the union of the windows covering it. That is exact when
    each block's columns were mixed across the window's offsets before the fold (volo's outlook
    attention weights them with a softmax over the k x k offsets), an upper bound when they were
    only moved (``fold(unfold(x))`` puts each pixel back in place): the node's note says so when
    nothing but views stands between the unfold and the fold."""
    a = ctx.a
    out = ctx.out_tensor()
    params = dict(kernel=_ints(a["kernel_size"], 2), stride=_ints(a["stride"], 2),
                  dilation=_ints(a["dilation"], 2), padding=_ints(a["padding"], 2))
    size = tuple(int(v) for v in a["output_size"])
    blocks = _blocks(size, params)
    tags = ctx.tags
    spatial_elsewhere = any(t is not None for t in tags[:-1])
    if ctx.naxes != 2 or spatial_elsewhere or tags[-1] != L.flat_tag(blocks) or tags[-1] is None:
        return ctx.global_all("fold of columns whose blocks are not the unfold grid of its output size in "
                              "row-major order: treated as global (not tractable)")
    # output n = (blocks-1)*s - 2p + d(k-1) + 1 + extra: the rows fold's size adds past the last block
    extra = tuple(n - ((b - 1) * s - 2 * pad + d * (k - 1) + 1)
                  for n, b, k, s, d, pad in zip(size, blocks, params["kernel"], params["stride"],
                                                params["dilation"], params["padding"]))
    if any(e < 0 or e >= max(s, d) for e, s, d in zip(extra, params["stride"], params["dilation"])):
        return ctx.global_all(f"fold to size {size} leaves {extra} rows past its last block: treated as global")
    params["output_padding"] = extra
    tags = (None,) * (out.dim() - 2) + (0, 1)
    note = None
    if ctx.b.G.nodes[ctx.node].get("target") == "aten::im2col":
        note = ("fold of unfolded columns nothing mixed (only views between): each pixel may go back in place; "
                "the union of the windows covering it is an upper bound")
    ctx.emit("convtranspose", params, [ctx.node], tags, short="fold", note=note)


# --- pointwise and joins -------------------------------------------------------------------

_POINTWISE_EXTRA = (
    "hardswish", "hardswish_", "hardsigmoid", "hardsigmoid_", "hardtanh", "hardtanh_", "relu6",
    "silu", "silu_", "mish", "mish_", "elu", "elu_", "celu", "selu", "selu_", "leaky_relu", "leaky_relu_",
    "gelu", "gelu_", "softplus", "prelu", "_prelu_kernel", "threshold", "threshold_", "glu",
    "clamp", "clamp_", "clamp_min", "clamp_min_", "clamp_max", "clamp_max_", "dropout", "native_dropout",
    "feature_dropout", "alpha_dropout", "masked_fill", "masked_fill_", "where", "log_sigmoid_forward",
    "_native_batch_norm_legit_no_training", "type_as", "to", "nan_to_num",
)
_MUL_OPS = ("mul", "mul_", "div", "div_", "true_divide", "floor_divide", "addcmul", "addcdiv", "pow")


def _pointwise(ctx):
    """Elementwise: one traced input -> identity; several -> a join (union of RFs)."""
    out = ctx.out_tensor()
    if out is None:
        return
    shapes_tags = [(tuple(t.shape), tr.tags) for t, tr in ctx.tracked]
    tags = L.broadcast_tags(shapes_tags, out.dim())
    inputs = []
    for t, tr in ctx.tracked:
        node = _expanded(ctx, t, tr, out)
        if node not in inputs:
            inputs.append(node)
    conflict = _conflicting_axes(shapes_tags, out.dim())
    if conflict:
        held = frozenset().union(*(L.spatial_axes(t) for _, tags_ in shapes_tags for t in tags_))
        plain = [tr.tags for t, tr in ctx.tracked if tuple(t.shape) == tuple(out.shape)
                 and L.map_dims(tr.tags, tuple(t.shape), ctx.naxes) is not None]
        if held <= conflict and plain:
            # global over every axis: the result's features all see alike, so it is the map
            # its plain input says (with that input's size, channels first or last: GCViT's
            # x + window attention with its global query), not a scrambled tensor
            tags = plain[0]
        return ctx.global_over(conflict, tags, "elementwise op on inputs whose spatial dims do not line up",
                               inputs=inputs)
    if len(inputs) == 1:
        return ctx.emit("identity", {}, inputs, tags)
    if _grids_known_to_differ(ctx, inputs):
        return ctx.global_over(range(ctx.naxes), tags, "elementwise op on inputs with different numbers of "
                               "positions (their positions do not correspond): treated as global", inputs=inputs)
    kind = "mul" if ctx.packet in _MUL_OPS else "add"
    ctx.emit(kind, {}, inputs, tags, short=ctx.short)


def _grids_known_to_differ(ctx, inputs, broadcast=True):
    """Only a known mismatch counts here: a join of nodes whose grids are unknown is left to
    the engine (which checks sizes), as before. A size 1 broadcasts in add/mul, not in concat."""
    grids = [ctx.b.grid.get(v) for v in inputs]
    grids = [g for g in grids if g is not None]
    ones = {1} if broadcast else set()
    return any(len({g[ax] for g in grids} - ones) > 1 for ax in range(ctx.naxes))


def _conflicting_axes(shapes_tags, ndim):
    seen = {}
    bad = set()
    for shape, tags in shapes_tags:
        off = ndim - len(tags)
        for i, t in enumerate(tags):
            if t is None or shape[i] == 1:
                continue
            d = off + i
            if d in seen and seen[d] != t:
                bad |= L.spatial_axes(seen[d]) | L.spatial_axes(t)
            seen[d] = t
    return bad


def _expanded(ctx, t, tr, out):
    """A traced size-1 spatial dim broadcast against a bigger untraced one: every output position
    reads position 0 (nearest upsampling to the output size)."""
    if len(tr.tags) != out.dim() or not L.is_standard(tr.tags, tuple(t.shape), ctx.naxes):
        return tr.node
    ins, outs = tuple(t.shape[-ctx.naxes:]), tuple(out.shape[-ctx.naxes:])
    if ins == outs or all(i == o or i != 1 for i, o in zip(ins, outs)) and ins == outs:
        return tr.node
    if any(i == 1 and o > 1 for i, o in zip(ins, outs)) and not any(
        t2 is not tr and tuple(x.shape[-ctx.naxes:]) == outs for x, t2 in ctx.tracked
    ):
        return ctx.b.add("upsample", {"size": outs, "mode": "nearest"}, [tr.node], "broadcast", aten=ctx.aten)
    return tr.node


for _p in _POINTWISE_EXTRA:
    register_torch_op(_p, _pointwise)


@op("cat", "concat", "concatenate")
def _cat(ctx):
    out = ctx.out_tensor()
    dim = ctx.a.get("dim", 0) % out.dim()
    tags = ctx.tags
    inputs = list(dict.fromkeys(tr.node for _, tr in ctx.tracked))
    tag = tags[dim] if len(tags) == out.dim() else None
    if isinstance(tag, int):
        return ctx.global_over({tag}, tags, "concatenation along a spatial axis: global (not tractable)",
                               inputs=inputs)
    along = frozenset().union(*(L.spatial_axes(tr.tags[dim]) for _, tr in ctx.tracked if len(tr.tags) == out.dim()))
    if along:
        # tokens concatenated to a token sequence (class/register tokens, two token grids): the
        # dim holds positions of several origins, in no order the view after it could undo
        tags = tags[:dim] + (along,) + tags[dim + 1:]
        if len(inputs) == 1:  # constant tokens (parameters) joined to one grid: its positions stay
            grid = _prefixed(ctx, dim)
            if grid is not None:
                tags = tags[:dim] + (grid,) + tags[dim + 1:]
            return ctx.passthrough(tags=tags)
        return ctx.global_over(along, tags, "concatenation of token sequences (class tokens or token grids "
                               "of different sizes): treated as global", inputs=inputs)
    if len(inputs) == 1:
        return ctx.passthrough(tags=tags)
    inputs = _one_feature_spread(ctx, inputs)
    if _grids_known_to_differ(ctx, inputs, broadcast=False):
        return ctx.global_over(range(ctx.naxes), tags, "concatenation of maps with different numbers of "
                               "positions: treated as global", inputs=inputs)
    found = _phases_of_one_map(ctx, inputs)
    if found is not None:
        source, kernel = found
        return ctx.emit("avgpool", {"kernel": kernel}, [source], tags, short="cat",
                        note=f"{ctx.aten} of the {'x'.join(map(str, kernel))} phases of one map (x[0::2, 0::2], "
                             "x[1::2, 0::2], ...): space-to-depth, each position reads exactly its block")
    ctx.emit("concat", {}, inputs, tags, short="cat")


def _phases_of_one_map(ctx, inputs):
    """``(source, kernel)`` when the concatenated maps are strided slices of one map that together
    hold every phase of a ``kernel`` block (Swin's patch merging: ``x[..., 0::2, 0::2, :]``,
    ``x[..., 1::2, 0::2, :]``, ... side by side in channels): position ``o`` then reads exactly the
    block ``kernel*o .. kernel*o + kernel - 1`` of the source along every axis, a space-to-depth
    (a slice used by the concatenation alone is left for the trace's last step to drop). Else
    None."""
    G, grid = ctx.b.G, ctx.b.grid
    progs = []  # per input: (source, per axis the range of source positions it holds)
    for u in inputs:
        prog, v = None, u
        while G.nodes[v].get("op") == "slice" and len(G._pred[v]) == 1:
            (w,) = G._pred[v]
            size, params = grid.get(w), G.nodes[v]
            if size is None or None in size:
                return None
            inner = [range(*slice(params["start"][a], params["stop"][a], params["step"][a]).indices(size[a]))
                     for a in range(ctx.naxes)]
            prog = inner if prog is None else [r[p.start:p.stop:p.step] for r, p in zip(inner, prog)]
            v = w
        if prog is None:
            return None
        progs.append((v, prog))
    source = progs[0][0]
    size = grid.get(source)
    if size is None or any(v != source for v, _ in progs):
        return None
    kernel = []
    for a in range(ctx.naxes):
        rs = [p[a] for _, p in progs]
        f, count = rs[0].step, len(rs[0])
        if any(r.step != f or len(r) != count for r in rs) or size[a] // f != count:
            return None
        kernel.append(f)
    phases = {tuple(p[a].start for a in range(ctx.naxes)) for _, p in progs}
    if phases != set(itertools.product(*(range(f) for f in kernel))) or all(f == 1 for f in kernel):
        return None
    return source, tuple(kernel)


def _prefixed(ctx, dim):
    """The :class:`~rfgraph.frontends.torch_layout.Prefixed` tag of a concatenation along ``dim``
    of one traced tensor (a token grid, in an order its tag tells) and constant tokens, else None."""
    import torch

    parts = [t for t in ctx.a.get("tensors", ()) if isinstance(t, torch.Tensor)]
    traced = [i for i, t in enumerate(parts) if ctx.b.get(t) is not None]
    if len(traced) != 1:
        return None
    t = parts[traced[0]]
    if t.dim() != ctx.out_tensor().dim():
        return None
    tag = ctx.b.get(t).tags[dim]
    if not (isinstance(tag, (int, L.Merged)) and not isinstance(tag, bool)) or \
            isinstance(tag, L.Merged) and _size(tag) != t.shape[dim]:
        return None
    before = sum(int(p.shape[dim]) for p in parts[:traced[0]] if p.dim() == t.dim())
    return L.Prefixed(tag, before, int(t.shape[dim]))


def _one_feature_spread(ctx, inputs):
    """``inputs`` of a concat, where a node holding one feature (n 1 along every axis: a class
    token expanded along the tokens, DPT's readout) is joined to nodes sharing one grid: that
    feature at every position of the grid (nearest upsampling), as the expand made it."""
    grids = [ctx.b.grid.get(v) for v in inputs]
    ones = (1,) * ctx.naxes
    others = {g for g in grids if g != ones}
    if None in grids or len(others) != 1 or ones not in grids:
        return inputs
    size = others.pop()
    out = []
    for v, g in zip(inputs, grids):
        if g == ones:
            v = ctx.b.add("upsample", {"size": size, "mode": "nearest"}, [v], "broadcast", aten=ctx.aten)
            ctx.b.grid[v] = size
        out.append(v)
    return out


@op("stack")
def _stack(ctx):
    out = ctx.out_tensor()
    dim = ctx.a.get("dim", 0) % out.dim()
    tags = ctx.tags[:dim] + (None,) + ctx.tags[dim:]
    inputs = list(dict.fromkeys(tr.node for _, tr in ctx.tracked))
    if len(inputs) == 1:
        return ctx.passthrough(tags=tags)
    if _grids_known_to_differ(ctx, inputs, broadcast=False):
        return ctx.global_over(range(ctx.naxes), tags, "stack of maps with different numbers of positions: "
                               "treated as global", inputs=inputs)
    # rows selected one at a time and stacked back (a recurrent cell stepped along H in Python):
    # the new dim holds positions of the axis the inputs hold one of, in an order no tag tells
    held = frozenset().union(*(L.spatial_axes(t) for _, tr in ctx.tracked for t in tr.tags))
    grids = [ctx.b.grid.get(v) for v in inputs]
    lost = frozenset(a for a in range(ctx.naxes) if a not in held and all(g is not None and g[a] == 1 for g in grids))
    if lost and all(ctx.b.G.nodes[v]["op"] != "global" for v in inputs):
        tags = tags[:dim] + (lost,) + tags[dim + 1:]
        return ctx.global_over(lost, tags, "stack of single rows along a spatial axis: global along it "
                               "(not tractable)", inputs=inputs)
    ctx.emit("concat", {}, inputs, tags, short="stack")


# --- reductions, normalisation, attention --------------------------------------------------


@op("mean", "sum", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean", "logsumexp",
    "linalg_vector_norm", "norm", "prod", "argmax", "argmin", "all", "any")
def _reduce(ctx):
    a = ctx.a
    dims = a.get("dim")
    if dims is None:
        dims = []
    elif isinstance(dims, int):
        dims = [dims]
    keepdim = bool(a.get("keepdim", False))
    tags, mixed = L.reduce_tags(ctx.tags, list(dims), keepdim)
    out = ctx.out_tensor()
    if out is not None and len(tags) != out.dim():
        tags = (None,) * out.dim()
    if not mixed:
        return ctx.unary("identity", {}, tags=tags)
    ctx.global_over(mixed, tags, f"{ctx.short} over spatial positions", keep=False)


@op("_softmax", "_safe_softmax", "softmax", "_log_softmax", "log_softmax", "cumsum", "cumprod",
    "sort", "topk")
def _along_dim(ctx):
    dim = ctx.a.get("dim", -1)
    mixed = L.spatial_axes(ctx.dim_tag(dim))
    if not mixed:
        return ctx.unary("identity", {})
    ctx.global_over(mixed, ctx.tags, f"{ctx.short} over spatial positions")


@op("native_batch_norm", "_native_batch_norm_legit", "batch_norm", "instance_norm")
def _batch_norm(ctx):
    # eval-mode batch norm is per position; batch statistics (instance norm, BN without running
    # stats) are taken over the spatial axes, so every output depends on the whole input
    if ctx.a.get("training", False):
        axes = frozenset().union(*(L.spatial_axes(t) for t in ctx.tags))
        return ctx.global_over(axes, ctx.tags, "normalisation statistics over spatial positions")
    ctx.unary("identity", {}, tags=ctx.tags)


@op("native_layer_norm", "layer_norm")
def _layer_norm(ctx):
    k = len(ctx.a["normalized_shape"])
    axes = frozenset().union(*(L.spatial_axes(t) for t in ctx.tags[-k:]))
    if not axes:
        return ctx.unary("identity", {}, tags=ctx.tags)
    ctx.global_over(axes, ctx.tags, "layer norm over spatial positions")


@op("native_group_norm", "group_norm")
def _group_norm(ctx):
    axes = frozenset().union(*(L.spatial_axes(t) for t in ctx.tags))
    ctx.global_over(axes, ctx.tags, "group norm statistics over spatial positions")


@op("mm", "bmm", "addmm", "baddbmm", "matmul", "linear", "_addmm_activation")
def _matmul(ctx):
    a = ctx.a
    # addmm/baddbmm's `self` is the term added, not a factor
    mat1 = next((a[k] for k in ("mat1", "batch1", "self", "input") if a.get(k) is not None), None)
    mat2 = next((a[k] for k in ("mat2", "batch2", "other", "weight") if a.get(k) is not None), None)
    b = ctx.b
    t1, t2 = b.get(mat1) if mat1 is not None else None, b.get(mat2) if mat2 is not None else None
    out = ctx.out_tensor()
    if ctx.packet == "linear":  # x @ W^T: contract x's last dim
        tags1 = t1.tags if t1 else (None,) * mat1.dim()
        mixed = L.spatial_axes(tags1[-1])
        tags = tags1[:-1] + (None,)
    else:
        tags1 = t1.tags if t1 else (None,) * mat1.dim()
        tags2 = t2.tags if t2 else (None,) * mat2.dim()
        mixed = L.spatial_axes(tags1[-1]) | L.spatial_axes(tags2[-2])
        lead = tags1[:-2] if len(tags1) >= len(tags2) else tags2[:-2]
        tags = lead + (tags1[-2], tags2[-1])
    if len(tags) != out.dim():
        tags = (None,) * out.dim()
    inputs = list(dict.fromkeys(tr.node for _, tr in ctx.tracked))
    if mixed:
        # a contraction over the positions of one window (attention weights @ v, Swin/MaxViT)
        # reads that window; over anything else, every position
        plan = L.contraction_window(tags1, None if ctx.packet == "linear" else tags2)
        if plan is not None and _window_mix(ctx, plan, inputs, tags,
                                            f"{ctx.short} contracts over the positions of a window"):
            return
        if ctx.packet != "linear" and t1 is not None and t2 is not None and t1.node != t2.node and \
                not L.spatial_axes(tags1[-1]) and not L.spatial_axes(tags2[-1]) and \
                _windows_onto_windows(ctx, (t1, tags1, -2), [(t2, tags2, -2)], tags,
                                      f"{ctx.short}: attention weights @ v within windows"):
            return
        if ctx.packet != "linear" and t1 is not None and t2 is not None and t1.node != t2.node and \
                not L.spatial_axes(tags1[-1]) and not L.spatial_axes(tags2[-1]) and \
                _per_query(ctx, (t1, tags1, -2), [(t2, tags2, -2)], tags, inputs,
                           f"{ctx.short}: attention weights @ v, each query position reads every value position "
                           "(an upper bound where a mask hides some)"):
            return  # attention weights (key dim spent) @ v: row i reads its weights and every value
        return ctx.global_over(mixed, tags, f"{ctx.short} contracts over spatial positions", inputs=inputs)
    if ctx.packet != "linear" and len(tags) >= 2 and t1 is not None and t2 is not None:
        rows, cols = L.spatial_axes(tags1[-2]), L.spatial_axes(tags2[-1])
        plan = L.scores_window(tags1, tags2)  # the key dim is spent: softmax and @ v over it add nothing
        if plan is not None and _window_mix(ctx, plan, inputs, tags[:-1] + (None,),
                                            f"{ctx.short}: attention scores within windows"):
            return
        if rows and cols and t1.node != t2.node and _windows_onto_windows(
                ctx, (t1, tags1, -2), [(t2, tags2, -1)], tags[:-1] + (None,),
                f"{ctx.short}: attention scores within windows"):
            return
        if rows and cols and t1.node != t2.node:
            # attention scores q·kᵀ: entry (i, j) pairs query position i with key position j (keys
            # often on a coarser grid): row i, all a softmax over j and @ v will use, reads query i
            # and every key -- kept on the queries' grid, the key dim spent
            if _per_query(ctx, (t1, tags1, -2), [(t2, tags2, -1)], tags[:-1] + (None,), inputs,
                          f"{ctx.short}: attention scores, each query position reads every key position (an "
                          "upper bound where a mask hides some)"):
                return
            return ctx.global_over(rows | cols, tags, f"{ctx.short}: attention scores pair every query position "
                                   "with every key position: treated as global", inputs=inputs)
    if ctx.packet != "linear" and t1 is not None and t2 is not None and t1.node != t2.node:
        if _blocks_onto_positions(ctx, (t1, tags1), (t2, tags2), tags1[-2], tags2[-1]) or \
                _blocks_onto_positions(ctx, (t2, tags2), (t1, tags1), tags1[-2], tags2[-1]):
            return
    if len(inputs) > 1 and _grids_known_to_differ(ctx, inputs):
        return ctx.global_over(range(ctx.naxes), tags, f"{ctx.short} of inputs with different numbers of "
                               "positions: treated as global", inputs=inputs)
    ctx.emit("identity" if len(inputs) == 1 else "add", {}, inputs, tags, short=ctx.short)


def _pieces(tag, size):
    return list(tag) if isinstance(tag, L.Merged) else [(tag, size)]


def _blocks_onto_positions(ctx, fine, coarse, rows, cols):
    """Emit a product whose operand ``fine`` is partitioned into blocks (its batch dims hold the
    coarse pieces of axes split by ``f``, its matrix dims the fine pieces) and whose operand
    ``coarse`` holds, in the same batch dims, one feature per block on a grid ``f`` times
    coarser (halo attention: queries in ``b x b`` blocks, keys and values the overlapping
    window unfolded at each block): output ``(block, place)`` reads the ``fine`` position and
    the block's ``coarse`` feature, a nearest upsample by ``f`` of ``coarse`` joined to
    ``fine``. Returns the node, or None (nothing emitted) when the layout is not that.
    """
    (ta, tags_a), (tb, tags_b) = fine, coarse
    n = ctx.naxes
    if len(tags_a) != len(tags_b) or len(tags_a) < 3 or any(L.spatial_axes(t) for t in tags_b[-2:]):
        return None
    factor = {}
    for da, db in zip(tags_a[:-2], tags_b[:-2]):
        pa, pb = _pieces(da, None), _pieces(db, None)
        if len(pa) != len(pb):
            return None
        for (x, na), (y, nb) in zip(pa, pb):
            if na != nb:
                return None
            if x is None and y is None:
                continue
            if not (isinstance(x, L.Part) and not x.fine and isinstance(y, int) and not isinstance(y, bool)
                    and x.axis == y and y not in factor):
                return None
            factor[y] = x.factor
    fines = [x for t in tags_a[-2:] for x, _ in _pieces(t, None) if x is not None]
    if not factor or sorted((x.axis, x.factor) for x in fines if isinstance(x, L.Part) and x.fine) != \
            sorted(factor.items()) or len(fines) != len(factor):
        return None
    ga, gb = ctx.b.grid.get(ta.node), ctx.b.grid.get(tb.node)
    if ga is None or gb is None or any(ga[a] != gb[a] * factor.get(a, 1) for a in range(n)):
        return None
    scale = tuple(float(factor.get(a, 1)) for a in range(n))
    up = _helper(ctx, "upsample", {"scale": scale, "mode": "nearest"}, [tb.node], ctx.short + "_blocks")
    where = ", ".join(f"axis {a}: blocks of {f}" for a, f in sorted(factor.items()))
    return ctx.emit("add", {}, [ta.node, up], tags_a[:-2] + (rows, cols),
                    note=f"{ctx.aten}: each position of a block reads itself and its block's feature of a grid "
                         f"{'x'.join(str(int(v)) for v in scale)} times coarser ({where}), exactly")


def _window_mix(ctx, plan, inputs, tags, what):
    """Emit the exact index map of mixing positions within windows (``plan`` from
    :func:`~rfgraph.frontends.torch_layout.window_mixing`, the steps from
    :func:`~rfgraph.frontends.torch_layout.window_steps`) into an output tagged ``tags``; the
    output node's name, or None (and nothing emitted) when the inputs' grids do not fit."""
    if len(inputs) > 1 and ctx.grids_differ(inputs):
        return None
    found = L.window_steps(plan, ctx.b.grid.get(inputs[0]), tags, ctx.naxes)
    if found is None:
        return None
    steps, tags, where = found
    sig = (tuple((op_name, params) for op_name, params, _ in steps), ctx.b.grid.get(inputs[0]))
    weights = _weights_of(ctx, sig, inputs)
    if weights is not None:
        return ctx.emit("identity", {}, [weights], tags, note=f"{ctx.aten}: {what} ({where}): the weights were "
                        "mixed over these windows from these values, so each position reads exactly what its "
                        "weights read")
    node = inputs[0] if len(inputs) == 1 else _helper(ctx, "add", {}, inputs, ctx.short + "_inputs")
    for op_name, params, short in steps[:-1]:
        node = _helper(ctx, op_name, params, [node], ctx.short + "_" + short)
    op_name, params, _ = steps[-1]
    out = ctx.emit(op_name, params, [node], tags, note=f"{ctx.aten}: {what} ({where}): each position reads "
                   "exactly its window")
    if _partition(sig[0]):
        ctx.b.window_mixes[out] = (sig, frozenset(inputs))
    return out


def _partition(steps):
    """Whether chained window ``steps`` are blocks pooled and brought back (kernel = stride =
    scale on every axis, no padding): each position then reads exactly the positions of its
    block, also unclipped, so mixing twice over them is mixing once. A grid of windows (a
    dilated conv padded by what holds no pixels) reads its padding unclipped: mixed twice, its
    unclipped hull is wider, so it is not merged."""
    kinds = [op_name for op_name, _ in steps]
    if kinds != ["avgpool", "upsample"]:
        return False
    (_, pooled), (_, back) = steps
    return pooled["kernel"] == pooled["stride"] and all(float(k) == s for k, s in zip(pooled["kernel"], back["scale"]))


def _weights_of(ctx, sig, inputs):
    """For a product ``weights @ values`` mixed over windows (``sig``: the steps and the grid):
    the weights' node when they are (pointwise, through identity nodes: softmax, a constant bias
    or mask) the output of an earlier mix over the same windows, on the same grid, that read the
    values' node among its inputs (Swin: ``softmax(q @ kᵀ) @ v``, with ``k`` and ``v`` one
    projection); else None.

    The product then reads exactly what the weights read: position ``i`` reads the weights and
    the values of every position of its window; the weights of each of those read every position
    of the window (a partition: :func:`_partition`), and so already every value there."""
    if len(inputs) != 2:
        return None
    G, mixes = ctx.b.G, ctx.b.window_mixes
    for w, v in (inputs, inputs[::-1]):
        u = w
        for _ in range(32):  # the pointwise ops between the scores and the product
            if u in mixes or G.nodes[u].get("op") != "identity" or len(G._pred[u]) != 1:
                break
            u = next(iter(G._pred[u]))
        found = mixes.get(u)
        if found is not None and found[0] == sig and _read_in_place(ctx.b, found[1], v):
            return w
    return None


def _read_in_place(b, nodes, v, limit=64):
    """Whether some node of ``nodes`` reads node ``v``'s feature at each of its own positions:
    ``v`` is one of them or, through identity nodes and joins of inputs on the same grid, an
    input of one (Swin V2's cosine attention: ``q`` is ``v``'s projection divided by its norm).
    Looks at ``limit`` nodes at most; False when not found."""
    G, grid = b.G, b.grid
    todo, seen = list(nodes), set(nodes)
    while todo and len(seen) <= limit:
        u = todo.pop()
        if u == v:
            return True
        op = G.nodes[u].get("op")
        if op == "identity" and len(G._pred[u]) == 1:
            ins = list(G._pred[u])
        elif op in ("add", "mul") and grid.get(u) is not None:
            ins = [x for x in G._pred[u] if grid.get(x) == grid[u]]
        else:
            continue
        for x in ins:
            if x not in seen:
                seen.add(x)
                todo.append(x)
    return False


_RNN_NAMES = {"lstm": "LSTM", "gru": "GRU", "rnn_tanh": "RNN", "rnn_relu": "RNN"}


@op("lstm", "gru", "rnn_tanh", "rnn_relu")
def _recurrent(ctx):
    """A recurrent layer (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``; one call, see the tracer) runs along
    its time dim and leaves the batch dim's positions alone (sequencer2d: an LSTM along H with W
    in the batch, one along W with H in the batch).

    Along the time axis, a bidirectional layer's every step reads the whole sequence: global. A
    unidirectional one's step ``t`` reads steps ``0..t``: exactly a conv of kernel ``n`` after
    ``n - 1`` zeros of padding before the sequence. Time steps of flattened positions (tokens of
    a whole grid in raster order) are global over the axes they hold. The final states read the
    whole sequence.
    """
    a = ctx.a
    x = a["input"]
    outs = list(ctx.out)
    name = _RNN_NAMES[ctx.packet]
    tr = ctx.b.get(x)
    inputs = list(dict.fromkeys(t.node for _, t in ctx.tracked))
    batched = x.dim() == 3
    tdim = 1 if batched and a["batch_first"] else 0
    if tr is None or len(tr.tags) != x.dim():  # only the initial states are traced
        node = ctx.global_all(f"{name} whose initial states come from the input: treated as global")
        for o in outs[1:]:
            ctx.b.set(o, node, (None,) * o.dim())
        return
    tags = tr.tags
    ttag = tags[tdim]
    out_tags = tags[:-1] + (None,)
    state_tags = (None, tags[1 - tdim], None) if batched else (None, None)
    axes = L.spatial_axes(ttag)
    n = x.shape[tdim]
    grid = ctx.b.grid.get(tr.node) or (None,) * ctx.naxes
    if not axes:  # a recurrence over non-spatial steps: every position on its own
        node = ctx.emit("identity" if len(inputs) == 1 else "add", {}, inputs, out_tags)
    elif a["bidirectional"] or not isinstance(ttag, int) or len(inputs) > 1 or grid[ttag] != n:
        how = ("bidirectional: every step reads the whole sequence" if a["bidirectional"] and isinstance(ttag, int)
               else "along a dim of flattened positions" if not isinstance(ttag, int)
               else "with initial states from the input" if len(inputs) > 1
               else "along part of an axis")
        node = ctx.global_over(axes, out_tags, f"{name} along spatial axis {_axes_text(axes)} ({how}): "
                               "global along it", inputs=inputs)
    else:
        # causal: step t reads steps 0..t = a kernel-n window after n - 1 zeros before step 0
        pad = [(0, 0)] * ctx.naxes
        kernel = [1] * ctx.naxes
        pad[ttag], kernel[ttag] = (n - 1, 0), n
        padded = _helper(ctx, "pad", {"padding": tuple(pad), "mode": "constant"}, [tr.node], "causal_pad")
        node = ctx.emit("conv", {"kernel": tuple(kernel)}, [padded], out_tags,
                        note=f"unidirectional {name} along axis {ttag}: step t reads steps 0..t")
    state = node
    if axes and len(outs) > 1:
        state = _helper(ctx, "global", {"axes": tuple(sorted(axes)), "size": 1}, [node], "final_state",
                        note=f"{ctx.aten}: the final state of a {name} reads the whole sequence")
    for o in outs[1:]:
        ctx.b.set(o, state, state_tags)


def _axes_text(axes):
    return ",".join(str(v) for v in sorted(axes))


def _per_query(ctx, query, others, tags, inputs, note):
    """Emit an attention product on the queries' positions: output position ``i`` reads query
    position ``i`` and every position of each of ``others`` (keys, values): the query's node
    joined to a ``global`` of each other node (a size-1 map that broadcasts). Exact for softmax
    attention without a mask, where the keys and values may sit on another grid than the
    queries (PVT's and SegFormer's spatial reduction, MViT's pooled keys): a global over the
    queries too would add the pixels of queries the keys never see.

    ``query`` and each of ``others`` is ``(traced, tags, position dim)``. Only where the
    positions are in that dim alone (heads and batch dims hold none) and the operands are all
    the op's inputs; returns the node, or None (nothing emitted)."""
    tq, tags_q, dq = query
    if len(tags_q) < 2 or not L.spatial_axes(tags_q[dq]) or len(tags) != ctx.out_tensor().dim() or \
            tags[dq] != tags_q[dq]:
        return None
    if set(inputs) != {tq.node} | {t.node for t, _, _ in others}:
        return None
    for tr, tg, d in [query, *others]:
        if len(tg) < 2 or any(L.spatial_axes(t) for i, t in enumerate(tg) if i != len(tg) + d) or \
                not L.spatial_axes(tg[d]):
            return None
    axes = tuple(range(ctx.naxes))
    note = f"{ctx.aten}: {note}"
    parts = [tq.node]
    for u in dict.fromkeys(t.node for t, _, _ in others):
        if u != tq.node:
            ctx.b.global_ops[ctx.aten] = ctx.b.global_ops.get(ctx.aten, 0) + 1
            parts.append(_helper(ctx, "global", {"axes": axes, "size": 1}, [u], ctx.short + "_global", note=note))
    return ctx.emit("add", {}, parts, tags)


def _helper(ctx, op_name, params, inputs, short, note=None):
    """A node the op needs besides its output: named with a suffix, so the output keeps the
    module's name."""
    b = ctx.b
    saved, b.sub_op = b.sub_op, True
    try:
        return b.add(op_name, params, inputs, short, aten=ctx.aten, note=note)
    finally:
        b.sub_op = saved


def _windows_onto_windows(ctx, query, others, tags, what):
    """Attention within windows whose queries sit on other windows than the keys and values, as
    many, on a coarser grid (SAM2's Hiera pools each window's queries at a stage change): query
    ``(window, place)`` reads itself and every key and value of its window -- the queries joined
    to each other operand pooled per window (kernel = stride = its window) and brought to the
    queries' windows (nearest upsampling by theirs), exactly. ``query`` and each of ``others`` is
    ``(traced, tags, dim of its positions)``; the output is tagged ``tags``. Returns the node, or
    None (nothing emitted) when the layout is not that."""
    def plan(tg, d):
        if len(tg) < 2:
            return None
        d %= len(tg)
        p = L.window_mixing(tg[d], tg[:d] + tg[d + 1:])
        return p if p and all(kind == "block" for kind, _ in p.values()) else None

    tq, tags_q, dq = query
    pq = plan(tags_q, dq)
    grid_q = ctx.b.grid.get(tq.node)
    if pq is None or grid_q is None or {tr.node for _, tr in ctx.tracked} != {tq.node} | {t.node for t, _, _ in others}:
        return None
    parts = [tq.node]
    for tr, tg, d in others:
        pk, grid_k = plan(tg, d), ctx.b.grid.get(tr.node)
        if pk is None or grid_k is None or set(pk) != set(pq) or pk == pq or tr.node == tq.node:
            return None
        if any(grid_k[a] % pk[a][1] or grid_q[a] % pq[a][1] or grid_k[a] // pk[a][1] != grid_q[a] // pq[a][1]
               for a in pq):
            return None
        pool = tuple(pk[a][1] if a in pk else 1 for a in range(ctx.naxes))
        up = tuple(float(pq[a][1]) if a in pq else 1.0 for a in range(ctx.naxes))
        node = _helper(ctx, "avgpool", {"kernel": pool, "stride": pool}, [tr.node], ctx.short + "_window")
        node = _helper(ctx, "upsample", {"scale": up, "mode": "nearest"}, [node], ctx.short + "_window_back")
        if node not in parts:
            parts.append(node)
    if len(parts) < 2:
        return None
    where = ", ".join(f"axis {a}: windows of {pq[a][1]} onto windows of {pk[a][1]}" for a in sorted(pq))
    return ctx.emit("add", {}, parts, tags, note=f"{ctx.aten}: {what} ({where}): each query reads itself and "
                                                 "every position of its window, exactly")


@op("_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_flash_attention", "scaled_dot_product_attention",
    "_scaled_dot_product_attention_math", "_scaled_dot_product_cudnn_attention")
def _attention(ctx):
    a, get = ctx.a, ctx.b.get
    q, k, v = (a.get(name) for name in ("query", "key", "value"))
    tq, tk, tv = (get(t) if t is not None else None for t in (q, k, v))
    if tq is not None and tk is not None and tv is not None and not a.get("is_causal") and \
            a.get("attn_mask") is None and {tk.node, tv.node} != {tq.node} and \
            _per_query(ctx, (tq, tq.tags, -2), [(tk, tk.tags, -2), (tv, tv.tags, -2)], tq.tags[:-1] + (None,),
                       list(dict.fromkeys(tr.node for _, tr in ctx.tracked)),
                       "attention: each query position reads every key and value position"):
        return
    if tq is not None and tk is not None and tv is not None and not a.get("is_causal") and \
            a.get("attn_mask") is None and _windows_onto_windows(
                ctx, (tq, tq.tags, -2), [(tk, tk.tags, -2), (tv, tv.tags, -2)], tq.tags[:-1] + (None,),
                "attention within windows"):
        return
    axes = frozenset()
    for _, tr in ctx.tracked:
        axes |= L.spatial_axes(tr.tags[-2]) if len(tr.tags) >= 2 else frozenset()
    inputs = list(dict.fromkeys(tr.node for _, tr in ctx.tracked))
    seqs = [tr.tags for _, tr in ctx.tracked if len(tr.tags) >= 2 and L.spatial_axes(tr.tags[-2])]
    if seqs and all(t[:-1] == seqs[0][:-1] for t in seqs):
        # queries, keys and values on the tokens of the same windows (Swin, MaxViT's block and grid)
        plan = L.window_mixing(seqs[0][-2], seqs[0][:-2] + seqs[0][-1:])
        if plan is not None and _window_mix(ctx, plan, inputs, ctx.tags, "attention within windows"):
            return
    ctx.global_over(axes, ctx.tags, "attention over spatial positions", inputs=inputs)


@op("grid_sampler_2d", "grid_sampler_3d", "grid_sampler", "_grid_sampler_2d_cpu_fallback",
    "index_select", "gather", "take_along_dim", "repeat", "_unique2", "nonzero")
def _data_dependent(ctx):
    """Ops whose spatial index map depends on data or is not one of ours: global over the
    spatial axes they touch, and said so."""
    dims = ctx.a.get("dim")
    if dims is not None and isinstance(dims, int):
        axes = L.spatial_axes(ctx.dim_tag(dims))
        if not axes:
            return ctx.unary("identity", {})
    elif ctx.packet == "repeat":
        reps = list(ctx.a["repeats"])[-len(ctx.tags):]
        axes = frozenset().union(*(L.spatial_axes(t) for t, r in zip(ctx.tags, reps) if r != 1))
        out = ctx.out_tensor()
        tags = (None,) * (out.dim() - len(ctx.tags)) + ctx.tags
        if not axes:
            return ctx.passthrough(tags=tags)
        return ctx.global_over(axes, tags, "repeat along spatial axes: global (not tractable)")
    return ctx.global_all(f"{ctx.short}: spatial index map not tractable, treated as global")


@op("index", "_unsafe_index")
def _index(ctx):
    indices = ctx.a.get("indices") or []
    axes = frozenset()
    for d, ix in enumerate(indices):
        if ix is not None and d < len(ctx.tags):
            axes |= L.spatial_axes(ctx.tags[d])
    out = ctx.out_tensor()
    if not axes:
        tags = ctx.tags if len(ctx.tags) == out.dim() else (None,) * out.dim()
        return ctx.passthrough(tags=tags)
    picked = [(d, ix) for d, ix in enumerate(indices) if ix is not None]
    if len(picked) == 1 and picked[0][1].numel() == 1 and not isinstance(ctx.tags[picked[0][0]], int):
        # one token picked by a tensor index (x[:, [0]]): where it is only the data tells
        d, ix = picked[0]
        tags = ctx.tags[:d] + (None,) * ix.dim() + ctx.tags[d + 1:]
        if len(tags) == out.dim():
            return _one_position(ctx, d, None, tags, "index")
    ctx.global_all("advanced indexing along spatial axes: treated as global")


# --- views, copies, slicing, padding, resampling ------------------------------------------

_ALIASES = ("alias", "clone", "contiguous", "detach", "detach_", "_to_copy", "lift_fresh", "lift_fresh_copy",
            "_conj", "resolve_conj", "resolve_neg", "fill_diagonal_")


@op(*_ALIASES)
def _alias(ctx):
    ctx.passthrough()


@op("as_strided", "as_strided_")
def _as_strided(ctx):
    # a re-stride that keeps the shape only changes memory layout (meta kernels use it for
    # channels-last outputs); anything else re-indexes arbitrarily
    out = ctx.out_tensor()
    if tuple(out.shape) == tuple(ctx.x.shape):
        return ctx.passthrough()
    ctx.b.unsupported(ctx, "as_strided that changes the shape")


@op("view", "_unsafe_view", "reshape", "_reshape_alias", "view_as", "flatten", "unflatten")
def _view(ctx):
    out = ctx.out_tensor()
    shape = tuple(ctx.x.shape)
    rows = [d for d, t in enumerate(ctx.tags) if isinstance(t, L.Rows)]
    if len(rows) == 1:
        d = rows[0]
        if tuple(out.shape[:d]) == shape[:d] and tuple(out.shape[d + 2:]) == shape[d + 1:] and \
                out.dim() == len(shape) + 1:
            # padded rows viewed with another row length (the skew): a slice may resolve them
            tags = ctx.tags[:d] + L.skew_view(ctx.tags[d], out.shape[d], out.shape[d + 1]) + ctx.tags[d + 1:]
            return ctx.passthrough(tags=tags)
    tags = L.view_tags(shape, ctx.tags, tuple(out.shape))
    standard = (None,) * (out.dim() - ctx.naxes) + tuple(range(ctx.naxes))
    s2d = L.space_to_depth(tags, ctx.naxes)
    if s2d is not None:
        # space-to-depth written as view/permute/view (tresnet's stem, Swin's patch merging): the
        # feature vector at o gathers the f x f block, as pixel_unshuffle does
        return ctx.emit("avgpool", {"kernel": s2d[0]}, [ctx.node], s2d[1], short="space_to_depth")
    scales = _depth_to_space(tags, ctx.naxes)
    if scales is not None:
        # depth-to-space (pixel shuffle as views): output position o reads input position o // r
        return ctx.emit("upsample", {"scale": tuple(float(r) for r in scales), "mode": "nearest"}, [ctx.node],
                        standard, short="depth_to_space")
    ctx.passthrough(tags=_uniform_retag(ctx.b, ctx.node, tags, tuple(out.shape)))


def _scrambled_axes(tags):
    out = frozenset()
    for t in tags:
        for part in (t if isinstance(t, L.Merged) else ((t, None),)):
            if isinstance(part[0], frozenset) and not isinstance(part[0], L.Part):
                out |= part[0]
    return out


def _as_map(builder, t, tr):
    """``tr``, or its node as a plain map when its tags are scrambled but its features all see
    alike along every axis (see :func:`_uniform_retag`)."""
    if tr.node not in builder.uniform:
        return tr
    tags = _uniform_retag(builder, tr.node, tr.tags, tuple(t.shape))
    if tags is tr.tags:
        return tr
    from .torch import Traced

    return Traced(tr.node, tags)


def _uniform_retag(builder, node, tags, shape):
    """A view that scrambles positions of a map whose features all see the same input along
    every axis it holds (the output of a global op: smp MAnet's position attention reshapes
    ``(N, H*W, C)`` straight to ``(N, C, H, W)``) loses nothing: the positions are
    interchangeable. Tag the result as the map its shape says, ``(N, C, *grid)`` or
    ``(N, C, prod(grid))``, when its sizes match the node's grid; else keep ``tags``."""
    scrambled = _scrambled_axes(tags)
    held = frozenset().union(*(L.spatial_axes(t) for t in tags))
    grid = builder.grid.get(node)
    if not scrambled or grid is None or not held <= builder.uniform.get(node, frozenset()):
        return tags
    naxes = builder.naxes
    lead = (None,) * (len(shape) - naxes)
    if len(shape) >= naxes + 1 and tuple(shape[-naxes:]) == tuple(grid):
        return lead + tuple(range(naxes))
    total = 1
    for n in grid:
        total *= n
    if len(shape) >= 2 and shape[-1] == total:
        return (None,) * (len(shape) - 1) + (L.flat_tag(grid),)
    return tags


def _depth_to_space(tags, naxes):
    """The factor per axis when every spatial dim is an axis merged with a finer non-spatial dim
    (``(H, r) -> H*r``), the leading dims holding no positions; else None."""
    if len(tags) < naxes + 1 or any(t is not None for t in tags[:-naxes]):
        return None
    scales, any_merged = [], False
    for ax, t in enumerate(tags[-naxes:]):
        if t == ax and not isinstance(t, frozenset):
            scales.append(1)
        elif isinstance(t, L.Merged) and len(t) == 2 and t[0][0] == ax and not isinstance(t[0][0], frozenset) \
                and t[1][0] is None:
            scales.append(t[1][1])
            any_merged = True
        else:
            return None
    return scales if any_merged else None


@op("permute")
def _permute(ctx):
    ctx.passthrough(tags=L.permute_tags(ctx.tags, [d % len(ctx.tags) for d in ctx.a["dims"]]))


@op("transpose", "transpose_", "swapaxes", "swapdims")
def _transpose(ctx):
    tags = list(ctx.tags)
    d0, d1 = ctx.a.get("dim0") % len(tags), ctx.a.get("dim1") % len(tags)
    tags[d0], tags[d1] = tags[d1], tags[d0]
    ctx.passthrough(tags=tuple(tags))


@op("t", "numpy_T", "mT")
def _t(ctx):
    ctx.passthrough(tags=tuple(reversed(ctx.tags)) if len(ctx.tags) == 2 else ctx.tags)


@op("unsqueeze", "unsqueeze_")
def _unsqueeze(ctx):
    d = ctx.a["dim"] % (len(ctx.tags) + 1)
    ctx.passthrough(tags=ctx.tags[:d] + (None,) + ctx.tags[d:])


@op("squeeze", "squeeze_")
def _squeeze(ctx):
    out = ctx.out_tensor()
    ctx.passthrough(tags=L.view_tags(tuple(ctx.x.shape), ctx.tags, tuple(out.shape)))


@op("expand", "expand_as", "broadcast_to")
def _expand(ctx):
    out = ctx.out_tensor()
    extra = out.dim() - len(ctx.tags)
    tags = (None,) * extra + ctx.tags
    grown = [t for t, i, o in zip(ctx.tags, ctx.x.shape, out.shape[extra:]) if i == 1 and o > 1 and t is not None]
    if grown and L.is_standard(ctx.tags, tuple(ctx.x.shape), ctx.naxes):
        outs = tuple(out.shape[-ctx.naxes:])
        return ctx.emit("upsample", {"size": outs, "mode": "nearest"}, [ctx.node], tags, short="expand")
    ctx.passthrough(tags=tags)


@op("slice")
def _slice(ctx):
    a = ctx.a
    dim = a["dim"] % len(ctx.tags)
    tag = ctx.tags[dim]
    n = ctx.x.shape[dim]
    start, end, step = a.get("start"), a.get("end"), a.get("step", 1)
    kept = range(*slice(start, end, step).indices(n))
    if kept == range(n):
        return ctx.passthrough()
    if isinstance(tag, L.Prefixed) and kept == range(tag.before, tag.before + tag.size):
        # the constant tokens sliced off again (coat's, crossvit's x[:, 1:]): the grid's positions
        return ctx.passthrough(tags=ctx.tags[:dim] + (tag.tag,) + ctx.tags[dim + 1:])
    if isinstance(tag, L.Skew):
        pair = [d for d in (dim - 1, dim + 1) if 0 <= d < len(ctx.tags) and isinstance(ctx.tags[d], L.Skew)
                and ctx.tags[d].src is tag.src and ctx.tags[d].is_row != tag.is_row]
        if len(pair) == 1:
            row, col = L.skew_slice(tag, kept)
            first = min(dim, pair[0])
            return ctx.passthrough(tags=ctx.tags[:first] + (row, col) + ctx.tags[first + 2:])
    if not isinstance(tag, int):
        if len(kept) == 1:  # x[:, :1]: one token of a token or flattened dim
            return _one_position(ctx, dim, kept[0], ctx.tags[:dim] + (None,) + ctx.tags[dim + 1:], "slice")
        return ctx.passthrough()
    params, source = _slice_params(ctx, tag, start, end, step), ctx.node
    G = ctx.b.G
    inner = G.nodes[source]
    if inner.get("op") == "slice" and len(G._pred[source]) == 1 and inner.get("module") == ctx.b.module_stack[-1] \
            and (inner["start"][tag], inner["stop"][tag], inner["step"][tag]) == (None, None, 1) and not inner.get("note"):
        # a slice along another axis of a slice (Swin V2's crop of its padded windows: rows, then
        # columns): one node cutting both; the first stays only if something else uses it (the
        # trace's last step drops it otherwise)
        params = {k: tuple(params[k][a] if a == tag else inner[k][a] for a in range(ctx.naxes))
                  for k in ("start", "stop", "step")}
        (source,) = G._pred[source]
    ctx.emit("slice", params, [source], ctx.tags, short="slice")


def _one_position(ctx, dim, index, tags, short):
    """Element ``index`` (None: an index only the data tells) alone of dim ``dim``, whose tag holds positions of several axes or in a
    scrambled order (ViT's class token ``x[:, 0]``, ``x.flatten(2)[..., i]``); ``tags`` are the
    output's. The axes that dim held and no other dim holds have one position left:

    - a flattened dim in row-major order (a :class:`~rfgraph.frontends.torch_layout.Merged` of
      whole axes) and a known index: that position, exactly;
    - a node whose features all see alike along those axes (after attention): any position,
      the first;
    - else which position it is is not known: global along them, said so.

    Without this the output kept its input's node and the grid's number of positions, though
    the tensor holds none (a ViT's logits had n 14 x 14).
    """
    tag = ctx.tags[dim]
    held = frozenset().union(*(L.spatial_axes(t) for t in tags))
    axes = L.spatial_axes(tag) - held
    if not axes:
        return ctx.passthrough(tags=tags)
    whole = index is not None and L.spatial_axes(tag) == axes and _size(tag) == ctx.x.shape[dim]
    where = _row_major(tag, index) if whole else None
    if where is None and axes <= ctx.b.uniform.get(ctx.node, frozenset()):
        where = {a: 0 for a in axes}
    if where is None:
        return ctx.global_over(axes, tags, f"one element of a dim holding positions of axes {_axes_text(axes)} in "
                               "an order not followed: which position is not known, treated as global",
                               keep=False)
    starts, stops = [None] * ctx.naxes, [None] * ctx.naxes
    for a, i in where.items():
        starts[a], stops[a] = i, i + 1
    name = ctx.emit("slice", {"start": tuple(starts), "stop": tuple(stops), "step": (1,) * ctx.naxes},
                    [ctx.node], tags, short=short)
    grid = ctx.b.grid.get(ctx.node)
    if grid is not None and name not in ctx.b.grid:
        ctx.b.grid[name] = tuple(1 if a in where else n for a, n in enumerate(grid))
    return name


def _size(tag):
    """Number of elements a Merged tag's parts hold (None for any other tag)."""
    if not isinstance(tag, L.Merged):
        return None
    out = 1
    for _, n in tag:
        out *= n
    return out


def _row_major(tag, index):
    """``{axis: position}`` of element ``index`` of a dim tagged ``tag`` when it is whole axes
    (and non-spatial dims) flattened in row-major order, else None.

    >>> sorted(_row_major(L.Merged(((0, 3), (1, 4))), 6).items()), _row_major(frozenset({0, 1}), 0)
    ([(0, 1), (1, 2)], None)
    """
    parts = tuple(tag) if isinstance(tag, L.Merged) else ((tag, None),)
    if not all(t is None or (isinstance(t, int) and not isinstance(t, bool)) for t, _ in parts):
        return None
    if not isinstance(tag, L.Merged):
        return {tag: index} if isinstance(tag, int) else None
    out = {}
    for t, size in reversed(parts):
        index, i = divmod(index, size)
        if t is not None:
            out[t] = i
    return out


def _slice_params(ctx, axis, start, end, step):
    starts = [None] * ctx.naxes
    stops = [None] * ctx.naxes
    steps = [1] * ctx.naxes
    n = None
    starts[axis] = start
    stops[axis] = end if end is None or end < 2**62 else None
    steps[axis] = step
    del n
    return {"start": tuple(starts), "stop": tuple(stops), "step": tuple(steps)}


@op("select")
def _select(ctx):
    dim = ctx.a["dim"] % len(ctx.tags)
    idx = ctx.a["index"]
    tag = ctx.tags[dim]
    tags = ctx.tags[:dim] + ctx.tags[dim + 1:]
    idx = idx % ctx.x.shape[dim]
    if not isinstance(tag, int):
        return _one_position(ctx, dim, idx, tags, "select")
    ctx.emit("slice", _slice_params(ctx, tag, idx, idx + 1, 1), [ctx.node], tags, short="select")


@op("split", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes", "chunk", "unbind", "tensor_split")
def _split(ctx):
    outs = ctx.out if isinstance(ctx.out, (list, tuple)) else [ctx.out]
    dim = ctx.a.get("dim", 0) % len(ctx.tags)
    tag = ctx.tags[dim]
    keep = ctx.packet != "unbind"
    tags = ctx.tags if keep else ctx.tags[:dim] + ctx.tags[dim + 1:]
    if not isinstance(tag, int):
        for o in outs:
            ctx.passthrough(tags=tags, out=o)
        return
    pos = 0
    for k, o in enumerate(outs):
        size = o.shape[dim] if keep else 1
        ctx.emit("slice", _slice_params(ctx, tag, pos, pos + size, 1), [ctx.node], tags,
                 short=f"{ctx.short}{k}", out=o)
        pos += size


@op("constant_pad_nd", "reflection_pad1d", "reflection_pad2d", "reflection_pad3d", "replication_pad1d",
    "replication_pad2d", "replication_pad3d", "_pad_circular", "pad")
def _pad(ctx):
    pad = list(ctx.a.get("pad", ctx.a.get("padding")))
    mode = ("reflect" if ctx.packet.startswith("reflection") else "replicate" if ctx.packet.startswith("replication")
            else "circular" if "circular" in ctx.packet else ctx.a.get("mode", "constant"))
    pairs = [(0, 0)] * ctx.naxes
    nd = len(ctx.tags)
    touched = False
    tags = ctx.tags
    for k in range(len(pad) // 2):
        d = nd - 1 - k
        before, after = pad[2 * k], pad[2 * k + 1]
        if before == 0 and after == 0:
            continue
        tag = ctx.tags[d]
        if isinstance(tag, int):
            pairs[tag] = (before, after)
            touched = True
        elif mode == "constant" and L.padded_rows(tag, before, after) is not None:
            # rows of positions padded at the end (the relative-to-absolute skew): a view and a
            # slice may give every row back its position (see torch_layout.skew_slice)
            tags = list(tags)
            tags[d] = L.padded_rows(tag, before, after)
        elif isinstance(tag, frozenset):
            if mode != "constant":
                return ctx.global_over(tag, ctx.tags, f"{mode} padding of scrambled spatial dims")
    tags = tuple(tags)
    if not touched:
        return ctx.passthrough(tags=tags)
    note = "circular padding: features near a border read the opposite border" if mode == "circular" else None
    ctx.emit("pad", {"padding": tuple(pairs), "mode": mode}, [ctx.node], tags, short="pad", note=note)


def _reordered_axes(ctx, dims):
    """The spatial axes behind tensor dims ``dims`` (None tags, channels, are left out), and the
    scrambled axes among them (a dim of positions in no known order)."""
    axes, scrambled = [], set()
    for d in dims:
        tag = ctx.dim_tag(d)
        if isinstance(tag, int):
            axes.append(tag)
        elif tag is not None:
            scrambled |= L.spatial_axes(tag)
    return axes, scrambled


@op("flip")
def _flip(ctx):
    dims = list(ctx.a["dims"])
    axes, scrambled = _reordered_axes(ctx, [d for d in dims if not isinstance(ctx.dim_tag(d), L.Merged)])
    for d in dims:
        tag = ctx.dim_tag(d)
        if isinstance(tag, L.Merged):
            parts = [t for t, _ in tag]
            if all(isinstance(t, int) for t in parts):  # reversing h*W + w reverses h and w
                axes += parts
            else:
                scrambled |= L.spatial_axes(tag)
    if scrambled:
        return ctx.global_over(scrambled, ctx.tags, f"{ctx.aten} along a dim of scrambled positions: "
                                                    "treated as global (not tractable)")
    flipped = sorted(a for a in set(axes) if axes.count(a) % 2)  # flipping twice is the identity
    if not flipped:
        return ctx.passthrough()
    ctx.emit("flip", {"axes": tuple(flipped)}, [ctx.node], ctx.tags, short="flip")


@op("roll")
def _roll(ctx):
    shifts = list(ctx.a["shifts"])
    dims = list(ctx.a.get("dims") or [])
    if not dims:
        return ctx.global_all(f"{ctx.aten} of the flattened tensor: treated as global (not tractable)")
    axes, scrambled = _reordered_axes(ctx, dims)
    if scrambled:
        return ctx.global_over(scrambled, ctx.tags, f"{ctx.aten} along a dim of scrambled positions: "
                                                    "treated as global (not tractable)")
    moved = [(int(s), ctx.dim_tag(d)) for s, d in zip(shifts, dims) if isinstance(ctx.dim_tag(d), int)]
    if not moved:
        return ctx.passthrough()
    ctx.emit("roll", {"shifts": tuple(s for s, _ in moved), "axes": tuple(a for _, a in moved)}, [ctx.node],
             ctx.tags, short="roll")


@op("upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "upsample_trilinear3d", "upsample_bicubic2d", "_upsample_bilinear2d_aa", "_upsample_bicubic2d_aa")
def _upsample(ctx):
    if not _check_layout(ctx, "interpolation"):
        return
    a = ctx.a
    p = ctx.packet
    if "_aa" in p:
        return ctx.b.unsupported(ctx, "antialiased interpolation")
    mode = ("nearest-exact" if "exact" in p else "nearest" if "nearest" in p else "bicubic" if "bicubic" in p
            else "linear")
    scales = a.get("scale_factors")
    if scales is None:
        keys = [k for k in ("scales_d", "scales_h", "scales_w", "scales") if k in a]
        vals = [a[k] for k in keys]
        scales = None if not vals or any(v is None for v in vals) else vals
    out = ctx.out_tensor()
    params = {"mode": mode}
    if mode not in ("nearest", "nearest-exact"):
        params["align_corners"] = bool(a.get("align_corners", False))
    if scales is not None and not params.get("align_corners"):
        params["scale"] = tuple(float(s) for s in _ints_f(scales, ctx.naxes))
    else:
        params["size"] = tuple(out.shape[-ctx.naxes:])
    ctx.emit("upsample", params, [ctx.node], ctx.tags, short="upsample")


def _ints_f(v, n):
    v = list(v)
    return v * n if len(v) == 1 else v


@op("pixel_shuffle")
def _pixel_shuffle(ctx):
    if not _check_layout(ctx, "pixel_shuffle"):
        return
    r = int(ctx.a["upscale_factor"])
    # output position o reads input position floor(o / r): nearest upsampling by r
    ctx.emit("upsample", {"scale": float(r), "mode": "nearest"}, [ctx.node], ctx.tags, short="pixel_shuffle")


@op("pixel_unshuffle")
def _pixel_unshuffle(ctx):
    if not _check_layout(ctx, "pixel_unshuffle"):
        return
    r = int(ctx.a["downscale_factor"])
    # the feature vector at o gathers the r x r block: a pool with kernel = stride = r
    ctx.emit("avgpool", {"kernel": r}, [ctx.node], ctx.tags, short="pixel_unshuffle")


@op("copy_")
def _copy(ctx):
    dst, src = ctx.a["self"], ctx.a["src"]
    tr = ctx.b.get(src)
    if tr is None:  # overwritten by untraced data
        ctx.b.traced.pop(id(dst), None)
        return
    if dst._base is None and tuple(dst.shape) == tuple(src.shape):
        ctx.b.set(dst, tr.node, tr.tags)
        return
    _copy_into_region(ctx, dst, tr)


def _copy_into_region(ctx, dst, tr):
    """``base[..., a:b] = src`` (how F.pad's circular mode is built): the region's positions take
    src's receptive fields, i.e. src constant-padded to the base's size, joined with what the base
    already held."""
    base = dst._base
    offsets = _region_offsets(base, dst)
    if offsets is None or len(tr.tags) != base.dim():
        return ctx.b.unsupported(ctx, "copy into a strided or reshaped part of another tensor")
    pairs = [(0, 0)] * ctx.naxes
    for d, tag in enumerate(tr.tags):
        if isinstance(tag, int):
            pairs[tag] = (offsets[d], base.shape[d] - offsets[d] - dst.shape[d])
        elif tag is not None and (offsets[d] or base.shape[d] != dst.shape[d]):
            # positions along a scrambled dim have no order to shift: the union of what the base
            # held and src is an over-approximation, said so in the note
            prev = ctx.b.get(base)
            inputs = [tr.node] if prev is None else [prev.node, tr.node]
            node = ctx.b.add("add" if len(inputs) > 1 else "identity", {}, inputs, "copy_merge", aten=ctx.aten,
                             note="copy into part of a scrambled spatial dim: union of both (upper bound)")
            ctx.b.set(base, node, tr.tags)
            return
    piece = ctx.b.add("pad", {"padding": tuple(pairs), "mode": "constant"}, [tr.node], "copy_region",
                      aten=ctx.aten)
    prev = ctx.b.get(base)
    node = piece
    if prev is not None:
        node = ctx.b.add("add", {}, [prev.node, piece], "copy_merge", aten=ctx.aten)
    ctx.b.set(base, node, tr.tags)


def _region_offsets(base, view):
    """Per-dim start of a plain slice ``view`` of ``base`` (same rank, same strides), else None."""
    if view.dim() != base.dim() or tuple(view.stride()) != tuple(base.stride()):
        return None
    rem = view.storage_offset() - base.storage_offset()
    offsets = [0] * base.dim()
    for d in sorted(range(base.dim()), key=lambda d: -base.stride()[d]):
        st = base.stride()[d]
        if st:
            offsets[d], rem = divmod(rem, st)
    if rem or any(o + s > b for o, s, b in zip(offsets, view.shape, base.shape)):
        return None
    return offsets


@op("zero_", "fill_", "normal_", "uniform_", "random_", "bernoulli_", "zeros_like", "ones_like", "empty_like",
    "full_like", "rand_like", "randn_like", "new_zeros", "new_ones", "new_empty", "new_full", "_local_scalar_dense",
    "sym_size", "sym_numel", "sym_stride", "sym_storage_offset", "size", "stride", "is_nonzero", "equal",
    "prim::device", "prim::layout")
def _overwritten(ctx):
    """Results that do not carry the input's values (fresh tensors, in-place fills)."""
    out = ctx.out_tensor() if not isinstance(ctx.out, (bool, int, float)) else None
    if out is not None:
        ctx.b.traced.pop(id(out), None)
