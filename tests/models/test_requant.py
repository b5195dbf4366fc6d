"""spatten.models.requant: hand cases and agreement with the compare inside models.quant."""

from __future__ import annotations

import pytest
from spatten.models.requant import refetch_decision, threshold_code


def test_hand_cases() -> None:
    assert refetch_decision([1, 5, 3], 6) == (True, 5)
    assert refetch_decision([1, 6, 3], 6) == (False, 6)
    assert refetch_decision([0], 0) == (False, 0)
    assert threshold_code(0.05, 12) == round(0.05 * 4096)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="probs"):
        refetch_decision([], 1)
    with pytest.raises(ValueError, match="thr_code"):
        refetch_decision([1], -1)
