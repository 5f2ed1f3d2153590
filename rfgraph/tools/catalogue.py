"""The model zoo and every model source: which models, at which input size, how to build them.

:func:`build_source` builds any TARGET the CLI accepts (``torchvision:``, ``timm:``, ``smp:``,
``hf:``, ``yolo:`` and ultralytics ``.yaml`` files, ``package.module:factory``,
``path/to/file.py:factory``); the torchvision zoo below is one of its sources.

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
           "build", "list_timm", "list_smp", "ZOO_SOURCES", "list_source", "SOURCES", "Built", "parse_source",
           "parse_factory_args", "build_source", "levels_part", "model_part", "yolo_neck"]

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
    # a factory's name is its own target (pkg.mod:make, path/net.py:make)
    target = entry.name if entry.source in ("module", "file") else f"{entry.source}:{entry.name}"
    model = build_source(target, make=wrap).model
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


# segmentation_models_pytorch: every architecture with a few encoders of different kinds (a ResNet,
# a depthwise MobileNet, an EfficientNet with squeeze-and-excitation); DPT takes ViT encoders only
SMP_ENCODERS = ("resnet34", "mobilenet_v2", "efficientnet-b0")
SMP_VIT_ENCODERS = ("tu-vit_tiny_patch16_224", "tu-vit_small_patch16_224", "tu-vit_base_patch16_224")
SMP_SIZE = 256


def list_smp(pattern=None, input_size=None) -> list:
    """segmentation_models_pytorch architectures x :data:`SMP_ENCODERS` as zoo entries named
    ``ARCH:ENCODER`` (``build`` makes them with ``encoder_weights=None``), at 256x256 (DPT's ViT
    encoders at 224, their pretraining size); ``pattern`` globs match the name.

    >>> [e.name for e in list_smp("Unet:*")]
    ['Unet:efficientnet-b0', 'Unet:mobilenet_v2', 'Unet:resnet34']
    """
    import segmentation_models_pytorch as smp

    patterns = [p.strip() for p in pattern.split(",") if p.strip()] if pattern else []
    out = []
    for arch in sorted(smp.MODEL_ARCHITECTURES_MAPPING.values(), key=lambda c: c.__name__):
        vit = arch.__name__ == "DPT"
        for enc in sorted(SMP_VIT_ENCODERS if vit else SMP_ENCODERS):
            name = f"{arch.__name__}:{enc}"
            if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            side = input_size or (224 if vit else SMP_SIZE)
            out.append(ZooModel(name, "smp", (3, side, side), source="smp"))
    return out


ZOO_SOURCES = ("torchvision", "timm", "smp")


def list_source(source="torchvision", family=None, pattern=None, input_size=None) -> list:
    """Zoo entries of one source (``torchvision``, ``timm``, ``smp``) or of ``all`` of them, in
    that order; ``family`` picks torchvision's families (default classification).

    >>> [(e.source, e.name) for e in list_source("all", pattern="resnet18")]
    [('torchvision', 'resnet18'), ('timm', 'resnet18')]
    """
    if source not in ZOO_SOURCES + ("all",):
        raise ValueError(f"unknown zoo source {source!r}; choose from {', '.join(ZOO_SOURCES)} or all")
    sources = ZOO_SOURCES if source == "all" else (source,)
    out = []
    for src in sources:
        if src == "torchvision":
            out += list_zoo(family or "classification", pattern, input_size)
        elif src == "timm":
            out += list_timm(pattern, input_size)
        else:
            out += list_smp(pattern, input_size)
    return out


# -- model sources ---------------------------------------------------------------------------------
# One builder for every way a user names a model (the CLI's TARGET, the zoo's entries). Nothing is
# downloaded: torchvision gets weights=None (+ weights_backbone=None), timm pretrained=False, smp
# encoder_weights=None, transformers a default config (no from_pretrained).

SOURCES = ("torchvision", "timm", "smp", "hf", "yolo", "module", "file")
YOLO_SUFFIXES = (".yaml", ".yml")


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
    >>> parse_source("yolo:yolov8n"), parse_source("cfg/my-yolo.yaml")
    (('yolo', ('yolov8n',)), ('yolo', ('cfg/my-yolo.yaml',)))
    """
    if target.lower().endswith(YOLO_SUFFIXES) and not target.startswith("yolo:"):
        return "yolo", (target,)  # an ultralytics model yaml (a path may hold a drive letter's colon)
    prefix, colon, rest = target.partition(":")
    if not colon:
        return "torchvision", (target,)
    if prefix in ("torchvision", "timm", "hf", "yolo"):
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
        with _no_init_on_meta():
            return meta_model(factory, *args, **kwargs), ""
    except Exception as exc:  # a constructor that computes with tensor values
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        model = factory(*args, **kwargs)
        return model, f"built on the CPU: the constructor needs real tensors on the meta device ({first})"


# In-place ops that only write values: on a meta tensor (no values) they have nothing to do.
_VALUE_WRITES = frozenset(
    "uniform_ normal_ erfinv_ mul_ add_ sub_ div_ clamp_ clamp_min_ clamp_max_ clip_ fill_ zero_ copy_ "
    "exp_ log_ log1p_ expm1_ sqrt_ rsqrt_ square_ neg_ abs_ sign_ reciprocal_ pow_ tanh_ sigmoid_ "
    "floor_ ceil_ round_ trunc_ addcmul_ addcdiv_ lerp_ masked_fill_ fill_diagonal_ bernoulli_ "
    "random_ exponential_ cauchy_ log_normal_ geometric_".split())


@functools.lru_cache(maxsize=None)
def _no_init_mode():
    from torch import Tensor
    from torch.overrides import TorchFunctionMode

    class NoInitOnMeta(TorchFunctionMode):
        """Value-only in-place ops (:data:`_VALUE_WRITES`) on meta tensors return the tensor.

        Libraries initialise weights with their own functions (timm's ``trunc_normal_`` is
        ``uniform_``, ``erfinv_``, ``mul_``, ``add_``, ``clamp_``), which
        :func:`rfgraph.frontends.torch.meta_model`'s ``torch.nn.init`` patch does not reach; on
        meta each runs a Python reference kernel for nothing: 68% of building a sample of timm
        models. Ops that change a tensor's shape or strides (``resize_``, ``unsqueeze_``,
        ``transpose_``, ...) are not in the set and run as usual.
        """

        def __torch_function__(self, func, types, args=(), kwargs=None):
            if args and isinstance(args[0], Tensor) and getattr(func, "__name__", "") in _VALUE_WRITES \
                    and args[0].is_meta:
                return args[0]
            return func(*args, **(kwargs or {}))

    return NoInitOnMeta


def _no_init_on_meta():
    """A context in which value-only in-place ops on meta tensors do nothing (see
    :data:`_VALUE_WRITES`); while a model is built on the meta device."""
    return _no_init_mode()()


@functools.lru_cache(maxsize=1)
def _timm_names() -> frozenset:
    import timm

    return frozenset(timm.list_models())


def _timm(name, kwargs, make):
    import timm

    if name not in _timm_names():
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
        ``hf:MODEL_TYPE`` (a transformers model from its default config), ``yolo:NAME`` or
        ``path/to/model.yaml`` (an ultralytics YOLO from a yaml bundled with ultralytics --
        ``yolo:yolov8n``, ``yolo:yolo11n``, ``yolo:yolov8n-seg`` -- or a local one; see
        :func:`yolo_model`), ``package.module:factory`` or ``path/to/file.py:factory``.
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
    elif source == "yolo":
        model, shapes, note = _yolo(parts[0], kwargs, make)
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


# -- ultralytics YOLO ------------------------------------------------------------------------------
# A YOLO is built from its yaml (bundled with ultralytics, or a local file) by ultralytics' own model
# classes, without weights. Its yaml is read with a safe loader and checked before ultralytics sees
# it: every layer names an nn.Module class and the activation is `nn.Name(literals)`, so nothing in
# the file is evaluated (ultralytics `eval`s the activation otherwise) or called but a layer class.

_YOLO_TASKS = {"detect": "DetectionModel", "segment": "SegmentationModel", "pose": "PoseModel",
               "obb": "OBBModel"}
_YOLO_SIZE = 640  # ultralytics' default imgsz


def _yolo_root():
    from pathlib import Path

    import ultralytics

    return Path(ultralytics.__file__).parent / "cfg" / "models"


def _yolo_file(name):
    """``(file to read, path whose name gives the scale)`` for a yaml path or a bundled name
    (``yolov8n``: ``v8/yolov8.yaml`` at scale n, as ultralytics' ``yaml_model_load`` resolves it)."""
    import difflib
    import re
    from pathlib import Path

    if "://" in name:
        raise ValueError(f"rfgraph never downloads: {name!r} is a URL; give a local .yaml file or a "
                         "name bundled with ultralytics (yolo:yolov8n)")
    p = Path(name if name.lower().endswith(YOLO_SUFFIXES) else name + ".yaml")
    if p.is_file():
        return p, p
    if len(p.parts) > 1:
        raise FileNotFoundError(2, "no such file", str(p))
    root = _yolo_root()
    unified = re.sub(r"(\d+)([nslmx])(.+)?$", r"\1\3", p.stem) + p.suffix  # yolov8n-seg -> yolov8-seg
    for cand in dict.fromkeys((p.name, unified)):
        hits = sorted(root.rglob(cand))
        if hits:
            return hits[0], p
    stems = sorted({f.stem for f in root.rglob("*.yaml")})
    scaled = [re.sub(r"^(.*?\d+)(.*)$", rf"\g<1>{k}\2", s) for s in stems for k in "nslmx"]
    close = difflib.get_close_matches(p.stem, stems + scaled, n=3)
    raise ValueError(f"no ultralytics model yaml {p.name!r} here or bundled with ultralytics"
                     + (f"; did you mean {', '.join(close)}?" if close else ""))


def _yolo_activation(text, where):
    """``nn.SiLU()``, ``torch.nn.LeakyReLU(0.1)``: the module, its arguments literals (never
    ``eval``)."""
    import ast

    import torch

    try:
        call = ast.parse(str(text).strip(), mode="eval").body
        names, node = [], call.func
        while isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        names.append(node.id)
        cls = getattr(torch.nn, names[0], None)
        if names[1:] not in (["nn"], ["nn", "torch"]) or not isinstance(cls, type) \
                or not issubclass(cls, torch.nn.Module):
            raise ValueError
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        return cls(*args, **kwargs)
    except Exception:
        raise ValueError(f"{where}: activation {text!r} is not nn.NAME(literal arguments); "
                         "rfgraph evaluates nothing from a yaml") from None


def yolo_config(name) -> tuple:
    """``(cfg, task, activation)`` of an ultralytics model yaml: the model dict (read with a safe
    loader, its scale from the name as ultralytics does), its task (detect, segment, pose, obb) and
    the activation module it asks for (None: ultralytics' default SiLU), after checking that every
    layer is an ``nn.Module`` class (ultralytics' own, ``nn.NAME`` or ``torchvision.ops.NAME``).
    E.g. ``yolo_config("yolov8n-seg")``: ``v8/yolov8-seg.yaml`` at scale ``"n"``, task
    ``"segment"``, activation None (tests/answers/test_levels.py: ultralytics may be absent).
    """
    import torch
    import yaml  # PyYAML, an ultralytics dependency
    from ultralytics.nn import tasks

    path, named = _yolo_file(name)
    where = str(named)
    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except Exception as exc:
        raise ValueError(f"{where}: not a readable yaml ({' '.join(str(exc).split())[:160]})") from None
    parts = [cfg.get(k) for k in ("backbone", "head")] if isinstance(cfg, dict) else [None]
    layers = [x for p in parts if isinstance(p, list) for x in p]
    if not all(isinstance(p, list) and p for p in parts) or \
            not all(isinstance(x, (list, tuple)) and len(x) == 4 for x in layers):
        raise ValueError(f"{where}: not an ultralytics model yaml (backbone and head lists of "
                         "[from, repeats, module, args])")
    for i, (_, _, mname, _) in enumerate(layers):
        mname = str(mname)
        if mname.startswith("nn."):
            cls = getattr(torch.nn, mname[3:], None)
        elif mname.startswith("torchvision.ops."):
            import torchvision

            cls = getattr(torchvision.ops, mname[16:], None)
        else:
            cls = vars(tasks).get(mname)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise ValueError(f"{where}: layer {i} is {mname!r}, not an ultralytics or torch.nn module")
    scale = tasks.guess_model_scale(named)
    scales = cfg.get("scales")
    if scales and scale and scale not in scales:
        raise ValueError(f"{where}: scale {scale!r} is not one of the yaml's ({', '.join(scales)})")
    if scales and not scale:
        scale = next(iter(scales))  # as ultralytics does (it warns)
    act = cfg.pop("activation", None)
    act = None if not act else _yolo_activation(act, where)
    cfg.update(scale=scale, yaml_file=str(named))
    head = str(layers[-1][2]).lower()
    task = next((t for t in ("segment", "pose", "obb", "detect") if t in head), None)
    if task is None or "semantic" in head:
        raise ValueError(f"{where}: the head {layers[-1][2]!r} is not one of ultralytics' Detect heads "
                         "(Detect, Segment, Pose, OBB), the models the yolo source builds")
    return cfg, task, act


class _YoloBuild:
    """While ultralytics builds a model: the yaml's activation as ``Conv.default_act`` (what
    ultralytics would ``eval``), and the heads' ``bias_init`` skipped on the meta device (it reads
    a stride tensor's value, which meta tensors do not have; it only sets biases)."""

    def __init__(self, act):
        self.act = act

    def __enter__(self):
        from ultralytics.nn.modules import conv, head

        classes, todo = [], [head.Detect]
        while todo:
            c = todo.pop()
            todo.extend(c.__subclasses__())
            if "bias_init" in vars(c):
                classes.append(c)
        self.saved = [(c, vars(c)["bias_init"]) for c in classes]
        for c, fn in self.saved:
            def skip_on_meta(m, fn=fn):
                if not any(p.is_meta for p in m.parameters()):
                    fn(m)
            c.bias_init = skip_on_meta
        self.default_act = conv.Conv.default_act
        if self.act is not None:
            conv.Conv.default_act = self.act  # what ultralytics' parse_model does with the yaml's
        return self

    def __exit__(self, *exc):
        from ultralytics.nn.modules import conv

        for c, fn in self.saved:
            c.bias_init = fn
        conv.Conv.default_act = self.default_act
        return False


def _own_modules(model):
    """Give each parameter-free module registered under several parents its own copy, in place.

    ultralytics' ``Conv`` layers share one activation instance (``Conv.default_act``). The torch
    front-end names a shared module after its call site (``model.15.cv2.act``) when the caller
    holds it; the copies make that so for every caller, and for anything that walks the modules.
    A stateless module is the same function wherever it is, so the copies change no output and no
    state dict."""
    import copy

    seen = set()
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            stateless = next(child.parameters(), None) is None and next(child.buffers(), None) is None
            if id(child) in seen and stateless:
                setattr(parent, name, copy.deepcopy(child))
            else:
                seen.add(id(child))
    return model


def yolo_model(name, *, make=None, **kwargs):
    """An ultralytics YOLO built from its yaml (``yolo_config``) without weights, with each
    layer's own activation (:func:`_own_modules`), in train mode as ultralytics leaves it.

    ``make(factory, **kwargs) -> (model, note)`` builds it (default: the meta device; the
    gradient check passes a CPU maker); ``kwargs`` go to the model class (``nc=``, ``ch=``).
    """
    from ultralytics.nn import tasks

    cfg, task, act = yolo_config(name)
    cls = getattr(tasks, _YOLO_TASKS[task])

    def factory(**kw):
        import copy

        with _YoloBuild(act):
            return cls(copy.deepcopy(cfg), verbose=False, **kw)

    model, note = (make or _meta_or_cpu)(factory, **kwargs)
    return _own_modules(model), note


def _yolo(name, kwargs, make):
    model, note = yolo_model(name, make=make, **kwargs)
    return model, ((kwargs.get("ch", 3), _YOLO_SIZE, _YOLO_SIZE),), note


def levels_part(target) -> str:
    """The part of TARGET whose outputs are a detector's levels: ``"backbone"`` for a torchvision
    detector (backbone + FPN: its transform and heads do not trace), ``"neck"`` for an ultralytics
    YOLO (:func:`yolo_neck`: the head's inputs), else ``""`` (the model's own outputs).

    >>> levels_part("retinanet_resnet50_fpn"), levels_part("yolo:yolov8n"), levels_part("resnet18")
    ('backbone', 'neck', '')
    """
    source, parts = parse_source(target)
    if source == "yolo":
        return "neck"
    if source == "torchvision":
        try:
            return "backbone" if family_of(parts[0].lower()) == "detection" else ""
        except ModuleNotFoundError:
            return ""
    return ""


def model_part(model, part):
    """``model``'s part: itself (``""``), :func:`yolo_neck` (``"neck"``) or a submodule."""
    if not part:
        return model
    if part == "neck":
        return yolo_neck(model)
    return getattr(model, part)


def yolo_neck(model):
    """An ultralytics detection model (``DetectionModel("yolov8n.yaml")``, or :func:`yolo_model`:
    built from its yaml, no weights) cut before its head: a module returning the head's inputs (P3,
    P4, P5 for YOLOv8's ``Detect``) in the head's order, for :func:`rfgraph.levels`. The layers are
    the model's own (no copy, same qualnames: ``model.15``); each layer's ``f`` (from) index routes
    its input as ultralytics does. The model itself is not changed. ``.heads`` names the head's
    inputs by layer: ``('model.15', 'model.18', 'model.21')`` for YOLOv8.
    """
    import torch

    seq = getattr(model, "model", None)
    head = seq[-1] if isinstance(seq, torch.nn.Sequential) and len(seq) > 1 else None
    if head is None or not all(hasattr(m, "f") for m in seq):
        raise ValueError(f"yolo_neck needs an ultralytics model (its .model a Sequential of layers with "
                         f"a from index .f), got {type(model).__name__}")
    keep = [head.f] if isinstance(head.f, int) else list(head.f)
    keep = [j % (len(seq) - 1) if j < 0 else j for j in keep]  # -1: the layer before the head

    class YoloNeck(torch.nn.Module):
        heads = tuple(f"model.{j}" for j in keep)  # the head's inputs, by layer

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
