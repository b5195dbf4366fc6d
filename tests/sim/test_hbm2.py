"""The bank-level HBM2 model (sim/hbm2.py): hand-derived reference timings; the fast model against it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spatten.sim.hbm2 import HBM2Timing, decode, estimate, pattern_reads, reference

from spatten.cli import main

T = HBM2Timing()


def _read(pc: int = 0, col: int = 0, bg: int = 0, ba: int = 0, row: int = 0) -> int:
    """The read index of a location (the mapping in the module docstring, one channel)."""
    return pc + T.pseudo_channels * (col + T.columns * (bg + T.bank_groups * (ba + T.banks_per_group * row)))


def test_address_mapping_round_trips() -> None:
    a = np.array([_read(1, 5, 2, 3, 7)])
    f = decode(a, 1, T)
    assert (f["pc"][0], f["bg"][0], f["bank"][0], f["row"][0]) == (1, 2, 2 * 4 + 3, 7)


def test_one_read_on_a_closed_bank() -> None:
    # ACT at 0, RD at nRCD = 7, data from 7 + nCL = 14 for nBL = 4 clocks: done at 18
    r = reference(np.array([_read()]), 1)
    assert (r.cycles, r.latency_mean) == (18, 18.0)


def test_two_reads_of_one_row_share_the_activation() -> None:
    # the second RD waits for the data bus (nBL = 4 > nCCD_L = 2): done 4 clocks after the first
    r = reference(np.array([_read(col=0), _read(col=1)]), 2)
    assert r.cycles == 18 + 4


def test_a_row_conflict_closes_and_reopens_the_bank() -> None:
    # one bank, two rows, one read at a time: ACT 0, RD 7, data till 18; PRE at max(nRAS = 17, RD + nRTP)
    # = 18 (issued once the first read left the window), ACT at 18 + nRP = 25, RD 32, done 43
    r = reference(np.array([_read(row=0), _read(row=1)]), 1)
    assert r.cycles == 43


def test_a_sequential_stream_is_bound_by_the_data_bus_and_refresh() -> None:
    # two pseudo-channels, 32 B per nBL = 4 clocks each: 16 B per clock, less nRFC = 350 of every nREFI = 3900
    r = reference(pattern_reads("seq", 40_000), 64)
    bound = 16.0 * (T.n_refi - T.n_rfc) / T.n_refi  # a run that ends mid-interval does a little better
    assert bound * 0.99 <= r.bytes_per_cycle_per_channel <= bound * 1.01


def test_one_bank_many_rows_pays_ras_plus_rp_per_read() -> None:
    # every read reopens the same bank: ACT to ACT is nRAS + nRP = 24 clocks (more than nRC = 19); the run
    # spans one refresh (nRFC = 350) at nREFI = 3900
    reads = np.array([_read(row=i) for i in range(200)])
    r = reference(reads, 16)
    assert abs((r.cycles - T.n_rfc) / 200 - (T.n_ras + T.n_rp)) < 0.1


def _pruned(keep: float, n_keys: int = 8000, seed: int = 1) -> np.ndarray:
    """A pruned K fetch: the kept keys (64 B = 2 reads each) of a head's region, in order."""
    keys = np.flatnonzero(np.random.default_rng(seed).random(n_keys) < keep)
    return np.stack([2 * keys, 2 * keys + 1], axis=1).ravel()


@pytest.mark.parametrize(
    "stream",
    ["seq", "random", "stride:64", "stride:2048", "stride:4096", "pruned:0.5", "pruned:0.05"],
)
@pytest.mark.parametrize(("outstanding", "channels"), [(1, 1), (16, 1), (64, 1), (16, 16)])
def test_the_fast_model_is_within_5_percent_of_the_reference(
    stream: str, outstanding: int, channels: int
) -> None:
    reads = (
        _pruned(float(stream.split(":")[1])) if stream.startswith("pruned") else pattern_reads(stream, 6000)
    )
    ref, fast = reference(reads, outstanding, channels), estimate(reads, outstanding, channels)
    assert fast.cycles == pytest.approx(ref.cycles, rel=0.05)
    if channels == 1:  # a few hundred reads per channel: the mean latency of a short run is all ramp
        assert fast.latency_mean == pytest.approx(ref.latency_mean, rel=0.10)


def test_cli_json_keys_and_bad_input(capsys) -> None:
    assert main(["dram", "--pattern", "stride:2048", "--reads", "2000", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"cycles", "bytes_per_cycle_per_channel", "latency_mean", "latency_max"} <= set(out)
    assert out["model"] == "reference" and out["fast"]["latency_max"] is None
    for argv, needle in (
        (["--reads", "0"], "--reads = 0 is outside the allowed range 1..10000000"),
        (["--outstanding", "0"], "--outstanding = 0"),
        (["--pattern", "stride:48"], "multiple of 32"),
        (["--pattern", "zigzag"], "is not seq, random or stride:BYTES"),
        (["--channels", "65"], "--channels = 65"),
    ):
        assert main(["dram", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
