"""cocotb testbench for ``rtl.softmax.Softmax`` (default spec): random rows, idle/back-pressure,
== against models.softmax.softmax_fixed and within its stated float64 bound.

The shape of :mod:`spatten.testbench.topk_tb`: :class:`Params` (one dataclass for the tests and the simulator
process), a :class:`ScoreDriver` offering ``lanes`` scores per beat (the last beat partial, unused lanes
filled with the largest code so that a lane mask that is not honoured shows), a :class:`ProbMonitor`,
:class:`SoftmaxModel` and a :class:`Scoreboard`. Two tests: ``softmax_rows`` sends the rows one at a
time (with ``stall`` = 0 each takes ``3 * ceil(n / lanes) + 1`` cycles from its first input beat to its
last output beat); ``softmax_stream`` sends them back to back (three rows in flight), each row == the
model and, with ``stall`` = 0, every row's first-in and last-out cycle == ``softmax_row_cycles``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
import numpy as np
from spatten.models.softmax import DEFAULT_SPEC, error_bound, softmax_fixed, softmax_float
from spatten.testbench.bench import (
    BeatDriver,
    EnvParams,
    LaneMonitor,
    masked_lanes,
    pack_lanes,
    reset,
    step_until,
)
from spatten.testbench.compare import first_difference

SPEC = DEFAULT_SPEC


@dataclass(frozen=True)
class Params(EnvParams):
    """The block's lanes and longest row, and the stimulus (:meth:`env` / :meth:`from_env`)."""

    lanes: int = 1
    max_n: int = 1024
    ns: tuple[int, ...] = (1, 7, 64, 257, 1024)
    stall: float = 0.0
    seed: int = 11

    ENV = {"lanes": "LANES", "max_n": "MAX_N", "ns": "NS", "stall": "STALL", "seed": "SEED"}

    def unit(self):
        """The Softmax block these parameters build (the default spec)."""
        from spatten.rtl.softmax import Softmax

        return Softmax(SPEC, max_n=self.max_n, lanes=self.lanes)


class SoftmaxModel:
    """The golden twin (``softmax_fixed``) and its float64 reference with the stated per-element bound."""

    def expect(self, row: np.ndarray) -> list[int]:
        return softmax_fixed(row, SPEC).tolist()

    def within_bound(self, row: np.ndarray, got: list[int]) -> bool:
        p = softmax_float(row.astype(np.float64) * SPEC.scale / (1 << SPEC.frac_bits))
        per_elem, _ = error_bound(p, SPEC)
        return bool(np.all(np.abs(np.asarray(got) / (1 << SPEC.out_bits) - p) <= per_elem))


class ScoreDriver(BeatDriver):
    """Offers rows ``lanes`` scores per beat, valid low at ``stall``; notes each row's first accepted beat."""

    LIM = (1 << (SPEC.in_bits - 1)) - 1

    def __init__(self, dut, p: Params, rng: random.Random) -> None:
        from spatten.rtl.softmax import score_layout

        super().__init__(dut, "i", score_layout(SPEC, p.lanes), p.stall, rng)
        self.p = p
        self.ends: set[int] = set()  # beats that end a row
        self.firsts: list[int] = []  # cycle of each row's first accepted beat

    def load(self, *rows: np.ndarray) -> None:
        """The beats of ``rows``, back to back (each row's last beat carries ``last``)."""
        lanes = self.p.lanes
        self.beats, self.ends, self.sent, self.firsts = [], set(), 0, []
        for row in rows:
            for b in range(0, len(row), lanes):
                beat = list(row[b : b + lanes])
                self.beats.append({
                    # junk in the masked lanes: they must not count
                    "data": pack_lanes(beat + [self.LIM] * (lanes - len(beat)), SPEC.in_bits),
                    "mask": (1 << len(beat)) - 1,
                    "last": int(b + lanes >= len(row)),
                })  # fmt: skip
            self.ends.add(len(self.beats) - 1)

    def accepted(self, cycle: int) -> None:
        if self.sent == 0 or self.sent - 1 in self.ends:
            self.firsts.append(cycle)


class ProbMonitor(LaneMonitor):
    """Takes probability beats (ready low at ``stall``): the masked lanes."""

    def __init__(self, dut, p: Params, rng: random.Random) -> None:
        from spatten.rtl.softmax import prob_layout

        super().__init__(dut, "o", prob_layout(SPEC, p.lanes), p.stall, rng)
        self.p = p

    def lanes(self, beat: dict[str, int]) -> list[int]:
        return masked_lanes(beat, SPEC.out_bits, self.p.lanes)


class Scoreboard:
    """Bit-exact outputs, the float64 bound, and (with no stall) the row's exact cycle span."""

    def __init__(self, model: SoftmaxModel) -> None:
        self.model = model

    def check(self, row: np.ndarray, got: list[int], span: int, beats: int, timed: bool) -> None:
        n = len(row)
        diff = first_difference(got, self.model.expect(row))
        assert diff is None, f"stage softmax, n={n}: {diff}"
        assert self.model.within_bound(row, got), f"stage softmax, n={n}: outside the float64 bound"
        if timed:
            want = 3 * beats + 1
            assert span == want, f"stage softmax, n={n}: {span} cycles, expected {want}"


class SoftmaxTestbench:
    """Clock, reset and the per-cycle loop that steps the driver and the monitor."""

    def __init__(self, dut, p: Params) -> None:
        self.dut, self.p = dut, p
        rng = random.Random(p.seed)
        self.driver, self.monitor = ScoreDriver(dut, p, rng), ProbMonitor(dut, p, rng)
        self.scoreboard = Scoreboard(SoftmaxModel())

    async def reset(self) -> None:
        await reset(self.dut, ("i__valid", "o__ready"))

    async def run(self, row: np.ndarray) -> int:
        """One row through the block, checked; returns the cycles from its first input beat to its last
        output beat."""
        n = len(row)
        self.driver.load(row)
        self.monitor.start()
        cycles = await step_until(self.dut, self.driver, self.monitor, 20 * (n + 50), f"stage softmax, n={n}")
        span = cycles - self.driver.firsts[0]
        self.scoreboard.check(row, self.monitor.got, span, len(self.driver.beats), self.p.stall == 0)
        return span


class RowStreamMonitor(ProbMonitor):
    """Takes the probability beats of ``rows`` rows in a row, splitting them at ``last``; notes the cycle
    of each row's last beat."""

    def __init__(self, dut, p: Params, rng: random.Random, rows: int) -> None:
        super().__init__(dut, p, rng)
        self.rows, self.done_rows, self.ends = rows, [], []
        self.cycle = 0

    def done(self) -> bool:
        return len(self.done_rows) == self.rows

    def sample(self) -> None:  # called once a cycle, in step with the driver's cycle count
        super().sample()
        if self.last:
            self.done_rows.append(self.got)
            self.ends.append(self.cycle)
            self.got, self.last = [], False
        self.cycle += 1


@cocotb.test()
async def softmax_stream(dut) -> None:
    """Rows back to back: three rows in flight; each row == the model and, with no stall, each row's first
    input beat and last output beat == ``models.softmax.softmax_row_cycles``."""
    from spatten.models.softmax import softmax_row_cycles

    p = Params.from_env()
    tb = SoftmaxTestbench(dut, p)
    await tb.reset()
    nprng = np.random.default_rng(p.seed + 1)
    rows = [nprng.integers(-2000, 2001, n) for n in p.ns]
    tb.driver.load(*rows)
    mon = RowStreamMonitor(dut, p, random.Random(p.seed), len(rows))
    budget = 20 * (sum(p.ns) + 50 * len(rows))
    await step_until(dut, tb.driver, mon, budget, "stage softmax, row stream")
    for r, (row, got) in enumerate(zip(rows, mon.done_rows, strict=True)):
        diff = first_difference(got, tb.scoreboard.model.expect(row))
        assert diff is None, f"stage softmax, stream row {r} (n={len(row)}): {diff}"
    if p.stall == 0:
        model = softmax_row_cycles(list(p.ns), p.lanes, start=tb.driver.firsts[0])
        got_c = list(zip(tb.driver.firsts, mon.ends, strict=True))
        want_c = [(c.first, c.done) for c in model]
        assert got_c == want_c, (
            f"stage softmax, row stream cycles (first in, last out): {got_c}, model {want_c}"
        )
    dut._log.info("softmax stream of %d rows: last output at cycle %d", len(rows), mon.ends[-1])


@cocotb.test()
async def softmax_rows(dut) -> None:
    p = Params.from_env()
    tb = SoftmaxTestbench(dut, p)
    await tb.reset()
    nprng = np.random.default_rng(p.seed)
    for r, n in enumerate(p.ns):
        spread = [ScoreDriver.LIM, 2000, 300][r % 3]  # saturated, wide and narrow score ranges in turn
        span = await tb.run(nprng.integers(-spread, spread + 1, n))
        dut._log.info("softmax n=%d lanes=%d: %d cycles first beat to last output", n, p.lanes, span)
