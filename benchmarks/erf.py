"""rfgraph.erf on torchvision's ResNet-50 at 1024x1024 (RepLKNet's setting): time and peak memory
on this CPU. Writes benchmarks/results/erf.md.

    .venv/bin/python benchmarks/erf.py [--samples 8] [--batch 2] [--threads 2] [--openerf-only]

Then openerf 0.6.1 side by side (needs `pip install openerf` and timm): the same timm model with
random weights, the same tensors, rfgraph's recipe="openerf" at openerf's unit; the max abs
difference of the two maps and the time of each. --openerf-only reruns that section alone and keeps
the ResNet-50 section of the results file as it is.

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
REPEATS = 3

def openerf_side_by_side(name="resnet18", n_images=8, seed=0):
    """openerf 0.6.1 and rfgraph (recipe="openerf") on one timm model (random weights, seeded,
    pretrained=False: nothing is downloaded) and the same tensors; returns the section's lines."""
    import tempfile

    import numpy as np
    import openerf
    import timm
    from openerf.data import build_timm_eval_transform
    from openerf.erf import compute_erf
    from PIL import Image

    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False).eval()
    transform, cfg = build_timm_eval_transform(model)  # openerf's own transform (timm's eval one)
    shape = tuple(cfg["input_size"])
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n_images):
            f = Path(tmp) / f"img{i:02d}.png"
            Image.fromarray(rng.integers(0, 256, (300, 340, 3), dtype=np.uint8)).save(f)
            files.append(f)
        xs = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
        with torch.no_grad():
            model(xs)  # warm-up, so neither timing below pays the first call
        seen = []  # the tensors openerf feeds the model, caught at its first layer
        hook = model.conv1.register_forward_pre_hook(lambda _m, a: seen.append(a[0].detach().clone()))
        ours = compute_erf(model, image_dir=tmp, device="cpu", show_progress=False)
        hook.remove()
        fmap = model.forward_features(xs[:1])
        grid = tuple(fmap.shape[2:])
        unit = tuple(n // 2 for n in grid)  # openerf's centre_activation for a CNN's 4-D features
        t = time.perf_counter()
        a = rfgraph.analyze(model, shape)
        t_trf = time.perf_counter() - t
        # the cores are shared: REPEATS interleaved rounds, the fastest of each kept
        t_openerf = t_rfgraph = t_rfgraph_b = float("inf")
        for _ in range(REPEATS):
            t = time.perf_counter()
            compute_erf(model, image_dir=tmp, device="cpu", show_progress=False)
            t_openerf = min(t_openerf, time.perf_counter() - t)
            t = time.perf_counter()
            e = rfgraph.erf(model, shape, at="layer4", recipe="openerf", inputs=xs, unit=unit,
                            samples=n_images, batch=1, analysis=a)
            t_rfgraph = min(t_rfgraph, time.perf_counter() - t)
            t = time.perf_counter()
            e8 = rfgraph.erf(model, shape, at="layer4", recipe="openerf", inputs=xs, unit=unit,
                             samples=n_images, batch=n_images, analysis=a)
            t_rfgraph_b = min(t_rfgraph_b, time.perf_counter() - t)
    input_diff = float((torch.cat(seen) - xs).abs().max())
    default = rfgraph.erf(model, shape, at="layer4", recipe="openerf", inputs=xs, samples=n_images,
                          batch=n_images, analysis=a)
    diff = float(np.abs(ours.erf_map - e.map).max())
    diff8 = float(np.abs(ours.erf_map - e8.map).max())
    rel = diff / float(ours.erf_map.max())
    same = default.unit == unit
    return [
        "## openerf, side by side",
        "",
        f"openerf {openerf.__version__} (`pip install openerf`; a benchmark-only dependency, not in the `erf` "
        f"extra) and `rfgraph.erf(..., recipe=\"openerf\")` on timm {timm.__version__} `{name}` built with "
        f"`pretrained=False` under `torch.manual_seed({seed})` (nothing is downloaded), float32, on the "
        f"same {n_images} seeded random 340x300 PNGs: openerf reads them through its own transform "
        f"(`openerf.data.build_timm_eval_transform`: timm's eval transform for this model, {cfg['interpolation']} "
        f"resize, centre crop {shape[1]}x{shape[2]}, crop_pct {cfg['crop_pct']}, ImageNet mean/std), and rfgraph "
        f"gets the tensors of that same transform (`inputs=`). The tensors openerf fed the model (caught "
        f"at `conv1`) differ from rfgraph's by at most {input_diff:.1e}.",
        "",
        f"Target: `forward_features` (= `layer4`, a {grid[0]}x{grid[1]} map); unit {unit}, openerf's index "
        f"centre `n//2` (on a CNN's 4-D features; its upper-left-of-the-central-2x2 token rule is only for "
        f"ViT-like models), passed to rfgraph as `unit=`. rfgraph's own choice, the unit whose TRF centre is "
        f"nearest the input centre, is {default.unit} (TRF centre {default.trf_centre} px, input centre "
        f"{tuple(n / 2 for n in shape[1:])}): " + ("the same unit here." if same else "a different unit."),
        "",
        f"Times: the fastest of {REPEATS} interleaved rounds (openerf, rfgraph batch 1, rfgraph batch {n_images}) in "
        "one process, after a warm-up forward pass.",
        "",
        "| | time (s) | max abs difference from openerf's map | relative to the map's max |",
        "|---|---|---|---|",
        f"| openerf `compute_erf` (batch 1, fixed) | {t_openerf:.2f} | | |",
        f"| rfgraph `erf` batch 1 | {t_rfgraph:.2f} | {diff:.2e} | {rel:.1e} |",
        f"| rfgraph `erf` batch {n_images} | {t_rfgraph_b:.2f} | {diff8:.2e} | "
        f"{diff8 / float(ours.erf_map.max()):.1e} |",
        "",
        f"rfgraph's times leave out its TRF analysis of the model, {t_trf:.2f} s once (`rfgraph.analyze`, "
        "passed as `analysis=`). "
        f"Map max {float(ours.erf_map.max()):.3e} (sum 1 over {shape[1]}x{shape[2]}); openerf accumulates in "
        "float32 image by image; rfgraph sums a batch in float32 and accumulates the batches in float64, "
        "which is the difference left at batch 1. Both maps sit inside the unit's TRF "
        f"(rfgraph: {e.mass_outside_trf():.1e} of the mass outside).",
    ]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--openerf-only", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = ROOT / "benchmarks" / "results" / "erf.md"
    side = openerf_side_by_side() + [
        "", f"`{' '.join(['.venv/bin/python', 'benchmarks/erf.py'] + sys.argv[1:])}`, {torch.get_num_threads()} "
        "torch threads, one process.", ""]
    if args.openerf_only:
        head = out.read_text().split("## openerf")[0].rstrip("\n").splitlines()
        lines = head + [""] + side
        out.write_text("\n".join(lines))
        print("\n".join(side))
        return
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
    lines += ["", f"Peak resident memory of the process: {peak / 1024:.2f} GiB (the openerf section below "
              "ran first in the same process).", ""] + side
    out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
