"""Overlay shapes are exact: dilation holes, a cross from a 1x3 and a 3x1 branch, the padding,
a user image; PNG through matplotlib; the CLI never leaves a partial file."""

import xml.etree.ElementTree as ET

import networkx as nx
import pytest

import rfgraph
from rfgraph.cli import main
from rfgraph.errors import RenderError
from rfgraph.render.overlay import overlay, overlay_svg

SVG = "{http://www.w3.org/2000/svg}"


def cross_net():
    # stem 3x3 s2 p1 (rf 3, jump 2); b1x3 (kernel 1x3): rows rf 3, cols 3 + 2*2 = 7; b3x1: rows 7, cols 3.
    # Feature (4, 4) of cat is centred at 0.5 + 4*2 = 8.5: b1x3 reads rows 7..9 x cols 5..11,
    # b3x1 rows 5..11 x cols 7..9 -- a cross, 21 + 21 - 9 = 33 pixels, not the 7x7 = 49 hull.
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(16, 16))
    G.add_node("stem", op="conv", kernel=3, stride=2, padding=1)
    G.add_node("b1x3", op="conv", kernel=(1, 3), padding=(0, 1))
    G.add_node("b3x1", op="conv", kernel=(3, 1), padding=(1, 0))
    G.add_node("cat", op="concat")
    G.add_node("after", op="conv", kernel=1)
    G.add_edges_from([("x", "stem"), ("stem", "b1x3"), ("stem", "b3x1"), ("b1x3", "cat"), ("b3x1", "cat"),
                      ("cat", "after")])
    return rfgraph.analyze(G)


def rects(svg, opacity):
    return [(float(r.get("x")), float(r.get("y")), float(r.get("width")), float(r.get("height")), r.get("fill"))
            for r in ET.fromstring(svg).iter(SVG + "rect") if r.get("fill-opacity") == opacity]


def texts(svg):
    return [t.text for t in ET.fromstring(svg).iter(SVG + "text")]


def test_pixels_accessor_gives_holes():
    # d 3x3 dilation 2 then 3x3 dilation 3: taps {-2, 0, 2} + {-3, 0, 3} = {-5, -3..3, 5} (no -4, 4)
    G = rfgraph.chain([("d1", "conv", 3, 1, 2), ("d2", "conv", 3, 1, 3)], (20,))
    G.nodes["d1"]["dilation"], G.nodes["d2"]["dilation"] = 2, 3
    a = rfgraph.analyze(G)
    assert a.pixels("d2", 0, 10) == ((5, 5), (7, 13), (15, 15))
    with pytest.raises(KeyError):
        a.pixels("nope", 0, 0)


def test_dilation_holes_are_drawn_as_separate_pieces():
    G = rfgraph.chain([("d1", "conv", 3, 1, 2)], (12, 12))
    G.nodes["d1"]["dilation"] = 2
    svg = overlay_svg(rfgraph.analyze(G), "d1", features=[(5, 5)])
    # rows {3, 5, 7} x cols {3, 5, 7}: nine one-pixel rectangles, all the same colour
    pieces = rects(svg, "0.18")
    assert len(pieces) == 9 and len({p[4] for p in pieces}) == 1
    assert len({p[2] for p in pieces}) == 1  # each one pixel wide
    assert any("reads 9 pixels (holes)" in t for t in texts(svg))
    assert any(t.startswith("this RF has gaps") for t in texts(svg))


def test_branch_union_is_a_cross_in_branch_colours():
    a = cross_net()
    svg = overlay_svg(a, "cat", features=[(4, 4)])
    pieces = rects(svg, "0.3")
    assert len(pieces) == 2 and pieces[0][4] != pieces[1][4]  # one box per branch, own colours
    (x0, y0, w0, h0, _), (x1, y1, w1, h1, _) = pieces
    # b1x3: 3 rows x 7 cols; b3x1: 7 rows x 3 cols, at the same scale
    assert w0 / h0 == pytest.approx(7 / 3) and h1 / w1 == pytest.approx(7 / 3)
    lines = texts(svg)
    assert "branch 1: b1x3 (conv), rf 3x7, centre offset 0" in lines
    assert "branch 2: b3x1 (conv), rf 7x3, centre offset 0" in lines
    # downstream of the cross, the product of per-axis sets is an upper bound, and said so
    assert any("upper bound" in t for t in texts(overlay_svg(a, "after", features=[(4, 4)])))


def test_padding_is_hatched_only_where_the_hull_leaves_the_input():
    svg = overlay_svg(cross_net(), "cat", features=[(0, 0), (4, 4)])
    assert svg.count("<pattern ") == 2 and svg.count('clip-path="url(#outside') == 2


def test_image_under_the_grid_and_png(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    photo = tmp_path / "photo.png"
    PIL.new("RGB", (40, 30), (200, 10, 10)).save(photo)
    a = cross_net()
    svg = overlay_svg(a, "cat", image=photo)
    assert svg.count("<image ") == 1 and "data:image/png;base64," in svg
    assert svg == overlay_svg(a, "cat", image=photo)  # deterministic text
    png = overlay(a, "cat", tmp_path / "rf.png", image=photo)
    with PIL.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 600
    with pytest.raises(RenderError, match="cannot read"):
        overlay_svg(a, "cat", image=tmp_path / "rf.svg.missing")


def test_cli_image_gives_the_input_size_and_bad_output_leaves_nothing(tmp_path, capsys):
    PIL = pytest.importorskip("PIL.Image")
    pytest.importorskip("matplotlib")
    spec = tmp_path / "net.json"
    rfgraph.write_spec(rfgraph.chain([("c1", "conv", 3, 2, 1)], 8), spec)
    photo = tmp_path / "p.png"
    PIL.new("RGB", (24, 12), (0, 90, 200)).save(photo)
    out = tmp_path / "rf.svg"
    assert main(["overlay", str(spec), "--at", "c1", "-o", str(out), "--image", str(photo)]) == 0
    assert "input 12x24" in out.read_text()
    bad = tmp_path / "bad.svg"
    assert main(["overlay", str(spec), "--at", "c1", "-o", str(bad), "--image", str(spec)]) == 1
    assert "cannot read" in capsys.readouterr().err and not bad.exists()
    assert main(["overlay", str(spec), "--at", "c1", "-o", str(tmp_path / "rf.gif")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json", "p.png", "rf.svg"]
