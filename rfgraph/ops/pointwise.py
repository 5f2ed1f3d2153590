"""``identity``: each position maps to itself (activations, normalisation, dropout, channel ops).

>>> import rfgraph
>>> G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))
>>> G.add_node("relu", op="identity"); G.add_edge("c", "relu")
>>> rfgraph.analyze(G)["relu"].rf
(3,)
"""

from __future__ import annotations

from .base import DEFAULT, Op


def _same(node, inputs):
    """Each position maps to itself (activations, normalisation, dropout, channel ops)."""
    return inputs[0]


def _pass_through(node, axis, state, inputs):
    return inputs[0]


def _no_params(node, axis):
    return ()


def _plan(params):
    return _first


def _first(inputs):
    return inputs[0]


DEFAULT.add(Op("identity", _same, accepts=frozenset(), parse=lambda r: {}, bounds=_pass_through,
               coverage=_pass_through, axis_key=_no_params, fast=_plan, pointwise=True, doc=_same.__doc__))
