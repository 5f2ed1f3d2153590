"""Tiled inference: the overlap (halo) that makes tiles reproduce whole-image inference exactly.

Run the network on overlapping crops and keep, from each crop, only the outputs of the tile it is
responsible for: the kept outputs equal whole-image inference exactly when

1. every kept output's exact RF, **padding included** (``bounds(clip=False)``), lies inside the
   crop, so no kept output reads the zeros a conv pads at a crop border inside the image (at the
   image border the crop ends where the image does and pads exactly as whole-image inference);
2. every crop starts at a multiple of the **grid multiple** ``M``: the lcm of the numerators of
   every node's jump, so each node's features in the crop are whole-image features shifted by a
   whole number (a stride-16 U-Net needs ``M = 16``; a stride-1 dilated stack ``M = 1``);
3. every op is shift-invariant by ``M`` (checked on each position-dependent node's exact bounds:
   ``align_corners=True`` interpolation or adaptive pooling to a non-dividing size are not).

The **halo** per axis is ``(before, after)``: the farthest any output's RF reaches before the
first pixel of its tile, and after the last, over every output of every tile that has a
neighbour on that side (tiles start at multiples of ``M``; a feature owns the pixels of its grid
cell, see :mod:`rfgraph.answers._base`). It is tight: a tile whose crop holds one pixel less of
real image on that side changes some kept output. Crops are the halo rounded up to ``M`` (the
``crop_halo``), so that they too start on the grid.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._base import (AnswerError, as_analysis, as_fraction, context, feeding, global_source,
                    grid_multiple, output_nodes)

__all__ = ["Tiling", "TileSpan", "tiling", "to_text"]


@dataclass(frozen=True)
class TileSpan:
    """One tile along one axis, in input pixels ``[start, stop)``.

    ``keep`` is the part of the image the tile is responsible for, ``crop`` what the network is
    run on; ``outputs`` maps each output node to ``(whole, in_tile)``: the output features kept,
    as ``[start, stop)`` in the whole-image output and in the crop's output.
    """

    keep: tuple
    crop: tuple
    outputs: tuple  # ((node, (whole_start, whole_stop), (tile_start, tile_stop)), ...)

    def as_dict(self) -> dict:
        return {"keep": list(self.keep), "crop": list(self.crop),
                "outputs": {str(v): {"whole": list(w), "tile": list(t)} for v, w, t in self.outputs}}


@dataclass(frozen=True)
class Tiling:
    """Result of :func:`tiling`; every field is per spatial axis.

    Attributes
    ----------
    input_size, tile : tuple of int
        The image analysed and the tile size asked for (the whole axis where unbounded).
    halo : tuple
        ``(before, after)`` input pixels of real image each tile needs around it; None on an axis
        where an output depends on the whole input (``unbounded`` names the node).
    crop_halo : tuple
        The halo rounded up to ``multiple``: what the ``plan``'s crops add around a tile.
    multiple : tuple of int
        Tile origins and sizes must be multiples of it (the network's grid).
    unbounded : tuple
        The global node (SE, attention, global pooling, a norm over positions) that makes every
        output depend on the whole input along the axis, or None.
    outputs : tuple
        The output nodes the halo is for.
    plan : tuple of tuple of TileSpan
        Per axis, the tiles in order; the tiles of an N-D image are their product (:meth:`tiles`).
    """

    input_size: tuple
    tile: tuple
    halo: tuple
    crop_halo: tuple
    multiple: tuple
    unbounded: tuple
    outputs: tuple
    plan: tuple

    @property
    def bounded(self) -> bool:
        """No axis is unbounded: tiling works along every axis."""
        return all(u is None for u in self.unbounded)

    def tiles(self):
        """Every N-D tile as ``(crop, outputs)``: ``crop`` a tuple of ``slice`` per spatial axis
        of the input, ``outputs`` ``{node: (tile_slices, whole_slices)}`` (keep ``tile_slices``
        of the crop's output, write them to ``whole_slices`` of the whole output)."""
        for spans in itertools.product(*self.plan):
            crop = tuple(slice(*s.crop) for s in spans)
            outs = {}
            for k, v in enumerate(self.outputs):
                outs[v] = (tuple(slice(*s.outputs[k][2]) for s in spans),
                           tuple(slice(*s.outputs[k][1]) for s in spans))
            yield crop, outs

    def as_dict(self) -> dict:
        """JSON-ready: ``halo`` per axis ``[before, after]`` (null when unbounded), ``multiple``,
        ``plan`` per axis, and the rest of the fields."""
        return {
            "input_size": list(self.input_size),
            "tile": list(self.tile),
            "halo": [None if h is None else list(h) for h in self.halo],
            "crop_halo": [None if h is None else list(h) for h in self.crop_halo],
            "multiple": list(self.multiple),
            "unbounded": [None if u is None else str(u) for u in self.unbounded],
            "outputs": [str(v) for v in self.outputs],
            "plan": [[s.as_dict() for s in axis] for axis in self.plan],
        }


def tiling(target, tile, *, input_shape=None, outputs=None) -> Tiling:
    """The halo, grid multiple and stitch plan for tiled inference of ``target``.

    Parameters
    ----------
    target : Analysis, networkx.DiGraph or torch.nn.Module
        The network, analysed at the image size to tile (a module is traced on ``input_shape``).
    tile : int or tuple of int
        Tile size in input pixels (per axis, or one for every axis); a multiple of the grid
        ``multiple`` (the error says which).
    outputs : list, optional
        The output nodes to keep (default: the model's outputs, else the graph's sinks).

    Returns
    -------
    Tiling

    Raises
    ------
    AnswerError
        A tile size that is not a multiple of the grid, or a node that is not shift-invariant.

    Examples
    --------
    Two 3-wide convs, the second dilated by 2: each output reads 3 pixels on each side.

    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 1, 1), ("c2", "conv", 3, 1, 2, 2)], (20,))
    >>> t = rfgraph.tiling(G, tile=8)
    >>> t.halo, t.multiple
    (((3, 3),), (1,))
    >>> [(s.keep, s.crop) for s in t.plan[0]]
    [((0, 8), (0, 11)), ((8, 16), (5, 19)), ((16, 20), (13, 20))]
    """
    analysis = as_analysis(target, input_shape)
    outs = list(outputs) if outputs is not None else output_nodes(analysis)
    for v in outs:
        if v not in analysis:
            raise AnswerError(f"no node {v!r} in the graph to tile for")
    naxes = len(analysis.input_size)
    tiles = tuple(tile) if isinstance(tile, (list, tuple)) else (tile,) * naxes
    if len(tiles) != naxes:
        raise AnswerError(f"tile has {len(tiles)} entries but the input has {naxes} spatial axes")
    nodes = feeding(analysis, outs)
    axes = [_axis(analysis, outs, nodes, ax, t) for ax, t in enumerate(tiles)]
    return Tiling(input_size=tuple(analysis.input_size), tile=tuple(a[0] for a in axes),
                  halo=tuple(a[1] for a in axes), crop_halo=tuple(a[2] for a in axes),
                  multiple=tuple(a[3] for a in axes), unbounded=tuple(a[4] for a in axes),
                  outputs=tuple(outs), plan=tuple(a[5] for a in axes))


def _axis(analysis, outs, nodes, ax, tile):
    size = analysis.input_size[ax]
    src = global_source(analysis, nodes, ax)
    if src is not None:  # one tile: the whole axis
        return size, None, None, 1, src, (_span(analysis, outs, ax, 0, size, 0, size),)
    m = grid_multiple(analysis, nodes, ax)
    _check_shift_invariant(analysis, nodes, ax, m)
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise AnswerError(f"tile must be a positive integer, got {tile!r}")
    if tile % m:
        near = sorted({max(m, tile // m * m), (tile // m + 1) * m})
        raise AnswerError(f"tile {tile} along axis {ax} is not a multiple of {m}, the network's grid "
                          f"(the lcm of its strides); try {' or '.join(map(str, near))}")
    before = after = 0
    for v in outs:
        b, a = _reach(analysis[v], ax, tile, m, size)
        before, after = max(before, b), max(after, a)
    halo = (before, after)
    crop = (-(-before // m) * m, -(-after // m) * m)
    plan = []
    for a in range(0, size, tile):
        b = min(a + tile, size)
        plan.append(_span(analysis, outs, ax, a, b, max(0, a - crop[0]), min(size, b + crop[1])))
    return tile, halo, crop, m, None, tuple(plan)


def _reach(rec, ax, tile, m, size):
    """``(before, after)``: the farthest the outputs of ``rec`` reach past the first and last
    pixel of their tile (tiles ``[k*tile, (k+1)*tile)``), over the tiles that have a neighbour on
    that side. An image of one tile has none: then over every feature, as if the image went on
    with tiles of ``m``."""
    before, after, first, last = context(rec, ax)
    lo, hi = first - before, last + after
    out = []
    for side in (0, 1):
        for step, edge_only in ((tile, True), (m, False)):
            if side == 0:
                edge = first // step * step
                need, has = edge - lo, edge > 0
            else:
                edge = (last // step + 1) * step
                need, has = hi - (edge - 1), edge < size
            if edge_only:
                need = need[has]
            if len(need):
                out.append(max(int(need.max()), 0))
                break
        else:
            out.append(0)
    return tuple(out)


def _span(analysis, outs, ax, a, b, c, e) -> TileSpan:
    """The tile keeping input pixels ``[a, b)`` from the crop ``[c, e)``: the output features
    each output keeps, in whole-image and in crop coordinates."""
    size = analysis.input_size[ax]
    kept = []
    for v in outs:
        rec = analysis[v]
        j = as_fraction(rec.jump[ax])
        if not j:  # global along this axis: one tile, every feature
            kept.append((v, (0, rec.n[ax]), (0, rec.n[ax])))
            continue
        n = rec.n[ax]
        o0 = min(int(a / j), n)
        o1 = n if b >= size else min(int(b / j), n)
        shift = int(c / j)
        kept.append((v, (o0, o1), (o0 - shift, o1 - shift)))
    return TileSpan(keep=(a, b), crop=(c, e), outputs=tuple(kept))


def _check_shift_invariant(analysis, nodes, ax, m):
    """An :class:`AnswerError` naming the first position-dependent node whose interior features
    do not repeat every ``m`` input pixels (then a shifted crop would compute other features)."""
    size = analysis.input_size[ax]
    for v in nodes:
        rec = analysis[v]
        if rec.exact[ax] or not rec.jump[ax]:
            continue  # affine: every feature alike
        j = as_fraction(rec.jump[ax])
        step, shift = m * j.denominator // j.numerator, m
        lo, hi = rec.bounds(ax, clip=False)
        margin = rec.rf_extent[ax][1]  # border effects (clamped interpolation) reach this far
        inside = (lo >= margin) & (hi <= size - 1 - margin)
        # a period as long as half the axis: the features never repeat (align_corners=True)
        pair = inside[:-step] & inside[step:] if 2 * step <= len(lo) else None
        if pair is None or not (np.all((lo[step:] - lo[:-step])[pair] == shift)
                                and np.all((hi[step:] - hi[:-step])[pair] == shift)):
            raise AnswerError(
                f"its features do not repeat every {shift} input pixels along axis {ax} (not "
                "shift-invariant: e.g. interpolation with align_corners=True, or adaptive pooling "
                "to a size that does not divide), so tiles cannot reproduce whole-image inference",
                node=v, op=rec.op)


def to_text(t: Tiling) -> str:
    """The tiling as plain text: one line per axis, then the stitch plan (what ``rfgraph tile``
    prints).

    >>> import rfgraph
    >>> print(to_text(rfgraph.tiling(rfgraph.chain([("c", "conv", 5, 1, 2)], (10,)), tile=4)), end="")
    input 10, tile 4, outputs: c
    axis 0: halo 2 before, 2 after (crops add 2, 2); tile origins and sizes: multiples of 1
    plan axis 0:
      keep [0, 4)  crop [0, 6)  c: tile [0, 4) -> whole [0, 4)
      keep [4, 8)  crop [2, 10)  c: tile [2, 6) -> whole [4, 8)
      keep [8, 10)  crop [6, 10)  c: tile [2, 4) -> whole [8, 10)
    """
    lines = [f"input {'x'.join(map(str, t.input_size))}, tile {'x'.join(map(str, t.tile))}, "
             f"outputs: {', '.join(map(str, t.outputs))}"]
    for ax in range(len(t.input_size)):
        if t.unbounded[ax] is not None:
            lines.append(f"axis {ax}: unbounded: from node {t.unbounded[ax]!r} every output depends on the "
                         "whole input along this axis (global op): no tiling along it")
            continue
        (b, a), (cb, ca) = t.halo[ax], t.crop_halo[ax]
        lines.append(f"axis {ax}: halo {b} before, {a} after (crops add {cb}, {ca}); "
                     f"tile origins and sizes: multiples of {t.multiple[ax]}")
    for ax, spans in enumerate(t.plan):
        lines.append(f"plan axis {ax}:")
        for s in spans:
            outs = "  ".join(f"{v}: tile [{p0}, {p1}) -> whole [{o0}, {o1})" for v, (o0, o1), (p0, p1) in s.outputs)
            lines.append(f"  keep [{s.keep[0]}, {s.keep[1]})  crop [{s.crop[0]}, {s.crop[1]})  {outs}")
    return "\n".join(lines) + "\n"
