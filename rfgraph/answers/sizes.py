"""Valid input sizes: every join's inputs agree and no input pixel is lost to flooring.

A size is **valid** along an axis when the network accepts it (every join's inputs have the same
size, every window fits: otherwise the analysis raises, naming the node) and every output still
depends on the first and the last input pixel (exact clipped bounds): a stride that floors away
the last rows, as a 2x2 pooling of an odd size does, loses them. Each axis is varied on its own,
the others kept at the given size.

How sizes are evaluated (``Sizes.method`` says which way a result was found):

- a **graph** is re-analysed at each size: its input's size is replaced and the engine propagates
  the sizes through every op (microseconds to milliseconds per size, no torch). Sizes are tried
  one by one over three periods of the network's grid ``M`` (the lcm of its strides) at the low
  end of the range; the valid ones repeat with a period ``P`` dividing ``M``, the rule is read off
  and extrapolated to the whole range, and then checked at a handful of sizes spread over the
  range (the largest valid and invalid ones among them). If a check disagrees, every size is
  evaluated.
- a **torch module** is traced once (at ``input_shape``) and that graph is evaluated as above; the
  result is then confirmed by tracing the real model again at a few sizes (the smallest and
  largest valid ones, the invalid ones next to them). A model whose graph holds sizes taken from
  its input (``F.interpolate(size=skip.shape)``) disagrees there: then the model itself is traced
  at every size of three grid periods and the rule extrapolated (said in ``method``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import RFGraphError
from ._base import AnswerError, grid_multiple, output_nodes

__all__ = ["Sizes", "valid_sizes", "made_sizes", "rule_in_words", "to_text"]


@dataclass(frozen=True)
class Sizes:
    """Result of :func:`valid_sizes`; per-axis fields are tuples with one entry per axis.

    Attributes
    ----------
    range : tuple
        ``(smallest, largest)`` size tried (inclusive).
    valid : tuple of tuple of int
        Per axis, the valid sizes in the range.
    smallest : tuple
        Per axis, the smallest valid size (None when none is).
    rule : tuple of str
        Per axis, the rule in words ("multiple of 32", "32k + 1", "every size from 40").
    period : tuple
        Per axis, the period ``P`` of the rule (None without one).
    invalid : tuple of dict
        Per axis, why a few invalid sizes fail (``{size: reason}``, the first ones).
    method : str
        How the sizes were evaluated (see the module docstring).
    """

    range: tuple
    valid: tuple
    smallest: tuple
    rule: tuple
    period: tuple
    invalid: tuple
    method: str

    def as_dict(self) -> dict:
        return {"range": list(self.range), "valid": [list(v) for v in self.valid],
                "smallest": list(self.smallest), "rule": list(self.rule), "period": list(self.period),
                "invalid": [{str(k): r for k, r in d.items()} for d in self.invalid],
                "method": self.method}


def valid_sizes(target, range=(32, 1024), *, input_shape=None, confirm=6) -> Sizes:
    """The input sizes, per axis, at which ``target`` accepts its input and loses no pixel.

    Parameters
    ----------
    target : networkx.DiGraph, Analysis, torch.nn.Module or callable
        A graph (re-analysed at each size), an analysis (its graph), a module traced on
        ``input_shape`` (``(C, H, W)``: the size the other axes keep), or a factory
        ``make(size) -> graph`` called at ``input_shape`` (the spatial size) and a few more
        (see :func:`made_sizes`).
    range : (int, int)
        Smallest and largest size to report (inclusive).
    confirm : int
        Torch modules: how many sizes to re-trace the real model at, to confirm.

    Examples
    --------
    Two 2x2 poolings and a 1x1 join with the input pooled 4x4: multiples of 4.

    >>> import rfgraph
    >>> G = rfgraph.chain([("p1", "maxpool", 2, 2, 0), ("p2", "maxpool", 2, 2, 0)], (64,))
    >>> G.add_node("q", op="avgpool", kernel=4); G.add_node("j", op="add")
    >>> G.add_edges_from([("input", "q"), ("q", "j"), ("p2", "j")])
    >>> s = valid_sizes(G, range=(8, 40))
    >>> s.valid[0][:4], s.rule, s.smallest
    ((8, 12, 16, 20), ('multiple of 4',), (8,))

    Three 3-wide stride-2 convs without padding: every window must end on the last pixel, so each
    size is odd and the next one too (15 -> 7 -> 3 -> 1): ``8k - 1``.

    >>> G = rfgraph.chain([(f"c{i}", "conv", 3, 2, 0) for i in (1, 2, 3)], (64,))
    >>> s = valid_sizes(G, range=(10, 60))
    >>> s.rule, s.valid
    (('8k - 1',), ((15, 23, 31, 39, 47, 55),))
    """
    import networkx as nx

    from .. import Analysis

    lo, hi = range
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo < 1 or hi < lo:
        raise AnswerError(f"range must be two sizes (smallest, largest) with 1 <= smallest <= largest, got {range!r}")
    if isinstance(target, Analysis):
        target = target.graph
    if isinstance(target, nx.DiGraph):
        if input_shape is not None:
            raise TypeError("input_shape only applies to a torch module")
        return _graph_sizes(target, lo, hi, "re-analysed the graph")
    if _is_module(target):
        return _module_sizes(target, input_shape, lo, hi, confirm)
    if callable(target):
        if input_shape is None:
            raise AnswerError("a factory needs input_shape: the size per axis to build it at first")
        return made_sizes(target, tuple(input_shape), (lo, hi), confirm=confirm)
    raise AnswerError(f"expected a graph, an analysis, a torch module or a factory, got {type(target).__name__}")


def _is_module(obj):
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


# -- evaluating one size ----------------------------------------------------------------------------


def _resized(G, size):
    H = G.copy()  # never the caller's graph
    for v, attrs in H.nodes(data=True):
        if attrs.get("op") == "input":
            attrs["size"] = tuple(size)
    return H


def _input_size(G):
    for _, attrs in G.nodes(data=True):
        if attrs.get("op") == "input":
            s = attrs["size"]
            return tuple(s) if isinstance(s, (list, tuple)) else (s,)
    raise AnswerError("the graph has no input node")


def _verdict(analysis, ax):
    """None when every output reads the first and last input pixel along ``ax``, else why not."""
    size = analysis.input_size[ax]
    for v in output_nodes(analysis):
        rec = analysis[v]
        if rec.global_from[ax] is not None:
            continue  # reads everything
        lo, hi = rec.bounds(ax, clip=True)
        seen = lo >= 0
        first, last = (int(lo[seen].min()), int(hi[seen].max())) if seen.any() else (-1, -1)
        if first > 0 or last < size - 1:
            gone = [f"{a}..{b}" if b > a else str(a) for a, b in ((0, first - 1), (last + 1, size - 1)) if b >= a]
            return f"input pixels {', '.join(gone)} of {size} are lost to flooring (output {v!r} never reads them)"
    return None


def _analyse_at(G, base, ax, n):
    from .. import analyze

    size = base[:ax] + (n,) + base[ax + 1:]
    try:
        return _verdict(analyze(_resized(G, size)), ax)
    except RFGraphError as exc:
        return str(exc)


# -- the rule ---------------------------------------------------------------------------------------


def _period(ok: dict, sizes):
    """The smallest ``P`` such that, from the first valid size on, validity repeats every ``P``
    (at least twice within ``sizes``)."""
    valid = [n for n in sizes if ok[n] is None]
    if not valid:
        return None
    tail = [n for n in sizes if n >= valid[0]]
    for p in range(1, len(tail) // 2 + 1):
        if all((ok[n] is None) == (ok[n + p] is None) for n in tail if n + p in ok):
            return p
    return None


def rule_in_words(valid, period, lo) -> str:
    """The valid sizes as words, from their period and the range's low end.

    >>> rule_in_words([32, 64, 96], 32, 32), rule_in_words([33, 65], 32, 32), rule_in_words([63, 95], 32, 32)
    ('multiple of 32', '32k + 1', '32k - 1')
    >>> rule_in_words(list(range(40, 100)), 1, 32), rule_in_words([], None, 32)
    ('every size from 40', 'none in the range')
    """
    if not valid:
        return "none in the range"
    if period is None:
        return "no periodic rule: " + ", ".join(map(str, valid[:8])) + (", ..." if len(valid) > 8 else "")
    if period == 1:
        return "every size" if valid[0] == lo else f"every size from {valid[0]}"
    residues = sorted({n % period for n in valid})
    late = valid[0] - period >= lo  # sizes of the same residue below the first valid one fail
    if residues == [0]:
        words = f"multiple of {period}"
    elif len(residues) == 1:
        r = residues[0]
        words = f"{period}k + {r}" if r <= period // 2 else f"{period}k - {period - r}"
    else:
        words = f"{period}k + r, r in {{{', '.join(map(str, residues))}}}"
    return words + (f", from {valid[0]}" if late else "")


# -- graphs and modules -----------------------------------------------------------------------------


def _graph_sizes(G, lo, hi, method, base=None):
    """Valid sizes of graph ``G`` per axis: the low end one by one, the rest by the period,
    checked at a few sizes spread over the range."""
    from .. import analyze

    base = tuple(base or _input_size(G))
    analysis = analyze(G)
    out, words, periods, why = [], [], [], []
    methods = set()
    for ax in range(len(base)):
        m = grid_multiple(analysis, analysis.order, ax)
        probe = list(range(lo, min(hi, lo + 3 * max(m, 2) - 1) + 1))
        ok = {n: _analyse_at(G, base, ax, n) for n in probe}
        p = _period(ok, probe)
        full = p is None or probe[-1] == hi
        if not full:
            first = next(n for n in probe if ok[n] is None)
            guess = {n: (n >= first and (n - first) % p in {(k - first) % p for k in probe if ok[k] is None and k >= first})
                     for n in range(lo, hi + 1)}
            for n in range(probe[-1] + 1, hi + 1):
                ok[n] = None if guess[n] else "extrapolated: not valid"
            for n in _spot_checks(ok, lo, hi):
                got = _analyse_at(G, base, ax, n)
                if (got is None) != (ok[n] is None):
                    full = True
                    break
                ok[n] = got
            else:
                methods.add(f"{method} at every size from {lo} to {probe[-1]} (three periods of the "
                            f"grid {m}), extrapolated with period {p} and checked at a few sizes up to {hi}")
        if full:
            ok = {n: _analyse_at(G, base, ax, n) for n in range(lo, hi + 1)}
            methods.add(f"{method} at every size from {lo} to {hi}")
        sizes = list(range(lo, hi + 1))
        valid = tuple(n for n in sizes if ok[n] is None)
        p = _period(ok, sizes) if full else p
        out.append(valid)
        periods.append(p)
        words.append(rule_in_words(valid, p, lo))
        why.append(dict([(n, ok[n]) for n in sizes if ok[n] is not None][:3]))
    return Sizes(range=(lo, hi), valid=tuple(out), smallest=tuple(v[0] if v else None for v in out),
                 rule=tuple(words), period=tuple(periods), invalid=tuple(why), method="; ".join(sorted(methods)))


def _spot_checks(ok, lo, hi):
    """A handful of sizes spread over the range: the largest valid and invalid ones, and between."""
    sizes = list(range(lo, hi + 1))
    valid = [n for n in sizes if ok[n] is None]
    invalid = [n for n in sizes if ok[n] is not None]
    picks = set(valid[-1:] + invalid[-1:])
    for frac in (0.25, 0.5, 0.75):
        n = sizes[int(frac * (len(sizes) - 1))]
        picks.update({n, n + 1} & set(sizes))
    return sorted(picks)


def _module_sizes(model, input_shape, lo, hi, confirm):
    from .. import from_torch

    if input_shape is None:
        raise AnswerError("a torch module needs input_shape, e.g. (3, 256, 256): the channels, and the "
                          "size the other axes keep")
    shape = tuple(input_shape)
    return made_sizes(lambda size: from_torch(model, shape[:1] + tuple(size)), shape[1:], (lo, hi),
                      confirm=confirm, what="the model traced")


def made_sizes(make, size, span, *, confirm=6, what="the graph made") -> Sizes:
    """:func:`valid_sizes` of whatever ``make(size)`` builds at each size: a graph (a torch
    model traced at that size, a spec file resized, ...), or an :class:`RFGraphError` when the
    model refuses the size.

    The graph made at ``size`` is evaluated at every size by re-analysis, and the result
    confirmed by making it again at ``confirm`` sizes; where that disagrees (the graph holds
    sizes taken from its input, or the model checks sizes in Python), ``make`` is called at
    every size of three grid periods and the rule extrapolated (``Sizes.method`` says so).
    """
    lo, hi = span
    base = tuple(size)
    G = make(base)
    label = "x".join(map(str, base))
    result = _graph_sizes(G, lo, hi, f"re-analysed {what} at {label}", base=base)
    tried = set()
    for ax in range(len(base)):
        for n in _confirmations(result.valid[ax], lo, hi, confirm):
            got = _made_at(make, base, ax, n)
            tried.add(n)
            if (got is None) != (n in result.valid[ax]):
                return _probed_sizes(make, base, lo, hi, G, (ax, n), what)
    return Sizes(**{**result.__dict__, "method": result.method + "; confirmed by building it again at "
                    + ", ".join(map(str, sorted(tried)))})


def _confirmations(valid, lo, hi, k):
    picks = set(valid[:1] + valid[-1:])
    for n in (valid[:1] + valid[-1:]):
        picks.update(x for x in (n - 1, n + 1) if lo <= x <= hi)
    if not valid:
        picks.update({lo, hi})
    return sorted(picks)[:max(k, 2)]


def _made_at(make, base, ax, n):
    from .. import analyze

    try:
        return _verdict(analyze(make(base[:ax] + (n,) + base[ax + 1:])), ax)
    except RFGraphError as exc:
        return str(exc)


def _probed_sizes(make, base, lo, hi, G, where, what):
    from .. import analyze

    analysis = analyze(G)
    out, words, periods, why, ends = [], [], [], [], []
    sizes = list(range(lo, hi + 1))
    for ax in range(len(base)):
        m = max(grid_multiple(analysis, analysis.order, ax), 2)
        probe = list(range(lo, min(hi, lo + 3 * m - 1) + 1))
        ends.append((probe[-1], m))
        ok = {n: _made_at(make, base, ax, n) for n in probe}
        p = _period(ok, probe)
        if p is None or probe[-1] == hi:
            valid = tuple(n for n in probe if ok[n] is None)
        else:
            first = next(n for n in probe if ok[n] is None)
            res = {(k - first) % p for k in probe if ok[k] is None and k >= first}
            valid = tuple(n for n in sizes if n >= first and (n - first) % p in res)
        out.append(valid)
        periods.append(p)
        words.append(rule_in_words(list(valid), p, lo))
        why.append(dict([(n, ok[n]) for n in probe if ok[n] is not None][:3]))
    method = (f"{what} at {'x'.join(map(str, base))} does not generalise (at size {where[1]} along axis "
              f"{where[0]} building it again disagrees: sizes taken from the input, or a size check in "
              f"the model's code), so it was built at every size from {lo} to "
              f"{', '.join(str(e) for e, _ in ends)} (three periods of its grid) and the rule extrapolated "
              f"to {hi}")
    return Sizes(range=(lo, hi), valid=tuple(out), smallest=tuple(v[0] if v else None for v in out),
                 rule=tuple(words), period=tuple(periods), invalid=tuple(why), method=method)


def to_text(s: Sizes) -> str:
    """One paragraph per axis: the rule, the smallest valid size, the sizes, why others fail."""
    lines = [f"sizes {s.range[0]}..{s.range[1]}: {s.method}"]
    for ax, valid in enumerate(s.valid):
        shown = ", ".join(map(str, valid[:12])) + (f", ... ({len(valid)} sizes)" if len(valid) > 12 else "")
        lines.append(f"axis {ax}: {s.rule[ax]}; smallest {s.smallest[ax]}; valid: {shown or 'none'}")
        for n, why in s.invalid[ax].items():
            lines.append(f"  {n}: {why}")
    return "\n".join(lines) + "\n"
