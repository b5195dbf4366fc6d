"""`spatten reproduce --accuracy`: a tiny real search end to end, its replay, bad values, the figure."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from spatten.reports.accuracy_figures import LOSS_LIMIT_PCT, accuracy_figure
from spatten.sim import accuracy, accuracy_search

from spatten.cli import main
from tests.reports.figcheck import check_pdf, check_png, overlapping_labels, overlapping_tick_labels

TINY = [
    "--no-benchmarks",
    "--accuracy-models",
    "minilm",
    "--accuracy-windows",
    "4",
    "--accuracy-window-len",
    "8",
]
FILES = ("accuracy.csv", "accuracy_best.csv", "accuracy.md", "accuracy.png", "accuracy.pdf")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def no_run(*a, **k):
    raise AssertionError("the replay ran a model")


def test_tiny_search_end_to_end_then_replayed(cache, tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "acc"
    assert main(["reproduce", "--accuracy", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for f in FILES:
        assert (out / f).stat().st_size > 0, f
    pts = pd.read_csv(out / "accuracy.csv")
    best = pd.read_csv(out / "accuracy_best.csv")
    assert list(pts["role"][:2]) == ["dense", "start"] and set(pts["model"]) == {"minilm"}
    assert len(best) == 1 and best["windows"][0] == 4 and best["window_len"][0] == 8
    chosen = pts[pts["chosen"]]
    if len(chosen):  # the chosen point meets the constraint and has the largest reduction of those that do
        ok = pts[
            (pts["cosine_mean"] >= 0.99) & (pts["task_accuracy_drop"] <= 0.005) & (pts["role"] != "dense")
        ]
        assert chosen["dram_reduction"].iloc[0] == ok["dram_reduction"].max()
        assert best["dram_reduction"][0] == chosen["dram_reduction"].iloc[0]
    assert "minilm (4 x 8 tok)" in printed and "10.0x DRAM, no accuracy loss" in printed
    md = (out / "accuracy.md").read_text()
    for col in (
        "constraint",
        "chosen policy",
        "metric vs dense",
        "DRAM reduction",
        "speedup",
        "energy saving",
    ):
        assert col in md
    check_png(out / "accuracy.png", (7.5, 5.4))
    check_pdf(out / "accuracy.pdf")

    # plain reproduce (here without the benchmarks) replays the search from the cache alone
    monkeypatch.setattr(accuracy, "run_accuracy", no_run)
    monkeypatch.setattr(accuracy_search, "_measure", no_run)
    again = tmp_path / "again"
    assert main(["reproduce", *TINY, "--out", str(again)]) == 0
    assert capsys.readouterr().out == printed.replace(str(out), str(again))
    for f in ("accuracy.csv", "accuracy_best.csv", "accuracy.md"):
        assert (again / f).read_text() == (out / f).read_text(), f


def test_nothing_cached_is_one_line_and_writes_nothing(cache, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(accuracy_search, "_measure", no_run)
    out = tmp_path / "acc"
    assert main(["reproduce", *TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "`spatten reproduce --accuracy`" in printed and "minilm" in printed
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--accuracy-windows", "0"], "--accuracy-windows 0 is outside the allowed range 1..10000"),
        (["--accuracy-window-len", "-3"], "--accuracy-window-len -3 is outside"),
        (["--tech-nm", "200"], "tech_nm"),
    ],
)
def test_bad_values_exit_2_one_line_nothing_written(cache, tmp_path: Path, capsys, args, needle) -> None:
    out = tmp_path / "acc"
    assert main(["reproduce", "--accuracy", "--no-benchmarks", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err
    assert not out.exists() and not cache.exists()


def synthetic_points() -> pd.DataFrame:
    """Two models' searches as the CLI writes them (values chosen here, not computed)."""
    rows = []
    for model, metric in (("smollm2", [0.0, 0.002, 0.004, 0.3, 0.008, 0.05]),
                          ("minilm", [1e-6, 1e-6, 0.003, 0.2, 0.008, 0.02])):  # fmt: skip
        xs = [2.67, 3.9, 4.4, 5.0, 4.6, 4.8]
        roles = ["dense", "start", "step", "step", "step", "step"]
        for i, (x, m) in enumerate(zip(xs, metric, strict=True)):
            r = {"model": model, "role": roles[i], "dram_reduction": x, "feasible": m <= 0.01,
                 "accepted": i in (1, 2, 4), "chosen": i == 4}  # fmt: skip
            if model == "smollm2":
                r["perplexity_increase"] = m
            else:
                r["cosine_mean"] = 1.0 - m
            rows.append(r)
    return pd.DataFrame(rows)


def test_figure_reads_back() -> None:
    pts = synthetic_points()
    fig = accuracy_figure(pts, 10.0, {"smollm2": "SmolLM2 title", "minilm": "MiniLM title"})
    assert "paper's claim" in fig.get_suptitle()
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["SmolLM2 title", "MiniLM title"]
    assert "perplexity increase" in axes[0].get_ylabel() and "(%)" in axes[0].get_ylabel()
    assert "1 − cos" in axes[1].get_ylabel()
    for ax in axes:
        assert "DRAM access reduction" in ax.get_xlabel() and "(×)" in ax.get_xlabel()
        assert ax.get_yscale() == "symlog"
        lines = {(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.get_lines()}
        assert ((0, 1), (LOSS_LIMIT_PCT, LOSS_LIMIT_PCT)) in lines  # the constraint
        assert ((10.0, 10.0), (0, 1)) in lines  # the paper's 10.0x
        offsets = [tuple(c.get_offsets()[0]) for c in ax.collections if len(c.get_offsets()) == 1]
        assert (10.0, 0.0) in offsets  # the paper's claim at no loss
        assert "chosen: 4.60×" in [t.get_text() for t in ax.texts]
        assert "paper: 10.0×" in [t.get_text() for t in ax.texts]
        assert ax.get_xlim()[1] > 10.0
    # the chosen point: (4.6, loss 0.8%) in both panels
    stars = [c for ax in axes for c in ax.collections if c.get_sizes()[0] == 190]
    assert [tuple(s.get_offsets()[0]) for s in stars] == [pytest.approx((4.6, 0.8))] * 2
    # the search path joins the kept steps in order
    path = [ln for ln in axes[0].get_lines() if len(ln.get_xdata()) == 3][0]
    assert list(path.get_xdata()) == [3.9, 4.4, 4.6]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("paper: 10.0× DRAM reduction, no accuracy loss" in t for t in legend)
    assert overlapping_tick_labels(fig) == [] and overlapping_labels(fig) == []
