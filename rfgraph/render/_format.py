"""The one per-axis number formatter every renderer uses: ``7`` when the axes agree, else ``7x1``.

Records hold one value per spatial axis; people read one number when the axes agree. Numbers are
written exactly, as JSON writes them: integral floats as integers (``2``), other floats in Python's
shortest round-trip form (``240000.5``, ``0.3333333333333333``), never rounded to a few digits, so a
table, a diagram, an overlay title and the JSON show the same value for the same record.
"""

from __future__ import annotations

__all__ = ["collapse", "cell", "per_axis"]


def collapse(values):
    """One value when every axis agrees, else the tuple.

    >>> collapse((3, 3)), collapse((1, 7)), collapse(("yes", "yes"))
    (3, (1, 7), 'yes')
    """
    return values[0] if all(v == values[0] for v in values) else tuple(values)


def cell(value) -> str:
    """A value or a tuple of values as text: numbers exactly, tuples joined by ``x``.

    >>> cell(3), cell(0.5), cell(2.0), cell((1, 7.5)), cell("add")
    ('3', '0.5', '2', '1x7.5', 'add')
    >>> cell(240000.5), cell(1195741.25), cell(1e-5)  # no rounding to six digits
    ('240000.5', '1195741.25', '1e-05')
    """
    if isinstance(value, tuple):
        return "x".join(cell(x) for x in value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return repr(value)
    return str(value)


def per_axis(values) -> str:
    """Per-axis values as one cell: ``7`` when the axes agree, else ``7x1``.

    >>> per_axis((7, 7)), per_axis([7, 1]), per_axis((0.5, 1.0)), per_axis(("1..2", "2..3"))
    ('7', '7x1', '0.5x1', '1..2x2..3')
    """
    return cell(collapse(tuple(values)))
