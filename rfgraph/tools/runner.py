"""Run the zoo: one summary row per model, optionally checked against gradient support.

Used by ``rfgraph zoo`` and ``benchmarks/zoo.py``; the models come from
:mod:`rfgraph.tools.catalogue` and the rows are rendered by :mod:`rfgraph.render.zoo`. With
``verify=True`` each model is also built for real (CPU, float64, positive weights) and rfgraph's
numbers are checked against gradient support (:mod:`rfgraph.tools.verify`).

The *final feature map* of a model is the output of the last module (in topological order) that
torch reports as a spatial map, ``(N, C, H, W)`` with more than one feature on every axis: layer4
of a ResNet, ``features`` of a VGG or EfficientNet (adaptive pooling to a fixed size belongs to the
head), ``conv_proj`` of a ViT (after it the tensor is a sequence of tokens).

Examples
--------
>>> from rfgraph.tools.catalogue import list_zoo
>>> from rfgraph.tools.runner import summarize
>>> [entry] = list_zoo("classification", "resnet18")
>>> row = summarize(entry)
>>> row.module, row.rf, row.jump, row.is_global
('layer4', (435, 435), (32, 32), (False, False))
"""

from __future__ import annotations

import contextlib
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field

from .. import schema
from .catalogue import ZooModel, build

__all__ = ["ZooRow", "summarize", "final_map", "verify", "model_row", "run", "run_isolated", "run_ray", "sweep",
           "read_rows", "row_from_dict", "row_key", "progress_bar", "peak_rss_mb", "machine"]

# --verify limits: float64 activations kept for the backward passes, float64 weights, and the
# estimated time of one forward plus the backward passes at FLOPS_PER_S. One float64 thread did
# 15-25 GFLOP/s on dense convolutions here and far less on depthwise ones (their models are small):
# 1e10 puts the estimate within 0.4x-3x of the measured time over the classification zoo.
VERIFY_ACTIVATION_BYTES = 2 * 2**30
VERIFY_PARAM_BYTES = 2 * 2**30
VERIFY_SECONDS = 60.0
FLOPS_PER_S = 1e10


@dataclass
class ZooRow:
    """What the zoo reports for one model.

    ``output``/``module`` name the final feature map (node and module); ``n``, ``rf``, ``jump``,
    ``start``, ``padding`` and ``is_global`` are its per-axis numbers; ``global_from`` the global
    op that made it global and ``global_why`` that node's note (why it is global);
    ``out_global_from`` the one that made the model's output global;
    ``stages`` holds ``(module, rf, jump, is_global, global_from)`` for every top-level module
    (``is_global`` without ``global_from``: the RF covers the input); ``feature_stages`` holds
    ``(module, reduction, rf, jump, start, is_global, global_from)`` for every stage of a timm
    model's ``feature_info`` (empty for other models). Times in
    seconds (``cpu_s``: the process' CPU time for the whole row, which is less than the phases' sum
    when the machine is shared); ``peak_rss_mb`` is the process' peak resident memory while the model
    was handled.
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
    global_why: str = ""
    out_global_from: str = ""
    nodes: int = 0
    misaligned: int = 0
    misaligned_nodes: list = field(default_factory=list)
    stages: list = field(default_factory=list)
    feature_stages: list = field(default_factory=list)
    global_ops: dict = field(default_factory=dict)
    build_s: float = 0.0
    trace_s: float = 0.0
    analyze_s: float = 0.0
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0
    verify: dict = field(default_factory=dict)


def _module_names(G, among=None):
    """``{node: module}`` for nodes that are some module's output (of the modules ``among``, when
    given); the shortest module name wins (``layer4`` rather than ``layer4.1`` or
    ``layer4.1.relu``)."""
    best = {}
    for m, v in schema.module_outputs(G).items():
        if not m or among is not None and m not in among:
            continue
        if v not in best or (m.count("."), len(m)) < (best[v].count("."), len(best[v])):
            best[v] = m
    return best


def _spatial_outputs(analysis, G):
    """Module outputs that torch reports as spatial maps with more than one feature per axis, in
    topological order: ``[(node, module)]``. Where the front-end recorded which module outputs
    are maps (``module_layouts``), only those: a module whose output holds the same positions in
    windows (timm Swin's attention, ``(N * windows, 49, C)``) has its node's shape but no map."""
    shapes = schema.shapes(G)
    layouts = schema.module_layouts(G)
    mods = _module_names(G, among=layouts or None)
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
    return (best or (schema.outputs(G) or analysis.sinks)[-1]), ""


def _first_global(rec):
    return str(next((g for g in rec.global_from if g is not None), "") or "")


def summarize(entry: ZooModel, model=None, *, all_records=False) -> ZooRow:
    """Build, trace and analyse one zoo model; never raises (errors go into the row).

    ``analyze_s`` is everything after the trace: the propagation and the records the row reads
    (the final map, the outputs, the top-level modules and ``feature_info`` stages, the joins;
    ``is_global`` is computed on first access from exact per-feature pixel sets). With
    ``all_records`` every node's record is made too, as a user reading the whole table would.
    The phases' times are kept when a model fails (up to the phase that failed).
    """
    from .. import analyze
    from ..frontends.torch import from_torch

    row = ZooRow(entry.label, entry.family, entry.input_shape, ok=False)
    t0 = time.perf_counter()
    try:
        model = build(entry) if model is None else model
        t1 = time.perf_counter()
        row.build_s = t1 - t0
        G = from_torch(model, entry.trace_shape())
        t2 = time.perf_counter()
        row.trace_s = t2 - t1
        a = analyze(G)
        if all_records:
            a.records()
        node, module = final_map(a, G)
        final = a[node]
        row.output, row.module = str(node), module
        row.n, row.rf, row.jump, row.start, row.padding = final.n, final.rf, final.jump, final.start, final.padding
        row.is_global = final.is_global
        row.global_from = _first_global(final)
        if row.global_from in G:
            attrs = G.nodes[row.global_from]
            row.global_why = str(attrs.get("note") or attrs.get("target") or attrs.get("op"))
        outs = schema.outputs(G) or a.sinks
        row.out_global_from = next((_first_global(a[o]) for o in outs if _first_global(a[o])), "")
        row.nodes = len(G)
        mis = a.misaligned()
        row.misaligned = len(mis)
        row.misaligned_nodes = [str(m.node) for m in mis]
        row.global_ops = dict(sorted(schema.global_ops(G).items()))
        for m in schema.module_outputs(G):
            if m and "." not in m:  # top-level modules
                rec = a.module(m)
                row.stages.append((m, rec.rf, rec.jump, any(rec.is_global), _first_global(rec)))
        row.feature_stages = _feature_stages(model, a, G)
        row.analyze_s = time.perf_counter() - t2
    except Exception as exc:  # one failing model must not stop the sweep
        row.error = _error(exc)
        row.stages = []
        row.feature_stages = []
        spent = time.perf_counter() - t0 - row.build_s - row.trace_s  # in the phase that failed
        if row.trace_s:
            row.analyze_s = spent
        elif row.build_s:
            row.trace_s = spent
        else:
            row.build_s = spent
        return row
    row.ok = True
    return row


def _feature_stages(model, analysis, G):
    """timm's ``feature_info`` stages (the maps a feature extractor returns), each with its RF."""
    info = getattr(model, "feature_info", None)
    if not isinstance(info, (list, tuple)):
        return []
    known = schema.module_outputs(G)
    out = []
    for d in info:
        if not isinstance(d, dict) or not isinstance(d.get("module"), str):
            continue
        name = next((m for m in (d["module"], d["module"].replace("_", ".")) if m in known), None)
        if name is None:
            continue
        rec = analysis.module(name)
        out.append((name, d.get("reduction"), rec.rf, rec.jump, rec.start, any(rec.is_global), _first_global(rec)))
    return out


def _error(exc):
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300]


# -- verification ------------------------------------------------------------------------------------


def _round_up(x, m):
    return -(-int(x) // m) * m


def _step(n):
    return 32 if n <= 1024 else 64


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
    ``threads``: intra-op threads while building and measuring (see
    :func:`rfgraph.tools.verify.compare`).
    """
    from .. import analyze
    from ..frontends.torch import from_torch

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
        from . import verify as V

        meta = build(entry)
        names = {n for n, _ in meta.named_modules()}
        params = V.count_params(meta)
        if params * 8 > max_param_bytes:
            out["reason"] = (f"{params / 1e6:.0f}M parameters: {params * 8 / 2**30:.1f} GB of float64 "
                             f"weights > {max_param_bytes / 2**30:.0f} GB")
            return out
        G0 = from_torch(meta, entry.trace_shape())
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
            size = "x".join(map(str, entry.input_shape[1:]))
            out["reason"] = f"too large at {size}: " + "; ".join(why)
            return out
        out["needed"] = need
        del meta
        shape = chosen
        out["input"] = list(shape)
        out["estimate"] = {"activation_gb": round(cost.activation_bytes / 2**30, 3),
                           "gflop": round(cost.flops / 1e9, 1),
                           "seconds": round(cost.seconds(nback, flops_per_s), 1)}
        with V.num_threads(threads):  # see verify.compare: one thread by default
            model = build(entry, make=V.positive_model)
            G = from_torch(model, shape)
            a = analyze(G)
            recs = {m: a.module(m) for _, m in checks}
            # channels-last maps (Swin's, MambaOut's stages) are read where the trace found them
            results = V.compare(model, shape, recs, threads=None, layouts=schema.module_layouts(G))
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


_check = verify  # model_row's own parameter is called verify


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
    """Give the previous model's freed float64 weights and activations back to the OS: glibc
    keeps freed heap for reuse (5.6 GB after 45 models of a --verify sweep, each needing under
    1 GB, without malloc_trim)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


def model_row(entry, verify=False, verify_opts=None) -> ZooRow:
    """The zoo's per-model function: :func:`summarize` (and :func:`verify`) one entry, with the
    peak RSS while it was handled. Every backend runs this one function: in this process, in the
    worker processes of :func:`run_isolated`, as Ray tasks (:func:`run_ray`). Never raises."""
    import warnings

    if verify:
        _release_memory()
    reset = _hwm_reset()
    cpu = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's init warnings would break the progress bar
        row = summarize(entry)
        if verify:
            row.verify = _check(entry, row, **(verify_opts or {}))
    row.cpu_s = round(time.process_time() - cpu, 3)
    row.peak_rss_mb = round(peak_rss_mb(since_reset=reset), 1)
    return row


_TUPLES = ("input_shape", "n", "rf", "jump", "start", "padding", "is_global")


def row_from_dict(d) -> ZooRow:
    """A :class:`ZooRow` from its ``dataclasses.asdict`` form or its JSON (lists back to tuples;
    keys this version does not know are dropped).

    >>> row_from_dict({"model": "m", "family": "timm", "input_shape": [3, 8, 8], "ok": True,
    ...                "rf": [3, 3], "stages": [["conv", [3, 3], [1, 1], False, ""]]}).rf
    (3, 3)
    """
    import dataclasses

    names = {f.name for f in dataclasses.fields(ZooRow)}
    d = {k: v for k, v in d.items() if k in names}
    for k in _TUPLES:
        if isinstance(d.get(k), list):
            d[k] = tuple(d[k])
    for k in ("stages", "feature_stages"):
        if k in d:
            d[k] = [tuple(tuple(x) if isinstance(x, list) else x for x in st) for st in d[k]]
    return ZooRow(**d)


def row_key(row_or_entry) -> tuple:
    """What identifies a row in a resumable sweep: family, model (label) and input shape."""
    r = row_or_entry
    name = r.label if isinstance(r, ZooModel) else r.model
    return (r.family, name, tuple(r.input_shape))


def _failed(entry, error):
    return ZooRow(entry.label, entry.family, entry.input_shape, ok=False, error=error)


def _packages(entries):
    """The packages a worker imports before its first model (so its first model's clock does
    not include them)."""
    mods = {"torchvision": "torchvision", "timm": "timm", "smp": "segmentation_models_pytorch",
            "hf": "transformers"}
    return tuple(sorted({mods[e.source] for e in entries if e.source in mods}))


def _preload(packages):
    """Import torch, rfgraph's front-end and engine and ``packages`` (a package that fails to
    import is left to the first model that needs it: its row gets the error)."""
    import importlib

    for name in ("torch", "rfgraph.frontends.torch", "rfgraph.engine", *packages):
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - reported by the model that needs it
            pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)  # meta tensors compute nothing; --verify runs one thread anyway


def run(entries, *, verify=False, jobs=1, timeout=None, backend="process", progress=None, on_row=None,
        verify_opts=None):
    """Summarise (and optionally verify) ``entries``; returns ``(rows, info)``, rows in the order
    of ``entries``.

    With ``jobs=1``, no ``timeout`` and the process backend, in this process (no isolation: a
    model that crashes the interpreter ends the sweep); otherwise in ``jobs`` isolated workers,
    where a crash or a model past ``timeout`` seconds (default 120, 600 with ``verify``) costs
    only its row: :func:`run_isolated` (``backend="process"``) or :func:`run_ray`
    (``backend="ray"``). ``progress(k, n, entry)`` is called before the first model and as each
    finishes (see :func:`progress_bar`), ``on_row(row)`` as each row is made (to save it).
    ``info`` has the wall time and, in this process, the peak RSS over the run (the largest
    of the per-model peaks and the start-up).
    """
    entries = list(entries)
    if backend not in ("process", "ray"):
        raise ValueError(f"unknown backend {backend!r}; choose process or ray")
    if jobs > 1 or timeout is not None or backend == "ray":
        timeout = timeout if timeout is not None else (600.0 if verify else 120.0)
        fn = run_ray if backend == "ray" else run_isolated
        return fn(entries, jobs=jobs, timeout=timeout, verify=verify, verify_opts=verify_opts, on_row=on_row,
                  progress=progress)
    t0 = time.perf_counter()
    peak = peak_rss_mb(since_reset=False)
    rows = []
    n = len(entries)
    for k, e in enumerate(entries):
        if progress:
            progress(k, n, e)
        rows.append(model_row(e, verify, verify_opts))
        if on_row:
            on_row(rows[-1])
        peak = max(peak, rows[-1].peak_rss_mb)
    if progress and n:
        progress(n, n, None)
    info = {"wall_s": round(time.perf_counter() - t0, 2), "jobs": 1, "backend": "in-process",
            "peak_rss_mb": round(max(peak, peak_rss_mb(since_reset=True)), 1)}
    return rows, info


def _worker(conn, packages):
    """A sweep worker: imports what the models need, says it is ready, then makes the row of
    each ``(entry, verify, verify_opts)`` it is sent, until it gets None."""
    import dataclasses

    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - a model's prints would break the progress bar
    _preload(packages)
    conn.send(("ready", os.getpid()))
    while True:
        job = conn.recv()
        if job is None:
            return
        entry, do_verify, verify_opts = job
        try:
            row = model_row(entry, do_verify, verify_opts)
        except BaseException as exc:  # noqa: BLE001 - anything a model does costs only its row
            row = _failed(entry, _error(exc))
        conn.send(dataclasses.asdict(row))


class _Pool:
    """The bookkeeping shared by :func:`run_isolated` and :func:`run_ray`: rows in the order of
    the entries, ``on_row`` and ``progress`` as each arrives."""

    def __init__(self, entries, on_row, progress):
        self.entries = entries
        self.rows = [None] * len(entries)
        self.todo = list(range(len(entries)))[::-1]
        self.done = 0
        self.on_row, self.progress = on_row, progress
        if progress and entries:
            progress(0, len(entries), entries[0])

    def finish(self, i, row):
        self.rows[i] = row
        self.done += 1
        if self.on_row:
            self.on_row(row)
        if self.progress:
            self.progress(self.done, len(self.entries), self.entries[i])


STARTUP_TIMEOUT = 300.0  # seconds for a worker to import torch and the model packages


def _context(packages):
    """Where workers come from: a fork server that imported torch, rfgraph and ``packages`` once
    (Linux, macOS), so every worker -- and every replacement after a crash or a timeout -- starts
    in milliseconds with them imported; else (Windows) fresh spawned interpreters that import
    them each. The parent itself is never forked (it may have threads: tqdm's monitor)."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    # read once, when the server starts (the first run in a process); later runs' workers import
    # what is missing themselves, still before their first model
    ctx.set_forkserver_preload(["torch", "rfgraph.frontends.torch", "rfgraph.engine", "rfgraph.tools.runner",
                                *packages])
    return ctx


def run_isolated(entries, *, jobs=2, timeout=120.0, verify=False, verify_opts=None, on_row=None, progress=None,
                 packages=None):
    """Summarise ``entries`` in ``jobs`` worker processes, each model on its own clock: a model that
    crashes its worker (segfault, out of memory, ``os._exit``) or runs longer than ``timeout``
    seconds costs only its row (the worker is replaced). Returns ``(rows, info)`` like :func:`run`;
    ``info["startup_s"]``: until the first workers were ready.

    Workers are forked from a server that imported torch, rfgraph and ``packages`` (default:
    those the entries' sources need, e.g. timm) once (:func:`_context`); each worker is ready
    before its first model and then handles model after model, so imports never count against a
    model's ``timeout``. A worker's stdout goes to ``os.devnull`` (a model's prints would break
    the progress bar).
    """
    from multiprocessing.connection import wait

    from ..errors import RFGraphError

    entries = list(entries)
    t0 = time.perf_counter()
    packages = _packages(entries) if packages is None else tuple(packages)
    ctx = _context(packages)
    pool = _Pool(entries, on_row, progress)
    starting, idle, busy = {}, [], {}  # conn -> proc / started; [(proc, conn)]; conn -> (proc, i, started)
    failed_starts = 0
    startup_s = None

    def spawn():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, packages), daemon=True)
        proc.start()
        child.close()
        starting[parent] = (proc, time.perf_counter())

    def replace(proc):
        proc.kill()
        proc.join(1)
        if pool.todo or busy:
            spawn()

    for _ in range(min(jobs, len(entries))):
        spawn()
    try:
        while pool.todo or busy:
            while pool.todo and idle:
                proc, conn = idle.pop()
                i = pool.todo.pop()
                conn.send((entries[i], verify, verify_opts))
                busy[conn] = (proc, i, time.perf_counter())
            now = time.perf_counter()
            deadlines = [st + timeout for _, _, st in busy.values()]
            deadlines += [st + STARTUP_TIMEOUT for _, st in starting.values()]
            ready = wait(list(busy) + list(starting), timeout=max(min(deadlines) - now, 0.05))
            for conn in ready:
                if conn in starting:
                    proc, _ = starting.pop(conn)
                    try:
                        conn.recv()
                        idle.append((proc, conn))
                        failed_starts = 0
                        if startup_s is None and not starting:
                            startup_s = time.perf_counter() - t0  # the first workers are all ready
                    except (EOFError, OSError):
                        failed_starts += 1
                        if failed_starts >= 3:
                            raise RFGraphError(f"the zoo's worker processes exit while starting (exit code "
                                               f"{proc.exitcode}); run with --jobs 1 to see why") from None
                        replace(proc)
                    continue
                proc, i, _ = busy.pop(conn)
                try:
                    pool.finish(i, row_from_dict(conn.recv()))
                    idle.append((proc, conn))
                except (EOFError, OSError):
                    proc.join(1)
                    pool.finish(i, _failed(entries[i], f"WorkerCrashed: the worker died (exit code {proc.exitcode})"))
                    replace(proc)
            now = time.perf_counter()
            for conn, (proc, i, st) in list(busy.items()):
                if now - st > timeout:
                    busy.pop(conn)
                    pool.finish(i, _failed(entries[i], f"Timeout: more than {timeout:g} s"))
                    replace(proc)
            for conn, (proc, st) in list(starting.items()):
                if now - st > STARTUP_TIMEOUT:
                    raise RFGraphError(f"a zoo worker process did not start in {STARTUP_TIMEOUT:g} s "
                                       f"(importing torch and {', '.join(packages) or 'rfgraph'})")
    finally:
        procs = [(p, c) for p, c in idle] + [(p, c) for c, (p, _, _) in busy.items()] + \
                [(p, c) for c, (p, _) in starting.items()]
        for proc, conn in procs:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
        for proc, _ in procs:
            proc.join(2)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
    info = {"wall_s": round(time.perf_counter() - t0, 2), "jobs": jobs, "backend": "process",
            "timeout_s": timeout, "startup_s": round(startup_s or 0.0, 2), "peak_rss_mb": None}
    return pool.rows, info


# -- Ray ----------------------------------------------------------------------------------------------


def _ray_row(entry, verify, verify_opts, packages):
    """Ray task: :func:`model_row` as a plain dict (the worker imports ``packages`` once)."""
    import dataclasses

    _preload(packages)  # a no-op once the worker has them
    try:
        row = model_row(entry, verify, verify_opts)
    except BaseException as exc:  # noqa: BLE001
        row = _failed(entry, _error(exc))
    return dataclasses.asdict(row)


def _ray_warm(packages):
    """Ray task: import what the models need (a fresh worker's first task)."""
    t = time.perf_counter()
    _preload(packages)
    return os.getpid(), round(time.perf_counter() - t, 2)


def _ray():
    try:
        import ray
    except ImportError:
        from ..errors import MissingDependencyError

        raise MissingDependencyError("the ray backend needs ray: pip install 'rfgraph[ray]'") from None
    return ray


def run_ray(entries, *, jobs=2, timeout=120.0, verify=False, verify_opts=None, on_row=None, progress=None,
            packages=None):
    """:func:`run_isolated` on Ray: each model is a Ray task running :func:`model_row`, with the
    same rows, ``timeout`` and crash handling (a task past its timeout is cancelled with its
    worker killed; a crashed worker costs its row, tasks are never retried).

    Uses the running Ray instance, or starts one with ``ray.init(num_cpus=jobs)`` (a cluster:
    ``RAY_ADDRESS``, which ``ray.init`` reads). At most ``jobs`` tasks are in flight, so a task's
    clock starts when it can run; the workers first run a warm-up task that imports torch and
    the model packages (also after a worker is killed), so imports never count against a model.
    Needs the ``ray`` extra (``pip install 'rfgraph[ray]'``).
    """
    ray = _ray()
    entries = list(entries)
    t0 = time.perf_counter()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 configure_logging=False)
    packages = _packages(entries) if packages is None else tuple(packages)
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_row)
    warm = ray.remote(num_cpus=1, max_retries=0)(_ray_warm)
    pool = _Pool(entries, on_row, progress)
    slots = min(jobs, len(entries))
    warming = {warm.remote(packages) for _ in range(slots)}
    busy = {}  # ref -> (index, started)
    try:
        while pool.todo or busy or warming:
            while pool.todo and len(busy) + len(warming) < slots:
                i = pool.todo.pop()
                busy[task.remote(entries[i], verify, verify_opts, packages)] = (i, time.perf_counter())
            now = time.perf_counter()
            left = min([st + timeout - now for _, st in busy.values()] + [STARTUP_TIMEOUT])
            ready, _ = ray.wait(list(busy) + list(warming), num_returns=1, timeout=max(left, 0.05))
            for ref in ready:
                if ref in warming:
                    warming.discard(ref)
                    try:
                        ray.get(ref)
                    except Exception:  # noqa: BLE001 - a model task reports the real error
                        pass
                    continue
                i, _ = busy.pop(ref)
                try:
                    row = row_from_dict(ray.get(ref))
                except Exception as exc:  # noqa: BLE001 - the worker died (WorkerCrashedError, ...)
                    row = _failed(entries[i], f"WorkerCrashed: {type(exc).__name__}")
                    warming.add(warm.remote(packages))
                pool.finish(i, row)
            now = time.perf_counter()
            for ref, (i, st) in list(busy.items()):
                if now - st > timeout:
                    busy.pop(ref)
                    ray.cancel(ref, force=True)  # kills the worker; Ray starts a fresh one
                    pool.finish(i, _failed(entries[i], f"Timeout: more than {timeout:g} s"))
                    if pool.todo:
                        warming.add(warm.remote(packages))
    finally:
        for ref in busy:
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
    info = {"wall_s": round(time.perf_counter() - t0, 2), "jobs": jobs, "backend": "ray",
            "timeout_s": timeout, "peak_rss_mb": None}
    return pool.rows, info


# -- a resumable sweep ----------------------------------------------------------------------------------


def read_rows(path) -> list:
    """The rows saved in a sweep's JSON-lines file (a truncated last line, from a sweep that was
    killed while writing it, is skipped)."""
    import json

    rows = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rows.append(row_from_dict(json.loads(line)))
            except (ValueError, TypeError):
                continue
    return rows


def sweep(entries, *, resume=None, progress=None, **options):
    """:func:`run` that can be interrupted and resumed: with ``resume`` (a ``.jsonl`` path) each
    row is appended to it as it arrives, and the entries whose rows it already holds (same
    family, model and input shape: :func:`row_key`; with ``verify``, rows that were verified) are
    not run again. Returns ``(rows, info)``
    with every entry's row in the order of ``entries``; ``info["resumed"]`` counts the rows read
    back. ``options`` go to :func:`run` (``jobs``, ``timeout``, ``backend``, ``verify``, ...).
    """
    import dataclasses
    import json

    entries = list(entries)
    done = {}
    if resume is not None and os.path.exists(resume):
        # a row made without the check is not done for a sweep with it
        done = {row_key(r): r for r in read_rows(resume) if r.verify or not options.get("verify")}
    todo = [e for e in entries if row_key(e) not in done]
    out = None
    if resume is not None:
        os.makedirs(os.path.dirname(os.path.abspath(resume)), exist_ok=True)
        out = open(resume, "a")  # noqa: SIM115 - closed below

    def save(row):
        out.write(json.dumps(dataclasses.asdict(row), default=list) + "\n")
        out.flush()

    try:
        rows, info = run(todo, progress=progress, on_row=save if out else None, **options)
    finally:
        if out:
            out.close()
    new = {row_key(e): r for e, r in zip(todo, rows)}
    info["resumed"] = sum(1 for e in entries if row_key(e) in done)
    return [done.get(row_key(e)) or new[row_key(e)] for e in entries], info


@contextlib.contextmanager
def progress_bar(total, *, enabled=None, file=None):
    """A tqdm bar for :func:`run`'s ``progress(k, n, entry)``: yields the callback, or None.

    Parameters
    ----------
    total : int
        Number of models.
    enabled : bool or None
        None: only when ``file`` is a terminal; True: always (an :class:`ImportError` saying how
        to install tqdm if it is missing); False: never.
    file : file-like, optional
        Where the bar goes (default ``sys.stderr``).
    """
    file = sys.stderr if file is None else file
    if enabled is None:
        enabled = bool(getattr(file, "isatty", lambda: False)())
        if enabled:
            try:
                import tqdm  # noqa: F401
            except ImportError:  # a nicety on a terminal, not worth failing for
                enabled = False
    if not enabled:
        yield None
        return
    try:
        from tqdm import tqdm
    except ImportError:
        raise ImportError("the progress bar needs tqdm: pip install 'rfgraph[zoo]'") from None
    with tqdm(total=total, file=file, unit="model", dynamic_ncols=True, leave=False) as bar:
        def progress(k, n, entry):
            bar.update(k - bar.n)
            bar.set_description_str(entry.label if entry is not None else "done")

        yield progress


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
    for name in ("timm", "segmentation_models_pytorch", "ray"):  # the ones this run imported
        if name in sys.modules:
            info[name] = getattr(sys.modules[name], "__version__", "?")
    return info
