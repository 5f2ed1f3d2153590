"""A ResNet downsampling block built by hand as a networkx graph.

Main path: 3x3 stride-2 conv, 3x3 conv. Shortcut: 1x1 stride-2 conv. The add is a join: each
output feature depends on the union of both paths' receptive fields.
Run: ``python examples/residual_block.py``.
"""

import networkx as nx

import rfgraph


def residual_block(size=56):
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size, size))
    G.add_node("conv1", op="conv", kernel=3, stride=2, padding=1)
    G.add_node("relu1", op="identity")
    G.add_node("conv2", op="conv", kernel=3, stride=1, padding=1)
    G.add_node("shortcut", op="conv", kernel=1, stride=2)
    G.add_node("add", op="add")
    G.add_node("relu2", op="identity")
    G.add_edges_from([("x", "conv1"), ("conv1", "relu1"), ("relu1", "conv2"), ("conv2", "add"),
                      ("x", "shortcut"), ("shortcut", "add"), ("add", "relu2")])
    return G


if __name__ == "__main__":
    analysis = rfgraph.analyze(residual_block())
    print("ResNet downsampling block, input 56x56")
    print(rfgraph.format_table(analysis))
    add = analysis["add"]
    for b in add.branches:
        print(f"  branch {b.node}: rf={b.rf} centre={b.start} offset from join centre={b.offset}")
    print("misaligned joins:", analysis.misaligned() or "none")
