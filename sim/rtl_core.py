"""The attention core as built in ``rtl/`` as a service-time model for the simulator (baseline ``rtl``).

The RTL core (``rtl.attention_core.AttentionCore``) takes one request at a time and runs its stages one
after the other, so a request's time is its whole cycle count and requests do not overlap. The stamps
come from :func:`models.attention_core.request_timing`, the derivation ``core_cycles`` uses (decision,
the engine's k, the last kept index, the output, the last probability), given the top-k engine's
cycles; the next request is accepted :data:`REQUEST_GAP` cycles after the last output.

The engine's cycles are exact in the RTL (``models.topk.quickselect_trace``); here they are the mean for
the request's (n, k) over probabilities that look like attention's, since a trace has no scores: the
fixed-point softmax (D = 64 spec) of normal logits with standard deviation :data:`LOGIT_STD`. Uniform
random 12-bit codes instead overestimate the engine's cycles by 15-25% at n = 1,024 (the search ends
sooner among the many small, equal probabilities of a real softmax); with the softmax the mean is
within 1% of the RTL's at n = 1,024 and k = 20-30% (and 13-34% high at n = 64-257, where the counts are
small).

The stage columns split that time without overlap: Q.K ``passes * ceil(n / K_PAR)``, softmax the rest
up to the engine's k, top-k ``topk``, prob.V the remainder plus the gap. The simulator solves them as
one serial stage behind the DRAM fetch (the fetch still runs ahead, as in the paper's pipeline).
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["REQUEST_GAP", "TOPK_SAMPLES", "LOGIT_STD", "rtl_topk_cycles", "rtl_stage_service"]

REQUEST_GAP = 2
"""Cycles from a request's last output beat to the next request's ``req`` beat (the core returns to
IDLE, then accepts): ``spatten verify attention-core --requests N`` measures it between every pair."""
TOPK_SAMPLES = 16
"""Random probability vectors per (n, k) for the top-k engine's mean cycle count."""
LOGIT_STD = 2.0
"""Standard deviation of the sampled attention logits (after the 1/sqrt(D) scaling)."""


@functools.lru_cache(maxsize=65536)
def _topk_mean(n: int, k: int, p: int) -> float:
    from spatten.models.attention import softmax_spec
    from spatten.models.softmax import softmax_fixed
    from spatten.models.topk import quickselect_trace

    spec = softmax_spec(64)
    lo, hi = -(1 << (spec.in_bits - 1)), (1 << (spec.in_bits - 1)) - 1
    rng = np.random.default_rng(n * 1_000_003 + k)
    total = 0
    for _ in range(TOPK_SAMPLES):
        logits = rng.normal(0.0, LOGIT_STD, n)
        codes = np.clip(np.round(logits / spec.scale * (1 << spec.frac_bits)), lo, hi).astype(np.int64)
        probs = softmax_fixed(codes, spec)  # the engine's input: probability codes, ties included
        total += quickselect_trace(probs, k, p, int(rng.integers(0, 1 << 16))).cycles
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
    v_par: np.ndarray,
    head_dim: np.ndarray,
    topk_p: int,
) -> np.ndarray:
    """Cycles of one request of the RTL core, split into (Q.K, softmax, top-k, prob.V) rows.

    Parameters
    ----------
    n, m : numpy.ndarray
        Keys of the request and value rows kept (``m >= n``: no selection; the engine is bypassed when
        ``topk_lanes(K_PAR, P) == V_PAR``, else it runs with k = n).
    refetch : numpy.ndarray of bool
        Whether the request refetched its key LSBs.
    k_par, v_par : numpy.ndarray
        Keys per cycle through Q.K and value rows per cycle through prob.V for the row's head size.
    head_dim : numpy.ndarray
        D of each row (the adder tree's depth).
    topk_p : int
        Comparators of the engine.

    Returns
    -------
    numpy.ndarray, shape (4, rows)
        Service cycles of the four compute stages; their sum is the request's whole time.
    """
    from spatten.models.attention_core import bypasses, request_timing, topk_lanes

    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    m = np.clip(np.asarray(m, dtype=np.float64), 1.0, n)
    kp = np.asarray(k_par, dtype=np.float64)
    lanes = np.array([topk_lanes(max(1, int(k)), topk_p) for k in kp], dtype=np.float64)
    vp = np.maximum(np.floor(np.asarray(v_par, dtype=np.float64)), 1.0)
    skip = bypasses(m, n, lanes, vp)
    topk = np.zeros(len(n))
    if (~skip).any():
        topk[~skip] = rtl_topk_cycles(n[~skip], m[~skip], topk_p)
    t = request_timing(n, m, refetch, k_par=kp, v_par=vp, head_dim=head_dim, topk_p=topk_p, topk=topk)
    qk = np.where(np.asarray(refetch, dtype=bool), 2, 1) * np.ceil(n / kp)
    end = t.total
    return np.vstack([qk, t.select - qk, topk, end - t.select - topk + REQUEST_GAP])  # prob.V: the rest
