"""Figures of `spatten reproduce` and the figure helpers every report shares (matplotlib Agg).

The figures: DRAM access reduction per benchmark, the GPT-2 speedup breakdown over TITAN Xp, the roofline
(executed and dense-equivalent ops) and the energy per benchmark by module (absolute and shares).

Each figure has a pure builder that returns a :class:`matplotlib.figure.Figure` (tests read titles,
labels, scales, points and annotations back from it) and :func:`save_figure` writes it as a 200 dpi PNG
plus a PDF. The helpers (:func:`new_figure`, :func:`save_figure`, :func:`si_scale`, :func:`log2_axis`,
:func:`cluster_points`, :func:`annotate_counts`) are shared with ``sweep_plots`` and ``topk_latency``.
"""

from __future__ import annotations

import os
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter, NullLocator

__all__ = [
    "MOVABLE",
    "OPTIONAL",
    "PNG_DPI",
    "VECTOR_FORMAT",
    "annotate_counts",
    "breakdown_figure",
    "cluster_points",
    "declutter",
    "dram_reduction_figure",
    "energy_figure",
    "is_pow2",
    "log10_axis",
    "log2_axis",
    "new_figure",
    "roofline_figure",
    "roofline_series",
    "save_figure",
    "si_scale",
    "write_figures",
]

PNG_DPI = 200
VECTOR_FORMAT = "pdf"
FAMILY_COLORS = {"BERT": "tab:blue", "GPT-2": "tab:red"}
MOVABLE = "movable-label"  # gid of annotations declutter() may move
OPTIONAL = "optional-label"  # ... and may hide when no spot next to their point is free
_PREFIX = {-9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}


# --- shared helpers ------------------------------------------------------------------------------


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout Figure on an Agg canvas, outside pyplot (no global state to close).

    Parameters
    ----------
    width, height : float
        Size in inches; the PNG is ``width * 200`` by ``height * 200`` pixels.
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, stem: str | os.PathLike) -> list[Path]:
    """Write ``stem.png`` (200 dpi) and ``stem.pdf``, each atomically; return both paths.

    Parameters
    ----------
    fig : Figure
        The figure to write.
    stem : path-like
        Destination without extension (a dot in the name is kept, e.g. ``sensitivity_a.b``).

    Returns
    -------
    list of Path
        The PNG and the PDF.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    # TrueType (42) fonts in the PDF: camera-ready checkers reject the default Type 3 fonts. No
    # creation date, so rerunning with the same data gives the same file.
    engine = fig.get_layout_engine()
    try:
        with rc_context({"pdf.fonttype": 42}):
            for ext, meta in (("png", {"Software": None}), (VECTOR_FORMAT, {"CreationDate": None})):
                paths.append(_save_atomic(fig, stem.parent / f"{stem.name}.{ext}", meta))
                # The PNG's draw laid the figure out (in figure fractions, whatever the dpi): the PDF
                # reuses that layout instead of solving it again.
                fig.set_layout_engine("none")
    finally:
        fig.set_layout_engine(engine)
    return paths


def _save_atomic(fig: Figure, dest: Path, meta: dict[str, Any]) -> Path:
    """Save to a temporary beside ``dest`` and rename it into place: no half-written figure."""
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, format=dest.suffix[1:], dpi=PNG_DPI, metadata=meta)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def si_scale(values: Any, unit: str) -> tuple[float, str]:
    """Factor and prefixed unit that show ``values`` with the largest magnitude between 1 and 999.

    Parameters
    ----------
    values : array-like
        Values in the base unit (seconds, joules, bytes, ...); NaNs and zeros are ignored.
    unit : str
        The base unit, e.g. ``"s"``, ``"J"``, ``"B"``.

    Returns
    -------
    tuple of (float, str)
        Multiply by the factor to get the prefixed unit, e.g. ``(1e3, "ms")``.
    """
    v = np.abs(np.asarray(values, dtype=float).ravel())
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return 1.0, unit
    exp = int(np.floor(np.log10(v.max()) / 3) * 3)
    exp = min(max(exp, -9), 12)
    return 10.0**-exp, f"{_PREFIX[exp]}{unit}"


def is_pow2(values: Sequence[Any]) -> bool:
    """True if every value is a positive integral power of two and there are at least two distinct."""
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        return False
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0) or np.any(v != np.round(v)):
        return False
    return bool(np.all(np.log2(v) == np.round(np.log2(v)))) and len(np.unique(v)) > 1


def log2_axis(ax: Axes, which: str, values: Sequence[float]) -> None:
    """Make the ``which`` axis (``"x"`` or ``"y"``) log2, one tick per value, labelled ``16`` not ``2^4``."""
    ticks = sorted({float(v) for v in values})
    getattr(ax, f"set_{which}scale")("log", base=2)
    axis = getattr(ax, f"{which}axis")
    axis.set_ticks(ticks)
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())


def log10_axis(ax: Axes, which: str) -> None:
    """Log10 ``which`` axis with decade ticks labelled as plain numbers and no minor labels (they collide)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def cluster_points(
    x: Sequence[float],
    y: Sequence[float],
    xlog: bool = False,
    ylog: bool = False,
    tol: float = 0.012,
    limits: tuple[tuple[float, float], tuple[float, float]] | None = None,
) -> list[np.ndarray]:
    """Group points that would be drawn on top of each other.

    Coordinates are normalised to the plotted span (in log space for a log axis); a point joins the first
    group whose first point is within ``tol`` of it in both directions.

    Parameters
    ----------
    x, y : sequence of float
        Finite coordinates (positive on a log axis).
    xlog, ylog : bool
        Whether the axis is logarithmic.
    tol : float
        Fraction of the span counted as the same place (about a marker's width).
    limits : ((xmin, xmax), (ymin, ymax)), optional
        The span to normalise by (the whole panel's data); default the span of ``x`` and ``y``.

    Returns
    -------
    list of numpy.ndarray
        Indices of each group, in order of first appearance.
    """
    coords = []
    for i, (v, log) in enumerate(((x, xlog), (y, ylog))):
        a = np.asarray(v, dtype=float)
        lo, hi = limits[i] if limits else (a.min(), a.max()) if a.size else (0.0, 0.0)
        f = np.log10 if log else np.asarray
        span = float(f(hi) - f(lo))
        coords.append((f(a) - f(lo)) / span if span > 0 else np.zeros_like(a))
    u, w = coords
    seeds = np.empty((len(u), 2))
    members: list[list[int]] = []
    for i in range(len(u)):
        k = len(members)
        near = np.flatnonzero(np.all(np.abs(seeds[:k] - (u[i], w[i])) <= tol, axis=1))
        if near.size:
            members[near[0]].append(i)
        else:
            seeds[k] = u[i], w[i]
            members.append([i])
    return [np.array(m) for m in members]


def annotate_counts(
    ax: Axes, x: Sequence[float], y: Sequence[float], counts: Sequence[int], **kw: Any
) -> None:
    """Write ``×n`` above-left of each drawn point that stands for ``n > 1`` coinciding points.

    The labels are optional: :func:`declutter` moves one that lands on another label or a marker and
    hides it when no spot next to its point is free (a count far from its marker would be misread).
    """
    for xi, yi, n in zip(x, y, counts, strict=True):
        if n > 1:
            ax.annotate(
                f"×{n}",
                (xi, yi),
                xytext=(-3, 3),
                textcoords="offset points",
                ha="right",
                va="bottom",
                gid=OPTIONAL,
                **kw,
            )


# Where a movable label may go around its point: (dx, dy) directions, with the alignment that keeps the
# text on that side of the point.
_SPOTS = [
    (-1, 1, "right", "bottom"),
    (1, 1, "left", "bottom"),
    (-1, 0, "right", "center"),
    (1, 0, "left", "center"),
    (-1, -1, "right", "top"),
    (1, -1, "left", "top"),
    (0, 1.6, "center", "bottom"),
    (0, -1.6, "center", "top"),
]


def _marker_boxes(ax: Axes) -> np.ndarray:
    """Display-space boxes (x0, y0, x1, y1) of the scatter markers of ``ax``."""
    boxes = []
    for c in ax.collections:
        offsets = c.get_offsets()
        if not isinstance(c, PathCollection) or len(offsets) == 0:
            continue
        xy = ax.transData.transform(offsets)
        r = np.sqrt(np.resize(c.get_sizes(), len(xy))) / 2 * ax.figure.dpi / 72  # s is in points²
        boxes.append(np.column_stack([xy[:, 0] - r, xy[:, 1] - r, xy[:, 0] + r, xy[:, 1] + r]))
    return np.concatenate(boxes) if boxes else np.empty((0, 4))


def _hits(box: Any, boxes: np.ndarray) -> int:
    """How many of ``boxes`` overlap ``box``."""
    return int(
        np.count_nonzero(
            (boxes[:, 0] < box.x1) & (boxes[:, 2] > box.x0) & (boxes[:, 1] < box.y1) & (boxes[:, 3] > box.y0)
        )
    )


def _move(t: Annotation, spot: tuple[float, float, str, str]) -> None:
    t.xyann = spot[:2]
    t.set(ha=spot[2], va=spot[3])


def declutter(fig: Figure) -> dict[Axes, int]:
    """Move each movable annotation to the first spot around its point free of labels and markers.

    Runs the final layout first, so positions are those of the saved file: call it after the last
    change to the layout (titles, legends). Labels are placed in the order they were added. With no
    free spot a ``MOVABLE`` label goes to the least crowded one and an ``OPTIONAL`` one is hidden.

    Parameters
    ----------
    fig : Figure
        A figure whose movable labels carry ``gid=MOVABLE`` or ``gid=OPTIONAL``.

    Returns
    -------
    dict of Axes to int
        How many ``OPTIONAL`` labels each axes hid (a caption should say so).
    """
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    hidden = {}
    for ax in fig.axes:
        labels = [t for t in ax.texts if isinstance(t, Annotation) and t.get_gid() in (MOVABLE, OPTIONAL)]
        markers = _marker_boxes(ax)
        taken = np.vstack([markers, np.empty((len(labels), 4))])  # markers, then each placed label
        n = len(markers)
        frame = ax.get_window_extent(renderer)
        hidden[ax] = 0
        for t in labels:
            box = _place(t, renderer, frame, taken[:n])
            if box is None:
                hidden[ax] += 1
                continue
            taken[n] = box.x0, box.y0, box.x1, box.y1
            n += 1
    return hidden


def _place(t: Annotation, renderer: Any, frame: Any, taken: np.ndarray) -> Any:
    """Move ``t`` to its first free spot inside ``frame``; return its box, or None if hidden."""
    d = max(abs(v) for v in t.xyann) or 3.0
    start = (*t.xyann, t.get_ha(), t.get_va())
    # the ring of spots next to the point, then one twice as far out
    spots = [start] + [(dx * d * k, dy * d * k, ha, va) for k in (1, 2) for dx, dy, ha, va in _SPOTS]
    best = (np.inf, start)
    for spot in spots:
        _move(t, spot)
        box = t.get_window_extent(renderer)
        inside = frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
        cost = _hits(box, taken) + (0 if inside else 100)
        if cost == 0:
            return box
        best = min(best, (cost, spot), key=lambda b: b[0])
    if t.get_gid() == OPTIONAL:
        t.set_visible(False)
        return None
    _move(t, best[1])  # no free spot: the least crowded one
    return t.get_window_extent(renderer)


def _family(models: Any) -> np.ndarray:
    return np.where(np.asarray(models, dtype=str).astype("U4") == "bert", "BERT", "GPT-2")


def _wrap(label: str, width: int = 16) -> str:
    return "\n".join(textwrap.wrap(label, width)) or label


# --- the figures of `spatten reproduce` ------------------------------------------------------------


def dram_reduction_figure(table: Any, paper_avg: float, accelerator: str = "SpAtten") -> Figure:
    """DRAM access reduction over dense fp32 per benchmark, bars grouped by model, with the means.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per benchmark: ``benchmark``, ``model``, ``dram_reduction`` (and ``task``).
    paper_avg : float
        The paper's average reduction, drawn as a reference line.
    accelerator : str
        Name of the design in the title.

    Returns
    -------
    Figure
    """
    fam = _family(table["model"])
    red = table["dram_reduction"].to_numpy(dtype=float)
    tasks = table["task"] if "task" in table else table["benchmark"].str.split("/").str[-1]
    x = np.arange(len(table))
    fig = new_figure(11, 4.6)
    ax = fig.add_subplot()
    for name, color in FAMILY_COLORS.items():
        sel = fam == name
        if sel.any():
            ax.bar(x[sel], red[sel], 0.75, color=color, label=f"{name} ({int(sel.sum())} benchmarks)")
    for xi, v in zip(x, red, strict=True):
        ax.annotate(f"{v:.1f}", (xi, v), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=6)
    ax.axhline(red.mean(), color="k", ls="--", lw=1, label=f"ours, mean of {len(red)}: {red.mean():.1f}×")
    ax.axhline(paper_avg, color="tab:green", ls=":", lw=1.5, label=f"paper, average: {paper_avg:.1f}×")
    # Model names head their group of bars inside the axes (room made by the y limit), with separators.
    models = table["model"].to_numpy(dtype=str)
    starts = np.flatnonzero(np.r_[True, models[1:] != models[:-1]])
    ends = np.r_[starts[1:], len(models)]
    for s, e in zip(starts, ends, strict=True):
        ax.text((s + e - 1) / 2, 0.97, models[s], transform=ax.get_xaxis_transform(), ha="center", va="top")
        if s:
            ax.axvline(s - 0.5, color="0.7", lw=0.8)
    ax.set_ylim(0, max(red.max(), paper_avg) * 1.3)
    ax.set_xlim(-0.6, len(x) - 0.4)
    ax.set_xticks(x, list(tasks), rotation=90, fontsize=7)
    ax.set_xlabel("benchmark (task)")
    ax.set_ylabel("DRAM access reduction over dense fp32 (×)")
    ax.legend(fontsize=8, loc="center left")
    nb, ng = int((fam == "BERT").sum()), int((fam == "GPT-2").sum())
    ax.set_title(
        f"DRAM access reduction of {accelerator} over dense fp32: {len(red)} benchmarks "
        f"({nb} BERT, {ng} GPT-2)\ncascade token/head pruning, local value pruning, progressive quantization",
        fontsize=10,
    )
    return fig


def breakdown_figure(
    steps: Mapping[str, float], paper: Mapping[str, float], n_benchmarks: int | None = None
) -> Figure:
    """Cumulative GPT-2 speedup over TITAN Xp after each technique, ours beside the paper's.

    Bar ``i`` is the product of the step speedups ``0..i`` (the speedup with techniques ``0..i`` applied),
    on a linear axis from 0 with TITAN Xp as the 1× base; each bar is annotated with its cumulative value
    and its own step.

    Parameters
    ----------
    steps : mapping of str to float
        Speedup of each step over the previous one (the first over TITAN Xp), in order.
    paper : mapping of str to float
        The paper's step speedups (missing steps are not drawn).
    n_benchmarks : int, optional
        Number of GPT-2 benchmarks behind the geomean, for the title.

    Returns
    -------
    Figure
    """
    names = list(steps)
    step_ours = np.array([steps[s] for s in names], dtype=float)
    step_paper = np.array([paper.get(s, np.nan) for s in names], dtype=float)
    fig = new_figure(9, 4.6)
    ax = fig.add_subplot()
    ax.bar(0, 1.0, 0.5, color="0.6", label="TITAN Xp (base, 1×)")
    ax.annotate("1×", (0, 1.0), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=8)
    x = np.arange(1, len(names) + 1)
    tops = [1.0]
    for dx, step, label, color in (
        (-0.2, step_ours, "ours (simulated)", "tab:blue"),
        (0.2, step_paper, "paper", "tab:orange"),
    ):
        cum = np.cumprod(step)
        ok = np.isfinite(cum)
        ax.bar(x[ok] + dx, cum[ok], 0.38, color=color, label=label)
        for xi, c, s in zip(x[ok] + dx, cum[ok], step[ok], strict=True):
            text = f"{c:.1f}×\n(step ×{s:.3g})"
            ax.annotate(text, (xi, c), xytext=(0, 2), textcoords="offset points", ha="center", fontsize=7)
        tops += list(cum[ok])
    ax.set_ylim(0, max(tops) * 1.2)
    ax.set_xticks(np.r_[0, x], ["TITAN Xp\n(base)"] + [_wrap(n) for n in names], fontsize=8)
    ax.set_ylabel("cumulative speedup over TITAN Xp (×)")
    ax.legend(fontsize=8, loc="upper left")
    over = f"geomean of {n_benchmarks} GPT-2 benchmarks" if n_benchmarks else "GPT-2 geomean"
    ax.set_title(
        f"GPT-2 speedup breakdown of SpAtten (full size) over TITAN Xp (roofline model): {over}", fontsize=10
    )
    return fig


def roofline_series(table: Any) -> list[dict[str, Any]]:
    """Roofline points of SpAtten and A3 per model family, in executed and in dense-equivalent ops.

    Executed ops are the work the design does; dense-equivalent ops are those of the unpruned model over
    the same time and DRAM bytes, so the two points of one run lie on a line of slope 1.

    Parameters
    ----------
    table : pandas.DataFrame
        The benchmark table: ``model``, ``gops``, ``dense_equiv_gops``, ``seconds``, ``dram_bytes`` and,
        for A3, ``a3_gops``, ``a3_dense_equiv_gops``, ``a3_op_per_byte``.

    Returns
    -------
    list of dict
        ``label``, ``intensity`` and ``gops`` arrays, ``marker``, ``color``, ``filled``.
    """
    fam = _family(table["model"])
    ops_bytes = table["seconds"].to_numpy(float) * 1e9 / table["dram_bytes"].to_numpy(float)
    gops, dense = table["gops"].to_numpy(float), table["dense_equiv_gops"].to_numpy(float)
    designs = [("SpAtten", gops * ops_bytes, gops, dense, {"BERT": "o", "GPT-2": "s"})]
    if {"a3_gops", "a3_op_per_byte", "a3_dense_equiv_gops"} <= set(table.columns):
        a3, a3_dense = table["a3_gops"].to_numpy(float), table["a3_dense_equiv_gops"].to_numpy(float)
        designs.append(
            ("A3", table["a3_op_per_byte"].to_numpy(float), a3, a3_dense, {"BERT": "^", "GPT-2": "v"})
        )
    colors = {
        "SpAtten": {"BERT": "tab:blue", "GPT-2": "tab:red"},
        "A3": {"BERT": "tab:orange", "GPT-2": "tab:brown"},
    }
    out = []
    for design, intensity, exe, den, markers in designs:
        for f in ("BERT", "GPT-2"):
            sel = fam == f
            if not sel.any():
                continue
            common = {"marker": markers[f], "color": colors[design][f]}
            out.append(
                {
                    "label": f"{design}, {f}: executed ops",
                    "intensity": intensity[sel],
                    "gops": exe[sel],
                    "filled": True,
                    **common,
                }
            )
            # the same run counted in the unpruned model's ops: intensity and GOP/s scale together
            scale = den[sel] / exe[sel]
            out.append(
                {
                    "label": f"{design}, {f}: dense-equivalent ops",
                    "intensity": intensity[sel] * scale,
                    "gops": den[sel],
                    "filled": False,
                    **common,
                }
            )
    return out


def roofline_figure(
    series: Sequence[Mapping[str, Any]], roofs: Sequence[Mapping[str, Any]], title: str
) -> Figure:
    """Roofs as lines and each series' points on log-log axes; coinciding points drawn once with ``×n``.

    Parameters
    ----------
    series : sequence of mapping
        From :func:`roofline_series`.
    roofs : sequence of mapping
        ``name``, ``peak_gops`` (GOP/s), ``bandwidth_gbs`` (GB/s).
    title : str
        Figure title (workloads and designs).

    Returns
    -------
    Figure
    """
    fig = new_figure(10, 5.4)
    ax = fig.add_subplot()
    xs = np.concatenate(
        [s["intensity"] for s in series] + [[r["peak_gops"] / r["bandwidth_gbs"] for r in roofs]]
    )
    ys = np.concatenate([s["gops"] for s in series] + [[r["peak_gops"] for r in roofs]])
    grid = np.logspace(np.log10(xs.min() / 4), np.log10(xs.max() * 4), 200)
    _draw_roofs(ax, roofs, grid)
    all_x = np.concatenate([s["intensity"] for s in series])
    all_y = np.concatenate([s["gops"] for s in series])
    for s in series:
        # cluster on the whole plot's span so "the same place" means the same on-screen distance
        limits = ((all_x.min(), all_x.max()), (all_y.min(), all_y.max()))
        groups = cluster_points(s["intensity"], s["gops"], True, True, limits=limits)
        gx = [s["intensity"][g[0]] for g in groups]
        gy = [s["gops"][g[0]] for g in groups]
        face = s["color"] if s["filled"] else "none"
        ax.scatter(gx, gy, s=30, marker=s["marker"], facecolors=face, edgecolors=s["color"], label=s["label"])
        counts = [len(g) for g in groups]
        annotate_counts(ax, gx, gy, counts, color=s["color"], fontsize=6.5)
    log10_axis(ax, "x")
    log10_axis(ax, "y")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(ys.min() / 3, ys.max() * 2)
    ax.set_xlabel("operational intensity (ops / DRAM byte)")
    ax.set_ylabel("throughput (GOP/s)")
    ax.grid(True, which="major", alpha=0.3)
    fig.legend(fontsize=7, loc="outside right upper")
    ax.set_title(title, fontsize=10)
    declutter(fig)
    return fig


def _draw_roofs(ax: Axes, roofs: Sequence[Mapping[str, Any]], grid: np.ndarray) -> None:
    """Each roof min(peak, bandwidth x intensity) over ``grid``, in the legend and named on its flat part."""
    for r, ls in zip(roofs, ("-", "--", "-.", ":"), strict=False):
        label = f"{r['name']} roof: {r['peak_gops']:g} GOP/s, {r['bandwidth_gbs']:g} GB/s"
        roof = np.minimum(r["peak_gops"], r["bandwidth_gbs"] * grid)
        ax.plot(grid, roof, color="0.3", ls=ls, lw=1.2, label=label)
        # line styles alone are hard to match with the legend
        ax.annotate(
            r["name"],
            (grid[-1], r["peak_gops"]),
            xytext=(-2, 2),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )


def energy_figure(table: Any, tech_nm: int | None = None, gen_tokens: int | None = None) -> Figure:
    """Energy per benchmark by module (stacked, mJ), one panel per model family, and the mean shares.

    Parameters
    ----------
    table : pandas.DataFrame
        The benchmark table: ``benchmark``, ``model``, ``energy_j`` and one ``energy_<module>_j`` column
        per module of ``sim.power``.
    tech_nm : int, optional
        Technology node of the energy model, for the title.
    gen_tokens : int, optional
        Tokens each GPT-2 benchmark generates, for the panel title.

    Returns
    -------
    Figure
    """
    from spatten.sim.power.components import MODULES
    from spatten.sim.power.energy import energy_column

    fam = _family(table["model"])
    fams = [f for f in FAMILY_COLORS if (fam == f).any()]
    per = {m: table[energy_column(m)].to_numpy(float) for m in MODULES}
    total = table["energy_j"].to_numpy(float)
    fig = new_figure(12, 5.2)
    # bar widths equal across panels: each panel as wide as its bars
    widths = [int((fam == f).sum()) + 1 for f in fams] + [len(fams) + 2]
    axes = fig.subplots(1, len(widths), gridspec_kw={"width_ratios": widths})
    colors = {m: f"C{i}" for i, m in enumerate(MODULES)}
    for ax, f in zip(axes, fams, strict=False):
        sel = np.flatnonzero(fam == f)
        _energy_bars(ax, {m: v[sel] for m, v in per.items()}, total[sel], colors)
        ax.set_xticks(np.arange(len(sel)), list(table["benchmark"].iloc[sel]), rotation=90, fontsize=6)
        setting = _run_setting(table.iloc[sel], gen_tokens)
        ax.set_title(f"{f}: {len(sel)} benchmark{'s' * (len(sel) != 1)}\n{setting}", fontsize=9)
    share_ax = axes[-1]
    bottom = np.zeros(len(fams))
    for m in MODULES:
        v = np.array([np.mean(per[m][fam == f] / total[fam == f]) * 100 for f in fams])
        share_ax.bar(fams, v, 0.6, bottom=bottom, color=colors[m])
        bottom += v
    share_ax.set_ylim(0, 100)
    share_ax.set_ylabel("share of a benchmark's energy, mean (%)")
    share_ax.set_title("mean share\nper family", fontsize=9)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside right upper", fontsize=8, title="module")
    node = f" at {tech_nm} nm" if tech_nm else ""
    fig.suptitle(f"Energy of SpAtten{node} per benchmark by module (chip + HBM2): {len(table)} benchmarks")
    return fig


def _energy_bars(
    ax: Axes, per: Mapping[str, np.ndarray], total: np.ndarray, colors: Mapping[str, str]
) -> None:
    """One stacked bar per benchmark in a readable unit (mJ, µJ), its total written on top."""
    k, unit = si_scale(total, "J")
    bottom = np.zeros(len(total))
    for m, v in per.items():
        ax.bar(np.arange(len(total)), v * k, 0.75, bottom=bottom, color=colors[m], label=m)
        bottom += v * k
    for xi, v in enumerate(total * k):
        ax.annotate(
            f"{v:.3g}",
            (xi, v),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            rotation=90,
            fontsize=6,
        )
    ax.set_ylim(0, (total * k).max() * 1.2)  # room for the totals
    ax.set_ylabel(f"energy per benchmark run ({unit})")


def _run_setting(rows: Any, gen_tokens: int | None) -> str:
    """What one benchmark run is: the sequence lengths behind a bar of energy."""
    lens = sorted({int(v) for v in rows["seq_len"]}) if "seq_len" in rows else []
    span = "" if not lens else f"{lens[0]}" if len(lens) == 1 else f"{lens[0]}–{lens[-1]}"
    if _family(rows["model"])[0] == "GPT-2":
        gen = f" + {gen_tokens} generated" if gen_tokens else ""
        return f"prompt of {span} tokens{gen}" if span else "one generation run"
    return f"one sequence of {span} tokens" if span else "one sequence"


def _roofs(settings: Mapping[str, Any]) -> list[dict[str, Any]]:
    from spatten.models.config import ACCELERATORS
    from spatten.sim.hbm import stream_gbs

    def roof(name: str, acc: Any) -> dict[str, Any]:
        # 2 ops (multiply + add) per multiplier per cycle; what the DRAM model streams over all channels
        return {
            "name": name,
            "peak_gops": 2.0 * (acc.qk_multipliers + acc.pv_multipliers) * acc.clock_ghz,
            "bandwidth_gbs": round(stream_gbs(acc), 1),
        }

    gpu = settings["platforms"]["titan-xp"]
    return [
        {
            "name": "TITAN Xp",
            "peak_gops": float(gpu["peak_gflops"]),
            "bandwidth_gbs": float(gpu["bandwidth_gbs"]),
        },
        roof("SpAtten", ACCELERATORS["spatten"]),
        roof("SpAtten1/8 (A3 scale)", ACCELERATORS["spatten-1/8"]),
    ]


def write_figures(
    table: Any, agg: Mapping[str, Any], settings: Mapping[str, Any], out: Path, tech_nm: int | None = None
) -> list[str]:
    """Write the reproduce figures into ``out`` as PNG and PDF; return the file names.

    Parameters
    ----------
    table : pandas.DataFrame
        The per-benchmark table of ``sim.reproduce.run_all``.
    agg : mapping
        Its aggregates (the GPT-2 speedup breakdown).
    settings : mapping
        ``sim/data/benchmarks.yaml`` (paper values, platforms).
    out : Path
        Existing output folder.
    tech_nm : int, optional
        Technology node of the energy model, named in the energy figure's title.

    Returns
    -------
    list of str
        ``dram_reduction``, ``speedup_breakdown``, ``roofline`` and, with energy columns,
        ``energy_breakdown``, each as ``.png`` then ``.pdf``.
    """
    paper = settings["paper"]
    n_gpt2 = int((_family(table["model"]) == "GPT-2").sum())
    figs = {
        "dram_reduction": dram_reduction_figure(table, float(paper["dram_reduction_avg"])),
        "speedup_breakdown": breakdown_figure(
            agg["breakdown_gpt2_over_titan_xp"], paper["breakdown_gpt2_over_titan_xp"], n_gpt2 or None
        ),
        "roofline": roofline_figure(
            roofline_series(table),
            _roofs(settings),
            f"Roofline: {len(table)} benchmarks, SpAtten (full size) and A3 (SpAtten1/8 scale)\n"
            "filled: executed ops; hollow: dense-equivalent ops (those of the unpruned model)",
        ),
    }
    if "energy_j" in table:
        gen = settings.get("benchmarks", {}).get("gpt2_gen_tokens")
        figs["energy_breakdown"] = energy_figure(table, tech_nm, int(gen) if gen else None)
    return [p.name for name, fig in figs.items() for p in save_figure(fig, Path(out) / name)]
