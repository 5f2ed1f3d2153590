"""Graph spec files: exact round trip of the graph schema, clear errors for malformed files."""

import json

import networkx as nx
import pytest

import rfgraph
from rfgraph.errors import CycleError, SpecError
from rfgraph.frontends.spec import dumps_spec, loads_spec
from residual_block import residual_block
from hand_graphs import inception_block


def records(G):
    a = rfgraph.analyze(G)
    return [a[v].as_dict() for v in a.order]


def resnet_with_modules():
    from render.model_graphs import resnet_like

    return resnet_like((1, 2, 1, 1), size=64)


@pytest.mark.parametrize("build", [residual_block, inception_block, resnet_with_modules],
                         ids=["residual", "inception", "resnet-like"])
def test_round_trip_gives_the_same_numbers(build, tmp_path):
    G = build()
    path = rfgraph.write_spec(G, tmp_path / "net.json")
    H = rfgraph.read_spec(path)
    assert records(H) == records(G)
    assert list(H.nodes) == list(G.nodes)
    assert {v: list(H.pred[v]) for v in H} == {v: list(G.pred[v]) for v in G}  # join input order
    assert dict(H.nodes(data=True)) == dict(G.nodes(data=True))
    assert [(u, v, d) for u, v, d in H.edges(data=True)] == [(u, v, d) for u, v, d in G.edges(data=True)]
    assert H.graph == G.graph
    assert dumps_spec(H) == path.read_text()  # stable text


def test_tuples_come_back_as_tuples_and_index_is_kept(tmp_path):
    G = inception_block()
    H = rfgraph.read_spec(rfgraph.write_spec(G, tmp_path / "i.json"))
    assert H.nodes["b13"]["padding"] == ((0, 0), (1, 1)) and H.nodes["x"]["size"] == (17, 17)
    assert H.edges["b31", "cat"] == {"index": 3}
    text = (tmp_path / "i.json").read_text()
    assert '{"from": "b31", "to": "cat", "index": 3}' in text and '["x", "b1"]' in text


def test_edge_forms_and_non_string_names():
    G = loads_spec(json.dumps({
        "schema_version": 1,
        "nodes": [{"name": 0, "op": "input", "size": [8]}, {"name": [1, "a"], "op": "conv", "kernel": 3}],
        "edges": [{"from": 0, "to": [1, "a"]}],
    }))
    assert list(G.edges) == [(0, (1, "a"))]
    assert rfgraph.analyze(G)[(1, "a")].rf == (3,)


def test_strings_are_never_evaluated():
    G = loads_spec('{"schema_version": 1, "nodes": [{"name": "x", "op": "input", "size": [4], '
                   '"note": "__import__(\'os\').system(\'false\')"}], "edges": []}')
    assert G.nodes["x"]["note"] == "__import__('os').system('false')"


def test_a_cycle_reads_but_does_not_analyze(tmp_path):
    path = tmp_path / "cycle.json"
    path.write_text(json.dumps({"schema_version": 1, "nodes": [
        {"name": "x", "op": "input", "size": [8]}, {"name": "a", "op": "conv", "kernel": 1},
        {"name": "b", "op": "add"}], "edges": [["x", "b"], ["b", "a"], ["a", "b"]]}))
    with pytest.raises(CycleError, match="cycle"):
        rfgraph.analyze(rfgraph.read_spec(path))


GOOD_NODES = [{"name": "x", "op": "input", "size": [8]}, {"name": "c", "op": "conv", "kernel": 3}]


@pytest.mark.parametrize("text, message", [
    ("{", "invalid JSON at line 1 column 2"),
    ("[1, 2]", "expected a JSON object with 'nodes' and 'edges', got a list"),
    ('{"nodes": [], "edges": []}', "missing 'schema_version'"),
    ('{"schema_version": 2, "nodes": [], "edges": []}', "schema_version 2 is not supported"),
    ('{"schema_version": 1, "node": []}', "unknown key(s) 'node'"),
    ('{"schema_version": 1, "nodes": []}', "'nodes' must be a non-empty list"),
    ('{"schema_version": 1, "nodes": [3]}', "nodes[0] must be an object"),
    ('{"schema_version": 1, "nodes": [{"op": "input"}]}', "nodes[0] has no 'name'"),
    ('{"schema_version": 1, "nodes": [{"name": null, "op": "input"}]}', "a node name must be a string"),
    ('{"schema_version": 1, "nodes": [{"name": "x"}]}', "nodes[0] ('x') needs an 'op' string"),
    ('{"schema_version": 1, "nodes": [{"name": "x", "op": "input", "size": NaN}]}', "NaN is not allowed"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES * 2}), "nodes[2]: duplicate node name 'x'"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES, "edges": {}}), "'edges' must be a list"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES, "edges": [["x"]]}), "edges[0] must be [from, to]"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES, "edges": [["x", "d"]]}),
     "edges[0] refers to unknown node 'd'"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES, "edges": [{"from": "x"}]}), "needs 'from' and 'to'"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES, "edges": [{"from": "x", "to": "c", "index": "0"}]}),
     "'index' must be an integer"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES, "edges": [["x", "c"], ["x", "c"]]}),
     "edges[1]: duplicate edge 'x' -> 'c'"),
    (json.dumps({"schema_version": 1, "nodes": GOOD_NODES, "edges": ["x"]}), "edges[0] must be [from, to] or"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        rfgraph.read_spec(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        rfgraph.read_spec(tmp_path / "missing.json")
    with pytest.raises(SpecError, match="is a directory"):
        rfgraph.read_spec(tmp_path)


def test_write_rejects_what_json_cannot_hold(tmp_path):
    G = rfgraph.chain([("c", "conv", 3, 1, 1)], (8,))
    G.nodes["c"]["info"] = object()
    with pytest.raises(SpecError, match="node 'c', attribute 'info': a object cannot be written"):
        rfgraph.write_spec(G, tmp_path / "net.json")
    assert not (tmp_path / "net.json").exists()  # nothing half-written
    G.nodes["c"]["info"] = float("nan")
    with pytest.raises(SpecError, match="nan cannot be written"):
        dumps_spec(G)
    G.nodes["c"]["info"] = None
    G.nodes["c"]["name"] = "clash"
    with pytest.raises(SpecError, match="'name' is reserved"):
        dumps_spec(G)
    with pytest.raises(SpecError, match="expected a networkx.DiGraph"):
        dumps_spec(nx.MultiDiGraph())


def test_numpy_scalars_are_written_as_numbers():
    np = pytest.importorskip("numpy")
    G = rfgraph.chain([("c", "conv", np.int64(3), 1, 1)], (8,))
    assert '"kernel": 3,' in dumps_spec(G)
