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

from collections.abc import Callable, Mapping
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


def with_gqa_columns(
    trace: Any,
    source: str = "trace",
    where: Callable[[int], str] | None = None,
    shown: Mapping[str, Any] | None = None,
) -> Any:
    """``trace`` with ``kv_head`` and ``kv_values_fetched`` filled in as multi-head attention where absent.

    Checks, with one-line errors naming ``source``, the row (``where(i)``; default its index label), the
    column, the value (cut to 40 characters) and the allowed range: ``kv_head`` a finite integer in
    ``0..head``, never falling within a (step, layer) so that the rows of one K/V head are consecutive (the
    simulator charges a K/V fetch per run of rows); ``kv_values_fetched`` a finite integer within
    ``values_fetched..keys_fetched``. ``shown`` (column -> values as written, e.g. a CSV's cells) is quoted
    in a message instead of the column's own value.
    """
    from spatten.models.trace import _as_float, _show

    missing = [c for c in GQA_COLUMNS if c not in trace.columns]
    if missing:
        trace = trace.copy()
        if "kv_head" in missing:
            trace["kv_head"] = trace["head"].to_numpy()
        if "kv_values_fetched" in missing:
            trace["kv_values_fetched"] = trace["values_fetched"].to_numpy()
    if where is None:
        index = trace.index

        def where(i: int) -> str:
            return f"row {index[i]!s:.40}"

    raw = {c: trace[c].to_numpy() for c in GQA_COLUMNS}
    kv, kvv = _as_float(raw["kv_head"], text=False), _as_float(raw["kv_values_fetched"], text=False)
    head = trace["head"].to_numpy()
    vals = trace["values_fetched"].to_numpy()
    keys = trace["keys_fetched"].to_numpy()
    same_block = np.zeros(kv.size, dtype=bool)
    if kv.size > 1:
        step, layer = trace["step"].to_numpy(), trace["layer"].to_numpy()
        same_block[1:] = (step[1:] == step[:-1]) & (layer[1:] == layer[:-1])
    falls = np.zeros(kv.size, dtype=bool)
    falls[1:] = same_block[1:] & (kv[1:] < kv[:-1])

    def vrange(i: int) -> str:
        return f"{vals[i]}..{keys[i]}"

    with np.errstate(invalid="ignore"):
        checks = (
            ("kv_head", ~np.isfinite(kv), "finite numbers", lambda i: f"0..{head[i]}"),
            ("kv_head", kv != np.round(kv), "integers", lambda i: f"0..{head[i]}"),
            ("kv_head", (kv < 0) | (kv > head), "0..head", lambda i: f"0..{head[i]}"),
            (
                "kv_head",
                falls,
                "non-decreasing rows within a (step, layer): a K/V head's rows must be consecutive",
                lambda i: f"{kv[i - 1]:.0f}..{head[i]}",
            ),
            ("kv_values_fetched", ~np.isfinite(kvv), "finite numbers", vrange),
            ("kv_values_fetched", kvv != np.round(kvv), "integers", vrange),
            (
                "kv_values_fetched",
                kvv < vals,
                "values_fetched..keys_fetched",
                vrange,
            ),
            (
                "kv_values_fetched",
                kvv > keys,
                "values_fetched..keys_fetched",
                vrange,
            ),
        )
    for name, bad, allowed, rng in checks:
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            v = shown[name][i] if shown and name in shown else raw[name][i]
            if isinstance(raw[name][i], str | bytes):
                allowed = "numbers (it is text)"
            raise ValueError(
                f"{source}: {where(i)}: {name} = {_show(v)} is outside {allowed} "
                f"(allowed on this row: {rng(i)})"
            )
    return trace.assign(kv_head=kv.astype(np.int64), kv_values_fetched=kvv.astype(np.int64))
