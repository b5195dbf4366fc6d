"""Accuracy in the loop: what SpAtten's policies cost on real models and real text, and how long it takes.

Run: ``.venv/bin/python benchmarks/bench_accuracy.py [--windows N] [--window-len T]``. Prints, for SmolLM2 on
the Brown corpus (generation and prefill modes, fixed-point datapath) and MiniLM on Brown documents, each
policy's metric against dense, the pruning reached, the DRAM reduction of the run's own trace (all from
:func:`spatten.sim.accuracy.run_accuracy`, what ``spatten accuracy`` runs), and the wall time.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")

from spatten.models.config import replace_path, workload_preset  # noqa: E402
from spatten.sim.accuracy import run_accuracy  # noqa: E402

DECODER_POLICIES = {
    "preset (token 0.5, value 0.5, PQ 8+4)": {},
    "PQ 8+4 only": {"pruning.enabled": False},
    "value 0.5 only": {"pruning.token_keep": 1.0, "quant.enabled": False},
    "token 0.5 only": {"pruning.value_keep": 1.0, "quant.enabled": False},
    "token 0.8, value 0.8, PQ 8+4": {"pruning.token_keep": 0.8, "pruning.value_keep": 0.8},
}
ENCODER_POLICIES = {
    "preset (token 0.6, head 0.9, 12-bit)": {},
    "token 0.8 only": {"pruning.token_keep": 0.8, "pruning.head_keep": 1.0},
    "head 0.9 only": {"pruning.token_keep": 1.0},
}


def _policy(model: str, changes: dict):
    w = workload_preset(model)
    for k, v in changes.items():
        w = replace_path(w, k, v)
    return w


def _reached(s: dict) -> str:
    return (
        f"token {s['reached_token_keep']:.2f} head {s['reached_head_keep']:.2f} "
        f"value {s['reached_value_keep']:.2f} DRAM {s['dram_reduction']:.1f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--windows", type=int, default=4, help="SmolLM2 windows (default 4, one lockstep batch)")
    ap.add_argument("--window-len", type=int, default=128)
    ap.add_argument("--docs", type=int, default=32, help="MiniLM documents")
    ap.add_argument("--modes", default="generation,prefill", help="SmolLM2 modes, comma-separated")
    args = ap.parse_args()
    for mode in args.modes.split(","):
        print(f"SmolLM2, Brown corpus, {args.windows} x {args.window_len} tokens, {mode} mode, fixed point")
        for name, ch in DECODER_POLICIES.items():
            t = time.perf_counter()
            s = run_accuracy(_policy("smollm2", ch), "smollm2", windows=args.windows,
                             window_len=args.window_len, mode=mode).summary  # fmt: skip
            dt = time.perf_counter() - t
            print(f"  {name:38s} ppl {s['perplexity']:8.2f} (dense {s['dense_perplexity']:.2f}, "
                  f"{s['perplexity_increase']:+.1%})  {_reached(s)}  {dt:.1f} s")  # fmt: skip
    print(f"MiniLM, {args.docs} Brown documents x 128 tokens, fixed point")
    for name, ch in ENCODER_POLICIES.items():
        t = time.perf_counter()
        s = run_accuracy(_policy("minilm", ch), "minilm", windows=args.docs, window_len=128).summary
        dt = time.perf_counter() - t
        print(f"  {name:38s} cosine {s['cosine_mean']:.4f}  probe {s['task_accuracy']:.3f} (dense "
              f"{s['dense_task_accuracy']:.3f})  {_reached(s)}  {dt:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
