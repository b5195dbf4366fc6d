"""Simulator speed and memory on this machine: `python benchmarks/bench_sim.py`.

Prints, per workload, the best wall time of ``simulate()`` over a few repeats (trace built inside the
call, as the sweep uses it), requests simulated per second, and whether the bounded-buffer pipeline
reached its fixed point; then the wall time of `spatten reproduce` and the peak resident memory of this
process.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spatten.models.config import workload_preset  # noqa: E402
from spatten.sim.api import simulate  # noqa: E402

CASES = [
    ("gpt2-medium", None, "GPT-2-Medium 992 + 32 generation (target < 0.2 s)"),
    ("gpt2-small", None, "GPT-2-Small 992 + 32 generation"),
    ("bert-large", 512, "BERT-Large 512 tokens (target < 0.5 s)"),
    ("bert-base", 128, "BERT-Base 128 tokens"),
]


def _best(fn, repeats: int = 5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    simulate(workload_preset("bert-base", prompt_len=16))  # imports and table loads
    print(f"{'workload':60s} {'requests':>9s} {'best s':>8s} {'req/s':>11s} {'converged':>10s}")
    for model, seq, label in CASES:
        w = workload_preset(model, prompt_len=seq)
        for baseline in ("spatten", "dense"):
            res = simulate(w, baseline=baseline)
            t = _best(
                lambda w=w, b=baseline: simulate(w, baseline=b), repeats=3 if model == "bert-large" else 5
            )
            n = res.summary["requests"]
            conv = "yes" if res.summary["pipeline_converged"] else "NO"
            print(f"{label + ' [' + baseline + ']':60s} {n:9d} {t:8.3f} {n / t:11.0f} {conv:>10s}")
    from spatten.cmd_reproduce import reproduce

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        reproduce(Path(d) / "r")
        print(f"\nspatten reproduce (30 benchmarks, baselines, figures): {time.perf_counter() - t:.2f} s")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
