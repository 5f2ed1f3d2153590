"""The blog-style per-layer table, as rows and as plain text."""

from __future__ import annotations

__all__ = ["rows", "format_table", "notes"]

COLUMNS = ("node", "op", "n", "jump", "rf", "start", "padding", "notes")


def _collapse(values):
    """One value when every axis agrees, else the tuple."""
    return values[0] if all(v == values[0] for v in values) else tuple(values)


def notes(rec) -> str:
    """Short flags for a record: join, misaligned, global, gaps, approximate summary."""
    out = []
    if rec.is_join:
        out.append(f"{rec.op} of {len(rec.branches)}")
        if rec.is_misaligned:
            out.append("MISALIGNED by " + "x".join(str(m) for m in rec.misalignment))
    if any(rec.global_from[ax] is not None for ax in range(rec.naxes)):
        src = {g for g in rec.global_from if g is not None}
        out.append("global (from " + ", ".join(map(str, sorted(src, key=str))) + ")")
    elif any(rec.is_global):
        out.append("covers input")
    if any(c is False for c in rec.contiguous):
        out.append("gaps")
    if not all(rec.exact):
        out.append("per-position (see bounds)")
    if rec.note:
        out.append(rec.note)
    return "; ".join(out)


def rows(analysis, nodes=None) -> list:
    """One dict per node (all nodes in topological order by default)."""
    nodes = analysis.order if nodes is None else nodes
    out = []
    for v in nodes:
        rec = analysis[v]
        out.append({
            "node": v,
            "op": rec.op,
            "n": _collapse(rec.n),
            "jump": _collapse(rec.jump),
            "rf": _collapse(rec.rf),
            "start": _collapse(rec.start),
            "padding": _collapse(rec.padding),
            "notes": notes(rec),
        })
    return out


def _cell(v):
    if isinstance(v, tuple):
        return "x".join(_cell(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_table(analysis_or_rows, nodes=None) -> str:
    """Plain-text table with aligned columns.

    >>> import rfgraph
    >>> G = rfgraph.chain([("conv1", "conv", 11, 4, 0)], 227)
    >>> print(rfgraph.format_table(rfgraph.analyze(G)))
    node   op     n    jump  rf  start  padding  notes
    input  input  227  1     1   0.5    0
    conv1  conv   55   4     11  5.5    0
    """
    data = analysis_or_rows if isinstance(analysis_or_rows, list) else rows(analysis_or_rows, nodes)
    cells = [list(COLUMNS)] + [[_cell(r[c]) for c in COLUMNS] for r in data]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)
