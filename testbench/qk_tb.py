"""cocotb testbench for ``rtl.qk.QKUnit``: random requests, idle/back-pressure, == against models.qk.

Parameters arrive through the environment: HEAD_DIM, K_PAR, Q_WIDTH, K_WIDTH (must match the build),
NS (comma-separated request lengths), IDLE and STALL (probabilities), SEED.
"""

from __future__ import annotations

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from spatten.models.qk import qk_cycles, qk_scores


def _pack(values, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def _signed(x: int, width: int) -> int:
    return x - (1 << width) if x >> (width - 1) else x


@cocotb.test()
async def qk_requests(dut) -> None:
    hd, kp = int(os.environ["HEAD_DIM"]), int(os.environ["K_PAR"])
    qw, kw = int(os.environ["Q_WIDTH"]), int(os.environ["K_WIDTH"])
    ns = [int(x) for x in os.environ["NS"].split(",")]
    idle, stall = float(os.environ.get("IDLE", "0")), float(os.environ.get("STALL", "0"))
    seed = int(os.environ.get("SEED", "1"))
    sw = qw + kw + (int(np.ceil(np.log2(hd))) if hd > 1 else 0)
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.k_valid.value = 0
    dut.s_ready.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    for n in ns:
        query = nprng.integers(-(1 << (qw - 1)) + 1, 1 << (qw - 1), hd)
        keys = nprng.integers(-(1 << (kw - 1)) + 1, 1 << (kw - 1), (n, hd))
        want = qk_scores(query, keys, qw, kw).tolist()
        beats = [keys[b : b + kp] for b in range(0, n, kp)]
        dut.query.value = _pack(query, qw)
        got: list[int] = []
        sent, cycles, done = 0, 0, False
        while not done:
            if cycles > 50 * (n + 50):
                raise AssertionError(f"stage qk: timeout, n={n}, {len(got)} of {n} scores out")
            valid = sent < len(beats) and rng.random() >= idle
            if sent < len(beats):
                beat = beats[sent]
                pad = np.zeros((kp - len(beat), hd), dtype=np.int64)
                dut.k_data.value = _pack(np.concatenate([beat, pad]).ravel(), kw)
                dut.k_mask.value = (1 << len(beat)) - 1
                dut.k_last.value = int(sent == len(beats) - 1)
            dut.k_valid.value = int(valid)
            dut.s_ready.value = int(rng.random() >= stall)
            await ReadOnly()
            if dut.s_valid.value == 1 and dut.s_ready.value == 1:
                data, mask = int(dut.s_data.value), int(dut.s_mask.value)
                got += [_signed((data >> (j * sw)) & ((1 << sw) - 1), sw) for j in range(kp) if mask >> j & 1]
                done = dut.s_last.value == 1
            if valid and dut.k_ready.value == 1:
                sent += 1
            await RisingEdge(dut.clk)
            cycles += 1
        dut.k_valid.value = 0
        for i, (g, w) in enumerate(zip(got, want, strict=False)):
            assert g == w, f"stage qk, n={n}, score {i}: expected {w}, got {g}"
        assert len(got) == n, f"stage qk, n={n}: expected {n} scores, got {len(got)}"
        if idle == 0 and stall == 0:
            # cycles counts edges from the first beat driven to the last score seen: no bubbles allowed
            assert cycles == qk_cycles(n, kp, hd), (
                f"stage qk, n={n}: {cycles} cycles, model {qk_cycles(n, kp, hd)}"
            )
        dut._log.info("qk n=%d: %d cycles", n, cycles)
