"""Tests of models.attention: single requests vs plain references, layers vs requests, full runs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.attention import (
    _LayerQuant,
    attention_layer_fixed,
    attention_layer_float,
    attention_request_fixed,
    pow2_frac,
    run_attention,
    softmax_spec,
    summarize_trace,
    synthetic_qkv,
)
from spatten.models.config import ModelShape, PruningConfig, QuantConfig, Workload, workload_preset
from spatten.models.fixed import split
from spatten.models.pruning import keep_count
from spatten.models.softmax import SoftmaxSpec, error_bound, softmax_fixed
from spatten.models.trace import TRACE_COLUMNS, read_release_csv, write_release_csv

SPEC = SoftmaxSpec(frac_bits=4, scale=0.25)


def plain_request(q, k_msb, k_lsb, v, lsb, shift, thr, ratio, spec):
    """Reference: Python-int dot products, softmax_fixed, decision, sorted() value top-k, Python sums."""
    lo, hi = -(2 ** (spec.in_bits - 1)), 2 ** (spec.in_bits - 1) - 1

    def probs(keys):
        s = []
        for key in keys:
            raw = sum(int(a) * int(b) for a, b in zip(q, key, strict=True))
            s.append(min(hi, max(lo, (raw + (1 << (shift - 1))) >> shift if shift else raw)))
        return softmax_fixed(s, spec).tolist()

    est = [[int(m) * 2**lsb + (2 ** (lsb - 1) if lsb else 0) for m in row] for row in k_msb]
    p = probs(est)
    refetch = max(p) < round(thr * 2**spec.out_bits)
    if refetch:
        pairs = zip(k_msb, k_lsb, strict=True)
        p = probs([[int(m) * 2**lsb + int(b) for m, b in zip(mr, lr, strict=True)] for mr, lr in pairs])
    k = max(1, math.floor(ratio * len(p) + 1e-9))
    kept = sorted(sorted(range(len(p)), key=lambda j: (-p[j], j))[:k])
    out = [sum(p[j] * int(v[j][d]) for j in kept) for d in range(len(q))]
    return out, refetch, kept, p


@st.composite
def layers_in(draw: st.DrawFn):
    h, nq, n, d = (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 10)),
        draw(st.integers(1, 6)),
    )
    lsb = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    peak = draw(st.sampled_from([1, 8, 64]))
    q = rng.integers(-peak * 4, peak * 4 + 1, (h, nq, d))
    km = rng.integers(-8, 8, (h, n, d))
    kl = rng.integers(0, 2**lsb, (h, n, d))
    v = rng.integers(-127, 128, (h, n, d))
    shift = draw(st.integers(0, 4))
    thr = draw(st.sampled_from([0.0, 0.05, 0.2, 0.5]))
    ratio = draw(st.sampled_from([1.0, 0.5, 0.3, 0.1]))
    return q, km, kl, v, lsb, shift, thr, ratio


@settings(max_examples=50, deadline=None)
@given(layers_in())
def test_layer_equals_requests_equals_reference(case) -> None:
    q, km, kl, v, lsb, shift, thr, ratio = case
    kw = dict(lsb_bits=lsb, score_shift=shift, spec=SPEC, threshold=thr, value_ratio=ratio)
    lay = attention_layer_fixed(q, km, kl, v, **kw)
    for h in range(q.shape[0]):
        for i in range(q.shape[1]):
            r = attention_request_fixed(q[h, i], km[h], kl[h], v[h], **kw)
            out, refetch, kept, p = plain_request(q[h, i], km[h], kl[h], v[h], lsb, shift, thr, ratio, SPEC)
            assert r.output.tolist() == out and r.refetch == refetch
            assert r.kept.tolist() == kept and r.probs.tolist() == p
            assert lay.output[h, i].tolist() == out and bool(lay.refetch[h, i]) == refetch
            assert np.flatnonzero(lay.kept[h, i]).tolist() == kept and lay.probs[h, i].tolist() == p


def test_hand_checked_request() -> None:
    # Two keys, one query; no PQ (lsb 0). Scores 0 and 0 -> p = [2048, 2048]; value ratio 0.5 keeps one
    # (the tie goes to index 0): out = 2048 * v[0].
    q = np.array([1, 2])
    k = np.array([[0, 0], [0, 0]])
    v = np.array([[3, -1], [5, 7]])
    r = attention_request_fixed(q, k, None, v, lsb_bits=0, score_shift=0, spec=SPEC, threshold=0.05,
                                value_ratio=0.5)  # fmt: skip
    assert r.probs.tolist() == [2048, 2048] and r.kept.tolist() == [0] and not r.refetch
    assert r.output.tolist() == [6144, -2048]


def test_float_layer_is_plain_softmax_attention() -> None:
    rng = np.random.default_rng(1)
    q, k, v = rng.normal(size=(2, 3, 8)), rng.normal(size=(2, 5, 8)), rng.normal(size=(2, 5, 8))
    lay = attention_layer_float(q, k, v, k_est=None, threshold=0.05, value_ratio=1.0)
    s = np.einsum("hqd,hnd->hqn", q, k) / math.sqrt(8)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    assert np.allclose(lay.probs, p, rtol=1e-12, atol=1e-15)
    assert np.allclose(lay.output, np.einsum("hqn,hnd->hqd", p, v), rtol=1e-12, atol=1e-14)
    # Value ratio 0.4 of 5 keys keeps the 2 largest probabilities per row, unrenormalized.
    lay2 = attention_layer_float(q, k, v, k_est=None, threshold=0.05, value_ratio=0.4)
    top2 = np.argsort(-p, axis=-1, kind="stable")[..., :2]
    mask = np.zeros_like(p, dtype=bool)
    np.put_along_axis(mask, top2, True, axis=-1)
    assert np.array_equal(lay2.kept, mask)
    assert np.allclose(lay2.output, np.einsum("hqn,hnd->hqd", np.where(mask, p, 0), v))


def test_fixed_layer_close_to_float_layer() -> None:
    # The same integer codes through both paths: only the softmax arithmetic differs, so probabilities
    # agree within the softmax error bound and outputs within sum_j |dp_j| * max|v|.
    rng = np.random.default_rng(2)
    q = rng.integers(-40, 41, (3, 4, 8))
    k = rng.integers(-40, 41, (3, 30, 8))
    v = rng.integers(-127, 128, (3, 30, 8))
    spec = SoftmaxSpec(frac_bits=0, scale=1 / 32)
    fx = attention_layer_fixed(q, k, None, v, lsb_bits=0, score_shift=0, spec=spec, threshold=0.0,
                               value_ratio=1.0)  # fmt: skip
    # float path scales by 1/sqrt(8); rescale its scores to the spec's 1/32 by scaling q.
    fl = attention_layer_float(q * (math.sqrt(8) / 32), k * 1.0, v * 1.0, k_est=None, threshold=0.0,
                               value_ratio=1.0)  # fmt: skip
    per, total = error_bound(fl.probs, spec)
    dp = np.abs(fx.probs / 4096 - fl.probs)
    assert np.all(dp <= per)
    assert np.all(np.abs(fx.output / 4096 - fl.output) <= (dp.sum(-1) * 127)[..., None] + 1e-9)


def _tiny(mode="generation", layers=3, heads=4, d=16, prompt=40, gen=3, pruning=None, quant=None):
    pruning = pruning or PruningConfig(token_keep_schedule=(1.0, 0.6, 0.3)[:layers] + (0.3,) * (layers - 3),
                                       head_keep_schedule=(1.0, 1.0, 0.5)[:layers] + (0.5,) * (layers - 3),
                                       value_keep=0.5)  # fmt: skip
    quant = quant or QuantConfig(
        key_msb_bits=6, key_lsb_bits=4, value_bits=8, query_bits=12, refetch_threshold=0.1
    )
    shape = ModelShape("tiny", layers, heads, d, prompt, gen if mode == "generation" else 0, mode)
    return Workload(model=shape, pruning=pruning, quant=quant)


@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_generation_trace_schema_and_counts(mode: str, tmp_path) -> None:
    w = _tiny()
    r = run_attention(w, mode=mode, seed=5)
    tr = r.trace
    assert {c: str(t) for c, t in tr.dtypes.items()} == TRACE_COLUMNS
    assert list(tr.columns) == list(TRACE_COLUMNS)
    assert sorted(tr["step"].unique()) == [0, 1, 2]
    assert (tr["query"] == 0).all() and (tr["queries"] == 1).all()
    assert (tr["seq_len"] == 40 + tr["step"] + 1).all()
    # Exactly one row per (step, layer, live head).
    assert not tr.duplicated(["step", "layer", "head"]).any()
    for (t, li), b in tr.groupby(["step", "layer"]):
        n = 40 + t + 1
        assert len(b) == (4 if li < 2 else 2)
        # Hand-derived: layer 0 keeps everything (ratio 1.0); layers 1 and 2 reach floor(ratio * n) in
        # every step (the new token plus the previous step's survivors exceed it by at most one).
        expect = n if li == 0 else keep_count((1.0, 0.6, 0.3)[li], n)
        assert (b["keys_fetched"] == expect).all()
        assert (b["values_fetched"] == keep_count(0.5, int(b["keys_fetched"].iloc[0]))).all()
    assert (tr["key_bits"] == 6).all() and (tr["key_lsb_bits"] == 4).all()
    assert (tr["refetch_threshold"] == 0.1).all()
    # Token top-k markers: k of the next layer's fetch, on the previous layer's last row.
    # Hand-derived top-k events (a top-k runs when the candidates exceed k): step 0 before layers 1 (41 > 24)
    # and 2 (24 > 12); step 1 before layer 2 (12 survivors + the new token = 13 > 12; layer 1 has
    # 24 + 1 = 25 = floor(0.6 * 42): no top-k); step 2 before layer 1 (26 > 25) and maybe layer 2. Each is
    # marked on the last row of the block before it.
    rows = tr.reset_index(drop=True)
    last = rows.groupby(["step", "layer"]).tail(1)
    marks = {(int(r.step), int(r.layer)): int(r.token_topk) for r in last.itertuples()}
    # Before step 2's layer 2 the candidates are 13 unless layer 1 just pruned one of them: data-dependent.
    assert marks.pop((2, 1)) in (12, -1)
    assert marks == {(0, 0): 24, (0, 1): 12, (0, 2): -1, (1, 0): -1, (1, 1): 12, (1, 2): -1, (2, 0): 25,
                     (2, 2): -1}  # fmt: skip
    assert (rows.drop(index=last.index)["token_topk"] == -1).all()
    out = tmp_path / "t.csv"
    write_release_csv(tr, out)
    back, _ = read_release_csv(out)
    cols = [c for c in TRACE_COLUMNS if c != "value_topk"]
    pd.testing.assert_frame_equal(back[cols], tr[cols].reset_index(drop=True))


def test_summarization_trace() -> None:
    w = _tiny(mode="summarization", prompt=24)
    r = run_attention(w, mode="fixed", seed=1)
    tr = r.trace
    assert (tr["step"] == 0).all() and (tr["seq_len"] == 24).all()
    for _, b in tr.groupby("layer"):
        n_live = int(b["keys_fetched"].iloc[0])
        # One row per live head and live query: queries are the live tokens.
        assert len(b) == b["head"].nunique() * n_live
        assert (b.groupby("head")["query"].nunique() == n_live).all()
    assert [int(b["keys_fetched"].iloc[0]) for _, b in tr.groupby("layer")] == [24, 14, 7]


def test_deterministic_and_seeded() -> None:
    w = _tiny()
    a = run_attention(w, seed=3)
    b = run_attention(w, seed=3)
    c = run_attention(w, seed=4)
    pd.testing.assert_frame_equal(a.trace, b.trace)
    assert all(np.array_equal(a.outputs[i][1], b.outputs[i][1]) for i in a.outputs)
    assert not all(np.array_equal(a.outputs[i][1], c.outputs[i][1]) for i in a.outputs)


def test_fewer_steps_is_a_prefix() -> None:
    # Decisions of step t depend only on steps <= t, and the synthetic data is drawn for the whole
    # workload: a 2-step run is exactly the first two steps of a 3-step run.
    w = _tiny()
    a = run_attention(w, seed=6, steps=2).trace
    b = run_attention(w, seed=6, steps=3).trace
    pd.testing.assert_frame_equal(a, b[b["step"] < 2].reset_index(drop=True))


def test_no_pruning_float_run_is_plain_attention() -> None:
    # Given Q/K/V, pruning off and quantization off: every layer's output is softmax(QK^T/sqrt(D)) V.
    w = _tiny(mode="summarization", prompt=12, pruning=PruningConfig(enabled=False),
              quant=QuantConfig(enabled=False))  # fmt: skip
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(3, 4, 12, 16)) for _ in range(3))
    r = run_attention(w, mode="float", qkv=(q, k, v))
    for li in range(3):
        heads, out = r.outputs[li]
        assert heads.tolist() == [0, 1, 2, 3]
        s = np.einsum("hqd,hnd->hqn", q[li], k[li]) / 4.0
        p = np.exp(s - s.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        assert np.allclose(out, np.einsum("hqn,hnd->hqd", p, v[li]), rtol=1e-10, atol=1e-12)
    assert (r.trace["key_bits"] == -1).all() and not r.trace["refetch"].any()


def test_fixed_run_path_matches_single_requests() -> None:
    # The run's fast layer path (dot products over all stored tokens, live columns picked afterwards)
    # equals attention_request_fixed on the gathered codes, for random live head and token sets.
    q, k, v = synthetic_qkv(1, 4, 16, 50, seed=9, layer=0)
    qc = QuantConfig(key_msb_bits=6, key_lsb_bits=4, value_bits=8, query_bits=12, refetch_threshold=0.2)
    lq = _LayerQuant((q, k, v), qc, "fixed")
    spec = dataclasses.replace(softmax_spec(16), frac_bits=lq.score_frac)
    fk = pow2_frac(float(np.abs(k).max()), 10)
    from spatten.models.fixed import quantize

    k_msb, k_lsb = split(quantize(k, 10, 2.0**-fk), 10, 4)
    rng = np.random.default_rng(0)
    seen_refetch = set()
    for _ in range(6):
        heads = np.sort(rng.choice(4, rng.integers(1, 5), replace=False))
        tokens = np.sort(rng.choice(50, rng.integers(1, 51), replace=False))
        qrows = np.sort(rng.choice(50, 3, replace=False))
        res = lq.run(heads, tokens, qrows, spec, 0.3)
        for a, h in enumerate(heads):
            for i, qr in enumerate(qrows):
                one = attention_request_fixed(
                    lq.q[h, qr].astype(np.int64), k_msb[h][tokens], k_lsb[h][tokens],
                    lq.v[h][tokens].astype(np.int64), lsb_bits=4, score_shift=lq.shift, spec=spec,
                    threshold=0.2, value_ratio=0.3,
                )  # fmt: skip
                assert res.output[a, i].tolist() == one.output.tolist()
                assert res.probs[a, i].tolist() == one.probs.tolist()
                assert bool(res.refetch[a, i]) == one.refetch
                seen_refetch.add(one.refetch)
    assert seen_refetch == {True, False}  # both PQ branches were exercised


def test_summary_ratios() -> None:
    w = _tiny()
    r = run_attention(w, seed=2)
    per_layer, ov = summarize_trace(r.trace, r.heads, r.full_keys)
    tr = r.trace
    assert ov["keys_fetched"] == tr["keys_fetched"].sum()
    assert ov["values_fetched"] == tr["values_fetched"].sum()
    assert ov["refetch_rate"] == pytest.approx(tr["refetch"].mean())
    assert ov["head_keep"] == pytest.approx((4 + 4 + 2) / 12)
    assert r.full_keys == sum(4 * 3 * (40 + t + 1) for t in range(3))
    assert ov["key_reduction"] == pytest.approx(r.full_keys / tr["keys_fetched"].sum())
    assert per_layer["requests"].tolist() == [12, 12, 6]
    # Default full_keys (from the trace itself) agrees for generation traces.
    assert summarize_trace(r.trace, r.heads)[1]["key_reduction"] == pytest.approx(ov["key_reduction"])


def test_default_gpt2_medium_shrunk() -> None:
    w = workload_preset("gpt2-medium", prompt_len=64)
    r = run_attention(w, layers=4, steps=2)
    assert len(r.trace) == 2 * 4 * 16
    assert (r.trace["key_bits"] == 8).all() and (r.trace["value_bits"] == 8).all()


def test_bad_input_names_argument() -> None:
    w = _tiny()
    with pytest.raises(ValueError, match="mode"):
        run_attention(w, mode="double")
    with pytest.raises(ValueError, match="layers"):
        run_attention(w, layers=0)
    with pytest.raises(ValueError, match="steps"):
        run_attention(w, steps=4)
    with pytest.raises(ValueError, match="seed"):
        run_attention(w, seed=-1)
    bad = np.zeros((3, 4, 43, 16))
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="qkv Q"):
        run_attention(w, qkv=(bad, bad, bad))
    with pytest.raises(ValueError, match="qkv K"):
        run_attention(w, qkv=(np.zeros((3, 4, 43, 16)), np.zeros((3, 4, 10, 16)), np.zeros((3, 4, 43, 16))))
    q, k, v = np.zeros(4, np.int64), np.zeros((3, 4), np.int64), np.zeros((3, 4), np.int64)
    kw = dict(lsb_bits=0, score_shift=0, spec=SPEC, threshold=0.1)
    with pytest.raises(ValueError, match="value_ratio"):
        attention_request_fixed(q, k, None, v, value_ratio=0.0, **kw)
    with pytest.raises(ValueError, match="v has codes outside the 4-bit"):
        attention_request_fixed(q, k, None, np.full((3, 4), 8), value_ratio=1.0, v_bits=4, **kw)
    with pytest.raises(ValueError, match="q_bits"):
        attention_request_fixed(q, k, None, v, value_ratio=1.0, q_bits=17, **kw)
    ok = attention_request_fixed(q, k, None, np.full((3, 4), 7), value_ratio=1.0, v_bits=4, q_bits=2,
                                 k_msb_bits=2, **kw)  # fmt: skip
    # Three equal scores: rcp = floor(2**31 / (3 * 2**15)) = 21845, p = round(2**15 * 21845 / 2**19) = 1365.
    assert ok.probs.tolist() == [1365] * 3 and ok.output.tolist() == [3 * 1365 * 7] * 4
    with pytest.raises(ValueError, match="v shape"):
        attention_request_fixed(q, k, None, np.zeros((2, 4), np.int64), value_ratio=1.0, **kw)
    with pytest.raises(ValueError, match="v"):
        attention_request_fixed(q, k, None, np.full((3, 4), np.nan), value_ratio=1.0, **kw)
    with pytest.raises(ValueError, match="k"):
        inf_k = np.full((1, 3, 4), np.inf)
        attention_layer_float(np.zeros((1, 1, 4)), inf_k, np.zeros((1, 3, 4)), k_est=None, threshold=0.1,
                              value_ratio=1.0)  # fmt: skip
    with pytest.raises(ValueError, match="hot_fraction"):
        synthetic_qkv(1, 1, 4, 10, hot_fraction=0.0)
    with pytest.raises(ValueError, match="n_tokens"):
        synthetic_qkv(1, 1, 4, 0)


def test_fixed_run_tracks_float_run() -> None:
    # Same synthetic data, pruning and PQ off: the bit-accurate outputs, dequantized, stay close to the
    # float64 outputs (16-bit Q, 12-bit K, 8-bit V, 12-bit probabilities).
    w = _tiny(mode="summarization", prompt=32, pruning=PruningConfig(enabled=False),
              quant=QuantConfig(key_msb_bits=12, key_lsb_bits=0, value_bits=8, query_bits=16,
                                progressive=False))  # fmt: skip
    fx = run_attention(w, mode="fixed", seed=8)
    fl = run_attention(w, mode="float", seed=8)
    q, k, v = synthetic_qkv(3, 4, 16, 32, seed=8)
    for li in range(3):
        fv = pow2_frac(float(np.abs(v[li]).max()), 8)
        got = fx.outputs[li][1] * 2.0 ** -(12 + fv)
        ref = fl.outputs[li][1]
        assert np.abs(got - ref).max() < 0.05
        assert np.abs(ref).max() > 0.3  # the comparison is not between two near-zero arrays


def test_synthetic_hot_tokens_raise_scores() -> None:
    q, k, v = synthetic_qkv(2, 4, 64, 400, seed=1)
    assert q.shape == k.shape == v.shape == (2, 4, 400, 64) and q.dtype == np.float32
    logits = np.einsum("lhqd,lhnd->lhqn", q, k) / 8.0
    # Token 0 is hot in every head: its mean logit sits the head's boost (3..12) above the average token.
    lift = logits[..., 0].mean(axis=-1) - logits.mean(axis=(-1, -2))
    assert (lift > 2.0).all() and (lift < 14.0).all()
    # Seeded and layer-separable: one layer alone equals the same layer of the full draw.
    q1, k1, v1 = synthetic_qkv(2, 4, 64, 400, seed=1, layer=1)
    assert np.array_equal(k1, k[1]) and np.array_equal(q1, q[1]) and np.array_equal(v1, v[1])
    assert not np.array_equal(synthetic_qkv(1, 4, 64, 400, seed=2)[1][0], k[0])
