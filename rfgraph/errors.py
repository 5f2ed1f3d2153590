"""One exception hierarchy for everything rfgraph raises on bad input.

Every error carries the node and op it is about (when there is one), so a message always says
*where* the problem is and *what* is wrong, and callers can still catch one base class.
"""

from __future__ import annotations

__all__ = [
    "RFGraphError",
    "GraphError",
    "CycleError",
    "ParameterError",
    "ShapeError",
    "UnsupportedOpError",
    "ExportError",
    "SpecError",
    "RenderError",
    "MissingDependencyError",
]


class RFGraphError(Exception):
    """Base class of every error rfgraph raises on purpose.

    Parameters
    ----------
    message : str
        What is wrong (and, where possible, how to fix it).
    node : str, optional
        Name of the node the error is about.
    op : str, optional
        Op of that node.
    """

    def __init__(self, message: str, *, node=None, op=None):
        self.node = node
        self.op = op
        self.detail = message
        where = ""
        if node is not None:
            where = f"node {node!r}"
            if op is not None:
                where += f" (op {op!r})"
            where += ": "
        super().__init__(where + message)


class GraphError(RFGraphError):
    """The graph's structure is wrong: no input, unreachable node, wrong number of inputs."""


class CycleError(GraphError):
    """The graph has a cycle; a network must be a DAG."""


class ParameterError(RFGraphError, ValueError):
    """A node's parameter is missing, of the wrong type or out of range."""


class ShapeError(RFGraphError, ValueError):
    """Sizes do not fit: output size below 1, or a join whose inputs disagree on size."""


class UnsupportedOpError(RFGraphError):
    """An op has no receptive-field rule."""


class ExportError(RFGraphError):
    """A model could not be traced into a graph."""


class SpecError(RFGraphError, ValueError):
    """A graph spec file is malformed (not JSON, wrong structure, unknown node in an edge)."""


class RenderError(RFGraphError):
    """A diagram could not be drawn or written."""


class MissingDependencyError(RenderError):
    """An optional program or package needed for this output is not installed (Graphviz, Pillow)."""
