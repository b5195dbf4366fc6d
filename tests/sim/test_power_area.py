"""area(): module areas against hand computation from the Aladdin figures; CACTI cache; geometry errors."""

import dataclasses
import os

import pytest
from spatten.models.config import ACCELERATORS
from spatten.sim.power import components
from spatten.sim.power.area import PAPER_AREA_MM2, area
from spatten.sim.power.components import sram_cost

FULL = ACCELERATORS["spatten"]
# Aladdin 40 nm areas (hwcomponents-library aladdin.py): 32-bit multiplier 6350 um^2 (quadratic in
# width), 32-bit adder 278 um^2 (linear), register 5.98 um^2 per bit, 32-bit comparator 71 um^2.
MUL_UM2 = 6350.0
ADD_UM2 = 278.0
REG_UM2 = 5.98


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory):
    old = os.environ.get("SPATTEN_CACHE_DIR")
    os.environ["SPATTEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cacti-cache"))
    yield
    if old is None:
        os.environ.pop("SPATTEN_CACHE_DIR", None)
    else:
        os.environ["SPATTEN_CACHE_DIR"] = old


def test_qk_module_area_by_hand():
    mul = MUL_UM2 * (12 / 32) ** 2 + 24 * REG_UM2  # multiplier + product register
    add = ADD_UM2 * 30 / 32 + 30 * REG_UM2  # 30-bit tree adder + its register
    qreg = 64 * 12 * REG_UM2  # the query vector
    want = (512 * mul + 8 * 63 * add + qreg) * 1e-6
    assert area(FULL).by_module_mm2["Q.K"] == pytest.approx(want, rel=1e-9)


def test_totals_shares_and_units_agree():
    r = area(FULL)
    assert r.total_mm2 == pytest.approx(sum(u["total_mm2"] for u in r.units))
    assert r.topk_share == pytest.approx(r.by_module_mm2["top-k"] / r.total_mm2)
    assert r.by_module_mm2["DRAM"] == 0.0  # off-chip
    d = r.to_dict()
    assert d["paper_total_mm2"] == PAPER_AREA_MM2
    assert d["gap_vs_paper"] == pytest.approx(r.total_mm2 / 18.71 - 1)


def test_multiplier_area_scales_with_count():
    half = dataclasses.replace(FULL, qk_multipliers=256, pv_multipliers=256)
    full_units = {u["unit"]: u for u in area(FULL).units}
    half_units = {u["unit"]: u for u in area(half).units}
    for name in ("qk.multiplier", "pv.multiplier"):
        assert half_units[name]["total_mm2"] == pytest.approx(full_units[name]["total_mm2"] / 2)


def test_bigger_sram_is_bigger():
    big = dataclasses.replace(FULL, kv_sram_bytes=2 * FULL.kv_sram_bytes)
    assert area(big).by_module_mm2["SRAM"] > 1.5 * area(FULL).by_module_mm2["SRAM"]


def test_older_node_is_larger():
    assert area(FULL, 65).total_mm2 > area(FULL, 40).total_mm2 > area(FULL, 28).total_mm2


def test_sram_geometry_outside_cacti_range_names_the_field():
    tiny = dataclasses.replace(FULL, kv_sram_bytes=100)
    with pytest.raises(ValueError, match=r"accelerator\.kv_sram_bytes.*outside CACTI's range"):
        area(tiny)
    huge = dataclasses.replace(FULL, kv_sram_bytes=1 << 32)
    with pytest.raises(ValueError, match=r"accelerator\.kv_sram_bytes.*depth 1\.\.1048576"):
        area(huge)
    with pytest.raises(ValueError, match=r"tech_nm = 100 is outside the allowed range 22\.\.90"):
        area(FULL, 100)


def test_cacti_results_are_cached_on_disk(monkeypatch, tmp_path):
    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path))
    first = sram_cost(96, 128, 40)
    assert first["read_j"] > 0 and first["area_mm2"] > 0
    assert len(list(tmp_path.glob("*.json"))) == 1

    def boom(*a, **k):
        raise AssertionError("CACTI ran again for a cached geometry")

    monkeypatch.setattr(components, "_run_cacti", boom)
    assert sram_cost(96, 128, 40) == first
    with pytest.raises(AssertionError):  # a new geometry does call CACTI
        sram_cost(96, 256, 40)


def test_cacti_sram_energy_grows_with_width():
    narrow, wide = sram_cost(64, 256, 40), sram_cost(512, 256, 40)
    assert wide["read_j"] > narrow["read_j"]
    assert wide["area_mm2"] > narrow["area_mm2"]
