"""Spec files whose graph-level metadata is wrong are rejected when read, naming the file; a UTF-8
byte-order mark is simply accepted."""

import json

import pytest

import rfgraph
from rfgraph.frontends.spec import loads_spec, read_spec, write_spec

BASE = {"schema_version": 1,
        "nodes": [{"name": "x", "op": "input", "size": [8, 8]}, {"name": "c", "op": "conv", "kernel": 3},
                  {"name": 7, "op": "identity"}],
        "edges": [["x", "c"], ["c", 7]]}


def text(**graph):
    return json.dumps(dict(BASE, graph=graph))


@pytest.mark.parametrize("graph, words", [
    ({"module_outputs": ["c"]}, "'graph'.module_outputs must be an object mapping module names to node names, got a list"),
    ({"module_outputs": {"layer1": "nope"}}, "maps module 'layer1' to 'nope', which is not a node"),
    ({"module_outputs": {"layer1": {"x": 1}}}, "maps module 'layer1' to {'x': 1}, which is not a node"),
    ({"module_outputs": {"layer1": "7"}}, "maps module 'layer1' to '7'"),  # the node is the integer 7
    ({"module_layouts": [1, 2]}, "'graph'.module_layouts must be an object mapping module names to lists of dims"),
    ({"module_layouts": {"layer1": 2}}, "gives module 'layer1' 2; it must be a list of tensor dims"),
    ({"module_layouts": {"layer1": [1, "2"]}}, "gives module 'layer1' (1, '2')"),
    ({"outputs": "c"}, "'graph'.outputs must be a list of node names, got a string"),
    ({"outputs": ["c", "q"]}, "'graph'.outputs names 'q', which is not a node"),
    ({"shapes": [1, 2]}, "'graph'.shapes must be an object"),
    ({"model": 3}, "'graph'.model must be a string, got a number"),
    ({"global_ops": True}, "'graph'.global_ops must be an object mapping op names to counts, got true or false"),
])
def test_bad_metadata_is_a_spec_error_naming_the_file(graph, words):
    with pytest.raises(rfgraph.SpecError) as info:
        loads_spec(text(**graph), source="net.json")
    assert str(info.value).startswith("net.json: ") and words in str(info.value), str(info.value)


def test_good_metadata_is_kept():
    G = loads_spec(text(module_outputs={"layer1": "c", "head": 7}, outputs=[7], model="Net", other={"a": 1},
                        module_layouts={"layer1": [1, 2]}))
    assert G.graph["module_outputs"] == {"layer1": "c", "head": 7}
    assert rfgraph.schema.module_layouts(G) == {"layer1": (1, 2)}
    assert rfgraph.analyze(G).module("layer1").rf == (3, 3)


def test_byte_order_mark(tmp_path):
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + text(module_outputs={"m": "c"}).encode())
    G = read_spec(path)
    assert list(G) == ["x", "c", 7] and G.graph["module_outputs"] == {"m": "c"}
    assert list(loads_spec("\ufeff" + text())) == ["x", "c", 7]
    # written back without a mark, and read back equal
    assert dict(read_spec(write_spec(G, tmp_path / "again.json")).nodes(data=True)) == dict(G.nodes(data=True))
    assert not (tmp_path / "again.json").read_bytes().startswith(b"\xef\xbb\xbf")
