"""The engine: propagate receptive fields through a DAG in topological order.

``analyze(G)`` computes every node's per-axis summary through the op registry
(:mod:`rfgraph.ops`; cheap scalar arithmetic, so it scales to millions of nodes); records and
exact per-position bounds are built lazily, on first access, and cached. The graph is never
mutated. The engine knows no framework, front-end or renderer.

==================  ===========================================================
module              what it does
==================  ===========================================================
``propagate``       the topological pass, parse caching and fast paths
``bounds``          exact per-position bounds and pixel coverage
``result``          :class:`Analysis`: records, joins, module lookup
==================  ===========================================================
"""

from __future__ import annotations

from ..ops import active_registry
from ..schema import check_digraph
from .result import Analysis

__all__ = ["analyze", "Analysis"]


def analyze(G, *, extra_ops=()) -> Analysis:
    """Receptive fields of every node of a network.

    Parameters
    ----------
    G : networkx.DiGraph
        A graph in rfgraph's schema (see the README and :mod:`rfgraph.schema`).
    extra_ops : iterable of rfgraph.ops.Op, optional
        Ops for this analysis only, on top of the registry in force (nothing is registered).

    Returns
    -------
    Analysis
        ``analysis[node]`` is the node's :class:`~rfgraph.record.RF` record.

    Raises
    ------
    RFGraphError
        A subclass naming the node, op and problem for any invalid graph.

    Examples
    --------
    >>> import networkx as nx
    >>> G = nx.DiGraph()
    >>> G.add_node("x", op="input", size=(32, 32))
    >>> G.add_node("conv", op="conv", kernel=3, padding=1)
    >>> G.add_node("pool", op="maxpool", kernel=2)
    >>> G.add_edges_from([("x", "conv"), ("conv", "pool")])
    >>> rec = analyze(G)["pool"]
    >>> rec.n, rec.jump, rec.rf, rec.start
    ((16, 16), (2, 2), (4, 4), (1, 1))
    """
    check_digraph(G)
    registry = active_registry().copy()  # a snapshot: later registrations do not change it
    for op in extra_ops:
        registry.add(op)
    return Analysis(G, registry)
