"""The baselines' adjustments of SpAtten's per-row work, checked on one row by hand."""

from __future__ import annotations

import math

from spatten.models.config import workload_preset
from spatten.models.workload import shape_trace
from spatten.sim.baselines import dense_workload
from spatten.sim.simulate import Options, run


def _one_row(w):
    t = shape_trace(dense_workload(w))
    return t.iloc[[0]].reset_index(drop=True)


def test_a3_candidate_search_visits_every_key_at_its_speed() -> None:
    w = workload_preset("bert-base", "spatten-1/8", prompt_len=128)
    row = _one_row(w)
    keys = int(row.loc[0, "keys_fetched"])
    kpc = w.accelerator.qk_multipliers // w.accelerator.head_dim  # 128 / 64 = 2 keys per cycle
    for speed in (1.0, 2.0, 4.0):
        r = run(w, row, Options("a3", candidate_fraction=0.25, candidate_search_speed=speed))
        search = r.requests["cycles_topk"].iloc[0]
        assert search == math.ceil(keys / (kpc * speed))
        exact = r.requests["cycles_qk"].iloc[0]
        assert exact == math.ceil(math.ceil(0.25 * keys) / kpc)  # exact math on a quarter of the keys


def test_mnnfast_skips_values_and_sort_topk_sorts() -> None:
    w = workload_preset("bert-base", prompt_len=128)
    row = _one_row(w)
    n = int(row.loc[0, "values_fetched"])
    vpc = w.accelerator.pv_multipliers // w.accelerator.head_dim
    r = run(w, row, Options("mnnfast", value_fraction=0.5))
    assert r.requests["cycles_pv"].iloc[0] == math.ceil(math.ceil(0.5 * n) / vpc)
    topk = row.copy()
    topk.loc[0, "value_topk"] = n // 2
    p = w.accelerator.topk_parallelism
    r = run(w, topk, Options("sorted", sort_topk=True))
    assert r.requests["cycles_topk"].iloc[0] == math.ceil(n * math.ceil(math.log2(n)) / p)
