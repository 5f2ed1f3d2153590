"""PyTorch front-end: trace the aten ops of one forward pass into rfgraph's graph schema.

Why a dispatch mode: a :class:`~torch.utils._python_dispatch.TorchDispatchMode` sees every aten op
of one eager forward pass, functional calls included (``F.pad``, ``F.interpolate``, ``+``,
``torch.cat``, ``mean``), needs no symbolic tracing (so data-dependent Python control flow in
``forward`` is fine) and, on the meta device, costs no memory and no compute. ``torch.export``
gives the same ops but takes seconds per model; ``torch.fx`` fails on control flow. See the
README for measured trace times.

Only tensors computed from the input are followed (weights and constants are not). Module hooks
give each op its module path, so nodes are named after module qualnames (``layer3.1.conv2``;
functional ops get a suffix such as ``layer1.0.add``) and ``G.graph["module_outputs"]`` maps every
module to the node producing its output. Nothing here computes receptive fields: ops are only
translated (see :mod:`rfgraph.frontends.torch_ops`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from contextlib import contextmanager

import networkx as nx

from ..errors import ExportError, RFGraphError, UnsupportedOpError
from ..schema import keep_what_outputs_need, set_metadata, unique_name
from . import torch_layout as L

__all__ = ["from_torch", "meta_model"]

_POLICIES = ("raise", "global", "identity")


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a declared extra
        raise ExportError("the PyTorch front-end needs torch: pip install 'rfgraph[torch]'") from exc
    return torch


class Traced:
    """A tensor the tracer follows: the graph node whose output it is and its dimension tags."""

    __slots__ = ("node", "tags")

    def __init__(self, node, tags):
        self.node = node
        self.tags = tuple(tags)


class Builder:
    """Collects nodes while the model runs; keeps every traced tensor alive for identity."""

    def __init__(self, naxes, on_unsupported, model_root):
        self.G = nx.DiGraph()
        self.naxes = naxes
        self.policy = on_unsupported
        self.traced = {}  # id(tensor) -> Traced
        self.keep = []  # tensors kept alive so ids stay unique during the trace
        self.module_stack = [""]
        self.names = set()
        self.module_outputs = {}
        self.module_layouts = {}  # module -> the dims of its output map's spatial axes
        self.global_ops = {}  # aten op -> count, for the report
        self.shapes = {}  # node -> spatial sizes torch computed, for self-checks
        self.grid = {}  # node -> positions per axis its output holds (when the tags tell), for joins
        # node -> axes along which every output feature sees the same input (after a global op):
        # its positions along them are interchangeable, so a view scrambling them loses nothing
        self.uniform = {}
        # node -> (steps and grid, inputs) of a mix over windows that partitions the grid (see
        # torch_ops._window_mix): a product of its weights with one of those inputs mixes nothing new
        self.window_mixes = {}
        self._torch_dir = os.path.dirname(_torch().__file__) + os.sep
        # frames inside torch or rfgraph are not the user's source line
        self._here = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
        self.leaf = set()
        self.model_root = model_root
        self.suspended = 0  # > 0 while one intercepted call runs: its inner aten ops are not recorded
        self.sub_op = False  # the node being added is a helper of its leaf module, not its output
        self.padded = set()  # leaf modules that pad before their op (convs with a padding_mode)
        self.fake = False  # tracing with fake tensors (after a meta trace asked for a value)

    # -- tensors ----------------------------------------------------------------------------
    def get(self, t):
        return self.traced.get(id(t))

    def set(self, t, node, tags):
        self.traced[id(t)] = Traced(node, tags)
        self.keep.append(t)

    def release(self):
        """Drop the model and the traced tensors. The tracer's class, which refers to this
        builder, is a reference cycle that only a full garbage collection frees: without this a
        real model passed to from_torch (rfgraph.tools.verify's float64 copies) outlived the call."""
        self.model_root = None
        self.traced = {}
        self.keep = []

    # -- nodes ------------------------------------------------------------------------------
    def _source(self):
        f = sys._getframe(2)
        while f is not None:
            fn = f.f_code.co_filename
            if not fn.startswith(self._torch_dir) and not fn.startswith(self._here) and "contextlib" not in fn:
                return f"{fn}:{f.f_lineno}"
            f = f.f_back
        return None

    def _name(self, short):
        module = self.module_stack[-1]
        # a leaf module's op is named after the module (a shared ReLU called again: "relu_1");
        # a helper op inside it (a conv's circular padding) gets a suffix, so the conv keeps the name
        base = module if module in self.leaf and not self.sub_op else (f"{module}.{short}" if module else short)
        return unique_name(self.names, base)

    def add(self, op, params, inputs, short, aten=None, note=None, shape=None):
        name = self._name(short)
        attrs = dict(op=op, **params)
        attrs["module"] = self.module_stack[-1]
        src = self._source()
        if src:
            attrs["source"] = src
        if aten:
            attrs["target"] = aten
        if note:
            attrs["note"] = note
        self.G.add_node(name, **attrs)
        for i, u in enumerate(inputs):
            if self.G.has_edge(u, name):  # x + x: one edge carries the dependency
                continue
            self.G.add_edge(u, name, index=i)
        if shape is not None:
            self.shapes[name] = shape
        self._infer_grid(name, op, params, inputs)
        return name

    def _infer_grid(self, name, op, params, inputs):
        """The engine's size of a node, for joins to compare, where it follows from the op alone
        (the tags of the node's tensor, when they tell it, take over): a global op's own size,
        or the one grid of the inputs of an op that keeps positions."""
        size = params.get("size", 1) if op == "global" else None
        if isinstance(size, int):
            size = (size,) * self.naxes
        if isinstance(size, tuple):
            self.grid[name] = size
        elif op in ("identity", "add", "mul", "concat", "global"):
            grids = {self.grid.get(v) for v in inputs}
            if None in grids:
                return
            if len(grids) == 1:
                self.grid[name] = grids.pop()
            elif op in ("add", "mul"):  # a size 1 broadcasts
                per_axis = [{g[a] for g in grids} - {1} for a in range(self.naxes)]
                if all(len(s) <= 1 for s in per_axis):
                    self.grid[name] = tuple(s.pop() if s else 1 for s in per_axis)

    def unsupported(self, ctx, why):
        """Apply the policy for an op with no rule: raise, or map it to global / identity."""
        if self.policy == "raise":
            module = self.module_stack[-1] or "<top level>"
            src = self._source() or "unknown"
            raise UnsupportedOpError(
                f"no receptive-field rule for torch op {ctx.aten} ({why}) in module {module!r} at "
                f"{src}. Map it with rfgraph.frontends.torch_ops.register_torch_op({ctx.packet!r}, handler), "
                "or choose a policy: from_torch(..., on_unsupported='global' or 'identity') "
                "(on the command line: --on-unsupported global or identity)",
                node=self._peek_name(ctx.short), op=ctx.aten)
        if self.policy == "global":
            return ctx.global_all(f"{ctx.aten} has no rule; treated as global (on_unsupported='global')")
        return ctx.identity_approx(f"{ctx.aten} has no rule; treated as identity of its first traced input "
                                   "(on_unsupported='identity')")

    def _peek_name(self, short):
        module = self.module_stack[-1]
        return f"{module}.{short}" if module else short


@contextmanager
def _module_hooks(builder, model):
    torch = _torch()
    names = {}  # id(module) -> its first qualname
    # qualname of a module -> {id(child): the child's qualname there}: a module registered at
    # several places (ultralytics' Conv blocks share one SiLU) is named after the place it is
    # called from, when its caller holds it
    places = {}
    for qual, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), qual)
        places[qual] = {}
        for attr, child in m._modules.items():
            if child is not None:
                places[qual].setdefault(id(child), f"{qual}.{attr}" if qual else attr)
        if not any(True for _ in m.children()):
            builder.leaf.add(qual)
            if getattr(m, "padding_mode", "zeros") != "zeros":
                builder.padded.add(qual)

    def pre(module, args):
        qual = names.get(id(module))
        if qual is not None:
            qual = places.get(builder.module_stack[-1], {}).get(id(module), qual)
            builder.module_stack.append(qual)

    def post(module, args, output):
        if names.get(id(module)) is None:
            return
        qual = builder.module_stack.pop()  # the name pre gave this call
        _record_outputs(builder, qual, output)

    h1 = torch.nn.modules.module.register_module_forward_pre_hook(pre)
    h2 = torch.nn.modules.module.register_module_forward_hook(post)
    try:
        yield
    finally:
        h1.remove()
        h2.remove()


def _record_outputs(builder, qual, output):
    torch = _torch()
    if isinstance(output, torch.Tensor):
        tr = builder.get(output)
        if tr is not None:
            builder.module_outputs[qual] = tr.node
            # a module that ends in a permute back to (N, C, H, W), or a channels-last stage
            # (Swin's, MambaOut's (N, H, W, C)): its output is a map
            dims = L.map_dims(tr.tags, tuple(output.shape), builder.naxes)
            if dims is not None:
                builder.module_layouts[qual] = dims
                builder.shapes.setdefault(tr.node, tuple(output.shape[d] for d in dims))
    elif isinstance(output, dict):
        for k, v in output.items():
            _record_outputs(builder, f"{qual}.{k}" if qual else str(k), v)
    elif isinstance(output, (list, tuple)):
        for i, v in enumerate(output):
            _record_outputs(builder, f"{qual}.{i}" if qual else str(i), v)
        first = next((i for i, v in enumerate(output) if isinstance(v, torch.Tensor) and builder.get(v)), None)
        if first is not None and qual:
            builder.module_outputs.setdefault(qual, builder.get(output[first]).node)
            if f"{qual}.{first}" in builder.module_layouts:
                builder.module_layouts.setdefault(qual, builder.module_layouts[f"{qual}.{first}"])


def _make_tracer(builder):
    torch = _torch()
    from torch.utils._python_dispatch import TorchDispatchMode

    from .torch_ops import handle

    class Tracer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            packet = func._overloadpacket.__name__
            if (packet in _DATA_READS or packet == "_to_copy" and not builder.fake and _off_meta(kwargs)) and any(
                    _no_data(a) for a in args):
                raise _DataDependent(f"aten::{packet}", builder._source())
            args, kwargs = _stand_ins(args, kwargs)
            out = func(*args, **kwargs) if builder.fake else _meta_call(func, args, kwargs)
            if not builder.suspended:
                handle(builder, func, args, kwargs, out)
            return out

    return Tracer()


def _stand_ins(args, kwargs):
    """``args, kwargs`` with every tensor not on meta replaced by a meta stand-in, when the op
    also gets a tensor without data; else as given.

    A model that already ran a real forward may have cached tensors on its CPU (ultralytics'
    Detect keeps anchors and strides per input shape, reused while the shape is unchanged): in
    the trace they meet meta tensors, which torch refuses. Their values cannot matter to a
    result on meta, only their shapes. CPU scalars (0-dim) mix with any device and stay, as do
    ops on CPU tensors alone (a stride table computed in Python keeps its values).
    """
    torch = _torch()
    Tensor = torch.Tensor
    real = nodata = False
    for a in (*args, *kwargs.values()):
        for t in (a if isinstance(a, (list, tuple)) else (a,)):
            if isinstance(t, Tensor):
                if _no_data(t):
                    nodata = True
                elif t.dim() > 0:
                    real = True
    if not (real and nodata):
        return args, kwargs

    def swap(t):
        if isinstance(t, Tensor) and not _no_data(t) and t.dim() > 0:
            return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
        if isinstance(t, (list, tuple)) and any(isinstance(x, Tensor) for x in t):
            return type(t)(swap(x) for x in t)
        return t

    return tuple(swap(a) for a in args), {k: swap(v) for k, v in kwargs.items()}


# ops whose result depends on a tensor's values, not only its shape: neither a meta nor a fake
# tensor (without a symbolic shape environment) can answer them
_DATA_READS = frozenset({"_local_scalar_dense", "is_nonzero", "equal", "nonzero", "masked_select", "_unique",
                         "_unique2", "unique_dim", "unique_consecutive", "unique_dim_consecutive", "bincount"})


def _no_data(t):
    """A tensor without values: on meta, or a fake tensor."""
    torch = _torch()
    return isinstance(t, torch.Tensor) and (t.is_meta or type(t).__name__ == "FakeTensor")


def _off_meta(kwargs):
    """A copy to a device other than meta (``.cpu()``, ``.tolist()``): reads the values."""
    device = kwargs.get("device")
    return device is not None and getattr(device, "type", str(device)) != "meta"


def _make_function_mode(builder):
    """Intercept two calls above the dispatcher, each traced as the one aten op it stands for:

    - ``F.pad``: circular padding is a Python-level composite (slices copied into a new tensor)
      by the time the dispatch mode sees it, which would trace as four constant pads and joins;
    - recurrent layers (``nn.LSTM``, ``nn.GRU``, ``nn.RNN`` call ``torch._VF.lstm`` and kin): on
      meta they decompose into a few ops per time step per direction (0.38 s for one LSTM over
      56 steps, sequencer2d runs 2 per block), and the unrolled steps hide that the layer runs
      along one axis. Their output shapes follow from the arguments (:func:`_rnn_outputs`).
    """
    torch = _torch()
    from torch.overrides import TorchFunctionMode

    from .torch_ops import handle

    pads = (torch.nn.functional.pad, torch._C._nn.pad)
    aten_pad = torch.ops.aten.pad.default
    vf, aten = torch._C._VariableFunctions, torch.ops.aten
    rnns = {vf.lstm: aten.lstm.input, vf.gru: aten.gru.input, vf.rnn_tanh: aten.rnn_tanh.input,
            vf.rnn_relu: aten.rnn_relu.input}

    class CallMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if builder.suspended:
                return func(*args, **kwargs)
            target = rnns.get(func) if not kwargs and len(args) == 9 and isinstance(args[3], bool) else None
            if target is not None:  # the `input` overload (args[3] is has_biases), not packed `data`
                out = _rnn_outputs(torch, target is aten.lstm.input, args)
                if out is None:
                    builder.suspended += 1
                    try:
                        out = func(*args)
                    finally:
                        builder.suspended -= 1
                handle(builder, target, args, {}, out)
                return out
            if func not in pads:
                return func(*args, **kwargs)
            bound = _pad_args(args, kwargs)
            if bound is None or builder.get(bound[0]) is None:
                return func(*args, **kwargs)
            builder.suspended += 1
            try:
                out = func(*args, **kwargs)
            finally:
                builder.suspended -= 1
            builder.sub_op = builder.module_stack[-1] in builder.padded
            try:
                handle(builder, aten_pad, bound, {}, out)
            finally:
                builder.sub_op = False
            return out

    return CallMode()


def _rnn_outputs(torch, lstm, args):
    """Meta outputs of ``lstm/gru/rnn_*(input, hx, params, has_biases, num_layers, dropout, train,
    bidirectional, batch_first)``: the output is the input with its last dim replaced by
    directions x hidden (proj) size, the final states are shaped like the initial ones (pinned
    by a test against the real kernel). None unless every tensor is on meta."""
    x, hx, params, bidirectional = args[0], args[1], args[2], args[7]
    states = list(hx) if lstm else [hx]
    tensors = [x, *states, *params]
    if not all(isinstance(t, torch.Tensor) and t.is_meta for t in tensors) or x.dim() not in (2, 3):
        return None
    width = (2 if bidirectional else 1) * states[0].shape[-1]
    out = torch.empty(tuple(x.shape[:-1]) + (width,), dtype=x.dtype, device="meta")
    finals = tuple(torch.empty(tuple(s.shape), dtype=s.dtype, device="meta") for s in states)
    return (out, *finals)


def _pad_args(args, kwargs):
    """``F.pad``'s arguments as ``aten::pad`` takes them: (input, pad, mode, value), or None."""
    names = ("input", "pad", "mode", "value")
    vals = dict(zip(names, args))
    vals.update({k: v for k, v in kwargs.items() if k in names})
    if "input" not in vals or "pad" not in vals:
        return None
    return (vals["input"], list(vals["pad"]), vals.get("mode") or "constant", vals.get("value"))


# -- memoised meta kernels ------------------------------------------------------------------------
# Many meta kernels are Python decompositions (batch norm, every elementwise op through
# torch._refs): they cost 0.1-3 ms per call, most of a trace. On meta tensors an op's output
# metadata is a pure function of its inputs' metadata and its non-tensor arguments, and networks
# repeat the same shapes block after block, so functional ops (no mutation, no aliasing, fresh
# Tensor outputs, only meta tensor arguments) are run once per distinct signature and replayed
# with empty_strided. Measured on the classification zoo: see benchmarks/results/zoo.md.
_META_CACHE = {}
_META_CACHE_MAX = 200_000
_CACHEABLE = {}
_SCALARS = (int, float, bool, str, type(None))
_ENUMS = None


class _Uncacheable(Exception):
    pass


def _sig(x, Tensor):
    """A hashable signature of an argument: tensors by metadata, scalars by type and value."""
    t = type(x)
    if t is int or t is str or x is None:
        return x
    if t is tuple or t is list:
        return (t, *[y if type(y) is int else _sig(y, Tensor) for y in x])
    if t is float or t is bool:
        return (t, x)  # 1, 1.0 and True hash alike but promote differently
    if isinstance(x, Tensor):
        if not x.is_meta:  # a real tensor's values may matter (CPU index tensors)
            raise _Uncacheable
        return (x.dtype, x.shape, x.stride())
    if isinstance(x, (list, tuple)):  # torch.Size
        return (tuple, *[_sig(y, Tensor) for y in x])
    if isinstance(x, _SCALARS):
        return (t, x)
    global _ENUMS
    if _ENUMS is None:
        torch = _torch()
        _ENUMS = (torch.dtype, torch.device, torch.memory_format, torch.layout)
    if isinstance(x, _ENUMS):
        return x
    raise _Uncacheable


def _cacheable(func):
    ok = _CACHEABLE.get(func)
    if ok is None:
        s = func._schema
        ok = _CACHEABLE[func] = (bool(s.returns) and not s.is_mutable
                                 and all(str(r.type) == "Tensor" and r.alias_info is None for r in s.returns))
    return ok


def _bn_no_training(args, kwargs, torch):
    """Eval-mode batch norm's meta outputs without its Python decomposition (3 ms a call): the
    output is laid out like the input, mean and invstd are per channel (pinned by a test against
    the real meta kernel). None when the arguments are not the plain case."""
    x = args[0] if args else None
    if kwargs or not isinstance(x, torch.Tensor) or not x.is_meta or x.dim() < 2:
        return None
    if len(args) == 8:  # native_batch_norm(input, weight, bias, mean, var, training, momentum, eps)
        if args[5] is not False or args[3] is None or args[4] is None:
            return None
    elif len(args) != 7:  # _native_batch_norm_legit_no_training: no `training`
        return None
    stats = [a for a in args[1:5] if a is not None]
    if x.dtype not in (torch.float32, torch.float64) or any(
            not isinstance(a, torch.Tensor) or not a.is_meta or a.dtype != x.dtype or tuple(a.shape) != (x.shape[1],)
            for a in stats):
        return None
    c = x.shape[1]
    return (torch.empty_like(x), torch.empty((c,), dtype=x.dtype, device="meta"),
            torch.empty((c,), dtype=x.dtype, device="meta"))


def _meta_call(func, args, kwargs):
    """``func(*args, **kwargs)`` on meta tensors, replayed from a cache when possible."""
    if not _cacheable(func):
        return func(*args, **kwargs)
    torch = _torch()
    if func in (torch.ops.aten._native_batch_norm_legit_no_training.default, torch.ops.aten.native_batch_norm.default):
        out = _bn_no_training(args, kwargs, torch)
        if out is not None:
            return out
    Tensor = torch.Tensor
    try:
        key = (func, _sig(args, Tensor), _sig(tuple(kwargs.items()), Tensor) if kwargs else None)
        hit = _META_CACHE.get(key)
    except (_Uncacheable, TypeError):  # TypeError: an unhashable argument
        return func(*args, **kwargs)
    if hit is not None:
        multi, specs = hit
        outs = tuple(torch.empty_strided(shape, stride, dtype=dtype, device="meta") for shape, stride, dtype in specs)
        return outs if multi else outs[0]
    out = func(*args, **kwargs)
    outs = out if isinstance(out, tuple) else (out,)
    if all(type(o) is Tensor and o.is_meta for o in outs):
        if len(_META_CACHE) >= _META_CACHE_MAX:
            _META_CACHE.clear()
        _META_CACHE[key] = (isinstance(out, tuple), tuple((tuple(o.shape), o.stride(), o.dtype) for o in outs))
    return out


def _parse_shapes(model, input_shape):
    """Normalise ``input_shape`` to a list of full tensor shapes (with batch) and ``naxes``."""
    torch = _torch()
    shapes = input_shape
    if not isinstance(shapes, (list, tuple)) or not shapes:
        raise ExportError(f"input_shape must be a tuple of positive ints, channels first: (C, H, W), (C, L) or "
                          f"(C, T, H, W) (a list of such tuples for a model with several inputs), got {shapes!r}")
    if not isinstance(shapes[0], (list, tuple)):
        shapes = [shapes]
    conv_dims = None
    for m in model.modules():
        for cls, nd in ((torch.nn.Conv1d, 1), (torch.nn.Conv2d, 2), (torch.nn.Conv3d, 3)):
            if isinstance(m, cls):
                conv_dims = nd
                break
        if conv_dims:
            break
    out = []
    for s in shapes:
        if not isinstance(s, (list, tuple)):
            raise ExportError(f"input_shape lists several inputs; each must be a tuple like (3, 224, 224), got {s!r}")
        s = tuple(s)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in s):
            raise ExportError(f"input_shape must be positive ints like (3, 224, 224), got {s!r}")
        if len(s) < 2:
            raise ExportError(f"input_shape {s!r} has too few dims: give (C, L), (C, H, W) or (C, T, H, W)")
        if conv_dims is not None and len(s) < conv_dims + 1:
            raise ExportError(f"input_shape {s!r} has too few dims for a model whose first conv is "
                              f"{conv_dims}-D: give channels first, e.g. (3, {', '.join(['224'] * conv_dims)})")
        if conv_dims is not None and len(s) == conv_dims + 2:
            full = s  # a leading batch dimension was given
        elif conv_dims is not None and len(s) == conv_dims + 1:
            full = (1,) + s
        elif conv_dims is None and len(s) <= 4:
            full = (1,) + s
        elif len(s) == 5:
            full = s
        else:
            raise ExportError(f"input_shape {s!r} does not fit a model whose first conv is {conv_dims}-D: "
                              f"give (C, {', '.join('HW'[:conv_dims]) if conv_dims and conv_dims < 3 else 'T, H, W'})")
        out.append(full)
    naxes = len(out[0]) - 2
    if any(len(s) - 2 != naxes or s[2:] != out[0][2:] for s in out):
        raise ExportError(f"all inputs must share one spatial size, got {[s[2:] for s in out]}")
    return out, naxes


@contextmanager
def _untouched(model):
    """Put every module's attributes back after the trace: a forward that caches something
    (anchors per input size, a mask, a position table) would otherwise keep meta tensors made
    during the trace, and the next real forward would fail. Parameters, buffers and submodules
    are restored by reference (the trace computes on stand-ins, never on them)."""
    saved = []
    for m in model.modules():
        saved.append((m, dict(m.__dict__), dict(m._parameters), dict(m._buffers), dict(m._modules)))
    try:
        yield
    finally:
        for m, attrs, params, buffers, modules in saved:
            for k in [k for k in m.__dict__ if k not in attrs]:
                del m.__dict__[k]
            for k, v in attrs.items():
                if m.__dict__.get(k, _UNSET) is not v:
                    m.__dict__[k] = v
            for store, old in ((m._parameters, params), (m._buffers, buffers), (m._modules, modules)):
                if store.keys() != old.keys() or any(store[k] is not v for k, v in old.items()):
                    store.clear()
                    store.update(old)


_UNSET = object()


@contextmanager
def _eval_mode(model):
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, t in flags:
            m.training = t


def _meta_params(model):
    """Meta stand-ins for parameters and buffers not already on meta (the model is untouched)."""
    torch = _torch()
    out = {}
    for name, t in list(model.named_parameters(remove_duplicate=False)) + list(model.named_buffers(remove_duplicate=False)):
        if t.device.type != "meta":
            out[name] = torch.empty_like(t, device="meta")
    return out


def from_torch(model, input_shape, *, on_unsupported: str = "raise") -> nx.DiGraph:
    """Trace a PyTorch module into a graph in rfgraph's schema.

    The model runs once, in eval mode, on meta tensors (parameters not on meta are replaced by
    meta stand-ins for the call), so no memory is allocated for activations or weights and
    nothing is computed. The model is not modified: parameters, buffers, submodules and any
    attribute the forward sets or replaces (a cache) are as before. Tensors the forward meets
    off meta next to traced ones (anchors cached by an earlier real forward) take part through
    meta stand-ins.

    Parameters
    ----------
    model : torch.nn.Module
    input_shape : tuple or list of tuples
        ``(C, H, W)``, ``(C, L)`` or ``(C, T, H, W)``; a leading batch dimension is accepted.
        A list of shapes calls the model with several inputs (e.g. the two frames of an
        optical-flow model); they must share one spatial size.
    on_unsupported : {"raise", "global", "identity"}
        What to do with an op that has no rule: raise :class:`UnsupportedOpError` (default),
        or map it to a global op / to identity and say so in the node's ``note``.

    Returns
    -------
    networkx.DiGraph
        Nodes named by module qualname, with ``module``, ``source`` and ``target`` (the aten op)
        attributes; ``G.graph["module_outputs"]`` maps module qualnames to nodes,
        ``G.graph["module_layouts"]`` gives the dims of those outputs' spatial axes where they
        are maps (``(2, 3)``, or ``(1, 2)`` channels-last) and ``G.graph["outputs"]`` lists the
        nodes producing the model's outputs.

    Examples
    --------
    >>> import torch, rfgraph
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
    ...                           torch.nn.MaxPool2d(2))
    >>> G = rfgraph.from_torch(net, (3, 32, 32))
    >>> list(G)
    ['input', '0', '1', '2']
    >>> rfgraph.analyze(G).module("2").rf
    (4, 4)
    """
    torch = _torch()
    if on_unsupported not in _POLICIES:
        raise ValueError(f"on_unsupported must be one of {_POLICIES}, got {on_unsupported!r}")
    if not isinstance(model, torch.nn.Module):
        raise ExportError(f"expected a torch.nn.Module, got {type(model).__name__}")
    shapes, naxes = _parse_shapes(model, input_shape)
    try:
        builder, outputs = _trace(model, shapes, naxes, on_unsupported, fake=False)
    except _DataDependent as first:
        # the forward asked a meta tensor for a value: again with fake tensors, which code that
        # knows tracing (transformers' mask checks) recognises and does not ask
        try:
            builder, outputs = _trace(model, shapes, naxes, on_unsupported, fake=True)
        except _DataDependent as exc:
            raise ExportError(
                f"tracing {type(model).__name__} failed: its forward asks a tensor for its value ({exc.op}, e.g. "
                f"Tensor.item(), .all() in an if, .tolist(), nonzero) at {exc.source or 'an unknown line'}, which a "
                "trace without data cannot answer (tried meta tensors, then fake tensors). Make that code skip "
                "the check for meta/fake tensors or pass the value in, or trace a submodule after it "
                "(e.g. the backbone)") from first
    if not outputs:
        raise ExportError("the model's output does not depend on its input (no traced tensor in the output)")
    G = builder.G
    keep = keep_what_outputs_need(G, outputs)
    kept = {m: v for m, v in builder.module_outputs.items() if v in keep}
    set_metadata(G, module_outputs=kept,
                 module_layouts={m: d for m, d in builder.module_layouts.items() if m in kept},
                 outputs=list(dict.fromkeys(outputs)),
                 shapes={v: s for v, s in builder.shapes.items() if v in keep},
                 model=type(model).__name__, global_ops=dict(builder.global_ops))
    return G


class _DataDependent(Exception):
    """Raised inside a trace when the forward reads a traced tensor's value (internal)."""

    def __init__(self, op, source):
        super().__init__(op)
        self.op, self.source = op, source


def _trace(model, shapes, naxes, on_unsupported, fake):
    """Run the model once on meta (or fake) tensors under the tracer: the builder and the nodes
    of the model's outputs."""
    torch = _torch()
    builder = Builder(naxes, on_unsupported, model)
    builder.fake = fake
    inputs = []
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
    fake_mode = None
    if fake:
        from torch._subclasses.fake_tensor import FakeTensorMode

        # meta parameters stay as they are: allow_non_fake_inputs converts them op by op
        fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    for k, s in enumerate(shapes):
        x = torch.empty(s, device="meta", dtype=dtype)
        if fake_mode is not None:
            x = fake_mode.from_tensor(x)
        name = "input" if k == 0 else f"input_{k}"
        builder.names.add(name)
        builder.G.add_node(name, op="input", size=tuple(s[2:]))
        builder.grid[name] = tuple(s[2:])
        builder.set(x, name, (None, None) + tuple(range(naxes)))
        inputs.append(x)
    params = _meta_params(model)
    tracer = _make_tracer(builder)
    calls = _make_function_mode(builder)
    outputs = []
    try:
        with _untouched(model), _eval_mode(model), torch.no_grad(), _module_hooks(builder, model), \
                (fake_mode if fake_mode is not None else contextlib.nullcontext()), calls, tracer:
            if params:
                out = torch.func.functional_call(model, params, tuple(inputs), strict=False)
            else:
                out = model(*inputs)
        _collect_outputs(builder, out, outputs)
    except (RFGraphError, _DataDependent):
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ""
        low = msg.lower()
        if any(w in low for w in ("kernel size", "too small", "output size is too small", "smaller than")):
            hint = " The input is too small for this model: try a larger input_shape."
        elif "channel" in low or "shape" in low or "size" in low:
            hint = (f" Check input_shape {tuple(shapes[0][1:])} against the model: channels come first "
                    "and must match its first layer.")
        raise ExportError(f"tracing {type(model).__name__} on input shape {shapes[0]} failed: "
                          f"{type(exc).__name__}: {msg}.{hint}") from exc
    finally:
        builder.release()
    return builder, outputs


def _collect_outputs(builder, out, acc):
    torch = _torch()
    if isinstance(out, torch.Tensor):
        tr = builder.get(out)
        if tr is not None:
            acc.append(tr.node)
    elif isinstance(out, dict):
        for v in out.values():
            _collect_outputs(builder, v, acc)
    elif isinstance(out, (list, tuple)):
        for v in out:
            _collect_outputs(builder, v, acc)


@contextmanager
def _params_on_meta():
    """Create parameters and buffers on meta even when a constructor needs real tensors."""
    torch = _torch()
    reg_p = torch.nn.Module.register_parameter
    reg_b = torch.nn.Module.register_buffer

    def register_parameter(self, name, param):
        if param is not None and param.device.type != "meta":
            param = torch.nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        reg_p(self, name, param)

    def register_buffer(self, name, tensor, persistent=True):
        if tensor is not None and tensor.device.type != "meta":
            tensor = tensor.to("meta")
        reg_b(self, name, tensor, persistent)

    torch.nn.Module.register_parameter = register_parameter
    torch.nn.Module.register_buffer = register_buffer
    try:
        yield
    finally:
        torch.nn.Module.register_parameter = reg_p
        torch.nn.Module.register_buffer = reg_b


def meta_model(factory, *args, **kwargs):
    """Build ``factory(*args, **kwargs)`` with every parameter on the meta device.

    Tries ``with torch.device("meta")`` first (fastest); constructors that compute with tensors
    (RegNet's width schedule calls ``.tolist()``) fall back to creating parameters on the CPU
    uninitialised-then-moved, one at a time, so even the largest models cost no real memory.
    """
    torch = _torch()
    try:
        with torch.device("meta"), _skip_meta_init():
            return factory(*args, **kwargs)
    except NotImplementedError:
        with _params_on_meta(), _skip_meta_init():
            return factory(*args, **kwargs)


@contextmanager
def _skip_meta_init():
    """While a model is built, ``torch.nn.init`` functions return meta tensors untouched.

    Initialising a meta tensor has nothing to do, yet random fills run Python reference kernels
    on meta (``trunc_normal_`` is ``uniform_``, ``erfinv_``, ``mul_``, ``add_``, ``clamp_``): they
    were three quarters of building the classification zoo (10.7 s of 80 models, now 2.6 s).
    """
    torch = _torch()
    init = torch.nn.init
    saved = {n: getattr(init, n) for n in dir(init)
             if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))}

    def skip(fn):
        def wrapper(tensor, *args, **kwargs):
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "meta":
                return tensor
            return fn(tensor, *args, **kwargs)

        return wrapper

    for n, fn in saved.items():
        setattr(init, n, skip(fn))
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)
