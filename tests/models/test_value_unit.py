"""spatten.models.value_unit against plain Python loops and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from spatten.models.value_unit import prob_v, value_cycles


def test_hand_case() -> None:
    assert prob_v([2, 3], [[1, -1], [4, 0]]).tolist() == [14, -2]
    assert prob_v(np.zeros(0, np.int64), np.zeros((0, 3), np.int64)).tolist() == [0, 0, 0]


@pytest.mark.parametrize("seed", range(4))
def test_matches_loops(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 4096, 50)
    v = rng.integers(-31, 32, (50, 16))
    want = [sum(int(p[i]) * int(v[i, e]) for i in range(50)) for e in range(16)]
    assert prob_v(p, v).tolist() == want


def test_bad_inputs_and_cycles() -> None:
    with pytest.raises(ValueError, match="probs"):
        prob_v([1, 2], [[1]])
    with pytest.raises(ValueError, match="probs"):
        prob_v([-1], [[1]])
    assert value_cycles(0, 4) == 1 and value_cycles(9, 4) == 3
