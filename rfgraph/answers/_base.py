"""What every answer shares: the analysis of a target, its outputs, and per-feature context.

Context is measured against the pixels a feature **owns**: along an axis where a node's jump is
``j``, feature ``i`` owns input pixels ``floor(i*j) .. ceil((i+1)*j) - 1`` (the grid cell it stands
for, anchored at pixel 0, so that tiles and chunks that start at multiples of the jump own whole
features). Its context *before* is how far its exact, unclipped RF reaches before the first pixel
it owns, *after* how far it reaches past the last one.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .. import schema
from ..errors import RFGraphError

__all__ = ["AnswerError", "as_analysis", "output_nodes", "feeding", "as_fraction", "owned",
           "context", "grid_multiple", "global_source"]


class AnswerError(RFGraphError):
    """A question about the receptive field has no answer for this network or these options
    (a tile size that breaks the output grid, an op that is not shift-invariant, ...)."""


def as_analysis(target, input_shape=None):
    """``target`` as an :class:`~rfgraph.engine.Analysis`: itself, a graph analysed, or a torch
    module traced on ``input_shape`` first.

    >>> import rfgraph
    >>> as_analysis(rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))).input_size
    (8,)
    """
    from .. import Analysis, analyze

    if isinstance(target, Analysis):
        if input_shape is not None:
            raise TypeError("input_shape only applies to a torch module; this is an analysis already")
        return target
    return analyze(target, input_shape)


def output_nodes(analysis) -> list:
    """The model's outputs (the front-end's ``outputs`` metadata), else the graph's sinks."""
    outs = [v for v in schema.outputs(analysis.graph) if v in analysis]
    return outs or list(analysis.sinks)


def feeding(analysis, nodes) -> list:
    """``nodes`` and every node they depend on, in topological order."""
    pred = analysis.graph._pred
    seen, todo = set(nodes), list(nodes)
    while todo:
        for u in pred[todo.pop()]:
            if u not in seen:
                seen.add(u)
                todo.append(u)
    return [v for v in analysis.order if v in seen]


def as_fraction(jump) -> Fraction:
    """A jump as an exact fraction (upsampling gives jumps such as 0.5 or 1/3 as floats).

    >>> as_fraction(0.5), as_fraction(32), as_fraction(1 / 3)
    (Fraction(1, 2), Fraction(32, 1), Fraction(1, 3))
    """
    return Fraction(jump).limit_denominator(1 << 16)


def owned(n: int, jump) -> tuple:
    """First and last input pixel each of ``n`` features owns (see the module docstring).

    >>> [a.tolist() for a in owned(3, 2)], [a.tolist() for a in owned(4, 0.5)]
    ([[0, 2, 4], [1, 3, 5]], [[0, 0, 1, 1], [0, 0, 1, 1]])
    """
    j = as_fraction(jump)
    i = np.arange(n, dtype=np.int64)
    first = (i * j.numerator) // j.denominator
    last = -((-(i + 1) * j.numerator) // j.denominator) - 1
    return first, last


def context(rec, axis: int) -> tuple:
    """``(before, after, first, last)`` per feature of ``rec`` along ``axis``: how far the exact,
    unclipped RF reaches before the first owned pixel and after the last (negative when it stops
    short), and those owned pixels.

    >>> import rfgraph
    >>> a = rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, [(2, 0)])], (6,)))  # causal
    >>> [x.tolist() for x in context(a["c"], 0)[:2]]
    [[2, 2, 2, 2, 2, 2], [0, 0, 0, 0, 0, 0]]
    """
    lo, hi = rec.bounds(axis, clip=False)
    first, last = owned(rec.n[axis], rec.jump[axis])
    return first - lo, hi - last, first, last


def grid_multiple(analysis, nodes, axis: int) -> int:
    """The smallest shift (input pixels) that moves every node's feature grid by whole features:
    the lcm of the numerators of the nodes' jumps (a jump of 16 needs shifts by 16; a jump of 1/2,
    after upsampling, any shift). Global nodes (jump 0) are skipped.

    >>> import rfgraph
    >>> G = rfgraph.chain([("a", "conv", 3, 2, 1), ("b", "conv", 3, 4, 1)], (64,))
    >>> grid_multiple(rfgraph.analyze(G), ["a", "b"], 0)
    8
    """
    m = 1
    for v in nodes:
        j = analysis[v].jump[axis]
        if j:
            m = math.lcm(m, as_fraction(j).numerator)
    return m


def global_source(analysis, nodes, axis: int):
    """The node from which one of ``nodes`` depends on the whole input along ``axis`` through a
    global op (global pooling, attention, SE, a norm over positions), or None."""
    for v in nodes:
        src = analysis[v].global_from[axis]
        if src is not None:
            return src
    return None
