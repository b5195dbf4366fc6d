"""The top-k engine's cycles on real attention rows against the simulator's sampler (``sim.rtl_core``).

The simulator's ``rtl`` design has no scores in its trace, so it takes the engine's mean cycles for a
request's (n, k) over the fixed-point softmax of normal logits (``sim.rtl_core.LOGIT_STD``). This script
checks that stand-in against real rows: MiniLM-L6 (``models.real_qkv``) on the built-in text, every layer
and head, ``--rows`` random query rows each, logits ``q . k / sqrt(D)`` through the same fixed-point
softmax (D = 64 spec) into ``models.topk.quickselect_trace`` (P = 16, eight indices a beat, as in the
core). It also prints the attention-core bench's random stimulus (``testbench.attention_core_tb``), whose
rows should look like the real ones. Columns: mean engine cycles on the rows, the sampler's mean for the
same (n, k), their ratio, and the share of zero probability codes.

Run: ``.venv/bin/python benchmarks/bench_topk_sampler.py [--rows 4] [--seed 0]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spatten.models.attention import softmax_spec  # noqa: E402
from spatten.models.softmax import softmax_fixed  # noqa: E402
from spatten.models.topk import quickselect_trace  # noqa: E402
from spatten.sim.rtl_core import rtl_topk_cycles  # noqa: E402

P, OUT_LANES = 16, 8
RATIOS = (0.1, 0.2, 0.3, 0.5)


def _row(label: str, n: int, k: int, cycles: list[int], zeros: list[float]) -> None:
    sampler = float(rtl_topk_cycles(np.array([n]), np.array([k]), P, OUT_LANES)[0])
    mean = float(np.mean(cycles))
    err = sampler / mean - 1
    print(f"{label:<22} {n:>5} {k:>5} {len(cycles):>5} | {mean:>8.1f} {sampler:>8.1f} {err:>+7.1%}"
          f" | {np.mean(zeros):>6.1%}")  # fmt: skip


def real_rows(rows: int, rng: np.random.Generator) -> None:
    from spatten.models.real_qkv import DEFAULT_TEXT, encode

    run = encode(DEFAULT_TEXT)
    layers, heads, n, d = run.q.shape
    spec = softmax_spec(64)  # the core's softmax widths; the logits are MiniLM's own (1/sqrt(32) scaled)
    lo, hi = -(1 << (spec.in_bits - 1)), (1 << (spec.in_bits - 1)) - 1
    probs = []
    for layer in range(layers):
        for head in range(heads):
            for qi in rng.choice(n, rows, replace=False):
                logits = run.q[layer, head, qi] @ run.k[layer, head].T / np.sqrt(d)
                codes = np.clip(np.round(logits / spec.scale * (1 << spec.frac_bits)), lo, hi).astype(
                    np.int64
                )
                probs.append(softmax_fixed(codes, spec))
    zeros = [float(np.mean(p == 0)) for p in probs]
    for ratio in RATIOS:
        k = max(1, round(ratio * n))
        cyc = [
            quickselect_trace(p, k, P, int(rng.integers(1 << 16)), out_lanes=OUT_LANES).cycles for p in probs
        ]
        _row(f"MiniLM-L6 keep {ratio}", n, k, cyc, zeros)


def stimulus_rows(count: int, rng: np.random.Generator) -> None:
    from spatten.models.attention_core import attention_core_ref
    from spatten.models.pruning import keep_count
    from spatten.models.quant import threshold_code
    from spatten.testbench.attention_core_tb import CoreParams, make_stimulus

    core = CoreParams(head_dim=64, k_par=8, v_par=8, max_n=1024).core()
    for ratio in RATIOS:
        cyc, zeros = [], []
        n = 1024
        k = keep_count(ratio, n)
        for _ in range(count):
            s = make_stimulus(rng, core, n, ratio, 0.0)
            st = attention_core_ref(
                s.q, s.k_msb, s.k_lsb, s.v, q_bits=core.q_bits, k_msb_bits=core.k_msb_bits,
                lsb_bits=core.lsb_bits, score_shift=core.score_shift, spec=core.spec,
                thr_code=threshold_code(0.0, core.spec.out_bits), k=k,
            )  # fmt: skip
            zeros.append(float(np.mean(st.probs == 0)))
            cyc.append(quickselect_trace(st.probs, k, P, s.seed, out_lanes=OUT_LANES).cycles)
        _row(f"bench stimulus {ratio}", n, k, cyc, zeros)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4, help="query rows per MiniLM head (default 4)")
    ap.add_argument("--stimuli", type=int, default=24, help="bench stimulus rows per keep ratio (default 24)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.rows < 1 or args.stimuli < 1:
        print("error: --rows and --stimuli must be at least 1", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    print(f"top-k engine P={P}, {OUT_LANES} indices a beat: mean cycles (search, final pass, register)")
    head = f"{'rows':<22} {'n':>5} {'k':>5} {'count':>5} | {'rows':>8} {'sampler':>8} {'error':>7}"
    print(f"{head} | {'zeros':>6}")
    real_rows(args.rows, rng)
    stimulus_rows(args.stimuli, rng)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
