"""What the accuracy search costs: `python benchmarks/bench_accuracy_search.py [--windows N --window-len N]`.

Prints, per real model, the wall time of the policy search of ``spatten reproduce --accuracy`` (points
already in the cache cost nothing: run it twice to see both) with the number of points and the chosen one,
then the wall time of the cache-only replay that plain ``spatten reproduce`` makes (it must stay a small part
of that command's 15 s). Uses the normal cache (``$SPATTEN_CACHE_DIR`` or ``~/.cache/spatten``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from spatten.sim.accuracy import MODELS  # noqa: E402
from spatten.sim.accuracy_search import cached_search, policy_text, search_model  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, help="windows per run (default: sim.accuracy.DEFAULTS)")
    ap.add_argument("--window-len", type=int, help="tokens per window (default 128)")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    args = ap.parse_args()
    kw = {"windows": args.windows, "window_len": args.window_len}
    for model in args.models:
        t = time.perf_counter()
        s = search_model(model, progress=True, **kw)
        dt = time.perf_counter() - t
        best = f"{s.best['dram_reduction']:.2f}x with {policy_text(s.best)}" if s.best else "none feasible"
        print(f"{model}: search {dt:.1f} s, {len(s.points)} points ({s.windows} x {s.window_len}); {best}")
    t = time.perf_counter()
    done = [cached_search(m, **kw).complete for m in args.models]
    print(f"cache-only replay of {len(done)} model(s): {time.perf_counter() - t:.2f} s (complete: {done})")


if __name__ == "__main__":
    main()
