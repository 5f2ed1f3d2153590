"""The torchvision model zoo: which models, at which input size, and one summary row per model.

Used by ``rfgraph zoo`` and ``benchmarks/zoo.py``. Models are built with ``weights=None`` on the
meta device, so nothing is downloaded and no real memory is allocated.
"""

from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field

__all__ = ["FAMILIES", "ZooModel", "list_zoo", "build", "summarize"]

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


def _size(name, family):
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


def list_zoo(family="all", pattern=None, input_size=None) -> list:
    """Zoo models of a family (or all), optionally filtered by a glob ``pattern``.

    Quantized variants are out of scope (their ops are quantized kernels).
    """
    from torchvision import models

    modules = {
        "classification": models,
        "segmentation": models.segmentation,
        "detection": models.detection,
        "video": models.video,
        "optical_flow": models.optical_flow,
    }
    fams = FAMILIES if family in (None, "all") else (family,)
    out = []
    for fam in fams:
        if fam not in modules:
            raise ValueError(f"unknown family {fam!r}; choose from {', '.join(FAMILIES)} or all")
        for name in sorted(models.list_models(module=modules[fam])):
            if pattern and not fnmatch.fnmatch(name, pattern):
                continue
            shape = _size(name, fam)
            if input_size is not None:
                shape = shape[:-2] + (input_size, input_size)
            out.append(ZooModel(name, fam, shape, 2 if fam == "optical_flow" else 1,
                                "backbone" if fam == "detection" else ""))
    return out


def build(entry: ZooModel):
    """The model (or its analysed part) on the meta device, weights=None."""
    from torchvision import models

    from .frontends.torch import meta_model

    kwargs = {"weights": None}
    if entry.family in ("segmentation", "detection"):
        kwargs["weights_backbone"] = None
    model = meta_model(models.get_model, entry.name, **kwargs)
    if entry.part:
        model = getattr(model, entry.part)
    return model


@dataclass
class ZooRow:
    """What the zoo reports for one model."""

    model: str
    family: str
    input_shape: tuple
    ok: bool
    error: str = ""
    output: str = ""
    n: tuple = ()
    rf: tuple = ()
    jump: tuple = ()
    start: tuple = ()
    padding: tuple = ()
    is_global: tuple = ()
    global_from: str = ""
    nodes: int = 0
    misaligned: int = 0
    stages: list = field(default_factory=list)
    global_ops: dict = field(default_factory=dict)
    build_s: float = 0.0
    trace_s: float = 0.0
    analyze_s: float = 0.0


def _final_spatial(analysis, G):
    """The final feature map: the last node (in topological order) that is still a spatial map
    (more than one feature on every axis), e.g. layer4 of a ResNet, before global pooling."""
    best = None
    for v in analysis.order:
        if analysis[v].op != "input" and all(n > 1 for n in analysis[v].n):
            best = v
    return best or (G.graph.get("outputs") or analysis.sinks)[-1]


def summarize(entry: ZooModel) -> ZooRow:
    """Build, trace and analyse one zoo model; never raises (errors go into the row)."""
    from . import analyze
    from .frontends.torch import from_torch

    row = ZooRow(entry.label, entry.family, entry.input_shape, ok=False)
    try:
        t0 = time.perf_counter()
        model = build(entry)
        t1 = time.perf_counter()
        shapes = [entry.input_shape] * entry.n_inputs if entry.n_inputs > 1 else entry.input_shape
        G = from_torch(model, shapes)
        t2 = time.perf_counter()
        a = analyze(G)
        final = a[_final_spatial(a, G)]
        t3 = time.perf_counter()
    except Exception as exc:  # one failing model must not stop the sweep
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return row
    row.ok = True
    row.build_s, row.trace_s, row.analyze_s = t1 - t0, t2 - t1, t3 - t2
    row.output = final.name
    row.n, row.rf, row.jump, row.start, row.padding = final.n, final.rf, final.jump, final.start, final.padding
    out = a[G.graph["outputs"][0]] if G.graph.get("outputs") else a.output
    row.is_global = final.is_global
    first_global = next((g for g in final.global_from if g is not None), "")
    row.global_from = str(first_global)
    row.nodes = len(G)
    row.misaligned = len(a.misaligned())
    row.global_ops = dict(sorted(G.graph.get("global_ops", {}).items()))
    top = [m for m in G.graph.get("module_outputs", {}) if m and "." not in m]
    for m in top:
        rec = a.module(m)
        row.stages.append((m, rec.rf, rec.jump, any(rec.global_from)))
    return row
