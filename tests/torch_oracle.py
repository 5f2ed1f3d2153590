"""Gradient-support oracle for torch models: a re-export of :mod:`rfgraph.verify`, where the
measurement lives (positive float64 copy, BN as identity, max pooling as average pooling,
saturating activations swapped, one ``autograd.grad`` per feature position)."""

from rfgraph.verify import capture, hull, max_as_avg, positive_copy, support  # noqa: F401

__all__ = ["capture", "hull", "max_as_avg", "positive_copy", "support"]
