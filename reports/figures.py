"""Figures of `spatten reproduce`: DRAM reduction, speedup breakdown, roofline, energy breakdown (Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "dram_reduction_figure",
    "breakdown_figure",
    "roofline_figure",
    "energy_breakdown_figure",
    "write_figures",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def dram_reduction_figure(table: Any, paper_avg: float, path: Path) -> None:
    """Bar chart of DRAM reduction per benchmark with our mean and the paper's average."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.bar(range(len(table)), table["dram_reduction"], color="tab:blue")
    ax.axhline(float(table["dram_reduction"].mean()), color="tab:blue", ls="--", label="ours, mean")
    ax.axhline(paper_avg, color="tab:red", ls=":", label=f"paper, average {paper_avg}x")
    ax.set_xticks(range(len(table)), table["benchmark"], rotation=80, fontsize=7)
    ax.set_ylabel("DRAM reduction vs fp32 (x)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def breakdown_figure(steps: dict[str, float], paper: dict[str, float], path: Path) -> None:
    """Cumulative GPT-2 speedup over TITAN Xp as each technique is added: ours vs paper."""
    import numpy as np

    plt = _plt()
    names = list(steps)
    ours = np.cumprod([steps[s] for s in names])
    pap = np.cumprod([paper.get(s, float("nan")) for s in names])
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(x - 0.2, ours, 0.4, label="ours")
    ax.bar(x + 0.2, pap, 0.4, label="paper")
    ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=15, fontsize=8)
    ax.set_ylabel("cumulative speedup over TITAN Xp (x)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def roofline_figure(points: list[dict[str, Any]], roofs: list[dict[str, Any]], path: Path) -> None:
    """Roofline: each roof (peak GOP/s, GB/s) as a line, each point (op/byte, GOP/s) as a marker."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 5))
    x = np.logspace(-2, 3, 200)
    for r in roofs:
        ax.plot(x, np.minimum(r["peak_gops"], r["bandwidth_gbs"] * x), label=f"{r['name']} roof")
    for p in points:
        ax.scatter(
            p["intensity"],
            p["gops"],
            marker=p.get("marker", "o"),
            s=18,
            color=p.get("color"),
            label=p["name"],
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("operational intensity (op / DRAM byte)")
    ax.set_ylabel("GOP/s")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def energy_breakdown_figure(shares: dict[str, dict[str, float]], path: Path) -> None:
    """Stacked bars: mean share of each module in a benchmark's energy, one bar per model family.

    Parameters
    ----------
    shares : dict[str, dict[str, float]]
        ``{family: {module: share}}``, shares of one family summing to 1.
    path : Path
        PNG to write.
    """
    import numpy as np

    plt = _plt()
    fams = list(shares)
    modules = list(next(iter(shares.values())))
    fig, ax = plt.subplots(figsize=(6, 4))
    bottom = np.zeros(len(fams))
    for m in modules:
        v = np.array([shares[f][m] for f in fams])
        ax.bar(fams, v, 0.5, bottom=bottom, label=m)
        bottom += v
    ax.set_ylabel("share of energy per benchmark (mean)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, bbox_to_anchor=(1.02, 1), loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_figures(table: Any, agg: dict[str, Any], settings: dict[str, Any], out: Path) -> list[str]:
    """Write the figures into ``out``; return their file names."""
    from spatten.models.config import ACCELERATORS

    paper = settings["paper"]
    dram_reduction_figure(table, float(paper["dram_reduction_avg"]), out / "dram_reduction.png")
    breakdown_figure(
        agg["breakdown_gpt2_over_titan_xp"],
        paper["breakdown_gpt2_over_titan_xp"],
        out / "speedup_breakdown.png",
    )
    full, eighth = ACCELERATORS["spatten"], ACCELERATORS["spatten-1/8"]
    gpu = settings["platforms"]["titan-xp"]

    def roof(name: str, acc: Any) -> dict[str, Any]:
        return {
            "name": name,
            "peak_gops": 2.0 * (acc.qk_multipliers + acc.pv_multipliers) * acc.clock_ghz,
            "bandwidth_gbs": acc.peak_bytes_per_cycle * acc.clock_ghz,
        }

    roofs = [
        roof("SpAtten", full),
        roof("SpAtten1/8 (= A3 scale)", eighth),
        {
            "name": "TITAN Xp",
            "peak_gops": float(gpu["peak_gflops"]),
            "bandwidth_gbs": float(gpu["bandwidth_gbs"]),
        },
    ]
    points = []
    for _, r in table.iterrows():
        bert = r["model"].startswith("bert")
        points.append(
            {
                "name": "SpAtten BERT" if bert else "SpAtten GPT-2",
                "intensity": r["gops"] * r["seconds"] * 1e9 / r["dram_bytes"],
                "gops": r["gops"],
                "marker": "o" if bert else "s",
                "color": "tab:blue" if bert else "tab:red",
            }
        )
        if "a3_gops" in r:
            points.append(
                {
                    "name": "A3 BERT" if bert else "A3 GPT-2",
                    "intensity": r["a3_op_per_byte"],
                    "gops": r["a3_gops"],
                    "marker": "^" if bert else "v",
                    "color": "tab:orange" if bert else "tab:brown",
                }
            )
    # one legend entry per kind
    seen: set[str] = set()
    for p in points:
        if p["name"] in seen:
            p["name"] = "_" + p["name"]
        seen.add(p["name"].lstrip("_"))
    roofline_figure(points, roofs, out / "roofline.png")
    names = ["dram_reduction.png", "speedup_breakdown.png", "roofline.png"]
    if "energy_share" in agg:
        energy_breakdown_figure(agg["energy_share"], out / "energy_breakdown.png")
        names.append("energy_breakdown.png")
    return names
