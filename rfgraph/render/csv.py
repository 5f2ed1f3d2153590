"""The per-layer table as CSV (one row per node; per-axis values written ``7x1`` as in the table)."""

from __future__ import annotations

import csv as _csv
import io

from ._format import cell
from .table import view_rows

__all__ = ["to_csv"]


def to_csv(analysis_or_rows, nodes=None, columns=None, modules=None) -> str:
    """CSV text of an analysis, or of rows from :meth:`Analysis.table`.

    Parameters
    ----------
    analysis_or_rows : Analysis or list of dict
    nodes, columns, modules
        As for :func:`rfgraph.render.table.format_table` (by default the per-stage view).

    Returns
    -------
    str
        With a header row and ``\\n`` line endings (the same text on every platform).

    Examples
    --------
    >>> import rfgraph
    >>> G = rfgraph.chain([("conv1", "conv", (1, 7), 1, (0, 3))], 16)
    >>> print(to_csv(rfgraph.analyze(G)), end="")
    node,op,n,jump,rf,start,padding,notes
    input,input,16,1,1,0.5,0,
    conv1,conv,16,1,1x7,0.5,0x3,
    """
    data, columns = view_rows(analysis_or_rows, nodes, columns, modules)
    buf = io.StringIO()
    w = _csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in data:
        w.writerow([cell(r.get(c, "")) for c in columns])
    return buf.getvalue()
