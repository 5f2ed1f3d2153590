"""An Inception block: parallel 1x1, 1x7 -> 7x1, 1x3 and 3x1 branches joined by a concat.

Per axis, the concat's receptive field is the hull of its branches' (7x7 here), but the union is
not a square: the 1x3 and 3x1 branches alone make a cross. ``record.branches`` keeps each branch's
box, and ``rf_range`` the smallest and largest branch RF.
Run: ``python examples/inception_block.py``.
"""

import networkx as nx

import rfgraph


def inception_block(size=17, branches=("b1", "b7b", "b13", "b31")):
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size, size))
    G.add_node("b1", op="conv", kernel=1)
    G.add_node("b7a", op="conv", kernel=(1, 7), padding=(0, 3))
    G.add_node("b7b", op="conv", kernel=(7, 1), padding=(3, 0))
    G.add_node("b13", op="conv", kernel=(1, 3), padding=((0, 0), (1, 1)))  # (before, after) pairs
    G.add_node("b31", op="conv", kernel=(3, 1), padding=((1, 1), (0, 0)))
    G.add_edges_from([("x", "b1"), ("x", "b7a"), ("b7a", "b7b"), ("x", "b13"), ("x", "b31")])
    G.add_node("cat", op="concat")
    for i, b in enumerate(branches):
        G.add_edge(b, "cat", index=i)  # `index` fixes the concat's input order
    G.remove_nodes_from([v for v in list(G) if v != "cat" and v != "x" and not nx.has_path(G, v, "cat")])
    return G


if __name__ == "__main__":
    a = rfgraph.analyze(inception_block())
    print(rfgraph.format_table(a))
    cat = a["cat"]
    print(f"\nconcat: rf (H, W) = {cat.rf}, per-branch range {cat.rf_range}")
    for b in cat.branches:
        print(f"  {b.node:4s} rf {b.rf[0]}x{b.rf[1]}  centre {b.start}")

    cross = rfgraph.analyze(inception_block(branches=("b13", "b31")))["cat"]
    print(f"\n1x3 + 3x1 only: hull {cross.rf[0]}x{cross.rf[1]}, but the branch boxes are "
          f"{' and '.join(f'{b.rf[0]}x{b.rf[1]}' for b in cross.branches)}: a cross, not a square")
