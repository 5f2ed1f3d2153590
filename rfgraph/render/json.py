"""The analysis as JSON: every node's record, the input size and the misaligned joins.

``schema_version`` is bumped whenever a key changes meaning or disappears; new keys may be added
within a version. Key order is fixed (insertion order, not alphabetical, so ``name`` and ``op``
come first) and nodes follow the analysis' topological order, so output is stable text.
"""

from __future__ import annotations

import json as _json

from .stages import select

__all__ = ["to_json", "SCHEMA_VERSION", "as_data"]

SCHEMA_VERSION = 1


def _misalignment(m) -> dict:
    return {
        "node": m.node,
        "op": m.op,
        "offsets": list(m.offsets),
        "branches": [{"node": b.node, "start": list(b.start), "offset": list(b.offset)} for b in m.branches],
    }


def as_data(analysis, nodes=None, modules=None) -> dict:
    """The JSON document as plain Python data (what :func:`to_json` serialises).

    Parameters
    ----------
    analysis : Analysis
    nodes : iterable, optional
        The nodes to include, in this order. Default: the per-stage view when the graph has
        top-level modules, else every node in topological order (see
        :func:`rfgraph.render.stages.select`).
    modules : dict, optional
        ``{module qualname: node}`` to record which node stands for which module (default: the
        stages in the per-stage view); included as ``"modules"`` when given.
    """
    nodes, modules = select(analysis, nodes, modules)
    data = {
        "schema_version": SCHEMA_VERSION,
        "input_size": list(analysis.input_size),
        "inputs": list(analysis.inputs),
        "outputs": analysis.sinks,
        "misaligned": [_misalignment(m) for m in analysis.misaligned()],
    }
    if modules is not None:
        data["modules"] = dict(modules)
    data["nodes"] = [analysis[v].as_dict() for v in nodes]
    return data


def to_json(analysis, nodes=None, modules=None, indent=2) -> str:
    """JSON text of an analysis (see :func:`as_data` for the parameters).

    Returns
    -------
    str
        Ends with a newline. Node names that JSON cannot hold (tuples, objects) appear as lists
        or their ``str()``.

    Examples
    --------
    >>> import json, rfgraph
    >>> G = rfgraph.chain([("conv1", "conv", 3, 2, 1)], 8)
    >>> doc = json.loads(to_json(rfgraph.analyze(G)))
    >>> doc["schema_version"], doc["input_size"], [n["name"] for n in doc["nodes"]]
    (1, [8, 8], ['input', 'conv1'])
    >>> doc["nodes"][1]["rf"], doc["nodes"][1]["start"]
    ([3, 3], [0.5, 0.5])
    """
    text = _json.dumps(as_data(analysis, nodes, modules), indent=indent, default=str,
                       ensure_ascii=False, allow_nan=False)
    return text + "\n"
