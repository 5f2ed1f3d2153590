"""Dilated convolutions and their gridding gaps.

Three 3x3 convs with dilation 2 each read every other pixel: stacked, their receptive field has
holes (the "gridding" artefact). A dilation schedule like 1, 2, 5 (hybrid dilated convolution)
fills them. ``record.contiguous`` and ``record.gaps`` say where the holes are.
Run: ``python examples/dilated_stack.py``.
"""

import rfgraph


def stack(dilations, size=64):
    layers = [(f"d{i}_{d}", "conv", 3, 1, d, d) for i, d in enumerate(dilations)]  # padding = dilation
    return rfgraph.chain(layers, input_size=(size,))


if __name__ == "__main__":
    for dilations in [(2, 2, 2), (1, 2, 5), (2, 4, 8)]:
        a = rfgraph.analyze(stack(dilations))
        rec = a.output
        holes = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in rec.gaps[0]) or "none"
        print(f"dilations {dilations}: rf {rec.rf[0]}, contiguous {rec.contiguous[0]}, holes at offsets {holes}")
