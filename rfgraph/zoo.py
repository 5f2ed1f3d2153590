"""The torchvision model zoo: which models, at which input size, and one summary row per model.

Used by ``rfgraph zoo`` and ``benchmarks/zoo.py``. Models are built with ``weights=None`` on the
meta device, so nothing is downloaded and no real memory is allocated. With ``verify=True`` each
model is also built for real (CPU, float64, positive weights) and rfgraph's numbers are checked
against gradient support (:mod:`rfgraph.verify`).

The *final feature map* of a model is the output of the last module (in topological order) that
torch reports as a spatial map, ``(N, C, H, W)`` with more than one feature on every axis: layer4
of a ResNet, ``features`` of a VGG or EfficientNet (adaptive pooling to a fixed size belongs to the
head), ``conv_proj`` of a ViT (after it the tensor is a sequence of tokens).

Examples
--------
>>> from rfgraph.zoo import list_zoo, summarize
>>> [entry] = list_zoo("classification", "resnet18")
>>> row = summarize(entry)
>>> row.module, row.rf, row.jump, row.is_global
('layer4', (435, 435), (32, 32), (False, False))
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import resource
import sys
import time
from dataclasses import asdict, dataclass, field

__all__ = ["FAMILIES", "ZooModel", "ZooRow", "list_zoo", "build", "summarize", "final_map", "run",
           "to_markdown", "to_json", "format_rows", "peak_rss_mb", "machine"]

FAMILIES = ("classification", "segmentation", "detection", "video", "optical_flow")

# --verify limits: float64 activations kept for the backward passes, float64 weights, and the
# estimated time of one forward plus the backward passes at FLOPS_PER_S. One float64 thread did
# 15-25 GFLOP/s on dense convolutions here and far less on depthwise ones (their models are small):
# 1e10 puts the estimate within 0.4x-3x of the measured time over the classification zoo.
VERIFY_ACTIVATION_BYTES = 2 * 2**30
VERIFY_PARAM_BYTES = 2 * 2**30
VERIFY_SECONDS = 60.0
FLOPS_PER_S = 1e10
GC_EVERY = 10  # models between full garbage collections in a sweep (see run)


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
    """Zoo models of a family (or all), optionally filtered by a glob ``pattern`` (several
    patterns separated by commas).

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
    patterns = [p.strip() for p in pattern.split(",") if p.strip()] if pattern else []
    out = []
    for fam in fams:
        if fam not in modules:
            raise ValueError(f"unknown family {fam!r}; choose from {', '.join(FAMILIES)} or all")
        for name in sorted(models.list_models(module=modules[fam])):
            if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            shape = _size(name, fam)
            if input_size is not None:
                shape = shape[:-2] + (input_size, input_size)
            out.append(ZooModel(name, fam, shape, 2 if fam == "optical_flow" else 1,
                                "backbone" if fam == "detection" else ""))
    return out


def _kwargs(entry):
    kwargs = {"weights": None}
    if entry.family in ("segmentation", "detection"):
        kwargs["weights_backbone"] = None
    if entry.name in ("googlenet", "inception_v3"):
        kwargs["init_weights"] = False  # no scipy truncated-normal warning; weights are unused
    return kwargs


def build(entry: ZooModel):
    """The model (or its analysed part) on the meta device, weights=None."""
    from torchvision import models

    from .frontends.torch import meta_model

    model = meta_model(models.get_model, entry.name, **_kwargs(entry))
    if entry.part:
        model = getattr(model, entry.part)
    return model


@dataclass
class ZooRow:
    """What the zoo reports for one model.

    ``output``/``module`` name the final feature map (node and module); ``n``, ``rf``, ``jump``,
    ``start``, ``padding`` and ``is_global`` are its per-axis numbers; ``global_from`` the global
    op that made it global; ``out_global_from`` the one that made the model's output global;
    ``stages`` holds ``(module, rf, jump, is_global, global_from)`` for every top-level module
    (``is_global`` without ``global_from``: the RF covers the input). Times in
    seconds; ``peak_rss_mb`` is the process' peak resident memory while the model was handled.
    """

    model: str
    family: str
    input_shape: tuple
    ok: bool
    error: str = ""
    output: str = ""
    module: str = ""
    n: tuple = ()
    rf: tuple = ()
    jump: tuple = ()
    start: tuple = ()
    padding: tuple = ()
    is_global: tuple = ()
    global_from: str = ""
    out_global_from: str = ""
    nodes: int = 0
    misaligned: int = 0
    misaligned_nodes: list = field(default_factory=list)
    stages: list = field(default_factory=list)
    global_ops: dict = field(default_factory=dict)
    build_s: float = 0.0
    trace_s: float = 0.0
    analyze_s: float = 0.0
    peak_rss_mb: float = 0.0
    verify: dict = field(default_factory=dict)


def _module_names(G):
    """``{node: module}`` for nodes that are some module's output; the shortest module name wins
    (``layer4`` rather than ``layer4.1`` or ``layer4.1.relu``)."""
    best = {}
    for m, v in (G.graph.get("module_outputs") or {}).items():
        if not m:
            continue
        if v not in best or (m.count("."), len(m)) < (best[v].count("."), len(best[v])):
            best[v] = m
    return best


def _spatial_outputs(analysis, G):
    """Module outputs that torch reports as spatial maps with more than one feature per axis, in
    topological order: ``[(node, module)]``."""
    shapes = G.graph.get("shapes") or {}
    mods = _module_names(G)
    nodes = G._node
    # adaptive pooling to a fixed size (VGG's 7x7 avgpool) belongs to the head: it resizes
    return [(v, mods[v]) for v in analysis.order
            if v in mods and v in shapes and all(s > 1 for s in shapes[v])
            and not str(nodes[v].get("op", "")).startswith("adaptive")]


def final_map(analysis, G):
    """``(node, module)`` of the final feature map (see the module docstring); for a graph without
    module information, the last node with more than one feature on every axis."""
    spatial = _spatial_outputs(analysis, G)
    if spatial:
        return spatial[-1]
    best = None
    for v in analysis.order:
        if analysis[v].op != "input" and all(n > 1 for n in analysis[v].n):
            best = v
    return (best or (G.graph.get("outputs") or analysis.sinks)[-1]), ""


def _first_global(rec):
    return str(next((g for g in rec.global_from if g is not None), "") or "")


def summarize(entry: ZooModel, model=None) -> ZooRow:
    """Build, trace and analyse one zoo model; never raises (errors go into the row).

    ``analyze_s`` is everything after the trace: the propagation, every node's record, and the
    row's own queries (``is_global`` is computed on first access from exact per-feature pixel sets).
    """
    from . import analyze
    from .frontends.torch import from_torch

    row = ZooRow(entry.label, entry.family, entry.input_shape, ok=False)
    try:
        t0 = time.perf_counter()
        model = build(entry) if model is None else model
        t1 = time.perf_counter()
        G = from_torch(model, _shapes(entry))
        t2 = time.perf_counter()
        a = analyze(G)
        a.records()
        node, module = final_map(a, G)
        final = a[node]
        row.output, row.module = str(node), module
        row.n, row.rf, row.jump, row.start, row.padding = final.n, final.rf, final.jump, final.start, final.padding
        row.is_global = final.is_global
        row.global_from = _first_global(final)
        outs = G.graph.get("outputs") or a.sinks
        row.out_global_from = next((_first_global(a[o]) for o in outs if _first_global(a[o])), "")
        row.nodes = len(G)
        mis = a.misaligned()
        row.misaligned = len(mis)
        row.misaligned_nodes = [str(m.node) for m in mis]
        row.global_ops = dict(sorted(G.graph.get("global_ops", {}).items()))
        top = [m for m in G.graph.get("module_outputs", {}) if m and "." not in m]
        for m in top:
            rec = a.module(m)
            row.stages.append((m, rec.rf, rec.jump, any(rec.is_global), _first_global(rec)))
        t3 = time.perf_counter()
    except Exception as exc:  # one failing model must not stop the sweep
        row.error = _error(exc)
        row.stages = []
        return row
    row.ok = True
    row.build_s, row.trace_s, row.analyze_s = t1 - t0, t2 - t1, t3 - t2
    return row


def _shapes(entry, spatial=None):
    shape = entry.input_shape if spatial is None else entry.input_shape[:-len(spatial)] + tuple(spatial)
    return [shape] * entry.n_inputs if entry.n_inputs > 1 else shape


def _error(exc):
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


# -- verification ------------------------------------------------------------------------------------


def _round_up(x, m):
    return -(-int(x) // m) * m


def _checks(analysis, G, model_modules):
    """Modules to verify: the final feature map and the last spatial module output that is not
    global (when it differs); only names that are real modules (hooks need one)."""
    spatial = [(v, m) for v, m in _spatial_outputs(analysis, G) if m in model_modules]
    if not spatial:
        return []
    out = [spatial[-1]]
    local = [(v, m) for v, m in spatial if not any(analysis[v].is_global)]
    if local and local[-1][0] != spatial[-1][0]:
        out.insert(0, local[-1])
    return out


def verify(entry: ZooModel, row: ZooRow, *, max_activation_bytes=VERIFY_ACTIVATION_BYTES,
           max_param_bytes=VERIFY_PARAM_BYTES, max_seconds=VERIFY_SECONDS, flops_per_s=FLOPS_PER_S,
           max_side=None, threads=1) -> dict:
    """Check ``row``'s model against gradient support; returns the ``row.verify`` dict.

    The input is made large enough for the checked features' RFs to stay clear of the border
    (``rf + 4 * jump``, rounded up to a multiple of the jump), within the limits; when that is too
    large the check runs at the largest size that fits (bounds still compared, ``rf``/``start``/
    ``jump`` only where the support is interior), and a model that does not fit at its zoo input
    size is skipped with the reason. ``status`` is ``ok``, ``mismatch``, ``skipped`` or ``error``.
    ``threads``: intra-op threads while building and measuring (see :func:`rfgraph.verify.compare`).
    """
    from . import analyze
    from .frontends.torch import from_torch

    out = {"status": "skipped", "reason": "", "input": None, "checks": [], "mismatches": [], "seconds": 0.0,
           "estimate": {}}
    if not row.ok:
        out["reason"] = "not analysed"
        return out
    if entry.n_inputs > 1:
        out["reason"] = "two-input model (optical flow): not supported by the gradient-support check"
        return out
    t0 = time.perf_counter()
    try:
        from torchvision import models

        from . import verify as V

        meta = build(entry)
        names = {n for n, _ in meta.named_modules()}
        params = V.count_params(meta)
        if params * 8 > max_param_bytes:
            out["reason"] = (f"{params / 1e6:.0f}M parameters: {params * 8 / 2**30:.1f} GB of float64 "
                             f"weights > {max_param_bytes / 2**30:.0f} GB")
            return out
        G0 = from_torch(meta, _shapes(entry))
        a0 = analyze(G0)
        checks = _checks(a0, G0, names)
        if not checks:
            out["reason"] = "no spatial module output to check"
            return out
        base = entry.input_shape[-1]
        need = base
        for v, _ in checks:
            rec = a0[v]
            if not any(rec.is_global):
                j = max(int(max(rec.jump)), 1)
                need = max(need, _round_up(max(rec.rf) + 4 * j + 2, j))
        if max_side is not None:
            need = min(need, max(max_side, base))
        # cost grows with the number of pixels: estimate at the zoo size, scale, then confirm
        def shape_at(side):
            return entry.input_shape[:-2] + (side, side)

        nback = 2 * len(checks)
        c0 = V.estimate_cost(meta, shape_at(base))
        chosen, cost = None, c0
        if c0.activation_bytes <= max_activation_bytes and c0.seconds(nback, flops_per_s) <= max_seconds:
            ratio = min(max_activation_bytes / max(c0.activation_bytes, 1),
                        max_seconds / max(c0.seconds(nback, flops_per_s), 1e-9))
            side = max(base, min(need, int(base * ratio ** 0.5) // _step(need) * _step(need)))
            while side > base:
                c = V.estimate_cost(meta, shape_at(side))
                if c.activation_bytes <= max_activation_bytes and c.seconds(nback, flops_per_s) <= max_seconds:
                    break
                side = max(base, side - _step(need) * max(1, (side - base) // (4 * _step(need))))
            chosen = shape_at(side)
            cost = c0 if side == base else c
        if chosen is None:
            secs = cost.seconds(nback, flops_per_s)
            why = []
            if cost.activation_bytes > max_activation_bytes:
                why.append(f"{cost.activation_bytes / 2**30:.1f} GB of float64 activations > "
                           f"{max_activation_bytes / 2**30:.0f} GB")
            if secs > max_seconds:
                why.append(f"~{secs:.0f} s estimated (forward + {nback} backward passes, "
                           f"{cost.flops / 1e9:.0f} GFLOP each) > {max_seconds:.0f} s")
            out["reason"] = f"too large at {_shape(entry.input_shape)}: " + "; ".join(why)
            return out
        out["needed"] = need
        del meta
        shape = chosen
        out["input"] = list(shape)
        out["estimate"] = {"activation_gb": round(cost.activation_bytes / 2**30, 3),
                           "gflop": round(cost.flops / 1e9, 1),
                           "seconds": round(cost.seconds(nback, flops_per_s), 1)}
        with V._threads(threads):  # see verify.compare: one thread by default
            model = V.positive_model(models.get_model, entry.name, **_kwargs(entry))
            if entry.part:
                model = getattr(model, entry.part)
            G = from_torch(model, shape)
            a = analyze(G)
            recs = {m: a[G.graph["module_outputs"][m]] for _, m in checks}
            results = V.compare(model, shape, recs, threads=None)
        del model
    except Exception as exc:
        out["status"] = "error"
        out["reason"] = _error(exc)
        out["seconds"] = round(time.perf_counter() - t0, 2)
        return out
    out["seconds"] = round(time.perf_counter() - t0, 2)
    for r in results:
        rec = recs[r.module]
        out["checks"].append({
            "module": r.module, "rf": list(rec.rf), "jump": list(rec.jump), "is_global": list(rec.is_global),
            "measured": [list(h) for h in r.measured], "interior": r.interior, "covers": r.covers,
            "ok": r.ok, "positions": [list(p) for p in r.positions],
            "hulls": [[list(h) for h in hs] for hs in r.hulls]})
        out["mismatches"].extend(r.mismatches)
    out["status"] = "mismatch" if out["mismatches"] else "ok"
    return out


def _step(n):
    return 32 if n <= 1024 else 64


# -- running the sweep ---------------------------------------------------------------------------


def _hwm_reset():
    """Reset the kernel's peak-RSS mark for this process (Linux); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb(since_reset=True) -> float:
    """Peak resident memory of this process in MB: since the last reset (``VmHWM``, Linux) or
    over its life (``getrusage``)."""
    if since_reset:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024


def _release_memory():
    """Free the previous model's float64 weights and activations and give the memory back to the
    OS. Both steps are needed in a --verify sweep: some of it sits in reference cycles until a full
    collection (VGG's 1.1 GB of weights piled up to 7.5 GB without it), and glibc keeps freed heap
    for reuse (5.6 GB after 45 models, each needing under 1 GB, without malloc_trim)."""
    import gc

    gc.collect()
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def _one(entry, do_verify=False, verify_opts=None):
    """One model, in this process or a worker: row with its own peak RSS."""
    import warnings

    if do_verify:
        _release_memory()
    reset = _hwm_reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's init warnings would break the progress line
        row = summarize(entry)
        if do_verify:
            row.verify = verify(entry, row, **(verify_opts or {}))
    row.peak_rss_mb = round(peak_rss_mb(since_reset=reset), 1)
    return row


def run(entries, *, verify=False, jobs=1, progress=None, verify_opts=None):
    """Summarise (and optionally verify) ``entries``; returns ``(rows, info)``.

    ``progress(k, n, entry)`` is called before each model (``k`` done so far). ``jobs > 1``
    uses a pool of spawned processes (each imports torch first). ``info`` has the wall time and
    the peak RSS over the run (the largest of the per-model peaks and the start-up).
    """
    import gc

    t0 = time.perf_counter()
    peak = peak_rss_mb(since_reset=False)
    rows = []
    n = len(entries)
    if jobs <= 1:
        # Each model leaves reference cycles (records point back to their analysis) in the oldest
        # generation, which only a full collection frees: without one the sweep's RSS grew by
        # 6 MB a model (1.2 GB at the end). A full collection costs about 0.2 s with torch loaded,
        # so one every GC_EVERY models. (gc.freeze for the sweep would make it cheap but defeats
        # the engine's own gc handling: the analysis took twice as long.)
        for k, e in enumerate(entries):
            if progress:
                progress(k, n, e)
            rows.append(_one(e, verify, verify_opts))
            peak = max(peak, rows[-1].peak_rss_mb)
            if (k + 1) % GC_EVERY == 0:
                gc.collect()
    else:
        import functools
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(jobs) as pool:
            work = functools.partial(_one, do_verify=verify, verify_opts=verify_opts)
            if progress:
                progress(0, n, entries[0] if entries else None)
            for k, row in enumerate(pool.imap(work, entries, chunksize=1)):
                rows.append(row)
                if progress:
                    progress(k + 1, n, entries[k + 1] if k + 1 < n else None)
        peak = None  # per-process peaks; the sum over workers is not measured
    info = {"wall_s": round(time.perf_counter() - t0, 2), "jobs": jobs,
            "peak_rss_mb": round(max(peak, peak_rss_mb(since_reset=True)), 1) if peak is not None else None}
    return rows, info


def machine() -> dict:
    """What the numbers were measured on."""
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "machine": platform.machine(), "cpus": os.cpu_count()}
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        import torch
        import torchvision

        info["torch"], info["torchvision"] = torch.__version__, torchvision.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


# -- output ------------------------------------------------------------------------------------------


def _v(values):
    """``427`` when every axis agrees, else ``427x35``; floats without trailing zeros."""
    if not values:
        return ""
    vals = [f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return vals[0] if len(set(vals)) == 1 else "x".join(vals)


def _global(row):
    if not row.is_global or not any(row.is_global):
        return "no"
    axes = "" if all(row.is_global) else " (axes " + ",".join(str(i) for i, g in enumerate(row.is_global) if g) + ")"
    return f"yes{axes}, from {row.global_from}" if row.global_from else f"covers input{axes}"


def _shape(shape):
    return "x".join(map(str, shape[1:]))


def _verify_cell(v):
    if not v:
        return ""
    if v["status"] == "ok":
        return f"ok at {_shape(v['input'])}"
    if v["status"] == "mismatch":
        return f"MISMATCH at {_shape(v['input'])} ({len(v['mismatches'])})"
    return f"{v['status']}: {v['reason']}"


def table_rows(rows, verified=False) -> list:
    """Rows for :func:`rfgraph.render.table.format_table` / ``to_markdown``."""
    out = []
    for r in rows:
        if not r.ok:
            out.append({"model": r.model, "input": _shape(r.input_shape), "final map": "ERROR", "notes": r.error})
            continue
        d = {"model": r.model, "input": _shape(r.input_shape), "final map": r.module or r.output,
             "n": _v(r.n), "rf": _v(r.rf), "jump": _v(r.jump), "start": _v(r.start), "padding": _v(r.padding),
             "global": _global(r), "output global from": r.out_global_from or "-", "nodes": r.nodes,
             "misaligned": r.misaligned, "trace s": f"{r.trace_s:.2f}", "analyze s": f"{r.analyze_s:.3f}",
             "peak MB": f"{r.peak_rss_mb:.0f}"}
        if verified:
            d["verify"] = _verify_cell(r.verify)
        out.append(d)
    return out


COLUMNS = ("model", "input", "final map", "n", "rf", "jump", "start", "padding", "global", "output global from",
           "nodes", "misaligned", "trace s", "analyze s", "peak MB")


def format_rows(rows, verified=False) -> str:
    """The plain-text table ``rfgraph zoo`` prints."""
    from .render.table import format_table

    cols = COLUMNS + (("verify",) if verified else ())
    return format_table(table_rows(rows, verified), columns=cols)


def _stage_line(r):
    parts = []
    for m, rf, jump, glob, src in r.stages:
        if src:
            parts.append(f"{m} global")
        else:
            parts.append(f"{m} {_v(rf)}/{_v(jump)}" + (" (covers input)" if glob else ""))
    return ", ".join(parts)


def to_markdown(rows, info=None, title="rfgraph zoo") -> str:
    """The results as a Markdown document: a table per family, stage RFs, verification."""
    from .render.markdown import to_markdown as md_table

    info = info or {}
    verified = any(r.verify for r in rows)
    out = [f"# {title}", ""]
    if info.get("command"):
        out += [f"Command: `{info['command']}`", ""]
    ok = [r for r in rows if r.ok]
    tot = {k: sum(getattr(r, k) for r in ok) for k in ("build_s", "trace_s", "analyze_s")}
    if info:
        m = info.get("machine", {})
        out += [f"- machine: {m.get('cpu', '?')}, {m.get('cpus_usable', m.get('cpus', '?'))} usable CPUs, "
                f"Python {m.get('python', '?')}, torch {m.get('torch', '?')}, torchvision {m.get('torchvision', '?')}"]
        if info.get("date"):
            out.append(f"- date: {info['date']}")
        out.append(f"- models: {len(rows)} ({len(ok)} analysed, {len(rows) - len(ok)} failed)")
        if "wall_s" in info:
            out.append(f"- sweep wall time: {info['wall_s']:.1f} s in {info.get('jobs', 1)} process(es)"
                       + (f" (importing torch and torchvision before it: {info['import_s']:.1f} s)"
                          if "import_s" in info else ""))
        out.append(f"- time per phase (sum over models): build {tot['build_s']:.1f} s, trace {tot['trace_s']:.1f} s, "
                   f"analyze {tot['analyze_s']:.1f} s")
        if info.get("peak_rss_mb"):
            out.append(f"- peak RSS: {info['peak_rss_mb']:.0f} MB")
        out.append("")
    out += ["Columns: the **final feature map** is the output of the last module that torch reports as a "
            "spatial map with more than one feature per axis; `n`, `rf` (RF size, input pixels), `jump` "
            "(effective stride), `start` (centre of feature 0's RF; pixel i spans [i, i+1)) and `padding` "
            "(effective padding, rf/2 - start) are its numbers, one value when all axes agree. `global`: "
            "every feature depends on the whole input, and the op that made it so; `output global from`: "
            "the op that makes the model's output global. `misaligned`: joins whose branches' RF centres "
            "differ. Times are seconds (build = constructing the model on the meta device); `peak MB` is the "
            "process' peak RSS while the model was handled.", ""]
    cols = COLUMNS + (("verify",) if verified else ())
    for fam in FAMILIES:
        fr = [r for r in rows if r.family == fam]
        if not fr:
            continue
        out += [f"## {fam}", "", md_table(table_rows(fr, verified), columns=cols).rstrip(), ""]
        out += ["<details><summary>RF / jump at each stage (top-level module; 'global': after a global op)</summary>", ""]
        out += [f"- **{r.model}**: {_stage_line(r)}" for r in fr if r.ok]
        out += ["", "</details>", ""]
        mis = [r for r in fr if r.misaligned]
        if mis:
            out += ["Misaligned joins: " + "; ".join(
                f"{r.model} ({r.misaligned}: {', '.join(r.misaligned_nodes[:4])}{', ...' if r.misaligned > 4 else ''})"
                for r in mis), ""]
    if verified:
        out += _verify_section(rows)
    failed = [r for r in rows if not r.ok]
    if failed:
        out += ["## Failed", ""] + [f"- {r.model}: {r.error}" for r in failed] + [""]
    return "\n".join(out).rstrip() + "\n"


def _verify_section(rows):
    vs = [r for r in rows if r.verify]
    by = {}
    for r in vs:
        by.setdefault(r.verify["status"], []).append(r)
    out = ["## Verification against gradient support", "",
           f"{len(by.get('ok', []))} verified, {len(by.get('mismatch', []))} with mismatches, "
           f"{len(by.get('skipped', []))} skipped, {len(by.get('error', []))} errors.", "",
           "Each model is built on the CPU in float64 (weights=None, then positive weights, BN as identity, "
           "max pooling as average pooling, saturating activations swapped) and the gradient support of the "
           "centre feature and its neighbour is compared with rfgraph at the final feature map and at the "
           "last non-global map: exact bounds always, `rf`/`start`/`jump` where the support is interior, and "
           "`is_global` (a global map's support must cover the input).", "",
           "| model | input | module | rfgraph rf / jump | measured hull (centre feature) | interior | result | s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in vs:
        v = r.verify
        if v["status"] in ("skipped", "error"):
            out.append(f"| {r.model} | {_shape(r.input_shape)} | | | | | {v['status']}: {v['reason']} | {v['seconds']} |")
            continue
        for c in v["checks"]:
            rf = "global" if all(c["is_global"]) else f"{_v(c['rf'])} / {_v(c['jump'])}"
            hull = ", ".join(f"{lo}..{hi}" for lo, hi in c["measured"])
            inside = "yes" if all(c["interior"]) else "no" if not any(c["interior"]) else "partly"
            if c["covers"]:
                inside = "covers input"
            out.append(f"| {r.model} | {_shape(v['input'])} | {c['module']} | {rf} | {hull} | {inside} | "
                       f"{'ok' if c['ok'] else 'MISMATCH'} | {v['seconds']} |")
    out.append("")
    bad = [r for r in vs if r.verify["mismatches"]]
    if bad:
        out += ["### Mismatches", ""]
        for r in bad:
            out += [f"- {r.model}: " + "; ".join(r.verify["mismatches"][:6])]
        out.append("")
    return out


def to_json(rows, info=None) -> str:
    """The results as JSON: ``{"info": {...}, "models": [row, ...]}``."""
    doc = {"schema_version": 1, "info": info or {}, "models": [asdict(r) for r in rows]}
    return json.dumps(doc, indent=1, default=str) + "\n"
