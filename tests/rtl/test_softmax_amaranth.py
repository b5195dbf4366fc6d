"""Fast tier: Softmax RTL under Amaranth's simulator, == against models.softmax.softmax_fixed."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from spatten.models.softmax import (
    DEFAULT_SPEC,
    SoftmaxSpec,
    error_bound,
    softmax_fixed,
    softmax_float,
    softmax_row_cycles,
)
from spatten.rtl.softmax import Softmax


def _pack(values, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (j * width) for j, v in enumerate(values))


def run_rows(
    dut: Softmax, rows: list[np.ndarray], stall: float, seed: int = 2, junk_at_max: bool = False
) -> tuple[list, list]:
    """Stream ``rows`` through ``dut`` back to back (``lanes`` per beat, the last beat partial); return the
    outputs per row and, per row, the cycles (taken at the clock edges) of its first input beat and its
    last output beat. Masked lanes carry the largest code, or with ``junk_at_max`` the row's own maximum
    (whose e would be the largest of the row if it counted)."""
    lanes, s_bits, p_bits = dut.lanes, dut.spec.in_bits, dut.spec.out_bits
    pyrng = random.Random(seed)
    got: list[list[int]] = []
    firsts: list[int] = []
    ends: list[int] = []
    peaks: list[int] = []

    async def producer(ctx):
        for row in rows:
            beats = [row[b : b + lanes] for b in range(0, len(row), lanes)]
            for j, beat in enumerate(beats):
                while pyrng.random() < stall:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                fill = int(max(row)) if junk_at_max else (1 << (s_bits - 1)) - 1
                junk = [fill] * (lanes - len(beat))  # masked lanes must not count
                ctx.set(dut.i.payload.data.as_value(), _pack(list(beat) + junk, s_bits))
                ctx.set(dut.i.payload.mask, (1 << len(beat)) - 1)
                ctx.set(dut.i.payload.last, int(j == len(beats) - 1))
                ctx.set(dut.i.valid, 1)
                await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        cur: list[int] = []
        for _ in range(20000):
            ready = int(pyrng.random() >= stall)
            ctx.set(dut.o.ready, ready)
            if ready and ctx.get(dut.o.valid):
                word = ctx.get(dut.o.payload.data.as_value())
                mask = ctx.get(dut.o.payload.mask)
                assert mask & 1 and (mask & (mask + 1)) == 0, f"o_mask {mask:#x} is not a non-empty prefix"
                cur += [(word >> (j * p_bits)) & ((1 << p_bits) - 1) for j in range(lanes) if mask >> j & 1]
                if ctx.get(dut.o.payload.last):
                    got.append(cur)
                    cur = []
            await ctx.tick()
            if len(got) == len(rows):
                return
        raise AssertionError("stage softmax: timeout")

    async def stamps(ctx):
        cycle, row_start = 0, True
        signals = (dut.i.valid, dut.i.ready, dut.i.payload.last, dut.o.valid, dut.o.ready, dut.o.payload.last,
                   dut.peak.valid, dut.peak.payload.data.as_value())  # fmt: skip
        async for _clk, _rst, iv, ir, il, ov, ordy, ol, pv, pdata in ctx.tick().sample(*signals):
            if pv:  # peak.ready is held high: each beat lasts one cycle
                peaks.append(pdata)
            if iv and ir:
                if row_start:
                    firsts.append(cycle)
                row_start = bool(il)
            if ov and ordy and ol:
                ends.append(cycle)
            cycle += 1

    async def take_peaks(ctx):
        ctx.set(dut.peak.ready, 1)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(take_peaks)
    sim.add_testbench(producer, background=True)
    sim.add_process(stamps)
    sim.add_testbench(consumer)
    sim.run()
    # each row's peak beat is its largest probability, known before its first output beat
    assert peaks == [max(g) for g in got], (peaks, [max(g) for g in got])
    return got, list(zip(firsts, ends, strict=True))


def _check(rows: list[np.ndarray], got: list[list[int]], spec: SoftmaxSpec) -> None:
    assert len(got) == len(rows)
    for r, (row, g) in enumerate(zip(rows, got, strict=True)):
        want = softmax_fixed(row, spec).tolist()
        assert len(g) == len(want), f"stage softmax, row {r}: expected {len(want)} outputs, got {len(g)}"
        for j, (a, b) in enumerate(zip(g, want, strict=True)):
            assert a == b, f"stage softmax, row {r}, element {j}: expected {b}, got {a}"
        # RTL output against float64 within the model's stated bound
        p = softmax_float(row.astype(np.float64) * spec.scale / (1 << spec.frac_bits))
        per_elem, _total = error_bound(p, spec)
        assert np.all(np.abs(np.asarray(g) / (1 << spec.out_bits) - p) <= per_elem)


@pytest.mark.parametrize("lanes", [1, 4])
@pytest.mark.parametrize("stall", [0.0, 0.4])
def test_softmax_matches_model(lanes: int, stall: float) -> None:
    spec = DEFAULT_SPEC
    dut = Softmax(spec, max_n=64, lanes=lanes)
    rng = np.random.default_rng(5)
    lo, hi = -(1 << (spec.in_bits - 1)) + 1, (1 << (spec.in_bits - 1)) - 1
    rows = [rng.integers(lo, hi, n) for n in (1, 7, 64)]
    # a max only in the last (partial) beat's last lane; an all-equal row; the most negative code
    rows += [rng.integers(-600, 600, 33), np.full(5, -7), np.r_[np.full(6, lo - 1), 3]]
    got, stamps = run_rows(dut, rows, stall)
    _check(rows, got, spec)
    if stall == 0:  # three rows in flight: every stamp == the cycle model
        model = softmax_row_cycles([len(r) for r in rows], lanes, start=stamps[0][0])
        assert stamps == [(c.first, c.done) for c in model]


@pytest.mark.parametrize("lanes", [1, 8])
def test_softmax_streams_rows_at_one_row_per_exp_pass(lanes: int) -> None:
    """Equal rows back to back leave every B + 1 cycles (B = beats per row), against 3 B + 1 for one
    row alone: LOAD, EXP + DIV and OUT work on three different rows at once."""
    spec = DEFAULT_SPEC
    n = 64
    dut = Softmax(spec, max_n=n, lanes=lanes)
    rng = np.random.default_rng(11)
    rows = [rng.integers(-3000, 3000, n) for _ in range(6)]
    got, stamps = run_rows(dut, rows, 0.0)
    _check(rows, got, spec)
    b = -(-n // lanes)
    assert stamps[0][1] - stamps[0][0] + 1 == 3 * b + 1  # first row: nothing ahead of it
    gaps = [e1 - e0 for (_, e0), (_, e1) in zip(stamps, stamps[1:], strict=False)]
    assert gaps[1:] == [b + 1] * (len(rows) - 2), gaps


def test_softmax_masked_lanes_at_the_row_maximum_do_not_count() -> None:
    """Masked lanes of a row's partial last beat carrying the row's own maximum (their e would be the
    row's largest, 2**E) add nothing to the sum; junk above the maximum cannot show this (its e is 0)."""
    spec = DEFAULT_SPEC
    dut = Softmax(spec, max_n=64, lanes=4)
    rng = np.random.default_rng(13)
    rows = [rng.integers(-600, 600, n) for n in (1, 5, 7, 30, 63)]
    got, _ = run_rows(dut, rows, 0.0, junk_at_max=True)
    _check(rows, got, spec)


def test_softmax_lanes_odd_count_and_spec() -> None:
    """A lane count that is not a power of two, with a small spec (no interpolation)."""
    spec = SoftmaxSpec(in_bits=10, frac_bits=3, const_bits=8, lut_bits=3, interp_bits=0, exp_bits=9,
                       recip_bits=10, out_bits=8, scale=0.7)  # fmt: skip
    dut = Softmax(spec, max_n=20, lanes=3)
    rng = np.random.default_rng(9)
    rows = [rng.integers(-512, 512, n) for n in (1, 2, 3, 4, 20)]
    got, _ = run_rows(dut, rows, 0.2, seed=4)
    _check(rows, got, spec)


@pytest.mark.parametrize(
    ("kwargs", "exc", "message"),
    [
        ({"lanes": 0}, ValueError, "lanes = 0 is outside the allowed range 1..64"),
        ({"lanes": 65}, ValueError, "lanes = 65 is outside the allowed range 1..64"),
        ({"lanes": 2.0}, TypeError, "lanes must be an integer, got 2.0"),
        ({"lanes": True}, TypeError, "lanes must be an integer, got True"),
        ({"max_n": 0}, ValueError, "max_n = 0 is outside the allowed range 1..65536"),
    ],
)
def test_softmax_rejects_bad_parameters(kwargs: dict, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message.replace(".", r"\.")):
        Softmax(**kwargs)
