# amaranth: UnusedElaboratable=no
"""Fast tier: QKUnit under Amaranth's simulator against models.qk, with idle and back-pressure."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from spatten.models.qk import qk_latency, qk_scores
from spatten.rtl.qk import QKUnit


def _pack(values, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def _signed(x: int, width: int) -> int:
    return x - (1 << width) if x >> (width - 1) else x


def _run(head_dim: int, k_par: int, n: int, idle: float, stall: float, seed: int):
    qw, kw = 8, 6
    rng = np.random.default_rng(seed)
    query = rng.integers(-(1 << (qw - 1)) + 1, 1 << (qw - 1), head_dim)
    keys = rng.integers(-(1 << (kw - 1)) + 1, 1 << (kw - 1), (n, head_dim))
    dut = QKUnit(head_dim, k_par, qw, kw)
    sw = dut.score_width
    beats = [keys[b : b + k_par] for b in range(0, n, k_par)]
    got: list[int] = []
    lasts: list[int] = []
    cycles = {"n": 0}
    pyrng = random.Random(seed)

    async def producer(ctx):
        ctx.set(dut.query.as_value(), _pack(query, qw))
        for bi, beat in enumerate(beats):
            while pyrng.random() < idle:
                ctx.set(dut.k.valid, 0)
                await ctx.tick()
            pad = np.zeros((k_par - len(beat), head_dim), dtype=np.int64)
            ctx.set(dut.k.payload.data.as_value(), _pack(np.concatenate([beat, pad]).ravel(), kw))
            ctx.set(dut.k.payload.mask, (1 << len(beat)) - 1)
            ctx.set(dut.k.payload.last, int(bi == len(beats) - 1))
            ctx.set(dut.k.valid, 1)
            await ctx.tick().until(dut.k.ready)
        ctx.set(dut.k.valid, 0)

    async def consumer(ctx):
        while True:
            ready = int(pyrng.random() >= stall)
            ctx.set(dut.s.ready, ready)
            await ctx.tick()
            cycles["n"] += 1
            if cycles["n"] > 20 * (n + 50):
                raise AssertionError("timeout")
            if lasts and lasts[-1]:
                return

    async def sampler(ctx):
        async for _clk, _rst, s_valid, s_ready, data, mask, last in ctx.tick().sample(
            dut.s.valid, dut.s.ready, dut.s.payload.data.as_value(), dut.s.payload.mask, dut.s.payload.last
        ):
            if s_valid and s_ready:
                for j in range(k_par):
                    if (mask >> j) & 1:
                        got.append(_signed((data >> (j * sw)) & ((1 << sw) - 1), sw))
                lasts.append(last)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(producer, background=True)
    sim.add_process(sampler)
    sim.add_testbench(consumer)
    sim.run()
    want = qk_scores(query, keys, qw, kw).tolist()
    return got, want, lasts, cycles["n"]


@pytest.mark.parametrize(
    ("head_dim", "k_par", "n"), [(16, 4, 1), (16, 4, 7), (16, 2, 64), (5, 3, 10), (1, 1, 3)]
)
@pytest.mark.parametrize(("idle", "stall"), [(0.0, 0.0), (0.3, 0.4)])
def test_qk_unit_matches_model(head_dim: int, k_par: int, n: int, idle: float, stall: float) -> None:
    got, want, lasts, _ = _run(head_dim, k_par, n, idle, stall, seed=head_dim * 100 + n)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == w, f"stage qk, score {i}: expected {w}, got {g}"
    assert lasts[-1] == 1 and sum(lasts) == 1


def test_qk_no_bubbles() -> None:
    n, k_par, hd = 64, 4, 16
    _, _, _, cycles = _run(hd, k_par, n, 0.0, 0.0, seed=1)
    # consumer counts edges until the last beat is seen: beats + latency (+1 for the sampling edge)
    assert cycles <= n // k_par + qk_latency(hd) + 1


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="k_par"):
        QKUnit(16, 0)
