"""models.attention_core: the stage-by-stage twin ends where models.attention.attention_request_fixed does."""

import numpy as np
import pytest
from spatten.models.attention import attention_request_fixed, softmax_spec
from spatten.models.attention_core import attention_core_ref, value_tail
from spatten.models.fixed import split
from spatten.models.pruning import keep_count


@pytest.mark.parametrize("n", [1, 7, 64, 257])
@pytest.mark.parametrize("threshold", [0.0, 0.05, 1.0])
@pytest.mark.parametrize("ratio", [1.0, 0.3, 0.2])
def test_twin_equals_golden(n: int, threshold: float, ratio: float) -> None:
    rng = np.random.default_rng(n)
    hd = 16
    spec = softmax_spec(hd)
    q = rng.integers(-127, 128, hd)
    msb, lsb = split(rng.integers(-2047, 2048, (n, hd)), 12, 4)
    v = rng.integers(-127, 128, (n, hd))
    want = attention_request_fixed(q, msb, lsb, v, lsb_bits=4, score_shift=6, spec=spec, threshold=threshold,
                                   value_ratio=ratio)  # fmt: skip
    got = attention_core_ref(q, msb, lsb, v, q_bits=8, k_msb_bits=8, lsb_bits=4, score_shift=6, spec=spec,
                             thr_code=round(threshold * 4096), k=keep_count(ratio, n))  # fmt: skip
    assert got.refetch == bool(want.refetch)
    assert got.refetch == (threshold == 1.0 or (threshold > 0 and got.max_prob < 205))
    assert got.probs.tolist() == want.probs.tolist()
    assert got.kept.tolist() == want.kept.tolist()
    assert got.output.tolist() == want.output.tolist()
    assert (got.full_scores is None) == (not got.refetch)


def test_value_tail_counts_the_value_beats_the_last_kept_beat_completes() -> None:
    # m = 9 kept rows, value beats of 8: a last kept beat of 2 rows leaves 7 before it (no value beat
    # complete), so both value beats wait for it; a last beat of 1 leaves 8 (the first beat done)
    assert value_tail(9, 2, 8) == 2
    assert value_tail(9, 1, 8) == 1
    assert value_tail(16, 8, 8) == 1
    assert value_tail(40, 2, 3) == 2  # 38 before it: 12 beats done of 14
    assert value_tail(39, 2, 3) == 1  # 37 before it: 12 done of 13
