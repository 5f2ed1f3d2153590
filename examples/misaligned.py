"""A misaligned network: TensorFlow-style "same" padding with stride 2 on an even input size.

On a 224 input, a 3x3 stride-2 "same" conv pads (0, 1): no padding before, one after, so its
features are centred one pixel to the right of a 1x1 stride-2 shortcut's. Adding the two mixes
features whose centres differ by one pixel: rfgraph reports the join as misaligned (it never
averages the offset away). PyTorch's symmetric padding=1 is aligned.
Run: ``python examples/misaligned.py``.
"""

import networkx as nx

import rfgraph


def block(padding, size=224):
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size, size))
    G.add_node("main", op="conv", kernel=3, stride=2, padding=padding)
    G.add_node("shortcut", op="conv", kernel=1, stride=2)
    G.add_node("add", op="add")
    G.add_edges_from([("x", "main"), ("x", "shortcut"), ("main", "add"), ("shortcut", "add")])
    return G


if __name__ == "__main__":
    for padding in ("same", 1):
        a = rfgraph.analyze(block(padding))
        print(f"padding={padding!r}: main start {a['main'].start}, shortcut start {a['shortcut'].start}")
        report = a.misaligned()
        if not report:
            print("  aligned: no misaligned joins")
        for m in report:
            print(f"  MISALIGNED join {m.node!r} ({m.op}): branch centres differ by {m.offsets} pixels (H, W)")
            for b in m.branches:
                print(f"    {b.node}: centre {b.start}, offset from the join's centre {b.offset}")
