"""Batched decode and long causal prompts in a trace: two optional columns and the rules they carry.

A Llama-class run at batch 8 with a 32k-token prompt would be 2 million rows of one query each; the trace
keeps it at one row per (step, layer, live head) with two optional columns beside
:data:`spatten.models.trace.TRACE_COLUMNS` (absent: one sequence, every query reads ``keys_fetched`` keys):

``sequences`` (integer >= 1)
    The row stands for that many sequences' requests of the same shape, run one after another: each
    sequence has its own K/V cache, so nothing is shared between them; bytes, cycles and operations are the
    row's times ``sequences``, and the K/V reuse between the query heads of a GQA group holds within each
    sequence (:mod:`spatten.models.gqa`). A shape-only trace gives every sequence the same policy-decided
    counts, so one row per head describes the whole batch exactly.

    Each sequence also has its own pruning state: a token importance score per cached token and a head
    importance score per head, :data:`IMPORTANCE_BITS` each. One sequence's state fits the on-chip importance
    buffer; with several, the accelerator moves on to the next sequence after each layer (the host runs a
    decoder layer for the whole batch before the next), so each (step, layer) writes back the state of the
    sequence it leaves and reads the next one's: :func:`state_bytes` per sequence, charged as
    ``dram_bytes_state``. A lone sequence keeps its state on chip (no charge).

``keys_per_query`` (float, in ``(0, keys_fetched]``)
    The mean number of keys one query of the row reads. A causal prompt row (the prefill of a decoder, one
    row per head standing for its queries, as the release's BERT format does) has query ``i`` of ``q`` reading
    the keys up to itself, at most the sliding window: :func:`causal_mean_keys`. The Q.K, softmax, top-k and
    prob.V work of the row is that of ``queries`` queries of ``keys_per_query`` keys, and its values per query
    scale the same way.

K/V SRAM capacity. When the keys of a row's group do not fit in half the K SRAM (double buffering), they
cannot stay on chip from one query to the next: SpAtten's datapath takes one query at a time, so each query
of a multi-query row streams its keys and its kept values again (``queries x keys_per_query`` keys). That is
what makes a long prompt's prefill quadratic in DRAM traffic on this hardware (the simulator's
``sim/simulate.py`` applies it; short prompts whose keys fit fetch them once).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BATCH_COLUMNS", "IMPORTANCE_BITS", "causal_mean_keys", "state_bytes", "with_batch_columns"]

BATCH_COLUMNS: dict[str, str] = {"sequences": "int64", "keys_per_query": "float64"}

#: Width of one importance score in the pruning state (the release's importance accumulator is 16-bit
#: fixed point, like the probabilities it sums).
IMPORTANCE_BITS = 16


def causal_mean_keys(queries: Any, keys: Any, window: Any = 0) -> np.ndarray:
    """Mean keys per query of ``queries`` causal queries that end at the last of ``keys`` keys.

    Query ``i`` (0-based) sees ``keys - queries + i + 1`` keys, at most ``window`` when ``window > 0``.

    Parameters
    ----------
    queries, keys : int or array of int
        ``1 <= queries <= keys``.
    window : int or array of int
        Sliding window (0: none).

    Returns
    -------
    numpy.ndarray of float64
    """
    q = np.asarray(queries, dtype=np.float64)
    k = np.asarray(keys, dtype=np.float64)
    w = np.asarray(window, dtype=np.float64)
    if np.any(q < 1) or np.any(q > k):
        raise ValueError("causal rows need 1 <= queries <= keys")
    a, b = k - q + 1, k  # keys seen by the first and the last query
    cap = np.where(w > 0, w, b)  # no window: capped at the last query's count, i.e. not at all
    # the counts a..lo run below the window, the rest sit at it (lo = a - 1: every count at the window)
    lo = np.clip(cap, a - 1, b)
    return ((a + lo) * (lo - a + 1) / 2 + (b - lo) * cap) / q


def state_bytes(keys: Any, heads: Any) -> np.ndarray:
    """DRAM bytes one sequence's pruning state costs per (step, layer) in a batch: written back and read in.

    ``keys``: the sequence's cached (live) tokens; ``heads``: its query heads.
    """
    k = np.asarray(keys, dtype=np.float64)
    h = np.asarray(heads, dtype=np.float64)
    return 2.0 * (k + h) * IMPORTANCE_BITS / 8.0


def with_batch_columns(trace: Any) -> Any:
    """``trace`` with ``sequences`` (1) and ``keys_per_query`` (``keys_fetched``) filled in where absent.

    Raises
    ------
    ValueError
        ``sequences`` not an integer >= 1, or ``keys_per_query`` outside ``(0, keys_fetched]``; one line
        naming the column, the first offending row and the value.
    """
    missing = [c for c in BATCH_COLUMNS if c not in trace.columns]
    if missing:
        trace = trace.copy()
        if "sequences" in missing:
            trace["sequences"] = np.ones(len(trace), dtype=np.int64)
        if "keys_per_query" in missing:
            trace["keys_per_query"] = trace["keys_fetched"].to_numpy().astype(np.float64)
    seqs = trace["sequences"].to_numpy()
    kpq = trace["keys_per_query"].to_numpy().astype(np.float64)
    keys = trace["keys_fetched"].to_numpy().astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(seqs.astype(np.float64)) | (seqs < 1) | (seqs != np.round(seqs)))
    if bad.size:
        i = bad[0]
        raise ValueError(f"trace row {trace.index[i]}: sequences = {seqs[i]!r} must be an integer >= 1")
    bad = np.flatnonzero(~np.isfinite(kpq) | (kpq <= 0) | (kpq > keys))
    if bad.size:
        i = bad[0]
        raise ValueError(
            f"trace row {trace.index[i]}: keys_per_query = {kpq[i]!r} is outside the allowed range "
            f"(0, keys_fetched = {keys[i]:g}]"
        )
    return trace.astype(BATCH_COLUMNS)
