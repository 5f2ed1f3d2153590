"""The graph schema: canonical op names, parameter parsing and structural validation.

A network is a :class:`networkx.DiGraph` whose edges are data flow and whose nodes carry an ``op``
attribute plus that op's parameters. This module turns one node's attributes into a
:class:`Spec` (per-axis tuples, defaults filled in, everything checked) and checks the graph's
structure. It never mutates the graph.
"""

from __future__ import annotations

import heapq
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

import networkx as nx

from .errors import CycleError, GraphError, ParameterError

__all__ = [
    "OPS",
    "JOIN_OPS",
    "WINDOW_OPS",
    "Spec",
    "parse_node",
    "ordered_inputs",
    "topological_order",
    "check_digraph",
    "spec_key",
]

#: Ops whose output position ``i`` reads a window of input positions (the classic recurrence).
WINDOW_OPS = frozenset({"conv", "maxpool", "avgpool"})
#: Ops that merge several inputs; the RF is the union of the inputs' RFs.
JOIN_OPS = frozenset({"add", "mul", "concat"})
#: Every canonical op name the schema knows.
OPS = frozenset(
    {
        "input",
        "identity",
        "global",
        "convtranspose",
        "upsample",
        "adaptive_avgpool",
        "adaptive_maxpool",
        "pad",
        "slice",
    }
    | WINDOW_OPS
    | JOIN_OPS
)

UPSAMPLE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic")
PAD_MODES = ("constant", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class Spec:
    """One node's op and its parameters, normalised to one entry per spatial axis.

    ``params`` maps parameter names to tuples (one entry per axis) or scalars; see the README's
    schema section for what each op accepts.
    """

    name: Any
    op: str
    params: Mapping[str, Any]

    def __getitem__(self, key):
        return self.params[key]


def _fail(node, op, msg):
    raise ParameterError(msg, node=node, op=op)


def _int(value, node, op, key, minimum):
    # bool is an int subclass; True as a kernel size is a bug, not a 1.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(node, op, f"{key} must be an integer, got {value!r}")
    value = int(value)
    if value < minimum:
        _fail(node, op, f"{key} must be >= {minimum}, got {value}")
    return value


def per_axis(value, naxes, node, op, key, minimum=0):
    """Broadcast an int or check a per-axis tuple; return a tuple of ``naxes`` ints.

    >>> per_axis(3, 2, "c", "conv", "kernel", 1)
    (3, 3)
    >>> per_axis((1, 7), 2, "c", "conv", "kernel", 1)
    (1, 7)
    """
    if isinstance(value, (list, tuple)):
        if len(value) != naxes:
            _fail(node, op, f"{key} has {len(value)} entries but the input has {naxes} spatial axes")
        return tuple(_int(v, node, op, key, minimum) for v in value)
    return (_int(value, node, op, key, minimum),) * naxes


def parse_padding(value, naxes, node, op):
    """Padding as ``"same"`` or a tuple of ``(before, after)`` pairs, one per axis.

    Accepts an int, a per-axis tuple of ints, a tuple of pairs, ``"same"`` or ``"valid"``.

    >>> parse_padding(1, 2, "c", "conv")
    ((1, 1), (1, 1))
    >>> parse_padding(((0, 1), 2), 2, "c", "conv")
    ((0, 1), (2, 2))
    >>> parse_padding("valid", 1, "c", "conv")
    ((0, 0),)
    """
    if isinstance(value, str):
        if value == "same":
            return "same"
        if value == "valid":
            return ((0, 0),) * naxes
        _fail(node, op, f"padding must be an int, pairs, 'same' or 'valid', got {value!r}")
    if isinstance(value, (list, tuple)):
        if len(value) != naxes:
            _fail(node, op, f"padding has {len(value)} entries but the input has {naxes} spatial axes")
        out = []
        for v in value:
            if isinstance(v, (list, tuple)):
                if len(v) != 2:
                    _fail(node, op, f"padding pair must be (before, after), got {v!r}")
                out.append((_int(v[0], node, op, "padding", 0), _int(v[1], node, op, "padding", 0)))
            else:
                p = _int(v, node, op, "padding", 0)
                out.append((p, p))
        return tuple(out)
    p = _int(value, node, op, "padding", 0)
    return ((p, p),) * naxes


def _signed_pairs(value, naxes, node, op, key):
    # pad/crop amounts: negative values crop, so no lower bound.
    if isinstance(value, (list, tuple)) and len(value) == naxes and all(
        isinstance(v, (list, tuple)) for v in value
    ):
        pairs = value
    elif isinstance(value, (list, tuple)) and len(value) == naxes:
        pairs = [(v, v) for v in value]
    elif isinstance(value, (list, tuple)):
        _fail(node, op, f"{key} has {len(value)} entries but the input has {naxes} spatial axes")
    else:
        pairs = [(value, value)] * naxes
    out = []
    for pair in pairs:
        if len(pair) != 2:
            _fail(node, op, f"{key} pair must be (before, after), got {pair!r}")
        out.append(tuple(_int(v, node, op, key, -(10**12)) for v in pair))
    return tuple(out)


def _optional_axis_ints(value, naxes, node, op, key):
    """Per-axis ints that may be None (slice bounds)."""
    if value is None or isinstance(value, (int,)) and not isinstance(value, bool):
        return (value,) * naxes
    if isinstance(value, (list, tuple)) and len(value) == naxes:
        return tuple(v if v is None else _int(v, node, op, key, -(10**12)) for v in value)
    _fail(node, op, f"{key} must be an int, None or one entry per axis, got {value!r}")


def _scale(value, naxes, node, op):
    vals = value if isinstance(value, (list, tuple)) else (value,) * naxes
    if len(vals) != naxes:
        _fail(node, op, f"scale has {len(vals)} entries but the input has {naxes} spatial axes")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            _fail(node, op, f"scale must be a positive number, got {v!r}")
        out.append(float(v))
    return tuple(out)


def _axes(value, naxes, node, op):
    if value is None:
        return tuple(range(naxes))
    vals = value if isinstance(value, (list, tuple)) else (value,)
    out = []
    for v in vals:
        a = _int(v, node, op, "axes", -naxes)
        if a >= naxes:
            _fail(node, op, f"axes entry {a} out of range for {naxes} spatial axes")
        out.append(a % naxes)
    return tuple(sorted(set(out)))


_KNOWN = {
    "input": {"size"},
    "conv": {"kernel", "stride", "padding", "dilation"},
    "maxpool": {"kernel", "stride", "padding", "dilation", "ceil_mode"},
    "avgpool": {"kernel", "stride", "padding", "ceil_mode"},
    "convtranspose": {"kernel", "stride", "padding", "output_padding", "dilation"},
    "upsample": {"scale", "size", "mode", "align_corners"},
    "adaptive_avgpool": {"output_size"},
    "adaptive_maxpool": {"output_size"},
    "pad": {"padding", "mode"},
    "slice": {"start", "stop", "step"},
    "global": {"axes", "size"},
    "add": set(),
    "mul": set(),
    "concat": set(),
    "identity": set(),
}

# Attributes any node may carry for people and front-ends; the engine ignores them.
_INFO_ATTRS = frozenset({"op", "label", "module", "source", "target", "note", "index", "info"})


def parse_node(name, attrs: Mapping[str, Any], naxes: int) -> Spec:
    """Check one node's attributes and return its normalised :class:`Spec`.

    Parameters
    ----------
    name : hashable
        The node's name (used in error messages).
    attrs : mapping
        The node's attribute dict; ``attrs["op"]`` selects the op.
    naxes : int
        Number of spatial axes of the network (from the input node's ``size``).

    Raises
    ------
    ParameterError
        For a missing, unknown or out-of-range parameter.
    UnsupportedOpError
        For an op with no rule.

    Examples
    --------
    >>> parse_node("c1", {"op": "conv", "kernel": 3, "padding": 1}, 2).params["padding"]
    ((1, 1), (1, 1))
    >>> parse_node("p1", {"op": "maxpool", "kernel": 2}, 1).params["stride"]
    (2,)
    """
    from .rules import is_registered  # rules import graph; keep the cycle lazy

    op = attrs.get("op")
    if op is None:
        raise GraphError("has no 'op' attribute; every node needs one (see the README's schema)", node=name)
    if not isinstance(op, str):
        raise ParameterError(f"op must be a string, got {op!r}", node=name)
    if op not in _KNOWN:
        if is_registered(op):
            # A user rule: pass its attributes through untouched.
            return Spec(name, op, {k: v for k, v in attrs.items() if k not in _INFO_ATTRS})
        from .errors import UnsupportedOpError

        raise UnsupportedOpError(
            f"unknown op; known ops are {', '.join(sorted(_KNOWN))}. "
            "Register a rule with rfgraph.register_rule(op, rule) to add one.",
            node=name,
            op=op,
        )
    unknown = set(attrs) - _KNOWN[op] - _INFO_ATTRS
    if unknown:
        _fail(name, op, f"unknown parameter(s) {', '.join(sorted(map(str, unknown)))}; "
              f"{op} accepts {', '.join(sorted(_KNOWN[op])) or 'none'}")
    a = attrs
    p: dict[str, Any] = {}
    if op == "input":
        if "size" not in a:
            _fail(name, op, "input node needs 'size', e.g. size=(224, 224)")
        size = a["size"]
        size = tuple(size) if isinstance(size, (list, tuple)) else (size,)
        if not size:
            _fail(name, op, "size must have at least one spatial axis")
        p["size"] = tuple(_int(v, name, op, "size", 1) for v in size)
    elif op in WINDOW_OPS:
        if "kernel" not in a:
            _fail(name, op, f"{op} needs 'kernel'")
        k = per_axis(a["kernel"], naxes, name, op, "kernel", 1)
        p["kernel"] = k
        p["stride"] = per_axis(a.get("stride", 1 if op == "conv" else k), naxes, name, op, "stride", 1)
        p["dilation"] = per_axis(a.get("dilation", 1), naxes, name, op, "dilation", 1)
        p["padding"] = parse_padding(a.get("padding", 0), naxes, name, op)
        cm = a.get("ceil_mode", False)
        if not isinstance(cm, bool):
            _fail(name, op, f"ceil_mode must be True or False, got {cm!r}")
        p["ceil_mode"] = cm
        _check_window_padding(name, op, p)
    elif op == "convtranspose":
        if "kernel" not in a:
            _fail(name, op, "convtranspose needs 'kernel'")
        p["kernel"] = per_axis(a["kernel"], naxes, name, op, "kernel", 1)
        p["stride"] = per_axis(a.get("stride", 1), naxes, name, op, "stride", 1)
        p["dilation"] = per_axis(a.get("dilation", 1), naxes, name, op, "dilation", 1)
        p["padding"] = per_axis(a.get("padding", 0), naxes, name, op, "padding", 0)
        p["output_padding"] = per_axis(a.get("output_padding", 0), naxes, name, op, "output_padding", 0)
        for ax in range(naxes):
            s, d, op_ = p["stride"][ax], p["dilation"][ax], p["output_padding"][ax]
            if op_ >= max(s, d):
                _fail(name, op, f"output_padding {op_} must be smaller than stride or dilation (axis {ax})")
    elif op == "upsample":
        if ("scale" in a) == ("size" in a):
            _fail(name, op, "upsample needs exactly one of 'scale' or 'size'")
        if "scale" in a:
            p["scale"] = _scale(a["scale"], naxes, name, op)
            p["size"] = None
        else:
            p["size"] = per_axis(a["size"], naxes, name, op, "size", 1)
            p["scale"] = None
        mode = a.get("mode", "nearest")
        if mode not in UPSAMPLE_MODES:
            _fail(name, op, f"mode must be one of {', '.join(UPSAMPLE_MODES)}, got {mode!r}")
        p["mode"] = mode
        ac = a.get("align_corners", False)
        if ac is None:
            ac = False
        if not isinstance(ac, bool):
            _fail(name, op, f"align_corners must be True or False, got {ac!r}")
        if ac and mode.startswith("nearest"):
            _fail(name, op, "align_corners only applies to linear/bilinear/bicubic modes")
        p["align_corners"] = ac
    elif op in ("adaptive_avgpool", "adaptive_maxpool"):
        if "output_size" not in a:
            _fail(name, op, f"{op} needs 'output_size'")
        p["output_size"] = per_axis(a["output_size"], naxes, name, op, "output_size", 1)
    elif op == "pad":
        if "padding" not in a:
            _fail(name, op, "pad needs 'padding' as (before, after) pairs per axis")
        p["padding"] = _signed_pairs(a["padding"], naxes, name, op, "padding")
        mode = a.get("mode", "constant")
        if mode not in PAD_MODES:
            _fail(name, op, f"mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
        p["mode"] = mode
    elif op == "slice":
        p["start"] = _optional_axis_ints(a.get("start"), naxes, name, op, "start")
        p["stop"] = _optional_axis_ints(a.get("stop"), naxes, name, op, "stop")
        step = a.get("step")
        p["step"] = per_axis(1 if step is None else step, naxes, name, op, "step", 1)
    elif op == "global":
        p["axes"] = _axes(a.get("axes"), naxes, name, op)
        size = a.get("size", 1)
        # size None keeps the input size (softmax or attention over positions, group norm)
        p["size"] = None if size is None else per_axis(size, naxes, name, op, "size", 1)
    return Spec(name, op, p)


# -- cache keys for parsed specs --------------------------------------------------------------
# Large networks repeat a handful of layer configurations, so the engine parses each distinct one
# once. Two nodes may share a parse only if parse_node would give them the same params, so the key
# must tell apart values that compare equal but parse differently: True == 1 (a bool kernel is an
# error), 1.0 == 1 (so is a float one). Ints, strings, None and tuples of ints stand for
# themselves, bools and floats carry their type, other lists and tuples (lists parse like tuples)
# become tuples tagged _SEQ; any other value (numpy scalars, dicts, ...) makes the node
# uncacheable: it is parsed on its own.

_KEY_IGNORED = _INFO_ATTRS - {"op"}  # labels and edge order never change a node's parse
_SEQ = object()  # tags a frozen list/tuple, so it can never equal a frozen scalar
_INT_ONLY = frozenset({int})
_INT_STR = frozenset({int, str})


class _Uncacheable(Exception):
    pass


def _freeze(value):
    t = type(value)
    if t is tuple:
        if _INT_ONLY.issuperset(map(type, value)):  # the usual case, e.g. kernel=(1, 7)
            return value  # cannot equal a tagged form: those start with a type or _SEQ
        return (_SEQ, *[_freeze(v) for v in value])
    if t is int or t is str or value is None:
        return value
    if t is list:
        return (_SEQ, *[_freeze(v) for v in value])
    if t is bool or t is float:
        return (t, value)
    raise _Uncacheable


def spec_key(attrs: Mapping[str, Any]):
    """A hashable key such that nodes with equal keys parse to equal params, or None.

    Info attributes (``label``, ``module``, ...) are left out, so nodes differing only in them
    share a key; None means the node must be parsed on its own (a value of another type).

    >>> spec_key({"op": "conv", "kernel": 3, "label": "c1"}) == spec_key({"op": "conv", "kernel": 3})
    True
    >>> spec_key({"op": "conv", "kernel": True}) == spec_key({"op": "conv", "kernel": 1})
    False
    >>> spec_key({"op": "conv", "kernel": [1, 3]}) == spec_key({"op": "conv", "kernel": (1.0, 3)})
    False
    >>> spec_key({"op": "conv", "kernel": [3]}) is None, spec_key({"op": "conv", "kernel": {3}}) is None
    (False, True)
    >>> spec_key({"op": "add"})  # no parameters: a string, never equal to the tuples above
    'add'
    """
    if len(attrs) == 1:  # just the op (identity, add, concat, ...): the op string is the key
        op = attrs.get("op")
        if type(op) is str:
            return op
    try:
        return tuple([(k, v if type(v) in _INT_STR else _freeze(v))
                      for k, v in attrs.items() if k not in _KEY_IGNORED])
    except _Uncacheable:
        return None


def _check_window_padding(name, op, p):
    if p["padding"] == "same":
        return
    for ax, ((pl, pr), k, d) in enumerate(zip(p["padding"], p["kernel"], p["dilation"])):
        ke = d * (k - 1) + 1
        if op == "conv":
            # A window lying wholly in the padding gives a feature that sees no input at all.
            if pl >= ke or pr >= ke:
                _fail(name, op, f"padding ({pl}, {pr}) on axis {ax} reaches past the effective kernel "
                      f"{ke}: some output features would see only padding")
        elif 2 * max(pl, pr) > ke:
            # PyTorch's rule for pooling: pad should be at most half of the (effective) kernel.
            _fail(name, op, f"padding ({pl}, {pr}) on axis {ax} is more than half the kernel {ke} "
                  "(PyTorch requires pad <= kernel/2 for pooling)")


def ordered_inputs(G: nx.DiGraph, node) -> list:
    """Predecessors of ``node`` in input order.

    The order is the edges' ``index`` attribute when every in-edge has one, otherwise the order the
    edges were added (networkx keeps insertion order).
    """
    preds = list(G.pred[node].items())
    if preds and all("index" in d for _, d in preds):
        preds.sort(key=lambda item: item[1]["index"])
    return [u for u, _ in preds]


def topological_order(G: nx.DiGraph) -> list:
    """Nodes in a topological order, or :class:`CycleError` naming a node on the cycle.

    Among the nodes ready at each step the one added to the graph first comes first
    (networkx's ``lexicographical_topological_sort`` keyed by insertion order), so tables follow
    the order nodes were added.

    >>> G = nx.DiGraph()
    >>> G.add_nodes_from("abcd")
    >>> G.add_edges_from([("c", "b"), ("a", "d")])
    >>> topological_order(G)  # b waits for c, then comes before d
    ['a', 'c', 'b', 'd']
    """
    return topological_order_info(G)[0]


def check_digraph(G) -> None:
    """A :class:`GraphError` unless ``G`` is a networkx DiGraph (and not a multigraph)."""
    if not isinstance(G, nx.DiGraph):
        raise GraphError(f"expected a networkx.DiGraph, got {type(G).__name__}")
    if G.is_multigraph():
        raise GraphError("multigraphs are not supported: use a DiGraph (an identity node can split a double edge)")


def topological_order_info(G: nx.DiGraph) -> tuple[list, bool]:
    """:func:`topological_order` and whether it is simply the insertion order."""
    check_digraph(G)
    # The adjacency dicts themselves: networkx's views cost a call per lookup.
    pred, succ = G._pred, G._succ
    order = _insertion_order_if_topological(pred)
    if order is not None:
        return order, True
    order = _smallest_ready_first(pred, succ)
    if order is None:
        cycle = nx.find_cycle(G)
        path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
        raise CycleError(f"the graph has a cycle ({path}); a network must be a DAG", node=cycle[0][0],
                         op=G.nodes[cycle[0][0]].get("op")) from None
    return order, False


def _insertion_order_if_topological(pred) -> list | None:
    """The nodes in insertion order if every edge points forward in it, else None.

    Front-ends and builders add nodes after their inputs, so this O(V+E) check is the common
    case; when it holds, insertion order is exactly what the smallest-ready-first sort returns.
    """
    seen = set()
    add, covers = seen.add, seen.issuperset
    for v, p in pred.items():
        if p and not covers(p):
            return None
        add(v)
    return list(pred)


def _smallest_ready_first(pred, succ) -> list | None:
    """Kahn's algorithm taking, among ready nodes, the one inserted first (a heap of insertion
    ranks); the same order as ``nx.lexicographical_topological_sort(G, key=rank)``. None on a
    cycle."""
    nodes = list(pred)
    rank = {v: i for i, v in enumerate(nodes)}
    waiting = {v: len(p) for v, p in pred.items()}
    ready = [i for i, v in enumerate(nodes) if not waiting[v]]  # ascending: already a heap
    order = []
    while ready:
        v = nodes[heapq.heappop(ready)]
        order.append(v)
        for w in succ[v]:
            waiting[w] -= 1
            if not waiting[w]:
                heapq.heappush(ready, rank[w])
    return order if len(order) == len(nodes) else None
