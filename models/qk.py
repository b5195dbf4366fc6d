"""Golden twin of ``rtl.qk.QKUnit``: integer dot products of one query with key rows.

The RTL multiplies every query element with every key element of ``k_par`` keys per cycle and sums
the products in a pipelined adder tree. Integer addition is exact, so the twin is a plain integer dot
product; the cycle model states when the results leave the pipeline.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["qk_scores", "qk_latency", "qk_cycles"]


def _check_codes(name: str, x: npt.ArrayLike, bits: int, ndim: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != ndim or a.size == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D integer array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if a.min() < lo or a.max() > hi:
        raise ValueError(f"{name} holds values outside the signed {bits}-bit range {lo}..{hi}")
    return a.astype(np.int64)


def qk_scores(query: npt.ArrayLike, keys: npt.ArrayLike, q_bits: int = 16, k_bits: int = 12) -> np.ndarray:
    """Dot products of one query with each key row.

    Parameters
    ----------
    query : array_like of int, shape (head_dim,)
        Signed ``q_bits``-bit query codes.
    keys : array_like of int, shape (n, head_dim)
        Signed ``k_bits``-bit key codes (MSB-only codes or reassembled full codes).
    q_bits, k_bits : int
        Code widths, 2..32.

    Returns
    -------
    numpy.ndarray of int64, shape (n,)
        Exact integer scores.
    """
    for name, b in (("q_bits", q_bits), ("k_bits", k_bits)):
        if isinstance(b, bool) or not isinstance(b, int) or not 2 <= b <= 32:
            raise ValueError(f"{name} = {b!r} is outside the allowed range 2..32")
    q = _check_codes("query", query, q_bits, 1)
    k = _check_codes("keys", keys, k_bits, 2)
    if k.shape[1] != q.shape[0]:
        raise ValueError(f"keys has {k.shape[1]} columns but query has head_dim {q.shape[0]}")
    return k @ q


def qk_latency(head_dim: int) -> int:
    """Pipeline latency in cycles: one multiplier register plus one register per adder-tree level."""
    if head_dim < 1:
        raise ValueError(f"head_dim = {head_dim} must be >= 1")
    return 1 + math.ceil(math.log2(head_dim)) if head_dim > 1 else 1


def qk_cycles(n: int, k_par: int, head_dim: int) -> int:
    """Cycles from the first key beat accepted to the last score out, inputs always ready.

    ``ceil(n / k_par)`` input beats (no bubbles) plus the pipeline latency.
    """
    if n < 1 or k_par < 1:
        raise ValueError(f"n = {n} and k_par = {k_par} must be >= 1")
    return math.ceil(n / k_par) + qk_latency(head_dim)
