"""Sweep throughput: 1000 points of GPT-2-Medium generation on 1 and 2 local Dask workers.

Runs ``examples/sweeps/gpt2-medium-1000.yaml`` (992-token prompt, 32 generated tokens, 10 x 10 x 10
points) into a fresh temporary folder per run, so nothing is skipped, and prints wall time (cluster
start and Parquet writes included) and points per second. Target: under 60 s with 2 workers.

    .venv/bin/python benchmarks/bench_sweep.py                  # 1 and 2 worker processes
    .venv/bin/python benchmarks/bench_sweep.py --threads        # also 2 threads in one process
    .venv/bin/python benchmarks/bench_sweep.py --points 200     # a quicker look

``--accuracy [SWEEP.yaml]`` times an accuracy sweep instead (default the tiny MiniLM example; e.g.
``examples/sweeps/smollm2-accuracy.yaml``) on 2 worker processes, twice: with an empty model-run cache
(``SPATTEN_CACHE_DIR`` in a temporary folder: every policy runs its model) and again into a fresh output
folder with that cache warm (simulations only).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from spatten.sim.sweep.runner import run_sweep
from spatten.sim.sweep.spec import load_spec

SPEC = Path(__file__).resolve().parent.parent / "examples" / "sweeps" / "gpt2-medium-1000.yaml"
TINY_ACCURACY = SPEC.parent / "minilm-accuracy-tiny.yaml"
TARGET_SECONDS = 60.0


def bench_accuracy(path: Path) -> None:
    """Cold (every policy's model runs) and warm (cached runs, simulations only) accuracy sweep."""
    spec = load_spec(path)
    assert spec.accuracy is not None, f"{path} has no accuracy block"
    policies = len({(p.workload.model, p.workload.pruning, p.workload.quant) for p in spec.unique_points()})
    print(
        f"sweep {path.name}: {len(spec.points)} points, {policies} policies (model runs); 2 worker processes"
    )
    with tempfile.TemporaryDirectory(prefix="bench_sweep.") as tmp:
        os.environ["SPATTEN_CACHE_DIR"] = tmp  # read by the workers the cluster starts
        for label, out in (("empty model-run cache", "cold"), ("warm cache, fresh --out", "warm")):
            t0 = time.perf_counter()
            run = run_sweep(spec, Path(tmp) / out, workers=2, progress=False)
            assert run.n_run == len(spec.unique_points()) and run.n_failed == 0 and run.n_lost == 0
            sec = time.perf_counter() - t0
            print(f"{label:26s} {run.n_run:4d} points in {sec:7.1f} s = {sec / run.n_run:6.2f} s/point")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000, help="first N points of the sweep (default 1000)")
    ap.add_argument("--threads", action="store_true", help="also time 2 threads in one worker process")
    ap.add_argument(
        "--accuracy",
        nargs="?",
        const=TINY_ACCURACY,
        type=Path,
        metavar="SWEEP.yaml",
        help="time an accuracy sweep instead (default the tiny MiniLM example)",
    )
    args = ap.parse_args()
    if args.accuracy:
        bench_accuracy(args.accuracy)
        return
    spec = load_spec(SPEC)
    if not 1 <= args.points <= len(spec.points):
        raise SystemExit(f"--points must be in 1..{len(spec.points)}")
    spec = dataclasses.replace(spec, points=spec.points[: args.points])
    runs = [("1 worker process", 1, True), ("2 worker processes", 2, True)]
    if args.threads:
        runs.append(("2 worker threads (1 process)", 2, False))
    print(f"sweep {SPEC.name}: {len(spec.points)} points of GPT-2-Medium generation (992 + 32 tokens)")
    for label, workers, processes in runs:
        with tempfile.TemporaryDirectory(prefix="bench_sweep.") as out:
            run = run_sweep(spec, out, workers=workers, processes=processes, progress=False)
        assert run.n_run == len(spec.unique_points()) and run.n_failed == 0 and run.n_lost == 0
        verdict = ""
        if workers == 2 and processes and len(spec.points) == 1000:
            met = "met" if run.seconds < TARGET_SECONDS else "MISSED"
            verdict = f"  (target < {TARGET_SECONDS:.0f} s: {met})"
        print(
            f"{label:30s} {run.n_run:5d} points in {run.seconds:6.1f} s = "
            f"{run.n_run / run.seconds:6.1f} points/s{verdict}"
        )


if __name__ == "__main__":
    main()
