"""The interactive report: pure HTML text (escaping, offline, the embedded views, pixel sets,
picture and ERF), the CLI's errors, then in a real browser (Debian's chromium driven by
playwright): click a node, read the panel, collapse and expand a module, hover the RF canvas and
read its pixels (holes, a cross, the picture), the ERF section, search, sort.

The browser tests skip, saying why, without playwright or a chromium on PATH. With
``RFGRAPH_UPDATE_IMAGES=1`` the screenshot test also writes ``examples/images/report.png``.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import rfgraph
from rfgraph.cli import main
from rfgraph.errors import RenderError
from rfgraph.render.html import View, _fold_members, node_for_title, to_html

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_BROWSER = ("needs playwright (pip install 'rfgraph[report]') and Debian's chromium "
              "(apt-get install chromium; `make install` does both)")
HAVE_BROWSER = importlib.util.find_spec("playwright") is not None and CHROMIUM is not None
HAVE_TORCHVISION = all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))
HAVE_PIL = importlib.util.find_spec("PIL") is not None
browser_only = pytest.mark.skipif(not HAVE_BROWSER, reason=NO_BROWSER)
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
needs_pil = pytest.mark.skipif(not HAVE_PIL, reason="--image needs Pillow")
SPECS = ROOT / "examples" / "specs"


def page_data(page):
    """The JSON the page embeds, read back."""
    text = re.search(r'<script type="application/json" id="rf-data">(.*?)</script>', page, flags=re.S).group(1)
    return json.loads(text)


def run(*args):
    return subprocess.run([sys.executable, "-m", "rfgraph", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def one_line_error(proc):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfgraph: error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def two_colour_image(path, size=(40, 40)):
    """A picture: left half red, right half green (so the canvas can tell them apart)."""
    from PIL import Image

    a = np.zeros(size + (3,), dtype=np.uint8)
    a[:, : size[1] // 2] = (220, 40, 40)
    a[:, size[1] // 2:] = (40, 200, 40)
    Image.fromarray(a).save(path)
    return path


def misaligned_net():
    # "same" 3x3 stride 2 on 8 pixels pads (0, 1): main's feature 0 reads 0..2 (centre 1.5), the
    # 1x1 stride-2 shortcut reads pixel 0 (centre 0.5): the join's centres differ by 1 pixel.
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8, 8))
    G.add_node("main", op="conv", kernel=3, stride=2, padding="same")
    G.add_node("short<cut>", op="conv", kernel=1, stride=2)
    G.add_node("add", op="add")
    G.add_edges_from([("x", "main"), ("x", "short<cut>"), ("main", "add"), ("short<cut>", "add")])
    return G


# -- the page as text -------------------------------------------------------------------------------


def test_page_is_self_contained_and_escaped():
    G = misaligned_net()
    G = nx.relabel_nodes(G, {"add": "add</script><script>alert(1)</script>"})
    page = to_html(rfgraph.analyze(G), svg='<?xml version="1.0"?><svg><script>bad()</script>'
                   '<g class="node" onclick="bad()"><title>main</title></g></svg>')
    assert "</script><script>alert(1)" not in page and "bad()" not in page
    assert "<?xml" not in page
    assert not re.search(r"(src|href)=\"https?:", page) and "cdn" not in page.lower()
    assert page.count("<script") == 2  # the data and the code, both inline
    assert '"titles":{"main":"main"}' in page and 'add\\u003c/script' in page


def test_titles_map_diagram_elements_to_nodes():
    a = rfgraph.analyze(misaligned_net())
    assert node_for_title(a, "main") == "main" and node_for_title(a, "main->add") is None


def test_large_inputs_are_subsampled():
    a = rfgraph.analyze(rfgraph.chain([("c1", "conv", 3, 1, 1)], (1000, 40)))
    page = to_html(a, max_features=100)
    assert '"step":[10,1]' in page


def test_pixel_sets_are_embedded_where_features_have_holes():
    # d1 (3x3, dilation 2) reads every other pixel, d2 (dilation 3) on top of it: holes; the
    # input reads its own pixel, so its sets are the clipped bounds and are left out
    a = rfgraph.analyze(rfgraph.read_spec(SPECS / "dilated_pair.json"))
    data = {d["name"]: d for d in page_data(to_html(a))["nodes"]}
    assert data["x"]["pix"] == [None, None]
    for ax in (0, 1):
        assert data["d2"]["pix"][ax][10] == [p for run in a.pixels("d2", ax, 10) for p in run]
    assert len(data["d2"]["pix"][0][10]) > 2  # several runs: holes
    # the cross of a 1x3 and a 3x1 branch: the join is drawn per branch, from the branches' data
    cross = rfgraph.analyze(rfgraph.read_spec(SPECS / "cross_branches.json"))
    cat = {d["name"]: d for d in page_data(to_html(cross))["nodes"]}["cat"]
    assert cat["join"] and [b["node"] for b in cat["branches"]] == ["b1x3", "b3x1"]


def test_views_say_which_modules_are_boxes_frames_and_folds():
    # two hand-written views of the tiny graph: module "block" a box in one, a frame in the other
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8, 8))
    for i in range(4):
        G.add_node(f"b{i}", op="conv", kernel=3, padding=1, module=f"layer.{i}")
        G.add_edge(f"x" if i == 0 else f"b{i - 1}", f"b{i}")
    a = rfgraph.analyze(G)
    shut = '<svg><g class="node"><title>x</title></g><g class="node"><title>fold layer.0..layer.3</title></g></svg>'
    open_ = ('<svg><g class="cluster"><title>cluster layer</title></g>'
             + "".join(f'<g id="node{i}" class="node"><title>b{i}</title></g>' for i in range(4)) + "</svg>")
    page = to_html(a, views=[View("shut", shut), View("open", open_), View("huge", None, "too many boxes")])
    data = page_data(page)
    v0, v1, v2 = data["views"]
    assert v0["folds"] == {"fold layer.0..layer.3": ["layer.0", "layer.1", "layer.2", "layer.3"]}
    assert v0["owners"] == {"b0": "b3", "b1": "b3", "b2": "b3"}  # drawn inside the fold
    assert v1["clusters"] == ["layer"] and v1["items"] == 4 and v1["owners"] == {}
    assert not v2["drawn"] and v2["note"] == "too many boxes" and data["initial"] == 0
    assert page.count('class="view"') == 2 and 'id="v1-node0"' in page  # ids kept apart per view
    assert _fold_members(["a", "a.1", "a.2", "a.2.x", "a.3"], "a.1", "a.3") == ["a.1", "a.2", "a.3"]


@needs_dot
def test_report_views_one_per_depth():
    from rfgraph.render.graphviz import report_views

    from model_graphs import resnet_like

    a = rfgraph.analyze(resnet_like((1, 2, 1, 1)))
    views = report_views(a)
    labels = [v.label for v in views]
    assert labels[0] == "default view" and "depth 0" in labels and labels[-1].endswith("every node")
    assert all(v.svg.lstrip().startswith("<") for v in views) and len({v.svg for v in views}) == len(views)
    first = report_views(a, depth=0)
    assert first[0].label == "depth 0" and "depth 0" not in [v.label for v in first[1:]]
    # a view past the size limit is listed, not drawn, with the reason
    small = report_views(a, max_items=10)
    assert any(v.svg is None and "too many to lay out" in v.note for v in small)


@needs_pil
def test_image_is_embedded_resized_to_the_input_grid(tmp_path):
    a = rfgraph.analyze(rfgraph.read_spec(SPECS / "residual_block.json"))  # 56x56
    page = to_html(a, image=two_colour_image(tmp_path / "p.png", (30, 80)))
    uri = re.search(r'<img id="rfimage" alt="" hidden src="(data:image/png;base64,[^"]+)"', page).group(1)
    import base64
    import io

    from PIL import Image

    im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert im.size == (56, 56) and page_data(page)["image"] is True
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a picture")
    with pytest.raises(RenderError, match="cannot read .*bad.jpg as an image"):
        to_html(a, image=bad)


def test_erf_section_data():
    torch = pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.Conv2d(1, 1, 3, padding=1))
    e = rfgraph.erf(net, (1, 17, 17), init="uniform", samples=1)
    data = page_data(to_html(rfgraph.analyze(net, (1, 17, 17)), erf=e))["erf"]
    assert data["png"].startswith("data:image/png;base64,iVBOR")
    assert data["node"] == str(e.node) and data["unit"] == [8, 8] and data["trf"]["rf"] == [5, 5]
    assert data["sigma"] == [round(s, 4) for s in e.sigma]
    assert [t for t, _ in data["area_ratio"]] == ["0.2", "0.3", "0.5", "0.99"]


def test_cli_report_errors_are_one_line_and_leave_nothing(tmp_path):
    out = tmp_path / "r.html"
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a picture")
    msg = one_line_error(run("report", SPECS / "residual_block.json", "--image", bad, "-o", out))
    assert "cannot read" in msg and "bad.jpg" in msg
    msg = one_line_error(run("report", SPECS / "residual_block.json", "--erf", "-o", out))
    assert "--erf needs a torch model" in msg and "residual_block.json" in msg
    msg = one_line_error(run("report", SPECS / "residual_block.json", "--image", tmp_path / "nope.png", "-o", out))
    assert "nope.png" in msg
    if HAVE_PIL:
        one_d = tmp_path / "one_d.json"
        rfgraph.write_spec(rfgraph.chain([("c", "conv", 3, 1, 1)], (16,)), one_d)
        msg = one_line_error(run("report", one_d, "--image", two_colour_image(tmp_path / "p.png"), "-o", out))
        assert "--image needs a 2-D input" in msg
    assert not out.exists() and not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".r.html*"))


def test_cli_report_needs_an_html_name_and_leaves_nothing(tmp_path, capsys):
    spec = tmp_path / "net.json"
    rfgraph.write_spec(misaligned_net(), spec)
    assert main(["report", str(spec), "-o", str(tmp_path / "r.svg")]) == 1
    assert "name it .html" in capsys.readouterr().err
    assert main(["report", str(spec), "-o", str(tmp_path / "nodir" / "r.html")]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.json"]
    assert main(["report", str(spec), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")


# -- in the browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not HAVE_BROWSER:
        pytest.skip(NO_BROWSER)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


SHOWN = "#graph .view:not([hidden])"  # the view on screen (the page holds one SVG per view)


def open_page(browser, path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(5000)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append("network: " + r.url) if not r.url.startswith(("file:", "data:"))
            else None)
    page.goto(path.as_uri())
    return page, errors


@pytest.fixture(scope="module")
def resnet50_report(tmp_path_factory):
    if not HAVE_TORCHVISION:
        pytest.skip("needs torch and torchvision (resnet50's report)")
    path = tmp_path_factory.mktemp("report") / "resnet50.html"
    assert main(["report", "resnet50", "-o", str(path)]) == 0
    return path


@browser_only
def test_resnet50_layer4_panel(browser, resnet50_report):
    page, errors = open_page(browser, resnet50_report)
    page.locator(f'{SHOWN} g.cluster[data-title="cluster layer4"] > text').first.click()
    assert page.inner_text("#panel h2") == "layer4.2.relu_2"
    assert page.inner_text("#summary").startswith("rf 427, jump 32")
    assert page.inner_text('#panel tr[data-field="rf"]').split() == ["rf", "427", "427"]
    assert page.inner_text('#panel tr[data-field="jump"]').split() == ["jump", "32", "32"]
    # the RF of the feature under the mouse: the centre of the canvas is the input's centre, nearest
    # to feature 3 (centre 0.5 + 3*32 = 96.5; feature 4 is at 128.5); it spans 96.5 -+ 427/2:
    # [-117, 310), pixels -117..309, of which 0..223 are in the input
    canvas = page.locator("#rfcanvas")
    canvas.scroll_into_view_if_needed()
    b = canvas.bounding_box()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
    info = page.inner_text("#rfinfo")
    assert info.startswith("feature (3, 3): rows -117..309 (sees 0..223); cols -117..309 (sees 0..223)")
    assert errors == []
    page.close()


@browser_only
def test_misaligned_join_offsets(browser, tmp_path):
    spec = tmp_path / "net.json"
    rfgraph.write_spec(misaligned_net(), spec)
    path = tmp_path / "net.html"
    assert main(["report", str(spec), "-o", str(path), "--depth", "all"]) == 0
    page, errors = open_page(browser, path)
    page.locator(f'{SHOWN} g.node[data-node="add"]').click()
    assert "MISALIGNED: branch centres differ by 1 x 1" in page.inner_text("#misalignment")
    rows = [r.split("\t") for r in page.inner_text("#branches").splitlines()[1:]]
    assert rows == [["main", "3 x 3", "1.5 x 1.5", "0 x 0"], ["short<cut>", "1 x 1", "0.5 x 0.5", "-1 x -1"]]
    # search by name opens the node; the table sorts by rf, largest first on a second click
    page.fill("#search", "short<")
    page.press("#search", "Enter")
    assert page.inner_text("#panel h2") == "short<cut>"
    page.fill("#search", "layer")  # nothing matches: the table hides every row
    assert page.locator("#table tbody tr:visible").count() == 0
    page.fill("#search", "")
    page.click('#table th[data-col="rf"]')
    page.click('#table th[data-col="rf"]')
    assert page.inner_text("#table tbody tr:first-child td:nth-child(2)") in ("main", "add")
    assert errors == []
    page.close()


@browser_only
def test_collapse_and_expand_a_module(browser, resnet50_report):
    page, errors = open_page(browser, resnet50_report)
    first = page.input_value("#view")
    assert page.locator(f'{SHOWN} g.node[data-title="module layer4"]').count() == 0
    # layer4's frame has a collapse mark: the page switches to a view where layer4 is one box
    page.locator(f'{SHOWN} g.toggle[data-module="layer4"][data-action="collapse"]').click()
    assert page.input_value("#view") != first
    box = page.locator(f'{SHOWN} g.node[data-title="module layer4"]')
    assert box.count() == 1 and page.locator(f'{SHOWN} g.cluster[data-title="cluster layer4"]').count() == 0
    box.locator("text").first.click()  # the collapsed box opens the panel of layer4's output
    assert page.inner_text("#panel h2") == "layer4.2.relu_2"
    assert page.inner_text("#summary").startswith("rf 427, jump 32")
    assert "collapsed module layer4" in page.inner_text("#panel")
    # the panel expands it again: a view where layer4 is a frame, its blocks inside
    page.click('#modules button[data-module="layer4"][data-action="expand"]')
    assert page.locator(f'{SHOWN} g.cluster[data-title="cluster layer4"]').count() == 1
    assert page.inner_text("#panel h2") == "layer4.2.relu_2"  # still selected
    # the view menu lists every depth; the deepest draws layer4.2.conv3 as a box of its own
    labels = page.locator("#view option").all_inner_texts()
    assert labels[0] == "default view" and "depth 0" in labels and labels[-1].endswith("every node")
    page.select_option("#view", index=len(labels) - 1)
    assert page.locator(f'{SHOWN} g.node[data-node="layer4.2.conv3"]').count() == 1
    assert errors == []
    page.close()


def canvas_rgb(page, row, col):
    """The colour the RF canvas shows at the centre of input pixel (row, col)."""
    return page.evaluate("""([r, c]) => {
        const p = rfReport.canvasPoint(r, c), g = document.getElementById("rfcanvas").getContext("2d");
        return Array.from(g.getImageData(Math.floor(p[0]), Math.floor(p[1]), 1, 1).data.slice(0, 3));
    }""", [row, col])


def hover_feature(page, row, col):
    """Move the mouse over the centre of input pixel (row, col) on the RF canvas."""
    x, y = page.evaluate("([r, c]) => rfReport.canvasPoint(r, c)", [row, col])
    b = page.locator("#rfcanvas").bounding_box()
    page.mouse.move(b["x"] + x, b["y"] + y)


@browser_only
def test_dilated_holes_and_branch_cross_on_the_canvas(browser, tmp_path):
    # d2 (3x3 dilation 3 on 3x3 dilation 2): feature (10, 10) reads rows/cols 5,7,8,9,10,11,12,13,15
    # (offsets {-3, 0, 3} + {-2, 0, 2}); 6 and 14 are holes
    a = rfgraph.analyze(rfgraph.read_spec(SPECS / "dilated_pair.json"))
    runs = a.pixels("d2", 0, 10)
    assert runs == ((5, 5), (7, 13), (15, 15))
    path = tmp_path / "dil.html"
    assert main(["report", str(SPECS / "dilated_pair.json"), "-o", str(path)]) == 0
    page, errors = open_page(browser, path)
    page.evaluate("rfReport.select('d2', true)")
    hover_feature(page, 10, 10)
    assert page.inner_text("#rfinfo").startswith("feature (10, 10): rows 5..15; cols 5..15; reads 81 pixels (holes)")
    grey = [240, 240, 240]  # the input grid where nothing is read
    assert canvas_rgb(page, 6, 10) == grey and canvas_rgb(page, 10, 14) == grey and canvas_rgb(page, 6, 6) == grey
    for rc in ((10, 10), (5, 5), (15, 13), (7, 15)):
        r, g, b = canvas_rgb(page, *rc)
        assert b > r + 60 and b > g + 20, (rc, (r, g, b))  # tinted blue: read
    assert canvas_rgb(page, 2, 2) == grey  # outside the RF
    page.close()
    # a 1x3 and a 3x1 branch after a stride-2 stem: feature (4, 4) of the concat is a cross, its
    # hull's corners unread; the 1x3 branch's arm in blue, the 3x1 branch's in orange
    path = tmp_path / "cross.html"
    assert main(["report", str(SPECS / "cross_branches.json"), "-o", str(path)]) == 0
    page, errors2 = open_page(browser, path)
    page.evaluate("rfReport.select('cat', true)")
    hover_feature(page, 8, 8)
    assert page.inner_text("#rfinfo").startswith("feature (4, 4): rows 5..11; cols 5..11")
    assert canvas_rgb(page, 5, 5) == [240, 240, 240] and canvas_rgb(page, 11, 11) == [240, 240, 240]
    r, g, b = canvas_rgb(page, 8, 5)   # the 1x3 branch: rows 7..9, cols 5..11
    assert b > r + 40, (r, g, b)
    r, g, b = canvas_rgb(page, 5, 8)   # the 3x1 branch: rows 5..11, cols 7..9
    assert r > b + 40, (r, g, b)
    assert "branch 1: b1x3" in page.inner_text("#rflegend")
    assert errors == [] and errors2 == []
    page.close()


@browser_only
@needs_pil
def test_image_under_the_rf(browser, tmp_path):
    # residual_block's add, the feature under input pixel (28, 8): its RF lies in the left (red)
    # half of the picture, shown at full strength; the rest of the picture is dimmed
    path = tmp_path / "img.html"
    photo = two_colour_image(tmp_path / "photo.png", (28, 28))  # resized to the 56x56 grid
    assert main(["report", str(SPECS / "residual_block.json"), "--image", str(photo), "-o", str(path)]) == 0
    assert 'src="data:image/png;base64,' in path.read_text()
    page, errors = open_page(browser, path)
    page.evaluate("rfReport.select('add', true)")
    hover_feature(page, 28, 8)
    r0, r1, c0, c1 = map(int, re.search(r"rows (\d+)\.\.(\d+); cols (\d+)\.\.(\d+)",
                                        page.inner_text("#rfinfo")).groups())
    assert c1 < 28  # the RF is in the left, red, half
    inside = canvas_rgb(page, (r0 + r1) // 2, (c0 + c1) // 2)
    assert inside[0] > 180 and inside[1] < 90, inside   # the red half at full strength
    outside = canvas_rgb(page, 5, 45)
    assert outside[1] < 120 and outside[1] > outside[0] + 20, outside  # the green half, dimmed
    assert errors == []
    page.close()


@pytest.fixture(scope="module")
def resnet50_full_report(tmp_path_factory):
    """resnet50's report with a photo (matplotlib's sample picture) and the ERF (2 samples)."""
    if not HAVE_TORCHVISION:
        pytest.skip("needs torch and torchvision (resnet50's report)")
    mpl = pytest.importorskip("matplotlib.cbook", reason="the ERF picture needs matplotlib")
    pytest.importorskip("PIL", reason="--image needs Pillow")
    path = tmp_path_factory.mktemp("report") / "resnet50_full.html"
    photo = mpl.get_sample_data("grace_hopper.jpg", asfileobj=False)
    assert main(["report", "resnet50", "-o", str(path), "--image", str(photo), "--erf", "--erf-samples", "2"]) == 0
    return path


@browser_only
def test_erf_section(browser, resnet50_full_report):
    page, errors = open_page(browser, resnet50_full_report)
    assert page.is_visible("#erf img")
    assert page.evaluate("document.querySelector('#erf img').naturalWidth") > 300
    text = page.inner_text("#erf")
    assert "Effective receptive field" in text and "unit (3, 3)" in text and "recipe luo, init random, 2 samples" in text
    rows = {r.split("\t")[0]: r.split("\t")[1:] for r in page.inner_text("#erf-numbers").splitlines()[1:]}
    assert rows["TRF rf"] == ["427 x 427"] and re.fullmatch(r"\d+\.\d\d x \d+\.\d\d", rows["ERF sigma (px)"][0])
    areas = page.inner_text("#erf-areas").splitlines()[1:]
    assert [a.split("\t")[0] for a in areas] == ["0.2", "0.3", "0.5", "0.99"]
    page.click("#erf-node")  # the measured node opens in the panel
    assert page.inner_text("#panel h2") == "layer4.2.relu_2" and "ERF measured" in page.inner_text("#erf-here")
    assert errors == []
    page.close()


@browser_only
def test_screenshot(browser, resnet50_full_report, tmp_path):
    page, errors = open_page(browser, resnet50_full_report)
    page.fill("#search", "layer1.1.add")
    page.press("#search", "Enter")
    canvas = page.locator("#rfcanvas")
    b = canvas.bounding_box()
    page.mouse.move(b["x"] + b["width"] * 0.43, b["y"] + b["height"] * 0.34)  # an eye of the photo
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000
    if os.environ.get("RFGRAPH_UPDATE_IMAGES"):
        shutil.copyfile(shot, ROOT / "examples" / "images" / "report.png")
    assert errors == []
    page.close()
