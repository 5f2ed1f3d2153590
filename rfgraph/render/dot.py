"""Graphviz DOT source of an analysis: the network drawn with its receptive fields.

Pure text, no Graphviz needed (:mod:`rfgraph.render.graphviz` runs ``dot`` on it). Every node shows
its name, op and parameters, and ``n``, ``jump``, ``rf`` and ``start`` (one value when the axes
agree, else one per axis, e.g. ``7x1``). The fill colour encodes the RF relative to the input size
(a legend explains the classes); joins are hexagons listing what each branch contributes,
misaligned joins are red, global nodes purple, RFs with gaps dashed.

Modules (the ``module`` node attribute, dotted qualnames such as ``layer3.5.conv1``) become
clusters. ``depth=N`` shows modules down to depth ``N`` as clusters and collapses each deeper module
into one box that shows the RF at its output; ``fold`` merges a chain of identical collapsed
blocks (ResNet's ``layer3.1`` ... ``layer3.35``) into one box. By default a graph of more than
:data:`MAX_ITEMS` nodes (or :data:`MAX_EDGES` edges) is collapsed to the deepest level that stays
within both, so ResNet-152 or DenseNet-201 stay readable.
"""

from __future__ import annotations

import math

from ..schema import module_outputs
from ._format import per_axis as _v

__all__ = ["to_dot", "PALETTE", "RF_CLASSES", "MAX_ITEMS", "MAX_EDGES", "rf_class"]

#: Graphs with more nodes than this are collapsed by module (when ``depth`` is not given).
MAX_ITEMS = 150
#: ... or more edges than this (between the items drawn).
MAX_EDGES = 300
#: Chains of at least this many identical collapsed blocks are folded into one box.
FOLD_MIN = 3
#: Joins list at most this many branches; DenseNet's concats have dozens of inputs.
MAX_BRANCHES = 8

#: Upper bounds (exclusive) of the classes of ``rf / input size``; the last class is ">= 1".
RF_CLASSES = (1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)
#: ColorBrewer "Blues", light to dark: one colour per class of :data:`RF_CLASSES`, plus ">= 1".
PALETTE = ("#f7fbff", "#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c")
# The darkest fills need white text to stay legible.
_DARK_FROM = 6
_CLASS_LABELS = ("< 1/64", "1/64 - 1/32", "1/32 - 1/16", "1/16 - 1/8", "1/8 - 1/4", "1/4 - 1/2",
                 "1/2 - 1", ">= 1 (whole input)")

MISALIGNED = "#d62728"
GLOBAL = "#6a3d9a"

# Attributes that describe a node for people or the front-end, not its computation; they do not
# make two blocks different when folding.
_INFO = frozenset({"label", "module", "source", "note", "info", "target"})

def rf_class(rf, input_size) -> int:
    """Colour class of an RF: index into :data:`PALETTE` by the largest ``rf / input`` over axes.

    >>> rf_class((7, 7), (224, 224)), rf_class((224, 1), (224, 224)), rf_class((300,), (224,))
    (2, 7, 7)
    """
    ratio = max(r / n for r, n in zip(rf, input_size))
    for i, bound in enumerate(RF_CLASSES):
        if ratio < bound:
            return i
    return len(RF_CLASSES)


def _q(text) -> str:
    """A DOT double-quoted string; backslashes are escaped so ``\\N``-style escapes never fire."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s.replace("\n", "\\n") + '"'




def _numbers(rec):
    return [f"n {_v(rec.n)}  jump {_v(rec.jump)}", f"rf {_v(rec.rf)}  start {_v(rec.start)}"]


def _flags(rec):
    """Label lines and style for what makes a record special: misaligned, global, gaps."""
    lines, style = [], {}
    if rec.is_misaligned:
        lines.append(f"MISALIGNED by {_v(rec.misalignment)}")
        style.update(color=MISALIGNED, penwidth="2.5")
    src = sorted({str(g) for g in rec.global_from if g is not None})
    if src:
        lines.append("GLOBAL (from " + ", ".join(src) + ")")
    elif any(rec.is_global):
        lines.append("covers the whole input")
    if any(rec.is_global) and "color" not in style:
        style.update(color=GLOBAL, penwidth="2.5")
    if any(c is False for c in rec.contiguous):
        gaps = ["-" if not g else ",".join(str(lo) if lo == hi else f"{lo}..{hi}" for lo, hi in g)
                for g in rec.gaps]
        lines.append("RF gaps at offsets " + (gaps[0] if all(g == gaps[0] for g in gaps) else " x ".join(gaps)))
        style["dashed"] = True
    if rec.position_dependent:
        lines.append("rf " + _v(tuple(f"{lo}..{hi}" if lo != hi else lo for lo, hi in rec.rf_extent))
                     + " over features (feature 0 shown)")
    elif not all(rec.exact):
        lines.append("varies per position")
    if rec.note:
        # what the front-end approximated (an op mapped to global or identity) must be seen
        lines.append("note: " + (rec.note if len(rec.note) <= 60 else rec.note[:57] + "..."))
    return lines, style


def _fill(rec, input_size):
    k = rf_class(rec.rf, input_size)
    attrs = {"fillcolor": PALETTE[k]}
    if k >= _DARK_FROM:
        attrs["fontcolor"] = "white"
    return attrs


def _attr_list(attrs) -> str:
    return "[" + ", ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "]"


def _node_attrs(analysis, v):
    rec = analysis[v]
    attrs = analysis.graph.nodes[v]
    if rec.is_join:
        spread = _v(tuple(f"{lo}..{hi}" if lo != hi else lo for lo, hi in rec.rf_range))
        lines = [str(v), f"{rec.op} of {len(rec.branches)}, branch rf {spread}"] + _numbers(rec)
        for b in rec.branches[:MAX_BRANCHES]:
            off = "" if all(o == 0 for o in b.offset) else f" (offset {_v(b.offset)})"
            lines.append(f"{b.node}: rf {_v(b.rf)}{off}")
        if len(rec.branches) > MAX_BRANCHES:
            lines.append(f"... {len(rec.branches) - MAX_BRANCHES} more")
    else:
        lines = [str(v), analysis.op(v).text(attrs, rec.naxes)] + _numbers(rec)
    flag_lines, style = _flags(rec)
    lines += flag_lines
    out = {"label": "\n".join(lines)}
    if rec.is_join:
        out["shape"] = "hexagon"
    if style.pop("dashed", False):
        out["style"] = "rounded,filled,dashed" if not rec.is_join else "filled,dashed"
    elif rec.is_join:
        out["style"] = "filled"
    out.update(_fill(rec, analysis.input_size))
    out.update(style)
    return out


def _box_attrs(analysis, module, members, out_node):
    rec = analysis[out_node]
    lines = [module, f"{len(members)} nodes, output {out_node}"] + _numbers(rec)
    n_mis = sum(1 for v in members if analysis[v].is_misaligned)
    return _summary_box(analysis, rec, lines, n_mis, "box3d")


def _summary_box(analysis, rec, lines, n_mis, shape):
    """Attributes of a box standing for several nodes, ``rec`` being the one at its output."""
    flag_lines, style = _flags(rec)
    if rec.is_misaligned:
        flag_lines = flag_lines[1:]  # counted below with the others inside
    if n_mis:
        flag_lines.insert(0, f"{n_mis} MISALIGNED join{'s' if n_mis > 1 else ''} inside")
        style.update(color=MISALIGNED, penwidth="2.5")
    out = {"label": "\n".join(lines + flag_lines), "shape": shape}
    out["style"] = "filled,dashed" if style.pop("dashed", False) else "filled"
    out.update(_fill(rec, analysis.input_size))
    out.update(style)
    return out


def _fold_attrs(analysis, boxes, outs, members):
    first, last = analysis[outs[0]], analysis[outs[-1]]
    lines = [f"{boxes[0]} ... {boxes[-1]}",
             f"{len(boxes)} identical blocks of {len(members[0])} nodes",
             f"n {_v(last.n)}  jump {_v(last.jump)}",
             f"rf {_v(first.rf)} ... {_v(last.rf)}  start {_v(last.start)}"]
    n_mis = sum(1 for ms in members for v in ms if analysis[v].is_misaligned)
    return _summary_box(analysis, last, lines, n_mis, "folder")


def _legend(analysis, has_boxes) -> str:
    """One HTML-table node: a compact legend regardless of how many classes there are."""
    size = "x".join(str(n) for n in analysis.input_size)
    rows = [f'<tr><td colspan="2"><b>fill: rf / input {size}</b></td></tr>']
    for k, text in enumerate(_CLASS_LABELS):
        rows.append(f'<tr><td bgcolor="{PALETTE[k]}" width="24"></td><td align="left">{_html(text)}</td></tr>')
    rows.append('<tr><td colspan="2" align="left">hexagon: join (branch RFs listed)</td></tr>')
    rows.append(f'<tr><td colspan="2" align="left"><font color="{MISALIGNED}">red: misaligned join'
                '</font></td></tr>')
    rows.append(f'<tr><td colspan="2" align="left"><font color="{GLOBAL}">purple: global (whole input)'
                '</font></td></tr>')
    rows.append('<tr><td colspan="2" align="left">dashed: RF with gaps</td></tr>')
    if has_boxes:
        rows.append('<tr><td colspan="2" align="left">3-D box: collapsed module (RF at its output)'
                    '</td></tr>')
    table = '<table border="0" cellborder="1" cellspacing="0" cellpadding="3">' + "".join(rows) + "</table>"
    return f'  "legend" [shape=plaintext, style="", label=<{table}>];'


def _html(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- collapsing by module ---------------------------------------------------------------------------


def _module_of(attrs):
    m = attrs.get("module")
    return m if isinstance(m, str) and m else None


class _Modules:
    """The module tree of a graph: members of every module and whether it is convex.

    A module is *convex* when no path leaves it and comes back (a module called twice, like
    torchvision's shared ``relu``, is not); only convex modules can become one box or a cluster,
    because anything else would draw a cycle or a cluster that cuts through the flow.
    """

    def __init__(self, analysis):
        self.G = analysis.graph
        self.pos = {v: i for i, v in enumerate(analysis.order)}
        self.members = {}
        self.parts = {}
        for v in analysis.order:
            m = _module_of(self.G.nodes[v])
            parts = tuple(m.split(".")) if m else ()
            self.parts[v] = parts
            for level in range(1, len(parts) + 1):
                self.members.setdefault(".".join(parts[:level]), []).append(v)
        self._convex = {}

    def convex(self, module) -> bool:
        c = self._convex.get(module)
        if c is None:
            c = self._convex[module] = self._check_convex(module)
        return c

    def _check_convex(self, module) -> bool:
        inside = set(self.members[module])
        pos, succ = self.pos, self.G.succ
        last = max(pos[v] for v in inside)
        # a path that re-enters the module passes only through nodes placed before its last node
        stack = [w for v in inside for w in succ[v] if w not in inside and pos[w] < last]
        seen = set(stack)
        while stack:
            w = stack.pop()
            for x in succ[w]:
                if x in inside:
                    return False
                if x not in seen and pos[x] < last:
                    seen.add(x)
                    stack.append(x)
        return True

    def place(self, v, depth):
        """``(clusters, box)``: the enclosing convex modules shown as clusters, and the module
        that swallows ``v`` into a box (None when ``v`` is drawn itself)."""
        parts = self.parts[v]
        clusters = []
        for level in range(1, len(parts) + 1):
            m = ".".join(parts[:level])
            if not self.convex(m):
                continue
            if level > depth:
                return tuple(clusters), m
            clusters.append(m)
        return tuple(clusters), None

    @property
    def max_depth(self) -> int:
        return max((len(p) for p in self.parts.values()), default=0)


def _items(mods, drawn, depth):
    """Map each drawn node to its item: ``("node", v)`` or ``("box", module)``; and each item's
    clusters. A box that would hold a single node is drawn as that node."""
    placed = {v: mods.place(v, depth) for v in drawn}
    count = {}
    for v in drawn:
        box = placed[v][1]
        if box is not None:
            count[box] = count.get(box, 0) + 1
    item_of, clusters_of = {}, {}
    for v in drawn:
        clusters, box = placed[v]
        if box is not None and count[box] > 1:
            it = ("box", box)
        else:
            it = ("node", v)
            if box is not None:
                clusters = clusters + (box,)
        item_of[v] = it
        clusters_of[it] = clusters
    return item_of, clusters_of


def _auto_depth(mods, drawn):
    G = mods.G

    def fits(item_of):
        # dot's layout time grows quickly with edges: DenseNet's all-to-all concats at layer level
        # give ~2000 edges (minutes of layout, an unreadable picture) with only ~130 boxes
        if len(set(item_of.values())) > MAX_ITEMS:
            return False
        edges = {(item_of[u], item_of[w]) for u in drawn for w in G.succ[u]
                 if w in item_of and item_of[u] != item_of[w]}
        return len(edges) <= MAX_EDGES

    if mods.max_depth == 0 or fits({v: ("node", v) for v in drawn}):
        return math.inf
    best = 0
    for d in range(mods.max_depth + 1):
        if not fits(_items(mods, drawn, d)[0]):
            break
        best = d
    return best


def _signature(G, module, members):
    """What a block computes, independent of its name: ops, parameters, relative module names
    and internal wiring. Two blocks with equal signatures are drawn as one when folded."""
    index = {v: i for i, v in enumerate(members)}
    nodes = []
    for v in members:
        attrs = G.nodes[v]
        params = tuple(sorted((k, repr(val)) for k, val in attrs.items() if k not in _INFO))
        m = _module_of(attrs) or ""
        nodes.append((params, m[len(module):]))
    edges = tuple(sorted((index[u], index[w]) for u in members for w in G.succ[u] if w in index))
    return tuple(nodes), edges


def to_dot(analysis, depth=None, nodes=None, fold=True) -> str:
    """Graphviz DOT source of the network, annotated with receptive fields.

    Parameters
    ----------
    analysis : Analysis
        The result of :func:`rfgraph.analyze`.
    depth : int, optional
        Show modules down to this depth (``layer3`` is depth 1, ``layer3.5`` depth 2) as clusters
        and collapse each deeper module into one box showing the RF at its output (the module's
        ``module_outputs`` node, else its last node in topological order). ``0`` collapses every
        top-level module; ``math.inf`` shows every node. Default: every node when the graph has at
        most :data:`MAX_ITEMS` nodes and :data:`MAX_EDGES` edges, else the deepest level that
        draws within both limits.
    nodes : iterable, optional
        Draw only these nodes (and the edges between them); default all.
    fold : bool
        Fold a chain of at least :data:`FOLD_MIN` identical collapsed blocks into one box.

    Returns
    -------
    str
        DOT source; deterministic (items in topological order, edges sorted).

    Examples
    --------
    >>> import rfgraph
    >>> G = rfgraph.chain([("conv1", "conv", 3, 2, 1)], 64)
    >>> dot = to_dot(rfgraph.analyze(G))
    >>> print(dot.splitlines()[5])
      "conv1" [label="conv1\\nconv k3 s2 p1\\nn 32  jump 2\\nrf 3  start 0.5", fillcolor="#c6dbef"];
    """
    G = analysis.graph
    order = analysis.order
    if nodes is None:
        drawn = list(order)
    else:
        wanted = set(nodes)
        missing = [v for v in wanted if v not in analysis]
        if missing:
            raise KeyError(f"no node {sorted(missing, key=str)[0]!r} in the graph")
        drawn = [v for v in order if v in wanted]
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be >= 0, got {depth}")
    mods = _Modules(analysis)
    if depth is None:
        depth = _auto_depth(mods, drawn)
    item_of, clusters_of = _items(mods, drawn, depth)
    pos = mods.pos

    # members of each item, in topological order; the item sits where its first node sits
    members = {}
    for v in drawn:
        members.setdefault(item_of[v], []).append(v)
    outputs = module_outputs(G)

    edges = set()
    for u in drawn:
        for w in G.succ[u]:
            if w in item_of and item_of[u] != item_of[w]:
                edges.add((item_of[u], item_of[w]))

    # fold chains of identical sibling boxes: b1 -> b2 -> ... where each link is the only edge
    fold_of = {}
    if fold:
        outs, ins = {}, {}
        for a, b in edges:
            outs.setdefault(a, []).append(b)
            ins.setdefault(b, []).append(a)
        sig = {}

        def signature(it):
            if it not in sig:
                sig[it] = _signature(G, it[1], members[it])
            return sig[it]

        def links(a, b):
            return (b[0] == "box" and outs.get(a) == [b] and ins.get(b) == [a]
                    and clusters_of[a] == clusters_of[b] and signature(a) == signature(b))

        boxes = sorted((it for it in members if it[0] == "box"), key=lambda it: pos[members[it][0]])
        for it in boxes:
            if it in fold_of:
                continue
            prev = ins.get(it, [None])
            if len(prev) == 1 and prev[0] is not None and prev[0][0] == "box" and links(prev[0], it):
                continue  # not the head of a chain
            run = [it]
            while len(outs.get(run[-1], ())) == 1 and links(run[-1], outs[run[-1]][0]):
                run.append(outs[run[-1]][0])
            if len(run) >= FOLD_MIN:
                f = ("fold", tuple(b[1] for b in run))
                for b in run:
                    fold_of[b] = f
                members[f] = [v for b in run for v in members[b]]
                clusters_of[f] = clusters_of[run[0]]
        if fold_of:
            edges = {(fold_of.get(a, a), fold_of.get(b, b)) for a, b in edges}
            edges = {(a, b) for a, b in edges if a != b}
            for b in fold_of:
                del members[b]
                del clusters_of[b]

    items = sorted(members, key=lambda it: pos[members[it][0]])
    ids, used = {}, set()
    for it in items:
        base = str(it[1]) if it[0] == "node" else f"module {it[1]}" if it[0] == "box" \
            else f"fold {it[1][0]}..{it[1][-1]}"
        name, k = base, 2
        while name in used or name == "legend":
            name, k = f"{base}#{k}", k + 1
        used.add(name)
        ids[it] = name

    def stmt(it, indent):
        if it[0] == "node":
            attrs = _node_attrs(analysis, it[1])
        elif it[0] == "box":
            attrs = _box_attrs(analysis, it[1], members[it], _box_out(outputs, it[1], members[it]))
        else:
            runs = _split_fold(G, it, members[it])
            outs_ = [_box_out(outputs, b, ms) for b, ms in zip(it[1], runs)]
            attrs = _fold_attrs(analysis, list(it[1]), outs_, runs)
        return f"{indent}{_q(ids[it])} {_attr_list(attrs)};"

    # the cluster tree: a cluster is drawn only when it holds at least two items
    size = {}
    for it in items:
        for m in clusters_of[it]:
            size[m] = size.get(m, 0) + 1
    tree = {}
    for it in items:
        key = tuple(m for m in clusters_of[it] if size[m] > 1)
        tree.setdefault(key, []).append(it)

    lines = [
        "digraph rfgraph {",
        '  graph [rankdir=TB, newrank=true, fontname="Helvetica", fontsize=11, labelloc=t, '
        f'label={_q(_title(analysis))}];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555", arrowsize=0.6];',
    ]

    def emit(prefix, indent):
        # children of this cluster: its own items and sub-clusters, in order of first appearance
        here = [(pos[members[it][0]], 0, it) for it in tree.get(prefix, [])]
        subs = {}
        for key, its in tree.items():
            if len(key) > len(prefix) and key[:len(prefix)] == prefix:
                child = key[len(prefix)]
                first = min(pos[members[it][0]] for it in its)
                subs[child] = min(subs.get(child, first), first)
        here += [(p, 1, child) for child, p in subs.items()]
        for _, kind, x in sorted(here, key=lambda t: (t[0], t[1])):
            if kind == 0:
                lines.append(stmt(x, indent))
            else:
                lines.append(f"{indent}subgraph {_q('cluster ' + x)} {{")
                lines.append(f'{indent}  graph [label={_q(x)}, style="rounded,dashed", color="#999999", '
                             'fontcolor="#555555"];')
                emit(prefix + (x,), indent + "  ")
                lines.append(f"{indent}}}")

    emit((), "  ")
    for a, b in sorted(edges, key=lambda e: (pos[members[e[0]][0]], pos[members[e[1]][0]])):
        lines.append(f"  {_q(ids[a])} -> {_q(ids[b])};")
    lines.append(_legend(analysis, any(it[0] != "node" for it in items)))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _split_fold(G, fold_item, nodes):
    """The member lists of the boxes in a fold, from their modules."""
    out = []
    for module in fold_item[1]:
        prefix = module + "."
        out.append([v for v in nodes if (_module_of(G.nodes[v]) or "") == module
                    or (_module_of(G.nodes[v]) or "").startswith(prefix)])
    return out


def _box_out(outputs, module, ms):
    """A collapsed module's output: the front-end's ``module_outputs`` entry, else its last node."""
    o = outputs.get(module)
    return o if o in set(ms) else ms[-1]


def _title(analysis) -> str:
    size = "x".join(str(n) for n in analysis.input_size)
    mis = len(analysis.misaligned())
    text = f"receptive fields, input {size}, {len(analysis)} nodes"
    if mis:
        text += f", {mis} misaligned join{'s' if mis > 1 else ''}"
    return text
