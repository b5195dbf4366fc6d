"""Fast tier: ValueUnit under Amaranth's simulator against models.value_unit, with idle and back-pressure."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from spatten.models.value_unit import prob_v
from spatten.rtl.value_unit import ValueUnit


def _pack(values, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def _signed(x: int, width: int) -> int:
    return x - (1 << width) if x >> (width - 1) else x


@pytest.mark.parametrize(("head_dim", "v_par"), [(16, 4), (5, 3), (1, 1)])
@pytest.mark.parametrize("keep", [1.0, 0.3, 0.2])
@pytest.mark.parametrize(("idle", "stall"), [(0.0, 0.0), (0.3, 0.5)])
def test_value_unit_matches_model(head_dim: int, v_par: int, keep: float, idle: float, stall: float) -> None:
    pw, vw, max_n = 12, 6, 64
    dut = ValueUnit(head_dim, v_par, pw, vw, max_n)
    aw = dut.acc_width
    rng = np.random.default_rng(head_dim * 7 + v_par)
    pyrng = random.Random(3)
    requests = []
    for n in (1, 7, 64):
        m = max(1, round(keep * n))
        requests.append(
            (rng.integers(0, 1 << pw, m), rng.integers(-(1 << (vw - 1)) + 1, 1 << (vw - 1), (m, head_dim)))
        )
    results: list[list[int]] = []

    async def producer(ctx):
        for probs, values in requests:
            beats = range(0, len(probs), v_par)
            for bi, b in enumerate(beats):
                while pyrng.random() < idle:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                p, v = probs[b : b + v_par], values[b : b + v_par]
                pad = v_par - len(p)
                junk = [pyrng.randrange(1 << pw) for _ in range(pad)]
                ctx.set(dut.i.payload.prob.as_value(), _pack(list(p) + junk, pw))
                rows = np.concatenate([v, np.ones((pad, head_dim), np.int64)])
                ctx.set(dut.i.payload.value.as_value(), _pack(rows.ravel(), vw))
                ctx.set(dut.i.payload.mask, (1 << len(p)) - 1)
                ctx.set(dut.i.payload.last, int(bi == len(beats) - 1))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        for _ in range(5000):
            ready = int(pyrng.random() >= stall)
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                data = ctx.get(dut.o.payload.data.as_value())
                results.append([_signed((data >> (e * aw)) & ((1 << aw) - 1), aw) for e in range(head_dim)])
            await ctx.tick()
            if len(results) == len(requests):
                return
        raise AssertionError("stage value: timeout")

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_testbench(consumer)
    sim.run()
    for r, ((probs, values), got) in enumerate(zip(requests, results, strict=True)):
        want = prob_v(probs, values).tolist()
        for e, (g, w) in enumerate(zip(got, want, strict=True)):
            assert g == w, f"stage value, request {r}, element {e}: expected {w}, got {g}"
