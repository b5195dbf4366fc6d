"""models.topk: topk_ref and quickselect_trace against a plain sort, edge cases, and the cycle model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.topk import (
    OUTPUT_REGISTER,
    ROUND_OVERHEAD,
    final_pass_beats,
    final_pass_cycles,
    lfsr_seed,
    lfsr_step,
    median3,
    pivot_lanes,
    quickselect_trace,
    release_latency,
    topk_ref,
)
from spatten.models.zero_eliminator import compact, shift_network


def plain_topk(scores: list[int], k: int) -> list[int]:
    """Independent reference: sort (value descending, index ascending), take k, sort indices."""
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(order[:k])


@st.composite
def request(draw, max_n: int = 80):
    scores = draw(
        st.lists(
            st.one_of(st.integers(-3, 3), st.integers(-(2**15), 2**15 - 1)),
            min_size=1,
            max_size=max_n,
        )
    )
    k = draw(st.integers(0, len(scores)))
    return scores, k


@settings(max_examples=400, deadline=None)
@given(request(), st.sampled_from([1, 2, 4, 16, 32]), st.integers(0, 2**16 - 1))
def test_quickselect_equals_ref_equals_sort(req, p, seed) -> None:
    scores, k = req
    want = plain_topk(scores, k)
    assert topk_ref(scores, k).tolist() == want
    tr = quickselect_trace(scores, k, p, seed)
    assert tr.indices.tolist() == want
    if 0 < k < len(scores):
        kth = sorted(scores, reverse=True)[k - 1]
        assert tr.threshold == kth
        assert tr.n_above == sum(s > kth for s in scores)
        assert tr.round_sizes[0] == len(scores)
        assert all(0 <= pv < m for pv, m in zip(tr.pivots, tr.round_sizes, strict=True))


@settings(max_examples=200, deadline=None)
@given(request(), st.sampled_from([1, 4, 16]), st.integers(0, 2**16 - 1))
def test_cycle_model_terms(req, p, seed) -> None:
    scores, k = req
    tr = quickselect_trace(scores, k, p, seed)
    assert tr.select_cycles == sum(math.ceil(m / p) + ROUND_OVERHEAD for m in tr.round_sizes)
    assert tr.cycles == tr.select_cycles + tr.final_cycles
    # final pass: one cycle per selected index, plus one per earlier row that had none
    rows_with = {int(i) // p for i in tr.indices}
    if k == 0:
        assert tr.final_cycles == 1 + OUTPUT_REGISTER
    else:
        last_row = max(rows_with)
        empty_rows = sum(1 for r in range(last_row + 1) if r not in rows_with)
        assert tr.final_cycles == k + empty_rows + OUTPUT_REGISTER
    assert release_latency(tr.round_sizes, p) == tr.select_cycles + (3 - ROUND_OVERHEAD) * tr.rounds


def test_hand_computed_trace() -> None:
    # n = 10, k = 3, P = 4 (pivot lanes 0, 2, 3 of a full row), seed 0, scores 0..9:
    # state 1, 10 >= 4: row (1 * (10 // 4)) >> 16 = 0, lanes 0, 2, 3 hold 0, 2, 3 -> median 2 at pos 2;
    #   greater {3..9} (7), rank 3 <= 7 -> recurse into [3..9]
    # state 0xB400 = 46080, 7 >= 4: row (46080 * 1) >> 16 = 0, lanes hold 3, 5, 6 -> 5 at pos 2;
    #   greater {6..9} (4), rank 3 <= 4 -> [6, 7, 8, 9]
    # state 23040, 4 >= 4: row 0, lanes hold 6, 8, 9 -> 8 at pos 2; greater {9}, equal {8}: rank 3 > 2
    #   -> rank 1 in the less set [6, 7]
    # state 11520, 2 < 4: one position (11520 * 2) >> 16 = 0, value 6; greater {7}: rank 1 -> [7]
    # state 5760: pos 0, value 7, equal: rank 1 = 0 + 1 -> threshold 7
    tr = quickselect_trace(list(range(10)), 3, 4, 0)
    assert tr.round_sizes == [10, 7, 4, 2, 1]
    assert tr.pivots == [2, 2, 2, 0, 0]
    assert tr.threshold == 7
    assert tr.indices.tolist() == [7, 8, 9]
    assert tr.select_cycles == (1 + 3) + (1 + 2) + (1 + 1) + (1 + 1) + (1 + 1)  # pivot read + ceil(m / 4)
    # final pass rows of 4: row 0 has none (1 cycle), row 1 has index 7 (1), row 2 has 8 and 9 (2)
    assert tr.final_cycles == (1 + 1 + 2) + OUTPUT_REGISTER


def test_pivot_lanes_and_median_by_hand() -> None:
    assert pivot_lanes(1) == pivot_lanes(2) == ()
    assert pivot_lanes(4) == (0, 2, 3) and pivot_lanes(8) == (0, 4, 7)
    assert pivot_lanes(16) == (0, 1, 3, 5, 7, 9, 11, 13, 15)  # i * 15 // 8
    assert pivot_lanes(32) == (0, 3, 7, 11, 15, 19, 23, 27, 31)  # i * 31 // 8
    assert [median3(*t) for t in ((1, 2, 3), (3, 1, 2), (2, 3, 1), (5, 5, 1), (-4, 9, 0))] == [2, 2, 2, 5, 0]
    # P = 16, one full row 0..15 reversed: lanes hold 15, 14, 12 | 10, 8, 6 | 4, 2, 0 -> medians 14, 8, 2
    # -> pivot 8 at position 7; with k = 8 the pivot is the 8th largest: one round ends the search
    tr = quickselect_trace(list(range(15, -1, -1)), 8, 16, 0)
    assert tr.round_sizes == [16] and tr.pivots == [7] and tr.threshold == 8


@pytest.mark.parametrize(
    ("scores", "k", "want"),
    [
        ([5, 5, 5, 5], 2, [0, 1]),  # all equal: earliest win
        ([1, 2, 3, 4], 1, [3]),
        ([4, 3, 2, 1], 3, [0, 1, 2]),
        ([7], 1, [0]),
        ([7], 0, []),
        ([2, 9, 9, 1, 9], 2, [1, 2]),  # duplicates straddle rank k
        ([0, -1, -1, 3], 4, [0, 1, 2, 3]),
    ],
)
def test_directed(scores, k, want) -> None:
    assert topk_ref(scores, k).tolist() == want
    for p in (1, 4):
        assert quickselect_trace(scores, k, p, 123).indices.tolist() == want


def test_k_zero_and_n_need_no_rounds() -> None:
    a = [3, 1, 2]
    assert quickselect_trace(a, 0).rounds == 0
    assert quickselect_trace(a, 3).rounds == 0
    assert quickselect_trace(a, 3, 1).final_cycles == 3 + OUTPUT_REGISTER


def test_lfsr() -> None:
    assert lfsr_seed(0) == 1 and lfsr_seed(65534) == 65535 and lfsr_seed(65535) == 1
    assert lfsr_step(1) == 0xB400
    s, seen = 1, set()
    for _ in range(65535):  # maximal length: every non-zero state once
        seen.add(s)
        s = lfsr_step(s)
    assert s == 1 and len(seen) == 65535


def test_final_pass_cycles_direct() -> None:
    assert final_pass_cycles([], 5, 4) == 1
    assert final_pass_cycles([9], 10, 4) == 3  # rows 0, 1 empty, row 2 one
    with pytest.raises(ValueError, match="0..9"):
        final_pass_cycles([10], 10, 4)
    # out_lanes = 2: row 0 holds three (two beats), row 1 none (one cycle), row 2 one
    assert final_pass_cycles([0, 1, 2, 9], 10, 4, 2) == 4
    assert final_pass_cycles([0, 1, 2, 9], 10, 4, 4) == 3
    assert final_pass_cycles([0, 1, 2, 9], 10, 4) == 5
    assert final_pass_beats([0, 1, 2, 9], 4, 2) == [[0, 1], [2], [9]]
    assert final_pass_beats([0, 1, 2, 9], 4, 4) == [[0, 1, 2], [9]]
    assert final_pass_beats([], 4, 4) == []


def test_out_lanes_changes_only_the_final_pass() -> None:
    scores = [4, -1, 7, 7, 0, 3, 9, 2, 5, 1, 8]  # n = 11, rows of 4: [4 -1 7 7] [0 3 9 2] [5 1 8]
    one = quickselect_trace(scores, 4, 4, 9)
    two = quickselect_trace(scores, 4, 4, 9, out_lanes=2)
    assert one.indices.tolist() == two.indices.tolist() == [2, 3, 6, 10]
    assert one.select_cycles == two.select_cycles
    assert (one.final_emit_cycles, two.final_emit_cycles) == (4, 3)  # rows hold 2, 1, 1 of the kept
    for bad in (0, 5, True):
        with pytest.raises(ValueError, match="out_lanes"):
            quickselect_trace(scores, 4, 4, 9, out_lanes=bad)


@pytest.mark.parametrize(
    ("args", "exc"),
    [
        (([], 0), ValueError),
        (([[1, 2]], 1), ValueError),
        (([1, 2], 3), ValueError),
        (([1, 2], -1), ValueError),
        (([1, 2], 1.0), TypeError),
        (([1.0, float("nan")], 1), ValueError),
    ],
)
def test_bad_input(args, exc) -> None:
    with pytest.raises(exc):
        topk_ref(*args)
    with pytest.raises(exc):
        quickselect_trace(*args)


def test_bad_parallelism() -> None:
    with pytest.raises(ValueError, match="parallelism"):
        quickselect_trace([1, 2], 1, 0)


def test_in_lanes_changes_only_the_fill() -> None:
    scores = [4, -1, 7, 7, 0, 3, 9, 2, 5, 1, 8]  # n = 11
    one = quickselect_trace(scores, 4, 4, 9)
    four = quickselect_trace(scores, 4, 4, 9, in_lanes=4)
    three = quickselect_trace(scores, 4, 4, 9, in_lanes=3)
    assert (one.fill_cycles, four.fill_cycles, three.fill_cycles) == (11, 3, 4)  # 11, ceil(11/4), ceil(11/3)
    assert one.cycles == four.cycles == three.cycles
    assert one.indices.tolist() == four.indices.tolist() == [2, 3, 6, 10]
    for bad in (0, 5, True):
        with pytest.raises(ValueError, match="in_lanes"):
            quickselect_trace(scores, 4, 4, 9, in_lanes=bad)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([1, 2, 4, 8, 16, 32]).flatmap(lambda p: st.lists(st.booleans(), min_size=p, max_size=p))
)
def test_zero_eliminator_network_equals_compaction(keep) -> None:
    values = list(range(100, 100 + len(keep)))
    kept, count = compact(values, keep)
    out = shift_network(values, keep)
    assert out[:count] == kept == [v for v, k in zip(values, keep, strict=True) if k]
    assert out[count:] == [None] * (len(keep) - count)


def test_float_scores_accepted() -> None:
    assert quickselect_trace(np.array([0.5, 2.0, 1.0]), 2).indices.tolist() == [1, 2]
