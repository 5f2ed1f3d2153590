"""What a person sees in a diagram: pointwise ops folded into their producer, global nodes said
in words, the node's own label, layout options."""

import re
import shutil

import networkx as nx
import pytest

import rfgraph
from rfgraph.render.dot import to_dot


def conv_bn_relu():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(16, 16))
    G.add_node("block.conv", op="conv", kernel=3, padding=1, module="block.conv")
    G.add_node("block.bn", op="identity", module="block.bn")
    G.add_node("block.relu", op="identity", module="block.relu", label="ReLU")
    G.add_node("pool", op="global")
    G.add_edges_from([("x", "block.conv"), ("block.conv", "block.bn"), ("block.bn", "block.relu"),
                      ("block.relu", "pool")])
    return G


def boxes(dot):
    """Names of the drawn boxes, in order (cluster labels and the legend left out)."""
    return [m.group(1) for m in re.finditer(r'^\s*"([^"]+)" \[label=', dot, re.M) if m.group(1) != "legend"]


def test_pointwise_nodes_fold_into_the_op_that_feeds_them():
    a = rfgraph.analyze(conv_bn_relu())
    dot = to_dot(a)
    assert boxes(dot) == ["x", "block.conv", "pool"]
    assert "block.conv\\nconv k3 p1 + bn, relu\\nn 16  jump 1" in dot
    assert '"block.conv" -> "pool";' in dot  # the folded chain's edge starts at its host
    full = to_dot(a, keep_pointwise=True)
    assert boxes(full) == ["x", "block.conv", "block.bn", "block.relu", "pool"]
    assert '"block.relu" [label="ReLU\\nidentity' in full  # the node's own label is its title


def test_global_nodes_say_so_instead_of_a_hull_larger_than_the_input():
    a = rfgraph.analyze(conv_bn_relu())
    assert a["pool"].rf == (18, 18)  # the hull includes the padding: more than the 16 pixels
    line = next(ln for ln in to_dot(a).splitlines() if ln.strip().startswith('"pool"'))
    assert "global (whole input), from pool" in line and "rf 18" not in line


def test_layout_options():
    a = rfgraph.analyze(conv_bn_relu())
    dot = to_dot(a, rankdir="LR", legend=False, title="my net")
    assert "rankdir=LR" in dot and 'label="my net"' in dot and '"legend"' not in dot
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(a, rankdir="sideways")


needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def unet():
    torch = pytest.importorskip("torch")
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    from own_model import TinyFPNUNet

    return rfgraph.from_torch(TinyFPNUNet().eval(), (3, 128, 128))


@needs_dot
@pytest.mark.parametrize("name, size", [("resnet50", 224), ("inception_v3", 299), ("densenet121", 224), ("unet", 128)])
def test_default_diagram_fits_one_page(name, size, tmp_path):
    # one page at 72 dpi: at most 1200 x 1800 pt, text at least 9 pt
    if name == "unet":
        G = unet()
    else:
        pytest.importorskip("torchvision")
        from rfgraph.cli import load_target

        G = load_target(name, (size,))
    out = rfgraph.write_diagram(rfgraph.analyze(G), tmp_path / f"{name}.svg")
    svg = out.read_text()
    width, height = map(int, re.search(r'width="(\d+)pt" height="(\d+)pt"', svg).groups())
    assert width <= 1200 and height <= 1800, (width, height)
    sizes = [float(s) for s in re.findall(r'font-size="([\d.]+)"', svg)]
    assert sizes and min(sizes) >= 9
    if name in ("resnet50", "inception_v3"):
        assert svg.count("<polygon") > 0 and ("add of 2" in svg or "concat of 4" in svg)  # a join is drawn
    if name == "densenet121":  # one dense layer drawn with its concat (stem and layer 1)
        assert "features.denseblock1.denselayer2.cat" in svg and "concat of 2, branch rf 11..19" in svg
