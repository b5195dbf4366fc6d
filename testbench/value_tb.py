"""cocotb testbench for ``rtl.value_unit.ValueUnit``: kept rows at ratios ``keeps``, back-pressure,
== against models.value_unit.prob_v.

The shape of :mod:`spatten.testbench.topk_tb`: :class:`Params` (one dataclass for the tests and the simulator
process), a :class:`RowDriver` offering (probability, value row) beats, a :class:`SumMonitor` taking the one
output beat of a request, :class:`ValueModel` and a :class:`Scoreboard` naming the first differing element.
Unused lanes of the last beat carry the largest probability and all-ones values, so a lane mask the unit did
not honour shows in the sums.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
import numpy as np
from spatten.models.value_unit import prob_v
from spatten.testbench.bench import BeatDriver, EnvParams, pack_lanes, reset, step_until, unpack_lanes
from spatten.testbench.compare import first_difference


@dataclass(frozen=True)
class Params(EnvParams):
    """What the bench takes: the unit's build parameters and the stimulus (:meth:`env` / :meth:`from_env`)."""

    head_dim: int = 16
    v_par: int = 4
    p_width: int = 12
    v_width: int = 6
    max_n: int = 1024
    ns: tuple[int, ...] = (1, 7, 64, 257, 1024)
    keeps: tuple[float, ...] = (1.0, 0.3, 0.2)
    stall: float = 0.0
    seed: int = 5

    ENV = {"head_dim": "HEAD_DIM", "v_par": "V_PAR", "p_width": "P_WIDTH", "v_width": "V_WIDTH",
           "max_n": "MAX_N", "ns": "NS", "keeps": "KEEPS", "stall": "STALL", "seed": "SEED"}  # fmt: skip

    @property
    def acc_width(self) -> int:
        """Bits of one output element: product, sign and the sum of up to ``max_n`` rows."""
        from spatten.rtl.value_unit import acc_width

        return acc_width(self.p_width, self.v_width, self.max_n)

    def unit(self):
        """The ValueUnit these parameters build."""
        from spatten.rtl.value_unit import ValueUnit

        return ValueUnit(self.head_dim, self.v_par, self.p_width, self.v_width, self.max_n)


@dataclass(frozen=True)
class ValueRequest:
    """The kept rows of one request: their probabilities and value rows (integer codes)."""

    probs: np.ndarray
    values: np.ndarray


class ValueModel:
    """The golden twin: ``models.value_unit.prob_v``."""

    def expect(self, req: ValueRequest) -> list[int]:
        return prob_v(req.probs, req.values).tolist()


class RowDriver(BeatDriver):
    """Offers V_PAR (probability, value row) pairs per beat, valid low at ``stall``."""

    def __init__(self, dut, p: Params, rng: random.Random) -> None:
        from spatten.rtl.value_unit import row_layout

        super().__init__(dut, "i", row_layout(p.head_dim, p.v_par, p.p_width, p.v_width), p.stall, rng)
        self.p = p

    def load(self, req: ValueRequest) -> None:
        p = self.p
        starts = range(0, len(req.probs), p.v_par)
        self.beats, self.sent = [], 0
        for i, b in enumerate(starts):
            pr, v = req.probs[b : b + p.v_par], req.values[b : b + p.v_par]
            pad = p.v_par - len(pr)
            rows = np.concatenate([v, np.ones((pad, p.head_dim), np.int64)])
            self.beats.append({
                # junk in the masked lanes: the unit must ignore them
                "prob": pack_lanes(list(pr) + [(1 << p.p_width) - 1] * pad, p.p_width),
                "value": pack_lanes(rows.ravel(), p.v_width),
                "mask": (1 << len(pr)) - 1,
                "last": int(i == len(starts) - 1),
            })  # fmt: skip


class SumMonitor:
    """Takes the request's one output beat (ready low at ``stall``): head_dim signed sums."""

    def __init__(self, dut, p: Params, rng: random.Random) -> None:
        self.dut, self.p, self.rng = dut, p, rng
        self.got: list[int] | None = None

    def start(self) -> None:
        self.got = None

    def drive(self) -> None:
        self.dut.o__ready.value = int(self.rng.random() >= self.p.stall)

    def done(self) -> bool:
        return self.got is not None

    def sample(self) -> None:
        if self.dut.o__valid.value == 1 and self.dut.o__ready.value == 1:
            # one field, `data`, at offset 0: the payload is the packed sums
            self.got = unpack_lanes(int(self.dut.o__payload.value), self.p.acc_width, self.p.head_dim)


class Scoreboard:
    def __init__(self, model: ValueModel) -> None:
        self.model = model

    def check(self, req: ValueRequest, got: list[int], what: str) -> None:
        diff = first_difference(got, self.model.expect(req))
        assert diff is None, f"stage value, {what}: {diff}"


class ValueTestbench:
    """Clock, reset and the per-cycle loop that steps the driver and the monitor."""

    def __init__(self, dut, p: Params) -> None:
        self.dut, self.p = dut, p
        rng = random.Random(p.seed)
        self.driver, self.monitor = RowDriver(dut, p, rng), SumMonitor(dut, p, rng)
        self.scoreboard = Scoreboard(ValueModel())

    async def reset(self) -> None:
        await reset(self.dut, ("i__valid", "o__ready"))

    async def run(self, req: ValueRequest, what: str) -> int:
        """One request through the unit, checked; returns its cycles."""
        self.driver.load(req)
        self.monitor.start()
        budget = 20 * (len(req.probs) + 50)
        cycles = await step_until(self.dut, self.driver, self.monitor, budget, f"stage value, {what}")
        assert self.monitor.got is not None
        self.scoreboard.check(req, self.monitor.got, what)
        return cycles


@cocotb.test()
async def value_requests(dut) -> None:
    p = Params.from_env()
    tb = ValueTestbench(dut, p)
    await tb.reset()
    nprng = np.random.default_rng(3)
    for n in p.ns:
        for keep in p.keeps:
            m = max(1, round(keep * n))
            probs = nprng.integers(0, 1 << p.p_width, m)
            values = nprng.integers(-(1 << (p.v_width - 1)) + 1, 1 << (p.v_width - 1), (m, p.head_dim))
            await tb.run(ValueRequest(probs, values), f"n={n}, keep={keep}")
