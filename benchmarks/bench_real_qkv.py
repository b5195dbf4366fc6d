"""SpAtten on real Q/K/V: MiniLM-L6 on the built-in text (or a file), three policies, real vs synthetic.

Prints the encoder's wall time, then for each policy the wall time of ``run_attention`` (fixed point)
and the trace summary (per-layer keys/values fetched and refetch rate; overall keep ratios, refetch
rate, key/value reduction), for the real Q/K/V and for seeded synthetic Q/K/V of the same shape:

- ``bert``: the minilm preset (the paper's BERT averages: token keep 0.6, head keep 0.9, static 12-bit);
- ``pq``: the same pruning plus progressive quantization 6+4 bits, refetch threshold 0.05, value keep 0.2
  (GPT-2-Small's release quantization and value ratio), to see how often real attention rows refetch.

Run: ``.venv/bin/python benchmarks/bench_real_qkv.py [--text FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from spatten.models.attention import run_attention, summarize_trace
from spatten.models.config import QuantConfig, workload_preset
from spatten.models.real_qkv import DEFAULT_TEXT, encode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=Path, default=None, help="UTF-8 text file (default: built-in text)")
    args = ap.parse_args()
    text = DEFAULT_TEXT if args.text is None else args.text.read_text(encoding="utf-8")
    t0 = time.perf_counter()
    enc = encode(text)
    t_enc = time.perf_counter() - t0
    n = int(enc.token_ids.size)
    print(f"MiniLM-L6 encoder (numpy float32): {n} tokens, {t_enc:.2f} s (includes loading the weights)")
    base = workload_preset("minilm", prompt_len=n)
    pq = dataclasses.replace(
        base,
        quant=QuantConfig(key_msb_bits=6, key_lsb_bits=4, value_bits=6, refetch_threshold=0.05),
        pruning=dataclasses.replace(base.pruning, value_keep=0.2),
    )
    for label, w in (("bert", base), ("pq", pq)):
        for src, qkv in (("real", (enc.q, enc.k, enc.v)), ("synthetic seed 0", None)):
            t0 = time.perf_counter()
            r = run_attention(w, mode="fixed", qkv=qkv)
            dt = time.perf_counter() - t0
            per_layer, ov = summarize_trace(r.trace, r.heads, r.full_keys)
            print(f"\npolicy {label}, {src} Q/K/V: run_attention {dt:.2f} s")
            print(per_layer.to_string(index=False, formatters={"refetch_rate": "{:.3f}".format}))
            print(
                f"requests {ov['requests']}, keys {ov['keys_fetched']}, values {ov['values_fetched']}; "
                f"keep token {ov['token_keep']:.3f} head {ov['head_keep']:.3f} value {ov['value_keep']:.3f}; "
                f"refetch {ov['refetch_rate']:.3f}; reduction keys {ov['key_reduction']:.2f}x "
                f"values {ov['value_reduction']:.2f}x"
            )


if __name__ == "__main__":
    main()
