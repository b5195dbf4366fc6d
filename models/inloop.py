"""SpAtten inside a model's forward pass: the attention of every layer computed by the golden model.

:class:`SpAttenAttention` is what a real model (``models/real_qkv.py`` MiniLM, ``models/smollm2.py``) calls in
place of its own softmax attention. Per layer it

1. asks the cascade pruner (:class:`~spatten.models.pruning.CascadePruner`) which heads and tokens are
   still alive (:meth:`begin_layer`): the model then computes Q only for live tokens (an encoder drops pruned
   tokens' hidden states from every later layer) and reads only live tokens' K/V;
2. runs the layer through the same algorithm as :func:`~spatten.models.attention.run_attention`: per-layer
   power-of-two quantization of Q, K (MSB + LSB) and V, progressive quantization with the LSB refetch
   decision per (head, query), local value top-k, the integer output ``sum p_j v_j`` (``mode="fixed"``, the
   bit-accurate datapath) or the float64 equivalent (``mode="float"``);
3. turns the output back into real numbers for the next layer (fixed mode: ``code x 2**-P x`` the V scale;
   pruned heads give zeros), accumulates token and head importance, and records the request trace.

Grouped-query attention follows :mod:`spatten.models.gqa`: K/V heads are shared by their query heads (each
query head decides on its own row), and the trace carries ``kv_head`` and the union of kept values. The
fixed datapath multiplies each K/V head once with all its query heads' rows (exact integer products, so
the grouping cannot change a bit); the float datapath runs the same per-head BLAS products as
:func:`~spatten.models.attention.run_attention` (float sums depend on the call's shape).

Importance accumulates across layers and, for a decoder in generation mode, across steps (one step per
predicted token, the newest token never pruned). Setting ``workload.pruning.enabled = False`` and
``workload.quant.enabled = False`` still runs the fixed-point datapath at ``quant.unquantized_bits``;
the dense float32 reference of a model is its own attention, not this class.

Causal prefill (``causal=True``, ``generation=False``)
-----------------------------------------------------
A decoder runs a whole window (BOS + T tokens, n = T + 1) as one step with every query at once, pruning
inside the prompt as in SpAtten's GPT-2 summarization setting. The caller does ``begin_step(n)`` once, then
per layer ``live = begin_layer(layer)`` and ``attend(layer, q, k[:, live], v[:, live], np.arange(n))`` with
``q`` (heads, n, head_dim) for all n positions. Cascade token and head pruning are as for an encoder: a
pruned token stops being a key and value in later layers, but its query keeps running (every position
needs its prediction). Per layer:

- query i sees the live keys at positions <= i (its own key too, unless token i was pruned); a query that
  sees no key at all outputs zeros (BOS is normally live: ``pruning.token_min_keep`` >= 1 and importance);
- masked keys take no part in the softmax (probability exactly 0), the refetch decision of a row looks at
  its visible keys only (a row with none never refetches), and local value pruning keeps
  ``keep_count(value_keep, visible_i)`` values of row i;
- token importance adds, for each key, its probabilities over the queries that see it; head importance as
  before (sum of |output| over the queries);
- the trace has one row per (live head, query): ``query`` = the position, ``seq_len`` = n, ``keys_fetched``
  = the query's visible keys, ``values_fetched`` = its kept values, ``kv_values_fetched`` the union over the
  K/V head's live query heads and over the queries up to this one of their kept values: the last query's
  row holds the group's whole union, what the simulator's one K/V fetch of the (step, layer, K/V head)
  group must bring on chip (``sim/simulate.py`` takes the group's largest).

Every row is exactly the non-causal computation of that one query on its visible keys with the layer's
quantization scales (which come from all n queries and all live keys): the fixed datapath masks the full
score matrix (integer softmax over a masked row = softmax over the unmasked entries, bit for bit); the
float datapath runs one query at a time on its visible keys, since float sums over a longer, zero-padded
row or through a different BLAS call shape would not be the same bits.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from spatten.models.attention import SCORE_FRAC_BITS, LayerResult, pow2_frac, softmax_spec, trace_frame
from spatten.models.config import Workload
from spatten.models.fixed import check_bits, quantize_float
from spatten.models.gqa import group_size
from spatten.models.kv_policy import make_pruner
from spatten.models.pruning import CascadePruner, _topk_mask, keep_count, keep_counts
from spatten.models.quant import pq_decide
from spatten.models.softmax import SoftmaxSpec, _softmax_float

__all__ = ["SpAttenAttention"]


@dataclass(frozen=True)
class _Codes:
    """One layer's inputs as float64 matrices: integer codes (fixed mode) or real values (float mode).

    ``q`` is (heads, queries, D); the keys and ``v`` are (kv_heads, keys, D). Fixed mode: ``k_msb`` holds the
    keys' signed MSB parts (None without progressive quantization) and ``k_full`` the full key codes. Float
    mode: ``k_est`` holds the real keys seen from their MSBs (None without PQ) and ``k_full`` the real keys.
    """

    q: np.ndarray
    k_msb: np.ndarray | None
    k_est: np.ndarray | None
    k_full: np.ndarray
    v: np.ndarray
    lsb: int
    shift: int
    spec: SoftmaxSpec
    v_scale: float


def _maxabs(x: np.ndarray) -> float:
    """``float(np.abs(x).max())`` without the temporary (NaN if any NaN, inf if any inf)."""
    if x.dtype.kind != "f":
        return float(np.abs(x).max())
    hi, lo = float(x.max()), float(x.min())
    if math.isnan(hi) or math.isnan(lo):
        return math.nan
    return max(hi, -lo)


class SpAttenAttention:
    """SpAtten's attention for one model run (one text window), layer by layer and step by step.

    Parameters
    ----------
    workload : Workload
        Model shape (``layers``, ``heads``, ``kv_heads``, ``head_dim``), pruning and quantization policy.
    max_tokens : int
        Longest sequence the run will see.
    generation : bool
        Decoder generation mode: one query per step against the cache, the newest token never pruned.
    causal : bool
        Decoder prefill: one step over the whole window, a query for every position, each seeing the live
        keys at or before it (module docstring). Needs ``generation=False``.
    mode : {"fixed", "float"}
        Bit-accurate fixed point or float64.

    Attributes
    ----------
    last : LayerResult or None
        The last :meth:`attend`'s live-head results: integer output codes (fixed) or float64 outputs, refetch
        decisions, kept-value masks and probabilities, each (live heads, queries, ...).
    """

    def __init__(
        self,
        workload: Workload,
        max_tokens: int,
        *,
        generation: bool,
        causal: bool = False,
        mode: str = "fixed",
    ) -> None:
        if mode not in ("fixed", "float"):
            raise ValueError(f"mode = {mode!r} must be 'fixed' or 'float'")
        if causal and generation:
            raise ValueError("causal = True is the prefill of a whole window: it needs generation = False")
        m = workload.model
        self.workload = workload
        self.mode = mode
        self.generation = generation
        self.causal = causal
        self.heads, self.head_dim, self.layers = m.heads, m.head_dim, m.layers
        self.kv_heads = m.n_kv_heads
        self.group = group_size(m.heads, m.n_kv_heads)
        self.token_schedule = workload.pruning.token_schedule(m.layers)
        self.policy = workload.pruning.policy if workload.pruning.enabled else "spatten"
        if self.policy != "spatten":  # a KV-cache policy (models/kv_policy.py) chooses the tokens
            if not generation:
                raise ValueError(
                    f"pruning.policy = {self.policy} runs on decode steps only: use generation mode"
                )
            self.pruner = make_pruner(workload.pruning, m.layers, m.heads, max_tokens)
        else:
            self.pruner = CascadePruner(
                m.layers, m.heads, max_tokens, self.token_schedule, workload.pruning.head_schedule(m.layers),
                generation=generation, integer=mode == "fixed", min_keep=workload.pruning.token_min_keep,
            )  # fmt: skip
        self.spec = softmax_spec(m.head_dim)
        qc = workload.quant
        self._pq = qc.enabled and qc.progressive and qc.key_lsb_bits > 0
        self._lsb = qc.key_lsb_bits if self._pq else 0
        self._bits = (
            (qc.query_bits, qc.key_full_bits, qc.value_bits) if qc.enabled else (qc.unquantized_bits,) * 3
        )
        self._specs: dict[int, SoftmaxSpec] = {self.spec.frac_bits: self.spec}
        self.step = -1
        self.n = 0
        self.last: LayerResult | None = None
        self._heads: np.ndarray | None = None
        self._tokens: np.ndarray | None = None
        self._scratch: dict[str, np.ndarray] = {}
        self._blocks: list[tuple] = []  # one per attend call, expanded to trace rows by trace()
        self._topk: list[np.ndarray] = []
        self._rows = 0

    def begin_step(self, n_tokens: int) -> None:
        """Start a forward pass (encoder, or one decoder step) over ``n_tokens`` tokens."""
        self.pruner.begin_step(n_tokens)
        self.step += 1
        self.n = n_tokens

    def begin_layer(self, layer: int, q: np.ndarray | None = None, k: np.ndarray | None = None) -> np.ndarray:
        """Live heads and tokens of ``layer``, pruned first when the schedule says so; returns the tokens.

        ``q`` (heads, 1, D) and ``k`` (kv_heads, n, D), the layer's query and whole K cache: Quest chooses
        its pages from them (the other policies ignore them).
        """
        self._heads = self.pruner.layer_heads(layer)
        if self.policy == "spatten":
            self._tokens = self.pruner.layer_tokens(layer)
        else:
            self._tokens = self.pruner.layer_tokens(layer, q, k)
        if self.pruner.last_token_topk >= 0 and self._rows:
            self._topk.append(np.array([self._rows - 1, self.pruner.last_token_topk]))
        return self._tokens

    def attend(self, layer: int, q: np.ndarray, k: np.ndarray, v: np.ndarray, qpos: np.ndarray) -> np.ndarray:
        """SpAtten attention of one layer over the live tokens :meth:`begin_layer` returned.

        Parameters
        ----------
        layer : int
            The layer :meth:`begin_layer` was called for.
        q : numpy.ndarray, shape (heads, queries, head_dim)
            Queries (RoPE applied where the model has it), not scaled by ``1/sqrt(head_dim)``. Causal: a
            query for every one of the step's n positions, pruned tokens included.
        k, v : numpy.ndarray, shape (kv_heads, live tokens, head_dim)
            Keys and values of the live tokens, in the order of :meth:`begin_layer`'s positions.
        qpos : numpy.ndarray of int, shape (queries,)
            Position of each query (the trace's ``query`` column); causal: ``0 .. n-1``.

        Returns
        -------
        numpy.ndarray of float32, shape (heads, queries, head_dim)
            The attention output; zeros for pruned heads.
        """
        heads, tokens = self._heads, self._tokens
        if heads is None or tokens is None:
            raise RuntimeError("begin_layer must be called before attend")
        q, k, v, qpos = np.asarray(q), np.asarray(k), np.asarray(v), np.asarray(qpos)
        H, D = self.heads, self.head_dim
        if (
            q.ndim != 3 or k.ndim != 3 or k.shape[1] != tokens.size or v.shape != k.shape or q.shape[0] != H
            or k.shape[0] != self.kv_heads or q.shape[2] != D or k.shape[2] != D
        ):  # fmt: skip
            raise ValueError(
                f"q {q.shape}, k {k.shape}, v {v.shape} do not match {tokens.size} live tokens "
                f"({H} heads, {self.kv_heads} K/V heads, head_dim {D})"
            )
        if qpos.shape != (q.shape[1],):
            raise ValueError(f"qpos shape {qpos.shape} must be ({q.shape[1]},), one position per query")
        vis = None
        if self.causal:
            if q.shape[1] != self.n or not np.array_equal(qpos, np.arange(self.n)):
                raise ValueError(
                    f"causal attention needs a query for each of the step's {self.n} positions in order "
                    f"(q rows {q.shape[1]}, qpos 0..{self.n - 1})"
                )
            vis = np.searchsorted(tokens, qpos, side="right")  # live keys at positions <= the query's
        codes = self._codes(q, k, v)
        v_ratio = self.workload.pruning.value_ratio
        thr = self.workload.quant.refetch_threshold
        if self.mode == "fixed":
            res = _core_fixed(codes, heads, self.group, thr, v_ratio, vis)
        elif vis is None:
            res = _core_float(codes, heads, self.group, thr, v_ratio)
        else:
            res = _core_float_causal(codes, heads, self.group, thr, v_ratio, vis)
        self.pruner.update(tokens, heads, res.probs, res.output)
        self.last = res
        out = np.zeros((H, q.shape[1], D), dtype=np.float32)
        # fixed: output codes x 2**-P x the V scale, in real units for the next layer
        out[heads] = (
            res.output * (2.0**-codes.spec.out_bits * codes.v_scale) if self.mode == "fixed" else res.output
        )
        self._record(layer, heads, tokens.size if vis is None else vis, qpos, res.refetch, res.kept)
        self._heads = self._tokens = None
        return out

    def _codes(self, q: np.ndarray, k: np.ndarray, v: np.ndarray) -> _Codes:
        """Per-layer power-of-two quantization (``models.attention._LayerQuant``'s rules), K/V not repeated.

        Non-finite inputs raise pow2_frac's ValueError, as ``_LayerQuant`` does (the maxima come first). The
        scales come from each array's own maximum, so no code needs saturating (``quantize_float``).
        """
        qb, kb, vb = self._bits
        fq, fk, fv = pow2_frac(_maxabs(q), qb), pow2_frac(_maxabs(k), kb), pow2_frac(_maxabs(v), vb)
        lsb = self._lsb
        kc = msb = None
        if self.mode == "fixed" or self._pq:
            kc = quantize_float(k, kb, 2.0**-fk, clip=False, out=self._buffer("k", k.shape))
        if self._pq:  # the split's signed MSB part, kc >> lsb
            msb = np.multiply(kc, 2.0**-lsb, out=self._buffer("msb", k.shape))
            np.floor(msb, out=msb)
        spec = self.spec
        if self.mode == "float":
            qf, kf, vf = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
            # msb_estimate: the missing LSBs replaced by the middle of their range
            k_est = None if msb is None else (msb * 2.0**lsb + 2.0 ** (lsb - 1)) * 2.0**-fk
            return _Codes(qf, None, k_est, kf, vf, lsb, 0, spec, 2.0**-fv)
        frac = fq + fk
        score_frac = max(0, min(SCORE_FRAC_BITS, frac))
        shift = check_bits("score_shift", max(0, frac - score_frac), 0, 62)
        if score_frac not in self._specs:
            self._specs[score_frac] = dataclasses.replace(spec, frac_bits=score_frac)
        qc = quantize_float(q, qb, 2.0**-fq, clip=False, out=self._buffer("q", q.shape))
        vc = quantize_float(v, vb, 2.0**-fv, clip=False, out=self._buffer("v", v.shape))
        return _Codes(qc, msb, None, kc, vc, lsb, shift, self._specs[score_frac], 2.0**-fv)

    def _buffer(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A float64 scratch array of ``shape``, reused across calls (fresh large arrays cost page faults)."""
        size = math.prod(shape)
        buf = self._scratch.get(name)
        if buf is None or buf.size < size:
            buf = self._scratch[name] = np.empty(size)
        return buf[:size].reshape(shape)

    def _record(self, layer: int, heads: np.ndarray, keys, qpos: np.ndarray, refetch, kept) -> None:
        """Keep what the trace rows of this call need (``keys``: one count, or one per query when causal);
        :meth:`trace` expands it."""
        g = self.group
        if g == 1:
            any_kv, idx = kept, slice(None)
        else:  # union of kept V rows over the live query heads of each K/V head, per query (gqa.py rule 3)
            full = kept
            if heads.size != self.heads:
                full = np.zeros((self.heads,) + kept.shape[1:], dtype=bool)
                full[heads] = kept
            any_kv, idx = full.reshape((self.kv_heads, g) + kept.shape[1:]).any(axis=1), heads // g
        if self.causal:  # and over the queries so far: the group's one fetch serves all of them
            any_kv = np.logical_or.accumulate(any_kv, axis=1)
        union = any_kv.sum(axis=-1)[idx]
        ratio = self.workload.pruning.value_ratio
        values = keep_count(ratio, keys) if np.ndim(keys) == 0 else keep_counts(ratio, keys)
        self._blocks.append((self.step, layer, heads, qpos, self.n, keys, values, refetch, union))
        self._rows += heads.size * qpos.size

    def trace(self):
        """The run's request trace so far (``TRACE_COLUMNS`` plus ``kv_head`` and ``kv_values_fetched``)."""
        names = "step layer head query seq_len keys values refetch kv_head kv_values".split()
        cols: dict[str, list] = {c: [] for c in names}
        for step, layer, heads, qpos, n, keys, values, refetch, union in self._blocks:
            hq = heads.size * qpos.size
            cols["step"].append(np.full(hq, step))
            cols["layer"].append(np.full(hq, layer))
            cols["head"].append(np.repeat(heads, qpos.size))
            cols["query"].append(np.zeros(hq, np.int64) if self.generation else np.tile(qpos, heads.size))
            cols["seq_len"].append(np.full(hq, n))
            cols["keys"].append(_per_row(keys, heads.size, qpos.size))
            cols["values"].append(_per_row(values, heads.size, qpos.size))
            cols["refetch"].append(np.asarray(refetch).reshape(-1))
            cols["kv_head"].append(np.repeat(heads // self.group, qpos.size))
            cols["kv_values"].append(np.asarray(union).reshape(-1))
        cols["topk"] = list(self._topk)
        tok_pruning = any(r < 1.0 for r in self.token_schedule) if self.policy == "spatten" else True
        return trace_frame(cols, self.workload.quant, tok_pruning, self.head_dim)


def _per_row(x, heads: int, queries: int) -> np.ndarray:
    """Trace rows (head-major) of a count that is one number per block or one per query."""
    return np.full(heads * queries, x) if np.ndim(x) == 0 else np.tile(x, heads)


def _grouped(x: np.ndarray, kv_heads: int) -> np.ndarray:
    """(heads, Q, X) -> (kv_heads, group x Q, X): a K/V head's query heads are consecutive."""
    return x.reshape(kv_heads, -1, x.shape[-1])


def _core_fixed(
    codes: _Codes,
    heads: np.ndarray,
    group: int,
    threshold: float,
    v_ratio: float,
    vis: np.ndarray | None = None,
) -> LayerResult:
    """The fixed datapath of one layer on integer codes held in float64 (every product and sum is an exact
    integer below 2**53, so the grouped BLAS products equal run_attention's per-head ones).

    ``vis`` (causal; one count per query): query i sees the first ``vis[i]`` keys only. Its scores are
    still formed for every key, but the masked softmax, refetch test and per-row value top-k leave the
    others out, so the row is bit for bit the row computed on its visible keys alone.
    """
    H, Q, _ = codes.q.shape
    kvh = codes.v.shape[0]
    live = None if heads.size == H else heads
    qg = _grouped(codes.q, kvh)

    def raw(keys: np.ndarray, kv: np.ndarray | None = None) -> np.ndarray:
        """Dot products of every query head with ``keys`` (of K/V heads ``kv``, None: all)."""
        a = qg if kv is None else qg[kv]
        return np.matmul(a, keys.transpose(0, 2, 1)).astype(np.int64).reshape(-1, Q, keys.shape[1])

    full_raw = None
    if codes.k_msb is None:
        msb_raw = raw(codes.k_full)
    else:
        # q . msb_estimate(k) = 2**lsb (q . k_msb) + 2**(lsb-1) sum(q), as exact integers
        lsb = codes.lsb
        qsum = codes.q.sum(axis=-1, keepdims=True).astype(np.int64)
        msb_raw = (raw(codes.k_msb) << lsb) + (qsum << (lsb - 1))
        hsel = np.arange(H) if live is None else live

        def full_raw(rows: np.ndarray) -> np.ndarray:
            h = hsel[rows]
            kv = np.unique(h // group)  # the K/V heads whose LSBs are fetched
            per_kv = raw(codes.k_full[kv], kv).reshape(kv.size, group, Q, -1)
            return per_kv[np.searchsorted(kv, h // group), h % group]

    if live is not None:
        msb_raw = msb_raw[live]
    n = msb_raw.shape[-1]
    mask = None if vis is None else np.arange(n) < vis[:, None]
    pq = pq_decide(
        msb_raw, full_raw, score_shift=codes.shift, threshold=threshold, spec=codes.spec, mask=mask
    )
    probs = pq.probs
    # masked probabilities are 0 and come after every visible key in index order, so a row's first
    # keep_counts(vis) in top-k order are all visible
    k = keep_count(v_ratio, n) if vis is None else np.broadcast_to(keep_counts(v_ratio, vis), probs.shape[:2])
    kept = _topk_mask(probs, k)
    pk = np.where(kept, probs, 0).astype(np.float64)
    if live is not None:
        full = np.zeros((H,) + pk.shape[1:])
        full[live] = pk
        pk = full
    out = np.matmul(_grouped(pk, kvh), codes.v).reshape(H, Q, -1)
    if live is not None:
        out = out[live]
    # Exact: |p| < 2**16, |v| < 2**15, n < 2**20 keep every sum below 2**53.
    return LayerResult(out.astype(np.int64), pq.refetch, kept, probs)


def _core_float(
    codes: _Codes, heads: np.ndarray, group: int, threshold: float, v_ratio: float
) -> LayerResult:
    """The float datapath of one layer, with run_attention's float operations in the same shapes.

    Float sums depend on the operands' shapes and memory layout, so this runs exactly the BLAS calls that
    ``attention._layer_core_float`` makes through ``numpy.einsum(optimize=True)`` on repeated K/V (a K/V
    head is broadcast over its group instead of copied): for several queries ``(K Q^T)^T`` and
    ``(V^T P^T)^T`` per head, which leave transposed layouts that the softmax and importance sums then
    follow; for one query the matrix-vector products. The value product runs over all keys with zeros for
    pruned values.
    """
    H, Q, D = codes.q.shape
    kvh = codes.v.shape[0]
    inv = 1.0 / math.sqrt(D)
    q4 = codes.q.reshape(kvh, group, Q, D)

    def probs_with(keys: np.ndarray) -> np.ndarray:
        kb = keys[:, None]
        if Q == 1:
            s = np.matmul(q4, kb.transpose(0, 1, 3, 2))
        else:
            s = np.matmul(kb, q4.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
        return _softmax_float(s.reshape(H, Q, -1)[heads] * inv)

    full = probs_with(codes.k_full)
    if codes.k_est is None:
        refetch = np.zeros(full.shape[:-1], dtype=bool)
        probs = full
    else:
        msb = probs_with(codes.k_est)
        refetch = msb.max(axis=-1) < threshold
        probs = np.where(refetch[..., None], full, msb)
    kept = _topk_mask(probs, keep_count(v_ratio, probs.shape[-1]))
    pk = np.zeros((H, Q, probs.shape[-1]))
    pk[heads] = np.where(kept, probs, 0)
    p4, vb = pk.reshape(kvh, group, Q, -1), codes.v[:, None]
    if Q == 1:
        out = np.matmul(p4, vb)
    else:
        out = np.matmul(vb.transpose(0, 1, 3, 2), p4.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    return LayerResult(out.reshape(H, Q, D)[heads], refetch, kept, probs)


def _core_float_causal(
    codes: _Codes, heads: np.ndarray, group: int, threshold: float, v_ratio: float, vis: np.ndarray
) -> LayerResult:
    """The float datapath for causal queries: each query through :func:`_core_float` on its visible keys.

    Float sums depend on the row length and on the shapes of the BLAS calls, so a masked full-width row
    would not equal the row computed on its visible keys alone; one call per query does, bit for bit (a
    prefill's float datapath is a reference, not the hot path). Queries with no visible key give zeros.
    """
    h, (_, Q, D), n = heads.size, codes.q.shape, codes.v.shape[1]
    probs, kept = np.zeros((h, Q, n)), np.zeros((h, Q, n), dtype=bool)
    refetch, out = np.zeros((h, Q), dtype=bool), np.zeros((h, Q, D))
    for i in np.flatnonzero(vis):
        m = vis[i]
        est = None if codes.k_est is None else codes.k_est[:, :m]
        row = dataclasses.replace(codes, q=codes.q[:, i : i + 1], k_est=est, k_full=codes.k_full[:, :m],
                                  v=codes.v[:, :m])  # fmt: skip
        r = _core_float(row, heads, group, threshold, v_ratio)
        probs[:, i, :m], kept[:, i, :m] = r.probs[:, 0], r.kept[:, 0]
        refetch[:, i], out[:, i] = r.refetch[:, 0], r.output[:, 0]
    return LayerResult(out, refetch, kept, probs)
