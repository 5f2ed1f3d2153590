"""Independent receptive-field oracle: the *gradient support* of a torch rebuild of the graph.

The network given as a :class:`networkx.DiGraph` (rfgraph's schema) is rebuilt here in plain torch,
float64, with **positive** random weights and zero bias, and with every max pooling replaced by a
positive-weight window of the same shape (max -> average, adaptive max -> adaptive average). With
only positive weights and a positive input nothing can cancel, so an input pixel gets a non-zero
gradient from an output feature exactly when the feature depends on it: the support of the input
gradient *is* the receptive field (see ``shared/reference.md``, "Independent check").

This module deliberately shares no code with ``rfgraph``: it reads the raw node attributes itself and
lets torch do every index computation (``F.interpolate``, ``F.conv_transpose*``, adaptive pooling,
slicing), so that an error in the engine's arithmetic cannot be repeated here. Two deliberate
departures from a literal rebuild, both so that "non-zero gradient" means "depends on":

* ``mul`` multiplies ``(x + 1)`` factors: a factor that is exactly 0 because it only saw padding
  would otherwise hide the other factors (a real network, with biases, still depends on them);
* ``upsample`` applies, per axis, a 0/1 matrix with PyTorch's own tap pattern (taken from
  ``F.interpolate`` of the identity), dropping float round-off taps of weight < 1e-9 and keeping
  bicubic's negative weights from cancelling (:func:`interpolation_pattern`).

Padding markers
---------------
To know which features see their full, theoretical RF (the "interior" ones), every padded cell
carries ``eps[axis]``, a per-axis scalar that is 0 in value but requires grad: a feature reads
padding along ``axis`` (anywhere upstream, also an intermediate layer's padding that maps onto
real pixels after a crop or a valid conv) exactly when its gradient with respect to
``eps[axis]`` is non-zero.

Main entry points
-----------------
build_module(G)                    -> GraphNet, a torch module returning every node's tensor
gradient_support(G, node, pos)     -> bool mask over the input grid
SupportProbe(G)                    -> one forward pass, many supports (what the tests use)
support_hull(mask), axis_projection(mask, axis), gap_runs(pixels)
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DTYPE",
    "GraphNet",
    "SupportProbe",
    "build_module",
    "gradient_support",
    "interpolation_pattern",
    "support_hull",
    "axis_projection",
    "gap_runs",
    "input_nodes",
    "ordered_inputs",
    "padding_pairs",
    "window_out_size",
]

DTYPE = torch.float64
# The tensors here are tiny: extra intra-op threads only add overhead (and fight over 2 cores).
torch.set_num_threads(1)
WINDOW_OPS = ("conv", "maxpool", "avgpool")
JOIN_OPS = ("add", "mul", "concat")

# Functional ops by number of spatial axes (index 1, 2, 3).
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_ADAPTIVE = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


# ---------------------------------------------------------------------------------------------
# Reading the schema


def input_nodes(G):
    """Input node names in sorted order (the order :class:`GraphNet` takes its tensors in)."""
    names = [v for v, op in G.nodes(data="op") if op == "input"]
    try:
        return sorted(names)
    except TypeError:  # mixed name types: any fixed order will do
        return sorted(names, key=repr)


def ordered_inputs(G, node):
    """Predecessors of ``node``, by edge attribute ``index`` when present.

    The order only decides the channel order of a concat, which never changes a support, but we
    follow the schema anyway so that debugging output matches the engine's.
    """
    preds = list(G.predecessors(node))
    rank = {p: i for i, p in enumerate(preds)}
    return sorted(preds, key=lambda p: (G.edges[p, node].get("index", rank[p]), rank[p]))


def per_axis(value, ndim):
    """Broadcast an int (or None) to ``ndim`` axes, or check a per-axis tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != ndim:
            raise ValueError(f"{value!r} needs one entry per spatial axis ({ndim})")
        return tuple(value)
    return (value,) * ndim


def effective_kernel(k, d):
    """Span ``d*(k-1) + 1`` of a dilated kernel."""
    return d * (k - 1) + 1


def padding_pairs(padding, sizes, kernel, stride, dilation):
    """Normalise a window op's ``padding`` to one ``(before, after)`` pair per axis.

    Parameters
    ----------
    padding : int, tuple of ints, tuple of pairs, "same" or "valid"
        A flat tuple of ints is one symmetric amount per axis; a nested tuple gives pairs.
        Per-axis entries may mix ints and pairs.
    sizes, kernel, stride, dilation : tuple of int
        Per-axis input size and window parameters (needed for ``"same"``).

    Returns
    -------
    list of (int, int)
    """
    ndim = len(sizes)
    if padding is None or padding == "valid":
        return [(0, 0)] * ndim
    if padding == "same":
        pairs = []
        for n, k, s, d in zip(sizes, kernel, stride, dilation):
            # TensorFlow's rule; the odd pixel goes after.
            total = max((math.ceil(n / s) - 1) * s + effective_kernel(k, d) - n, 0)
            pairs.append((total // 2, total - total // 2))
        return pairs
    out = []
    for p in per_axis(padding, ndim):
        out.append(tuple(p) if isinstance(p, (tuple, list)) else (p, p))
    return out


def window_out_size(n, k, s, d, before, after, ceil_mode=False):
    """Output size of a conv/pool window, PyTorch's rule (incl. ``ceil_mode``).

    With ``ceil_mode`` the division rounds up, but the last window must still start inside the
    input or its left padding (``(out-1)*s < n + before``), exactly as ATen's
    ``pooling_output_shape`` does. Returns 0 when not even one window fits.
    """
    span = n + before + after - effective_kernel(k, d)
    if not ceil_mode:
        return span // s + 1 if span >= 0 else 0
    # ATen: div_rtn(span + s - 1, s) + 1, rounding towards minus infinity, so one window larger
    # than the input still fits when it starts inside it (checked against torch in the self-check)
    out = (span + s - 1) // s + 1
    if out > 0 and (out - 1) * s >= n + before:
        out -= 1
    return max(out, 0)


def _pad_arg(pairs):
    """Per-axis ``(before, after)`` pairs -> the flat, last-axis-first list ``F.pad`` wants."""
    flat = []
    for before, after in reversed(list(pairs)):
        flat += [before, after]
    return flat


def _positive(gen, *shape):
    """Uniform(0.5, 1.5) float64 tensor: positive, bounded away from zero."""
    return 0.5 + torch.rand(*shape, generator=gen, dtype=DTYPE)


# ---------------------------------------------------------------------------------------------
# The torch rebuild


def interpolation_pattern(n_in, mode, align_corners=False, size=None, scale=None):
    """Which input pixels each output of a 1-D ``F.interpolate`` reads, as a 0/1 float64 matrix.

    The weights come from ``F.interpolate`` itself, applied to the identity (float64). Entries
    below 1e-9 in magnitude are float round-off, not dependencies: where the exact source
    coordinate is an integer, float64 can land a hair below it (e.g. linear, align_corners,
    49 -> 95, output 47: 47*48/94 = 24 exactly, computed as 23.999999999999996), giving the
    neighbour a weight of ~1e-15. Real taps weigh far more (>= ~1e-4 at these sizes). Taking
    the pattern rather than the weights also keeps bicubic's negative lobes from cancelling.
    Nearest modes pick one pixel with weight 1; ATen computes their index in float32 for every
    dtype, so this matches what any network computes.

    Returns
    -------
    torch.Tensor, shape (n_out, n_in)
    """
    eye = torch.eye(n_in, dtype=DTYPE)
    kwargs = {}
    if size is not None:
        kwargs["size"] = size
    else:
        kwargs["scale_factor"] = scale
    if mode == "bicubic":
        # bicubic exists only in 2-D: add a dummy axis of size 1 (mapped 1 -> 1 exactly)
        kwargs = {k: (v, 1.0 if k == "scale_factor" else 1) for k, v in kwargs.items()}
        w = F.interpolate(eye.view(n_in, 1, n_in, 1), mode="bicubic",
                          align_corners=align_corners, **kwargs)[:, 0, :, 0]
    else:
        if mode in ("linear", "bilinear", "trilinear"):
            kwargs.update(mode="linear", align_corners=align_corners)
        else:
            kwargs.update(mode=mode)
        w = F.interpolate(eye.view(n_in, 1, n_in), **kwargs)[:, 0, :]
    # w[i, o] = weight of input pixel i in output o
    return (w.abs() > 1e-9).to(DTYPE).T.contiguous()


class GraphNet(torch.nn.Module):
    """The graph as a torch module with positive weights.

    Parameters
    ----------
    G : networkx.DiGraph
        Network in rfgraph's schema.
    seed : int
        Seed for the weights and the channel counts.

    Notes
    -----
    ``forward(*inputs)`` takes one ``(1, 1, *size)`` tensor per input node, in
    :func:`input_nodes` order, and returns a dict mapping every node to its output tensor.
    Weights are created lazily on the first forward, once input channel counts are known, so one
    instance always uses the same weights.
    """

    def __init__(self, G, seed=0):
        super().__init__()
        self.G = G
        self.order = list(nx.topological_sort(G))
        self.inputs = input_nodes(G)
        if not self.inputs:
            raise ValueError("graph has no input node")
        size = G.nodes[self.inputs[0]]["size"]
        self.size = tuple(size) if isinstance(size, (tuple, list)) else (size,)
        self.ndim = len(self.size)
        self.gen = torch.Generator().manual_seed(seed)
        self.weights = {}  # node -> weight tensor (created on first use)
        self.channels = {}  # node -> output channels of a conv / convtranspose
        self.markers = None  # per-axis padding markers of the current forward

    # -- helpers ---------------------------------------------------------------------------

    def _attr(self, node, key, default=None):
        return self.G.nodes[node].get(key, default)

    def _axes(self, node, key, default=None):
        return per_axis(self._attr(node, key, default), self.ndim)

    def _weight(self, node, shape):
        # One fixed positive weight per node, drawn the first time the node is evaluated.
        if node not in self.weights:
            self.weights[node] = _positive(self.gen, *shape)
        return self.weights[node]

    def _out_channels(self, node):
        # 1 or 2 output channels per conv, so concat/add/mul see varied channel counts.
        if node not in self.channels:
            self.channels[node] = int(torch.randint(1, 3, (1,), generator=self.gen))
        return self.channels[node]

    # -- ops -------------------------------------------------------------------------------

    def _marked_pad(self, x, pairs, mode="constant"):
        """``F.pad`` plus ``eps[axis]`` on every cell added along ``axis`` (see module notes)."""
        sizes = x.shape[2:]
        x = F.pad(x, _pad_arg(pairs), mode=mode)
        if self.markers is None:
            return x
        for a, (n, (before, after)) in enumerate(zip(sizes, pairs)):
            added = torch.zeros(x.shape[2 + a], dtype=DTYPE)
            added[:max(before, 0)] = 1.0
            added[max(before, 0) + n + min(before, 0):] = 1.0  # after the (possibly cropped) input
            shape = [1] * x.dim()
            shape[2 + a] = -1
            x = x + self.markers[a] * added.view(shape)
        return x

    def _window(self, node, op, x):
        """conv / maxpool / avgpool as explicit padding + an unpadded positive-weight conv.

        Pools become depthwise convs with a positive kernel: the same window, so the same
        support as max pooling's *dependency* (max's gradient would only show the argmax). A conv
        rather than ``F.avg_pool`` because avg_pool has no dilation. Padding is applied by hand so
        that (before, after) pairs and ``ceil_mode`` windows that run past the padding (extra zeros)
        need no special case.
        """
        sizes = x.shape[2:]
        k = self._axes(node, "kernel")
        s = self._axes(node, "stride", 1 if op == "conv" else self._attr(node, "kernel"))
        d = self._axes(node, "dilation", 1)
        ceil_mode = bool(self._attr(node, "ceil_mode", False)) and op != "conv"
        pads = padding_pairs(self._attr(node, "padding", 0), sizes, k, s, d)
        outs, full_pads = [], []
        for n, kk, ss, dd, (before, after) in zip(sizes, k, s, d, pads):
            out = window_out_size(n, kk, ss, dd, before, after, ceil_mode)
            if out < 1:
                raise ValueError(f"{node}: output size {out} < 1")
            # Pad (or crop) the right so exactly `out` windows fit.
            needed = (out - 1) * ss + effective_kernel(kk, dd)
            outs.append(out)
            full_pads.append((before, needed - n - before))
        x = self._marked_pad(x, full_pads)
        c_in = x.shape[1]
        if op == "conv":
            w = self._weight(node, (self._out_channels(node), c_in, *k))
            groups = 1
        else:
            w = self._weight(node, (c_in, 1, *k))
            groups = c_in
        y = _CONV[self.ndim](x, w, stride=s, dilation=d, groups=groups)
        assert tuple(y.shape[2:]) == tuple(outs), (node, y.shape, outs)
        return y

    def _convtranspose(self, node, x):
        k = self._axes(node, "kernel")
        s = self._axes(node, "stride", 1)
        p = self._axes(node, "padding", 0)
        d = self._axes(node, "dilation", 1)
        w = self._weight(node, (x.shape[1], self._out_channels(node), *k))
        y = _CONVT[self.ndim](x, w, stride=s, padding=p, dilation=d,
                              output_padding=self._axes(node, "output_padding", 0))
        if self.markers is None:
            return y
        # Mark outputs whose kernel taps fall outside the input: the transposed conv's implicit
        # padding (output o, tap t reads input (o + p - t*d) / s when that divides).
        for a in range(self.ndim):
            o = np.arange(y.shape[2 + a])[:, None]
            num = o + p[a] - np.arange(k[a])[None, :] * d[a]
            virtual = (num % s[a] == 0) & ((num < 0) | (num // s[a] >= x.shape[2 + a]))
            shape = [1] * y.dim()
            shape[2 + a] = -1
            y = y + self.markers[a] * torch.as_tensor(virtual.sum(1), dtype=DTYPE).view(shape)
        return y

    def _upsample(self, node, x):
        """Interpolation as one positive matrix per axis with PyTorch's tap pattern.

        See :func:`interpolation_pattern`; applying the axes one after the other is what
        ``F.interpolate`` does too (its 2-D/3-D modes are separable).
        """
        mode = self._attr(node, "mode", "nearest")
        align = bool(self._attr(node, "align_corners", False))
        sizes = self._axes(node, "size") if self._attr(node, "size") is not None else None
        scales = self._axes(node, "scale") if sizes is None else None
        for a in range(self.ndim):
            pattern = interpolation_pattern(
                x.shape[2 + a], mode, align,
                size=None if sizes is None else sizes[a],
                scale=None if scales is None else float(scales[a]))
            # out[..., o, ...] = sum_i pattern[o, i] * x[..., i, ...] along axis a
            x = torch.movedim(torch.movedim(x, 2 + a, -1) @ pattern.T, -1, 2 + a)
        return x

    def _pad(self, node, x):
        pairs = [tuple(p) if isinstance(p, (tuple, list)) else (p, p)
                 for p in self._axes(node, "padding")]
        mode = self._attr(node, "mode", "constant")
        return self._marked_pad(x, pairs, mode)

    def _slice(self, node, x):
        idx = [slice(None), slice(None)]
        for a, b, c in zip(self._axes(node, "start"), self._axes(node, "stop"),
                           self._axes(node, "step")):
            idx.append(slice(a, b, c))
        return x[tuple(idx)]

    def _global(self, node, x):
        """Each output feature depends on the whole input (along ``axes``, default all)."""
        axes = self._attr(node, "axes")
        if axes is None:
            axes = range(self.ndim)
        elif not isinstance(axes, (tuple, list)):
            axes = (axes,)
        axes = sorted({a % self.ndim for a in axes})
        size = self._axes(node, "size", 1)
        y = x.mean(dim=[2 + a for a in axes], keepdim=True)
        shape = list(y.shape)
        for a in axes:
            shape[2 + a] = size[a]
        return y.expand(shape)

    def _join(self, node, op, xs):
        """add / mul / concat with spatial size-1 broadcasting (squeeze-and-excitation)."""
        spatial = []
        for a in range(self.ndim):
            sizes = {x.shape[2 + a] for x in xs} - {1}
            if len(sizes) > 1:
                raise ValueError(f"{node}: join inputs disagree on axis {a}: {sorted(sizes)}")
            spatial.append(sizes.pop() if sizes else 1)
        if op == "concat":
            return torch.cat([x.expand(1, x.shape[1], *spatial) for x in xs], dim=1)
        if len({x.shape[1] for x in xs}) > 1:
            # Channel counts differ: sum channels first (positive, so no support is lost).
            xs = [x.sum(dim=1, keepdim=True) for x in xs]
        if op == "mul":
            # Shift every factor by +1 (a positive bias) before multiplying: a factor that is
            # exactly 0 because it only saw padding would otherwise annihilate the other factors'
            # gradients, although in a real network (with biases) the product depends on them.
            xs = [x + 1.0 for x in xs]
        y = xs[0].expand(1, xs[0].shape[1], *spatial)
        for x in xs[1:]:
            y = y + x if op == "add" else y * x
        return y

    def _node(self, node, xs):
        op = self._attr(node, "op")
        if op in JOIN_OPS:
            return self._join(node, op, xs)
        if len(xs) != 1:
            raise ValueError(f"{node}: op {op!r} takes one input, got {len(xs)}")
        x = xs[0]
        if op in WINDOW_OPS:
            return self._window(node, op, x)
        if op == "convtranspose":
            return self._convtranspose(node, x)
        if op == "upsample":
            return self._upsample(node, x)
        if op in ("adaptive_avgpool", "adaptive_maxpool"):
            return _ADAPTIVE[self.ndim](x, self._axes(node, "output_size"))
        if op == "pad":
            return self._pad(node, x)
        if op == "slice":
            return self._slice(node, x)
        if op == "global":
            return self._global(node, x)
        if op == "identity":
            return x
        raise ValueError(f"{node}: oracle has no rule for op {op!r}")

    def forward(self, *inputs, markers=None):
        """Every node's output; ``markers`` (optional, one per axis) tags padded cells."""
        self.markers = markers
        if len(inputs) != len(self.inputs):
            raise ValueError(f"expected {len(self.inputs)} input tensors, got {len(inputs)}")
        values = dict(zip(self.inputs, inputs))
        for node in self.order:
            if node in values:
                continue
            if self._attr(node, "op") == "input":
                raise ValueError(f"{node}: unexpected input node")
            y = self._node(node, [values[p] for p in ordered_inputs(self.G, node)])
            if min(y.shape[2:], default=1) < 1:
                raise ValueError(f"{node}: output size {tuple(y.shape[2:])} < 1")
            values[node] = y
        return values


def build_module(G, seed=0):
    """The graph as a :class:`GraphNet` (float64, positive weights, zero bias).

    Examples
    --------
    >>> import networkx as nx
    >>> G = nx.DiGraph()
    >>> G.add_node("x", op="input", size=(9,))
    >>> G.add_node("c", op="conv", kernel=3)
    >>> G.add_edge("x", "c")
    >>> net = build_module(G)
    >>> tuple(net(torch.ones(1, 1, 9, dtype=DTYPE))["c"].shape[2:])
    (7,)
    """
    return GraphNet(G, seed=seed)


# ---------------------------------------------------------------------------------------------
# Supports


def random_inputs(net, seed=1):
    """One positive uniform(0.5, 1.5) tensor per input node, requiring grad."""
    gen = torch.Generator().manual_seed(seed)
    return [_positive(gen, 1, 1, *net.size).requires_grad_(True) for _ in net.inputs]


class SupportProbe:
    """Forward the graph once, then back-propagate as many output features as wanted.

    Parameters
    ----------
    G : networkx.DiGraph
    seed : int
        Seed for weights and input.

    Attributes
    ----------
    values : dict
        Every node's output tensor (``values[node].shape[2:]`` is its spatial size).
    """

    def __init__(self, G, seed=0):
        self.net = build_module(G, seed=seed)
        self.inputs = random_inputs(self.net, seed=seed + 1)
        self.markers = torch.zeros(self.net.ndim, dtype=DTYPE, requires_grad=True)
        self.values = self.net(*self.inputs, markers=self.markers)
        self._slabs = {}

    def shape(self, node):
        """Spatial output size of ``node``."""
        return tuple(self.values[node].shape[2:])

    def _selector(self, node, position):
        """Cotangent selecting ``position`` (all channels); ``None`` entries select a whole axis."""
        out = self.values[node]
        if len(position) != out.dim() - 2:
            raise ValueError(f"position {position} has {len(position)} entries, node has "
                             f"{out.dim() - 2} spatial axes")
        idx = [slice(None), slice(None)]
        for a, p in enumerate(position):
            if p is not None and not 0 <= p < out.shape[2 + a]:
                raise IndexError(f"position {position} outside output size {tuple(out.shape[2:])}")
            idx.append(slice(None) if p is None else p)
        sel = torch.zeros_like(out)
        sel[tuple(idx)] = 1.0
        return sel

    def _backward(self, node, cotangents):
        """Support masks (OR over inputs) and per-axis padding reads for a batch of cotangents.

        Returns
        -------
        mask : bool array, shape (batch, *input size)
        padding : bool array, shape (batch, naxes)
        """
        out = self.values[node]
        leaves = [*self.inputs, self.markers]
        try:
            grads = torch.autograd.grad(out, leaves, torch.stack(cotangents), retain_graph=True,
                                        allow_unused=True, is_grads_batched=True)
        except RuntimeError:  # an op without a batching rule: one backward per cotangent
            rows = [torch.autograd.grad(out, leaves, c, retain_graph=True, allow_unused=True)
                    for c in cotangents]
            grads = [None if col[0] is None else torch.stack(col) for col in zip(*rows)]
        mask = np.zeros((len(cotangents), *self.net.size), dtype=bool)
        for g in grads[:-1]:
            if g is not None:
                mask |= (g[:, 0, 0] != 0).numpy()
        pad = grads[-1]
        pad = np.zeros((len(cotangents), self.net.ndim), bool) if pad is None else (pad != 0).numpy()
        return mask, pad

    def support(self, node, position):
        """Boolean mask over the input grid of the pixels feature ``position`` of ``node`` depends on.

        ``position`` has one index per axis; an entry ``None`` takes the union over that whole
        axis (a "slab"), which is what per-axis bounds of a multi-axis net describe.
        """
        return self._backward(node, [self._selector(node, tuple(position))])[0][0]

    def reads_padding(self, node, position):
        """Per axis: does feature ``position`` read any padding along that axis, anywhere upstream?"""
        return tuple(self._backward(node, [self._selector(node, tuple(position))])[1][0])

    def _slab_report(self, node, axis):
        key = (node, axis)
        if key not in self._slabs:
            ndim = self.net.ndim
            positions = [tuple(i if a == axis else None for a in range(ndim))
                         for i in range(self.shape(node)[axis])]
            mask, pad = self._backward(node, [self._selector(node, p) for p in positions])
            self._slabs[key] = (mask, pad[:, axis])
        return self._slabs[key]

    def axis_supports(self, node, axis):
        """Masks of every slab ``position[axis] = i`` (other axes: all), ``i = 0 .. n-1``."""
        return self._slab_report(node, axis)[0]

    def axis_padding(self, node, axis):
        """Per slab ``position[axis] = i``: does it read padding along ``axis`` (bool array)?"""
        return self._slab_report(node, axis)[1]


def gradient_support(G, node, position, seed=0):
    """Input pixels that output feature ``position`` of ``node`` depends on.

    Parameters
    ----------
    G : networkx.DiGraph
    node : hashable
    position : tuple of int (or None)
        One index per spatial axis; ``None`` means "every position along this axis".
    seed : int

    Returns
    -------
    numpy.ndarray of bool
        Shape of the input grid; OR over the input nodes if there are several.
    """
    return SupportProbe(G, seed=seed).support(node, position)


def axis_projection(mask, axis):
    """Sorted pixel indices along ``axis`` where the support has any pixel."""
    other = tuple(a for a in range(mask.ndim) if a != axis)
    return np.flatnonzero(mask.any(axis=other) if other else mask)


def support_hull(mask):
    """Per-axis ``(lo, hi)`` inclusive pixel range of the support, or None if it is empty."""
    if not mask.any():
        return None
    hull = []
    for a in range(mask.ndim):
        pix = axis_projection(mask, a)
        hull.append((int(pix[0]), int(pix[-1])))
    return hull


def gap_runs(pixels):
    """Runs of missing pixels inside the hull of ``pixels``, as ``(g_lo, g_hi)`` offsets from its first pixel.

    >>> gap_runs([4, 6, 7, 10])
    ((1, 1), (4, 5))
    """
    pixels = np.asarray(pixels)
    runs = []
    for a, b in zip(pixels[:-1], pixels[1:]):
        if b > a + 1:
            runs.append((int(a + 1 - pixels[0]), int(b - 1 - pixels[0])))
    return tuple(runs)
