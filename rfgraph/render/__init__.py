"""Renderers: one module per output format, found by name in :data:`FORMATS`.

Text formats are pure functions ``render(analysis, nodes=None, modules=None) -> str`` returning a
whole document (ending with a newline); by default they show the per-stage view of
:mod:`rfgraph.render.stages`, the same rows ``rfgraph analyze`` prints. Diagram formats are
written to a file by :func:`rfgraph.render.graphviz.write_diagram` (the only one that runs a
program). Adding a format is one module here and one entry in :data:`FORMATS`; the command
line's ``--format`` choices come from this table.

>>> import rfgraph
>>> from rfgraph.render import get_format
>>> fmt = get_format("csv")
>>> fmt.kind, fmt.render(rfgraph.analyze(rfgraph.chain([("c1", "conv", 3, 2, 1)], 8))).splitlines()[2]
('text', 'c1,conv,4,2,3,0.5,1,')
>>> format_names("diagram")
('svg', 'png', 'pdf', 'dot')
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from ..errors import RenderError
from .csv import to_csv
from .graphviz import DIAGRAM_FORMATS, write_diagram
from .json import to_json
from .markdown import to_markdown
from .table import to_text

__all__ = ["Format", "FORMATS", "get_format", "format_names"]


class Format(NamedTuple):
    """One output format: its name, ``"text"`` or ``"diagram"``, the function, a summary."""

    name: str
    kind: str
    render: Callable
    summary: str


#: Every output format of an analysis, keyed by name (the CLI's ``--format`` values).
FORMATS = {f.name: f for f in (
    Format("table", "text", to_text, "aligned plain-text table"),
    Format("markdown", "text", to_markdown, "GitHub-flavoured Markdown table"),
    Format("json", "text", to_json, "JSON document with a schema_version"),
    Format("csv", "text", to_csv, "CSV with a header row"),
    *(Format(name, "diagram", write_diagram, f"Graphviz diagram ({name})") for name in DIAGRAM_FORMATS),
)}


def get_format(name, kind=None) -> Format:
    """The format called ``name`` (of ``kind`` ``"text"`` or ``"diagram"``, when given).

    Raises
    ------
    RenderError
        No such format (of that kind); the message lists the known ones.

    Examples
    --------
    >>> get_format("json").render.__name__
    'to_json'
    >>> get_format("gif")
    Traceback (most recent call last):
    ...
    rfgraph.errors.RenderError: unknown format 'gif'; choose one of table, markdown, json, csv, svg, png, pdf, dot
    """
    fmt = FORMATS.get(name)
    if fmt is None or kind is not None and fmt.kind != kind:
        what = "format" if kind is None else f"{kind} format"
        raise RenderError(f"unknown {what} {name!r}; choose one of {', '.join(format_names(kind))}")
    return fmt


def format_names(kind=None) -> tuple:
    """Names of the formats (of ``kind`` ``"text"`` or ``"diagram"``), in table order."""
    return tuple(name for name, f in FORMATS.items() if kind is None or f.kind == kind)
