"""The zoo's report: summary rows (:class:`rfgraph.tools.runner.ZooRow`) as a table, Markdown or JSON.

Pure functions returning strings, in the rows' order (the zoo lists models sorted by name within
each family); nothing here imports torch.

Examples
--------
>>> from types import SimpleNamespace as Row
>>> r = Row(model="net", family="classification", input_shape=(3, 32, 32), ok=True, module="conv2",
...         output="conv2", n=(8, 8), rf=(5, 5), jump=(2, 2), start=(0.5, 0.5), padding=(2, 2),
...         is_global=(False, False), global_from="", out_global_from="", nodes=3, misaligned=0,
...         trace_s=0.01, analyze_s=0.001, peak_rss_mb=100.0, verify={})
>>> row = table_rows([r])[0]
>>> row["final map"], row["rf"], row["start"], row["global"]
('conv2', '5', '0.5', 'no')
>>> format_rows([r]).splitlines()[-1].split()[:5]
['net', '32x32', 'conv2', '8', '5']
"""

from __future__ import annotations

import json
from dataclasses import asdict, is_dataclass

from ._format import per_axis

__all__ = ["COLUMNS", "table_rows", "format_rows", "to_markdown", "to_json", "coverage", "coverage_markdown"]

COLUMNS = ("model", "input", "final map", "n", "rf", "jump", "start", "padding", "global", "output global from",
           "nodes", "misaligned", "trace s", "analyze s", "peak MB")


def _v(values):
    """:func:`rfgraph.render._format.per_axis`, and an empty cell for a row without the values."""
    return per_axis(values) if values else ""


def _global(row):
    if not row.is_global or not any(row.is_global):
        return "no"
    axes = "" if all(row.is_global) else " (axes " + ",".join(str(i) for i, g in enumerate(row.is_global) if g) + ")"
    return f"yes{axes}, from {row.global_from}" if row.global_from else f"covers input{axes}"


def _shape(shape):
    return "x".join(map(str, shape[1:]))


def _verify_cell(v):
    if not v:
        return ""
    if v["status"] == "ok":
        return f"ok at {_shape(v['input'])}"
    if v["status"] == "mismatch":
        return f"MISMATCH at {_shape(v['input'])} ({len(v['mismatches'])})"
    return f"{v['status']}: {v['reason']}"


def _columns(verified, rows=()):
    """The columns shown: ``stages`` for models with ``feature_info`` stages (timm), ``verify``
    when checked, ``error`` when some model failed."""
    stages = any(getattr(r, "feature_stages", None) for r in rows)
    return (COLUMNS + (("stages",) if stages else ()) + (("verify",) if verified else ())
            + (("error",) if any(not r.ok for r in rows) else ()))


def feature_stages_cell(row) -> str:
    """A timm model's ``feature_info`` stages: ``module /reduction: rf/jump`` each, or
    ``global`` (from a global op, or covering the input).

    >>> from types import SimpleNamespace as Row
    >>> feature_stages_cell(Row(feature_stages=[("stem", 4, (4, 4), (4, 4), (2.0, 2.0), False, ""),
    ...                                         ("stages.3", 32, (900, 900), (0, 0), (0, 0), True, "attn")]))
    'stem /4: 4/4; stages.3 /32: global'
    """
    return "; ".join(f"{m} /{red}: {'global' if glob else _v(rf) + '/' + _v(jump)}"
                     for m, red, rf, jump, _start, glob, _src in getattr(row, "feature_stages", None) or ())


def table_rows(rows, verified=False) -> list:
    """Rows for :func:`rfgraph.render.table.format_table` / :func:`rfgraph.render.markdown.to_markdown`."""
    out = []
    for r in rows:
        if not r.ok:
            out.append({"model": r.model, "input": _shape(r.input_shape), "final map": "ERROR", "error": r.error})
            continue
        d = {"model": r.model, "input": _shape(r.input_shape), "final map": r.module or r.output,
             "n": _v(r.n), "rf": _v(r.rf), "jump": _v(r.jump), "start": _v(r.start), "padding": _v(r.padding),
             "global": _global(r), "output global from": r.out_global_from or "-", "nodes": r.nodes,
             "misaligned": r.misaligned, "trace s": f"{r.trace_s:.2f}", "analyze s": f"{r.analyze_s:.3f}",
             "peak MB": f"{r.peak_rss_mb:.0f}", "stages": feature_stages_cell(r)}
        if verified:
            d["verify"] = _verify_cell(r.verify)
        out.append(d)
    return out


_PREFIXED = ("timm", "smp")  # families that are a source of their own (rfgraph analyze timm:NAME)


def format_rows(rows, verified=False) -> str:
    """The plain-text table ``rfgraph zoo`` prints. When the rows come from several sources
    (``--source all``), timm's and smp's models are named as targets (``timm:resnet18``), so
    torchvision's resnet18 and timm's stay apart.

    >>> from types import SimpleNamespace as Row
    >>> rows = [Row(model=m, family=f, input_shape=(3, 8, 8), ok=False, error="E")
    ...         for m, f in (("resnet18", "classification"), ("resnet18", "timm"))]
    >>> [line.split()[0] for line in format_rows(rows).splitlines()[1:]]
    ['resnet18', 'timm:resnet18']
    """
    from .table import format_table

    table = table_rows(rows, verified)
    if len({r.family if r.family in _PREFIXED else "torchvision" for r in rows}) > 1:
        for r, d in zip(rows, table):
            if r.family in _PREFIXED:
                d["model"] = f"{r.family}:{r.model}"
    return format_table(table, columns=_columns(verified, rows))


def _stage_line(r):
    parts = []
    for m, rf, jump, glob, src in r.stages:
        if src:
            parts.append(f"{m} global")
        else:
            parts.append(f"{m} {_v(rf)}/{_v(jump)}" + (" (covers input)" if glob else ""))
    return ", ".join(parts)


def _header(rows, info):
    """The bullet list about the run (machine, models, times, memory)."""
    ok = [r for r in rows if r.ok]
    tot = {k: sum(getattr(r, k) for r in ok) for k in ("build_s", "trace_s", "analyze_s")}
    m = info.get("machine", {})
    extra = "".join(f", {label} {m[k]}" for k, label in (("timm", "timm"), ("segmentation_models_pytorch", "smp"),
                                                          ("ray", "ray")) if k in m)
    out = [f"- machine: {m.get('cpu', '?')}, {m.get('cpus_usable', m.get('cpus', '?'))} usable CPUs, "
           f"Python {m.get('python', '?')}, torch {m.get('torch', '?')}, torchvision {m.get('torchvision', '?')}{extra}"]
    if info.get("date"):
        out.append(f"- date: {info['date']}")
    out.append(f"- models: {len(rows)} ({len(ok)} analysed, {len(rows) - len(ok)} failed)")
    if info.get("resumed"):
        k = info['resumed']
        out.append(f"- {k} row{'' if k == 1 else 's'} read back from an earlier run (their times are that run's)")
    if "wall_s" in info:
        backend = {"ray": " (Ray tasks)", "process": " (worker processes)"}.get(info.get("backend"), "")
        out.append(f"- sweep wall time: {info['wall_s']:.1f} s in {info.get('jobs', 1)} process(es){backend}"
                   + (f", timeout {info['timeout_s']:g} s per model" if info.get("timeout_s") else "")
                   + (f" (importing torch and torchvision before it: {info['import_s']:.1f} s)"
                      if "import_s" in info else ""))
    out.append(f"- time per phase (sum over models): build {tot['build_s']:.1f} s, trace {tot['trace_s']:.1f} s, "
               f"analyze {tot['analyze_s']:.1f} s" + (f"; CPU {sum(getattr(r, 'cpu_s', 0) for r in rows):.1f} s"
                                                     if any(getattr(r, "cpu_s", 0) for r in rows) else ""))
    if info.get("peak_rss_mb"):
        out.append(f"- peak RSS: {info['peak_rss_mb']:.0f} MB")
    return out + [""]


_LEGEND = (
    "Columns: the **final feature map** is the output of the last module that torch reports as a "
    "spatial map with more than one feature per axis; `n`, `rf` (RF size, input pixels), `jump` "
    "(effective stride), `start` (centre of feature 0's RF; pixel i spans [i, i+1)) and `padding` "
    "(effective padding, rf/2 - start) are its numbers, one value when all axes agree. `global`: "
    "every feature depends on the whole input, and the op that made it so; `output global from`: "
    "the op that makes the model's output global. `misaligned`: joins whose branches' RF centres "
    "differ. `stages` (timm): each `feature_info` stage's module, reduction and rf/jump (or global). "
    "Times are seconds (build = constructing the model on the meta device); `peak MB` is the "
    "process' peak RSS while the model was handled.")


def _family_section(fam, rows, verified):
    from .markdown import to_markdown as md_table

    out = [f"## {fam}", "", md_table(table_rows(rows, verified), columns=_columns(verified, rows)).rstrip(), ""]
    out += ["<details><summary>RF / jump at each stage (top-level module; 'global': after a global op)</summary>", ""]
    out += [f"- **{r.model}**: {_stage_line(r)}" for r in rows if r.ok]
    out += ["", "</details>", ""]
    mis = [r for r in rows if r.misaligned]
    if mis:
        out += ["Misaligned joins: " + "; ".join(
            f"{r.model} ({r.misaligned}: {', '.join(r.misaligned_nodes[:4])}{', ...' if r.misaligned > 4 else ''})"
            for r in mis), ""]
    return out


def to_markdown(rows, info=None, title="rfgraph zoo", intro="") -> str:
    """The results as a Markdown document: the coverage (how many exact, global by reason,
    failed by error), a table per family (in the order the families first appear in ``rows``;
    timm's with its ``feature_info`` stages), stage RFs, verification, failures. ``intro``: a
    paragraph after the run's details."""
    info = info or {}
    verified = any(r.verify for r in rows)
    out = [f"# {title}", ""]
    if info.get("command"):
        out += [f"Command: `{info['command']}`", ""]
    if info:
        out += _header(rows, info)
    if intro:
        out += [intro.strip(), ""]
    out += [_LEGEND, ""]
    if len(rows) > 1:
        out += [coverage_markdown(rows).rstrip(), ""]
    for fam in dict.fromkeys(r.family for r in rows):
        out += _family_section(fam, [r for r in rows if r.family == fam], verified)
    if verified:
        out += _verify_section(rows)
    failed = [r for r in rows if not r.ok]
    if failed:
        out += ["## Failed", ""] + [f"- {r.model}: {r.error}" for r in failed] + [""]
    return "\n".join(out).rstrip() + "\n"


def _verify_row(r):
    """The verification table's lines for one model: one per checked module, or its reason."""
    v = r.verify
    if v["status"] in ("skipped", "error"):
        return [f"| {r.model} | {_shape(r.input_shape)} | | | | | {v['status']}: {v['reason']} | {v['seconds']} |"]
    out = []
    for c in v["checks"]:
        rf = "global" if all(c["is_global"]) else f"{_v(c['rf'])} / {_v(c['jump'])}"
        hull = ", ".join(f"{lo}..{hi}" for lo, hi in c["measured"])
        inside = "yes" if all(c["interior"]) else "no" if not any(c["interior"]) else "partly"
        if c["covers"]:
            inside = "covers input"
        out.append(f"| {r.model} | {_shape(v['input'])} | {c['module']} | {rf} | {hull} | {inside} | "
                   f"{'ok' if c['ok'] else 'MISMATCH'} | {v['seconds']} |")
    return out


def _verify_section(rows):
    vs = [r for r in rows if r.verify]
    by = {}
    for r in vs:
        by.setdefault(r.verify["status"], []).append(r)
    out = ["## Verification against gradient support", "",
           f"{len(by.get('ok', []))} verified, {len(by.get('mismatch', []))} with mismatches, "
           f"{len(by.get('skipped', []))} skipped, {len(by.get('error', []))} errors.", "",
           "Each model is built on the CPU in float64 (weights=None, then positive weights, BN as identity, "
           "max pooling as average pooling, saturating activations swapped) and the gradient support of the "
           "centre feature and its neighbour is compared with rfgraph at the final feature map and at the "
           "last non-global map: exact bounds always, `rf`/`start`/`jump` where the support is interior, and "
           "`is_global` (a global map's support must cover the input).", "",
           "| model | input | module | rfgraph rf / jump | measured hull (centre feature) | interior | result | s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in vs:
        out += _verify_row(r)
    out.append("")
    bad = [r for r in vs if r.verify["mismatches"]]
    if bad:
        out += ["### Mismatches", ""]
        for r in bad:
            out += [f"- {r.model}: " + "; ".join(r.verify["mismatches"][:6])]
        out.append("")
    return out


def to_json(rows, info=None) -> str:
    """The results as JSON: ``{"schema_version": 1, "info": {...}, "models": [row, ...]}``."""
    models = [asdict(r) if is_dataclass(r) else dict(vars(r)) for r in rows]
    doc = {"schema_version": 1, "info": info or {}, "models": models}
    return json.dumps(doc, indent=1, default=str) + "\n"


def _cause(text):
    """A reason or an error without the model-specific parts (numbers, quoted names, sizes)."""
    import re

    text = str(text).split(" at /", 1)[0]  # the user's source line
    text = re.sub(r"'[^']*'", "'…'", text)
    text = re.sub(r"\([^()]*\d[^()]*\)", "(…)", text)
    return re.sub(r"\d+", "N", text)[:160]


def coverage(rows) -> dict:
    """How many rows are exact, global (by reason) and failed (by error), with the models of each.

    >>> from types import SimpleNamespace as Row
    >>> rows = [Row(model="a", ok=True, is_global=(False,), global_why=""),
    ...         Row(model="b", ok=True, is_global=(True,), global_why="aten::mean: mean over spatial positions"),
    ...         Row(model="c", ok=False, error="ExportError: boom 3")]
    >>> c = coverage(rows)
    >>> c["exact"], c["global"], c["failed"]
    (1, {'aten::mean: mean over spatial positions': ['b']}, {'ExportError: boom N': ['c']})
    """
    out = {"models": len(rows), "exact": 0, "global": {}, "failed": {}}
    for r in rows:
        if not r.ok:
            out["failed"].setdefault(_cause(r.error), []).append(r.model)
        elif r.is_global and any(r.is_global):
            why = _cause(r.global_why) if getattr(r, "global_why", "") else "covers the input"
            out["global"].setdefault(why, []).append(r.model)
        else:
            out["exact"] += 1
    for key in ("global", "failed"):
        out[key] = dict(sorted(out[key].items(), key=lambda kv: (-len(kv[1]), kv[0])))
    return out


def coverage_markdown(rows) -> str:
    """:func:`coverage` as Markdown: counts, then each reason with (up to 8 of) its models."""
    c = coverage(rows)
    n_global = sum(len(v) for v in c["global"].values())
    n_failed = sum(len(v) for v in c["failed"].values())
    lines = ["## Coverage", "",
             f"{c['models']} models: **{c['models'] - n_failed} analysed** ({c['exact']} with a local final map, "
             f"{n_global} whose final map is global), **{n_failed} failed**.", ""]
    for title, key in (("Global final maps, by reason", "global"), ("Failures, by error", "failed")):
        if not c[key]:
            continue
        lines += [f"### {title}", "", "| models | reason | examples |", "| --- | --- | --- |"]
        for why, models in c[key].items():
            ex = ", ".join(models[:8]) + (", …" if len(models) > 8 else "")
            lines.append(f"| {len(models)} | {why.replace('|', '/')} | {ex} |")
        lines.append("")
    return "\n".join(lines) + "\n"
