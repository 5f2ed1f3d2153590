"""What an analysis shows in Jupyter: its stage table as HTML, its diagram as SVG on request.

``Analysis._repr_html_`` calls :func:`to_html_table`; ``analysis.diagram()`` returns a
:class:`Diagram`, whose ``_repr_svg_`` runs Graphviz's ``dot`` (through
:func:`rfgraph.render.graphviz.write_diagram`) only when the notebook displays it.
"""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

from ._format import cell
from .table import view_rows

__all__ = ["to_html_table", "Diagram"]

_NUMERIC = frozenset({"n", "jump", "rf", "start", "padding"})


def to_html_table(analysis_or_rows, nodes=None, columns=None, modules=None) -> str:
    """The per-stage table (or the rows asked for) as one HTML ``<table>``, every cell escaped.

    >>> import rfgraph
    >>> a = rfgraph.analyze(rfgraph.chain([("c<1>", "conv", 3, 2, 1)], 8))
    >>> t = to_html_table(a)
    >>> t.startswith("<table") and "<td>c&lt;1&gt;</td>" in t and "<th>rf</th>" in t
    True
    """
    data, columns = view_rows(analysis_or_rows, nodes, columns, modules)
    out = ['<table class="rfgraph">', "<thead><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns)
           + "</tr></thead>", "<tbody>"]
    for r in data:
        tds = []
        for c in columns:
            style = ' style="text-align:right"' if c in _NUMERIC else ""
            tds.append(f"<td{style}>{html.escape(cell(r.get(c, '')))}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out) + "\n"


class Diagram:
    """The annotated diagram of an analysis; Jupyter shows it as SVG (needs Graphviz's ``dot``).

    Attributes
    ----------
    source : str
        The DOT text (:func:`rfgraph.to_dot` with the options given).
    """

    def __init__(self, analysis, **options):
        from .dot import to_dot

        self._analysis = analysis
        self._options = options
        self.source = to_dot(analysis, **options)

    def svg(self) -> str:
        """The SVG text Graphviz draws (raises :class:`~rfgraph.errors.MissingDependencyError`
        without ``dot``)."""
        from .graphviz import write_diagram

        with tempfile.TemporaryDirectory() as tmp:
            return write_diagram(self._analysis, Path(tmp) / "diagram.svg", **self._options) \
                .read_text(encoding="utf-8")

    def _repr_svg_(self):
        return self.svg()

    def __repr__(self):
        return f"<rfgraph diagram: {self.source.count(chr(10))} lines of DOT; display it in Jupyter>"
