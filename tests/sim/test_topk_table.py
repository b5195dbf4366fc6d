"""The tabulated quick-select cost against fresh runs of models.topk.quickselect_trace."""

from __future__ import annotations

import numpy as np
import pytest
from spatten.models.topk import ROUND_OVERHEAD, quickselect_trace
from spatten.sim.topk_table import expected_cycles, expected_elements


@pytest.mark.parametrize("n,k", [(1024, 307), (993, 99), (300, 30), (2048, 128)])
def test_table_close_to_direct_mean(n: int, k: int) -> None:
    rng = np.random.default_rng(77)
    # the table's rule: one pivot position (P = 1 in quickselect_trace), costed at P = 16 comparators
    runs = [quickselect_trace(rng.integers(0, 4096, n), k, 1, s) for s in range(60)]
    mean_select = np.mean([sum(-(-m // 16) + ROUND_OVERHEAD for m in r.round_sizes) for r in runs])
    e, r = expected_elements(np.array([n]), np.array([k]))
    predicted = e[0] / 16 + r[0] * (ROUND_OVERHEAD + 15 / 32)
    assert abs(predicted - mean_select) / mean_select < 0.12  # a statistical model: mean of random runs


def test_no_search_when_k_is_0_or_n() -> None:
    c = expected_cycles(np.array([64, 64]), np.array([0, 64]), 16)
    assert (c == np.ceil(64 / 16) + 1).all()
