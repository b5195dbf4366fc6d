"""Tests of models.quant: progressive quantization against a plain per-row reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.quant import pq_row, pq_rows, threshold_code
from spatten.models.softmax import SoftmaxSpec, softmax_fixed

SPEC = SoftmaxSpec(frac_bits=4, scale=0.25)


def reference_row(q, k_msb, k_lsb, lsb_bits, shift, thr, spec):
    """Plain Python: MSB-estimate dot products, softmax, decision, full-key recompute."""
    lo, hi = -(2 ** (spec.in_bits - 1)), 2 ** (spec.in_bits - 1) - 1

    def scores(keys):
        out = []
        for key in keys:
            raw = sum(int(a) * int(b) for a, b in zip(q, key, strict=True))
            s = (raw + (1 << (shift - 1))) >> shift if shift else raw
            out.append(min(hi, max(lo, s)))
        return out

    half = (1 << (lsb_bits - 1)) if lsb_bits else 0
    est = [[m * 2**lsb_bits + half for m in row] for row in k_msb]
    p = softmax_fixed(scores(est), spec).tolist()
    refetch = max(p) < round(thr * 2**spec.out_bits)
    if refetch:
        pairs = zip(k_msb, k_lsb, strict=True)
        full = [[m * 2**lsb_bits + low for m, low in zip(mr, lr, strict=True)] for mr, lr in pairs]
        p = softmax_fixed(scores(full), spec).tolist()
    return p, refetch


@st.composite
def rows(draw: st.DrawFn):
    d = draw(st.integers(1, 8))
    n = draw(st.integers(1, 12))
    b = draw(st.integers(1, 3))
    lsb = draw(st.integers(1, 5))
    msb_bits = draw(st.integers(2, 8))
    m = 2 ** (msb_bits - 1)
    q = np.array(draw(st.lists(st.integers(-300, 300), min_size=b * d, max_size=b * d))).reshape(b, d)
    km = np.array(draw(st.lists(st.integers(-m, m - 1), min_size=b * n * d, max_size=b * n * d))).reshape(
        b, n, d
    )
    kl = np.array(draw(st.lists(st.integers(0, 2**lsb - 1), min_size=b * n * d, max_size=b * n * d)))
    shift = draw(st.integers(0, 6))
    thr = draw(st.sampled_from([0.0, 0.05, 0.1, 0.3, 0.6, 1.0]))
    return q, km, kl.reshape(b, n, d), lsb, shift, thr


@settings(max_examples=60, deadline=None)
@given(rows())
def test_pq_rows_match_reference(case) -> None:
    q, km, kl, lsb, shift, thr = case
    res = pq_rows(q[:, None, :], km, kl, lsb_bits=lsb, score_shift=shift, threshold=thr, spec=SPEC)
    for b in range(q.shape[0]):
        p, refetch = reference_row(q[b], km[b], kl[b], lsb, shift, thr, SPEC)
        assert res.probs[b, 0].tolist() == p
        assert bool(res.refetch[b, 0]) == refetch
        one = pq_row(q[b], km[b], kl[b], lsb_bits=lsb, score_shift=shift, threshold=thr, spec=SPEC)
        assert one.probs.tolist() == p and bool(one.refetch) == refetch


@settings(max_examples=30, deadline=None)
@given(rows())
def test_queries_sharing_keys_equal_separate_rows(case) -> None:
    q, km, kl, lsb, shift, thr = case
    # All batch queries against batch 0's keys, as Q queries of one head.
    res = pq_rows(q[None], km[:1], kl[:1], lsb_bits=lsb, score_shift=shift, threshold=thr, spec=SPEC)
    for i in range(q.shape[0]):
        one = pq_row(q[i], km[0], kl[0], lsb_bits=lsb, score_shift=shift, threshold=thr, spec=SPEC)
        assert np.array_equal(res.probs[0, i], one.probs) and bool(res.refetch[0, i]) == bool(one.refetch)


def test_flat_row_refetches_and_peaked_row_does_not() -> None:
    q = np.array([64, 0])
    # Four equal keys: every probability is 1/4 = 1024/4096, below a 0.3 threshold (1229) -> refetch.
    km = np.zeros((4, 2), np.int64)
    kl = np.array([[0, 0], [15, 0], [0, 0], [0, 0]])
    r = pq_row(q, km, kl, lsb_bits=4, score_shift=0, threshold=0.3, spec=SPEC)
    assert bool(r.refetch)
    assert r.msb_probs.tolist() == [1024] * 4
    # After the refetch, key 1 has 15 more in its first element: its score is 64 * 15 = 960 (60.0 real)
    # higher before the 0.25 scale, i.e. 15 logits: it takes (almost) everything.
    assert r.probs.argmax() == 1 and r.probs[1] >= 4090
    # Same row against a 0.2 threshold: 1024 >= 819, no refetch, MSB result kept.
    r2 = pq_row(q, km, kl, lsb_bits=4, score_shift=0, threshold=0.2, spec=SPEC)
    assert not bool(r2.refetch) and r2.probs.tolist() == [1024] * 4


def test_threshold_boundary_is_strict_less_than() -> None:
    # Four equal scores: max probability exactly 1024 / 4096. Threshold code round(0.25 * 4096) = 1024:
    # 1024 < 1024 is false, no refetch; round(0.2502 * 4096) = round(1024.8) = 1025: refetch.
    q, km, kl = np.array([1]), np.zeros((4, 1), np.int64), np.zeros((4, 1), np.int64)
    kw = dict(lsb_bits=2, score_shift=0, spec=SPEC)
    assert not bool(pq_row(q, km, kl, threshold=0.25, **kw).refetch)
    assert not bool(pq_row(q, km, kl, threshold=0.2501, **kw).refetch)
    assert bool(pq_row(q, km, kl, threshold=0.2502, **kw).refetch)


def test_static_quantization_never_refetches() -> None:
    rng = np.random.default_rng(3)
    q = rng.integers(-50, 50, (3, 1, 8))
    km = rng.integers(-8, 8, (3, 10, 8))
    kl = rng.integers(0, 16, (3, 10, 8))
    assert not pq_rows(q, km, kl, lsb_bits=4, score_shift=2, threshold=1.0, progressive=False).refetch.any()
    assert not pq_rows(q, km, None, lsb_bits=0, score_shift=2, threshold=1.0).refetch.any()
    # Threshold 1.0 always refetches (probabilities saturate at 2**P - 1 < 2**P).
    assert pq_rows(q, km, kl, lsb_bits=4, score_shift=2, threshold=1.0).refetch.all()
    assert not pq_rows(q, km, kl, lsb_bits=4, score_shift=2, threshold=0.0).refetch.any()


def test_threshold_code() -> None:
    assert threshold_code(0.05, 12) == 205  # 204.8 rounds to 205
    assert threshold_code(0.0, 8) == 0 and threshold_code(1.0, 8) == 256


def test_bad_input_names_argument() -> None:
    q, km, kl = np.zeros(4, np.int64), np.zeros((3, 4), np.int64), np.zeros((3, 4), np.int64)
    kw = dict(lsb_bits=4, score_shift=0, threshold=0.1)
    with pytest.raises(ValueError, match="lsb_bits"):
        pq_row(q, km, kl, lsb_bits=15, score_shift=0, threshold=0.1)
    with pytest.raises(ValueError, match="threshold"):
        pq_row(q, km, kl, lsb_bits=4, score_shift=0, threshold=1.5)
    with pytest.raises(ValueError, match="threshold"):
        pq_row(q, km, kl, lsb_bits=4, score_shift=0, threshold=float("nan"))
    with pytest.raises(ValueError, match="q"):
        pq_row(np.array([np.nan, 0, 0, 0]), km, kl, **kw)
    with pytest.raises(ValueError, match="shape"):
        pq_row(np.zeros(5, np.int64), km, kl, **kw)
    with pytest.raises(ValueError, match="k_msb"):
        pq_row(q, np.zeros((0, 4), np.int64), kl, **kw)
    with pytest.raises(ValueError, match="k_lsb"):
        pq_row(q, km, None, **kw)
    with pytest.raises(ValueError, match="k_lsb"):
        pq_row(q, km, np.zeros((2, 4), np.int64), **kw)
    with pytest.raises(ValueError, match="lsb"):
        pq_row(q, km, np.full((3, 4), 16), threshold=1.0, lsb_bits=4, score_shift=0)
    with pytest.raises(ValueError, match="score_shift"):
        pq_row(q, km, kl, lsb_bits=4, score_shift=-1, threshold=0.1)
