"""Baselines in the same framework: dense SpAtten hardware, A3, MNNFast, platform rooflines, numpy.

Parameters (with sources) come from ``sim/data/benchmarks.yaml``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any

import numpy as np
from spatten.models.config import Workload
from spatten.models.workload import shape_trace
from spatten.sim.simulate import Options, SimResult, run

__all__ = [
    "load_settings",
    "run_baseline",
    "dense_workload",
    "widen_trace",
    "roofline_seconds",
    "dense_work",
    "numpy_attention_seconds",
]

SETTINGS_PATH = Path(__file__).with_name("data") / "benchmarks.yaml"


@functools.cache
def load_settings() -> dict[str, Any]:
    """The parsed ``sim/data/benchmarks.yaml``."""
    import yaml

    return yaml.safe_load(SETTINGS_PATH.read_text())


def dense_workload(w: Workload) -> Workload:
    """``w`` with pruning and quantization off (every key/value fetched at the unquantized width)."""
    return dataclasses.replace(
        w,
        pruning=dataclasses.replace(w.pruning, enabled=False),
        quant=dataclasses.replace(w.quant, enabled=False),
    )


def widen_trace(trace: Any) -> Any:
    """A given trace made dense row by row: all ``seq_len`` keys and values, unquantized, no top-k.

    Heads or queries the trace has no rows for (pruned) cannot be restored from the trace alone.
    """
    t = trace.copy()
    t["keys_fetched"] = t["seq_len"]
    t["values_fetched"] = t["seq_len"]
    if "kv_values_fetched" in t.columns:
        t["kv_values_fetched"] = t["seq_len"]
    for c in ("key_bits", "key_lsb_bits", "query_bits", "value_bits", "token_topk", "value_topk"):
        t[c] = -1
    t["refetch"] = False
    t["refetch_threshold"] = -1.0
    return t


def run_baseline(w: Workload, trace: Any, name: str) -> SimResult:
    """Simulate ``w`` (or ``trace``) as SpAtten or as baseline ``name`` on ``w.accelerator``."""
    if name == "spatten":
        return run(w, shape_trace(w) if trace is None else trace, Options("spatten"))
    if name == "rtl":
        return run(w, shape_trace(w) if trace is None else trace, Options("rtl", rtl_as_built=True))
    dense = shape_trace(dense_workload(w)) if trace is None else widen_trace(trace)
    if name == "dense":
        return run(w, dense, Options("dense"))
    cfg = load_settings()["baselines"]
    if name == "a3":
        a3 = cfg["a3"]
        return run(
            w, dense, Options("a3", candidate_fraction=float(a3["candidate_fraction"]),
                              candidate_search_speed=float(a3.get("candidate_search_speed", 1.0))),
        )  # fmt: skip
    if name == "mnnfast":
        m = cfg["mnnfast"]
        return run(
            w, dense, Options("mnnfast", value_fraction=float(m["value_fraction"]), serial=bool(m["serial"]))
        )
    raise ValueError(f"baseline = {name!r} is not one of spatten, dense, a3, mnnfast, rtl")


def dense_work(w: Workload) -> dict[str, float]:
    """Dense fp32 work of a workload: flops (2 x MACs), bytes (K, V, Q at 4 B), kernel launches.

    Summarization: per layer and head, ``L x L x D`` MACs for Q.K and for prob.V; K, V, Q read once.
    Generation: per step, layer and head, one query against ``seq_len`` keys; K and V read every step.
    """
    m = w.model
    d = m.head_dim
    if m.mode == "summarization":
        L = m.prompt_len
        flops = m.layers * m.heads * 2.0 * (2.0 * L * L * d)
        nbytes = m.layers * m.heads * 3.0 * L * d * 4.0
        launches = m.layers
    else:
        seq = m.prompt_len + np.arange(1, m.gen_tokens + 1, dtype=np.float64)
        flops = float(m.layers * m.heads * (2.0 * 2.0 * seq * d).sum())
        nbytes = float(m.layers * m.heads * ((2.0 * seq + 1.0) * d * 4.0).sum())
        launches = m.layers * m.gen_tokens
    return {"flops": float(flops), "bytes": float(nbytes), "layer_launches": float(launches)}


def roofline_seconds(w: Workload, platform: str) -> float:
    """Seconds of dense attention of ``w`` on ``platform`` by its roofline (``benchmarks.yaml``)."""
    plats = load_settings()["platforms"]
    if platform not in plats:
        raise ValueError(f"platform = {platform!r} is not one of {', '.join(plats)}")
    p = plats[platform]
    work = dense_work(w)
    eff = float(p["efficiency"])
    t_compute = work["flops"] / (float(p["peak_gflops"]) * 1e9 * eff)
    t_memory = work["bytes"] / (float(p["bandwidth_gbs"]) * 1e9 * eff)
    kernels = float(p["kernels_per_layer"][w.model.mode])  # the PyTorch eager op sequence of one layer
    overhead = work["layer_launches"] * kernels * float(p["kernel_overhead_us"]) * 1e-6
    return max(t_compute, t_memory) + overhead


def numpy_attention_seconds(w: Workload, budget_s: float = 0.05, seed: int = 0) -> dict[str, float]:
    """Time dense fp32 attention of ``w`` in numpy on this machine.

    A sample of ``(layer, head)`` units (summarization: one full ``L x L`` attention; generation: one step
    of every head of one layer against its cache) is timed until ``budget_s`` is spent, and the mean time
    per unit is scaled to the whole workload.

    Returns
    -------
    dict with ``seconds`` (whole workload, extrapolated), ``units_timed`` and ``units_total``.
    """
    rng = np.random.default_rng(seed)
    m = w.model
    d = m.head_dim
    if m.mode == "summarization":
        L = m.prompt_len
        q, k, v = (rng.standard_normal((L, d), dtype=np.float32) for _ in range(3))
        total = m.layers * m.heads

        def unit() -> None:
            s = q @ k.T / np.float32(np.sqrt(d))
            s = np.exp(s - s.max(axis=1, keepdims=True))
            (s / s.sum(axis=1, keepdims=True)) @ v

    else:
        seq = m.prompt_len + m.gen_tokens // 2  # the mean cache length
        kc = rng.standard_normal((m.heads, seq, d), dtype=np.float32)
        vc = rng.standard_normal((m.heads, seq, d), dtype=np.float32)
        q1 = rng.standard_normal((m.heads, 1, d), dtype=np.float32)
        total = m.layers * m.gen_tokens

        def unit() -> None:
            s = q1 @ kc.transpose(0, 2, 1) / np.float32(np.sqrt(d))
            s = np.exp(s - s.max(axis=2, keepdims=True))
            (s / s.sum(axis=2, keepdims=True)) @ vc

    unit()  # warm-up
    n = 0
    t0 = time.perf_counter()
    while True:
        unit()
        n += 1
        el = time.perf_counter() - t0
        if el >= budget_s or n >= total:
            break
    return {"seconds": el / n * total, "units_timed": float(n), "units_total": float(total)}
