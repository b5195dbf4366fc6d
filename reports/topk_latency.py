"""Figure: top-k search latency vs n per parallelism P, RTL mean +/- sd next to the model and release formula.

Input is the CSV printed and written by ``benchmarks/bench_topk.py``.
Run: ``.venv/bin/python -m spatten.reports.topk_latency [CSV] [-o build/reports/topk_latency.png]``
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path

__all__ = ["read_rows", "latency_figure"]

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


def latency_figure(rows: list[dict[str, float]], path: str | os.PathLike) -> Path:
    """Plot search latency (log-log) per P and the final-pass cycles; write a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ps = sorted({int(r["p"]) for r in rows})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, p in enumerate(ps):
        rs = sorted((r for r in rows if int(r["p"]) == p), key=lambda r: r["n"])
        n = [r["n"] for r in rs]
        c = colors[i % len(colors)]
        ax.errorbar(
            n,
            [r["search_mean"] for r in rs],
            yerr=[r["search_sd"] for r in rs],
            color=c,
            marker="o",
            capsize=3,
            label=f"P={p} RTL (mean +/- sd)",
        )
        ax.plot(n, [r["model_mean"] for r in rs], color=c, ls="none", marker="x", ms=9)
        ax.plot(n, [r["release_mean"] for r in rs], color=c, ls=":", lw=1)
        ax2.plot(n, [r["final_mean"] for r in rs], color=c, marker="o", label=f"P={p}")
    for n, v in RELEASE_PAPER.items():
        ax.plot([n], [v], marker="*", color="k", ms=12, ls="none", label="release model, P=16 (SPATTEN.md)")
    ax.plot([], [], color="gray", ls="none", marker="x", label="cycle model (same requests)")
    ax.plot([], [], color="gray", ls=":", label="release formula ceil(n/P)+3 per round")
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_xlabel("n (scores per request), k = n/2")
        a.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("search cycles (last input -> threshold known)")
    ax.set_title("Quick-select search latency")
    ax.legend(fontsize=7)
    ax2.set_ylabel("final-pass + output cycles")
    ax2.set_title("Output pass (one beat per selected score)")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".png", dir=dest.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, dest)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="top-k latency figure from benchmarks/bench_topk.py's CSV")
    ap.add_argument("csv", nargs="?", default="build/bench/topk_latency.csv")
    ap.add_argument("-o", "--out", default="build/reports/topk_latency.png")
    args = ap.parse_args(argv)
    print(f"wrote {latency_figure(read_rows(args.csv), args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
