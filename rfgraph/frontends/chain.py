"""The linear-chain special case: a list of layers to a graph."""

from __future__ import annotations

import networkx as nx

from ..errors import ParameterError

__all__ = ["chain"]


def chain(layers, input_size, *, input_name="input") -> nx.DiGraph:
    """Build a linear chain of conv/pool layers as a graph.

    Parameters
    ----------
    layers : iterable of tuples
        ``(name, op, kernel, stride, padding)`` rows, optionally with a sixth entry ``dilation``;
        ``op`` is ``conv``, ``maxpool`` or ``avgpool`` (or any op of the schema that takes these).
    input_size : int or tuple
        Input size per spatial axis; an int means a square 2-D input.
    input_name : str
        Name of the input node.

    Returns
    -------
    networkx.DiGraph

    Examples
    --------
    >>> import rfgraph
    >>> G = rfgraph.chain([("conv1", "conv", 11, 4, 0), ("pool1", "maxpool", 3, 2, 0)], 227)
    >>> rec = rfgraph.analyze(G)["pool1"]
    >>> rec.n[0], rec.jump[0], rec.rf[0], rec.start[0]
    (27, 8, 19, 9.5)
    """
    size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    G = nx.DiGraph()
    G.add_node(input_name, op="input", size=size)
    prev = input_name
    for row in layers:
        if not isinstance(row, (list, tuple)) or len(row) not in (5, 6):
            raise ParameterError(f"a chain row must be (name, op, kernel, stride, padding[, dilation]), got {row!r}")
        name, op, k, s, p = row[:5]
        if name in G:
            raise ParameterError(f"duplicate layer name {name!r} in the chain", node=name, op=op)
        attrs = {"op": op, "kernel": k, "stride": s, "padding": p}
        if len(row) == 6:
            attrs["dilation"] = row[5]
        G.add_node(name, **attrs)
        G.add_edge(prev, name)
        prev = name
    return G
