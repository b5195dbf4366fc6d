"""Fast tier: TopKEngine and ZeroEliminator under Amaranth's own simulator, against the golden models."""

from __future__ import annotations

import itertools
import random

import pytest
from amaranth.sim import Simulator
from spatten.models.topk import quickselect_trace, topk_ref
from spatten.models.zero_eliminator import compact
from spatten.rtl.topk import TopKEngine
from spatten.rtl.zero_eliminator import ZeroEliminator

from tests.rtl.topk_amaranth_harness import run_engine


def _expected(scores: list[int], k: int) -> list[tuple[int, int, int]]:
    if k == 0:
        return [(0, 0, 1)]
    return [(int(i), scores[int(i)], 0) for i in topk_ref(scores, k)]


def _random_requests(
    rng: random.Random, count: int, max_n: int, width: int
) -> list[tuple[list[int], int, int]]:
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    reqs = []
    for _ in range(count):
        n = rng.randint(1, max_n)
        span = rng.choice([(lo, hi), (-3, 3), (0, 0)])  # wide, heavy duplicates, all equal
        scores = [rng.randint(*span) for _ in range(n)]
        reqs.append((scores, rng.randint(0, n), rng.randrange(1 << 16)))
    return reqs


@pytest.mark.parametrize("lanes", [1, 2, 4, 8, 16, 32])
def test_zero_eliminator_matches_model(lanes: int) -> None:
    dut = ZeroEliminator(8, lanes)
    rng = random.Random(lanes)
    cases = (
        [tuple(bits) for bits in itertools.product([0, 1], repeat=lanes)]
        if lanes <= 8
        else [tuple(rng.randint(0, 1) for _ in range(lanes)) for _ in range(300)]
    )

    async def tb(ctx):
        for keep in cases:
            values = [rng.randrange(256) for _ in range(lanes)]
            ctx.set(dut.i_data, values)
            ctx.set(dut.i_keep, sum(b << i for i, b in enumerate(keep)))
            want, count = compact(values, keep)
            got = list(ctx.get(dut.o_data))
            assert ctx.get(dut.o_count) == count
            assert got[:count] == want
            assert got[count:] == [0] * (lanes - count)

    sim = Simulator(dut)
    sim.add_testbench(tb)
    sim.run()


# (P, in_lanes): the one-score port, L = P, and L that does not divide P (beats straddle buffer rows)
EXACT_CASES = [(1, 1), (4, 1), (16, 1), (32, 1), (4, 4), (4, 3), (16, 8), (16, 16), (32, 5)]


@pytest.mark.parametrize(("lanes", "in_lanes"), EXACT_CASES, ids=[f"p{p}_l{q}" for p, q in EXACT_CASES])
def test_topk_random_exact_cycles(lanes: int, in_lanes: int) -> None:
    rng = random.Random(100 + lanes)
    reqs = _random_requests(rng, 30, 40, 8)
    out = run_engine(TopKEngine(8, 64, lanes, in_lanes=in_lanes), reqs)
    assert len(out.beats) == len(reqs)
    for (scores, k, seed), beats, t0, te, search, fill in zip(
        reqs, out.beats, out.t0, out.t_end, out.search, out.fill, strict=True
    ):
        assert beats == _expected(scores, k)
        trace = quickselect_trace(scores, k, lanes, seed, in_lanes=in_lanes)
        assert te - t0 == trace.cycles
        assert search == trace.select_cycles
        assert fill == trace.fill_cycles == -(-len(scores) // in_lanes)


# (P, in_lanes, out_lanes): a row's selection leaves O a beat; O = P takes a row in one beat
OUT_CASES = [(4, 1, 2), (4, 4, 4), (16, 8, 8), (16, 16, 16), (32, 5, 3), (8, 8, 5)]


@pytest.mark.parametrize(
    ("lanes", "in_lanes", "out_lanes"), OUT_CASES, ids=[f"p{p}_l{q}_o{o}" for p, q, o in OUT_CASES]
)
def test_topk_multi_lane_output_exact_cycles(lanes: int, in_lanes: int, out_lanes: int) -> None:
    rng = random.Random(300 + lanes + out_lanes)
    reqs = _random_requests(rng, 30, 64, 8)
    out = run_engine(TopKEngine(8, 64, lanes, in_lanes=in_lanes, out_lanes=out_lanes), reqs)
    assert len(out.beats) == len(reqs)
    for (scores, k, seed), beats, t0, te in zip(reqs, out.beats, out.t0, out.t_end, strict=True):
        assert beats == _expected(scores, k)
        trace = quickselect_trace(scores, k, lanes, seed, in_lanes=in_lanes, out_lanes=out_lanes)
        assert te - t0 == trace.cycles
    # the final pass really is shorter than one index a beat: rows of P scores, up to O of them a cycle
    one = sum(quickselect_trace(s, k, lanes, sd, in_lanes=in_lanes).cycles for s, k, sd in reqs)
    assert sum(te - t0 for t0, te in zip(out.t0, out.t_end, strict=True)) < one


def test_topk_multi_lane_output_under_backpressure() -> None:
    rng = random.Random(77)
    reqs = _random_requests(rng, 25, 40, 6)
    out = run_engine(TopKEngine(6, 40, 8, in_lanes=4, out_lanes=4), reqs, idle=0.4, backpressure=0.5, seed=3)
    assert out.beats == [_expected(s, k) for s, k, _ in reqs]


GAP_CASES = [(1, 1), (4, 1), (16, 1), (4, 4), (16, 8)]


@pytest.mark.parametrize(("lanes", "in_lanes"), GAP_CASES, ids=[f"p{p}_l{q}" for p, q in GAP_CASES])
def test_topk_gaps_and_backpressure_lose_nothing(lanes: int, in_lanes: int) -> None:
    rng = random.Random(7 + lanes)
    reqs = _random_requests(rng, 25, 33, 6)
    dut = TopKEngine(6, 33, lanes, in_lanes=in_lanes)
    out = run_engine(dut, reqs, idle=0.4, backpressure=0.5, seed=lanes)
    assert [b for b in out.beats] == [_expected(s, k) for s, k, _ in reqs]
    for (scores, k, seed), search in zip(reqs, out.search, strict=True):
        assert search == quickselect_trace(scores, k, lanes, seed).select_cycles


@pytest.mark.parametrize("in_lanes", [1, 3, 4])
def test_topk_directed_edges(in_lanes: int) -> None:
    n = 16
    reqs = [
        ([5] * n, 7, 0),  # all equal: the first 7
        (list(range(n)), 1, 1),  # ascending: the last one
        (list(range(n, 0, -1)), n - 1, 2),  # descending
        ([3, 9, 9, 9, 9, 1, 9, 0, 9, 2, 9, 9, 4, 9, 9, 9], 4, 3),  # ties straddle rank k
        ([-128, 127], 1, 0xFFFF),  # extremes of the width, the seed that wraps to state 1
        (list(range(n)), 5, 0xFFFF),  # that seed over several rounds: its pivots follow the LFSR from 1
        ([42], 1, 0),
        ([42], 0, 0),
        (list(range(n)), n, 0),
        ([1, 2, 3], 9, 0),  # k > n keeps everything
    ]
    out = run_engine(TopKEngine(8, n, 4, in_lanes=in_lanes), reqs)
    for (scores, k, seed), beats, search in zip(reqs, out.beats, out.search, strict=True):
        assert beats == _expected(scores, min(k, len(scores)))
        if 0 < k < len(scores):  # a real search: its cycles are the model's, pivot by pivot
            assert search == quickselect_trace(scores, k, 4, seed, in_lanes=in_lanes).select_cycles
    # hand-computed: the four largest are 9 at indices 1, 2, 3, 4
    assert [b[0] for b in out.beats[3]] == [1, 2, 3, 4]
    assert [b[0] for b in out.beats[0]] == list(range(7))


def test_topk_overlong_request_ends_at_max_n() -> None:
    scores = [1, 5, 3, 7, 2, 6]  # last beat arrives after max_n = 4
    out = run_engine(TopKEngine(8, 4, 2), [(scores[:4] + [99], 2, 0)][:1])
    assert out.beats[0] == [(1, 5, 0), (3, 7, 0)]


def test_topk_overlong_request_reaching_max_n_on_a_beat_boundary_ends_there() -> None:
    # max_n = 8, beats of 4 and no `last` on the second beat: the request ends when it holds exactly max_n
    # scores, so the third beat (99s) is never a candidate
    out = run_engine(TopKEngine(8, 8, 4, in_lanes=4), [([1, 5, 3, 7, 2, 6, 4, 0, 99, 99, 99, 99], 2, 0)])
    assert out.beats[0] == [(3, 7, 0), (5, 6, 0)]
    # the third beat is not taken into this request: the harness's offer of it waits until the engine is done
    # (taking it on the cycle after the second beat, fill 3, is the off-by-one at max_n)
    assert out.fill[0] > 3


def test_topk_overlong_beat_is_clipped_at_max_n() -> None:
    # max_n = 6, beats of 4: the second beat (scores 2, 6, 99, 98) crosses max_n; its last two lanes
    # are dropped and the request ends there, so 99 and 98 are never candidates
    out = run_engine(TopKEngine(8, 6, 4, in_lanes=4), [([1, 5, 3, 7, 2, 6, 99, 98], 2, 0)])
    assert out.beats[0] == [(3, 7, 0), (5, 6, 0)]


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"parallelism": 3}, ValueError, "parallelism = 3 must be a power of two in 1..32"),
        ({"parallelism": 64}, ValueError, "1..32"),
        ({"parallelism": 2.0}, TypeError, "parallelism must be an int"),
        ({"score_width": 1}, ValueError, "score_width = 1 is outside the allowed range 2..64"),
        ({"max_n": 0}, ValueError, "max_n = 0 is outside the allowed range 1..65536"),
        ({"max_n": 100, "parallelism": 16, "buffer_depth": 6}, ValueError, "buffer_depth = 6"),
        ({"parallelism": 4, "in_lanes": 5}, ValueError, "in_lanes = 5 is outside the allowed range 1..4"),
        ({"parallelism": 1, "in_lanes": 2}, ValueError, "in_lanes = 2 is outside the allowed range 1..1"),
        ({"in_lanes": 0}, ValueError, "in_lanes = 0 is outside the allowed range 1..16"),
        ({"in_lanes": 2.0}, TypeError, "in_lanes must be an int"),
    ],
)
def test_parameter_validation(kwargs: dict, exc: type, text: str) -> None:
    with pytest.raises(exc, match=text.replace(".", r"\.")):
        TopKEngine(**kwargs)


def test_topk_full_size_request_pivots_reach_every_row() -> None:
    """max_n = 1024, n = 1000: the pivot position (lfsr * n) >> 16 takes all 10 bits of the count, so a
    position register narrower than the count picks wrong pivots (the small-max_n cases cannot tell)."""
    rng = random.Random(5)
    scores = [rng.randint(-(1 << 15), (1 << 15) - 1) for _ in range(1000)]
    reqs = [(scores, 500, 0xACE1), (scores, 37, 0x1234)]
    out = run_engine(TopKEngine(16, 1024, 16, in_lanes=8), reqs)
    for (sc, k, seed), beats, search in zip(reqs, out.beats, out.search, strict=True):
        assert beats == _expected(sc, k)
        assert search == quickselect_trace(sc, k, 16, seed, in_lanes=8).select_cycles
