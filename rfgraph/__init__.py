"""rfgraph: receptive fields of convolutional networks that branch.

>>> import rfgraph
>>> G = rfgraph.chain([("conv1", "conv", 3, 1, 1), ("conv2", "conv", 3, 2, 1)], 32)
>>> rfgraph.analyze(G).output.rf
(5, 5)
"""

from .engine import Analysis, analyze
from .errors import (
    CycleError,
    ExportError,
    GraphError,
    MissingDependencyError,
    ParameterError,
    RenderError,
    RFGraphError,
    ShapeError,
    SpecError,
    UnsupportedOpError,
)
from .frontends.chain import chain
from .frontends.spec import read_spec, write_spec
from .record import RF, Branch, Misalignment
from .render.table import format_table
from .render.dot import to_dot
from .render.graphviz import write_diagram
from .render.overlay import overlay
from .rules import Axis, register_rule, registered_ops

__version__ = "0.1.0"

__all__ = [
    "analyze",
    "Analysis",
    "chain",
    "format_table",
    "to_dot",
    "write_diagram",
    "overlay",
    "read_spec",
    "write_spec",
    "register_rule",
    "registered_ops",
    "Axis",
    "RF",
    "Branch",
    "Misalignment",
    "RFGraphError",
    "GraphError",
    "CycleError",
    "ParameterError",
    "ShapeError",
    "UnsupportedOpError",
    "ExportError",
    "SpecError",
    "RenderError",
    "MissingDependencyError",
]


def from_torch(model, input_shape, **options):
    """Trace a PyTorch module into a graph; see :func:`rfgraph.frontends.torch.from_torch`."""
    from .frontends.torch import from_torch as _from_torch

    return _from_torch(model, input_shape, **options)


__all__.append("from_torch")
