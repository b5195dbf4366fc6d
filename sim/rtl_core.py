"""The attention core as built in ``rtl/`` as a service-time model for the simulator (baseline ``rtl``).

The RTL core (``rtl.attention_core.AttentionCore``) holds up to four requests: one request's Q.K pass
runs while earlier ones are in the softmax and the in-order back end (top-k, prob.V). Its cycles for a
stream of requests come from :func:`models.attention_core.stream_cycles`, the exact model the cosim
bench checks every stamp against, given each request's top-k engine cycles. A trace row stands for
``count`` identical requests: up to :data:`REPLICAS` of them go through the stream model in trace order,
and the rest repeat the row's last increment (the stream's steady state for that shape).

The engine's cycles are exact in the RTL (``models.topk.quickselect_trace``); here they are the mean for
the request's (n, k) over probabilities that look like attention's, since a trace has no scores: the
fixed-point softmax (D = 64 spec) of normal logits with standard deviation :data:`LOGIT_STD`, the final
pass emitting ``kept_lanes(V_PAR, P)`` indices a beat as the core's engine does. Uniform random 12-bit
codes instead overestimate the engine's cycles by 15-25% at n = 1,024 (the search ends sooner among the
many small, equal probabilities of a real softmax). Against real rows (MiniLM-L6 on the built-in text,
n = 262, every head; ``benchmarks/bench_topk_sampler.py``) the sampler's mean is within 6% at keep
0.1-0.5, and within 9% of the attention-core bench's random rows at n = 1,024. The value beats owed after
the last kept beat (``models.attention_core.value_tail``, 1 or 2 with the data) are taken as 1.

The simulator puts the core behind the DRAM fetch as one stage whose time per trace row is the cycles
the row adds to the stream's span (its last output against the previous row's), reported in the Q.K
column; the stream model assumes the keys are there when the core asks, so with the fetch behind it the
fetch's own time bounds it instead.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["REPLICAS", "TOPK_SAMPLES", "LOGIT_STD", "rtl_topk_cycles", "rtl_stage_service"]

REPLICAS = 4
"""Requests of a trace row run through the stream model; the rest repeat its last increment."""
TOPK_SAMPLES = 16
"""Random probability vectors per (n, k) for the top-k engine's mean cycle count."""
LOGIT_STD = 2.0
"""Standard deviation of the sampled attention logits (after the 1/sqrt(D) scaling)."""


@functools.lru_cache(maxsize=65536)
def _topk_mean(n: int, k: int, p: int, out_lanes: int) -> float:
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
        total += quickselect_trace(probs, k, p, int(rng.integers(0, 1 << 16)), out_lanes=out_lanes).cycles
    return total / TOPK_SAMPLES


def rtl_topk_cycles(n: np.ndarray, k: np.ndarray, p: int, out_lanes: np.ndarray | int = 1) -> np.ndarray:
    """Mean cycles of the RTL top-k engine (search, final pass with ``out_lanes`` indices a beat, output
    register) per (n, k) pair."""
    out = np.empty(len(n))
    ol = np.broadcast_to(np.asarray(out_lanes, dtype=np.int64), (len(n),))
    for i, (a, b) in enumerate(zip(n.astype(int), k.astype(int), strict=True)):
        out[i] = _topk_mean(max(a, 1), min(max(b, 1), max(a, 1)), p, int(ol[i]))
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
    count: np.ndarray | None = None,
) -> np.ndarray:
    """Cycles each trace row adds to the RTL core's busy span, as (Q.K, softmax, top-k, prob.V) rows.

    Parameters
    ----------
    n, m : numpy.ndarray
        Keys of the request and value rows kept (``m >= n``: no selection; the engine is bypassed when
        ``topk_lanes(K_PAR, P) == V_PAR``, else it runs with k = n).
    refetch : numpy.ndarray of bool
        Whether the request refetched its key LSBs.
    k_par, v_par : numpy.ndarray
        Keys per cycle through Q.K and value rows per cycle through prob.V for the row's head size (a
        K_PAR below 1, a head wider than the tree, takes ``1 / K_PAR`` cycles a key).
    head_dim : numpy.ndarray
        D of each row (the adder tree's depth).
    topk_p : int
        Comparators of the engine.
    count : numpy.ndarray, optional
        Identical requests each row stands for (default 1).

    Returns
    -------
    numpy.ndarray, shape (4, rows)
        The first row holds the cycles each trace row adds to the span (the first row's include the
        pipeline's fill); the other three are 0: the core overlaps its stages, so its time is one figure.
    """
    from spatten.models.attention_core import StreamRequest, bypasses, kept_lanes, stream_cycles, topk_lanes

    n = np.maximum(np.asarray(n, dtype=np.float64), 1.0)
    m = np.clip(np.asarray(m, dtype=np.float64), 1.0, n)
    rf = np.asarray(refetch, dtype=bool)
    kp = np.asarray(k_par, dtype=np.float64)
    vp = np.maximum(np.floor(np.asarray(v_par, dtype=np.float64)), 1.0)
    hd = np.asarray(head_dim, dtype=np.int64)
    rows = len(n)
    cnt = (
        np.ones(rows, dtype=np.int64) if count is None else np.maximum(np.asarray(count), 1).astype(np.int64)
    )
    lanes = np.array([topk_lanes(max(1, int(k)), topk_p) for k in kp], dtype=np.float64)
    skip = bypasses(m, n, lanes, vp)
    topk = np.zeros(rows)
    if (~skip).any():
        out_lanes = np.array([kept_lanes(int(v), topk_p) for v in vp[~skip]])
        topk[~skip] = rtl_topk_cycles(n[~skip], m[~skip], topk_p, out_lanes)
    out = np.zeros((4, rows))
    # runs of rows on the same core shape (K_PAR, V_PAR, D) go through one stream each, back to back
    start = 0
    while start < rows:
        end = start + 1
        while end < rows and (kp[end], vp[end], hd[end]) == (kp[start], vp[start], hd[start]):
            end += 1
        reps = np.minimum(cnt[start:end], REPLICAS)
        reqs = [StreamRequest(int(n[j]), int(m[j]), bool(rf[j]), float(topk[j]))
                for j in range(start, end) for _ in range(int(reps[j - start]))]  # fmt: skip
        kpar = float(kp[start]) if kp[start] < 1 else int(kp[start])
        st = stream_cycles(reqs, k_par=kpar, v_par=int(vp[start]), head_dim=int(hd[start]), topk_p=topk_p)
        ends = np.array([max(s["out"], s["prob_last"]) + 1 for s in st])  # the cycle after its last output
        last = np.cumsum(reps) - 1  # each row's last replica
        prev = np.concatenate([[0.0], ends[last[:-1]]])
        step = np.where(reps > 1, ends[last] - ends[np.maximum(last - 1, 0)], ends[last] - prev)
        out[0, start:end] = ends[last] - prev + (cnt[start:end] - reps) * step
        start = end
    return out
