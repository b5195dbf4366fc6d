"""cocotb testbench for ``rtl.attention_core.AttentionCore``: every output ``==`` the golden, a per-stage
diff report on a mismatch, cycle stamps ``==`` the core's cycle model and set against the ``sim`` model.

Environment (set through :func:`testbench.runner.run_cocotb`'s ``extra_env``):

``AC_HEAD_DIM``, ``AC_K_PAR``, ``AC_V_PAR``, ``AC_Q_BITS``, ``AC_MSB_BITS``, ``AC_LSB_BITS``, ``AC_V_BITS``,
``AC_SCORE_SHIFT``, ``AC_TOPK_P``, ``AC_MAX_N``
    The core's parameters, written by :meth:`CoreParams.env` (must match the built Verilog; the softmax
    spec is ``softmax_spec(head_dim)``).
``AC_NS``, ``AC_RATIOS``, ``AC_THRESHOLDS``, ``AC_REQUESTS``, ``AC_IDLE``, ``AC_STALL``, ``AC_SEED``,
``AC_REPORT``, ``AC_OVERLAP``
    The run's stimulus, written by :meth:`CoreRun.env` (see :class:`CoreRun` for each field).

Golden: :func:`models.attention.attention_request_fixed`; on a mismatch the stages of
:func:`models.attention_core.attention_core_ref` are compared in pipeline order (scores of each pass as
they leave Q.K, refetch, probabilities, kept indices, output) by :func:`diff_report`, and the failure
message names the first wrong stage, element, expected and got. With ``AC_IDLE = AC_STALL = 0`` the
cycle stamps must equal :func:`models.attention_core.core_cycles`.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from spatten.models.attention import attention_request_fixed
from spatten.models.attention_core import (
    CoreStages,
    StreamRequest,
    attention_core_ref,
    core_cycles,
    stream_cycles,
)
from spatten.models.fixed import split
from spatten.models.pruning import keep_count
from spatten.models.quant import threshold_code
from spatten.models.softmax import error_bound, softmax_float
from spatten.testbench.bench import CLOCK_NS, EnvParams, masked_lanes, pack_lanes, unpack_lanes
from spatten.testbench.stream import pack, unpack

__all__ = [
    "CoreParams",
    "CoreRun",
    "Stimulus",
    "make_stimulus",
    "diff_report",
    "sim_stage_model",
    "stream_summary",
]


@dataclass(frozen=True)
class CoreParams:
    """Every build parameter of the core under test, in one place for the CLI, the tests and the benchmarks.

    The defaults are the small verified build (D = 16, K_PAR = V_PAR = 4, 8-bit codes, 8 + 4-bit keys,
    P = 16). ``score_shift`` None takes :meth:`default_shift`. Ranges are the core's own (its constructor
    refuses the rest in one line).
    """

    head_dim: int = 16
    k_par: int = 4
    v_par: int = 4
    q_bits: int = 8
    k_msb_bits: int = 8
    lsb_bits: int = 4
    v_bits: int = 8
    score_shift: int | None = None
    topk_p: int = 16
    max_n: int = 1024

    #: environment variable of each field (what the bench reads inside the simulator)
    ENV = {"head_dim": "AC_HEAD_DIM", "k_par": "AC_K_PAR", "v_par": "AC_V_PAR", "q_bits": "AC_Q_BITS",
           "k_msb_bits": "AC_MSB_BITS", "lsb_bits": "AC_LSB_BITS", "v_bits": "AC_V_BITS",
           "score_shift": "AC_SCORE_SHIFT", "topk_p": "AC_TOPK_P", "max_n": "AC_MAX_N"}  # fmt: skip

    def default_shift(self) -> int:
        """The shift that puts the largest raw dot product into the softmax's 16-bit input: the Q.K
        score width ``q_bits + k_bits + ceil(log2 D)`` less 16 (8 at D = 16, 10 at D = 64 with 8-bit
        queries and 12-bit keys)."""
        levels = math.ceil(math.log2(self.head_dim)) if self.head_dim > 1 else 0
        return max(0, self.q_bits + self.k_msb_bits + self.lsb_bits + levels - 16)

    @property
    def shift(self) -> int:
        """The score shift in use."""
        return self.default_shift() if self.score_shift is None else self.score_shift

    def core(self):
        """The AttentionCore these parameters build."""
        from spatten.rtl.attention_core import AttentionCore

        return AttentionCore(
            self.head_dim, self.k_par, self.v_par, q_bits=self.q_bits, k_msb_bits=self.k_msb_bits,
            lsb_bits=self.lsb_bits, v_bits=self.v_bits, score_shift=self.shift, topk_p=self.topk_p,
            max_n=self.max_n,
        )  # fmt: skip

    def env(self) -> dict[str, str]:
        """The bench's environment for these parameters."""
        return {
            var: str(self.shift if f == "score_shift" else getattr(self, f)) for f, var in self.ENV.items()
        }

    @classmethod
    def from_env(cls) -> CoreParams:
        """The parameters the environment describes (inside the simulator)."""
        return cls(**{f: int(os.environ[var]) for f, var in cls.ENV.items() if var in os.environ})

    @property
    def tag(self) -> str:
        """A build-folder name naming every parameter."""
        return (
            f"hd{self.head_dim}-kp{self.k_par}-vp{self.v_par}-q{self.q_bits}-k{self.k_msb_bits}+{self.lsb_bits}"
            f"-v{self.v_bits}-s{self.shift}-p{self.topk_p}-n{self.max_n}"
        )


@dataclass(frozen=True)
class CoreRun(EnvParams):
    """What one bench run sends through the core (the CLI, the tests and the benchmarks build one).

    Every combination of ``ns`` x ``ratios`` x ``thresholds`` is one directed request, then ``requests``
    random ones (n in 1..max_n). Thresholds are in [0, 1]: 0 never refetches, 1 always does, values
    between let the data decide. ``idle`` / ``stall``: the probability of an idle input cycle and of a
    not-ready output cycle. ``report``: a file that gets one JSON line per request (shape, refetch,
    measured and modelled cycles, the sim stage model's figures). ``overlap``: offer each request as soon
    as the previous one is accepted (the core holds up to four), not once it is complete.
    """

    ns: tuple[int, ...] = (1, 7)
    ratios: tuple[float, ...] = (1.0, 0.3, 0.2)
    thresholds: tuple[float, ...] = (0.0, 1.0)
    requests: int = 0
    idle: float = 0.0
    stall: float = 0.0
    seed: int = 1
    report: str | None = None
    overlap: bool = False

    ENV = {"ns": "AC_NS", "ratios": "AC_RATIOS", "thresholds": "AC_THRESHOLDS", "requests": "AC_REQUESTS",
           "idle": "AC_IDLE", "stall": "AC_STALL", "seed": "AC_SEED", "report": "AC_REPORT",
           "overlap": "AC_OVERLAP"}  # fmt: skip


def build_core():
    """The AttentionCore the environment describes (for its layouts and widths)."""
    return CoreParams.from_env().core()


@dataclass
class Stimulus:
    """One request's inputs and what the core returned."""

    q: np.ndarray
    k_msb: np.ndarray
    k_lsb: np.ndarray
    v: np.ndarray
    ratio: float
    threshold: float
    seed: int
    got: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.k_msb.shape[0])


def make_stimulus(rng: np.random.Generator, dut, n: int, ratio: float, threshold: float) -> Stimulus:
    """Random codes at the core's widths, rows shaped like attention's: one key in 64 moves 0.3 of the
    largest key code (15% of the key range) towards the query's signs, a few logits above the rest. About
    38% of the probabilities are then zero codes at n = 1,024 (MiniLM-L6's real rows on the built-in
    text, n = 262: 27%), and the top-k engine's mean cycles are ``sim.rtl_core``'s sampler's within 9%
    (``benchmarks/bench_topk_sampler.py``); keys pinned to the query's signs left 98% zeros, a top-k
    workload unlike a model's."""
    hd, qb, kb = dut.head_dim, dut.q_bits, dut.k_bits
    qmax, kmax = (1 << (qb - 1)) - 1, (1 << (kb - 1)) - 1
    k = rng.integers(-kmax, kmax + 1, (n, hd))
    hot = rng.choice(n, size=min(n, 1 + n // 64), replace=False)
    q = rng.integers(-qmax, qmax + 1, hd)
    k[hot] = np.clip(k[hot] + np.sign(q) * (3 * kmax // 10), -kmax, kmax)
    msb, lsb = split(k, kb, dut.lsb_bits)
    v = rng.integers(-((1 << (dut.v_bits - 1)) - 1), 1 << (dut.v_bits - 1), (n, hd))
    return Stimulus(q, msb, lsb, v, ratio, threshold, int(rng.integers(0, 1 << 16)))


def diff_report(want: CoreStages, got: dict, limit: int = 5) -> list[str]:
    """Stage-by-stage differences, pipeline order; empty when everything matches.

    ``got`` holds ``scores`` (dict pass -> list of softmax inputs leaving Q.K), ``refetch``, ``probs``,
    ``kept`` and ``out``. Each line reads ``stage <name>: element <i>: expected <x>, got <y>`` (at most
    ``limit`` per stage, then a count), or ``stage <name>: length expected <a>, got <b>``.
    """
    lines: list[str] = []

    def cmp(name: str, exp, act) -> None:
        exp = [int(x) for x in exp]
        act = [int(x) for x in act]
        if len(exp) != len(act):
            lines.append(f"stage {name}: length expected {len(exp)}, got {len(act)}")
        bad = [i for i, (a, b) in enumerate(zip(exp, act, strict=False)) if a != b]
        for i in bad[:limit]:
            lines.append(f"stage {name}: element {i}: expected {exp[i]}, got {act[i]}")
        if len(bad) > limit:
            lines.append(f"stage {name}: ... {len(bad)} elements differ")

    cmp("scores (MSB pass)", want.msb_scores, got.get("scores", {}).get(0, []))
    if int(want.refetch) != int(got.get("refetch", -1)):
        lines.append(f"stage refetch: expected {int(want.refetch)}, got {got.get('refetch')}"
                     f" (row max expected {want.max_prob}, got {got.get('max_prob')})")  # fmt: skip
    if want.full_scores is not None:
        cmp("scores (LSB pass)", want.full_scores, got.get("scores", {}).get(1, []))
    cmp("probabilities", want.probs, got.get("probs", []))
    cmp("kept indices", want.kept, got.get("kept", []))
    cmp("output", want.output, got.get("out") or [])
    return lines


def sim_stage_model(n: int, m: int, *, k_par: int, v_par: int, topk_p: int, refetch: bool) -> dict:
    """The ``sim`` stage model's figures for one request on a core with these parallelisms.

    ``sim.simulate`` charges Q.K and softmax ``ceil(n / K_PAR)`` cycles per pass each, latencies
    ``qk_latency``, ``softmax_latency + pq_latency`` and ``pv_latency`` of the accelerator config, top-k
    ``sim.topk_table.expected_cycles`` and prob.V ``ceil(m / V_PAR)``.
    """
    from spatten.models.config import AcceleratorConfig
    from spatten.sim.topk_table import expected_cycles

    acc = AcceleratorConfig()
    passes = 2 if refetch else 1
    topk = float(expected_cycles(np.array([float(n)]), np.array([float(m)]), topk_p)[0]) if m < n else 0.0
    return {
        "qk": passes * math.ceil(n / k_par),
        "softmax": passes * math.ceil(n / k_par),
        "qk_latency": acc.qk_latency,
        "softmax_latency": acc.softmax_latency + acc.pq_latency,
        "topk": topk,
        "pv": math.ceil(m / v_par),
        "pv_latency": acc.pv_latency,
    }


async def _run_stream(dut, core, stims: list[Stimulus], rng: random.Random, idle: float, stall: float,
                      overlap: bool) -> None:  # fmt: skip
    """Drive every request through the core, each port's beats in request order, and fill each ``got``.

    With ``overlap`` each request is offered as soon as the previous one has been accepted (the core
    takes up to four at once, so one request's keys follow the previous one's); otherwise only once the
    previous request is complete (its output, probabilities and decision taken). LSB rows answer the
    refetching decision beats in order, value rows the kept beats. A port's beats belong to the oldest
    request still owed them, as in the core (scores by pass: MSB rows in request order, LSB rows in
    decision order). Stamps (``got["cyc"]``) are absolute cycles from the stream's start.
    """
    hd, kp, vp = core.head_dim, core.k_par, core.v_par
    sw, p_bits = core.spec.in_bits, core.spec.out_bits
    for s in stims:
        s.got = {"probs": [], "kept": [], "out": None, "refetch": None, "scores": {0: [], 1: []}, "cyc": {}}
    kk = [keep_count(s.ratio, s.n) for s in stims]
    nreq = len(stims)
    req_i = key_i = kb = dec_i = out_i = prob_i = kept_i = val_i = vb = 0
    lsb_q: list[int] = []  # refetching requests still owed LSB rows, in decision order
    refetching: list[int] = []  # every refetching request, in decision order (owners of the LSB scores)
    lb = lsb_score = 0
    score_i = 0  # the request owed the next MSB-pass scores

    def complete(i: int) -> bool:
        g = stims[i].got
        return g["out"] is not None and len(g["probs"]) == stims[i].n and g["refetch"] is not None

    limit = sum(60 * (s.n + 64) + 4000 for s in stims)
    cyc = 0
    while out_i < nreq or prob_i < nreq or dec_i < nreq:
        if cyc > limit:
            raise AssertionError(
                f"timeout after {cyc} cycles: {req_i} requests accepted, {dec_i} decisions,"
                f" {prob_i} prob rows, {kept_i} kept, {out_i} outputs"
            )
        go = idle == 0 or rng.random() >= idle
        req_on = req_i < nreq and (overlap or req_i == 0 or complete(req_i - 1))
        if req_on:
            s = stims[req_i]
            dut.req__payload.value = pack(core.req_layout, {
                "query": pack_lanes(s.q, core.q_bits), "k": kk[req_i], "seed": s.seed,
                "threshold": threshold_code(s.threshold, p_bits),
            })  # fmt: skip
        dut.req__valid.value = int(req_on and go)
        key_on = key_i < req_i
        if key_on:
            s = stims[key_i]
            nb = -(-s.n // kp)
            rows = s.k_msb[kb * kp : kb * kp + kp]
            dut.key__payload.value = pack(core.key_layout, {
                "msb": pack_lanes(rows.ravel(), core.k_msb_bits), "mask": (1 << len(rows)) - 1,
                "last": int(kb == nb - 1)})  # fmt: skip
        dut.key__valid.value = int(key_on and go)
        lsb_on = bool(lsb_q)
        if lsb_on:
            s = stims[lsb_q[0]]
            nb = -(-s.n // kp)
            rows = s.k_lsb[lb * kp : lb * kp + kp]
            dut.lsb__payload.value = pack(core.lsb_layout, {
                "lsb": pack_lanes(rows.ravel(), core.lsb_bits), "mask": (1 << len(rows)) - 1,
                "last": int(lb == nb - 1)})  # fmt: skip
        dut.lsb__valid.value = int(lsb_on and go)
        v_on = False
        if val_i < nreq:
            g = stims[val_i].got
            lo, hi = vb * vp, min(kk[val_i], vb * vp + vp)
            v_on = len(g["kept"]) >= hi
            if v_on:
                rows = stims[val_i].v[g["kept"][lo:hi]]
                # lanes past the kept rows carry junk, not zeros: the core must mask them, not rely on 0 * p
                junk = np.full((vp - len(rows), hd), -((1 << (core.v_bits - 1)) - 1), np.int64)
                rows = np.concatenate([rows, junk])
                dut.value__payload.value = pack(
                    core.value_layout, {"value": pack_lanes(rows.ravel(), core.v_bits)}
                )
        dut.value__valid.value = int(v_on and go)
        for name in ("decision", "prob", "kept", "out"):
            getattr(dut, f"{name}__ready").value = int(stall == 0 or rng.random() >= stall)
        await ReadOnly()
        if dut.req__valid.value == 1 and dut.req__ready.value == 1:
            stims[req_i].got["cyc"]["req"] = cyc
            req_i += 1
        if dut.key__valid.value == 1 and dut.key__ready.value == 1:
            c = stims[key_i].got["cyc"]
            c.setdefault("key_first", cyc)
            c["key_last"] = cyc
            kb += 1
            if kb == -(-stims[key_i].n // kp):
                key_i, kb = key_i + 1, 0
        if dut.lsb__valid.value == 1 and dut.lsb__ready.value == 1:
            c = stims[lsb_q[0]].got["cyc"]
            c.setdefault("lsb_first", cyc)
            c["lsb_last"] = cyc
            lb += 1
            if lb == -(-stims[lsb_q[0]].n // kp):
                lsb_q.pop(0)
                lb = 0
        if dut.value__valid.value == 1 and dut.value__ready.value == 1:
            vb += 1
            if vb * vp >= kk[val_i]:
                val_i, vb = val_i + 1, 0
        if dut.score_valid.value == 1:
            data, mask, ps = int(dut.score_data.value), int(dut.score_mask.value), int(dut.score_pass.value)
            scores = masked_lanes({"data": data, "mask": mask}, sw, kp, signed=True)
            if ps == 0:
                owner = stims[score_i].got["scores"][0]
                owner += scores
                if len(owner) >= stims[score_i].n:
                    score_i += 1
            else:
                owner_i = refetching[lsb_score]
                owner = stims[owner_i].got["scores"][1]
                owner += scores
                if len(owner) >= stims[owner_i].n:
                    lsb_score += 1
        if dut.decision__valid.value == 1:
            g = stims[dec_i].got
            g["cyc"].setdefault("decision", cyc)
            if dut.decision__ready.value == 1:
                d = unpack(core.decision_layout, int(dut.decision__payload.value))
                g["refetch"], g["max_prob"] = d["refetch"], d["max_prob"]
                if d["refetch"]:
                    lsb_q.append(dec_i)
                    refetching.append(dec_i)
                dec_i += 1
        if dut.prob__valid.value == 1 and dut.prob__ready.value == 1:
            g = stims[prob_i].got
            beat = unpack(core.prob_layout, int(dut.prob__payload.value))
            g["probs"] += masked_lanes(beat, p_bits, core.topk_lanes)
            g["cyc"]["prob_last"] = cyc
            if beat["last"]:
                prob_i += 1
        if dut.kept__valid.value == 1 and dut.kept__ready.value == 1:
            g = stims[kept_i].got
            beat = unpack(core.kept_layout, int(dut.kept__payload.value))
            g["kept"] += masked_lanes(beat, core.index_width, vp)
            g["cyc"]["kept_last"] = cyc
            if beat["last"]:
                kept_i += 1
        if dut.out__valid.value == 1 and dut.out__ready.value == 1:
            g = stims[out_i].got
            word = unpack(core.out_layout, int(dut.out__payload.value))["data"]
            g["out"] = unpack_lanes(word, core.acc_width, hd)
            g["cyc"]["out"] = cyc
            out_i += 1
        await RisingEdge(dut.clk)
        cyc += 1
    for name in ("req", "key", "lsb", "value"):
        getattr(dut, f"{name}__valid").value = 0


def _check(core, s: Stimulus, idx: int, exact_cycles: bool) -> dict:
    n = s.n
    kk = keep_count(s.ratio, n)
    p_bits = core.spec.out_bits
    tag = (f"request #{idx} (n={n}, head_dim={core.head_dim}, ratio={s.ratio}, threshold={s.threshold},"
           f" seed={s.seed})")  # fmt: skip
    want = attention_request_fixed(
        s.q, s.k_msb, s.k_lsb, s.v, lsb_bits=core.lsb_bits, score_shift=core.score_shift, spec=core.spec,
        threshold=s.threshold, value_ratio=s.ratio, q_bits=core.q_bits, k_msb_bits=core.k_msb_bits,
        v_bits=core.v_bits,
    )  # fmt: skip
    stages = attention_core_ref(
        s.q, s.k_msb, s.k_lsb, s.v, q_bits=core.q_bits, k_msb_bits=core.k_msb_bits, lsb_bits=core.lsb_bits,
        score_shift=core.score_shift, spec=core.spec, thr_code=threshold_code(s.threshold, p_bits), k=kk,
    )  # fmt: skip
    g = s.got
    ok = (
        g["refetch"] == int(want.refetch)
        and g["probs"] == want.probs.tolist()
        and g["kept"] == want.kept.tolist()
        and g["out"] == want.output.tolist()
    )
    diffs = diff_report(stages, g)
    if not ok or diffs:
        raise AssertionError(
            f"{tag}: mismatch against the golden\n  " + "\n  ".join(diffs or ["(twin agrees)"])
        )
    # the RTL's probabilities against the float64 softmax of the same scores, within models/softmax.py's bound
    sp = core.spec
    true_p = softmax_float(stages.scores * (sp.scale / (1 << sp.frac_bits)))
    per, total = error_bound(true_p, sp)
    err = np.abs(np.asarray(g["probs"]) / (1 << sp.out_bits) - true_p)
    if not (np.all(err <= per) and err.sum() <= total):
        j = int(np.argmax(err - per))
        raise AssertionError(
            f"{tag}: softmax error against float64 above the stated bound: element {j} error {err[j]:.3g}"
            f" (bound {per[j]:.3g}), total {err.sum():.3g} (bound {total:.3g})"
        )
    c = {k: v - g["cyc"]["req"] for k, v in g["cyc"].items()}
    model = core_cycles(want.probs, kk, k_par=core.k_par, v_par=core.v_par, head_dim=core.head_dim,
                        topk_p=core.topk_p, refetch=bool(want.refetch), seed=s.seed)  # fmt: skip
    measured = {
        "qk_beats": c["key_last"] - c["key_first"] + 1,
        "lsb_beats": c["lsb_last"] - c["lsb_first"] + 1 if "lsb_first" in c else 0,
        "decision": c["decision"],
        "prob_last": c["prob_last"],
        "kept_last": c["kept_last"],
        "out": c["out"],
        "total": max(c["out"], c["prob_last"]),
    }
    if exact_cycles:
        expect = {
            "qk_beats": model.qk_beats,
            "lsb_beats": model.qk_beats if want.refetch else 0,
            "decision": model.decision,
            "prob_last": model.prob_last,
            "kept_last": model.kept_last,
            "out": model.out,
            "total": model.total,
        }
        bad = [f"{k}: model {expect[k]}, RTL {measured[k]}" for k in expect if expect[k] != measured[k]]
        if bad:
            raise AssertionError(f"{tag}: cycle stamps differ from models.attention_core.core_cycles: "
                                 + "; ".join(bad))  # fmt: skip
    m = min(kk, n)
    sim = sim_stage_model(n, m, k_par=core.k_par, v_par=core.v_par, topk_p=core.topk_p,
                          refetch=bool(want.refetch))  # fmt: skip
    passes = 2 if want.refetch else 1
    return {
        "n": n, "k": m, "head_dim": core.head_dim, "k_par": core.k_par, "ratio": s.ratio,
        "threshold": s.threshold, "refetch": bool(want.refetch), "measured": measured,
        "rtl_stages": {"qk": passes * model.qk_beats, "qk_latency": model.qk_latency,
                       "softmax": passes * model.softmax_pass, "topk": model.topk,
                       "value_tail": model.value_tail, "pv_beats": math.ceil(m / core.v_par)},
        "sim_stages": sim,
    }  # fmt: skip


def _check_stream(core, stims: list[Stimulus], rows: list[dict]) -> None:
    """Every stamp of an overlapped stream ``==`` :func:`models.attention_core.stream_cycles`."""
    reqs = [StreamRequest(r["n"], r["k"], r["refetch"], r["rtl_stages"]["topk"],
                          r["rtl_stages"]["value_tail"]) for r in rows]  # fmt: skip
    model = stream_cycles(
        reqs, k_par=core.k_par, v_par=core.v_par, head_dim=core.head_dim, topk_p=core.topk_p
    )
    for i, (s, want) in enumerate(zip(stims, model, strict=True)):
        got = s.got["cyc"]
        keys = (
            "req",
            "key_first",
            "key_last",
            "lsb_first",
            "lsb_last",
            "decision",
            "prob_last",
            "kept_last",
            "out",
        )
        bad = [f"{k}: model {want.get(k)}, RTL {got.get(k)}" for k in keys if want.get(k) != got.get(k)]
        if bad:
            raise AssertionError(
                f"request #{i} (n={s.n}, refetch {rows[i]['refetch']}) of the overlapped stream: cycle stamps"
                " differ from models.attention_core.stream_cycles: " + "; ".join(bad)
            )


@cocotb.test()
async def attention_core_requests(dut) -> None:
    """Every (n, ratio, threshold) of the environment, then AC_REQUESTS random ones."""
    core = build_core()
    run = CoreRun.from_env()
    ratios, idle, stall = list(run.ratios), run.idle, run.stall
    rng, nprng = random.Random(run.seed), np.random.default_rng(run.seed)
    stims = [make_stimulus(nprng, core, n, r, t) for n in run.ns for r in ratios for t in run.thresholds]
    for _ in range(run.requests):
        n = int(nprng.integers(1, core.max_n + 1))
        stims.append(make_stimulus(nprng, core, n, float(rng.choice(ratios + [0.5])),
                                   float(rng.choice([0.0, 0.02, 0.05, 0.1, 1.0]))))  # fmt: skip
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for name in ("req", "key", "lsb", "value"):
        getattr(dut, f"{name}__valid").value = 0
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await _run_stream(dut, core, stims, rng, idle, stall, run.overlap)
    rows = []
    for i, s in enumerate(stims):
        # exact stamps for requests offered alone; an overlapped stream is checked by its outputs and its
        # cycles per request
        row = _check(core, s, i, idle == 0 and stall == 0 and not run.overlap)
        c = s.got["cyc"]
        row["req_at"] = c["req"]  # absolute cycles: the request accepted, its last output taken
        row["end_at"] = c["req"] + row["measured"]["total"]  # measured stamps count from the request
        rows.append(row)
    if run.overlap and idle == 0 and stall == 0:
        _check_stream(core, stims, rows)
    if run.report:
        with open(run.report, "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in rows)
    dut._log.info("attention core: %d requests == golden", len(rows))


def stream_summary(rows: list[dict], core: CoreParams) -> dict:
    """Cycles per request of a run's whole request stream, in the RTL and in the simulator's two models.

    ``rtl``: measured, the first request's last output to the last request's, over the requests between.
    ``as_built``: ``sim.rtl_core`` (the simulator's ``rtl`` design: the stream model with the top-k
    engine's mean cycles for each (n, k)) for the same requests (n, kept, refetch as the RTL decided),
    same span. ``pipeline``: the simulator's stage pipeline (Q.K, softmax,
    top-k, prob.V overlapped across requests, the paper's design) on the same requests with the inputs
    always there (the bench has no DRAM), the last stage's departures over the same span.
    """
    from spatten.models.config import AcceleratorConfig
    from spatten.sim.pipeline import run_pipeline
    from spatten.sim.rtl_core import rtl_stage_service

    if len(rows) < 2:
        raise ValueError("a stream needs at least 2 requests")
    span = len(rows) - 1
    rtl = (rows[-1]["end_at"] - rows[0]["end_at"]) / span
    n = np.array([r["n"] for r in rows], float)
    k = np.array([r["k"] for r in rows], float)
    rf = np.array([r["refetch"] for r in rows], bool)
    ones = np.ones(len(rows))
    built = rtl_stage_service(n, k, rf, k_par=core.k_par * ones, v_par=core.v_par * ones,
                              head_dim=core.head_dim * ones, topk_p=core.topk_p).sum(axis=0)  # fmt: skip
    acc = AcceleratorConfig()
    stages = [sim_stage_model(int(a), int(b), k_par=core.k_par, v_par=core.v_par, topk_p=core.topk_p,
                              refetch=bool(c)) for a, b, c in zip(n, k, rf, strict=True)]  # fmt: skip
    service = np.array([[s[x] for s in stages] for x in ("qk", "softmax", "topk", "pv")], float)
    latency = np.array([stages[0]["qk_latency"], stages[0]["softmax_latency"], 0.0, stages[0]["pv_latency"]])
    pr = run_pipeline(service, latency, acc.stage_buffer)
    return {
        "requests": len(rows),
        "rtl": rtl,
        "as_built": float(built[1:].sum()) / span,  # what each request after the first adds to the span
        "pipeline": float(pr.depart[-1, -1] - pr.depart[-1, 0]) / span,
    }
