"""SpAttenAttention (the golden model inside a forward pass) against run_attention on the same Q/K/V."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from spatten.models.attention import run_attention, synthetic_qkv
from spatten.models.config import ModelShape, Workload, replace_path, workload_preset
from spatten.models.inloop import SpAttenAttention
from spatten.models.trace import TRACE_COLUMNS


def _workload(mode: str) -> Workload:
    if mode == "generation":
        w = workload_preset("gpt2-small")
        shape = ModelShape("tiny-gen", 4, 4, 16, 40, 6, "generation")
        w = dataclasses.replace(w, model=shape)
        return replace_path(replace_path(w, "pruning.token_keep", 0.6), "pruning.head_keep", 0.75)
    w = workload_preset("bert-base")
    w = dataclasses.replace(w, model=ModelShape("tiny-sum", 4, 4, 16, 48, 0, "summarization"))
    return replace_path(replace_path(w, "pruning.token_keep", 0.6), "pruning.value_keep", 0.5)


def _loop(w: Workload, q, k, v, mode: str) -> tuple[SpAttenAttention, dict]:
    """Drive SpAttenAttention as a model would, with inputs that do not depend on earlier layers."""
    m = w.model
    gen = m.mode == "generation"
    n_tok = m.prompt_len + m.gen_tokens if gen else m.prompt_len
    attn = SpAttenAttention(w, n_tok, generation=gen, mode=mode)
    outs = {}
    for t in range(m.gen_tokens if gen else 1):
        n = m.prompt_len + t + 1 if gen else n_tok
        attn.begin_step(n)
        for li in range(m.layers):
            tokens = attn.begin_layer(li)
            qpos = np.array([n - 1]) if gen else tokens  # Q at position p is token p's query
            outs[li] = attn.attend(li, q[li][:, qpos], k[li][:, tokens], v[li][:, tokens], qpos)
    return attn, outs


@pytest.mark.parametrize("run_mode", ["summarization", "generation"])
@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_trace_and_decisions_equal_run_attention(run_mode: str, mode: str) -> None:
    w = _workload(run_mode)
    m = w.model
    n_tok = m.prompt_len + m.gen_tokens if run_mode == "generation" else m.prompt_len
    q, k, v = synthetic_qkv(m.layers, m.heads, m.head_dim, n_tok, seed=3)
    ref = run_attention(w, mode=mode, qkv=(q, k, v))
    attn, outs = _loop(w, q, k, v, mode)
    got = attn.trace()
    for c in TRACE_COLUMNS:
        assert (got[c].to_numpy() == ref.trace[c].to_numpy()).all(), c
    assert (got["kv_head"] == got["head"]).all()  # multi-head: every head is its own group
    assert (got["kv_values_fetched"] == got["values_fetched"]).all()
    # the outputs of the last step, in real units, from the same integer accumulators
    for li, (heads, o) in ref.outputs.items():
        live = np.zeros(m.heads, bool)
        live[heads] = True
        assert not outs[li][~live].any()
        if mode == "float":
            assert np.allclose(outs[li][heads], o, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("run_mode", ["summarization", "generation"])
@pytest.mark.parametrize("mode", ["fixed", "float"])
def test_grouped_query_heads_share_kv_and_record_the_union(run_mode: str, mode: str) -> None:
    w = _workload(run_mode)
    w = replace_path(w, "model.kv_heads", 2)
    m = w.model
    n_tok = m.prompt_len + m.gen_tokens if run_mode == "generation" else m.prompt_len
    q, k, v = synthetic_qkv(m.layers, m.heads, m.head_dim, n_tok, seed=5)
    # GQA inputs: K/V head j is what query heads 2j and 2j+1 read
    k2, v2 = k[:, ::2], v[:, ::2]
    attn, outs = _loop(w, q, k2, v2, mode)
    t = attn.trace()
    assert (t["kv_head"] == t["head"] // 2).all()
    mha = replace_path(w, "model.kv_heads", 0)  # the same run with each K/V head repeated per query head
    ref = run_attention(mha, mode=mode, qkv=(q, np.repeat(k2, 2, axis=1), np.repeat(v2, 2, axis=1)))
    for c in TRACE_COLUMNS:  # each query head decides on its own row, as with repeated K/V
        assert (t[c].to_numpy() == ref.trace[c].to_numpy()).all(), c
    if mode == "float":
        for li, (heads, o) in ref.outputs.items():
            assert np.allclose(outs[li][heads], o, rtol=1e-6, atol=1e-7)
    assert (t["kv_values_fetched"] >= t["values_fetched"]).all()
    assert (t["kv_values_fetched"] <= np.minimum(t["keys_fetched"], 2 * t["values_fetched"])).all()
    assert (t["kv_values_fetched"] > t["values_fetched"]).any()  # heads keep different rows


def test_attend_before_begin_layer_is_refused() -> None:
    w = _workload("summarization")
    attn = SpAttenAttention(w, 48, generation=False)
    attn.begin_step(48)
    x = np.zeros((4, 48, 16), np.float32)
    with pytest.raises(RuntimeError, match="begin_layer"):
        attn.attend(0, x, x, x, np.arange(48))


def test_bad_input_is_a_one_line_value_error() -> None:
    w = replace_path(_workload("generation"), "model.kv_heads", 2)
    attn = SpAttenAttention(w, 46, generation=True)
    attn.begin_step(10)
    q, kv = np.ones((4, 1, 16), np.float32), np.ones((2, 10, 16), np.float32)
    bad = [
        (np.ones((3, 1, 16)), kv, kv, [9], "do not match"),  # query heads
        (q, np.ones((4, 10, 16)), np.ones((4, 10, 16)), [9], "do not match"),  # K/V heads
        (q, kv[:, :9], kv[:, :9], [9], "do not match"),  # live tokens
        (q, kv, kv[..., :8], [9], "do not match"),
        (q, kv, kv, [8, 9], "qpos"),
        (q * np.nan, kv, kv, [9], "maxabs"),  # non-finite: pow2_frac's error, as run_attention's
    ]
    for qq, k, v, qpos, match in bad:
        attn.begin_layer(0)
        with pytest.raises(ValueError, match=match) as e:
            attn.attend(0, qq, k, v, np.array(qpos))
        assert "\n" not in str(e.value)
    attn.begin_layer(0)
    assert attn.attend(0, q, kv, kv, np.array([9])).shape == (4, 1, 16)
