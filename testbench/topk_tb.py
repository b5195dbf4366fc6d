"""cocotb testbench for rtl.topk.TopKEngine: driver, monitor, model, scoreboard; exact data and cycles.

Parameters arrive in the environment (:meth:`Params.env` writes them for
:func:`testbench.runner.run_cocotb`'s ``extra_env``; :meth:`Params.from_env` reads them):

``TOPK_P``, ``TOPK_WIDTH``, ``TOPK_MAX_N``, ``TOPK_IN_LANES``, ``TOPK_OUT_LANES``
    The engine's parallelism, score width, maximum n, scores per input beat and indices per output beat
    (both default 1; must match the built Verilog).
``TOPK_REQUESTS``, ``TOPK_SEED``
    Random requests after the directed ones, and the stimulus seed.
``TOPK_VECTORS``
    Optional JSON file ``[{"scores": [...], "k": n, "seed": s?}, ...]``: replaces all generated requests.
``TOPK_STRESS_REQUESTS``
    Random requests of the ``topk_stress`` test (default: ``min(TOPK_REQUESTS, 300)``).
``TOPK_IDLE``, ``TOPK_BACKPRESSURE``
    Knobs of the ``topk_stress`` test (probabilities of an idle input cycle / a not-ready output cycle).
``TOPK_REPORT``
    Optional path: each test writes one JSON line per request (n, k, measured and predicted cycles).

``topk_exact`` runs with no idles and no back-pressure and checks, per request, the output beats ``==``
:func:`models.topk.topk_ref` and the total latency, the search cycles and the input beats (first to last,
``ceil(n / in_lanes)``) ``==`` :func:`models.topk.quickselect_trace`. ``topk_stress`` inserts input
gaps and output back-pressure and checks the beats and the search cycles (the total then depends on the
consumer).
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, First, RisingEdge, Timer
from spatten.models.topk import QuickSelectTrace, final_pass_beats, quickselect_trace, topk_ref
from spatten.rtl.topk import k_layout, out_layout, score_layout
from spatten.testbench.bench import CLOCK_NS, EnvParams, unpack_lanes
from spatten.testbench.compare import first_difference
from spatten.testbench.stream import Beat, CycleClock, LevelProbe, StreamDriver, StreamMonitor


@dataclass(frozen=True)
class Request:
    """One top-k request: scores, k and the 16-bit pivot seed."""

    scores: tuple[int, ...]
    k: int
    seed: int


@dataclass(frozen=True)
class Params(EnvParams):
    """Everything the bench takes, in one place for the CLI, the cosim tests and the benchmarks.

    The first four fields build the engine (:meth:`engine`); the rest drive the stimulus. :meth:`env`
    writes them for the simulator process, :meth:`from_env` reads them back inside it.
    """

    parallelism: int = 16
    width: int = 16
    max_n: int = 256
    in_lanes: int = 1
    out_lanes: int = 1
    requests: int = 200
    stress_requests: int | None = None  # None: min(requests, 300)
    seed: int = 1
    idle: float = 0.3
    backpressure: float = 0.4
    vectors: str | None = None
    report: str | None = None

    #: environment variable of each field
    ENV = {"parallelism": "TOPK_P", "width": "TOPK_WIDTH", "max_n": "TOPK_MAX_N", "in_lanes": "TOPK_IN_LANES",
           "out_lanes": "TOPK_OUT_LANES", "requests": "TOPK_REQUESTS",
           "stress_requests": "TOPK_STRESS_REQUESTS", "seed": "TOPK_SEED",
           "idle": "TOPK_IDLE", "backpressure": "TOPK_BACKPRESSURE", "vectors": "TOPK_VECTORS",
           "report": "TOPK_REPORT"}  # fmt: skip

    @property
    def stress_count(self) -> int:
        """Random requests of the ``topk_stress`` test."""
        return min(self.requests, 300) if self.stress_requests is None else self.stress_requests

    def engine(self):
        """The TopKEngine these parameters build."""
        from spatten.rtl.topk import TopKEngine

        return TopKEngine(self.width, self.max_n, self.parallelism, in_lanes=self.in_lanes,
                          out_lanes=self.out_lanes)  # fmt: skip


def directed_requests(max_n: int, width: int) -> list[Request]:
    """Edge cases: all equal, sorted both ways, k = 0, 1, n-1, n, n = 1, ties across rank k, max n."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    n = min(16, max_n)
    asc = tuple(range(n))
    reqs = [
        Request((3,) * n, n // 2, 0),
        Request(asc, 1, 1),
        Request(asc, max(n - 1, 0), 2),
        Request(tuple(reversed(asc)), 1, 3),
        Request(tuple(reversed(asc)), max(n - 1, 0), 4),
        Request(asc, 0, 5),
        Request(asc, n, 6),
        Request((7,), 0, 7),
        Request((7,), 1, 8),
        Request((lo, hi, 0, hi, lo), 2, 0xFFFF),
        # rank k falls inside a run of equal values: the earliest equal ones win
        Request((1, 5, 5, 9, 5, 0, 5, 5, 2, 5)[:n] if n >= 10 else (5, 9, 5), 3, 9),
    ]
    rng = random.Random(max_n)
    big = tuple(rng.randint(lo, hi) for _ in range(max_n))
    reqs += [
        Request(big, max_n // 2, 10),
        Request(tuple(lo + i * (hi - lo) // max(max_n - 1, 1) for i in range(max_n)), max_n - 1, 11),
        Request(tuple(rng.randint(-2, 2) for _ in range(max_n)), max_n // 3, 12),
    ]
    return reqs


def random_requests(count: int, max_n: int, width: int, rng: random.Random) -> list[Request]:
    """Mostly short requests (n in 1..64), some up to max_n; wide values or heavy duplicates; k biased
    toward its edges."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    out = []
    for _ in range(count):
        n = rng.randint(1, min(64, max_n)) if rng.random() < 0.95 else rng.randint(1, max_n)
        a, b = rng.choice([(lo, hi), (lo, hi), (-4, 4), (0, 1)])
        scores = tuple(rng.randint(a, b) for _ in range(n))
        k = rng.choice([0, 1, max(n - 1, 0), n]) if rng.random() < 0.2 else rng.randint(0, n)
        out.append(Request(scores, k, rng.randrange(1 << 16)))
    return out


def load_vectors(path: str) -> list[Request]:
    """Requests from a JSON list of ``{"scores": [...], "k": n, "seed": s}`` (seed optional, default 0)."""
    with open(path) as f:
        items = json.load(f)
    return [
        Request(tuple(int(x) for x in it["scores"]), int(it["k"]), int(it.get("seed", 0))) for it in items
    ]


@dataclass
class Expected:
    """What the model says a request produces."""

    beats: list[dict[str, int]]
    trace: QuickSelectTrace


class TopKModel:
    """The golden twin: output beats from :func:`topk_ref`, cycles from :func:`quickselect_trace`.

    With ``out_lanes`` O > 1 a beat holds up to O indices of one buffer row of P (a row's selection in
    chunks of O, as the final pass emits them); such beats are compared as
    ``{"index": [...], "score": [...], "mask", "last", "empty"}`` (:meth:`observed` turns the port's
    payload into that).
    """

    def __init__(self, parallelism: int, in_lanes: int = 1, out_lanes: int = 1, width: int = 16,
                 max_n: int = 256) -> None:  # fmt: skip
        self.parallelism = parallelism
        self.in_lanes = in_lanes
        self.out_lanes = out_lanes
        self.width = width
        self.index_width = max(1, (max_n - 1).bit_length())

    def expect(self, req: Request) -> Expected:
        idx = [int(i) for i in topk_ref(list(req.scores), req.k)]
        trace = quickselect_trace(list(req.scores), req.k, self.parallelism, req.seed, self.in_lanes,
                                  self.out_lanes)  # fmt: skip
        if self.out_lanes > 1:
            return Expected(self._lane_beats(req, idx), trace)
        if req.k == 0:
            beats = [{"index": 0, "score": 0, "last": 1, "empty": 1}]
        else:
            beats = [
                {"index": i, "score": req.scores[i], "last": int(j == len(idx) - 1), "empty": 0}
                for j, i in enumerate(idx)
            ]
        return Expected(beats, trace)

    def _lane_beats(self, req: Request, idx: list[int]) -> list[dict]:
        if not idx:
            return [{"index": [], "score": [], "mask": 0, "last": 1, "empty": 1}]
        chunks = final_pass_beats(idx, self.parallelism, self.out_lanes)
        return [{"index": c, "score": [req.scores[i] for i in c], "mask": (1 << len(c)) - 1,
                 "last": int(j == len(chunks) - 1), "empty": 0} for j, c in enumerate(chunks)]  # fmt: skip

    def observed(self, payload: dict[str, int]) -> dict:
        """A port payload in the form :meth:`expect` gives (the live lanes as lists when O > 1)."""
        if self.out_lanes == 1:
            return dict(payload)
        live = payload["mask"].bit_length()
        return {
            "index": unpack_lanes(payload["index"], self.index_width, self.out_lanes, signed=False)[:live],
            "score": unpack_lanes(payload["score"], self.width, self.out_lanes)[:live],
            "mask": payload["mask"], "last": payload["last"], "empty": payload["empty"],
        }  # fmt: skip


@dataclass
class Scoreboard:
    """Groups output beats into requests and compares each with the model, ``==`` only."""

    model: TopKModel
    expected: deque[tuple[Request, Expected]] = field(default_factory=deque)
    current: list[dict[str, int]] = field(default_factory=list)
    done: list[tuple[Request, Expected, int]] = field(default_factory=list)  # (req, exp, end cycle)
    errors: list[str] = field(default_factory=list)
    target: int = 0
    finished: Event = field(default_factory=Event)

    def add(self, req: Request) -> None:
        self.expected.append((req, self.model.expect(req)))

    def on_output(self, beat: Beat) -> None:
        self.current.append(self.model.observed(beat.payload))  # type: ignore[arg-type]
        if not beat.payload["last"]:  # type: ignore[index]
            return
        got, self.current = self.current, []
        if not self.expected:
            self.errors.append(f"cycle {beat.cycle}: output request with nothing expected: {got[:4]}...")
            return
        req, exp = self.expected.popleft()
        if got != exp.beats and len(self.errors) < 5:
            self.errors.append(
                f"request #{len(self.done)} n={len(req.scores)} k={req.k} seed={req.seed}: "
                f"{first_difference(got, exp.beats, 'output beat')}"
            )
        elif got != exp.beats:
            self.errors.append("...")
        self.done.append((req, exp, beat.cycle))
        if len(self.done) >= self.target:
            self.finished.set()


class TopKTestbench:
    """Binds driver, k driver, monitor, probe and scoreboard to the Verilated TopKEngine."""

    def __init__(self, dut, params: Params, *, idle: float, backpressure: float) -> None:
        self.dut = dut
        self.params = params
        rng = random.Random(params.seed)
        self.clock = CycleClock(dut.clk, CLOCK_NS)
        self.scoreboard = Scoreboard(
            TopKModel(params.parallelism, params.in_lanes, params.out_lanes, params.width, params.max_n)
        )
        self.scores = StreamDriver(
            dut,
            "i__",
            score_layout(params.width, params.in_lanes),
            self.clock,
            idle=idle,
            rng=random.Random(rng.random()),
        )
        self.ks = StreamDriver(
            dut, "k__", k_layout(params.max_n), self.clock, idle=idle, rng=random.Random(rng.random())
        )
        self.out = StreamMonitor(
            dut,
            "o__",
            out_layout(params.width, params.max_n, params.out_lanes),
            self.clock,
            backpressure=backpressure,
            rng=random.Random(rng.random()),
            on_beat=self.scoreboard.on_output,
        )
        self.searching = LevelProbe(dut.searching, self.clock)

    async def reset(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, CLOCK_NS, unit="ns").start())
        self.dut.rst.value = 1
        await RisingEdge(self.dut.clk)
        await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        for part in (self.clock, self.scores, self.ks, self.out, self.searching):
            part.start()

    def submit(self, req: Request) -> None:
        self.scoreboard.add(req)
        lanes, width, n = self.params.in_lanes, self.params.width, len(req.scores)
        if lanes == 1:
            for j, s in enumerate(req.scores):
                self.scores.send({"score": s, "last": int(j == n - 1)})
        else:
            # lanes scores per beat, a prefix mask; the last beat's spare lanes carry a filler to ignore
            for lo in range(0, n, lanes):
                chunk = list(req.scores[lo : lo + lanes])
                live = len(chunk)
                chunk += [-1] * (lanes - live)
                word = sum((s & ((1 << width) - 1)) << (j * width) for j, s in enumerate(chunk))
                self.scores.send({"score": word, "mask": (1 << live) - 1, "last": int(lo + lanes >= n)})
        self.ks.send({"k": req.k, "seed": req.seed})

    async def finish(self, count: int, budget: int) -> None:
        """Wait until ``count`` requests completed or ``budget`` cycles passed."""
        self.scoreboard.target = count
        if len(self.scoreboard.done) < count:
            await First(self.scoreboard.finished.wait(), Timer(budget * CLOCK_NS, "ns"))

    def timings(self) -> list[dict[str, int]]:
        """Per request: t0 = later of its last score and its k handshake; end = last output handshake."""
        lasts = [b.cycle for b in self.scores.sent if b.payload["last"]]  # type: ignore[index]
        firsts = [b.cycle for j, b in enumerate(self.scores.sent)
                  if j == 0 or self.scores.sent[j - 1].payload["last"]]  # type: ignore[index]  # fmt: skip
        kcyc = [b.cycle for b in self.ks.sent]
        starts = [max(tl, tk) for tl, tk in zip(lasts, kcyc, strict=False)]
        rows = []
        for j, ((req, exp, end), t0) in enumerate(zip(self.scoreboard.done, starts, strict=False)):
            # the next request may already search while this one's last beat waits for the consumer
            search_end = min(end, starts[j + 1]) if j + 1 < len(starts) else end
            tr = exp.trace
            rows.append(
                {
                    "n": len(req.scores),
                    "k": req.k,
                    "seed": req.seed,
                    "p": self.params.parallelism,
                    "rounds": tr.rounds,
                    "total": end - t0,
                    "search": self.searching.count_between(t0, search_end),
                    "pred_total": tr.cycles,
                    "pred_search": tr.select_cycles,
                    "pred_final": tr.final_cycles,
                    "fill": lasts[j] - firsts[j] + 1,
                    "pred_fill": tr.fill_cycles,
                }
            )
        return rows


def _requests(params: Params, count: int) -> list[Request]:
    if params.vectors:
        return load_vectors(params.vectors)
    rng = random.Random(params.seed)
    return directed_requests(params.max_n, params.width) + random_requests(
        count, params.max_n, params.width, rng
    )


async def _run(dut, idle: float, backpressure: float, name: str, check_total: bool) -> None:
    params = Params.from_env()
    tb = TopKTestbench(dut, params, idle=idle, backpressure=backpressure)
    await tb.reset()
    reqs = _requests(params, params.stress_count if name == "topk_stress" else params.requests)
    for r in reqs:
        tb.submit(r)
    budget = sum(len(r.scores) * 8 + 400 for r in reqs) * (4 if idle or backpressure else 1)
    t_start = cocotb.utils.get_sim_time("ns")
    await tb.finish(len(reqs), budget)
    await Timer(1, "ns")
    rows = tb.timings()
    if params.report:
        with open(params.report, "a") as f:
            for row in rows:
                f.write(json.dumps({"test": name, **row}) + "\n")
            cycles = round((cocotb.utils.get_sim_time("ns") - t_start) / CLOCK_NS)
            f.write(json.dumps({"test": name, "summary": True, "sim_cycles": cycles}) + "\n")
    sb = tb.scoreboard
    assert not sb.errors, "\n".join(sb.errors)
    assert len(sb.done) == len(reqs), f"only {len(sb.done)} of {len(reqs)} requests completed"
    bad_search = [r for r in rows if r["search"] != r["pred_search"]]
    assert not bad_search, f"search cycles differ from quickselect_trace: {bad_search[:3]}"
    if check_total:
        bad_total = [r for r in rows if r["total"] != r["pred_total"]]
        assert not bad_total, f"total cycles differ from quickselect_trace: {bad_total[:3]}"
        bad_fill = [r for r in rows if r["fill"] != r["pred_fill"]]
        assert not bad_fill, f"input beats differ from quickselect_trace.fill_cycles: {bad_fill[:3]}"


@cocotb.test()
async def topk_exact(dut) -> None:
    """No gaps, no back-pressure: every beat and every cycle count equals the model."""
    await _run(dut, 0.0, 0.0, "topk_exact", check_total=True)


@cocotb.test()
async def topk_stress(dut) -> None:
    """Input gaps and output back-pressure: no beat lost or duplicated; search cycles unchanged."""
    p = Params.from_env()
    await _run(dut, p.idle, p.backpressure, "topk_stress", check_total=False)
