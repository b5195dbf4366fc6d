"""Top-k engine latency from RTL runs (Verilator + cocotb) next to the cycle model and the release formula.

For every n in {64, 256, 1024, 2048} and P in {1, 4, 16, 32}, ``--requests`` random 16-bit requests
with k = n / 2 (and fresh pivot seeds) run through the Verilated ``TopKEngine(16, 2048, P)``. Printed per
(n, P): the search latency (t0 = last score and k accepted, to threshold known: the cycles ``searching``
is high) as RTL mean and standard deviation, the cycle model's mean on the same requests, the release
formula ``sum(ceil(n_round / P) + 3)`` on the same rounds, the final pass (output) cycles, and the total.
Also printed: Verilator build time per P and simulated cycles per second under cocotb.

Run: ``.venv/bin/python benchmarks/bench_topk.py [--requests 20] [--csv build/bench/topk_latency.csv]``
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spatten.models.topk import quickselect_trace, release_latency  # noqa: E402
from spatten.testbench.runner import run_cocotb  # noqa: E402
from spatten.testbench.topk_tb import Params  # noqa: E402

WIDTH = 16
MAX_N = 2048


def make_requests(ns: list[int], count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    lo, hi = -(1 << (WIDTH - 1)), (1 << (WIDTH - 1)) - 1
    return [
        {"scores": [rng.randint(lo, hi) for _ in range(n)], "k": n // 2, "seed": rng.randrange(1 << 16)}
        for n in ns
        for _ in range(count)
    ]


def run_p(p: int, reqs: list[dict], build: Path) -> tuple[list[dict], float, float, float]:
    """Rows for each request, build seconds, simulation seconds, simulated cycles."""
    build.mkdir(parents=True, exist_ok=True)
    vec = build / "vectors.json"
    vec.write_text(json.dumps(reqs))
    report = build / "report.jsonl"
    report.unlink(missing_ok=True)
    params = Params(p, WIDTH, MAX_N, vectors=str(vec), report=str(report))
    res = run_cocotb(
        params.engine(), "topk", "spatten.testbench.topk_tb", build, extra_env=params.env(),
        testcase="topk_exact",
    )  # fmt: skip
    if not res.ok:
        raise SystemExit(f"RTL run failed for P={p}: {res.report()}")
    lines = [json.loads(x) for x in report.read_text().splitlines()]
    rows = [r for r in lines if not r.get("summary")]
    cycles = sum(r["sim_cycles"] for r in lines if r.get("summary"))
    return rows, res.build_seconds, res.test_seconds, cycles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20, help="requests per (n, P) (default 20)")
    ap.add_argument("--ns", default="64,256,1024,2048", help="request lengths (default 64,256,1024,2048)")
    ap.add_argument("--ps", default="1,4,16,32", help="parallelisms (default 1,4,16,32)")
    ap.add_argument("--seed", type=int, default=2021)
    ap.add_argument("--csv", default=str(ROOT / "build" / "bench" / "topk_latency.csv"))
    args = ap.parse_args(argv)
    ns = [int(x) for x in args.ns.split(",")]
    ps = [int(x) for x in args.ps.split(",")]
    if args.requests < 2 or max(ns) > MAX_N:
        raise SystemExit(f"--requests must be >= 2 and every n <= {MAX_N}")
    reqs = make_requests(ns, args.requests, args.seed)
    out_rows = []
    print(
        f"{'n':>5} {'P':>3} {'search RTL mean':>15} {'sd':>6} {'model':>7} {'release':>8} "
        f"{'final':>7} {'total':>7} {'rounds':>6}"
    )
    for p in ps:
        t = time.perf_counter()
        rows, build_s, sim_s, cycles = run_p(p, reqs, ROOT / "build" / "bench" / f"topk_p{p}_n{MAX_N}")
        for n in ns:
            mine = [(r, q) for r, q in zip(rows, reqs, strict=True) if r["n"] == n]
            traces = [quickselect_trace(q["scores"], q["k"], p, q["seed"]) for _, q in mine]
            search = [r["search"] for r, _ in mine]
            model = [tr.select_cycles for tr in traces]
            if search != model:
                raise SystemExit(f"RTL search cycles differ from the model at n={n}, P={p}")
            release = [release_latency(tr.round_sizes, p) for tr in traces]
            final = [r["total"] - r["search"] for r, _ in mine]
            total = [r["total"] for r, _ in mine]
            row = {
                "n": n,
                "k": n // 2,
                "p": p,
                "requests": len(mine),
                "search_mean": statistics.mean(search),
                "search_sd": statistics.stdev(search),
                "search_min": min(search),
                "search_max": max(search),
                "model_mean": statistics.mean(model),
                "release_mean": statistics.mean(release),
                "final_mean": statistics.mean(final),
                "total_mean": statistics.mean(total),
                "rounds_mean": statistics.mean(tr.rounds for tr in traces),
            }
            out_rows.append(row)
            print(
                f"{n:5d} {p:3d} {row['search_mean']:15.1f} {row['search_sd']:6.1f} {row['model_mean']:7.1f} "
                f"{row['release_mean']:8.1f} {row['final_mean']:7.1f} {row['total_mean']:7.1f} "
                f"{row['rounds_mean']:6.1f}"
            )
        print(
            f"      P={p}: Verilator build {build_s:.1f} s (max_n {MAX_N}, W {WIDTH}); "
            f"{cycles:.0f} cycles simulated in {sim_s:.1f} s = {cycles / sim_s:.0f} cycles/s under cocotb; "
            f"step {time.perf_counter() - t:.1f} s"
        )
    path = Path(args.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out_rows[0]))
        w.writeheader()
        w.writerows(out_rows)
    tmp.replace(path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
