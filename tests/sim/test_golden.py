"""Regression: small golden traces and summaries in tests/data (see tests/data/make_golden.py)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from models.trace import TRACE_COLUMNS
from models.workload import shape_trace
from sim.api import simulate

DATA = Path(__file__).resolve().parents[1] / "data"
_spec = importlib.util.spec_from_file_location("make_golden", DATA / "make_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)
WORKLOADS = make_golden.golden_workloads()


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_trace_matches_golden(name: str) -> None:
    gold = pd.read_csv(DATA / f"golden_{name}.csv").astype(TRACE_COLUMNS)
    pd.testing.assert_frame_equal(shape_trace(WORKLOADS[name]), gold)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_summary_matches_golden(name: str) -> None:
    gold = json.loads((DATA / f"golden_{name}.json").read_text())
    trace = pd.read_csv(DATA / f"golden_{name}.csv").astype(TRACE_COLUMNS)
    got = simulate(WORKLOADS[name], trace).summary
    assert set(got) == set(gold)
    for k, v in gold.items():
        if isinstance(v, float):
            assert math.isclose(got[k], v, rel_tol=1e-9, abs_tol=1e-12), k
        else:
            assert got[k] == v, k
