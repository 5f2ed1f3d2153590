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

__all__ = ["ZooRow", "summarize", "final_map", "verify", "run", "run_isolated", "progress_bar", "peak_rss_mb", "machine"]

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
    peak_rss_mb: float = 0.0
    verify: dict = field(default_factory=dict)


def _module_names(G):
    """``{node: module}`` for nodes that are some module's output; the shortest module name wins
    (``layer4`` rather than ``layer4.1`` or ``layer4.1.relu``)."""
    best = {}
    for m, v in schema.module_outputs(G).items():
        if not m:
            continue
        if v not in best or (m.count("."), len(m)) < (best[v].count("."), len(best[v])):
            best[v] = m
    return best


def _spatial_outputs(analysis, G):
    """Module outputs that torch reports as spatial maps with more than one feature per axis, in
    topological order: ``[(node, module)]``."""
    shapes = schema.shapes(G)
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
    return (best or (schema.outputs(G) or analysis.sinks)[-1]), ""


def _first_global(rec):
    return str(next((g for g in rec.global_from if g is not None), "") or "")


def summarize(entry: ZooModel, model=None) -> ZooRow:
    """Build, trace and analyse one zoo model; never raises (errors go into the row).

    ``analyze_s`` is everything after the trace: the propagation, every node's record, and the
    row's own queries (``is_global`` is computed on first access from exact per-feature pixel sets).
    """
    from .. import analyze
    from ..frontends.torch import from_torch

    row = ZooRow(entry.label, entry.family, entry.input_shape, ok=False)
    try:
        t0 = time.perf_counter()
        model = build(entry) if model is None else model
        t1 = time.perf_counter()
        G = from_torch(model, entry.trace_shape())
        t2 = time.perf_counter()
        a = analyze(G)
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
        t3 = time.perf_counter()
    except Exception as exc:  # one failing model must not stop the sweep
        row.error = _error(exc)
        row.stages = []
        return row
    row.ok = True
    row.build_s, row.trace_s, row.analyze_s = t1 - t0, t2 - t1, t3 - t2
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


def _one(entry, do_verify=False, verify_opts=None):
    """One model, in this process or a worker: row with its own peak RSS."""
    import warnings

    if do_verify:
        _release_memory()
    reset = _hwm_reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's init warnings would break the progress bar
        row = summarize(entry)
        if do_verify:
            row.verify = verify(entry, row, **(verify_opts or {}))
    row.peak_rss_mb = round(peak_rss_mb(since_reset=reset), 1)
    return row


def run(entries, *, verify=False, jobs=1, progress=None, verify_opts=None):
    """Summarise (and optionally verify) ``entries``; returns ``(rows, info)``.

    ``progress(k, n, entry)`` is called before each model (``k`` done so far; see
    :func:`progress_bar`). ``jobs > 1`` uses a pool of spawned processes (each imports torch
    first). ``info`` has the wall time and the peak RSS over the run (the largest of the per-model
    peaks and the start-up).
    """
    t0 = time.perf_counter()
    peak = peak_rss_mb(since_reset=False)
    rows = []
    n = len(entries)
    if jobs <= 1:
        for k, e in enumerate(entries):
            if progress:
                progress(k, n, e)
            rows.append(_one(e, verify, verify_opts))
            peak = max(peak, rows[-1].peak_rss_mb)
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


def _worker(conn):
    """A sweep worker: rows for the entries it is sent, until it gets None."""
    import dataclasses

    while True:
        entry = conn.recv()
        if entry is None:
            return
        try:
            row = _one(entry)
        except BaseException as exc:  # noqa: BLE001 - anything a model does costs only its row
            row = ZooRow(entry.label, entry.family, entry.input_shape, ok=False, error=_error(exc))
        conn.send(dataclasses.asdict(row))


def run_isolated(entries, *, jobs=2, timeout=120.0, on_row=None, progress=None):
    """Summarise ``entries`` in ``jobs`` worker processes, each model on its own clock: a model that
    crashes its worker (segfault, out of memory) or runs longer than ``timeout`` seconds costs only
    its row (the worker is replaced). Returns ``(rows, info)`` like :func:`run`, rows in the order
    of ``entries``; ``on_row(row)`` is called as each row arrives (to save progress for a resumable
    sweep), ``progress(k, n, entry)`` as in :func:`run`.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")
    todo = list(enumerate(entries))[::-1]
    n = len(todo)
    rows = [None] * n
    busy = {}  # conn -> (proc, index, started)
    idle = []
    finished = 0

    def spawn():
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        proc.start()
        child.close()
        return proc, parent

    def finish(i, row):
        nonlocal finished
        rows[i] = row
        finished += 1
        if on_row:
            on_row(row)
        if progress:
            progress(finished, n, entries[i])

    workers = [spawn() for _ in range(min(jobs, n))]
    idle = list(workers)
    if progress and n:
        progress(0, n, entries[0])
    try:
        while todo or busy:
            while todo and idle:
                proc, conn = idle.pop()
                i, entry = todo.pop()
                conn.send(entry)
                busy[conn] = (proc, i, time.perf_counter())
            now = time.perf_counter()
            left = min(timeout - (now - st) for _, _, st in busy.values())
            ready = wait(list(busy), timeout=max(left, 0.05))
            for conn in ready:
                proc, i, _ = busy.pop(conn)
                try:
                    finish(i, ZooRow(**conn.recv()))
                    idle.append((proc, conn))
                except (EOFError, OSError):
                    proc.join(1)
                    e = entries[i]
                    finish(i, ZooRow(e.label, e.family, e.input_shape, ok=False,
                                     error=f"WorkerCrashed: the worker died (exit code {proc.exitcode})"))
                    idle.append(spawn())
            now = time.perf_counter()
            for conn, (proc, i, st) in list(busy.items()):
                if now - st > timeout:
                    busy.pop(conn)
                    proc.kill()
                    proc.join(1)
                    e = entries[i]
                    finish(i, ZooRow(e.label, e.family, e.input_shape, ok=False,
                                     error=f"Timeout: more than {timeout:g} s"))
                    idle.append(spawn())
    finally:
        for proc, conn in idle + [(p, c) for c, (p, _, _) in busy.items()]:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            proc.join(2)
            if proc.is_alive():
                proc.kill()
    info = {"wall_s": round(time.perf_counter() - t0, 2), "jobs": jobs, "timeout_s": timeout, "peak_rss_mb": None}
    return rows, info


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
    return info
