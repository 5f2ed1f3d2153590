"""CSV output."""

import csv
import io

import rfgraph
from rfgraph.render.csv import to_csv


def test_csv_rows_parse_back(tiny):
    a = rfgraph.analyze(tiny)
    text = to_csv(a)
    assert "\r" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["node"] for r in rows] == a.order
    add = rows[a.order.index("add")]
    assert (add["rf"], add["start"], add["notes"]) == ("2x3", "1x0.5", "add of 2; MISALIGNED by 0.5x0.5")


def test_csv_quotes_commas_and_selects_columns():
    text = to_csv([{"node": "a,b", "rf": 3}], columns=("node", "rf"))
    assert text == 'node,rf\n"a,b",3\n'
