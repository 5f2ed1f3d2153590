"""The effective receptive field (ERF) of one feature, measured beside its exact theoretical one.

The theoretical RF (TRF) says which input pixels a feature *can* read; the ERF (Luo et al. 2016,
"Understanding the Effective Receptive Field in Deep Convolutional Neural Networks") says how the
gradient of that feature is spread over them. :func:`erf` measures the ERF of the feature whose
TRF centre is nearest the input centre -- found from rfgraph's exact per-feature bounds, not by
taking the map's index centre, which on even grids or with asymmetric padding is not the feature
that looks at the middle of the image -- and reports it with its TRF.

Recipes (``recipe=``)
---------------------
``"luo"`` (the default)
    Luo et al. 2016, section 2: the gradient of the unit (every output channel at that position,
    summed) with respect to the input, ``|dy/dx|`` summed over input channels, averaged over the
    inputs. Its mass is linear in the gradient, so the σ and area ratios are comparable across
    models and depths, and in the uniform case it is exactly the n-fold convolution of the kernels
    (see the checks in ``tests/answers/test_erf.py``). That is why it is the default.
``"replknet"``
    RepLKNet (Ding et al. 2022), ``erf/visualize_erf.py`` and ``erf/analyze_erf.py``: ``y = Σ_c
    ReLU(out[c, unit])``, the positive part of ``dy/dx`` summed over input channels and averaged
    over the inputs; the area ratios are computed on ``log10(x + 1) / max`` of that mean map (as
    ``analyze_erf.py`` does). ``.map`` is still the mean map before the log, normalised.
``"openerf"``
    openerf 0.6.1 (``openerf/erf.py``, ``_compute_positive_input_gradients_from_forward_features``
    and ``feature_ops.center_activation``): ``y = mean_c out[c, unit]``, the gradient averaged over
    input channels and clamped at 0 *per input*, those summed over the inputs and normalised to sum
    1 (area ratios on that map, as ``"luo"``). openerf takes the unit at the map's index centre
    ``n//2`` per axis for a CNN's ``forward_features`` (its token rule, the upper-left of the
    central 2x2 on even grids, is for ViT-like models); pass ``unit=`` to measure that unit.
    ``benchmarks/erf.py`` checks this recipe against openerf itself.

Weights (``init=``, ``weights=``)
---------------------------------
``init=None`` uses the model as given (trained weights, the default). ``"random"`` re-runs the
initialisation of every sub-module that has one (``reset_parameters``, PyTorch's per-layer
default init) under ``torch.manual_seed(seed)``, on a copy; BatchNorm running statistics are
reset. ``"uniform"`` is Luo's uniform case: every weight of a layer equal (``1/fan_in``), biases 0,
BatchNorm as identity, max pooling run as average pooling, saturating activations (ReLU6,
hardtanh, hard sigmoid/swish) swapped for non-saturating ones, float64, positive inputs (so every
ReLU passes): for a network of convs, pooling and ReLUs the map is exactly the n-fold convolution
of box kernels. ``weights=PATH`` loads a local state dict first: ``.safetensors`` with
safetensors, anything else with ``torch.load(path, weights_only=True)`` (nothing else is
unpickled; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped); nothing is
ever downloaded.

Inputs
------
``samples=N`` standard-normal inputs from ``torch.Generator().manual_seed(seed)`` (uniform on
``[0.5, 1.5)`` for ``init="uniform"``). ``images=DIR``: the first ``samples`` image files of DIR
(sorted by name), read with Pillow as RGB, resized to the input size (bicubic, aspect ratio not
kept, as RepLKNet's ``Resize((S, S))``), scaled to [0, 1] and normalised with the model's own
mean and std where the model says them (a timm model's ``pretrained_cfg``, known without weights;
its interpolation too), otherwise the ImageNet mean ``(0.485, 0.456, 0.406)`` and std
``(0.229, 0.224, 0.225)`` -- the eval transform of torchvision's and most timm classifiers. ``inputs=`` takes inputs already transformed instead: an array or
tensor ``(N,) + input_shape``, used as given (``samples`` caps N).

This module needs torch; it is imported only when :func:`erf` is called.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ._base import AnswerError

__all__ = ["ERF", "AreaRatio", "ErfError", "erf", "area_ratios", "load_weights", "THRESHOLDS",
           "IMAGENET_MEAN", "IMAGENET_STD"]

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RECIPES = ("luo", "replknet", "openerf")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


class ErfError(AnswerError):
    """The ERF cannot be measured with these options (a bad recipe, a missing weight file, a node
    without a module output to hook, a gradient that is zero everywhere, ...)."""


class AreaRatio(NamedTuple):
    """The smallest centred odd square (cube, segment) holding more than a fraction of the mass."""

    side: int
    of_input: float  # side**naxes / input area
    of_trf: float    # side**naxes / the unit's TRF area (clipped to the input)


@dataclass(frozen=True)
class ERF:
    """Result of :func:`erf`.

    Attributes
    ----------
    map : numpy.ndarray
        float64, the input's spatial shape: the recipe's mean gradient magnitude, normalised to sum 1.
    unit : tuple
        Index of the feature measured in the node's output (its TRF centre is nearest the input's).
    node, module : str
        The graph node and the torch module whose output was measured.
    trf : RF
        rfgraph's record of that node; ``trf.bounds(axis)[0][unit[axis]]`` etc. give the unit's TRF.
    trf_bounds : tuple
        Per axis ``(lo, hi)``, inclusive input pixels of the unit's TRF clipped to the input.
    trf_centre : tuple
        Per axis, the unit's TRF centre (pixel ``i`` spans ``[i, i+1)``; the unclipped TRF's middle;
        the input's middle along an axis a global op made global, where the unit is the feature
        whose grid cell holds the input's centre).
    centre_of_mass, sigma : tuple
        Per axis, the map's centre of mass (same coordinates) and standard deviation in pixels.
    offset : tuple
        ``centre_of_mass - trf_centre`` per axis.
    area_ratio : dict
        ``{t: AreaRatio}`` for t in 0.2, 0.3, 0.5, 0.99 (None when no square holds that much).
    warnings : tuple of str
    """

    map: np.ndarray = field(repr=False)
    unit: tuple
    node: object
    module: str
    trf: object = field(repr=False)
    trf_bounds: tuple
    trf_centre: tuple
    centre_of_mass: tuple
    sigma: tuple
    offset: tuple
    area_ratio: dict
    recipe: str
    init: str | None
    samples: int
    input_shape: tuple
    seconds: float
    warnings: tuple = ()

    @property
    def trf_area(self) -> int:
        return int(np.prod([hi - lo + 1 for lo, hi in self.trf_bounds]))

    def mass_outside_trf(self) -> float:
        """Fraction of the map outside the unit's TRF (0 up to round-off: the support check)."""
        inside = self.map[tuple(slice(lo, hi + 1) for lo, hi in self.trf_bounds)].sum()
        return float(max(0.0, 1.0 - inside))

    def as_dict(self) -> dict:
        """JSON-ready metrics (the map itself is left out: save ``.map`` with numpy)."""
        return {
            "node": str(self.node), "module": self.module, "unit": list(self.unit),
            "recipe": self.recipe, "init": self.init, "samples": self.samples,
            "input_shape": list(self.input_shape),
            "trf": {"rf": [num(v) for v in self.trf.rf], "bounds": [list(b) for b in self.trf_bounds],
                    "centre": [num(v) for v in self.trf_centre], "area": self.trf_area},
            "centre_of_mass": [round(v, 4) for v in self.centre_of_mass],
            "offset": [round(v, 4) for v in self.offset],
            "sigma": [round(v, 4) for v in self.sigma],
            "area_ratio": {str(t): (None if r is None else
                                    {"side": r.side, "of_input": round(r.of_input, 6), "of_trf": round(r.of_trf, 6)})
                           for t, r in self.area_ratio.items()},
            "mass_outside_trf": self.mass_outside_trf(),
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
        }


def num(v):
    f = float(v)
    return int(f) if f.is_integer() else f


# -- metrics (numpy only) -----------------------------------------------------------------------


def area_ratios(data, centre, trf_area, thresholds=THRESHOLDS) -> dict:
    """``{t: AreaRatio}``: the smallest odd square centred on pixel ``centre`` (per axis) whose
    mass is more than ``t`` of the total (``analyze_erf.py``'s ``get_rectangle``, any number of
    axes, starting at side 1 and growing until it covers the whole input); the ratios use the
    square's area inside the input.

    >>> d = np.zeros((5, 5)); d[2, 2] = 3; d[2, 3] = 1
    >>> r = area_ratios(d, (2, 2), 25)
    >>> r[0.5], r[0.99].side
    (AreaRatio(side=1, of_input=0.04, of_trf=0.04), 3)
    """
    data = np.asarray(data, dtype=np.float64)
    total = data.sum()
    shape = data.shape
    area = float(np.prod(shape))
    reach = max(max(c, n - 1 - c) for c, n in zip(centre, shape))
    sums, vols = [], []
    for i in range(reach + 1):
        sl = tuple(slice(max(0, c - i), min(n, c + i + 1)) for c, n in zip(centre, shape))
        sums.append(data[sl].sum() / total if total > 0 else 0.0)
        vols.append(float(np.prod([s.stop - s.start for s in sl])))
    out = {}
    for t in thresholds:
        hit = next((i for i, s in enumerate(sums) if s > t), None)
        if hit is None:
            out[t] = None
            continue
        # the square clipped to the input: its area, not side**2, is compared (RepLKNet's squares
        # never leave the input: they are centred on it and stop before its border)
        out[t] = AreaRatio(2 * hit + 1, vols[hit] / area, vols[hit] / trf_area)
    return out


def _moments(p):
    com, sig = [], []
    for ax in range(p.ndim):
        m = p.sum(axis=tuple(a for a in range(p.ndim) if a != ax))
        x = np.arange(m.size) + 0.5
        c = float((m * x).sum())
        com.append(c)
        sig.append(float(math.sqrt(max(0.0, (m * (x - c) ** 2).sum()))))
    return tuple(com), tuple(sig)


# -- weights and inputs -------------------------------------------------------------------------


def load_weights(model, path):
    """Load a local state dict into ``model`` in place (safetensors, or ``torch.load`` with
    ``weights_only=True``); nothing else is unpickled."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise ErfError(f"weights file {str(path)!r} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except ModuleNotFoundError as exc:
        raise ErfError(f"reading {path.name} needs {exc.name}: pip install 'rfgraph[erf]'") from None
    except Exception as exc:  # not a weights-only checkpoint, a corrupt file
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ErfError(f"cannot read weights {str(path)!r}: {first}") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ErfError(f"weights {str(path)!r} hold a {type(state).__name__}, not a state dict")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        missing, unexpected = model.load_state_dict(state, strict=False)
        raise ErfError(f"weights {path.name} do not fit the model: {len(missing)} missing keys "
                       f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}), "
                       f"{len(unexpected)} unexpected ({', '.join(unexpected[:3])}"
                       f"{', ...' if len(unexpected) > 3 else ''})"
                       + ("" if missing or unexpected else f": {str(exc).splitlines()[0][:160]}")) from None
    return model


def _random_init(model, seed):
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
                mod.reset_running_stats()
            reset = getattr(mod, "reset_parameters", None)
            if callable(reset):
                reset()
    return model


def _uniform_init(model):
    import torch

    from ..tools.verify import _replace_saturating

    model.to(torch.float64)
    _replace_saturating(model)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm):
                mod.reset_parameters()  # mean 0, variance 1, weight 1, bias 0: the identity
                continue
            for name, p in mod.named_parameters(recurse=False):
                if name.startswith("bias"):
                    p.zero_()
                elif p.dim() <= 1:
                    p.fill_(1.0)
                else:
                    p.fill_(1.0 / max(1, p[0].numel()))
    return model


def model_normalisation(model):
    """``(mean, std, resample)`` for images fed to ``model``: a timm model's ``pretrained_cfg``
    (set by its constructor, no weights needed), else ImageNet's with bicubic resizing.

    >>> class Net: pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bilinear"}
    >>> model_normalisation(Net())
    ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 'bilinear')
    >>> model_normalisation(object())[2]
    'bicubic'
    """
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict) and len(cfg.get("mean") or ()) == 3 and len(cfg.get("std") or ()) == 3:
        return tuple(cfg["mean"]), tuple(cfg["std"]), cfg.get("interpolation") or "bicubic"
    return tuple(IMAGENET_MEAN), tuple(IMAGENET_STD), "bicubic"


def _load_images(directory, n, shape, normalisation=None):
    try:
        from PIL import Image
    except ModuleNotFoundError:
        raise ErfError("images=DIR needs Pillow: pip install 'rfgraph[erf]'") from None
    d = Path(directory)
    if not d.is_dir():
        raise ErfError(f"images directory {str(d)!r} does not exist")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)[:n]
    if not files:
        raise ErfError(f"no image files ({', '.join(sorted(_IMAGE_SUFFIXES))}) in {str(d)!r}")
    if len(shape) != 3 or shape[0] != 3:
        raise ErfError(f"images need a 3-channel 2-D input, the input shape is {tuple(shape)}")
    h, w = shape[1:]
    mean, std, resample = normalisation or (IMAGENET_MEAN, IMAGENET_STD, "bicubic")
    mean, std = np.array(mean), np.array(std)
    method = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "bicubic": Image.BICUBIC}.get(
        resample, Image.BICUBIC)
    out = []
    for f in files:
        try:
            with Image.open(f) as im:
                im = im.convert("RGB").resize((w, h), method)
        except Exception as exc:
            raise ErfError(f"cannot read image {f.name}: {exc}") from None
        a = (np.asarray(im, dtype=np.float64) / 255.0 - mean) / std
        out.append(a.transpose(2, 0, 1))
    return np.stack(out)


# -- the node and its unit ----------------------------------------------------------------------


def _module_for(analysis, at, naxes):
    """``(node, module name)`` to hook."""
    from .. import schema

    outs = schema.module_outputs(analysis.graph)
    by_node = {}
    for m, v in outs.items():
        # the outermost named module of that output (the model itself, "", only when nothing else)
        if v not in by_node or (m == "", len(m)) < (by_node[v] == "", len(by_node[v])):
            by_node[v] = m
    if at is None:
        for v in reversed(analysis.order):
            rec = analysis[v]
            if v in by_node and rec.naxes == naxes and int(np.prod(rec.n)) > 1:
                return v, by_node[v]
        raise ErfError("the model has no module whose output is a spatial map; pass at=")
    if isinstance(at, str) and at in outs:
        return outs[at], at
    if at in analysis:
        if at in by_node:
            return at, by_node[at]
        raise ErfError(f"node {at!r} is not the output of a module, so its tensor cannot be hooked; "
                       f"pass a module name (e.g. {', '.join(list(outs)[-4:-1])})")
    raise ErfError(f"no module or node named {at!r}")


def _unit(rec, spatial, given=None):
    if given is not None:
        given = tuple(int(i) for i in given)
        if len(given) != len(spatial) or any(not 0 <= i < n for i, n in zip(given, rec.n)):
            raise ErfError(f"unit {given} is not a feature of a map of {tuple(rec.n)} features")
    unit, centre, bounds = [], [], []
    for ax, size in enumerate(spatial):
        lo, hi = rec.bounds(ax, clip=False)
        glob = rec.global_from[ax] is not None
        if glob:
            # a global op (attention, SE) made every feature's TRF the whole input (centre size/2):
            # the hull of its branches says nothing of where a feature sits, its grid cell does
            c = (np.arange(rec.n[ax]) + 0.5) * (size / rec.n[ax])
        else:
            c = (lo + hi + 1) / 2.0
        # ties (features sharing one TRF, as below an upsampling) go to the one nearest n//2
        i = int(np.lexsort((np.abs(np.arange(c.size) - c.size // 2), np.abs(c - size / 2.0)))[0])
        if given is not None:
            i = given[ax]
        clo, chi = rec.bounds(ax, clip=True)
        unit.append(i)
        centre.append(size / 2.0 if glob else float(c[i]))
        bounds.append((int(clo[i]), int(chi[i]), int(lo[i]), int(hi[i])))
    return tuple(unit), tuple(centre), bounds


# -- the measurement ----------------------------------------------------------------------------


def erf(model, input_shape, at=None, *, init=None, weights=None, samples=8, images=None, recipe="luo",
        seed=0, batch=8, device=None, progress=False, analysis=None, inputs=None, unit=None) -> ERF:
    """Measure the effective receptive field of the centre unit of ``at`` (see the module docs).

    Parameters
    ----------
    model : torch.nn.Module
        On the CPU with real weights (not the meta device); it is not modified (a copy is made
        when ``init`` or ``weights`` change it).
    input_shape : tuple
        ``(C, H, W)`` (or ``(C, L)``, ``(C, T, H, W)``) without the batch.
    at : str, optional
        A module name or a graph node that is a module's output (default: the last module whose
        output is a spatial map with more than one feature).
    init : None, "random" or "uniform"
    weights : path, optional
    samples : int
        Number of random inputs (or the most images read from ``images``).
    images : path, optional
    recipe : "luo" (default), "replknet" or "openerf"
    seed, batch, device, progress
        Seed of the inputs (and of ``init="random"``); inputs per forward/backward pass;
        ``"cpu"``, ``"cuda"`` or None (a GPU when torch finds one, else the CPU); a tqdm bar over
        the samples.
    analysis : Analysis, optional
        rfgraph's analysis of ``model`` at ``input_shape`` when already computed.
    inputs : array or tensor, optional
        ``(N,) + input_shape`` inputs already transformed (instead of random ones or ``images``).
    unit : tuple of int, optional
        The feature to measure, by index in the node's output (default: the one whose TRF centre
        is nearest the input centre).

    >>> import torch
    >>> net = torch.nn.Sequential(*[torch.nn.Conv1d(1, 1, 3, padding=1) for _ in range(2)])
    >>> e = erf(net, (1, 9), init="uniform", samples=1)
    >>> e.unit, (e.map * 9).round(3).tolist()    # two 3-wide boxes: 1 2 3 2 1
    ((4,), [0.0, 0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 0.0, 0.0])
    """
    import torch

    from .. import analyze, schema
    from ..frontends.torch_layout import standard_view
    from ..tools.verify import _first_tensor, max_as_avg

    t0 = time.perf_counter()
    if recipe not in RECIPES:
        raise ErfError(f"unknown recipe {recipe!r}; expected one of {', '.join(RECIPES)}")
    if init not in (None, "random", "uniform"):
        raise ErfError(f"unknown init {init!r}; expected None, 'random' or 'uniform'")
    if not isinstance(model, torch.nn.Module):
        raise ErfError(f"erf needs a torch.nn.Module, got {type(model).__name__}")
    if any(p.is_meta for p in model.parameters()):
        raise ErfError("the model is on the meta device (no weights): build it on the CPU")
    if samples < 1 or batch < 1:
        raise ErfError(f"samples and batch must be positive, got {samples} and {batch}")
    if device is None:  # a GPU when there is one, the CPU otherwise
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not str(device).startswith("cuda:"):
        raise ErfError(f"unknown device {device!r}; expected 'cpu' or 'cuda'")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ErfError("device='cuda' was asked for, but torch finds no CUDA device")
    input_shape = tuple(int(s) for s in input_shape)
    spatial = input_shape[1:]

    if init is not None or weights is not None:
        model = copy.deepcopy(model)
    if weights is not None:
        load_weights(model, weights)
    if init == "random":
        _random_init(model, seed)
    elif init == "uniform":
        _uniform_init(model)
    model.eval()
    was = [p.requires_grad for p in model.parameters()]
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)

    a = analysis if analysis is not None else analyze(model, input_shape)
    node, mname = _module_for(a, at, len(spatial))
    layout = schema.module_layouts(a.graph).get(mname)  # a channels-last map: its spatial dims
    rec = a[node]
    unit, centre, bounds = _unit(rec, spatial, unit)
    warnings = []
    for ax, (clo, chi, lo, hi) in enumerate(bounds):
        if hi - lo + 1 > spatial[ax]:
            warnings.append(f"axis {ax}: the TRF ({hi - lo + 1} px) is larger than the input ({spatial[ax]} px); "
                            "the ERF is cut by the border and its area ratios depend on the input size "
                            "(RepLKNet-pytorch#25)")
        elif clo > lo or chi < hi:
            warnings.append(f"axis {ax}: the unit's TRF {lo}..{hi} reaches into the padding; "
                            f"the ERF is measured on {clo}..{chi}")
    if any(rec.is_global):
        warnings.append("the node is global along some axis: its TRF is the whole input")

    if images is not None and inputs is not None:
        raise ErfError("pass images= or inputs=, not both")
    if inputs is not None:
        xs = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs)
        if xs.dim() != len(input_shape) + 1 or tuple(xs.shape[1:]) != input_shape or xs.shape[0] < 1:
            raise ErfError(f"inputs have shape {tuple(xs.shape)}; expected (N,) + {input_shape}")
        xs = xs.detach().cpu()[:samples]
    elif images is not None:
        xs = torch.from_numpy(_load_images(images, samples, input_shape, model_normalisation(model)))
    else:
        gen = torch.Generator().manual_seed(seed)
        if init == "uniform":
            xs = torch.rand((samples,) + input_shape, generator=gen, dtype=torch.float64) + 0.5
        else:
            xs = torch.randn((samples,) + input_shape, generator=gen, dtype=torch.float64)
    n = xs.shape[0]

    model.to(device)
    mod = model if mname == "" else dict(model.named_modules())[mname]
    captured = {}
    hook = mod.register_forward_hook(lambda _m, _i, o: captured.__setitem__("y", o))
    acc = torch.zeros(spatial, dtype=torch.float64, device=device)
    bar = None
    if progress:
        try:
            from tqdm import tqdm
        except ModuleNotFoundError:
            raise ErfError("progress=True needs tqdm: pip install 'rfgraph[erf]'") from None
        bar = tqdm(total=n, desc="erf", unit="sample")
    idx = (slice(None), slice(None)) + tuple(unit)
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        with max_as_avg() if init == "uniform" else _nothing():
            for b in range(0, n, batch):
                x = xs[b:b + batch].to(device=device, dtype=dtype).requires_grad_(True)
                captured.clear()
                model(x)
                y = _first_tensor(captured.get("y"))
                if isinstance(y, torch.Tensor) and layout is not None:
                    y = standard_view(y, layout)
                if not isinstance(y, torch.Tensor) or tuple(y.shape[2:]) != tuple(rec.n):
                    got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                    raise ErfError(f"module {mname!r} gave {got}; rfgraph's record of node {node!r} "
                                   f"has {tuple(rec.n)} features")
                v = y[idx]
                if recipe == "replknet":
                    target = torch.relu(v).sum()
                elif recipe == "openerf":
                    target = v.mean(dim=1).sum()  # per input the channel mean; inputs independent
                else:
                    target = v.sum()
                (g,) = torch.autograd.grad(target, x)
                if recipe == "replknet":
                    g = torch.relu(g).sum(dim=(0, 1))
                elif recipe == "openerf":
                    g = g.mean(dim=1).clamp(min=0).sum(dim=0)  # clamped per input, as openerf
                else:
                    g = g.abs().sum(dim=(0, 1))
                acc += g.to(torch.float64)
                del g, y, v, target, x
                captured.clear()
                if bar is not None:
                    bar.update(min(batch, n - b))
    finally:
        hook.remove()
        if bar is not None:
            bar.close()
        for p, r in zip(model.parameters(), was):
            p.requires_grad_(r)
    mean = (acc / n).cpu().numpy()
    total = mean.sum()
    if not np.isfinite(total) or total <= 0:
        raise ErfError(f"the gradient of unit {unit} of {mname!r} is zero (or not finite) everywhere "
                       f"on these inputs (dead ReLUs?); try init='random' or more samples")
    p = mean / total
    com, sig = _moments(p)
    offset = tuple(c - t for c, t in zip(com, centre))
    trf_bounds = tuple((clo, chi) for clo, chi, _, _ in bounds)
    trf_area = int(np.prod([chi - clo + 1 for clo, chi in trf_bounds]))
    cpix = tuple(min(max(int(math.floor(c)), 0), s - 1) for c, s in zip(centre, spatial))
    if recipe == "replknet":
        scaled = np.log10(mean + 1.0)
        scaled = scaled / scaled.max() if scaled.max() > 0 else scaled
    else:
        scaled = p
    ratios = area_ratios(scaled, cpix, trf_area)
    result = ERF(p, unit, node, mname, rec, trf_bounds, centre, com, sig, offset, ratios, recipe, init,
                 int(n), input_shape, time.perf_counter() - t0, tuple(warnings))
    outside = result.mass_outside_trf()
    if outside > 1e-6:
        warnings.append(f"{outside:.2e} of the mass lies outside the unit's TRF: an op rfgraph treats "
                        "differently from the model (report it)")
        result = ERF(**{**result.__dict__, "warnings": tuple(warnings)})
    return result


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
