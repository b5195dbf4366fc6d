"""Progressive quantization (PQ) of attention rows: MSB-only keys first, LSBs only when the row is flat.

One row (one head, one query) in fixed point:

1. Scores from MSB keys: ``raw_j = sum_d q_d * msb_estimate(k_msb[j, d], lsb_bits)``; the missing LSBs are
   replaced by the middle of their range (:func:`models.fixed.msb_estimate`), so the estimate is on the
   full-precision scale. Exact integers (q_bits + k_bits + log2(D) bits).
2. Softmax input: ``s_j = saturate(shift_round(raw_j, score_shift), spec.in_bits)`` with
   ``spec.frac_bits`` fraction bits; probabilities ``p = softmax_fixed(s, spec)`` (``spec.out_bits`` bits).
3. Refetch decision: ``max_j p_j < threshold_code`` where ``threshold_code = round(threshold * 2**P)``
   (:func:`threshold_code`); a flat row means the quantization error matters.
4. On a refetch, the LSBs are fetched, ``k = reassemble(k_msb, k_lsb)`` and steps 1-2 are redone with the
   exact keys; the recomputed probabilities are the result.

With ``progressive = False`` (static quantization, BERT) or ``lsb_bits = 0`` the keys given are the full
keys and no refetch ever happens. :func:`pq_rows` is the same computation for Q queries sharing their keys,
batched over any leading axes (heads); :func:`pq_row` is the one-row form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spatten.models.config import check_float
from spatten.models.fixed import check_bits, msb_estimate, reassemble, shift_round
from spatten.models.softmax import DEFAULT_SPEC, SoftmaxSpec, _softmax_p

__all__ = ["PQResult", "pq_row", "pq_rows", "pq_decide", "threshold_code", "int_scores"]


@dataclass(frozen=True)
class PQResult:
    """Outcome of progressive quantization for one row or a batch of rows.

    Attributes
    ----------
    probs : numpy.ndarray of int64, shape (..., n)
        Final probability codes (``spec.out_bits`` bits): from the full keys where ``refetch``, else from
        the MSB keys.
    refetch : numpy.ndarray of bool, shape (...)
        Whether the row fetched the LSBs and recomputed (a 0-d array for :func:`pq_row`).
    msb_probs : numpy.ndarray of int64, shape (..., n)
        Probabilities from the MSB-only keys (the ones the decision looked at).
    scores : numpy.ndarray of int64, shape (..., n)
        The softmax inputs that produced ``probs``.
    """

    probs: np.ndarray
    refetch: np.ndarray
    msb_probs: np.ndarray
    scores: np.ndarray


def threshold_code(threshold: float, out_bits: int) -> int:
    """Integer compare constant of the refetch test: ``round(threshold * 2**out_bits)``."""
    check_float("threshold", threshold, 0.0, 1.0)
    check_bits("out_bits", out_bits)
    return int(np.rint(threshold * (1 << out_bits)))


def _as_int(name: str, x: npt.ArrayLike) -> np.ndarray:
    a = np.asarray(x)
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or inf")
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold integer codes")
    elif a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer codes, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def int_scores(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Exact integer dot products of queries (..., Q, D) with keys (..., n, D) -> (..., Q, n).

    Computed as a float64 einsum (BLAS) and converted back: exact while every partial sum stays
    below 2**53, which holds for 2..16-bit codes and head dimensions up to 2**20.
    """
    prod = np.einsum("...qd,...nd->...qn", q.astype(np.float64), k.astype(np.float64), optimize=True)
    return np.rint(prod).astype(np.int64)


def _softmax_in(raw: np.ndarray, score_shift: int, spec: SoftmaxSpec) -> np.ndarray:
    """``saturate(shift_round(raw, score_shift), spec.in_bits)`` on int64 ``raw``, in place on one new array
    (the decode loop calls it per layer and step: each ufunc call's overhead counts)."""
    out = shift_round(raw, score_shift)
    hi = (1 << (spec.in_bits - 1)) - 1
    np.minimum(out, hi, out=out)
    np.maximum(out, -hi - 1, out=out)
    return out


def pq_rows(
    q: npt.ArrayLike,
    k_msb: npt.ArrayLike,
    k_lsb: npt.ArrayLike | None,
    *,
    lsb_bits: int,
    score_shift: int,
    threshold: float,
    spec: SoftmaxSpec = DEFAULT_SPEC,
    progressive: bool = True,
) -> PQResult:
    """Progressive quantization of a batch of attention rows: Q queries against shared keys.

    Parameters
    ----------
    q : array_like of int, shape (..., Q, D)
        Query codes; each query is one row.
    k_msb : array_like of int, shape (..., n, D)
        Signed MSB parts of the keys (``fixed.split``), shared by the Q queries; with ``lsb_bits = 0`` or
        ``progressive = False`` the full key codes.
    k_lsb : array_like of int, shape (..., n, D), or None
        Unsigned LSB parts (0..2**lsb_bits - 1); only read on a refetch. None when ``lsb_bits = 0``.
    lsb_bits : int
        LSB width, 0..14.
    score_shift : int
        Right shift (rounding half up) from the raw dot product to the softmax input, 0..62.
    threshold : float
        Refetch when the row's maximum probability is below this, in [0, 1].
    spec : SoftmaxSpec
        Softmax widths.
    progressive : bool
        False: static quantization, never refetch.

    Returns
    -------
    PQResult
        Arrays of shape (..., Q, n) and, for ``refetch``, (..., Q).
    """
    check_bits("lsb_bits", lsb_bits, 0, 14)
    check_bits("score_shift", score_shift, 0, 62)
    threshold_code(threshold, spec.out_bits)
    qa = _as_int("q", q)
    km = _as_int("k_msb", k_msb)
    if qa.ndim < 2 or km.ndim != qa.ndim or qa.shape[-1] != km.shape[-1] or qa.shape[:-2] != km.shape[:-2]:
        raise ValueError(
            f"q shape {qa.shape} and k_msb shape {km.shape} do not match as (..., Q, D) / (..., n, D)"
        )
    k_est = msb_estimate(km, lsb_bits) if progressive else km
    if not progressive or lsb_bits == 0:
        msb_scores = _softmax_in(int_scores(qa, k_est), score_shift, spec)
        msb_probs = _softmax_p(msb_scores, spec)
        refetch = np.zeros(msb_probs.shape[:-1], dtype=bool)
        return PQResult(msb_probs, refetch, msb_probs, msb_scores)
    if k_lsb is None:
        raise ValueError("k_lsb is required when lsb_bits > 0 and progressive")
    kl = _as_int("k_lsb", k_lsb)
    if kl.shape != km.shape:
        raise ValueError(f"k_lsb shape {kl.shape} differs from k_msb shape {km.shape}")
    lead = qa.shape[:-2]
    qf, kmf, klf = (a.reshape((-1,) + a.shape[-2:]) for a in (qa, km, kl))

    def full_raw(rows: np.ndarray) -> np.ndarray:
        return int_scores(qf[rows], reassemble(kmf[rows], klf[rows], lsb_bits))

    r = pq_decide(int_scores(qf, k_est.reshape(kmf.shape)), full_raw, score_shift=score_shift,
                  threshold=threshold, spec=spec)  # fmt: skip
    shape = lead + r.probs.shape[-2:]
    return PQResult(r.probs.reshape(shape), r.refetch.reshape(shape[:-1]), r.msb_probs.reshape(shape),
                    r.scores.reshape(shape))  # fmt: skip


def pq_decide(
    msb_raw: np.ndarray,
    full_raw: Callable[[np.ndarray], np.ndarray] | None,
    *,
    score_shift: int,
    threshold: float,
    spec: SoftmaxSpec = DEFAULT_SPEC,
    mask: np.ndarray | None = None,
) -> PQResult:
    """Steps 2-4 from raw integer dot products: softmax, refetch decision, recompute where needed.

    Parameters
    ----------
    msb_raw : numpy.ndarray of int64, shape (B, Q, n)
        Dot products of B batches (heads) of Q queries with the MSB-estimate keys.
    full_raw : callable or None
        ``full_raw(rows)`` returns the (len(rows), Q, n) dot products with the reassembled full keys for
        the batch rows given; called once, only for batches where some query refetches. None: no PQ.
    score_shift, threshold, spec
        As in :func:`pq_rows`.
    mask : numpy.ndarray of bool, shape (Q, n), optional
        Keys each query sees (causal attention). Masked keys take no part: every row's probabilities and
        refetch decision equal those of the row cut to its unmasked keys, masked probabilities are 0, and a
        row with no key at all has probabilities 0 and never refetches.

    Returns
    -------
    PQResult
        Shapes (B, Q, n) and (B, Q).
    """
    thr = threshold_code(threshold, spec.out_bits)
    msb_scores = _softmax_in(msb_raw, score_shift, spec)
    # _softmax_in saturates to spec.in_bits, so the unchecked softmax core is safe here
    msb_probs = _softmax_p(msb_scores, spec, mask)
    if full_raw is None:
        return PQResult(msb_probs, np.zeros(msb_probs.shape[:-1], dtype=bool), msb_probs, msb_scores)
    refetch = msb_probs.max(axis=-1) < thr
    if mask is not None:
        refetch &= mask.any(axis=-1)
    if not refetch.any():
        return PQResult(msb_probs, refetch, msb_probs, msb_scores)
    # Dot products only for the batches (heads) where some query refetches, the softmax only for the
    # refetching rows (rows are independent); the rest keep their MSB result.
    rows = np.flatnonzero(refetch.any(axis=1))
    full = _softmax_in(full_raw(rows), score_shift, spec)
    r, qi = np.nonzero(refetch[rows])
    b = rows[r]
    scores, probs = msb_scores.copy(), msb_probs.copy()
    scores[b, qi] = full[r, qi]
    probs[b, qi] = _softmax_p(scores[b, qi], spec, None if mask is None else mask[qi])
    return PQResult(probs, refetch, msb_probs, scores)


def pq_row(
    q: npt.ArrayLike,
    k_msb: npt.ArrayLike,
    k_lsb: npt.ArrayLike | None,
    *,
    lsb_bits: int,
    score_shift: int,
    threshold: float,
    spec: SoftmaxSpec = DEFAULT_SPEC,
    progressive: bool = True,
) -> PQResult:
    """Progressive quantization of one row: ``q`` shape (D,), keys shape (n, D). See :func:`pq_rows`."""
    qa = np.asarray(q)
    if qa.ndim != 1:
        raise ValueError(f"q must be one-dimensional (D,), got shape {qa.shape}")
    km = np.asarray(k_msb)
    if km.ndim != 2:
        raise ValueError(f"k_msb must be two-dimensional (n, D), got shape {km.shape}")
    r = pq_rows(
        qa[None],
        km,
        k_lsb,
        lsb_bits=lsb_bits,
        score_shift=score_shift,
        threshold=threshold,
        spec=spec,
        progressive=progressive,
    )
    return PQResult(r.probs[0], np.asarray(r.refetch[0]), r.msb_probs[0], r.scores[0])
