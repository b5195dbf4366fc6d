"""cocotb testbench for ``rtl.qk.QKUnit``: random requests, idle/back-pressure, == against models.qk.

The bench's shape is :mod:`spatten.testbench.topk_tb`'s: :class:`Params` (one dataclass for the tests and
the simulator process), a :class:`KeyDriver` that offers the key beats, a :class:`ScoreMonitor` that takes
the score beats, a :class:`QKModel` (``models.qk``) and a :class:`Scoreboard` that names the first
differing score. One coroutine steps all of them each cycle, so the cycle count of a request is exact: with
no idle or stall it must equal ``models.qk.qk_cycles``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import cocotb
import numpy as np
from spatten.models.qk import qk_cycles, qk_scores
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


@dataclass(frozen=True)
class Params(EnvParams):
    """What the bench takes: the unit's build parameters and the stimulus (:meth:`env` / :meth:`from_env`)."""

    head_dim: int = 16
    k_par: int = 4
    q_width: int = 16
    k_width: int = 12
    ns: tuple[int, ...] = (1, 7, 64, 257)
    idle: float = 0.0
    stall: float = 0.0
    seed: int = 7

    ENV = {"head_dim": "HEAD_DIM", "k_par": "K_PAR", "q_width": "Q_WIDTH", "k_width": "K_WIDTH", "ns": "NS",
           "idle": "IDLE", "stall": "STALL", "seed": "SEED"}  # fmt: skip

    @property
    def score_width(self) -> int:
        """Bits of one score lane: the product width plus the adder tree's growth."""
        from spatten.rtl.qk import score_width

        return score_width(self.head_dim, self.q_width, self.k_width)

    def unit(self):
        """The QKUnit these parameters build."""
        from spatten.rtl.qk import QKUnit

        return QKUnit(self.head_dim, self.k_par, self.q_width, self.k_width)


@dataclass(frozen=True)
class QKRequest:
    """One query against ``n`` keys (integer codes)."""

    query: np.ndarray
    keys: np.ndarray


class QKModel:
    """The golden twin: ``models.qk`` scores and cycle count."""

    def __init__(self, p: Params) -> None:
        self.p = p

    def scores(self, req: QKRequest) -> list[int]:
        return qk_scores(req.query, req.keys, self.p.q_width, self.p.k_width).tolist()

    def cycles(self, n: int) -> int:
        return qk_cycles(n, self.p.k_par, self.p.head_dim)


class KeyDriver(BeatDriver):
    """Offers a request's keys K_PAR rows per beat (the last beat masked), skipping cycles at ``idle``."""

    def __init__(self, dut, p: Params, rng: random.Random) -> None:
        from spatten.rtl.qk import key_layout

        super().__init__(dut, "k", key_layout(p.head_dim, p.k_par, p.k_width), p.idle, rng)
        self.dut, self.p = dut, p

    def load(self, req: QKRequest) -> None:
        self.dut.query.value = pack_lanes(req.query, self.p.q_width)
        kp, hd = self.p.k_par, self.p.head_dim
        starts = range(0, len(req.keys), kp)
        self.beats, self.sent = [], 0
        for i, b in enumerate(starts):
            rows = req.keys[b : b + kp]
            pad = np.zeros((kp - len(rows), hd), dtype=np.int64)
            self.beats.append({
                "data": pack_lanes(np.concatenate([rows, pad]).ravel(), self.p.k_width),
                "mask": (1 << len(rows)) - 1,
                "last": int(i == len(starts) - 1),
            })  # fmt: skip


class ScoreMonitor(LaneMonitor):
    """Takes score beats (ready low at ``stall``): the masked lanes, sign-extended."""

    def __init__(self, dut, p: Params, rng: random.Random) -> None:
        from spatten.rtl.qk import score_layout

        super().__init__(dut, "s", score_layout(p.k_par, p.score_width), p.stall, rng)
        self.p = p

    def lanes(self, beat: dict[str, int]) -> list[int]:
        return masked_lanes(beat, self.p.score_width, self.p.k_par, signed=True)


class Scoreboard:
    """Compares a request's scores and (with no idle or stall) its cycles with the model."""

    def __init__(self, model: QKModel) -> None:
        self.model = model

    def check(self, req: QKRequest, got: list[int], cycles: int, timed: bool) -> None:
        n = len(req.keys)
        diff = first_difference(got, self.model.scores(req), "score")
        assert diff is None, f"stage qk, n={n}: {diff}"
        if timed:  # cycles counts edges from the first beat driven to the last score seen: no bubbles
            want = self.model.cycles(n)
            assert cycles == want, f"stage qk, n={n}: {cycles} cycles, model {want}"


class QKTestbench:
    """Clock, reset and the per-cycle loop that steps the driver and the monitor."""

    def __init__(self, dut, p: Params) -> None:
        self.dut, self.p = dut, p
        rng = random.Random(p.seed)
        self.driver, self.monitor = KeyDriver(dut, p, rng), ScoreMonitor(dut, p, rng)
        self.scoreboard = Scoreboard(QKModel(p))

    async def reset(self) -> None:
        await reset(self.dut, ("k__valid", "s__ready"))

    async def run(self, req: QKRequest) -> int:
        """One request through the unit, checked; returns its cycles."""
        n = len(req.keys)
        self.driver.load(req)
        self.monitor.start()
        cycles = await step_until(self.dut, self.driver, self.monitor, 50 * (n + 50), f"stage qk, n={n}")
        self.scoreboard.check(req, self.monitor.got, cycles, self.p.idle == 0 and self.p.stall == 0)
        return cycles


def random_request(p: Params, n: int, rng: np.random.Generator) -> QKRequest:
    """A query and ``n`` keys drawn over the full signed code ranges (the most negative code left out)."""
    qw, kw = p.q_width, p.k_width
    query = rng.integers(-(1 << (qw - 1)) + 1, 1 << (qw - 1), p.head_dim)
    keys = rng.integers(-(1 << (kw - 1)) + 1, 1 << (kw - 1), (n, p.head_dim))
    return QKRequest(query, keys)


@cocotb.test()
async def qk_requests(dut) -> None:
    p = Params.from_env()
    tb = QKTestbench(dut, p)
    await tb.reset()
    nprng = np.random.default_rng(p.seed)
    for n in p.ns:
        cycles = await tb.run(random_request(p, n, nprng))
        dut._log.info("qk n=%d: %d cycles", n, cycles)
