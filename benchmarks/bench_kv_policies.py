"""KV policies on SmolLM2 and real text: perplexity against DRAM reduction and latency, one line per policy.

Runs ``spatten sweep examples/sweeps/smollm2-policies.yaml`` (SpAtten's cascade, H2O, StreamingLLM and Quest
at token budgets 0.3 to 0.85, 4 Brown windows of 128 tokens in generation mode; runs cached per policy, so a
rerun costs simulations only), prints one row per point and writes ``kv_policies.png`` / ``.pdf`` into
``--out`` (default ``build/reports``): perplexity increase over dense against the DRAM reduction of the
run's own trace, and against the simulated latency.

Run: ``.venv/bin/python benchmarks/bench_kv_policies.py [--out DIR] [--workers N]`` (about 5 minutes on the
2-core machine with 2 workers when nothing is cached).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

SWEEP = Path(__file__).resolve().parent.parent / "examples" / "sweeps" / "smollm2-policies.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="build/reports", help="figure folder (default build/reports)")
    ap.add_argument("--workers", type=int, default=2, help="sweep workers (default 2)")
    args = ap.parse_args()
    sweep_dir = Path(args.out) / "smollm2-policies"
    subprocess.run([sys.executable, "-m", "spatten", "sweep", str(SWEEP), "--out", str(sweep_dir),
                    "--workers", str(args.workers)], check=True, stdout=subprocess.DEVNULL)  # fmt: skip

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    r = pd.read_parquet(sweep_dir / "results.parquet")
    r = r.sort_values(["pruning.policy", "pruning.token_keep"], kind="stable")
    print(f"{'policy':13s} {'budget':>6s} {'reached':>7s} {'ppl':>8s} {'vs dense':>9s} {'DRAM red.':>9s} "
          f"{'latency us':>10s}")  # fmt: skip
    for _, row in r.iterrows():
        print(
            f"{row['pruning.policy']:13s} {row['pruning.token_keep']:6.2f} {row['reached_token_keep']:7.3f} "
            f"{row['perplexity']:8.2f} {100 * row['perplexity_increase']:+8.1f}% "
            f"{row['dram_reduction']:8.2f}x {row['seconds'] * 1e6:10.1f}"
        )
    print(f"dense perplexity {r['dense_perplexity'].iloc[0]:.2f}")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for policy, g in r.groupby("pruning.policy", sort=False):
        a.plot(g["dram_reduction"], 100 * g["perplexity_increase"], marker="o", label=policy)
        b.plot(g["seconds"] * 1e6, 100 * g["perplexity_increase"], marker="o", label=policy)
    a.set_xlabel("DRAM reduction over dense fp32 (x)")
    b.set_xlabel("simulated latency of the run (us)")
    for ax in (a, b):
        ax.set_ylabel("perplexity increase over dense (%)")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    a.legend(title="policy")
    fig.suptitle("SmolLM2-135M, 4 x 128 Brown tokens, generation: KV policies at token budgets 0.3-0.85")
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    for ext in ("png", "pdf"):
        fig.savefig(Path(args.out) / f"kv_policies.{ext}")
    print(f"wrote {args.out}/kv_policies.png, .pdf")


if __name__ == "__main__":
    main()
