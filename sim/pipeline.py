"""The request pipeline as a max-plus recurrence with bounded buffers, solved with cumulative maxima.

Stage ``j`` serves requests in trace order. With ``s`` the service times, ``C`` their running sum,
``ready[i]`` the time request ``i`` reaches the stage (upstream departure plus upstream latency) and
``blk[i]`` the time the downstream buffer (``buffer`` slots) frees a slot for it (the downstream stage
starts request ``i - buffer``), the departure times obey

    dep[i] = max(ready[i] + s[i], dep[i-1] + s[i], blk[i])
    =>  dep = C + cummax(max(ready + s - C, blk - C))

a single vectorized pass per stage. ``blk`` depends on the downstream stage, so the passes repeat until
the start times stop changing (they only grow). Back-pressure moves up one stage per pass, but a long
chain of blocked requests can need many passes; to bound the run time the passes stop after
``max_passes`` (default ``stages + 1``) and ``PipelineResult.converged`` says whether the fixed point was
reached. An unconverged result is a lower bound on the exact makespan (on the paper's benchmarks the
capped result is within a few percent of the converged one; see the README).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PipelineResult", "run_pipeline", "run_serial"]


@dataclass(frozen=True)
class PipelineResult:
    """Per-stage start and departure times (shape stages x requests) and the makespan in cycles."""

    start: np.ndarray
    finish: np.ndarray
    depart: np.ndarray
    makespan: float
    passes: int
    converged: bool = True


def _stage(ready: np.ndarray, s: np.ndarray, blk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.cumsum(s)
    x = np.maximum.accumulate(np.maximum(ready + s - c, blk - c))
    dep = x + c
    prev = np.empty_like(dep)
    prev[0] = -np.inf
    prev[1:] = dep[:-1]
    start = np.maximum(ready, prev)
    return start, dep


def run_pipeline(
    service: np.ndarray, latency: np.ndarray, buffer: int, max_passes: int | None = None
) -> PipelineResult:
    """Solve the pipeline for ``service`` (stages x requests, cycles) and per-stage ``latency``.

    Parameters
    ----------
    service : numpy.ndarray, shape (S, N)
        Cycles each stage is occupied by each request.
    latency : numpy.ndarray, shape (S,)
        Cycles from a stage finishing a request until the next stage may start it (fill latency).
    buffer : int
        Requests each inter-stage FIFO holds (>= 1).
    max_passes : int, optional
        Cap on the fixed-point passes (default: stages + 1).

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
    blk = np.full((n_st, n), -np.inf)
    start = np.zeros((n_st, n))
    dep = np.zeros((n_st, n))
    cap = n_st + 1 if max_passes is None else max_passes
    passes = 0
    converged = False
    for passes in range(1, cap + 1):  # noqa: B007 - passes is reported
        ready = np.zeros(n)
        for j in range(n_st):
            start[j], dep[j] = _stage(ready, service[j], blk[j])
            ready = dep[j] + latency[j]
        new_blk = np.full((n_st, n), -np.inf)
        if n > buffer:
            # a stage's latency is a delay line of pipeline registers in front of its output FIFO:
            # request i may enter the FIFO (at dep + latency) once the next stage started i - buffer
            new_blk[:-1, buffer:] = start[1:, :-buffer] - latency[:-1, None]
        if np.array_equal(new_blk, blk):
            converged = True
            break
        blk = new_blk
    finish = start + service
    makespan = float(dep[-1, -1] + latency[-1])
    return PipelineResult(start, finish, dep, makespan, passes, converged)


def run_serial(service: np.ndarray, latency: np.ndarray) -> PipelineResult:
    """No overlap at all: a request runs every stage, then the next request starts (MNNFast model)."""
    service = np.asarray(service, dtype=np.float64)
    latency = np.asarray(latency, dtype=np.float64)
    n_st, n = service.shape
    per_req = service.sum(axis=0) + latency.sum()
    end = np.cumsum(per_req)
    begin = end - per_req
    offs = np.cumsum(np.vstack([np.zeros((1, n)), service[:-1] + latency[:-1, None]]), axis=0)
    start = begin + offs
    finish = start + service
    return PipelineResult(start, finish, finish, float(end[-1]) if n else 0.0, 1)
