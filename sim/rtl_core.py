"""The attention core as built in ``rtl/`` as a service-time model for the simulator (baseline ``rtl``).

The RTL core (``rtl.attention_core.AttentionCore``) takes one request at a time and runs its stages one
after the other, so a request's time is its whole cycle count from :func:`models.attention_core.core_cycles`
and requests do not overlap. With ``L = 1 + ceil(log2 D)`` the Q.K latency, ``B = ceil(n / K_PAR)`` key
beats a pass, ``O = ceil(n / T)`` softmax output beats (``T = topk_lanes(K_PAR, P)``), the decision
comes at ``D = L + 3 + 2B + O`` and the top-k engine gets k at ``S = D`` (``2D + 2`` with a refetch); the
last output is at ``max(S + topk + 2, S + n - 1)`` (the value unit's register after the last kept
index, or the probability drain, one per cycle); the next request is accepted :data:`REQUEST_GAP`
cycles later. ``topk`` is the engine's exact cycle count (``models.topk.quickselect_trace``), here its
mean over random scores for the request's (n, k), since a trace has no scores.

The stage columns split that time without overlap: Q.K ``passes * B``, softmax the rest up to ``S``,
top-k ``topk``, prob.V the remainder plus the gap. The simulator solves them as one serial stage
behind the DRAM fetch (the fetch still runs ahead, as in the paper's pipeline).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["REQUEST_GAP", "TOPK_SAMPLES", "rtl_topk_cycles", "rtl_stage_service"]

REQUEST_GAP = 2
"""Cycles from a request's last output beat to the next request's ``req`` beat (the core returns to
IDLE, then accepts): ``spatten verify attention-core --requests N`` measures it between every pair."""
TOPK_SAMPLES = 16
"""Random score vectors per (n, k) for the top-k engine's mean cycle count."""


@functools.lru_cache(maxsize=65536)
def _topk_mean(n: int, k: int, p: int) -> float:
    from spatten.models.topk import quickselect_trace

    rng = np.random.default_rng(n * 1_000_003 + k)
    # 12-bit probability codes, as the engine sees them (ties included)
    total = sum(
        quickselect_trace(rng.integers(0, 1 << 12, n), k, p, int(rng.integers(0, 1 << 16))).cycles
        for _ in range(TOPK_SAMPLES)
    )
    return total / TOPK_SAMPLES


def rtl_topk_cycles(n: np.ndarray, k: np.ndarray, p: int) -> np.ndarray:
    """Mean cycles of the RTL top-k engine (search, final pass, output register) per (n, k) pair."""
    out = np.empty(len(n))
    for i, (a, b) in enumerate(zip(n.astype(int), k.astype(int), strict=True)):
        out[i] = _topk_mean(max(a, 1), min(max(b, 1), max(a, 1)), p)
    return out


def rtl_stage_service(
    n: np.ndarray,
    m: np.ndarray,
    refetch: np.ndarray,
    *,
    k_par: np.ndarray,
    head_dim: np.ndarray,
    topk_p: int,
) -> np.ndarray:
    """Cycles of one request of the RTL core, split into (Q.K, softmax, top-k, prob.V) rows.

    Parameters
    ----------
    n, m : numpy.ndarray
        Keys of the request and value rows kept (``m >= n``: no selection, the engine still runs with
        k = n).
    refetch : numpy.ndarray of bool
        Whether the request refetched its key LSBs.
    k_par : numpy.ndarray
        Keys per cycle through Q.K for the row's head size.
    head_dim : numpy.ndarray
        D of each row (the adder tree's depth).
    topk_p : int
        Comparators of the engine.

    Returns
    -------
    numpy.ndarray, shape (4, rows)
        Service cycles of the four compute stages; their sum is the request's whole time.
    """
    from spatten.models.attention_core import topk_lanes

    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    m = np.clip(np.asarray(m, dtype=np.float64), 1.0, n)
    kp = np.asarray(k_par, dtype=np.float64)
    lat = np.array([1 + math.ceil(math.log2(d)) if d > 1 else 1 for d in np.asarray(head_dim, int)], float)
    b = np.ceil(n / kp)
    lanes = np.array([topk_lanes(int(k), topk_p) for k in kp], dtype=np.float64)
    o = np.ceil(n / lanes)
    d = lat + 3 + 2 * b + o
    rf = np.asarray(refetch, dtype=bool)
    select = np.where(rf, 2 * d + 2, d)
    topk = rtl_topk_cycles(n, m, topk_p)
    end = np.maximum(select + topk + 2, select + n - 1)
    qk = np.where(rf, 2 * b, b)
    return np.vstack([qk, select - qk, topk, end - select - topk + REQUEST_GAP])
