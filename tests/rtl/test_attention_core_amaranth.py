"""Fast tier: AttentionCore under Amaranth's simulator against models.attention (== on every output).

Small rows, the refetch forced both ways (threshold code 0: never; 2**P: always) and a natural one,
keep ratios 1.0 / 0.3 / 0.2, idle input cycles and output back-pressure; the cycle model
(``models.attention_core.core_cycles``) is checked exactly when nothing stalls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import pytest
from amaranth.sim import Simulator
from spatten.models.attention import attention_request_fixed, softmax_spec
from spatten.models.attention_core import StreamRequest, attention_core_ref, core_cycles, stream_cycles
from spatten.models.fixed import split
from spatten.models.pruning import keep_count
from spatten.rtl.attention_core import AttentionCore

QB, MB, LB, VB = 8, 6, 4, 6


def _pack(values, width: int) -> int:
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def _signed(x: int, width: int) -> int:
    return x - (1 << width) if x >> (width - 1) else x


@dataclass
class Request:
    q: np.ndarray
    k_msb: np.ndarray
    k_lsb: np.ndarray
    v: np.ndarray
    ratio: float
    thr_code: int
    seed: int
    got: dict = field(default_factory=dict)


def make_request(rng: np.random.Generator, n: int, hd: int, ratio: float, thr_code: int) -> Request:
    q = rng.integers(-(1 << (QB - 1)) + 1, 1 << (QB - 1), hd)
    k = rng.integers(-(1 << (MB + LB - 1)) + 1, 1 << (MB + LB - 1), (n, hd))
    msb, lsb = split(k, MB + LB, LB)
    v = rng.integers(-(1 << (VB - 1)) + 1, 1 << (VB - 1), (n, hd))
    return Request(q, msb, lsb, v, ratio, thr_code, int(rng.integers(0, 1 << 16)))


def _lanes(word: int, mask: int, width: int, count: int, signed: bool = False) -> list[int]:
    """The live lanes of a packed lane beat, in lane order."""
    vals = [(word >> (j * width)) & ((1 << width) - 1) for j in range(count) if mask >> j & 1]
    return [_signed(v, width) for v in vals] if signed else vals


def _taken(ctx, dut: AttentionCore) -> dict:
    """What the core hands out this cycle (call after the combinational outputs settle): the observed
    scores (pass, values), ``decision_offered``, and each output beat taken (``decision``: refetch and
    row maximum; ``probs`` / ``kept``: the live lanes and ``last``; ``out``: the output vector)."""
    t: dict = {"decision_offered": bool(ctx.get(dut.decision.valid))}
    if ctx.get(dut.score_valid):
        scores = _lanes(ctx.get(dut.score_data), ctx.get(dut.score_mask), dut.spec.in_bits, dut.k_par, True)
        t["scores"] = (ctx.get(dut.score_pass), scores)
    if t["decision_offered"] and ctx.get(dut.decision.ready):
        t["decision"] = (ctx.get(dut.decision.payload.refetch), ctx.get(dut.decision.payload.max_prob))
    for name, port, width, count in (("probs", dut.prob, dut.spec.out_bits, dut.topk_lanes),
                                     ("kept", dut.kept, dut.index_width, dut.v_par)):  # fmt: skip
        if ctx.get(port.valid) and ctx.get(port.ready):
            word, mask = ctx.get(port.payload.data.as_value()), ctx.get(port.payload.mask)
            t[name] = (_lanes(word, mask, width, count), ctx.get(port.payload.last))
    if ctx.get(dut.out.valid) and ctx.get(dut.out.ready):
        word = ctx.get(dut.out.payload.data.as_value())
        t["out"] = _lanes(word, (1 << dut.head_dim) - 1, dut.acc_width, dut.head_dim, True)
    return t


def run_core(
    dut: AttentionCore, reqs: list[Request], idle: float, stall: float, seed: int = 1, eager: bool = False
) -> None:
    """Drive ``reqs`` through ``dut`` in Amaranth's simulator; fill each request's ``got``.

    ``eager``: once a request's value rows are all sent, keep offering junk value beats; a beat the core
    takes is counted in ``got["extra_value_beats"]`` (it must take exactly ``ceil(k / v_par)``)."""
    hd, kp, vp = dut.head_dim, dut.k_par, dut.v_par
    rng = random.Random(seed)

    async def bench(ctx):
        for r in reqs:
            n = r.k_msb.shape[0]
            kk = keep_count(r.ratio, n)
            key_beats = list(range(0, n, kp))
            got = r.got
            got.update(probs=[], kept=[], decision=None, out=None, cyc={}, scores={0: [], 1: []},
                       extra_value_beats=0)  # fmt: skip
            sent_req = False
            kb = lb_ = vb = 0
            cyc = 0
            ctx.set(dut.req.payload.query, _pack(r.q, QB))
            ctx.set(dut.req.payload.k, kk)
            ctx.set(dut.req.payload.seed, r.seed)
            ctx.set(dut.req.payload.threshold, r.thr_code)
            tail = 0  # eager: cycles after the request's outputs while junk is still offered
            while got["out"] is None or len(got["probs"]) < n or got["decision"] is None or tail < 3 * eager:
                if got["out"] is not None and len(got["probs"]) >= n and got["decision"] is not None:
                    tail += 1  # the core is winding down to IDLE: it must take no more value beats
                assert cyc < 40 * (n + 50), f"timeout at n={n}: {got}"
                go = idle == 0 or rng.random() >= idle
                ctx.set(dut.req.valid, int(not sent_req and go))
                if kb < len(key_beats):
                    b = key_beats[kb]
                    rows = r.k_msb[b : b + kp]
                    ctx.set(dut.key.payload.msb, _pack(rows.ravel(), MB))
                    ctx.set(dut.key.payload.mask, (1 << len(rows)) - 1)
                    ctx.set(dut.key.payload.last, int(kb == len(key_beats) - 1))
                ctx.set(dut.key.valid, int(sent_req and kb < len(key_beats) and go))
                lsb_on = got["decision"] is not None and got["decision"][0] == 1 and lb_ < len(key_beats)
                if lsb_on:
                    b = key_beats[lb_]
                    rows = r.k_lsb[b : b + kp]
                    ctx.set(dut.lsb.payload.lsb, _pack(rows.ravel(), LB))
                    ctx.set(dut.lsb.payload.mask, (1 << len(rows)) - 1)
                    ctx.set(dut.lsb.payload.last, int(lb_ == len(key_beats) - 1))
                ctx.set(dut.lsb.valid, int(lsb_on and go))
                # value rows of kept indices received so far, v_par per beat (the remainder at the end)
                have = len(got["kept"])
                lo_ = vb * vp
                hi_ = min(kk, lo_ + vp)
                v_on = lo_ < kk and have >= hi_
                if v_on:
                    rows = r.v[got["kept"][lo_:hi_]]
                    # lanes past the kept rows carry junk (the core must ignore them), not zeros
                    pad = np.full((vp - len(rows), hd), (1 << (VB - 1)) - 1, np.int64)
                    ctx.set(dut.value.payload.value, _pack(np.concatenate([rows, pad]).ravel(), VB))
                junk = eager and lo_ >= kk
                if junk:
                    ctx.set(dut.value.payload.value, _pack(np.full(vp * hd, -1), VB))
                ctx.set(dut.value.valid, int((v_on and go) or junk))
                for port in (dut.decision, dut.prob, dut.kept, dut.out):
                    ctx.set(port.ready, int(stall == 0 or rng.random() >= stall))
                await ctx.delay(1e-9)  # settle the combinational outputs
                t = _taken(ctx, dut)
                if "scores" in t:
                    got["scores"][t["scores"][0]] += t["scores"][1]
                if ctx.get(dut.req.valid) and ctx.get(dut.req.ready):
                    sent_req = True
                    got["cyc"]["req"] = cyc
                if ctx.get(dut.key.valid) and ctx.get(dut.key.ready):
                    got["cyc"].setdefault("key_first", cyc)
                    got["cyc"]["key_last"] = cyc
                    kb += 1
                if ctx.get(dut.lsb.valid) and ctx.get(dut.lsb.ready):
                    lb_ += 1
                if ctx.get(dut.value.valid) and ctx.get(dut.value.ready):
                    got["extra_value_beats"] += int(junk)
                    vb += 1
                if "decision" in t:
                    got["decision"] = t["decision"]
                    got["cyc"]["decision"] = cyc
                for name, stamp in (("probs", "prob_last"), ("kept", "kept_last")):
                    if name in t:
                        got[name] += t[name][0]
                        got["cyc"][stamp] = cyc
                if "out" in t:
                    got["out"] = t["out"]
                    got["cyc"]["out"] = cyc
                await ctx.tick()
                cyc += 1
            got["cyc"]["total"] = max(got["cyc"]["out"], got["cyc"]["prob_last"]) - got["cyc"]["req"]
        for port in (dut.req, dut.key, dut.lsb, dut.value):
            ctx.set(port.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def run_stream(dut: AttentionCore, reqs: list[Request], idle: float, stall: float, seed: int = 1) -> None:
    """Drive ``reqs`` overlapped: each offered once the previous one is accepted, every port's beats in
    request order (LSB rows in decision order, value rows behind the kept beats); fill each ``got`` with
    absolute cycle stamps."""
    hd, kp, vp = dut.head_dim, dut.k_par, dut.v_par
    rng = random.Random(seed)
    for r in reqs:
        r.got.update(probs=[], kept=[], decision=None, out=None, cyc={}, scores={0: [], 1: []})
    kk = [keep_count(r.ratio, r.k_msb.shape[0]) for r in reqs]
    beats = [-(-r.k_msb.shape[0] // kp) for r in reqs]

    async def bench(ctx):
        req_i = key_i = kb = dec_i = prob_i = kept_i = out_i = val_i = vb = lb_ = score0 = score1 = 0
        lsb_q: list[int] = []  # refetching requests in decision order (their LSB rows and LSB scores)
        refetching: list[int] = []
        cyc = 0
        while out_i < len(reqs) or prob_i < len(reqs) or dec_i < len(reqs):
            assert cyc < 60 * sum(r.k_msb.shape[0] + 50 for r in reqs), (
                f"timeout: {req_i} accepted, {out_i} out"
            )
            go = idle == 0 or rng.random() >= idle
            if req_i < len(reqs):
                r = reqs[req_i]
                ctx.set(dut.req.payload.query, _pack(r.q, QB))
                ctx.set(dut.req.payload.k, kk[req_i])
                ctx.set(dut.req.payload.seed, r.seed)
                ctx.set(dut.req.payload.threshold, r.thr_code)
            ctx.set(dut.req.valid, int(req_i < len(reqs) and go))
            if key_i < req_i:
                rows = reqs[key_i].k_msb[kb * kp : kb * kp + kp]
                ctx.set(dut.key.payload.msb, _pack(rows.ravel(), MB))
                ctx.set(dut.key.payload.mask, (1 << len(rows)) - 1)
                ctx.set(dut.key.payload.last, int(kb == beats[key_i] - 1))
            ctx.set(dut.key.valid, int(key_i < req_i and go))
            if lsb_q:
                rows = reqs[lsb_q[0]].k_lsb[lb_ * kp : lb_ * kp + kp]
                ctx.set(dut.lsb.payload.lsb, _pack(rows.ravel(), LB))
                ctx.set(dut.lsb.payload.mask, (1 << len(rows)) - 1)
                ctx.set(dut.lsb.payload.last, int(lb_ == beats[lsb_q[0]] - 1))
            ctx.set(dut.lsb.valid, int(bool(lsb_q) and go))
            v_on = False
            if val_i < len(reqs):
                got = reqs[val_i].got
                lo_, hi_ = vb * vp, min(kk[val_i], vb * vp + vp)
                v_on = len(got["kept"]) >= hi_
                if v_on:
                    rows = reqs[val_i].v[got["kept"][lo_:hi_]]
                    pad = np.full((vp - len(rows), hd), (1 << (VB - 1)) - 1, np.int64)  # junk, not zeros
                    ctx.set(dut.value.payload.value, _pack(np.concatenate([rows, pad]).ravel(), VB))
            ctx.set(dut.value.valid, int(v_on and go))
            for port in (dut.decision, dut.prob, dut.kept, dut.out):
                ctx.set(port.ready, int(stall == 0 or rng.random() >= stall))
            await ctx.delay(1e-9)  # settle the combinational outputs
            t = _taken(ctx, dut)
            if "scores" in t:
                lsb_pass, vals = t["scores"]
                owner = reqs[refetching[score1]] if lsb_pass else reqs[score0]
                owner.got["scores"][lsb_pass] += vals
                done = len(owner.got["scores"][lsb_pass]) >= owner.k_msb.shape[0]
                score1, score0 = (score1 + done, score0) if lsb_pass else (score1, score0 + done)
            if ctx.get(dut.req.valid) and ctx.get(dut.req.ready):
                reqs[req_i].got["cyc"]["req"] = cyc
                req_i += 1
            if ctx.get(dut.key.valid) and ctx.get(dut.key.ready):
                c = reqs[key_i].got["cyc"]
                c.setdefault("key_first", cyc)
                c["key_last"] = cyc
                kb += 1
                if kb == beats[key_i]:
                    key_i, kb = key_i + 1, 0
            if ctx.get(dut.lsb.valid) and ctx.get(dut.lsb.ready):
                c = reqs[lsb_q[0]].got["cyc"]
                c.setdefault("lsb_first", cyc)
                c["lsb_last"] = cyc
                lb_ += 1
                if lb_ == beats[lsb_q[0]]:
                    lsb_q.pop(0)
                    lb_ = 0
            if ctx.get(dut.value.valid) and ctx.get(dut.value.ready):
                vb += 1
                if vb * vp >= kk[val_i]:
                    val_i, vb = val_i + 1, 0
            if t["decision_offered"]:
                got = reqs[dec_i].got
                got["cyc"].setdefault("decision", cyc)
                if "decision" in t:
                    got["decision"] = t["decision"]
                    if got["decision"][0]:
                        lsb_q.append(dec_i)
                        refetching.append(dec_i)
                    dec_i += 1
            if "probs" in t:
                reqs[prob_i].got["probs"] += t["probs"][0]
                reqs[prob_i].got["cyc"]["prob_last"] = cyc
                prob_i += t["probs"][1]
            if "kept" in t:
                reqs[kept_i].got["kept"] += t["kept"][0]
                reqs[kept_i].got["cyc"]["kept_last"] = cyc
                kept_i += t["kept"][1]
            if "out" in t:
                reqs[out_i].got["out"] = t["out"]
                reqs[out_i].got["cyc"]["out"] = cyc
                out_i += 1
            await ctx.tick()
            cyc += 1
        for port in (dut.req, dut.key, dut.lsb, dut.value):
            ctx.set(port.valid, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def check(dut: AttentionCore, r: Request) -> None:
    n = r.k_msb.shape[0]
    spec = dut.spec
    thr = r.thr_code / (1 << spec.out_bits)
    want = attention_request_fixed(
        r.q, r.k_msb, r.k_lsb, r.v, lsb_bits=LB, score_shift=dut.score_shift, spec=spec, threshold=thr,
        value_ratio=r.ratio, q_bits=QB, k_msb_bits=MB, v_bits=VB,
    )  # fmt: skip
    g = r.got
    st = attention_core_ref(
        r.q, r.k_msb, r.k_lsb, r.v, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, score_shift=dut.score_shift,
        spec=spec, thr_code=r.thr_code, k=keep_count(r.ratio, n),
    )  # fmt: skip
    assert g["scores"][0] == st.msb_scores.tolist(), f"stage scores (MSB pass), n={n}"
    assert g["scores"][1] == ([] if st.full_scores is None else st.full_scores.tolist()), (
        f"stage scores (LSB), n={n}"
    )
    assert g["decision"][0] == int(want.refetch), (
        f"stage refetch, n={n}: expected {want.refetch}, got {g['decision']}"
    )
    assert g["probs"] == want.probs.tolist(), f"stage probabilities, n={n}"
    assert g["kept"] == want.kept.tolist(), f"stage kept indices, n={n}"
    assert g["out"] == want.output.tolist(), f"stage output, n={n}"


@pytest.mark.parametrize("thr_code", [0, 4096], ids=["never-refetch", "always-refetch"])
@pytest.mark.parametrize("ratio", [1.0, 0.3, 0.2])
def test_core_matches_golden(thr_code: int, ratio: float) -> None:
    hd, kp, vp = 4, 2, 2
    dut = AttentionCore(hd, kp, vp, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, v_bits=VB, score_shift=2,
                        topk_p=4, max_n=32)  # fmt: skip
    rng = np.random.default_rng(int(ratio * 10) + thr_code)
    reqs = [make_request(rng, n, hd, ratio, thr_code) for n in (1, 7, 20)]
    run_core(dut, reqs, 0.0, 0.0)
    for r in reqs:
        check(dut, r)


def _cycles_match(dut: AttentionCore, r: Request) -> None:
    n = r.k_msb.shape[0]
    st = attention_core_ref(
        r.q, r.k_msb, r.k_lsb, r.v, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, score_shift=dut.score_shift,
        spec=dut.spec, thr_code=r.thr_code, k=keep_count(r.ratio, n),
    )  # fmt: skip
    want = core_cycles(st.probs, keep_count(r.ratio, n), k_par=dut.k_par, v_par=dut.v_par,
                       head_dim=dut.head_dim, topk_p=dut.topk_p, refetch=st.refetch, seed=r.seed)  # fmt: skip
    # written out here: the softmax's output beats reach the top-k in ceil(n / T) cycles a pass
    b, t = -(-n // dut.k_par), dut.topk_lanes
    assert want.softmax_pass == 2 * b + 1 + -(-n // t)
    c = {k: v - r.got["cyc"]["req"] for k, v in r.got["cyc"].items() if k not in ("req", "total")}
    got = (c["key_last"] - c["key_first"] + 1, c["decision"], c["prob_last"], c["kept_last"], c["out"])
    assert got == (want.qk_beats, want.decision, want.prob_last, want.kept_last, want.out), (n, got, want)
    assert r.got["cyc"]["total"] == want.total


# (D, K_PAR, V_PAR, P): K_PAR <= P feeds the top-k whole softmax beats (2 and 4 lanes), K_PAR > P
# serializes them (3 > 2), K_PAR = 1 is the one-lane path
CYCLE_CASES = [(4, 2, 2, 2), (3, 4, 2, 4), (5, 3, 1, 2), (1, 1, 3, 2)]


@pytest.mark.parametrize(("head_dim", "k_par", "v_par", "topk_p"), CYCLE_CASES)
def test_core_cycle_model_exact(head_dim: int, k_par: int, v_par: int, topk_p: int) -> None:
    dut = AttentionCore(head_dim, k_par, v_par, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, v_bits=VB,
                        score_shift=1, topk_p=topk_p, max_n=40)  # fmt: skip
    assert dut.topk_lanes == (k_par if k_par <= topk_p else 1)
    rng = np.random.default_rng(head_dim)
    reqs = [make_request(rng, n, head_dim, ratio, thr) for n in (1, 9, 40) for ratio in (1.0, 0.2)
            for thr in (0, 4096)]  # fmt: skip
    run_core(dut, reqs, 0.0, 0.0)
    for r in reqs:
        check(dut, r)
        _cycles_match(dut, r)


@pytest.mark.parametrize(("head_dim", "k_par", "v_par", "topk_p"), CYCLE_CASES)
def test_core_overlapped_stream_exact(head_dim: int, k_par: int, v_par: int, topk_p: int) -> None:
    """Requests offered as soon as the previous one is accepted: up to four in the core at once, every
    output == the golden model and every stamp == models.attention_core.stream_cycles."""
    dut = AttentionCore(head_dim, k_par, v_par, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, v_bits=VB,
                        score_shift=1, topk_p=topk_p, max_n=40)  # fmt: skip
    rng = np.random.default_rng(head_dim + 100)
    shapes = [(n, ratio, thr) for n in (40, 1, 9, 23) for ratio in (1.0, 0.2) for thr in (0, 4096, 205)]
    order = rng.permutation(len(shapes))
    reqs = [make_request(rng, *shapes[i][:1], head_dim, *shapes[i][1:]) for i in order]
    run_stream(dut, reqs, 0.0, 0.0)
    stream = []
    for r in reqs:
        check(dut, r)
        n = r.k_msb.shape[0]
        kk = keep_count(r.ratio, n)
        st = attention_core_ref(
            r.q, r.k_msb, r.k_lsb, r.v, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, score_shift=dut.score_shift,
            spec=dut.spec, thr_code=r.thr_code, k=kk,
        )  # fmt: skip
        cc = core_cycles(st.probs, kk, k_par=k_par, v_par=v_par, head_dim=head_dim, topk_p=topk_p,
                         refetch=st.refetch, seed=r.seed)  # fmt: skip
        stream.append(StreamRequest(n, min(kk, n), st.refetch, cc.topk, cc.value_tail))
    want = stream_cycles(stream, k_par=k_par, v_par=v_par, head_dim=head_dim, topk_p=topk_p)
    overlapped = 0
    for i, (r, w) in enumerate(zip(reqs, want, strict=True)):
        got = r.got["cyc"]
        assert {k: got.get(k) for k in w if k not in ("select", "done")} == {
            k: v for k, v in w.items() if k not in ("select", "done")
        }, (i, r.k_msb.shape[0])
        overlapped += i > 0 and got["req"] < reqs[i - 1].got["cyc"]["out"]
    assert overlapped >= len(reqs) // 2  # requests really were in the core together


def test_core_overlapped_stream_idle_and_backpressure() -> None:
    """Overlapped requests with idle input cycles and stalled outputs: timing moves, values never. max_n
    = 51 at K_PAR = 3 makes 17 rows a bank, one past a power of two, so a bank address one bit short
    would alias the last row onto the first while a stalled reader still needs it."""
    hd = 5
    # score_shift 8 keeps the softmax flat enough that most probabilities are not 0
    dut = AttentionCore(hd, 3, 2, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, v_bits=VB, score_shift=8,
                        topk_p=4, max_n=51)  # fmt: skip
    rng = np.random.default_rng(21)
    # full-length requests behind slow ones (keep 0.2: the engine holds the back end while the next
    # request's rows fill its bank), then random ones
    shapes = [(51, 0.2), (51, 1.0), (50, 0.2), (51, 0.3), (49, 1.0)]
    shapes += [(int(rng.integers(1, 52)), float(rng.choice([1.0, 0.3, 0.2]))) for _ in range(15)]
    reqs = [make_request(rng, n, hd, ratio, int(rng.choice([0, 205, 4096]))) for n, ratio in shapes]
    run_stream(dut, reqs, 0.3, 0.4, seed=3)
    for r in reqs:
        check(dut, r)


@pytest.mark.parametrize("ratio", [1.0, 0.3, 0.2])
def test_core_idle_and_backpressure(ratio: float) -> None:
    """Random idle input cycles and output back-pressure change timing, never values; a natural
    threshold (0.05) lets the data decide the refetch."""
    hd = 6
    dut = AttentionCore(hd, 4, 2, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, v_bits=VB, score_shift=3,
                        topk_p=4, max_n=64)  # fmt: skip
    rng = np.random.default_rng(11)
    reqs = [make_request(rng, n, hd, ratio, thr) for n in (1, 7, 33, 64) for thr in (0, 205, 4096)]
    run_core(dut, reqs, 0.3, 0.4, seed=5)
    for r in reqs:
        check(dut, r)


@pytest.mark.parametrize("v_par", [1, 2, 3])
def test_core_takes_no_value_beat_past_its_rows(v_par: int) -> None:
    """An eager value producer (junk offered once the kept rows are sent): the core takes exactly
    ceil(k / V_PAR) beats, whether or not k is a multiple of V_PAR, and its outputs stay golden."""
    hd = 3
    dut = AttentionCore(hd, 2, v_par, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, v_bits=VB, score_shift=1,
                        topk_p=4, max_n=24)  # fmt: skip
    rng = np.random.default_rng(v_par)
    # k = keep_count: n = 12 at 0.5 -> 6 rows (a multiple of 1, 2, 3); n = 7 at 1.0 -> 7; n = 1 -> 1
    reqs = [make_request(rng, n, hd, ratio, 0) for n, ratio in ((12, 0.5), (7, 1.0), (1, 1.0), (24, 0.2))]
    run_core(dut, reqs, 0.0, 0.0, eager=True)
    for r in reqs:
        assert r.got["extra_value_beats"] == 0
        check(dut, r)


def test_core_static_quantization() -> None:
    """lsb_bits = 0: the MSB codes are the keys and no threshold makes the core refetch."""
    hd = 3
    dut = AttentionCore(hd, 2, 2, q_bits=QB, k_msb_bits=MB, lsb_bits=0, v_bits=VB, score_shift=0,
                        topk_p=2, max_n=16)  # fmt: skip
    rng = np.random.default_rng(2)
    reqs = []
    for n in (1, 5, 16):
        r = make_request(rng, n, hd, 0.3, 4096)
        r.k_msb = rng.integers(-(1 << (MB - 1)) + 1, 1 << (MB - 1), (n, hd))
        reqs.append(r)
    run_core(dut, reqs, 0.0, 0.0)
    for r in reqs:
        want = attention_request_fixed(r.q, r.k_msb, None, r.v, lsb_bits=0, score_shift=0, spec=dut.spec,
                                       threshold=1.0, value_ratio=r.ratio)  # fmt: skip
        assert r.got["decision"][0] == 0
        assert r.got["probs"] == want.probs.tolist()
        assert r.got["kept"] == want.kept.tolist()
        assert r.got["out"] == want.output.tolist()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"head_dim": 0}, "head_dim = 0 is outside the allowed range 1..1024"),
        ({"k_par": 65}, "k_par = 65 is outside the allowed range 1..64"),
        ({"v_par": 0}, "v_par = 0 is outside the allowed range 1..64"),
        ({"lsb_bits": 9}, "lsb_bits = 9 is outside the allowed range 0..8"),
        ({"topk_p": 12}, "topk_p = 12 must be a power of two in 1..32"),
        ({"max_n": 0}, "max_n = 0 is outside the allowed range 1..65536"),
        ({"q_bits": 1}, "q_bits = 1 is outside the allowed range 2..16"),
    ],
)
def test_core_rejects_bad_parameters(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        AttentionCore(**kwargs)


def test_core_rejects_non_int_and_bad_spec() -> None:
    with pytest.raises(TypeError, match="k_par must be an int"):
        AttentionCore(k_par=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="spec must be a SoftmaxSpec"):
        AttentionCore(spec=softmax_spec)  # type: ignore[arg-type]


@pytest.mark.parametrize("thr_code", [0, 4096], ids=["never-refetch", "always-refetch"])
def test_core_extreme_codes_keep_every_bit_of_the_scores(thr_code: int) -> None:
    """Largest Q and K codes of one sign: |q . k| = head_dim x 127 x 511 needs every bit of the Q.K unit's
    score (q_bits + k_bits + log2 head_dim); a narrower one wraps and reorders the scores."""
    hd = 4
    dut = AttentionCore(hd, 2, 2, q_bits=QB, k_msb_bits=MB, lsb_bits=LB, v_bits=VB, score_shift=2,
                        topk_p=4, max_n=32)  # fmt: skip
    qmax, kmax = (1 << (QB - 1)) - 1, (1 << (MB + LB - 1)) - 1
    k = np.array([[kmax] * hd, [-kmax] * hd, [0] * hd, [kmax, -kmax, kmax, 0]])
    msb, lsb = split(k, MB + LB, LB)
    v = np.arange(4 * hd).reshape(4, hd) - 8
    reqs = [Request(np.full(hd, q), msb, lsb, v, 1.0, thr_code, 7) for q in (qmax, -qmax)]
    run_core(dut, reqs, 0.0, 0.0)
    for r in reqs:
        check(dut, r)
