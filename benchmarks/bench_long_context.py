"""Long-context, batched decode on SpAtten: the issue's speed and memory targets and the per-token figure.

Prints, for each case run in a fresh Python process (so its peak resident memory is its own):

- Llama-3.1-8B, batch 8, a 32,768-token prompt plus 256 generated tokens, SpAtten policy: wall time of
  the simulation in process (shape trace + simulator, imports excluded) and the process's peak resident
  memory; targets < 10 s and < 2 GB on the 2-core machine;
- Llama-3.1-8B, batch 1, a 131,072-token context (prompt 130,816 + 256 generated): that it runs, and the
  same figures.

With ``--figure [DIR]`` (default ``build/reports``) it also sweeps the context from 1k to 128k tokens
(batch 1, 64 generated tokens) for every KV policy and writes ``long_context.png`` / ``.pdf`` / ``.csv``
into DIR: DRAM bytes and latency per generated token against the context length (decode steps only; the
prompt pass is reported apart).

Run: ``.venv/bin/python benchmarks/bench_long_context.py [--figure [DIR]]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("TQDM_DISABLE", "1")

CASES = {
    "llama-3.1-8b batch 8, 32k prompt + 256": ("llama-3.1-8b", 32768, 256, 8),
    "llama-3.1-8b batch 1, 128k context": ("llama-3.1-8b", 131072 - 256, 256, 1),
}


def one(preset: str, prompt: int, gen: int, batch: int, policy: str = "spatten") -> dict:
    """Simulate one case in this process: seconds, peak RSS and the summary's headline figures."""
    from spatten.models.hf_config import hf_preset, hf_workload
    from spatten.sim.api import simulate

    w = hf_workload(hf_preset(preset), prompt_len=prompt, gen_tokens=gen, batch=batch)
    w = _with_policy(w, policy)
    t0 = time.perf_counter()
    s = simulate(w).summary
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    keys = ("seconds", "prefill_seconds", "decode_seconds_per_token", "decode_dram_bytes_per_token",
            "dram_reduction", "requests")  # fmt: skip
    return {"wall_s": dt, "peak_rss_bytes": rss, **{k: s[k] for k in keys}}


def _with_policy(w, policy: str):
    import dataclasses

    if policy == "spatten":
        return w
    return dataclasses.replace(w, pruning=dataclasses.replace(w.pruning, policy=policy))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--figure", metavar="DIR", nargs="?", const="build/reports",
        help="also sweep the context and write the figure into DIR (default build/reports)",
    )  # fmt: skip
    ap.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case, print JSON
    args = ap.parse_args()
    if args.case:
        print(json.dumps(one(*json.loads(args.case))))
        return
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    for label, case in CASES.items():
        out = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        r = json.loads(out)
        print(
            f"{label}: simulated in {r['wall_s']:.2f} s, peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB, "
            f"{r['requests']:,} rows; accelerator {r['seconds']:.1f} s "
            f"({r['prefill_seconds']:.1f} s prompt), decode {r['decode_seconds_per_token'] * 1e3:.3f} ms and "
            f"{r['decode_dram_bytes_per_token'] / 1e9:.3f} GB per token, "
            f"DRAM reduction {r['dram_reduction']:.2f}x"
        )
    if args.figure:
        figure(args.figure)


def figure(out_dir: str) -> None:
    """DRAM bytes and latency per generated token against the context, one line per KV policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from spatten.models.config import KV_POLICIES

    contexts = [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072]
    rows = []
    for policy in KV_POLICIES:
        for ctx in contexts:
            r = one("llama-3.1-8b", ctx - 64, 64, 1, policy)
            rows.append({"policy": policy, "context": ctx, **r})
            print(f"  {policy:12s} {ctx:>7,}: {r['decode_dram_bytes_per_token'] / 1e6:9.1f} MB, "
                  f"{r['decode_seconds_per_token'] * 1e6:8.1f} us per token")  # fmt: skip
    df = pd.DataFrame(rows)
    os.makedirs(out_dir, exist_ok=True)
    df.to_csv(os.path.join(out_dir, "long_context.csv"), index=False)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for policy, g in df.groupby("policy", sort=False):
        a.plot(g["context"], g["decode_dram_bytes_per_token"] / 1e6, marker="o", label=policy)
        b.plot(g["context"], g["decode_seconds_per_token"] * 1e6, marker="o", label=policy)
    for ax, label in ((a, "DRAM per generated token (MB)"), (b, "latency per generated token (us)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("context (tokens)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    a.legend()
    fig.suptitle("Llama-3.1-8B decode on SpAtten, batch 1, KV policies at token budget 0.5")
    fig.tight_layout()
    for ext in ("png", "pdf"):
        fig.savefig(os.path.join(out_dir, f"long_context.{ext}"))
    print(f"wrote {out_dir}/long_context.png, .pdf, .csv")


if __name__ == "__main__":
    main()
