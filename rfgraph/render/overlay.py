"""Receptive fields drawn on the input grid: where a few output features of one node look.

:func:`overlay_svg` is pure: it lays the picture out as a short list of shapes and writes them as
SVG text (no dependency, deterministic). :func:`overlay` writes that SVG, or draws the same shapes
with matplotlib for PNG. Each chosen feature's RF is drawn exactly:

- the theoretical hull (:meth:`RF.bounds <rfgraph.record.RF.bounds>` with ``clip=False``): a dashed
  outline, hatched where it lies in the padding outside the input;
- the pixels the feature really reads, tinted: per axis the exact pixel sets
  (:meth:`Analysis.pixels <rfgraph.engine.result.Analysis.pixels>`), so dilation holes stay holes;
  in 2-D the product of the row and column sets;
- at a join, one footprint per branch in the branch's colour (each the product of that input's
  per-axis sets), so a 1x3 and a 3x1 branch draw a cross, not the 3x3 hull.

Past a join of differently shaped branches a node's 2-D RF need not be a product of per-axis sets;
there the product is drawn (an upper bound) and the picture says so.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingDependencyError, ParameterError, RenderError
from ._files import write_atomic
from ._format import cell, per_axis

__all__ = ["overlay", "overlay_svg", "default_features", "load_image"]

#: One colour per feature (Tableau 10), cycled.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_WIDTH = 640  # drawing area, SVG pixels
_MAX_CELL = 40  # a tiny input still gets readable cells, not one giant square per pixel
_ROW = 32  # height of the single row of a 1-D input
_LEFT, _TOP, _RIGHT = 56, 70, 24
_LINE = 18  # legend line height
_GAP = 8  # between the lanes of a 1-D overlay
#: More rectangles than this for one footprint (a feature with very many holes) draws its hull.
_MAX_PIECES = 4096


def default_features(n) -> list:
    """First, centre and last output feature (duplicates removed) for per-axis sizes ``n``.

    >>> default_features((7, 7))
    [(0, 0), (3, 3), (6, 6)]
    >>> default_features((1,))
    [(0,)]
    """
    out = []
    for f in (tuple(0 for _ in n), tuple(k // 2 for k in n), tuple(k - 1 for k in n)):
        if f not in out:
            out.append(f)
    return out


def _features(rec, features):
    if features is None:
        return default_features(rec.n)
    out = []
    for f in features:
        idx = (f,) if isinstance(f, int) and not isinstance(f, bool) else tuple(f)
        if len(idx) != rec.naxes or not all(isinstance(i, int) and not isinstance(i, bool) for i in idx):
            raise ParameterError(f"feature {f!r} must be {rec.naxes} integer index(es), one per axis",
                                 node=rec.name, op=rec.op)
        norm = []
        for i, n in zip(idx, rec.n):
            if not -n <= i < n:
                raise ParameterError(f"feature {f!r} is out of range for output size {cell(rec.n)}",
                                     node=rec.name, op=rec.op)
            norm.append(i % n)
        if tuple(norm) not in out:
            out.append(tuple(norm))
    if not out:
        raise ParameterError("no features to draw", node=rec.name, op=rec.op)
    return out


def _f(x) -> str:
    """A coordinate with at most 2 decimals and no trailing zeros, so output is stable text."""
    s = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _esc(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _grid_step(n) -> int:
    """Grid line spacing in input pixels: every pixel for small inputs, at most ~32 lines."""
    step = 1
    while n / step > 32:
        step *= 2
    return step


def _scene(analysis, node, features, image=None):
    """The picture as plain data: canvas size and a list of shapes in drawing order."""
    rec = analysis[node]
    if rec.naxes not in (1, 2):
        raise RenderError(f"overlay draws 1-D and 2-D inputs; {node!r} has {rec.naxes} spatial axes")
    feats = _features(rec, features)
    size = analysis.input_size
    two_d = rec.naxes == 2
    # x is the last axis (W, or the only axis), y the first (H); a 1-D input is one row
    xa, ya = (1, 0) if two_d else (0, None)
    W, H = size[xa], size[ya] if two_d else 1
    unc = [rec.bounds(ax, clip=False) for ax in range(rec.naxes)]
    clp = [rec.bounds(ax, clip=True) for ax in range(rec.naxes)]

    def box(bounds, f, ax):
        lo, hi = bounds[ax]
        return int(lo[f[ax]]), int(hi[f[ax]]) + 1  # pixel i spans [i, i+1)

    def centre(f, ax):
        if rec.exact[ax]:
            return rec.start[ax] + f[ax] * rec.jump[ax]
        lo, hi = box(unc, f, ax)
        return (lo + hi) / 2

    xs = [box(unc, f, xa) for f in feats]
    x0, x1 = min([0] + [b[0] for b in xs]), max([W] + [b[1] for b in xs])
    if two_d:
        ys = [box(unc, f, ya) for f in feats]
        y0, y1 = min([0] + [b[0] for b in ys]), max([H] + [b[1] for b in ys])
        scale = min(_WIDTH / (x1 - x0), _WIDTH / (y1 - y0), _MAX_CELL)
        sy = scale
    else:
        y0, y1 = 0, 1
        scale = min(_WIDTH / (x1 - x0), _MAX_CELL)
        sy = _ROW

    def X(x):
        return _LEFT + (x - x0) * scale

    def Y(y):
        return _TOP + (y - y0) * sy

    shapes = []
    inp = (X(0), Y(0), W * scale, H * sy)
    shapes.append(("rect", *inp, {"fill": "#f4f4f4", "stroke": "none"}))
    step = _grid_step(W)
    for i in range(step, W, step):
        shapes.append(("line", X(i), Y(0), X(i), Y(H), {"stroke": "#d0d0d0", "width": 0.5}))
    if two_d:
        step_y = _grid_step(H)
        for i in range(step_y, H, step_y):
            shapes.append(("line", X(0), Y(i), X(W), Y(i), {"stroke": "#d0d0d0", "width": 0.5}))
    shapes.append(("rect", *inp, {"fill": "none", "stroke": "#333333", "width": 1.5}))
    # tick labels: the input's edges, and where the padding begins is obvious from the frame
    shapes.append(("text", X(0), Y(y0) - 6, "0", {"anchor": "middle", "size": 11}))
    shapes.append(("text", X(W), Y(y0) - 6, str(W), {"anchor": "middle", "size": 11}))
    if two_d:
        shapes.append(("text", X(x0) - 6, Y(0) + 4, "0", {"anchor": "end", "size": 11}))
        shapes.append(("text", X(x0) - 6, Y(H) + 4, str(H), {"anchor": "end", "size": 11}))

    if image is not None:
        if not two_d:
            raise RenderError("--image needs a 2-D input; this one has 1 spatial axis")
        shapes.insert(1, ("image", *inp, {"pixels": image}))

    join = rec.is_join and len(rec.branches) > 1
    branches = [b.node for b in rec.branches] if join else []
    past_join = not join and two_d and _after_shaped_join(analysis, node)

    def pieces(v, f):
        """Rectangles ``(x0, x1, y0, y1)`` (input pixels, half-open) that feature ``f`` of ``v`` reads."""
        n = analysis[v].n
        g = tuple(0 if n[ax] == 1 else min(f[ax], n[ax] - 1) for ax in range(rec.naxes))  # broadcast
        cols = analysis.pixels(v, xa, g[xa])
        rows = analysis.pixels(v, ya, g[ya]) if two_d else ((0, 0),)
        if len(cols) * len(rows) > _MAX_PIECES:
            cols, rows = cols and ((cols[0][0], cols[-1][1]),), rows and ((rows[0][0], rows[-1][1]),)
        return [(c0, c1 + 1, r0, r1 + 1) for r0, r1 in rows for c0, c1 in cols]

    legend = []
    holes = False
    for k, f in enumerate(feats):
        c = "#333333" if join else COLOURS[k % len(COLOURS)]
        ux = box(unc, f, xa)
        if two_d:
            uy = box(unc, f, ya)
            top, ht, frame = Y(uy[0]), (uy[1] - uy[0]) * sy, inp
        else:
            # 1-D: one lane per feature under the input row, or overlapping RFs hide each other
            top, ht = Y(0) + (k + 1) * (_ROW + _GAP), _ROW
            frame = (X(0), top, W * scale, ht)
            shapes.append(("rect", *frame, {"fill": "#f4f4f4", "stroke": "#999999", "width": 0.8}))
        urect = (X(ux[0]), top, (ux[1] - ux[0]) * scale, ht)
        shapes.append(("hatch", *urect, {"colour": c, "id": k, "input": frame}))
        seen = all(clp[ax][0][f[ax]] >= 0 for ax in range(rec.naxes))
        read = 0
        for j, v in enumerate(branches or [node]):
            bc = COLOURS[j % len(COLOURS)] if join else c
            if join and all(analysis[v].is_global):
                continue  # the whole input: said in the legend, a tint would hide the others
            rects = pieces(v, f)
            for x_0, x_1, y_0, y_1 in rects:
                y_top, y_ht = (Y(y_0), (y_1 - y_0) * sy) if two_d else (top, ht)
                shapes.append(("rect", X(x_0), y_top, (x_1 - x_0) * scale, y_ht,
                               {"fill": bc, "opacity": 0.18 if not join else 0.3, "stroke": bc,
                                "width": 2 if len(rects) == 1 else 0.8}))
            if not join:
                read = sum((x_1 - x_0) * (y_1 - y_0) for x_0, x_1, y_0, y_1 in rects)
                holes = holes or len(rects) > 1
        shapes.append(("rect", *urect, {"fill": "none", "stroke": c, "width": 1.2, "dash": True}))
        px, py = X(centre(f, xa)), Y(centre(f, ya)) if two_d else top + ht / 2
        shapes.append(("line", px - 5, py - 5, px + 5, py + 5, {"stroke": c, "width": 2}))
        shapes.append(("line", px - 5, py + 5, px + 5, py - 5, {"stroke": c, "width": 2}))
        text = _describe_feature(rec, f, unc, clp, seen, centre)
        if not join and seen and len(pieces(node, f)) > 1:
            text += f"; reads {read} pixels (holes)"
        legend.append((c, text))
    for j, v in enumerate(branches):
        b = rec.branches[j]
        what = "global: the whole input" if all(analysis[v].is_global) else \
            f"rf {per_axis(b.rf)}, centre offset {per_axis(b.offset)}"
        legend.append((COLOURS[j % len(COLOURS)], f"branch {j + 1}: {v} ({analysis[v].op}), {what}"))

    title = (f"RF of {rec.name} ({rec.op}): n {per_axis(rec.n)}, jump {per_axis(rec.jump)}, "
             f"rf {per_axis(rec.rf)}, start {per_axis(rec.start)}; input {'x'.join(map(str, size))}")
    shapes.insert(0, ("text", _LEFT, 22, title, {"size": 13, "weight": "bold"}))
    tint = "tinted: each branch's pixels, in its colour" if join else "tinted: the pixels the feature reads"
    shapes.insert(1, ("text", _LEFT, 40, f"dashed: theoretical RF; hatched: its part in the padding; {tint}; "
                      "x: centre", {"size": 11, "fill": "#555555"}))
    bottom = (Y(y1) if two_d else Y(0) + (len(feats) + 1) * (_ROW + _GAP)) + 28
    for i, (c, text) in enumerate(legend):
        y = bottom + i * _LINE
        shapes.append(("rect", _LEFT, y - 10, 12, 12, {"fill": c, "opacity": 0.5, "stroke": c, "width": 1}))
        shapes.append(("text", _LEFT + 18, y, text, {"size": 11}))
    notes = []
    if holes or any(c is False for c in rec.contiguous):
        notes.append("this RF has gaps (dilation or stride holes): untinted cells inside a box are not read")
    if past_join:
        notes.append("past a join of differently shaped branches: rows x cols drawn, an upper bound of the 2-D RF")
    if not all(rec.exact):
        notes.append("the RF varies with position: boxes are exact per feature")
    if any(rec.is_global):
        notes.append("global: every feature sees the whole input")
    for j, text in enumerate(notes):
        shapes.append(("text", _LEFT, bottom + (len(legend) + j) * _LINE, text,
                       {"size": 11, "fill": "#555555"}))
    width = max(X(x1) + _RIGHT, _LEFT + 7.2 * max(len(title), 40), _LEFT + 6.2 * max(len(t) for _, t in legend))
    height = bottom + (len(legend) + len(notes)) * _LINE
    return width, height, shapes


def _after_shaped_join(analysis, node) -> bool:
    """Some join upstream of ``node`` joins branches of crossing shapes (one taller, one wider)."""
    import networkx as nx

    for u in nx.ancestors(analysis.graph, node):
        rec = analysis[u]
        if not rec.is_join:
            continue
        rfs = [b.rf for b in rec.branches if not all(analysis[b.node].is_global)]
        if any(a[0] > b[0] and a[1] < b[1] for a in rfs for b in rfs):
            return True
    return False


def _describe_feature(rec, f, unc, clp, seen, centre):
    names = ("rows", "cols") if rec.naxes == 2 else ("pixels",)
    parts = []
    for ax in range(rec.naxes):
        lo, hi = int(unc[ax][0][f[ax]]), int(unc[ax][1][f[ax]])
        part = f"{names[ax]} {lo}..{hi}"
        clo, chi = int(clp[ax][0][f[ax]]), int(clp[ax][1][f[ax]])
        if not seen:
            part += " (all padding)"
        elif (clo, chi) != (lo, hi):
            part += f" (sees {clo}..{chi})"
        parts.append(part)
    c = ", ".join(cell(centre(f, ax)) for ax in range(rec.naxes))
    idx = ", ".join(map(str, f))
    return f"feature ({idx}): " + "; ".join(parts) + f"; centre ({c})"


def _svg(width, height, shapes) -> str:
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
           f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="Helvetica, Arial, sans-serif">',
           '<rect width="100%" height="100%" fill="white"/>']
    defs = []
    body = []
    for s in shapes:
        kind, a = s[0], s[-1]
        if kind == "rect":
            x, y, w, h = s[1:5]
            attrs = f'x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" fill="{a["fill"]}"'
            if "opacity" in a:
                attrs += f' fill-opacity="{a["opacity"]}"'
            if a.get("stroke", "none") != "none":
                attrs += f' stroke="{a["stroke"]}" stroke-width="{_f(a.get("width", 1))}"'
            if a.get("dash"):
                attrs += ' stroke-dasharray="5,3"'
            body.append(f"<rect {attrs}/>")
        elif kind == "line":
            x1, y1, x2, y2 = s[1:5]
            body.append(f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}" '
                        f'stroke="{a["stroke"]}" stroke-width="{_f(a["width"])}"/>')
        elif kind == "text":
            x, y, text = s[1:4]
            attrs = f'x="{_f(x)}" y="{_f(y)}" font-size="{a.get("size", 11)}"'
            if "anchor" in a:
                attrs += f' text-anchor="{a["anchor"]}"'
            if "weight" in a:
                attrs += f' font-weight="{a["weight"]}"'
            if "fill" in a:
                attrs += f' fill="{a["fill"]}"'
            body.append(f"<text {attrs}>{_esc(text)}</text>")
        elif kind == "image":
            x, y, w, h = s[1:5]
            body.append(f'<image x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" '
                        f'preserveAspectRatio="none" style="image-rendering:pixelated" '
                        f'href="data:image/png;base64,{_png_base64(a["pixels"])}"/>')
        elif kind == "hatch":
            # the RF's part outside the input: hatch the box, clipped to "everything but the input"
            x, y, w, h = s[1:5]
            k, c = a["id"], a["colour"]
            ix, iy, iw, ih = a["input"]
            defs.append(f'<pattern id="pad{k}" width="6" height="6" patternUnits="userSpaceOnUse" '
                        f'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="{c}" '
                        'stroke-width="1.5"/></pattern>')
            defs.append(f'<clipPath id="outside{k}"><path clip-rule="evenodd" d="M0 0H{_f(width)}'
                        f'V{_f(height)}H0Z M{_f(ix)} {_f(iy)}h{_f(iw)}v{_f(ih)}h{_f(-iw)}Z"/></clipPath>')
            body.append(f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(w)}" height="{_f(h)}" '
                        f'fill="url(#pad{k})" fill-opacity="0.6" clip-path="url(#outside{k})"/>')
    if defs:
        out.append("<defs>" + "".join(defs) + "</defs>")
    out += body
    out.append("</svg>")
    return "\n".join(out) + "\n"


def overlay_svg(analysis, node, features=None, image=None) -> str:
    """SVG text of the RFs of a few output features of ``node`` on the input grid.

    Parameters
    ----------
    analysis : Analysis
        The result of :func:`rfgraph.analyze`; the input must have 1 or 2 spatial axes.
    node : hashable
        The node whose output features are drawn.
    features : list, optional
        Feature indices, one int per axis (a plain int for 1-D); negative counts from the end.
        Default: the first, centre and last feature (:func:`default_features`).
    image : str, path-like, PIL image or array, optional
        A picture drawn under the grid, resized to the input size (:func:`load_image`; needs Pillow).

    Returns
    -------
    str

    Examples
    --------
    >>> import rfgraph
    >>> G = rfgraph.chain([("c1", "conv", 3, 2, 1)], 8)
    >>> svg = overlay_svg(rfgraph.analyze(G), "c1", features=[(0, 0)])
    >>> svg.startswith("<svg") and "feature (0, 0): rows -1..1 (sees 0..1)" in svg
    True
    """
    width, height, shapes = _scene(analysis, node, features, _image(analysis, image))
    return _svg(width, height, shapes)


def overlay(analysis, node, path, features=None, format=None, image=None) -> Path:
    """Write the RF overlay of ``node`` (see :func:`overlay_svg`) to an SVG or PNG file.

    Parameters
    ----------
    analysis, node, features, image
        As for :func:`overlay_svg`.
    path : str or path-like
        Output file; written whole (a temporary file renamed), so a failure leaves nothing.
    format : {"svg", "png"}, optional
        Default: from the suffix of ``path``, else ``"svg"``. PNG needs matplotlib.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MissingDependencyError
        PNG was asked for and matplotlib (or Pillow) is not installed.
    """
    path = Path(path)
    fmt = (format or path.suffix[1:] or "svg").lower()
    if fmt not in ("svg", "png"):
        raise RenderError(f"overlay writes svg or png, not {fmt!r}")
    if path.is_dir():
        raise RenderError(f"{path} is a directory; give a file name such as {path / 'rf.png'}")
    if not path.parent.is_dir():
        raise RenderError(f"cannot write {path}: the folder {path.parent} does not exist")
    if fmt == "svg":
        write_atomic(path, overlay_svg(analysis, node, features, image=image))
        return path
    try:
        import PIL  # noqa: F401 - matplotlib writes PNG through it
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError("PNG output needs matplotlib and Pillow: pip install pillow matplotlib "
                                     "(or pip install 'rfgraph[render]'; an .svg file needs nothing)") from None
    width, height, shapes = _scene(analysis, node, features, _image(analysis, image))
    write_atomic(path, _png(width, height, shapes, Figure, FigureCanvasAgg), binary=True)
    return path


def load_image(image, size=None):
    """``image`` (a file, a PIL image or an ``(H, W[, C])`` array) as ``(H, W, 3)`` uint8 pixels,
    resized to ``size`` ``(H, W)`` when given.

    Raises
    ------
    MissingDependencyError
        Pillow is not installed.
    RenderError
        The file cannot be read as an image.
    """
    import numpy as np

    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise MissingDependencyError("--image needs Pillow: pip install pillow (or 'rfgraph[render]')") from None
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            arr = np.clip(arr * (255 if arr.max() <= 1 else 1), 0, 255).astype(np.uint8)
        im = Image.fromarray(arr)
    elif isinstance(image, Image.Image):
        im = image
    else:
        try:
            with Image.open(image) as f:
                f.load()
                im = f.copy()
        except (UnidentifiedImageError, OSError, ValueError, ImportError) as exc:
            # ImportError: a Pillow plugin another package registered (ultralytics registers HEIF)
            # whose module is missing: still "not an image we can read"
            raise RenderError(f"cannot read {image} as an image: {' '.join(str(exc).split())}") from None
    im = im.convert("RGB")
    if size is not None and (im.size[1], im.size[0]) != tuple(size):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(im, dtype=np.uint8)


def _image(analysis, image):
    if image is None:
        return None
    if len(analysis.input_size) != 2:
        raise RenderError("--image needs a 2-D input; this one has "
                          f"{len(analysis.input_size)} spatial axes")
    return load_image(image, analysis.input_size)


def _png_base64(pixels) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _outside(b, inp):
    """Parts of rectangle ``b`` = (x, y, w, h) outside rectangle ``inp``: at most four bands."""
    x0, y0, x1, y1 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    ix0, iy0, ix1, iy1 = inp[0], inp[1], inp[0] + inp[2], inp[1] + inp[3]
    out = []
    if y0 < iy0:
        out.append((x0, y0, x1 - x0, min(y1, iy0) - y0))
    if y1 > iy1:
        out.append((x0, max(y0, iy1), x1 - x0, y1 - max(y0, iy1)))
    my0, my1 = max(y0, iy0), min(y1, iy1)
    if my1 > my0:
        if x0 < ix0:
            out.append((x0, my0, min(x1, ix0) - x0, my1 - my0))
        if x1 > ix1:
            out.append((max(x0, ix1), my0, x1 - max(x0, ix1), my1 - my0))
    return [r for r in out if r[2] > 0 and r[3] > 0]


def _png(width, height, shapes, Figure, FigureCanvasAgg, dpi=144) -> bytes:
    """Draw the scene with matplotlib; one SVG pixel is one point, so text sizes match the SVG."""
    import io

    from matplotlib.colors import to_rgba
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(width / 72, height / 72), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for z, s in enumerate(shapes):
        kind, a = s[0], s[-1]
        if kind == "rect":
            x, y, w, h = s[1:5]
            face = "none" if a["fill"] == "none" else to_rgba(a["fill"], a.get("opacity", 1))
            stroke = a.get("stroke", "none")
            ax.add_patch(Rectangle((x, y), w, h, facecolor=face, zorder=z,
                                   edgecolor="none" if stroke == "none" else stroke,
                                   linewidth=a.get("width", 1) if stroke != "none" else 0,
                                   linestyle=(0, (5 / a.get("width", 1), 3 / a.get("width", 1)))
                                   if a.get("dash") else "solid"))
        elif kind == "line":
            x1, y1, x2, y2 = s[1:5]
            ax.add_line(Line2D([x1, x2], [y1, y2], color=a["stroke"], linewidth=a["width"], zorder=z))
        elif kind == "text":
            x, y, text = s[1:4]
            ax.text(x, y, text, fontsize=a.get("size", 11), color=a.get("fill", "#000000"), zorder=z,
                    ha={"middle": "center", "end": "right"}.get(a.get("anchor"), "left"), va="baseline",
                    fontweight=a.get("weight", "normal"), family="DejaVu Sans")
        elif kind == "image":
            x, y, w, h = s[1:5]
            ax.imshow(a["pixels"], extent=(x, x + w, y + h, y), interpolation="nearest", zorder=z,
                      aspect="auto")
        elif kind == "hatch":
            for r in _outside(s[1:5], a["input"]):
                ax.add_patch(Rectangle(r[:2], r[2], r[3], facecolor="none", edgecolor=to_rgba(a["colour"], 0.6),
                                       linewidth=0, hatch="////", zorder=z))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()
