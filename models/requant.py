"""Golden twin of ``rtl.requant.RequantDecision``: the refetch test of ``models.quant`` on one row.

``models.quant.pq_decide`` refetches when ``max_j p_j < threshold_code(threshold, out_bits)``; this
module exposes exactly that comparison on integer probability codes so the RTL can be checked alone.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from spatten.models.quant import threshold_code

__all__ = ["refetch_decision", "threshold_code"]


def refetch_decision(probs: npt.ArrayLike, thr_code: int) -> tuple[bool, int]:
    """Return ``(refetch, max_prob)`` for one row of unsigned probability codes.

    Parameters
    ----------
    probs : array_like of int, shape (n,), n >= 1
        Probability codes (``models.softmax`` output).
    thr_code : int
        Integer threshold (``threshold_code(threshold, out_bits)``), >= 0.

    Returns
    -------
    (bool, int)
        Whether the LSBs must be fetched, and the row maximum.
    """
    p = np.asarray(probs)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"probs must be a non-empty 1-D array, got shape {p.shape}")
    if not np.issubdtype(p.dtype, np.integer) or p.min() < 0:
        raise ValueError("probs must hold integer codes >= 0")
    if isinstance(thr_code, bool) or not isinstance(thr_code, int | np.integer) or thr_code < 0:
        raise ValueError(f"thr_code = {thr_code!r} must be an integer >= 0")
    mx = int(p.max())
    return mx < int(thr_code), mx
