"""Independent check for torch models: gradient support on the real module.

The model is copied to the CPU in float64 with positive weights, zero biases, BatchNorm as
identity, and max pooling (module or functional) replaced by average pooling with the same
window; then the gradient of one output feature (channels weighted by positive random numbers)
with respect to a positive random input is non-zero exactly on that feature's receptive field.
Nothing here uses rfgraph's arithmetic.
"""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import torch
import torch.nn.functional as F


@contextlib.contextmanager
def max_as_avg():
    """Replace every max pooling (modules call the functional forms) by average pooling."""
    saved = {}

    def avg(nd):
        pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]

        def fn(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
            if dilation not in (1, (1,) * nd, [1] * nd):
                raise NotImplementedError("dilated max pooling has no average-pooling twin")
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


_SATURATING = {
    # activations whose gradient is exactly zero past a threshold would hide parts of the RF
    torch.nn.ReLU6: torch.nn.ReLU,
    torch.nn.Hardtanh: torch.nn.ReLU,
    torch.nn.Hardsigmoid: torch.nn.Sigmoid,
    torch.nn.Hardswish: torch.nn.SiLU,
}


def _replace_saturating(model):
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            for cls, repl in _SATURATING.items():
                if isinstance(child, cls):
                    setattr(parent, name, repl())
                    break


def positive_copy(model, seed=0):
    """A float64 CPU copy with positive weights scaled by fan-in, zero biases, BN as identity,
    and saturating activations (ReLU6, hard sigmoid/swish) swapped for smooth ones."""
    gen = torch.Generator().manual_seed(seed)
    m = copy.deepcopy(model).to(torch.float64)
    _replace_saturating(m)
    m.eval()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
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
    return m


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
        with max_as_avg():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs, out


def support(model, module_name, input_shape, positions, seed=0, call=None):
    """Gradient support of the features at ``positions`` of ``module_name``'s output (the model's
    output when ``module_name`` is None): one forward pass, one backward pass per position.

    Returns a list (one per position) of boolean arrays over the input's spatial grid.
    """
    gen = torch.Generator().manual_seed(seed + 1)
    x = (torch.rand((1,) + tuple(input_shape), generator=gen, dtype=torch.float64) + 0.5).requires_grad_(True)
    if module_name is None:
        with max_as_avg():
            y = call(model, x) if call else model(x)
    else:
        outs, _ = capture(model, [module_name], x)
        y = outs[module_name]
    if isinstance(y, dict):
        y = next(iter(y.values()))
    if isinstance(y, (list, tuple)):
        y = y[0]
    w = torch.rand(y.shape[1], generator=gen, dtype=torch.float64) + 0.5
    result = []
    for k, pos in enumerate(positions):
        idx = (0, slice(None)) + tuple(pos)
        (g,) = torch.autograd.grad((y[idx] * w).sum(), x, retain_graph=k + 1 < len(positions))
        result.append((g[0].abs().sum(0) > 0).numpy())
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
