"""The table of formats (rfgraph.render): lookup by name, and the CLI's --format choices."""

import argparse

import pytest

import rfgraph
import rfgraph.render.dot
from rfgraph import cli
from rfgraph.errors import RenderError
from rfgraph.render import FORMATS, format_names, get_format
from rfgraph.render.graphviz import write_diagram


def test_render_is_the_package_and_the_diagram_writer_has_its_own_name():
    assert rfgraph.render.dot.to_dot is rfgraph.to_dot
    assert rfgraph.write_diagram is write_diagram
    assert "render" not in rfgraph.__all__ and "write_diagram" in rfgraph.__all__


def test_table_of_formats():
    assert format_names("text") == ("table", "markdown", "json", "csv")
    assert format_names("diagram") == ("svg", "png", "pdf", "dot")
    assert format_names() == format_names("text") + format_names("diagram") == tuple(FORMATS)
    assert all(name == fmt.name and fmt.summary for name, fmt in FORMATS.items())
    assert get_format("svg").render is write_diagram


def test_unknown_format_is_a_render_error_listing_the_known_ones():
    with pytest.raises(RenderError, match="unknown format 'gif'; choose one of table, markdown, json, csv, svg"):
        get_format("gif")
    with pytest.raises(RenderError, match="unknown text format 'svg'; choose one of table, markdown, json, csv$"):
        get_format("svg", "text")
    assert issubclass(RenderError, rfgraph.RFGraphError)


@pytest.mark.parametrize("name", format_names("text"))
def test_every_text_format_renders_a_document_of_the_nodes_asked_for(tiny, name):
    a = rfgraph.analyze(tiny)
    render = get_format(name, "text").render
    text = render(a, nodes=["x", "add"])
    assert text.endswith("\n") and "add" in text
    assert render(a) == render(a, nodes=a.order) != text  # every node by default (no stages here)


def _choices(command):
    sub = next(a for a in cli._parser()._actions if isinstance(a, argparse._SubParsersAction))
    return tuple(next(a for a in sub.choices[command]._actions if a.dest == "format").choices)


def test_cli_format_choices_come_from_the_table():
    assert _choices("analyze") == format_names("text")
    assert _choices("render") == format_names("diagram")
