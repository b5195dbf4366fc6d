"""SmolLM2-135M-Instruct in numpy (dense float32): load time, prefill and decode speed, perplexity.

Prints the time to read and dequantize the GGUF (first :func:`load_smollm2` in the process), the wall
time of one forward pass over 512 tokens (all logits, as perplexity needs, and last-position logits only,
as generation needs; best and median of ``--repeats``), prefill and decode tokens/s, and the dense
perplexity over ``--windows`` windows of ``--window`` tokens (protocol in ``spatten.models.smollm2``).

Text: ``--text FILE`` (any long UTF-8 English text), else the first ``--docs`` documents of the Brown
corpus in file order (``spatten.models.brown``, fetched by ``make``; the first ones are press reportage),
else, when the corpus is not there, ``real_qkv.DEFAULT_TEXT`` repeated. The perplexity is only meaningful
on real text: on the repeated default text the model soon copies the earlier copies and the number drops
far below what ordinary prose gives.

Timings depend on the machine's load (other processes share the two cores); the load average is printed
beside them. The prefill is timed on one BLAS thread (``smollm2.BLAS_THREADS``' default) and on the
process's BLAS threads; ``--threads N`` sets ``BLAS_THREADS`` for the perplexity run (decoding steps, calls
of at most ``FEW_TOKENS`` tokens, always use one).

Run: ``.venv/bin/python benchmarks/bench_smollm2.py [--text FILE] [--threads N]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from spatten.models import brown
from spatten.models import smollm2 as sm
from spatten.models.real_qkv import DEFAULT_TEXT
from threadpoolctl import threadpool_info


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=Path, help="UTF-8 English text file (default: the Brown corpus)")
    ap.add_argument("--docs", type=int, default=10, help="Brown documents to join (default 10)")
    ap.add_argument("--window", type=int, default=512, help="tokens per perplexity window (default 512)")
    ap.add_argument("--windows", type=int, default=4, help="perplexity windows (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="timed prefill passes (default 3)")
    ap.add_argument("--decode-steps", type=int, default=32, help="greedy decoding steps timed (default 32)")
    ap.add_argument(
        "--threads", type=int, default=None,
        help="smollm2.BLAS_THREADS for the perplexity run (0: the process's setting; default 1)",
    )  # fmt: skip
    args = ap.parse_args()
    if args.threads is not None:
        sm.BLAS_THREADS = args.threads or None

    if args.text is not None:
        text, label = brown.read_text(args.text), str(args.text)
    else:
        try:
            docs = brown.documents()[: args.docs]
            text = "\n\n".join(d.text for d in docs)
            label = f"the Brown corpus, documents {docs[0].name}..{docs[-1].name}"
        except ValueError as e:
            print(f"note: {e}; using the repeated built-in text")
            text = DEFAULT_TEXT * 12
            label = "real_qkv.DEFAULT_TEXT x 12 (repeated: perplexity not meaningful)"

    process_threads = max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")
    print(f"{os.cpu_count()} CPUs, process BLAS threads {process_threads}, load average {_load()}")
    t0 = time.perf_counter()
    m = sm.load_smollm2()
    t_load = time.perf_counter() - t0
    c = m.config
    print(
        f"load {t_load:.2f} s: {m.name} ({m.path.name}), {c.layers} layers, d={c.hidden}, "
        f"{c.heads} q / {c.kv_heads} kv heads, vocab {c.vocab}, tied={m.tied}"
    )

    ids = sm.tokenize(text, m)
    pre = np.concatenate([[c.bos_id], ids[:511]])
    if pre.size < 512:
        raise SystemExit(f"error: the text has {ids.size} tokens; the prefill needs 511")
    chosen = sm.BLAS_THREADS
    for threads in dict.fromkeys([1, process_threads]):
        sm.BLAS_THREADS = threads
        full = timed(lambda: sm.forward(pre, m), args.repeats)
        last = timed(lambda: sm.forward(pre, m, last_only=True), args.repeats)
        for what, ts in (("all logits: ", full), ("last logits:", last)):
            print(
                f"prefill 512 tokens, {threads} BLAS thread(s), {what} best {min(ts):.2f} s, "
                f"median {statistics.median(ts):.2f} s ({512 / min(ts):.0f} tokens/s)"
            )
    sm.BLAS_THREADS = chosen

    cache = sm.KVCache(c, capacity=512 + args.decode_steps)
    logits = sm.forward(pre, m, cache=cache, last_only=True)
    t0 = time.perf_counter()
    for _ in range(args.decode_steps):
        logits = sm.forward([int(np.argmax(logits[-1]))], m, cache=cache)
    dt = time.perf_counter() - t0
    print(
        f"decode {args.decode_steps} tokens after the 512-token prefill (1 BLAS thread): {dt:.2f} s "
        f"({args.decode_steps / dt:.1f} tokens/s)"
    )

    t0 = time.perf_counter()
    r = sm.perplexity(text, window_len=args.window, windows=args.windows, model=m)
    dt = time.perf_counter() - t0
    print(
        f"dense perplexity on {label}: {r.perplexity:.2f} over {r.windows} x {r.window_len} tokens "
        f"(text {r.text_tokens} tokens; {dt:.1f} s, BLAS_THREADS={sm.BLAS_THREADS})"
    )
    print("  per-window mean NLL (nats): " + ", ".join(f"{x:.3f}" for x in r.window_nll))
    print(f"load average now {_load()}")


def _load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


if __name__ == "__main__":
    main()
