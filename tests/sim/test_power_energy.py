"""energy(): per-action energies against hand computation from the Aladdin/HBM2 figures; with simulate()."""

import math
import os

import pytest
from spatten.models.config import ACCELERATORS, AcceleratorConfig, workload_preset
from spatten.sim.power.energy import ACTIONS, energy

# Aladdin 40 nm characterisation (hwcomponents-library, aladdin.py): 32-bit multiplier 12.68 pJ and
# 80 uW leakage, quadratic in width; 32-bit adder 0.21 pJ and 2.4 uW, linear; register 0.009 pJ per bit
# per read or write, no leakage. HBM2: 6.25 pJ per bit (hwcomponents-cacti).
MUL12_PJ = 12.68 * (12 / 32) ** 2
REG_PJ_PER_BIT = 0.009
ADD_PJ_PER_BIT = 0.21 / 32
HBM2_PJ_PER_BIT = 6.25

FULL = ACCELERATORS["spatten"]


@pytest.fixture(autouse=True, scope="module")
def _cache(tmp_path_factory):
    old = os.environ.get("SPATTEN_CACHE_DIR")
    os.environ["SPATTEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("cacti-cache"))
    yield
    if old is None:
        os.environ.pop("SPATTEN_CACHE_DIR", None)
    else:
        os.environ["SPATTEN_CACHE_DIR"] = old


def zero_actions(**kw):
    a = dict.fromkeys(ACTIONS, 0.0)
    a.update(kw)
    return a


def test_qk_multiply_energy_by_hand():
    # One Q.K multiply: a 12x12 multiplier, its 24-bit product register written and read, and 12 bits
    # of the query register read.
    per = MUL12_PJ + 2 * 24 * REG_PJ_PER_BIT + 12 * REG_PJ_PER_BIT
    r = energy(zero_actions(qk_mul=1000), FULL)
    assert r.dynamic_j["Q.K"] == pytest.approx(1000 * per * 1e-12, rel=1e-9)
    assert sum(v for k, v in r.dynamic_j.items() if k != "Q.K") == 0.0


def test_qk_adder_tree_energy_by_hand():
    # Adder tree of 64 products of 24 bits: 30-bit adders (24 + log2 64), result registered.
    per = 30 * ADD_PJ_PER_BIT + 2 * 30 * REG_PJ_PER_BIT
    r = energy(zero_actions(qk_add=5), FULL)
    assert r.dynamic_j["Q.K"] == pytest.approx(5 * per * 1e-12, rel=1e-9)


def test_dram_bits_cost_hbm2_energy_per_bit():
    bits = 1_000_000
    for kind in ("dram_bits_q", "dram_bits_k_msb", "dram_bits_k_lsb", "dram_bits_v"):
        r = energy(zero_actions(**{kind: bits}), FULL)
        assert r.dynamic_j["DRAM"] == pytest.approx(bits * HBM2_PJ_PER_BIT * 1e-12, rel=1e-12)
        assert r.dynamic_j["fetcher"] > 0  # the bits also cross the fetcher's crossbar and FIFO
        assert r.dynamic_j["Q.K"] == 0.0


def test_leakage_is_leak_power_times_time():
    # Q.K leakage: 512 multipliers at 80 uW x (12/32)^2 and 504 adders at 2.4 uW x 30/32.
    qk_leak_w = 512 * 80e-6 * (12 / 32) ** 2 + 504 * 2.4e-6 * 30 / 32
    r = energy(zero_actions(seconds=2.0), FULL)
    assert r.leakage_j["Q.K"] == pytest.approx(2.0 * qk_leak_w, rel=1e-9)
    assert all(v == 0.0 for v in r.dynamic_j.values())
    assert r.power_w == pytest.approx(r.total_j / 2.0)


def test_energy_is_linear_and_additive():
    a = zero_actions(qk_mul=10, pv_mul=7, softmax_exp=3, topk_compare=11, k_sram_read_bits=768, seconds=1e-6)
    b = zero_actions(pv_add=5, softmax_div=2, dram_bits_v=4096, dram_transactions=16, seconds=3e-6)
    ab = {k: a[k] + b[k] for k in ACTIONS}
    ra, rb, rab = energy(a, FULL), energy(b, FULL), energy(ab, FULL)
    for m in ra.module_j:
        assert rab.module_j[m] == pytest.approx(ra.module_j[m] + rb.module_j[m], rel=1e-12, abs=1e-30)
    r2 = energy({k: 2 * v for k, v in a.items()}, FULL)
    assert r2.total_j == pytest.approx(2 * ra.total_j, rel=1e-12)


def test_ops_and_gop_per_joule():
    r = energy(zero_actions(qk_mul=100, pv_mul=50, seconds=1e-6), FULL)
    assert r.ops == 300.0
    assert r.gop_per_j == pytest.approx(300 / r.total_j / 1e9)
    assert energy(zero_actions(qk_mul=1), FULL, ops=42).ops == 42


def test_columns_sum_to_total():
    r = energy(zero_actions(qk_mul=3, softmax_exp=2, topk_compare=5, dram_bits_k_msb=64, seconds=1e-7), FULL)
    cols = r.columns()
    per_module = sum(v for k, v in cols.items() if k.startswith("energy_") and k != "energy_j")
    assert per_module == pytest.approx(cols["energy_j"])
    assert cols["chip_energy_j"] == pytest.approx(cols["energy_j"] - r.module_j["DRAM"])


def test_narrower_datapath_costs_less_per_multiply():
    narrow = AcceleratorConfig(datapath_bits=8)
    e12 = energy(zero_actions(qk_mul=1), FULL).dynamic_j["Q.K"]
    e8 = energy(zero_actions(qk_mul=1), narrow).dynamic_j["Q.K"]
    per8 = 12.68 * (8 / 32) ** 2 + 2 * 16 * REG_PJ_PER_BIT + 8 * REG_PJ_PER_BIT
    assert e8 == pytest.approx(per8 * 1e-12, rel=1e-9)
    assert e8 < e12


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"qk_mul": -1}, r"actions\['qk_mul'\].*>= 0"),
        ({"seconds": math.nan}, r"actions\['seconds'\]"),
    ],
)
def test_bad_counts_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        energy(zero_actions(**bad), FULL)


def test_missing_action_and_bad_node():
    a = zero_actions()
    del a["topk_compare"]
    with pytest.raises(ValueError, match="topk_compare"):
        energy(a, FULL)
    with pytest.raises(ValueError, match=r"tech_nm = 7 is outside the allowed range 22\.\.90"):
        energy(zero_actions(), FULL, tech_nm=7)
    with pytest.raises(TypeError, match="tech_nm"):
        energy(zero_actions(), FULL, tech_nm=40.0)


def test_with_simulate_bert_base():
    from spatten.sim.api import simulate

    w = workload_preset("bert-base")
    res = simulate(w)
    r = energy(res.actions, w.accelerator)
    a = res.actions
    # Q.K dynamic energy is exactly its multiplies and adds at the hand-computed per-action energies.
    mul = MUL12_PJ + 2 * 24 * REG_PJ_PER_BIT + 12 * REG_PJ_PER_BIT
    add = 30 * ADD_PJ_PER_BIT + 2 * 30 * REG_PJ_PER_BIT
    assert r.dynamic_j["Q.K"] == pytest.approx((a["qk_mul"] * mul + a["qk_add"] * add) * 1e-12, rel=1e-9)
    dram_bits = sum(a[k] for k in ("dram_bits_q", "dram_bits_k_msb", "dram_bits_k_lsb", "dram_bits_v"))
    assert r.dynamic_j["DRAM"] == pytest.approx(dram_bits * HBM2_PJ_PER_BIT * 1e-12, rel=1e-9)
    assert r.seconds == a["seconds"] > 0
    # A compute-bound BERT run keeps the 1024 multipliers busy: watts, not milliwatts or kilowatts.
    assert 0.5 < r.chip_power_w < 50
    assert sum(r.module_j.values()) == pytest.approx(r.total_j)


def test_peak_power_qk_by_hand():
    from spatten.sim.power.energy import peak_power_w

    mul = MUL12_PJ + 2 * 24 * REG_PJ_PER_BIT + 12 * REG_PJ_PER_BIT
    add = 30 * ADD_PJ_PER_BIT + 2 * 30 * REG_PJ_PER_BIT
    leak = 512 * 80e-6 * (12 / 32) ** 2 + 504 * 2.4e-6 * 30 / 32
    peak = peak_power_w(FULL)
    assert peak["Q.K"] == pytest.approx((512 * mul + 504 * add) * 1e-12 * 1e9 + leak, rel=1e-9)
    assert "DRAM" not in peak
    # A real run never averages above the all-busy bound.
    from spatten.sim.api import simulate

    w = workload_preset("bert-large")
    r = energy(simulate(w).actions, w.accelerator)
    assert r.chip_power_w <= sum(peak.values())
