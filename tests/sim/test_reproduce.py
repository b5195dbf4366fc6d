"""`spatten reproduce`: settings sanity (fast) and a full run (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.baselines import load_settings, roofline_seconds
from sim.reproduce import benchmarks
from spatten.cli import main


def test_thirty_benchmarks() -> None:
    b = benchmarks()
    assert len(b) == 30
    assert sum(x["model"].startswith("bert") for x in b) == 22
    assert len({x["benchmark"] for x in b}) == 30


def test_roofline_by_hand() -> None:
    from models.config import workload_preset

    w = workload_preset("bert-base", prompt_len=100)
    p = load_settings()["platforms"]["titan-xp"]
    flops = 12 * 12 * 2 * 2 * 100 * 100 * 64
    nbytes = 12 * 12 * 3 * 100 * 64 * 4
    eff = p["efficiency"]
    t = max(flops / (p["peak_gflops"] * 1e9 * eff), nbytes / (p["bandwidth_gbs"] * 1e9 * eff))
    t += 12 * p["kernels_per_layer"] * p["kernel_overhead_us"] * 1e-6
    assert roofline_seconds(w, "titan-xp") == pytest.approx(t, rel=1e-12)


@pytest.mark.slow
def test_reproduce_writes_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert main(["reproduce", "--out", str(out), "--format", "json"]) == 0
    agg = json.loads(capsys.readouterr().out)
    assert agg["dram_reduction_avg"] > 1
    for name in (
        "benchmarks.csv",
        "paper_vs_ours.md",
        "dram_reduction.png",
        "speedup_breakdown.png",
        "roofline.png",
    ):
        assert (out / name).stat().st_size > 0
