"""Markdown table output."""

import rfgraph
from rfgraph.render.markdown import to_markdown


def test_markdown_table(tiny):
    a = rfgraph.analyze(tiny)
    md = to_markdown(a)
    lines = md.splitlines()
    assert lines[0] == "| node | op | n | jump | rf | start | padding | notes |"
    assert lines[1] == "| :--- | :--- | ---: | ---: | ---: | ---: | ---: | :--- |"
    assert "| add | add | 16 | 1 | 2x3 | 1x0.5 | 0x1 | add of 2; MISALIGNED by 0.5x0.5 |" in lines
    assert len(lines) == 2 + len(a)


def test_markdown_from_rows_with_columns_and_escaping():
    rows = [{"stage": "a|b", "node": "n", "rf": (1, 7)}]
    assert to_markdown(rows, columns=("stage", "node", "rf")).splitlines()[2] == "| a\\|b | n | 1x7 |"
