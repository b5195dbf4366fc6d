"""`spatten simulate`: outputs and bad input (one line, exit 2, no partial files)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from spatten.models.trace import release_trace_path

from spatten.cli import main

SMALL = release_trace_path("small.csv")


def test_json_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--workload", "bert-base", "--seq-len", "16", "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["workload"] == "bert-base" and s["cycles"] > 0


def test_trace_and_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main(["simulate", "--trace", str(SMALL), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "dram_bytes_total" in text
    req = pd.read_parquet(out / "requests.parquet")
    assert len(req) == 1
    s = json.loads((out / "summary.json").read_text())["summary"]
    # one dense row: 993 keys and values of 64 x 12 bit, Q 64 x 12 bit
    assert s["dram_bytes_total"] == 993 * 64 * 12 / 8 * 2 + 64 * 12 / 8


def _bad(args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], needle: str) -> None:
    out = tmp_path / "bad"
    assert main([*args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err
    assert not out.exists()
    assert not any(p.name.startswith(".bad") for p in tmp_path.iterdir())


def test_bad_config_bandwidth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("accelerator:\n  bytes_per_channel_cycle: -4\n")
    _bad(["simulate", "--config", str(cfg)], tmp_path, capsys, "bytes_per_channel_cycle")


def test_bad_config_multipliers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("accelerator:\n  qk_multipliers: 0\n")
    _bad(["simulate", "--config", str(cfg)], tmp_path, capsys, "qk_multipliers")


def test_trace_missing_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = tmp_path / "t.csv"
    lines = SMALL.read_text().splitlines()
    cols = lines[0].split(",")
    drop = cols.index("value_fetch_num")
    t.write_text(
        "\n".join(",".join(x for i, x in enumerate(ln.split(",")) if i != drop) for ln in lines) + "\n"
    )
    _bad(["simulate", "--trace", str(t)], tmp_path, capsys, "value_fetch_num")


def test_unknown_workload(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--workload", "gpt5"])
    assert e.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_energy_in_summary_matches_energy_model(capsys: pytest.CaptureFixture[str]) -> None:
    from spatten.models.config import workload_preset
    from spatten.sim.api import simulate
    from spatten.sim.power.energy import energy

    assert main(["simulate", "--workload", "bert-base", "--seq-len", "16", "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    w = workload_preset("bert-base", prompt_len=16)
    rep = energy(simulate(w).actions, w.accelerator, 40)
    assert s["energy_j"] == rep.total_j and s["chip_power_w"] == rep.chip_power_w


def test_design_a3_is_charged_its_published_efficiency(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--workload", "bert-base", "--seq-len", "16", "--design", "a3", "--format", "json"]
    assert main(args) == 0
    s = json.loads(capsys.readouterr().out)
    assert "energy_j" not in s  # no energy model of A3's units: on-chip energy from its published GOP/J
    assert s["chip_energy_j"] == s["dense_ops"] / 269e9


def test_bad_tech_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _bad(["simulate", "--tech-nm", "7"], tmp_path, capsys, "tech_nm")


def test_design_rtl_is_the_core_as_built_and_slower(capsys: pytest.CaptureFixture[str]) -> None:
    """`--design rtl`: the RTL core as built (sim/rtl_core.py), against the paper's pipeline."""
    args = ["simulate", "--workload", "bert-base", "--seq-len", "64", "--format", "json"]
    assert main([*args, "--design", "rtl", "--baseline", "spatten"]) == 0
    s = json.loads(capsys.readouterr().out)
    # the core's back end takes one request at a time and the engine's input fill is not hidden
    assert s["speedup_over_spatten"] < 1.0
    assert s["dram_reduction_over_spatten"] == pytest.approx(1.0)  # same trace, same bytes
