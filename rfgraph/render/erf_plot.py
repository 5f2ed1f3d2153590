"""The effective receptive field as a picture: heatmap, the unit's exact TRF box and centre, the
centre of mass, a colour bar and the metrics in the caption; several results side by side.

Display scaling (the metrics are always computed on the unscaled map, see
:mod:`rfgraph.answers.erf`): Luo's recipe is drawn as ``map / max``; RepLKNet's as RepLKNet
draws it, ``log10(x + 1) / max`` with ``x`` the map scaled to mean 1 over the input.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError, RenderError
from ._files import write_atomic

__all__ = ["plot_erf", "erf_figure", "display_map", "caption"]


def display_map(result):
    """The map as drawn, in [0, 1]."""
    m = np.asarray(result.map, dtype=np.float64)
    if result.recipe == "replknet":
        m = np.log10(m * m.size + 1.0)
    top = m.max()
    return m / top if top > 0 else m


def caption(result) -> str:
    """The metrics in a few lines."""
    axes = "x".join(str(hi - lo + 1) for lo, hi in result.trf_bounds)
    rf = "x".join(f"{v:g}" for v in result.trf.rf)
    f = lambda vals: ", ".join(f"{v:.1f}" for v in vals)  # noqa: E731
    lines = [f"{result.module or '(model output)'} unit {tuple(result.unit)}; {result.recipe}, "
             f"init {result.init or 'as given'}, {result.samples} samples",
             f"TRF {rf} px ({axes} inside the input), centre {f(result.trf_centre)}",
             f"ERF σ {f(result.sigma)} px; centre of mass offset {f(result.offset)} px"]
    parts = []
    for t, r in result.area_ratio.items():
        parts.append(f"{t:g}: {r.side} px, {100 * r.of_input:.2g}% in / {100 * r.of_trf:.2g}% TRF"
                     if r is not None else f"{t:g}: -")
    lines.append("area " + "; ".join(parts[:2]))
    lines.append("      " + "; ".join(parts[2:]))
    for w in result.warnings[:2]:
        lines.append("! " + (w if len(w) <= 68 else w[:65] + "..."))
    return "\n".join(lines)


def plot_erf(results, path, titles=None, dpi=110) -> Path:
    """Draw one result (or a list, side by side) to ``path`` (.png, .svg or .pdf), written whole."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise RenderError(f"cannot write {path.name}: the ERF picture is .png, .svg or .pdf")
    return write_atomic(path, erf_figure(results, fmt, titles=titles, dpi=dpi), binary=True)


def erf_figure(results, format="png", titles=None, dpi=110) -> bytes:
    """The picture :func:`plot_erf` draws, as the bytes of a ``format`` file (png, svg or pdf)."""
    fmt = format
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ModuleNotFoundError:
        raise MissingDependencyError("the ERF picture needs matplotlib: pip install 'rfgraph[erf]'") from None
    if not isinstance(results, (list, tuple)):
        results = [results]
    titles = list(titles or [None] * len(results))
    if fmt not in ("png", "svg", "pdf"):
        raise RenderError(f"the ERF picture is png, svg or pdf, not {fmt!r}")
    k = len(results)
    fig = Figure(figsize=(5.4 * k, 6.0), layout="constrained")
    axes = fig.subplots(1, k, squeeze=False)[0]
    for ax, r, title in zip(axes, results, titles):
        d = display_map(r)
        if d.ndim == 1:
            x = np.arange(d.size)
            ax.fill_between(x, d, step="mid", color="tab:orange", alpha=0.6)
            lo, hi = r.trf_bounds[0]
            ax.axvspan(lo - 0.5, hi + 0.5, color="tab:blue", alpha=0.12, label="TRF")
            ax.axvline(r.trf_centre[0] - 0.5, color="tab:blue", lw=1)
            ax.axvline(r.centre_of_mass[0] - 0.5, color="k", ls=":", lw=1)
            ax.set_xlim(-0.5, d.size - 0.5)
            ax.set_xlabel("input position\n" + caption(r), loc="left", fontsize=8)
        elif d.ndim == 2:
            im = ax.imshow(d, cmap="magma", vmin=0, vmax=1, interpolation="nearest")
            (ylo, yhi), (xlo, xhi) = r.trf_bounds
            ax.add_patch(Rectangle((xlo - 0.5, ylo - 0.5), xhi - xlo + 1, yhi - ylo + 1, fill=False,
                                   ec="#4fc3f7", lw=1.5, ls="--", label="TRF of the unit"))
            cy, cx = r.trf_centre
            ax.plot([cx - 0.5], [cy - 0.5], "+", color="#4fc3f7", ms=12, mew=1.5, label="TRF centre")
            my, mx = r.centre_of_mass
            ax.plot([mx - 0.5], [my - 0.5], "x", color="w", ms=7, mew=1.2, label="ERF centre of mass")
            ax.set_xlim(-0.5, d.shape[1] - 0.5)
            ax.set_ylim(d.shape[0] - 0.5, -0.5)
            ax.legend(loc="lower left", fontsize=7, framealpha=0.6)
            bar = fig.colorbar(im, ax=ax, shrink=0.75, pad=0.02)
            bar.set_label("log10(x+1)/max" if r.recipe == "replknet" else "gradient / max", fontsize=8)
            ax.set_xlabel(caption(r), loc="left", fontsize=8, family="monospace")
        else:
            raise RenderError(f"the ERF picture draws 1-D and 2-D inputs; this one has {d.ndim} axes")
        ax.set_title(title or f"ERF of {r.module or 'the output'} at {'x'.join(map(str, r.input_shape[1:]))}",
                     fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, metadata={"Software": None} if fmt == "png" else None)
    return buf.getvalue()
