"""``convtranspose``: transposed convolution (PyTorch's ``ConvTranspose``).

Parameters: ``kernel`` (required), ``stride`` (1), ``padding`` (0, symmetric ints),
``output_padding`` (0, smaller than stride or dilation) and ``dilation`` (1).

>>> from rfgraph.ops import get_op
>>> get_op("convtranspose").text({"op": "convtranspose", "kernel": 2, "stride": 2}, 2)
'convtranspose k2 s2'
"""

from __future__ import annotations

from .. import arith
from .base import DEFAULT, AxisState, Op, too_small


def _parse(r):
    p = {
        "kernel": r.per_axis("kernel", minimum=1),
        "stride": r.per_axis("stride", 1, minimum=1),
        "dilation": r.per_axis("dilation", 1, minimum=1),
        "padding": r.per_axis("padding", 0, minimum=0),
        "output_padding": r.per_axis("output_padding", 0, minimum=0),
    }
    for ax in range(r.naxes):
        s, d, extra = p["stride"][ax], p["dilation"][ax], p["output_padding"][ax]
        if extra >= max(s, d):
            r.fail(f"output_padding {extra} must be smaller than stride or dilation (axis {ax})")
    return p


def _taps(node, ax, n_in, n_out):
    p = node.params
    return arith.transpose_taps(n_out, p["kernel"][ax], p["stride"][ax], p["dilation"][ax], p["padding"][ax])


def _summary(node, inputs):
    """Output o reads inputs i with i*s - p + t*d == o; exact when s == 1, else per position.

    Summary: jump/s, and feature 0's hull spans inputs ceil((p-(k-1)d)/s) .. floor(p/s).
    """
    p = node.params
    out = []
    for ax, x in enumerate(inputs[0]):
        k, s, d, pad = p["kernel"][ax], p["stride"][ax], p["dilation"][ax], p["padding"][ax]
        n = arith.convtranspose_out_size(x.n, k, s, pad, p["output_padding"][ax], d)
        if n < 1:
            too_small(node, ax, x.n, f"kernel {k}, stride {s}, padding {pad}")
        if s == 1:
            # a stride-1 transposed conv is a conv with padding (k-1)d - p, flipped kernel
            pl = d * (k - 1) - pad
            j, lo, hi = arith.window_summary(x.jump, x.lo, x.hi, k, 1, d, pl)
            pattern = arith.dilate_pattern(x.pattern, x.lo, x.hi, x.jump, k, d, pl) if x.exact else None
            out.append(AxisState(n, j, lo, hi, pattern, x.global_from, x.exact, x.size))
            continue
        ilo = -((-(pad - (k - 1) * d)) // s)
        ihi = pad // s
        out.append(AxisState(n, x.jump / s, x.lo + ilo * x.jump, x.hi + ihi * x.jump, None,
                             x.global_from, False, x.size))
    return tuple(out)


DEFAULT.add(Op("convtranspose", _summary, parse=_parse,
               accepts={"kernel", "stride", "padding", "output_padding", "dilation"}, taps=_taps,
               label_params=(("kernel", "k"), ("stride", "s"), ("padding", "p"), ("dilation", "d"),
                             ("output_padding", "outpad")),
               defaults={"stride": 1, "padding": 0, "dilation": 1, "output_padding": 0},
               doc="transposed convolution: exact per position (jump/stride)"))
