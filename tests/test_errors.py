"""Bad input: each error is one of ours and names the node, the op and the problem."""

import networkx as nx
import pytest

import rfgraph
from rfgraph import CycleError, GraphError, ParameterError, ShapeError, UnsupportedOpError
from hand_graphs import check_bad_node, one


# Per-op parameter errors live beside their op (tests/ops/test_<family>.py); these two concern any node.
@pytest.mark.parametrize(
    "attrs, exc, words",
    [
        ({"op": "frobnicate"}, UnsupportedOpError, "register_op"),
        ({"kernel": 3}, GraphError, "no 'op' attribute"),
    ],
)
def test_bad_parameters(attrs, exc, words):
    check_bad_node(attrs, exc, words)


def test_cycle():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(8,))
    G.add_node("a", op="identity")
    G.add_node("b", op="identity")
    G.add_edges_from([("x", "a"), ("a", "b"), ("b", "a")])
    with pytest.raises(CycleError, match="cycle"):
        rfgraph.analyze(G)


def test_no_input():
    G = nx.DiGraph()
    G.add_node("a", op="conv", kernel=3)
    with pytest.raises(GraphError, match="no input node"):
        rfgraph.analyze(G)


def test_inputs_of_different_sizes():
    G = nx.DiGraph()
    G.add_node("x1", op="input", size=(8, 8))
    G.add_node("x2", op="input", size=(8, 9))
    G.add_node("add", op="add")
    G.add_edges_from([("x1", "add"), ("x2", "add")])
    with pytest.raises(ShapeError, match="x2.*differs"):
        rfgraph.analyze(G)


def test_unreachable_node():
    G = one({"op": "identity"})
    G.add_node("orphan", op="conv", kernel=3)
    G.add_node("add", op="add")
    G.add_edges_from([("bad", "add"), ("orphan", "add")])
    with pytest.raises(GraphError, match="'orphan'.*not reachable from any input"):
        rfgraph.analyze(G)


def test_wrong_number_of_inputs():
    G = one({"op": "conv", "kernel": 1})
    G.add_node("c2", op="conv", kernel=1)
    G.add_edges_from([("x", "c2"), ("bad", "c2")])
    with pytest.raises(GraphError, match="'c2'.*has 2 inputs.*exactly 1"):
        rfgraph.analyze(G)


def test_input_with_incoming_edge():
    G = one({"op": "identity"})
    G.add_node("x2", op="input", size=(16, 16))
    G.add_edge("bad", "x2")
    with pytest.raises(GraphError, match="input node cannot have incoming edges"):
        rfgraph.analyze(G)


def test_join_size_mismatch_but_broadcast_is_fine():
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(16, 16))
    G.add_node("a", op="conv", kernel=3)  # 14
    G.add_node("b", op="conv", kernel=1)  # 16
    G.add_node("add", op="add")
    G.add_edges_from([("x", "a"), ("x", "b"), ("a", "add"), ("b", "add")])
    with pytest.raises(ShapeError, match=r"'add'.*disagree on size along axis 0 \(14, 16\)"):
        rfgraph.analyze(G)
    # a size-1 input broadcasts for add/mul (squeeze-and-excitation)
    G.remove_node("a")
    G.add_node("g", op="global")
    G.add_edges_from([("x", "g"), ("g", "add")])
    assert rfgraph.analyze(G)["add"].n == (16, 16)
    # ... but not for concat
    G.nodes["add"]["op"] = "concat"
    with pytest.raises(ShapeError, match="concat needs equal sizes"):
        rfgraph.analyze(G)


def test_output_with_several_sinks():
    G = one({"op": "identity"})
    G.add_node("other", op="identity")
    G.add_edge("x", "other")
    a = rfgraph.analyze(G)
    with pytest.raises(GraphError, match="2 outputs"):
        a.output
    assert sorted(a.outputs) == ["bad", "other"]


def test_not_a_graph():
    with pytest.raises(GraphError, match="networkx.DiGraph"):
        rfgraph.analyze([1, 2, 3])


def test_chain_rows_are_checked():
    with pytest.raises(ParameterError, match="chain row"):
        rfgraph.chain([("c", "conv", 3)], 32)
