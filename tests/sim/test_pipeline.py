"""The vectorized max-plus pipeline against a plain per-request loop, and hand-computed cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.sim.pipeline import run_pipeline


def _loop(service: np.ndarray, latency: np.ndarray, buffer: int) -> float:
    """Reference: blocking-after-service tandem line, fixed point by brute force over (stage, request)."""
    s_n, n = service.shape
    start = np.zeros((s_n, n))
    dep = np.zeros((s_n, n))
    for _ in range(4 * (s_n + 1) * (n + 1)):
        old = dep.copy()
        for i in range(n):
            for j in range(s_n):
                ready = 0.0 if j == 0 else dep[j - 1, i] + latency[j - 1]
                prev = dep[j, i - 1] if i > 0 else 0.0
                start[j, i] = max(ready, prev)
                # the output FIFO sits behind the stage's latency (a delay line)
                blk = start[j + 1, i - buffer] - latency[j] if (j + 1 < s_n and i - buffer >= 0) else -np.inf
                dep[j, i] = max(start[j, i] + service[j, i], blk)
        if np.array_equal(old, dep):
            break
    return float(dep[-1, -1] + latency[-1])


def test_single_stage_is_sum() -> None:
    s = np.array([[3.0, 5.0, 2.0]])
    assert run_pipeline(s, np.array([4.0]), 1).makespan == 3 + 5 + 2 + 4


def test_two_stage_hand_case() -> None:
    # stage 0 = 1 cycle each, stage 1 = 4 cycles each, no latency: 1 + 4 * 3 = 13
    s = np.array([[1.0, 1.0, 1.0], [4.0, 4.0, 4.0]])
    assert run_pipeline(s, np.zeros(2), 2).makespan == 13


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(1, 12),
    st.integers(1, 3),
    st.data(),
)
def test_matches_loop_reference(stages: int, n: int, buffer: int, data: st.DataObject) -> None:
    svc = np.array(
        data.draw(
            st.lists(st.lists(st.integers(0, 9), min_size=n, max_size=n), min_size=stages, max_size=stages)
        ),
        dtype=np.float64,
    )
    lat = np.array(data.draw(st.lists(st.integers(0, 5), min_size=stages, max_size=stages)), dtype=np.float64)
    ref = _loop(svc, lat, buffer)
    for chunk in (buffer, 3, 512):  # chunk boundaries must not change the fixed point
        pr = run_pipeline(svc, lat, buffer, max_passes=10_000, chunk=chunk)
        assert pr.converged
        assert pr.makespan == ref
