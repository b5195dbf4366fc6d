"""Accuracy in the loop: what SpAtten's policies cost on real models and real text, and how long it takes.

Run: ``.venv/bin/python benchmarks/bench_accuracy.py [--windows N] [--window-len T]``. Prints, for SmolLM2 on
the Brown corpus (generation mode, fixed-point datapath) and MiniLM on Brown documents, each policy's metric
against dense, the pruning reached, the DRAM reduction of the run's own trace, and the wall time.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TQDM_DISABLE", "1")

from spatten.models import brown  # noqa: E402
from spatten.models.accuracy import decoder_accuracy, encoder_accuracy, encoder_windows  # noqa: E402
from spatten.models.attention import summarize_trace  # noqa: E402
from spatten.models.config import replace_path, workload_preset  # noqa: E402
from spatten.models.real_qkv import load_minilm  # noqa: E402
from spatten.sim.api import simulate  # noqa: E402

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


def _reached(w, trace) -> str:
    _, o = summarize_trace(trace, w.model.heads)
    red = simulate(w, trace).summary["dram_reduction"]
    return (
        f"token {o['token_keep']:.2f} head {o['head_keep']:.2f} value {o['value_keep']:.2f} DRAM {red:.1f}x"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--windows", type=int, default=2)
    ap.add_argument("--window-len", type=int, default=128)
    ap.add_argument("--docs", type=int, default=32, help="MiniLM documents")
    args = ap.parse_args()
    text = "\n".join(d.text for d in brown.documents())
    print(f"SmolLM2, Brown corpus, {args.windows} x {args.window_len} tokens, generation mode, fixed point")
    for name, ch in DECODER_POLICIES.items():
        w = _policy("smollm2", ch)
        t = time.perf_counter()
        r = decoder_accuracy(w, text, args.window_len, args.windows, "fixed")
        dt = time.perf_counter() - t
        rise = r.perplexity / r.dense_perplexity - 1
        print(f"  {name:38s} ppl {r.perplexity:8.2f} (dense {r.dense_perplexity:.2f}, {rise:+.1%})  "
              f"{_reached(w, r.trace)}  {dt:.1f} s")  # fmt: skip
    model = load_minilm()
    inputs = encoder_windows(None, 128, args.docs, model)
    print(f"MiniLM, {args.docs} Brown documents x 128 tokens, fixed point")
    for name, ch in ENCODER_POLICIES.items():
        w = _policy("minilm", ch)
        t = time.perf_counter()
        r = encoder_accuracy(w, inputs, "fixed")
        dt = time.perf_counter() - t
        print(f"  {name:38s} cosine {r.cosine_mean:.4f}  probe {r.task_accuracy:.3f} (dense "
              f"{r.dense_task_accuracy:.3f})  {_reached(w, r.trace)}  {dt:.1f} s")  # fmt: skip


if __name__ == "__main__":
    main()
