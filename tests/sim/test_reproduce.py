"""`spatten reproduce`: settings sanity (fast) and a full run (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spatten.sim.baselines import load_settings, roofline_seconds
from spatten.sim.reproduce import benchmarks

from spatten.cli import main


def test_thirty_benchmarks() -> None:
    b = benchmarks()
    assert len(b) == 30
    assert sum(x["model"].startswith("bert") for x in b) == 22
    assert len({x["benchmark"] for x in b}) == 30


def test_roofline_by_hand() -> None:
    from spatten.models.config import replace_path, workload_preset

    w = workload_preset("bert-base", prompt_len=100)
    p = load_settings()["platforms"]["titan-xp"]
    flops = 12 * 12 * 2 * 2 * 100 * 100 * 64
    nbytes = 12 * 12 * 3 * 100 * 64 * 4
    eff = p["efficiency"]
    t = max(flops / (p["peak_gflops"] * 1e9 * eff), nbytes / (p["bandwidth_gbs"] * 1e9 * eff))
    t += 12 * 6 * p["kernel_overhead_us"] * 1e-6  # 12 layers x BertSelfAttention's 6 kernels
    assert roofline_seconds(w, "titan-xp") == pytest.approx(t, rel=1e-12)
    g = replace_path(workload_preset("gpt2-small", prompt_len=100), "model.gen_tokens", 4)
    seq = np.arange(101, 105)
    flops = 12 * 12 * sum(2 * 2 * s * 64 for s in seq)
    nbytes = 12 * 12 * sum((2 * s + 1) * 64 * 4 for s in seq)
    t = max(flops / (p["peak_gflops"] * 1e9 * eff), nbytes / (p["bandwidth_gbs"] * 1e9 * eff))
    t += 12 * 4 * 12 * p["kernel_overhead_us"] * 1e-6  # 12 layers x 4 steps x GPT-2's 12 kernels
    assert roofline_seconds(g, "titan-xp") == pytest.approx(t, rel=1e-12)


def test_reproduce_writes_everything(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd
    from spatten.models.config import workload_preset
    from spatten.sim.api import simulate
    from spatten.sim.power.energy import energy

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
        "energy_breakdown.png",
    ):
        assert (out / name).stat().st_size > 0
    # The energy columns are those of the public simulate() + energy() path for the same benchmark.
    row = pd.read_csv(out / "benchmarks.csv").set_index("benchmark").loc["bert-base/MRPC"]
    w = workload_preset("bert-base", prompt_len=int(row["seq_len"]))
    rep = energy(simulate(w).actions, w.accelerator, 40)
    assert row["energy_j"] == pytest.approx(rep.total_j, rel=1e-12)  # CSV text round trip of a float
    assert row["chip_power_w"] == pytest.approx(rep.chip_power_w, rel=1e-12)
    for fam in ("BERT", "GPT-2"):
        assert sum(agg["energy_share"][fam].values()) == pytest.approx(1.0, rel=1e-9)
    pvo = (out / "paper_vs_ours.md").read_text()
    for needle in ("chip power, mean over BERT", "energy saving of SpAtten1/8 over a3", "over titan-xp"):
        assert needle in pvo


def test_reproduce_bad_tech_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    assert main(["reproduce", "--out", str(out), "--tech-nm", "200"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tech_nm" in err
    assert not out.exists()
