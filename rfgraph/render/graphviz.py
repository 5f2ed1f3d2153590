"""Write a diagram file: the DOT source always, then SVG/PNG/PDF through Graphviz's ``dot``.

The only I/O in the rendering layer: :func:`rfgraph.render.dot.to_dot` builds the text, this module
writes it and runs the ``dot`` program (found on ``PATH``; no Python binding is needed).
"""

from __future__ import annotations

import shutil
import subprocess
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
    return format or (path.suffix[1:].lower() if path.suffix[1:].lower() in DIAGRAM_FORMATS else "svg")


def dot_path_for(path, format=None) -> Path:
    """Where :func:`write_diagram` writes the DOT source for ``path``: ``net.svg`` -> ``net.dot``.

    >>> str(dot_path_for(Path("out/net.svg"))), str(dot_path_for(Path("net.dot")))
    ('out/net.dot', 'net.dot')
    """
    path = Path(path)
    if _format(path, format) == "dot":
        return path
    if path.suffix == ".dot":
        # "net.dot" asked for as SVG would be overwritten by its own source
        return path.with_name(path.name + ".dot")
    return path.with_suffix(".dot")


def write_diagram(analysis, path, format=None, depth=None, **options) -> Path:
    """Draw the network with its receptive fields into a file.

    Parameters
    ----------
    analysis : Analysis
        The result of :func:`rfgraph.analyze`.
    path : str or path-like
        Output file. The DOT source is always written next to it (same name, ``.dot`` suffix), so
        it survives a missing or failing Graphviz.
    format : {"svg", "png", "pdf", "dot"}, optional
        Default: from the suffix of ``path``, else ``"svg"``.
    depth : int, optional
        Module depth shown expanded; see :func:`rfgraph.to_dot`.
    **options
        More keyword arguments for :func:`rfgraph.to_dot` (``nodes``, ``fold``).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    MissingDependencyError
        Graphviz's ``dot`` program is not installed (the ``.dot`` file is written first).
    RenderError
        ``dot`` failed, or the format is unknown.

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
    if fmt not in DIAGRAM_FORMATS:
        raise RenderError(f"unknown format {fmt!r}; choose one of {', '.join(DIAGRAM_FORMATS)}")
    dot_path = dot_path_for(path, fmt)
    dot_path.write_text(to_dot(analysis, depth=depth, **options), encoding="utf-8")
    if fmt == "dot":
        return path
    exe = shutil.which("dot")
    if exe is None:
        raise MissingDependencyError(
            f"Graphviz's 'dot' program was not found, so {path} was not drawn (the DOT source is in "
            f"{dot_path}); install Graphviz: apt-get install graphviz (macOS: brew install graphviz)")
    try:
        proc = subprocess.run([exe, f"-T{fmt}", "-o", str(path), str(dot_path)],
                              capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz took more than {TIMEOUT} s to lay out {dot_path}; "
                          "collapse modules with a smaller depth") from None
    if proc.returncode != 0:
        msg = proc.stderr.strip().splitlines()
        raise RenderError(f"Graphviz failed on {dot_path} (exit {proc.returncode}): "
                          + (msg[-1] if msg else "no message"))
    return path
