"""How long the accuracy harness takes: the issue's speed targets on this machine.

Prints, each timed ``--repeats`` times (best and median):

- SmolLM2 generation mode over one window of ``--window-len`` tokens (default 512) with the full policy of
  the ``smollm2`` preset (token 0.5, value 0.5, progressive 8+4 bits, fixed-point datapath), one BLAS
  thread and ``--threads`` threads; target < 20 s for 512 tokens;
- the same over a batch of four windows (:data:`spatten.models.accuracy.WINDOW_BATCH`), per window;
- SmolLM2 prefill mode over the same window (one causal pass with SpAtten inside every layer), and the dense
  float32 prefill alone (target < 3 s for 512 tokens);
- MiniLM-L6 on 128 tokens of a Brown document, dense float32 and with SpAtten (the minilm preset, fixed
  point) inside every layer; target < 0.1 s.

The machine's load average is printed beside the times: other processes on the two cores slow everything down.

Run: ``.venv/bin/python benchmarks/bench_accuracy_speed.py [--window-len T] [--threads N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TQDM_DISABLE", "1")

from spatten.models import brown, smollm2  # noqa: E402
from spatten.models.accuracy import WINDOW_BATCH, decoder_accuracy  # noqa: E402
from spatten.models.config import workload_preset  # noqa: E402
from spatten.models.real_qkv import encode, encode_spatten, load_minilm  # noqa: E402


def timed(fn: Callable[[], object], repeats: int) -> str:
    """Best and median wall time of ``repeats`` calls, as text."""
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return f"best {min(ts):.3f} s, median {statistics.median(ts):.3f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window-len", type=int, default=512, help="SmolLM2 window (default 512)")
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads of the second run (default 2)")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each SmolLM2 case (default 1)")
    args = ap.parse_args()
    text = "\n".join(d.text for d in brown.documents()[:40])
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")

    w = workload_preset("smollm2")
    smollm2.load_smollm2()
    for threads in dict.fromkeys([1, args.threads]):
        smollm2.DECODE_THREADS = smollm2.BLAS_THREADS = threads
        t = timed(lambda: decoder_accuracy(w, text, args.window_len, 1), args.repeats)
        print(
            f"SmolLM2 generation, 1 window x {args.window_len} tokens, preset policy, "
            f"{threads} thread(s): {t}"
        )
    for threads in dict.fromkeys([1, args.threads]):
        smollm2.DECODE_THREADS = smollm2.BLAS_THREADS = threads
        t0 = time.perf_counter()
        decoder_accuracy(w, text, args.window_len, WINDOW_BATCH)
        dt = time.perf_counter() - t0
        print(
            f"SmolLM2 generation, {WINDOW_BATCH} windows x {args.window_len} tokens in lockstep, "
            f"{threads} thread(s): {dt:.1f} s, {dt / WINDOW_BATCH:.1f} s per window (includes the dense "
            "reference prefill)"
        )

    seq = smollm2.tokenize(text, max_tokens=args.window_len)
    for threads in dict.fromkeys([1, args.threads]):
        smollm2.DECODE_THREADS = smollm2.BLAS_THREADS = threads
        t = timed(lambda: smollm2.forward(seq), max(args.repeats, 3))
        print(f"SmolLM2 dense prefill, {args.window_len} tokens, {threads} thread(s): {t}")
        t = timed(lambda: decoder_accuracy(w, text, args.window_len, 1, mode="prefill"), args.repeats)
        print(
            f"SmolLM2 prefill mode, 1 window x {args.window_len} tokens, preset policy (includes the dense "
            f"reference), {threads} thread(s): {t}"
        )
    smollm2.DECODE_THREADS = smollm2.BLAS_THREADS = 1

    m = load_minilm()
    tok = m.tokenizer
    doc = tok.decode(tok.encode(brown.documents()[0].text).ids[1:127])  # 126 words + [CLS] [SEP] = 128
    wm = workload_preset("minilm")
    encode(doc, m)
    print(f"MiniLM 128 tokens dense: {timed(lambda: encode(doc, m), 10)}")
    print(f"MiniLM 128 tokens SpAtten (fixed): {timed(lambda: encode_spatten(doc, wm, m), 10)}")
    print(f"load average now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
