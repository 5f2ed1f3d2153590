"""Graph spec files: a network in rfgraph's graph schema, as JSON.

The file holds exactly what the :class:`networkx.DiGraph` holds (see the README's schema)::

    {"schema_version": 1,
     "nodes": [{"name": "x", "op": "input", "size": [224, 224]},
               {"name": "conv1", "op": "conv", "kernel": 3, "stride": 2, "padding": 1}],
     "edges": [["x", "conv1"]]}

An edge is ``[from, to]`` or ``{"from": ..., "to": ..., "index": 0}`` (``index`` orders a join's
inputs). JSON has no tuples, so lists in attributes are read back as tuples (``size``, per-axis
parameters, padding pairs). An optional ``"graph"`` object holds graph attributes (e.g. a torch
front-end's ``module_outputs``). Reading only parses JSON: nothing is evaluated or unpickled.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path

import networkx as nx

from .. import schema
from ..errors import GraphError, SpecError

__all__ = ["read_spec", "write_spec", "loads_spec", "dumps_spec", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
_TOP_KEYS = ("schema_version", "description", "graph", "nodes", "edges")


def _fail(source, msg):
    raise SpecError(f"{source}: {msg}")


def _to_python(value):
    """JSON value -> attribute value: lists become tuples (per-axis parameters are tuples)."""
    if isinstance(value, list):
        return tuple(_to_python(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    return value


def _name(value, source, where):
    if isinstance(value, bool) or value is None or isinstance(value, float):
        _fail(source, f"{where}: a node name must be a string or an integer, got {json.dumps(value)}")
    if isinstance(value, (str, int)):
        return value
    if isinstance(value, list):
        return _to_python(value)  # tuple names (hashable) round-trip through lists
    _fail(source, f"{where}: a node name must be a string or an integer, got {json.dumps(value)}")


def loads_spec(text, source="<spec>") -> nx.DiGraph:
    """Parse spec text into a graph.

    Parameters
    ----------
    text : str
        The JSON text.
    source : str
        Named in error messages (the file name).

    Returns
    -------
    networkx.DiGraph
        Nodes and edges in file order (the order decides table order and, without ``index``,
        a join's input order).

    Raises
    ------
    SpecError
        For invalid JSON or a structure that is not a graph spec; the message names ``source``
        and the offending node or edge.

    Examples
    --------
    >>> G = loads_spec('{"schema_version": 1, "nodes": [{"name": "x", "op": "input", '
    ...                '"size": [8, 8]}, {"name": "c", "op": "conv", "kernel": [1, 3]}], '
    ...                '"edges": [["x", "c"]]}')
    >>> G.nodes["c"]["kernel"], list(G.edges)
    ((1, 3), [('x', 'c')])
    """
    if text.startswith("\ufeff"):  # a byte-order mark some editors write: not part of the JSON
        text = text[1:]
    try:
        data = json.loads(text, parse_constant=lambda c: _fail(source, f"{c} is not allowed in a spec"))
    except json.JSONDecodeError as exc:
        _fail(source, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
    if not isinstance(data, dict):
        _fail(source, f"expected a JSON object with 'nodes' and 'edges', got a {type(data).__name__}")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        _fail(source, f"unknown key(s) {', '.join(map(repr, unknown))}; a spec has {', '.join(_TOP_KEYS)}")
    version = data.get("schema_version")
    if version is None:
        _fail(source, f"missing 'schema_version' (this version of rfgraph writes {SCHEMA_VERSION})")
    if version != SCHEMA_VERSION:
        _fail(source, f"schema_version {json.dumps(version)} is not supported (expected {SCHEMA_VERSION})")
    nodes, edges = data.get("nodes"), data.get("edges", [])
    if not isinstance(nodes, list) or not nodes:
        _fail(source, "'nodes' must be a non-empty list of objects")
    if not isinstance(edges, list):
        _fail(source, "'edges' must be a list")
    graph_attrs = data.get("graph", {})
    if not isinstance(graph_attrs, dict):
        _fail(source, "'graph' must be an object")

    G = nx.DiGraph()
    G.graph.update({k: _to_python(v) for k, v in graph_attrs.items()})
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]"
        if not isinstance(node, dict):
            _fail(source, f"{where} must be an object like {{\"name\": ..., \"op\": ...}}, got {json.dumps(node)}")
        if "name" not in node:
            _fail(source, f"{where} has no 'name'")
        name = _name(node["name"], source, where)
        if name in G:
            _fail(source, f"{where}: duplicate node name {name!r}")
        if not isinstance(node.get("op"), str):
            _fail(source, f"{where} ({name!r}) needs an 'op' string, e.g. \"conv\"")
        G.add_node(name, **{k: _to_python(v) for k, v in node.items() if k != "name"})
    for i, edge in enumerate(edges):
        where = f"edges[{i}]"
        attrs = {}
        if isinstance(edge, list):
            if len(edge) != 2:
                _fail(source, f"{where} must be [from, to], got {json.dumps(edge)}")
            u, v = edge
        elif isinstance(edge, dict):
            if "from" not in edge or "to" not in edge:
                _fail(source, f"{where} needs 'from' and 'to', got {json.dumps(edge)}")
            u, v = edge["from"], edge["to"]
            attrs = {k: _to_python(x) for k, x in edge.items() if k not in ("from", "to")}
            if "index" in attrs and (isinstance(attrs["index"], bool) or not isinstance(attrs["index"], int)):
                _fail(source, f"{where}: 'index' must be an integer, got {json.dumps(edge['index'])}")
        else:
            _fail(source, f"{where} must be [from, to] or {{\"from\": ..., \"to\": ...}}, got {json.dumps(edge)}")
        u, v = _name(u, source, where), _name(v, source, where)
        for end in (u, v):
            if end not in G:
                _fail(source, f"{where} refers to unknown node {end!r}")
        if G.has_edge(u, v):
            # a DiGraph holds one edge per pair; add(x, x) needs an identity node in between
            _fail(source, f"{where}: duplicate edge {u!r} -> {v!r}")
        G.add_edge(u, v, **attrs)
    _check_metadata(G, source)
    return G


def _check_metadata(G, source):
    """The graph-level metadata rfgraph reads (see :mod:`rfgraph.schema`) must have its documented
    type and name nodes of this graph: said now, naming the file, not when a table is drawn."""
    json_type = {dict: "an object", tuple: "a list", str: "a string", int: "a number", float: "a number",
                 bool: "true or false", type(None): "null"}
    want = {"module_outputs": "an object mapping module names to node names",
            "module_layouts": "an object mapping module names to lists of dims", "outputs": "a list of node names",
            "shapes": "an object mapping node names to shapes", "model": "a string",
            "global_ops": "an object mapping op names to counts"}
    for key, kind in schema.METADATA.items():
        value = G.graph.get(key)
        if value is None:
            continue
        if not isinstance(value, kind):
            _fail(source, f"'graph'.{key} must be {want[key]}, got {json_type.get(type(value), type(value).__name__)}")
        if key in ("module_outputs", "module_layouts"):
            try:
                getattr(schema, key)(G)  # every entry names a node / is a list of dims
            except GraphError as exc:
                _fail(source, f"'graph': {exc.detail}")
        missing = [v for v in value if v not in G] if key == "outputs" else []
        if missing:
            _fail(source, f"'graph'.outputs names {missing[0]!r}, which is not a node of the graph")


def read_spec(path) -> nx.DiGraph:
    """Read a graph spec file (see the module docstring for the format).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    networkx.DiGraph

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    SpecError
        The file is not a valid spec; the message names the file and what is wrong.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is accepted
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise SpecError(f"{path}: is a directory, not a spec file") from None
    return loads_spec(text, source=str(path))


def _to_json(value, where):
    """Attribute value -> JSON value; anything JSON cannot hold faithfully is an error."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            raise SpecError(f"{where}: {v} cannot be written to JSON")
        return v
    if isinstance(value, (list, tuple)):
        return [_to_json(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise SpecError(f"{where}: dict keys must be strings to be written to JSON")
        return {k: _to_json(v, where) for k, v in value.items()}
    raise SpecError(f"{where}: a {type(value).__name__} cannot be written to a spec file "
                    "(only numbers, strings, booleans, None, lists and dicts)")


def _name_json(v):
    if isinstance(v, bool) or not isinstance(v, (str, int, tuple)):
        raise SpecError(f"node name {v!r} cannot be written to a spec file (use strings, ints or tuples)")
    return _to_json(v, f"node {v!r}")


def dumps_spec(G) -> str:
    """Spec text of a graph: one node or edge per line, in the graph's order.

    Edges are written grouped by their target, in each target's input order, so reading the file
    back gives every join the same input order.

    Examples
    --------
    >>> import rfgraph
    >>> print(dumps_spec(rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))), end="")
    {
      "schema_version": 1,
      "nodes": [
        {"name": "input", "op": "input", "size": [8]},
        {"name": "c", "op": "conv", "kernel": 3, "stride": 1, "padding": 1}
      ],
      "edges": [
        ["input", "c"]
      ]
    }
    """
    if not isinstance(G, nx.DiGraph) or G.is_multigraph():
        raise SpecError(f"expected a networkx.DiGraph, got {type(G).__name__}")
    node_lines = []
    for v, attrs in G.nodes(data=True):
        if "name" in attrs:
            raise SpecError(f"node {v!r}: the attribute 'name' is reserved in spec files")
        entry = {"name": _name_json(v)}
        entry.update({str(k): _to_json(x, f"node {v!r}, attribute {k!r}") for k, x in attrs.items()})
        node_lines.append(json.dumps(entry, ensure_ascii=False, allow_nan=False))
    edge_lines = []
    for v in G:
        for u, attrs in G.pred[v].items():
            if attrs:
                entry = {"from": _name_json(u), "to": _name_json(v)}
                entry.update({str(k): _to_json(x, f"edge {u!r} -> {v!r}") for k, x in attrs.items()})
            else:
                entry = [_name_json(u), _name_json(v)]
            edge_lines.append(json.dumps(entry, ensure_ascii=False))
    out = ["{", f'  "schema_version": {SCHEMA_VERSION},']
    if G.graph:
        out.append('  "graph": ' + json.dumps(_to_json(dict(G.graph), "graph attributes"),
                                              ensure_ascii=False, sort_keys=True) + ",")
    out.append('  "nodes": [')
    out += ["    " + line + ("," if i < len(node_lines) - 1 else "") for i, line in enumerate(node_lines)]
    out.append("  ],")
    out.append('  "edges": [')
    out += ["    " + line + ("," if i < len(edge_lines) - 1 else "") for i, line in enumerate(edge_lines)]
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def write_spec(G, path) -> Path:
    """Write a graph to a spec file that :func:`read_spec` reads back to an equal graph.

    Parameters
    ----------
    G : networkx.DiGraph
        A graph in rfgraph's schema; attribute values must be JSON-like (numbers, strings,
        booleans, None, tuples/lists, dicts with string keys).
    path : str or path-like

    Returns
    -------
    pathlib.Path

    Raises
    ------
    SpecError
        A node name or attribute cannot be written as JSON (nothing is written then).
    """
    path = Path(path)
    text = dumps_spec(G)  # before opening the file, so an error leaves no half-written spec
    path.write_text(text, encoding="utf-8")
    return path
