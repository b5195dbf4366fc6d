"""cocotb testbench for ``rtl.softmax.Softmax`` (default spec): random rows, idle/back-pressure,
== against models.softmax.softmax_fixed and within its stated float64 bound.

Environment: NS (comma-separated row lengths), STALL (probability), SEED, LANES (the built core's
``lanes``, default 1: scores per input beat, the last beat of a row partial, unused lanes filled with
the largest code so that a lane mask that is not honoured shows). With STALL = 0 every row must take
``3 * ceil(n / LANES) + 1`` cycles from its first input beat to its last output beat.
"""

from __future__ import annotations

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from spatten.models.softmax import DEFAULT_SPEC, error_bound, softmax_fixed, softmax_float


def _pack(values, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (j * width) for j, v in enumerate(values))


@cocotb.test()
async def softmax_rows(dut) -> None:
    spec = DEFAULT_SPEC
    ns = [int(x) for x in os.environ["NS"].split(",")]
    stall = float(os.environ.get("STALL", "0"))
    seed = int(os.environ.get("SEED", "1"))
    lanes = int(os.environ.get("LANES", "1"))
    s_bits, p_bits = spec.in_bits, spec.out_bits
    rng, nprng = random.Random(seed), np.random.default_rng(seed)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i_valid.value = 0
    dut.o_ready.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    lim = (1 << (spec.in_bits - 1)) - 1
    for r, n in enumerate(ns):
        spread = [lim, 2000, 300][r % 3]
        row = nprng.integers(-spread, spread + 1, n)
        want = softmax_fixed(row, spec).tolist()
        beats = [row[b : b + lanes] for b in range(0, n, lanes)]
        got: list[int] = []
        sent, cycles, done = 0, 0, False
        first = None
        while not done:
            if cycles > 20 * (n + 50):
                raise AssertionError(f"stage softmax: timeout, n={n}, {len(got)} of {n} out")
            valid = sent < len(beats) and rng.random() >= stall
            if sent < len(beats):
                beat = beats[sent]
                if lanes == 1:
                    dut.i_score.value = int(beat[0])
                else:
                    dut.i_score.value = _pack(list(beat) + [lim] * (lanes - len(beat)), s_bits)
                    dut.i_mask.value = (1 << len(beat)) - 1
                dut.i_last.value = int(sent == len(beats) - 1)
            dut.i_valid.value = int(valid)
            dut.o_ready.value = int(rng.random() >= stall)
            await ReadOnly()
            if dut.o_valid.value == 1 and dut.o_ready.value == 1:
                word = int(dut.o_prob.value)
                mask = int(dut.o_mask.value) if lanes > 1 else 1
                got += [(word >> (j * p_bits)) & ((1 << p_bits) - 1) for j in range(lanes) if mask >> j & 1]
                done = dut.o_last.value == 1
            if valid and dut.i_ready.value == 1:
                if first is None:
                    first = cycles
                sent += 1
            await RisingEdge(dut.clk)
            cycles += 1
        dut.i_valid.value = 0
        for j, (g, w) in enumerate(zip(got, want, strict=False)):
            assert g == w, f"stage softmax, n={n}, element {j}: expected {w}, got {g}"
        assert len(got) == n, f"stage softmax, n={n}: expected {n} outputs, got {len(got)}"
        p = softmax_float(row.astype(np.float64) * spec.scale / (1 << spec.frac_bits))
        per_elem, _ = error_bound(p, spec)
        assert np.all(np.abs(np.asarray(got) / (1 << spec.out_bits) - p) <= per_elem), "softmax bound"
        span = cycles - first
        if stall == 0:
            want_span = 3 * len(beats) + 1
            assert span == want_span, f"stage softmax, n={n}: {span} cycles, expected {want_span}"
        dut._log.info("softmax n=%d lanes=%d: %d cycles first beat to last output", n, lanes, span)
