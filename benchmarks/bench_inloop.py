"""Per-call time of SpAtten's in-loop attention (``SpAttenAttention.attend``) in a decoder's steps.

Run: ``.venv/bin/python benchmarks/bench_inloop.py [--repeats N] [--mode fixed|float] [--prefill-layers L]``.
SmolLM2's shape and preset policy (9 query heads sharing 3 K/V heads, head_dim 64, token pruning, value
pruning 0.5, progressive quantization 8+4 bits). Generation: one query against 128 and 512 cached keys; prints
the best and median time of one ``attend`` call (layer 0, every key live) and of one ``begin_layer`` +
``attend`` pair averaged over a whole 30-layer step (later layers see fewer keys once token pruning starts).
Prefill: one causal step over 513 tokens (all queries at once), time per layer of its first L layers.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from spatten.models.config import workload_preset
from spatten.models.inloop import SpAttenAttention


def _inputs(rng: np.random.Generator, heads: int, kv_heads: int, n: int, d: int, peaked: bool):
    """Gaussian Q, K, V; ``peaked``: token 0's key points along its group's queries (an attention sink), so
    rows are peaked and never refetch; otherwise every row is flat and refetches the key LSBs."""
    q = rng.standard_normal((heads, 1, d), dtype=np.float32)
    k = rng.standard_normal((kv_heads, n, d), dtype=np.float32)
    v = rng.standard_normal((kv_heads, n, d), dtype=np.float32)
    if peaked:
        k[:, 0] = 4 * q.reshape(kv_heads, -1, d).mean(axis=1)
    return q, k, v


def bench_attend(n: int, repeats: int, mode: str, peaked: bool) -> list[float]:
    """Seconds per ``attend`` call at layer 0 with ``n`` live keys (the first step: nothing pruned yet)."""
    w = workload_preset("smollm2")
    m = w.model
    rng = np.random.default_rng(0)
    attn = SpAttenAttention(w, n, generation=True, mode=mode)
    attn.begin_step(n)
    q, k, v = _inputs(rng, m.heads, m.n_kv_heads, n, m.head_dim, peaked)
    qpos = np.array([n - 1])
    times = []
    for _ in range(repeats):
        live = attn.begin_layer(0)  # layer 0 keeps every token: the call always sees n keys
        kl, vl = k[:, live], v[:, live]
        t0 = time.perf_counter()
        attn.attend(0, q, kl, vl, qpos)
        times.append(time.perf_counter() - t0)
    return times


def bench_step(n: int, repeats: int, mode: str, peaked: bool) -> list[float]:
    """Seconds per layer (``begin_layer`` + ``attend``) of whole 30-layer generation steps at length ``n``."""
    w = workload_preset("smollm2")
    m = w.model
    rng = np.random.default_rng(1)
    attn = SpAttenAttention(w, n + repeats, generation=True, mode=mode)
    data = [_inputs(rng, m.heads, m.n_kv_heads, n + repeats, m.head_dim, peaked) for _ in range(m.layers)]
    times = []
    for t in range(repeats):
        nt = n + t
        attn.begin_step(nt)
        qpos = np.array([nt - 1])
        total = 0.0
        for li, (q, k, v) in enumerate(data):
            t0 = time.perf_counter()
            live = attn.begin_layer(li)
            t1 = time.perf_counter()
            kl, vl = k[:, live], v[:, live]  # the model's gather of the live cache, not timed
            t2 = time.perf_counter()
            attn.attend(li, q, kl, vl, qpos)
            total += t1 - t0 + time.perf_counter() - t2
        times.append(total / m.layers)
    return times


def bench_prefill(n: int, layers: int, mode: str, peaked: bool) -> list[float]:
    """Seconds per layer (``begin_layer`` + ``attend``) of a causal prefill of ``n`` tokens, all queries."""
    w = workload_preset("smollm2")
    m = w.model
    rng = np.random.default_rng(2)
    attn = SpAttenAttention(w, n, generation=False, causal=True, mode=mode)
    attn.begin_step(n)
    times = []
    for li in range(layers):
        q = rng.standard_normal((m.heads, n, m.head_dim), dtype=np.float32)
        k = rng.standard_normal((m.n_kv_heads, n, m.head_dim), dtype=np.float32)
        v = rng.standard_normal((m.n_kv_heads, n, m.head_dim), dtype=np.float32)
        if peaked:  # token 0 is a sink every query leans towards
            u = rng.standard_normal((m.n_kv_heads, m.head_dim)).astype(np.float32)
            q += np.repeat(u, m.heads // m.n_kv_heads, axis=0)[:, None]
            k[:, 0] = 2 * u
        t0 = time.perf_counter()
        live = attn.begin_layer(li)
        t1 = time.perf_counter()
        kl, vl = k[:, live], v[:, live]
        t2 = time.perf_counter()
        attn.attend(li, q, kl, vl, np.arange(n))
        times.append(t1 - t0 + time.perf_counter() - t2)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--mode", choices=("fixed", "float"), default="fixed")
    ap.add_argument("--prefill-layers", type=int, default=8, help="layers of the 513-token causal prefill")
    args = ap.parse_args()
    print(
        f"SpAttenAttention.attend, smollm2 preset, 9 heads / 3 K/V heads, D 64, 1 query, {args.mode} datapath"
    )
    for peaked in (False, True):
        print(
            "peaked rows (no LSB refetch):" if peaked else "flat random rows (every row refetches the LSBs):"
        )
        for n in (128, 512):
            a = np.array(bench_attend(n, args.repeats, args.mode, peaked)) * 1e3
            s = np.array(bench_step(n, max(4, args.repeats // 30), args.mode, peaked)) * 1e3
            print(
                f"  {n:4d} keys: attend best {a.min():.3f} ms, median {np.median(a):.3f} ms; per layer of a"
                f" 30-layer step (begin_layer + attend) best {s.min():.3f} ms, median {np.median(s):.3f} ms"
            )

    for peaked in (False, True):
        p = np.array(bench_prefill(513, args.prefill_layers, args.mode, peaked)) * 1e3
        kind = "peaked rows" if peaked else "flat random rows"
        print(f"causal prefill, 513 tokens, 9 heads, {kind}: per layer best {p.min():.0f} ms, ", end="")
        print(f"median {np.median(p):.0f} ms")


if __name__ == "__main__":
    main()
