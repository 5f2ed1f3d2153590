"""The torchvision model zoo: which models, at which input size, and how to build them.

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
           "build"]

FAMILIES = ("classification", "segmentation", "detection", "video", "optical_flow")


@dataclass(frozen=True)
class ZooModel:
    """One model of the zoo: its torchvision name, family and the input it is analysed at."""

    name: str
    family: str
    input_shape: tuple  # (C, H, W) or (C, T, H, W)
    n_inputs: int = 1
    part: str = ""  # "backbone" for detection models: the backbone + FPN is analysed

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
    """The analysed model (or part) of a zoo entry: :func:`build_model` of its name and part."""
    return build_model(entry.name, part=entry.part, make=make)
