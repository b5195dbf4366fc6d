"""Figure of ``spatten reproduce --accuracy``: quality against DRAM reduction along each real model's search.

One panel per model: every evaluated policy (feasible filled, over the constraint crossed), the path of
kept steps, the dense run, the constraint line, the chosen point, and the paper's claim (10.0x DRAM
reduction with no accuracy loss) at zero loss. Quality is a loss in percent so both constraints are the
same line: SmolLM2's perplexity increase, MiniLM's cosine loss ``1 - cos`` (cosine >= 0.99 is a loss
<= 1%; MiniLM's second condition, the probe's accuracy drop, shows only in the marker).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullLocator
from spatten.reports.figures import MOVABLE, declutter, new_figure, save_figure

__all__ = ["LOSS_LIMIT_PCT", "quality_loss_pct", "accuracy_figure", "write_accuracy_figure"]

#: Both constraints as a loss in percent (perplexity +1%, cosine 0.99).
LOSS_LIMIT_PCT = 1.0
_YLABEL = {
    "smollm2": "perplexity increase over dense (%)",
    "minilm": "embedding cosine loss to dense, 1 − cos (%)",
}


def quality_loss_pct(model: str, points: Any) -> np.ndarray:
    """The quality loss of each point in percent: perplexity increase (SmolLM2), ``1 - cosine`` (MiniLM)."""
    if model == "smollm2":
        return 100.0 * points["perplexity_increase"].to_numpy(dtype=float)
    return 100.0 * (1.0 - points["cosine_mean"].to_numpy(dtype=float))


def accuracy_figure(points: Any, paper_dram: float, titles: Mapping[str, str] | None = None) -> Figure:
    """Quality loss against DRAM reduction over dense fp32, one panel per model.

    Parameters
    ----------
    points : pandas.DataFrame
        Every evaluated point (``sim.accuracy_search.ModelSearch.points`` of each model, concatenated):
        ``model``, ``role``, ``dram_reduction``, the model's metric, ``feasible``, ``accepted``, ``chosen``.
    paper_dram : float
        The paper's claimed DRAM reduction (reached with no accuracy loss).
    titles : mapping, optional
        Panel title per model (default the model name).

    Returns
    -------
    Figure
    """
    models = list(dict.fromkeys(points["model"]))
    fig = new_figure(max(7.5, 5.2 * len(models)), 4.8 if len(models) > 1 else 5.4)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    xmax = max(float(points["dram_reduction"].max()), paper_dram) * 1.12
    for ax, model in zip(axes, models, strict=True):
        _panel(ax, points[points["model"] == model], model, paper_dram, xmax)
        ax.set_title((titles or {}).get(model, model), fontsize=9)
    fig.legend(
        handles=_legend(paper_dram),
        loc="outside lower center",
        ncols=min(3, 1 + len(models)),
        fontsize=7.5,
        frameon=False,
    )
    fig.suptitle(
        "Largest DRAM reduction within an accuracy constraint:\na policy search on real models, "
        "against the paper's claim",
        fontsize=10,
    )
    declutter(fig)
    return fig


def _panel(ax: Any, p: Any, model: str, paper_dram: float, xmax: float) -> None:
    x = p["dram_reduction"].to_numpy(dtype=float)
    y = quality_loss_pct(model, p)
    dense = (p["role"] == "dense").to_numpy()
    ok = p["feasible"].to_numpy(dtype=bool) & ~dense
    path = p["accepted"].to_numpy(dtype=bool)
    chosen = p["chosen"].to_numpy(dtype=bool)
    ax.axhspan(LOSS_LIMIT_PCT, 1e6, color="tab:red", alpha=0.06, lw=0)
    ax.axhline(LOSS_LIMIT_PCT, color="tab:red", ls="--", lw=1)
    ax.axvline(paper_dram, color="tab:green", ls=":", lw=1.2)
    ax.plot(x[path], y[path], color="0.55", lw=0.9, zorder=1)
    ax.scatter(x[ok], y[ok], s=28, color="tab:blue", zorder=3)
    ax.scatter(x[~ok & ~dense], y[~ok & ~dense], s=32, marker="x", color="tab:red", zorder=3)
    ax.scatter(x[dense], y[dense], s=34, marker="s", color="0.4", zorder=3)
    ax.scatter([paper_dram], [0.0], s=70, marker="D", color="tab:green", zorder=4)
    if chosen.any():
        cx, cy = float(x[chosen][0]), float(y[chosen][0])
        ax.scatter([cx], [cy], s=190, marker="*", color="gold", edgecolor="k", lw=0.7, zorder=5)
        ax.annotate(f"chosen: {cx:.2f}×", (cx, cy), xytext=(-4, 4), textcoords="offset points",
                    ha="right", va="bottom", fontsize=8, gid=MOVABLE)  # fmt: skip
    ax.annotate(f"paper: {paper_dram:.1f}×", (paper_dram, 0.0), xytext=(-4, 4), textcoords="offset points",
                ha="right", va="bottom", fontsize=8, color="tab:green", gid=MOVABLE)  # fmt: skip
    ax.set_yscale("symlog", linthresh=LOSS_LIMIT_PCT)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    top = max(float(np.nanmax(y)) if y.size else 0.0, LOSS_LIMIT_PCT) * 3
    bottom = min(float(np.nanmin(y)) if y.size else 0.0, 0.0)
    ax.set_ylim(bottom - 0.2 * LOSS_LIMIT_PCT, top)
    ax.set_xlim(0, xmax)
    ax.set_xlabel("DRAM access reduction over dense fp32 (×)")
    ax.set_ylabel(_YLABEL[model])
    ax.grid(True, color="0.92", lw=0.6)


def _legend(paper_dram: float) -> list[Line2D]:
    def mark(marker: str, color: str, label: str, **kw: Any) -> Line2D:
        return Line2D([], [], ls="none", marker=marker, color=color, label=label, **kw)

    return [
        mark("o", "tab:blue", "policy within the constraint", ms=5),
        mark("x", "tab:red", "policy over it (or MiniLM task accuracy drop > 0.5 pt)", ms=6),
        mark("s", "0.4", "dense run on SpAtten (12-bit, no pruning)", ms=5),
        mark("*", "gold", "chosen: largest DRAM reduction within the constraint", ms=11, markeredgecolor="k"),
        Line2D([], [], color="0.55", lw=0.9, label="search path (steps kept)"),
        Line2D([], [], color="tab:red", ls="--", lw=1, label="constraint: +1% perplexity / cosine 0.99"),
        mark(
            "D", "tab:green", f"paper: {paper_dram:.1f}× DRAM reduction, no accuracy loss (mean of 30)", ms=6
        ),
    ]


def write_accuracy_figure(
    points: Any, paper_dram: float, out: Path, titles: Mapping[str, str] | None = None
) -> list[str]:
    """Write ``accuracy.png`` (200 dpi) and ``accuracy.pdf`` into ``out``; return the file names."""
    return [p.name for p in save_figure(accuracy_figure(points, paper_dram, titles), Path(out) / "accuracy")]
