"""The release's BERT workload CSV: one row per (layer, head), read into the trace schema and written back.

The authors' C++ behaviour model (``spatten_hardware/simulator/src/bert.cpp`` in their release) reads a
15-column CSV, one row per head of a BERT layer:

=============================  ============  ==============================================================
column                         unit          meaning, and where it goes in the trace schema
=============================  ============  ==============================================================
``layer_id``, ``head_id``      index         ``layer``, ``head``
``embedding_length_D``         elements      ``head_dim`` (written as a float, ``64.0``, as the GPT-2 layout)
``sentence_length_L``          queries       the head's queries: the row becomes L trace rows, ``query``
                                             0..L-1 (the C++ model runs L queries per head); also
                                             ``seq_len``
``key_value_query_fetch_num``  K and V rows  ``keys_fetched`` and ``values_fetched`` of every query (BERT
                                             has no local value pruning in this layout)
``quant_key_bit``              bits/element  ``key_bits``; ``-1`` unquantized
``quant_value_bit``            bits/element  ``value_bits``
``quant_query_bit``            bits/element  ``query_bits``
``auto_requant_thres``         probability   ``refetch_threshold``; ``-1`` off
``if_requant``                 bool          some queries of the head refetched their K LSBs
``auto_requant_incre``         bits/element  ``key_lsb_bits``
``auto_requant_num``           queries       how many of the L queries refetched: the first that many
                                             rows get ``refetch`` (the layout does not say which; the
                                             simulator's cost does not depend on it). ``-1`` with
                                             ``if_requant`` True: all L; with False it must be -1 or 0
``if_accumulate_importance``   bool          ``accumulate_importance`` of every row
``if_topk``, ``topk``          bool, tokens  the token top-k after the head: ``token_topk`` of the head's
                                             last query row (``-1`` on the others)
=============================  ============  ==============================================================

Derived: ``step = 0`` (one summarization pass), ``queries = 1``, ``rescale_importance = False``,
``value_topk = -1``. A last line whose fields after the first are empty names the config, as in the GPT-2
layout (the C++ reader stops at the first ``layer_id`` that does not start with a digit).

Writing (:func:`write_bert_csv`) groups a trace's rows by (layer, head) in order of first appearance and
refuses what one BERT row cannot hold: another step than 0, grouped-query K/V heads, a head whose rows
differ in keys, widths, threshold or importance flag, values fetched unlike keys, more keys than queries,
two token top-ks. ``sentence_length_L`` is the head's query count, so a trace read back has ``seq_len`` equal
to it (the package's own summarization traces carry the unpruned length there: the one column that does
not survive the trip; DRAM bytes and operations do). The canonical form, which a read-then-write
reproduces byte for byte: ``if_requant`` True with ``auto_requant_num`` the count, or False with -1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from spatten.models.trace import (
    MAX_COUNT,
    TRACE_COLUMNS,
    _Cells,
    _Csv,
    _flags,
    _fmt_bool,
    _fmt_thres,
    _numbers,
    _show,
    check_trace_values,
    release_rows,
    write_table,
)

__all__ = ["BERT_COLUMNS", "MAX_BERT_ROWS", "is_bert_header", "read_bert_table", "write_bert_csv"]

BERT_COLUMNS: list[str] = [
    "layer_id",
    "head_id",
    "embedding_length_D",
    "sentence_length_L",
    "key_value_query_fetch_num",
    "quant_key_bit",
    "quant_value_bit",
    "quant_query_bit",
    "auto_requant_thres",
    "if_requant",
    "auto_requant_incre",
    "auto_requant_num",
    "if_accumulate_importance",
    "if_topk",
    "topk",
]

MAX_BERT_ROWS = 50_000_000
"""Trace rows a BERT file may expand to (sum of ``sentence_length_L``): about 6 GB of trace. BERT-Large at
512 tokens is 196,608."""

# BERT column -> trace column, for the per-head values (the booleans and auto_requant_num are apart)
_TO_TRACE = {
    "layer_id": "layer",
    "head_id": "head",
    "embedding_length_D": "head_dim",
    "sentence_length_L": "seq_len",
    "key_value_query_fetch_num": "keys_fetched",
    "quant_key_bit": "key_bits",
    "quant_value_bit": "value_bits",
    "quant_query_bit": "query_bits",
    "auto_requant_thres": "refetch_threshold",
    "auto_requant_incre": "key_lsb_bits",
    "topk": "token_topk",
}


def is_bert_header(header: list[str]) -> bool:
    """A header of the BERT layout: it has ``key_value_query_fetch_num`` and no ``iteration_id``."""
    return "key_value_query_fetch_num" in header and "iteration_id" not in header


def read_bert_table(p: Path, table: _Csv):
    """The trace of a BERT-layout CSV already split into ``table`` (module docstring); refusals in one line.

    Returns
    -------
    (trace, config_name) : (pandas.DataFrame, str or None)
    """
    import pandas as pd

    pos, raw, config_name = release_rows(p, table, BERT_COLUMNS, "a release BERT CSV")
    lines = table.lines

    def where(i: int) -> str:
        return f"line {lines[i]}"

    def cells(c: str) -> _Cells:
        return _Cells(table, pos[c])

    num = {tc: _numbers(raw[pos[bc]]) for bc, tc in _TO_TRACE.items()}
    shown: dict[str, Any] = {tc: cells(bc) for bc, tc in _TO_TRACE.items()}
    num["values_fetched"], shown["values_fetched"] = num["keys_fetched"], shown["keys_fetched"]
    flag = {
        c: _flags(raw[pos[c]], c, p, where, cells(c))
        for c in ("if_requant", "if_accumulate_importance", "if_topk")
    }
    names = {tc: bc for bc, tc in _TO_TRACE.items()} | {"values_fetched": "key_value_query_fetch_num"}
    check_trace_values(num, str(p), where, names, shown)
    length = num["seq_len"]
    if (length < 1).any():
        i = int(np.flatnonzero(length < 1)[0])
        raise ValueError(
            f"{p}: {where(i)}: sentence_length_L = {_show(cells('sentence_length_L')[i])} is outside the "
            f"allowed range 1..{MAX_COUNT} (a head runs at least one query)"
        )
    total = float(length.sum())
    if total > MAX_BERT_ROWS:
        raise ValueError(
            f"{p}: the heads' sentence_length_L add up to {total:.0f} queries, more than the "
            f"{MAX_BERT_ROWS:,} trace rows a BERT file may expand to"
        )
    topk = num["token_topk"]
    for bad, why in (
        (flag["if_topk"] & (topk < 0), f"is outside the allowed range 0..{MAX_COUNT} (if_topk is True)"),
        (~flag["if_topk"] & (topk >= 0), "is outside the allowed range -1 (if_topk is False)"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{p}: {where(i)}: topk = {_show(cells('topk')[i])} {why}")
    refetching = _refetching(
        p, where, raw[pos["auto_requant_num"]], cells("auto_requant_num"), flag["if_requant"], length
    )

    heads = length.astype(np.int64)
    rows = int(heads.sum())
    first = np.concatenate(([0], np.cumsum(heads)[:-1]))
    query = np.arange(rows, dtype=np.int64) - np.repeat(first, heads)
    out: dict[str, np.ndarray] = {tc: np.repeat(a, heads) for tc, a in num.items() if tc != "token_topk"}
    out["token_topk"] = np.full(rows, -1, dtype=np.int64)
    out["token_topk"][first + heads - 1] = topk.astype(np.int64)
    out.update(
        step=np.zeros(rows, np.int64),
        query=query,
        queries=np.ones(rows, np.int64),
        refetch=query < np.repeat(refetching, heads),
        accumulate_importance=np.repeat(flag["if_accumulate_importance"], heads),
        rescale_importance=np.zeros(rows, bool),
        value_topk=np.full(rows, -1, np.int64),
    )
    return pd.DataFrame({c: out[c] for c in TRACE_COLUMNS}).astype(TRACE_COLUMNS), config_name


def _refetching(p: Path, where, col, cells: _Cells, requant: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Queries of each head that refetch, from ``auto_requant_num`` and ``if_requant`` (module docstring)."""
    m = _numbers(col)
    bad = ~np.isfinite(m) | (m != np.round(m)) | ((m < 0) & (m != -1)) | (m > length)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{p}: {where(i)}: auto_requant_num = {_show(cells[i])} is outside the allowed range -1 or "
            f"0..{length[i]:.0f} (sentence_length_L)"
        )
    bad = ~requant & (m > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{p}: {where(i)}: auto_requant_num = {_show(cells[i])} is outside the allowed range -1 or 0 "
            "(if_requant is False)"
        )
    return np.where(requant, np.where(m == -1, length, m), 0).astype(np.int64)


def write_bert_csv(trace, path: str | os.PathLike, config_name: str | None = None) -> None:
    """Write a trace in the release's BERT layout, one row per (layer, head); atomically, no partial file.

    Raises
    ------
    ValueError
        A trace one BERT row per head cannot hold (module docstring), in one line naming the head.
    """
    import pandas as pd

    missing = [c for c in TRACE_COLUMNS if c not in trace.columns]
    if missing:
        raise ValueError(f"trace is missing column(s) {', '.join(missing)}")
    if len(trace) == 0:
        raise ValueError("trace has no rows")
    steps = np.unique(trace["step"].to_numpy())
    if steps.tolist() != [0]:
        raise ValueError(
            f"the BERT layout holds one summarization pass (step 0); the trace has step(s) "
            f"{', '.join(str(int(s)) for s in steps[:4])}: use the GPT-2 layout"
        )
    if "kv_head" in trace.columns and (trace["kv_head"].to_numpy() != trace["head"].to_numpy()).any():
        raise ValueError("the BERT layout cannot express grouped-query attention (kv_head != head)")
    if config_name is not None and (
        not config_name or "," in config_name or "\n" in config_name or config_name[0] in "-0123456789"
    ):
        raise ValueError(
            f"config_name = {config_name!r} must be non-empty, without commas or newlines, and not start "
            "with a digit or '-' (the C++ reader would take it for a layer)"
        )
    g = trace.groupby(["layer", "head"], sort=False)
    same = ["head_dim", "keys_fetched", "values_fetched", "key_bits", "value_bits", "query_bits",
            "refetch_threshold", "key_lsb_bits", "accumulate_importance"]  # fmt: skip
    uniform = g[same].nunique()
    odd = uniform.gt(1)
    if odd.any(axis=None):
        (layer, head), col = next((k, c) for k, row in odd.iterrows() for c in same if row[c])
        raise ValueError(
            f"layer {layer} head {head}: its rows differ in {col}; the BERT layout has one value per head"
        )
    first = g[same].first()
    counts = g["queries"].sum()
    topks = g["token_topk"].agg(lambda s: s[s >= 0].tolist())
    refetch = (
        trace["queries"].where(trace["refetch"], 0).groupby([trace["layer"], trace["head"]], sort=False).sum()
    )
    for (layer, head), r in first.iterrows():
        q = int(counts[(layer, head)])
        why = None
        if r["values_fetched"] != r["keys_fetched"]:
            keys, values = r["keys_fetched"], r["values_fetched"]
            why = f"fetches {keys} keys but {values} values (one fetch count per head)"
        elif r["keys_fetched"] > q:
            why = f"fetches {r['keys_fetched']} keys for {q} queries (sentence_length_L counts both)"
        elif len(topks[(layer, head)]) > 1:
            why = "runs more than one token top-k"
        if why:
            raise ValueError(f"layer {layer} head {head} {why}: the BERT layout cannot hold it")
    nref = refetch.reindex(first.index).to_numpy()
    rel = pd.DataFrame(
        {
            "layer_id": [str(int(k[0])) for k in first.index],
            "head_id": [str(int(k[1])) for k in first.index],
            "embedding_length_D": first["head_dim"].astype(float).map(repr).to_numpy(),
            "sentence_length_L": counts.reindex(first.index).astype(int).astype(str).to_numpy(),
            "key_value_query_fetch_num": first["keys_fetched"].astype(int).astype(str).to_numpy(),
            "quant_key_bit": first["key_bits"].astype(int).astype(str).to_numpy(),
            "quant_value_bit": first["value_bits"].astype(int).astype(str).to_numpy(),
            "quant_query_bit": first["query_bits"].astype(int).astype(str).to_numpy(),
            "auto_requant_thres": [_fmt_thres(v) for v in first["refetch_threshold"]],
            "if_requant": _fmt_bool(nref > 0),
            "auto_requant_incre": first["key_lsb_bits"].astype(int).astype(str).to_numpy(),
            "auto_requant_num": [str(int(v)) if v > 0 else "-1" for v in nref],
            "if_accumulate_importance": _fmt_bool(first["accumulate_importance"].astype(bool)),
            "if_topk": _fmt_bool([bool(t) for t in topks.reindex(first.index)]),
            "topk": [str(int(t[0])) if t else "-1" for t in topks.reindex(first.index)],
        },
        columns=BERT_COLUMNS,
    )
    write_table(rel, Path(path), config_name)
