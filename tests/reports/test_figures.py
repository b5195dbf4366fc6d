"""Figures and tables from a tiny hand-made result table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from spatten.reports.figures import write_figures
from spatten.reports.tables import markdown_table, summary_lines
from spatten.sim.baselines import load_settings
from spatten.sim.reproduce import BREAKDOWN_STEPS


def test_write_figures(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "benchmark": ["bert-base/X", "gpt2-small/Y"],
            "model": ["bert-base", "gpt2-small"],
            "dram_reduction": [4.0, 20.0],
            "gops": [1500.0, 400.0],
            "seconds": [1e-4, 1e-3],
            "dram_bytes": [1e6, 2e8],
        }
    )
    agg = {"breakdown_gpt2_over_titan_xp": dict.fromkeys(BREAKDOWN_STEPS, 2.0)}
    names = write_figures(table, agg, load_settings(), tmp_path)
    for n in names:
        assert (tmp_path / n).stat().st_size > 1000
        assert (tmp_path / n).read_bytes()[:4] == b"\x89PNG"


def test_tables() -> None:
    md = markdown_table(pd.DataFrame({"a": [1.5, float("nan")], "b": ["x", "y"]}))
    assert md.splitlines() == ["| a | b |", "|---|---|", "| 1.5 | x |", "| - | y |"]
    assert summary_lines({"ab": 1, "c": "z"}) == ["ab  1", "c   z"]
