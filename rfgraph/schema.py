"""The graph schema: structure, node attributes that are information only, graph-level metadata.

A network is a :class:`networkx.DiGraph` whose edges are data flow (``index`` on an in-edge orders
a join's inputs) and whose nodes carry an ``op`` attribute plus that op's parameters; what each op
accepts is defined with the op in :mod:`rfgraph.ops`. This module checks the structure, orders
the nodes, and documents the graph-level metadata a front-end may attach, read and written only
through the accessors below. Nothing here mutates a graph except :func:`set_metadata`.

Graph-level metadata (``G.graph``)
----------------------------------
``module_outputs`` : dict[str, node]
    Module qualname -> the node producing that module's output (torch front-end, spec files).
``module_layouts`` : dict[str, tuple]
    Module qualname -> the dims (batch first) of its output tensor that hold the spatial axes, in
    axis order, where that output is a map: ``(2, 3)`` for ``(N, C, H, W)``, ``(1, 2)`` for a
    channels-last ``(N, H, W, C)`` (Swin's stages); what a check on the real tensor indexes.
``outputs`` : list[node]
    The nodes producing the model's outputs, in the model's order.
``shapes`` : dict[node, tuple]
    Node -> the spatial sizes torch computed for the node's tensor where it is a map, for reports
    and self-checks.
``model`` : str
    The model's class name.
``global_ops`` : dict[str, int]
    Framework op -> how many of its calls the front-end mapped to a global op.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

import networkx as nx

from .errors import CycleError, GraphError

__all__ = [
    "INFO_ATTRS",
    "METADATA",
    "check_digraph",
    "keep_what_outputs_need",
    "unique_name",
    "ordered_inputs",
    "topological_order",
    "topological_order_info",
    "module_outputs",
    "module_layouts",
    "outputs",
    "shapes",
    "model_name",
    "global_ops",
    "set_metadata",
]

#: Node attributes any node may carry for people and front-ends; ops and the engine ignore them.
INFO_ATTRS = frozenset({"op", "label", "module", "source", "target", "note", "index", "info"})

#: The graph-level keys and the type each must have (see the module docstring).
METADATA = {"module_outputs": Mapping, "module_layouts": Mapping, "outputs": (list, tuple), "shapes": Mapping,
            "model": str, "global_ops": Mapping}


def unique_name(taken: set, base) -> str:
    """``base``, or ``base_1``, ``base_2``, ... : the first not in ``taken``, which it joins (how
    front-ends name a module called twice: ``relu``, ``relu_1``).

    >>> taken = {"relu"}
    >>> unique_name(taken, "relu"), unique_name(taken, "relu"), sorted(taken)
    ('relu_1', 'relu_2', ['relu', 'relu_1', 'relu_2'])
    """
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    taken.add(name)
    return name


def keep_what_outputs_need(G, outputs) -> set:
    """Remove from ``G`` every node no output depends on (a front-end's last step); returns the
    nodes kept.

    >>> G = nx.DiGraph([("x", "a"), ("a", "out"), ("x", "unused")])
    >>> sorted(keep_what_outputs_need(G, ["out"])), sorted(G)
    (['a', 'out', 'x'], ['a', 'out', 'x'])
    """
    keep = set(outputs)
    for o in outputs:
        keep |= nx.ancestors(G, o)
    G.remove_nodes_from([v for v in list(G) if v not in keep])
    return keep


def check_digraph(G) -> None:
    """A :class:`GraphError` unless ``G`` is a networkx DiGraph (and not a multigraph)."""
    if not isinstance(G, nx.DiGraph):
        raise GraphError(f"expected a networkx.DiGraph, got {type(G).__name__}")
    if G.is_multigraph():
        raise GraphError("multigraphs are not supported: use a DiGraph (an identity node can split a double edge)")


def ordered_inputs(G: nx.DiGraph, node) -> list:
    """Predecessors of ``node`` in input order.

    The order is the edges' ``index`` attribute when every in-edge has one, otherwise the order the
    edges were added (networkx keeps insertion order).

    >>> G = nx.DiGraph([("b", "j"), ("a", "j")])
    >>> ordered_inputs(G, "j"), ordered_inputs(nx.DiGraph([("b", "j", {"index": 1}), ("a", "j", {"index": 0})]), "j")
    (['b', 'a'], ['a', 'b'])
    """
    return inputs_in_order(G._pred[node])


def inputs_in_order(pred: Mapping) -> list:
    """:func:`ordered_inputs` on a node's predecessor dict (``G._pred[node]``), the engine's form."""
    if len(pred) > 1:
        index = [d["index"] for d in pred.values() if "index" in d]
        if len(index) == len(pred) and index != sorted(index):  # (usually added in index order)
            return sorted(pred, key=lambda u: pred[u]["index"])  # stable
    return list(pred)


def topological_order(G: nx.DiGraph) -> list:
    """Nodes in a topological order, or :class:`CycleError` naming a node on the cycle.

    Among the nodes ready at each step the one added to the graph first comes first
    (networkx's ``lexicographical_topological_sort`` keyed by insertion order), so tables follow
    the order nodes were added.

    >>> G = nx.DiGraph()
    >>> G.add_nodes_from("abcd")
    >>> G.add_edges_from([("c", "b"), ("a", "d")])
    >>> topological_order(G)  # b waits for c, then comes before d
    ['a', 'c', 'b', 'd']
    """
    return topological_order_info(G)[0]


def topological_order_info(G: nx.DiGraph) -> tuple[list, bool]:
    """:func:`topological_order` and whether it is simply the insertion order."""
    check_digraph(G)
    # The adjacency dicts themselves: networkx's views cost a call per lookup.
    pred, succ = G._pred, G._succ
    order = _insertion_order_if_topological(pred)
    if order is not None:
        return order, True
    order = _smallest_ready_first(pred, succ)
    if order is None:
        cycle = nx.find_cycle(G)
        path = " -> ".join(str(u) for u, _ in cycle) + f" -> {cycle[0][0]}"
        raise CycleError(f"the graph has a cycle ({path}); a network must be a DAG", node=cycle[0][0],
                         op=G.nodes[cycle[0][0]].get("op")) from None
    return order, False


def _insertion_order_if_topological(pred) -> list | None:
    """The nodes in insertion order if every edge points forward in it, else None.

    Front-ends and builders add nodes after their inputs, so this O(V+E) check is the common
    case; when it holds, insertion order is exactly what the smallest-ready-first sort returns.
    """
    seen = set()
    add, covers = seen.add, seen.issuperset
    for v, p in pred.items():
        if p and not covers(p):
            return None
        add(v)
    return list(pred)


def _smallest_ready_first(pred, succ) -> list | None:
    """Kahn's algorithm taking, among ready nodes, the one inserted first (a heap of insertion
    ranks); the same order as ``nx.lexicographical_topological_sort(G, key=rank)``. None on a
    cycle."""
    nodes = list(pred)
    rank = {v: i for i, v in enumerate(nodes)}
    waiting = {v: len(p) for v, p in pred.items()}
    ready = [i for i, v in enumerate(nodes) if not waiting[v]]  # ascending: already a heap
    order = []
    while ready:
        v = nodes[heapq.heappop(ready)]
        order.append(v)
        for w in succ[v]:
            waiting[w] -= 1
            if not waiting[w]:
                heapq.heappush(ready, rank[w])
    return order if len(order) == len(nodes) else None


# -- graph-level metadata ------------------------------------------------------------------------


def _get(G, key, default):
    value = G.graph.get(key)
    if value is None:
        return default
    if not isinstance(value, METADATA[key]):
        want = {"module_outputs": "a mapping of module name to node",
                "module_layouts": "a mapping of module name to a tuple of dims", "outputs": "a list of nodes",
                "shapes": "a mapping of node to shape", "model": "a string",
                "global_ops": "a mapping of op to count"}[key]
        raise GraphError(f"graph metadata {key!r} must be {want}, got {type(value).__name__}")
    return value


def module_outputs(G) -> dict:
    """Module qualname -> output node; entries naming a node missing from ``G`` are an error.

    >>> G = nx.DiGraph(); G.add_node("c", op="conv"); G.graph["module_outputs"] = {"layer1": "c"}
    >>> module_outputs(G)
    {'layer1': 'c'}
    """
    outs = _get(G, "module_outputs", {})
    for m, v in outs.items():
        if v not in G:
            raise GraphError(f"graph metadata 'module_outputs' maps module {m!r} to {v!r}, "
                             "which is not a node of the graph")
    return dict(outs)


def module_layouts(G) -> dict:
    """Module qualname -> the dims of its output map's spatial axes (see the module docstring);
    empty when the front-end recorded none.

    >>> G = nx.DiGraph(); G.graph["module_layouts"] = {"stage1": [1, 2]}
    >>> module_layouts(G)
    {'stage1': (1, 2)}
    """
    out = {}
    for m, dims in _get(G, "module_layouts", {}).items():
        if not isinstance(dims, (list, tuple)) or not all(type(d) is int and d >= 0 for d in dims):
            raise GraphError(f"graph metadata 'module_layouts' gives module {m!r} {dims!r}; "
                             "it must be a list of tensor dims (non-negative ints)")
        out[m] = tuple(dims)
    return out


def outputs(G) -> list:
    """The model's output nodes as the front-end recorded them (empty when it did not)."""
    return list(_get(G, "outputs", ()))


def shapes(G) -> dict:
    """Node -> spatial sizes of its traced tensor where it is a map (empty when the front-end
    recorded none)."""
    return dict(_get(G, "shapes", {}))


def model_name(G) -> str | None:
    """The model's class name, when a front-end recorded it."""
    return _get(G, "model", None)


def global_ops(G) -> dict:
    """Framework op -> number of its calls mapped to a global op."""
    return dict(_get(G, "global_ops", {}))


def set_metadata(G, **values) -> None:
    """Attach graph-level metadata (the only writer; keys as in :data:`METADATA`).

    >>> G = nx.DiGraph(); set_metadata(G, model="Net"); model_name(G)
    'Net'
    """
    for key, value in values.items():
        if key not in METADATA:
            raise GraphError(f"unknown graph metadata {key!r}; known keys are {', '.join(METADATA)}")
        if not isinstance(value, METADATA[key]):
            raise GraphError(f"graph metadata {key!r} must be {METADATA[key]}, got {type(value).__name__}")
        G.graph[key] = value
