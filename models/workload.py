"""Shape-only request traces: the pruning and quantization policy decides the counts, no data needed.

:func:`shape_trace` turns a :class:`models.config.Workload` into a trace with exactly the columns of
:data:`models.trace.TRACE_COLUMNS`. The rules, chosen to match the authors' release traces
(shipped in models/data/release/) where the paper is silent:

* Token schedule. ``PruningConfig.token_schedule(layers)[l]`` is the fraction of tokens alive while
  layer ``l`` runs (the release GPT-2-Small schedule 0.9, 0.7, 0.2, ... is exactly that: layer 2 fetches
  ``int(0.2 * 1024)`` = 204 keys). The keep count is ``int(ratio * reference)`` with the reference the
  full length (summarization: ``prompt_len``; generation: ``prompt_len + gen_tokens``, as in the
  release), at least 1 and at most the tokens in the cache.
* Summarization (BERT): one row per (layer, live head, live query); pruned tokens leave the whole
  model, so the live queries of a layer are its live keys.
* Generation (GPT-2): steps ``1..gen_tokens``, one query per live head, ``seq_len = prompt_len + step``.
  As in the release, the first generation step fetches every key (token importance has not been
  accumulated yet); head pruning and local value pruning apply from the first step. With
  ``model.prompt_in_trace`` the prompt pass is step 0: one row per (layer, live head) standing for
  ``queries`` queries.
* Batch and long context (:mod:`spatten.models.batch`): ``model.batch`` sequences share each row (column
  ``sequences``); a prompt row of a decoder is causal, its queries reading ``keys_per_query`` keys on
  average; a sliding layer (``model.sliding_layers``) reads the last ``model.sliding_window`` tokens at
  most, and its ``seq_len`` (what the dense model reads) is capped the same way.
* KV policies (``pruning.policy`` other than ``spatten``; :mod:`spatten.models.kv_policy`): every decode
  step and layer reads the policy's budget of the context (no cascade, no head pruning, no token top-k rows:
  the simulator charges the policy's own selection and metadata); the prompt pass is dense.
* Head schedule: ``max(1, round(heads * ratio))`` heads live in a layer (ids ``0..h-1``); pruned heads
  produce no rows.
* Grouped-query attention (``model.kv_heads``; rules in :mod:`spatten.models.gqa`): each row carries its
  ``kv_head``; a K/V head is live while one of its query heads is (the pruned heads are the last ids, so
  whole groups go first), and ``kv_values_fetched`` is the expected union of its live heads' kept values.
* Local value pruning: ``values = max(1, int(value_ratio * keys))``; ``value_topk`` holds it when it is
  below ``keys`` (the value top-k runs), else -1.
* Token top-k: on the last row of a layer (last live head, last query) when the next layer keeps
  fewer tokens: ``token_topk`` = the next layer's keep count.
* Quantization: off -> all bits -1 (unquantized); static -> K at ``key_msb_bits + key_lsb_bits`` with
  no LSB part (the release GPT-2-Medium trace: 12-bit K, ``-1`` increment); progressive -> K MSBs
  first and ``key_lsb_bits`` LSBs on a refetch.
* Refetch (progressive only): exactly ``round(shape_refetch_rate * rows)`` rows refetch. Rows are
  ranked by ``(layer + 1) * (step + 1)`` (ties: head, then query) and the lowest ranks refetch, which
  concentrates refetches in early layers and early steps as the release GPT-2-Small trace shows.
"""

from __future__ import annotations

import numpy as np
from spatten.models.batch import BATCH_COLUMNS, causal_mean_keys
from spatten.models.config import Workload
from spatten.models.gqa import GQA_COLUMNS, expected_union
from spatten.models.kv_policy import policy_keys
from spatten.models.limits import SIM_BYTES_PER_ROW, check_memory
from spatten.models.trace import TRACE_COLUMNS

__all__ = ["shape_trace", "layer_counts"]


def layer_counts(workload: Workload) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer live head counts and token keep counts (against the reference length).

    Returns
    -------
    (heads, keep) : (numpy.ndarray, numpy.ndarray) of int64, shape (layers,)
    """
    m = workload.model
    tok = np.asarray(workload.pruning.token_schedule(m.layers), dtype=np.float64)
    hed = np.asarray(workload.pruning.head_schedule(m.layers), dtype=np.float64)
    ref = m.prompt_len if m.mode == "summarization" else m.prompt_len + m.gen_tokens
    heads = np.maximum(1, np.round(m.heads * hed)).astype(np.int64)
    keep = np.maximum(1, np.floor(tok * ref + 1e-9)).astype(np.int64)
    keep = np.maximum(keep, min(ref, workload.pruning.token_min_keep))
    return heads, keep


def _bits(workload: Workload) -> tuple[int, int, int, int, float, bool]:
    """(key_bits, key_lsb_bits, query_bits, value_bits, threshold, progressive) for trace rows."""
    q = workload.quant
    if not q.enabled:
        return -1, -1, -1, -1, -1.0, False
    if q.progressive and q.key_lsb_bits > 0:
        return q.key_msb_bits, q.key_lsb_bits, q.query_bits, q.value_bits, q.refetch_threshold, True
    return q.key_full_bits, -1, q.query_bits, q.value_bits, -1.0, False


def _blocks(workload: Workload) -> np.ndarray:
    """The shape trace's blocks, one per (step, layer): (step, layer, heads, rows per head, queries per
    row, seq_len, keys, next layer's keys or -1), int64 (n, 8)."""
    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a Workload, got {type(workload).__name__}")
    m = workload.model
    heads, keep = layer_counts(workload)
    policy = workload.pruning.policy if workload.pruning.enabled else "spatten"
    if policy != "spatten":  # a KV policy (models/kv_policy.py): every head, a budget of the context
        heads = np.full(m.layers, m.heads, np.int64)
    # One block per (step, layer): its live heads x rows per head, expanded to rows at the end.
    blocks: list[tuple[int, int, int, int, int, int, int, int]] = []

    def add_block(
        step: int,
        layer: int,
        n_heads: int,
        n_rows: int,
        per_row_q: int,
        seq: int,
        keys: int,
        next_keys: int | None,
    ) -> None:
        blocks.append(
            (step, layer, n_heads, n_rows, per_row_q, seq, keys, -1 if next_keys is None else next_keys)
        )

    # a sliding layer attends to the last `window` tokens at most (its dense reference too)
    window = _windows(m)

    def cap(layer: int, n: int) -> int:
        return n if window[layer] == 0 else min(n, int(window[layer]))

    if m.mode == "summarization":
        L = m.prompt_len
        live = np.minimum(keep, L)
        for layer in range(m.layers):
            nxt = int(live[layer + 1]) if layer + 1 < m.layers else None
            k = int(live[layer])
            add_block(0, layer, int(heads[layer]), k, 1, L, k, nxt)
    else:
        if m.prompt_in_trace:
            # a KV policy's prompt pass is dense
            live = np.minimum(keep, m.prompt_len) if policy == "spatten" else np.full(m.layers, m.prompt_len)
            for layer in range(m.layers):
                nxt = int(live[layer + 1]) if layer + 1 < m.layers else None
                k = int(live[layer])
                add_block(0, layer, int(heads[layer]), 1, k, m.prompt_len, k, nxt)
        for step in range(1, m.gen_tokens + 1):
            seq = m.prompt_len + step
            if policy != "spatten":
                live = np.full(m.layers, int(policy_keys(workload.pruning, seq)), np.int64)
            else:
                live = np.full(m.layers, seq, np.int64) if step == 1 else np.minimum(keep, seq)
            for layer in range(m.layers):
                nxt = int(live[layer + 1]) if layer + 1 < m.layers and policy == "spatten" else None
                add_block(step, layer, int(heads[layer]), 1, 1, cap(layer, seq), cap(layer, int(live[layer])),
                          nxt)  # fmt: skip

    return np.asarray(blocks, dtype=np.int64).reshape(-1, 8)


def _windows(m) -> np.ndarray:
    """Per layer: its sliding window (0: the layer reads the whole context)."""
    window = np.zeros(m.layers, np.int64)
    window[list(m.sliding_layers)] = m.sliding_window
    return window


def shape_rows(workload: Workload) -> int:
    """Rows :func:`shape_trace` would return, without building them (for the memory guard)."""
    b = _blocks(workload)
    return int((b[:, 2] * b[:, 3]).sum())


def shape_trace(workload: Workload):
    """Request trace of ``workload`` decided by its policy alone (no tensors).

    Parameters
    ----------
    workload : models.config.Workload
        Model shape, pruning and quantization policy (the accelerator is not used).

    Returns
    -------
    pandas.DataFrame
        One row per request, columns and dtypes of :data:`models.trace.TRACE_COLUMNS`, in execution
        order (step, layer, head, query).
    """
    import pandas as pd

    b = _blocks(workload)
    m = workload.model
    heads, keep = layer_counts(workload)
    vr = workload.pruning.value_ratio
    pruning_on = workload.pruning.enabled
    b_step, b_layer, b_heads, b_rows, b_q, b_seq, b_keys, b_next = b.T
    per_block = b_heads * b_rows
    rows = int(per_block.sum())
    check_memory(f"the {rows:,}-request trace of {m.name} and its simulation", rows * SIM_BYTES_PER_ROW)
    idx = np.repeat(np.arange(len(b)), per_block)
    offset = np.arange(idx.size) - np.repeat(np.cumsum(per_block) - per_block, per_block)
    b_vals = np.maximum(1, np.floor(vr * b_keys + 1e-9)).astype(np.int64)
    last = np.zeros(idx.size, dtype=bool)
    last[np.cumsum(per_block) - 1] = True
    keys_r = b_keys[idx]
    next_r = b_next[idx]
    out = {
        "step": b_step[idx],
        "layer": b_layer[idx],
        "head": offset // b_rows[idx],
        "query": offset % b_rows[idx],
        "queries": b_q[idx],
        "seq_len": b_seq[idx],
        "keys_fetched": keys_r,
        "values_fetched": b_vals[idx],
        "token_topk": np.where(last & (next_r >= 0) & (next_r < keys_r), next_r, -1),
    }
    n = out["step"].size
    kb, lb, qb, vb, thr, progressive = _bits(workload)
    refetch = np.zeros(n, dtype=bool)
    if progressive and n:
        n_ref = int(round(workload.quant.shape_refetch_rate * n))
        if n_ref:
            rank = (out["layer"] + 1) * (out["step"] + 1)
            order = np.lexsort((out["query"], out["head"], rank))
            refetch[order[:n_ref]] = True
    values = out["values_fetched"]
    data = {
        "step": out["step"],
        "layer": out["layer"],
        "head": out["head"],
        "query": out["query"],
        "queries": out["queries"],
        "head_dim": np.full(n, m.head_dim, np.int64),
        "seq_len": out["seq_len"],
        "keys_fetched": out["keys_fetched"],
        "key_bits": np.full(n, kb, np.int64),
        "key_lsb_bits": np.full(n, lb, np.int64),
        "refetch": refetch,
        "refetch_threshold": np.full(n, thr, np.float64),
        "query_bits": np.full(n, qb, np.int64),
        "values_fetched": values,
        "value_bits": np.full(n, vb, np.int64),
        "accumulate_importance": np.full(n, pruning_on, dtype=bool),
        "rescale_importance": np.zeros(n, dtype=bool),
        "token_topk": out["token_topk"],
        "value_topk": np.where(values < out["keys_fetched"], values, -1).astype(np.int64),
    }
    df = pd.DataFrame(data, columns=list(TRACE_COLUMNS)).astype(TRACE_COLUMNS)
    prompt_rows = (out["step"] == 0) & (out["queries"] > 1) if m.mode == "generation" else None
    if m.batch > 1 or (prompt_rows is not None and prompt_rows.any()):
        # a decoder's prompt row is causal: its queries read the keys up to themselves (models/batch.py)
        window = _windows(m)
        kpq = out["keys_fetched"].astype(np.float64)
        if prompt_rows is not None and prompt_rows.any():
            kpq[prompt_rows] = causal_mean_keys(
                out["queries"][prompt_rows],
                out["keys_fetched"][prompt_rows],
                window[out["layer"][prompt_rows]],
            )
        df["sequences"] = np.full(n, m.batch, np.int64)
        df["keys_per_query"] = kpq
        df = df.astype(BATCH_COLUMNS)
    if m.kv_heads and m.kv_heads != m.heads:
        g = m.heads // m.kv_heads
        kv = df["head"].to_numpy() // g
        # live query heads of each row's group: heads 0..h-1 live, so group j holds min(g, h - j g) of them
        live_h = b_heads[idx]
        group = np.clip(live_h - kv * g, 1, g)
        df["kv_head"] = kv
        df["kv_values_fetched"] = expected_union(df["keys_fetched"], values, group)
        df = df.astype(GQA_COLUMNS)
    return df
