"""The topological pass: every node's per-axis :class:`~rfgraph.ops.AxisState` from its op.

The hot loop costs a few microseconds per node: each distinct parameter set is parsed once (a
:class:`Plan`, keyed by :func:`param_key`), and an op's fast path, when it has one, gives the
summary's exact result without the general path's checks; anything unusual goes through the op's
summary with every structural check. The engine knows ops only through the registry.
"""

from __future__ import annotations

import numbers
import sys
from typing import Any, Mapping

from ..errors import GraphError, RFGraphError, ShapeError
from ..ops import AxisState, Node, Out
from ..schema import INFO_ATTRS, inputs_in_order, topological_order_info

__all__ = ["Plan", "Propagation", "propagate", "param_key"]


#: (op name, :func:`param_key`, axes) -> (op, params, fast path) of a configuration parsed before,
#: in any analysis: a zoo sweep or a notebook meets the same few layer configurations again and
#: again. Used only while the registry in force still maps the name to that same op; params are
#: read-only everywhere (plans already share them between nodes). Bounded: cleared when full.
_PARSED: dict = {}
_PARSED_MAX = 4096


class Plan:
    """A parsed node configuration: its :class:`~rfgraph.ops.Node`, op and fast path, shared by
    every node with the same parameters (the node's name is the first such node's)."""

    __slots__ = ("node", "op", "fast", "least", "most")

    def __init__(self, name, attrs, naxes, registry, key=None):
        name_of_op = attrs.get("op")
        memo = (name_of_op, key, naxes) if key is not None and type(name_of_op) is str else None
        found = _PARSED.get(memo) if memo is not None else None
        if found is not None and registry.get(name_of_op) is found[0]:
            self.op, params, self.fast = found
            self.node = Node(name, name_of_op, params)
        else:
            self.node = registry.read(name, attrs, naxes)
            self.op = registry.get(self.node.op)
            self.fast = self.op.fast(self.node.params) if self.op.fast is not None else None
            if memo is not None:
                if len(_PARSED) >= _PARSED_MAX:
                    _PARSED.clear()
                _PARSED[memo] = (self.op, self.node.params, self.fast)
        # the fast path only sees a valid number of inputs (at least one): the general path
        # reports the rest
        lo, hi = self.op.arity
        self.least, self.most = max(lo, 1), sys.maxsize if hi is None else hi

    def named(self, v) -> Node:
        node = self.node
        return node if node.name is v else Node(v, node.op, node.params)


class Plans:
    """Node -> its :class:`Plan`, without a dict entry per node: a node is found again by its
    parameter key (only nodes whose parameters have no key are stored by name)."""

    def __init__(self, nodes):
        self._nodes = nodes
        self.keyed: dict = {}  # param_key -> Plan
        self.unkeyed: dict = {}  # node -> Plan
        self.ops: dict = {}  # op name -> Op, of the plans above
        self.in_order: list = []  # the plan of each node of the propagation order, in that order

    def __getitem__(self, v) -> Plan:
        plan = self.unkeyed.get(v)
        if plan is None:
            if v not in self._nodes:
                raise KeyError(v)
            plan = self.keyed[param_key(self._nodes[v])]
        return plan

    def __contains__(self, v):
        return v in self._nodes

    def op(self, v):
        """``v``'s :class:`~rfgraph.ops.Op`, without computing its parameter key."""
        plan = self.unkeyed.get(v)
        return plan.op if plan is not None else self.ops[self._nodes[v]["op"]]


class Propagation:
    """What the pass leaves: the order, inputs, input size, and per node its plan, states,
    misalignment (joins) and note."""

    def __init__(self):
        self.order: list = []
        self.inputs: list = []
        self.input_size: tuple = ()
        self.plans: Plans | None = None
        self.states: dict = {}
        self.misalignment: dict = {}
        self.notes: dict = {}


def propagate(G, registry) -> Propagation:
    """Run every node of ``G`` through its op, in topological order.

    Builders and front-ends add nodes after their inputs, so the insertion order is tried first
    without sorting. It is wrong exactly when a node's input has no state yet (a ``KeyError`` on
    the states); only then, or when an error of ours is met, is the order checked, so a cycle is
    reported first and errors come in topological order. Any other exception is a bug and
    propagates as it is.
    """
    try:
        return _propagate(G, registry, list(G._pred), True)
    except (KeyError, RFGraphError):
        order, as_inserted = topological_order_info(G)  # CycleError on a cycle
        if as_inserted:
            raise  # a genuine error, met in the right order
    return _propagate(G, registry, order, False)


def _propagate(G, registry, order, as_inserted) -> Propagation:
    result = Propagation()
    result.order = order
    nodes, pred = G._node, G._pred  # the dicts themselves: networkx's views cost a call per lookup
    source_ops = registry.sources()
    sources = [v for v, attrs in nodes.items() if attrs.get("op") in source_ops]
    if len(sources) > 1 and not as_inserted:  # list them in topological order
        rank = {v: i for i, v in enumerate(order)}
        sources.sort(key=rank.__getitem__)
    if not sources:
        raise GraphError("the graph has no input node (a node with op='input' and a size)")
    first = Plan(sources[0], nodes[sources[0]], 0, registry, param_key(nodes[sources[0]]))
    input_state = _checked(sources[0], first, first.op.summary(first.node, []), None)
    result.inputs = sources
    result.input_size = tuple(x.n for x in input_state)
    naxes = len(input_state)
    plans = result.plans = Plans(nodes)
    keyed, unkeyed = plans.keyed, plans.unkeyed
    in_order = plans.in_order
    states, mis, notes = result.states, result.misalignment, result.notes
    if as_inserted:
        # networkx keeps the attribute and predecessor dicts in the same (insertion) order: walk
        # them side by side rather than look each node up twice (on big graphs every lookup is a
        # cache miss)
        walk = zip(order, nodes.values(), pred.values())
    else:
        walk = ((v, nodes[v], pred[v]) for v in order)
    for v, attrs, p in walk:
        key = param_key(attrs)
        plan = keyed.get(key)  # None for key None: it is never stored
        if plan is None:
            plan = Plan(v, attrs, naxes, registry, key)
            plans.ops[plan.node.op] = plan.op
            if key is not None:
                keyed[key] = plan
            else:
                unkeyed[v] = plan
        in_order.append(plan)
        fast = plan.fast
        if fast is not None:
            ins = None
            if len(p) == 1:
                if plan.least == 1:
                    for u in p:  # the one input (no list comprehension: it costs a call)
                        ins = (states[u],)
            elif plan.least <= len(p) <= plan.most:
                ins = [states[u] for u in inputs_in_order(p)]
            out = None if ins is None else fast(ins)
            if out is not None:
                if type(out) is Out:
                    states[v] = out.states
                    mis[v] = out.misalignment
                else:
                    states[v] = out
                continue
        out = _general(v, plan, inputs_in_order(p), states, naxes)
        if type(out) is Out:
            if out.misalignment is not None:
                mis[v] = out.misalignment
            if out.note:
                notes[v] = out.note
            out = out.states
        if naxes > 1 and out[0].exact:
            out = _shared_axes(out)
        if plan.op.source and tuple(x.n for x in out) != result.input_size:
            raise ShapeError(
                f"input size {tuple(x.n for x in out)} differs from {result.input_size} of input "
                f"{sources[0]!r}; several inputs must share one pixel grid", node=v, op=plan.op.name)
        states[v] = out
    return result


def _general(v, plan, preds, states, naxes):
    """One node through its op's summary, with every structural check."""
    op = plan.op
    node = plan.named(v)
    if op.source and preds:
        raise GraphError(f"an {op.name} node cannot have incoming edges", node=v, op=op.name)
    if not preds and not op.source:
        raise GraphError("has no inputs, so it is not reachable from any input node; "
                         "connect it or remove it", node=v, op=op.name)
    lo, hi = op.arity
    if len(preds) < lo or (hi is not None and len(preds) > hi):
        want = f"exactly {lo}" if lo == hi else f"at least {lo}" if hi is None else f"{lo}..{hi}"
        raise GraphError(f"has {len(preds)} inputs ({', '.join(map(repr, preds))}) but {op.name} "
                         f"takes {want}", node=v, op=op.name)
    try:
        out = op.summary(node, [states[u] for u in preds])
    except RFGraphError:
        raise
    except Exception as exc:  # a user op's bug: say where it happened
        raise RFGraphError(f"the summary of op {op.name!r} failed: {type(exc).__name__}: {exc}",
                           node=v, op=op.name) from exc
    return _checked(v, plan, out, naxes)


_PLAIN = frozenset({int, float})


def _shared_axes(states):
    """Exact ``states`` (asked only when the first axis is exact) with an axis equal to a lower one (same numbers of the same types) replaced by
    that axis's object. Summaries build each axis anew; the fast paths, the certificate and the
    records compute an axis that *is* a lower one's only once (a square map: both axes alike), so
    one general-path node (a ceil-mode pool, an upsample) no longer makes every later node compute
    both axes."""
    out = None
    for i in range(1, len(states)):
        x = states[i]
        for j in range(i):
            y = states[j] if out is None else out[j]
            if y is not x and _same_state(x, y):
                if out is None:
                    out = list(states)
                out[i] = y
                break
    return states if out is None else tuple(out)


def _same_state(x, y) -> bool:
    """``x == y`` with every number of the same type (so sharing changes no printed value)."""
    return (type(x) is AxisState and type(y) is AxisState and x == y and type(x.n) is type(y.n)
            and type(x.jump) is type(y.jump) and type(x.lo) is type(y.lo) and type(x.hi) is type(y.hi)
            and (x.pattern is y.pattern or x.pattern is None and y.pattern is None))


def _checked(v, plan, out, naxes):
    """``out`` if it is what a summary must return (states, or an :class:`Out` of them), else an
    error naming the node and op: a user op's mistake must not surface as a numpy error later."""
    states = out.states if type(out) is Out else out
    problem = None
    if not isinstance(states, tuple) or not states:
        problem = f"returned {type(states).__name__}, not a tuple of AxisState"
    elif naxes is not None and len(states) != naxes:
        problem = f"returned {len(states)} axes for a network with {naxes}"
    else:
        for x in states:
            if type(x) is AxisState and type(x.n) is int and x.n >= 1 and type(x.jump) in _PLAIN \
                    and type(x.lo) in _PLAIN and type(x.hi) in _PLAIN:
                continue  # the usual case, without the abstract-class checks below
            if not isinstance(x, AxisState):
                problem = f"returned a {type(x).__name__} among its axes, not an AxisState"
            elif not (isinstance(x.n, numbers.Integral) and x.n >= 1):
                problem = f"returned n={x.n!r}; n must be a positive integer"
            elif not all(isinstance(getattr(x, k), numbers.Real) for k in ("jump", "lo", "hi")):
                problem = f"returned jump/lo/hi {x.jump!r}/{x.lo!r}/{x.hi!r}; they must be numbers"
            if problem:
                break
    if problem:
        raise RFGraphError(f"the summary of op {plan.op.name!r} {problem}", node=v, op=plan.op.name)
    return out


# -- cache keys for parsed parameters ---------------------------------------------------------------
# Large networks repeat a handful of layer configurations, so the engine parses each distinct one
# once. Two nodes may share a parse only if their op would read them to the same params, so the
# key must tell apart values that compare equal but read differently: True == 1 (a bool kernel is
# an error), 1.0 == 1 (so is a float one). Ints, strings, None and tuples of ints stand for
# themselves, bools and floats carry their type, other lists and tuples (lists read like tuples)
# become tuples tagged _SEQ; any other value (numpy scalars, dicts, ...) makes the node
# uncacheable: it is parsed on its own.

_KEY_IGNORED = INFO_ATTRS - {"op"}  # labels and edge order never change a node's parse
_SEQ = object()  # tags a frozen list/tuple, so it can never equal a frozen scalar
_INT_ONLY = frozenset({int})


class _Uncacheable(Exception):
    """A value :func:`param_key` cannot stand for (caught right there: the node gets no key)."""


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


def param_key(attrs: Mapping[str, Any]):
    """A hashable key such that nodes with equal keys read to equal params, or None.

    Info attributes (``label``, ``module``, ...) are left out, so nodes differing only in them
    share a key; None means the node must be parsed on its own (a value of another type).

    >>> param_key({"op": "conv", "kernel": 3, "label": "c1"}) == param_key({"op": "conv", "kernel": 3})
    True
    >>> param_key({"op": "conv", "kernel": True}) == param_key({"op": "conv", "kernel": 1})
    False
    >>> param_key({"op": "conv", "kernel": [1, 3]}) == param_key({"op": "conv", "kernel": (1.0, 3)})
    False
    >>> param_key({"op": "conv", "kernel": [3]}) is None, param_key({"op": "conv", "kernel": {3}}) is None
    (False, True)
    >>> param_key({"op": "add"})  # no parameters: a string, never equal to the tuples above
    'add'
    """
    if len(attrs) == 1:  # just the op (identity, add, concat, ...): the op string is the key
        op = attrs.get("op")
        if type(op) is str:
            return op
    out = []
    for k, v in attrs.items():
        if k in _KEY_IGNORED:
            continue
        t = type(v)
        if t is tuple:  # a tuple of ints (kernel=(3, 3)) stands for itself, as in _freeze
            for e in v:
                if type(e) is not int:
                    try:
                        v = _freeze(v)
                    except _Uncacheable:
                        return None
                    break
        elif t is not int and t is not str:
            try:
                v = _freeze(v)
            except _Uncacheable:
                return None
        out.append((k, v))
    return tuple(out)
