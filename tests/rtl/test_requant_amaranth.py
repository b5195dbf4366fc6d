"""Fast tier: RequantDecision under Amaranth's simulator against models.requant."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator
from spatten.models.requant import refetch_decision
from spatten.rtl.requant import RequantDecision


@pytest.mark.parametrize("lanes", [1, 3, 8])
def test_requant_matches_model(lanes: int) -> None:
    pw = 12
    dut = RequantDecision(pw, lanes)
    rng = random.Random(lanes)
    rows = []
    for n in (1, 7, 64, 257):
        for thr in (0, 205, 4096):
            hi = rng.choice([4095, 300, 204, 205])
            rows.append(([rng.randint(0, hi) for _ in range(n)], thr))
    got: list[tuple[bool, int]] = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)  # the core takes each decision the cycle it appears
        for row, thr in rows:
            ctx.set(dut.threshold, thr)
            beats = range(0, len(row), lanes)
            for bi, b in enumerate(beats):
                while rng.random() < 0.3:  # idle cycles must not disturb the running maximum
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                chunk = row[b : b + lanes]
                pad = [rng.randrange(1 << pw) for _ in range(lanes - len(chunk))]
                ctx.set(dut.i.payload.data.as_value(), sum(v << (j * pw) for j, v in enumerate(chunk + pad)))
                ctx.set(dut.i.payload.mask, (1 << len(chunk)) - 1)
                ctx.set(dut.i.payload.last, int(bi == len(beats) - 1))
                ctx.set(dut.i.valid, 1)
                assert ctx.get(dut.i.ready) == 1  # the block never stalls its input
                await ctx.tick()
            ctx.set(dut.i.valid, 0)
            assert ctx.get(dut.o.valid) == 1
            got.append((bool(ctx.get(dut.o.payload.refetch)), ctx.get(dut.o.payload.max_prob)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    for i, ((row, thr), g) in enumerate(zip(rows, got, strict=True)):
        assert g == refetch_decision(row, thr), (
            f"stage requant, row {i}: expected {refetch_decision(row, thr)}, got {g}"
        )
