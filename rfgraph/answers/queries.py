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
model's output order (:func:`levels`). A level is named by the layer that computes it -- the
outermost module whose output it is (``model.15`` for YOLOv8's P3, ``fpn.layer_blocks.0`` for a
torchvision FPN's), whatever the graph node is called -- and labelled ``P<k>`` when its stride is
``2**k`` (the FPN convention: P3 has stride 8).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Optional

from .. import schema
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
    """One output of a detector's backbone: size, stride, RF range, global source per axis.

    Attributes
    ----------
    node : node
        The graph node of the level's output.
    module : str or None
        The layer computing it: the outermost module whose output it is (``model.15``), else the
        node's own module.
    label : str or None
        ``"P<k>"`` when the stride is ``2**k`` along every axis (P3: stride 8), else None.
    n, stride, rf, rf_extent, global_from : tuple
        Per axis: features, stride in input pixels (the grid's, input size / n, along an axis a
        global op made global), RF of the summary, smallest and largest RF over the features,
        the node a global op made the axis global from (None).
    """

    node: Any
    module: Optional[str]
    n: tuple
    stride: tuple
    rf: tuple
    rf_extent: tuple
    global_from: tuple
    label: Optional[str] = None

    def as_dict(self) -> dict:
        return {"node": str(self.node), "module": self.module, "label": self.label, "n": list(self.n),
                "stride": [_num(s) for s in self.stride], "rf": list(self.rf),
                "rf_extent": [list(e) for e in self.rf_extent],
                "global_from": [None if g is None else str(g) for g in self.global_from]}


def _num(v):
    f = float(v)
    return int(f) if f.is_integer() else f


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

    Parameters
    ----------
    target : Analysis, networkx.DiGraph or torch.nn.Module
    input_shape : tuple, optional
        ``(C, H, W)``: the shape a torch module is traced at.
    outputs : list, optional
        Nodes to report (default: the model's outputs, in order).

    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 2, 1), ("c2", "conv", 3, 2, 1)], (64, 64))
    >>> [(l.node, l.label, l.stride, l.rf) for l in levels(G, outputs=["c1", "c2"])]
    [('c1', 'P1', (2, 2), (3, 3)), ('c2', 'P2', (4, 4), (7, 7))]
    """
    analysis = as_analysis(target, input_shape)
    outs = list(outputs) if outputs is not None else output_nodes(analysis)
    layer = _layers(analysis)
    out = []
    for v in outs:
        rec = analysis[v]
        stride = tuple(_grid_stride(rec.jump[ax], rec.global_from[ax], analysis.input_size[ax], rec.n[ax])
                       for ax in range(rec.naxes))
        out.append(Level(v, layer.get(v, rec.module), rec.n, stride, rec.rf, rec.rf_extent, rec.global_from,
                         _label(stride)))
    return tuple(out)


def _grid_stride(jump, global_from, size, n):
    """The level's stride: its jump, or (where a global op set the jump to 0) the grid's, size / n."""
    if jump or global_from is None or not n:
        return jump
    s = Fraction(size, n)
    return int(s) if s.denominator == 1 else float(s)


def _label(stride):
    """``"P<k>"`` for a stride of ``2**k`` along every axis (k >= 1), else None.

    >>> _label((8, 8)), _label((8, 16)), _label((12, 12)), _label((1, 1))
    ('P3', None, None, None)
    """
    s = stride[0] if stride and len(set(stride)) == 1 else None
    if not isinstance(s, (int, float)) or s < 2 or float(s) != int(s) or int(s) & (int(s) - 1):
        return None
    return f"P{int(math.log2(int(s)))}"


def _layers(analysis) -> dict:
    """``{node: the outermost module whose output it is}``. A module is a key of the front-end's
    ``module_outputs`` that some node's ``module`` lies in; the other keys (``0``, ``fpn.p6``) name
    positions in a module's list or dict output, not modules. Fewest dots wins (``model.15`` over
    ``model.15.cv2``); then the shorter name, then the first in sort order."""
    modules = set()
    for _, m in analysis.graph.nodes(data="module"):
        if m:
            parts = str(m).split(".")
            modules.update(".".join(parts[:k]) for k in range(1, len(parts) + 1))
    best = {}
    for name, v in schema.module_outputs(analysis.graph).items():
        if name and name in modules:
            key = (name.count("."), len(name), name)
            if v not in best or key < best[v][0]:
                best[v] = (key, name)
    return {v: name for v, (_, name) in best.items()}


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
    """:func:`levels` as an aligned table: the level's label, its layer, size, stride, RF range,
    global source.

    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 2, 1), ("c2", "conv", 3, 2, 1)], (64, 64))
    >>> print(levels_text(levels(G, outputs=["c1", "c2"])), end="")
    level  layer  n   stride  rf  global
    P1     c1     32  2       3   no
    P2     c2     16  4       7   no
    """
    from ..render._format import per_axis

    rows = [("level", "layer", "n", "stride", "rf", "global")]
    for lv in ls:
        rf = per_axis(tuple(f"{a}..{b}" if a != b else str(a) for a, b in lv.rf_extent))
        glob = ",".join(sorted({str(g) for g in lv.global_from if g is not None})) or "no"
        rows.append((lv.label or "-", str(lv.module or lv.node), per_axis(lv.n), per_axis(lv.stride), rf, glob))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows) + "\n"
