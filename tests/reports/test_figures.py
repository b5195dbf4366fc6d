"""The `spatten reproduce` figures read back from a tiny hand-made table: titles, units, bars, points."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from spatten.reports.figures import (
    MOVABLE,
    OPTIONAL,
    annotate_counts,
    breakdown_figure,
    cluster_points,
    declutter,
    dram_reduction_figure,
    energy_figure,
    is_pow2,
    new_figure,
    roofline_figure,
    roofline_series,
    save_figure,
    si_scale,
    write_figures,
)
from spatten.reports.tables import markdown_table, summary_lines
from spatten.sim.baselines import load_settings
from spatten.sim.power.components import MODULES
from spatten.sim.power.energy import energy_column
from spatten.sim.reproduce import BREAKDOWN_STEPS

from tests.reports.figcheck import annotations, check_files, overlapping_labels, overlapping_tick_labels

# Two identical BERT rows (they must be drawn as one point with a count) and one GPT-2 row.
MODULE_MJ = {"BERT": [0.5, 0.1, 0.0, 0.5, 0.3, 0.6, 0.0], "GPT-2": [2.0, 0.5, 0.5, 0.5, 1.0, 25.0, 0.5]}


def bench_table() -> pd.DataFrame:
    rows = []
    for bench, model, fam in (
        ("bert-base/CoLA", "bert-base", "BERT"),
        ("bert-base/QQP", "bert-base", "BERT"),
        ("gpt2-small/PTB", "gpt2-small", "GPT-2"),
    ):
        bert = fam == "BERT"
        row = {
            "benchmark": bench,
            "model": model,
            "task": bench.split("/")[1],
            "seq_len": 64 if bert else 992,
            "dram_reduction": 4.0 if bert else 20.0,
            "gops": 1500.0 if bert else 400.0,
            "dense_equiv_gops": 3000.0 if bert else 2000.0,
            "seconds": 1e-4 if bert else 1e-3,
            "dram_bytes": 1e6 if bert else 2e8,
            "a3_gops": 60.0 if bert else 20.0,
            "a3_dense_equiv_gops": 240.0 if bert else 80.0,
            "a3_op_per_byte": 10.0 if bert else 0.5,
        }
        for m, mj in zip(MODULES, MODULE_MJ[fam], strict=True):
            row[energy_column(m)] = mj * 1e-3
        row["energy_j"] = sum(MODULE_MJ[fam]) * 1e-3
        rows.append(row)
    return pd.DataFrame(rows)


# --- helpers --------------------------------------------------------------------------------------


def test_si_scale_picks_the_readable_prefix() -> None:
    assert si_scale([2.5e-4, 1e-5], "s") == (pytest.approx(1e6), "µs")
    assert si_scale([3e-3], "J") == (pytest.approx(1e3), "mJ")
    assert si_scale([5.3e8, 1e6], "B") == (pytest.approx(1e-6), "MB")
    assert si_scale([999.0], "B") == (1.0, "B")
    assert si_scale([np.nan, 0.0], "s") == (1.0, "s")


def test_is_pow2() -> None:
    assert is_pow2([4, 8, 16, 32]) and is_pow2([1, 2])
    assert not is_pow2([4, 8, 12, 16]) and not is_pow2([16]) and not is_pow2([0.5, 1])
    assert not is_pow2(["a", "b"]) and not is_pow2([True, False])


def test_cluster_points_merges_only_points_within_tolerance() -> None:
    x = [1.0, 1.0, 1.001, 5.0, 10.0]
    y = [1.0, 1.0, 1.0, 1.0, 10.0]
    groups = cluster_points(x, y, tol=0.01)
    assert [g.tolist() for g in groups] == [[0, 1, 2], [3], [4]]
    # on log axes 1 and 1.3 are 11% of the way to 10: apart; on linear axes they are 3% apart
    assert len(cluster_points([1, 1.3, 10], [1, 1, 1], xlog=True, tol=0.05)) == 3
    assert len(cluster_points([1, 1.3, 10], [1, 1, 1], xlog=False, tol=0.05)) == 2


def test_declutter_separates_counts_that_would_overlap() -> None:
    fig = new_figure(4, 3)
    ax = fig.add_subplot()
    ax.scatter([0, 1, 1], [0, 0, 0.02], s=10)
    ax.set_xlim(-1, 2)
    ax.set_ylim(-1, 1)
    annotate_counts(ax, [1, 1], [0, 0.02], [3, 5], fontsize=7)
    assert overlapping_labels(fig)  # the two counts start on top of each other
    declutter(fig)
    assert overlapping_labels(fig) == []
    assert sorted(annotations(ax)) == ["×3", "×5"]


# --- the figures ----------------------------------------------------------------------------------


def test_dram_reduction_figure_bars_means_and_labels() -> None:
    fig = dram_reduction_figure(bench_table(), paper_avg=10.0)
    (ax,) = fig.axes
    assert "3 benchmarks (2 BERT, 1 GPT-2)" in ax.get_title() and "dense fp32" in ax.get_title()
    assert ax.get_ylabel() == "DRAM access reduction over dense fp32 (×)"
    assert [p.get_height() for p in ax.patches] == [4.0, 4.0, 20.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CoLA", "QQP", "PTB"]
    texts = annotations(ax)
    assert {"4.0", "20.0", "bert-base", "gpt2-small"} <= set(texts)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "ours, mean of 3: 9.3×" in legend and "paper, average: 10.0×" in legend
    assert overlapping_tick_labels(fig) == []


def test_breakdown_is_cumulative_on_a_linear_axis_from_the_gpu() -> None:
    fig = breakdown_figure({"a": 2.0, "b": 3.0}, {"a": 4.0}, n_benchmarks=8)
    (ax,) = fig.axes
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    assert (
        "GPT-2" in ax.get_title() and "TITAN Xp" in ax.get_title() and "8 GPT-2 benchmarks" in ax.get_title()
    )
    assert ax.get_ylabel() == "cumulative speedup over TITAN Xp (×)"
    # the 1× base, ours 2 then 2 * 3, the paper's one known step (its missing step is not drawn)
    assert [p.get_height() for p in ax.patches] == [1.0, 2.0, 6.0, 4.0]
    texts = annotations(ax)
    assert texts == ["1×", "2.0×\n(step ×2)", "6.0×\n(step ×3)", "4.0×\n(step ×4)"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["TITAN Xp\n(base)", "a", "b"]
    assert overlapping_tick_labels(fig) == []


def test_roofline_plots_executed_and_dense_equivalent_points() -> None:
    fig = roofline_figure(roofline_series(bench_table()), _roofs(), "Roofline: 3 benchmarks")
    (ax,) = fig.axes
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_xlabel() == "operational intensity (ops / DRAM byte)"
    assert ax.get_ylabel() == "throughput (GOP/s)"
    points = {c.get_label(): c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)}
    # executed: 1500 GOP/s * 100 us = 1.5e8 ops over 1e6 bytes; dense-equivalent: twice the ops
    np.testing.assert_allclose(points["SpAtten, BERT: executed ops"], [[150.0, 1500.0]])
    np.testing.assert_allclose(points["SpAtten, BERT: dense-equivalent ops"], [[300.0, 3000.0]])
    np.testing.assert_allclose(points["SpAtten, GPT-2: executed ops"], [[2.0, 400.0]])
    np.testing.assert_allclose(points["SpAtten, GPT-2: dense-equivalent ops"], [[10.0, 2000.0]])
    np.testing.assert_allclose(points["A3, BERT: dense-equivalent ops"], [[40.0, 240.0]])
    assert len(points) == 8
    # the two identical BERT benchmarks are one marker with a count, on each of the 4 BERT series
    assert annotations(ax).count("×2") == 4
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "SpAtten roof: 2048 GOP/s, 512 GB/s" in legend
    assert sum("executed ops" in t for t in legend) == sum("dense-equivalent ops" in t for t in legend) == 4
    assert overlapping_labels(fig) == [] and overlapping_tick_labels(fig) == []


def _roofs() -> list[dict]:
    return [
        {"name": "SpAtten", "peak_gops": 2048.0, "bandwidth_gbs": 512.0},
        {"name": "SpAtten1/8", "peak_gops": 256.0, "bandwidth_gbs": 64.0},
    ]


def test_energy_figure_absolute_mj_per_module_and_shares() -> None:
    fig = energy_figure(bench_table(), tech_nm=40, gen_tokens=32)
    bert, gpt2, shares = fig.axes
    assert "40 nm" in fig.get_suptitle()
    assert bert.get_title().startswith("BERT: 2 benchmarks") and "64 tokens" in bert.get_title()
    assert (
        gpt2.get_title().startswith("GPT-2: 1 benchmark\n")
        and "992 tokens + 32 generated" in gpt2.get_title()
    )
    assert bert.get_ylabel() == gpt2.get_ylabel() == "energy per benchmark run (mJ)"
    # stacked in mJ: module by module, two BERT bars then the GPT-2 bar
    heights = np.array([p.get_height() for p in bert.patches]).reshape(len(MODULES), 2)
    np.testing.assert_allclose(heights[:, 0], MODULE_MJ["BERT"])
    np.testing.assert_allclose([p.get_height() for p in gpt2.patches], MODULE_MJ["GPT-2"])
    assert annotations(bert) == ["2", "2"] and annotations(gpt2) == ["30"]  # totals, mJ
    assert shares.get_ylabel().endswith("(%)")
    tops = np.array([p.get_y() + p.get_height() for p in shares.patches]).reshape(len(MODULES), 2)
    np.testing.assert_allclose(tops[-1], [100.0, 100.0])
    np.testing.assert_allclose(shares.patches[0].get_height(), 25.0)  # Q.K: 0.5 of 2 mJ
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(MODULES)[::-1]
    assert overlapping_tick_labels(fig) == []


def test_write_figures_png_200_dpi_and_pdf(tmp_path: Path) -> None:
    agg = {"breakdown_gpt2_over_titan_xp": dict.fromkeys(BREAKDOWN_STEPS, 2.0)}
    names = write_figures(bench_table(), agg, load_settings(), tmp_path, tech_nm=40)
    stems = ["dram_reduction", "speedup_breakdown", "roofline", "energy_breakdown"]
    assert names == [f"{s}.{ext}" for s in stems for ext in ("png", "pdf")]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)  # no temporaries left
    fig = dram_reduction_figure(bench_table(), 10.0)
    check_files(fig, save_figure(fig, tmp_path / "again" / "dram_reduction"))
    assert (tmp_path / "again" / "dram_reduction.png").read_bytes() == (tmp_path / names[0]).read_bytes()


def test_save_figure_keeps_dots_in_the_name(tmp_path: Path) -> None:
    fig = new_figure(3, 2)
    fig.add_subplot().plot([1, 2])
    paths = save_figure(fig, tmp_path / "sensitivity_accelerator.qk_multipliers")
    assert [p.name for p in paths] == [
        "sensitivity_accelerator.qk_multipliers.png",
        "sensitivity_accelerator.qk_multipliers.pdf",
    ]
    check_files(fig, paths)


def test_declutter_hides_an_optional_count_with_no_room_but_keeps_a_movable_label() -> None:
    fig = new_figure(1.2, 1.0)  # far too small for the labels around the one point
    ax = fig.add_subplot()
    ax.scatter([0], [0], s=10)
    ax.annotate("must stay", (0, 0), xytext=(3, 3), textcoords="offset points", gid=MOVABLE, fontsize=9)
    annotate_counts(ax, [0], [0], [7], fontsize=9)
    assert [t.get_gid() for t in ax.texts] == [MOVABLE, OPTIONAL]
    assert declutter(fig) == {ax: 1}
    assert [t.get_visible() for t in ax.texts] == [True, False]


def test_tables() -> None:
    md = markdown_table(pd.DataFrame({"a": [1.5, float("nan")], "b": ["x", "y"]}))
    assert md.splitlines() == ["| a | b |", "|---|---|", "| 1.5 | x |", "| - | y |"]
    assert summary_lines({"ab": 1, "c": "z"}) == ["ab  1", "c   z"]
