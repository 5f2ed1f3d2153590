"""The analysis (rfgraph/engine/result.py): ``analyze`` leaves the graph as it was."""

import rfgraph
from residual_block import residual_block


def test_analyze_does_not_mutate_graph():
    G = residual_block()
    before = (dict(G.nodes(data=True)), list(G.edges(data=True)), dict(G.graph))
    rfgraph.analyze(G).records()
    assert before == (dict(G.nodes(data=True)), list(G.edges(data=True)), dict(G.graph))
