"""Golden twin of ``rtl.value_unit.ValueUnit``: integer prob.V accumulation over kept value rows."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = ["prob_v", "value_cycles"]


def prob_v(probs: npt.ArrayLike, values: npt.ArrayLike) -> np.ndarray:
    """Exact integer weighted sum ``sum_i probs[i] * values[i, :]``.

    Parameters
    ----------
    probs : array_like of int, shape (m,)
        Unsigned probability codes of the kept rows.
    values : array_like of int, shape (m, head_dim)
        Signed value codes of the kept rows.

    Returns
    -------
    numpy.ndarray of int64, shape (head_dim,)
        The accumulators before any output rounding.
    """
    p = np.asarray(probs)
    v = np.asarray(values)
    if p.ndim != 1 or v.ndim != 2 or v.shape[0] != p.shape[0] or v.shape[1] == 0:
        raise ValueError(f"probs shape {p.shape} and values shape {v.shape} must be (m,) and (m, head_dim)")
    if not (np.issubdtype(p.dtype, np.integer) and np.issubdtype(v.dtype, np.integer)):
        raise TypeError("probs and values must hold integers")
    if p.size and p.min() < 0:
        raise ValueError("probs must be >= 0")
    return p.astype(np.int64) @ v.astype(np.int64) if p.size else np.zeros(v.shape[1], np.int64)


def value_cycles(m: int, v_par: int) -> int:
    """Input beats for ``m`` kept rows at ``v_par`` rows per cycle (``ceil(m / v_par)``, at least 1)."""
    if m < 0 or v_par < 1:
        raise ValueError(f"m = {m} must be >= 0 and v_par = {v_par} >= 1")
    return max(1, math.ceil(m / v_par))
