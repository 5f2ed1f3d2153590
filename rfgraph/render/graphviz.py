"""Write a diagram file: SVG, PNG or PDF through Graphviz's ``dot`` (with its DOT source beside it), or the DOT source.

The only I/O in the rendering layer: :func:`rfgraph.render.dot.to_dot` builds the text, this module
runs the ``dot`` program on it (found on ``PATH``; no Python binding is needed) and writes the
result. The format is the file's suffix; files are written whole (a temporary file renamed into
place), so a failure leaves nothing behind.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import MissingDependencyError, RenderError
from .dot import to_dot

__all__ = ["write_diagram", "dot_path_for", "report_views", "DIAGRAM_FORMATS"]

#: Output formats :func:`write_diagram` accepts (listed in :data:`rfgraph.render.FORMATS`).
DIAGRAM_FORMATS = ("svg", "png", "pdf", "dot")
# A 500-node network lays out in well under a second; a limit only stops a pathological graph
# from hanging a CLI run forever.
TIMEOUT = 600
#: :func:`report_views`: seconds Graphviz gets for each extra view of a report, and the most boxes.
VIEW_TIMEOUT = 30
VIEW_MAX_ITEMS = 1500


def _format(path, format):
    """The format a path asks for: its suffix, which must be a known one and agree with ``format``."""
    suffix = path.suffix[1:].lower()
    if path.exists() and path.is_dir():
        raise RenderError(f"{path} is a directory; give a file name such as {path / 'net.svg'}")
    if format is not None and format not in DIAGRAM_FORMATS:
        raise RenderError(f"unknown format {format!r}; choose one of {', '.join(DIAGRAM_FORMATS)}")
    if not suffix:
        return format or "svg"
    if suffix not in DIAGRAM_FORMATS:
        raise RenderError(f"{path.name}: unknown diagram format {suffix!r}; name the file .svg, .png, "
                          ".pdf or .dot")
    if format is not None and format != suffix:
        raise RenderError(f"{path.name} is named .{suffix} but --format {format} was asked for; "
                          "name the file after its format")
    return suffix


def dot_path_for(path, format=None) -> Path:
    """Where :func:`write_diagram` writes the DOT source for ``path``: ``net.svg`` -> ``net.dot``.

    >>> str(dot_path_for(Path("out/net.svg"))), str(dot_path_for(Path("net.dot")))
    ('out/net.dot', 'net.dot')
    """
    path = Path(path)
    if _format(path, format) == "dot":
        return path
    return path.with_suffix(".dot")


def _atomic_write(path: Path, data, binary=False):
    """Write ``data`` next to ``path`` and rename it into place: never a partial file."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_diagram(analysis, path, format=None, depth=None, **options) -> Path:
    """Draw the network with its receptive fields into a file.

    Parameters
    ----------
    analysis : Analysis
        The result of :func:`rfgraph.analyze`.
    path : str or path-like
        Output file; its suffix (``.svg``, ``.png``, ``.pdf``, ``.dot``) is the format. The DOT
        source is written next to it (same name, ``.dot`` suffix) when the drawing succeeds.
    format : {"svg", "png", "pdf", "dot"}, optional
        Must agree with the suffix; needed only for a path without one (default ``"svg"``).
    depth : int, optional
        Module depth shown expanded; see :func:`rfgraph.to_dot`.
    **options
        More keyword arguments for :func:`rfgraph.to_dot` (``nodes``, ``fold``, ``rankdir``, ...).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    MissingDependencyError
        Graphviz's ``dot`` program is not installed (nothing is written; a ``.dot`` path needs
        no Graphviz).
    RenderError
        ``dot`` failed, the format is unknown or does not match the file name, or the path is a
        directory; nothing is left behind.

    Examples
    --------
    >>> import rfgraph, tempfile, pathlib
    >>> G = rfgraph.chain([("conv1", "conv", 3, 2, 1)], 8)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "net.dot"
    >>> write_diagram(rfgraph.analyze(G), out).name
    'net.dot'
    """
    path = Path(path)
    fmt = _format(path, format)
    if not path.parent.is_dir():
        raise RenderError(f"cannot write {path}: the folder {path.parent} does not exist")
    source = to_dot(analysis, depth=depth, **options)
    dot_path = dot_path_for(path, fmt)
    if fmt == "dot":
        _atomic_write(path, source)
        return path
    _atomic_write(path, _run_dot(source, fmt, path.name, dot_path), binary=True)
    _atomic_write(dot_path, source)
    return path


def _run_dot(source, fmt, name, dot_path=None, timeout=TIMEOUT, args=()) -> bytes:
    """``dot -T<fmt>`` on ``source``: its output, or a one-line error."""
    exe = shutil.which("dot")
    if exe is None:
        hint = f", or write the DOT source with -o {dot_path}" if dot_path is not None else ""
        raise MissingDependencyError(
            f"Graphviz's 'dot' program was not found, so {name} was not drawn; install Graphviz "
            f"(apt-get install graphviz; macOS: brew install graphviz){hint}")
    try:
        proc = subprocess.run([exe, f"-T{fmt}", *args], input=source.encode("utf-8"), capture_output=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz took more than {timeout:g} s to lay out {name}; "
                          "collapse modules with a smaller depth") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"Graphviz failed on {name} (exit {proc.returncode}): "
                          + (msg[-1] if msg else "no message"))
    return proc.stdout


def report_views(analysis, depth=None, timeout=VIEW_TIMEOUT, max_items=VIEW_MAX_ITEMS):
    """The diagrams of an interactive report (:func:`rfgraph.render.html.to_html`'s ``views``):
    the view asked for (``depth``; default: :func:`rfgraph.to_dot`'s default view) first, then one
    per module depth (``0``, ``1``, ..., every node), each drawn once (depths that draw the same
    diagram share one view, their labels joined).

    A view other than the first that Graphviz cannot lay out within ``timeout`` seconds (DenseNet's
    every-layer view: hundreds of dense edges), or with more than ``max_items`` boxes, is listed
    without a drawing, with the reason. Views with more than :data:`~rfgraph.render.dot.MAX_EDGES`
    edges are laid out with bounded effort (``nslimit``, ``mclimit``): a quick layout, not the best.

    Returns
    -------
    list of View
        ``(label, svg, note)``; ``svg`` is None for a view not drawn, ``note`` says why.

    Raises
    ------
    MissingDependencyError
        Graphviz's ``dot`` is not installed.
    RenderError
        ``dot`` failed on the first view.
    """
    from .dot import MAX_EDGES, module_depth
    from .html import View

    wanted = [(depth, None)]
    top = module_depth(analysis)
    wanted += [(None, "default view")] + [(d, f"depth {d}") for d in range(top + 1)] + [(math.inf, "every node")]
    labels, sources = {}, []
    for i, (d, label) in enumerate(wanted):
        if i > 0 and d == depth:
            continue
        if label is None:  # the view asked for
            label = "default view" if d is None else "every node" if d == math.inf else f"depth {d}"
        src = to_dot(analysis, depth=d)
        if src in labels:
            if label not in labels[src]:
                labels[src].append(label)
            continue
        labels[src] = [label]
        sources.append((src, d))
    views = []
    for i, (src, d) in enumerate(sources):
        names = labels[src]
        label = names[0] if len(names) == 1 else f"{names[0]} = {names[-1]}"  # depth 2 = every node
        items = len(re.findall(r'^\s*"(?:[^"\\]|\\.)*" \[label=', src, flags=re.M))
        edges = src.count('" -> "')
        if i > 0 and items > max_items:
            how = "" if d is None else " --depth " + ("all" if d == math.inf else str(d))
            views.append(View(label, None, f"{items} boxes, more than {max_items}: too many to lay out "
                                           f"here; rfgraph render{how} draws it"))
            continue
        args = ("-Gnslimit=4", "-Gmclimit=0.5") if edges > MAX_EDGES and i > 0 else ()
        try:
            svg = _run_dot(src, "svg", f"the {label} view", timeout=TIMEOUT if i == 0 else timeout,
                           args=args).decode("utf-8")
        except RenderError as exc:
            if i == 0:
                raise
            views.append(View(label, None, str(exc)))
            continue
        views.append(View(label, svg, f"{edges} edges, laid out quickly (not the best layout)" if args else ""))
    return views
