"""An interactive report: one self-contained HTML file (no network, no CDN) to open from disk.

:func:`to_html` is pure: it takes the analysis and, optionally, the diagrams Graphviz drew from
:func:`rfgraph.to_dot` (the CLI runs ``dot``, see :func:`rfgraph.render.graphviz.report_views`),
a picture and an ERF result, and returns the page. The page has

- the diagram with pan (drag) and zoom (wheel, buttons), search by name, and several views of it
  (the default view, each module depth, every node): a frame's ``-`` collapses that module, a
  box's ``+`` expands it (the page switches to the view that draws it so), as does the panel;
- a panel for the clicked node (a diagram box, a module's frame or a table row): its numbers per
  axis, branches and their centre offsets, misalignment, gaps, notes and approximations, and a
  canvas of the input (or of the user's picture, resized to the input grid) where the exact pixel
  set of the feature under the mouse is drawn: dilation holes stay holes, a join draws each
  branch's footprint in its colour (a 1x3 and a 3x1 branch make a cross);
- the ERF heatmap and its numbers, when an ERF result is given;
- a sortable table of every node.

Every name reaches the page as JSON data or through ``textContent`` (never as markup), the JSON is
embedded with ``<`` (so ``</``) escaped, and scripts found in the SVG are dropped. Per-feature bounds are
embedded for every node; along an axis longer than ``max_features`` features they are subsampled
(every k-th feature, said in the panel), which keeps a 1024x1024 report a few megabytes. The exact
pixel sets (:meth:`Analysis.pixels <rfgraph.engine.result.Analysis.pixels>`) are embedded, as
intervals, only along axes where some feature has holes; elsewhere they are the clipped bounds.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from typing import NamedTuple

from ._format import per_axis

__all__ = ["to_html", "node_for_title", "View"]

#: A feature whose pixel set has more intervals than this along an axis is drawn as its hull.
MAX_INTERVALS = 512


class View(NamedTuple):
    """One diagram of the report: its label, the SVG Graphviz drew (None: not drawn) and a note
    (why it was not drawn, or how it was laid out)."""

    label: str
    svg: str | None
    note: str = ""


def node_for_title(analysis, title):
    """The analysis node a diagram element stands for, from its Graphviz ``<title>`` (the DOT id):
    a node's own name, ``module M`` or ``cluster M`` (module ``M``'s output), ``fold A..B`` (the
    last folded module's output). ``None`` for anything else (edges, the legend).

    >>> import rfgraph
    >>> a = rfgraph.analyze(rfgraph.chain([("c1", "conv", 3, 2, 1)], 8))
    >>> node_for_title(a, "c1"), node_for_title(a, "c1->c2"), node_for_title(a, "legend")
    ('c1', None, None)
    """
    names = {str(v): v for v in analysis.order}
    if title in names:
        return names[title]
    kind, _, rest = title.partition(" ")
    if kind == "fold" and ".." in rest:
        rest = rest.split("..")[-1]
    if kind in ("module", "cluster", "fold") and rest:
        try:
            return analysis.module(rest).name
        except KeyError:
            return names.get(rest)
    return None


def _value(x):
    """A JSON-safe value: tuples as lists, numpy scalars as numbers, inf as a string."""
    if isinstance(x, (list, tuple)):
        return [_value(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _value(v) for k, v in x.items()}
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def _pixel_sets(analysis, v, ax, step):
    """Per sampled feature, the input pixels it reads along ``ax`` as flat inclusive intervals
    ``[lo0, hi0, lo1, hi1, ...]`` (empty: only padding); None when every feature reads its clipped
    bounds (no holes along this axis), which the page then uses."""
    rec = analysis[v]
    if rec.contiguous[ax] is True:
        return None
    out, holes = [], False
    for i in range(0, rec.n[ax], step):
        runs = analysis.pixels(v, ax, i)
        holes = holes or len(runs) > 1
        if len(runs) > MAX_INTERVALS:
            runs = ((runs[0][0], runs[-1][1]),)
        out.append([int(x) for r in runs for x in r])
    return out if holes else None


def _shaped_joins(analysis):
    """Per node: a join upstream of it (or it) joins branches of crossing shapes (one taller, one
    wider), so past it the product of per-axis pixel sets is an upper bound of the 2-D RF."""
    past = {}
    G = analysis.graph
    for v in analysis.order:
        rec = analysis[v]
        here = False
        if rec.is_join and rec.naxes == 2:
            rfs = [b.rf for b in rec.branches if not all(analysis[b.node].is_global)]
            here = any(a[0] > b[0] and a[1] < b[1] for a in rfs for b in rfs)
        past[v] = here or any(past[u] for u in G.pred[v])
    return past


def _node_data(analysis, v, mis, max_features, past):
    rec = analysis[v]
    attrs = analysis.graph.nodes[v]
    try:
        label = analysis.op(v).text(attrs, rec.naxes)
    except Exception:  # a label is for people; never let it break the report
        label = rec.op
    approx = []
    if not all(rec.exact):
        approx.append("the RF depends on the position (upsampling, adaptive pooling, transposed conv, "
                      "cropping): rf and start are a summary; the bounds drawn are exact per feature")
    if rec.rf_range is not None:
        spans = [f"{r[0]}..{r[1]}" if isinstance(r, (list, tuple)) else str(r) for r in rec.rf_range]
        approx.append("the rf differs between features (a join's branches, clipped at the border): "
                      + " x ".join(spans))
    if any(rec.is_global):
        approx.append("global along " + ", ".join(f"axis {ax}" for ax, g in enumerate(rec.is_global) if g)
                      + ": every feature sees the whole input")
    bounds, steps, pix = [], [], []
    for ax in range(rec.naxes):
        n = rec.n[ax]
        step = max(1, math.ceil(n / max_features))
        lo_u, hi_u = analysis.bounds(v, ax, clip=False)
        lo_c, hi_c = analysis.bounds(v, ax, clip=True)
        bounds.append([a[::step].tolist() for a in (lo_u, hi_u, lo_c, hi_c)])
        steps.append(step)
        pix.append(_pixel_sets(analysis, v, ax, step) if rec.naxes <= 2 else None)
    m = mis.get(v)
    join = rec.is_join and len(rec.branches) > 1
    return {
        "name": str(v), "op": rec.op, "label": label, "module": rec.module, "source": rec.source,
        "n": _value(rec.n), "jump": _value(rec.jump), "rf": _value(rec.rf), "start": _value(rec.start),
        "padding": _value(rec.padding), "exact": _value(rec.exact), "contiguous": _value(rec.contiguous),
        "gaps": _value(rec.gaps), "global": _value(rec.is_global), "global_from": _value(rec.global_from),
        "note": rec.note or "", "misaligned_at": _value(rec.misaligned_at), "approx": approx,
        "cells": {k: per_axis(getattr(rec, k)) for k in ("n", "jump", "rf", "start", "padding")},
        "branches": [{"node": str(b.node), "rf": _value(b.rf), "start": _value(b.start),
                      "offset": _value(b.offset)} for b in rec.branches],
        "join": join, "past_join": bool(past[v]) and not join,
        "misalignment": None if m is None else {"offsets": _value(m.offsets), "note": m.note or "",
                                                "branches": _value(m.branches)},
        "bounds": bounds, "step": steps, "pix": pix,
    }


def _modules_in_order(analysis):
    """Every module qualname (and each of its parents), in order of first appearance."""
    seen = {}
    for v in analysis.order:
        m = analysis.graph.nodes[v].get("module")
        if isinstance(m, str) and m:
            parts = m.split(".")
            for k in range(1, len(parts) + 1):
                seen.setdefault(".".join(parts[:k]), None)
    return list(seen)


def _fold_members(modules, first, last):
    """The sibling modules a ``fold first..last`` box stands for: ``first``, ``last`` and those
    between them under the same parent."""
    parent = first.rpartition(".")[0]
    depth = first.count(".")
    sibs = [m for m in modules if m.count(".") == depth and m.rpartition(".")[0] == parent]
    if first in sibs and last in sibs and sibs.index(first) <= sibs.index(last):
        return sibs[sibs.index(first):sibs.index(last) + 1]
    return [first, last]


def _owners(analysis, titles, folds=None):
    """For nodes not drawn themselves, the node of the diagram element holding them: the innermost
    drawn module box (``module M``), fold or frame (``cluster M``) whose module contains the node's."""
    drawn = set(titles.values())
    boxes = {}
    for t, v in titles.items():
        kind, _, m = t.partition(" ")
        if kind in ("module", "cluster"):
            boxes.setdefault(m, v)
    for t, mods in (folds or {}).items():
        for m in mods:
            boxes.setdefault(m, titles[t])
    out = {}
    for v in analysis.order:
        mod = analysis.graph.nodes[v].get("module")
        if str(v) in drawn or not isinstance(mod, str):
            continue
        best = max((m for m in boxes if mod == m or mod.startswith(m + ".")), key=len, default=None)
        if best is not None:
            out[str(v)] = boxes[best]
    return dict(sorted(out.items()))


def _view_data(analysis, view, modules):
    """What the page needs to know about one view: which element stands for which node, which
    modules are boxes, folds and frames in it, and how many boxes it draws."""
    titles = {}
    for t in re.findall(r"<title>(.*?)</title>", view.svg or "", flags=re.S):
        t = html.unescape(t)
        v = node_for_title(analysis, t)
        if v is not None:
            titles[t] = str(v)
    boxes, clusters, folds = [], [], {}
    for t in titles:
        kind, _, rest = t.partition(" ")
        if kind == "module":
            boxes.append(rest)
        elif kind == "cluster":
            clusters.append(rest)
        elif kind == "fold" and ".." in rest:
            first, _, last = rest.partition("..")
            folds[t] = _fold_members(modules, first, last)
    items = len(re.findall(r'<g id="[^"]*" class="node"', view.svg or ""))
    return {"label": view.label, "note": view.note, "drawn": view.svg is not None, "items": items,
            "titles": dict(sorted(titles.items())), "boxes": sorted(boxes), "clusters": sorted(clusters),
            "folds": dict(sorted(folds.items())), "owners": _owners(analysis, titles, folds)}


def _clean_svg(svg, prefix=""):
    """Graphviz's SVG without its XML prolog and doctype, and without any script; element ids
    prefixed so that several diagrams in one page never share one."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    svg = re.sub(r"<script\b.*?</script\s*>", "", svg, flags=re.S | re.I)
    svg = re.sub(r"\son\w+\s*=\s*(\"[^\"]*\"|'[^']*')", "", svg)
    if prefix:
        svg = re.sub(r'(\sid=")', r"\g<1>" + prefix, svg)
        svg = re.sub(r"url\(#", "url(#" + prefix, svg)
        svg = re.sub(r'(href=")#', r"\g<1>#" + prefix, svg)
    return svg.strip()


def _json(data) -> str:
    """JSON safe inside a ``<script>`` element: every ``<`` (so ``</script``, ``<!--``) and ``>``, ``&``
    as JSON escapes, which ``JSON.parse`` reads back unchanged."""
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _image_uri(analysis, image):
    """The picture resized to the input grid, as a PNG data URI (overlay's loader and errors)."""
    from .overlay import _image, _png_base64

    return "data:image/png;base64," + _png_base64(_image(analysis, image))


def _erf_data(erf):
    """The ERF section: the picture :mod:`rfgraph.render.erf_plot` draws, as a data URI, and the
    numbers."""
    from .erf_plot import erf_figure

    title = f"ERF of {erf.module or 'the output'} at {'x'.join(map(str, erf.input_shape[1:]))}"
    png = erf_figure([erf], "png", titles=[title])
    d = erf.as_dict()
    return {"png": "data:image/png;base64," + base64.b64encode(png).decode("ascii"),
            "node": str(erf.node), "module": erf.module or "", "unit": d["unit"], "recipe": d["recipe"],
            "init": d["init"] or "as given", "samples": d["samples"], "input_shape": d["input_shape"],
            "trf": d["trf"], "sigma": d["sigma"], "centre_of_mass": d["centre_of_mass"],
            "offset": d["offset"], "mass_outside_trf": d["mass_outside_trf"],
            "area_ratio": [[t, r] for t, r in d["area_ratio"].items()], "warnings": d["warnings"]}


def to_html(analysis, svg=None, title=None, max_features=256, *, views=None, image=None, erf=None) -> str:
    """The interactive report of ``analysis`` as one HTML document.

    Parameters
    ----------
    analysis : Analysis
        The result of :func:`rfgraph.analyze`.
    svg : str, optional
        The diagram as Graphviz drew it from :func:`rfgraph.to_dot` (``dot -Tsvg``): one view.
    views : list of View, optional
        Several diagrams to switch between (:func:`rfgraph.render.graphviz.report_views`): the
        first one drawn is shown first; modules collapse and expand by switching views. Without
        ``svg`` or ``views`` the page says the graph was not drawn and keeps the table and panel.
    title : str, optional
        The page's title (default: "rfgraph report").
    max_features : int
        Per-feature bounds are embedded for at most this many features per axis and node; longer
        axes are subsampled (every k-th feature).
    image : str, path-like, PIL image or array, optional
        A picture (2-D inputs) resized to the input grid: the RF under the mouse is drawn on it.
        Needs Pillow; an unreadable file raises :class:`~rfgraph.errors.RenderError`.
    erf : ERF, optional
        A result of :func:`rfgraph.erf` on the same network: its heatmap (needs matplotlib) and
        numbers get a section of their own.

    Returns
    -------
    str
        The whole document, ending with a newline; deterministic for the same inputs.

    Examples
    --------
    >>> import rfgraph
    >>> a = rfgraph.analyze(rfgraph.chain([("c</script>", "conv", 3, 2, 1)], 8))
    >>> page = to_html(a)
    >>> page.startswith("<!DOCTYPE html>") and "c</script>" not in page and "c\\\\u003c/script" in page
    True
    """
    if svg is not None and views is not None:
        raise ValueError("pass svg= (one diagram) or views=, not both")
    if views is None:
        views = [] if svg is None else [View("diagram", svg)]
    views = [v if isinstance(v, View) else View(*v) for v in views]
    mis = {m.node: m for m in analysis.misaligned()}
    past = _shaped_joins(analysis)
    modules = _modules_in_order(analysis)
    vdata = [_view_data(analysis, v, modules) for v in views]
    titles = {}
    for vd in vdata:
        titles.update(vd.pop("titles"))
    drawn = [i for i, v in enumerate(views) if v.svg is not None]
    data = {
        "input_size": _value(analysis.input_size),
        "max_features": max_features,
        "nodes": [_node_data(analysis, v, mis, max_features, past) for v in analysis.order],
        "titles": dict(sorted(titles.items())),
        "views": vdata,
        "initial": drawn[0] if drawn else None,
        "image": image is not None,
        "erf": _erf_data(erf) if erf is not None else None,
    }
    name = title or "rfgraph report"
    if drawn:
        graph = "\n".join(f'<div class="view" data-view="{i}"{"" if i == drawn[0] else " hidden"}>'
                          f"{_clean_svg(v.svg, f'v{i}-')}</div>" for i, v in enumerate(views) if v.svg is not None)
    else:
        graph = '<p class="nograph">The graph was not drawn (Graphviz\'s <code>dot</code> was not found).</p>'
    extra = ""
    if image is not None:
        extra += f'<img id="rfimage" alt="" hidden src="{_image_uri(analysis, image)}">\n'
    parts = {"TITLE": html.escape(name), "GRAPH": graph, "EXTRA": extra, "DATA": _json(data),
             "STYLE": _STYLE, "SCRIPT": _SCRIPT}
    # one pass over the template: a name that spells %%DATA%% inside the SVG stays text
    return re.sub(r"%%([A-Z]+)%%", lambda m: parts[m.group(1)], _PAGE)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>%%TITLE%%</title>
<style>%%STYLE%%</style>
</head>
<body>
<header><h1>%%TITLE%%</h1>
<input id="search" type="search" placeholder="search nodes by name (Enter: open)" autocomplete="off">
<span id="matches"></span>
<label for="view">view</label> <select id="view" title="the diagram's level of detail"></select>
<button id="zoom-in" title="zoom in">+</button><button id="zoom-out" title="zoom out">&minus;</button>
<button id="zoom-fit" title="fit the graph">fit</button></header>
<main>
<section id="graph">%%GRAPH%%</section>
<aside id="panel"><p class="hint">Click a box of the graph (or a module's frame, or a table row)
to see its receptive field. A frame's &minus; collapses its module, a box's + expands it.</p></aside>
</main>
<section id="erf" hidden></section>
<section id="nodes"><h2>All nodes</h2><p class="hint">Click a column to sort, a row to open it.</p>
<table id="table"><thead></thead><tbody></tbody></table></section>
%%EXTRA%%<script type="application/json" id="rf-data">%%DATA%%</script>
<script>%%SCRIPT%%</script>
</body>
</html>
"""

_STYLE = """
body{font:13px/1.4 Helvetica,Arial,sans-serif;margin:0;color:#222}
header{display:flex;gap:8px;align-items:center;padding:6px 12px;border-bottom:1px solid #ccc;background:#fafafa}
h1{font-size:16px;margin:0 12px 0 0}h2{font-size:14px;margin:8px 0}h3{font-size:13px;margin:10px 0 4px}
#search{width:260px;padding:3px 6px}#matches{color:#666;min-width:70px}#view{max-width:260px}
main{display:flex;height:72vh;border-bottom:1px solid #ccc}
#graph{flex:1;overflow:hidden;position:relative;cursor:grab;background:#fff}
#graph .view{width:100%;height:100%}#graph .view[hidden]{display:none}
#graph svg{width:100%;height:100%;display:block}
#graph.dragging{cursor:grabbing}
#graph g.node,#graph g.cluster{cursor:pointer}
#graph g.edge{pointer-events:none}
#graph g.hit polygon,#graph g.hit ellipse,#graph g.hit path{stroke:#e6550d;stroke-width:3px}
#graph g.selected polygon,#graph g.selected ellipse,#graph g.selected path{stroke:#d62728;stroke-width:4px}
#graph g.toggle{cursor:pointer}#graph g.toggle rect{fill:#fff;stroke:#666;stroke-width:1px}
#graph g.toggle text{font:bold 12px Helvetica,Arial,sans-serif;fill:#333;pointer-events:none}
#graph g.toggle:hover rect{fill:#fde0dd;stroke:#d62728}
#panel{width:400px;overflow:auto;padding:8px 12px;border-left:1px solid #ccc;background:#fcfcfc}
#panel h2{word-break:break-all}
#panel table{border-collapse:collapse;margin:4px 0 8px}
#panel td,#panel th{border:1px solid #ddd;padding:2px 6px;text-align:left}
#modules button{margin:1px 4px 1px 0;font-size:12px}#modules .state{color:#666}
.hint{color:#666}.warn{color:#b30000}.nograph{padding:20px;color:#666}
#rfcanvas{border:1px solid #999;background:#fff;cursor:crosshair;display:block}
#rflegend span{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
#erf{padding:0 12px;border-bottom:1px solid #ccc}#erf img{max-width:560px;float:left;margin:0 16px 8px 0}
#erf table{border-collapse:collapse}#erf td,#erf th{border:1px solid #ddd;padding:2px 6px;text-align:left}
#erf:after{content:"";display:block;clear:both}
#nodes{padding:0 12px 20px}
#table{border-collapse:collapse;font-size:12px}
#table th{cursor:pointer;background:#eee;position:sticky;top:0}
#table th,#table td{border:1px solid #ddd;padding:2px 6px}
#table tr.selected td{background:#fde0dd}
#table tbody tr{cursor:pointer}#table tbody tr:hover td{background:#f3f3f3}
"""

_SCRIPT = r"""
(function () {
"use strict";
var DATA = JSON.parse(document.getElementById("rf-data").textContent);
var BY = {};
DATA.nodes.forEach(function (d, i) { d.index = i; BY[d.name] = d; });
var graph = document.getElementById("graph");
var panel = document.getElementById("panel");
var NS = "http://www.w3.org/2000/svg";
var AXES = DATA.input_size.length === 2 ? ["H", "W"] : DATA.input_size.map(function (_, i) { return "axis " + i; });
var MAX_PIECES = 4096;  // rectangles per footprint, at most
var COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

function el(tag, text, cls) {
  var e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmt(v) {
  if (v === null || v === undefined) return "-";
  if (Array.isArray(v)) return v.map(fmt).join(" x ");
  if (v === true) return "yes";
  if (v === false) return "no";
  return String(v);
}
function set(list) { var s = {}; (list || []).forEach(function (x) { s[x] = true; }); return s; }

// -- the views: one SVG per level of detail ------------------------------------------------------
var VIEWS = DATA.views.map(function (info, i) {
  var div = graph.querySelector('.view[data-view="' + i + '"]');
  var v = {index: i, info: info, div: div, svg: div ? div.querySelector("svg") : null, elems: {},
           boxes: set(info.boxes), clusters: set(info.clusters), foldOf: {}, decorated: false};
  Object.keys(info.folds).forEach(function (t) { info.folds[t].forEach(function (m) { v.foldOf[m] = t; }); });
  if (v.svg) {
    var vb = v.svg.viewBox && v.svg.viewBox.baseVal;
    v.box0 = vb && vb.width ? [vb.x, vb.y, vb.width, vb.height] :
      [0, 0, parseFloat(v.svg.getAttribute("width")) || 800, parseFloat(v.svg.getAttribute("height")) || 600];
    v.svg.removeAttribute("width"); v.svg.removeAttribute("height");
    v.svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    v.box = v.box0.slice();
    v.svg.setAttribute("viewBox", v.box.join(" "));
  }
  return v;
});
var cv = DATA.initial === null ? -1 : DATA.initial;
function V() { return cv >= 0 ? VIEWS[cv] : null; }
var viewSelect = document.getElementById("view");
VIEWS.forEach(function (v) {
  var o = el("option", v.info.label + (v.svg ? "" : " (not drawn)"));
  o.value = String(v.index);
  if (!v.svg) { o.disabled = true; o.title = v.info.note; }
  else if (v.info.note) o.title = v.info.note;
  viewSelect.appendChild(o);
});
if (cv < 0) viewSelect.disabled = true; else viewSelect.value = String(cv);
viewSelect.addEventListener("change", function () { showView(+viewSelect.value); });

// -- pan and zoom: the current SVG's viewBox ------------------------------------------------------
function setBox() { var v = V(); if (v) v.svg.setAttribute("viewBox", v.box.join(" ")); }
function zoom(f, cx, cy) {
  var v = V();
  if (!v) return;
  var box = v.box, r = v.svg.getBoundingClientRect();
  var s = Math.max(box[2] / r.width, box[3] / r.height);
  var ox = box[0] + (box[2] - r.width * s) / 2, oy = box[1] + (box[3] - r.height * s) / 2;
  var px = cx === undefined ? box[0] + box[2] / 2 : ox + (cx - r.left) * s;
  var py = cy === undefined ? box[1] + box[3] / 2 : oy + (cy - r.top) * s;
  v.box = [px - (px - box[0]) * f, py - (py - box[1]) * f, box[2] * f, box[3] * f];
  setBox();
}
function fit() { var v = V(); if (v) { v.box = v.box0.slice(); setBox(); } }
function centreOn(g) {
  var v = V();
  if (!v || !g.getBBox) return;
  var b = g.getBBox();
  // a box with its neighbourhood, or a whole module frame with a margin
  var w = Math.max(b.width * 1.3 + 40, Math.min(v.box0[2], 600)), h = Math.max(b.height * 1.3 + 40, Math.min(v.box0[3], 400));
  // getBBox is in the element's user space; Graphviz wraps everything in one translated group
  var m = g.getCTM(), sm = v.svg.getScreenCTM(), root = v.svg.createSVGPoint();
  root.x = b.x + b.width / 2; root.y = b.y + b.height / 2;
  if (m && sm) { root = root.matrixTransform(sm.inverse().multiply(m)); }
  v.box = [root.x - w / 2, root.y - h / 2, w, h];
  setBox();
}
var drag = null;
graph.addEventListener("wheel", function (e) {
  if (!V()) return;
  e.preventDefault(); zoom(e.deltaY < 0 ? 0.85 : 1 / 0.85, e.clientX, e.clientY);
}, {passive: false});
graph.addEventListener("mousedown", function (e) {
  if (V()) drag = {x: e.clientX, y: e.clientY, box: V().box.slice(), moved: false};
});
window.addEventListener("mousemove", function (e) {
  if (!drag) return;
  var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
  if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; graph.classList.add("dragging"); }
  if (!drag.moved) return;
  var v = V(), r = v.svg.getBoundingClientRect();
  var s = Math.max(drag.box[2] / r.width, drag.box[3] / r.height);
  v.box = [drag.box[0] - dx * s, drag.box[1] - dy * s, drag.box[2], drag.box[3]];
  setBox();
});
window.addEventListener("mouseup", function () {
  graph.classList.remove("dragging");
  setTimeout(function () { drag = null; }, 0);
});
document.getElementById("zoom-in").onclick = function () { zoom(0.8); };
document.getElementById("zoom-out").onclick = function () { zoom(1.25); };
document.getElementById("zoom-fit").onclick = fit;

// -- diagram elements -> nodes --------------------------------------------------------------------
VIEWS.forEach(function (v) {
  if (!v.svg) return;
  v.svg.querySelectorAll("g.node, g.cluster").forEach(function (g) {
    var t = g.querySelector("title");
    var key = t ? t.textContent : "";
    var name = DATA.titles[key];
    if (name === undefined) return;
    g.setAttribute("data-title", key);
    g.setAttribute("data-node", name);
    (v.elems[name] = v.elems[name] || []).push(g);
    g.addEventListener("click", function (e) {
      if (drag && drag.moved) return;
      e.stopPropagation();
      select(name, false, key);
    });
  });
});
function elemsOf(name) { var v = V(); return v ? v.elems[name] || null : null; }
function shownOf(name) { var v = V(); return v ? v.elems[name] || v.elems[v.info.owners[name]] || null : null; }

// -- collapse and expand: modules are boxes in some views, frames in others -----------------------
function state(v, m) {
  if (v.boxes[m]) return "box";
  if (v.foldOf[m]) return "fold";
  var parts = m.split(".");
  for (var k = 1; k < parts.length; k++) {
    var p = parts.slice(0, k).join(".");
    if (v.boxes[p] || v.foldOf[p]) return "hidden";
  }
  return v.clusters[m] ? "frame" : "open";
}
function target(m, action) {  // the view to switch to: the nearest one that draws m so
  var v = V();
  if (!v) return null;
  var now = v.info.items, best = null;
  VIEWS.forEach(function (w) {
    if (!w.svg || w === v) return;
    var s = state(w, m);
    var ok = action === "collapse" ? (s === "box" || s === "fold") : (s === "frame" || s === "open");
    if (!ok) return;
    var n = w.info.items;
    // collapsing: the most detailed view with fewer boxes; expanding: the least detailed with more
    var better = best === null ? true : action === "collapse" ?
      ((n < now) !== (best.info.items < now) ? n < now : n > best.info.items) :
      ((n > now) !== (best.info.items > now) ? n > now : n < best.info.items);
    if (better) best = w;
  });
  return best;
}
function elementOfModule(v, m) {
  var t = v.boxes[m] ? "module " + m : v.foldOf[m] ? v.foldOf[m] : v.clusters[m] ? "cluster " + m : null;
  return t ? v.svg.querySelector('g[data-title="' + CSS.escape(t) + '"]') : null;
}
function toggle(m, action) {
  var w = target(m, action);
  if (!w) return;
  var g = elementOfModule(w, m);
  if (current && currentTitle && g && currentTitle.split(" ").slice(1).join(" ").split("..").indexOf(m) >= 0)
    currentTitle = g.getAttribute("data-title");  // the module's element in the new view
  showView(w.index);
  if (g) centreOn(g);
}
function decorate(v) {  // the - and + marks, once the view is on screen (getBBox needs layout)
  if (v.decorated || !v.svg) return;
  v.decorated = true;
  v.svg.querySelectorAll("g.node[data-title], g.cluster[data-title]").forEach(function (g) {
    var key = g.getAttribute("data-title"), kind = key.split(" ")[0], m = key.slice(kind.length + 1);
    var action = kind === "cluster" ? "collapse" : kind === "module" || kind === "fold" ? "expand" : null;
    if (!action) return;
    if (kind === "fold") m = v.info.folds[key][0];
    var shape = g.querySelector("polygon, path");
    if (!shape || !target(m, action)) return;
    var b = shape.getBBox(), t = document.createElementNS(NS, "g");
    t.setAttribute("class", "toggle");
    t.setAttribute("data-module", m);
    t.setAttribute("data-action", action);
    // a frame's mark inside its top-left corner; a box's just outside its top-right one (not over its name)
    var r = document.createElementNS(NS, "rect"), x = action === "collapse" ? b.x + 4 : b.x + b.width + 3;
    r.setAttribute("x", x); r.setAttribute("y", b.y + 3); r.setAttribute("width", 12); r.setAttribute("height", 12);
    r.setAttribute("rx", 2);
    var tx = document.createElementNS(NS, "text");
    tx.setAttribute("x", x + 6); tx.setAttribute("y", b.y + 13); tx.setAttribute("text-anchor", "middle");
    tx.textContent = action === "collapse" ? "\u2212" : "+";
    var tip = document.createElementNS(NS, "title");
    tip.textContent = (action === "collapse" ? "collapse " : "expand ") + m;
    t.appendChild(tip); t.appendChild(r); t.appendChild(tx);
    t.addEventListener("mousedown", function (e) { e.stopPropagation(); });
    t.addEventListener("click", function (e) { e.stopPropagation(); toggle(m, action); });
    g.appendChild(t);
  });
}
function showView(i) {
  if (!VIEWS[i] || !VIEWS[i].svg) return;
  cv = i;
  VIEWS.forEach(function (v) { if (v.div) v.div.hidden = v.index !== i; });
  viewSelect.value = String(i);
  decorate(VIEWS[i]);
  fit();
  highlight();
  if (current) select(current.name, false, null, true);
}
if (V()) decorate(V());

// -- the panel ------------------------------------------------------------------------------------
var current = null, currentTitle = null;
function select(name, centre, title, keep) {
  var d = BY[name];
  if (!d) return;
  current = d;
  if (!keep) currentTitle = title || null;
  document.querySelectorAll(".selected").forEach(function (e) { e.classList.remove("selected"); });
  var row = document.querySelector('#table tbody tr[data-index="' + d.index + '"]');
  if (row) row.classList.add("selected");
  var shown = shownOf(name);
  if (shown) shown.forEach(function (g) { g.classList.add("selected"); });
  if (centre && shown) centreOn(shown[0]);
  showPanel(d);
}
function table(head, rows, attr) {
  var t = el("table"), tr = el("tr");
  head.forEach(function (h) { tr.appendChild(el("th", h)); });
  t.appendChild(tr);
  rows.forEach(function (r) {
    var tr = el("tr");
    if (attr) tr.setAttribute("data-field", r[0]);
    r.forEach(function (c) { tr.appendChild(el("td", c)); });
    t.appendChild(tr);
  });
  return t;
}
function moduleControls(d) {
  var v = V(), mods = [];
  if (!v) return null;
  var add = function (m) { if (m && mods.indexOf(m) < 0) mods.push(m); };
  if (currentTitle) {
    var kind = currentTitle.split(" ")[0];
    if (kind === "module" || kind === "cluster") add(currentTitle.slice(kind.length + 1));
    if (kind === "fold") (v.info.folds[currentTitle] || []).forEach(add);
  }
  if (d.module) { var parts = d.module.split("."); for (var k = 1; k <= parts.length; k++) add(parts.slice(0, k).join(".")); }
  mods.sort(function (a, b) { return a.split(".").length - b.split(".").length || (a < b ? -1 : a > b ? 1 : 0); });
  var box = el("div"); box.id = "modules";
  mods.forEach(function (m) {
    var s = state(v, m), action = s === "box" || s === "fold" ? "expand" : s === "frame" || s === "open" ? "collapse" : null;
    var w = action ? target(m, action) : null;
    if (!w && s !== "box" && s !== "fold") return;
    var line = el("div");
    line.appendChild(el("span", m + " "));
    line.appendChild(el("span", {box: "(collapsed) ", fold: "(folded with identical blocks) ", frame: "", open: "",
                                 hidden: ""}[s], "state"));
    if (w) {
      var b = el("button", (action === "collapse" ? "\u2212 collapse" : "+ expand"));
      b.setAttribute("data-module", m); b.setAttribute("data-action", action);
      b.title = "switch to the view: " + w.info.label;
      b.onclick = function () { toggle(m, action); };
      line.appendChild(b);
    }
    box.appendChild(line);
  });
  return box.childNodes.length ? box : null;
}
function showPanel(d) {
  panel.textContent = "";
  panel.appendChild(el("h2", d.name));
  panel.appendChild(el("p", d.label + (d.module ? "  -  module " + d.module : "")));
  if (currentTitle && currentTitle !== d.name) {
    var kind = currentTitle.split(" ")[0];
    var what = {module: "the output of collapsed module ", cluster: "the output of module ",
                fold: "the output of folded blocks "}[kind];
    if (what) panel.appendChild(el("p", "shown: " + what + currentTitle.slice(kind.length + 1), "hint"));
  }
  var summary = el("p", "rf " + d.cells.rf + ", jump " + d.cells.jump + ", start " + d.cells.start +
                    ", n " + d.cells.n + ", padding " + d.cells.padding);
  summary.id = "summary";
  panel.appendChild(summary);
  var mc = moduleControls(d);
  if (mc) { panel.appendChild(el("h3", "Modules")); panel.appendChild(mc); }
  panel.appendChild(el("h3", "RF of the feature under the mouse"));
  if (d.n.length > 2) panel.appendChild(el("p", "drawn for 1-D and 2-D inputs only", "hint"));
  else rfCanvas(d);
  var fields = ["n", "jump", "rf", "start", "padding", "exact", "contiguous", "global", "global_from"];
  var rows = fields.map(function (f) {
    return [f].concat(d[f].map(function (v) { return fmt(v); }));
  });
  rows.push(["gaps"].concat(d.gaps.map(function (g) {  // holes as offsets from the RF's first pixel
    return g && g.length ? g.map(function (p) { return p[0] === p[1] ? String(p[0]) : p[0] + ".." + p[1]; }).join(", ")
                         : "none";
  })));
  panel.appendChild(table([""].concat(AXES.slice(0, d.n.length)), rows, true));
  if (d.branches.length) {
    panel.appendChild(el("h3", "Branches (join inputs, in order)"));
    panel.appendChild(table(["input", "rf", "start", "centre offset"], d.branches.map(function (b) {
      return [b.node, fmt(b.rf), fmt(b.start), fmt(b.offset)];
    })));
    panel.lastChild.id = "branches";
  }
  if (d.misalignment) {
    var m = el("p", "MISALIGNED: branch centres differ by " + fmt(d.misalignment.offsets) +
                    " input pixels" + (d.misalignment.note ? " (" + d.misalignment.note + ")" : ""), "warn");
    m.id = "misalignment";
    panel.appendChild(m);
  }
  if (d.misalignment && d.misaligned_at)
    panel.appendChild(el("p", "offsets measured at feature " + fmt(d.misaligned_at), "hint"));
  d.approx.forEach(function (a) { panel.appendChild(el("p", a, "warn")); });
  if (d.note) panel.appendChild(el("p", "note: " + d.note));
  if (d.source) panel.appendChild(el("p", "source: " + d.source, "hint"));
  if (DATA.erf && DATA.erf.node === d.name) {
    var e = el("p", "ERF measured at this node's unit (" + DATA.erf.unit.join(", ") + "): sigma " +
                    fix(DATA.erf.sigma) + " px; see the ERF section below", "hint");
    e.id = "erf-here";
    panel.appendChild(e);
  }
}

// -- the RF under the mouse: exact pixel sets on the input grid (or the user's picture) -----------
var IMAGE = document.getElementById("rfimage");
var rfState = null;  // {canvas, info, d, mouse}
if (IMAGE && !IMAGE.complete) IMAGE.addEventListener("load", function () {
  if (rfState) drawRF(rfState.canvas, rfState.info, rfState.d, rfState.mouse);
});
function rfCanvas(d) {
  var c = el("canvas"); c.id = "rfcanvas"; c.width = 360; c.height = d.n.length === 2 ? 360 : 120;
  panel.appendChild(c);
  var legend = el("div"); legend.id = "rflegend"; legend.className = "hint";
  panel.appendChild(legend);
  var info = el("p", "move the mouse over the input", "hint"); info.id = "rfinfo";
  panel.appendChild(info);
  if (d.step.some(function (s) { return s > 1; }))
    panel.appendChild(el("p", "bounds subsampled: every " + fmt(d.step) + "-th feature (more than " +
                              DATA.max_features + " features on an axis)", "hint"));
  if (d.past_join && d.n.length === 2)
    panel.appendChild(el("p", "past a join of differently shaped branches: rows x cols drawn, an upper " +
                              "bound of the 2-D RF", "hint"));
  rfState = {canvas: c, info: info, d: d, mouse: null};
  drawRF(c, info, d, null);
  c.addEventListener("mousemove", function (e) {
    var r = c.getBoundingClientRect();
    rfState.mouse = [e.clientX - r.left, e.clientY - r.top];
    drawRF(c, info, d, rfState.mouse);
  });
  if (d.join) {
    d.branches.forEach(function (b, j) {
      var s = el("span"); s.style.background = COLOURS[j % COLOURS.length];
      legend.appendChild(s);
      legend.appendChild(document.createTextNode("branch " + (j + 1) + ": " + b.node +
                         (BY[b.node] && BY[b.node].global.every(Boolean) ? " (global: the whole input)" : "") + "  "));
    });
  }
}

// the input grid plus the padding the node's RFs reach into, fitted to the canvas
function view(c, d) {
  var size = DATA.input_size, two = size.length === 2;
  var ax = two ? [1, 0] : [0];
  var lo = [0, 0], hi = [size[ax[0]], two ? size[ax[1]] : 1];
  ax.forEach(function (a, k) {
    var b = d.bounds[a];
    lo[k] = Math.min(lo[k], Math.min.apply(null, b[0]));
    hi[k] = Math.max(hi[k], Math.max.apply(null, b[1]) + 1);
  });
  if (!two) { lo[1] = 0; hi[1] = 1; }
  var s = two ? Math.min((c.width - 20) / (hi[0] - lo[0]), (c.height - 20) / (hi[1] - lo[1]))
              : (c.width - 20) / (hi[0] - lo[0]);
  var sy = two ? s : (c.height - 40);
  return {ax: ax, two: two, lo: lo, s: s, sy: sy,
          X: function (x) { return 10 + (x - lo[0]) * s; }, Y: function (y) { return 10 + (y - lo[1]) * sy; }};
}
function nearest(d, a, p) {  // sampled feature whose RF centre is nearest input coordinate p
  var b = d.bounds[a], best = 0, bd = Infinity;
  for (var i = 0; i < b[0].length; i++) {
    var dist = Math.abs((b[0][i] + b[1][i] + 1) / 2 - p);
    if (dist < bd) { bd = dist; best = i; }
  }
  return best;
}
function runs(d, a, i) {  // pixels read by sampled feature i along axis a: half-open [lo, hi) runs
  var p = d.pix[a], out = [];
  if (p) {
    var f = p[i];
    for (var k = 0; k < f.length; k += 2) out.push([f[k], f[k + 1] + 1]);
    return out;
  }
  var b = d.bounds[a];
  return b[2][i] <= b[3][i] ? [[b[2][i], b[3][i] + 1]] : [];
}
function sample(e, d, a, i) {  // the same feature of a join's input e (broadcast when e has one)
  if (e.n[a] === 1) return 0;
  if (e.step[a] === d.step[a]) return i;
  return Math.min(e.bounds[a][0].length - 1, Math.round(i * d.step[a] / e.step[a]));
}
function footprint(d, idx, v) {  // rectangles [x0, x1, y0, y1] (input pixels, half-open)
  var xs = runs(d, v.ax[0], idx[v.ax[0]]), ys = v.two ? runs(d, v.ax[1], idx[v.ax[1]]) : [[0, 1]];
  if (xs.length * ys.length > MAX_PIECES) {  // very many holes (as the overlay does): the hull
    xs = xs.length ? [[xs[0][0], xs[xs.length - 1][1]]] : xs;
    ys = ys.length ? [[ys[0][0], ys[ys.length - 1][1]]] : ys;
  }
  var out = [];
  ys.forEach(function (y) { xs.forEach(function (x) { out.push([x[0], x[1], y[0], y[1]]); }); });
  return out;
}
function drawRF(c, info, d, mouse) {
  var g = c.getContext("2d"), v = view(c, d), size = DATA.input_size;
  g.clearRect(0, 0, c.width, c.height);
  g.imageSmoothingEnabled = false;
  var W = size[v.ax[0]], H = v.two ? size[v.ax[1]] : 1;
  var photo = IMAGE && IMAGE.complete && IMAGE.naturalWidth > 0 && v.two;
  if (photo) g.drawImage(IMAGE, v.X(0), v.Y(0), W * v.s, H * v.sy);
  else {
    g.fillStyle = "#f0f0f0"; g.fillRect(v.X(0), v.Y(0), W * v.s, H * v.sy);
    if (v.s >= 6) {  // a grid of input pixels when they are large enough to count
      g.strokeStyle = "#dddddd"; g.lineWidth = 0.5; g.beginPath();
      for (var gx = 1; gx < W; gx++) { g.moveTo(v.X(gx), v.Y(0)); g.lineTo(v.X(gx), v.Y(H)); }
      for (var gy = 1; v.two && gy < H; gy++) { g.moveTo(v.X(0), v.Y(gy)); g.lineTo(v.X(W), v.Y(gy)); }
      g.stroke();
    }
  }
  g.strokeStyle = "#333"; g.lineWidth = 1; g.strokeRect(v.X(0), v.Y(0), W * v.s, H * v.sy);
  c.rfView = v;
  if (!mouse) return;
  var px = (mouse[0] - 10) / v.s + v.lo[0], py = v.two ? (mouse[1] - 10) / v.sy + v.lo[1] : 0;
  var idx = [], feat = [], box = [];
  v.ax.forEach(function (a, k) {
    var i = nearest(d, a, k === 0 ? px : py), b = d.bounds[a];
    idx[a] = i; feat[a] = i * d.step[a];
    box[k] = [b[0][i], b[1][i] + 1, b[2][i], b[3][i] + 1];
  });
  if (!v.two) box[1] = [0, 1, 0, 1];
  var seen = box[0][2] < box[0][3] && box[1][2] < box[1][3];
  function rect(r) {
    return [v.X(r[0]), v.two ? v.Y(r[2]) : v.Y(0), (r[1] - r[0]) * v.s, v.two ? (r[3] - r[2]) * v.sy : v.sy];
  }
  var read = 0, pieces = 0, layers = [];
  if (d.join) {
    d.branches.forEach(function (b, j) {
      var e = BY[b.node];
      if (!e || e.global.every(Boolean)) return;  // the whole input: said in the legend
      var ix = [];
      v.ax.forEach(function (a) { ix[a] = sample(e, d, a, idx[a]); });
      layers.push({rects: footprint(e, ix, v), colour: COLOURS[j % COLOURS.length]});
    });
  } else {
    var rs = footprint(d, idx, v);
    rs.forEach(function (r) { read += (r[1] - r[0]) * (r[3] - r[2]); });
    pieces = rs.length;
    layers.push({rects: rs, colour: "#1f77b4"});
  }
  if (photo) {  // dim the picture, then show the pixels read at full strength
    g.fillStyle = "rgba(0,0,0,0.55)"; g.fillRect(v.X(0), v.Y(0), W * v.s, H * v.sy);
    layers.forEach(function (l) {
      l.rects.forEach(function (r) {
        var q = rect(r);
        g.drawImage(IMAGE, r[0], r[2], r[1] - r[0], r[3] - r[2], q[0], q[1], q[2], q[3]);
      });
    });
  }
  layers.forEach(function (l) {
    g.fillStyle = l.colour; g.globalAlpha = photo ? (d.join ? 0.3 : 0) : (d.join ? 0.45 : 0.55);
    l.rects.forEach(function (r) { var q = rect(r); g.fillRect(q[0], q[1], q[2], q[3]); });
    g.globalAlpha = 1;
  });
  g.setLineDash([5, 3]); g.strokeStyle = photo ? "#ffffff" : "#1f77b4"; g.lineWidth = 1.5;
  g.strokeRect(v.X(box[0][0]), v.Y(box[1][0]), (box[0][1] - box[0][0]) * v.s, (box[1][1] - box[1][0]) * v.sy);
  g.setLineDash([]);
  var names = v.two ? ["cols", "rows"] : ["pixels"];
  var parts = v.ax.map(function (a, k) {
    return names[k] + " " + box[k][0] + ".." + (box[k][1] - 1) +
           (seen && (box[k][2] !== box[k][0] || box[k][3] !== box[k][1]) ? " (sees " + box[k][2] + ".." + (box[k][3] - 1) + ")" : "");
  });
  if (v.two) parts.reverse();
  var how = d.join ? "tinted: each branch's pixels, in its colour" :
    (photo ? "bright: the pixels read" : "tinted: the pixels read");
  info.textContent = "feature (" + feat.join(", ") + "): " + parts.join("; ") +
                     (seen ? "" : " - only padding") + (pieces > 1 ? "; reads " + read + " pixels (holes)" : "") +
                     "; dashed: theoretical RF, " + how;
}

// -- the ERF section ------------------------------------------------------------------------------
function fix(vs) { return vs.map(function (x) { return x.toFixed(2); }).join(" x "); }
if (DATA.erf) (function (e) {
  var sec = document.getElementById("erf");
  sec.hidden = false;
  sec.appendChild(el("h2", "Effective receptive field"));
  var img = el("img"); img.src = e.png; img.alt = "ERF heatmap of " + (e.module || e.node);
  sec.appendChild(img);
  var p = el("p", "Measured (rfgraph.erf) at ");
  var a = el("a", e.module || e.node); a.href = "#"; a.id = "erf-node";
  a.onclick = function (ev) { ev.preventDefault(); select(e.node, true); };
  p.appendChild(a);
  p.appendChild(document.createTextNode(", unit (" + e.unit.join(", ") + "): the feature whose exact TRF centre is " +
                "nearest the input centre; recipe " + e.recipe + ", init " + e.init + ", " + e.samples +
                " samples, input " + e.input_shape.join("x") + "."));
  sec.appendChild(p);
  var rows = [["TRF rf", fmt(e.trf.rf)], ["TRF centre", fmt(e.trf.centre)],
              ["TRF inside the input", e.trf.bounds.map(function (b) { return b[0] + ".." + b[1]; }).join(" x ")],
              ["ERF sigma (px)", fix(e.sigma)], ["ERF centre of mass", fix(e.centre_of_mass)],
              ["offset from the TRF centre", fix(e.offset)], ["mass outside the TRF", e.mass_outside_trf.toExponential(2)]];
  var t = table(["", "per axis"], rows, true); t.id = "erf-numbers";
  sec.appendChild(t);
  sec.appendChild(el("h3", "Area ratios: the smallest centred square holding more than t of the mass"));
  var ar = table(["t", "side (px)", "% of the input", "% of the TRF"], e.area_ratio.map(function (x) {
    var r = x[1];
    return r ? [x[0], r.side, (100 * r.of_input).toFixed(2), (100 * r.of_trf).toFixed(2)] : [x[0], "-", "-", "-"];
  }), true);
  ar.id = "erf-areas";
  sec.appendChild(ar);
  e.warnings.forEach(function (w) { sec.appendChild(el("p", w, "warn")); });
})(DATA.erf);

// -- search ---------------------------------------------------------------------------------------
var search = document.getElementById("search"), matchInfo = document.getElementById("matches");
function matches(q) {
  q = q.toLowerCase();
  return q ? DATA.nodes.filter(function (d) {
    return d.name.toLowerCase().indexOf(q) >= 0 || (d.module || "").toLowerCase().indexOf(q) >= 0;
  }) : [];
}
function highlight() {
  var found = matches(search.value), names = {};
  found.forEach(function (d) { names[d.name] = 1; });
  document.querySelectorAll("#graph g.hit").forEach(function (g) { g.classList.remove("hit"); });
  Object.keys(names).forEach(function (n) { (elemsOf(n) || []).forEach(function (g) { g.classList.add("hit"); }); });
  document.querySelectorAll("#table tbody tr").forEach(function (tr) {
    tr.style.display = !search.value || names[DATA.nodes[+tr.getAttribute("data-index")].name] ? "" : "none";
  });
  matchInfo.textContent = search.value ? found.length + " match" + (found.length === 1 ? "" : "es") : "";
}
search.addEventListener("input", highlight);
search.addEventListener("keydown", function (e) {
  if (e.key !== "Enter") return;
  var q = search.value.toLowerCase(), found = matches(q);
  var exact = found.filter(function (d) { return d.name.toLowerCase() === q; });
  var drawn = found.filter(function (d) { return shownOf(d.name); });
  var pick = exact[0] || drawn[0] || found[0];
  if (pick) select(pick.name, true);
});

// -- the sortable table ---------------------------------------------------------------------------
var COLS = [["#", function (d) { return d.index; }], ["name", function (d) { return d.name; }],
  ["op", function (d) { return d.label; }], ["module", function (d) { return d.module || ""; }],
  ["n", function (d) { return d.cells.n; }, function (d) { return d.n[0]; }],
  ["jump", function (d) { return d.cells.jump; }, function (d) { return d.jump[0]; }],
  ["rf", function (d) { return d.cells.rf; }, function (d) { return d.rf[0]; }],
  ["start", function (d) { return d.cells.start; }, function (d) { return d.start[0]; }],
  ["padding", function (d) { return d.cells.padding; }, function (d) { return d.padding[0]; }],
  ["flags", function (d) {
    var f = [];
    if (d.misalignment) f.push("misaligned");
    if (d.global.some(Boolean)) f.push("global");
    if (d.contiguous.some(function (c) { return c === false; })) f.push("gaps");
    if (d.exact.some(function (x) { return !x; })) f.push("per-position");
    return f.join(" ");
  }]];
var tbody = document.querySelector("#table tbody"), thead = document.querySelector("#table thead");
var htr = el("tr"), sortCol = 0, sortDir = 1;
COLS.forEach(function (c, k) {
  var th = el("th", c[0]);
  th.setAttribute("data-col", c[0]);
  th.onclick = function () { sortDir = sortCol === k ? -sortDir : 1; sortCol = k; fill(); };
  htr.appendChild(th);
});
thead.appendChild(htr);
function key(d, k) { var c = COLS[k]; return (c[2] || c[1])(d); }
function fill() {
  var rows = DATA.nodes.slice().sort(function (a, b) {
    var x = key(a, sortCol), y = key(b, sortCol);
    var nx = typeof x === "number" ? x : parseFloat(x), ny = typeof y === "number" ? y : parseFloat(y);
    var r = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    if (typeof x !== "number" && !isNaN(nx) && !isNaN(ny) && String(nx) === String(x)) r = nx - ny;
    return (r || a.index - b.index) * sortDir;
  });
  tbody.textContent = "";
  rows.forEach(function (d) {
    var tr = el("tr");
    tr.setAttribute("data-index", d.index);
    if (current && current.name === d.name) tr.classList.add("selected");
    COLS.forEach(function (c) { tr.appendChild(el("td", c[1](d))); });
    tr.onclick = function () { select(d.name, true); };
    tbody.appendChild(tr);
  });
}
fill();
window.rfReport = {
  select: select, data: DATA, showView: showView, toggle: toggle,
  view: function () { return cv; },
  // canvas pixel of input pixel (row, col)'s centre, for tests and scripts
  canvasPoint: function (row, col) {
    var c = document.getElementById("rfcanvas"), v = c && c.rfView;
    if (!v) return null;
    return v.two ? [v.X(col + 0.5), v.Y(row + 0.5)] : [v.X(row + 0.5), v.Y(0) + v.sy / 2];
  }
};
})();
"""
