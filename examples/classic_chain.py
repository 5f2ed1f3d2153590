"""The classic linear chain: AlexNet's per-layer receptive-field table (input 227).

A chain is the special case of a graph with no branches; ``rfgraph.chain`` builds it from
``(name, op, kernel, stride, padding)`` rows. Run: ``python examples/classic_chain.py``.
"""

import rfgraph

ALEXNET = [
    ("conv1", "conv", 11, 4, 0),
    ("pool1", "maxpool", 3, 2, 0),
    ("conv2", "conv", 5, 1, 2),
    ("pool2", "maxpool", 3, 2, 0),
    ("conv3", "conv", 3, 1, 1),
    ("conv4", "conv", 3, 1, 1),
    ("conv5", "conv", 3, 1, 1),
    ("pool5", "maxpool", 3, 2, 0),
    ("fc6-conv", "conv", 6, 1, 0),  # fully connected layers written as convolutions
    ("fc7-conv", "conv", 1, 1, 0),
]

if __name__ == "__main__":
    analysis = rfgraph.analyze(rfgraph.chain(ALEXNET, input_size=227))
    print("AlexNet, input 227x227 (n: features, jump: effective stride, rf: RF size, start: centre of feature 0)")
    print(rfgraph.format_table(analysis))
