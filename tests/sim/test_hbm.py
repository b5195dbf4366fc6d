"""HBM model: hand-computed transfers, row openings and exposure."""

from __future__ import annotations

import numpy as np
from spatten.models.config import AcceleratorConfig
from spatten.sim import hbm


def test_dense_stream_hides_row_switches() -> None:
    acc = AcceleratorConfig()
    nbytes = np.array([1024 * 64 * 12 / 8])  # 1024 keys, D = 64, 12 bit = 98304 B = 3072 transactions
    tx, cyc, rows = hbm.kind_cycles(acc, nbytes, nbytes)
    assert tx[0] == 3072
    # 192 per channel at 1 cycle each; 96 rows of 1 KiB over 16 channels = 6 per channel, 32 tx per row,
    # 16 outstanding x 1 cycle >= tRP + tRCD = 14: nothing exposed
    assert rows[0] == 6
    assert cyc[0] == 192


def test_sparse_fetch_exposes_activation() -> None:
    acc = AcceleratorConfig()
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
