"""JSON output: schema_version, stable key order, per-node records, misaligned joins."""

import json

import rfgraph
from rfgraph.render.json import SCHEMA_VERSION, to_json


def test_json_document(tiny):
    a = rfgraph.analyze(tiny)
    text = to_json(a)
    doc = json.loads(text)
    assert list(doc) == ["schema_version", "input_size", "inputs", "outputs", "misaligned", "nodes"]
    assert doc["schema_version"] == SCHEMA_VERSION == 1
    assert doc["input_size"] == [16, 16] and doc["inputs"] == ["x"] and doc["outputs"] == ["pool", "dil"]
    assert [n["name"] for n in doc["nodes"]] == a.order
    assert doc["nodes"] == [a[v].as_dict() for v in a.order]
    add = next(n for n in doc["nodes"] if n["name"] == "add")
    assert list(add)[:6] == ["name", "op", "n", "jump", "rf", "start"]
    assert add["misalignment"] == [0.5, 0.5] and add["module"] == "block"
    assert doc["misaligned"] == [{
        "node": "add", "op": "add", "offsets": [0.5, 0.5],
        "branches": [{"node": "a", "start": [1, 1], "offset": [0, 0.5]},
                     {"node": "b", "start": [0.5, 0.5], "offset": [-0.5, 0]}],
    }]
    assert text == to_json(rfgraph.analyze(tiny))  # deterministic text
    assert text.endswith("}\n")


def test_json_selected_nodes_and_modules(tiny):
    doc = json.loads(to_json(rfgraph.analyze(tiny), nodes=["add"], modules={"block": "add"}))
    assert [n["name"] for n in doc["nodes"]] == ["add"] and doc["modules"] == {"block": "add"}


def test_json_non_string_names():
    G = rfgraph.chain([((1, 2), "conv", 3, 1, 1)], (8,), input_name=0)
    doc = json.loads(to_json(rfgraph.analyze(G)))
    assert [n["name"] for n in doc["nodes"]] == [0, [1, 2]]
