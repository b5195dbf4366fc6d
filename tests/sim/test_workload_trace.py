"""Shape-only traces: schema, counts from the schedule by hand, refetch rate, pruned heads."""

from __future__ import annotations

import dataclasses

from spatten.models.config import workload_preset
from spatten.models.trace import TRACE_COLUMNS
from spatten.models.workload import shape_trace


def test_schema_and_dtypes() -> None:
    t = shape_trace(workload_preset("gpt2-small"))
    assert list(t.columns) == list(TRACE_COLUMNS)
    assert {c: str(t[c].dtype) for c in t.columns} == TRACE_COLUMNS


def test_gpt2_small_counts() -> None:
    w = workload_preset("gpt2-small")
    t = shape_trace(w)
    assert len(t) == 12 * 12 * 32
    first = t[t.step == 1]
    assert (first.keys_fetched == 993).all()  # first generation step fetches every key
    row = t[(t.step == 5) & (t.layer == 2)]
    assert (row.keys_fetched == int(0.2 * 1024)).all()  # release schedule: 0.2 of 1024 = 204
    assert (row.values_fetched == int(0.2 * 204)).all()
    assert (row.seq_len == 992 + 5).all()
    assert t.refetch.sum() == round(0.059 * len(t))
    assert (t.key_bits == 6).all() and (t.key_lsb_bits == 4).all()


def test_gpt2_medium_head_pruning_drops_rows() -> None:
    t = shape_trace(workload_preset("gpt2-medium"))
    per_layer = t[t.step == 3].groupby("layer")["head"].nunique()
    assert per_layer[0] == 16 and per_layer[16] == 13 and per_layer[23] == 10
    assert len(t) == 32 * (16 * 16 + 13 * 6 + 10 * 2)


def test_bert_queries_follow_tokens() -> None:
    w = workload_preset("bert-base", prompt_len=100)
    t = shape_trace(w)
    l0 = t[(t["layer"] == 0) & (t["head"] == 0)]
    assert len(l0) == 100 and (l0.keys_fetched == 100).all()
    assert (t.key_bits == 12).all() and not t.refetch.any()


def test_pruning_off_is_dense_unquantized() -> None:
    w = workload_preset("gpt2-small")
    w = dataclasses.replace(
        w,
        pruning=dataclasses.replace(w.pruning, enabled=False),
        quant=dataclasses.replace(w.quant, enabled=False),
    )
    t = shape_trace(w)
    assert (t.keys_fetched == t.seq_len).all() and (t.values_fetched == t.seq_len).all()
    assert (t.key_bits == -1).all() and not t.refetch.any()


def test_prompt_in_trace_is_one_batched_row_per_head() -> None:
    w = workload_preset("gpt2-small")
    w = dataclasses.replace(w, model=dataclasses.replace(w.model, prompt_in_trace=True, gen_tokens=2))
    t = shape_trace(w)
    p = t[t["step"] == 0]
    assert len(p) == 12 * 12
    layer3 = p[p["layer"] == 3]
    ref = 992 + 2  # keep counts are against the full length (prompt + generated)
    assert (layer3["queries"] == int(0.2 * ref)).all() and (layer3["keys_fetched"] == int(0.2 * ref)).all()
    assert (p[p["layer"] == 0]["queries"] == int(0.9 * ref)).all()
    assert len(t) == 12 * 12 * 3
