"""Turn a request trace into cycles, DRAM traffic, operations and per-stage activity.

Stages, in hardware order (SPATTEN.md section 2):

``dram``     the fetcher moving Q, K MSBs, K LSBs (on a refetch) and V of the request through the HBM
             channels (:mod:`sim.hbm`). The channels are one resource, so all of a request's traffic is
             one stage; the V fetch really waits for the top-k, a latency the double-buffered SRAMs and
             the bounded FIFOs hide across requests.
``qk``       ``queries x ceil(keys / (qk_multipliers / D))`` cycles, twice on a refetch (recompute);
             latency ``qk_latency`` (SRAM 1, multiply 1, adder tree 9).
``softmax``  consumes the scores at the Q.K rate (release "87 + batch"), twice on a refetch; latency
             ``softmax_latency + pq_latency`` (the PQ decision follows the softmax).
``topk``     local value top-k per query (``value_topk`` of ``keys``) plus the token top-k on the row that
             carries one (``token_topk`` of ``keys``): expected quick-select cycles (:mod:`sim.topk_table`).
``pv``       ``queries x ceil(values / (pv_multipliers / D))`` cycles; latency ``pv_latency``.

K/V reuse: consecutive rows with the same (step, layer, head) form a group (summarization: the queries of
one head). When the group's keys fit in half of the K SRAM (double buffer) at the datapath width, only
the group's first row fetches K and V and later rows reuse them; the LSBs are fetched once, on the group's
first refetching row. That one fetch covers the most keys (and the largest ``kv_values_fetched``) of any row
of the group: a causal prefill's later queries see more keys than its first. Otherwise every row fetches its
own. Q is always fetched.

Unquantized fields (-1 bits) move at ``quant.unquantized_bits`` (the 12-bit datapath width by default).
Operations: one multiply and one add per MAC (``ops = 2 x (Q.K MACs + prob.V MACs)``), the convention the
paper's GOP/s use; "dense-equivalent" ops are those of the same model run dense (no pruning).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from spatten.models.batch import BATCH_COLUMNS, IMPORTANCE_BITS, state_bytes, with_batch_columns
from spatten.models.config import Workload
from spatten.models.gqa import GQA_COLUMNS, with_gqa_columns
from spatten.models.trace import TRACE_COLUMNS
from spatten.sim import hbm
from spatten.sim.pipeline import PipelineResult, run_pipeline
from spatten.sim.topk_table import expected_cycles, expected_elements

__all__ = ["SimResult", "Options", "STAGES", "run", "check_trace", "dense_reference"]

STAGES = ("dram", "qk", "softmax", "topk", "pv")

ACTION_KEYS = (
    "qk_mul",
    "qk_add",
    "pv_mul",
    "pv_add",
    "softmax_exp",
    "softmax_div",
    "softmax_add",
    "topk_compare",
    "pq_compare",
    "k_sram_read_bits",
    "k_sram_write_bits",
    "v_sram_read_bits",
    "v_sram_write_bits",
    "dram_bits_q",
    "dram_bits_k_msb",
    "dram_bits_k_lsb",
    "dram_bits_v",
    "dram_bits_state",
    "dram_transactions",
    "cycles",
    "seconds",
)


@dataclass(frozen=True)
class SimResult:
    """One simulation.

    Attributes
    ----------
    requests : pandas.DataFrame
        One row per request: position, counts, bytes by kind, transactions, per-stage service cycles,
        start and end cycle.
    summary : dict
        Flat figures: cycles, seconds, DRAM bytes by kind, transactions, ops, GOP/s, per-stage busy /
        blocked / idle cycles, bounding stage, ...
    actions : dict
        Action counts for the energy model (keys in ``ACTION_KEYS``).
    """

    requests: Any
    summary: dict[str, float | int | str]
    actions: dict[str, int | float]


@dataclass(frozen=True)
class Options:
    """How the hardware treats the trace (SpAtten, or a baseline in the same framework).

    Attributes
    ----------
    name : str
        Label written into the summary.
    topk_parallelism : int or None
        Comparators of the top-k engine (None: the accelerator's).
    candidate_fraction : float or None
        A3: exact Q.K / softmax / prob.V run on this fraction of the keys after a candidate search that
        streams every key at the Q.K rate (in the ``topk`` slot). None: no candidate search.
    candidate_search_speed : float
        A3: keys the candidate search visits per cycle, relative to the Q.K rate (1: one key per dot-product
        tree and cycle).
    value_fraction : float or None
        MNNFast: prob.V skips near-zero probabilities and multiplies this fraction of the values.
    sort_topk : bool
        A generic top-k instead of the quick-select engine: a full sort on the same ``P`` comparators,
        ``ceil(n ceil(log2 n) / P)`` cycles (merge-sort comparisons), then the first k are taken.
    serial : bool
        MNNFast's per-query sequence: Q.K, softmax, selection and prob.V of a query run one after the
        other with their latencies exposed (the fetch still runs ahead).
    rtl_as_built : bool
        The RTL attention core as built (:mod:`sim.rtl_core`): the cycles each row adds to the core's
        overlapped request stream (its exact cycle model), one stage behind the fetch.
    """

    name: str = "spatten"
    topk_parallelism: int | None = None
    candidate_fraction: float | None = None
    candidate_search_speed: float = 1.0
    value_fraction: float | None = None
    serial: bool = False
    sort_topk: bool = False
    rtl_as_built: bool = False


def check_trace(trace: Any) -> None:
    """Raise naming the first missing column, or the first value the hardware cannot run.

    The value checks are :func:`models.trace.check_trace_values` (the limits are in ``models.trace``'s
    docstring); the message names the row by its index label, the column, the value and the allowed range.
    """
    import pandas as pd
    from spatten.models.trace import check_trace_values

    if not isinstance(trace, pd.DataFrame):
        raise TypeError(f"trace must be a pandas DataFrame, got {type(trace).__name__}")
    missing = [c for c in TRACE_COLUMNS if c not in trace.columns]
    if missing:
        raise ValueError(f"trace is missing column(s) {', '.join(missing)}")
    names = list(trace.columns)
    twice = [c for c in (*TRACE_COLUMNS, *GQA_COLUMNS) if names.count(c) > 1]
    if twice:
        raise ValueError(f"trace: column {twice[0]} appears {names.count(twice[0])} times (allowed: once)")
    if len(trace) == 0:
        raise ValueError("trace has no rows")
    index = trace.index  # rows are named by their index label, cut to 40 characters
    check_trace_values(
        {c: trace[c].to_numpy() for c in TRACE_COLUMNS}, "trace", lambda i: f"row {index[i]!s:.40}"
    )


def _bits(a: np.ndarray, unq: int) -> np.ndarray:
    return np.where(a < 0, unq, a).astype(np.float64)


def _groups(trace_cols: dict[str, np.ndarray]) -> np.ndarray:
    """True where a row starts a new (step, layer, K/V head) group: the rows that share one K/V fetch."""
    n = trace_cols["step"].size
    first = np.ones(n, dtype=bool)
    if n > 1:
        same = np.ones(n - 1, dtype=bool)
        for c in ("step", "layer", "kv_head"):
            same &= trace_cols[c][1:] == trace_cols[c][:-1]
        first[1:] = ~same
    return first


def _byte_table(w: Workload, cols: dict[str, np.ndarray], bits_override: int | None = None) -> dict[str, Any]:
    """DRAM bytes, spans and reuse of each row."""
    acc, unq = w.accelerator, w.quant.unquantized_bits
    kb = _bits(cols["key_bits"], unq)
    lb = np.where(cols["key_lsb_bits"] < 0, 0, cols["key_lsb_bits"]).astype(np.float64)
    qb = _bits(cols["query_bits"], unq)
    vb = _bits(cols["value_bits"], unq)
    if bits_override is not None:
        kb = qb = vb = np.full(kb.shape, float(bits_override))
        lb = np.zeros_like(lb)
    keys = cols["keys_fetched"].astype(np.float64)
    vals = cols["values_fetched"].astype(np.float64)
    q = cols["queries"].astype(np.float64)
    d = cols["head_dim"].astype(np.float64)
    refetch = cols["refetch"].astype(bool) & (lb > 0)
    first = _groups(cols)
    gid = np.cumsum(first) - 1
    start_idx = np.flatnonzero(first)
    # A group's one fetch holds the most keys and kept values any of its rows needs: the same as its first
    # row's in every trace but a causal prefill's, whose queries see more keys the later they sit
    g_keys = np.maximum.reduceat(keys, start_idx)[gid] if keys.size else keys
    kv_vals = cols["kv_values_fetched"].astype(np.float64)
    g_vals = np.maximum.reduceat(kv_vals, start_idx)[gid] if keys.size else kv_vals
    fits = g_keys * d * acc.datapath_bits / 8.0 <= acc.kv_sram_bytes / 2
    # A group that fits on chip fetches the union of its query heads' kept values (models/gqa.py, rule 3)
    v_rows = np.where(fits, g_vals, vals)
    raw = hbm.request_bytes(
        np.where(fits, g_keys, keys), v_rows, q, cols["head_dim"], kb, lb, qb, vb, refetch
    )
    # A multi-query row whose keys do not fit streams them (and its kept values) once per query
    # (models/batch.py): keys_per_query keys and as many more values as that is more than keys_fetched
    stream = ~fits & (q > 1)
    if stream.any():
        kpq = cols["keys_per_query"].astype(np.float64)
        per_q = hbm.request_bytes(kpq, vals * kpq / np.maximum(keys, 1.0), np.ones_like(q), cols["head_dim"],
                                  kb, lb, qb, vb, refetch)  # fmt: skip
        for kind in ("k_msb", "k_lsb", "v"):
            raw[kind] = np.where(stream, per_q[kind] * q, raw[kind])
    fetch_kv = first | ~fits
    cum = np.cumsum(refetch)
    before = np.where(start_idx > 0, cum[start_idx - 1], 0)
    first_ref = refetch & ((cum - before[gid]) == 1)
    lsb_fetch = np.where(fits, first_ref, refetch)
    seq = cols["seq_len"].astype(np.float64)
    seqs = cols["sequences"].astype(np.float64)  # each sequence its own K/V: nothing shared between them
    nbytes = {
        "q": raw["q"] * seqs,
        "k_msb": np.where(fetch_kv, raw["k_msb"], 0.0) * seqs,
        "k_lsb": np.where(lsb_fetch, raw["k_lsb"], 0.0) * seqs,
        "v": np.where(fetch_kv, raw["v"], 0.0) * seqs,
    }
    # the region the fetched rows spread over; StreamingLLM's decode reads two contiguous runs
    region = seq
    if _policy(w) == "streamingllm":
        region = np.where(q == 1, keys, seq)
    span = {
        "q": nbytes["q"],
        "k_msb": region * d * kb / 8.0,
        "k_lsb": region * d * lb / 8.0,
        "v": region * d * vb / 8.0,
    }
    return {"bytes": nbytes, "span": span, "refetch": refetch, "first": first, "fits": fits, "v_rows": v_rows,
            "stream": stream}  # fmt: skip


def _pairs(group: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (group, id) pairs as (group of each pair, rows of each pair); 1-d keys sort fast."""
    span = int(ids.max()) + 1 if ids.size else 1
    pairs, counts = np.unique(group.astype(np.int64) * span + ids.astype(np.int64), return_counts=True)
    return pairs // span, counts


def dense_reference(w: Workload, cols: dict[str, np.ndarray]) -> tuple[float, float]:
    """Bytes and ops of the trace's model run dense at ``quant.reference_bits`` (the paper's fp32).

    Every row is widened to all ``seq_len`` keys and values; heads a layer pruned (absent rows) are
    restored by scaling each (step, layer) by ``heads / live heads`` with ``heads`` the most any layer has
    (K/V shared by a group that fits on chip: ``kv heads / live kv heads``).
    Summarization queries pruned from later layers are restored the same way (x ``seq_len / live queries``).
    A causal row (``keys_per_query`` below ``keys_fetched``) keeps its fraction of keys per query; every
    sequence of a batched row counts.
    """
    dense = dict(cols)
    dense["keys_fetched"] = cols["seq_len"]
    dense["values_fetched"] = cols["seq_len"]
    dense["kv_values_fetched"] = cols["seq_len"]
    dense["refetch"] = np.zeros_like(cols["refetch"])
    seq = cols["seq_len"].astype(np.float64)
    # a causal row reads the same fraction of the dense model's keys per query as of its own
    dense_kpq = seq * cols["keys_per_query"] / np.maximum(cols["keys_fetched"], 1)
    dense["keys_per_query"] = dense_kpq
    t = _byte_table(w, dense, bits_override=w.quant.reference_bits)
    per_row = sum(t["bytes"].values())
    q = cols["queries"].astype(np.float64)
    d = cols["head_dim"].astype(np.float64)
    ops_row = 4.0 * q * dense_kpq * d * cols["sequences"]
    # restore pruned heads and pruned queries per (step, layer)
    key = cols["step"].astype(np.int64) * 1_000_003 + cols["layer"].astype(np.int64)
    uniq, inv = np.unique(key, return_inverse=True)
    # live heads = distinct head ids present in the group (pruning may remove any head, not just the last)
    head_group, rows_per_head = _pairs(inv, cols["head"])
    heads_live = np.bincount(head_group, minlength=uniq.size).astype(np.float64)
    h_full = heads_live.max()
    kv_live = np.bincount(_pairs(inv, cols["kv_head"])[0], minlength=uniq.size).astype(np.float64)
    kv_full = kv_live.max()
    qsum = np.bincount(inv, weights=q)
    # queries per head present in the group; dense has seq_len per head in summarization rows
    per_head_q = qsum / heads_live
    seq_g = np.zeros(uniq.size)
    np.maximum.at(seq_g, inv, seq)
    # summarization: a head has a row per query (several rows per (step, layer, head)); the release CSV has
    # no query column, so the row count, not ``query > 0``, tells
    summarization = np.zeros(uniq.size, dtype=bool)
    np.logical_or.at(summarization, head_group, rows_per_head > 1)
    qscale = np.where(summarization, seq_g / np.maximum(per_head_q, 1), 1.0)
    scale = (h_full / heads_live) * qscale
    # bytes: K/V once per head (on first rows) and Q per query; scaling the group total is exact for
    # dense groups with the same per-head traffic
    b = np.bincount(inv, weights=per_row)
    # K/V once per K/V head where the group fits on chip, else once per live query head (models/gqa.py)
    kv_row = t["bytes"]["k_msb"] + t["bytes"]["v"]
    kv_group = np.bincount(inv, weights=np.where(t["fits"], kv_row, 0.0), minlength=uniq.size)
    kv_own = np.bincount(inv, weights=np.where(t["fits"], 0.0, kv_row), minlength=uniq.size)
    kv_share = kv_group + kv_own
    q_share = b - kv_share
    kv_dense = kv_group * (kv_full / kv_live) + kv_own * (h_full / heads_live)
    dense_bytes = float(np.sum(kv_dense + q_share * scale))
    dense_ops = float(np.sum(np.bincount(inv, weights=ops_row) * scale))
    return dense_bytes, dense_ops


@dataclass
class _Traffic:
    """Step 1 of :func:`run`: what each row moves over DRAM and how long the channels take."""

    cols: dict[str, np.ndarray]
    table: dict[str, Any]  # _byte_table: bytes by kind, spans, refetch, groups
    seqs: np.ndarray  # sequences each row stands for
    state: np.ndarray  # pruning state and KV-policy metadata bytes
    work: dict[str, np.ndarray]  # the KV policy's selection work (_policy_work)
    transactions: np.ndarray
    cycles: np.ndarray
    row_activations: np.ndarray


@dataclass
class _Compute:
    """Step 2 of :func:`run`: per-row work and service cycles of every stage."""

    q: np.ndarray
    keys: np.ndarray
    kpq: np.ndarray  # keys one query reads (causal rows: fewer than keys)
    vals: np.ndarray  # values one query multiplies
    exact_keys: np.ndarray  # keys one query runs Q.K / softmax on (A3: its candidates)
    pv_vals: np.ndarray
    passes: np.ndarray  # 2 on a refetch
    topk_cmp: np.ndarray
    service: np.ndarray  # (stages, rows)


def run(w: Workload, trace: Any, opt: Options) -> SimResult:
    """Simulate ``trace`` on ``w.accelerator`` with ``opt`` deciding SpAtten or a baseline: the DRAM
    traffic of each row, the service cycles of each stage, the pipeline solve, then the energy model's
    action counts and the summary."""
    from spatten.models.limits import SIM_BYTES_PER_ROW, check_memory

    check_trace(trace)
    check_memory(f"simulating {len(trace):,} trace rows", len(trace) * SIM_BYTES_PER_ROW)
    trace = with_batch_columns(with_gqa_columns(trace))
    cols = {c: trace[c].to_numpy() for c in (*TRACE_COLUMNS, *GQA_COLUMNS, *BATCH_COLUMNS)}
    tr = _traffic(w, cols)
    cp = _compute(w, opt, tr)
    pr, latency = _solve(w.accelerator, opt, cp.service)
    actions = _actions(w.accelerator, tr, cp, pr)
    summary = _summary(w, opt, tr, cp, pr, latency, actions)
    return SimResult(_requests(tr, cp, pr, latency), summary, actions)


def _traffic(w: Workload, cols: dict[str, np.ndarray]) -> _Traffic:
    """Bytes by kind, the batch's pruning state and the KV policy's metadata, and their DRAM cycles."""
    acc = w.accelerator
    n = cols["step"].size
    bt = _byte_table(w, cols)
    tx_total, dram_cyc, rows_total = np.zeros(n), np.zeros(n), np.zeros(n)

    def charge(nbytes: np.ndarray, span: np.ndarray, contiguous: bool) -> None:
        parts = hbm.kind_cycles(acc, nbytes, span, contiguous)
        for total, part in zip((tx_total, dram_cyc, rows_total), parts, strict=True):
            total += part

    for k in hbm.KINDS:
        charge(bt["bytes"][k], bt["span"][k], k == "q")
    seqs = cols["sequences"].astype(np.float64)
    layer_start = np.ones(n, dtype=bool)  # first row of each (step, layer)
    layer_start[1:] = (cols["step"][1:] != cols["step"][:-1]) | (cols["layer"][1:] != cols["layer"][:-1])
    state = np.zeros(n)
    # a batch's SpAtten pruning state: each (step, layer) swaps every sequence's importance scores
    # (models/batch.py)
    if n and ((seqs > 1) & cols["accumulate_importance"]).any() and _policy(w) == "spatten":
        starts = np.flatnonzero(layer_start)
        heads_in = np.diff(np.append(starts, n))
        swap = (seqs[starts] > 1) & cols["accumulate_importance"][starts]
        state[starts] = np.where(
            swap, seqs[starts] * state_bytes(cols["keys_fetched"][starts], heads_in), 0.0
        )
    key_bits = _bits(cols["key_bits"], w.quant.unquantized_bits) + np.maximum(cols["key_lsb_bits"], 0)
    work = _policy_work(w, cols, layer_start, bt["first"], key_bits)
    state += work["meta_bytes"] * seqs
    if state.any():
        charge(state, state, True)
    return _Traffic(cols, bt, seqs, state, work, tx_total, dram_cyc, rows_total)


@dataclass
class _Counts:
    """Per-row work of one query before it becomes service cycles: what the baselines adjust.

    ``vkeys``: the keys of a row's local value top-k (``has_v``), ``keys`` those of its token top-k
    (``has_t``); ``p`` the top-k comparators; ``kpc`` keys per Q.K cycle.
    """

    q: np.ndarray
    keys: np.ndarray
    kpq: np.ndarray
    vals: np.ndarray
    vkeys: np.ndarray
    has_v: np.ndarray
    has_t: np.ndarray
    p: int
    kpc: np.ndarray
    exact_keys: np.ndarray
    pv_vals: np.ndarray
    topk_cyc: np.ndarray
    topk_cmp: np.ndarray


def _sort_topk(opt: Options, c: _Counts) -> None:
    """The generic top-k of the breakdown: a full sort on the same P comparators, ``ceil(n ceil(log2 n) /
    P)`` cycles (merge-sort comparisons), instead of quick-select."""
    if not opt.sort_topk:
        return

    def sort_cycles(m: np.ndarray) -> np.ndarray:
        return np.ceil(m * np.ceil(np.log2(np.maximum(m, 2.0))) / c.p)

    c.topk_cyc = np.zeros_like(c.topk_cyc)
    c.topk_cyc[c.has_v] = c.q[c.has_v] * sort_cycles(c.vkeys[c.has_v])
    c.topk_cyc[c.has_t] += sort_cycles(c.keys[c.has_t])


def _a3_candidates(opt: Options, c: _Counts) -> None:
    """A3: a candidate search streams every key at the Q.K rate (in the top-k slot); exact Q.K, softmax and
    prob.V run on ``candidate_fraction`` of the keys."""
    if opt.candidate_fraction is None:
        return
    c.exact_keys = np.maximum(1.0, np.ceil(opt.candidate_fraction * c.kpq))
    c.pv_vals = np.minimum(c.vals, c.exact_keys)
    c.topk_cyc = c.q * np.ceil(c.kpq / (c.kpc * opt.candidate_search_speed))
    c.topk_cmp = c.q * c.kpq


def _mnnfast_skip(opt: Options, c: _Counts) -> None:
    """MNNFast: prob.V skips near-zero probabilities, multiplying ``value_fraction`` of the values."""
    if opt.value_fraction is not None:
        c.pv_vals = np.maximum(1.0, np.ceil(opt.value_fraction * c.vals))


BASELINE_ADJUSTMENTS = (_sort_topk, _a3_candidates, _mnnfast_skip)
"""Each baseline is one small function of (options, counts) that changes SpAtten's per-row work; MNNFast's
back-to-back sequence is :func:`_serial_solve`."""


def _compute(w: Workload, opt: Options, tr: _Traffic) -> _Compute:
    """Service cycles of Q.K, softmax, top-k and prob.V per row, after the baselines' adjustments."""
    acc, cols, work, seqs = w.accelerator, tr.cols, tr.work, tr.seqs
    n = seqs.size
    q = cols["queries"].astype(np.float64)
    keys = cols["keys_fetched"].astype(np.float64)
    kpq = cols["keys_per_query"].astype(np.float64)
    causal = kpq < keys
    # a causal row's queries read kpq keys and proportionally fewer values each
    vals = np.where(causal, cols["values_fetched"] * kpq / np.maximum(keys, 1.0), cols["values_fetched"])
    d = cols["head_dim"].astype(np.float64)
    # keys (values) per cycle for the row's own head size on the hardware's head_dim-wide trees
    kpc = acc.rows_per_cycle(acc.qk_multipliers, d)
    vpc = acc.rows_per_cycle(acc.pv_multipliers, d)
    passes = 1.0 + tr.table["refetch"]
    p = opt.topk_parallelism or acc.topk_parallelism
    vtk = cols["value_topk"].astype(np.float64)
    ttk = cols["token_topk"].astype(np.float64)
    has_v = (vtk >= 0) & (vtk < keys)
    has_t = (ttk >= 0) & (ttk < keys)
    # the value top-k of a causal row: over its mean keys, keeping the same fraction
    vkeys = np.where(causal, np.maximum(1.0, np.round(kpq)), keys)
    vtk = np.where(causal & has_v, np.clip(np.round(vtk * kpq / np.maximum(keys, 1.0)), 1.0, vkeys), vtk)
    # the quick-select table lookups only for rows that run a top-k (most summarization rows do not)
    topk_cyc = np.zeros(n)
    topk_cyc[has_v] = q[has_v] * expected_cycles(vkeys[has_v], vtk[has_v], p)
    topk_cyc[has_t] += expected_cycles(keys[has_t], ttk[has_t], p)
    # comparisons: the search rounds' elements plus one final pass over the candidates
    topk_cmp = np.zeros(n)
    topk_cmp[has_v] = q[has_v] * (expected_elements(vkeys[has_v], vtk[has_v])[0] + vkeys[has_v])
    topk_cmp[has_t] += expected_elements(keys[has_t], ttk[has_t])[0] + keys[has_t]
    c = _Counts(q, keys, kpq, vals, vkeys, has_v, has_t, p, kpc, kpq, vals, topk_cyc, topk_cmp)
    for adjust in BASELINE_ADJUSTMENTS:
        adjust(opt, c)
    # a KV policy's selection: Quest's page bounds on the Q.K unit, H2O's eviction / Quest's page choice on
    # the top-k engine
    sel = work["select_n"] > work["select_k"]
    if sel.any():
        sn, sk = work["select_n"][sel], work["select_k"][sel]
        c.topk_cyc[sel] += expected_cycles(sn, sk, p)
        c.topk_cmp[sel] += expected_elements(sn, sk)[0] + sn
    qk_cyc = (q * np.ceil(c.exact_keys / kpc) * passes + np.ceil(work["bound_keys"] / kpc)) * seqs
    pv_cyc = q * np.ceil(c.pv_vals / vpc) * seqs
    service = np.vstack([tr.cycles, qk_cyc, qk_cyc, c.topk_cyc * seqs, pv_cyc])
    if opt.rtl_as_built:
        from spatten.sim.rtl_core import rtl_stage_service

        kept = np.where(has_v, vtk, vkeys)
        service[1:] = rtl_stage_service(vkeys, kept, tr.table["refetch"], k_par=kpc, v_par=vpc, head_dim=d,
                                        topk_p=p, count=q * seqs)  # fmt: skip
    return _Compute(q, keys, kpq, vals, c.exact_keys, c.pv_vals, passes, c.topk_cmp * seqs, service)


def _solve(acc: Any, opt: Options, service: np.ndarray) -> tuple[PipelineResult, np.ndarray]:
    """The pipeline's start and departure cycles of every row and stage, and the stage latencies."""
    latency = np.array(
        [
            hbm.first_data_latency(acc),
            acc.qk_latency,
            acc.softmax_latency + acc.pq_latency,
            0.0,
            acc.pv_latency,
        ]
    )
    if opt.rtl_as_built:  # one serial stage whose counts include the core's latencies
        latency[1:] = 0.0
        return _serial_solve(acc, service, latency), latency
    if opt.serial:
        return _serial_solve(acc, service, latency), latency
    return run_pipeline(service, latency, acc.stage_buffer), latency


def _serial_solve(acc: Any, service: np.ndarray, latency: np.ndarray) -> PipelineResult:
    """MNNFast: the fetcher prefetches as usual, but a query's Q.K, softmax, selection and prob.V run one
    after the other (latencies exposed) before the next query starts: one compute "stage"."""
    compute = service[1:].sum(axis=0) + latency[1:].sum()
    pr2 = run_pipeline(np.vstack([service[0], compute]), np.array([latency[0], 0.0]), acc.stage_buffer)
    start = np.vstack([pr2.start[0], np.repeat(pr2.start[1:], len(STAGES) - 1, axis=0)])
    dep = np.vstack([pr2.depart[0], np.repeat(pr2.depart[1:], len(STAGES) - 1, axis=0)])
    return PipelineResult(start, start + service, dep, pr2.makespan, pr2.passes, pr2.converged)


def _macs(tr: _Traffic, cp: _Compute) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q.K dot products (with a KV policy's bounds), Q.K and prob.V multiply-accumulates per row."""
    d = tr.cols["head_dim"].astype(np.float64)
    dots = (cp.q * cp.exact_keys * cp.passes + tr.work["bound_keys"]) * tr.seqs
    return dots, dots * d, cp.q * cp.pv_vals * d * tr.seqs


def _actions(acc: Any, tr: _Traffic, cp: _Compute, pr: PipelineResult) -> dict[str, int | float]:
    """Action counts of the energy model (keys ``ACTION_KEYS``)."""
    nbytes, seqs = tr.table["bytes"], tr.seqs
    d = tr.cols["head_dim"].astype(np.float64)
    dots, qk_mac, pv_mac = _macs(tr, cp)
    scores = cp.q * cp.exact_keys * cp.passes * seqs  # bounds skip the softmax
    dp = float(acc.datapath_bits)
    cycles = float(pr.makespan)
    return {
        "qk_mul": float(qk_mac.sum()),
        "qk_add": float((dots * (d - 1)).sum()),
        "pv_mul": float(pv_mac.sum()),
        "pv_add": float(pv_mac.sum()),
        "softmax_exp": float(scores.sum()),
        "softmax_div": float(scores.sum()),
        "softmax_add": float(scores.sum()),
        "topk_compare": float(cp.topk_cmp.sum()),
        "pq_compare": float(np.where(tr.cols["refetch_threshold"] >= 0, cp.q * seqs, 0.0).sum()),
        "k_sram_read_bits": float((qk_mac * dp).sum()),
        "k_sram_write_bits": float(((nbytes["k_msb"] + nbytes["k_lsb"]) * 8.0).sum()),
        "v_sram_read_bits": float((pv_mac * dp).sum()),
        "v_sram_write_bits": float((nbytes["v"] * 8.0).sum()),
        "dram_bits_q": float(nbytes["q"].sum() * 8.0),
        "dram_bits_k_msb": float(nbytes["k_msb"].sum() * 8.0),
        "dram_bits_k_lsb": float(nbytes["k_lsb"].sum() * 8.0),
        "dram_bits_v": float(nbytes["v"].sum() * 8.0),
        "dram_bits_state": float(tr.state.sum() * 8.0),
        "dram_transactions": int(tr.transactions.sum()),
        "cycles": cycles,
        "seconds": cycles / (acc.clock_ghz * 1e9),
    }


def _summary(
    w: Workload, opt: Options, tr: _Traffic, cp: _Compute, pr: PipelineResult, latency: np.ndarray,
    actions: dict[str, int | float],
) -> dict[str, float | int | str]:  # fmt: skip
    """The flat summary: time, DRAM by kind, operations against the dense reference, per-stage activity."""
    acc, cols, bt, seqs = w.accelerator, tr.cols, tr.table, tr.seqs
    nbytes, n = bt["bytes"], seqs.size
    cycles, seconds = float(pr.makespan), float(actions["seconds"])
    dense_bytes, dense_ops = dense_reference(w, cols)
    total_bytes = float(sum(v.sum() for v in nbytes.values()) + tr.state.sum())
    _, qk_mac, pv_mac = _macs(tr, cp)
    ops = 2.0 * float(qk_mac.sum() + pv_mac.sum())
    q, kpq = cp.q, cp.kpq
    k_rows = np.where(bt["stream"], q * kpq, cp.keys) * seqs * (nbytes["k_msb"] > 0)  # keys brought in
    v_rows = np.where(bt["stream"], q * cp.vals, bt["v_rows"]) * seqs * (nbytes["v"] > 0)
    summary: dict[str, float | int | str] = {
        "workload": w.model.name,
        "accelerator": acc.name,
        "baseline": opt.name,
        "requests": int(n),
        "queries": int((q * seqs).sum()),
        "cycles": int(round(cycles)),
        "seconds": seconds,
        **{f"dram_bytes_{k}": float(nbytes[k].sum()) for k in hbm.KINDS},
        "dram_bytes_state": float(tr.state.sum()),
        "dram_bytes_total": total_bytes,
        "transactions": int(tr.transactions.sum()),
        "row_activations": float(tr.row_activations.sum()),
        "dram_gbs": total_bytes / seconds / 1e9 if seconds > 0 else 0.0,
        "ops": ops,
        "gops": ops / seconds / 1e9 if seconds > 0 else 0.0,
        "dense_ops": dense_ops,
        "dense_equiv_gops": dense_ops / seconds / 1e9 if seconds > 0 else 0.0,
        "dense_reference_bytes": dense_bytes,
        "dram_reduction": dense_bytes / total_bytes if total_bytes > 0 else float("inf"),
        "refetch_rate": float(np.average(bt["refetch"], weights=seqs)) if n else 0.0,
        "keys_fetched": float(k_rows.sum()),
        "values_fetched": float(v_rows.sum()),
        "pipeline_passes": int(pr.passes),
        "pipeline_converged": int(pr.converged),
        # rows whose group's keys overflow half the K SRAM: no GQA sharing, multi-query rows stream per query
        "sram_overflow": float(np.average(~bt["fits"], weights=seqs)) if n else 0.0,
    }  # fmt: skip
    busy = cp.service.sum(axis=1)
    blocked = (pr.depart - pr.finish).sum(axis=1)
    for j, s in enumerate(STAGES):
        summary[f"busy_{s}"] = float(busy[j])
        summary[f"stall_{s}"] = float(max(0.0, cycles - busy[j]))
        summary[f"blocked_{s}"] = float(blocked[j])
        summary[f"utilization_{s}"] = float(busy[j] / cycles) if cycles > 0 else 0.0
    summary["bounding_stage"] = STAGES[int(np.argmax(busy))]
    if w.model.mode == "generation":
        summary.update(_phases(cols, q, seqs, nbytes, tr.state, pr, latency, acc))
    return summary


def _requests(tr: _Traffic, cp: _Compute, pr: PipelineResult, latency: np.ndarray) -> Any:
    """One row per request: position, counts, bytes by kind, transactions, service cycles, start and end."""
    import pandas as pd

    cols, nbytes = tr.cols, tr.table["bytes"]
    return pd.DataFrame(
        {
            **{c: cols[c] for c in ("step", "layer", "head", "query", "queries", "seq_len")},
            "keys": cols["keys_fetched"],
            "values": cols["values_fetched"],
            "refetch": tr.table["refetch"],
            **{f"bytes_{k}": nbytes[k] for k in hbm.KINDS},
            "bytes_state": tr.state,
            "sequences": cols["sequences"],
            "transactions": tr.transactions.astype(np.int64),
            **{f"cycles_{s}": cp.service[j] for j, s in enumerate(STAGES)},
            "start": pr.start[0],
            "end": pr.depart[-1] + latency[-1],
        }
    )


def _policy(w: Workload) -> str:
    return w.pruning.policy if w.pruning.enabled else "spatten"


def _policy_work(
    w: Workload, cols: dict[str, np.ndarray], layer_start: np.ndarray, group_start: np.ndarray, key_bits: Any
) -> dict[str, np.ndarray]:
    """Per row: metadata DRAM bytes, Q.K-unit key equivalents and one top-k (n, k) a KV policy adds to its
    decode rows (rows of one query), from ``models/kv_policy.py``'s rules:

    - H2O: on a (step, layer)'s first row, the live tokens' scores read and written back
      (``2 x keys x IMPORTANCE_BITS / 8``) and the eviction, a top-k of ``keys`` out of ``keys + 1``;
    - Quest: on each K/V head's first row, the min/max key vectors of every page of the context
      (``2 x pages x head_dim x key bits / 8``); on every query head's row, two bound dot products per page;
      on a (step, layer)'s first row, the choice of ``ceil(keys / page_size)`` pages out of ``pages``;
    - SpAtten, StreamingLLM: nothing here (SpAtten's token top-k is the trace's ``token_topk``).
    """
    n = cols["step"].size
    out = {
        "meta_bytes": np.zeros(n),
        "bound_keys": np.zeros(n),
        "select_n": np.zeros(n),
        "select_k": np.zeros(n),
    }
    policy = _policy(w)
    decode = cols["queries"] == 1
    keys = cols["keys_fetched"].astype(np.float64)
    if policy == "h2o":
        rows = layer_start & decode
        out["meta_bytes"][rows] = 2.0 * keys[rows] * IMPORTANCE_BITS / 8.0
        out["select_n"][rows], out["select_k"][rows] = keys[rows] + 1, keys[rows]
    elif policy == "quest":
        s = float(w.pruning.page_size)
        pages = np.ceil(cols["seq_len"] / s)
        rows = group_start & decode
        d = cols["head_dim"].astype(np.float64)
        out["meta_bytes"][rows] = (
            2.0 * pages[rows] * d[rows] * np.asarray(key_bits, dtype=np.float64)[rows] / 8.0
        )
        out["bound_keys"][decode] = 2.0 * pages[decode]
        rows = layer_start & decode
        out["select_n"][rows], out["select_k"][rows] = pages[rows], np.ceil(keys[rows] / s)
    return out


def _phases(
    cols: dict[str, np.ndarray],
    q: np.ndarray,
    seqs: np.ndarray,
    nbytes: dict[str, np.ndarray],
    state: np.ndarray,
    pr: PipelineResult,
    latency: np.ndarray,
    acc: Any,
) -> dict[str, float]:
    """A generation run split into its prompt pass (rows of several queries, at the start) and its decode
    steps (rows of one query): cycles until the last prompt row leaves the pipeline and after, the decode
    steps' DRAM bytes, and both per generated token (distinct decode steps x sequences)."""
    n = q.size
    prompt = q > 1
    decode = ~prompt
    per_row = sum(nbytes.values()) + state
    if prompt.any():
        last = int(np.flatnonzero(prompt)[-1])
        prefill_cycles = float(pr.depart[-1][last] + latency[-1])
    else:
        prefill_cycles = 0.0
    total = float(pr.makespan) if n else 0.0
    decode_cycles = max(0.0, total - prefill_cycles) if decode.any() else 0.0
    tokens = float(np.unique(cols["step"][decode]).size * seqs[decode].max()) if decode.any() else 0.0
    hz = acc.clock_ghz * 1e9
    decode_bytes = float(per_row[decode].sum())
    return {
        "prefill_seconds": prefill_cycles / hz,
        "prefill_dram_bytes": float(per_row[prompt].sum()),
        "decode_seconds": decode_cycles / hz,
        "decode_dram_bytes": decode_bytes,
        "decode_tokens": tokens,
        "decode_seconds_per_token": decode_cycles / hz / tokens if tokens else 0.0,
        "decode_dram_bytes_per_token": decode_bytes / tokens if tokens else 0.0,
    }
