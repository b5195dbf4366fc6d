"""Structural twin of ``rtl.attention_core.AttentionCore``: one request with every stage's values and cycles.

The values come from the existing models, stage by stage, in the order the RTL computes them (Q.K on
MSB-estimate keys, score shift and saturation, softmax, refetch decision, on a refetch Q.K and softmax on
the reassembled keys, local value top-k, prob.V); the final result must equal
:func:`models.attention.attention_request_fixed` (``tests/models`` checks that). :func:`core_cycles` is
the RTL's own cycle model of a request offered alone, stage by stage, and :func:`stream_cycles` of an
overlapped request stream, for the testbenches to compare with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from spatten.models.fixed import msb_estimate, reassemble, saturate, shift_round
from spatten.models.qk import qk_latency, qk_scores
from spatten.models.requant import refetch_decision
from spatten.models.softmax import SoftmaxSpec, softmax_fixed
from spatten.models.topk import quickselect_trace
from spatten.models.value_unit import prob_v

__all__ = [
    "CoreStages",
    "CoreCycles",
    "StreamRequest",
    "attention_core_ref",
    "bypasses",
    "core_cycles",
    "engine_rows",
    "kept_lanes",
    "request_timing",
    "stream_cycles",
    "topk_lanes",
    "value_tail",
]


def topk_lanes(k_par: int, topk_p: int) -> int:
    """Probabilities a probability-bank row holds (one OUT beat into the bank): ``k_par`` when
    ``k_par <= topk_p`` (the engine's ``in_lanes`` may not exceed its P), else 1 (the softmax's beats are
    serialized)."""
    return k_par if k_par <= topk_p else 1


def engine_rows(k_par: int, topk_p: int) -> int:
    """Bank rows the top-k engine reads a cycle: 2 when two rows fit its P input lanes, else 1."""
    return 2 if 2 * topk_lanes(k_par, topk_p) <= topk_p else 1


def kept_lanes(v_par: int, topk_p: int) -> int:
    """Kept indices the top-k engine emits a beat (its ``out_lanes``): one ``kept`` beat's ``v_par``
    lanes, at most the engine's P (a buffer row's selection)."""
    return min(v_par, topk_p)


@dataclass(frozen=True)
class CoreStages:
    """Every value the core produces for one request (int64 arrays).

    Attributes
    ----------
    msb_scores : (n,) softmax inputs from the MSB-estimate keys.
    msb_probs : (n,) their probabilities.
    refetch : bool, whether the LSBs were fetched; ``max_prob`` the row maximum it compared.
    full_scores : (n,) softmax inputs from the reassembled keys (None without a refetch).
    probs : (n,) final probabilities; ``kept`` (m,) ascending kept indices; ``output`` (D,) prob.V sums.
    """

    msb_scores: np.ndarray
    msb_probs: np.ndarray
    refetch: bool
    max_prob: int
    full_scores: np.ndarray | None
    probs: np.ndarray
    kept: np.ndarray
    output: np.ndarray

    @property
    def scores(self) -> np.ndarray:
        """The softmax inputs behind ``probs``."""
        return self.msb_scores if self.full_scores is None else self.full_scores


def attention_core_ref(
    q: npt.ArrayLike,
    k_msb: npt.ArrayLike,
    k_lsb: npt.ArrayLike | None,
    v: npt.ArrayLike,
    *,
    q_bits: int,
    k_msb_bits: int,
    lsb_bits: int,
    score_shift: int,
    spec: SoftmaxSpec,
    thr_code: int,
    k: int,
) -> CoreStages:
    """One request through the core's stages.

    Parameters
    ----------
    q : (D,) signed ``q_bits`` codes; k_msb : (n, D) signed ``k_msb_bits`` codes; k_lsb : (n, D) unsigned
        ``lsb_bits`` codes (ignored when ``lsb_bits`` is 0); v : (n, D) signed value codes.
    score_shift : int
        Rounding right shift from the raw dot product to the softmax input (then saturated to
        ``spec.in_bits``).
    spec : SoftmaxSpec
        Softmax widths.
    thr_code : int
        Refetch threshold code (``models.quant.threshold_code``); 0 never refetches, ``2**out_bits``
        always does.
    k : int
        Value rows to keep, 1..n (``models.pruning.keep_count`` of the keep ratio); larger is taken as n.

    Returns
    -------
    CoreStages
    """
    km = np.asarray(k_msb, dtype=np.int64)
    kb = k_msb_bits + lsb_bits

    def softmax_in(keys: np.ndarray) -> np.ndarray:
        raw = qk_scores(q, keys, q_bits, kb)
        return saturate(shift_round(raw, score_shift), spec.in_bits)

    msb_scores = softmax_in(msb_estimate(km, lsb_bits))
    msb_probs = softmax_fixed(msb_scores, spec)
    refetch, mx = refetch_decision(msb_probs, thr_code)
    refetch = refetch and lsb_bits > 0
    full_scores = None
    probs = msb_probs
    if refetch:
        full_scores = softmax_in(reassemble(km, np.asarray(k_lsb, dtype=np.int64), lsb_bits))
        probs = softmax_fixed(full_scores, spec)
    n = probs.shape[0]
    m = min(max(int(k), 1), n)
    kept = quickselect_trace(probs, m).indices  # == topk_ref(probs, m), the engine's own twin
    va = np.asarray(v, dtype=np.int64)
    out = prob_v(probs[kept], va[kept])
    return CoreStages(msb_scores, msb_probs, bool(refetch), mx, full_scores, probs, kept, out)


@dataclass(frozen=True)
class CoreCycles:
    """Cycle stamps of one request in the RTL, every input offered as early as the core can take it and
    every output always taken; cycle 0 is the one in which the ``req`` beat is accepted.

    Attributes
    ----------
    qk_beats : Q.K input beats of one pass, ``ceil(n / K_PAR)``, on consecutive cycles (no bubbles).
    qk_latency : multiplier register plus adder-tree levels (``models.qk.qk_latency``).
    softmax_pass : cycles of one softmax pass, first score in to last probability out:
        ``2 * ceil(n / K_PAR) + 1 + ceil(n / T)`` (``rtl.softmax`` with ``lanes = K_PAR``: LOAD, overlapped
        with Q.K, and EXP one K_PAR-wide row per cycle; one DIV cycle; OUT at the top-k engine's input
        rate, ``T = topk_lanes(K_PAR, P)`` probabilities per cycle: whole K_PAR-wide beats when
        K_PAR <= P, else one probability per cycle).
    decision : the cycle the ``decision`` beat is offered (before the MSB row's OUT pass).
    select : the first cycle of the select phase: k goes to the top-k engine and the probability drain
        starts, behind the final OUT pass.
    prob_last : the last ``prob`` beat (one buffer row of ``T`` a beat, each after the OUT pass wrote it).
    topk : ``QuickSelectTrace.cycles`` of the final probabilities (search + final pass + register, the
        final pass emitting ``kept_lanes(V_PAR, P)`` indices a beat);
        0 when the request bypasses the engine (keeps every row, ``T == V_PAR``).
    kept_last : the last ``kept`` beat (``topk`` cycles after the engine has k and its last score;
        bypassed, ``V_PAR`` indices a beat behind the OUT pass).
    out : the ``out`` beat (``kept_last + value_delay + value_tail``: the last value beat, then the
        value unit's register).
    value_tail : value beats still owed when the last ``kept`` beat leaves (:func:`value_tail`): 1, or 2
        when that beat is partial and straddles a value beat's boundary.
    """

    qk_beats: int
    qk_latency: int
    softmax_pass: int
    decision: int
    select: int
    prob_last: int
    topk: int
    kept_last: int
    out: int
    value_tail: int = 1

    @property
    def total(self) -> int:
        """Request accepted to the last output (``out`` or the last ``prob`` beat)."""
        return max(self.out, self.prob_last)


def core_cycles(
    probs: npt.ArrayLike,
    k: int,
    *,
    k_par: int,
    v_par: int,
    head_dim: int,
    topk_p: int,
    refetch: bool,
    seed: int,
    value_delay: int = 1,
) -> CoreCycles:
    """Cycle model of ``rtl.attention_core.AttentionCore`` for one request (see :class:`CoreCycles`).

    Derivation, with ``L`` the Q.K latency, ``B = ceil(n / K_PAR)`` and ``O = ceil(n / T)`` the top-k
    input beats (``T = topk_lanes(K_PAR, P)``: ``O = B`` when K_PAR <= P, else ``O = n``): key beats at
    cycles 1 .. B; a beat's K_PAR scores leave Q.K ``L`` cycles later and the softmax (``lanes = K_PAR``,
    in LOAD) takes them in that cycle, so its LOAD takes beats ``L + 1 .. L + B``; EXP takes B cycles and
    DIV is at ``L + 2B + 1``; the row maximum's probability is offered the next cycle, the requant
    decision registers it (``L + 2B + 3``, when the core learns it) and the decision port registers it
    again (``D = L + 2B + 4``). The OUT beats wait for the decision: without a refetch the final OUT
    pass starts at ``F = D`` and the core selects at ``select = D``. With one, the LSB rows follow the
    decision beat (the first at ``D + 1``) while the MSB row leaves OUT unused; the LSB pass repeats the
    MSB pass's timing, so its OUT starts at ``F = 2D - 2`` and the core selects at its decision pulse,
    ``select = 2D``. Each OUT beat goes into the request's probability bank; a bank row leaves (``prob``
    and the bypass's kept indices) from the cycle after it was written, one a cycle from
    ``max(select, F + 1)``. The engine has k from ``select`` and reads ``G = engine_rows(K_PAR, P)`` rows
    a cycle (two when they fit its P lanes), each once written: the rows written one a cycle from F,
    the reads from select, so its last score is at ``max(select + ceil(O / G) - 1, F + O)``; it ends
    ``topk`` cycles later. A request keeping every row
    (``k >= n``) with ``T == V_PAR`` bypasses the engine: its kept indices leave ``V_PAR`` a beat, one
    buffer row each.
    ``value_delay`` is how many cycles after the last ``kept`` beat the first value beat still owed is
    accepted (at least 1); ``value_tail`` (:func:`value_tail`) value beats are owed then, one a cycle.

    Parameters
    ----------
    probs : (n,) final probability codes (the top-k engine's input).
    k : value rows to keep (clamped to 1..n as the RTL does).
    k_par, v_par, head_dim, topk_p : the core's parameters.
    refetch : whether the request refetched.
    seed : the request's top-k seed.
    value_delay : int
        Cycles from the last ``kept`` beat to the first owed value beat's acceptance (then the request's
        :func:`value_tail` beats, one a cycle).
    """
    p = np.asarray(probs, dtype=np.int64)
    n = int(p.shape[0])
    m = min(max(int(k), 1), n)
    tl = topk_lanes(k_par, topk_p)
    tk, tail = 0, 1
    if not bypasses(m, n, tl, v_par):
        trace = quickselect_trace(p, m, topk_p, seed, out_lanes=kept_lanes(v_par, topk_p))
        tk, tail = trace.cycles, value_tail(m, trace.last_beat_lanes, v_par)
    t = request_timing(n, m, refetch, k_par=k_par, v_par=v_par, head_dim=head_dim, topk_p=topk_p, topk=tk,
                       value_delay=value_delay, value_tail=tail)  # fmt: skip
    b = math.ceil(n / k_par)
    o = math.ceil(n / tl)
    return CoreCycles(b, qk_latency(head_dim), 2 * b + 1 + o, int(t.decision), int(t.select),
                      int(t.prob_last), tk, int(t.kept_last), int(t.out), tail)  # fmt: skip


def value_tail(m: int, last_lanes: int, v_par: int) -> int:
    """Value beats (``v_par`` kept rows each) still owed once the last ``kept`` beat (``last_lanes`` of the
    ``m`` kept rows) has left: the value beats complete up to the rows before it went one a cycle behind
    the kept beats (a kept beat of at most ``v_par`` rows completes at most one), the rest wait for it."""
    return -(-m // v_par) - (m - last_lanes) // v_par


def bypasses(m: Any, n: Any, lanes: Any, v_par: Any) -> Any:
    """Whether a request keeping ``m`` of ``n`` rows skips the top-k engine: it keeps every row and one
    probability-buffer row (``lanes = topk_lanes(K_PAR, P)``) is one value beat (``V_PAR``)."""
    return (np.asarray(m) >= np.asarray(n)) & (np.asarray(lanes) == np.asarray(v_par))


@dataclass(frozen=True)
class RequestTiming:
    """The stamps of :func:`request_timing` (scalars or arrays, cycle 0 = the request accepted)."""

    decision: Any
    select: Any
    prob_last: Any
    kept_last: Any
    out: Any

    @property
    def total(self) -> Any:
        """Request accepted to the last output (``out`` or the last ``prob`` beat)."""
        return np.maximum(self.out, self.prob_last)


def request_timing(
    n: Any,
    m: Any,
    refetch: Any,
    *,
    k_par: Any,
    v_par: Any,
    head_dim: Any,
    topk_p: int,
    topk: Any,
    value_delay: int = 1,
    value_tail: Any = 1,
) -> RequestTiming:
    """The core's request stamps given the top-k engine's cycles ``topk`` (the one derivation of
    :func:`core_cycles`, shared with the simulator's model of the core, ``sim.rtl_core``).

    Elementwise over numpy arrays or on scalars. ``k_par`` below 1 (a head wider than the Q.K tree, in
    the simulator only) takes ``1 / k_par`` cycles a key; its top-k input is one lane. ``topk`` is ignored
    where the request :func:`bypasses` the engine; ``value_tail`` (:func:`value_tail`) is 1 there.
    """
    n = np.asarray(n, dtype=np.float64)
    kp = np.asarray(k_par, dtype=np.float64)
    lat = np.vectorize(qk_latency, otypes=[np.float64])(np.asarray(head_dim, dtype=np.int64))
    lanes = np.vectorize(lambda k: topk_lanes(max(1, int(k)), topk_p), otypes=[np.float64])(kp)
    rows = np.vectorize(lambda k: engine_rows(max(1, int(k)), topk_p), otypes=[np.float64])(kp)
    vp = np.maximum(np.floor(np.asarray(v_par, dtype=np.float64)), 1.0)
    b = np.ceil(n / kp)
    o = np.ceil(n / lanes)
    decision = lat + 4 + 2 * b
    rf = np.asarray(refetch, dtype=bool)
    first_out = np.where(rf, 2 * decision - 2, decision)  # the final row's first OUT beat
    select = np.where(rf, 2 * decision, decision)
    # a buffer row can leave (prob, bypass kept) from the cycle after OUT wrote it
    stream_from = np.maximum(select, first_out + 1)
    bypass = bypasses(m, n, lanes, vp)
    # the engine reads its scores from the bank as the drain does, a row a cycle from stream_from
    # the engine reads ``rows`` bank rows a cycle from select, each once written: its last score at the
    # later of its own pace and the last row's write (k and the last score both in the engine)
    engine_t0 = np.maximum(select + np.ceil(o / rows) - 1, first_out + o)
    kept_last = np.where(bypass, stream_from + np.ceil(n / vp) - 1, engine_t0 + topk)
    tail = np.where(bypass, 1, value_tail)
    return RequestTiming(decision, select, stream_from + o - 1, kept_last, kept_last + value_delay + tail)


@dataclass(frozen=True)
class StreamRequest:
    """One request of a stream for :func:`stream_cycles`: ``n`` keys, ``m`` rows kept, whether it refetched,
    the top-k engine's cycles for it (``QuickSelectTrace.cycles``) and the value beats owed after its last
    kept beat (:func:`value_tail`); both ignored when it bypasses."""

    n: int
    m: int
    refetch: bool
    topk: float = 0.0
    value_tail: int = 1


def stream_cycles(
    reqs: list[StreamRequest],
    *,
    k_par: int,
    v_par: int,
    head_dim: int,
    topk_p: int,
    value_delay: int = 1,
) -> list[dict[str, float]]:
    """Cycle stamps of every request of an overlapped stream through ``rtl.attention_core.AttentionCore``.

    The bench's overlapped stream: request ``i`` is offered from the cycle after request ``i - 1`` was
    accepted, every input as soon as the core can take it, every output taken at once; cycle 0 is the
    first request's acceptance. The rules, in the RTL's terms (``c`` the cycle an event happens, its
    registered effects visible from ``c + 1``):

    - **admission**: ``a_i = max(a_{i-1} + 1, done_{i-4} + 1)`` (four request slots, released when the
      back end is done with a request);
    - **Q.K passes** (rows in pass order ``r``): the arbiter fires at ``c`` with no pass in progress (the
      previous pass's last key beat before ``c``) and fewer than four tagged rows (row ``r - 4`` out of
      OUT); an LSB pass waits for its request's decision (``x + 1``), an MSB pass for its admission and
      its key bank (request ``i - 2``'s decision without a refetch, or its LSB pass, done); an LSB pass
      ready in the same cycle goes first. Keys from ``k0 = c + 1``; the softmax takes the first score at
      ``first = max(k0 + L, last_in_{r-1} + 1, div_{r-2} + 1)`` (a later start freezes Q.K, so the keys
      after the first ``L`` slip by as much);
    - **softmax** (``models.softmax.softmax_row_cycles``): ``exp = max(last_in, div_{r-1}, done_{r-2}) +
      1``, ``div = exp + B``; the row maximum reaches the decision at ``x = div + 2``;
    - **OUT**: from ``max(div, done_{r-1}) + 1``, an MSB row not before ``x + 1`` (its decision), a final
      row not before its probability bank is free (request ``i - 2`` done); ``O`` beats (``B``, or ``n``
      when ``K_PAR > P`` serializes a final row);
    - **back end**, in request order: starts at ``max(x_final, done_{i-1} + 1)``; from there the
      stamps of :func:`request_timing` (``select`` the cycle after the start, rows read behind OUT);
      ``done = max(out, prob_last) + 1``.

    Parameters
    ----------
    reqs : list of StreamRequest
    k_par, v_par, head_dim, topk_p : the core's parameters.
    value_delay : cycles from the last ``kept`` beat to the first owed value beat's acceptance (at least 1);
        each request's ``value_tail`` beats are owed then, one a cycle.

    Returns
    -------
    list of dict
        Per request: ``req``, ``key_first``, ``key_last``, ``lsb_first``, ``lsb_last`` (refetching
        requests only), ``decision``, ``select``, ``prob_last``, ``kept_last``, ``out``, ``done``.
    """
    lat = qk_latency(head_dim)
    tl = topk_lanes(max(1, int(k_par)), topk_p)  # (a K_PAR below 1 exists in the simulator only)
    per_read = engine_rows(max(1, int(k_par)), topk_p)
    total = len(reqs)
    st: list[dict[str, float]] = [{} for _ in reqs]
    rows: list[dict[str, float]] = []  # softmax rows in pass order
    final_row: dict[int, dict[str, float]] = {}
    release: dict[int, float] = {}  # request -> first cycle its key bank is free again
    lsb_wait: list[int] = []
    next_msb = 0
    qk_free = 0.0

    def back(i: int) -> float:
        """The back end's done cycle for request ``i`` (computed once its final row is known)."""
        s = st[i]
        if "done" in s:
            return s["done"]
        r = reqs[i]
        prev = back(i - 1) + 1 if i else 0
        start = max(final_row[i]["x"], prev)
        sel = start + 1
        stream_from = max(sel, final_row[i]["out"] + 1)
        o = math.ceil(r.n / tl)
        engine_last = max(sel + math.ceil(o / per_read) - 1, final_row[i]["out"] + o)
        prob_last = stream_from + o - 1
        if bool(bypasses(r.m, r.n, tl, v_par)):
            kept_last = stream_from + math.ceil(r.n / v_par) - 1
            out = kept_last + value_delay + 1
        else:
            kept_last = engine_last + r.topk
            out = kept_last + value_delay + r.value_tail
        s.update(select=sel, prob_last=prob_last, kept_last=kept_last, out=out, done=max(out, prob_last) + 1)
        return s["done"]

    def admit(i: int) -> float:
        if "req" not in st[i]:
            st[i]["req"] = 0.0 if i == 0 else max(admit(i - 1) + 1, back(i - 4) + 1 if i >= 4 else 0)
        return st[i]["req"]

    while next_msb < total or lsb_wait:
        r_idx = len(rows)
        room = rows[r_idx - 4]["done"] + 1 if r_idx >= 4 else 0.0
        t_lsb = max(st[lsb_wait[0]]["x"] + 1, qk_free, room) if lsb_wait else math.inf
        t_msb = math.inf
        if next_msb < total:
            i = next_msb
            t_msb = max(admit(i), release.get(i - 2, math.inf) if i >= 2 else 0.0, qk_free, room)
        lsb = t_lsb <= t_msb
        i = lsb_wait.pop(0) if lsb else next_msb
        c = t_lsb if lsb else t_msb
        r = reqs[i]
        b = math.ceil(r.n / k_par)
        k0 = c + 1
        first = k0 + lat
        if r_idx >= 1:
            first = max(first, rows[-1]["last_in"] + 1)
        if r_idx >= 2:
            first = max(first, rows[-2]["div"] + 1)
        slip = first - (k0 + lat)
        last_in = first + b - 1
        key_last = k0 + b - 1 + (slip if b - 1 >= lat else 0)
        waits = (
            [last_in] + ([rows[-1]["div"]] if r_idx >= 1 else []) + ([rows[-2]["done"]] if r_idx >= 2 else [])
        )
        div = max(waits) + 1 + b
        x = div + 2
        final = lsb or not r.refetch
        out = max(div, rows[-1]["done"] if r_idx >= 1 else 0) + 1
        if not lsb:
            out = max(out, x + 1)
        if final and i >= 2:
            out = max(out, back(i - 2) + 1)
        beats = max(r.n, b) if (final and tl == 1) else b
        row = {"last_in": last_in, "div": div, "x": x, "out": out, "done": out + beats - 1}
        rows.append(row)
        qk_free = key_last + 1
        s = st[i]
        if lsb:
            s.update(lsb_first=k0, lsb_last=key_last)
            release[i] = key_last + 1
        else:
            s.update(key_first=k0, key_last=key_last, decision=x + 1, x=x)
            next_msb += 1
            if r.refetch:
                lsb_wait.append(i)
            else:
                release[i] = x + 1
        if final:
            final_row[i] = row
    for i in range(total):
        back(i)
        st[i].pop("x", None)
    return st
