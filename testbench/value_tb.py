"""cocotb testbench for ``rtl.value_unit.ValueUnit``: kept rows at ratios KEEPS, idle/back-pressure,
== against models.value_unit.prob_v.

Environment: HEAD_DIM, V_PAR, P_WIDTH, V_WIDTH, MAX_N (must match the build), NS, KEEPS, STALL, SEED.
"""

from __future__ import annotations

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from spatten.models.value_unit import prob_v


def _pack(values, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def _signed(x: int, width: int) -> int:
    return x - (1 << width) if x >> (width - 1) else x


@cocotb.test()
async def value_requests(dut) -> None:
    hd, vp = int(os.environ["HEAD_DIM"]), int(os.environ["V_PAR"])
    pw, vw, max_n = int(os.environ["P_WIDTH"]), int(os.environ["V_WIDTH"]), int(os.environ["MAX_N"])
    aw = pw + 1 + vw + max(1, (max_n - 1).bit_length())
    ns = [int(x) for x in os.environ["NS"].split(",")]
    keeps = [float(x) for x in os.environ["KEEPS"].split(",")]
    stall = float(os.environ.get("STALL", "0"))
    rng, nprng = random.Random(int(os.environ.get("SEED", "1"))), np.random.default_rng(3)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i_valid.value = 0
    dut.o_ready.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    for n in ns:
        for keep in keeps:
            m = max(1, round(keep * n))
            probs = nprng.integers(0, 1 << pw, m)
            values = nprng.integers(-(1 << (vw - 1)) + 1, 1 << (vw - 1), (m, hd))
            want = prob_v(probs, values).tolist()
            beats = list(range(0, m, vp))
            sent, got, cycles = 0, None, 0
            while got is None:
                if cycles > 20 * (m + 50):
                    raise AssertionError(f"stage value: timeout n={n} keep={keep}")
                valid = sent < len(beats) and rng.random() >= stall
                if sent < len(beats):
                    b = beats[sent]
                    p, v = probs[b : b + vp], values[b : b + vp]
                    pad = vp - len(p)
                    dut.i_prob.value = _pack(list(p) + [(1 << pw) - 1] * pad, pw)
                    dut.i_value.value = _pack(np.concatenate([v, np.ones((pad, hd), np.int64)]).ravel(), vw)
                    dut.i_mask.value = (1 << len(p)) - 1
                    dut.i_last.value = int(sent == len(beats) - 1)
                dut.i_valid.value = int(valid)
                dut.o_ready.value = int(rng.random() >= stall)
                await ReadOnly()
                if dut.o_valid.value == 1 and dut.o_ready.value == 1:
                    data = int(dut.o_data.value)
                    got = [_signed((data >> (e * aw)) & ((1 << aw) - 1), aw) for e in range(hd)]
                if valid and dut.i_ready.value == 1:
                    sent += 1
                await RisingEdge(dut.clk)
                cycles += 1
            dut.i_valid.value = 0
            for e, (g, w) in enumerate(zip(got, want, strict=True)):
                assert g == w, f"stage value, n={n}, keep={keep}, element {e}: expected {w}, got {g}"
