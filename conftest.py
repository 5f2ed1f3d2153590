"""pytest at the repository root: the doctests of the package (``--doctest-modules`` over rfgraph/).

Without torch, the torch front-end's and the zoo tools' doctests skip (their examples trace models),
and ``rfgraph/tools/verify.py``, which imports torch at the top, is not collected at all.
"""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
HAVE_TORCH = all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))
NEED_TORCH = ("rfgraph/frontends/torch", "rfgraph/tools/")

collect_ignore = [] if HAVE_TORCH else ["rfgraph/tools/verify.py"]


def pytest_collection_modifyitems(config, items):
    if HAVE_TORCH:
        return
    skip = pytest.mark.skip(reason="needs torch and torchvision: the example traces a model")
    for item in items:
        path = Path(str(item.path)).resolve()
        if isinstance(item, pytest.DoctestItem) and path.is_relative_to(ROOT) and \
                path.relative_to(ROOT).as_posix().startswith(NEED_TORCH):
            item.add_marker(skip)
