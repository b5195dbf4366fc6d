"""Sweep figures read back from a hand-made result table with known fronts, units and duplicates.

Latency is ``1000 / qk + channels`` microseconds for BERT and the same in milliseconds for GPT-2;
DRAM traffic is ``channels`` MB (BERT) or ``channels`` x 100 MB (GPT-2); ``topk_parallelism`` changes
nothing, so every (qk, channels) place holds three points.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from spatten.reports.sweep_plots import (
    TABLE_GID,
    pareto_figure,
    sensitivity_figure,
    workload_settings,
    write_report,
)

from tests.reports.figcheck import (
    annotations,
    check_pdf,
    check_png,
    overlapping_labels,
    overlapping_tick_labels,
)

QK, CH, TOPK = "accelerator.qk_multipliers", "accelerator.hbm_channels", "accelerator.topk_parallelism"
PARAMS = [QK, CH, TOPK]
MODELS = {
    "bert-base": {
        "name": "bert-base",
        "layers": 4,
        "prompt_len": 128,
        "gen_tokens": 0,
        "mode": "summarization",
    },
    "gpt2-small": {
        "name": "gpt2-small",
        "layers": 4,
        "prompt_len": 992,
        "gen_tokens": 32,
        "mode": "generation",
    },
}


def results() -> pd.DataFrame:
    rows = []
    for w, (qk, ch, tk) in itertools.product(
        MODELS, itertools.product([128, 256, 512], [4, 12, 20], [8, 16, 32])
    ):
        scale = 1e-6 if w == "bert-base" else 1e-3
        rows.append(
            {
                "index": len(rows),
                "workload": w,
                QK: qk,
                CH: ch,
                TOPK: tk,
                "multipliers": 2 * qk,
                "baseline": "spatten",
                "config": json.dumps({"model": MODELS[w]}),
                "error": "",
                "seconds": (1000 / qk + ch) * scale,
                "dram_bytes_total": ch * (1e6 if w == "bert-base" else 1e8),
                "energy_j": qk * 1e-6 * (1 if w == "bert-base" else 100),
            }
        )
    return pd.DataFrame(rows)


def _plots_and_tables(fig) -> tuple[list, list[str]]:
    """The plot axes, and the text of the front table under each."""
    plots = [a for a in fig.axes if a.get_gid() != TABLE_GID]
    tables = [a.texts[0].get_text() for a in fig.axes if a.get_gid() == TABLE_GID]
    assert len(plots) == len(tables)
    return plots, tables


def _front_and_cloud(ax) -> tuple[np.ndarray, np.ndarray]:
    marks = {c.get_label(): c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)}
    return np.asarray(marks["Pareto front"]), np.asarray(marks["dominated points"])


def test_workload_settings_from_the_configs() -> None:
    assert workload_settings(results()) == {
        "bert-base": "4 layers, 128 tokens",
        "gpt2-small": "4 layers, 992 + 32 tokens",
    }


def test_pareto_dram_one_panel_per_workload_in_readable_units() -> None:
    res = results()
    fig = pareto_figure(res, "dram_bytes_total", "seconds", PARAMS, "sweep t: latency vs DRAM traffic")
    (bert, gpt2), (bert_table, _) = _plots_and_tables(fig)
    assert "sweep t: latency vs DRAM traffic" in fig.get_suptitle()
    assert bert.get_title() == "bert-base, 27 points" and gpt2.get_title() == "gpt2-small, 27 points"
    assert (bert.get_xlabel(), bert.get_ylabel()) == ("DRAM traffic (MB)", "latency (µs)")
    assert (gpt2.get_xlabel(), gpt2.get_ylabel()) == ("DRAM traffic (GB)", "latency (ms)")
    front, cloud = _front_and_cloud(bert)
    # the one front place: 4 MB at 1000/512 + 4 us; the 8 other places are dominated
    np.testing.assert_allclose(front, [[4.0, 1000 / 512 + 4]])
    assert len(cloud) == 8
    assert annotations(bert) == ["1"] + ["×3"] * 8  # the front place numbered, the others counted
    # the table: one column for the front place; topk differs inside it, so all three values show
    assert bert_table.splitlines() == [
        "Pareto front: 1 place",
        "#                 1",
        "qk_multipliers    512",
        "hbm_channels      4",
        "topk_parallelism  8|16|32",
        "DRAM (MB)         4",
        "latency (µs)      5.953",
        "points            3",
    ]
    np.testing.assert_allclose(_front_and_cloud(gpt2)[0], [[0.4, 1000 / 512 + 4]])  # GB, ms
    assert overlapping_labels(fig) == [] and overlapping_tick_labels(fig) == []


def test_pareto_area_is_log2_for_power_of_two_multipliers() -> None:
    res = results()
    fig = pareto_figure(res, "multipliers", "seconds", PARAMS, "t", workload_settings(res))
    (bert, _), (table, _) = _plots_and_tables(fig)
    assert bert.get_title() == "bert-base (4 layers, 128 tokens), 27 points"
    assert bert.get_xscale() == "log" and bert.xaxis.get_transform().base == 2
    assert [t.get_text() for t in bert.get_xticklabels()] == ["256", "512", "1024"]
    assert bert.get_xlabel() == "multipliers, Q.K + prob.V (area proxy)"
    front, cloud = _front_and_cloud(bert)
    np.testing.assert_allclose(front, [[256, 1000 / 128 + 4], [512, 1000 / 256 + 4], [1024, 1000 / 512 + 4]])
    assert len(cloud) == 6
    assert annotations(bert)[:3] == ["1", "2", "3"]  # numbered left to right
    lines = table.splitlines()
    assert lines[2].split() == ["qk_multipliers", "128", "256", "512"]
    assert lines[5].split() == ["multipliers", "256", "512", "1024"]
    assert lines[6].split() == ["latency", "(µs)", "11.81", "7.906", "5.953"]
    assert overlapping_labels(fig) == [] and overlapping_tick_labels(fig) == []


def test_pareto_points_that_differ_slightly_are_not_merged() -> None:
    res = results()
    res = res[res[TOPK] == 8].copy()
    fig = pareto_figure(res, "multipliers", "seconds", PARAMS, "t")
    (bert, _), (table, _) = _plots_and_tables(fig)
    assert "×" not in "".join(annotations(bert))  # one point per place: no counts
    front, cloud = _front_and_cloud(bert)
    assert len(front) + len(cloud) == 9
    assert "topk_parallelism" not in table  # it no longer varies: not a column of the table


def test_sensitivity_one_row_per_workload_log2_for_powers_of_two() -> None:
    res = results()
    fig = sensitivity_figure(res, QK, "seconds", "sweep t", workload_settings(res))
    assert len(fig.axes) == 6  # 2 workloads x (latency, DRAM, energy)
    lat_bert, dram_bert, energy_bert, lat_gpt2, _, energy_gpt2 = fig.axes
    assert "sweep t" in fig.get_suptitle() and QK in fig.get_suptitle()
    assert lat_bert.get_title().startswith("bert-base (4 layers, 128 tokens)")
    assert lat_gpt2.get_title().startswith("gpt2-small (4 layers, 992 + 32 tokens)")
    assert [a.get_ylabel() for a in (lat_bert, dram_bert, energy_bert)] == [
        "latency (µs)",
        "DRAM traffic (MB)",
        "energy per run (µJ)",
    ]
    assert lat_gpt2.get_ylabel() == "latency (ms)" and energy_gpt2.get_ylabel() == "energy per run (mJ)"
    for ax in fig.axes:
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2
        assert [t.get_text() for t in ax.get_xticklabels()] == ["128", "256", "512"]
        assert ax.get_xlabel() == QK
    # median over channels {4, 12, 20} (and the inert topk): the 12-channel latency
    (line,) = lat_bert.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [128, 256, 512])
    np.testing.assert_allclose(line.get_ydata(), [1000 / q + 12 for q in (128, 256, 512)])
    assert overlapping_tick_labels(fig) == []


def test_sensitivity_is_linear_for_other_integers() -> None:
    fig = sensitivity_figure(results(), CH, "seconds", "t")
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "12", "20"]
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [1000 / 256 + c for c in (4, 12, 20)])


def test_cycles_latency_is_labelled_in_cycles() -> None:
    res = results().drop(columns=["seconds"]).assign(cycles=lambda d: d[CH] * 1000)
    fig = pareto_figure(res, "dram_bytes_total", "cycles", PARAMS, "t")
    assert fig.axes[0].get_ylabel() == "latency (k cycles)"
    assert "latency (k cycles)" in _plots_and_tables(fig)[1][0]


def test_write_report_writes_png_and_pdf_of_every_figure(tmp_path: Path) -> None:
    text = write_report(results(), PARAMS, tmp_path, title="sweep t")
    stems = ["pareto_dram", "pareto_area", "pareto_energy"] + [f"sensitivity_{p}" for p in PARAMS]
    for stem in stems:
        check_png(tmp_path / f"{stem}.png")
        check_pdf(tmp_path / f"{stem}.pdf")
        assert f"{stem}.png, {stem}.pdf" in text
    assert not (tmp_path / "pareto_area_mm2.png").exists()  # no area column: no figure
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


@pytest.mark.parametrize("bad", [[np.nan] * 54, ["lost"] * 54])
def test_write_report_without_good_points_draws_nothing(tmp_path: Path, bad: list) -> None:
    res = results()
    if isinstance(bad[0], str):
        res["error"] = bad
    else:
        res["seconds"] = bad
    text = write_report(res, PARAMS, tmp_path)
    assert not list(tmp_path.glob("*.png")) and "## Figures\n\n" in text


def test_crowded_counts_are_hidden_and_the_table_says_how_many() -> None:
    # a 16 x 16 grid of places 1/15 of the span apart, 12 points each: not every "×12" fits
    rows = [
        {"index": i, "workload": "w", QK: 64 * (i % 16 + 1), CH: i // 16, "multipliers": 128, "error": ""}
        | {"seconds": (100 + i // 16) * 1e-6, "dram_bytes_total": (1 + i % 16) * 1e6}
        for i in range(256)
        for _ in range(12)
    ]
    fig = pareto_figure(pd.DataFrame(rows), "dram_bytes_total", "seconds", [QK, CH], "t")
    (ax,), (table,) = _plots_and_tables(fig)
    shown = [t for t in ax.texts if t.get_visible() and t.get_text() == "×12"]
    hidden = [t for t in ax.texts if not t.get_visible()]
    assert hidden and len(shown) + len(hidden) == 255  # every dominated place holds 12 points
    assert table.splitlines()[-1] == f"({len(hidden)} counts ×n not shown: no room)"
    assert overlapping_labels(fig) == []
