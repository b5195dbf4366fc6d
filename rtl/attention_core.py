"""AttentionCore: one SpAtten (head, query) request end to end, from key MSB rows to the output vector.

Composes ``QKUnit -> Softmax -> RequantDecision (-> LSB refetch, Q.K and softmax again) -> TopKEngine ->
ValueUnit``. Twin: :func:`models.attention_core.attention_core_ref` (stages) and
:func:`models.attention.attention_request_fixed` (result); cycles: :func:`models.attention_core.core_cycles`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from spatten.models.attention import softmax_spec
from spatten.models.attention_core import topk_lanes
from spatten.models.softmax import SoftmaxSpec
from spatten.rtl.layouts import lane_beat
from spatten.rtl.params import check_int, check_power_of_two, rejected_quietly
from spatten.rtl.qk import QKUnit
from spatten.rtl.requant import RequantDecision, decision_layout
from spatten.rtl.softmax import Softmax
from spatten.rtl.topk import TopKEngine
from spatten.rtl.value_unit import ValueUnit, acc_width, sum_layout

__all__ = ["AttentionCore", "Phase"]


class Phase(enum.Enum, shape=3):
    """The core's phase, one per state of its control FSM (the ``phase`` port)."""

    IDLE = 0  # ready for a request
    MSB = 1  # MSB keys through Q.K and the softmax; the final row's OUT when there is no refetch
    LSB = 3  # refetch: LSB keys through Q.K and the softmax again (2 was a flush state, now gone)
    SELECT = 4  # top-k, kept indices, value rows, probabilities and the output


class AttentionCore(wiring.Component):
    """One attention request: Q.K on MSB keys, softmax, PQ refetch, local value top-k, prob.V.

    Per request (one in flight at a time): the ``req`` beat brings the query, k, the top-k seed and the
    refetch threshold; key MSB rows stream in ``k_par`` per beat and go through Q.K at one beat per cycle
    straight into the :class:`~rtl.softmax.Softmax` (``lanes = k_par``: it loads and exponentiates one
    ``k_par``-wide beat per cycle) while the MSBs are kept in a key buffer. At the softmax's DIV its row
    maximum's probability (``peak``) goes to the :class:`~rtl.requant.RequantDecision`, so the decision
    beat comes before the row's OUT pass and says whether the row is flat. If not, the OUT beats are the
    final probabilities: one per cycle into a probability buffer and the :class:`~rtl.topk.TopKEngine`
    (``in_lanes = k_par``) when ``k_par <= topk_p``; with ``k_par > topk_p`` (the engine's input is at
    most P wide) they are serialized, one probability per cycle (``topk_lanes`` says which). If it is,
    the MSB row leaves OUT unused while the LSB rows are taken ``k_par`` per beat, reassembled with the
    buffered MSBs, and go through Q.K and the softmax again (the engine never sees the MSB row). At the
    final row's decision (the MSB row's, or the LSB row's peak) the core selects: the engine
    gets k, its kept indices leave on ``kept`` (the value-row requests) while the final probabilities
    drain from the buffer on ``prob``, one buffer row (``topk_lanes``) a beat, each as soon as the final
    OUT pass has written it; value rows come back on
    ``value`` in ``kept`` order, ``v_par`` per beat, into the :class:`~rtl.value_unit.ValueUnit`; its
    sums leave on ``out``. A request keeping every row (k >= n) bypasses the selection when
    ``topk_lanes == v_par``: the engine gets k = 0, the kept indices 0 .. n-1 leave ``v_par`` a beat and
    the value unit reads the probabilities straight from the buffer. The request ends (and ``req`` is
    ready again two cycles later) once ``out``, every ``prob`` beat, the ``decision`` beat and the
    engine's last beat have been taken. Cycle stamps: :func:`models.attention_core.core_cycles`.

    Parameters
    ----------
    head_dim : int
        D, elements per query/key/value row, 1..1024.
    k_par : int
        Keys per cycle through Q.K, 1..64.
    v_par : int
        Value rows per beat into prob.V, 1..64.
    q_bits, k_msb_bits, v_bits : int
        Signed widths of query, key MSB and value codes, 2..16.
    lsb_bits : int
        Unsigned key LSB width, 0..8 (0: static quantization, no refetch; ``k_msb_bits`` are the keys).
    score_shift : int
        Rounding right shift from the raw dot product to the softmax input, 0..62; the result saturates
        to ``spec.in_bits``.
    spec : SoftmaxSpec or None
        Softmax widths; default ``models.attention.softmax_spec(head_dim)``. P = ``spec.out_bits``.
    topk_p : int
        Top-k comparators per cycle, a power of two in 1..32. ``k_par <= topk_p`` lets the top-k take
        the softmax's output ``k_par`` per cycle (``ceil(n / k_par)`` cycles a pass instead of n).
    max_n : int
        Largest request (keys), 1..65536.

    Attributes
    ----------
    topk_lanes : int
        Probabilities per cycle into the top-k engine: ``k_par`` if ``k_par <= topk_p``, else 1
        (``models.attention_core.topk_lanes``).

    Ports
    -----
    req : In stream, payload ``req_layout`` (``D*q_bits + bit_length(max_n) + 16 + P + 1`` bits)
        ``query`` packed signed codes (element i at bits [i*q_bits, ...)); ``k`` value rows to keep,
        1..max_n (0 is taken as 1, k > n as n); ``seed`` the top-k pivot seed; ``threshold`` the refetch
        threshold code (``models.quant.threshold_code``; 0 never refetches, 2**P always does).
        Accepted only when the core is idle; starts a request.
    key : In stream, payload ``msb`` (``k_par*D*k_msb_bits``: key j element i at index j*D+i), ``mask``
        (``k_par``, a prefix of lanes: only the last beat may be partial), ``last`` (1, ends the keys).
        At most ``max_n`` keys. Ready every cycle of the key phase (no bubbles).
    decision : Out stream, payload ``refetch`` (1) and ``max_prob`` (P): one beat per request, after
        the MSB pass; with ``refetch`` = 1 the LSB rows must follow on ``lsb``.
    lsb : In stream, payload ``lsb`` (``k_par*D*lsb_bits``, at least 1 bit; unsigned, same packing as
        ``msb``), ``mask``, ``last``: the LSB rows in key order, only after a refetch decision.
    prob : Out stream of ``lane_beat(unsigned(P), topk_lanes)`` (``topk_lanes * (P + 1) + 1`` bits)
        The n final probabilities in token order (for the importance accumulators): ``data[j]`` lane j's
        unsigned code, ``mask`` the live lanes (only the last beat partial), ``last``.
    kept : Out stream of ``lane_beat(unsigned(index_width), v_par)`` (``v_par * (index_width + 1) + 1``
        bits, ``index_width = max(1, bit_length(max_n - 1))``)
        The kept value rows, ascending, ``data[j]`` lane j's index, ``mask`` the live lanes: one index a
        beat from the top-k engine, ``v_par`` a beat on the bypass; this is the value-row request.
    value : In stream, payload ``value`` (``v_par*D*v_bits``, row j element i at index j*D+i): the kept
        rows in ``kept`` order, ``v_par`` per beat, the last beat holding the remainder (other lanes are
        ignored).
    out : Out stream, payload ``data`` (``D*acc_width``, element i at bits [i*acc_width, ...), signed,
        ``acc_width = P + 1 + v_bits + max(1, ceil(log2 max_n))``): ``sum over kept j of p_j * v[j]``.
    score_valid, score_pass, score_mask, score_data : Out(1), Out(1), Out(k_par), Out(k_par*in_bits)
        Observation only (no handshake): a beat of softmax input scores leaving Q.K, with the pass
        (0 MSB estimate, 1 reassembled keys), its lanes and the packed signed scores.
    phase : Out(Phase), 3 bits
        Current phase (for latency measurement): :class:`Phase` IDLE 0, MSB 1 (MSB keys and softmax),
        LSB 3 (LSB keys and softmax), SELECT 4 (top-k, value rows and outputs).
    """

    def __init__(
        self,
        head_dim: int = 64,
        k_par: int = 8,
        v_par: int = 8,
        *,
        q_bits: int = 8,
        k_msb_bits: int = 8,
        lsb_bits: int = 4,
        v_bits: int = 8,
        score_shift: int = 0,
        spec: SoftmaxSpec | None = None,
        topk_p: int = 16,
        max_n: int = 1024,
    ) -> None:
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            self.head_dim = check_int("head_dim", head_dim, 1, 1024)
            self.k_par = check_int("k_par", k_par, 1, 64)
            self.v_par = check_int("v_par", v_par, 1, 64)
            self.q_bits = check_int("q_bits", q_bits, 2, 16)
            self.k_msb_bits = check_int("k_msb_bits", k_msb_bits, 2, 16)
            self.lsb_bits = check_int("lsb_bits", lsb_bits, 0, 8)
            self.v_bits = check_int("v_bits", v_bits, 2, 16)
            self.score_shift = check_int("score_shift", score_shift, 0, 62)
            self.topk_p = check_power_of_two("topk_p", topk_p, 32)
            self.max_n = check_int("max_n", max_n, 1, 1 << 16)
            if spec is None:
                spec = softmax_spec(head_dim)
            if not isinstance(spec, SoftmaxSpec):
                raise TypeError(f"spec must be a SoftmaxSpec, got {type(spec).__name__}")
            self.spec = spec
        hd, p = head_dim, spec.out_bits
        # the top-k engine takes the softmax's K_PAR-wide beats whole when its P lanes can (K_PAR <= P);
        # otherwise they are serialized to one probability per cycle
        self.topk_lanes = topk_lanes(k_par, self.topk_p)
        self.k_bits = k_msb_bits + lsb_bits
        self.index_width = max(1, (max_n - 1).bit_length())
        self.acc_width = acc_width(p, v_bits, max_n)
        self.req_layout = data.StructLayout(
            {"query": unsigned(hd * q_bits), "k": unsigned(max_n.bit_length()), "seed": 16,
             "threshold": unsigned(p + 1)}
        )  # fmt: skip
        self.key_layout = data.StructLayout(
            {"msb": unsigned(k_par * hd * k_msb_bits), "mask": k_par, "last": 1}
        )
        self.lsb_layout = data.StructLayout(
            {"lsb": unsigned(max(1, k_par * hd * lsb_bits)), "mask": k_par, "last": 1}
        )
        self.decision_layout = decision_layout(p)
        self.prob_layout = lane_beat(unsigned(p), self.topk_lanes)
        self.kept_layout = lane_beat(unsigned(self.index_width), v_par)
        self.value_layout = data.StructLayout({"value": unsigned(v_par * hd * v_bits)})
        self.out_layout = sum_layout(hd, self.acc_width)
        super().__init__(
            {
                "req": In(stream.Signature(self.req_layout)),
                "key": In(stream.Signature(self.key_layout)),
                "decision": Out(stream.Signature(self.decision_layout)),
                "lsb": In(stream.Signature(self.lsb_layout)),
                "prob": Out(stream.Signature(self.prob_layout)),
                "kept": Out(stream.Signature(self.kept_layout)),
                "value": In(stream.Signature(self.value_layout)),
                "out": Out(stream.Signature(self.out_layout)),
                "score_valid": Out(1),
                "score_pass": Out(1),
                "score_mask": Out(k_par),
                "score_data": Out(k_par * spec.in_bits),
                "phase": Out(Phase),
            }
        )

    def elaborate(self, platform):
        m = Module()
        hd, kp, vp = self.head_dim, self.k_par, self.v_par
        sp = self.spec
        pw, sw_in = sp.out_bits, sp.in_bits
        mb, lb = self.k_msb_bits, self.lsb_bits
        cnt = unsigned(self.max_n.bit_length())

        m.submodules.qk = qk = QKUnit(hd, kp, self.q_bits, self.k_bits)
        m.submodules.softmax = sm = Softmax(sp, self.max_n, lanes=kp)
        tl = self.topk_lanes
        # the refetch decision on the softmax's row maximum, known at its DIV, before the row's OUT pass
        m.submodules.requant = rq = RequantDecision(pw, 1)
        wiring.connect(m, sm.peak, rq.i)
        m.submodules.topk = tk = TopKEngine(pw + 1, self.max_n, self.topk_p, in_lanes=tl)
        m.submodules.value_unit = vu = ValueUnit(hd, vp, pw, self.v_bits, self.max_n)

        # --- request registers ------------------------------------------------------------------------
        query = Signal(hd * self.q_bits)
        k_req = Signal(cnt)
        seed = Signal(16)
        thr = Signal(pw + 1)
        n = Signal(cnt)  # keys in this request (known when the MSB pass's scores are all written)
        m_keep = Signal(cnt)  # value rows kept: min(max(k, 1), n)
        m.d.comb += [qk.query.eq(query), rq.threshold.eq(thr), rq.o.ready.eq(1)]  # decisions taken at once

        # --- key buffer: the MSB rows, re-read for the LSB pass -----------------------------------------
        rows_k = -(-self.max_n // kp)
        key_row = Signal(range(rows_k + 1))
        if lb:
            m.submodules.kbuf = kbuf = Memory(shape=unsigned(kp * hd * mb), depth=rows_k, init=[])
            kb_w, kb_r = kbuf.write_port(), kbuf.read_port(domain="comb")
            m.d.comb += [kb_w.addr.eq(key_row), kb_w.data.eq(self.key.payload.msb), kb_r.addr.eq(key_row)]

        # --- Q.K input mux: MSB estimate (LSBs = middle of their range) or reassembled key -------------
        refetching = Signal()  # pass 2 (LSB) in progress
        k_elems = []
        for e in range(kp * hd):
            if lb:
                msb_e = Mux(
                    refetching, kb_r.data[e * mb : (e + 1) * mb], self.key.payload.msb[e * mb : (e + 1) * mb]
                )
                low = Mux(refetching, self.lsb.payload.lsb[e * lb : (e + 1) * lb], Const(1 << (lb - 1), lb))
                k_elems.append(Cat(low, msb_e))
            else:
                k_elems.append(self.key.payload.msb[e * mb : (e + 1) * mb])
        m.d.comb += qk.k.payload.data.eq(Cat(*k_elems))
        # --- Q.K scores straight into the softmax, k_par lanes per beat ---------------------------------
        # The softmax's LOAD takes one k_par-wide beat per cycle, the rate Q.K produces them, and a score
        # bank is free before a pass's first key beat, so Q.K never waits (qk.s.ready only guards that).
        m.d.comb += qk.s.ready.eq(sm.i.ready)
        wr_count = Signal(cnt)  # scores of this pass handed to the softmax so far
        hi, lo = (1 << (sw_in - 1)) - 1, -(1 << (sw_in - 1))
        sh = self.score_shift
        scaled = []
        for j in range(kp):
            raw = qk.s.payload.data[j]
            x = Signal(signed(qk.score_width + 1), name=f"shifted{j}")
            m.d.comb += x.eq((raw + (1 << (sh - 1))) >> sh if sh else raw)
            s = Signal(signed(sw_in), name=f"score{j}")
            m.d.comb += s.eq(Mux(x > hi, hi, Mux(x < lo, lo, x)))
            scaled.append(s)
        s_mask = qk.s.payload.mask
        popcount = sum(s_mask[j] for j in range(kp)) if kp > 1 else s_mask[0]
        m.d.comb += [
            self.score_valid.eq(qk.s.valid),
            self.score_pass.eq(refetching),
            self.score_mask.eq(s_mask),
            self.score_data.eq(Cat(*scaled)),
            sm.i.valid.eq(qk.s.valid),
            sm.i.payload.data.eq(Cat(*scaled)),
            sm.i.payload.mask.eq(s_mask),
            sm.i.payload.last.eq(qk.s.payload.last),
        ]
        with m.If(sm.i.valid & sm.i.ready):
            m.d.sync += wr_count.eq(wr_count + popcount)
            with m.If(sm.i.payload.last):
                m.d.sync += n.eq(wr_count + popcount)

        # --- softmax output into the probability buffer, the refetch decision and the top-k engine: whole
        # K_PAR-wide beats when the engine takes them (topk_lanes = K_PAR), else one probability per cycle
        sm_take = Signal()
        # The OUT beats wait for the MSB row's decision; a row that will be refetched leaves OUT unused
        # (`discard`) while the LSB row loads, so the top-k engine and the buffer only see final rows.
        decided, discard = Signal(), Signal()
        fwd = Signal()
        m.d.comb += fwd.eq(decided & ~discard)
        p_avail = Signal(cnt)  # buffer rows of the final probabilities written so far (the write address)
        pr_base = Signal(cnt)  # drain: the element in lane 0 of the next prob beat
        pr_row = Signal(cnt)  # drain: its buffer row
        if tl > 1:
            # buffer rows of K_PAR probabilities, one beat per row; the drain and the bypass read rows
            rows_p = -(-self.max_n // kp)
            m.submodules.pbuf = pbuf = Memory(shape=unsigned(kp * pw), depth=rows_p, init=[])
            pb_w, pb_r = pbuf.write_port(), pbuf.read_port(domain="comb")
            probs = sm.o.payload
            tk_scores = Cat(*(Cat(probs.data[j], Const(0, 1)) for j in range(kp)))
            m.d.comb += [
                tk.i.valid.eq(sm.o.valid & fwd),
                tk.i.payload.score.eq(tk_scores),
                tk.i.payload.mask.eq(probs.mask),
                tk.i.payload.last.eq(probs.last),
                sm.o.ready.eq(decided & (discard | tk.i.ready)),
                sm_take.eq(sm.o.valid & fwd & tk.i.ready),
                pb_w.addr.eq(p_avail),
                pb_w.data.eq(probs.data),
                pb_w.en.eq(sm_take),
                pb_r.addr.eq(pr_row),
            ]
        else:
            m.submodules.pbuf = pbuf = Memory(shape=unsigned(pw), depth=self.max_n, init=[])
            pb_w, pb_r = pbuf.write_port(), pbuf.read_port(domain="comb")
            out_lane = Signal(range(kp))  # lane of the softmax's output beat going out this cycle
            lane_prob = Signal(pw)
            beat_end = Signal()  # out_lane is the beat's last live lane
            if kp > 1:
                live = Cat(sm.o.payload.mask, Const(0, 1))
                m.d.comb += [
                    lane_prob.eq(Array(sm.o.payload.data[j] for j in range(kp))[out_lane]),
                    beat_end.eq(~live.bit_select(out_lane + 1, 1)),
                ]
            else:
                m.d.comb += [lane_prob.eq(sm.o.payload.data[0]), beat_end.eq(1)]
            prob_last = sm.o.payload.last & beat_end
            m.d.comb += [
                tk.i.valid.eq(sm.o.valid & fwd),
                tk.i.payload.score.eq(lane_prob),
                tk.i.payload.last.eq(prob_last),
                sm.o.ready.eq(decided & (discard | (tk.i.ready & beat_end))),
                sm_take.eq(sm.o.valid & fwd & tk.i.ready),
                pb_w.addr.eq(p_avail),
                pb_w.data.eq(lane_prob),
                pb_w.en.eq(sm_take),
                pb_r.addr.eq(pr_row),
            ]
            with m.If(sm_take):
                m.d.sync += out_lane.eq(Mux(beat_end, 0, out_lane + 1))

        can_bypass = tl == vp  # one buffer row of probabilities is one value beat
        if can_bypass:
            pb_v = pbuf.read_port(domain="comb")  # the bypass's value-beat probabilities
        # --- decision output register -----------------------------------------------------------------
        with m.If(self.decision.ready):
            m.d.sync += self.decision.valid.eq(0)

        # --- probability drain (final pass), in parallel with top-k and prob.V ----------------------------
        # one buffer row (topk_lanes probabilities) per beat, each once the final pass has written it
        with m.If(sm_take):
            m.d.sync += p_avail.eq(p_avail + 1)
        draining = Signal()
        m.d.comb += [
            self.prob.valid.eq(draining & (pr_row < p_avail)),
            self.prob.payload.data.eq(pb_r.data),
            self.prob.payload.mask.eq(Cat(*(pr_base + j < n for j in range(tl)))),
            self.prob.payload.last.eq(pr_base + tl >= n),
        ]
        with m.If(self.prob.valid & self.prob.ready):
            m.d.sync += [pr_base.eq(pr_base + tl), pr_row.eq(pr_row + 1)]
            with m.If(self.prob.payload.last):
                m.d.sync += draining.eq(0)

        # --- kept indices: to the `kept` port and, with their probabilities, into v_par lanes ----------
        rows_v = -(-self.max_n // vp)
        lanes_v = []
        for j in range(vp):
            mem = Memory(shape=unsigned(pw), depth=rows_v, init=[])
            m.submodules[f"kbuf_p{j}"] = mem
            lanes_v.append((mem.write_port(), mem.read_port(domain="comb")))
        kw_row = Signal(range(rows_v + 1))
        kw_lane = Signal(range(vp))
        kw_count = Signal(cnt)
        selecting = Signal()  # top-k output belongs to the final request (not the k = 0 flush)
        # Bypass: a request keeping every row (k >= n) skips the selection: its kept indices are 0 .. n-1,
        # v_par a beat from a counter, and the value unit reads the probabilities straight from the buffer
        # (one buffer row per value beat, so only when topk_lanes == v_par); the engine gets k = 0.
        bypass = Signal()
        kb_base = Signal(cnt)  # bypass: the index in lane 0 of the next kept beat
        kb_row = Signal(cnt)  # bypass: its probability-buffer row (the beat is sent once that row is written)
        kept_take = Signal()
        with m.If(bypass):
            m.d.comb += [
                self.kept.valid.eq(selecting & (kb_base < n) & (kb_row < p_avail)),
                self.kept.payload.data.eq(Cat(*((kb_base + j)[: self.index_width] for j in range(vp)))),
                self.kept.payload.mask.eq(Cat(*(kb_base + j < n for j in range(vp)))),
                self.kept.payload.last.eq(kb_base + vp >= n),
            ]
        with m.Else():
            m.d.comb += [
                self.kept.valid.eq(selecting & tk.o.valid),
                self.kept.payload.data[0].eq(tk.o.payload.index),
                self.kept.payload.mask.eq(1),
                self.kept.payload.last.eq(tk.o.payload.last),
            ]
        m.d.comb += kept_take.eq(self.kept.valid & self.kept.ready)
        for j, (wp, _) in enumerate(lanes_v):
            m.d.comb += [
                wp.addr.eq(kw_row),
                wp.data.eq(tk.o.payload.score[:pw]),
                wp.en.eq(kept_take & ~bypass & (kw_lane == j)),
            ]
        with m.If(kept_take & bypass):
            m.d.sync += [
                kb_base.eq(kb_base + vp),
                kb_row.eq(kb_row + 1),
                kw_count.eq(Mux(kb_base + vp >= n, n, kb_base + vp)),
            ]
        with m.If(kept_take & ~bypass):
            m.d.sync += kw_count.eq(kw_count + 1)
            with m.If(kw_lane == vp - 1):
                m.d.sync += [kw_lane.eq(0), kw_row.eq(kw_row + 1)]
            with m.Else():
                m.d.sync += kw_lane.eq(kw_lane + 1)

        # --- value rows: v_par per beat, probabilities from the kept lanes -------------------------------
        v_pos = Signal(cnt)  # first kept row of the next value beat
        v_row = Signal(range(rows_v + 1))
        beat_end = Signal(cnt)
        m.d.comb += beat_end.eq(Mux(v_pos + vp >= m_keep, m_keep, v_pos + vp))
        v_ok = Signal()
        m.d.comb += v_ok.eq(selecting & (kw_count >= beat_end) & (v_pos < m_keep))
        for _, rp in lanes_v:
            m.d.comb += rp.addr.eq(v_row)
        kept_probs = Cat(*(rp.data for _, rp in lanes_v))
        if can_bypass:
            m.d.comb += pb_v.addr.eq(v_row)
            kept_probs = Mux(bypass, pb_v.data, kept_probs)
        m.d.comb += [
            vu.i.valid.eq(self.value.valid & v_ok),
            self.value.ready.eq(vu.i.ready & v_ok),
            vu.i.payload.value.eq(self.value.payload.value),
            vu.i.payload.prob.eq(kept_probs),
            vu.i.payload.mask.eq(Cat(*((v_pos + j) < m_keep for j in range(vp)))),
            vu.i.payload.last.eq(v_pos + vp >= m_keep),
        ]
        with m.If(vu.i.valid & vu.i.ready):
            m.d.sync += [v_pos.eq(v_pos + vp), v_row.eq(v_row + 1)]

        # --- output vector -------------------------------------------------------------------------------
        out_done = Signal()
        wiring.connect(m, vu.o, wiring.flipped(self.out))
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += out_done.eq(1)

        # --- control ----------------------------------------------------------------------------------------
        k_sent = Signal()
        tk_done = Signal()  # the engine's last output beat of the final request has been taken
        keys_done = Signal()  # the pass's last key beat has been taken

        def start_pass():
            return [wr_count.eq(0), key_row.eq(0), keys_done.eq(0)]

        def to_select():
            # n is known: the softmax has taken its last score before the decision pulse
            keep_all = Mux(k_req == 0, 1, k_req) >= n
            return [
                draining.eq(1),
                k_sent.eq(0),
                m_keep.eq(Mux(k_req == 0, 1, Mux(k_req > n, n, k_req))),
                bypass.eq(keep_all if can_bypass else 0),
            ]

        # the control FSM: its state register is the `phase` port
        state = Signal(Phase)
        m.d.comb += self.phase.eq(state)
        with m.Switch(state):
            with m.Case(Phase.IDLE):
                m.d.comb += self.req.ready.eq(1)
                with m.If(self.req.valid):
                    m.d.sync += [
                        query.eq(self.req.payload.query),
                        k_req.eq(self.req.payload.k),
                        seed.eq(self.req.payload.seed),
                        thr.eq(self.req.payload.threshold),
                        refetching.eq(0),
                        k_sent.eq(0),
                        tk_done.eq(0),
                        decided.eq(0),
                        p_avail.eq(0),
                        kb_row.eq(0),
                        discard.eq(0),
                        kb_base.eq(0),
                        bypass.eq(0),
                        out_done.eq(0),
                        kw_row.eq(0),
                        kw_lane.eq(0),
                        kw_count.eq(0),
                        v_pos.eq(0),
                        v_row.eq(0),
                        pr_base.eq(0),
                        pr_row.eq(0),
                    ]
                    m.d.sync += start_pass()
                    m.d.sync += state.eq(Phase.MSB)
            with m.Case(Phase.MSB):
                m.d.comb += [
                    qk.k.valid.eq(self.key.valid & ~keys_done),
                    self.key.ready.eq(qk.k.ready & ~keys_done),
                    qk.k.payload.last.eq(self.key.payload.last),
                    qk.k.payload.mask.eq(self.key.payload.mask),
                ]
                if lb:
                    m.d.comb += kb_w.en.eq(self.key.valid & self.key.ready)
                with m.If(self.key.valid & self.key.ready):
                    m.d.sync += [key_row.eq(key_row + 1), keys_done.eq(self.key.payload.last)]
                with m.If(rq.o.valid & ~decided):
                    refetch = rq.o.payload.refetch if lb else Const(0, 1)
                    m.d.sync += [
                        decided.eq(1),
                        self.decision.valid.eq(1),
                        self.decision.payload.refetch.eq(refetch),
                        self.decision.payload.max_prob.eq(rq.o.payload.max_prob),
                    ]
                    with m.If(refetch):
                        m.d.sync += [discard.eq(1), refetching.eq(1), state.eq(Phase.LSB)]
                        m.d.sync += start_pass()
                    with m.Else():  # the row is final: select now, its probabilities stream in behind
                        m.d.sync += to_select()
                        m.d.sync += state.eq(Phase.SELECT)
            with m.Case(Phase.LSB):
                m.d.comb += [
                    qk.k.valid.eq(self.lsb.valid & ~keys_done),
                    self.lsb.ready.eq(qk.k.ready & ~keys_done),
                    qk.k.payload.last.eq(self.lsb.payload.last),
                    qk.k.payload.mask.eq(self.lsb.payload.mask),
                ]
                with m.If(self.lsb.valid & self.lsb.ready):
                    m.d.sync += [key_row.eq(key_row + 1), keys_done.eq(self.lsb.payload.last)]
                with m.If(sm.o.valid & sm.o.ready & discard & sm.o.payload.last):
                    m.d.sync += discard.eq(0)  # the MSB row has left OUT; the next row is the final one
                with m.If(rq.o.valid):  # the LSB row's DIV: its OUT pass is the final one
                    m.d.sync += to_select()
                    m.d.sync += state.eq(Phase.SELECT)
            with m.Case(Phase.SELECT):
                m.d.comb += [
                    tk.k.valid.eq(~k_sent),
                    tk.k.payload.k.eq(Mux(bypass, 0, Mux(k_req == 0, 1, k_req))),
                    tk.k.payload.seed.eq(seed),
                    tk.o.ready.eq(Mux(bypass, 1, self.kept.ready)),  # the bypass's flush beat goes nowhere
                    selecting.eq(1),
                ]
                with m.If(tk.k.valid & tk.k.ready):
                    m.d.sync += k_sent.eq(1)
                with m.If(tk.o.valid & tk.o.ready & tk.o.payload.last):
                    m.d.sync += tk_done.eq(1)
                with m.If(out_done & ~draining & ~self.decision.valid & k_sent & tk_done):
                    m.d.sync += state.eq(Phase.IDLE)
        return m
