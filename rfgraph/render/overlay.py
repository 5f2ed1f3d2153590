"""Receptive fields drawn on the input grid: where a few output features of one node look.

:func:`overlay_svg` is pure: it lays the picture out as a short list of shapes and writes them as
SVG text (no dependency). :func:`overlay` writes that SVG, or draws the same shapes with Pillow for
PNG. Each chosen feature's RF is a box from :meth:`RF.bounds <rfgraph.record.RF.bounds>`: the
theoretical hull (``clip=False``, dashed outline, hatched where it lies in the padding outside the
input) and what the feature really sees (``clip=True``, tinted), with its centre marked.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingDependencyError, ParameterError, RenderError
from ._format import cell, per_axis

__all__ = ["overlay", "overlay_svg", "default_features"]

#: One colour per feature (Tableau 10), cycled.
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
_WIDTH = 640  # drawing area, SVG pixels
_MAX_CELL = 40  # a tiny input still gets readable cells, not one giant square per pixel
_ROW = 32  # height of the single row of a 1-D input
_LEFT, _TOP, _RIGHT = 56, 70, 24
_LINE = 18  # legend line height
_GAP = 8  # between the lanes of a 1-D overlay


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


def _scene(analysis, node, features):
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

    legend = []
    for k, f in enumerate(feats):
        c = COLOURS[k % len(COLOURS)]
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
        if seen:
            cx = box(clp, f, xa)
            ctop, cht = (Y(box(clp, f, ya)[0]), (box(clp, f, ya)[1] - box(clp, f, ya)[0]) * sy) if two_d \
                else (top, ht)
            shapes.append(("rect", X(cx[0]), ctop, (cx[1] - cx[0]) * scale, cht,
                           {"fill": c, "opacity": 0.18, "stroke": c, "width": 2}))
        shapes.append(("rect", *urect, {"fill": "none", "stroke": c, "width": 1.2, "dash": True}))
        px, py = X(centre(f, xa)), Y(centre(f, ya)) if two_d else top + ht / 2
        shapes.append(("line", px - 5, py - 5, px + 5, py + 5, {"stroke": c, "width": 2}))
        shapes.append(("line", px - 5, py + 5, px + 5, py - 5, {"stroke": c, "width": 2}))
        legend.append((c, _describe_feature(rec, f, unc, clp, seen, centre)))

    title = (f"RF of {rec.name} ({rec.op}): n {per_axis(rec.n)}, jump {per_axis(rec.jump)}, "
             f"rf {per_axis(rec.rf)}, start {per_axis(rec.start)}; input {'x'.join(map(str, size))}")
    shapes.insert(0, ("text", _LEFT, 22, title, {"size": 13, "weight": "bold"}))
    shapes.insert(1, ("text", _LEFT, 40, "dashed: theoretical RF; hatched: its part in the padding; "
                      "tinted: the pixels the feature sees; x: centre", {"size": 11, "fill": "#555555"}))
    bottom = (Y(y1) if two_d else Y(0) + (len(feats) + 1) * (_ROW + _GAP)) + 28
    for i, (c, text) in enumerate(legend):
        y = bottom + i * _LINE
        shapes.append(("rect", _LEFT, y - 10, 12, 12, {"fill": c, "opacity": 0.5, "stroke": c, "width": 1}))
        shapes.append(("text", _LEFT + 18, y, text, {"size": 11}))
    notes = []
    if any(c is False for c in rec.contiguous):
        notes.append("this RF has gaps: the boxes show its hull")
    if not all(rec.exact):
        notes.append("the RF varies with position: boxes are exact per feature")
    if any(rec.is_global):
        notes.append("global: every feature sees the whole input")
    for j, text in enumerate(notes):
        shapes.append(("text", _LEFT, bottom + (len(legend) + j) * _LINE, text,
                       {"size": 11, "fill": "#555555"}))
    width = max(X(x1) + _RIGHT, _LEFT + 7.2 * max(len(title), 40))
    height = bottom + (len(legend) + len(notes)) * _LINE
    return width, height, shapes


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


def overlay_svg(analysis, node, features=None) -> str:
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
    width, height, shapes = _scene(analysis, node, features)
    return _svg(width, height, shapes)


def overlay(analysis, node, path, features=None, format=None) -> Path:
    """Write the RF overlay of ``node`` (see :func:`overlay_svg`) to an SVG or PNG file.

    Parameters
    ----------
    analysis, node, features
        As for :func:`overlay_svg`.
    path : str or path-like
        Output file.
    format : {"svg", "png"}, optional
        Default: from the suffix of ``path``, else ``"svg"``. PNG needs Pillow.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    MissingDependencyError
        PNG was asked for and Pillow is not installed.
    """
    path = Path(path)
    fmt = (format or path.suffix[1:] or "svg").lower()
    if fmt not in ("svg", "png"):
        raise RenderError(f"overlay writes svg or png, not {fmt!r}")
    if fmt == "svg":
        path.write_text(overlay_svg(analysis, node, features), encoding="utf-8")
        return path
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise MissingDependencyError("PNG output needs Pillow: pip install pillow "
                                     "(or write an .svg file, which needs nothing)") from None
    width, height, shapes = _scene(analysis, node, features)
    _png(width, height, shapes, Image, ImageDraw, ImageFont).save(path, format="PNG")
    return path


def _rgb(hex_colour, alpha=255):
    h = hex_colour.lstrip("#")
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16), alpha)


def _png(width, height, shapes, Image, ImageDraw, ImageFont, ss=2):
    """Draw the scene with Pillow at ``ss`` times the SVG size (sharper lines and text)."""
    W, H = int(width * ss + 1), int(height * ss + 1)
    img = Image.new("RGBA", (W, H), (255, 255, 255, 255))
    fonts = {}

    def font(size):
        if size not in fonts:
            try:
                fonts[size] = ImageFont.load_default(size=size * ss)
            except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
                fonts[size] = ImageFont.load_default()
        return fonts[size]

    def box(x, y, w, h):
        return [x * ss, y * ss, (x + w) * ss, (y + h) * ss]

    for s in shapes:
        kind, a = s[0], s[-1]
        # only translucent shapes need a layer of their own; the rest draw straight on the image
        translucent = kind == "hatch" or a.get("opacity", 1) < 1
        layer = Image.new("RGBA", (W, H), (0, 0, 0, 0)) if translucent else img
        d = ImageDraw.Draw(layer)
        if kind == "rect":
            b = box(*s[1:5])
            if a["fill"] != "none":
                d.rectangle(b, fill=_rgb(a["fill"], int(255 * a.get("opacity", 1))))
            if a.get("stroke", "none") != "none":
                wd = max(1, round(a.get("width", 1) * ss))
                if a.get("dash"):
                    _dashed_rect(d, b, _rgb(a["stroke"]), wd, 5 * ss, 3 * ss)
                else:
                    d.rectangle(b, outline=_rgb(a["stroke"]), width=wd)
        elif kind == "line":
            d.line([c * ss for c in s[1:5]], fill=_rgb(a["stroke"]), width=max(1, round(a["width"] * ss)))
        elif kind == "text":
            x, y, text = s[1:4]
            anchor = {"middle": "ms", "end": "rs"}.get(a.get("anchor"), "ls")
            d.text((x * ss, y * ss), text, fill=_rgb(a.get("fill", "#000000")), font=font(a.get("size", 11)),
                   anchor=anchor)
        elif kind == "hatch":
            b = box(*s[1:5])
            for off in range(int(b[0] - (b[3] - b[1])), int(b[2]) + 1, 6 * ss):
                d.line([off, b[3], off + (b[3] - b[1]), b[1]], fill=_rgb(a["colour"], 150), width=ss)
            mask = Image.new("L", (W, H), 0)
            md = ImageDraw.Draw(mask)
            md.rectangle(b, fill=255)
            md.rectangle(box(*a["input"]), fill=0)
            clipped = Image.new("RGBA", (W, H), (0, 0, 0, 0))
            clipped.paste(layer, (0, 0), mask)
            layer = clipped
        if translucent:
            img = Image.alpha_composite(img, layer)
    return img.convert("RGB")


def _dashed_rect(d, b, colour, width, on, off):
    x0, y0, x1, y1 = b
    for (ax, ay, bx, by) in ((x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0)):
        length = abs(bx - ax) + abs(by - ay)
        pos = 0
        while pos < length:
            end = min(pos + on, length)
            t0, t1 = pos / length, end / length
            d.line([ax + (bx - ax) * t0, ay + (by - ay) * t0, ax + (bx - ax) * t1, ay + (by - ay) * t1],
                   fill=colour, width=width)
            pos += on + off
