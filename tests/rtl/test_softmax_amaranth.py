"""Fast tier: Softmax RTL under Amaranth's simulator, == against models.softmax.softmax_fixed."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from models.softmax import DEFAULT_SPEC, error_bound, softmax_fixed, softmax_float
from rtl.softmax import Softmax


@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_softmax_matches_model(stall: float) -> None:
    spec = DEFAULT_SPEC
    dut = Softmax(spec, max_n=64)
    rng = np.random.default_rng(5)
    pyrng = random.Random(2)
    lo, hi = -(1 << (spec.in_bits - 1)) + 1, (1 << (spec.in_bits - 1)) - 1
    rows = [rng.integers(lo, hi, n) for n in (1, 7, 64)]
    rows += [rng.integers(-600, 600, 33), np.full(5, -7)]
    got: list[list[int]] = []

    async def producer(ctx):
        for row in rows:
            for j, s in enumerate(row):
                while pyrng.random() < stall:
                    ctx.set(dut.i_valid, 0)
                    await ctx.tick()
                ctx.set(dut.i_score, int(s))
                ctx.set(dut.i_last, int(j == len(row) - 1))
                ctx.set(dut.i_valid, 1)
                await ctx.tick().until(dut.i_ready)
            ctx.set(dut.i_valid, 0)

    async def consumer(ctx):
        cur: list[int] = []
        for _ in range(20000):
            ready = int(pyrng.random() >= stall)
            ctx.set(dut.o_ready, ready)
            if ready and ctx.get(dut.o_valid):
                cur.append(ctx.get(dut.o_prob))
                if ctx.get(dut.o_last):
                    got.append(cur)
                    cur = []
            await ctx.tick()
            if len(got) == len(rows):
                return
        raise AssertionError("stage softmax: timeout")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    for r, (row, g) in enumerate(zip(rows, got, strict=True)):
        want = softmax_fixed(row, spec).tolist()
        for j, (a, b) in enumerate(zip(g, want, strict=True)):
            assert a == b, f"stage softmax, row {r}, element {j}: expected {b}, got {a}"
        # RTL output against float64 within the model's stated bound
        p = softmax_float(row.astype(np.float64) * spec.scale / (1 << spec.frac_bits))
        per_elem, _total = error_bound(p, spec)
        assert np.all(np.abs(np.asarray(g) / (1 << spec.out_bits) - p) <= per_elem)
