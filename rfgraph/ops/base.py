"""The op contract: per-axis state, parsed node, the :class:`Op` object and the registry.

An op is one :class:`Op`: how its parameters are read and checked, its summary rule, its exact
index map (or its own per-position hooks), its fast path, how many inputs it takes and the short
label renderers show. :class:`Registry` maps canonical op names to ops; the engine dispatches
only through it.

Vocabulary (the same words as :class:`rfgraph.record.RF`)
---------------------------------------------------------
Along one spatial axis a node's :class:`AxisState` holds ``n`` features, ``jump`` between adjacent
features, and the continuous hull ``[lo, hi)`` of feature 0's RF in input coordinates (input pixel
``i`` spans ``[i, i+1)``), so ``rf = hi - lo`` and ``start = (lo + hi) / 2``; feature ``i`` spans
``[lo + i*jump, hi + i*jump)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

from ..errors import GraphError, ParameterError, ShapeError, UnsupportedOpError
from ..schema import INFO_ATTRS

__all__ = ["AxisState", "Node", "Out", "Op", "Registry", "Params", "register_op", "registered",
           "active_registry", "get_op", "registered_ops", "too_small"]


class AxisState:
    """Summary of one node along one spatial axis.

    ``n`` features, ``jump``, hull ``[lo, hi)`` of feature 0's RF, ``pattern`` (None when the RF is
    contiguous, else the disjoint intervals of feature 0), ``global_from`` (None, or the node from
    which every feature depends on the whole input), ``exact`` (the affine summary describes every
    feature exactly) and ``size`` (the input's size along this axis).

    >>> AxisState(8, 1, 0, 1, size=8).hi
    1
    """

    __slots__ = ("n", "jump", "lo", "hi", "pattern", "global_from", "exact", "size")

    def __init__(self, n, jump, lo, hi, pattern=None, global_from=None, exact=True, size=0):
        self.n = n
        self.jump = jump
        self.lo = lo
        self.hi = hi
        self.pattern = pattern
        self.global_from = global_from
        self.exact = exact
        self.size = size

    def replace(self, **changes) -> "AxisState":
        """A copy with some fields changed.

        >>> AxisState(8, 1, 0, 1).replace(lo=-1).lo
        -1
        """
        values = {k: getattr(self, k) for k in self.__slots__}
        values.update(changes)
        return AxisState(**values)

    def __eq__(self, other):
        return self is other or isinstance(other, AxisState) and (
            self.n == other.n and self.jump == other.jump and self.lo == other.lo and self.hi == other.hi
            and self.pattern == other.pattern and self.global_from == other.global_from
            and self.exact == other.exact and self.size == other.size)

    __hash__ = None

    def __repr__(self):
        return (f"AxisState(n={self.n}, jump={self.jump}, lo={self.lo}, hi={self.hi}, "
                f"pattern={self.pattern}, global_from={self.global_from!r}, exact={self.exact})")


@dataclass(frozen=True)
class Node:
    """One graph node after its op read its parameters: ``params`` holds one entry per axis
    (tuples) or scalars, defaults filled in."""

    name: Any
    op: str
    params: Mapping[str, Any]

    def __getitem__(self, key):
        return self.params[key]


class Out:
    """What a summary may return besides plain states: per-axis misalignment (joins) and a note.

    A plain slotted class, not a dataclass: join fast paths build one per node.
    """

    __slots__ = ("states", "misalignment", "note")

    def __init__(self, states, misalignment=None, note=""):
        self.states = states
        self.misalignment = misalignment
        self.note = note


def too_small(node: Node, ax: int, n_in, what: str):
    """Raise the :class:`ShapeError` for an output size below 1."""
    raise ShapeError(f"output size along axis {ax} would be < 1 (input size {n_in}, {what}); "
                     "the input is too small for this op", node=node.name, op=node.op)


class Params:
    """Reads one node's raw attributes for an op's ``parse`` function, with errors that name the
    node, the op and the parameter.

    >>> r = Params("c1", "conv", {"kernel": (1, 7)}, 2)
    >>> r.per_axis("kernel", minimum=1), r.per_axis("stride", 1, minimum=1)
    ((1, 7), (1, 1))
    """

    def __init__(self, name, op, attrs: Mapping[str, Any], naxes: int):
        self.name, self.op, self.attrs, self.naxes = name, op, attrs, naxes

    def fail(self, msg):
        raise ParameterError(msg, node=self.name, op=self.op)

    def __contains__(self, key):
        return key in self.attrs

    def get(self, key, default=None):
        return self.attrs.get(key, default)

    def require(self, key, hint=""):
        if key not in self.attrs:
            self.fail(f"{self.op} needs {key!r}{hint}")
        return self.attrs[key]

    def int(self, value, key, minimum=None):
        # bool is an int subclass; True as a kernel size is a bug, not a 1.
        if type(value) is not int:  # the usual case skips the abstract-class checks
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                self.fail(f"{key} must be an integer, got {value!r}")
            value = int(value)
        if minimum is not None and value < minimum:
            self.fail(f"{key} must be >= {minimum}, got {value}")
        return value

    def bool(self, key, default=False):
        value = self.attrs.get(key, default)
        if value is None:
            value = default
        if not isinstance(value, bool):
            self.fail(f"{key} must be True or False, got {value!r}")
        return value

    def choice(self, key, choices, default):
        value = self.attrs.get(key, default)
        if value not in choices:
            self.fail(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        return value

    def _entries(self, value, key):
        if len(value) != self.naxes:
            self.fail(f"{key} has {len(value)} entries but the input has {self.naxes} spatial axes")
        return value

    def per_axis(self, key, default=None, *, minimum=0, value=None):
        """An int broadcast to every axis, or a per-axis tuple of ints."""
        if value is None:
            value = self.require(key) if default is None else self.attrs.get(key, default)
        if type(value) is tuple and len(value) == self.naxes:  # the usual case: plain ints, checked at once
            lowest = minimum if minimum is not None else -sys.maxsize
            if all([type(v) is int and v >= lowest for v in value]):
                return value
        if isinstance(value, (list, tuple)):
            return tuple(self.int(v, key, minimum) for v in self._entries(value, key))
        return (self.int(value, key, minimum),) * self.naxes

    def pairs(self, key, default=0, *, signed=False, words=False):
        """``(before, after)`` per axis from an int, per-axis ints or pairs (``"valid"``, and
        ``"same"`` kept as the word, when ``words``); negative values only when ``signed``."""
        value = self.attrs.get(key, default)
        minimum = None if signed else 0
        if isinstance(value, str):
            if words and value == "same":
                return "same"
            if words and value == "valid":
                return ((0, 0),) * self.naxes
            self.fail(f"{key} must be an int, pairs, 'same' or 'valid', got {value!r}")
        if not isinstance(value, (list, tuple)):
            p = self.int(value, key, minimum)
            return ((p, p),) * self.naxes
        out = []
        for v in self._entries(value, key):
            if isinstance(v, (list, tuple)):
                if len(v) != 2:
                    self.fail(f"{key} pair must be (before, after), got {v!r}")
                out.append((self.int(v[0], key, minimum), self.int(v[1], key, minimum)))
            else:
                p = self.int(v, key, minimum)
                out.append((p, p))
        return tuple(out)

    def optional_ints(self, key):
        """Per-axis ints that may be None (slice bounds)."""
        value = self.attrs.get(key)
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return (value,) * self.naxes
        if isinstance(value, (list, tuple)) and len(value) == self.naxes:
            return tuple(v if v is None else self.int(v, key) for v in value)
        self.fail(f"{key} must be an int, None or one entry per axis, got {value!r}")

    def positive_numbers(self, key):
        value = self.attrs[key]
        vals = self._entries(value, key) if isinstance(value, (list, tuple)) else (value,) * self.naxes
        out = []
        for v in vals:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                self.fail(f"{key} must be a positive number, got {v!r}")
            out.append(float(v))
        return tuple(out)

    def axes(self, key):
        """Spatial axis indices (negative counts from the end), sorted; None means all."""
        value = self.attrs.get(key)
        if value is None:
            return tuple(range(self.naxes))
        out = []
        for v in (value if isinstance(value, (list, tuple)) else (value,)):
            a = self.int(v, key, -self.naxes)
            if a >= self.naxes:
                self.fail(f"{key} entry {a} out of range for {self.naxes} spatial axes")
            out.append(a % self.naxes)
        return tuple(sorted(set(out)))


def _short(value) -> str:
    """A raw parameter value as label text: ``3``, ``1x7``, ``(0,1)`` for an uneven pair."""
    if isinstance(value, (list, tuple)):
        parts = []
        for v in value:
            if isinstance(v, (list, tuple)):
                parts.append(str(v[0]) if len(v) == 2 and v[0] == v[1] else "(" + ",".join(map(str, v)) + ")")
            else:
                parts.append(_short(v))
        return parts[0] if all(p == parts[0] for p in parts) else "x".join(parts)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


def _flat(value):
    out = []
    for v in (value if isinstance(value, (list, tuple)) else (value,)):
        out.extend(v if isinstance(v, (list, tuple)) else (v,))
    return out


@dataclass(frozen=True)
class Op:
    """Everything rfgraph knows about one canonical op.

    Parameters
    ----------
    name : str
        The op name nodes use (``G.nodes[v]["op"]``).
    summary : callable
        ``summary(node, inputs) -> tuple of AxisState`` (or :class:`Out`): from the parsed
        :class:`Node` and its inputs' states (one tuple of :class:`AxisState` per input), the
        node's states.
    parse : callable, optional
        ``parse(params: Params) -> dict`` reads and checks the node's attributes. Without it
        the attributes (minus :data:`rfgraph.schema.INFO_ATTRS`) pass through untouched.
    accepts : frozenset, optional
        The parameter names the op takes; any other attribute is an error. None: anything.
    taps : callable, optional
        ``taps(node, axis, n_in, n_out) -> [(index, mask), ...]``: the exact index map along one
        axis (see :mod:`rfgraph.arith`), from which exact per-position bounds follow.
    runs : callable, optional
        ``runs(node, axis, n_in, n_out) -> (offset, stride, length) or None``: the same index
        map in closed form, when output feature ``o`` reads input features
        ``offset + o*stride + t`` for ``t < length`` with no mask (a sliding window of
        consecutive features; indices outside the input are padding). The engine's no-holes
        certificate reads it instead of building tap arrays; None where the map has another
        shape (the taps decide).
    bounds, coverage : callable, optional
        Per-position hooks for ops whose map is not a tap list (joins, global, input):
        ``bounds(node, axis, state, inputs)`` with each input's ``(lo, hi, lo_clipped,
        hi_clipped)`` arrays, and ``coverage(node, axis, state, inputs)`` with each input's
        :class:`rfgraph.coverage.Coverage` (the pixels each feature really reads). Without taps
        or hooks, bounds follow the affine summary.
    axis_key : callable, optional
        ``axis_key(node, axis) -> hashable``, for ops with ``bounds``/``coverage`` hooks:
        everything the hooks read of the node's parameters along ``axis`` (``()`` when they
        read the axis only through its state and inputs). Two axes with equal keys, equal states
        and inputs that agree on both get the same answers, so the engine computes them once (a
        square map's second axis). Without it such an op's axes are never shared; ops with only
        taps need none (their index maps are compared).
    fast : callable, optional
        ``fast(params) -> plan or None``; ``plan(inputs)`` returns the same states as ``summary``
        for usual inputs, or None to let ``summary`` handle (and report) the rest.
    arity : (int, int or None)
        Allowed number of inputs.
    source : bool
        An input of the network: no inputs, its state comes from its own parameters.
    join : bool
        The node merges branches (its records list them).
    pointwise : bool
        Each feature is its input's feature (activations, normalisation): diagrams fold it into
        the op that feeds it.
    label_params : tuple of (name, short)
        Parameters the default :meth:`label` shows, in order; ``defaults`` are left out.
    defaults : mapping
        Default value of each parameter (for labels: a parameter at its default adds clutter).
    label : callable, optional
        ``label(attrs, naxes) -> str`` replaces the default label.
    doc : str
        One line for humans (the README's op table, ``--help``).
    """

    name: str
    summary: Callable
    parse: Optional[Callable] = None
    accepts: Optional[frozenset] = None
    taps: Optional[Callable] = None
    runs: Optional[Callable] = None
    bounds: Optional[Callable] = None
    coverage: Optional[Callable] = None
    axis_key: Optional[Callable] = None
    fast: Optional[Callable] = None
    arity: tuple = (1, 1)
    source: bool = False
    join: bool = False
    pointwise: bool = False
    label_params: tuple = ()
    defaults: Mapping = field(default_factory=dict)
    label: Optional[Callable] = None
    doc: str = field(default="", compare=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"an op's name must be a non-empty string, got {self.name!r}")
        if not callable(self.summary):
            raise TypeError(f"op {self.name!r}: summary must be callable")
        object.__setattr__(self, "arity", tuple(self.arity))
        if self.accepts is not None:
            object.__setattr__(self, "accepts", frozenset(self.accepts))
        # what read() lets through (not a field: the same for equal ops)
        object.__setattr__(self, "_allowed", None if self.accepts is None else self.accepts | INFO_ATTRS)

    def read(self, name, attrs: Mapping[str, Any], naxes: int) -> Node:
        """Check one node's attributes and return its :class:`Node` (a :class:`ParameterError`
        naming the node, op and parameter on bad input)."""
        if self._allowed is not None:
            unknown = attrs.keys() - self._allowed
            if unknown:
                raise ParameterError(
                    f"unknown parameter(s) {', '.join(sorted(map(str, unknown)))}; "
                    f"{self.name} accepts {', '.join(sorted(self.accepts)) or 'none'}",
                    node=name, op=self.name)
        if self.parse is None:
            return Node(name, self.name, {k: v for k, v in attrs.items() if k not in INFO_ATTRS})
        return Node(name, self.name, self.parse(Params(name, self.name, attrs, naxes)))

    def text(self, attrs: Mapping[str, Any], naxes: int) -> str:
        """The short label renderers show, e.g. ``conv k3 s2 p1`` (raw attributes, defaults left out).

        >>> get_op("conv").text({"op": "conv", "kernel": 3, "stride": 2, "padding": 1}, 2)
        'conv k3 s2 p1'
        """
        if self.label is not None:
            return self.label(attrs, naxes)
        bits = [self.name]
        for key, short in self.label_params:
            value = attrs.get(key)
            if value is None or (key in self.defaults and all(v == self.defaults[key] for v in _flat(value))):
                continue
            if isinstance(value, bool):
                if value:
                    bits.append(short)
            elif isinstance(value, str):
                bits.append(f"{short} {value}" if short else value)
            else:
                bits.append(f"{short}{_short(value)}" if len(short) == 1 else f"{short} {_short(value)}")
        return " ".join(bits)


class Registry:
    """Canonical op name -> :class:`Op`. Registering a name twice is an error unless replacing
    is asked for; :meth:`copy` gives an independent snapshot (what an analysis uses)."""

    def __init__(self, ops=()):
        self._ops: dict[str, Op] = {}
        self._sources = None
        for op in ops:
            self.add(op)

    def add(self, op: Op, *, replace: bool = False) -> Op:
        if not isinstance(op, Op):
            raise TypeError(f"expected an rfgraph Op, got {type(op).__name__}")
        if op.name in self._ops and not replace:
            raise ValueError(f"op {op.name!r} is already registered; pass replace=True to override it")
        self._ops[op.name] = op
        self._sources = None
        return op

    def sources(self) -> tuple:
        """Names of the source ops (a network's inputs), in registration order (cached)."""
        if self._sources is None:
            self._sources = tuple([name for name, op in self._ops.items() if op.source])
        return self._sources

    def copy(self) -> "Registry":
        new = Registry()
        new._ops = dict(self._ops)
        new._sources = self.sources()  # computed once here, not again in every copy (an analysis makes one)
        return new

    def __contains__(self, name):
        return name in self._ops

    def __iter__(self):
        return iter(sorted(self._ops))

    def get(self, name) -> Op:
        """The op, or :class:`UnsupportedOpError` saying how to add one."""
        op = self._ops.get(name)
        if op is None:
            raise UnsupportedOpError(
                f"unknown op; known ops are {', '.join(sorted(self._ops))}. "
                "Add one with rfgraph.register_op(name, summary, ...) (see the README).", op=name)
        return op

    def read(self, name, attrs: Mapping[str, Any], naxes: int) -> Node:
        """Parse one node: find its op and let the op read its attributes."""
        op = attrs.get("op")
        if op is None:
            raise GraphError("has no 'op' attribute; every node needs one (see the README's schema)", node=name)
        if not isinstance(op, str):
            raise ParameterError(f"op must be a string, got {op!r}", node=name)
        try:
            found = self.get(op)
        except UnsupportedOpError as exc:
            raise UnsupportedOpError(exc.detail, node=name, op=op) from None
        return found.read(name, attrs, naxes)


#: The registry of built-in and user-registered ops (filled by :mod:`rfgraph.ops`).
DEFAULT = Registry()
_ACTIVE: contextvars.ContextVar[Registry] = contextvars.ContextVar("rfgraph_ops", default=DEFAULT)


def active_registry() -> Registry:
    """The registry in force: the default one, or that of an enclosing :func:`registered`."""
    return _ACTIVE.get()


def get_op(name: str) -> Op:
    """The op registered under ``name`` (:class:`UnsupportedOpError` if none)."""
    return active_registry().get(name)


def registered_ops() -> list[str]:
    """Names of every op in force, sorted."""
    return list(active_registry())


def register_op(name: str, summary: Callable, *, replace: bool = False, **options) -> Op:
    """Add an op to the registry in force: the one public call to teach rfgraph a new op.

    ``options`` are :class:`Op`'s (``parse``, ``accepts``, ``taps``, ``arity``, ``label_params``,
    ...). Registering a name twice is an error unless ``replace=True``.

    Examples
    --------
    A ``shift`` op that moves every feature ``by`` pixels to the right, registered for one block
    only (:func:`registered` keeps the global registry as it was):

    >>> import rfgraph
    >>> def shift(node, inputs):
    ...     by = node["by"]
    ...     return tuple(x.replace(lo=x.lo - by * x.jump, hi=x.hi - by * x.jump) for x in inputs[0])
    >>> with rfgraph.ops.registered():
    ...     _ = rfgraph.register_op("shift", shift, accepts={"by"}, label_params=(("by", "by"),))
    ...     G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))
    ...     G.add_node("s", op="shift", by=1); G.add_edge("c", "s")
    ...     rfgraph.analyze(G)["s"].start
    (-0.5,)
    >>> "shift" in rfgraph.registered_ops()
    False
    """
    return active_registry().add(Op(name, summary, **options), replace=replace)


@contextlib.contextmanager
def registered(*ops: Op, replace: bool = False):
    """A scope with its own copy of the registry, plus ``ops``; nothing leaks out of it.

    ``register_op`` calls inside the scope go to the copy. ``replace=True`` lets ``ops`` replace
    built-in ones (e.g. a test that swaps a rule).
    """
    scoped = active_registry().copy()
    for op in ops:
        scoped.add(op, replace=replace)
    token = _ACTIVE.set(scoped)
    try:
        yield scoped
    finally:
        _ACTIVE.reset(token)
