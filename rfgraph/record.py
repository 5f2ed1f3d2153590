"""The frozen per-node result: receptive-field numbers per spatial axis."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

__all__ = ["RF", "Branch", "Misalignment"]


def num(v):
    """Show integral floats as ints (``8.0 -> 8``) so tables and JSON read naturally."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


@dataclass(frozen=True)
class Branch:
    """What one input of a join contributes along each axis: its RF size, centre of feature 0,
    and the centre's offset from the join's (hull) centre."""

    node: Any
    rf: tuple
    start: tuple
    offset: tuple


@dataclass(frozen=True)
class Misalignment:
    """A join whose branches' RF centres differ: ``offsets`` per axis is the largest difference
    between two branch centres (input pixels); ``branches`` gives each branch's centre."""

    node: Any
    op: str
    offsets: tuple
    branches: tuple
    note: str = ""


@dataclass(frozen=True)
class RF:
    """Receptive field of one node's output features; every numeric field is a per-axis tuple.

    Attributes
    ----------
    n : tuple of int
        Output size (number of features) along each axis.
    jump : tuple
        Distance in input pixels between adjacent output features (effective stride).
    rf : tuple
        RF size in input pixels (hull, first to last pixel) of one feature.
    start : tuple
        Centre of feature 0's RF; input pixel ``i`` spans ``[i, i+1)``, so the input has 0.5.
        Feature ``i``'s RF is ``[start + i*jump - rf/2, start + i*jump + rf/2)``.
    padding : tuple
        Effective padding: how far feature 0's RF reaches before input pixel 0, ``rf/2 - start``.
    is_global : tuple of bool
        Every feature really reads every input pixel along this axis (after a global op such as
        global pooling or attention, or once the RF covers the input). Checked on the exact
        per-feature pixel sets, so a pixel that no path reads (a stride skipping the border) or a
        hole keeps it False. Computed on first access.
    global_from : tuple
        The node from which a global op made this axis global (None otherwise).
    exact : tuple of bool
        The affine summary ``(n, jump, rf, start)`` describes every feature exactly. False below
        upsampling, adaptive pooling with a non-dividing size, strided transposed convs,
        reflect/replicate padding and joins of different jumps or broadcast inputs: then the
        summary describes feature 0 and a typical step, and :meth:`bounds` is exact.
    contiguous : tuple
        The RF has no holes along this axis (None when not ``exact``: use :meth:`bounds`).
    gaps : tuple
        Per axis, the holes as ``(lo, hi)`` inclusive pixel offsets from the RF's first pixel.
    branches : tuple of Branch
        For joins: each input's RF and centre offset.
    misalignment : tuple or None
        For joins: per axis, the largest difference between branch centres (0 when aligned).
    rf_range : tuple or None
        For joins: per axis, the smallest and largest branch RF.
    rf_extent : tuple
        Per axis, the smallest and largest RF size over all features: equal for exact axes; for
        position-dependent ones (``exact`` False) ``rf``, ``start`` and ``padding`` are feature 0's
        own numbers and this is the range the other features span.
    misaligned_at : tuple or None
        For joins: per axis, a feature where the branch centres differ by ``misalignment``; the
        branches' ``offset`` is measured there.
    """

    name: Any
    op: str
    n: tuple
    jump: tuple
    rf: tuple
    start: tuple
    padding: tuple
    global_from: tuple
    exact: tuple
    contiguous: tuple
    gaps: tuple
    branches: tuple = ()
    misalignment: Optional[tuple] = None
    rf_range: Optional[tuple] = None
    rf_extent: tuple = ()
    misaligned_at: Optional[tuple] = None
    note: str = ""
    module: Optional[str] = None
    source: Optional[str] = None
    # The shared, cycle-free computer of per-position answers (rfgraph.engine.bounds.ExactBounds):
    # it holds the propagated states, never the analysis or other records.
    _exact: Any = field(default=None, repr=False, compare=False)

    @property
    def is_global(self) -> tuple:
        """Per axis: every feature really reads every input pixel (computed on first access)."""
        if self._exact is None:
            raise ValueError("this record was built without its exact bounds")
        return self._exact.is_global(self.name)

    @property
    def naxes(self) -> int:
        return len(self.n)

    @property
    def is_join(self) -> bool:
        return self.misalignment is not None

    @property
    def position_dependent(self) -> bool:
        """Some feature's RF differs in size from feature 0's (see :attr:`rf_extent`)."""
        return any(lo != hi for lo, hi in self.rf_extent)

    @property
    def is_misaligned(self) -> bool:
        return self.misalignment is not None and any(m != 0 for m in self.misalignment)

    def bounds(self, axis: int = 0, clip: bool = True):
        """Exact RF bounds of every output feature along ``axis``, as input pixel indices.

        Parameters
        ----------
        axis : int
            Spatial axis (0 = first spatial axis, e.g. H).
        clip : bool
            True: the hull of the input pixels each feature really depends on (what the gradient
            would show; never outside ``[0, N-1]``). False: the theoretical hull including the
            padding, which may reach outside the input.

        Returns
        -------
        lo, hi : numpy.ndarray of int64, shape (n,)
            Inclusive first and last pixel of each feature's RF. A feature that sees no input
            pixel at all (made only of padding) has ``lo = hi = -1``.

        Examples
        --------
        >>> import rfgraph
        >>> G = rfgraph.chain([("c1", "conv", 3, 1, 1)], input_size=(5,))
        >>> lo, hi = rfgraph.analyze(G)["c1"].bounds(0)
        >>> lo.tolist(), hi.tolist()
        ([0, 0, 1, 2, 3], [1, 2, 3, 4, 4])
        >>> rfgraph.analyze(G)["c1"].bounds(0, clip=False)[0].tolist()
        [-1, 0, 1, 2, 3]
        """
        if self._exact is None:
            raise ValueError("this record was built without its exact bounds")
        return self._exact.bounds(self.name, axis, clip=clip)

    def as_dict(self) -> dict:
        """Plain, JSON-ready dict of the record (no numpy, no private fields)."""
        d = {
            "name": self.name,
            "op": self.op,
            "n": list(self.n),
            "jump": list(self.jump),
            "rf": list(self.rf),
            "start": list(self.start),
            "padding": list(self.padding),
            "rf_extent": [list(e) for e in self.rf_extent],
            "is_global": list(self.is_global),
            "global_from": list(self.global_from),
            "exact": list(self.exact),
            "contiguous": list(self.contiguous),
            "gaps": [[list(g) for g in axis] for axis in self.gaps],
        }
        if self.is_join:
            d["misalignment"] = list(self.misalignment)
            d["misaligned_at"] = list(self.misaligned_at)
            d["rf_range"] = [list(r) for r in self.rf_range]
            d["branches"] = [
                {"node": b.node, "rf": list(b.rf), "start": list(b.start), "offset": list(b.offset)}
                for b in self.branches
            ]
        for key in ("note", "module", "source"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        return d


_RF_FIELDS = frozenset(f.name for f in fields(RF))


_DEFAULTS = {f.name: f.default for f in fields(RF)}  # dataclasses.MISSING where a field has no default


_TEMPLATE = dict(_DEFAULTS, name=None, op=None)


def record_fields(n, jump, rf, start, padding, rf_extent, global_from, exact, contiguous, gaps, _exact) -> dict:
    """Every field of an :class:`RF` by name, in a dict to copy and complete (see
    :func:`record_from`): the per-axis ones and the exact bounds from the arguments, the
    defaults for the rest; ``name`` and ``op`` are None until the caller sets them. Positional:
    an analysis builds one for every distinct node.

    >>> t = record_fields(*[()] * 10, None)
    >>> t["name"], t["op"], t["branches"], sorted(t) == sorted(_RF_FIELDS)
    (None, None, (), True)
    """
    out = _TEMPLATE.copy()
    out["n"], out["jump"], out["rf"], out["start"], out["padding"] = n, jump, rf, start, padding
    out["rf_extent"], out["global_from"], out["exact"], out["contiguous"], out["gaps"] = \
        rf_extent, global_from, exact, contiguous, gaps
    out["_exact"] = _exact
    return out


def record_from(values: dict) -> RF:
    """An :class:`RF` whose fields are a completed :func:`record_fields` (taken as its
    ``__dict__``, not copied), without the frozen dataclass's per-field ``object.__setattr__``
    (most of a record's cost; analyses build them by the thousand). The result is the same
    frozen value: equal, hashable and immutable like any other.

    >>> values = record_fields(*[()] * 10, None)
    >>> values.update(name="c", op="conv")
    >>> record_from(values) == RF(**{k: v for k, v in values.items() if k != "_exact"})
    True
    """
    if len(values) != len(_DEFAULTS):
        raise TypeError(f"an RF has {len(_DEFAULTS)} fields, got {len(values)}: {sorted(values.keys() - _RF_FIELDS)}")
    rec = object.__new__(RF)
    object.__setattr__(rec, "__dict__", values)
    return rec
