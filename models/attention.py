"""Multi-layer SpAtten attention with cascade pruning, local value pruning and progressive quantization.

Two modes over the same algorithm (``models.pruning`` for the cascade, ``models.quant`` for PQ):

``fixed`` (bit-accurate, what the RTL computes)
    Per layer, Q, K and V are quantized with power-of-two scales (``2**-f`` with the largest ``f`` that keeps
    the layer's largest magnitude inside the code range: :func:`pow2_frac`), K with ``key_msb_bits +
    key_lsb_bits`` bits split into MSB and LSB parts (``models.fixed.split``). Each request (head, query)
    then runs :func:`attention_request_fixed`: PQ scores and softmax (``models.softmax.softmax_fixed``,
    :func:`softmax_spec` gives the widths), refetch decision, local value top-k, and the integer output
    ``out[d] = sum over kept j of p_j * v[j, d]`` (``P + value_bits + ceil(log2 n)`` bits, not renormalized:
    the pruned probabilities are simply dropped, as in the hardware). :func:`attention_layer_fixed` is the
    same computation vectorized over heads and queries; :func:`run_attention` uses the same core on the
    layer's stored codes (tests check it against :func:`attention_request_fixed` request by request).
    All products are exact: integer codes held in float64 stay below 2**53.
``float``
    Real Q, K and V in float64; the PQ decision looks at the softmax of the dequantized MSB-estimate keys;
    the probabilities used are that softmax when no refetch is needed and the softmax of the real keys
    after a refetch; outputs are ``sum over kept j of p_j * v_j``.

Synthetic Q/K/V (:func:`synthetic_qkv`), per layer from ``numpy.random.default_rng([seed, layer])`` (so a
run with fewer layers sees the same data in the layers it keeps): Q, K, V are standard Gaussian
``(heads, tokens, D)``. A few "hot" tokens per head (token 0 plus ``hot_fraction`` = 0.5% of the
positions) get ``hot_gain * u_h`` added to their key, where ``u_h`` is a random unit vector of the head,
and every query of head h gets ``c_h * u_h``, scaled so that hot tokens score ``b_h`` higher in the
logits, with ``b_h`` uniform in ``boost`` = (3, 12) per head. Importance is therefore not uniform, and
heads range from flat (small ``b_h``: these trigger PQ refetches, about 5% of GPT-2-Medium requests)
to peaked.

The trace (:func:`run_attention`) has one row per (step, layer, live head, query) with the columns of
``models.trace.TRACE_COLUMNS``; for generation steps 0..gen_tokens-1 with ``seq_len = prompt_len + step + 1``
and ``query = 0``; for summarization step 0 and ``query`` = the query token's position.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from spatten.models.config import Workload, check_float
from spatten.models.fixed import check_bits, msb_estimate, qmax, quantize, reassemble, split
from spatten.models.limits import GOLDEN_BYTES_PER_SCORE, check_memory
from spatten.models.pruning import CascadePruner, keep_count, topk_rows
from spatten.models.quant import pq_decide, pq_row
from spatten.models.softmax import SoftmaxSpec, softmax_float
from spatten.models.topk import topk_ref
from spatten.models.trace import TRACE_COLUMNS

__all__ = [
    "RequestResult",
    "LayerResult",
    "AttentionRun",
    "attention_request_fixed",
    "attention_layer_fixed",
    "attention_layer_float",
    "synthetic_qkv",
    "pow2_frac",
    "softmax_spec",
    "run_attention",
    "summarize_trace",
    "trace_frame",
    "SCORE_FRAC_BITS",
]

SCORE_FRAC_BITS = 6
"""Fraction bits of the softmax input in fixed mode: a 16-bit score covers raw dot products of +-512."""


@dataclass(frozen=True)
class RequestResult:
    """One (head, query) request in fixed point.

    Attributes
    ----------
    output : numpy.ndarray of int64, shape (D,)
        ``sum over kept j of probs[j] * v[j]`` (exact integers).
    refetch : bool
        Whether the key LSBs were fetched and the scores recomputed.
    kept : numpy.ndarray of int64
        Indices of the V rows fetched (ascending; ``models.topk.topk_ref`` of ``probs``).
    probs : numpy.ndarray of int64, shape (n,)
        Final probability codes.
    """

    output: np.ndarray
    refetch: bool
    kept: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class LayerResult:
    """A layer's requests, vectorized: leading axes (heads, queries)."""

    output: np.ndarray
    refetch: np.ndarray
    kept: np.ndarray
    probs: np.ndarray


def _check_ratio(name: str, r: float) -> float:
    check_float(name, r, 0.0, 1.0, lo_open=True)
    return float(r)


def attention_request_fixed(
    q: npt.ArrayLike,
    k_msb: npt.ArrayLike,
    k_lsb: npt.ArrayLike | None,
    v: npt.ArrayLike,
    *,
    lsb_bits: int,
    score_shift: int,
    spec: SoftmaxSpec,
    threshold: float,
    value_ratio: float,
    progressive: bool = True,
    q_bits: int | None = None,
    k_msb_bits: int | None = None,
    v_bits: int | None = None,
) -> RequestResult:
    """One attention request, bit-exact: PQ scores and softmax, value top-k, integer output.

    Integer widths (what the RTL ports carry): ``q`` ``q_bits`` signed, ``k_msb`` ``k_msb_bits`` signed,
    ``k_lsb`` ``lsb_bits`` unsigned, raw scores ``q_bits + k_msb_bits + lsb_bits + ceil(log2 D)`` signed,
    softmax input ``spec.in_bits`` signed (after ``score_shift`` and saturation), probabilities
    ``spec.out_bits`` unsigned, ``v`` ``v_bits`` signed, output ``spec.out_bits + v_bits + ceil(log2 n)``
    signed. ``q_bits``, ``k_msb_bits`` and ``v_bits`` are optional checks: when given, codes outside
    their signed range raise ``ValueError``.

    Parameters
    ----------
    q : array_like of int, shape (D,)
        Query codes.
    k_msb, k_lsb : array_like of int, shape (n, D)
        Key MSB parts (signed) and LSB parts (unsigned, ``lsb_bits`` wide; None when ``lsb_bits = 0``).
    v : array_like of int, shape (n, D)
        Value codes.
    lsb_bits : int
        Key LSB width, 0..14.
    score_shift : int
        Right shift (round half up) from the raw dot product to the ``spec.in_bits`` softmax input.
    spec : SoftmaxSpec
        Softmax widths; probabilities have ``spec.out_bits`` bits.
    threshold : float
        PQ refetch threshold on the maximum probability, [0, 1].
    value_ratio : float
        Local value keep ratio, (0, 1]: ``max(1, floor(value_ratio * n))`` V rows are fetched.
    progressive : bool
        False: static quantization (no refetch).
    q_bits, k_msb_bits, v_bits : int, optional
        Signed widths (2..16) the codes must fit.

    Returns
    -------
    RequestResult
    """
    _check_ratio("value_ratio", value_ratio)
    for name, codes, bits in (("q", q, q_bits), ("k_msb", k_msb, k_msb_bits), ("v", v, v_bits)):
        if bits is not None:
            check_bits(f"{name}_bits" if name != "k_msb" else "k_msb_bits", bits)
            c = _int_codes(name, codes)
            lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
            if c.min() < lo or c.max() > hi:
                raise ValueError(f"{name} has codes outside the {bits}-bit signed range {lo}..{hi}")
    va = _int_codes("v", v)
    km = np.asarray(k_msb)
    if va.ndim != 2 or va.shape != km.shape:
        raise ValueError(f"v shape {va.shape} must equal k_msb shape {km.shape} (n, D)")
    pq = pq_row(
        q,
        k_msb,
        k_lsb,
        lsb_bits=lsb_bits,
        score_shift=score_shift,
        threshold=threshold,
        spec=spec,
        progressive=progressive,
    )
    probs = pq.probs
    n = probs.shape[-1]
    kept = topk_ref(probs, keep_count(value_ratio, n))
    out = probs[kept] @ va[kept].astype(np.int64)
    return RequestResult(out.astype(np.int64), bool(pq.refetch), kept, probs)


def _int_codes(name: str, x: npt.ArrayLike) -> np.ndarray:
    """Validate integer codes; integer arrays are returned as they are (no copy)."""
    a = np.asarray(x)
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold finite integer codes")
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer codes, got dtype {a.dtype}")
    return a


def attention_layer_fixed(
    q: npt.ArrayLike,
    k_msb: npt.ArrayLike,
    k_lsb: npt.ArrayLike | None,
    v: npt.ArrayLike,
    *,
    lsb_bits: int,
    score_shift: int,
    spec: SoftmaxSpec,
    threshold: float,
    value_ratio: float,
    progressive: bool = True,
) -> LayerResult:
    """:func:`attention_request_fixed` for every (head, query) at once.

    Shapes: ``q`` (H, Q, D); ``k_msb``, ``k_lsb``, ``v`` (H, n, D). Returns outputs (H, Q, D), refetch
    (H, Q), kept mask (H, Q, n) and probabilities (H, Q, n); row (h, i) equals the single request on
    ``q[h, i]``, ``k_msb[h]``, ``k_lsb[h]``, ``v[h]``.
    """
    _check_ratio("value_ratio", value_ratio)
    qa = _int_codes("q", q)
    km = _int_codes("k_msb", k_msb)
    va = _int_codes("v", v)
    if qa.ndim != 3 or km.ndim != 3 or va.shape != km.shape or qa.shape[0] != km.shape[0]:
        raise ValueError(f"shapes q {qa.shape}, k_msb {km.shape}, v {va.shape} must be (H, Q, D), (H, n, D)")
    if qa.shape[2] != km.shape[2]:
        raise ValueError(f"q head dim {qa.shape[2]} differs from k_msb head dim {km.shape[2]}")
    if k_lsb is None and progressive and lsb_bits > 0:
        raise ValueError("k_lsb is required when lsb_bits > 0 and progressive")
    pq = progressive and lsb_bits > 0
    k_est = msb_estimate(km, lsb_bits) if pq else km
    k_full = reassemble(km, _int_codes("k_lsb", k_lsb), lsb_bits) if pq else None
    f64 = _f64
    return _layer_core_fixed(
        f64(qa), f64(k_est), None if k_full is None else f64(k_full), f64(va), None, None,
        score_shift=score_shift, spec=spec, threshold=threshold, value_ratio=value_ratio,
    )  # fmt: skip


def _f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _qk(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-head products (H, Q, D) x (H, N, D) -> (H, Q, N). einsum's BLAS path is several times faster
    than a batched matmul with a transposed operand here."""
    return np.einsum("hqd,hnd->hqn", q, k, optimize=True)


def _pv(p: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per-head products (H, Q, N) x (H, N, D) -> (H, Q, D)."""
    return np.einsum("hqn,hnd->hqd", p, v, optimize=True)


def _select(a: np.ndarray, heads: np.ndarray | None, cols: np.ndarray | None) -> np.ndarray:
    """``a[heads][..., cols]`` without copying when a selection is everything."""
    if heads is not None:
        a = a[heads]
    if cols is not None:
        a = a[..., cols]
    return a


def _layer_core_fixed(
    qf: np.ndarray,
    k_est: np.ndarray,
    k_full: np.ndarray | None,
    vf: np.ndarray,
    heads: np.ndarray | None,
    tokens: np.ndarray | None,
    *,
    score_shift: int,
    spec: SoftmaxSpec,
    threshold: float,
    value_ratio: float,
) -> LayerResult:
    """Integer attention of heads ``heads`` over tokens ``tokens`` (None: all) from float64 code matrices.

    ``qf`` (H, Q, D), ``k_est``/``k_full``/``vf`` (H, N, D) hold integer codes as float64: every product
    and sum below is an exact integer (< 2**53), so the float64 matrix products are bit-exact. Dot
    products are formed for all N stored tokens and the live columns picked afterwards, which is cheaper
    in numpy than gathering the live keys.
    """
    check_bits("score_shift", score_shift, 0, 62)
    msb_raw = _select(np.rint(_qk(qf, k_est)), heads, tokens).astype(np.int64)
    full_raw = None
    if k_full is not None:
        hsel = np.arange(qf.shape[0]) if heads is None else heads

        def full_raw(rows: np.ndarray) -> np.ndarray:
            h = hsel[rows]
            raw = np.rint(_qk(qf[h], k_full[h]))
            return _select(raw, None, tokens).astype(np.int64)

    pq = pq_decide(msb_raw, full_raw, score_shift=score_shift, threshold=threshold, spec=spec)
    return _finish_layer(pq.probs, pq.refetch, vf, heads, tokens, value_ratio)


def _finish_layer(
    probs: np.ndarray,
    refetch: np.ndarray,
    vf: np.ndarray,
    heads: np.ndarray | None,
    tokens: np.ndarray | None,
    value_ratio: float,
) -> LayerResult:
    """Local value top-k and ``out = sum over kept j of p_j v_j`` (exact for integer codes in float64)."""
    kept = topk_rows(probs, keep_count(value_ratio, probs.shape[-1]))
    pk = np.where(kept, probs, 0).astype(np.float64)
    if heads is None and tokens is None:
        out = _pv(pk, vf)
    else:
        # Scatter the live (head, token) block back over all stored heads and tokens and multiply with the
        # whole V: numpy does this faster than gathering the live V rows.
        full = np.zeros((vf.shape[0], pk.shape[1], vf.shape[1]))
        hsel = slice(None) if heads is None else heads
        if tokens is None:
            full[hsel] = pk
        else:
            sub = np.zeros(pk.shape[:2] + (vf.shape[1],))
            sub[..., tokens] = pk
            full[hsel] = sub
        out = _pv(full, vf)[hsel]
    if probs.dtype.kind != "f":
        # Exact: |p| < 2**16, |v| < 2**15, n < 2**20 keep every sum below 2**53.
        out = np.rint(out).astype(np.int64)
    return LayerResult(out, refetch, kept, probs)


def attention_layer_float(
    q: npt.ArrayLike,
    k: npt.ArrayLike,
    v: npt.ArrayLike,
    *,
    k_est: npt.ArrayLike | None,
    threshold: float,
    value_ratio: float,
) -> LayerResult:
    """Float attention of a layer with PQ decision and local value pruning.

    Parameters
    ----------
    q : (H, Q, D) float; k, v : (H, n, D) float
        Real queries, keys and values.
    k_est : (H, n, D) float or None
        Keys as seen from the MSBs alone (dequantized); None: no PQ (the real keys are used, no refetch).
    threshold : float
        Refetch when the row maximum of softmax(q . k_est / sqrt(D)) is below it.
    value_ratio : float
        Local value keep ratio.
    """
    _check_ratio("value_ratio", value_ratio)
    check_float("threshold", threshold, 0.0, 1.0)
    qa, ka, va = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    for name, a in (("q", qa), ("k", ka), ("v", va)):
        if a.ndim != 3 or a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be a finite non-empty (H, *, D) array, got shape {a.shape}")
    if ka.shape != va.shape or qa.shape[0] != ka.shape[0] or qa.shape[2] != ka.shape[2]:
        raise ValueError(f"shapes q {qa.shape}, k {ka.shape}, v {va.shape} do not match")
    ke = None
    if k_est is not None:
        ke = np.asarray(k_est, dtype=np.float64)
        if ke.shape != ka.shape or not np.all(np.isfinite(ke)):
            raise ValueError(f"k_est shape {ke.shape} must equal k shape {ka.shape} and be finite")
    return _layer_core_float(qa, ke, ka, va, None, None, threshold=threshold, value_ratio=value_ratio)


def _layer_core_float(
    qf: np.ndarray,
    k_est: np.ndarray | None,
    k: np.ndarray,
    vf: np.ndarray,
    heads: np.ndarray | None,
    tokens: np.ndarray | None,
    *,
    threshold: float,
    value_ratio: float,
) -> LayerResult:
    inv = 1.0 / math.sqrt(qf.shape[2])

    def probs_with(keys: np.ndarray) -> np.ndarray:
        return softmax_float(_select(_qk(qf, keys), heads, tokens) * inv)

    full = probs_with(k)
    if k_est is None:
        return _finish_layer(full, np.zeros(full.shape[:-1], dtype=bool), vf, heads, tokens, value_ratio)
    msb = probs_with(k_est)
    refetch = msb.max(axis=-1) < threshold
    probs = np.where(refetch[..., None], full, msb)
    return _finish_layer(probs, refetch, vf, heads, tokens, value_ratio)


def pow2_frac(maxabs: float, bits: int) -> int:
    """Fraction bits f of the power-of-two scale ``2**-f`` for values up to ``maxabs`` in ``bits`` bits.

    The largest f with ``maxabs * 2**f <= qmax(bits)`` (``bits - 1`` when ``maxabs`` is 0).
    """
    check_bits("bits", bits)
    if not math.isfinite(maxabs) or maxabs < 0:
        raise ValueError(f"maxabs = {maxabs} must be finite and >= 0")
    if maxabs == 0:
        return bits - 1
    return math.floor(math.log2(qmax(bits) / maxabs))


def softmax_spec(head_dim: int, score_frac_bits: int = SCORE_FRAC_BITS, out_bits: int = 12) -> SoftmaxSpec:
    """Softmax widths of the attention datapath: 16-bit scores, ``1/sqrt(head_dim)`` in the constant."""
    return SoftmaxSpec(frac_bits=score_frac_bits, out_bits=out_bits, scale=1.0 / math.sqrt(head_dim))


def synthetic_qkv(
    layers: int,
    heads: int,
    head_dim: int,
    n_tokens: int,
    seed: int = 0,
    *,
    q_positions: npt.ArrayLike | None = None,
    hot_fraction: float = 0.005,
    hot_gain: float = 8.0,
    boost: tuple[float, float] = (3.0, 12.0),
    layer: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded synthetic Q, K, V (float32) with a few hot tokens per head.

    Parameters
    ----------
    layers, heads, head_dim, n_tokens : int
        Shape; K and V are (layers, heads, n_tokens, head_dim).
    seed : int
        Seed; layer l draws from ``numpy.random.default_rng([seed, l])`` (K, V, hot set, boosts) and
        ``default_rng([seed, l, 1])`` (Q), so fewer layers do not change the data of the others
        (:func:`run_attention` draws for all generation steps and cuts, so fewer steps do not either).
    q_positions : array_like of int, optional
        Token positions that need a query (default: all); Q is (layers, heads, len(q_positions), head_dim).
    hot_fraction : float
        Hot tokens per head: token 0 plus ``max(1, round(hot_fraction * n_tokens))`` random positions.
    hot_gain : float
        Length of the hot direction ``u_h`` (a random unit vector per head) added to hot keys.
    boost : (float, float)
        Every query of head h gets ``c_h * u_h`` with ``c_h = b_h * sqrt(head_dim) / hot_gain``, ``b_h``
        uniform in ``boost``: hot tokens then score ``b_h`` higher in the logits (after 1/sqrt(D)). Heads
        with a small ``b_h`` are flat (PQ refetches); heads with a large one are peaked.
    layer : int, optional
        Return only this layer's (heads, *, head_dim) arrays.

    Returns
    -------
    (Q, K, V) : tuple of numpy.ndarray of float32
    """
    for name, val, hi in (("layers", layers, 1024), ("heads", heads, 1024), ("head_dim", head_dim, 1024)):
        if isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= hi:
            raise ValueError(f"{name} = {val!r} is outside the allowed range 1..{hi}")
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or not 1 <= n_tokens <= 1 << 20:
        raise ValueError(f"n_tokens = {n_tokens!r} is outside the allowed range 1..{1 << 20}")
    _check_ratio("hot_fraction", hot_fraction)
    check_float("hot_gain", hot_gain, 0.0, 1e3, lo_open=True)
    if len(boost) != 2 or not 0 <= boost[0] <= boost[1] <= 1e3:
        raise ValueError(f"boost = {boost!r} must be (lo, hi) with 0 <= lo <= hi <= 1000")
    pos = np.arange(n_tokens) if q_positions is None else np.asarray(q_positions, dtype=np.int64)
    if pos.ndim != 1 or pos.size == 0 or pos.min() < 0 or pos.max() >= n_tokens:
        raise ValueError(f"q_positions must be a non-empty list of positions in 0..{n_tokens - 1}")
    if layer is not None and not (isinstance(layer, int) and 0 <= layer < layers):
        raise ValueError(f"layer = {layer!r} is outside the allowed range 0..{layers - 1}")
    which = range(layers) if layer is None else [layer]
    out = [
        _synthetic_layer(heads, head_dim, n_tokens, seed, li, pos, hot_fraction, hot_gain, boost)
        for li in which
    ]
    if layer is not None:
        return out[0]
    return tuple(np.stack([o[i] for o in out]) for i in range(3))  # type: ignore[return-value]


def _synthetic_layer(
    heads: int,
    d: int,
    n: int,
    seed: int,
    layer: int,
    pos: np.ndarray,
    hot_fraction: float,
    hot_gain: float,
    boost: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, layer])
    k = rng.standard_normal((heads, n, d), dtype=np.float32)
    v = rng.standard_normal((heads, n, d), dtype=np.float32)
    u = rng.standard_normal((heads, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    n_hot = min(n, max(1, round(hot_fraction * n)))
    c = rng.uniform(boost[0], boost[1], heads) * math.sqrt(d) / hot_gain
    q = np.random.default_rng([int(seed) & 0xFFFFFFFF, layer, 1]).standard_normal(
        (heads, pos.size, d), dtype=np.float32
    )
    for h in range(heads):
        hot = np.unique(np.concatenate([[0], rng.choice(n, size=n_hot, replace=False)]))
        k[h, hot] += (hot_gain * u[h]).astype(np.float32)
        q[h] += (c[h] * u[h]).astype(np.float32)
    return q, k, v


@dataclass
class AttentionRun:
    """Result of :func:`run_attention`.

    Attributes
    ----------
    trace : pandas.DataFrame
        One row per (step, layer, live head, query), columns ``TRACE_COLUMNS``.
    outputs : dict
        Last step's attention outputs per layer: ``layer -> (heads, output)`` with output (h_live, Q, D)
        (int64 accumulators in fixed mode, float64 in float mode).
    mode : str
        "fixed" or "float".
    heads, layers : int
        Heads of the model (rows exist only for live heads) and layers run.
    full_keys : int
        Keys an unpruned run would fetch: sum over steps and layers of heads x queries x seq_len.
    """

    trace: object
    outputs: dict = field(default_factory=dict)
    mode: str = "fixed"
    heads: int = 0
    layers: int = 0
    full_keys: int = 0


def run_attention(
    workload: Workload,
    *,
    mode: str = "fixed",
    seed: int = 0,
    layers: int | None = None,
    steps: int | None = None,
    qkv: tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike] | None = None,
) -> AttentionRun:
    """Run SpAtten attention over all layers (and generation steps) and emit the request trace.

    Parameters
    ----------
    workload : Workload
        Model shape, pruning and quantization policy.
    mode : {"fixed", "float"}
        Bit-accurate fixed point or float64.
    seed : int
        Seed of the synthetic Q/K/V (ignored when ``qkv`` is given).
    layers : int, optional
        Run only the first ``layers`` layers (the schedules are those of the full model, truncated).
    steps : int, optional
        Generation steps to run (default ``gen_tokens``); ignored for summarization.
    qkv : (Q, K, V), optional
        Real inputs, each (layers, heads, tokens, head_dim) with tokens >= prompt_len + steps
        (generation) or == prompt_len (summarization). Q at position p is the query of token p.

    Returns
    -------
    AttentionRun
    """

    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a Workload, got {type(workload).__name__}")
    if mode not in ("fixed", "float"):
        raise ValueError(f"mode = {mode!r} must be 'fixed' or 'float'")
    m = workload.model
    if m.n_kv_heads != m.heads:
        raise ValueError(
            f"model.kv_heads = {m.kv_heads}: run_attention draws one K/V per query head; grouped-query "
            "runs go through models.inloop (spatten accuracy)"
        )
    n_layers = m.layers if layers is None else layers
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or not 1 <= n_layers <= m.layers:
        raise ValueError(f"layers = {layers!r} is outside the allowed range 1..{m.layers}")
    gen = m.mode == "generation"
    n_steps = (m.gen_tokens if steps is None else steps) if gen else 1
    if gen and (
        isinstance(n_steps, bool) or not isinstance(n_steps, int) or not 1 <= n_steps <= m.gen_tokens
    ):
        raise ValueError(f"steps = {steps!r} is outside the allowed range 1..{m.gen_tokens}")
    n_tok = m.prompt_len + n_steps if gen else m.prompt_len
    H, D = m.heads, m.head_dim
    qpos_all = np.arange(m.prompt_len, n_tok) if gen else np.arange(n_tok)
    # one layer's scores (heads x queries x keys) and every layer's Q/K/V with their quantized copies
    scores = H * (1 if gen else n_tok) * n_tok
    check_memory(
        f"the golden model on {n_layers} layer(s) x {H} heads x {n_tok:,} tokens",
        GOLDEN_BYTES_PER_SCORE * scores + 64 * n_layers * H * n_tok * D,
    )
    data = _inputs(qkv, n_layers, H, D, n_tok, qpos_all, seed, m.prompt_len + (m.gen_tokens if gen else 0))
    tok_sched = workload.pruning.token_schedule(m.layers)[:n_layers]
    head_sched = workload.pruning.head_schedule(m.layers)[:n_layers]
    v_ratio = workload.pruning.value_ratio
    qc = workload.quant
    pruner = CascadePruner(n_layers, H, n_tok, tok_sched, head_sched, generation=gen, integer=mode == "fixed",
                           min_keep=workload.pruning.token_min_keep)  # fmt: skip
    layer_q = [_LayerQuant(data(li), qc, mode) for li in range(n_layers)]
    spec = softmax_spec(D)

    cols: dict[str, list[np.ndarray]] = {c: [] for c in ("step", "layer", "head", "query", "seq_len", "keys",
                                                         "values", "refetch", "topk")}  # fmt: skip
    rows = 0
    last_row_of_block: list[int] = []
    outputs: dict = {}
    full_keys = 0
    for t in range(n_steps):
        n = m.prompt_len + t + 1 if gen else m.prompt_len
        pruner.begin_step(n)
        for li in range(n_layers):
            heads = pruner.layer_heads(li)
            tokens = pruner.layer_tokens(li)
            if pruner.last_token_topk >= 0 and last_row_of_block:
                cols["topk"].append(np.array([last_row_of_block[-1], pruner.last_token_topk]))
            qpos = np.array([n - 1]) if gen else tokens
            qrows = np.array([t]) if gen else tokens  # rows of the stored Q (positions qpos_all)
            full_keys += H * (1 if gen else n) * n
            res = layer_q[li].run(heads, tokens, qrows, spec, v_ratio)
            pruner.update(tokens, heads, res.probs, res.output)
            if t == n_steps - 1:
                outputs[li] = (heads, res.output)
            hq = len(heads) * len(qpos)
            n_live = len(tokens)
            cols["step"].append(np.full(hq, t))
            cols["layer"].append(np.full(hq, li))
            cols["head"].append(np.repeat(heads, len(qpos)))
            cols["query"].append(np.zeros(hq, np.int64) if gen else np.tile(qpos, len(heads)))
            cols["seq_len"].append(np.full(hq, n))
            cols["keys"].append(np.full(hq, n_live))
            cols["values"].append(np.full(hq, keep_count(v_ratio, n_live)))
            cols["refetch"].append(res.refetch.reshape(-1))
            rows += hq
            last_row_of_block.append(rows - 1)

    tok_pruning = any(r < 1.0 for r in tok_sched)
    trace = trace_frame(cols, qc, tok_pruning, D)
    return AttentionRun(trace, outputs, mode, H, n_layers, full_keys)


def trace_frame(cols: dict[str, list[np.ndarray]], qc, tok_pruning: bool, head_dim: int):
    """The request trace (``TRACE_COLUMNS``, plus ``GQA_COLUMNS`` when given) from per-block row pieces.

    ``cols`` holds lists of per-block arrays for step, layer, head, query, seq_len, keys, values, refetch
    (and optionally kv_head, kv_values) and ``topk``: (row, k) pairs of token top-k runs.
    """
    import pandas as pd

    cat = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items() if k != "topk"}
    rows = cat["step"].size
    token_topk = np.full(rows, -1, np.int64)
    for row, k in cols["topk"]:
        token_topk[row] = k
    quant_on = qc.enabled
    pq_on = quant_on and qc.progressive and qc.key_lsb_bits > 0
    values = cat["values"]
    trace = pd.DataFrame(
        {
            "step": cat["step"],
            "layer": cat["layer"],
            "head": cat["head"],
            "query": cat["query"],
            "queries": np.ones(rows, np.int64),
            "head_dim": np.full(rows, head_dim),
            "seq_len": cat["seq_len"],
            "keys_fetched": cat["keys"],
            "key_bits": np.full(rows, (qc.key_msb_bits if pq_on else qc.key_full_bits) if quant_on else -1),
            "key_lsb_bits": np.full(rows, qc.key_lsb_bits if pq_on else -1),
            "refetch": cat["refetch"].astype(bool),
            "refetch_threshold": np.full(rows, qc.refetch_threshold if pq_on else -1.0),
            "query_bits": np.full(rows, qc.query_bits if quant_on else -1),
            "values_fetched": values,
            "value_bits": np.full(rows, qc.value_bits if quant_on else -1),
            "accumulate_importance": np.full(rows, tok_pruning),
            "rescale_importance": np.zeros(rows, bool),
            "token_topk": token_topk,
            "value_topk": np.where(values < cat["keys"], values, -1),
        }
    ).astype(TRACE_COLUMNS)
    if "kv_head" in cat:
        trace["kv_head"] = cat["kv_head"].astype(np.int64)
        trace["kv_values_fetched"] = cat["kv_values"].astype(np.int64)
    return trace


def _inputs(qkv, n_layers: int, H: int, D: int, n_tok: int, qpos: np.ndarray, seed: int, n_full: int):
    """Per-layer accessor of float arrays (Q rows for positions ``qpos``, K, V), (heads, *, D).

    Synthetic data is drawn for the whole workload (``n_full`` tokens, every generated position) and then
    cut to the run, so a run with fewer steps sees exactly the data of the longer run's first steps.
    """
    if qkv is None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed = {seed!r} must be an integer >= 0")
        pos_full = np.arange(qpos[0], n_full) if n_full > n_tok else qpos

        def synth(li: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            q, k, v = synthetic_qkv(n_layers, H, D, n_full, seed, q_positions=pos_full, layer=li)
            return q[:, : qpos.size], k[:, :n_tok], v[:, :n_tok]

        return synth
    if len(qkv) != 3:
        raise ValueError("qkv must be a (Q, K, V) tuple")
    arrs = []
    for name, a in zip("QKV", qkv, strict=True):
        x = np.asarray(a)
        if x.ndim != 4 or x.shape[0] < n_layers or x.shape[1] != H or x.shape[3] != D:
            raise ValueError(f"qkv {name} shape {x.shape} must be (>= {n_layers} layers, {H}, tokens, {D})")
        if x.shape[2] < n_tok:
            raise ValueError(f"qkv {name} has {x.shape[2]} tokens, the run needs {n_tok}")
        if not np.all(np.isfinite(x)):
            raise ValueError(f"qkv {name} contains NaN or inf")
        arrs.append(x)
    q, k, v = arrs
    return lambda li: (q[li][:, qpos], k[li, :, :n_tok], v[li, :, :n_tok])


class _LayerQuant:
    """One layer's inputs, quantized once, held as float64 matrices for the layer cores.

    Fixed mode holds integer codes (power-of-two scales, :func:`pow2_frac`) as float64, which the exact
    float64 products of :func:`_layer_core_fixed` need; float mode holds the real values.
    """

    def __init__(self, qkv: tuple[np.ndarray, np.ndarray, np.ndarray], qc, mode: str) -> None:
        q, k, v = qkv
        self.mode = mode
        self.qc = qc
        self.pq = qc.enabled and qc.progressive and qc.key_lsb_bits > 0
        qb, kb, vb = (
            (qc.query_bits, qc.key_full_bits, qc.value_bits) if qc.enabled else (qc.unquantized_bits,) * 3
        )
        self.lsb = qc.key_lsb_bits if self.pq else 0
        fq = pow2_frac(float(np.abs(q).max()), qb)
        fk = pow2_frac(float(np.abs(k).max()), kb)
        fv = pow2_frac(float(np.abs(v).max()), vb)
        k_codes = quantize(k, kb, 2.0**-fk)
        msb = split(k_codes, kb, self.lsb)[0] if self.pq else None
        self.v_scale = 2.0**-fv  # real value of one V code: fixed outputs are p codes x V codes
        if mode == "fixed":
            self.q = _f64(quantize(q, qb, 2.0**-fq))
            self.k_est = _f64(msb_estimate(msb, self.lsb)) if self.pq else _f64(k_codes)
            self.k_full = _f64(k_codes) if self.pq else None
            self.v = _f64(quantize(v, vb, 2.0**-fv))
            frac = fq + fk
            self.score_frac = max(0, min(SCORE_FRAC_BITS, frac))
            self.shift = max(0, frac - self.score_frac)
        else:
            self.q, self.k_full, self.v = (_f64(x) for x in (q, k, v))
            self.k_est = msb_estimate(msb, self.lsb) * 2.0**-fk if self.pq else None

    def run(self, heads, tokens, qrows, spec: SoftmaxSpec, v_ratio: float) -> LayerResult:
        qf = self.q[:, qrows]
        thr = self.qc.refetch_threshold
        if self.mode == "float":
            return _layer_core_float(qf, self.k_est, self.k_full, self.v, heads, tokens, threshold=thr,
                                     value_ratio=v_ratio)  # fmt: skip
        if self.score_frac != spec.frac_bits:
            spec = dataclasses.replace(spec, frac_bits=self.score_frac)
        return _layer_core_fixed(qf, self.k_est, self.k_full, self.v, heads, tokens, score_shift=self.shift,
                                 spec=spec, threshold=thr, value_ratio=v_ratio)  # fmt: skip


def summarize_trace(trace, heads: int, full_keys: int | None = None):
    """Per-layer and overall summary of a trace.

    Parameters
    ----------
    trace : pandas.DataFrame
        A trace (``TRACE_COLUMNS``).
    heads : int
        Heads of the model (pruned heads have no rows).
    full_keys : int, optional
        Keys an unpruned run would fetch (heads x queries x seq_len summed); default: every
        (step, layer) block's ``heads * queries * seq_len`` with the block's largest query count.

    Returns
    -------
    (per_layer, overall) : (pandas.DataFrame, dict)
        ``per_layer`` columns: layer, requests, keys_fetched, values_fetched, refetch_rate, live_heads (mean
        over steps). ``overall``: requests, keys_fetched, values_fetched, refetch_rate, token_keep (keys over
        seq_len within live heads), head_keep (live (step, layer, head) over all), value_keep (values over
        keys), key_reduction (``full_keys`` / keys fetched), value_reduction (``full_keys`` / values).
    """
    import pandas as pd

    if isinstance(heads, bool) or not isinstance(heads, int | np.integer) or heads < 1:
        raise ValueError(f"heads = {heads!r} must be an integer >= 1")
    missing = [c for c in TRACE_COLUMNS if c not in trace.columns]
    if missing:
        raise ValueError(f"trace is missing column(s) {', '.join(missing)}")
    if len(trace) == 0:
        raise ValueError("trace is empty")
    tr = trace
    w = tr["queries"]
    per_layer = (
        tr.assign(kq=tr["keys_fetched"] * w, vq=tr["values_fetched"] * w, rq=tr["refetch"] * w)
        .groupby("layer")
        .agg(
            requests=("queries", "sum"),
            keys_fetched=("kq", "sum"),
            values_fetched=("vq", "sum"),
            refetches=("rq", "sum"),
        )  # fmt: skip
        .reset_index()
    )
    per_layer["refetch_rate"] = per_layer["refetches"] / per_layer["requests"]
    blocks = tr.groupby(["step", "layer"])
    live_heads = blocks["head"].nunique()
    per_layer["live_heads"] = live_heads.groupby(level="layer").mean().reindex(per_layer["layer"]).to_numpy()
    per_layer = per_layer.drop(columns="refetches")
    if full_keys is None:
        qn = blocks.apply(lambda b: b.groupby("head")["queries"].sum().max(), include_groups=False)
        full_keys = int((qn * blocks["seq_len"].first() * heads).sum())
    keys = int((tr["keys_fetched"] * w).sum())
    vals = int((tr["values_fetched"] * w).sum())
    overall = {
        "requests": int(w.sum()),
        "keys_fetched": keys,
        "values_fetched": vals,
        "refetch_rate": float((tr["refetch"] * w).sum() / w.sum()),
        "token_keep": keys / float((tr["seq_len"] * w).sum()),
        "head_keep": float(live_heads.sum() / (heads * len(live_heads))),
        "value_keep": vals / keys if keys else 1.0,
        "key_reduction": full_keys / keys if keys else float("inf"),
        "value_reduction": full_keys / vals if vals else float("inf"),
    }
    return pd.DataFrame(per_layer), overall
