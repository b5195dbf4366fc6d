"""Grouped-query attention: the rules of models/gqa.py in the shape trace and the simulator, by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from spatten.models.config import ModelShape, replace_path, workload_preset
from spatten.models.gqa import expected_union, union_count, with_gqa_columns
from spatten.models.trace import TRACE_COLUMNS
from spatten.models.workload import shape_trace
from spatten.sim.api import simulate


def _rows(
    heads: list[int], kv: list[int], keys: int = 40, vals: list[int] | None = None, **kw
) -> pd.DataFrame:
    """One generation step of layer 0: a row per live query head, 6-bit K/V with 4 LSB bits, 16-bit Q."""
    n = len(heads)
    vals = vals or [10] * n
    data = {
        "step": 0, "layer": 0, "head": heads, "query": 0, "queries": 1, "head_dim": 64, "seq_len": 100,
        "keys_fetched": keys, "key_bits": 6, "key_lsb_bits": 4, "refetch": False, "refetch_threshold": 0.05,
        "query_bits": 16, "values_fetched": vals, "value_bits": 6, "accumulate_importance": True,
        "rescale_importance": False, "token_topk": -1, "value_topk": vals,
    }  # fmt: skip
    data.update(kw)
    t = pd.DataFrame({c: np.broadcast_to(np.asarray(data[c]), (n,)) for c in TRACE_COLUMNS})
    t["kv_head"] = kv
    return t.astype(TRACE_COLUMNS)


def test_expected_union_bounds_and_multi_head() -> None:
    assert list(expected_union([100, 100, 7], [20, 20, 7], [1, 3, 4])) == [20, 49, 7]  # 100(1-.8^3)=48.8
    u = expected_union(np.full(50, 64), np.arange(1, 51), 4)
    assert np.all(u >= np.arange(1, 51)) and np.all(u <= np.minimum(64, 4 * np.arange(1, 51)))
    assert union_count([[1, 0, 1, 0], [0, 0, 1, 1]]) == 3


def test_independent_choices_match_the_estimate_on_average() -> None:
    rng = np.random.default_rng(0)
    k, v, g = 200, 30, 3
    sizes = [union_count([rng.permutation(k) < v for _ in range(g)]) for _ in range(2000)]
    assert abs(np.mean(sizes) - expected_union(k, v, g)) < 1.0


def test_kv_bytes_are_charged_once_per_group() -> None:
    w = replace_path(workload_preset("gpt2-small"), "model.gen_tokens", 2)
    mha, gqa = simulate(w).summary, simulate(replace_path(w, "model.kv_heads", 4)).summary
    # every query head of a group sees the same live keys, so K MSB traffic falls by exactly g = 3
    assert gqa["dram_bytes_k_msb"] * 3 == mha["dram_bytes_k_msb"]
    assert gqa["dram_bytes_q"] == mha["dram_bytes_q"]  # queries stay per query head
    assert gqa["busy_qk"] == mha["busy_qk"]  # and so does the compute


def test_partly_pruned_group_still_fetches_its_kv() -> None:
    w = workload_preset("gpt2-small")
    # g = 3: heads 0, 1, 2 read K/V head 0; heads 3, 4 read K/V head 1 (head 5 pruned, group 1 partly)
    s = simulate(w, _rows([0, 1, 2, 3, 4], [0, 0, 0, 1, 1])).summary
    assert s["dram_bytes_k_msb"] == 2 * 40 * 64 * 6 / 8
    assert s["dram_bytes_v"] == 2 * 10 * 64 * 6 / 8
    assert s["dram_bytes_q"] == 5 * 64 * 16 / 8


def test_group_fetches_the_union_of_kept_values_and_one_lsb_refetch() -> None:
    w = workload_preset("gpt2-small")
    t = _rows([0, 1, 2], [0, 0, 0], vals=[10, 12, 9])
    t["kv_values_fetched"] = 25  # union of the three heads' kept rows
    t["refetch"] = [False, True, True]
    s = simulate(w, t).summary
    assert s["dram_bytes_v"] == 25 * 64 * 6 / 8
    assert s["dram_bytes_k_lsb"] == 40 * 64 * 4 / 8  # once for the group, though two heads refetch
    assert s["busy_pv"] == float(np.sum(np.ceil(np.array([10, 12, 9]) / 8)))  # each head its own rows


def test_bad_gqa_fields_are_refused() -> None:
    with pytest.raises(ValueError, match=r"model.kv_heads = 5 must divide model.heads = 12"):
        dataclasses.replace(ModelShape("m", 2, 12, 64, 16, 1), kv_heads=5)
    t = _rows([0, 1], [0, 0])
    t["kv_values_fetched"] = 5
    with pytest.raises(
        ValueError, match=r"row 0: kv_values_fetched = 5 is outside values_fetched..keys_fetched"
    ):
        with_gqa_columns(t)
    t = _rows([0, 1], [0, 2])
    with pytest.raises(ValueError, match=r"row 1: kv_head = 2 is outside 0..head"):
        with_gqa_columns(t)
    t = _rows([0, 1, 2, 3], [0, 1, 0, 1])  # interleaved groups would be charged a fetch per run of rows
    with pytest.raises(ValueError, match=r"row 2: kv_head = 0 is outside non-decreasing rows"):
        with_gqa_columns(t)
    t = _rows([0, 1], [0, 0])
    t["kv_head"] = [0.0, 0.5]
    with pytest.raises(ValueError, match=r"row 1: kv_head = 0.5 is outside integers"):
        with_gqa_columns(t)


def test_shape_trace_groups_and_estimates_the_union() -> None:
    w = replace_path(workload_preset("gpt2-small"), "model.kv_heads", 4)
    t = shape_trace(replace_path(w, "model.gen_tokens", 2))
    assert (t["kv_head"] == t["head"] // 3).all()
    last = t[t["layer"] == 11]
    # step 1 fetches all 993 keys, values floor(0.2 * 993) = 198: 993 (1 - (1 - 198/993)^3) = 483.4
    # step 2 keeps floor(0.1 * 994) = 99 keys, 19 values: 99 (1 - (1 - 19/99)^3) = 46.8
    assert set(last.loc[last["step"] == 1, "kv_values_fetched"]) == {483}
    assert set(last.loc[last["step"] == 2, "kv_values_fetched"]) == {47}
