"""The one per-axis number formatter (rfgraph.render._format), shared by every renderer."""

import pytest

from rfgraph.render import _format, csv, dot, markdown, overlay, table
from rfgraph.render._format import cell, collapse, per_axis


@pytest.mark.parametrize("values, text", [
    ((7, 7), "7"),            # the axes agree: one number
    ((7, 1), "7x1"),          # they differ: one per axis, H first
    ((0.5, 0.5), "0.5"),      # floats with %g ...
    ((2.0, 113.5), "2x113.5"),  # ... so 2.0 is "2", as in the blog tables
    ((1, 1.0), "1"),          # equal numbers are equal whatever their type
    ((3, 3, 5), "3x3x5"),     # 3-D
    (("yes", "no"), "yesxno"),
    ([4, 4], "4"),            # any sequence
])
def test_per_axis(values, text):
    assert per_axis(values) == text


def test_cell_and_collapse():
    assert cell((3, 3)) == "3x3"  # a tuple given as is is not collapsed
    assert cell(1e-5) == "1e-05" and cell(("a", 2)) == "ax2" and cell(None) == "None"
    assert collapse((1, 7)) == (1, 7) and collapse([5, 5]) == 5


def test_every_renderer_uses_the_one_formatter():
    assert dot._v is per_axis
    assert overlay.per_axis is per_axis and table.per_axis is per_axis
    assert markdown.cell is csv.cell is table.cell is cell
    for module in (table, dot, overlay, markdown, csv):
        assert not hasattr(module, "_collapse"), module
    assert _format.__all__ == ["collapse", "cell", "per_axis"]
