"""Energy-saving table: hand-made EnergyReports against the published efficiencies and rated powers."""

import math

import pytest
from spatten.sim.power.baselines import BASELINES, energy_saving_table
from spatten.sim.power.components import MODULES
from spatten.sim.power.energy import EnergyReport


def report(total_j: float, ops: float) -> EnergyReport:
    dyn = dict.fromkeys(MODULES, 0.0)
    dyn["Q.K"] = total_j
    return EnergyReport(dyn, dict.fromkeys(MODULES, 0.0), seconds=1e-3, ops=ops, tech_nm=40)


def test_accelerator_rows_use_published_efficiency_with_spatten_eighth():
    full = report(1e-3, 1e9)
    eighth = report(2e-3, 1e9)  # 1 GOP in 2 mJ = 500 GOP/J
    rows = {r["baseline"]: r for r in energy_saving_table(full, {}, spatten_eighth=eighth)}
    assert set(rows) == {"a3", "mnnfast"}  # no modelled times: no GPU/CPU rows
    assert rows["a3"]["baseline_j"] == pytest.approx(1.0 / 269.0)
    assert rows["a3"]["saving"] == pytest.approx(500.0 / 269.0)
    assert rows["mnnfast"]["saving"] == pytest.approx(500.0 / 120.0)
    assert rows["a3"]["paper_saving"] == 1.4 and rows["mnnfast"]["paper_saving"] == 3.2


def test_platform_rows_are_power_times_modelled_time():
    full = report(1e-3, 1e9)
    rows = {r["baseline"]: r for r in energy_saving_table(full, {"titan-xp": 0.02, "xeon-e5-2640-v4": 0.5})}
    assert rows["titan-xp"]["baseline_j"] == pytest.approx(250.0 * 0.02)
    assert rows["titan-xp"]["saving"] == pytest.approx(5.0 / 1e-3)
    assert rows["xeon-e5-2640-v4"]["saving"] == pytest.approx(90.0 * 0.5 / 1e-3)
    assert rows["a3"]["spatten_j"] == 1e-3  # without SpAtten1/8 the full chip stands in


def test_every_baseline_has_a_source_and_a_number():
    for b in BASELINES.values():
        assert b.source
        assert math.isfinite(b.gop_per_j if b.kind == "efficiency" else b.power_w)


@pytest.mark.parametrize("bad", [{"a3": 1.0}, {"gpu": 1.0}, {"titan-xp": -1.0}, {"titan-xp": math.inf}])
def test_bad_baseline_times(bad):
    with pytest.raises(ValueError, match="baseline_seconds"):
        energy_saving_table(report(1.0, 1.0), bad)


def test_dram_counts_against_platforms_but_not_against_accelerators():
    dyn = dict.fromkeys(MODULES, 0.0)
    dyn["Q.K"], dyn["DRAM"] = 1e-3, 3e-3
    r = EnergyReport(dyn, dict.fromkeys(MODULES, 0.0), seconds=1e-3, ops=1e9, tech_nm=40)
    rows = {row["baseline"]: row for row in energy_saving_table(r, {"titan-xp": 0.01})}
    assert rows["a3"]["spatten_j"] == pytest.approx(1e-3)  # on-chip only
    assert rows["titan-xp"]["spatten_j"] == pytest.approx(4e-3)  # HBM2 included
    assert rows["titan-xp"]["saving"] == pytest.approx(2.5 / 4e-3)
