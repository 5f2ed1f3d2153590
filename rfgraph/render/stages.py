"""The default view of an analysis: one row per stage, and the misaligned joins in one line.

A *stage* is a top-level module (``layer1``, ``fc``; from the graph's ``module_outputs``, see
:func:`rfgraph.schema.module_outputs`). When a graph has stages, the text renderers show the
inputs, the output of every stage and the sinks, labelled in a ``stage`` column; otherwise every
node. ``rfgraph analyze`` prints exactly this view, so the library and the command agree.
"""

from __future__ import annotations

from ..schema import module_outputs

__all__ = ["stages", "select", "stage_labels", "misaligned_summary"]

#: Misaligned joins named in :func:`misaligned_summary` before it says "...".
MAX_NAMED = 10


def stages(analysis) -> dict:
    """``{top-level module: its output node}`` in topological order of the nodes (empty without
    modules).

    >>> import rfgraph
    >>> stages(rfgraph.analyze(rfgraph.chain([("c1", "conv", 3, 1, 1)], 8)))
    {}
    """
    top = [(m, v) for m, v in module_outputs(analysis.graph).items() if isinstance(m, str) and m and "." not in m]
    if not top:
        return {}
    pos = {v: i for i, v in enumerate(analysis.order)}
    return dict(sorted(top, key=lambda mv: pos[mv[1]]))


def select(analysis, nodes=None, modules=None) -> tuple:
    """``(nodes, modules)`` to show: as given, else the per-stage view, else every node.

    Parameters
    ----------
    analysis : Analysis
    nodes : iterable, optional
        The nodes to show, in this order. Default: the inputs, the output of every stage
        (:func:`stages`) and the sinks in topological order, or every node when the graph has no
        stages (and whenever ``modules`` is given without ``nodes``).
    modules : dict, optional
        ``{module qualname: node}``: which module each shown node stands for. Default: the stages
        when the per-stage view is chosen, else None.

    Returns
    -------
    tuple
        ``(list of nodes, dict or None)``.
    """
    if nodes is None and modules is None:
        top = stages(analysis)
        if top:
            shown = set(analysis.inputs) | set(top.values()) | set(analysis.sinks)
            return [v for v in analysis.order if v in shown], top
    return (list(analysis.order) if nodes is None else list(nodes)), modules


def stage_labels(analysis, nodes, modules) -> dict:
    """``{node: label}`` for the ``stage`` column: its modules (comma-separated), else
    ``(input)`` or ``(output)`` for an input or sink, else empty."""
    names = {}
    for m, v in modules.items():
        names.setdefault(v, []).append(str(m))
    inputs, sinks = set(analysis.inputs), set(analysis.sinks)
    return {v: ", ".join(names[v]) if v in names else "(input)" if v in inputs else "(output)" if v in sinks
            else "" for v in nodes}


def misaligned_summary(analysis) -> str:
    """One line naming the misaligned joins (empty when there are none).

    >>> import networkx as nx, rfgraph
    >>> G = nx.DiGraph([("x", "a"), ("x", "b"), ("a", "add"), ("b", "add")])
    >>> G.nodes["x"].update(op="input", size=(8,)); G.nodes["add"]["op"] = "add"
    >>> G.nodes["a"].update(op="conv", kernel=2, padding=((0, 1),)); G.nodes["b"].update(op="conv", kernel=1)
    >>> misaligned_summary(rfgraph.analyze(G))
    '1 misaligned join: add'
    """
    mis = analysis.misaligned()
    if not mis:
        return ""
    names = ", ".join(str(m.node) for m in mis[:MAX_NAMED]) + (", ..." if len(mis) > MAX_NAMED else "")
    return f"{len(mis)} misaligned join{'s' if len(mis) > 1 else ''}: {names}"
