import importlib.util
import sys
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "examples"))
# helpers of sub-suites (tests/answers/nets.py); a second conftest.py there would clash with this
# one under --doctest-modules (both import as the module "conftest")
sys.path.append(str(ROOT / "tests" / "answers"))


def _importable(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


# The gradient-support oracle's helpers run graphs in PyTorch; --doctest-modules would import them.
collect_ignore = [] if _importable("torch") else ["oracle.py", "dag_gen.py"]


def graph(*nodes, edges=()):
    """Small helper: graph(("x", {"op": "input", "size": (8,)}), ..., edges=[("x", "c")])."""
    G = nx.DiGraph()
    for name, attrs in nodes:
        G.add_node(name, **attrs)
    G.add_edges_from(edges)
    return G


@pytest.fixture
def make_graph():
    return graph


@pytest.fixture(autouse=True)
def _one_thread():
    """Small float64 convs: one thread is much faster than two on a shared 2-core machine."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
