"""Write a diagram file: SVG, PNG or PDF through Graphviz's ``dot`` (with its DOT source beside it), or the DOT source.

The only I/O in the rendering layer: :func:`rfgraph.render.dot.to_dot` builds the text, this module
runs the ``dot`` program on it (found on ``PATH``; no Python binding is needed) and writes the
result. The format is the file's suffix; files are written whole (a temporary file renamed into
place), so a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import MissingDependencyError, RenderError
from .dot import to_dot

__all__ = ["write_diagram", "dot_path_for", "DIAGRAM_FORMATS"]

#: Output formats :func:`write_diagram` accepts (listed in :data:`rfgraph.render.FORMATS`).
DIAGRAM_FORMATS = ("svg", "png", "pdf", "dot")
# A 500-node network lays out in well under a second; a limit only stops a pathological graph
# from hanging a CLI run forever.
TIMEOUT = 600


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
    exe = shutil.which("dot")
    if exe is None:
        raise MissingDependencyError(
            f"Graphviz's 'dot' program was not found, so {path} was not drawn; install Graphviz "
            "(apt-get install graphviz; macOS: brew install graphviz), or write the DOT source "
            f"with -o {dot_path}")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                              timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz took more than {TIMEOUT} s to lay out {path.name}; "
                          "collapse modules with a smaller depth") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"Graphviz failed on {path.name} (exit {proc.returncode}): "
                          + (msg[-1] if msg else "no message"))
    _atomic_write(path, proc.stdout, binary=True)
    _atomic_write(dot_path, source)
    return path
