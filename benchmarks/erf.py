"""rfgraph.erf on torchvision's ResNet-50 at 1024x1024 (RepLKNet's setting): time and peak memory
on this CPU. Writes benchmarks/results/erf.md.

    .venv/bin/python benchmarks/erf.py [--samples 8] [--batch 2] [--threads 2]

Weights: torchvision's own initialisation under torch.manual_seed(0) (nothing is downloaded);
inputs: seeded standard-normal samples; recipe: RepLKNet's (the setting its paper reports).
Peak memory is the process's maximum resident set size (getrusage), model build included.
"""

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import torch
import torchvision

import rfgraph

ROOT = Path(__file__).resolve().parents[1]

OPENERF = """## openerf

`pip install openerf` installs 0.6.1 here. Its `openerf.erf.compute_erf(model, image_dir=...)` takes
a model object, so it can run on a timm model built with `pretrained=False` without downloading
(its CLI always calls `timm.create_model(name, pretrained=True)`, which downloads: not used). It reads
an image directory through timm's eval transform (resize + centre crop to 224 for resnet50), takes the
*mean* over channels at the index centre `H//2, W//2` of `forward_features` and clamps the mean
gradient over RGB at 0 -- a third recipe, neither Luo's nor RepLKNet's. The side-by-side with the
same map and both timings in one run is **not done yet**: it needs that recipe (or a shared one) and
the same pre-transformed inputs fed to both."""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=1024)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    shape = (3, args.size, args.size)
    t = time.perf_counter()
    a = rfgraph.analyze(model, shape)
    t_trf = time.perf_counter() - t
    rows = []
    for recipe in ("replknet", "luo"):
        t = time.perf_counter()
        e = rfgraph.erf(model, shape, at="layer4", recipe=recipe, samples=args.samples, batch=args.batch,
                        analysis=a)
        rows.append((recipe, time.perf_counter() - t, e))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    lines = [
        "# rfgraph.erf: ResNet-50 at 1024x1024 on this CPU",
        "",
        f"`{' '.join(['.venv/bin/python', 'benchmarks/erf.py'] + sys.argv[1:])}`: {args.samples} seeded random "
        f"samples, batch {args.batch}, {args.threads} torch threads, float32, torchvision's own init "
        f"(seed 0); torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads. TRF analysis of the whole graph: {t_trf:.2f} s.",
        "",
        "| recipe | unit | TRF (px, clipped) | σ (px) | area 0.2 / 0.5 / 0.99 (side px, % of input) | time (s) | s/sample |",
        "|---|---|---|---|---|---|---|",
    ]
    for recipe, sec, e in rows:
        ar = " / ".join(f"{e.area_ratio[t].side} ({100 * e.area_ratio[t].of_input:.2g}%)" for t in (0.2, 0.5, 0.99))
        trf = "x".join(str(hi - lo + 1) for lo, hi in e.trf_bounds)
        lines.append(f"| {recipe} | {e.unit} | {trf} | {e.sigma[0]:.1f}, {e.sigma[1]:.1f} | {ar} | {sec:.1f} | "
                     f"{sec / args.samples:.2f} |")
    lines += ["", f"Peak resident memory of the process: {peak / 1024:.2f} GiB.", "", OPENERF, ""]
    out = ROOT / "benchmarks" / "results" / "erf.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
