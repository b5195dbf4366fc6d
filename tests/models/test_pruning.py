"""Tests of models.pruning against plain sorting references and a loop re-implementation of the cascade."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.pruning import (
    CascadePruner,
    _topk_mask,
    keep_count,
    select_top,
    topk_rows,
    value_keep_mask,
)
from spatten.models.topk import topk_ref


def test_keep_count_hand_cases() -> None:
    # Release counts: 0.9 of 1024 keys -> 921, 0.7 -> 716, 0.2 of 921 -> 184, 0.3 of 1024 -> 307.
    assert [keep_count(r, 1024) for r in (0.9, 0.7, 0.2, 0.1, 0.3)] == [921, 716, 204, 102, 307]
    assert keep_count(0.2, 921) == 184
    assert keep_count(0.29, 100) == 29  # not 28: binary 0.29 * 100 = 28.999...
    assert keep_count(1e-6, 10) == 1  # never below one
    assert keep_count(1.0, 0) == 0 and keep_count(1.0, 7) == 7


@pytest.mark.parametrize("ratio", [0.0, -0.1, 1.01, float("nan"), float("inf")])
def test_keep_count_bad_ratio(ratio: float) -> None:
    with pytest.raises(ValueError, match="ratio"):
        keep_count(ratio, 10)


def test_keep_count_bad_n() -> None:
    with pytest.raises(ValueError, match="n"):
        keep_count(0.5, -1)


score_rows = st.integers(1, 5).flatmap(
    lambda b: st.integers(1, 20).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.integers(-3, 3), min_size=n, max_size=n), min_size=b, max_size=b),
            st.integers(0, n),
        )
    )
)


@settings(max_examples=80, deadline=None)
@given(score_rows)
def test_topk_rows_equals_topk_ref(case) -> None:
    rows, k = case
    a = np.array(rows)  # small integer range: many ties
    mask = topk_rows(a, k)
    for row, mrow in zip(a, mask, strict=True):
        assert np.flatnonzero(mrow).tolist() == topk_ref(row, k).tolist()
        # Plain sorting reference: (-score, index) order, first k.
        ref = sorted(sorted(range(len(row)), key=lambda j, r=row: (-r[j], j))[:k])
        assert np.flatnonzero(mrow).tolist() == ref


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40), st.floats(0.01, 1.0, allow_nan=False)
)
def test_value_keep_mask_keeps_largest(p: list[float], ratio: float) -> None:
    mask = value_keep_mask(np.array([p]), ratio)[0]
    k = keep_count(ratio, len(p))
    assert mask.sum() == k
    kept = np.array(p)[mask]
    dropped = np.array(p)[~mask]
    assert dropped.size == 0 or kept.min() >= dropped.max()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=30), st.data())
def test_select_top_with_protect(imp: list[int], data) -> None:
    n = len(imp)
    cand = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1)))
    k = data.draw(st.integers(1, len(cand)))
    protect = cand[-1]
    got = select_top(np.array(imp), cand, k, protect=protect).tolist()
    assert protect in got and len(got) == k
    rest = sorted(sorted((j for j in cand if j != protect), key=lambda j: (-imp[j], j))[: k - 1])
    assert got == sorted(rest + [protect])


class ReferenceCascade:
    """The cascade written with Python sets and sorted(), independently of CascadePruner."""

    def __init__(self, layers, heads, tsched, hsched, generation):
        self.layers, self.heads = layers, heads
        self.tsched, self.hsched, self.gen = tsched, hsched, generation
        self.s_tok: dict[int, float] = {}
        self.s_head = [0.0] * heads
        self.pruned_tok = [set() for _ in range(layers)]
        self.pruned_head = [set() for _ in range(layers)]
        self.seen = False

    def step(self, n, layer_fn):
        prev_t, prev_h = set(range(n)), set(range(self.heads))
        sets = []
        for li in range(self.layers):
            ch = {h for h in prev_h if h not in self.pruned_head[li]}
            kh = max(1, math.floor(self.hsched[li] * self.heads + 1e-9))
            if len(ch) > kh and self.seen:
                keep = set(sorted(ch, key=lambda h: (-self.s_head[h], h))[:kh])
                self.pruned_head[li] |= ch - keep
                ch = keep
            ct = {j for j in prev_t if j not in self.pruned_tok[li]}
            kt = max(1, math.floor(self.tsched[li] * n + 1e-9))
            if len(ct) > kt and self.seen:
                newest = n - 1 if self.gen else None
                keep = set(sorted(ct, key=lambda j, nw=newest: (j != nw, -self.s_tok.get(j, 0.0), j))[:kt])
                self.pruned_tok[li] |= ct - keep
                ct = keep
            toks, hs = sorted(ct), sorted(ch)
            probs, out = layer_fn(li, hs, toks)
            for a, j in enumerate(toks):
                self.s_tok[j] = self.s_tok.get(j, 0.0) + float(probs[:, :, a].sum())
            for a, h in enumerate(hs):
                self.s_head[h] += float(np.abs(out[a]).sum())
            self.seen = True
            sets.append((hs, toks))
            prev_t, prev_h = ct, ch
        return sets


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(1, 4),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_cascade_matches_reference(layers, heads, prompt, steps, generation, seed) -> None:
    rng = np.random.default_rng(seed)
    tsched = tuple(sorted(rng.choice([1.0, 0.9, 0.6, 0.3, 0.1], layers), reverse=True))
    hsched = tuple(sorted(rng.choice([1.0, 0.75, 0.5], layers), reverse=True))
    if not generation:
        steps = 1
    n_max = prompt + steps
    pr = CascadePruner(layers, heads, n_max, tsched, hsched, generation=generation, integer=True)
    ref = ReferenceCascade(layers, heads, tsched, hsched, generation)
    history: list[list[set[int]]] = [[] for _ in range(layers)]
    for t in range(steps):
        n = prompt + t + 1 if generation else prompt
        draws = {}

        def layer_fn(li, hs, toks, draws=draws, n=n):
            nq = 1 if generation else len(toks)
            probs = rng.integers(0, 4096, (len(hs), nq, len(toks)))
            out = rng.integers(-500, 500, (len(hs), nq, 4))
            draws[li] = (probs, out)
            return probs, out

        expected = ref.step(n, layer_fn)
        pr.begin_step(n)
        for li in range(layers):
            hs = pr.layer_heads(li)
            toks = pr.layer_tokens(li)
            assert (hs.tolist(), toks.tolist()) == expected[li]
            probs, out = draws[li]
            pr.update(toks, hs, probs, out)
            # Properties: the newest token survives; a layer never sees more than the one before.
            if generation:
                assert n - 1 in toks
            history[li].append(set(toks.tolist()))
    for li in range(layers):  # pruned tokens never return (apart from newly generated ones)
        for t in range(1, len(history[li])):
            new = {prompt + t} if generation else set()
            assert history[li][t] <= history[li][t - 1] | new


def test_counts_follow_schedule() -> None:
    pr = CascadePruner(3, 2, 100, (1.0, 0.5, 0.2), (1.0, 1.0, 0.5), generation=False)
    pr.begin_step(100)
    sizes = []
    for li in range(3):
        hs, toks = pr.layer_heads(li), pr.layer_tokens(li)
        sizes.append((len(hs), len(toks)))
        pr.update(toks, hs, np.ones((len(hs), len(toks), len(toks))), np.ones((len(hs), len(toks), 2)))
    assert sizes == [(2, 100), (2, 50), (1, 20)]


def test_cascade_bad_input() -> None:
    with pytest.raises(ValueError, match="token_schedule"):
        CascadePruner(2, 2, 10, (1.0,), (1.0, 1.0), generation=True)
    with pytest.raises(ValueError, match=r"head_schedule\[1\]"):
        CascadePruner(2, 2, 10, (1.0, 1.0), (1.0, 0.0), generation=True)
    with pytest.raises(ValueError, match="layers"):
        CascadePruner(0, 2, 10, (), (), generation=True)
    pr = CascadePruner(1, 1, 10, (1.0,), (1.0,), generation=True)
    pr.begin_step(5)
    with pytest.raises(ValueError, match="n_tokens"):
        pr.begin_step(4)
    with pytest.raises(ValueError, match="n_tokens"):
        pr.begin_step(11)
    pr.begin_step(6)
    with pytest.raises(ValueError, match="probs"):
        pr.update(np.arange(3), np.arange(1), np.zeros((1, 1, 4)), np.zeros((1, 1, 2)))
    with pytest.raises(ValueError, match="out"):
        pr.update(np.arange(3), np.arange(1), np.zeros((1, 1, 3)), np.zeros((1, 2, 2)))
    with pytest.raises(ValueError, match="candidates"):
        select_top(np.zeros(4), [1, 5], 1)
    with pytest.raises(ValueError, match="k"):
        select_top(np.zeros(4), [1, 2], 3)
    with pytest.raises(ValueError, match="protect"):
        select_top(np.zeros(4), [1, 2], 1, protect=3)
    with pytest.raises(ValueError, match="k"):
        topk_rows(np.zeros((2, 3)), 4)
    with pytest.raises(ValueError, match="scores"):
        topk_rows(np.array([[np.nan, 1.0]]), 1)
    with pytest.raises(ValueError, match="probs"):
        value_keep_mask(np.zeros((2, 0)), 0.5)


def test_token_min_keep_holds_short_sequences() -> None:
    from spatten.models.pruning import CascadePruner

    p = CascadePruner(2, 1, 10, (1.0, 0.2), (1.0, 1.0), generation=True, min_keep=4)
    seen = []
    for n in range(1, 11):
        p.begin_step(n)
        for layer in range(2):
            p.layer_heads(layer)
            tokens = p.layer_tokens(layer)
            p.update(tokens, np.array([0]), np.ones((1, 1, tokens.size)), np.ones((1, 1, 2)))
        seen.append(tokens.size)
    # layer 1 keeps floor(0.2 n) but never fewer than min(n, 4): 1, 2, 3, 4, 4, ...
    assert seen == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4]


@settings(max_examples=80, deadline=None)
@given(score_rows, st.integers(0, 2**31), st.sampled_from([1, 1000, 1 << 20]))
def test_topk_mask_per_row_counts(case, seed: int, scale: int) -> None:
    """Per-row counts keep each row's own topk_ref (any value range: 16-bit radix keys or int64 keys)."""
    rows, _ = case
    a = np.array(rows) * scale
    n = a.shape[-1]
    k = np.random.default_rng(seed).integers(0, n + 1, a.shape[0])
    mask = _topk_mask(a, k)
    for row, kr, mrow in zip(a, k, mask, strict=True):
        assert np.flatnonzero(mrow).tolist() == topk_ref(row, int(kr)).tolist()
    assert np.array_equal(_topk_mask(a.astype(float), k), mask)
