"""spatten.models.qk against plain Python loops and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from spatten.models.qk import qk_cycles, qk_latency, qk_scores


def test_hand_case() -> None:
    assert qk_scores([1, -2, 3], [[1, 1, 1], [-4, 0, 2]], q_bits=4, k_bits=4).tolist() == [2, 2]


@pytest.mark.parametrize("seed", range(5))
def test_matches_python_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    q = rng.integers(-32767, 32768, 64)
    k = rng.integers(-2047, 2048, (33, 64))
    want = [sum(int(a) * int(b) for a, b in zip(q, row, strict=True)) for row in k]
    assert qk_scores(q, k).tolist() == want


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="keys"):
        qk_scores([1, 2], [[1, 2, 3]], 4, 4)
    with pytest.raises(ValueError, match="query"):
        qk_scores([100], [[1]], 4, 4)
    with pytest.raises(ValueError, match="k_bits"):
        qk_scores([1], [[1]], 4, 1)


def test_cycles() -> None:
    assert qk_latency(64) == 7 and qk_latency(1) == 1 and qk_latency(3) == 3
    assert qk_cycles(1024, 8, 64) == 128 + 7
    assert qk_cycles(7, 8, 16) == 1 + 5
