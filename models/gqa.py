"""Grouped-query attention (GQA) on SpAtten: the rules, stated once, and the trace columns that carry them.

A model with ``heads`` query heads and ``kv_heads`` K/V heads (``heads % kv_heads == 0``) gives each K/V head
a group of ``g = heads // kv_heads`` consecutive query heads: query head ``h`` reads K/V head ``h // g``.
Multi-head attention is ``g = 1``; multi-query attention is ``kv_heads = 1``.

The rules the golden model, the shape trace, the simulator and the energy model follow:

1. **Fetch per K/V head.** A K/V head's K and V are fetched once per (step, layer) and serve every live query
   head of its group. Its traffic is saved only when *every* query head of the group is pruned; pruning some
   of them saves their compute, not their K/V bytes.
2. **Token pruning** is over tokens, shared by all heads (cascade importance sums over heads), so all query
   heads of a group see the same live keys: the group's ``keys_fetched``.
3. **Local value pruning.** Each query head keeps its own top ``value_keep`` rows and multiplies only those
   (``values_fetched`` of its row); the group fetches the *union* of its heads' kept rows
   (``kv_values_fetched``, the same on every row of the group).
4. **Progressive quantization.** Each query head takes its own refetch decision (its row's maximum
   probability below the threshold), exactly as in multi-head attention. The K/V head's LSBs are fetched
   once when *any* head of the group decides to refetch, and then sit on chip for the group; only the heads
   that decided to refetch recompute, so a head's result never depends on its neighbours.
5. **Head pruning** ranks query heads by their own output magnitude, as in multi-head attention.

Trace columns (optional beside :data:`spatten.models.trace.TRACE_COLUMNS`; absent means multi-head):
``kv_head`` (the K/V head a row reads) and ``kv_values_fetched`` (V rows its group fetches). A trace row
per query head alone cannot say which rows share a fetch, nor how large the union of kept values is.

Shape-only traces (no data) estimate the union of ``g`` heads each keeping ``v`` of ``k`` rows as if their
choices were independent: ``k * (1 - (1 - v / k) ** g)``, rounded, within ``[v, min(k, g * v)]``. Real models
(``spatten.models.attention`` on real Q/K/V) count the union itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["GQA_COLUMNS", "group_size", "expected_union", "union_count", "with_gqa_columns"]

GQA_COLUMNS: dict[str, str] = {"kv_head": "int64", "kv_values_fetched": "int64"}


def group_size(heads: int, kv_heads: int) -> int:
    """Query heads per K/V head; ``kv_heads`` must divide ``heads``."""
    if not 1 <= kv_heads <= heads or heads % kv_heads:
        raise ValueError(f"model.kv_heads = {kv_heads} must divide model.heads = {heads} (1..{heads})")
    return heads // kv_heads


def expected_union(keys: Any, values: Any, group: Any) -> np.ndarray:
    """Expected size of the union of ``group`` independent choices of ``values`` rows out of ``keys``.

    Parameters
    ----------
    keys, values, group : int or array of int
        Live keys, rows each head keeps, live query heads of the group (>= 1).

    Returns
    -------
    numpy.ndarray of int64
        ``round(k * (1 - (1 - v / k) ** g))`` clipped to ``[v, min(k, g * v)]``; exactly ``v`` for ``g = 1``.
    """
    k = np.asarray(keys, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    g = np.asarray(group, dtype=np.float64)
    frac = np.divide(v, k, out=np.ones_like(k * v), where=k > 0)
    est = np.rint(k * (1.0 - (1.0 - frac) ** g))
    est = np.clip(est, v, np.minimum(k, g * v))
    return np.where(g <= 1, v, est).astype(np.int64)


def union_count(kept: Any) -> int:
    """Rows a K/V head fetches: the union of its query heads' kept-row masks, shape ``(g, n)``."""
    m = np.asarray(kept, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"kept must be a (query heads, rows) mask, got shape {m.shape}")
    return int(m.any(axis=0).sum())


def with_gqa_columns(trace: Any) -> Any:
    """``trace`` with ``kv_head`` and ``kv_values_fetched`` filled in as multi-head attention where absent.

    Checks, with one-line errors naming the row: ``kv_head`` an integer in ``0..head``, never falling
    within a (step, layer) so that the rows of one K/V head are consecutive (the simulator charges a K/V
    fetch per run of rows); ``kv_values_fetched`` within ``values_fetched..keys_fetched``.
    """
    missing = [c for c in GQA_COLUMNS if c not in trace.columns]
    if missing:
        trace = trace.copy()
        if "kv_head" in missing:
            trace["kv_head"] = trace["head"].to_numpy()
        if "kv_values_fetched" in missing:
            trace["kv_values_fetched"] = trace["values_fetched"].to_numpy()
    try:
        kv = trace["kv_head"].to_numpy(dtype=np.float64)
        kvv = trace["kv_values_fetched"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("trace: kv_head and kv_values_fetched must be numbers") from None
    head = trace["head"].to_numpy()
    same_block = np.zeros(kv.size, dtype=bool)
    if kv.size > 1:
        same_block[1:] = (trace["step"].to_numpy()[1:] == trace["step"].to_numpy()[:-1]) & (
            trace["layer"].to_numpy()[1:] == trace["layer"].to_numpy()[:-1]
        )
    falls = np.zeros(kv.size, dtype=bool)
    falls[1:] = same_block[1:] & (kv[1:] < kv[:-1])
    for name, bad, allowed in (
        ("kv_head", ~np.isfinite(kv) | (kv != np.round(kv)), "integers"),
        ("kv_head", (kv < 0) | (kv > head), "0..head"),
        (
            "kv_head",
            falls,
            "non-decreasing rows within a (step, layer): a K/V head's rows must be consecutive",
        ),
        ("kv_values_fetched", ~np.isfinite(kvv) | (kvv != np.round(kvv)), "integers"),
        ("kv_values_fetched", kvv < trace["values_fetched"].to_numpy(), "values_fetched..keys_fetched"),
        ("kv_values_fetched", kvv > trace["keys_fetched"].to_numpy(), "values_fetched..keys_fetched"),
    ):
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            val = trace[name].to_numpy()[i]
            raise ValueError(f"trace: row {trace.index[i]!s:.40}: {name} = {val} is outside {allowed}")
    return trace.astype(GQA_COLUMNS)
