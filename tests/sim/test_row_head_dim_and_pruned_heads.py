"""The row's head size sets keys per cycle; the dense reference restores any pruned head."""

from __future__ import annotations

import dataclasses

import numpy as np
from spatten.models.config import workload_preset
from spatten.models.workload import shape_trace
from spatten.sim.api import simulate


def _small():
    w = workload_preset("gpt2-small")
    return dataclasses.replace(w, model=dataclasses.replace(w.model, gen_tokens=1))


def test_keys_per_cycle_follow_the_row_head_dim() -> None:
    w = _small()
    t = shape_trace(w)
    t["refetch"] = False
    t["key_lsb_bits"] = -1
    t["head_dim"] = 32  # 512 multipliers / 32 = 16 keys (and values) per cycle
    s = simulate(w, t).summary
    q, keys, vals = (t[c].to_numpy(np.float64) for c in ("queries", "keys_fetched", "values_fetched"))
    assert s["busy_qk"] == float(np.sum(q * np.ceil(keys / 16)))
    assert s["busy_pv"] == float(np.sum(q * np.ceil(vals / 16)))


def test_dense_reference_restores_any_pruned_head() -> None:
    w = _small()
    t = shape_trace(w)
    layer = t["layer"] == 1
    first = simulate(w, t[~(layer & (t["head"] == 0))].reset_index(drop=True)).summary
    last = simulate(w, t[~(layer & (t["head"] == t["head"].max()))].reset_index(drop=True)).summary
    full = simulate(w, t).summary
    # every head of the shape trace has the same traffic, so dropping any one restores to the full model
    assert first["dense_ops"] == last["dense_ops"] == full["dense_ops"]
    assert first["dense_reference_bytes"] == last["dense_reference_bytes"] == full["dense_reference_bytes"]


def test_accelerator_head_dim_shapes_the_cycles() -> None:
    # 512 multipliers as 48-lane trees: 10 trees, a 64-dim key spans 2 of them -> 5 keys per cycle;
    # as 128-lane trees: 4 trees of two 64-dim keys each -> 8 keys per cycle, as with 64-lane trees.
    # One 512-lane tree packs 8 keys of 64.
    w = _small()
    t = shape_trace(w)
    q, keys = (t[c].to_numpy(np.float64) for c in ("queries", "keys_fetched"))
    passes = 1.0 + t["refetch"].to_numpy(np.float64)
    for hd, kpc in ((48, 5), (64, 8), (128, 8), (512, 8)):
        acc = dataclasses.replace(w.accelerator, head_dim=hd)
        s = simulate(dataclasses.replace(w, accelerator=acc), t).summary
        assert s["busy_qk"] == float(np.sum(q * np.ceil(keys / kpc) * passes)), hd
