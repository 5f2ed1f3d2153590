"""Small hand-built graphs and checks shared by several test modules (no torch)."""

import networkx as nx
import pytest

import rfgraph


def inception_block(size=17):
    """An Inception-style block: 1x1, 1x7 then 7x1, 1x3 and 3x1 branches joined by a concat."""
    G = nx.DiGraph()
    G.add_node("x", op="input", size=(size, size))
    G.add_node("b1", op="conv", kernel=1)
    G.add_node("b7a", op="conv", kernel=(1, 7), padding=(0, 3))
    G.add_node("b7b", op="conv", kernel=(7, 1), padding=(3, 0))
    G.add_node("b13", op="conv", kernel=(1, 3), padding=((0, 0), (1, 1)))
    G.add_node("b31", op="conv", kernel=(3, 1), padding=((1, 1), (0, 0)))
    G.add_node("cat", op="concat")
    G.add_edges_from([("x", "b1"), ("x", "b7a"), ("b7a", "b7b"), ("x", "b13"), ("x", "b31")])
    for i, b in enumerate(["b1", "b7b", "b13", "b31"]):
        G.add_edge(b, "cat", index=i)
    return G


def squeeze_excited(size, *tail):
    """A conv gated by its own global mean (every feature of ``se`` reads every pixel: jump 0),
    then ``tail``: ``(name, op, attrs)`` rows, each reading the previous one."""
    G = nx.DiGraph()
    G.add_node("x", op="input", size=size)
    G.add_node("c", op="conv", kernel=3)  # no padding: every bound is a real pixel
    G.add_node("g", op="global")
    G.add_node("se", op="mul")
    G.add_edges_from([("x", "c"), ("c", "g")])
    G.add_edge("c", "se", index=0)
    G.add_edge("g", "se", index=1)
    last = "se"
    for name, op, attrs in tail:
        G.add_node(name, op=op, **attrs)
        G.add_edge(last, name)
        last = name
    return G


def one(op_attrs, size=(16, 16)):
    """An input ``x`` of ``size`` feeding one node ``bad`` with ``op_attrs``."""
    G = nx.DiGraph()
    G.add_node("x", op="input", size=size)
    G.add_node("bad", **op_attrs)
    G.add_edge("x", "bad")
    return G


def check_bad_node(attrs, exc, words, size=(16, 16)):
    """Analysing ``one(attrs)`` raises ``exc``, one of ours, whose message has ``words`` and names
    the node ``bad`` and (when given) its op."""
    with pytest.raises(exc) as info:
        rfgraph.analyze(one(attrs, size))
    msg = str(info.value)
    assert words in msg
    assert "'bad'" in msg  # names the node
    if "op" in attrs:
        assert repr(attrs["op"]) in msg  # names the op
    assert isinstance(info.value, rfgraph.RFGraphError)
    assert info.value.node == "bad"
