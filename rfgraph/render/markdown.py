"""The per-layer table as a GitHub-flavoured Markdown table."""

from __future__ import annotations

from ._format import cell
from .table import view_rows

__all__ = ["to_markdown"]

# Numbers read best right-aligned; names, ops and notes left.
_NUMERIC = frozenset({"n", "jump", "rf", "start", "padding"})


def _md(text) -> str:
    # a pipe would end the cell; a newline would end the row
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(analysis_or_rows, nodes=None, columns=None, modules=None) -> str:
    """Markdown table of an analysis, or of rows from :meth:`Analysis.table`.

    Parameters
    ----------
    analysis_or_rows : Analysis or list of dict
    nodes, columns, modules
        As for :func:`rfgraph.render.table.format_table` (by default the per-stage view).

    Returns
    -------
    str

    Examples
    --------
    >>> import rfgraph
    >>> G = rfgraph.chain([("conv1", "conv", 11, 4, 0)], 227)
    >>> print(to_markdown(rfgraph.analyze(G)), end="")
    | node | op | n | jump | rf | start | padding | notes |
    | :--- | :--- | ---: | ---: | ---: | ---: | ---: | :--- |
    | input | input | 227 | 1 | 1 | 0.5 | 0 |  |
    | conv1 | conv | 55 | 4 | 11 | 5.5 | 0 |  |
    """
    data, columns = view_rows(analysis_or_rows, nodes, columns, modules)
    lines = ["| " + " | ".join(columns) + " |",
             "| " + " | ".join("---:" if c in _NUMERIC else ":---" for c in columns) + " |"]
    for r in data:
        lines.append("| " + " | ".join(_md(cell(r.get(c, ""))) for c in columns) + " |")
    return "\n".join(lines) + "\n"
