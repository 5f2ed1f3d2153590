"""Writing diagram files: the format from the suffix, Graphviz's dot for SVG/PNG/PDF, and on
success the DOT source beside the picture; a failure leaves no file behind."""

import html
import re
import shutil

import pytest

import rfgraph
from rfgraph.errors import MissingDependencyError, RenderError
from rfgraph.render import graphviz

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


@needs_dot
def test_svg_from_dot_contains_the_rf_annotations(tiny, tmp_path):
    out = rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / "tiny.svg")
    assert out == tmp_path / "tiny.svg"
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    # Graphviz writes one <text> per label line, with &#160; for the second of two spaces
    texts = [" ".join(html.unescape(t).split()) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg)]
    for text in ("rf 2x3 start 1x0.5", "MISALIGNED by 0.5", "global (whole input), from pool",
                 "RF gaps at offsets 1,3", "conv k1x3 p0x1", "b: rf 1x3 (offset -0.5x0)", "block"):
        assert text in texts, text
    assert (tmp_path / "tiny.dot").read_text() == rfgraph.to_dot(rfgraph.analyze(tiny))


@needs_dot
def test_png_format_from_the_suffix(tiny, tmp_path):
    out = rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / "tiny.png", depth=0)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "module block" in (tmp_path / "tiny.dot").read_text()


def test_dot_format_needs_no_graphviz(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(graphviz.shutil, "which", lambda name: None)
    out = rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / "net.dot")
    assert out.read_text().startswith("digraph rfgraph {")


def test_missing_graphviz_says_how_to_install_and_leaves_nothing(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(graphviz.shutil, "which", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"install Graphviz \(apt-get install graphviz.*-o .*net\.dot"):
        rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / "net.svg")
    assert list(tmp_path.iterdir()) == []
    assert issubclass(MissingDependencyError, rfgraph.RFGraphError)


def test_unknown_format(tiny, tmp_path):
    with pytest.raises(RenderError, match="unknown format 'gif'"):
        rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / "net", format="gif")


@pytest.mark.parametrize("name, fmt, words", [
    ("net.jpg", None, "unknown diagram format 'jpg'"),      # once wrote SVG into net.jpg
    ("x.svg", "png", "named .svg but --format png"),         # once wrote PNG into x.svg
])
def test_the_file_name_is_the_format(tiny, tmp_path, name, fmt, words):
    with pytest.raises(RenderError, match=words):
        rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / name, format=fmt)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_is_refused_without_a_stray_dot_file(tiny, tmp_path):
    (tmp_path / "somedir").mkdir()
    with pytest.raises(RenderError, match="is a directory"):
        rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / "somedir")
    assert [p.name for p in tmp_path.iterdir()] == ["somedir"] and not any((tmp_path / "somedir").iterdir())


@needs_dot
def test_dot_failure_is_reported(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(graphviz, "to_dot", lambda analysis, **kw: "digraph { this is not dot")
    with pytest.raises(RenderError, match="Graphviz failed"):
        rfgraph.write_diagram(rfgraph.analyze(tiny), tmp_path / "net.svg")
    assert list(tmp_path.iterdir()) == []  # neither a partial picture nor its DOT source
