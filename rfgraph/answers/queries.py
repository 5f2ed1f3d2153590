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
``2**k`` (the FPN convention: P3 has stride 8). With ``erf=True`` each level also gets the
effective RF of its centre feature (:func:`rfgraph.erf`, measured on the real model).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
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
    erf : ERF or None
        With ``levels(..., erf=True)``: the effective RF of the level's centre feature
        (:class:`rfgraph.answers.erf.ERF`; ``.sigma``, ``.area_ratio[0.5].side``, ...).
    """

    node: Any
    module: Optional[str]
    n: tuple
    stride: tuple
    rf: tuple
    rf_extent: tuple
    global_from: tuple
    label: Optional[str] = None
    erf: Any = field(default=None, compare=False, repr=False)  # its map is an array

    def as_dict(self) -> dict:
        return {"node": str(self.node), "module": self.module, "label": self.label, "n": list(self.n),
                "stride": [_num(s) for s in self.stride], "rf": list(self.rf),
                "rf_extent": [list(e) for e in self.rf_extent],
                "global_from": [None if g is None else str(g) for g in self.global_from],
                "erf": None if self.erf is None else self.erf.as_dict()}


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


def levels(target, *, input_shape=None, outputs=None, erf=False, model=None) -> tuple:
    """Per output of ``target`` (a detector's backbone + FPN, say), its :class:`Level`.

    Parameters
    ----------
    target : Analysis, networkx.DiGraph or torch.nn.Module
    input_shape : tuple, optional
        ``(C, H, W)``: the shape a torch module is traced at (and the ERF measured at).
    outputs : list, optional
        Nodes to report (default: the model's outputs, in order).
    erf : bool or dict
        Also measure each level's effective RF with :func:`rfgraph.erf` at the level's layer (its
        unit: the feature whose TRF centre is nearest the input centre); a dict gives its options
        (``samples``, ``init``, ``weights``, ``seed``, ``recipe``, ``batch``, ``device``, ...).
        The model is used as given: build it on the CPU (a model built without weights has its
        random initialisation; ``init="random"`` re-draws it seeded).
    model : torch.nn.Module, optional
        The model the ERF is measured on when ``target`` is an analysis or graph (default:
        ``target``); ``input_shape`` is then needed for the ERF.

    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 2, 1), ("c2", "conv", 3, 2, 1)], (64, 64))
    >>> [(l.node, l.label, l.stride, l.rf) for l in levels(G, outputs=["c1", "c2"])]
    [('c1', 'P1', (2, 2), (3, 3)), ('c2', 'P2', (4, 4), (7, 7))]
    """
    from .. import Analysis

    module_target = not isinstance(target, Analysis) and _is_torch_module(target)
    analysis = as_analysis(target, input_shape if module_target else None)
    if input_shape is not None and not module_target and tuple(input_shape)[1:] != tuple(analysis.input_size):
        raise AnswerError(f"input_shape {tuple(input_shape)} does not match the analysis' input "
                          f"{tuple(analysis.input_size)}")
    outs = list(outputs) if outputs is not None else output_nodes(analysis)
    layer = _layers(analysis)
    out = []
    for v in outs:
        rec = analysis[v]
        stride = tuple(_grid_stride(rec.jump[ax], rec.global_from[ax], analysis.input_size[ax], rec.n[ax])
                       for ax in range(rec.naxes))
        out.append(Level(v, layer.get(v, rec.module), rec.n, stride, rec.rf, rec.rf_extent, rec.global_from,
                         _label(stride)))
    if erf:
        out = _with_erf(out, analysis, model if model is not None else (target if module_target else None),
                        input_shape, {} if erf is True else dict(erf))
    return tuple(out)


def _is_torch_module(obj):
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


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


def _with_erf(ls, analysis, model, input_shape, options) -> list:
    """``ls`` with each level's :class:`~rfgraph.answers.erf.ERF`: hooked at the level's layer
    when that module's output is the level (one trace: ``analysis``), else measured on the
    model's output that is the level (a wrapper returning it, traced again)."""
    from dataclasses import replace

    from .erf import ErfError
    from .erf import erf as measure

    if model is None or not _is_torch_module(model):
        raise ErfError("the ERF of the levels needs the torch model (levels(..., model=MODULE))")
    if input_shape is None:
        raise ErfError("the ERF of the levels needs input_shape, e.g. (3, 640, 640)")
    for key in ("at", "analysis", "unit", "inputs"):
        if key in options:
            raise ErfError(f"erf={{{key!r}: ...}} is chosen per level; it cannot be given to levels")
    mods = dict(model.named_modules())
    moduled = schema.module_outputs(analysis.graph)
    outs = output_nodes(analysis)
    out = []
    for lv in ls:
        if lv.module in mods and lv.module and moduled.get(lv.module) == lv.node:
            e = measure(model, input_shape, lv.module, analysis=analysis, **options)
        elif lv.node in outs:
            e = measure(_Output(model, outs.index(lv.node)), input_shape, "", **options)
        else:
            raise ErfError(f"level {lv.node!r} is neither a module's output nor a model output: "
                           "its tensor cannot be hooked for the ERF")
        out.append(replace(lv, erf=e))
    return out


def _Output(model, k):
    """A module returning ``model``'s ``k``-th output tensor (dicts, lists and tuples flattened
    in order, as the front-end lists the outputs)."""
    import torch

    def flat(y):
        if isinstance(y, torch.Tensor):
            return [y]
        if isinstance(y, dict):
            y = list(y.values())
        return [t for item in (y if isinstance(y, (list, tuple)) else ()) for t in flat(item)]

    class Output(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            return flat(self.model(x))[k]

    return Output()


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
    global source; with the ERF, its σ and the sides of the centred squares holding 50% and 99%
    of the gradient mass (then each ERF warning once, with the levels it is about).

    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 2, 1), ("c2", "conv", 3, 2, 1)], (64, 64))
    >>> print(levels_text(levels(G, outputs=["c1", "c2"])), end="")
    level  layer  n   stride  rf  global
    P1     c1     32  2       3   no
    P2     c2     16  4       7   no
    """
    from ..render._format import per_axis

    with_erf = any(lv.erf is not None for lv in ls)
    head = ("level", "layer", "n", "stride", "rf", "global")
    rows = [head + (("erf sigma", "erf 50%", "erf 99%") if with_erf else ())]
    notes = {}  # ERF warning -> the levels' layers it is about, in order
    for lv in ls:
        rf = per_axis(tuple(f"{a}..{b}" if a != b else str(a) for a, b in lv.rf_extent))
        glob = ",".join(sorted({str(g) for g in lv.global_from if g is not None})) or "no"
        row = (lv.label or "-", str(lv.module or lv.node), per_axis(lv.n), per_axis(lv.stride), rf, glob)
        if with_erf:
            e = lv.erf
            sides = [e.area_ratio.get(t) for t in (0.5, 0.99)] if e is not None else [None, None]
            row += (per_axis(tuple(round(s, 1) for s in e.sigma)) if e is not None else "-",) + \
                tuple("-" if r is None else str(r.side) for r in sides)
            for w in (e.warnings if e is not None else ()):
                w = re.sub(r"^axis \d+: ", "", w)  # one note for what both axes say
                levels_of = notes.setdefault(w, [])
                if row[1] not in levels_of:
                    levels_of.append(row[1])
        rows.append(row)
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    text = "\n".join("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip() for r in rows) + "\n"
    return text + "".join(f"note: {', '.join(layers)}: {w}\n" for w, layers in notes.items())
