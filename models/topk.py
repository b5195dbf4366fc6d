"""Top-k golden models: the plain reference and the exact quick-select the RTL engine implements.

Selection rule (both functions): the k largest scores; at a tie on the k-th value the earliest indices
win. Output indices are in ascending index order, the order the hardware emits them.

Quick-select as built in ``rtl/topk.py``
----------------------------------------
1. The n scores are buffered in input order, P lanes per buffer row; they arrive ``in_lanes`` (L <= P)
   per input beat, one beat per cycle.
2. Each round streams the current candidate set through P comparators against one pivot. Zero
   eliminators compact the "greater" and "less" streams into the two halves of the other ping-pong
   buffer (order preserved) and the equal ones are counted. With ``rank`` the wanted rank (1 = largest)
   inside the set: ``rank <= n_greater`` recurses into the greater set; ``rank <= n_greater + n_equal``
   ends the search (the pivot is the k-th largest value); otherwise ``rank -= n_greater + n_equal`` and
   the less set is next.
3. Pivot rule: a 16-bit Galois LFSR (polynomial x^16 + x^14 + x^13 + x^11 + 1, mask ``0xB400``), seeded
   with ``(seed mod 65535) + 1`` per request, picks the pivot from the current candidate buffer and steps
   once after each round. When the buffer holds at least one full row (``n_round >= P``) and ``P >= 4``,
   it picks a full row, ``row = (state * (n_round // P)) >> 16``, and the pivot is the median of that
   row's :func:`pivot_lanes` (P >= 16: nine lanes spread over the row, the median of the three
   medians of three, "ninther"; 4 <= P < 16: the median of the first, middle and last lanes). The row
   is read in one cycle, as the pivot read always was, so a round still costs one pivot cycle; a
   median of several candidates splits the set closer to the middle, so fewer elements are streamed
   (n = 1,024, k = 512, P = 16: about 166 search cycles on average, against about 231 for one random
   position). Otherwise (P < 4, or fewer than P candidates left) ``pivot_pos = (state * n_round) >> 16``,
   one position. A multiply-shift instead of a modulo keeps the hardware to one small multiplier.
4. ``k == 0`` and ``k == n`` need no rounds (nothing / everything is kept).
5. A final pass over the buffered input, in index order, keeps scores above the k-th value plus the first
   ``k - n_above`` scores equal to it, and emits them up to O (``out_lanes``) a beat, one beat a cycle.

Cycle model (exact for the RTL; t0 = the cycle in which the last score and k have both been accepted)
-----------------------------------------------------------------------------------------------------
- Search: each round costs ``ceil(n_round / P) + ROUND_OVERHEAD`` cycles (one pivot read, then the
  streaming cycles; the last streaming cycle also takes the recursion decision);
  :attr:`QuickSelectTrace.select_cycles` is their sum, the cycles from t0 to "threshold known".
- Final pass: buffer rows are visited in order; a row holding ``c`` selected scores costs
  ``max(1, ceil(c / O))`` cycles (one beat per O of them, one cycle when it holds none); the pass stops
  right after the beat holding the k-th score (k = 0: one cycle emits an ``empty`` beat). The output
  register adds ``OUTPUT_REGISTER`` cycle: :attr:`QuickSelectTrace.final_cycles`.
- :attr:`QuickSelectTrace.cycles` = search + final: t0 to the cycle the last output beat is accepted
  when the consumer is always ready. It does not depend on L; it depends on O through the final pass.
- Input (before t0, not part of ``cycles``): ``ceil(n / L)`` beats on consecutive cycles when the
  producer never idles, :attr:`QuickSelectTrace.fill_cycles`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = [
    "topk_ref",
    "quickselect_trace",
    "QuickSelectTrace",
    "lfsr_step",
    "lfsr_seed",
    "release_latency",
    "ROUND_OVERHEAD",
    "OUTPUT_REGISTER",
    "final_pass_cycles",
    "final_pass_beats",
    "pivot_lanes",
    "median3",
]

LFSR_MASK = 0xB400
LFSR_BITS = 16

# Cycle model constants (see the module docstring); the RTL in rtl/topk.py realises exactly these.
ROUND_OVERHEAD = 1
"""Cycles a round costs besides streaming: the pivot read. The decision and buffer swap happen in the
last streaming cycle. The release model charges 3."""
OUTPUT_REGISTER = 1
"""Cycles between the final pass emitting the last beat and that beat's hand-off (the output register)."""


def _check_scores(scores: npt.ArrayLike) -> np.ndarray:
    a = np.asarray(scores)
    if a.ndim != 1:
        raise ValueError(f"scores must be one-dimensional, got shape {a.shape}")
    if a.size == 0:
        raise ValueError("scores is empty")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError("scores contains NaN or inf")
    if a.dtype.kind not in "iuf":
        raise TypeError(f"scores must be numeric, got dtype {a.dtype}")
    return a


def _check_k(k: object, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer):
        raise TypeError(f"k must be an integer, got {k!r}")
    if not 0 <= int(k) <= n:
        raise ValueError(f"k = {k} is outside the allowed range 0..{n}")
    return int(k)


def topk_ref(scores: npt.ArrayLike, k: int) -> np.ndarray:
    """Indices of the ``k`` largest scores, in ascending index order; ties keep the earliest.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Finite numeric scores.
    k : int
        Number to keep, 0..n.

    Returns
    -------
    numpy.ndarray of int64, shape (k,)
    """
    a = _check_scores(scores)
    k = _check_k(k, a.size)
    order = np.lexsort(
        (np.arange(a.size), -a.astype(np.float64) if a.dtype.kind == "f" else -a.astype(np.int64))
    )
    return np.sort(order[:k]).astype(np.int64)


def pivot_lanes(parallelism: int) -> tuple[int, ...]:
    """Lanes of a full buffer row whose median is a round's pivot (empty: the one-position rule).

    P >= 16: nine lanes ``i * (P - 1) // 8`` (i = 0..8), taken as three groups of three; 4 <= P < 16:
    ``(0, P // 2, P - 1)``; P < 4: none.
    """
    p = int(parallelism)
    if p >= 16:
        return tuple(i * (p - 1) // 8 for i in range(9))
    if p >= 4:
        return (0, p // 2, p - 1)
    return ()


def median3(a, b, c):
    """Median of three as the RTL computes it: ``max(min(a, b), min(max(a, b), c))``."""
    return max(min(a, b), min(max(a, b), c))


def _row_median(values: list) -> object:
    """The pivot of a row's candidate values: a median of three, or the median of three medians."""
    if len(values) == 3:
        return median3(*values)
    return median3(*(median3(*values[i : i + 3]) for i in (0, 3, 6)))


def lfsr_seed(seed: int) -> int:
    """Initial non-zero LFSR state for a request seed."""
    return (int(seed) % 65535) + 1


def lfsr_step(state: int) -> int:
    """One step of the 16-bit Galois LFSR (mask 0xB400)."""
    lsb = state & 1
    state >>= 1
    if lsb:
        state ^= LFSR_MASK
    return state


@dataclass(frozen=True)
class QuickSelectTrace:
    """What one quick-select request did, and what it costs in cycles.

    Attributes
    ----------
    indices : numpy.ndarray
        Selected indices, ascending (equal to ``topk_ref``).
    threshold : int or float or None
        The k-th largest value (None when k is 0 or n: no search).
    n_above : int
        Scores strictly above ``threshold``; ``k - n_above`` equal ones are kept in index order.
    round_sizes : list of int
        Candidates streamed in each round.
    pivots : list of int
        Pivot position inside the round's candidate buffer, per round.
    parallelism : int
        Comparators P.
    n : int
        Request length.
    final_emit_cycles : int
        Cycles of the final pass proper (see :func:`final_pass_cycles`).
    in_lanes : int
        Scores per input beat L.
    out_lanes : int
        Selected indices per output beat O.
    """

    indices: np.ndarray
    threshold: int | float | None
    n_above: int
    round_sizes: list[int] = field(default_factory=list)
    pivots: list[int] = field(default_factory=list)
    parallelism: int = 16
    n: int = 0
    final_emit_cycles: int = 0
    in_lanes: int = 1
    out_lanes: int = 1

    @property
    def rounds(self) -> int:
        """Number of quick-select rounds."""
        return len(self.round_sizes)

    @property
    def select_cycles(self) -> int:
        """Search cycles: sum over rounds of ``ceil(n_round / P) + ROUND_OVERHEAD``."""
        p = self.parallelism
        return sum(math.ceil(m / p) + ROUND_OVERHEAD for m in self.round_sizes)

    @property
    def final_cycles(self) -> int:
        """Final pass plus the output register: ``final_emit_cycles + OUTPUT_REGISTER``."""
        return self.final_emit_cycles + OUTPUT_REGISTER

    @property
    def last_beat_lanes(self) -> int:
        """Indices in the final pass's last beat (0 for the ``empty`` beat of k = 0)."""
        beats = final_pass_beats(self.indices, self.parallelism, self.out_lanes)
        return len(beats[-1]) if beats else 0

    @property
    def fill_cycles(self) -> int:
        """Input: ``ceil(n / in_lanes)`` beats, one per cycle."""
        return -(-self.n // self.in_lanes)

    @property
    def cycles(self) -> int:
        """Cycles from t0 (last score and k accepted) to the last output beat accepted, consumer always
        ready: ``select_cycles + final_cycles``."""
        return self.select_cycles + self.final_cycles


def quickselect_trace(
    scores: npt.ArrayLike,
    k: int,
    parallelism: int = 16,
    seed: int = 0,
    in_lanes: int = 1,
    out_lanes: int = 1,
) -> QuickSelectTrace:
    """Run the RTL's quick-select exactly and return its selection and cycle trace.

    Parameters
    ----------
    scores : array_like, shape (n,)
        Scores (integers for the bit-exact RTL comparison; floats are accepted).
    k : int
        Number to keep, 0..n.
    parallelism : int
        Comparators per cycle P, 1..1024.
    seed : int
        Request seed for the pivot LFSR (deterministic).
    in_lanes : int
        Scores per input beat, 1..parallelism (only :attr:`QuickSelectTrace.fill_cycles` depends on it).
    out_lanes : int
        Selected indices per output beat, 1..parallelism (the final pass's cycles depend on it).

    Returns
    -------
    QuickSelectTrace
    """
    a = _check_scores(scores)
    n = int(a.size)
    k = _check_k(k, n)
    if (
        isinstance(parallelism, bool)
        or not isinstance(parallelism, int | np.integer)
        or not 1 <= parallelism <= 1024
    ):
        raise ValueError(f"parallelism = {parallelism!r} is outside the allowed range 1..1024")
    for name, v in (("in_lanes", in_lanes), ("out_lanes", out_lanes)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or not 1 <= v <= parallelism:
            raise ValueError(f"{name} = {v!r} is outside the allowed range 1..{parallelism}")
    lanes, ol = int(in_lanes), int(out_lanes)
    if k == 0:
        return QuickSelectTrace(np.zeros(0, np.int64), None, 0, [], [], int(parallelism), n, 1, lanes, ol)
    if k == n:
        idx = np.arange(n, dtype=np.int64)
        fin = final_pass_cycles(idx, n, int(parallelism), ol)
        return QuickSelectTrace(idx, None, n, [], [], int(parallelism), n, fin, lanes, ol)

    cur = a
    rank = k
    state = lfsr_seed(seed)
    sizes: list[int] = []
    pivots: list[int] = []
    p = int(parallelism)
    cand = pivot_lanes(p)
    while True:
        m = int(cur.size)
        if cand and m >= p:
            base = ((state * (m // p)) >> LFSR_BITS) * p
            values = [cur[base + lane] for lane in cand]
            pivot = _row_median(values)
            pos = base + cand[values.index(pivot)]  # a position holding the pivot value
        else:
            pos = (state * m) >> LFSR_BITS
            pivot = cur[pos]
        sizes.append(m)
        pivots.append(int(pos))
        state = lfsr_step(state)
        greater = cur[cur > pivot]
        n_gt = int(greater.size)
        n_eq = int(np.count_nonzero(cur == pivot))
        if rank <= n_gt:
            cur = greater
        elif rank <= n_gt + n_eq:
            threshold = pivot
            break
        else:
            rank -= n_gt + n_eq
            cur = cur[cur < pivot]

    above = np.flatnonzero(a > threshold)
    equal = np.flatnonzero(a == threshold)[: k - above.size]
    idx = np.sort(np.concatenate([above, equal])).astype(np.int64)
    thr = threshold.item() if hasattr(threshold, "item") else threshold
    fin = final_pass_cycles(idx, n, int(parallelism), ol)
    return QuickSelectTrace(idx, thr, int(above.size), sizes, pivots, int(parallelism), n, fin, lanes, ol)


def final_pass_cycles(indices: npt.ArrayLike, n: int, parallelism: int, out_lanes: int = 1) -> int:
    """Cycles of the RTL's final pass for a selection, before the output register.

    Rows of ``parallelism`` scores are visited in order; a row holding ``c`` selected indices costs
    ``max(1, ceil(c / out_lanes))`` cycles (one beat per ``out_lanes`` of them, one cycle when it has
    none); the pass ends with the last selected index. An empty selection costs one cycle (the ``empty``
    beat).

    Parameters
    ----------
    indices : array_like of int
        Selected indices, ascending, each in 0..n-1.
    n : int
        Request length.
    parallelism : int
        Lanes per row P.
    out_lanes : int
        Indices per output beat O.
    """
    idx = np.asarray(indices, dtype=np.int64)
    if idx.size == 0:
        return 1
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"indices must lie in 0..{n - 1}")
    rows = idx // parallelism
    last_row = int(rows.max())
    per_row = np.bincount(rows, minlength=last_row + 1)
    return int(np.maximum(-(-per_row // out_lanes), 1).sum())


def final_pass_beats(indices: npt.ArrayLike, parallelism: int, out_lanes: int = 1) -> list[list[int]]:
    """The final pass's output beats for a selection: each buffer row's selected indices (rows of
    ``parallelism``, ascending) in chunks of ``out_lanes``; empty for an empty selection (the RTL then
    sends one ``empty`` beat)."""
    beats: list[list[int]] = []
    for i in (int(x) for x in np.asarray(indices, dtype=np.int64)):
        same_row = beats and beats[-1][0] // parallelism == i // parallelism
        if same_row and len(beats[-1]) < out_lanes:
            beats[-1].append(i)
        else:
            beats.append([i])
    return beats


def release_latency(round_sizes: list[int], parallelism: int = 16) -> int:
    """The authors' release latency formula: sum over rounds of ``ceil(n_round / P) + 3``."""
    return sum(math.ceil(m / parallelism) + 3 for m in round_sizes)
