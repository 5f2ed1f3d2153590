"""An interactive report: one self-contained HTML file (no network, no CDN) to open from disk.

:func:`to_html` is pure: it takes the analysis and, optionally, the SVG text Graphviz drew from
:func:`rfgraph.to_dot` (the CLI runs ``dot``), and returns the page. The page has

- the diagram with pan (drag) and zoom (wheel, buttons), search by name;
- a panel for the clicked node (a diagram box, a module's frame or a table row): its numbers per
  axis, branches and their centre offsets, misalignment, gaps, notes and approximations, and a
  small canvas of the input where the RF of the feature under the mouse is drawn;
- a sortable table of every node.

Every name reaches the page as JSON data or through ``textContent`` (never as markup), the JSON is
embedded with ``<`` (so ``</``) escaped, and scripts found in the SVG are dropped. Per-feature bounds are
embedded for every node; along an axis longer than ``max_features`` features they are subsampled
(every k-th feature, said in the panel), which keeps a 1024x1024 report a few megabytes.
"""

from __future__ import annotations

import html
import json
import math
import re

from ._format import per_axis

__all__ = ["to_html", "node_for_title"]


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


def _node_data(analysis, v, mis, max_features):
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
    bounds, steps = [], []
    for ax in range(rec.naxes):
        n = rec.n[ax]
        step = max(1, math.ceil(n / max_features))
        lo_u, hi_u = analysis.bounds(v, ax, clip=False)
        lo_c, hi_c = analysis.bounds(v, ax, clip=True)
        bounds.append([a[::step].tolist() for a in (lo_u, hi_u, lo_c, hi_c)])
        steps.append(step)
    m = mis.get(v)
    return {
        "name": str(v), "op": rec.op, "label": label, "module": rec.module, "source": rec.source,
        "n": _value(rec.n), "jump": _value(rec.jump), "rf": _value(rec.rf), "start": _value(rec.start),
        "padding": _value(rec.padding), "exact": _value(rec.exact), "contiguous": _value(rec.contiguous),
        "gaps": _value(rec.gaps), "global": _value(rec.is_global), "global_from": _value(rec.global_from),
        "note": rec.note or "", "misaligned_at": _value(rec.misaligned_at), "approx": approx,
        "cells": {k: per_axis(getattr(rec, k)) for k in ("n", "jump", "rf", "start", "padding")},
        "branches": [{"node": str(b.node), "rf": _value(b.rf), "start": _value(b.start),
                      "offset": _value(b.offset)} for b in rec.branches],
        "misalignment": None if m is None else {"offsets": _value(m.offsets), "note": m.note or "",
                                                "branches": _value(m.branches)},
        "bounds": bounds, "step": steps,
    }


def _owners(analysis, titles):
    """For nodes not drawn themselves, the node of the diagram element holding them: the innermost
    drawn module box (``module M``) or frame (``cluster M``) whose module contains the node's."""
    drawn = set(titles.values())
    boxes = {}
    for t, v in titles.items():
        kind, _, m = t.partition(" ")
        if kind in ("module", "cluster"):
            boxes.setdefault(m, v)
    out = {}
    for v in analysis.order:
        mod = analysis.graph.nodes[v].get("module")
        if str(v) in drawn or not isinstance(mod, str):
            continue
        best = max((m for m in boxes if mod == m or mod.startswith(m + ".")), key=len, default=None)
        if best is not None:
            out[str(v)] = boxes[best]
    return dict(sorted(out.items()))


def _clean_svg(svg):
    """Graphviz's SVG without its XML prolog and doctype, and without any script."""
    svg = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", "", svg)
    svg = re.sub(r"<script\b.*?</script\s*>", "", svg, flags=re.S | re.I)
    svg = re.sub(r"\son\w+\s*=\s*(\"[^\"]*\"|'[^']*')", "", svg)
    return svg.strip()


def _json(data) -> str:
    """JSON safe inside a ``<script>`` element: every ``<`` (so ``</script``, ``<!--``) and ``>``, ``&``
    as JSON escapes, which ``JSON.parse`` reads back unchanged."""
    return (json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def to_html(analysis, svg=None, title=None, max_features=256) -> str:
    """The interactive report of ``analysis`` as one HTML document.

    Parameters
    ----------
    analysis : Analysis
        The result of :func:`rfgraph.analyze`.
    svg : str, optional
        The diagram as Graphviz drew it from :func:`rfgraph.to_dot` (``dot -Tsvg``). Without it the
        page says the graph was not drawn and keeps the table and the panel.
    title : str, optional
        The page's title (default: "rfgraph report").
    max_features : int
        Per-feature bounds are embedded for at most this many features per axis and node; longer
        axes are subsampled (every k-th feature).

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
    mis = {m.node: m for m in analysis.misaligned()}
    titles = {}
    if svg is not None:
        for t in re.findall(r"<title>(.*?)</title>", svg, flags=re.S):
            t = html.unescape(t)
            v = node_for_title(analysis, t)
            if v is not None:
                titles[t] = str(v)
    data = {
        "input_size": _value(analysis.input_size),
        "max_features": max_features,
        "nodes": [_node_data(analysis, v, mis, max_features) for v in analysis.order],
        "titles": dict(sorted(titles.items())),
        "owners": _owners(analysis, titles),
    }
    name = title or "rfgraph report"
    graph = _clean_svg(svg) if svg is not None else \
        '<p class="nograph">The graph was not drawn (Graphviz\'s <code>dot</code> was not found).</p>'
    return _PAGE.replace("%%TITLE%%", html.escape(name)).replace("%%GRAPH%%", graph) \
        .replace("%%DATA%%", _json(data)).replace("%%STYLE%%", _STYLE).replace("%%SCRIPT%%", _SCRIPT)


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
<button id="zoom-in" title="zoom in">+</button><button id="zoom-out" title="zoom out">&minus;</button>
<button id="zoom-fit" title="fit the graph">fit</button></header>
<main>
<section id="graph">%%GRAPH%%</section>
<aside id="panel"><p class="hint">Click a box of the graph (or a module's frame, or a table row)
to see its receptive field.</p></aside>
</main>
<section id="nodes"><h2>All nodes</h2><p class="hint">Click a column to sort, a row to open it.</p>
<table id="table"><thead></thead><tbody></tbody></table></section>
<script type="application/json" id="rf-data">%%DATA%%</script>
<script>%%SCRIPT%%</script>
</body>
</html>
"""

_STYLE = """
body{font:13px/1.4 Helvetica,Arial,sans-serif;margin:0;color:#222}
header{display:flex;gap:8px;align-items:center;padding:6px 12px;border-bottom:1px solid #ccc;background:#fafafa}
h1{font-size:16px;margin:0 12px 0 0}h2{font-size:14px;margin:8px 0}
#search{width:280px;padding:3px 6px}#matches{color:#666;min-width:80px}
main{display:flex;height:70vh;border-bottom:1px solid #ccc}
#graph{flex:1;overflow:hidden;position:relative;cursor:grab;background:#fff}
#graph svg{width:100%;height:100%;display:block}
#graph.dragging{cursor:grabbing}
#graph g.node,#graph g.cluster{cursor:pointer}
#graph g.edge{pointer-events:none}
#graph g.hit polygon,#graph g.hit ellipse,#graph g.hit path{stroke:#e6550d;stroke-width:3px}
#graph g.selected polygon,#graph g.selected ellipse,#graph g.selected path{stroke:#d62728;stroke-width:4px}
#panel{width:400px;overflow:auto;padding:8px 12px;border-left:1px solid #ccc;background:#fcfcfc}
#panel h2{word-break:break-all}
#panel table{border-collapse:collapse;margin:4px 0 8px}
#panel td,#panel th{border:1px solid #ddd;padding:2px 6px;text-align:left}
.hint{color:#666}.warn{color:#b30000}.nograph{padding:20px;color:#666}
#rfcanvas{border:1px solid #999;background:#fff;cursor:crosshair}
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
var svg = graph.querySelector("svg");
var panel = document.getElementById("panel");
var AXES = DATA.input_size.length === 2 ? ["H", "W"] : DATA.input_size.map(function (_, i) { return "axis " + i; });

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

// -- pan and zoom: the SVG's viewBox --------------------------------------------------------------
var box0 = null, box = null;
if (svg) {
  var vb = svg.viewBox && svg.viewBox.baseVal;
  box0 = vb && vb.width ? [vb.x, vb.y, vb.width, vb.height] :
    [0, 0, parseFloat(svg.getAttribute("width")) || 800, parseFloat(svg.getAttribute("height")) || 600];
  svg.removeAttribute("width"); svg.removeAttribute("height");
  svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
  box = box0.slice();
}
function setBox() { if (svg) svg.setAttribute("viewBox", box.join(" ")); }
function zoom(f, cx, cy) {
  if (!svg) return;
  var r = svg.getBoundingClientRect();
  var s = Math.max(box[2] / r.width, box[3] / r.height);
  var ox = box[0] + (box[2] - r.width * s) / 2, oy = box[1] + (box[3] - r.height * s) / 2;
  var px = cx === undefined ? box[0] + box[2] / 2 : ox + (cx - r.left) * s;
  var py = cy === undefined ? box[1] + box[3] / 2 : oy + (cy - r.top) * s;
  box = [px - (px - box[0]) * f, py - (py - box[1]) * f, box[2] * f, box[3] * f];
  setBox();
}
function fit() { if (svg) { box = box0.slice(); setBox(); } }
function centreOn(g) {
  if (!svg || !g.getBBox) return;
  var b = g.getBBox();
  var w = Math.max(b.width * 4, Math.min(box0[2], 600)), h = Math.max(b.height * 4, Math.min(box0[3], 400));
  // getBBox is in the element's user space; Graphviz wraps everything in one translated group
  var m = g.getCTM(), sm = svg.getScreenCTM(), root = svg.createSVGPoint();
  root.x = b.x + b.width / 2; root.y = b.y + b.height / 2;
  if (m && sm) { root = root.matrixTransform(sm.inverse().multiply(m)); }
  box = [root.x - w / 2, root.y - h / 2, w, h];
  setBox();
}
if (svg) {
  setBox();
  graph.addEventListener("wheel", function (e) {
    e.preventDefault(); zoom(e.deltaY < 0 ? 0.85 : 1 / 0.85, e.clientX, e.clientY);
  }, {passive: false});
  var drag = null;
  graph.addEventListener("mousedown", function (e) {
    drag = {x: e.clientX, y: e.clientY, box: box.slice(), moved: false};
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; graph.classList.add("dragging"); }
    if (!drag.moved) return;
    var r = svg.getBoundingClientRect();
    var s = Math.max(drag.box[2] / r.width, drag.box[3] / r.height);
    box = [drag.box[0] - dx * s, drag.box[1] - dy * s, drag.box[2], drag.box[3]];
    setBox();
  });
  window.addEventListener("mouseup", function () {
    graph.classList.remove("dragging");
    setTimeout(function () { drag = null; }, 0);
  });
}
document.getElementById("zoom-in").onclick = function () { zoom(0.8); };
document.getElementById("zoom-out").onclick = function () { zoom(1.25); };
document.getElementById("zoom-fit").onclick = fit;

// -- diagram elements -> nodes --------------------------------------------------------------------
var ELEMS = {};  // node name -> [g, ...]
if (svg) {
  svg.querySelectorAll("g.node, g.cluster").forEach(function (g) {
    var t = g.querySelector("title");
    var key = t ? t.textContent : "";
    var name = DATA.titles[key];
    if (name === undefined) return;
    g.setAttribute("data-title", key);
    g.setAttribute("data-node", name);
    (ELEMS[name] = ELEMS[name] || []).push(g);
    g.addEventListener("click", function (e) {
      if (drag && drag.moved) return;
      e.stopPropagation();
      select(name, false);
    });
  });
}

// -- the panel ------------------------------------------------------------------------------------
var current = null;
function select(name, centre) {
  var d = BY[name];
  if (!d) return;
  current = d;
  document.querySelectorAll(".selected").forEach(function (e) { e.classList.remove("selected"); });
  (ELEMS[name] || []).forEach(function (g) { g.classList.add("selected"); });
  var row = document.querySelector('#table tbody tr[data-index="' + d.index + '"]');
  if (row) row.classList.add("selected");
  var shown = ELEMS[name] || ELEMS[DATA.owners[name]];
  if (shown && !ELEMS[name]) shown.forEach(function (g) { g.classList.add("selected"); });
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
function showPanel(d) {
  panel.textContent = "";
  panel.appendChild(el("h2", d.name));
  panel.appendChild(el("p", d.label + (d.module ? "  -  module " + d.module : "")));
  var summary = el("p", "rf " + d.cells.rf + ", jump " + d.cells.jump + ", start " + d.cells.start +
                    ", n " + d.cells.n + ", padding " + d.cells.padding);
  summary.id = "summary";
  panel.appendChild(summary);
  panel.appendChild(el("h3", "RF of the feature under the mouse"));
  if (d.n.length > 2) panel.appendChild(el("p", "drawn for 1-D and 2-D inputs only", "hint"));
  else rfCanvas(d);
  var fields = ["n", "jump", "rf", "start", "padding", "exact", "contiguous", "global", "global_from"];
  var rows = fields.map(function (f) {
    return [f].concat(d[f].map(function (v) { return fmt(v); }));
  });
  rows.push(["gaps"].concat(d.gaps.map(function (g) { return g && g.length ? fmt(g) : "none"; })));
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
}
function rfCanvas(d) {
  var c = el("canvas"); c.id = "rfcanvas"; c.width = 300; c.height = d.n.length === 2 ? 300 : 100;
  panel.appendChild(c);
  var info = el("p", "move the mouse over the input", "hint"); info.id = "rfinfo";
  panel.appendChild(info);
  if (d.step.some(function (s) { return s > 1; }))
    panel.appendChild(el("p", "bounds subsampled: every " + fmt(d.step) + "-th feature (more than " +
                              DATA.max_features + " features on an axis)", "hint"));
  drawRF(c, info, d, null);
  c.addEventListener("mousemove", function (e) {
    var r = c.getBoundingClientRect();
    drawRF(c, info, d, [e.clientX - r.left, e.clientY - r.top]);
  });
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
function drawRF(c, info, d, mouse) {
  var g = c.getContext("2d"), v = view(c, d), size = DATA.input_size;
  g.clearRect(0, 0, c.width, c.height);
  var W = size[v.ax[0]], H = v.two ? size[v.ax[1]] : 1;
  g.fillStyle = "#f0f0f0"; g.fillRect(v.X(0), v.Y(0), W * v.s, H * v.sy);
  g.strokeStyle = "#333"; g.lineWidth = 1; g.strokeRect(v.X(0), v.Y(0), W * v.s, H * v.sy);
  if (!mouse) return;
  var px = (mouse[0] - 10) / v.s + v.lo[0], py = v.two ? (mouse[1] - 10) / v.sy + v.lo[1] : 0;
  var idx = [], box = [];
  v.ax.forEach(function (a, k) {
    var i = nearest(d, a, k === 0 ? px : py), b = d.bounds[a];
    idx[a] = i * d.step[a];
    box[k] = [b[0][i], b[1][i] + 1, b[2][i], b[3][i] + 1];
  });
  if (!v.two) box[1] = [0, 1, 0, 1];
  var seen = box[0][2] < box[0][3] && box[1][2] < box[1][3];
  if (seen) {
    g.fillStyle = "rgba(31,119,180,0.35)";
    g.fillRect(v.X(box[0][2]), v.Y(box[1][2]), (box[0][3] - box[0][2]) * v.s, (box[1][3] - box[1][2]) * v.sy);
  }
  g.setLineDash([5, 3]); g.strokeStyle = "#1f77b4"; g.lineWidth = 1.5;
  g.strokeRect(v.X(box[0][0]), v.Y(box[1][0]), (box[0][1] - box[0][0]) * v.s, (box[1][1] - box[1][0]) * v.sy);
  g.setLineDash([]);
  var names = v.two ? ["cols", "rows"] : ["pixels"];
  var parts = v.ax.map(function (a, k) {
    return names[k] + " " + box[k][0] + ".." + (box[k][1] - 1) +
           (seen && (box[k][2] !== box[k][0] || box[k][3] !== box[k][1]) ? " (sees " + box[k][2] + ".." + (box[k][3] - 1) + ")" : "");
  });
  if (v.two) parts.reverse();
  info.textContent = "feature (" + idx.join(", ") + "): " + parts.join("; ") +
                     (seen ? "" : " - only padding") + "; dashed: theoretical RF, tinted: pixels seen";
}

// -- search ---------------------------------------------------------------------------------------
var search = document.getElementById("search"), matchInfo = document.getElementById("matches");
function matches(q) {
  q = q.toLowerCase();
  return q ? DATA.nodes.filter(function (d) {
    return d.name.toLowerCase().indexOf(q) >= 0 || (d.module || "").toLowerCase().indexOf(q) >= 0;
  }) : [];
}
search.addEventListener("input", function () {
  var found = matches(search.value), names = {};
  found.forEach(function (d) { names[d.name] = 1; });
  document.querySelectorAll("#graph g.hit").forEach(function (g) { g.classList.remove("hit"); });
  Object.keys(names).forEach(function (n) { (ELEMS[n] || []).forEach(function (g) { g.classList.add("hit"); }); });
  document.querySelectorAll("#table tbody tr").forEach(function (tr) {
    tr.style.display = !search.value || names[DATA.nodes[+tr.getAttribute("data-index")].name] ? "" : "none";
  });
  matchInfo.textContent = search.value ? found.length + " match" + (found.length === 1 ? "" : "es") : "";
});
search.addEventListener("keydown", function (e) {
  if (e.key !== "Enter") return;
  var q = search.value.toLowerCase(), found = matches(q);
  var exact = found.filter(function (d) { return d.name.toLowerCase() === q; });
  var drawn = found.filter(function (d) { return ELEMS[d.name] || ELEMS[DATA.owners[d.name]]; });
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
window.rfReport = {select: select, data: DATA};
})();
"""
