"""HBM models: hand-computed transfers, row openings and exposure (``peak``), device-timing bounds (``hbm2``)
checked by hand and against the cycle-level reference of ``sim/hbm2.py``."""

from __future__ import annotations

import numpy as np
import pytest
from spatten.models.config import AcceleratorConfig
from spatten.sim import hbm, hbm2


def test_dense_stream_hides_row_switches() -> None:
    acc = AcceleratorConfig(dram_model="peak")
    nbytes = np.array([1024 * 64 * 12 / 8])  # 1024 keys, D = 64, 12 bit = 98304 B = 3072 transactions
    tx, cyc, rows = hbm.kind_cycles(acc, nbytes, nbytes)
    assert tx[0] == 3072
    # 192 per channel at 1 cycle each; 96 rows of 1 KiB over 16 channels = 6 per channel, 32 tx per row,
    # 16 outstanding x 1 cycle >= tRP + tRCD = 14: nothing exposed
    assert rows[0] == 6
    assert cyc[0] == 192


def test_sparse_fetch_exposes_activation() -> None:
    acc = AcceleratorConfig(dram_model="peak")
    nbytes = np.array([64.0 * 32])  # 32 keys of 64 B = 64 transactions, 4 per channel
    span = np.array([64.0 * 1024])  # spread over a 64 KiB region: 4 rows per channel
    tx, cyc, rows = hbm.kind_cycles(acc, nbytes, span)
    assert tx[0] == 64 and rows[0] == 4
    # one transaction per row hides 1 cycle of the 14-cycle activation: 4 x 1 + 4 x 13
    assert cyc[0] == 4 + 4 * 13


def test_request_bytes_arithmetic() -> None:
    b = hbm.request_bytes(
        np.array([10]),
        np.array([3]),
        np.array([2]),
        np.array([64]),
        np.array([6.0]),
        np.array([4.0]),
        np.array([16.0]),
        np.array([8.0]),
        np.array([True]),
    )
    assert b["k_msb"][0] == 10 * 64 * 6 / 8
    assert b["k_lsb"][0] == 10 * 64 * 4 / 8
    assert b["v"][0] == 3 * 64 * 8 / 8
    assert b["q"][0] == 2 * 64 * 16 / 8


def test_hbm2_dense_stream_by_hand() -> None:
    acc = AcceleratorConfig()  # hbm2, 16 channels, 16 outstanding, 1 GHz core and DRAM clocks
    nbytes = np.array([1 << 20])  # 32,768 reads: 2,048 per channel, 1,024 per pseudo-channel
    tx, cyc, rows = hbm.kind_cycles(acc, nbytes, nbytes)
    assert tx[0] == 32768
    # a pseudo-channel row is 64 reads of 32 B: 1 MiB fills 16 rows of each of the 32 pseudo-channels
    assert rows[0] == 16 * 2
    bus = 1024 * 4  # nBL clocks per read
    latency = 7 + 4 + 16 / 1024 * (7 + 7)  # nCL + nBL, nRCD + nRP on the 16 reads that open a row
    window = 2048 * latency / 16
    assert cyc[0] == pytest.approx((bus**3 + window**3) ** (1 / 3) * 3900 / (3900 - 350), rel=1e-12)


def test_hbm2_scattered_reads_by_hand() -> None:
    acc = AcceleratorConfig()
    nbytes = np.array([64 * 32.0])  # 64 reads, 4 per channel, 2 per pseudo-channel
    span = np.array([64 * 2048 * 32.0])  # a region of 64 rows per pseudo-channel: every read opens one
    tx, cyc, rows = hbm.kind_cycles(acc, nbytes, span)
    assert tx[0] == 64 and rows[0] == 2 * 2
    acts = 2 * max(2, 15 / 4)  # two openings paced by nFAW / 4
    bank = 0  # two openings over 16 banks: no bank opens twice
    window = 4 * (7 + 4 + 7 + 7) / 16
    busy = max(2 * 4, acts, bank)
    assert cyc[0] == pytest.approx((busy**3 + window**3) ** (1 / 3) * 3900 / 3550, rel=1e-12)


def test_hbm2_cycles_follow_the_dram_clock_not_the_core_clock() -> None:
    nbytes = np.array([1 << 20])
    one = hbm.kind_cycles(AcceleratorConfig(), nbytes, nbytes)[1][0]
    two = hbm.kind_cycles(AcceleratorConfig(clock_ghz=2.0), nbytes, nbytes)[1][0]
    assert two == 2 * one  # the same nanoseconds are twice the core cycles
    peak = [
        hbm.kind_cycles(AcceleratorConfig(dram_model="peak", clock_ghz=f), nbytes, nbytes)[1][0]
        for f in (1, 2)
    ]
    assert peak[1] < 2 * peak[0]  # the assumed model moved 32 B per core cycle at any clock


@pytest.mark.parametrize(
    ("pattern", "outstanding"), [("seq", 1), ("seq", 16), ("seq", 64), ("random", 16), ("random", 64)]
)
def test_hbm2_request_cycles_against_the_cycle_level_reference(pattern: str, outstanding: int) -> None:
    """One request of 8,192 reads on one channel (several refreshes long, so refresh averages out): the
    per-request bounds against the clock-by-clock run, less its first-data latency (the simulator charges
    that as the fetch stage's latency, not as occupancy)."""
    acc = AcceleratorConfig(hbm_channels=1, max_outstanding=outstanding)
    n, span = 8192, 1 << 26
    reads = hbm2.pattern_reads(pattern, n, seed=1, span=span // 32)
    ref = hbm2.reference(reads, outstanding, channels=1)
    region = n * 32 if pattern == "seq" else span
    got = hbm.kind_cycles(acc, np.array([n * 32.0]), np.array([float(region)]))[1][0]
    first = 7 + 4 + 7  # one read on a closed bank: nRCD + nCL + nBL
    assert got == pytest.approx(ref.cycles - first, rel=0.05), (got, ref.cycles)


def test_hbm2_a_queries_q_vector_costs_its_bus_time() -> None:
    acc = AcceleratorConfig()
    q = np.array([64 * 12 / 8])  # 96 B: 3 reads, 1 on the busiest channel and pseudo-channel
    tx, cyc, rows = hbm.kind_cycles(acc, q, q, contiguous=True)
    share = 96 / (2048 * 16 * 2)  # the Q stream's rows, shared by consecutive queries
    assert rows[0] == pytest.approx(share * 2)
    latency = 7 + 4 + share * 14
    busy = max(4, share * 3.75, share / 16 * 24)
    assert cyc[0] == pytest.approx((busy**3 + (latency / 16) ** 3) ** (1 / 3) * 3900 / 3550, rel=1e-12)


def test_hbm2_pruning_pays_and_channels_matter() -> None:
    """The issue's two symptoms of the assumed model: GPT-2-Small at 128 tokens pruned was slower than dense
    with 5x fewer bytes, and 64 channels changed nothing."""
    from spatten.models.config import replace_path, workload_preset
    from spatten.sim.api import simulate

    w = workload_preset("gpt2-small", prompt_len=128)
    pruned, dense = simulate(w).summary, simulate(w, baseline="dense").summary
    assert pruned["dram_bytes_total"] * 5 < dense["dram_bytes_total"]
    assert pruned["cycles"] * 3 < dense["cycles"]
    wide = simulate(replace_path(w, "accelerator.hbm_channels", 64)).summary
    assert wide["cycles"] < 0.95 * pruned["cycles"]
    old = simulate(replace_path(w, "accelerator.dram_model", "peak")).summary
    assert old["cycles"] > pruned["cycles"]  # it charged a scattered read one row opening after another


def test_stream_gbs_is_the_roof_each_model_charges() -> None:
    # peak: 16 channels x 32 B per core cycle at 1 GHz
    assert hbm.stream_gbs(AcceleratorConfig(dram_model="peak")) == 512.0
    # hbm2: each pseudo-channel's bus moves 32 B per nBL = 4 clocks, two per channel, less refresh; the
    # 16-read window adds a little (3-norm), so the roof sits just below the bus bound, at any core clock
    bus_bound = 16 * 2 * 32 / 4 * (3900 - 350) / 3900
    got = hbm.stream_gbs(AcceleratorConfig())
    assert 0.97 * bus_bound < got < bus_bound
    assert hbm.stream_gbs(AcceleratorConfig(clock_ghz=2.0)) == pytest.approx(got, rel=1e-12)
