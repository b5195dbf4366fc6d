"""Causal prefill with SpAttenAttention: every row equals the attention over its visible keys alone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from spatten.models.config import ModelShape, Workload, replace_path, workload_preset
from spatten.models.inloop import SpAttenAttention, _core_fixed, _core_float
from spatten.models.pruning import keep_count


def _workload(kv_heads: int = 2, **changes) -> Workload:
    shape = ModelShape("tiny-dec", 4, 6, 16, 40, 0, "summarization", kv_heads=kv_heads)  # one prefill step
    w = dataclasses.replace(workload_preset("smollm2"), model=shape)
    w = replace_path(replace_path(w, "pruning.token_keep", 0.5), "pruning.token_unpruned_fraction", 0.25)
    for path, value in changes.items():
        w = replace_path(w, path.replace("__", "."), value)
    return w


def _layer_inputs(rng: np.random.Generator, w: Workload, n: int, live: np.ndarray):
    """Q for all n positions, K/V of the live tokens; a sink on token 0 so rows range from peaked to flat."""
    m = w.model
    q = rng.standard_normal((m.heads, n, m.head_dim)).astype(np.float32)
    k = rng.standard_normal((m.n_kv_heads, n, m.head_dim)).astype(np.float32)
    v = rng.standard_normal((m.n_kv_heads, n, m.head_dim)).astype(np.float32)
    u = rng.standard_normal((m.n_kv_heads, m.head_dim)).astype(np.float32)
    a = rng.uniform(0.0, 1.5, m.heads).astype(np.float32)  # per head: flat (refetches) to peaked
    q *= np.where(a < 0.5, 0.1, 1.0).astype(np.float32)[:, None, None]
    q += a[:, None, None] * np.repeat(u, m.heads // m.n_kv_heads, axis=0)[:, None]
    k[:, 0] = 2 * u
    return q, k[:, live], v[:, live]


def _run(w: Workload, mode: str, n: int, seed: int, check) -> SpAttenAttention:
    """Drive a causal prefill over every layer; ``check(attn, layer, q, k, v, vis, out)`` after each."""
    rng = np.random.default_rng(seed)
    attn = SpAttenAttention(w, n, generation=False, causal=True, mode=mode)
    attn.begin_step(n)
    for layer in range(w.model.layers):
        live = attn.begin_layer(layer)
        q, k, v = _layer_inputs(rng, w, n, live)
        out = attn.attend(layer, q, k, v, np.arange(n))
        check(attn, layer, q, k, v, np.searchsorted(live, np.arange(n), side="right"), out)
    return attn


@pytest.mark.parametrize("mode", ["fixed", "float"])
@pytest.mark.parametrize("kv_heads", [2, 0])
@pytest.mark.parametrize("changes", [{}, {"pruning__head_keep": 0.7}, {"quant__enabled": False}])
def test_each_row_equals_the_core_on_its_visible_keys(mode: str, kv_heads: int, changes: dict) -> None:
    """Row i of the masked causal layer == the non-causal core on query i and the live keys <= i, with
    the layer's own quantization: probabilities, kept values, refetch and output, bit for bit."""
    w = _workload(kv_heads, **changes)
    core = _core_fixed if mode == "fixed" else _core_float
    seen = {"refetch": 0, "pruned": 0, "heads": 0}

    def check(attn, layer, q, k, v, vis, out):
        res, heads = attn.last, attn.pruner.alive_head[layer].nonzero()[0]
        codes = attn._codes(q, k, v)  # the same per-layer scales as the call
        thr, ratio = w.quant.refetch_threshold, w.pruning.value_ratio
        seen["refetch"] += int(res.refetch.sum())
        seen["pruned"] += int(k.shape[1] < q.shape[1])
        seen["heads"] += int(heads.size < q.shape[0])
        for i, m in enumerate(vis):
            assert not res.probs[:, i, m:].any() and not res.kept[:, i, m:].any()
            row = dataclasses.replace(
                codes,
                q=codes.q[:, i : i + 1],
                k_msb=None if codes.k_msb is None else codes.k_msb[:, :m],
                k_est=None if codes.k_est is None else codes.k_est[:, :m],
                k_full=codes.k_full[:, :m],
                v=codes.v[:, :m],
            )
            ref = core(row, heads, attn.group, thr, ratio)
            assert np.array_equal(res.probs[:, i, :m], ref.probs[:, 0])
            assert np.array_equal(res.kept[:, i, :m], ref.kept[:, 0])
            assert np.array_equal(res.refetch[:, i], ref.refetch[:, 0])
            assert np.array_equal(res.output[:, i], ref.output[:, 0])

    _run(w, mode, 40, seed=1, check=check)
    assert seen["pruned"] > 0  # later layers attend to fewer keys than there are queries
    if not changes:
        assert seen["refetch"] > 0
    assert (seen["heads"] > 0) == bool(changes.get("pruning__head_keep"))


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_rows_equal_one_query_runs_through_the_public_api(mode: str) -> None:
    """Layer 0 (nothing pruned yet): each causal row equals a separate non-causal SpAttenAttention run
    with that query and the keys up to it. The largest |q| of every row, |k| and |v| (on token 0, seen by
    every row) are the layer's, so both runs quantize with the same scales."""
    w, n = _workload(2), 20
    rng = np.random.default_rng(4)
    q, k, v = _layer_inputs(rng, w, n, np.arange(n))
    q[:, :, 0] = 9.0 * np.sign(q[:, :, 0] + 0.5)
    k[0, 0, 0], v[0, 0, 0] = 9.0, -9.0
    attn = SpAttenAttention(w, n, generation=False, causal=True, mode=mode)
    attn.begin_step(n)
    attn.begin_layer(0)
    out = attn.attend(0, q, k, v, np.arange(n))
    causal, tr = attn.last, attn.trace()
    kept_so_far = np.zeros((w.model.kv_heads, n), dtype=bool)
    for i in range(n):
        one = SpAttenAttention(w, i + 1, generation=False, mode=mode)
        one.begin_step(i + 1)
        one.begin_layer(0)
        o = one.attend(0, q[:, i : i + 1], k[:, : i + 1], v[:, : i + 1], np.array([i]))
        assert o.tobytes() == out[:, i : i + 1].tobytes()
        r = one.last
        assert np.array_equal(causal.probs[:, i, : i + 1], r.probs[:, 0])
        assert np.array_equal(causal.kept[:, i, : i + 1], r.kept[:, 0])
        assert np.array_equal(causal.output[:, i], r.output[:, 0])
        t1, rows = one.trace(), tr[tr["query"] == i]
        for c in ("head", "keys_fetched", "values_fetched", "refetch", "kv_head"):
            assert (rows[c].to_numpy() == t1[c].to_numpy()).all(), c
        # the K/V values a group fetches: the union over its query heads and every query so far
        kept_so_far[:, : i + 1] |= r.kept[:, 0].reshape(w.model.kv_heads, -1, i + 1).any(axis=1)
        want = np.repeat(kept_so_far.sum(axis=1), w.model.heads // w.model.kv_heads)
        assert (rows["kv_values_fetched"].to_numpy() == want).all()


def test_pruned_token_loses_its_key_but_keeps_its_query_and_the_trace_counts() -> None:
    w, n = _workload(2, pruning__value_keep=0.5), 30
    blocks = []

    def check(attn, layer, q, k, v, vis, out):
        blocks.append((layer, attn.pruner.alive_tok[layer, :n].nonzero()[0], vis, attn.last, out))

    attn = _run(w, "fixed", n, seed=7, check=check)
    tr = attn.trace()
    pruned_seen = False
    for layer, live, vis, res, out in blocks:
        rows = tr[tr["layer"] == layer]
        heads = np.unique(rows["head"])
        assert len(rows) == heads.size * n  # one row per (live head, query), pruned tokens' queries too
        assert (rows["query"].to_numpy() == np.tile(np.arange(n), heads.size)).all()
        assert (rows["seq_len"] == n).all()
        assert (rows["keys_fetched"].to_numpy() == np.tile(vis, heads.size)).all()
        want_values = [keep_count(w.pruning.value_ratio, int(m)) for m in vis]
        assert (rows["values_fetched"].to_numpy() == np.tile(want_values, heads.size)).all()
        assert np.array_equal(res.kept.sum(axis=-1), np.broadcast_to(want_values, res.kept.shape[:2]))
        # 3 query heads per K/V head, and the queries up to each one: the group's one fetch serves them all
        per_query = res.kept.reshape(-1, 3, n, live.size).any(axis=1)
        union = np.array([[kv[: i + 1].any(axis=0).sum() for i in range(n)] for kv in per_query])
        assert (rows["kv_values_fetched"].to_numpy() == np.repeat(union, 3, axis=0).reshape(-1)).all()
        assert (rows["refetch"].to_numpy() == res.refetch.reshape(-1)).all()
        for p in np.setdiff1d(np.arange(n), live):  # a pruned token: no key, but a query and an output
            pruned_seen = True
            assert vis[p] == np.searchsorted(live, p)  # it sees the live keys before it, not itself
            assert out[:, p].any()
    assert pruned_seen


def test_importance_is_the_column_sums_of_the_causal_probabilities() -> None:
    w, n = _workload(2), 16
    before = [np.zeros(n, np.int64)]

    def check(attn, layer, q, k, v, vis, out):
        live = attn.pruner.alive_tok[layer, :n]
        added = attn.pruner.s_tok[:n] - before[-1]
        assert np.array_equal(added[live], attn.last.probs.sum(axis=(0, 1))) and not added[~live].any()
        before.append(attn.pruner.s_tok[:n].copy())

    _run(w, "fixed", n, seed=2, check=check)


def test_a_query_with_no_visible_key_gives_zeros() -> None:
    w, n = _workload(2), 12
    attn = SpAttenAttention(w, n, generation=False, causal=True)
    attn.begin_step(n)
    rng = np.random.default_rng(0)
    for layer in range(3):
        if layer == 2:
            attn.pruner.s_tok[:3] = -(10**9)  # make tokens 0..2 the least important: pruned at layer 2
        live = attn.begin_layer(layer)
        q, k, v = _layer_inputs(rng, w, n, live)
        out = attn.attend(layer, q, k, v, np.arange(n))
    assert live[0] > 0
    empty = np.arange(n) < live[0]
    assert not out[:, empty].any() and out[:, ~empty].any()
    assert not attn.last.probs[:, empty].any() and not attn.last.refetch[:, empty].any()
    rows = attn.trace().query("layer == 2")
    first = rows["query"] < live[0]
    assert (rows.loc[first, ["keys_fetched", "values_fetched", "kv_values_fetched"]] == 0).all().all()


def test_causal_bad_input_is_a_one_line_value_error() -> None:
    w, n = _workload(2), 10
    with pytest.raises(ValueError, match="generation"):
        SpAttenAttention(w, n, generation=True, causal=True)
    attn = SpAttenAttention(w, n, generation=False, causal=True)
    attn.begin_step(n)
    q, kv = np.ones((6, n, 16), np.float32), np.ones((2, n, 16), np.float32)
    for qq, qpos in ((q[:, :-1], np.arange(n - 1)), (q, np.arange(1, n + 1)), (q, np.arange(n - 1))):
        attn.begin_layer(0)
        with pytest.raises(ValueError) as e:
            attn.attend(0, qq, kv, kv, qpos)
        assert "\n" not in str(e.value)
    attn.begin_layer(0)
    assert attn.attend(0, q, kv, kv, np.arange(n)).shape == (6, n, 16)
