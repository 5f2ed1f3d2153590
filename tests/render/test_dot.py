"""DOT source: a golden text for a tiny graph, and the structure of collapsed large graphs."""

import math
import re

import networkx as nx
import pytest

import rfgraph
from rfgraph.render import dot as dotmod
from rfgraph.render.dot import rf_class, to_dot
from model_graphs import densenet_like, resnet_like

# Derivations (input 16x16, start 0.5, jump 1):
#   a: k2, padding (0, 1): rf 2, start 0.5 + (1/2 - 0) = 1.  b: k 1x3, padding 0x1: rf 1x3, start 0.5.
#   add: H hull [0,2) centre 1 -> a offset 0, b -0.5; W hull [-1,2) centre 0.5 -> a +0.5, b 0.
#   pool: global: the union of add's 16 features, jump 0. H: [0,2) swept by 15 -> [0,17): rf 17,
#   start 8.5; W: [-1,2) -> [-1,17): rf 18, start 8.  dil: k3 d2 p2 -> ke 5, rf 5, sees pixels {0, 2, 4}: gaps 1, 3.
# Fill classes (rf / 16): x 1/16 -> #9ecae1; a, b, add 1/8..3/16 -> #6baed6; dil 5/16 -> #4292c6.
GOLDEN = r"""digraph rfgraph {
  graph [rankdir=TB, newrank=true, fontname="Helvetica", fontsize=11, labelloc=t, ranksep=0.25, nodesep=0.25, label="receptive fields, input 16x16, 6 nodes, 1 misaligned join"];
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, margin="0.08,0.03"];
  edge [color="#555555", arrowsize=0.6];
  "x" [label="x\ninput 16x16\nn 16  jump 1\nrf 1  start 0.5", fillcolor="#9ecae1"];
  subgraph "cluster block" {
    graph [label="block", style="rounded,dashed", color="#999999", fontcolor="#555555"];
    "a" [label="a\nconv k2 p(0,1)\nn 16  jump 1\nrf 2  start 1", fillcolor="#6baed6"];
    "b" [label="b\nconv k1x3 p0x1\nn 16  jump 1\nrf 1x3  start 0.5", fillcolor="#6baed6"];
    "add" [label="add\nadd of 2, branch rf 1..2x2..3\nn 16  jump 1\nrf 2x3  start 1x0.5\na: rf 2 (offset 0x0.5)\nb: rf 1x3 (offset -0.5x0)\nMISALIGNED by 0.5", shape="hexagon", style="filled", fillcolor="#6baed6", color="#d62728", penwidth="2.5"];
  }
  "pool" [label="pool\nglobal\nn 1\nglobal (whole input), from pool", fillcolor="#08519c", fontcolor="white", color="#6a3d9a", penwidth="2.5"];
  "dil" [label="dil\nconv k3 p2 d2\nn 16  jump 1\nrf 5  start 0.5\nRF gaps at offsets 1,3", style="rounded,filled,dashed", fillcolor="#4292c6"];
  "x" -> "a";
  "x" -> "b";
  "x" -> "dil";
  "a" -> "add";
  "b" -> "add";
  "add" -> "pool";
"""
LEGEND = (
    '  "legend" [shape=plaintext, style="", label=<<font point-size="9"><table border="0" cellborder="1" cellspacing="0" cellpadding="2">'
    '<tr><td colspan="8"><b>fill: rf / input 16x16</b></td></tr>'
    '<tr><td bgcolor="#f7fbff"><font color="black">&lt; 1/64</font></td><td bgcolor="#deebf7"><font color="black">1/64 - 1/32</font></td><td bgcolor="#c6dbef"><font color="black">1/32 - 1/16</font></td><td bgcolor="#9ecae1"><font color="black">1/16 - 1/8</font></td><td bgcolor="#6baed6"><font color="black">1/8 - 1/4</font></td><td bgcolor="#4292c6"><font color="black">1/4 - 1/2</font></td><td bgcolor="#2171b5"><font color="white">1/2 - 1</font></td><td bgcolor="#08519c"><font color="white">&gt;= 1 (whole input)</font></td></tr>'
    '<tr><td colspan="8">hexagon: join &#183; <font color="#d62728">red: misaligned join</font></td></tr>'
    '<tr><td colspan="8"><font color="#6a3d9a">purple: global (whole input)</font> &#183; dashed: RF with gaps</td></tr></table></font>>];'
    "\n"
)


def test_golden_dot_for_a_tiny_graph(tiny):
    assert to_dot(rfgraph.analyze(tiny)) == GOLDEN + LEGEND + "}\n"


def test_dot_is_deterministic_and_leaves_the_graph_alone(tiny):
    before = nx.node_link_data(tiny, edges="edges")
    a = rfgraph.analyze(tiny)
    assert to_dot(a) == to_dot(rfgraph.analyze(tiny))
    assert nx.node_link_data(tiny, edges="edges") == before


def test_rf_classes_follow_the_ratio_to_the_input():
    # 1/64 and the input size itself are class boundaries; the largest axis counts
    assert rf_class((3,), (224,)) == 0
    assert rf_class((4,), (256,)) == 1
    assert rf_class((1, 224), (224, 224)) == len(dotmod.PALETTE) - 1
    assert rf_class((111,), (224,)) == 5 and rf_class((112,), (224,)) == 6


def test_per_axis_values_and_params_in_labels():
    G = rfgraph.chain([("c17", "conv", (1, 7), 1, (0, 3))], 32)
    dot = to_dot(rfgraph.analyze(G))
    assert r'"c17" [label="c17\nconv k1x7 p0x3\nn 32  jump 1\nrf 1x7  start 0.5"' in dot


def test_nodes_subset_draws_only_those_nodes_and_their_edges(tiny):
    dot = to_dot(rfgraph.analyze(tiny), nodes=["x", "a", "dil"])
    assert '"b" [' not in dot and '"add" [' not in dot
    assert _edges(dot) == {("x", "a"), ("x", "dil")}
    with pytest.raises(KeyError, match="nope"):
        to_dot(rfgraph.analyze(tiny), nodes=["nope"])


def _edges(dot):
    return set(re.findall(r'^  "([^"]+)" -> "([^"]+)";$', dot, re.M))


def _items(dot):
    return re.findall(r'^\s+"([^"]+)" \[label=', dot, re.M)


def test_depth_zero_collapses_top_level_modules(tiny):
    dot = to_dot(rfgraph.analyze(tiny), depth=0)
    # block (a, b, add) becomes one box showing the RF at its output, add
    assert '"module block" [label="block\\n3 nodes\\nn 16  jump 1\\nrf 2x3  start 1x0.5' in dot  # add's numbers
    assert "1 MISALIGNED join inside" in dot
    assert _edges(dot) == {("x", "module block"), ("module block", "pool"), ("x", "dil")}
    assert "subgraph" not in dot


def test_resnet152_default_is_readable_and_folds_identical_blocks():
    a = rfgraph.analyze(resnet_like())
    assert len(a) > 500
    dot = to_dot(a)
    items = _items(dot)
    assert len(items) <= dotmod.MAX_ITEMS
    # depth 1: layer clusters with one box per block; layer3.1..35 are identical and folded
    assert '"fold layer3.1..layer3.35"' in dot and "35 identical blocks of 10 nodes" in dot
    assert '"module layer3.0"' in dot and 'subgraph "cluster layer3"' in dot
    # edges between boxes appear once each
    lines = [line for line in dot.splitlines() if " -> " in line]
    assert len(lines) == len(set(lines))
    assert nx.is_directed_acyclic_graph(nx.DiGraph(list(_edges(dot))))
    # each box reports the RF at its module's output node
    rec = a[a.graph.graph["module_outputs"]["layer2.0"]]
    assert f'"module layer2.0" [label="layer2.0\\n12 nodes\\nn 28  jump 8\\nrf {rec.rf[0]}' in dot
    # the first block of each kind is drawn inside, so the residual shortcuts show: layer1.0 (with
    # its downsample branch) and layer1.1 (identity shortcut); their repeats stay boxes
    assert '"layer1.0.downsample.0" -> "layer1.0.add";' in dot and '"layer1.0.add" -> "layer1.1.add";' in dot
    assert '"module layer2.1"' not in dot and '"module layer1.0"' not in dot


def test_fold_false_keeps_every_block():
    dot = to_dot(rfgraph.analyze(resnet_like()), depth=1, fold=False)
    assert '"fold ' not in dot and '"module layer3.35"' in dot


@pytest.mark.parametrize("depth", [0, 1, 2, 3, math.inf])
def test_a_module_called_twice_is_never_merged_into_one_box(depth):
    # torchvision's Bottleneck calls self.relu three times: one box would draw a cycle
    a = rfgraph.analyze(resnet_like((1, 2, 1, 1)))
    dot = to_dot(a, depth=depth, keep_pointwise=True)  # every node, ReLUs included
    assert '"module layer1.0.relu"' not in dot
    assert nx.is_directed_acyclic_graph(nx.DiGraph(list(_edges(dot))))
    if depth == math.inf:
        assert len(_items(dot)) == len(a)


def test_densenet_default_keeps_edges_few():
    a = rfgraph.analyze(densenet_like())
    dot = to_dot(a)
    # every dense layer reads all earlier ones: layer-level boxes would need ~2000 edges
    assert len(_edges(dot)) <= dotmod.MAX_EDGES
    assert '"module features.denseblock3"' in dot
    full = to_dot(a, depth=2)
    assert len(_edges(full)) > dotmod.MAX_EDGES


def test_densenet_default_expands_one_dense_layer_with_its_concat():
    a = rfgraph.analyze(densenet_like())
    dot = to_dot(a)
    # the first dense block is too tall to draw node by node: it is opened one level (its dense
    # layers as boxes) and the first dense layer is drawn node by node, its concat a hexagon (in
    # this graph layer 1 concatenates the stem alone; torchvision's, in test_dot_view, from layer 2)
    assert 'subgraph "cluster features.denseblock1"' in dot
    assert 'subgraph "cluster features.denseblock1.denselayer1"' in dot
    line = next(ln for ln in dot.splitlines() if ln.strip().startswith('"features.denseblock1.denselayer1.cat"'))
    assert 'shape="hexagon"' in line and "concat of 1, branch rf 11" in line
    # the other dense layers are boxes (alike, but each reads all before it: not folded)
    assert all(f'"module features.denseblock1.denselayer{i}"' in dot for i in range(2, 7))
    assert "denselayer2.cat" not in dot and '"module features.denseblock2"' in dot
    assert len(_edges(dot)) <= dotmod.MAX_EDGES


def test_many_branches_are_abbreviated():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8,))
    G.add_node("cat", op="concat")
    for i in range(12):
        # padded on the right only: the branches' centres differ, so the join lists them
        G.add_node(f"c{i}", op="conv", kernel=1 + 2 * (i % 3), padding=((0, 2 * (i % 3)),))
        G.add_edge("x", f"c{i}")
        G.add_edge(f"c{i}", "cat", index=i)
    dot = to_dot(rfgraph.analyze(G))
    assert "concat of 12, branch rf 1..5" in dot
    assert "c7: rf 3" in dot and "c8:" not in dot and "... 4 more" in dot


def test_negative_depth_is_an_error(tiny):
    with pytest.raises(ValueError, match="depth"):
        to_dot(rfgraph.analyze(tiny), depth=-1)
