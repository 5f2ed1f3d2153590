"""Seeded generator of random branching CNN graphs (1-D and 2-D) in rfgraph's schema.

Every generated graph is valid: each node's output size is checked with a real torch forward of
the oracle (:mod:`oracle`) as it is added, and a node that would make a size < 1, or a join whose
inputs disagree, is dropped and something else is tried. Parameters also respect the schema's
limits (conv padding below the effective kernel, pooling padding at most half of it, no dilation on
avgpool), so the engine must accept every graph.

``random_dag(seed)`` is deterministic: a failing seed reproduces.
"""

from __future__ import annotations

import random

import networkx as nx
import torch

from oracle import build_module, random_inputs

__all__ = ["random_dag", "graph_source", "AFFINE_OPS"]

#: Ops whose index map is affine (with constant padding): below only these, the engine's summary
#: must be exact (as long as joins agree on the jump and do not broadcast).
AFFINE_OPS = frozenset({"input", "conv", "maxpool", "avgpool", "slice", "identity", "add", "mul",
                        "concat", "pad"})


class _Builder:
    """Grows a graph node by node, keeping the spatial size of every node."""

    def __init__(self, rng, size, n_inputs):
        self.rng = rng
        self.ndim = len(size)
        self.G = nx.DiGraph()
        self.sizes = {}
        self.count = 0
        for i in range(n_inputs):
            name = f"in{i}"
            self.G.add_node(name, op="input", size=size)
            self.sizes[name] = tuple(size)

    # -- bookkeeping -------------------------------------------------------------------------

    def _shape_of(self, node):
        """Spatial size of ``node`` by a forward pass of the current graph (None if invalid).

        A node none of whose features sees any input pixel (e.g. a pad that crops away all of
        the input along one axis) is invalid too: per-axis bounds of the other axes are then
        meaningless.
        """
        sub = self.G.subgraph(nx.ancestors(self.G, node) | {node})
        try:
            net = build_module(sub)
            inputs = random_inputs(net)
            out = net(*inputs)[node]
        except (ValueError, RuntimeError):
            return None
        shape = tuple(out.shape[2:])
        if min(shape) < 1:
            return None
        grads = torch.autograd.grad(out.sum(), inputs, allow_unused=True)
        if all(g is None or not g.any() for g in grads):
            return None
        return shape

    def add(self, op, preds, **attrs):
        """Add ``op`` fed by ``preds``; return its name, or None (and no change) if invalid."""
        name = f"{op}{self.count}"
        self.count += 1
        self.G.add_node(name, op=op, **attrs)
        for i, p in enumerate(preds):
            self.G.add_edge(p, name, index=i)
        shape = self._shape_of(name)
        if shape is None:
            self.G.remove_node(name)
            return None
        self.sizes[name] = shape
        return name

    def remove(self, nodes):
        for v in nodes:
            if v in self.G:
                self.G.remove_node(v)
                del self.sizes[v]

    # -- random parameters -------------------------------------------------------------------

    def per_axis(self, draw):
        """An int for every axis, or (sometimes, in 2-D) a different value per axis."""
        if self.ndim > 1 and self.rng.random() < 0.3:
            return tuple(draw() for _ in range(self.ndim))
        return draw()

    def _axis(self, value, a):
        return value[a] if isinstance(value, tuple) else value

    def window_attrs(self, stride=None, same=False):
        """Attributes of a random conv / maxpool / avgpool node."""
        rng = self.rng
        op = rng.choice(["conv", "conv", "maxpool", "avgpool"])
        k = self.per_axis(lambda: rng.randint(1, 5))
        attrs = {"kernel": k}
        d = 1
        if op != "avgpool" and rng.random() < 0.4:
            d = self.per_axis(lambda: rng.randint(1, 3))
            attrs["dilation"] = d
        if stride is not None:
            attrs["stride"] = stride
        elif op == "conv" or rng.random() < 0.7:
            attrs["stride"] = self.per_axis(lambda: rng.choice([1, 1, 2, 3]))
        # otherwise pools default to stride = kernel
        if op != "conv" and rng.random() < 0.4:
            attrs["ceil_mode"] = True
        if same:
            attrs["padding"] = "same"
        else:
            attrs["padding"] = self.padding(op, k, d)
        return op, attrs

    def padding(self, op, k, d):
        """Random padding within the schema's limits, in one of its spellings."""
        rng = self.rng
        style = rng.choice(["int", "axes", "pairs", "pairs", "same", "valid"])
        if style in ("same", "valid"):
            return style
        pairs = []
        for a in range(self.ndim):
            ke = self._axis(d, a) * (self._axis(k, a) - 1) + 1
            # a conv may pad up to twice its kernel (border features then read only padding);
            # pooling at most half of it, as PyTorch allows
            top = 2 * ke if op == "conv" else ke // 2
            if style == "pairs":
                pairs.append((rng.randint(0, top), rng.randint(0, top)))
            else:
                p = rng.randint(0, top)
                pairs.append((p, p))
        if style == "pairs":
            return tuple(pairs)
        if style == "axes" and self.ndim > 1:
            return tuple(p for p, _ in pairs)
        return min(p for p, _ in pairs)  # one int must fit every axis

    # -- motifs ------------------------------------------------------------------------------

    def window(self, x):
        """One random conv/pool on ``x``."""
        for _ in range(5):
            op, attrs = self.window_attrs()
            v = self.add(op, [x], **attrs)
            if v:
                return v
        return None

    def branch(self, x, stride, same):
        """A chain of 1-2 window ops, the first with ``stride``; returns its nodes."""
        nodes = []
        for depth in range(self.rng.randint(1, 2)):
            op, attrs = self.window_attrs(stride=stride if depth == 0 else 1, same=same)
            v = self.add(op, [nodes[-1] if nodes else x], **attrs)
            if v is None:
                self.remove(nodes)
                return []
            nodes.append(v)
        return nodes

    def block(self, sources):
        """Parallel branches from ``sources`` joined by add/mul/concat (inception / residual).

        Branches use "same" padding with one shared stride, so they agree on size; some use
        random padding instead and are kept only if their size happens to match (these give
        misaligned joins).
        """
        rng = self.rng
        stride = self.per_axis(lambda: rng.choice([1, 1, 2]))
        target = None
        tips, made = [], []
        skip_used = False
        for b in range(rng.randint(2, 3)):
            x = sources[b % len(sources)]
            if stride == 1 and not skip_used and rng.random() < 0.25:
                skip_used = True  # identity (residual) branch
                if x not in tips:
                    tips.append(x)
                continue
            nodes = []
            for attempt in range(6):
                same = attempt == 5 or rng.random() < 0.5
                nodes = self.branch(x, stride, same)
                if nodes and (target is None or self.sizes[nodes[-1]] == target):
                    break
                self.remove(nodes)
                nodes = []
            if not nodes:
                continue
            made += nodes
            target = target or self.sizes[nodes[-1]]
            tips.append(nodes[-1])
        if len(tips) < 2 or len({self.sizes[t] for t in tips}) > 1:
            self.remove(made)
            return None
        v = self.add(rng.choice(["add", "add", "mul", "concat"]), tips)
        if v is None:
            self.remove(made)
        return v

    def squeeze_excite(self, x):
        """x * conv1x1(global(x)): every feature sees the whole input (in 2-D sometimes along
        one axis only, pooling the other)."""
        if self.ndim > 1 and self.rng.random() < 0.3:
            g = self.add("global", [x], axes=self.rng.randrange(self.ndim))
        else:
            g = self.add("global", [x])
        e = self.add("conv", [g], kernel=1)
        v = self.add("mul", [x, e]) if e else None
        if v is None:
            self.remove([g, e])
        return v

    def special(self, x):
        """One of the less common ops (non-affine ones included)."""
        rng = self.rng
        n = self.sizes[x]
        kind = rng.choice(["upsample", "pad", "slice", "adaptive", "convtranspose", "identity",
                           "squeeze_excite"])
        if kind == "squeeze_excite":
            return self.squeeze_excite(x)
        if kind == "identity":
            return self.add("identity", [x])
        if kind == "upsample":
            modes = ["nearest", "nearest-exact", "linear"]
            if self.ndim == 2:
                modes += ["bilinear", "bicubic"]
            mode = rng.choice(modes)
            attrs = {"mode": mode}
            if not mode.startswith("nearest") and rng.random() < 0.5:
                attrs["align_corners"] = True
            if rng.random() < 0.5:
                attrs["scale"] = rng.choice([2, 3, 1.5])
            else:
                attrs["size"] = tuple(m + rng.randint(1, m) for m in n)
            return self.add("upsample", [x], **attrs)
        if kind == "pad":
            pairs = tuple((rng.randint(-2, 3), rng.randint(-2, 3)) for _ in n)
            attrs = {"padding": pairs}
            if rng.random() < 0.2:
                attrs["mode"] = rng.choice(["reflect", "replicate", "circular"])
            return self.add("pad", [x], **attrs)
        if kind == "slice":
            start = tuple(rng.randint(0, 3) for _ in n)
            stop = tuple(rng.choice([None, -1, -2, m - 1]) for m in n)
            step = tuple(rng.choice([1, 1, 2]) for _ in n)
            return self.add("slice", [x], start=start, stop=stop, step=step)
        if kind == "adaptive":
            out = tuple(max(1, m // rng.choice([1, 2, 3]) - rng.randint(0, 1)) for m in n)
            return self.add(rng.choice(["adaptive_avgpool", "adaptive_maxpool"]), [x],
                            output_size=out)
        k = self.per_axis(lambda: rng.randint(1, 4))
        s = self.per_axis(lambda: rng.randint(1, 3))
        kmin = min(k) if isinstance(k, tuple) else k
        attrs = {"kernel": k, "stride": s, "padding": rng.randint(0, kmin - 1)}
        smin = min(s) if isinstance(s, tuple) else s
        if smin > 1 and rng.random() < 0.5:
            attrs["output_padding"] = 1
        return self.add("convtranspose", [x], **attrs)


def random_dag(seed, square=False):
    """A random valid graph for ``seed``: 1-D (length 20..60) or 2-D (10..24 per side); with
    ``square``, 2-D with equal sides (most parameters then treat both axes alike)."""
    rng = random.Random(seed)
    ndim = 2 if square else rng.choice([1, 2])
    size = (rng.randint(20, 60),) if ndim == 1 else tuple(rng.randint(10, 24) for _ in range(2))
    if square:
        size = (size[0], size[0])
    b = _Builder(rng, size, n_inputs=2 if rng.random() < 0.15 else 1)
    tip = "in0"
    if "in1" in b.G:
        # two inputs meet in the first join
        tip = b.block(["in0", "in1"]) or "in0"
    steps = rng.randint(2, 5)
    n_inputs = b.G.number_of_nodes()
    # keep going until at least one layer exists (a small input can reject many attempts)
    for step in range(100):
        if step >= steps and b.G.number_of_nodes() > n_inputs:
            break
        action = rng.choices(["window", "block", "special", "join_existing"], [4, 4, 3, 1])[0]
        if action == "window":
            v = b.window(tip)
        elif action == "block":
            v = b.block([tip])
        elif action == "special":
            v = b.special(tip)
        else:
            same = [u for u in b.G if u != tip and b.sizes[u] == b.sizes[tip]]
            v = b.add(rng.choice(["add", "concat"]), [tip, rng.choice(same)]) if same else None
        tip = v or tip
    return b.G


def graph_source(G):
    """Python code that rebuilds ``G`` (for failure messages and bug reports)."""
    lines = ["G = nx.DiGraph()"]
    for v, attrs in G.nodes(data=True):
        args = ", ".join(f"{k}={val!r}" for k, val in attrs.items())
        lines.append(f"G.add_node({v!r}, {args})")
    for u, v, attrs in G.edges(data=True):
        lines.append(f"G.add_edge({u!r}, {v!r}, index={attrs.get('index', 0)})")
    return "\n".join(lines)
