"""ONNX front-end: translate an ONNX model's graph into rfgraph's graph schema, without running it.

The file is read with the ``onnx`` package only; tensor shapes come from ONNX shape inference
with data propagation, and the few small constant subgraphs that compute a ``Pad``'s pads, a
``Resize``'s sizes or a ``Slice``'s starts (``Constant``, ``Shape``, ``Gather``, ``Concat``, ...
on initializers and known shapes) are folded by a tiny numpy evaluator of those ops (:data:`FOLD`).
Nothing from the file is executed and the model is never run.

Tensors computed from a graph input are followed, each with its dimension tags (see
:mod:`rfgraph.frontends.torch_layout`: which dims hold which spatial axis, through reshapes and
transposes); the op table :mod:`rfgraph.frontends.onnx_ops` maps each ONNX op to our canonical
ops. Nodes keep the ONNX node names; the torch module path an exporter recorded in a name
(``/layer3/layer3.0/conv1/Conv`` -> ``layer3.0.conv1``) or in ``metadata_props`` becomes the
node's ``module``, and ``G.graph["module_outputs"]`` maps every such module to the node producing
its output, so ``analysis.module("layer3")`` works on an exported torchvision model.
"""

from __future__ import annotations

import os

import networkx as nx
import numpy as np

from ..errors import CycleError, ExportError, RFGraphError
from ..schema import keep_what_outputs_need, set_metadata, unique_name
from .torch import Traced  # (the torch front-end's module imports torch only when tracing)

__all__ = ["from_onnx", "annotate_onnx", "load_model", "FOLD"]

_POLICIES = ("raise", "global", "identity")
_FOLD_MAX = 1 << 16  # constants larger than this are never folded (weights, not shapes)
_FOLD_ROUNDS = 40  # folding and shape inference, in turn, until nothing new folds (Swin: 16)


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - onnx is a declared extra
        raise ExportError("the ONNX front-end needs the onnx package: pip install 'rfgraph[onnx]'") from exc
    return onnx


def load_model(model, *, external_data=False):
    """A ``ModelProto`` from a path, bytes or a ``ModelProto``; one clear :class:`ExportError`
    for a file that is missing, not ONNX, truncated, or whose external data is missing.

    ``external_data`` loads the weights stored beside the file (needed to write the model back);
    the analysis itself only needs their shapes (:func:`from_onnx` reads a model whose weights'
    file is missing, and says so in the input node's ``note``).
    """
    proto, base, missing = _load(model)
    if missing:
        raise _missing_error(*next(iter(missing.items())), base, model)
    if external_data and base is not None:
        from onnx.external_data_helper import load_external_data_for_model

        load_external_data_for_model(proto, base)
    return proto


def _load(model):
    """``(ModelProto, directory of its external data or None, {initializer: missing file})``.
    Small external tensors (shapes, axes: what the folding evaluator may read) are loaded; the
    weights' bytes are not: only their dims are used."""
    onnx = _onnx()
    base = None
    if isinstance(model, onnx.ModelProto):
        proto = model
    else:
        raw = model
        if isinstance(model, (str, os.PathLike)):
            path = os.fspath(model)
            if not os.path.isfile(path):
                raise FileNotFoundError(2, "no such file", path)
            with open(path, "rb") as f:
                raw = f.read()
            base = os.path.dirname(os.path.abspath(path))
        if not isinstance(raw, (bytes, bytearray)):
            raise ExportError(f"expected a path, bytes or an onnx.ModelProto, got {type(model).__name__}")
        proto = onnx.ModelProto()
        try:
            proto.ParseFromString(bytes(raw))
        except Exception as exc:  # protobuf's DecodeError: not ONNX, or cut short
            raise ExportError(f"{_what(model)} is not a readable ONNX model ({type(exc).__name__}: "
                              f"{str(exc) or 'protobuf parse failed'}); is the file complete?") from None
    if not proto.HasField("graph") or not proto.graph.node or not proto.opset_import:
        raise ExportError(f"{_what(model)} is not an ONNX model with a graph (no nodes or no opset): "
                          "a truncated file or another format?")
    return proto, base, _external(proto, base, model)


def _external(proto, base, model):
    """Load the small external tensors of a file read from disk (``proto`` is our own copy);
    ``{initializer: location}`` of those whose file is missing."""
    from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

    missing = {}
    if base is None:
        return missing  # a ModelProto given in memory: its data's directory is unknown
    for t in _all_initializers(proto.graph):
        if not uses_external_data(t):
            continue
        loc = next((e.value for e in t.external_data if e.key == "location"), None)
        if loc is None or not os.path.isfile(os.path.join(base, loc)):
            missing[t.name] = loc
        elif (int(np.prod(t.dims)) if t.dims else 1) <= _FOLD_MAX:
            try:
                load_external_data_for_tensor(t, base)
            except Exception as exc:  # outside the model's directory, past the file's end, ...
                raise ExportError(f"initializer {t.name!r} of {_what(model)}: cannot read its external data "
                                  f"{loc!r} ({type(exc).__name__}: {exc})") from None
    return missing


def _what(model):
    return repr(os.fspath(model)) if isinstance(model, (str, os.PathLike)) else "the model"


def _all_initializers(graph):
    yield from graph.initializer
    for n in graph.node:
        for a in n.attribute:
            if a.type == a.GRAPH:
                yield from _all_initializers(a.g)


# -- shapes ----------------------------------------------------------------------------------------


def _dims(type_proto):
    """Shape of a tensor type as a tuple of ints (None for an unknown dim), or None."""
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in type_proto.tensor_type.shape.dim)


def _image_inputs(graph):
    """Graph inputs that are neither initializers nor scalars/vectors: the image(s)."""
    inits = {t.name for t in graph.initializer}
    out = []
    for vi in graph.input:
        if vi.name in inits:
            continue
        dims = _dims(vi.type)
        if dims is not None and len(dims) >= 3:
            out.append((vi, dims))
    return out


def _layout(dims):
    """``(first spatial dim, number of spatial dims)``: NCHW unless the last dim looks like
    channels (1, 3 or 4) and dim 1 does not (a TensorFlow NHWC input)."""
    c_last = dims[-1] in (1, 3, 4) and dims[1] not in (1, 3, 4) and len(dims) == 4
    return (1, len(dims) - 2) if c_last else (2, len(dims) - 2)


def _fix_inputs(proto, input_size):
    """A copy of ``proto`` whose image inputs have static dims (batch 1, ``input_size`` for the
    spatial ones when given), or an :class:`ExportError` naming a dynamic spatial dim."""
    onnx = _onnx()
    fixed = onnx.ModelProto()
    fixed.CopyFrom(proto)
    for t in fixed.graph.initializer:  # shape inference needs weights' dims, not their values
        if t.dims and int(np.prod(t.dims)) > _FOLD_MAX:
            for field in ("raw_data", "float_data", "double_data", "int32_data", "int64_data", "uint64_data"):
                t.ClearField(field)
    images = _image_inputs(fixed.graph)
    if not images:
        raise ExportError("the model has no image input (a graph input of rank 3 or more that is not an "
                          "initializer)")
    for vi, dims in images:
        first, naxes = _layout(dims)
        size = None
        if input_size is not None:
            size = tuple(input_size) * naxes if len(input_size) == 1 else tuple(input_size)
            if len(size) != naxes:
                raise ExportError(f"input {vi.name!r} has {naxes} spatial dims; the given input size "
                                  f"{tuple(input_size)} has {len(size)}")
        shape = vi.type.tensor_type.shape
        for i, d in enumerate(shape.dim):
            if first <= i < first + naxes and size is not None:
                d.Clear()
                d.dim_value = int(size[i - first])
            elif not d.HasField("dim_value"):
                if first <= i < first + naxes:
                    raise ExportError(f"input {vi.name!r} has a dynamic spatial dim ({d.dim_param or '?'}, "
                                      f"dim {i} of shape {_show(dims)}); give the input size "
                                      "(from_onnx(..., input_size=(H, W)); on the command line --input-size H,W)")
                name = d.dim_param
                d.Clear()
                d.dim_value = 1  # batch (or another free dim): its size does not change any RF
                del name
    # inferred shapes of the original file may carry the old sizes: drop them, infer afresh
    del fixed.graph.value_info[:]
    for o in fixed.graph.output:
        if o.type.HasField("tensor_type") and o.type.tensor_type.HasField("shape"):
            o.type.tensor_type.ClearField("shape")
    return fixed


def _show(dims):
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _infer(proto):
    onnx = _onnx()
    try:
        return onnx.shape_inference.infer_shapes(proto, data_prop=True)
    except Exception as exc:  # InferenceError, ValidationError: the file is inconsistent
        msg = " ".join(str(exc).split())[:300]
        raise ExportError(f"ONNX shape inference failed: {msg}") from None


# -- a tiny evaluator of the constant subgraphs that compute shapes ---------------------------------


def _a(node, name, default=None):
    onnx = _onnx()
    for at in node.attribute:
        if at.name == name:
            v = onnx.helper.get_attribute_value(at)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _fold_constant(node, ins, opset):
    onnx = _onnx()
    from onnx import numpy_helper

    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        v = _a(node, key)
        if v is not None:
            return numpy_helper.to_array(v) if key == "value" else np.array(v)
    return None


def _fold_shape(node, ins, opset):
    x = ins[0]
    start, end = _a(node, "start", 0), _a(node, "end")
    return np.array(x.shape, dtype=np.int64)[slice(start, end)]


def _fold_gather(node, ins, opset):
    return np.take(ins[0], ins[1].astype(np.int64), axis=_a(node, "axis", 0))


def _fold_concat(node, ins, opset):
    return np.concatenate([np.atleast_1d(x) for x in ins], axis=_a(node, "axis", 0))


def _fold_cast(node, ins, opset):
    from onnx import helper

    return ins[0].astype(helper.tensor_dtype_to_np_dtype(_a(node, "to")))


def _axes(node, ins, opset, k=1):
    return [int(a) for a in (ins[k] if len(ins) > k and ins[k] is not None else _a(node, "axes") or [])]


def _fold_unsqueeze(node, ins, opset):
    x = ins[0]
    axes = sorted(a % (x.ndim + len(_axes(node, ins, opset))) for a in _axes(node, ins, opset))
    for a in axes:
        x = np.expand_dims(x, a)
    return x


def _fold_squeeze(node, ins, opset):
    axes = _axes(node, ins, opset)
    return np.squeeze(ins[0], axis=tuple(axes) if axes else None)


def _fold_slice(node, ins, opset):
    x = ins[0]
    if opset < 10:
        starts, ends, axes, steps = _a(node, "starts"), _a(node, "ends"), _a(node, "axes"), None
    else:
        starts, ends = ins[1].tolist(), ins[2].tolist()
        axes = ins[3].tolist() if len(ins) > 3 and ins[3] is not None else None
        steps = ins[4].tolist() if len(ins) > 4 and ins[4] is not None else None
    axes = axes or list(range(len(starts)))
    steps = steps or [1] * len(starts)
    idx = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        idx[a] = slice(int(s), int(e), int(st))
    return x[tuple(idx)]


def _fold_reshape(node, ins, opset):
    shape = [int(v) for v in ins[1]]
    shape = [ins[0].shape[i] if v == 0 and not _a(node, "allowzero", 0) else v for i, v in enumerate(shape)]
    return ins[0].reshape(shape)


def _binary(fn):
    return lambda node, ins, opset: fn(ins[0], ins[1])


def _div(a, b):
    if np.issubdtype(a.dtype, np.integer) and np.issubdtype(b.dtype, np.integer):
        return np.trunc(a / b).astype(a.dtype)  # ONNX integer division truncates
    return a / b


def _fold_constant_of_shape(node, ins, opset):
    from onnx import numpy_helper

    v = _a(node, "value")
    fill = numpy_helper.to_array(v) if v is not None else np.zeros(1, dtype=np.float32)
    return np.full([int(s) for s in ins[0]], fill.reshape(-1)[0], dtype=fill.dtype)


def _fold_mod(node, ins, opset):
    # fmod=1: the sign of the dividend (C's fmod); else the sign of the divisor (Python's %)
    return (np.fmod if _a(node, "fmod", 0) else np.mod)(ins[0], ins[1])


def _fold_transpose(node, ins, opset):
    perm = _a(node, "perm")
    return np.transpose(ins[0], None if perm is None else [int(p) for p in perm])


def _fold_expand(node, ins, opset):
    shape = [int(v) for v in ins[1]]
    return np.broadcast_to(ins[0], np.broadcast_shapes(ins[0].shape, tuple(shape))).copy()


def _fold_scatter_nd(node, ins, opset):
    data, indices, updates = ins
    if _a(node, "reduction", "none") != "none":
        return None
    out = np.array(data, copy=True)
    idx = indices.astype(np.int64)
    k = idx.shape[-1]
    flat = idx.reshape(-1, k)
    upd = updates.reshape((flat.shape[0],) + data.shape[k:])
    for i, where in enumerate(flat):
        out[tuple(where)] = upd[i]
    return out


def _fold_range(node, ins, opset):
    return np.arange(ins[0].item(), ins[1].item(), ins[2].item()).astype(ins[0].dtype)


#: The ops the evaluator folds: ONNX op -> fn(node, input values, opset) -> value.
FOLD = {
    "Constant": _fold_constant, "Shape": _fold_shape, "Gather": _fold_gather, "Concat": _fold_concat,
    "Cast": _fold_cast, "Unsqueeze": _fold_unsqueeze, "Squeeze": _fold_squeeze, "Slice": _fold_slice,
    "Reshape": _fold_reshape, "Identity": lambda node, ins, opset: ins[0],
    "Size": lambda node, ins, opset: np.array(ins[0].size, dtype=np.int64),
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply), "Div": _binary(_div),
    "Max": lambda node, ins, opset: np.maximum.reduce(ins), "Min": lambda node, ins, opset: np.minimum.reduce(ins),
    "Floor": lambda node, ins, opset: np.floor(ins[0]), "Ceil": lambda node, ins, opset: np.ceil(ins[0]),
    "Neg": lambda node, ins, opset: -ins[0], "ConstantOfShape": _fold_constant_of_shape, "Range": _fold_range,
    "Mod": _fold_mod, "Transpose": _fold_transpose, "Expand": _fold_expand, "ScatterND": _fold_scatter_nd,
    "Equal": _binary(np.equal), "Not": lambda node, ins, opset: np.logical_not(ins[0]),
    "Where": lambda node, ins, opset: np.where(ins[0], ins[1], ins[2]),
}


class _ShapeOnly:
    """Stands for a tensor whose shape is known but whose values are not (``Shape`` reads it)."""

    def __init__(self, shape):
        self.shape = tuple(shape)
        self.size = int(np.prod(self.shape))
        self.ndim = len(self.shape)


# -- the translation -----------------------------------------------------------------------------


class Builder:
    """Collects the graph while the ONNX nodes are translated in order."""

    def __init__(self, naxes, on_unsupported, shapes, opset):
        self.G = nx.DiGraph()
        self.naxes = naxes
        self.policy = on_unsupported
        self.shapes = shapes  # tensor name -> tuple (None for unknown dims)
        self.opset = opset
        self.missing = {}  # initializer -> its external data file, which is missing
        self.consts = {}  # tensor name -> numpy value (initializers, folded)
        self.traced = {}  # tensor name -> Traced
        self.names = set()
        self.global_ops = {}
        self.node_shapes = {}

    def name(self, base):
        return unique_name(self.names, base)

    def add(self, base, op, params, inputs, *, module=None, target=None, note=None, shape=None):
        name = self.name(base)
        attrs = dict(op=op, **params)
        if module is not None:
            attrs["module"] = module
        if target:
            attrs["target"] = target
        if note:
            attrs["note"] = note
        self.G.add_node(name, **attrs)
        for i, u in enumerate(dict.fromkeys(inputs)):
            self.G.add_edge(u, name, index=i)
        if shape is not None:
            self.node_shapes[name] = shape
        return name


def module_of(node):
    """The torch module path an exporter recorded for ``node``, or None.

    The TorchScript exporter names nodes by their scopes (``/layer1/layer1.0/conv1/Conv``: each
    scope is either a full qualname or relative to the one before it); the dynamo exporter
    (``dynamo=True``) records ``pkg.torch.onnx.name_scopes`` in ``metadata_props``: the module
    stack as full qualnames (``''`` for the root), then the FX node's own name, which is not a
    module (``['', 'layer1', 'layer1.0', 'add']`` -> ``layer1.0``).

    >>> import onnx
    >>> module_of(onnx.helper.make_node("Conv", ["x", "w"], ["y"], name="/layer1/layer1.0/conv1/Conv"))
    'layer1.0.conv1'
    >>> module_of(onnx.helper.make_node("Add", ["a", "b"], ["c"], name="/layer1/layer1.0/Add")), module_of(
    ...     onnx.helper.make_node("Relu", ["a"], ["b"], name="relu1"))
    ('layer1.0', None)
    >>> n = onnx.helper.make_node("Add", ["a", "b"], ["c"], name="node_add")
    >>> onnx.helper.set_metadata_props(n, {"pkg.torch.onnx.name_scopes": "['', 'layer1', 'layer1.0', 'add']"})
    >>> module_of(n)
    'layer1.0'
    """
    for p in node.metadata_props:
        if p.key == "pkg.torch.onnx.name_scopes":
            return _dynamo_scope(p.value)
    if not node.name.startswith("/"):
        return None
    return _qualname(node.name.split("/")[1:-1])


def _dynamo_scope(value):
    """The innermost module of a dynamo exporter's ``name_scopes`` (a Python list literal, read
    with :func:`ast.literal_eval`, which evaluates nothing), or None."""
    import ast

    try:
        parts = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(parts, (list, tuple)) or not all(isinstance(x, str) for x in parts):
        return None
    mods = [x for x in parts[:-1] if x]  # the last entry names the FX node, not a module
    return mods[-1] if mods else None


def _qualname(parts):
    """Join scope names into a qualname: a scope ``a.b.c`` is named relative to an ancestor, so
    its prefix ``a.b`` is the end of the qualname so far (``downsample.0`` under
    ``layer2.0.downsample`` is ``layer2.0.downsample.0``).

    >>> _qualname(["layer2", "layer2.0", "downsample", "downsample.0"])
    'layer2.0.downsample.0'
    """
    q = ""
    for p in parts:
        prefix, _, last = p.rpartition(".")
        if prefix and (q == prefix or q.endswith("." + prefix)):
            q = f"{q}.{last}"
        else:
            q = f"{q}.{p}" if q else p
    return q


def _toposort(graph, known):
    """The graph's nodes in a topological order (files need not be sorted), or a
    :class:`CycleError` naming a node on a cycle."""
    producer = {}
    for i, n in enumerate(graph.node):
        for o in n.output:
            if o:
                producer[o] = i
    deps = [{producer[x] for x in n.input if x in producer and x not in known} for n in graph.node]
    order, done = [], set()
    pending = list(range(len(graph.node)))
    while pending:
        rest = [i for i in pending if not deps[i] <= done]
        ready = [i for i in pending if deps[i] <= done]
        if not ready:
            n = graph.node[rest[0]]
            raise CycleError("the ONNX graph has a cycle through this node's inputs "
                             f"({', '.join(n.input)}); a network must be a DAG",
                             node=n.name or n.output[0], op=n.op_type)
        order.extend(ready)
        done.update(ready)
        pending = rest
    return [graph.node[i] for i in order]


def _translate(proto, input_size, on_unsupported, missing=None):
    """``(G, tensor name -> graph node)`` for a loaded ``ModelProto`` (``missing``: initializers
    whose external data file is missing; their dims are enough unless a value is needed)."""
    from . import onnx_ops

    if on_unsupported not in _POLICIES:
        raise ValueError(f"on_unsupported must be one of {_POLICIES}, got {on_unsupported!r}")
    if input_size is not None:
        input_size = (input_size,) if isinstance(input_size, int) else tuple(int(v) for v in input_size)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None:
        raise ExportError("the model imports no version of the default ONNX opset")
    fixed = _fix_inputs(proto, input_size)
    graph, shapes = _infer_folded(fixed, opset)
    images = _image_inputs(graph)
    first, naxes = _layout(images[0][1])
    b = Builder(naxes, on_unsupported, shapes, opset)
    b.missing = dict(missing or {})
    note = None
    if b.missing:
        files = sorted({str(loc) for loc in b.missing.values()})
        note = (f"weights not loaded: external data file {', '.join(map(repr, files))} is missing; the "
                "receptive fields need only their shapes")
    for t in graph.initializer:
        b.consts[t.name] = _initializer_value(t)
    for vi, dims in images:
        f, n = _layout(dims)
        if n != naxes or dims[f:f + n] != images[0][1][first:first + naxes]:
            raise ExportError(f"all image inputs must share one spatial size; {vi.name!r} has shape {_show(dims)}")
        name = b.name(vi.name)
        b.G.add_node(name, op="input", size=tuple(dims[f:f + n]), **({"note": note} if note else {}))
        tags = [None] * len(dims)
        for ax in range(n):
            tags[f + ax] = ax
        b.traced[vi.name] = Traced(name, tags)
    sources = set(b.consts) | {vi.name for vi in graph.input}
    known = sources | {o for n in graph.node for o in n.output}
    scope_of = {}
    for node in _toposort(graph, sources):
        missing = [x for x in node.input if x and x not in known]
        if missing:
            raise ExportError(f"input {missing[0]!r} is made by no node, initializer or graph input "
                              "(a truncated or hand-edited file?)", node=node.name or node.output[0],
                              op=node.op_type)
        tracked = [x for x in node.input if x in b.traced]
        if not tracked:
            _fold(b, node)
            continue
        ctx = onnx_ops.Ctx(b, node)
        try:
            onnx_ops.handle(ctx)
        except RFGraphError:
            raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # a malformed node
            raise ExportError(f"cannot read this node's inputs or attributes ({type(exc).__name__}: {exc})",
                              node=ctx.name, op=node.op_type) from None
        for o in node.output:
            if o in b.traced:
                scope_of[o] = module_of(node)
    outputs = [b.traced[o.name].node for o in graph.output if o.name in b.traced]
    if not outputs:
        raise ExportError("no output of the model depends on its image input")
    G = b.G
    keep = keep_what_outputs_need(G, outputs)
    tensor_node = {t: tr.node for t, tr in b.traced.items() if tr.node in keep}
    mods = _module_outputs(graph, b, scope_of, keep)
    set_metadata(G, module_outputs=mods, outputs=list(dict.fromkeys(outputs)),
                 shapes={v: s for v, s in b.node_shapes.items() if v in keep},
                 model=proto.graph.name or "onnx", global_ops=dict(b.global_ops))
    return G, tensor_node


def _shapes_of(graph):
    shapes = {}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = _dims(vi.type)
        if dims is not None:
            shapes[vi.name] = dims
    return shapes


def _infer_folded(fixed, opset):
    """Inferred graph and shapes. ONNX's data propagation does not read initializers, so a Pad
    whose pads come from ``Shape -> Gather -> Sub`` on an initializer has no output shape: fold
    such subgraphs here, stand Constant nodes in for them, and infer once more."""
    onnx = _onnx()
    from onnx import numpy_helper

    graph = _infer(fixed).graph
    shapes = _shapes_of(graph)
    sources = {t.name for t in graph.initializer} | {vi.name for vi in graph.input}
    done = set()
    for _ in range(_FOLD_ROUNDS):  # each round can fold what the previous round's shapes made known
        consts = {t.name: _initializer_value(t) for t in graph.initializer}
        folded = set()  # Constant nodes are evaluated too (their values feed the rest), never replaced
        for node in _toposort(graph, sources):
            if _fold_into(consts, shapes, opset, node) and node.op_type != "Constant":
                folded.add(node.output[0])
        if folded <= done:
            break
        done |= folded
        again = onnx.ModelProto()
        again.CopyFrom(fixed)
        nodes = []
        for node in _toposort(again.graph, sources):
            v = consts.get(node.output[0]) if node.output and node.output[0] in done else None
            if isinstance(v, np.ndarray) and len(node.output) == 1:
                node = onnx.helper.make_node("Constant", [], [node.output[0]], name=node.name,
                                             value=numpy_helper.from_array(v, node.output[0]))
            nodes.append(node)
        del again.graph.node[:]
        again.graph.node.extend(nodes)
        shapes.update({k: v for k, v in _shapes_of(_infer(again).graph).items() if None not in v or k not in shapes})
    return graph, shapes


def _initializer_value(t):
    from onnx import numpy_helper
    from onnx.external_data_helper import uses_external_data

    n = int(np.prod(t.dims)) if t.dims else 1
    if n > _FOLD_MAX or uses_external_data(t):
        return _ShapeOnly(t.dims)
    try:
        return numpy_helper.to_array(t)
    except Exception:  # an odd dtype: its values are never needed for an RF
        return _ShapeOnly(t.dims)


def _fold(b, node):
    _fold_into(b.consts, b.shapes, b.opset, node)


def _fold_into(consts, shapes, opset, node):
    """Evaluate a node whose inputs are all constants (or shapes), if it is one of :data:`FOLD`;
    True when its value is now in ``consts``."""
    fn = FOLD.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    if fn is None:
        return False
    ins = []
    for x in node.input:
        if not x:
            ins.append(None)
            continue
        v = consts.get(x)
        if v is None and node.op_type in ("Shape", "Size") and x in shapes and None not in shapes[x]:
            v = _ShapeOnly(shapes[x])  # Shape of a traced tensor: its inferred shape
        if v is None or (isinstance(v, _ShapeOnly) and node.op_type not in ("Shape", "Size")):
            return False
        ins.append(v)
    try:
        out = fn(node, ins, opset)
    except Exception:  # not foldable after all (odd dtypes, shapes): the value stays unknown
        return False
    if out is None or np.asarray(out).size > _FOLD_MAX:
        return False
    consts[node.output[0]] = np.asarray(out)
    return True


def _module_outputs(graph, b, scope_of, keep):
    """Module qualname -> the node producing its output: the last tensor, in order, made inside
    the module and read outside it (or a graph output)."""
    readers = {}
    for node in graph.node:
        m = module_of(node)
        for x in node.input:
            readers.setdefault(x, []).append(m)
    graph_outputs = {o.name for o in graph.output}
    out = {}
    for t, m in scope_of.items():
        if not m:
            continue
        node = b.traced[t].node
        if node not in keep:
            continue
        parts = m.split(".")
        for k in range(1, len(parts) + 1):
            scope = ".".join(parts[:k])
            inside = lambda r: r is not None and (r == scope or r.startswith(scope + "."))  # noqa: E731
            if t in graph_outputs or any(not inside(r) for r in readers.get(t, [None])):
                out.pop(scope, None)  # re-insert: dict order follows the last producer
                out[scope] = node
    return out


def from_onnx(model, input_size=None, *, on_unsupported: str = "raise") -> nx.DiGraph:
    """Translate an ONNX model into a graph in rfgraph's schema (the model is never run).

    Parameters
    ----------
    model : str, path, bytes or onnx.ModelProto
    input_size : int or tuple, optional
        Spatial size of the image input(s), one int for every axis or one per axis; needed when
        the file's spatial dims are dynamic, and replaces them otherwise.
    on_unsupported : {"raise", "global", "identity"}
        What an ONNX op with no rule becomes: an :class:`UnsupportedOpError` (default) naming
        the op and the node, or a global / identity node with a ``note``.

    Returns
    -------
    networkx.DiGraph
        Nodes named after the ONNX nodes (or their first output), with ``module`` (the exporter's
        torch module path, when recorded) and ``target`` (the ONNX op).

    Examples
    --------
    >>> import onnx, rfgraph
    >>> from onnx import helper as h, TensorProto as T
    >>> w = h.make_tensor("w", T.FLOAT, (4, 3, 3, 3), [0.0] * 108)
    >>> g = h.make_graph([h.make_node("Conv", ["x", "w"], ["y"], name="conv", strides=[2, 2], pads=[1, 1, 1, 1])],
    ...                  "net", [h.make_tensor_value_info("x", T.FLOAT, (1, 3, 32, 32))],
    ...                  [h.make_tensor_value_info("y", T.FLOAT, None)], [w])
    >>> rec = rfgraph.analyze(from_onnx(h.make_model(g)))["conv"]
    >>> rec.n, rec.jump, rec.rf, rec.start
    ((16, 16), (2, 2), (3, 3), (0.5, 0.5))
    """
    proto, base, missing = _load(model)
    _only_weights_missing(proto, base, missing, model)  # missing weights are fine: their dims are used
    return _translate(proto, input_size, on_unsupported, missing)[0]


def _only_weights_missing(proto, base, missing, model):
    """The :class:`ExportError` of :func:`load_model` unless every initializer whose external
    data is missing is a float tensor (a weight: integer tensors hold shapes, axes, indices)."""
    onnx = _onnx()
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    for t in _all_initializers(proto.graph):
        if t.name in missing and t.data_type not in floats:
            raise _missing_error(t.name, missing[t.name], base, model)


def _missing_error(name, loc, base, model):
    return ExportError(f"initializer {name!r} of {_what(model)} is stored in external data file {loc!r}, "
                       f"which is missing (looked in {base}); copy it next to the model")


def annotate_onnx(model, input_size=None, *, on_unsupported: str = "raise"):
    """A copy of the model with each node's receptive field in its ``doc_string`` and a summary in
    the model's ``metadata_props`` (what Netron shows); the graph itself is unchanged.

    Returns ``(annotated ModelProto, Analysis)``.
    """
    from ..engine import analyze

    onnx = _onnx()
    proto = load_model(model, external_data=True)
    G, tensor_node = _translate(proto, input_size, on_unsupported)
    analysis = analyze(G)
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    for node in out.graph.node:
        v = next((tensor_node[o] for o in node.output if o in tensor_node), None)
        if v is None:
            continue
        text = "rfgraph: " + _describe(analysis[v])
        node.doc_string = f"{node.doc_string}\n{text}" if node.doc_string and "rfgraph:" not in node.doc_string \
            else text
    summary = {"rfgraph.input_size": "x".join(map(str, analysis[analysis.inputs[0]].n))}
    for o in analysis.sinks:
        summary[f"rfgraph.output.{o}"] = _describe(analysis[o])
    for m, v in G.graph.get("module_outputs", {}).items():
        if "." not in m:
            summary[f"rfgraph.stage.{m}"] = _describe(analysis[v])
    keep = [p for p in out.metadata_props if not p.key.startswith("rfgraph.")]
    del out.metadata_props[:]
    for p in keep:
        out.metadata_props.add(key=p.key, value=p.value)
    for k, v in summary.items():
        out.metadata_props.add(key=k, value=v)
    return out, analysis


def _describe(rec):
    def ax(vals):
        return "x".join(_num(v) for v in vals)

    glob = "yes" if all(rec.is_global) else "no" if not any(rec.is_global) else ax(
        "yes" if g else "no" for g in rec.is_global)
    return f"rf {ax(rec.rf)}, jump {ax(rec.jump)}, start {ax(rec.start)}, n {ax(rec.n)}, global {glob}"


def _num(v):
    if isinstance(v, str):
        return v
    return str(int(v)) if float(v).is_integer() else repr(float(v))
