"""Streaming 1-D networks (audio, time series): past and future context, latency, seconds.

Along time, feature ``i`` of a node with jump ``j`` owns samples ``i*j .. (i+1)*j - 1`` (its hop;
see :mod:`rfgraph.answers._base`). Its **past** context is how many samples before the first of
them its exact RF reaches, its **future** context (look-ahead) how many after the last: the
samples a streaming implementation must wait for after a hop before emitting that feature, i.e.
its algorithmic latency. Both come from the exact, unclipped per-feature bounds (padding
included, so a causally padded stack has future 0 at every feature), the largest over the
node's features. A network is **causal** when every output's future context is at most 0.

A node made global along time by a global op (a norm over time, attention, global pooling) has
no finite context: ``past`` and ``future`` are None and ``global_from`` names that node.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass
from typing import Any, Optional

from ._base import AnswerError, as_analysis, context, output_nodes

__all__ = ["Context", "Streaming", "streaming", "to_json", "to_text", "as_data"]


@dataclass(frozen=True)
class Context:
    """One node along time: RF size, jump and start (samples), past and future context."""

    node: Any
    rf: Any
    jump: Any
    start: Any
    past: Optional[int]
    future: Optional[int]
    global_from: Any = None


@dataclass(frozen=True)
class Streaming:
    """Result of :func:`streaming`.

    Attributes
    ----------
    sample_rate : float or None
        Samples per second, when given: :meth:`seconds` converts.
    nodes : dict
        ``{node: Context}`` in topological order.
    outputs : tuple
        The output nodes.
    causal : bool or None
        Every output's future context is <= 0 (None when an output is global in time).
    latency : int or None
        The largest future context over the outputs, in samples (None when global).
    """

    sample_rate: Optional[float]
    nodes: dict
    outputs: tuple
    causal: Optional[bool]
    latency: Optional[int]

    def seconds(self, samples):
        """``samples`` in seconds (None stays None; needs a sample rate)."""
        if self.sample_rate is None:
            raise AnswerError("no sample rate given: pass sample_rate=HZ")
        return None if samples is None else samples / self.sample_rate

    def as_dict(self) -> dict:
        return {"sample_rate": self.sample_rate, "causal": self.causal, "latency": self.latency,
                "outputs": [str(v) for v in self.outputs],
                "nodes": {str(v): _node_keys(self, c) for v, c in self.nodes.items()}}


def _node_keys(result, c) -> dict:
    d = {"past": c.past, "future": c.future}
    if result.sample_rate is not None:
        d["seconds"] = {k: result.seconds(getattr(c, k)) for k in ("rf", "jump", "start", "past", "future")}
    return d


def streaming(target, sample_rate=None, *, input_shape=None, outputs=None) -> Streaming:
    """Past and future context of every node of a 1-D network, and whether it is causal.

    Parameters
    ----------
    target : Analysis, networkx.DiGraph or torch.nn.Module
        A network with one spatial axis (time); a module is traced on ``input_shape`` (``(C, L)``).
    sample_rate : float, optional
        Samples per second, to report seconds too.
    outputs : list, optional
        The outputs that decide ``causal`` and ``latency`` (default: the model's outputs).

    Raises
    ------
    AnswerError
        The network has more than one spatial axis, or the sample rate is not positive.

    Examples
    --------
    A causal conv (kernel 3, padded 2 before) and a centred one (padded 1 on each side):

    >>> import rfgraph
    >>> s = streaming(rfgraph.chain([("c", "conv", 3, 1, [(2, 0)]), ("d", "conv", 3, 1, 1)], (100,)),
    ...               sample_rate=16000)
    >>> [(c.past, c.future) for c in s.nodes.values()]
    [(0, 0), (2, 0), (3, 1)]
    >>> s.causal, s.latency, s.seconds(s.latency) * 1000   # ms of look-ahead
    (False, 1, 0.0625)
    """
    analysis = as_analysis(target, input_shape)
    if len(analysis.input_size) != 1:
        raise AnswerError(f"streaming needs a 1-D network (one axis: time); this one has "
                          f"{len(analysis.input_size)} spatial axes")
    if sample_rate is not None and not sample_rate > 0:
        raise AnswerError(f"the sample rate must be positive, got {sample_rate!r}")
    nodes = {}
    for v in analysis.order:
        rec = analysis[v]
        src = rec.global_from[0]
        if src is not None:
            past = future = None
        else:
            before, after, _, _ = context(rec, 0)
            past, future = int(before.max()), int(after.max())
        nodes[v] = Context(v, rec.rf[0], rec.jump[0], rec.start[0], past, future, src)
    outs = tuple(outputs) if outputs is not None else tuple(output_nodes(analysis))
    futures = [nodes[v].future for v in outs]
    latency = None if any(f is None for f in futures) else max(futures)
    return Streaming(sample_rate=None if sample_rate is None else float(sample_rate), nodes=nodes,
                     outputs=outs, causal=None if latency is None else latency <= 0, latency=latency)


def as_data(analysis, sample_rate=None, nodes=None, modules=None) -> dict:
    """The analysis' JSON document (:func:`rfgraph.render.json.as_data`) with, in every node,
    ``past`` and ``future`` (samples) and, given a sample rate, ``seconds`` (rf, jump, start,
    past, future); and at the top ``sample_rate``, ``causal`` and ``latency``."""
    from ..render.json import as_data as _as_data

    result = streaming(analysis, sample_rate)
    data = _as_data(analysis, nodes, modules)
    for d in data["nodes"]:
        d.update(_node_keys(result, result.nodes[d["name"]]))
    data["sample_rate"] = result.sample_rate
    data["causal"] = result.causal
    data["latency"] = result.latency
    return data


def to_json(analysis, sample_rate=None, nodes=None, modules=None, indent=2) -> str:
    """:func:`as_data` as JSON text (ends with a newline).

    >>> import json, rfgraph
    >>> doc = json.loads(to_json(rfgraph.analyze(rfgraph.chain([("c", "conv", 3, 1, [(2, 0)])], (50,))), 8000))
    >>> doc["causal"], doc["nodes"][1]["past"], doc["nodes"][1]["future"], doc["nodes"][1]["seconds"]["rf"]
    (True, 2, 0, 0.000375)
    """
    return _json.dumps(as_data(analysis, sample_rate, nodes, modules), indent=indent, default=str,
                       ensure_ascii=False, allow_nan=False) + "\n"


def to_text(analysis, sample_rate=None, nodes=None, modules=None) -> str:
    """One row per node (the per-stage view by default): RF, jump, start, past and future in
    samples and, given a sample rate, milliseconds; then whether the network is causal."""
    from ..render._format import cell
    from ..render.stages import select

    result = streaming(analysis, sample_rate)
    nodes, _ = select(analysis, nodes, modules)
    ms = sample_rate is not None
    head = ["node", "rf", "jump", "start", "past", "future"]
    if ms:
        head += ["rf ms", "jump ms", "start ms", "past ms", "future ms"]
    rows = [head]
    for v in nodes:
        c = result.nodes[v]
        vals = [c.rf, c.jump, c.start, c.past, c.future]
        row = [str(v)] + ["global" if x is None else cell(x) for x in vals]
        if ms:
            row += ["global" if x is None else cell(round(result.seconds(x) * 1000, 6)) for x in vals]
        rows.append(row)
    widths = [max(len(r[k]) for r in rows) for k in range(len(head))]
    lines = ["  ".join(x.ljust(w) if k == 0 else x.rjust(w) for k, (x, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    if result.latency is None:
        src = next(result.nodes[v].global_from for v in result.outputs if result.nodes[v].global_from is not None)
        lines.append(f"global in time from node {src!r}: every output depends on the whole input "
                     "(no finite latency; not streamable as is)")
    else:
        lat = f"{result.latency} samples" + (f" = {cell(round(result.seconds(result.latency) * 1000, 6))} ms"
                                             if ms else "")
        lines.append(f"{'causal' if result.causal else 'not causal'}: look-ahead (latency) {lat}")
    return "\n".join(lines) + "\n"
