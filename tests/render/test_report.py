"""The interactive report: pure HTML text (escaping, offline), then in a real browser (Debian's
chromium driven by playwright): click a node, read the panel, hover the RF canvas, search, sort.

The browser tests skip, saying why, without playwright or a chromium on PATH. With
``RFGRAPH_UPDATE_IMAGES=1`` the screenshot test also writes ``examples/images/report.png``.
"""

import importlib.util
import os
import re
import shutil
from pathlib import Path

import networkx as nx
import pytest

import rfgraph
from rfgraph.cli import main
from rfgraph.render.html import node_for_title, to_html

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_BROWSER = ("needs playwright (pip install 'rfgraph[report]') and Debian's chromium "
              "(apt-get install chromium; `make install` does both)")
HAVE_BROWSER = importlib.util.find_spec("playwright") is not None and CHROMIUM is not None
HAVE_TORCHVISION = all(importlib.util.find_spec(m) is not None for m in ("torch", "torchvision"))
browser_only = pytest.mark.skipif(not HAVE_BROWSER, reason=NO_BROWSER)


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
    page.locator('#graph g.cluster[data-title="cluster layer4"] > text').first.click()
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
    page.locator('#graph g.node[data-node="add"]').click()
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
def test_screenshot(browser, resnet50_report, tmp_path):
    page, errors = open_page(browser, resnet50_report)
    page.fill("#search", "layer1.0.add")
    page.press("#search", "Enter")
    canvas = page.locator("#rfcanvas")
    b = canvas.bounding_box()
    page.mouse.move(b["x"] + b["width"] * 0.4, b["y"] + b["height"] * 0.4)
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000
    if os.environ.get("RFGRAPH_UPDATE_IMAGES"):
        shutil.copyfile(shot, ROOT / "examples" / "images" / "report.png")
    assert errors == []
    page.close()
