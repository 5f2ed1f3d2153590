"""Answers people decide from a receptive field: one module per question, pure functions.

==================  ===========================================================
module              the question it answers
==================  ===========================================================
``tiling``          how much overlap tiled inference needs to match the whole image
``sizes``           which input sizes every join accepts without losing pixels
``streaming``       past and future context (latency) of a 1-D network, in seconds
``queries``         which node first sees a given extent; a detector's levels
==================  ===========================================================

Each function takes an :class:`~rfgraph.engine.Analysis` (or a graph, analysed first) and
returns a frozen, plain result with ``as_dict()`` for JSON. Nothing here imports torch at module
level; the torch models a function may re-trace are traced through :func:`rfgraph.from_torch`.
"""

from __future__ import annotations

from ._base import AnswerError
from .queries import cover, levels
from .sizes import Sizes, valid_sizes
from .streaming import Streaming, streaming
from .tiling import Tiling, tiling

__all__ = ["AnswerError", "Tiling", "tiling", "Streaming", "streaming", "Sizes", "valid_sizes",
           "cover", "levels"]
