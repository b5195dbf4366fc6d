"""Golden-model figures: fixed-point softmax error, and speed and summary of the attention trace runs.

Prints:
1. the fixed-point softmax's measured error against float64 softmax on Gaussian random rows (default
   widths, row lengths 16..1024, score spreads 0.5..30000 LSB), next to the stated bound;
2. for each preset workload in fixed and float mode: the wall time of ``run_attention`` and the trace
   summary (requests, refetch rate, token/head/value keep ratios, key and value reduction).

Run: ``.venv/bin/python benchmarks/bench_golden.py [--quick]`` (``--quick``: GPT-2-Medium fixed only).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from spatten.models.attention import run_attention, summarize_trace
from spatten.models.config import MODELS, workload_preset
from spatten.models.softmax import DEFAULT_SPEC, error_bound, softmax_fixed, softmax_float


def softmax_error() -> None:
    rng = np.random.default_rng(0)
    spec = DEFAULT_SPEC
    print("fixed-point softmax vs float64 (default widths, 100 rows per cell)")
    print(f"{'n':>5} {'spread':>7} {'max|dp|':>10} {'max sum|dp|':>12} {'worst err/bound':>16}")
    for n in (16, 128, 1024):
        for sd in (0.5, 8.0, 200.0, 30000.0):
            s = np.clip(np.rint(rng.normal(0, sd, (100, n))), -32768, 32767).astype(np.int64)
            p = softmax_fixed(s, spec) / 2.0**spec.out_bits
            ref = softmax_float(s * spec.scale / 2.0**spec.frac_bits)
            per, total = error_bound(ref, spec)
            err = np.abs(p - ref)
            ratio = max((err / per).max(), (err.sum(-1) / total).max())
            print(f"{n:5d} {sd:7.1f} {err.max():10.2e} {err.sum(-1).max():12.2e} {ratio:16.3f}")


def traces(quick: bool) -> None:
    names = ["gpt2-medium"] if quick else sorted(MODELS)
    modes = ["fixed"] if quick else ["fixed", "float"]
    print("\nrun_attention on the presets (seed 0, synthetic Q/K/V)")
    cols = ("seconds", 8), ("requests", 9), ("refetch", 8), ("token", 6), ("head", 6), ("value", 6)
    head = " ".join(f"{c:>{w}}" for c, w in cols)
    print(f"{'workload':12} {'mode':5} {head} {'K red.':>7} {'V red.':>7}")
    for name in names:
        for mode in modes:
            w = workload_preset(name)
            t0 = time.perf_counter()
            r = run_attention(w, mode=mode, seed=0)
            dt = time.perf_counter() - t0
            _, ov = summarize_trace(r.trace, r.heads, r.full_keys)
            print(
                f"{name:12} {mode:5} {dt:8.2f} {ov['requests']:9d} {ov['refetch_rate']:8.3f} "
                f"{ov['token_keep']:6.3f} {ov['head_keep']:6.3f} {ov['value_keep']:6.3f} "
                f"{ov['key_reduction']:7.2f} {ov['value_reduction']:7.2f}"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="GPT-2-Medium fixed only")
    args = ap.parse_args()
    softmax_error()
    traces(args.quick)


if __name__ == "__main__":
    main()
