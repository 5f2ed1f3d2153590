"""The model zoo and every model source: which models, at which input size, how to build them.

:func:`build_source` builds any TARGET the CLI accepts (``torchvision:``, ``timm:``, ``smp:``,
``hf:``, ``package.module:factory``, ``path/to/file.py:factory``); the torchvision zoo below is
one of its sources.

Models are built with ``weights=None`` (and ``weights_backbone=None``) on the meta device, so
nothing is downloaded and no real memory is allocated. :func:`build_model` is the one builder: the
zoo (:mod:`rfgraph.tools.runner`) and the CLI's torchvision-name targets (``rfgraph analyze
resnet50``) both call it; the gradient-support check passes its own ``make`` to get real weights.

Examples
--------
>>> from rfgraph.tools.catalogue import build_model, list_zoo
>>> [entry] = list_zoo("classification", "resnet18")
>>> entry.input_shape, entry.family, entry.label
((3, 224, 224), 'classification', 'resnet18')
>>> next(build_model("resnet18").parameters()).device.type
'meta'
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass

__all__ = ["FAMILIES", "ZooModel", "list_zoo", "family_of", "input_shape", "build_kwargs", "build_model",
           "build", "list_timm", "SOURCES", "Built", "parse_source", "parse_factory_args", "build_source",
           "yolo_neck"]

FAMILIES = ("classification", "segmentation", "detection", "video", "optical_flow")


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo: its torchvision name, family and the input it is analysed at."""

    name: str
    family: str
    input_shape: tuple  # (C, H, W) or (C, T, H, W)
    n_inputs: int = 1
    part: str = ""  # "backbone" for detection models: the backbone + FPN is analysed
    source: str = "torchvision"  # any source of build_source: "timm" builds timm:NAME

    @property
    def label(self):
        return f"{self.name}.{self.part}" if self.part else self.name

    def trace_shape(self, spatial=None):
        """What :func:`rfgraph.frontends.torch.from_torch` takes for this model: the input shape
        (with its spatial axes replaced by ``spatial`` if given), once per input."""
        shape = self.input_shape if spatial is None else self.input_shape[:-len(spatial)] + tuple(spatial)
        return [shape] * self.n_inputs if self.n_inputs > 1 else shape


def input_shape(name, family) -> tuple:
    """The input a model of ``family`` is usually run at, without the batch axis."""
    if family == "video":
        # the transformer video models need 16 frames of 224; the 3-D convnets are trained on 112
        return (3, 16, 224, 224) if name.startswith(("mvit", "swin3d", "s3d")) else (3, 16, 112, 112)
    if family == "optical_flow":
        return (3, 224, 224)
    if family == "detection":
        if name.startswith("ssd300"):
            return (3, 300, 300)
        if name.endswith("320_fpn") or name.startswith("ssdlite320"):
            return (3, 320, 320)
        return (3, 800, 800)
    if family == "segmentation":
        return (3, 520, 520)
    if name.startswith("inception"):
        return (3, 299, 299)
    return (3, 224, 224)


@functools.lru_cache(maxsize=None)
def _families() -> dict:
    """``{name: family}`` for every torchvision model of :data:`FAMILIES` (quantized variants
    are out of scope: their ops are quantized kernels)."""
    from torchvision import models

    modules = {"classification": models, "segmentation": models.segmentation, "detection": models.detection,
               "video": models.video, "optical_flow": models.optical_flow}
    return {name: fam for fam in FAMILIES for name in models.list_models(module=modules[fam])}


def family_of(name) -> str | None:
    """The zoo family of a torchvision model name (None for models outside the zoo)."""
    return _families().get(name)


def list_zoo(family="all", pattern=None, input_size=None) -> list:
    """Zoo models of a family (or all), optionally filtered by a glob ``pattern`` (several
    patterns separated by commas), sorted by name within each family.

    >>> [e.name for e in list_zoo("classification", "resnet1*,vgg11")]
    ['resnet101', 'resnet152', 'resnet18', 'vgg11']
    """
    fams = FAMILIES if family in (None, "all") else (family,)
    for fam in fams:
        if fam not in FAMILIES:
            raise ValueError(f"unknown family {fam!r}; choose from {', '.join(FAMILIES)} or all")
    patterns = [p.strip() for p in pattern.split(",") if p.strip()] if pattern else []
    out = []
    for fam in fams:
        for name in sorted(n for n, f in _families().items() if f == fam):
            if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            shape = input_shape(name, fam)
            if input_size is not None:
                shape = shape[:-2] + (input_size, input_size)
            out.append(ZooModel(name, fam, shape, 2 if fam == "optical_flow" else 1,
                                "backbone" if fam == "detection" else ""))
    return out


def build_kwargs(name) -> dict:
    """Keyword arguments for ``torchvision.models.get_model(name, ...)``: no weights to download."""
    kwargs = {"weights": None}
    if family_of(name) in ("segmentation", "detection"):
        kwargs["weights_backbone"] = None
    if name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = False  # no scipy truncated-normal warning; weights are unused
    return kwargs


def build_model(name, *, part="", make=None):
    """The torchvision model ``name`` (or its submodule ``part``) without weights.

    Parameters
    ----------
    name : str
        A name from ``torchvision.models.list_models()``.
    part : str, optional
        A submodule to return instead of the whole model (``"backbone"``).
    make : callable, optional
        ``make(factory, name, **kwargs)`` builds the model; default
        :func:`rfgraph.frontends.torch.meta_model` (every parameter on the meta device). The
        gradient-support check passes :func:`rfgraph.tools.verify.positive_model`.
    """
    from torchvision import models

    if make is None:
        from ..frontends.torch import meta_model as make

    model = make(models.get_model, name, **build_kwargs(name))
    return getattr(model, part) if part else model


def build(entry: ZooModel, make=None):
    """The analysed model (or part) of a zoo entry: :func:`build_model` of its name and part
    (torchvision), else :func:`build_source` of ``source:name``; ``make(factory, *args, **kwargs)``
    returns the model."""
    if entry.source == "torchvision":
        return build_model(entry.name, part=entry.part, make=make)
    wrap = None if make is None else (lambda factory, *a, **kw: (make(factory, *a, **kw), ""))
    model = build_source(f"{entry.source}:{entry.name}", make=wrap).model
    return getattr(model, entry.part) if entry.part else model


def list_timm(pattern=None, input_size=None) -> list:
    """Every ``timm.list_models()`` architecture (optionally filtered by glob patterns, comma
    separated) as zoo entries at its default pretrained config's input size.

    >>> [e.input_shape for e in list_timm("resnet18,vit_base_patch16_384")]
    [(3, 224, 224), (3, 384, 384)]
    """
    import timm
    from timm.models import get_pretrained_cfg

    patterns = [p.strip() for p in pattern.split(",") if p.strip()] if pattern else []
    out = []
    for name in sorted(timm.list_models()):
        if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        cfg = get_pretrained_cfg(name)
        shape = tuple(getattr(cfg, "input_size", None) or (3, 224, 224))
        if input_size is not None:
            shape = shape[:-2] + (input_size, input_size)
        out.append(ZooModel(name, "timm", shape, source="timm"))
    return out


# -- model sources ---------------------------------------------------------------------------------
# One builder for every way a user names a model (the CLI's TARGET, the zoo's entries). Nothing is
# downloaded: torchvision gets weights=None (+ weights_backbone=None), timm pretrained=False, smp
# encoder_weights=None, transformers a default config (no from_pretrained).

SOURCES = ("torchvision", "timm", "smp", "hf", "module", "file")


@dataclass(frozen=True)
class Built:
    """A model built from a source: the module (or a ``networkx.DiGraph`` a factory returned), the
    input shapes it is traced at (one per input, channels first), and how it was built (``note``:
    e.g. that the constructor needed real tensors, so it was built on the CPU)."""

    model: object
    input_shapes: tuple
    source: str
    note: str = ""


def parse_source(target: str):
    """``(source, parts)`` of a model TARGET.

    >>> parse_source("timm:resnet50")
    ('timm', ('resnet50',))
    >>> parse_source("smp:Unet:resnet34")
    ('smp', ('Unet', 'resnet34'))
    >>> parse_source("models/net.py:build")
    ('file', ('models/net.py', 'build'))
    >>> parse_source("mypkg.nets:make")
    ('module', ('mypkg.nets', 'make'))
    >>> parse_source("resnet18")
    ('torchvision', ('resnet18',))
    """
    prefix, colon, rest = target.partition(":")
    if not colon:
        return "torchvision", (target,)
    if prefix in ("torchvision", "timm", "hf"):
        if not rest:
            raise ValueError(f"expected {prefix}:NAME, got {target!r}")
        return prefix, (rest,)
    if prefix == "smp":
        arch, _, encoder = rest.partition(":")
        if not arch:
            raise ValueError(f"expected smp:ARCH[:ENCODER] (e.g. smp:Unet:resnet34), got {target!r}")
        return "smp", (arch, encoder or "resnet34")
    # path/to/file.py:factory (the factory after the last colon: Windows drive letters keep theirs)
    path, _, attr = target.rpartition(":")
    if path.endswith(".py"):
        return "file", (path, attr)
    return "module", (prefix, rest)


def parse_factory_args(items) -> dict:
    """``["k=v", ...]`` -> ``{k: v}``; values are Python literals (``ast.literal_eval``, never
    ``eval``), anything that is not one is kept as a string.

    >>> parse_factory_args(["num_classes=10", "act='relu'", "norm=batch", "sizes=(1, 2)"])
    {'num_classes': 10, 'act': 'relu', 'norm': 'batch', 'sizes': (1, 2)}
    """
    import ast

    out = {}
    for item in items or ():
        key, eq, text = str(item).partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ValueError(f"factory argument must be NAME=VALUE, got {item!r}")
        try:
            out[key] = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            out[key] = text.strip()
    return out


def _meta_or_cpu(factory, *args, **kwargs):
    """``(model, note)``: built on the meta device (no memory, nothing computed) when the
    constructor allows it, else on the CPU with the reason in the note."""
    try:
        from ..frontends.torch import meta_model
    except ImportError:  # no torch: a factory returning a graph
        return factory(*args, **kwargs), ""
    try:
        return meta_model(factory, *args, **kwargs), ""
    except Exception as exc:  # a constructor that computes with tensor values
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        model = factory(*args, **kwargs)
        return model, f"built on the CPU: the constructor needs real tensors on the meta device ({first})"


def _timm(name, kwargs, make):
    import timm

    if name not in timm.list_models():
        import difflib

        close = difflib.get_close_matches(name, timm.list_models(), n=3)
        raise ValueError(f"unknown timm model {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    kwargs = {"pretrained": False, **kwargs}
    if kwargs.get("pretrained"):
        raise ValueError("rfgraph never downloads weights: timm models are built with pretrained=False")
    model, note = make(timm.create_model, name, **kwargs)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    shape = tuple(cfg.get("input_size") or (3, 224, 224))
    return model, (shape,), note


def _smp(arch, encoder, kwargs, make):
    import segmentation_models_pytorch as smp

    kwargs = {"encoder_name": encoder, "encoder_weights": None, **kwargs}
    if kwargs.get("encoder_weights") is not None:
        raise ValueError("rfgraph never downloads weights: smp encoders are built with encoder_weights=None")
    model, note = make(smp.create_model, arch, **kwargs)
    return model, ((kwargs.get("in_channels", 3), 256, 256),), note


def _hf(model_type, kwargs, make):
    import transformers

    config = transformers.AutoConfig.for_model(model_type, **kwargs)
    auto = transformers.AutoModel
    if type(config) not in auto._model_mapping:  # UperNet is only a segmentation head + backbone
        heads = (transformers.AutoModelForSemanticSegmentation, transformers.AutoModelForImageClassification)
        auto = next((a for a in heads if type(config) in a._model_mapping), auto)
    model, note = make(auto.from_config, config)
    size = getattr(config, "image_size", None)
    if isinstance(size, (list, tuple)):
        size = tuple(size)[-2:]
    elif isinstance(size, int):
        size = (size, size)
    if size is None and getattr(config, "conv_kernel", None) is not None:  # wav2vec2-like audio encoders
        return _audio(model), ((1, 16000),), note
    chans = getattr(config, "num_channels", 3) or 3
    return model, ((chans,) + tuple(size or (224, 224)),), note


def _audio(model):
    """transformers audio models take ``(N, L)`` samples; rfgraph traces ``(N, C, L)``."""
    import torch

    class AudioInput(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x.flatten(1))

    return AudioInput(model)


def _import_attr(module, attr, where):
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AttributeError(f"{where} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _factory_obj(source, parts):
    import importlib
    import importlib.util
    import os
    import sys

    where, attr = parts
    if not where or not attr:
        raise ValueError(f"expected package.module:factory or path/to/file.py:factory, got {where + ':' + attr!r}")
    if source == "file":
        path = os.path.abspath(where)
        if not os.path.isfile(path):
            raise FileNotFoundError(2, "no such file", where)
        name = "_rfgraph_user_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses and pickling look the module up
        spec.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            # `rfgraph pkg.mod:f` finds pkg in the current directory, as `python -m` would
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(where)
    return _import_attr(module, attr, repr(where))


def build_source(target: str, *, factory_args=None, make=None) -> Built:
    """Build the model a TARGET names, without downloading anything.

    Parameters
    ----------
    target : str
        ``torchvision:NAME`` (or a bare torchvision name), ``timm:NAME``, ``smp:ARCH:ENCODER``,
        ``hf:MODEL_TYPE`` (a transformers model from its default config), ``package.module:factory``
        or ``path/to/file.py:factory``.
    factory_args : dict, optional
        Keyword arguments for the constructor (for ``hf:``, config overrides).
    make : callable, optional
        ``make(factory, *args, **kwargs) -> (model, note)``; default: a meta-device build,
        falling back to a CPU build when the constructor needs real tensors.

    >>> built = build_source("torchvision:resnet18")
    >>> built.input_shapes, next(built.model.parameters()).device.type
    (((3, 224, 224),), 'meta')
    """
    kwargs = dict(factory_args or {})
    make = make or _meta_or_cpu
    source, parts = parse_source(target)
    if source == "torchvision":
        name = parts[0].lower()
        if family_of(name) is None:
            raise ValueError(f"unknown torchvision model {parts[0]!r}")
        fam = family_of(name)
        notes = []

        def through(factory, *args, **kw):  # build_model's maker returns the model alone
            model, note = make(factory, *args, **{**kw, **kwargs})
            notes.append(note)
            return model

        model = build_model(name, make=through)
        note = notes[0] if notes else ""
        shape = (3, 224, 224) if fam == "classification" else input_shape(name, fam)
        return Built(model, (shape,) * (2 if fam == "optical_flow" else 1), source, note)
    if source == "timm":
        model, shapes, note = _timm(parts[0], kwargs, make)
    elif source == "smp":
        model, shapes, note = _smp(*parts, kwargs, make)
    elif source == "hf":
        model, shapes, note = _hf(parts[0], kwargs, make)
    else:
        obj = _factory_obj(source, parts)
        note = ""
        if callable(obj) and not _is_graph_or_module(obj):
            obj, note = make(obj, **kwargs)
        return Built(obj, ((3, 224, 224),), source, note)
    return Built(model, shapes, source, note)


def _is_graph_or_module(obj):
    import sys

    import networkx as nx

    torch = sys.modules.get("torch")
    return isinstance(obj, nx.DiGraph) or (torch is not None and isinstance(obj, torch.nn.Module))


def yolo_neck(model):
    """An ultralytics detection model (``DetectionModel("yolov8n.yaml")``: built from the bundled
    yaml, no weights) cut before its head: a module returning the head's inputs (P3, P4, P5 for
    YOLOv8's ``Detect``) in the head's order, for :func:`rfgraph.levels`. The layers are the
    model's own (no copy); each layer's ``f`` (from) index routes its input as ultralytics does."""
    import torch

    seq = model.model
    head = seq[-1]
    keep = [head.f] if isinstance(head.f, int) else list(head.f)

    class YoloNeck(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = seq[:-1]  # same qualnames as in the full model: model.15, model.21, ...

        def forward(self, x):
            y = []
            for m in self.model:
                if m.f != -1:
                    x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
                x = m(x)
                y.append(x)
            return [y[j] for j in keep]

    return YoloNeck()
