"""Requirement queries: which node first sees a given extent; a detector's levels.

**Cover.** "Which layer sees 100 pixels?" A node *covers* an extent along an axis when every one
of its features' RF is at least that wide (the smallest RF over its features, ``rf_extent``), or
when it is global there. Along any path from the input to an output the RF only grows, so the
first node of each path that covers the extent is a node that covers it while one of its inputs
does not: :func:`cover` lists those nodes per output (the **frontier**, one entry per group of
paths, with the input it is reached from), and the first of them in topological order. No path
enumeration: a ResNet's 2^blocks paths cost one pass over the nodes.

**Levels.** A detector's feature pyramid: per output (FPN level, head input) its size, stride
(jump), RF (the range over its features when they differ) and whether it is global, in the
model's output order (:func:`levels`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from ._base import AnswerError, as_analysis, feeding, output_nodes

__all__ = ["Reach", "Cover", "Level", "cover", "levels", "parse_extent", "cover_text", "levels_text"]


@dataclass(frozen=True)
class Reach:
    """A node that covers the extent while its input ``via`` does not (None for an input node)."""

    node: Any
    rf: tuple
    jump: tuple
    via: Any


@dataclass(frozen=True)
class Cover:
    """Result of :func:`cover`.

    Attributes
    ----------
    extent : tuple
        The extent asked, per axis (input pixels or samples).
    frontier : dict
        ``{output: tuple of Reach}``: the first covering node of every path to that output, in
        topological order; empty when the output itself does not cover the extent.
    first : dict
        ``{output: node or None}``: the earliest of them (None: no node on any path does).
    """

    extent: tuple
    frontier: dict
    first: dict

    def as_dict(self) -> dict:
        return {"extent": list(self.extent),
                "first": {str(o): None if v is None else str(v) for o, v in self.first.items()},
                "frontier": {str(o): [{"node": str(r.node), "rf": list(r.rf), "jump": list(r.jump),
                                       "via": None if r.via is None else str(r.via)} for r in rs]
                             for o, rs in self.frontier.items()}}


@dataclass(frozen=True)
class Level:
    """One output of a detector's backbone: size, stride, RF range, global source per axis."""

    node: Any
    module: Optional[str]
    n: tuple
    stride: tuple
    rf: tuple
    rf_extent: tuple
    global_from: tuple

    def as_dict(self) -> dict:
        return {"node": str(self.node), "module": self.module, "n": list(self.n), "stride": list(self.stride),
                "rf": list(self.rf), "rf_extent": [list(e) for e in self.rf_extent],
                "global_from": [None if g is None else str(g) for g in self.global_from]}


def parse_extent(text, naxes: int, sample_rate=None) -> tuple:
    """An extent as typed: ``100``, ``100x50`` / ``100,50`` (per axis), ``1s`` / ``25ms`` (with
    a sample rate, for 1-D networks).

    >>> parse_extent("100", 2), parse_extent("7x1", 2), parse_extent("25ms", 1, 16000)
    ((100, 100), (7, 1), (400,))
    """
    text = str(text).strip()
    m = re.fullmatch(r"([0-9.]+)\s*(ms|s)", text)
    if m:
        if sample_rate is None:
            raise AnswerError(f"an extent in seconds ({text!r}) needs a sample rate (--sample-rate HZ)")
        secs = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        return (int(-(-round(secs * sample_rate, 9) // 1)),) * naxes
    try:
        vals = tuple(int(x) for x in text.replace("x", ",").split(","))
    except ValueError:
        raise AnswerError(f"an extent is N, NxM or a time such as 1s or 25ms; got {text!r}") from None
    if len(vals) == 1:
        vals = vals * naxes
    if len(vals) != naxes or min(vals) < 1:
        raise AnswerError(f"extent {text!r} needs one positive size or {naxes} (one per axis)")
    return vals


def cover(target, extent, *, input_shape=None, outputs=None) -> Cover:
    """The first node on every path to each output whose RF covers ``extent``.

    Parameters
    ----------
    target : Analysis, networkx.DiGraph or torch.nn.Module
    extent : int or tuple
        Input pixels (samples) per axis, or one for every axis.

    Examples
    --------
    A residual block: the conv path reaches 5 pixels at ``c2``; the 1x1 shortcut never does, so
    the join ``add`` is the first node of that path to cover it.

    >>> import networkx as nx, rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 1, 1), ("c2", "conv", 3, 1, 1)], (32,))
    >>> G.add_node("s", op="conv", kernel=1); G.add_node("add", op="add")
    >>> G.add_edges_from([("input", "s"), ("s", "add"), ("c2", "add")])
    >>> c = cover(G, 5)
    >>> c.first, [(r.node, r.via) for r in c.frontier["add"]]
    ({'add': 'c2'}, [('c2', 'c1'), ('add', 's')])
    """
    analysis = as_analysis(target, input_shape)
    naxes = len(analysis.input_size)
    want = tuple(extent) if isinstance(extent, (list, tuple)) else (extent,) * naxes
    if len(want) != naxes:
        raise AnswerError(f"extent has {len(want)} entries but the input has {naxes} spatial axes")
    outs = list(outputs) if outputs is not None else output_nodes(analysis)
    pred = analysis.graph._pred

    def covers(v):
        rec = analysis[v]
        return all(g is not None or min(e) >= w for e, g, w in zip(rec.rf_extent, rec.global_from, want))

    frontier, first = {}, {}
    for o in outs:
        found = []
        for v in feeding(analysis, [o]):
            if not covers(v):
                continue
            short = [u for u in pred[v] if not covers(u)]
            if short or not pred[v]:
                rec = analysis[v]
                found.append(Reach(v, rec.rf, rec.jump, short[0] if short else None))
        frontier[o] = tuple(found)
        first[o] = found[0].node if found else None
    return Cover(extent=want, frontier=frontier, first=first)


def levels(target, *, input_shape=None, outputs=None) -> tuple:
    """Per output of ``target`` (a detector's backbone + FPN, say), its :class:`Level`.

    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 2, 1), ("c2", "conv", 3, 2, 1)], (64, 64))
    >>> [(l.node, l.stride, l.rf) for l in levels(G, outputs=["c1", "c2"])]
    [('c1', (2, 2), (3, 3)), ('c2', (4, 4), (7, 7))]
    """
    analysis = as_analysis(target, input_shape)
    outs = list(outputs) if outputs is not None else output_nodes(analysis)
    out = []
    for v in outs:
        rec = analysis[v]
        out.append(Level(v, rec.module, rec.n, rec.jump, rec.rf, rec.rf_extent, rec.global_from))
    return tuple(out)


def cover_text(c: Cover) -> str:
    """:func:`cover` as lines: the first node per output, then every path's first node."""
    from ..render._format import per_axis

    lines = [f"first node whose RF covers {per_axis(c.extent)}:"]
    for o, rs in c.frontier.items():
        if not rs:
            lines.append(f"  {o}: none (no path to it covers {per_axis(c.extent)})")
            continue
        lines.append(f"  {o}: {c.first[o]} (first of {len(rs)} path group{'s' if len(rs) > 1 else ''})")
        for r in rs:
            via = "" if r.via is None else f" (from {r.via})"
            lines.append(f"    {r.node}: rf {per_axis(r.rf)}, jump {per_axis(r.jump)}{via}")
    return "\n".join(lines) + "\n"


def levels_text(ls) -> str:
    """:func:`levels` as an aligned table."""
    from ..render._format import per_axis

    rows = [("level", "n", "stride", "rf", "global")]
    for lv in ls:
        rf = per_axis(tuple(f"{a}..{b}" if a != b else str(a) for a, b in lv.rf_extent))
        glob = ",".join(sorted({str(g) for g in lv.global_from if g is not None})) or "no"
        rows.append((str(lv.node), per_axis(lv.n), per_axis(lv.stride), rf, glob))
    widths = [max(len(r[k]) for r in rows) for k in range(5)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows) + "\n"
