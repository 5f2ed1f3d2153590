import sys
from pathlib import Path

import networkx as nx
import pytest

sys.path.append(str(Path(__file__).resolve().parent))  # appended: see tests/answers/conftest.py


def tiny_graph():
    """Six nodes covering every mark of the diagram: a module cluster, a misaligned join (a 2x2
    conv padded on one side against a 1x3 conv), a global node and a dilated conv with RF gaps."""
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(16, 16))
    G.add_node("a", op="conv", kernel=2, padding=((0, 1), (0, 1)), module="block.a")
    G.add_node("b", op="conv", kernel=(1, 3), padding=(0, 1), module="block.b")
    G.add_node("add", op="add", module="block")
    G.add_node("pool", op="global", module="head")
    G.add_node("dil", op="conv", kernel=3, dilation=2, padding=2)
    G.add_edge("x", "a")
    G.add_edge("x", "b")
    G.add_edge("a", "add", index=0)
    G.add_edge("b", "add", index=1)
    G.add_edge("add", "pool")
    G.add_edge("x", "dil")
    return G


@pytest.fixture
def tiny():
    return tiny_graph()
