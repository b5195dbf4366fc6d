"""Figures and tables that end a design-space sweep.

From the consolidated sweep table (one row per point: the swept fields, ``multipliers`` and the
simulator summary) this module draws

- the Pareto front of latency against DRAM bytes, against multipliers (Q.K + prob.V, an area proxy),
  and, where the points carry them, against modelled area (``area_mm2``) and energy (``energy_j``), one
  panel per workload (workloads are not comparable with each other);
- one sensitivity plot per swept field: median latency and DRAM bytes at each value over all other
  fields, with the min-max band;

and writes a summary table (``summary.md`` and ``summary.csv``) and a sensitivity table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "latency_column",
    "markdown_table",
    "pareto_mask",
    "sensitivity_table",
    "summary_table",
    "write_report",
]

_DRAM = "dram_bytes_total"
_AREA = "multipliers"


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


def _panels(n: int):
    import matplotlib.pyplot as plt

    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.8 * cols, 3.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def _pareto_figure(good: pd.DataFrame, xcol: str, lat: str, xlabel: str, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    groups = list(good.groupby("workload", sort=False))
    fig, axes = _panels(len(groups))
    for ax, (wname, g) in zip(axes, groups, strict=True):
        mask = pareto_mask(g[xcol], g[lat])
        ax.scatter(g[xcol], g[lat], s=10, color="0.6", label="points")
        front = g[mask].sort_values(xcol)
        ax.step(front[xcol], front[lat], where="post", color="C3", lw=1.2)
        ax.scatter(front[xcol], front[lat], s=22, color="C3", label=f"Pareto front ({int(mask.sum())})")
        for col, axis_set in ((xcol, ax.set_xscale), (lat, ax.set_yscale)):
            v = g[col][g[col] > 0]
            if len(v) and v.max() / v.min() > 30:
                axis_set("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"latency ({lat})")
        ax.set_title(wname)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _sensitivity_figure(good: pd.DataFrame, param: str, lat: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    metrics = [lat] + ([_DRAM] if _DRAM in good.columns else [])
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), squeeze=False)
    raw = good[param]
    numeric = all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in raw)
    keys = raw.map(_key)
    if numeric:
        order = sorted(keys.unique())
        xpos = {k: float(k) for k in order}
    else:
        order = list(dict.fromkeys(keys))
        xpos = {k: float(i) for i, k in enumerate(order)}
    for ax, metric in zip(axes[0], metrics, strict=True):
        for i, (wname, g) in enumerate(good.groupby("workload", sort=False)):
            stats = g.groupby(keys.loc[g.index], sort=False)[metric].agg(["median", "min", "max"])
            stats = stats.loc[[k for k in order if k in stats.index]]
            xs = [xpos[k] for k in stats.index]
            ax.plot(xs, stats["median"], marker="o", ms=3, color=f"C{i}", label=f"{wname} (median)")
            ax.fill_between(xs, stats["min"], stats["max"], color=f"C{i}", alpha=0.15)
        if not numeric:
            ax.set_xticks([xpos[k] for k in order], [str(k) for k in order], rotation=30, fontsize=7)
        ax.set_xlabel(param)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"sensitivity to {param} (band: min-max over the other fields)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_report(
    results: pd.DataFrame, params: Sequence[str], folder: str | Path, title: str = "sweep"
) -> str:
    """Write ``summary.md``, ``summary.csv``, ``sensitivity.csv`` and the figures into ``folder``.

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
        Heading of ``summary.md``.

    Returns
    -------
    str
        The markdown summary (also written to ``summary.md``).
    """
    import matplotlib

    matplotlib.use("Agg")
    out = Path(folder)
    lat = latency_column(results)
    summary = summary_table(results, params)
    sens = sensitivity_table(results, params)
    summary.to_csv(out / "summary.csv", index=False)
    sens.to_csv(out / "sensitivity.csv", index=False)
    good = _ok(results, lat)
    figures = []
    if len(good):
        if _DRAM in good.columns:
            _pareto_figure(good, _DRAM, lat, "DRAM bytes", "latency vs DRAM traffic", out / "pareto_dram.png")
            figures.append("pareto_dram.png")
        area_label = "multipliers (Q.K + prob.V, area proxy)"
        _pareto_figure(good, _AREA, lat, area_label, "latency vs area", out / "pareto_area.png")
        figures.append("pareto_area.png")
        for col, label, heading, name in (
            ("area_mm2", "modelled area at 40 nm (mm^2)", "latency vs modelled area", "pareto_area_mm2.png"),
            ("energy_j", "energy (J)", "latency vs energy", "pareto_energy.png"),
        ):
            if col in good.columns and good[col].notna().any():
                _pareto_figure(good[good[col].notna()], col, lat, label, heading, out / name)
                figures.append(name)
        for param in params:
            name = f"sensitivity_{_slug(param)}.png"
            _sensitivity_figure(good, param, lat, out / name)
            figures.append(name)
    text = f"# {title}\n\n## Summary per workload\n\n{markdown_table(summary)}\n"
    text += f"## Sensitivity (median {lat} over the other fields)\n\n{markdown_table(sens)}\n"
    text += "## Figures\n\n" + "".join(f"- {f}\n" for f in figures)
    (out / "summary.md").write_text(text)
    return text
