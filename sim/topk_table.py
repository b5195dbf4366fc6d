"""Expected quick-select cost, tabulated from :func:`models.topk.quickselect_trace`.

Calling the exact quick-select once per request would dominate a simulation, so the simulator reads a
table instead: for a grid of candidate counts ``n`` and keep fractions ``k / n`` it holds the mean number
of elements streamed over all rounds and the mean number of rounds, measured by running
``quickselect_trace`` on seeded uniform random 12-bit integers (``SEEDS`` requests per point) with its
one-position pivot rule (``P = 1`` there; the round sizes then depend on the data and pivots only), the
rule of the paper's engine. The RTL at ``P >= 4`` takes a row's median as the pivot and streams about a
quarter fewer elements (n = 1,024, k = n / 2, P = 16: 166 search cycles against about 231); the
simulator does not model that gain yet, so its paper comparisons stay those of the paper's engine.
The table ships as ``sim/data/topk_cycles.csv``; ``python -m spatten.sim.topk_table`` regenerates it.

Expected cycles for ``P`` comparators: the search is ``QuickSelectTrace.select_cycles`` in expectation,
the final pass is P-wide (the paper's zero eliminator compacts P selected indices per cycle)::

    select = elements / P + rounds * (ROUND_OVERHEAD + (P - 1) / (2 P))   # E[ceil(m/P)] ~ m/P + (P-1)/2P
    final  = ceil(n / P) + FINAL_OVERHEAD
    cycles = select + final        (no rounds when k is 0 or n: final pass only)

Between grid points the means are interpolated bilinearly in ``(log2 n, k / n)``; above the largest
``n`` the streamed elements scale with ``n`` and the rounds grow by ``log2`` of the ratio.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
from spatten.models.topk import ROUND_OVERHEAD, quickselect_trace

# The final pass as the paper's engine does it: the zero eliminator compacts P scores per cycle, plus one
# output register. (The repo's RTL emits up to out_lanes indices a row and cycle and stops at the row of
# the k-th; `--design rtl` models that engine, sim/rtl_core.py.)
FINAL_OVERHEAD = 1

__all__ = ["expected_cycles", "expected_elements", "build_table", "TABLE_PATH", "SEEDS"]

TABLE_PATH = Path(__file__).with_name("data") / "topk_cycles.csv"
SEEDS = 24
LOG2_N = np.arange(3.0, 13.01, 0.5)  # n = 8 .. 8192
FRACTIONS = np.round(np.arange(0.025, 0.9751, 0.025), 3)


def build_table(seeds: int = SEEDS) -> np.ndarray:
    """Measure the table: rows (log2 n, fraction, mean elements, mean rounds)."""
    rng = np.random.default_rng(2021)
    rows = []
    for lg in LOG2_N:
        n = int(round(2.0**lg))
        for f in FRACTIONS:
            k = min(n - 1, max(1, int(round(f * n))))
            el = rd = 0.0
            for s in range(seeds):
                tr = quickselect_trace(rng.integers(0, 4096, n), k, 1, s)  # P = 1: one-position pivot
                el += sum(tr.round_sizes)
                rd += tr.rounds
            rows.append((lg, f, el / seeds, rd / seeds))
    return np.asarray(rows)


@functools.cache
def _grid() -> tuple[np.ndarray, np.ndarray]:
    raw = np.loadtxt(TABLE_PATH, delimiter=",", skiprows=1)
    shape = (LOG2_N.size, FRACTIONS.size)
    if raw.shape[0] != shape[0] * shape[1]:
        raise ValueError(
            f"{TABLE_PATH} does not match the grid; regenerate with python -m spatten.sim.topk_table"
        )
    return raw[:, 2].reshape(shape), raw[:, 3].reshape(shape)


def _interp(n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    elems, rounds = _grid()
    lg = np.log2(np.maximum(n, 1).astype(np.float64))
    lgc = np.clip(lg, LOG2_N[0], LOG2_N[-1])
    fr = np.clip(k / np.maximum(n, 1), FRACTIONS[0], FRACTIONS[-1])
    gi = np.clip((lgc - LOG2_N[0]) / 0.5, 0, LOG2_N.size - 1 - 1e-9)
    gj = np.clip((fr - FRACTIONS[0]) / 0.025, 0, FRACTIONS.size - 1 - 1e-9)
    i0, j0 = gi.astype(np.int64), gj.astype(np.int64)
    ti, tj = gi - i0, gj - j0

    def bil(t: np.ndarray) -> np.ndarray:
        return (
            t[i0, j0] * (1 - ti) * (1 - tj)
            + t[i0 + 1, j0] * ti * (1 - tj)
            + t[i0, j0 + 1] * (1 - ti) * tj
            + t[i0 + 1, j0 + 1] * ti * tj
        )

    e = bil(elems)
    r = bil(rounds)
    # Elements per request scale with n; the table's smallest/largest n bound the shape.
    e = e * (np.maximum(n, 1) / 2.0**lgc)
    r = r + np.maximum(lg - LOG2_N[-1], 0.0)
    return e, r


def expected_elements(n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (elements streamed over all rounds, rounds) of quick-select for ``k`` of ``n``.

    Zero for ``k <= 0`` or ``k >= n`` (no search).
    """
    n = np.asarray(n, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    e, r = _interp(n, k)
    search = (k > 0) & (k < n)
    return np.where(search, e, 0.0), np.where(search, r, 0.0)


def expected_cycles(n: np.ndarray, k: np.ndarray, parallelism: int = 16) -> np.ndarray:
    """Mean quick-select latency in cycles (search rounds + final pass) for ``k`` of ``n`` with ``P``.

    Parameters
    ----------
    n, k : array_like
        Candidates and kept count per request (broadcast together).
    parallelism : int
        Comparators P (>= 1).

    Returns
    -------
    numpy.ndarray of float64
    """
    if isinstance(parallelism, bool) or not isinstance(parallelism, int) or parallelism < 1:
        raise ValueError(f"parallelism = {parallelism!r} is outside the allowed range >= 1")
    p = float(parallelism)
    n = np.asarray(n, dtype=np.float64)
    e, r = expected_elements(n, k)
    select = e / p + r * (ROUND_OVERHEAD + (p - 1) / (2 * p))
    final = np.ceil(n / p) + FINAL_OVERHEAD
    return select + final


def main() -> None:
    """Regenerate ``sim/data/topk_cycles.csv``."""
    t = build_table()
    with open(TABLE_PATH, "w") as f:
        f.write("log2_n,fraction,mean_elements,mean_rounds\n")
        for lg, fr, e, r in t:
            f.write(f"{lg:.1f},{fr:.3f},{e:.4f},{r:.4f}\n")
    print(f"wrote {TABLE_PATH} ({len(t)} points, {SEEDS} seeds each; {math.prod(t.shape)} values)")


if __name__ == "__main__":
    main()
