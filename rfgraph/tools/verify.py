"""Independent check of receptive fields: gradient support measured on the real torch module.

The model is turned into a float64 CPU network with positive weights, zero biases, BatchNorm as
identity, max pooling (module or functional) replaced by average pooling with the same window, and
saturating activations (ReLU6, hard sigmoid/swish, hardtanh, and the sigmoid and tanh modules, whose
float64 gradient is exactly 0 past a few tens) swapped for ones whose gradient never vanishes;
softmax, which saturates as well on attention scores of positive weights, is measured as a
normalised softplus (:func:`unsaturated_softmax`).
With a positive random input every activation is positive, so the gradient of one output feature
(channels weighted by positive random numbers) with respect to the input is non-zero **exactly**
on that feature's receptive field. One forward pass, then one ``torch.autograd.grad`` per feature
position.

Nothing here uses rfgraph's arithmetic: :func:`compare` takes an rfgraph record (anything with
``n``, ``rf``, ``start``, ``jump``, ``exact``, ``is_global`` and ``bounds(axis)``) and reports
where it disagrees with the measurement. This module needs torch (``pip install 'rfgraph[torch]'``).

Examples
--------
>>> import torch
>>> from rfgraph.tools.verify import positive_copy, support, hull
>>> net = positive_copy(torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1),
...                                         torch.nn.MaxPool2d(2)))
>>> [mask] = support(net, None, (1, 16, 16), [(4, 4)])
>>> hull(mask)      # rows 7..10, cols 7..10: a 3x3 conv under a 2x2 pool sees 4x4 pixels
[(7, 10, False), (7, 10, False)]
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import RFGraphError
from ..frontends.torch_layout import standard_view

__all__ = [
    "max_as_avg", "unsaturated_softmax", "positive_copy", "positive_model", "capture", "support", "hull",
    "Comparison", "compare", "num_threads", "Cost", "estimate_cost", "count_params",
]


@contextlib.contextmanager
def max_as_avg():
    """Replace every max pooling (modules call the functional forms) by average pooling."""
    saved = {}

    def avg(nd):
        pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]

        def fn(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
            if dilation not in (1, (1,) * nd, [1] * nd):
                raise NotImplementedError("dilated max pooling has no average-pooling twin")
            # count_include_pad=False: a window that is mostly padding still reads its pixels
            out = pool(input, kernel_size, stride if stride else kernel_size, padding, ceil_mode)
            return (out, None) if return_indices else out

        return fn

    def adaptive(nd):
        pool = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[nd]

        def fn(input, output_size, return_indices=False):
            out = pool(input, output_size)
            return (out, None) if return_indices else out

        return fn

    targets = {}
    for nd in (1, 2, 3):
        targets[f"max_pool{nd}d"] = avg(nd)
        targets[f"adaptive_max_pool{nd}d"] = adaptive(nd)
    for name, fn in targets.items():
        saved[(F, name)] = getattr(F, name)
        setattr(F, name, fn)
        if hasattr(torch, name):
            saved[(torch, name)] = getattr(torch, name)
            setattr(torch, name, fn)
    try:
        yield
    finally:
        for (mod, name), fn in saved.items():
            setattr(mod, name, fn)


def _normalised(input, dim=None, _stacklevel=3, dtype=None):
    """Softmax's dependency structure without its saturation: ``softplus(x)`` normalised along
    ``dim``. Each output reads every input along ``dim``, as softmax does; but where attention
    scores of positive weights differ by more than ~700 (deep residual stacks), float64 softmax
    gives the other keys a weight and a gradient of exactly 0 and hides them. Softplus' gradient
    only vanishes below ~-745 (a -inf mask: 0, as in softmax)."""
    if dtype is not None:
        input = input.to(dtype)
    if dim is None:
        dim = -1
    g = F.softplus(input)
    return g / g.sum(dim, keepdim=True)


def _attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
               enable_gqa=False, **_):
    """``scaled_dot_product_attention`` written out with :func:`_normalised` (its fused kernels
    would saturate in the same way)."""
    scale = query.shape[-1] ** -0.5 if scale is None else scale
    if enable_gqa and key.shape[-3] != query.shape[-3]:
        rep = query.shape[-3] // key.shape[-3]
        key, value = key.repeat_interleave(rep, -3), value.repeat_interleave(rep, -3)
    scores = query @ key.transpose(-2, -1) * scale
    if is_causal:
        keep = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else scores + attn_mask
    return _normalised(scores, -1) @ value


@contextlib.contextmanager
def unsaturated_softmax():
    """Softmax (functional, method and inside ``scaled_dot_product_attention``) as
    :func:`_normalised` while the support is measured."""
    saved = [(F, "softmax", F.softmax), (torch, "softmax", torch.softmax),
             (torch.Tensor, "softmax", torch.Tensor.softmax),
             (F, "scaled_dot_product_attention", F.scaled_dot_product_attention)]
    F.softmax = torch.softmax = _normalised
    torch.Tensor.softmax = lambda self, dim, dtype=None: _normalised(self, dim, dtype=dtype)
    F.scaled_dot_product_attention = _attention
    try:
        yield
    finally:
        for mod, name, fn in saved:
            setattr(mod, name, fn)


_SATURATING = {
    # activations whose gradient is exactly zero past a threshold would hide parts of the RF: the
    # hard ones past their knees, and in float64 the sigmoid past ~37 and tanh past ~19 (1 - s
    # rounds to 0), which a squeeze-and-excitation gate of positive weights reaches (EfficientNet
    # V2's are at 270-790); softsign's gradient 1 / (1 + |x|)^2 never rounds to 0
    torch.nn.ReLU6: torch.nn.ReLU,
    torch.nn.Hardtanh: torch.nn.ReLU,
    torch.nn.Hardsigmoid: torch.nn.Softsign,
    torch.nn.Sigmoid: torch.nn.Softsign,
    torch.nn.Tanh: torch.nn.Softsign,
    torch.nn.Hardswish: torch.nn.SiLU,
}


def _replace_saturating(model):
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            for cls, repl in _SATURATING.items():
                if isinstance(child, cls):
                    setattr(parent, name, repl())
                    break


def _make_positive(m, seed):
    """In place: float64, positive weights scaled by fan-in, zero biases, BN as identity,
    smooth activations, eval mode, no gradients for parameters."""
    gen = torch.Generator().manual_seed(seed)
    m.to(torch.float64)
    _replace_saturating(m)
    m.eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                if mod.track_running_stats:
                    mod.reset_running_stats()
                if mod.affine:
                    mod.weight.fill_(1.0)
                    mod.bias.zero_()
                continue
            for name, p in mod.named_parameters(recurse=False):
                if name.startswith("bias") or p.dim() <= 1:
                    p.fill_(0.0 if name.startswith("bias") else 1.0)
                else:
                    fan_in = max(1, p[0].numel())
                    p.copy_((torch.rand(p.shape, generator=gen, dtype=torch.float64) + 0.5) / fan_in)
    for p in m.parameters():
        p.requires_grad_(False)  # only the input's gradient is measured: keep no weight grads
    return m


def positive_copy(model, seed=0):
    """A float64 CPU copy with positive weights scaled by fan-in, zero biases, BN as identity,
    and saturating activations (ReLU6, hard sigmoid/swish, sigmoid, tanh) swapped for ones whose
    gradient never vanishes."""
    return _make_positive(copy.deepcopy(model), seed)


@contextlib.contextmanager
def _no_init():
    """``torch.nn.init`` does nothing: every parameter is overwritten by :func:`_make_positive`,
    and random initialisation of a large model on the CPU takes longer than the check itself."""
    init = torch.nn.init
    saved = {n: getattr(init, n) for n in dir(init)
             if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))}
    for n in saved:
        setattr(init, n, lambda tensor, *args, **kwargs: tensor)
    try:
        yield
    finally:
        for n, fn in saved.items():
            setattr(init, n, fn)


def positive_model(factory, *args, seed=0, **kwargs):
    """``factory(*args, **kwargs)`` built on the CPU without random initialisation, then made
    positive in place (see :func:`positive_copy`); no second copy of the weights is made."""
    with _no_init():
        model = factory(*args, **kwargs)
    return _make_positive(model, seed)


def capture(model, module_names, x):
    """Run ``model(x)`` and return the outputs of the named modules (and the model output)."""
    outs = {}
    mods = dict(model.named_modules())
    hooks = []
    for name in module_names:
        def hook(_m, _i, o, name=name):
            outs[name] = o
        hooks.append(mods[name].register_forward_hook(hook))
    try:
        with max_as_avg(), unsaturated_softmax():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs, out


def _first_tensor(y):
    if isinstance(y, dict):
        y = next(iter(y.values()))
    if isinstance(y, (list, tuple)):
        y = y[0]
    return y


def support(model, module_name, input_shape, positions, seed=0, call=None, layout=None):
    """Gradient support of the features at ``positions`` of ``module_name``'s output (the model's
    output when ``module_name`` is None): one forward pass, one backward pass per position.
    ``layout``: the dims of the output's spatial axes (default the last ones, ``(N, C, *spatial)``;
    ``(1, 2)`` for a channels-last map: the front-end's ``module_layouts``).

    Returns a list (one per position) of boolean arrays over the input's spatial grid.
    """
    layouts = {module_name: layout} if layout is not None else None
    return supports(model, [module_name], input_shape, {module_name: positions}, seed=seed, call=call,
                    layouts=layouts)[module_name]


def supports(model, module_names, input_shape, positions, seed=0, call=None, layouts=None):
    """:func:`support` for several modules from one forward pass: ``{module: [mask, ...]}``.

    ``positions`` maps each module name to its list of positions; ``layouts`` (optional) each
    module name to its output's spatial dims (see :func:`support`).
    """
    gen = torch.Generator().manual_seed(seed + 1)
    x = (torch.rand((1,) + tuple(input_shape), generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    named = [m for m in module_names if m is not None]
    if named:
        outs, out = capture(model, named, x)
    else:
        outs = {}
        with max_as_avg(), unsaturated_softmax():
            out = call(model, x) if call else model(x)
    if None in module_names:
        outs[None] = out
    for m in module_names:
        y = _first_tensor(outs[m])
        if not bool(torch.isfinite(y).all()):
            # a multiplicative network (StarNet's x1 * x2 in every block) squares its activations:
            # with positive weights they pass float64's range, and inf has no gradient support
            where = "the model's output" if m is None else f"module {m!r}"
            raise RFGraphError(f"the positive-weight float64 copy overflows (inf or NaN) at {where}: "
                               "gradient support cannot be measured there")
    jobs = [(m, pos) for m in module_names for pos in positions[m]]
    result = {m: [] for m in module_names}
    layouts = layouts or {}
    for k, (m, pos) in enumerate(jobs):
        y = _first_tensor(outs[m])
        if layouts.get(m) is not None:  # channels-last: read the features of the map, not a slice across it
            y = standard_view(y, layouts[m])
        w = torch.rand(y.shape[1], generator=gen, dtype=torch.float64) + 0.5
        idx = (0, slice(None)) + tuple(pos)
        (g,) = torch.autograd.grad((y[idx] * w).sum(), x, retain_graph=k + 1 < len(jobs))
        result[m].append((g[0].abs().sum(0) > 0).numpy())
    return result


def hull(mask):
    """Per-axis (lo, hi) inclusive of the support's projection, and whether it has holes."""
    out = []
    for ax in range(mask.ndim):
        proj = mask.any(axis=tuple(a for a in range(mask.ndim) if a != ax))
        idx = np.flatnonzero(proj)
        if idx.size == 0:
            out.append((-1, -1, False))
            continue
        lo, hi = int(idx[0]), int(idx[-1])
        out.append((lo, hi, bool(idx.size != hi - lo + 1)))
    return out


# -- comparing with an analysis ------------------------------------------------------------------


@dataclass
class Comparison:
    """One module output checked at its centre feature and the next one.

    ``measured`` holds, per axis, the support's hull ``(lo, hi)`` at the centre feature (``hulls``:
    the same for every position);
    ``interior`` per axis whether both features' supports stay clear of the input border (only
    then are ``rf``, ``start`` and ``jump`` compared); ``mismatches`` is empty when rfgraph agrees.
    """

    module: str
    positions: list
    measured: list
    interior: list
    covers: bool
    mismatches: list = field(default_factory=list)
    hulls: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def positions_for(record):
    """The centre feature and its neighbour along every axis (clamped to the map)."""
    centre = tuple(n // 2 for n in record.n)
    nxt = tuple(min(c + 1, n - 1) for c, n in zip(centre, record.n))
    return [centre, nxt]


def judge(module, record, masks, positions, spatial):
    """Compare ``record`` with the gradient-support ``masks`` measured at ``positions``."""
    hulls = [hull(m) for m in masks]
    bad = []
    naxes = len(record.n)
    glob = any(record.is_global)
    for pos, h in zip(positions, hulls):
        for ax in range(naxes):
            lo, hi = record.bounds(ax)
            want = (int(lo[pos[ax]]), int(hi[pos[ax]]))
            if want != h[ax][:2]:
                bad.append(f"{module} feature {pos} axis {ax}: bounds {want[0]}..{want[1]}, "
                           f"gradient support {h[ax][0]}..{h[ax][1]}")
    interior = []
    for ax in range(naxes):
        (l0, h0, _), (l1, h1, _) = hulls[0][ax], hulls[1][ax]
        inside = l0 > 0 and h0 < spatial[ax] - 1 and l1 > 0 and h1 < spatial[ax] - 1
        interior.append(inside)
        if not inside or not record.exact[ax] or glob:
            continue
        pos = positions[0][ax]
        if record.rf[ax] != h0 - l0 + 1:
            bad.append(f"{module} axis {ax}: rf {record.rf[ax]}, gradient support {h0 - l0 + 1}")
        centre = record.start[ax] + pos * record.jump[ax]
        if centre != (l0 + h0 + 1) / 2:
            bad.append(f"{module} axis {ax}: centre of feature {pos} {centre}, gradient support "
                       f"{(l0 + h0 + 1) / 2}")
        if positions[1][ax] == pos + 1 and (l1 - l0 != record.jump[ax] or h1 - h0 != record.jump[ax]):
            bad.append(f"{module} axis {ax}: jump {record.jump[ax]}, gradient support shifts by "
                       f"{l1 - l0}/{h1 - h0}")
    covers = all(bool(m.all()) for m in masks)
    if all(record.is_global) and not covers:
        bad.append(f"{module}: rfgraph says global, but feature {positions[0]}'s gradient support "
                   f"is {[h[:2] for h in hulls[0]]} of {tuple(spatial)}")
    return Comparison(module, positions, [h[:2] for h in hulls[0]], interior, covers, bad,
                      [[h[:2] for h in hs] for hs in hulls])


def compare(model, input_shape, checks, seed=0, threads=1, layouts=None):
    """Measure gradient support on ``model`` (already positive, see :func:`positive_model`) and
    compare with rfgraph's records.

    Parameters
    ----------
    model : torch.nn.Module
    input_shape : tuple
        ``(C, H, W)`` (or ``(C, T, H, W)``) of the input the records were computed for.
    checks : dict
        ``{module_name: record}``; ``module_name`` None is the model's output.
    layouts : dict, optional
        ``{module_name: dims}``: the spatial dims of each output (the front-end's
        ``module_layouts``; default ``(N, C, *spatial)``).
    threads : int or None
        Intra-op threads while measuring (None: torch's setting). One by default: in float64 the
        convolutions run many small OpenMP regions, and on a machine shared with other jobs each
        can wait milliseconds for a descheduled thread (measured on 2 busy cores: GoogLeNet's
        forward pass at 224 took 0.16 s on one thread, 1.5 s on two). Run several processes
        (``rfgraph zoo --jobs``) for parallelism instead.

    Returns
    -------
    list of Comparison
        One per module, in the order given.
    """
    pos = {m: positions_for(rec) for m, rec in checks.items()}
    with num_threads(threads):
        masks = supports(model, list(checks), input_shape, pos, seed=seed, layouts=layouts)
    spatial = tuple(input_shape[1:])
    return [judge(m, rec, masks[m], pos[m], spatial) for m, rec in checks.items()]


@contextlib.contextmanager
def num_threads(n):
    """``n`` intra-op threads for the duration (None: unchanged)."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


# -- cost of a check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """Estimated cost of :func:`compare` at one input size: float64 bytes of every op output
    (what autograd keeps for the backward passes, an upper bound), forward FLOPs and parameters."""

    activation_bytes: int
    flops: int
    params: int

    def seconds(self, n_backward, flops_per_s=1e10):
        """Forward plus ``n_backward`` input-gradient passes (each about one forward)."""
        return self.flops * (1 + n_backward) / flops_per_s


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def estimate_cost(meta_model, input_shape) -> Cost:
    """Run ``meta_model`` (parameters on the meta device) once on meta tensors and count."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    total = [0]

    class Bytes(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for o in (out if isinstance(out, (list, tuple)) else (out,)):
                if isinstance(o, torch.Tensor) and o.is_floating_point():
                    total[0] += o.numel() * 8
            return out

    x = torch.empty((1,) + tuple(input_shape), device="meta")
    meta_model.eval()  # as compare() runs it: no auxiliary heads, BN with running statistics
    flops = FlopCounterMode(display=False)
    with torch.no_grad(), flops, Bytes(), max_as_avg():
        meta_model(x)
    return Cost(total[0], int(flops.get_total_flops()), count_params(meta_model))

