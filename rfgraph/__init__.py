"""rfgraph: receptive fields of convolutional networks that branch.

>>> import rfgraph
>>> G = rfgraph.chain([("conv1", "conv", 3, 1, 1), ("conv2", "conv", 3, 2, 1)], 32)
>>> rfgraph.analyze(G).output.rf
(5, 5)
"""

from . import ops
from .engine import Analysis
from .engine import analyze as _analyze_graph
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
from .ops import AxisState, Op, register_op, registered_ops
from .record import RF, Branch, Misalignment
from .render.table import format_table
from .render.dot import to_dot
from .render.graphviz import write_diagram
from .render.overlay import overlay

__version__ = "0.1.0"

__all__ = [
    "analyze",
    "Analysis",
    "from_torch",
    "from_onnx",
    "chain",
    "format_table",
    "to_dot",
    "write_diagram",
    "overlay",
    "read_spec",
    "write_spec",
    "ops",
    "Op",
    "register_op",
    "registered_ops",
    "AxisState",
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


def analyze(G, input_shape=None, *, extra_ops=(), **options) -> Analysis:
    """Receptive fields of every node of a graph, or of a PyTorch module traced first.

    ``G`` is a graph in rfgraph's schema (see :func:`rfgraph.engine.analyze`, which this calls)
    or a ``torch.nn.Module``, traced with :func:`from_torch` on ``input_shape`` (``(C, H, W)``,
    ``(C, L)``, ...) and ``options`` (e.g. ``on_unsupported``). ``extra_ops`` adds ops for this
    analysis only.

    >>> G = chain([("c", "conv", 3, 2, 1)], (8,))
    >>> analyze(G)["c"].jump
    (2,)
    """
    if _is_torch_module(G):
        if input_shape is None:
            raise RFGraphError("analyzing a torch module needs input_shape, e.g. (3, 224, 224)")
        G = from_torch(G, input_shape, **options)
    elif options or input_shape is not None:
        raise TypeError("input_shape and front-end options only apply to torch modules")
    elif not hasattr(G, "_pred"):
        raise GraphError(f"expected a networkx.DiGraph or a torch.nn.Module, got {type(G).__name__}")
    return _analyze_graph(G, extra_ops=extra_ops)


def _is_torch_module(obj) -> bool:
    import sys

    torch = sys.modules.get("torch")  # a module can only be one if torch is already imported
    return torch is not None and isinstance(obj, torch.nn.Module)


def from_torch(model, input_shape, **options):
    """Trace a PyTorch module into a graph; see :func:`rfgraph.frontends.torch.from_torch`."""
    from .frontends.torch import from_torch as _from_torch

    return _from_torch(model, input_shape, **options)


# What people decide from a receptive field (rfgraph/answers/): tile halos, valid sizes,
# streaming context, requirement queries.
from .answers import AnswerError, cover, levels, streaming, tiling, valid_sizes  # noqa: E402

__all__ += ["AnswerError", "tiling", "streaming", "valid_sizes", "cover", "levels"]


def from_onnx(model, input_size=None, **options):
    """Translate an ONNX model into a graph; see :func:`rfgraph.frontends.onnx.from_onnx`."""
    from .frontends.onnx import from_onnx as _from_onnx

    return _from_onnx(model, input_size, **options)
from .answers.erf import erf  # noqa: E402  (the effective receptive field, rfgraph/answers/erf.py)
