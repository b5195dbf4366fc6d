"""The request pipeline as a max-plus recurrence with bounded buffers, solved with cumulative maxima.

Stage ``j`` serves requests in trace order. With ``s`` the service times, ``C`` their running sum,
``ready[i]`` the time request ``i`` reaches the stage (upstream departure plus upstream latency) and
``blk[i]`` the time the downstream buffer (``buffer`` slots) frees a slot for it (the downstream stage
starts request ``i - buffer``), the departure times obey

    dep[i] = max(ready[i] + s[i], dep[i-1] + s[i], blk[i])
    =>  dep = C + cummax(max(ready + s - C, blk - C))

a single vectorized pass per stage. ``blk`` depends on the downstream stage, so the passes repeat until
the start times stop changing (they only grow). Back-pressure moves up one stage per pass and a long
chain of blocked requests needs many passes, so requests are solved in chunks (Gauss-Seidel over
chunks: back-pressure reaches only ``buffer`` requests back, so earlier chunks are final), each chunk
iterating to its fixed point; ``PipelineResult.converged`` is False if some chunk hit ``max_passes``
(its result is then a lower bound on the exact makespan).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PipelineResult", "run_pipeline"]


@dataclass(frozen=True)
class PipelineResult:
    """Per-stage start and departure times (shape stages x requests) and the makespan in cycles."""

    start: np.ndarray
    finish: np.ndarray
    depart: np.ndarray
    makespan: float
    passes: int
    converged: bool = True


def _stage(ready: np.ndarray, s: np.ndarray, blk: np.ndarray, carry: float) -> tuple[np.ndarray, np.ndarray]:
    c = np.cumsum(s)
    x = np.maximum.accumulate(np.maximum(ready + s - c, blk - c))
    np.maximum(x, carry, out=x)  # the stage is busy until the previous chunk's last departure
    dep = x + c
    prev = np.empty_like(dep)
    prev[0] = carry
    prev[1:] = dep[:-1]
    start = np.maximum(ready, prev)
    return start, dep


def run_pipeline(
    service: np.ndarray,
    latency: np.ndarray,
    buffer: int,
    max_passes: int | None = None,
    chunk: int = 512,
) -> PipelineResult:
    """Solve the pipeline for ``service`` (stages x requests, cycles) and per-stage ``latency``.

    Requests are solved in chunks of ``chunk`` in trace order (Gauss-Seidel over chunks): a chunk's
    back-pressure terms reach at most ``buffer`` requests back, so earlier chunks are final when a chunk
    is solved, and each chunk iterates its own passes to the fixed point.

    Parameters
    ----------
    service : numpy.ndarray, shape (S, N)
        Cycles each stage is occupied by each request.
    latency : numpy.ndarray, shape (S,)
        Cycles from a stage finishing a request until the next stage may start it (fill latency).
    buffer : int
        Requests each inter-stage FIFO holds (>= 1).
    max_passes : int, optional
        Cap on the fixed-point passes per chunk (default 64).
    chunk : int
        Requests per chunk (>= buffer).

    Returns
    -------
    PipelineResult
    """
    service = np.asarray(service, dtype=np.float64)
    latency = np.asarray(latency, dtype=np.float64)
    if service.ndim != 2 or latency.shape != (service.shape[0],):
        raise ValueError("service must be (stages, requests) and latency (stages,)")
    if buffer < 1:
        raise ValueError(f"buffer = {buffer} is outside the allowed range >= 1")
    n_st, n = service.shape
    if n == 0:
        z = np.zeros((n_st, 0))
        return PipelineResult(z, z, z, 0.0, 0)
    cap = 64 if max_passes is None else max_passes
    chunk = max(int(chunk), buffer)
    start = np.zeros((n_st, n))
    dep = np.zeros((n_st, n))
    carry = np.full(n_st, -np.inf)
    converged = True
    most = 0
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        m = b - a
        blk = np.full((n_st, m), -np.inf)
        # back-pressure from requests of earlier chunks (already final)
        lo = max(a - buffer, 0)
        if a > 0:
            k = min(a - lo, m)  # entries i in [a, a + k) look back to i - buffer in [lo, lo + k)
            blk[:-1, :k] = start[1:, lo : lo + k] - latency[:-1, None]
        done = False
        for p in range(1, cap + 1):
            ready = np.zeros(m)
            for j in range(n_st):
                start[j, a:b], dep[j, a:b] = _stage(ready, service[j, a:b], blk[j], carry[j])
                ready = dep[j, a:b] + latency[j]
            new_blk = blk.copy()
            # a stage's latency is a delay line of pipeline registers in front of its output FIFO:
            # request i may enter the FIFO (at dep + latency) once the next stage started i - buffer
            first = max(a, buffer)
            if first < b:
                new_blk[:-1, first - a :] = start[1:, first - buffer : b - buffer] - latency[:-1, None]
            most = max(most, p)
            if np.array_equal(new_blk, blk):
                done = True
                break
            blk = new_blk
        converged &= done
        carry = dep[:, b - 1].copy()
    finish = start + service
    makespan = float(dep[-1, -1] + latency[-1])
    return PipelineResult(start, finish, dep, makespan, most, converged)
