"""The ONNX front-end against the torch front-end on the same torchvision models.

For each model: export once with torch.onnx.export (TorchScript exporter, opset 13, random
weights, CPU; not timed), then time reading the file into our graph (``from_onnx``: parse, shape
inference, folding, translation) and the analysis, against tracing the same model on the meta
device (``from_torch``) and its analysis. Best of 3 runs each. Writes benchmarks/results/onnx.md.

    .venv/bin/python benchmarks/onnx_frontend.py [model ...]
"""

from __future__ import annotations

import io
import platform
import sys
import time
import warnings
from pathlib import Path

import torch  # noqa: E402
import torchvision  # noqa: E402

import rfgraph  # noqa: E402
from rfgraph.render.stages import stages  # noqa: E402

MODELS = ["resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "densenet121", "googlenet",
          "inception_v3", "convnext_tiny", "regnet_y_400mf", "squeezenet1_0"]
SIZE = 224
OUT = Path(__file__).parent / "results" / "onnx.md"


def best(fn, runs=3):
    times, value = [], None
    for _ in range(runs):
        t = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t)
    return min(times), value


def row(name):
    kw = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, **kw).eval()
    size = 299 if name == "inception_v3" else SIZE
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), buf, dynamo=False, opset_version=13)
    data = buf.getvalue()
    t_oi, G1 = best(lambda: rfgraph.from_onnx(data))
    t_oa, a1 = best(lambda: rfgraph.analyze(G1))
    t_ti, G2 = best(lambda: rfgraph.from_torch(model, (3, size, size)))
    t_ta, a2 = best(lambda: rfgraph.analyze(G2))
    same = all((a1.module(s).rf, a1.module(s).jump, a1.module(s).start) == (a2.module(s).rf, a2.module(s).jump,
                                                                           a2.module(s).start)
               for s in stages(a2) if s in G1.graph["module_outputs"])
    return (name, size, len(data) / 1e6, len(G1), t_oi, t_oa, len(G2), t_ti, t_ta, same)


def main(argv):
    names = argv or MODELS
    torch.set_num_threads(1)
    rows = []
    for n in names:
        r = row(n)
        rows.append(r)
        print(f"{r[0]:16s} onnx import {r[4]:.3f}s analyze {r[5]:.3f}s | torch trace {r[7]:.3f}s "
              f"analyze {r[8]:.3f}s | stages identical: {r[9]}", flush=True)
    lines = ["# ONNX front-end vs torch front-end", "",
             "`.venv/bin/python benchmarks/onnx_frontend.py` on " + f"{platform.machine()}, Python {platform.python_version()}, "
             f"torch {torch.__version__}, onnx {__import__('onnx').__version__}, 1 thread, a 2-core machine shared "
             "with other jobs; best of 3 (the torch tracer's meta-kernel cache is warm after the first run). *import* = `from_onnx` on the serialized model (parse, shape inference "
             "with data propagation, constant folding, translation); *trace* = `from_torch` on the meta device. "
             "Export (torch.onnx.export, opset 13, not timed) happens once per model.", "",
             "| model | input | ONNX MB | ONNX nodes | ONNX import s | ONNX analyze s | torch nodes | torch trace s "
             "| torch analyze s | stages identical |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]} | {r[4]:.3f} | {r[5]:.3f} | {r[6]} | {r[7]:.3f} | "
                     f"{r[8]:.3f} | {'yes' if r[9] else 'NO'} |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main(sys.argv[1:])
