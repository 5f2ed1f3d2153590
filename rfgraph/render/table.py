"""The blog-style per-layer table, as rows and as plain text; one record in detail."""

from __future__ import annotations

from ._format import cell, collapse, per_axis
from .stages import misaligned_summary, select, stage_labels

__all__ = ["rows", "view_rows", "format_table", "to_text", "notes", "describe"]

COLUMNS = ("node", "op", "n", "jump", "rf", "start", "padding", "notes")


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
    if rec.position_dependent:
        out.append("position-dependent: rf over features, start of feature 0")
    elif not all(rec.exact):
        out.append("per-position (see bounds)")
    if rec.note:
        out.append(rec.note)
    return "; ".join(out)


def rf_cell(rec):
    """The RF size per axis, or its range over features where it varies (``15..23``).

    >>> import rfgraph, networkx as nx
    >>> G = rfgraph.chain([("coarse", "conv", 3, 2, 1)], (8,))
    >>> G.add_node("up", op="upsample", scale=2, mode="linear"); G.add_edge("coarse", "up")
    >>> a = rfgraph.analyze(G)
    >>> a["up"].rf, a["up"].rf_extent, rf_cell(a["up"])
    ((3,), ((3, 5),), '3..5')
    """
    return collapse(tuple(f"{lo}..{hi}" if lo != hi else rf for rf, (lo, hi) in zip(rec.rf, rec.rf_extent)))


def rows(analysis, nodes=None) -> list:
    """One dict per node (all nodes in topological order by default)."""
    nodes = analysis.order if nodes is None else nodes
    out = []
    for v in nodes:
        rec = analysis[v]
        out.append({
            "node": v,
            "op": rec.op,
            "n": collapse(rec.n),
            "jump": collapse(rec.jump),
            "rf": rf_cell(rec),
            "start": collapse(rec.start),
            "padding": collapse(rec.padding),
            "notes": notes(rec),
        })
    return out


def view_rows(analysis_or_rows, nodes=None, columns=None, modules=None) -> tuple:
    """``(rows, columns)`` of the default view (:mod:`rfgraph.render.stages`), or of given rows.

    Rows of an analysis gain a ``stage`` column (first) when ``modules`` is given or the
    per-stage view is chosen; ``columns``, when given, selects and orders the columns.
    """
    if isinstance(analysis_or_rows, list):
        return analysis_or_rows, COLUMNS if columns is None else tuple(columns)
    analysis = analysis_or_rows
    nodes, modules = select(analysis, nodes, modules)
    data = rows(analysis, nodes)
    if modules is not None:
        labels = stage_labels(analysis, nodes, modules)
        for r in data:
            r["stage"] = labels[r["node"]]
    if columns is None:
        columns = COLUMNS if modules is None else ("stage",) + COLUMNS
    return data, tuple(columns)


def format_table(analysis_or_rows, nodes=None, columns=None, modules=None) -> str:
    """Plain-text table with aligned columns; what ``rfgraph analyze`` prints.

    Parameters
    ----------
    analysis_or_rows : Analysis or list of dict
        An analysis, or rows (e.g. from :meth:`Analysis.table`; they may carry extra keys that
        only show when named in ``columns``).
    nodes : iterable, optional
        Nodes to include; default the per-stage view when the graph has top-level modules, else
        every node in topological order (see :func:`rfgraph.render.stages.select`). Ignored for rows.
    columns : sequence of str, optional
        Columns in order (default :data:`COLUMNS`, after a ``stage`` column in the per-stage view).
    modules : dict, optional
        ``{module qualname: node}`` the nodes stand for, shown in a ``stage`` column.

    Returns
    -------
    str
        Without a final newline. For an analysis with misaligned joins, a last line after a blank
        one names them (:func:`rfgraph.render.stages.misaligned_summary`).

    Examples
    --------
    >>> import rfgraph
    >>> G = rfgraph.chain([("conv1", "conv", 11, 4, 0)], 227)
    >>> print(rfgraph.format_table(rfgraph.analyze(G)))
    node   op     n    jump  rf  start  padding  notes
    input  input  227  1     1   0.5    0
    conv1  conv   55   4     11  5.5    0
    """
    data, columns = view_rows(analysis_or_rows, nodes, columns, modules)
    cells = [list(columns)] + [[cell(r.get(c, "")) for c in columns] for r in data]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    if not isinstance(analysis_or_rows, list):
        summary = misaligned_summary(analysis_or_rows)
        if summary:
            lines += ["", summary]
    return "\n".join(lines)


def to_text(analysis, nodes=None, modules=None) -> str:
    """:func:`format_table` as a document (ending with a newline): the ``table`` format."""
    return format_table(analysis, nodes, modules=modules) + "\n"


def _yes(flags):
    """Per-axis booleans as one word when the axes agree (None = "per-position")."""
    return per_axis(tuple("per-position" if f is None else "yes" if f else "no" for f in flags))


def describe(rec, module=None) -> str:
    """Everything a record says, one ``key  value`` line each (the CLI's ``--at`` view).

    Parameters
    ----------
    rec : RF
        A record, e.g. ``analysis["add"]``.
    module : str, optional
        The module whose output ``rec`` is, named in a first line.

    Returns
    -------
    str

    Examples
    --------
    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 2, 1)], 8)
    >>> print(describe(rfgraph.analyze(G)["c1"]))
    node        c1
    op          conv
    n           4
    jump        2
    rf          3
    start       0.5
    padding     1
    exact       yes
    contiguous  yes
    global      no
    feature 0   rows -1..1 (in the input 0..1), cols -1..1 (in the input 0..1)
    feature 3   rows 5..7 (in the input 5..7), cols 5..7 (in the input 5..7)
    """
    lines = [] if module is None else [("module", f"{module} (its output is node {rec.name})")]
    lines += [("node", cell(rec.name)), ("op", rec.op)]
    if rec.module:
        lines.append(("module", rec.module))
    for key in ("n", "jump", "rf", "start", "padding"):
        lines.append((key, per_axis(getattr(rec, key))))
    if rec.position_dependent:
        lines[-3] = ("rf", per_axis(rec.rf) + " (feature 0; " + per_axis(f"{lo}..{hi}" for lo, hi in rec.rf_extent)
                     + " over all features)")
        lines[-2] = ("start", per_axis(rec.start) + " (feature 0)")
    lines.append(("exact", _yes(rec.exact)))
    lines.append(("contiguous", _yes(rec.contiguous)))
    if any(c is False for c in rec.contiguous):
        gaps = ["-" if not g else ",".join(f"{lo}" if lo == hi else f"{lo}..{hi}" for lo, hi in g)
                for g in rec.gaps]
        lines.append(("gaps", " x ".join(gaps) + " (pixel offsets from the RF's first pixel)"))
    glob = _yes(rec.is_global)
    src = sorted({str(g) for g in rec.global_from if g is not None})
    lines.append(("global", glob + (f" (from {', '.join(src)})" if src else "")))
    if rec.is_join:
        lines.append(("join", f"{rec.op} of {len(rec.branches)}, rf range "
                      + per_axis(f"{lo}..{hi}" for lo, hi in rec.rf_range)))
        where = ""
        if rec.is_misaligned and any(rec.misaligned_at):
            where = " (at feature " + per_axis(rec.misaligned_at) + ", where the offsets below are measured)"
        lines.append(("misaligned", "no" if not rec.is_misaligned
                      else "by " + per_axis(rec.misalignment) + " pixels" + where))
        for b in rec.branches:
            lines.append(("  branch", f"{cell(b.node)}: rf {per_axis(b.rf)}, start "
                          f"{per_axis(b.start)}, offset {per_axis(b.offset)}"))
    if rec.note:
        lines.append(("note", rec.note))
    if rec.source:
        lines.append(("source", rec.source))
    # the first and last feature's exact bounds: what the border does to the RF
    names = ("rows", "cols") if rec.naxes == 2 else tuple(f"axis {a}" for a in range(rec.naxes))
    for label, i in (("feature 0", 0), (None, -1)):
        parts = []
        for ax in range(rec.naxes):
            lo_u, hi_u = rec.bounds(ax, clip=False)
            lo_c, hi_c = rec.bounds(ax, clip=True)
            seen = "nothing" if lo_c[i] < 0 else f"{lo_c[i]}..{hi_c[i]}"
            parts.append(f"{names[ax]} {lo_u[i]}..{hi_u[i]} (in the input {seen})")
        idx = "x".join(str(n - 1) for n in rec.n) if label is None else None
        if label is None and all(n == rec.n[0] for n in rec.n):
            idx = str(rec.n[0] - 1)
        if label is None and all(n == 1 for n in rec.n):
            break
        lines.append((label or f"feature {idx}", ", ".join(parts)))
    width = max(len(k) for k, _ in lines)
    return "\n".join(f"{k.ljust(width)}  {v}".rstrip() for k, v in lines)
