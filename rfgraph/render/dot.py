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

__all__ = ["to_dot", "module_depth", "PALETTE", "RF_CLASSES", "MAX_ITEMS", "MAX_EDGES", "rf_class"]

#: Graphs with more nodes than this are collapsed by module (when ``depth`` is not given).
MAX_ITEMS = 150
#: ... or more edges than this (between the items drawn).
MAX_EDGES = 300
#: The default view expands one block of each kind while the drawing needs at most this many
#: rows (about one page at 72 dpi).
MAX_RANKS = 22
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


def module_depth(analysis) -> int:
    """The deepest module level of the graph (``layer3.5.conv1``: 3; 0 without modules): the
    ``depth`` past which :func:`to_dot` draws every node.

    >>> import rfgraph
    >>> module_depth(rfgraph.analyze(rfgraph.chain([("c1", "conv", 3, 1, 1)], 8)))
    0
    """
    return _Modules(analysis).max_depth


def _q(text) -> str:
    """A DOT double-quoted string; backslashes are escaped so ``\\N``-style escapes never fire."""
    s = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + s.replace("\n", "\\n") + '"'




def _numbers(rec):
    src = [g for g in rec.global_from if g is not None]
    if len(src) == rec.naxes:
        # every feature sees the whole input: its hull (padding included) would only mislead
        return [f"n {_v(rec.n)}", f"global (whole input), from {', '.join(sorted(set(map(str, src))))}"]
    return [f"n {_v(rec.n)}  jump {_v(rec.jump)}", f"rf {_v(rec.rf)}  start {_v(rec.start)}"]


def _flags(rec):
    """Label lines and style for what makes a record special: misaligned, global, gaps."""
    lines, style = [], {}
    if rec.is_misaligned:
        lines.append(f"MISALIGNED by {_v(rec.misalignment)}")
        style.update(color=MISALIGNED, penwidth="2.5")
    src = sorted({str(g) for g in rec.global_from if g is not None})
    if src and len([g for g in rec.global_from if g is not None]) < rec.naxes:
        lines.append("GLOBAL (from " + ", ".join(src) + ") along " + "x".join(
            "yes" if g is not None else "no" for g in rec.global_from))
    elif not src and any(rec.is_global):
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


def _node_attrs(analysis, v, folded=()):
    rec = analysis[v]
    attrs = analysis.graph.nodes[v]
    title = str(attrs["label"]) if attrs.get("label") else str(v)
    if rec.is_join:
        spread = _v(tuple(f"{lo}..{hi}" if lo != hi else lo for lo, hi in rec.rf_range))
        lines = [title, f"{rec.op} of {len(rec.branches)}, branch rf {spread}"] + _numbers(rec)
        if rec.is_misaligned:  # which branch sits where: what makes it misaligned
            for b in rec.branches[:MAX_BRANCHES]:
                off = "" if all(o == 0 for o in b.offset) else f" (offset {_v(b.offset)})"
                lines.append(f"{b.node}: rf {_v(b.rf)}{off}")
            if len(rec.branches) > MAX_BRANCHES:
                lines.append(f"... {len(rec.branches) - MAX_BRANCHES} more")
    else:
        lines = [title, analysis.op(v).text(attrs, rec.naxes)] + _numbers(rec)
    if folded:
        names = ", ".join(_short_name(u, v) for u in folded)
        lines[1] += " + " + (names if len(names) <= 30 else f"{len(folded)} pointwise ops")
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


def _short_name(u, host) -> str:
    """A folded pointwise node's name, without the module path it shares with its host."""
    u, host = str(u), str(host)
    prefix = host.rsplit(".", 1)[0] + "." if "." in host else ""
    short = u[len(prefix):] if prefix and u.startswith(prefix) else u
    if short.isdigit() and "." in prefix.rstrip("."):  # downsample.1, not a bare 1
        short = prefix.rstrip(".").rsplit(".", 1)[-1] + "." + short
    return short


def _box_attrs(analysis, module, members, out_node):
    rec = analysis[out_node]
    lines = [module, f"{len(members)} nodes"] + _numbers(rec)
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
    """One HTML-table node, short and wide: the colour classes side by side, then what shapes and
    outlines mean, so it sits beside the input without stretching the drawing."""
    size = "x".join(str(n) for n in analysis.input_size)
    n = len(_CLASS_LABELS)
    cells = "".join(f'<td bgcolor="{PALETTE[k]}"><font color="{"white" if k >= _DARK_FROM else "black"}">'
                    f'{_html(text)}</font></td>' for k, text in enumerate(_CLASS_LABELS))
    meanings = ["hexagon: join", f'<font color="{MISALIGNED}">red: misaligned join</font>',
                f'<font color="{GLOBAL}">purple: global (whole input)</font>', "dashed: RF with gaps"]
    if has_boxes:
        meanings.append("3-D box: collapsed module (RF at its output); folder: identical blocks")
    half = (len(meanings) + 1) // 2
    rows = [f'<tr><td colspan="{n}"><b>fill: rf / input {size}</b></td></tr>', f"<tr>{cells}</tr>"]
    rows += [f'<tr><td colspan="{n}">{" &#183; ".join(part)}</td></tr>'
             for part in (meanings[:half], meanings[half:]) if part]
    table = ('<font point-size="9"><table border="0" cellborder="1" cellspacing="0" cellpadding="2">'
             + "".join(rows) + "</table></font>")
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

    def child(self, v, module):
        """The convex module just below ``module`` that holds ``v`` (None: ``v`` is directly in it)."""
        parts = self.parts[v]
        for level in range(len(module.split(".")) + 1, len(parts) + 1):
            m = ".".join(parts[:level])
            if self.convex(m):
                return m
        return None

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


def _block_depth(analysis, mods, drawn, fit):
    """The level of the network's *blocks*: the deepest depth up to ``fit`` at which some
    collapsed module holds a join (a residual block, an Inception mixed block, a dense layer) and
    the collapsed drawing fits :data:`MAX_RANKS` rows. Collapsing there and expanding the first
    block of each kind shows every kind of branch."""
    G = analysis.graph
    if fit == math.inf:
        every = {v: ("node", v) for v in drawn}
        _fold_pointwise(analysis, drawn, every)
        if _ranks(G, drawn, every) <= MAX_RANKS:
            return fit  # the whole network fits on the page
        fit = mods.max_depth
    shallowest = None
    for d in range(int(fit), -1, -1):
        item_of, clusters_of = _items(mods, drawn, d)
        if not any(it[0] == "box" and analysis.op(v).join for v, it in item_of.items()):
            continue
        shallowest = d
        if _ranks(G, drawn, _with_runs(G, drawn, item_of, clusters_of)) <= MAX_RANKS:
            return d
    return fit if shallowest is None else shallowest


def _with_runs(G, drawn, item_of, clusters_of) -> dict:
    """``item_of`` with each run of identical sibling boxes as one item (what folding draws): a
    box joins the run of the box before it when they are alike and that box's only edge leads to
    it, as :func:`to_dot` folds (DenseNet's dense layers are alike but each reads all before it)."""
    members = {}
    for v in drawn:
        if item_of[v][0] == "box":
            members.setdefault(item_of[v], []).append(v)
    outs, ins = {}, {}
    for u in drawn:
        for w in G.succ[u]:
            a, b = item_of[u], item_of.get(w)
            if b is not None and a != b:
                outs.setdefault(a, set()).add(b)
                ins.setdefault(b, set()).add(a)
    run_of, prev = {}, None
    for box, ms in members.items():
        key = (clusters_of[box], _signature(G, box[1], ms))
        linked = prev is not None and prev[1] == key and outs.get(prev[0]) == {box} and ins.get(box) == {prev[0]}
        run_of[box] = run_of[prev[0]] if linked else box
        prev = (box, key)
    return {v: run_of.get(it, it) for v, it in item_of.items()}


def _unbox_single_ops(analysis, drawn, item_of, clusters_of):
    """A collapsed module that holds one op and its pointwise followers (a conv + BN + ReLU
    module) is drawn as that op, which lists them: a box would hide its parameters."""
    members = {}
    for v in drawn:
        if item_of[v][0] == "box":
            members.setdefault(item_of[v], []).append(v)
    for box, ms in members.items():
        ops = [v for v in ms if not analysis.op(v).pointwise]
        if len(ops) == 1 and ms[0] == ops[0]:
            for v in ms:
                item_of[v] = ("node", v)
                clusters_of[("node", v)] = clusters_of[box]


def _fold_pointwise(analysis, drawn, item_of) -> dict:
    """Draw each pointwise node (one input) inside the box of the node that feeds it; returns
    ``{host: [folded nodes]}``. Changes ``item_of``."""
    G = analysis.graph
    folded = {}
    for v in drawn:
        preds = [u for u in G.pred[v] if u in item_of]
        if item_of[v][0] == "node" and analysis.op(v).pointwise and len(preds) == 1 \
                and item_of[preds[0]][0] == "node" and len(G.pred[v]) == 1:
            host = item_of[preds[0]]
            item_of[v] = host
            folded.setdefault(host[1], []).append(v)
    return folded


def _ranks(G, drawn, item_of) -> int:
    """Rows the drawing needs (top to bottom): the longest chain of items."""
    longest = {}
    for v in drawn:  # topological order
        it = item_of[v]
        here = max([longest.get(item_of[u], 0) + (item_of[u] != it) for u in G.pred[v] if u in item_of],
                   default=1)
        longest[it] = max(longest.get(it, 1), here)
    return max(longest.values(), default=0)


def _expand_first_of_each_kind(analysis, mods, drawn, item_of, clusters_of, keep_pointwise):
    """Draw the first collapsed block of each kind (same ops and wiring, by :func:`_signature`)
    node by node, in a cluster of its own, so the default view shows what each kind of block does
    inside (its branches, its join) while the repeats stay boxes; kinds are expanded in order while
    the drawing stays within :data:`MAX_RANKS` rows and :data:`MAX_EDGES` edges.

    A block too big to draw node by node (a DenseNet dense block: six dense layers, each a join)
    is opened one level instead, its sub-modules as boxes, and the first sub-block of each kind
    inside it is expanded the same way: one dense layer drawn with its concat and branch RFs."""
    G = analysis.graph
    seen = set()

    def fits(items, clusters):
        counted = _with_runs(G, drawn, items, clusters)  # a run of identical boxes is one row
        if not keep_pointwise:
            _fold_pointwise(analysis, drawn, counted)
        if _ranks(G, drawn, counted) > MAX_RANKS:
            return False
        return len({(items[u], items[w]) for u in drawn for w in G.succ[u]
                    if w in items and items[u] != items[w]}) <= MAX_EDGES

    def boxes(among):
        members = {}
        for v in drawn:
            if item_of[v][0] == "box" and item_of[v] in among:
                members.setdefault(item_of[v], []).append(v)
        return members  # in order of first appearance

    def open_(box, ms, child):
        """``item_of``/``clusters_of`` with ``box`` opened: each member drawn itself, or in the
        box of its sub-module (``child(v)``, None: drawn itself)."""
        items, clusters = dict(item_of), dict(clusters_of)
        inside = clusters_of[box] + (box[1],)
        for v in ms:
            c = child(v)
            it = ("box", c) if c is not None else ("node", v)
            items[v] = it
            clusters[it] = inside
        return items, clusters

    def expand(among) -> bool:
        """Expand the first box of each kind among ``among``; True when a block with a join
        was drawn node by node."""
        shown = False
        for box, ms in boxes(among).items():
            sig = _signature(G, box[1], ms, params=False)  # the kind: ops and wiring, any sizes
            if sig in seen:
                continue
            seen.add(sig)
            trial = open_(box, ms, lambda v: None)
            if fits(*trial):
                item_of.update(trial[0])
                clusters_of.update(trial[1])
                shown = shown or any(analysis.op(v).join for v in ms)
                continue
            below = {v: mods.child(v, box[1]) for v in ms}
            count = {}
            for c in below.values():
                count[c] = count.get(c, 0) + 1
            child = lambda v: below[v] if below[v] is not None and count[below[v]] > 1 else None  # noqa: E731
            trial = open_(box, ms, child)
            if len(set(trial[0][v] for v in ms)) < 2 or not fits(*trial):
                continue  # this kind stays a box: opening it would not fit the page, or show nothing
            # open one level, then the first sub-block of each kind; kept only when that draws a
            # block with a join (a dense layer), else a box renamed to its sub-modules' boxes
            saved = dict(item_of), dict(clusters_of), set(seen)
            item_of.update(trial[0])
            clusters_of.update(trial[1])
            if expand({("box", child(v)) for v in ms if child(v) is not None}):
                shown = True
            else:
                for now, before in zip((item_of, clusters_of, seen), saved):
                    now.clear()
                    now.update(before)
                seen.add(sig)
        return shown

    expand({item_of[v] for v in drawn})


def _signature(G, module, members, params=True):
    """What a block computes, independent of its name: ops, parameters (unless ``params`` is
    False), relative module names and internal wiring. Two blocks with equal signatures are
    drawn as one when folded."""
    index = {v: i for i, v in enumerate(members)}
    nodes = []
    for v in members:
        attrs = G.nodes[v]
        what = tuple(sorted((k, repr(val)) for k, val in attrs.items()
                            if k not in _INFO and (params or k == "op")))
        m = _module_of(attrs) or ""
        nodes.append((what, m[len(module):]))
    edges = tuple(sorted((index[u], index[w]) for u in members for w in G.succ[u] if w in index))
    return tuple(nodes), edges


def to_dot(analysis, depth=None, nodes=None, fold=True, keep_pointwise=False, rankdir="TB",
           legend=True, title=None) -> str:
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
    keep_pointwise : bool
        Draw pointwise nodes (BatchNorm, activations, dropout: ops whose features are their
        input's) as boxes of their own; by default each folds into the op that feeds it, which
        lists them (their numbers are its numbers).
    rankdir : {"TB", "LR", "BT", "RL"}
        Graphviz's layout direction.
    legend : bool
        Draw the colour legend.
    title : str, optional
        The diagram's title (default: the input size, node count and misaligned joins).

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
    auto = depth is None
    if auto:
        depth = _block_depth(analysis, mods, drawn, _auto_depth(mods, drawn))
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"rankdir must be TB, LR, BT or RL, got {rankdir!r}")
    item_of, clusters_of = _items(mods, drawn, depth)
    pos = mods.pos
    if auto:
        _expand_first_of_each_kind(analysis, mods, drawn, item_of, clusters_of, keep_pointwise)
    if not keep_pointwise:
        _unbox_single_ops(analysis, drawn, item_of, clusters_of)
    folded = {} if keep_pointwise else _fold_pointwise(analysis, drawn, item_of)

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
            attrs = _node_attrs(analysis, it[1], folded.get(it[1], ()))
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
        f'  graph [rankdir={rankdir}, newrank=true, fontname="Helvetica", fontsize=11, labelloc=t, '
        f'ranksep=0.25, nodesep=0.25, label={_q(_title(analysis) if title is None else title)}];',
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, margin="0.08,0.03"];',
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
    if legend:
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
