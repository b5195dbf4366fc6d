"""Accuracy-sweep figures and the n-objective Pareto front, on hand-made points with hand-derived answers.

The table: six MiniLM points. Objectives: cosine (higher is better), DRAM reduction (higher), latency
and energy (lower). By hand:

====  ==========  ===========  ======  =========  ======  ======================================
 row  value_keep  token_keep   cosine  reduction  µs      µJ      front?
====  ==========  ===========  ======  =========  ======  ======================================
 0    1.0         1.0          0.99    3          10      30      yes: best cosine
 1    0.5         1.0          0.95    4          12      25      yes: beats 0 in reduction, energy
 2    1.0         0.5          0.80    5          8       15      yes: fastest
 3    0.5         0.5          0.70    6          9       12      yes: best reduction and energy
 4    1.0         0.5          0.80    5          8       16      no: row 2 with more energy, only that
 5    0.25        1.0          0.70    3          20      40      no: row 0 is better in everything
====  ==========  ===========  ======  =========  ======  ======================================

(rows 2 and 4 differ in ``qk_multipliers``.) ``task_accuracy``: 1.0, 1.0, 0.5, 0.5, 0.5, 1.0; its front
differs: row 5 is still dominated by row 0 (equal task accuracy, worse in the rest), row 1 is on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from spatten.reports.sweep_plots import (
    TABLE_GID,
    accuracy_figure,
    accuracy_front_table,
    pareto_front,
    sensitivity_figure,
    workload_settings,
    write_report,
)

from tests.reports.figcheck import (
    check_files,
    check_pdf,
    check_png,
    overlapping_labels,
    overlapping_tick_labels,
)

VK, TK, QK = "pruning.value_keep", "pruning.token_keep", "accelerator.qk_multipliers"
PARAMS = [VK, TK, QK]
ROWS = [  # value_keep, token_keep, qk, cosine, task accuracy, reduction, µs, µJ
    (1.0, 1.0, 256, 0.99, 1.0, 3.0, 10, 30),
    (0.5, 1.0, 256, 0.95, 1.0, 4.0, 12, 25),
    (1.0, 0.5, 256, 0.80, 0.5, 5.0, 8, 15),
    (0.5, 0.5, 256, 0.70, 0.5, 6.0, 9, 12),
    (1.0, 0.5, 512, 0.80, 0.5, 5.0, 8, 16),
    (0.25, 1.0, 256, 0.70, 1.0, 3.0, 20, 40),
]
MODEL = {"name": "minilm", "layers": 6, "prompt_len": 128, "gen_tokens": 0, "mode": "summarization"}


def results() -> pd.DataFrame:
    rows = []
    for i, (vk, tk, qk, cos, task, red, us, uj) in enumerate(ROWS):
        rows.append(
            {"index": i, "workload": "minilm", VK: vk, TK: tk, QK: qk, "multipliers": qk + 256}
            | {"baseline": "spatten", "config": json.dumps({"model": MODEL}), "error": ""}
            | {"windows": 4, "window_len": 8, "mode": "prefill", "cosine_mean": cos, "task_accuracy": task}
            | {
                "dram_reduction": red,
                "seconds": us * 1e-6,
                "energy_j": uj * 1e-6,
                "dram_bytes_total": 1e6 / red,
            }
        )
    return pd.DataFrame(rows)


# --- pareto_front --------------------------------------------------------------------------------


def test_pareto_front_hand_case_with_ties_and_a_one_objective_loss():
    pts = [
        (1, 1, 1),  # front
        (1, 1, 1),  # an exact duplicate of a front point: front too
        (1, 1, 2),  # equal to the first in two objectives, worse in one: dominated
        (0, 5, 5),  # best first objective: front
        (2, 0, 9),  # best second objective: front
        (2, 2, 2),  # dominated by (1, 1, 1)
        (np.nan, 0, 0),  # NaN: never on the front, and dominates nothing ...
        (5, 5, 0.5),  # ... so this one, best in the third objective, is on it
        (1, 0.5, 3),  # ties the first in objective 1, better in 2, worse in 3: front
    ]
    assert pareto_front(pts).tolist() == [True, True, False, True, True, False, False, True, True]
    # the same points with the first objective to maximise, given negated
    flipped = [(-a, b, c) for a, b, c in pts]
    assert pareto_front(flipped, [True, False, False]).tolist() == pareto_front(pts).tolist()


def test_pareto_front_single_point_all_equal_and_bad_shapes():
    assert pareto_front([[3.0, 4.0]]).tolist() == [True]
    assert pareto_front([[1, 1], [1, 1], [1, 1]]).tolist() == [True, True, True]
    assert pareto_front(np.empty((0, 4))).tolist() == []
    with pytest.raises(ValueError, match="2-D"):
        pareto_front([1, 2, 3])
    with pytest.raises(ValueError, match="maximize has 1 entries for 2 objectives"):
        pareto_front([[1, 2]], [True])


@pytest.mark.parametrize("seed", range(10))
def test_pareto_front_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 40)), int(rng.integers(1, 5))
    v = rng.integers(0, 4, (n, k)).astype(float)  # few values: many ties
    maximize = rng.random(k) < 0.5
    m = v * np.where(maximize, -1, 1)
    expect = [not any(np.all(m[j] <= m[i]) and np.any(m[j] < m[i]) for j in range(n)) for i in range(n)]
    assert pareto_front(v, maximize).tolist() == expect


# --- figures -------------------------------------------------------------------------------------


def _marks(ax) -> dict[str, np.ndarray]:
    return {
        c.get_label(): np.asarray(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)
    }


def test_accuracy_figure_highlights_the_joint_front_in_every_panel():
    res = results()
    fig = accuracy_figure(res, "cosine_mean", "seconds", PARAMS, "sweep t", workload_settings(res))
    plots = [a for a in fig.axes if a.get_gid() != TABLE_GID]
    (table,) = [a.texts[0].get_text() for a in fig.axes if a.get_gid() == TABLE_GID]
    assert [a.get_xlabel() for a in plots] == [
        "DRAM reduction vs dense fp32 (×)",
        "latency (µs)",
        "energy per run (µJ)",
    ]
    assert {a.get_ylabel() for a in plots} == {"mean embedding cosine to dense"}
    assert plots[0].get_title(loc="left") == "minilm (6 layers, real text 4 × 8 tokens, prefill), 6 points"
    assert "sweep t: mean embedding cosine to dense (higher is better)" in fig.get_suptitle()
    front_rows, other_rows = [0, 1, 2, 3], [4, 5]
    cos = np.array([r[3] for r in ROWS])
    for ax, x in zip(plots, ([r[5] for r in ROWS], [r[6] for r in ROWS], [r[7] for r in ROWS]), strict=True):
        x = np.array(x, dtype=float)
        marks = _marks(ax)
        got = marks["Pareto-optimal (all objectives)"]
        np.testing.assert_allclose(
            sorted(map(tuple, got)), sorted(zip(x[front_rows], cos[front_rows], strict=True))
        )
        np.testing.assert_allclose(
            sorted(map(tuple, marks["dominated points"])),
            sorted(zip(x[other_rows], cos[other_rows], strict=True)),
        )
        # numbered best cosine first: 1 is row 0 (0.99) ... 4 is row 3 (0.70)
        labels = {t.get_text(): t.xy for t in ax.texts}
        assert sorted(labels) == ["1", "2", "3", "4"]
        for n, row in enumerate(front_rows, 1):
            np.testing.assert_allclose(labels[str(n)], (x[row], cos[row]))
    lines = table.splitlines()
    assert lines[0] == "Pareto-optimal: 4 places"
    assert lines[2].split() == ["value_keep", "1", "0.5", "1", "0.5"]
    assert lines[4].split() == ["qk_multipliers", "256", "256", "256", "256"]
    assert lines[5].split() == ["cosine", "0.99", "0.95", "0.8", "0.7"]
    assert lines[7].split() == ["latency", "(µs)", "10", "12", "8", "9"]
    assert overlapping_labels(fig) == [] and overlapping_tick_labels(fig) == []


def test_task_accuracy_has_its_own_front():
    res = results()
    fig = accuracy_figure(res, "task_accuracy", "seconds", PARAMS, "t")
    (table,) = [a.texts[0].get_text() for a in fig.axes if a.get_gid() == TABLE_GID]
    assert fig.axes[0].get_ylabel() == "genre-probe balanced accuracy (%)"
    got = _marks(fig.axes[0])["Pareto-optimal (all objectives)"]
    np.testing.assert_allclose(sorted(map(tuple, got)), sorted([(3, 100), (4, 100), (5, 50), (6, 50)]))
    assert table.splitlines()[5].split() == ["task", "accuracy", "(%)", "100", "100", "50", "50"]


def test_front_table_and_report_files(tmp_path: Path):
    res = results()
    front = accuracy_front_table(res, PARAMS)
    assert front[front["metric"] == "cosine_mean"]["index"].tolist() == [0, 1, 2, 3]  # best cosine first
    assert front[front["metric"] == "task_accuracy"]["index"].tolist() == [0, 1, 2, 3]
    # fewer columns, fewer figures: a faster test
    res = res.drop(columns=["multipliers", "dram_bytes_total", "task_accuracy"])
    text = write_report(res, [], tmp_path, title="sweep t")
    check_png(tmp_path / "accuracy_cosine_mean.png")
    check_pdf(tmp_path / "accuracy_cosine_mean.pdf")
    assert "accuracy_cosine_mean.png, accuracy_cosine_mean.pdf" in text
    assert not (tmp_path / "accuracy_task_accuracy.png").exists()
    assert pd.read_csv(tmp_path / "accuracy_front.csv")["index"].tolist() == [0, 1, 2, 3]
    assert "## Accuracy: Pareto-optimal points over quality, DRAM reduction, latency and energy" in text


def test_sensitivity_gains_the_quality_panels():
    fig = sensitivity_figure(results(), VK, "seconds", "t")
    assert [a.get_ylabel() for a in fig.axes][-2:] == [
        "mean embedding cosine to dense",
        "genre-probe balanced accuracy (%)",
    ]
    # median cosine over the other fields at value_keep 0.25, 0.5, 1.0: rows 5; 1, 3; 0, 2, 4
    np.testing.assert_allclose(fig.axes[-2].get_lines()[0].get_ydata(), [0.70, (0.95 + 0.70) / 2, 0.80])


def test_shape_only_results_get_no_accuracy_output(tmp_path: Path):
    res = results().drop(columns=["cosine_mean", "task_accuracy", "windows", "window_len", "mode"])
    res = res.drop(columns=["multipliers", "energy_j", "dram_bytes_total"])  # and no figures at all
    text = write_report(res, [], tmp_path)
    assert not list(tmp_path.glob("accuracy_*")) and "Accuracy" not in text
    assert workload_settings(res) == {"minilm": "6 layers, 128 tokens"}


def test_saved_accuracy_figure_is_200_dpi_png_and_pdf(tmp_path: Path):
    from spatten.reports.figures import save_figure

    fig = accuracy_figure(results(), "cosine_mean", "seconds", PARAMS, "t")
    check_files(fig, save_figure(fig, tmp_path / "acc"))


def test_a_sweep_whose_points_all_failed_gets_tables_and_its_errors(tmp_path: Path):
    res = results()[["index", "workload", VK, TK, QK, "multipliers", "config"]]
    res = res.assign(error=["windows = 2 is outside"] * 4 + ["other"] * 2)
    text = write_report(res, [VK], tmp_path)
    assert "| minilm | windows = 2 is outside | 4 |" in text and "| minilm | other | 2 |" in text
    assert not list(tmp_path.glob("*.png"))
