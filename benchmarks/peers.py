"""rfgraph side by side with its peers, on the same models and input size, in one run.

For every model, at the final feature map (the output of the last module that is still a spatial
map, e.g. ResNet's layer4; see :mod:`rfgraph.tools.runner`):

* **rfgraph**: trace on the meta device + ``analyze``;
* **torchscan** (``pip install torchscan``): ``crawl_module`` on the same meta model. Its
  "Receptive field" column (0.2.x) is each module's own window (kernel), not a cumulative RF;
  torchscan 0.1.x displayed a cumulative RF computed by the chain rule over every layer in call
  order (``rf += s * (k - 1); p += s * pad; s *= stride``), which this script reproduces from the
  0.2.x per-layer values (checked against torchscan 0.1.2 on alexnet, resnet18, googlenet and
  mobilenet_v2: identical);
* **gradient support** (:mod:`rfgraph.tools.verify`): the model built for real in float64 with positive
  weights; timed at the same input size (one forward, two input-gradient passes), and used as the
  ground truth at an input large enough for the RF to stay clear of the border when memory allows.

    python benchmarks/peers.py                      # the default models at 224
    python benchmarks/peers.py --models resnet18,resnet50 --input-size 224

Writes ``benchmarks/results/peers.md`` and ``peers.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("alexnet", "vgg16", "resnet18", "resnet50", "googlenet", "densenet121", "mobilenet_v2", "efficientnet_b0")


def _best(fn, repeat):
    """(result, best wall time of ``repeat`` runs)."""
    best, out = None, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return out, best


def _inside(path, module):
    return path == module or path.startswith(module + ".")


def torchscan_numbers(report, module):
    """From a torchscan report: the "Receptive field" column of the last layer inside ``module``
    and the cumulative chain-rule ``(rf, stride, padding)`` up to that layer (torchscan 0.1.x)."""
    rf, s, p = 1.0, 1.0, 0.0
    column, chain, last = None, None, None
    for layer in report["layers"]:
        m = layer["metrics"]
        r = m.get("receptive_field")
        if r is not None and r.get("status") == "complete":
            k, st, pd = r["value"], m["effective_stride"]["value"], m["effective_padding"]["value"]
        else:  # containers: 0.1.x gave them rf 1, stride 1, padding 0
            k, st, pd = 1.0, 1.0, 0.0
        rf += s * (k - 1)
        p += s * pd
        s *= st
        if _inside(layer["path"], module):
            chain = (rf, s, p)
            if r is not None:
                column, last = r.get("value"), layer["path"]
    return column, last, chain


def _num(x):
    return int(x) if isinstance(x, float) and x.is_integer() else x


def chain_bounds(chain, i, size):
    """Feature ``i``'s clipped RF bounds implied by chain-rule numbers (first pixel at ``-p``)."""
    rf, s, p = chain
    lo = i * s - p
    hi = lo + rf - 1
    return (int(max(lo, 0)), int(min(hi, size - 1)))


def run_model(name, input_size, repeat, max_seconds):
    import torch
    from torchscan import crawl_module

    from rfgraph import analyze
    from rfgraph.frontends.torch import from_torch
    from rfgraph.tools import runner
    from rfgraph.tools import verify as V
    from rfgraph.tools.catalogue import build, list_zoo

    [entry] = list_zoo("classification", name, input_size)
    shape = entry.input_shape
    row = {"model": name, "input": list(shape)}
    meta = build(entry)

    # rfgraph
    def rfgraph_once():
        G = from_torch(meta, shape)
        a = analyze(G)
        node, module = runner.final_map(a, G)
        a[node].is_global  # part of the answer (computed on first access)
        return a, G, node, module

    (a, G, node, module), t_rf = _best(rfgraph_once, repeat)
    rec = a[node]
    glob = next((g for g in rec.global_from if g is not None), None)
    row.update(module=module, rfgraph={"rf": rec.rf[0], "jump": rec.jump[0], "start": rec.start[0],
                                       "is_global": all(rec.is_global), "global_from": glob,
                                       "seconds": round(t_rf, 4)})

    # torchscan, on the same meta model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report, t_ts = _best(lambda: crawl_module(meta, shape, device="meta"), repeat)
    column, last, chain = torchscan_numbers(report, module)
    row["torchscan"] = {"column": _num(column), "column_layer": last, "chain_rf": _num(chain[0]),
                        "chain_jump": _num(chain[1]), "chain_padding": _num(chain[2]), "seconds": round(t_ts, 4),
                        "version": report["context"]["torchscan_version"]}

    # gradient support at the same input size: the time of the measurement itself
    with warnings.catch_warnings(), V.num_threads(1):  # one thread, as rfgraph.tools.verify measures
        warnings.simplefilter("ignore")
        (model, t_build) = _best(lambda: build(entry, make=V.positive_model), 1)
    torch.manual_seed(0)
    [cmp224], t_gs = _best(lambda: V.compare(model, shape, {module: rec}, threads=1), 1)
    del model
    row["gradient_224"] = {"hull": cmp224.measured, "hulls": cmp224.hulls, "positions": cmp224.positions,
                           "interior": cmp224.interior, "covers": cmp224.covers, "seconds": round(t_gs, 3),
                           "build_seconds": round(t_build, 3), "rfgraph_ok": cmp224.ok}

    # gradient support as ground truth, at an input where the RF fits if memory and time allow
    zrow = runner.summarize(entry, model=meta)
    ver = runner.verify(entry, zrow, max_seconds=max_seconds)
    check = next((c for c in ver["checks"] if c["module"] == module), None)
    truth = {"status": ver["status"], "reason": ver["reason"], "input": ver["input"], "seconds": ver["seconds"]}
    if check is not None:
        (l0, h0), (l1, h1) = check["hulls"][0][0], check["hulls"][1][0]
        size = ver["input"][-1]
        truth.update(hulls=check["hulls"], positions=check["positions"], interior=all(check["interior"]),
                     covers=check["covers"], rfgraph_ok=check["ok"], size=size)
        if all(check["interior"]):
            truth["rf"], truth["jump"] = h0 - l0 + 1, l1 - l0
        # torchscan's chain numbers judged the same way: implied clipped bounds of both features
        # (axis 0; the models are square), and rf / jump where the support is interior
        ok = True
        for pos, hs in zip(check["positions"], check["hulls"]):
            if chain_bounds(chain, pos[0], size) != tuple(hs[0]):
                ok = False
        if all(check["interior"]) and (chain[0] != truth["rf"] or chain[1] != truth["jump"]):
            ok = False
        truth["torchscan_chain_ok"] = ok
        truth["torchscan_column_ok"] = bool(all(check["interior"]) and column == truth["rf"])
    row["truth"] = truth
    return row


def _machine():
    from rfgraph.tools.runner import machine

    return machine()


def to_markdown(rows, info):
    def v(x):
        if x is None:
            return "-"
        if isinstance(x, (int, float)) and abs(x) >= 1e6:
            return f"{x:.2e}"  # the chain rule through squeeze-and-excitation pooling explodes
        return str(_num(x) if isinstance(x, float) else x)

    out = ["# rfgraph vs its peers", "",
           f"Command: `{info['command']}`", "",
           f"- machine: {info['machine'].get('cpu', '?')}, {info['machine'].get('cpus_usable', '?')} usable CPUs, "
           f"torch {info['machine'].get('torch', '?')}, torchscan {info.get('torchscan', '?')}",
           f"- date: {info['date']}; total wall time {info['wall_s']:.1f} s", "",
           "All numbers are at the **final feature map** (the output of the last module that is still a "
           "spatial map: `features` of AlexNet/VGG/MobileNet/EfficientNet/DenseNet, `layer4` of a ResNet, "
           "`inception5b` of GoogLeNet), along the height axis (the models are square).", "",
           "- **rfgraph**: `from_torch` on the meta device + `analyze` + the final map's record "
           "(`is_global` included).",
           "- **torchscan column**: the \"Receptive field\" value torchscan "
           f"{info.get('torchscan', '')} reports for the last layer of that module: each module's own "
           "window, not a cumulative receptive field.",
           "- **torchscan chain**: the cumulative RF torchscan 0.1.x displayed, the chain rule over every "
           "layer in call order (`rf += s*(k-1)`, `s *= stride`), reproduced from torchscan's per-layer "
           "values (identical to torchscan 0.1.2's own output on the models checked). It treats parallel "
           "branches as if they were in sequence.",
           "- **gradient support**: the model built for real (float64, positive weights, BN as identity, "
           "max pooling as average pooling); the non-zero input gradient of one feature is exactly its RF. "
           "Measured where the RF stays clear of the border when memory allows (the `truth at` column); "
           "\"covers\" means the support is the whole input there.", "",
           "## Receptive field at the final feature map", "",
           "| model | final map | rfgraph rf / jump | torchscan column | torchscan chain rf / jump | "
           "gradient support rf / jump (truth at) | rfgraph correct? | torchscan chain correct? |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | ERROR: {r['error']} | | | | | | |")
            continue
        g, t, tr = r["rfgraph"], r["torchscan"], r["truth"]
        if g.get("global_from"):
            rfg = f"global (from {g['global_from']})"
        else:
            rfg = f"{v(g['rf'])} / {v(g['jump'])}" + (" (covers input)" if g["is_global"] else "")
        if "rf" in tr:
            truth = f"{tr['rf']} / {tr['jump']}"
        elif tr.get("covers"):
            truth = "covers input"
        elif "hulls" in tr:
            (lo, hi) = tr["hulls"][0][0]
            truth = f"&ge; {hi - lo + 1} (clipped)"
        else:
            truth = f"{tr['status']}: {tr['reason']}"
        where = f"{tr['size']}" if tr.get("size") else "-"
        ratio = ""
        if "rf" in tr and tr["rf"]:
            ratio = f", {t['chain_rf'] / tr['rf']:.1f}x the truth" if t["chain_rf"] != tr["rf"] else ""
        rf_ok = "yes" if tr.get("rfgraph_ok") else ("NO" if "rfgraph_ok" in tr else "?")
        ts_ok = "yes" if tr.get("torchscan_chain_ok") else ("**no**" + ratio if "torchscan_chain_ok" in tr else "?")
        out.append(f"| {r['model']} | {r['module']} | {rfg} | {v(t['column'])} | {v(t['chain_rf'])} / "
                   f"{v(t['chain_jump'])} | {truth} ({where}) | {rf_ok} | {ts_ok} |")
    out += ["", "## Time per model (same input size)", "",
            f"rfgraph and torchscan: best of {info['repeat']} runs on the same meta-device model; gradient "
            "support: one forward and two input-gradient passes in float64 on the CPU, one thread "
            "(building the float64 model is extra, in the last column). Everything runs in one process "
            "on one core; the machine is shared with other jobs, so small times vary by tens of percent.", "",
            "| model | input | rfgraph s | torchscan s | gradient support s | torchscan / rfgraph | "
            "gradient / rfgraph | (build float64 model s) |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        if "error" in r:
            continue
        a, b, c = r["rfgraph"]["seconds"], r["torchscan"]["seconds"], r["gradient_224"]["seconds"]
        out.append(f"| {r['model']} | {'x'.join(map(str, r['input'][1:]))} | {a:.3f} | {b:.3f} | {c:.2f} | "
                   f"{b / a:.1f}x | {c / a:.0f}x | {r['gradient_224']['build_seconds']:.2f} |")
    ok_rows = [r for r in rows if "error" not in r]
    if ok_rows:
        n_rf = sum(1 for r in ok_rows if r["truth"].get("rfgraph_ok"))
        n_ts = sum(1 for r in ok_rows if r["truth"].get("torchscan_chain_ok"))
        out += ["", "## Summary", "",
                f"- rfgraph agrees with gradient support on {n_rf} of {len(ok_rows)} models; torchscan's "
                f"chain RF on {n_ts} of {len(ok_rows)}; torchscan's column is a per-module window "
                "(never the network's RF).",
                f"- time: rfgraph {sum(r['rfgraph']['seconds'] for r in ok_rows):.2f} s in all, torchscan "
                f"{sum(r['torchscan']['seconds'] for r in ok_rows):.2f} s, gradient support "
                f"{sum(r['gradient_224']['seconds'] for r in ok_rows):.1f} s (+ "
                f"{sum(r['gradient_224']['build_seconds'] for r in ok_rows):.1f} s building float64 models).",
                "- where torchscan's chain is wrong it is because the network branches: a ResNet's "
                "downsampling shortcut (1x1, stride 2) is counted as if it followed the block's convs "
                "(jump 2x too large per stage), Inception's parallel towers are stacked, an "
                "EfficientNet's squeeze-and-excitation (global pooling multiplied back) is not seen as "
                "global. On plain chains (AlexNet, VGG) and DenseNet (whose longest path does go "
                "through every layer) the chain rule is right."]
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--repeat", type=int, default=3, help="best of N runs for rfgraph and torchscan")
    p.add_argument("--max-seconds", type=float, default=60.0, help="time limit of one ground-truth check")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args()
    try:
        import torchscan
    except ImportError:
        sys.exit("benchmarks/peers.py needs torchscan: pip install torchscan (or the dev extra)")
    t0 = time.perf_counter()
    rows = []
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    for k, name in enumerate(names):
        print(f"[{k + 1}/{len(names)}] {name}", file=sys.stderr, flush=True)
        try:
            rows.append(run_model(name, args.input_size, args.repeat, args.max_seconds))
        except Exception as exc:  # one model must not stop the comparison
            rows.append({"model": name, "error": f"{type(exc).__name__}: {exc}"[:300]})
    info = {"command": "python benchmarks/peers.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": _machine(),
            "torchscan": getattr(torchscan, "__version__", "?"), "repeat": args.repeat,
            "wall_s": round(time.perf_counter() - t0, 1)}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    md = to_markdown(rows, info)
    (args.out_dir / "peers.md").write_text(md)
    (args.out_dir / "peers.json").write_text(json.dumps({"info": info, "models": rows}, indent=1, default=str) + "\n")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
