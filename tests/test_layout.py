"""The package's layout: the core works without torch, no import cycle, and the engine knows no
framework, front-end or renderer (issue 9). Pure ``ast`` and networkx: nothing here needs torch."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rfgraph"

# The core: what a graph's analysis needs. None of it may import these, at any level.
CORE = ("rfgraph.engine", "rfgraph.ops", "rfgraph.record", "rfgraph.arith", "rfgraph.schema", "rfgraph.coverage")
FORBIDDEN = ("torch", "rfgraph.frontends", "rfgraph.render", "rfgraph.tools", "rfgraph.cli")
# Jupyter's display hooks (Analysis._repr_html_, Analysis.diagram) import this renderer inside the
# methods, never at import time (tests/render/test_jupyter.py checks that)
LAZY = {"rfgraph.engine.result": ("rfgraph.render.notebook",)}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module of ``from <node.module> import ...`` written in ``module``."""
    if not node.level:
        return node.module
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported(module: str, path: Path, node) -> list:
    """Modules an import statement loads: ``from X import Y`` loads X.Y when that is a module of
    ours, else it reads the name Y from X (which must then have run)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = resolve(module, path, node)
    out = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        out.append(sub if sub in MODULES else base)
    return out


def is_type_checking(node) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_time_imports(tree):
    """Import statements run when the module is imported: the module body, descending into
    if/try/with/class blocks but not into functions nor ``if TYPE_CHECKING:``."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or (
                isinstance(node, ast.If) and is_type_checking(node)):
            continue
        else:
            todo.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt))


def all_imports(module, path, tree):
    """Every module imported anywhere in the file, functions included, and dynamic imports
    (``importlib.import_module("x")``, ``__import__("x")``) with a literal name."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield from imported(module, path, node)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                yield node.args[0].value


def parse(path):
    return ast.parse(path.read_text(), filename=str(path))


def within(name, prefixes):
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_package_has_the_modules_this_test_reads():
    assert {"rfgraph", "rfgraph.engine.propagate", "rfgraph.ops.base", "rfgraph.record", "rfgraph.arith",
            "rfgraph.schema", "rfgraph.frontends.torch", "rfgraph.render.dot", "rfgraph.cli"} <= set(MODULES)


def test_no_import_cycle_inside_the_package():
    G = nx.DiGraph()
    G.add_nodes_from(MODULES)
    for module, path in MODULES.items():
        for node in import_time_imports(parse(path)):
            for target in imported(module, path, node):
                if target in MODULES and target != module:
                    G.add_edge(module, target, line=node.lineno)
    assert G.number_of_edges() > len(MODULES) // 2  # the graph was really read
    cycles = sorted(nx.simple_cycles(G), key=len)[:5]
    assert not cycles, "import cycles (module -> imported module):\n" + "\n".join(
        " -> ".join(f"{a} (line {G.edges[a, b]['line']})" for a, b in zip(c, c[1:] + c[:1])) + f" -> {c[0]}"
        for c in cycles)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if within(m, CORE)))
def test_the_core_imports_no_torch_front_end_or_renderer(module):
    path = MODULES[module]
    bad = sorted({name for name in all_imports(module, path, parse(path))
                  if within(name, FORBIDDEN) and not within(name, LAZY.get(module, ()))})
    assert not bad, f"{path.relative_to(ROOT)} imports {', '.join(bad)}"


NO_TORCH = textwrap.dedent('''
    import sys

    class NoTorch:
        """Every torch module is unimportable, as on a machine without it."""
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith(("torch.", "torchvision")):
                raise ImportError(f"{name} is made unimportable by this test")
            return None

    sys.meta_path.insert(0, NoTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("torch should not be importable here")

    import json
    import networkx as nx
    import rfgraph.engine, rfgraph.ops, rfgraph.record, rfgraph.arith, rfgraph.schema
    from rfgraph.engine import analyze
    from rfgraph.record import RF
    from rfgraph.render.dot import to_dot
    from rfgraph.render.json import to_json
    from rfgraph.render.table import format_table

    # a residual block on 16x16: conv1 3x3 s2 p1 (j 2, r 3, start 0.5), conv2 3x3 p1
    # (r 3 + 2*2 = 7), shortcut 1x1 s2 (r 1, start 0.5); add: hull rf 7, start 0.5, aligned
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(16, 16))
    G.add_node("conv1", op="conv", kernel=3, stride=2, padding=1)
    G.add_node("relu", op="identity")
    G.add_node("conv2", op="conv", kernel=3, padding=1)
    G.add_node("shortcut", op="conv", kernel=1, stride=2)
    G.add_node("add", op="add")
    G.add_node("pool", op="global")
    G.add_edges_from([("x", "conv1"), ("conv1", "relu"), ("relu", "conv2"), ("x", "shortcut"),
                      ("conv2", "add"), ("shortcut", "add"), ("add", "pool")])
    a = analyze(G)
    rec = a["add"]
    assert isinstance(rec, RF)
    assert (rec.n, rec.jump, rec.rf, rec.start) == ((8, 8), (2, 2), (7, 7), (0.5, 0.5)), rec
    assert not rec.is_misaligned and a["pool"].is_global == (True, True)
    # feature i of the add reads pixels 2i-3 .. 2i+3, clipped to 0 .. 15
    lo, hi = rec.bounds(0)
    assert lo.tolist() == [0, 0, 1, 3, 5, 7, 9, 11] and hi.tolist() == [3, 5, 7, 9, 11, 13, 15, 15]
    assert rfgraph.arith.effective_kernel(3, 2) == 5

    table = format_table(a, a.order)
    assert table.splitlines()[0].split()[:2] == ["node", "op"] and " add " in table
    doc = json.loads(to_json(a))
    assert [n["name"] for n in doc["nodes"]] == a.order
    dot = to_dot(a)
    assert dot.startswith("digraph rfgraph {") and '"shortcut" -> "add";' in dot

    loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "torchvision")))
    assert not loaded, loaded
    print("ok without torch")
''')


def test_the_core_imports_and_runs_with_torch_unimportable():
    proc = subprocess.run([sys.executable, "-c", NO_TORCH], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok without torch"
