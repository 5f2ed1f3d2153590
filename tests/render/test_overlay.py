"""RF overlay on the input grid: SVG text we write ourselves, PNG through Pillow."""

import sys
import xml.etree.ElementTree as ET

import pytest

import rfgraph
from rfgraph.errors import MissingDependencyError, ParameterError, RenderError
from rfgraph.render.overlay import default_features, overlay_svg

SVG = "{http://www.w3.org/2000/svg}"


def two_convs(size):
    # c1 3x3 s2 p1: rf 3, jump 2; c2 3x3 s2 p1: rf 3 + 2*2 = 7, jump 4, start 0.5.
    # Feature i of c2 spans [0.5 + 4i - 3.5, 0.5 + 4i + 3.5): pixels 4i-3 .. 4i+3.
    return rfgraph.analyze(rfgraph.chain([("c1", "conv", 3, 2, 1), ("c2", "conv", 3, 2, 1)], size))


def texts(svg):
    return [t.text for t in ET.fromstring(svg).iter(SVG + "text")]


def test_default_features_are_first_centre_last():
    assert default_features((3, 5)) == [(0, 0), (1, 2), (2, 4)]
    assert default_features((2,)) == [(0,), (1,)]


def test_svg_2d_boxes_bounds_and_padding():
    svg = overlay_svg(two_convs(9), "c2")  # n = 3 features per axis
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == SVG + "svg"
    lines = texts(svg)
    assert lines[0] == "RF of c2 (conv): n 3, jump 4, rf 7, start 0.5; input 9x9"
    # feature 0 reaches 3 pixels into the padding; feature 2 (pixels 5..11) past the right edge 8
    assert "feature (0, 0): rows -3..3 (sees 0..3); cols -3..3 (sees 0..3); centre (0.5, 0.5)" in lines
    assert "feature (1, 1): rows 1..7; cols 1..7; centre (4.5, 4.5)" in lines
    assert "feature (2, 2): rows 5..11 (sees 5..8); cols 5..11 (sees 5..8); centre (8.5, 8.5)" in lines
    # one hatch pattern and one "outside the input" clip per feature, used by a hatched rect
    assert svg.count("<pattern ") == 3 and svg.count("<clipPath ") == 3
    assert 'fill="url(#pad0)"' in svg and 'clip-path="url(#outside0)"' in svg
    # dashed theoretical hull and tinted seen part, per feature
    assert svg.count('stroke-dasharray="5,3"') == 3 and svg.count('fill-opacity="0.18"') == 3


def test_svg_box_geometry_matches_bounds():
    # 9x9 input, unclipped x range -3 .. 12 (15 pixels) -> scale min(640/15, 40) = 40 px per pixel
    svg = overlay_svg(two_convs(9), "c2", features=[(0, 0)])
    rects = [r.attrib for r in ET.fromstring(svg).iter(SVG + "rect")]
    # feature 0 sees pixels 0..3: a 4-pixel box starting at the input's corner
    seen = [r for r in rects if r.get("fill-opacity") == "0.18"]
    assert len(seen) == 1
    x_input = [r for r in rects if r.get("fill") == "#f4f4f4"][0]
    assert seen[0]["x"] == x_input["x"] and seen[0]["width"] == "160"
    dashed = [r for r in rects if r.get("stroke-dasharray")][0]
    assert dashed["width"] == "280"  # 7 pixels
    assert float(x_input["x"]) - float(dashed["x"]) == 120  # 3 pixels of padding


def test_svg_1d_draws_one_lane_per_feature():
    svg = overlay_svg(two_convs((9,)), "c2", features=[0, -1])
    lines = texts(svg)
    assert "feature (0): pixels -3..3 (sees 0..3); centre (0.5)" in lines
    assert "feature (2): pixels 5..11 (sees 5..8); centre (8.5)" in lines
    assert lines[0].endswith("input 9")


def test_overlay_of_a_join_and_a_global_node(make_graph):
    G = make_graph(("x", {"op": "input", "size": (12, 12)}), ("c", {"op": "conv", "kernel": 3, "padding": 1}),
                   ("g", {"op": "global"}), ("m", {"op": "mul"}),
                   edges=[("x", "c"), ("c", "g"), ("c", "m"), ("g", "m")])
    svg = overlay_svg(rfgraph.analyze(G), "m")
    lines = texts(svg)
    assert "global: every feature sees the whole input" in lines
    # the union of c's features reaches one pixel of padding on each side; it sees all 12
    assert "feature (0, 0): rows -1..12 (sees 0..11); cols -1..12 (sees 0..11); centre (6, 6)" in lines


def test_bad_features_and_axes(make_graph):
    a = two_convs(9)
    with pytest.raises(ParameterError, match="out of range"):
        overlay_svg(a, "c2", features=[(3, 0)])
    with pytest.raises(ParameterError, match="2 integer index"):
        overlay_svg(a, "c2", features=[0])
    G = make_graph(("x", {"op": "input", "size": (4, 4, 4)}), ("c", {"op": "conv", "kernel": 1}), edges=[("x", "c")])
    with pytest.raises(RenderError, match="1-D and 2-D"):
        overlay_svg(rfgraph.analyze(G), "c")
    with pytest.raises(KeyError):
        overlay_svg(a, "nope")


def test_overlay_writes_svg_and_png(tmp_path):
    pytest.importorskip("PIL")
    a = two_convs(9)
    svg = rfgraph.overlay(a, "c2", tmp_path / "rf.svg")
    assert svg.read_text() == overlay_svg(a, "c2")
    png = rfgraph.overlay(a, "c2", tmp_path / "rf.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from PIL import Image

    with Image.open(png) as im:
        assert im.size[0] > 400 and im.size[1] > 400


def test_png_without_pillow_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # makes `import PIL` fail
    with pytest.raises(MissingDependencyError, match="pip install pillow"):
        rfgraph.overlay(two_convs(9), "c2", tmp_path / "rf.png")
    assert not (tmp_path / "rf.png").exists()
    with pytest.raises(RenderError, match="svg or png"):
        rfgraph.overlay(two_convs(9), "c2", tmp_path / "rf.gif")
