"""Jupyter: an analysis shows its stage table as HTML; analysis.diagram() shows as SVG."""

import ast
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import rfgraph
from rfgraph.render.notebook import Diagram, to_html_table

ROOT = Path(__file__).resolve().parents[2]


def analysis():
    return rfgraph.analyze(rfgraph.chain([("conv1", "conv", 11, 4, 0), ("pool<1>", "maxpool", 3, 2, 0)], 227))


def test_repr_html_is_the_stage_table():
    a = analysis()
    page = a._repr_html_()
    assert page == to_html_table(a)
    root = ET.fromstring(page)  # one well-formed table
    rows = [[td.text or "" for td in tr] for tr in root.iter("tr")]
    assert rows[0] == ["node", "op", "n", "jump", "rf", "start", "padding", "notes"]
    # conv1: n (227-11)/4+1 = 55, rf 11, start 5.5; pool: rf 11 + 2*4 = 19, jump 8
    assert rows[2][:6] == ["conv1", "conv", "55", "4", "11", "5.5"]
    assert rows[3][:5] == ["pool<1>", "maxpool", "27", "8", "19"]  # escaped in the text, read back
    assert "pool&lt;1&gt;" in page


def test_engine_does_not_import_render_at_module_level():
    tree = ast.parse((ROOT / "rfgraph" / "engine" / "result.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("render" in (getattr(n, "module", None) or "") for n in top)


def test_diagram_source_and_svg():
    d = analysis().diagram(rankdir="LR")
    assert isinstance(d, Diagram) and d.source.startswith("digraph") and "rankdir" in d.source
    if shutil.which("dot") is None:
        pytest.skip("needs Graphviz's dot (apt-get install graphviz)")
    svg = d._repr_svg_()
    assert "<svg" in svg and "conv1" in svg
