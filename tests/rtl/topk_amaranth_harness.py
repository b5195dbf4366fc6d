"""Drive a TopKEngine with Amaranth's simulator (fast tier): requests in, beats and cycle stamps out."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator
from spatten.rtl.topk import TopKEngine


@dataclass
class Outcome:
    """Per-request selections (index, score, empty), one per selected index (the lanes of a multi-lane
    beat in order), and cycle stamps."""

    beats: list[list[tuple[int, int, int]]] = field(default_factory=list)
    t0: list[int] = field(default_factory=list)
    t_end: list[int] = field(default_factory=list)
    search: list[int] = field(default_factory=list)
    fill: list[int] = field(default_factory=list)  # first to last input beat, inclusive


def score_beats(scores: list[int], lanes: int, width: int) -> list[tuple[dict[str, int], bool]]:
    """One request's input beats for an engine with ``in_lanes = lanes``: (payload, is last beat).

    ``lanes > 1``: ``lanes`` scores per beat (the ``ArrayLayout`` field as a list), a prefix mask, the
    last beat holding the remainder (its unused lanes carry a filler score the engine must ignore)."""
    if lanes == 1:
        return [({"score": s, "last": int(i == len(scores) - 1)}, i == len(scores) - 1)
                for i, s in enumerate(scores)]  # fmt: skip
    out = []
    for lo in range(0, len(scores), lanes):
        chunk = scores[lo : lo + lanes]
        live = len(chunk)
        chunk = chunk + [-1] * (lanes - live)
        last = lo + lanes >= len(scores)
        out.append(({"score": chunk, "mask": (1 << live) - 1, "last": int(last)}, last))  # lane j = chunk[j]
    return out


def run_engine(
    dut: TopKEngine,
    requests: list[tuple[list[int], int, int]],
    *,
    idle: float = 0.0,
    backpressure: float = 0.0,
    seed: int = 1,
    max_cycles: int = 200_000,
) -> Outcome:
    """Send ``(scores, k, lfsr seed)`` requests, collect everything; idle/back-pressure are probabilities."""
    rng = random.Random(seed)
    out = Outcome()
    lanes, width = dut.in_lanes, dut.score_width
    beats = [beat for sc, _k, _sd in requests for beat in score_beats(sc, lanes, width)]
    ks = [(k, sd) for _sc, k, sd in requests]

    async def tb(ctx):
        bi = ki = 0
        cur: list[tuple[int, int, int]] = []
        last_in: list[int] = []
        first_in: list[int] = []
        starting = True  # the next input beat is a request's first
        k_in: list[int] = []
        searching: list[int] = []
        for cycle in range(max_cycles):
            iv = bi < len(beats) and rng.random() >= idle
            ctx.set(dut.i.valid, iv)
            if bi < len(beats):
                ctx.set(dut.i.payload, beats[bi][0])
            kv = ki < len(ks) and rng.random() >= idle
            ctx.set(dut.k.valid, kv)
            if ki < len(ks):
                ctx.set(dut.k.payload, {"k": ks[ki][0], "seed": ks[ki][1]})
            ctx.set(dut.o.ready, rng.random() >= backpressure)
            if ctx.get(dut.searching):
                searching.append(cycle)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                p = ctx.get(dut.o.payload)
                if dut.out_lanes == 1:
                    cur.append((p.index, p.score, p.empty))
                elif p.empty:
                    assert p.mask == 0, "the empty beat carries no lanes"
                    cur.append((0, 0, 1))
                else:
                    live = bin(p.mask + 1).count("1") == 1 and p.mask != 0  # a non-empty run from lane 0
                    assert live, f"output mask {p.mask:#b} is not a run from lane 0"
                    cur += [(p.index[j], p.score[j], 0) for j in range(p.mask.bit_length())]
                if p.last:
                    out.beats.append(cur)
                    cur = []
                    out.t_end.append(cycle)
            if iv and ctx.get(dut.i.ready):
                if starting:
                    first_in.append(cycle)
                starting = beats[bi][1]
                if beats[bi][1]:
                    last_in.append(cycle)
                bi += 1
            if kv and ctx.get(dut.k.ready):
                k_in.append(cycle)
                ki += 1
            await ctx.tick()
            if len(out.beats) == len(requests):
                break
        out.t0 = [max(a, b) for a, b in zip(last_in, k_in, strict=False)]
        out.fill = [b - a + 1 for a, b in zip(first_in, last_in, strict=False)]
        for j, (t0, te) in enumerate(zip(out.t0, out.t_end, strict=False)):
            # the next request may already search while this one's last beat waits for the consumer
            end = min(te, out.t0[j + 1]) if j + 1 < len(out.t0) else te
            out.search.append(sum(1 for c in searching if t0 < c <= end))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return out
