"""Why rfgraph traces with a TorchDispatchMode: trace time of three ways to get the ops.

For a few torchvision models (weights=None, meta device), time
- rfgraph.from_torch (a TorchDispatchMode over one eager forward on meta tensors),
- torch.fx.symbolic_trace (Python-level symbolic tracing; fails on data-dependent control flow),
- torch.export.export (full graph capture with fake tensors).
Writes benchmarks/results/tracers.md. Run: ``python benchmarks/tracers.py``.
"""

import platform
import time
import warnings
from pathlib import Path

import torch
import torchvision

import rfgraph

MODELS = ["resnet50", "densenet121", "efficientnet_b0", "inception_v3", "swin_t", "raft_small"]


def timed(fn):
    t = time.perf_counter()
    try:
        fn()
        return time.perf_counter() - t, ""
    except Exception as exc:  # a tracer that cannot handle the model: report it
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''}"


def main():
    warnings.filterwarnings("ignore")
    rows = []
    for name in MODELS:
        with torch.device("meta"):
            m = torchvision.models.get_model(name, weights=None)
        m.eval()
        size = 299 if name.startswith("inception") else 224
        shape = (1, 3, size, size)
        x = torch.empty(shape, device="meta")
        args = (x, x) if name.startswith("raft") else (x,)
        shapes = [shape, shape] if name.startswith("raft") else shape
        ours, err0 = timed(lambda: rfgraph.from_torch(m, shapes))
        fx, err1 = timed(lambda: torch.fx.symbolic_trace(m))
        ex, err2 = timed(lambda: torch.export.export(m, args))
        rows.append((name, ours, err0, fx, err1, ex, err2))
        print(rows[-1], flush=True)

    def cell(t, err):
        return f"{t:.2f} s" if t is not None else f"fails ({err})"

    lines = [
        "# Trace time: dispatch mode vs torch.fx vs torch.export",
        "",
        f"Machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}. Command: `python benchmarks/tracers.py`. Meta device, weights=None, "
        "one run each (first call, as a user sees it).",
        "",
        "| model | rfgraph.from_torch (dispatch mode) | torch.fx.symbolic_trace | torch.export.export |",
        "| --- | --- | --- | --- |",
    ]
    for name, ours, e0, fx, e1, ex, e2 in rows:
        lines.append(f"| {name} | {cell(ours, e0)} | {cell(fx, e1)} | {cell(ex, e2)} |")
    out = Path(__file__).parent / "results" / "tracers.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
