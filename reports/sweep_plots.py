"""Figures and tables that end a design-space sweep.

From the consolidated sweep table (one row per point: the swept fields, ``multipliers`` and the
simulator summary) this module draws

- the Pareto front of latency against DRAM traffic, against multipliers (Q.K + prob.V, an area proxy),
  and, where the points carry them, against modelled area (``area_mm2``) and energy (``energy_j``), one
  panel per workload (workloads are not comparable with each other); front points are labelled with
  their swept values and coinciding points are drawn once with their count;
- one sensitivity plot per swept field: median latency, DRAM traffic and energy at each value over all
  other fields, with the min-max band, one row of panels per workload (log2 axis for powers of two);

- for a real-model (accuracy) sweep, one figure per quality metric the points carry
  (:data:`QUALITY`: perplexity increase, embedding cosine, task accuracy): quality against DRAM
  reduction, latency and energy, one row of panels per workload, with the points that are Pareto-optimal
  over all four objectives jointly (:func:`pareto_front`) highlighted and numbered, and quality added to
  the sensitivity plots;

each as a 200 dpi PNG and a PDF, in readable units (ms, MB, mJ), and writes a summary table
(``summary.md`` and ``summary.csv``), a sensitivity table and, for an accuracy sweep, the Pareto-optimal
points (``accuracy_front.csv``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from spatten.reports.figures import (
    MOVABLE,
    annotate_counts,
    cluster_points,
    declutter,
    is_pow2,
    log2_axis,
    log10_axis,
    new_figure,
    save_figure,
    si_scale,
)

__all__ = [
    "QUALITY",
    "accuracy_figure",
    "accuracy_front_table",
    "accuracy_objectives",
    "error_table",
    "latency_column",
    "markdown_table",
    "pareto_figure",
    "pareto_front",
    "pareto_mask",
    "sensitivity_figure",
    "sensitivity_table",
    "summary_table",
    "workload_settings",
    "write_report",
]

_DRAM = "dram_bytes_total"
_AREA = "multipliers"
_REDUCTION = "dram_reduction"
_ENERGY = "energy_j"

#: Quality columns of real-model points: the quantity's name, its short name (tables), its unit, the
#: factor to that unit, and whether higher is better.
QUALITY: dict[str, tuple[str, str, str, float, bool]] = {
    "perplexity_increase": ("perplexity increase over dense", "ppl increase", "%", 100.0, False),
    "cosine_mean": ("mean embedding cosine to dense", "cosine", "", 1.0, True),
    "task_accuracy": ("genre-probe balanced accuracy", "task accuracy", "%", 100.0, True),
}


def pareto_mask(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Points not dominated when minimising both ``x`` and ``y``.

    A point is dominated when another is no worse in both and strictly better in one; exact duplicates
    of a front point are on the front too. NaNs are never on the front.

    Parameters
    ----------
    x, y : sequence of float
        Equal-length coordinates.

    Returns
    -------
    numpy.ndarray of bool
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got shapes {xs.shape} and {ys.shape}")
    mask = np.zeros(xs.shape, dtype=bool)
    ok = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    if ok.size == 0:
        return mask
    order = ok[np.lexsort((ys[ok], xs[ok]))]
    sx, sy = xs[order], ys[order]
    # Per distinct x (ascending) only the smallest y can be on the front, and only if it beats every
    # smaller x's best y strictly (a tie there is dominated by the point with the smaller x).
    starts = np.flatnonzero(np.r_[True, sx[1:] != sx[:-1]])
    group_min = sy[starts]  # sorted by y within a group
    best_before = np.r_[np.inf, np.minimum.accumulate(group_min)[:-1]]
    winning = group_min < best_before
    group_of = np.cumsum(np.r_[True, sx[1:] != sx[:-1]]) - 1
    on = winning[group_of] & (sy == group_min[group_of])
    mask[order[on]] = True
    return mask


def pareto_front(values: Any, maximize: Sequence[bool] | None = None) -> np.ndarray:
    """Points not dominated in all objectives jointly (each minimised unless ``maximize`` says so).

    A point is dominated when another is no worse in every objective and strictly better in at least one;
    points equal in every objective to a front point are on the front too. A point with a NaN objective
    is never on the front and dominates nothing.

    Parameters
    ----------
    values : array-like of shape (n, k)
        One row per point, one column per objective.
    maximize : sequence of bool, optional
        Per objective, whether higher is better; default all minimised.

    Returns
    -------
    numpy.ndarray of bool
        Shape ``(n,)``.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D (points x objectives), got shape {v.shape}")
    flip = np.ones(v.shape[1]) if maximize is None else np.where(np.asarray(maximize, dtype=bool), -1.0, 1.0)
    if flip.shape != (v.shape[1],):
        raise ValueError(f"maximize has {flip.size} entries for {v.shape[1]} objectives")
    v = v * flip  # every column minimised from here on
    ok = np.all(np.isfinite(v), axis=1)
    mask = np.zeros(len(v), dtype=bool)
    pts = v[ok]
    keep = np.ones(len(pts), dtype=bool)
    for i, p in enumerate(pts):  # O(n^2 k): accuracy sweeps have tens to hundreds of points
        no_worse = np.all(pts <= p, axis=1)
        better = np.any(pts < p, axis=1)
        keep[i] = not np.any(no_worse & better)
    mask[np.flatnonzero(ok)[keep]] = True
    return mask


def latency_column(results: pd.DataFrame) -> str:
    """The latency metric to plot: ``seconds`` if the simulator reports it, else ``cycles``."""
    for col in ("seconds", "cycles"):
        if col in results.columns:
            return col
    raise ValueError("sweep results have neither a seconds nor a cycles column")


def _ok(results: pd.DataFrame, lat: str) -> pd.DataFrame:
    err = results["error"].fillna("lost") if "error" in results.columns else pd.Series("", results.index)
    keep = (err == "") & results[lat].notna()
    return results[keep]


def summary_table(results: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Per workload: points, failures, latency and DRAM range, Pareto size and the fastest point.

    Parameters
    ----------
    results : pandas.DataFrame
        The consolidated sweep table.
    params : sequence of str
        The swept fields (shown for the fastest point).
    """
    lat = latency_column(results)
    rows = []
    for wname, group in results.groupby("workload", sort=False):
        good = _ok(group, lat)
        row: dict[str, Any] = {"workload": wname, "points": len(group), "failed": len(group) - len(good)}
        if len(good):
            best = good.loc[good[lat].idxmin()]
            row |= {
                f"{lat}_min": good[lat].min(),
                f"{lat}_median": good[lat].median(),
                f"{lat}_max": good[lat].max(),
            }
            if _DRAM in good.columns:
                row |= {"dram_bytes_min": good[_DRAM].min(), "dram_bytes_max": good[_DRAM].max()}
                row["pareto_points"] = int(pareto_mask(good[_DRAM], good[lat]).sum())
            row["fastest_index"] = int(best["index"])
            row["fastest_params"] = ", ".join(f"{p}={_fmt(best[p])}" for p in params)
        rows.append(row)
    return pd.DataFrame(rows)


def error_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per workload, each distinct error message of the failed points and how many points gave it."""
    if "error" not in results.columns:
        return pd.DataFrame(columns=["workload", "error", "points"])
    failed = results[results["error"].fillna("") != ""]
    counts = failed.groupby(["workload", "error"], sort=False).size()
    return counts.rename("points").reset_index()


def sensitivity_table(results: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Per swept field and workload: how far the median latency moves across the field's values.

    ``swing`` is the largest median latency over the smallest (1.0: the field does not matter), with
    the medians taken over all other fields at each value.
    """
    lat = latency_column(results)
    rows = []
    for param in params:
        for wname, group in _ok(results, lat).groupby("workload", sort=False):
            med = group.groupby(group[param].map(_key), sort=False)[lat].median()
            if med.empty:
                continue
            lo, hi = med.idxmin(), med.idxmax()
            rows.append(
                {
                    "param": param,
                    "workload": wname,
                    "values": len(med),
                    "best_value": lo,
                    f"best_{lat}_median": med[lo],
                    "worst_value": hi,
                    f"worst_{lat}_median": med[hi],
                    "swing": med[hi] / med[lo] if med[lo] > 0 else math.inf,
                }
            )
    return pd.DataFrame(rows)


def _key(v: Any) -> Any:
    """A hashable, printable group key (schedules are lists)."""
    return _fmt(v) if isinstance(v, list | tuple | np.ndarray) else v


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list | tuple | np.ndarray):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub markdown table of ``df`` (floats to 4 significant digits)."""
    if df.empty:
        return "(no rows)\n"

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return f"{float(v):.4g}"
        return _fmt(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


# --- figures ---------------------------------------------------------------------------------------

# Metric columns: what it is, its short name (table headers), its unit and whether an SI prefix may scale it.
_METRICS = {
    "seconds": ("latency", "latency", "s", True),
    "cycles": ("latency", "latency", "cycles", True),
    _DRAM: ("DRAM traffic", "DRAM", "B", True),
    "energy_j": ("energy per run", "energy", "J", True),
    _REDUCTION: ("DRAM reduction vs dense fp32", "DRAM reduction", "×", False),
    "area_mm2": ("modelled area at 40 nm", "area", "mm²", False),
    _AREA: ("multipliers, Q.K + prob.V (area proxy)", "multipliers", "", False),
}
# Front places numbered at most (evenly spread along the front); the table below the panel lists them.
_MAX_LABELS = 10
TABLE_GID = "front-table"  # gid of the text panels holding the front tables


def _unit(col: str, values: Any) -> tuple[float, str, str]:
    """Factor to a readable unit, the quantity's name and that unit, e.g. ``(1e3, "latency", "ms")``."""
    if col in QUALITY:
        name, _, unit, factor, _ = QUALITY[col]
        return factor, name, unit
    name, _, unit, scalable = _METRICS.get(col, (col, col, "", False))
    if not scalable:
        return 1.0, name, unit
    k, shown = si_scale(values, unit)
    if unit == "cycles" and shown != unit:
        shown = f"{shown[0]} cycles"  # "k cycles", not "kcycles"
    return k, name, shown


def _label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit else name


def _short(param: str) -> str:
    return param.rsplit(".", 1)[-1]


def workload_settings(results: pd.DataFrame) -> dict[str, str]:
    """Per workload, its model setting from the points' configs (only fields no point changes).

    Returns
    -------
    dict of str to str
        e.g. ``{"bert-base": "4 layers, 128 tokens", "gpt2-small": "12 layers, 992 + 32 tokens"}``, and
        for a real model run on text the run's windows instead of the shape-only length
        (``"6 layers, real text 4 × 8 tokens, prefill"``); empty strings without a ``config`` column.
    """
    out = {}
    for wname, g in results.groupby("workload", sort=False):
        if "config" not in g.columns:
            out[str(wname)] = ""
            continue
        models = pd.DataFrame([json.loads(c)["model"] for c in g["config"] if isinstance(c, str)])
        # list fields (sliding_layers) as tuples: a column of lists has no distinct values to count
        models = models.map(lambda v: tuple(v) if isinstance(v, list) else v)
        same = {c: models[c].iloc[0] for c in models.columns if models[c].nunique() == 1}
        parts = [f"{same['layers']} layers"] if "layers" in same else []
        run = _real_run_setting(g)
        if run:
            parts.append(run)
        elif "prompt_len" in same:
            gen = same.get("gen_tokens", 0) if same.get("mode") == "generation" else 0
            parts.append(f"{same['prompt_len']} + {gen} tokens" if gen else f"{same['prompt_len']} tokens")
        out[str(wname)] = ", ".join(parts)
    return out


def _real_run_setting(g: pd.DataFrame) -> str:
    """``real text W × T tokens, mode`` when every point of ``g`` ran a real model the same way, else ""."""
    cols = ("windows", "window_len", "mode")
    if not all(c in g.columns for c in cols) or g[list(cols)].isna().any(axis=None):
        return ""
    if any(g[c].nunique() != 1 for c in cols):
        return ""
    windows, window_len, mode = (g[c].iloc[0] for c in cols)
    return f"real text {int(windows)} × {int(window_len)} tokens, {mode}"


def _panel_title(wname: str, setting: str, n: int) -> str:
    return f"{wname} ({setting}), {n} points" if setting else f"{wname}, {n} points"


def _scale_kind(values: np.ndarray, raw: pd.Series) -> str:
    """``log2`` for powers of two, ``log`` over more than two decades, else ``linear``."""
    pos = values[values > 0]
    if is_pow2(raw.unique()):
        return "log2"
    if len(pos) == len(values) and len(pos) and pos.max() / pos.min() > 100:
        return "log"
    return "linear"


def _apply_scale(ax: Axes, which: str, kind: str, values: np.ndarray) -> None:
    if kind == "log2":
        log2_axis(ax, which, np.unique(values))
    elif kind == "log":
        log10_axis(ax, which)
    else:  # at most 5 intervals so labels like "0.875" do not run into each other
        getattr(ax, f"{which}axis").set_major_locator(MaxNLocator(nbins=5))


class _Panel:
    """One workload's points in plot units: front and dominated places (coinciding points grouped)."""

    def __init__(self, g: pd.DataFrame, xcol: str, lat: str, params: Sequence[str]) -> None:
        self.g = g
        kx, self.xname, self.xunit = _unit(xcol, g[xcol])
        ky, self.yname, self.yunit = _unit(lat, g[lat])
        self.xshort = _METRICS[xcol][1] if xcol in _METRICS else xcol
        self.yshort = _METRICS[lat][1] if lat in _METRICS else lat
        self.x, self.y = g[xcol].to_numpy(float) * kx, g[lat].to_numpy(float) * ky
        self.xkind, self.ykind = _scale_kind(self.x, g[xcol]), _scale_kind(self.y, g[lat])
        self.varying = [p for p in params if g[p].map(_key).nunique() > 1]
        mask = pareto_mask(self.x, self.y)
        self.front = sorted(self._places(np.flatnonzero(mask)), key=lambda c: self.x[c[0]])
        self.cloud = self._places(np.flatnonzero(~mask))
        picks = np.linspace(0, len(self.front) - 1, min(len(self.front), _MAX_LABELS))
        self.numbered = sorted({int(i) for i in picks.round()})

    def _places(self, sel: np.ndarray) -> list[np.ndarray]:
        # 2.5% of the span: about a count label's height, so neighbouring counts do not collide
        limits = ((self.x.min(), self.x.max()), (self.y.min(), self.y.max()))
        logs = self.xkind != "linear", self.ykind != "linear"
        return [sel[c] for c in cluster_points(self.x[sel], self.y[sel], *logs, tol=0.025, limits=limits)]

    def xy(self, places: list[np.ndarray]) -> np.ndarray:
        """Plot coordinates of each place (its first point)."""
        return np.array([(self.x[c[0]], self.y[c[0]]) for c in places]).reshape(-1, 2)

    def draw(self, ax: Axes) -> None:
        """Front (step line, numbered places), dominated places with counts, scales and labels."""
        _apply_scale(ax, "x", self.xkind, self.x)
        _apply_scale(ax, "y", self.ykind, self.y)
        front, cloud = self.xy(self.front), self.xy(self.cloud)
        ax.step(front[:, 0], front[:, 1], where="post", color="C3", lw=1.2)
        ax.scatter(front[:, 0], front[:, 1], s=26, color="C3", zorder=3, label="Pareto front")
        # numbers first, so they get the free spots; the table under the panel says what they are
        for n, i in enumerate(self.numbered, 1):
            ax.annotate(
                str(n),
                tuple(front[i]),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=7,
                fontweight="bold",
                color="C3",
                gid=MOVABLE,
            )
        if len(cloud):
            ax.scatter(cloud[:, 0], cloud[:, 1], s=12, color="0.55", label="dominated points")
            counts = [len(c) for c in self.cloud]
            annotate_counts(ax, cloud[:, 0], cloud[:, 1], counts, color="0.35", fontsize=6.5)
        ax.set_xlabel(_label(self.xname, self.xunit))
        ax.set_ylabel(_label(self.yname, self.yunit))
        ax.grid(alpha=0.3)

    def table(self) -> str:
        """The numbered front places, one column each: swept values, coordinates, number of points.

        Transposed (a row per field) so ten places fit under a panel whatever the field names.
        """
        front = self.xy(self.front)
        rows = [["#", *(str(n) for n in range(1, len(self.numbered) + 1))]]
        rows += [
            [_short(p), *(_values(self.g, self.front[i], p) for i in self.numbered)] for p in self.varying
        ]
        rows.append([_label(self.xshort, self.xunit), *(f"{front[i, 0]:.4g}" for i in self.numbered)])
        rows.append([_label(self.yshort, self.yunit), *(f"{front[i, 1]:.4g}" for i in self.numbered)])
        rows.append(["points", *(str(len(self.front[i])) for i in self.numbered)])
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        some = "" if len(self.numbered) == len(self.front) else f", {len(self.numbered)} numbered"
        places = f"{len(self.front)} place" + "s" * (len(self.front) != 1)
        return f"Pareto front: {places}{some}\n" + "\n".join(lines)


def _values(g: pd.DataFrame, idx: np.ndarray, param: str) -> str:
    """A swept field's value at one place; its values joined by | when the place's points differ."""
    vals = list(dict.fromkeys(g[param].iloc[idx].map(_key)))
    shown = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in vals]
    return "|".join(shown) if len(shown) <= 3 else f"{len(shown)} values"


def pareto_figure(
    good: pd.DataFrame,
    xcol: str,
    lat: str,
    params: Sequence[str],
    title: str,
    settings: dict[str, str] | None = None,
) -> Figure:
    """Latency against ``xcol``, one panel per workload, its Pareto front numbered and tabled below it.

    Coinciding points are drawn once with their count (``×n``); each numbered front place is a row of
    the table under its panel: the swept values, both coordinates and the number of points.

    Parameters
    ----------
    good : pandas.DataFrame
        Successful sweep points (``workload``, the swept fields, ``xcol`` and ``lat``).
    xcol, lat : str
        Columns on the x axis (DRAM bytes, multipliers, area, energy) and the y axis (latency).
    params : sequence of str
        The swept fields; those that vary within a workload are the table's columns.
    title : str
        Figure title (the sweep's name and what is plotted).
    settings : dict of str to str, optional
        Workload setting per workload (:func:`workload_settings`), for the panel titles.

    Returns
    -------
    Figure
        Plot axes and, under each, a text panel whose ``gid`` is ``TABLE_GID``.
    """
    panels = [(str(w), _Panel(g, xcol, lat, params)) for w, g in good.groupby("workload", sort=False)]
    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    # a table line is about 0.125 in at 6.5 pt: caption, "#", one per varying field, x, y, points, a note
    table_in = [
        0.125 * (6 + max(len(p.varying) for _, p in panels[r * cols : (r + 1) * cols])) for r in range(rows)
    ]
    heights = [h for t in table_in for h in (3.6, t)]
    fig = new_figure(5.8 * cols, sum(heights) + 1.0)
    axes = fig.subplots(2 * rows, cols, squeeze=False, gridspec_kw={"height_ratios": heights})
    for (r, c), ax in np.ndenumerate(axes):
        k = (r // 2) * cols + c
        if k >= len(panels):
            ax.set_visible(False)
        elif r % 2 == 0:
            wname, panel = panels[k]
            panel.draw(ax)
            ax.set_title(_panel_title(wname, (settings or {}).get(wname, ""), len(panel.g)), fontsize=9)
        else:
            ax.axis("off")
            ax.set_gid(TABLE_GID)
            text = panels[k][1].table()
            # out of the layout: sized to fit the panel, it must not make constrained layout squeeze the plots
            ax.text(
                0,
                1,
                text,
                transform=ax.transAxes,
                va="top",
                family="monospace",
                fontsize=6.5,
                in_layout=False,
            )
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle(
        f"{title}\nnumbers: Pareto front places, listed below each panel; ×n: n points at one place",
        fontsize=10,
    )
    hidden = declutter(fig)  # last: it places labels in the final layout
    for plot, table in zip(axes[0::2].ravel(), axes[1::2].ravel(), strict=True):
        if hidden.get(plot):  # a place without its count would read as a single point
            table.texts[0].set_text(
                table.texts[0].get_text() + f"\n({hidden[plot]} counts ×n not shown: no room)"
            )
    return fig


def _param_positions(raw: pd.Series) -> tuple[pd.Series, list[Any], dict[Any, float], bool]:
    """Group keys of a swept field, their order, their x positions and whether they are numbers."""
    numeric = all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in raw)
    keys = raw.map(_key)
    if numeric:
        order = sorted(keys.unique())
        return keys, order, {k: float(k) for k in order}, True
    order = list(dict.fromkeys(keys))
    return keys, order, {k: float(i) for i, k in enumerate(order)}, False


def _param_axis(ax: Axes, order: list[Any], xpos: dict[Any, float], numeric: bool) -> None:
    if not numeric:
        ax.set_xticks([xpos[k] for k in order], [_fmt(k) for k in order], fontsize=7)
    elif is_pow2(order):
        log2_axis(ax, "x", order)
    elif len(order) <= 8 and all(float(k).is_integer() for k in order):
        ax.set_xticks([xpos[k] for k in order], [_fmt(k) for k in order])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))


def sensitivity_figure(
    good: pd.DataFrame, param: str, lat: str, title: str, settings: dict[str, str] | None = None
) -> Figure:
    """Median latency, DRAM traffic, energy (and quality) at each value of ``param``; a row per workload.

    Each workload gets its own axes (their scales differ by orders of magnitude); the band is the min-max
    over the other swept fields. A power-of-two field gets a log2 axis. Points of a real-model sweep add
    a panel per :data:`QUALITY` column they carry (empty for a workload without that metric).

    Parameters
    ----------
    good : pandas.DataFrame
        Successful sweep points.
    param : str
        The swept field on the x axis.
    lat : str
        The latency column (``seconds`` or ``cycles``).
    title : str
        The sweep's name, for the figure title.
    settings : dict of str to str, optional
        Workload setting per workload (:func:`workload_settings`).

    Returns
    -------
    Figure
    """
    candidates = (lat, _DRAM, _ENERGY, *QUALITY)
    metrics = [m for m in candidates if m in good.columns and good[m].notna().any()]
    workloads = list(good.groupby("workload", sort=False))
    fig = new_figure(4.3 * len(metrics), 3.2 * len(workloads) + 0.6)
    axes = fig.subplots(len(workloads), len(metrics), squeeze=False)
    keys, order, xpos, numeric = _param_positions(good[param])
    for row, (wname, g) in zip(axes, workloads, strict=True):
        for ax, metric in zip(row, metrics, strict=True):
            stats = g.groupby(keys.loc[g.index], sort=False)[metric].agg(["median", "min", "max"])
            stats = stats.loc[[k for k in order if k in stats.index]]
            xs = [xpos[k] for k in stats.index]
            k, name, unit = _unit(metric, stats["max"])
            label = _label(name, unit)
            ax.plot(xs, stats["median"] * k, marker="o", ms=3.5, color="C0")
            ax.fill_between(xs, stats["min"] * k, stats["max"] * k, color="C0", alpha=0.18, lw=0)
            _param_axis(ax, order, xpos, numeric)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.set_xlabel(param)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.set_title(_panel_title(str(wname), (settings or {}).get(str(wname), ""), len(g)), fontsize=8)
    fig.suptitle(
        f"{title}: sensitivity to {param}\nline: median over the other swept fields; band: min-max",
        fontsize=10,
    )
    return fig


# --- accuracy sweeps -----------------------------------------------------------------------------

#: Front places numbered at most in an accuracy figure (its table is a row wide: more columns fit).
_MAX_ACCURACY_LABELS = 20


def accuracy_objectives(g: pd.DataFrame, metric: str, lat: str) -> tuple[list[str], list[bool]]:
    """Columns of the accuracy Pareto front and whether each is maximised.

    Quality ``metric`` (its :data:`QUALITY` direction), DRAM reduction (higher is better), latency ``lat``
    and, when the points carry it, energy (lower is better).
    """
    cols, maximize = [metric, _REDUCTION, lat], [QUALITY[metric][4], True, False]
    if _ENERGY in g.columns and g[_ENERGY].notna().any():
        cols.append(_ENERGY)
        maximize.append(False)
    return cols, maximize


def _front_places(g: pd.DataFrame, metric: str, lat: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The front mask, and its places (points equal in every objective), best quality first."""
    cols, maximize = accuracy_objectives(g, metric, lat)
    values = g[cols].to_numpy(float)
    front = pareto_front(values, maximize)
    idx = np.flatnonzero(front)
    places: dict[tuple, list[int]] = {}
    for i in idx:
        places.setdefault(tuple(values[i]), []).append(int(i))
    sign = -1.0 if QUALITY[metric][4] else 1.0
    ordered = sorted(places.values(), key=lambda c: (sign * values[c[0], 0], *values[c[0], 1:]))
    return front, [np.array(c) for c in ordered]


def accuracy_front_table(results: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Every accuracy Pareto-optimal point: per quality metric and workload, best quality first.

    Columns: ``metric``, ``workload``, ``index``, the swept fields, ``value`` (the metric), DRAM
    reduction, latency and energy. Empty when no point carries a :data:`QUALITY` column.
    """
    lat = latency_column(results)
    good = _ok(results, lat)
    rows = []
    for metric in QUALITY:
        if metric not in good.columns:
            continue
        for wname, g in good[good[metric].notna()].groupby("workload", sort=False):
            cols, _ = accuracy_objectives(g, metric, lat)
            _, places = _front_places(g, metric, lat)
            for i in (int(i) for place in places for i in place):
                row = g.iloc[i]
                rows.append(
                    {"metric": metric, "workload": wname, "index": int(row["index"])}
                    | {p: _key(row[p]) for p in params}
                    | {"value": row[metric]}
                    | {c: row[c] for c in cols[1:]}
                )
    return pd.DataFrame(rows)


def _accuracy_table(
    g: pd.DataFrame, params: Sequence[str], places: list[np.ndarray], numbered: list[int], axes: list[tuple]
) -> str:
    """The numbered front places, a column each: varying swept values, objectives, number of points."""
    varying = [p for p in params if g[p].map(_key).nunique() > 1]
    rows = [["#", *(str(n) for n in range(1, len(numbered) + 1))]]
    rows += [[_short(p), *(_values(g, places[i], p) for i in numbered)] for p in varying]
    for label, values in axes:
        rows.append([label, *(f"{values[places[i][0]]:.4g}" for i in numbered)])
    rows.append(["points", *(str(len(places[i])) for i in numbered)])
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    some = "" if len(numbered) == len(places) else f", {len(numbered)} numbered"
    head = f"Pareto-optimal: {len(places)} place" + "s" * (len(places) != 1) + some
    return head + "\n" + "\n".join(lines)


def accuracy_figure(
    good: pd.DataFrame,
    metric: str,
    lat: str,
    params: Sequence[str],
    title: str,
    settings: dict[str, str] | None = None,
) -> Figure:
    """Quality against DRAM reduction, latency and energy; a row of panels per workload carrying ``metric``.

    Red, numbered: the points Pareto-optimal over (quality, DRAM reduction, latency, energy) jointly
    (:func:`pareto_front`), which in a two-dimensional panel need not look optimal; grey: the others.
    Points equal in every objective share a number. Under each row a table lists the numbered places:
    swept values, the four objectives, number of points.

    Parameters
    ----------
    good : pandas.DataFrame
        Successful sweep points.
    metric : str
        A :data:`QUALITY` column.
    lat : str
        The latency column (``seconds`` or ``cycles``).
    params : sequence of str
        The swept fields (those that vary within a workload are table rows).
    title : str
        Start of the figure title.
    settings : dict of str to str, optional
        Workload setting per workload (:func:`workload_settings`), for the panel titles.

    Returns
    -------
    Figure
        Plot axes and, under each row, a text panel whose ``gid`` is ``TABLE_GID``.
    """
    groups = [(str(w), g) for w, g in good[good[metric].notna()].groupby("workload", sort=False)]
    if not groups:
        raise ValueError(f"no sweep point carries {metric}")
    xcols = [c for c in (_REDUCTION, lat, _ENERGY) if c in good.columns and good[c].notna().any()]
    n_params = max(sum(g[p].map(_key).nunique() > 1 for p in params) for _, g in groups)
    heights = [h for _ in groups for h in (3.3, 0.125 * (7 + n_params))]
    fig = new_figure(max(4.2 * len(xcols), 7.0), sum(heights) + 1.1)
    grid = fig.add_gridspec(2 * len(groups), len(xcols), height_ratios=heights)
    name, short, unit, factor, higher = QUALITY[metric]
    for r, (wname, g) in enumerate(groups):
        g = g.reset_index(drop=True)
        front, places = _front_places(g, metric, lat)
        picks = np.linspace(0, len(places) - 1, min(len(places), _MAX_ACCURACY_LABELS))
        numbered = sorted({int(i) for i in picks.round()})
        y = g[metric].to_numpy(float) * factor
        rows = [(_label(short, unit), y)]
        for c, xcol in enumerate(xcols):
            kx, xname, xunit = _unit(xcol, g[xcol])
            x = g[xcol].to_numpy(float) * kx
            rows.append((_label(_METRICS[xcol][1], xunit), x))
            ax = fig.add_subplot(grid[2 * r, c])
            _draw_accuracy_panel(ax, x, y, front, [places[i] for i in numbered])
            _apply_scale(ax, "x", _scale_kind(x, g[xcol]), x)
            _apply_scale(ax, "y", _scale_kind(y, g[metric]), y)  # log when quality spans > 100x
            ax.set_xlabel(_label(xname, xunit))
            ax.set_ylabel(_label(name, unit))
            if c == 0:  # once per row, left-aligned: over three narrow panels it would be cut
                ax.set_title(
                    _panel_title(wname, (settings or {}).get(wname, ""), len(g)), fontsize=8, loc="left"
                )
        table = fig.add_subplot(grid[2 * r + 1, :])
        table.axis("off")
        table.set_gid(TABLE_GID)
        text = _accuracy_table(g, params, places, numbered, rows)
        # out of the layout, like the Pareto tables: it must not squeeze the plots
        table.text(
            0, 1, text, transform=table.transAxes, va="top", family="monospace", fontsize=6.5, in_layout=False
        )
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8)
    objectives = "quality, DRAM reduction, latency" + (", energy" if _ENERGY in xcols else "")
    fig.suptitle(
        f"{title}: {name} ({'higher' if higher else 'lower'} is better) vs "
        f"{', '.join(_METRICS[c][1] for c in xcols)}\nred, numbered: Pareto-optimal over {objectives} "
        "jointly, listed below each row",
        fontsize=10,
    )
    declutter(fig)
    return fig


def _draw_accuracy_panel(
    ax: Axes, x: np.ndarray, y: np.ndarray, front: np.ndarray, numbered: list[np.ndarray]
) -> None:
    if (~front).any():
        ax.scatter(x[~front], y[~front], s=14, color="0.6", label="dominated points")
    ax.scatter(x[front], y[front], s=28, color="C3", zorder=3, label="Pareto-optimal (all objectives)")
    for n, place in enumerate(numbered, 1):
        i = place[0]
        ax.annotate(
            str(n),
            (x[i], y[i]),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=7,
            fontweight="bold",
            color="C3",
            gid=MOVABLE,
        )
    ax.grid(alpha=0.3)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _design(good: pd.DataFrame) -> str:
    """The simulated design, when one ``baseline`` model ran every point."""
    if "baseline" in good.columns and good["baseline"].nunique() == 1:
        return f", {good['baseline'].iloc[0]} model"
    return ""


def _report_figures(
    good: pd.DataFrame, params: Sequence[str], lat: str, title: str
) -> Iterator[tuple[str, str, Figure]]:
    """(file stem, heading, figure) of every figure of a report, built one at a time."""
    settings = workload_settings(good)
    design = _design(good)
    pareto = [
        (_DRAM, "pareto_dram", "latency vs DRAM traffic"),
        (_AREA, "pareto_area", "latency vs multipliers (area proxy)"),
        ("area_mm2", "pareto_area_mm2", "latency vs modelled area"),
        ("energy_j", "pareto_energy", "latency vs energy"),
    ]
    for col, stem, heading in pareto:
        if col in good.columns and good[col].notna().any():
            points = good[good[col].notna()]
            yield (
                stem,
                heading,
                pareto_figure(points, col, lat, params, f"{title}: {heading}{design}", settings),
            )
    for metric, (name, *_) in QUALITY.items():
        if metric in good.columns and good[metric].notna().any():
            heading = f"{name} vs DRAM reduction, latency and energy"
            yield f"accuracy_{metric}", heading, accuracy_figure(good, metric, lat, params, title, settings)
    for param in params:
        fig = sensitivity_figure(good, param, lat, f"{title}{design}", settings)
        yield f"sensitivity_{_slug(param)}", f"sensitivity to {param}", fig


def write_report(
    results: pd.DataFrame, params: Sequence[str], folder: str | Path, title: str = "sweep"
) -> str:
    """Write ``summary.md``, ``summary.csv``, ``sensitivity.csv`` and the figures into ``folder``.

    The figures, each as a 200 dpi PNG and a PDF: ``pareto_dram``, ``pareto_area`` (multipliers),
    ``pareto_area_mm2`` and ``pareto_energy`` (when the points carry area and energy), for an accuracy
    sweep one ``accuracy_<metric>`` per :data:`QUALITY` column the points carry, and one
    ``sensitivity_<field>`` per swept field. An accuracy sweep also gets ``accuracy_front.csv``
    (:func:`accuracy_front_table`) and its section in ``summary.md``.

    Parameters
    ----------
    results : pandas.DataFrame
        The consolidated sweep table (``workload``, ``index``, swept fields, ``multipliers``, ``error``,
        simulator summary columns).
    params : sequence of str
        The swept fields, in file order (one sensitivity plot each).
    folder : str or Path
        Existing output folder (the caller makes the write atomic).
    title : str
        Heading of ``summary.md`` and the start of every figure title.

    Returns
    -------
    str
        The markdown summary (also written to ``summary.md``); its last section lists the figure files.
    """
    out = Path(folder)
    if "seconds" not in results.columns and "cycles" not in results.columns:
        results = results.assign(seconds=np.nan)  # every point failed: tables (and errors), no figures
    lat = latency_column(results)
    summary = summary_table(results, params)
    sens = sensitivity_table(results, params)
    summary.to_csv(out / "summary.csv", index=False)
    sens.to_csv(out / "sensitivity.csv", index=False)
    good = _ok(results, lat)
    figures = []
    if len(good):
        for stem, heading, fig in _report_figures(good, params, lat, title):
            paths = save_figure(fig, out / stem)
            figures.append(f"- {heading}: " + ", ".join(p.name for p in paths) + "\n")
    text = f"# {title}\n\n## Summary per workload\n\n{markdown_table(summary)}\n"
    text += f"## Sensitivity (median {lat} over the other fields)\n\n{markdown_table(sens)}\n"
    if any(m in results.columns for m in QUALITY):
        front = accuracy_front_table(results, params)
        front.to_csv(out / "accuracy_front.csv", index=False)
        text += (
            "## Accuracy: Pareto-optimal points over quality, DRAM reduction, latency and energy\n\n"
            f"{markdown_table(front)}\n"
        )
    errors = error_table(results)
    if len(errors):
        text += f"## Failed points\n\n{markdown_table(errors)}\n"
    text += "## Figures\n\n" + "".join(figures)
    (out / "summary.md").write_text(text)
    return text
