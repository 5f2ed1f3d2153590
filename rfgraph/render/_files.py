"""Whole-file writes for renderers, with the usual permissions.

:func:`rfgraph.render.graphviz._atomic_write` writes a temporary file in the same folder and
renames it into place (a failure never leaves a partial file); a temporary file is owner-only, so
the result gets the umask's mode afterwards, as a file opened with ``open(path, "w")`` would.
"""

from __future__ import annotations

import os
from pathlib import Path

from .graphviz import _atomic_write

__all__ = ["write_atomic"]


def write_atomic(path, data, binary=False) -> Path:
    """Write ``data`` (str, or bytes with ``binary``) to ``path`` whole; returns the path.

    >>> import pathlib, tempfile
    >>> p = write_atomic(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "hi")
    >>> p.read_text(), sorted(x.name for x in p.parent.iterdir())
    ('hi', ['a.txt'])
    """
    path = Path(path)
    _atomic_write(path, data, binary=binary)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
    return path
