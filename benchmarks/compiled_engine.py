"""Would compiling the engine as it is meet the analysis-cost target? mypyc against CPython.

Copies ``rfgraph`` to a temporary directory, compiles its engine (``engine/propagate.py``,
``bounds.py``, ``result.py``) with mypyc, and runs :func:`analysis_cost.measure` on the same
models with the pure-Python tree and the compiled one, in alternating subprocesses (rounds), best
per phase over all rounds. Each run also hashes every record (``as_dict``, ``is_global``
included), so the two trees are checked to give the same answers.

The engine carries no type annotations worth the name, so mypyc cannot infer native types; five
locals are annotated ``Any`` in the copy (mypyc checks an inferred local type at run time, and
these take values of several types), and mypy's type errors are switched off. Needs mypy
(``make bench-compiled`` installs it) and a C compiler.

    python benchmarks/compiled_engine.py      # writes benchmarks/results/compiled_engine.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "compiled_engine.md"
MODELS = "alexnet,vgg11,vgg16,squeezenet1_0,resnet18,resnet50,densenet121,swin_t,maxvit_t"
ENGINE = ["rfgraph/engine/propagate.py", "rfgraph/engine/bounds.py", "rfgraph/engine/result.py"]

# (file, text, replacement): locals mypyc would type from their first value; each must apply
PATCHES = [
    ("rfgraph/engine/propagate.py", "            ins = None\n", "            ins: Any = None\n"),
    ("rfgraph/engine/propagate.py", "        walk = zip(", "        walk: Any = zip("),
    ("rfgraph/engine/bounds.py", "        found = self._maps_by_axis.get(key)\n",
     "        found: Any = self._maps_by_axis.get(key)\n"),
    ("rfgraph/engine/bounds.py", "        out = []\n        for axis, x in enumerate(xs):",
     "        out = []\n        key: Any\n        ins: Any\n        for axis, x in enumerate(xs):"),
    ("rfgraph/engine/bounds.py", "import numbers\n", "import numbers\nfrom typing import Any\n"),
]
MYPY_OFF = ["annotation-unchecked", "assignment", "union-attr", "arg-type", "var-annotated", "call-arg"]

RUNNER = r"""
import hashlib, importlib.util, json, sys, warnings
sys.path.insert(0, sys.argv[1])
import rfgraph  # from the tree given, before analysis_cost puts the checkout first
spec = importlib.util.spec_from_file_location("analysis_cost", sys.argv[2])
ac = importlib.util.module_from_spec(spec); spec.loader.exec_module(ac)
from rfgraph.tools.catalogue import list_zoo
warnings.simplefilter("ignore")
names = sys.argv[3].split(",")
out = {"compiled": rfgraph.engine.bounds.__file__.endswith(".so")}
for e in list_zoo("classification"):
    if e.label in names:
        m = ac.measure(e, int(sys.argv[4]))
        a = rfgraph.analyze(rfgraph.from_torch(ac.build(e), e.trace_shape()))
        m["digest"] = hashlib.sha256(json.dumps([r.as_dict() for r in a.records()], default=str).encode()).hexdigest()
        out[e.label] = m
print(json.dumps(out))
"""


def compile_copy(where: Path) -> Path:
    tree = where / "tree"
    shutil.copytree(ROOT / "rfgraph", tree / "rfgraph", ignore=shutil.ignore_patterns("__pycache__"))
    for name, old, new in PATCHES:
        path = tree / name
        text = path.read_text()
        if old not in text:
            raise SystemExit(f"patch no longer applies to {name}: {old!r} (the engine changed; update PATCHES)")
        path.write_text(text.replace(old, new, 1))
    cmd = [str(Path(sys.executable).parent / "mypyc"), "--follow-imports=skip", "--ignore-missing-imports",
           *[f"--disable-error-code={c}" for c in MYPY_OFF], *ENGINE]
    done = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mypyc failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return tree


def run(tree: Path, models: str, repeats: int) -> dict:
    done = subprocess.run([sys.executable, "-c", RUNNER, str(tree), str(ROOT / "benchmarks" / "analysis_cost.py"),
                           models, str(repeats)], capture_output=True, text=True, cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"run in {tree} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=MODELS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        compiled = compile_copy(Path(tmp))
        trees = {"CPython": ROOT, "mypyc": compiled}
        best: dict = {k: {} for k in trees}
        for i in range(args.rounds):
            for kind, tree in trees.items():
                got = run(tree, args.models, args.repeats)
                if got.pop("compiled") != (kind == "mypyc"):
                    raise SystemExit(f"{kind}: the engine imported is not the one meant")
                for model, m in got.items():
                    b = best[kind].setdefault(model, dict(m))
                    for k in ("trace", "propagate", "records", "is_global"):
                        b[k] = min(b[k], m[k])
                print(f"round {i + 1} {kind} done", flush=True)
    lines = ["# The engine compiled with mypyc, next to CPython", "",
             "Command: `" + " ".join(["python", "benchmarks/compiled_engine.py",
                                      *(sys.argv[1:] if argv is None else argv)]) + "`", "",
             f"Best of {args.rounds} rounds x {args.repeats} repeats per phase, milliseconds, this 2-core machine; the "
             "two trees alternate. *analysis* = propagate + every record + is_global of every record; *ratio* = "
             "analysis / trace (the target is 0.1). *same* = every record (as_dict) hashes the same in both.", "",
             "| model | nodes | trace | analysis CPython | analysis mypyc | speed-up | ratio CPython | ratio mypyc | same |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for model, p in best["CPython"].items():
        c = best["mypyc"][model]
        trace = min(p["trace"], c["trace"])
        ap_, ac_ = (sum(m[k] for k in ("propagate", "records", "is_global")) for m in (p, c))
        lines.append(f"| {model} | {p['nodes']} | {1e3 * trace:.1f} | {1e3 * ap_:.2f} | {1e3 * ac_:.2f} | "
                     f"{ap_ / ac_:.2f} | {ap_ / trace:.3f} | {ac_ / trace:.3f} | "
                     f"{'yes' if p['digest'] == c['digest'] else 'NO'} |")
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
