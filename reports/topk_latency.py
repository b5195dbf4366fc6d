"""Figure: top-k search latency vs n per parallelism P, RTL mean +/- sd next to the model and release formula.

Input is the CSV printed and written by ``benchmarks/bench_topk.py``.
Run: ``.venv/bin/python -m spatten.reports.topk_latency [CSV] [-o build/reports/topk_latency.png]``; the PDF
is written beside the PNG (``topk_latency.pdf``).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

from matplotlib.figure import Figure
from spatten.reports.figures import log2_axis, log10_axis, new_figure, save_figure

__all__ = ["read_rows", "latency_figure", "write_figure"]

RELEASE_PAPER = {1024: 253}  # SPATTEN.md: release model mean for n = 1024, k = 512, P = 16


def read_rows(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of the benchmark CSV with numeric fields."""
    with open(path, newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    if not rows:
        raise ValueError(f"{path}: no rows")
    need = {"n", "p", "search_mean", "search_sd", "model_mean", "release_mean", "final_mean"}
    missing = need - set(rows[0])
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    return rows


def latency_figure(rows: list[dict[str, float]]) -> Figure:
    """Search latency per P (RTL mean +/- sd, cycle model, release formula) and output-pass cycles.

    Parameters
    ----------
    rows : list of dict
        From :func:`read_rows`.

    Returns
    -------
    Figure
        Two panels on log2 (n) by log10 (cycles) axes, one legend below both.
    """
    fig = new_figure(11, 4.8)
    ax, ax2 = fig.subplots(1, 2)
    ps = sorted({int(r["p"]) for r in rows})
    for i, p in enumerate(ps):
        rs = sorted((r for r in rows if int(r["p"]) == p), key=lambda r: r["n"])
        n = [r["n"] for r in rs]
        c = f"C{i}"
        ax.errorbar(
            n,
            [r["search_mean"] for r in rs],
            yerr=[r["search_sd"] for r in rs],
            color=c,
            marker="o",
            ms=4,
            capsize=3,
            label=f"P = {p}",
        )
        ax.plot(n, [r["model_mean"] for r in rs], color=c, ls="none", marker="x", ms=8)
        ax.plot(n, [r["release_mean"] for r in rs], color=c, ls=":", lw=1)
        ax2.plot(n, [r["final_mean"] for r in rs], color=c, marker="o", ms=4)
    for n, v in RELEASE_PAPER.items():
        ax.plot(
            [n],
            [v],
            marker="*",
            color="k",
            ms=11,
            ls="none",
            label=f"release model (SPATTEN.md), P = 16, n = {n}",
        )
    # style keys: one legend entry per kind of mark, in gray (the colours are the P values)
    ax.plot([], [], color="gray", marker="o", label="RTL under Verilator, mean ± sd")
    ax.plot([], [], color="gray", ls="none", marker="x", label="cycle model (same requests)")
    ax.plot([], [], color="gray", ls=":", label="release formula Σ(⌈n_round / P⌉ + 3)")
    ns = sorted({r["n"] for r in rows})
    for a in (ax, ax2):
        log2_axis(a, "x", ns)
        log10_axis(a, "y")
        a.set_xlabel("n (scores per request), k = n / 2")
        a.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("search latency (cycles)")
    ax.set_title("search: last input to threshold known", fontsize=9)
    ax2.set_ylabel("final pass + output latency (cycles)")
    ax2.set_title("output pass: one beat per selected score (RTL mean)", fontsize=9)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=4, fontsize=8)
    reqs = {int(r["requests"]) for r in rows if "requests" in r}
    per = f", {reqs.pop()} random requests per (n, P)" if len(reqs) == 1 else ", random requests"
    fig.suptitle(f"TopKEngine quick-select top-k latency vs n and parallelism P{per}", fontsize=10)
    return fig


def write_figure(rows: list[dict[str, float]], path: str | os.PathLike) -> list[Path]:
    """Write the figure as ``path`` (PNG, 200 dpi) and the same name ``.pdf``; return both paths."""
    dest = Path(path)
    return save_figure(
        latency_figure(rows), dest.parent / (dest.stem if dest.suffix == ".png" else dest.name)
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="top-k latency figure from benchmarks/bench_topk.py's CSV")
    ap.add_argument("csv", nargs="?", default="build/bench/topk_latency.csv")
    ap.add_argument(
        "-o", "--out", default="build/reports/topk_latency.png", help="PNG; the PDF goes beside it"
    )
    args = ap.parse_args(argv)
    print("wrote " + " ".join(str(p) for p in write_figure(read_rows(args.csv), args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
