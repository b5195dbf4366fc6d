"""AttentionCore: one SpAtten (head, query) request end to end, from key MSB rows to the output vector.

Composes ``QKUnit -> Softmax -> RequantDecision (-> LSB refetch, Q.K and softmax again) -> TopKEngine ->
ValueUnit``. Twin: :func:`models.attention_core.attention_core_ref` (stages) and
:func:`models.attention.attention_request_fixed` (result); cycles: :func:`models.attention_core.core_cycles`.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from spatten.models.attention import softmax_spec
from spatten.models.attention_core import engine_rows, kept_lanes, topk_lanes
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
    """The Q.K unit's pass (the ``phase`` port): none, a request's MSB pass or its LSB (refetch) pass."""

    IDLE = 0  # no pass in progress
    MSB = 1  # a request's MSB keys through Q.K into the softmax
    LSB = 3  # a refetching request's LSB keys, reassembled with its buffered MSBs


#: requests in flight at once (each holds a slot from its ``req`` beat until its output is taken)
SLOTS = 4
SEQ_BITS = 3  # request sequence numbers modulo 2 * SLOTS
#: rows tagged between the start of their Q.K pass and the end of their OUT pass (the softmax holds three)
TAGS = 4
TAG_BITS = 2


def _regs(name: str, shape, count: int = SLOTS, init: int = 0) -> Array:
    """``count`` registers ``name0``, ``name1``, ... of one shape, indexable by a signal."""
    return Array(Signal(shape, name=f"{name}{i}", init=init) for i in range(count))


def _slot(seq):
    """A request's slot: its sequence number modulo SLOTS."""
    return seq[: SEQ_BITS - 1]


def _tag(ptr):
    """A tag pointer's entry (each pointer carries one wrap bit)."""
    return ptr[:TAG_BITS]


class AttentionCore(wiring.Component):
    """Attention requests end to end: Q.K on MSB keys, softmax, PQ refetch, local value top-k, prob.V.

    Up to :data:`SLOTS` requests are in flight at once, each in a slot from its ``req`` beat (query, k,
    top-k seed, refetch threshold) until its output is taken; every port carries its beats in request
    order. The Q.K unit runs one pass at a time: a refetching request's LSB pass when its decision has
    come, else the next request's MSB pass. Key MSB rows stream in ``k_par`` per beat through Q.K at one
    beat per cycle straight into the :class:`~rtl.softmax.Softmax` (``lanes = k_par``), whose LOAD, EXP
    and OUT stages hold three rows at once, while the MSBs are kept in one of two key banks. Each row
    carries a tag (request, pass) from its pass to the end of its OUT pass. At the softmax's DIV its row
    maximum's probability (``peak``) goes to the :class:`~rtl.requant.RequantDecision`: for an MSB row
    that is the refetch decision (a ``decision`` beat, kept in the request's slot until taken), before
    the row's OUT pass. A row to be refetched leaves OUT unused and the request waits for its LSB pass
    (LSB rows ``k_par`` per beat, reassembled with the banked MSBs); an LSB row, or an MSB row that needs
    no refetch, is final: its OUT beats fill the request's probability bank (two banks, by request
    parity; a bank takes a new request once the back end has released it). The back end takes one
    request at a time, in order, from its final row's decision: the probabilities drain from the bank
    on ``prob``, one bank row (``topk_lanes``) a beat, each once OUT has written it; the
    :class:`~rtl.topk.TopKEngine` gets k and reads the same rows, ``engine_rows`` a cycle; its kept
    indices leave on ``kept`` (the value-row requests); value rows come back on ``value`` in ``kept``
    order, ``v_par`` per beat, into the :class:`~rtl.value_unit.ValueUnit`; its sums leave on ``out``.
    A request keeping every row (k >= n) bypasses the engine when ``topk_lanes == v_par``: its kept
    indices 0 .. n-1 leave ``v_par`` a beat and the value unit reads the probabilities from the bank.
    A request ends once ``out``, every ``prob`` beat, its ``decision`` beat and the engine's last beat
    have been taken. Cycle stamps: :func:`models.attention_core.core_cycles` for a request alone,
    :func:`models.attention_core.stream_cycles` for an overlapped stream.

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
        Probabilities a probability-bank row holds (one OUT beat, one ``prob`` beat): ``k_par`` if
        ``k_par <= topk_p``, else 1 (``models.attention_core.topk_lanes``).
    engine_rows : int
        Bank rows into the top-k engine a cycle: 2 when ``2 * topk_lanes <= topk_p``, else 1 (the
        engine's ``in_lanes`` is ``engine_rows * topk_lanes``; ``models.attention_core.engine_rows``).

    Ports
    -----
    req : In stream, payload ``req_layout`` (``D*q_bits + bit_length(max_n) + 16 + P + 1`` bits)
        ``query`` packed signed codes (element i at bits [i*q_bits, ...)); ``k`` value rows to keep,
        1..max_n (0 is taken as 1, k > n as n); ``seed`` the top-k pivot seed; ``threshold`` the refetch
        threshold code (``models.quant.threshold_code``; 0 never refetches, 2**P always does).
        Accepted while the request's slot (sequence number mod :data:`SLOTS`) is free; starts a request.
    key : In stream, payload ``msb`` (``k_par*D*k_msb_bits``: key j element i at index j*D+i), ``mask``
        (``k_par``, a prefix of lanes: only the last beat may be partial), ``last`` (1, ends the keys).
        At most ``max_n`` keys. The requests' rows one request after another; ready every cycle of the
        request's MSB pass once the softmax has taken its first score (no bubbles).
    decision : Out stream, payload ``refetch`` (1) and ``max_prob`` (P): one beat per request, in request
        order, after its MSB pass; with ``refetch`` = 1 its LSB rows must follow on ``lsb``.
    lsb : In stream, payload ``lsb`` (``k_par*D*lsb_bits``, at least 1 bit; unsigned, same packing as
        ``msb``), ``mask``, ``last``: the LSB rows in key order, only after a refetch decision, the
        refetching requests in decision order.
    prob : Out stream of ``lane_beat(unsigned(P), topk_lanes)`` (``topk_lanes * (P + 1) + 1`` bits)
        The n final probabilities in token order (for the importance accumulators): ``data[j]`` lane j's
        unsigned code, ``mask`` the live lanes (only the last beat partial), ``last``.
    kept : Out stream of ``lane_beat(unsigned(index_width), v_par)`` (``v_par * (index_width + 1) + 1``
        bits, ``index_width = max(1, bit_length(max_n - 1))``)
        The kept value rows, ascending, ``data[j]`` lane j's index, ``mask`` the live lanes (a run from
        lane 0): up to ``kept_lanes`` a beat from the top-k engine (a buffer row's selection,
        ``models.attention_core.kept_lanes``), ``v_par`` a beat on the bypass; the value-row request.
    value : In stream, payload ``value`` (``v_par*D*v_bits``, row j element i at index j*D+i): the kept
        rows in ``kept`` order, ``v_par`` per beat, the last beat holding the remainder (other lanes are
        ignored).
    out : Out stream, payload ``data`` (``D*acc_width``, element i at bits [i*acc_width, ...), signed,
        ``acc_width = P + 1 + v_bits + max(1, ceil(log2 max_n))``): ``sum over kept j of p_j * v[j]``.
    score_valid, score_pass, score_mask, score_data : Out(1), Out(1), Out(k_par), Out(k_par*in_bits)
        Observation only (no handshake): a beat of softmax input scores taken from Q.K, with the pass
        (0 MSB estimate, 1 reassembled keys), its lanes and the packed signed scores. MSB passes come in
        request order, LSB passes in decision order.
    phase : Out(Phase), 3 bits
        The Q.K unit's pass (for latency measurement): :class:`Phase` IDLE 0 (none), MSB 1, LSB 3.
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
        self.engine_rows = engine_rows(k_par, self.topk_p)
        self.kept_lanes = kept_lanes(v_par, self.topk_p)  # the engine's indices a beat (its out_lanes)
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
        hd, kp, vp, pw = self.head_dim, self.k_par, self.v_par, self.spec.out_bits
        m.submodules.qk = qk = QKUnit(hd, kp, self.q_bits, self.k_bits)
        m.submodules.softmax = sm = Softmax(self.spec, self.max_n, lanes=kp)
        # the refetch decision on the softmax's row maximum, known at its DIV, before the row's OUT pass
        m.submodules.requant = rq = RequantDecision(pw, 1)
        wiring.connect(m, sm.peak, rq.i)
        m.submodules.topk = tk = TopKEngine(pw + 1, self.max_n, self.topk_p,
                                            in_lanes=self.engine_rows * self.topk_lanes,
                                            out_lanes=self.kept_lanes)  # fmt: skip
        m.submodules.value_unit = vu = ValueUnit(hd, vp, pw, self.v_bits, self.max_n)
        # the sections share their registers through one namespace; each adds what later ones read
        w = SimpleNamespace(qk=qk, sm=sm, rq=rq, tk=tk, vu=vu)
        for section in (self._slots, self._passes, self._scores, self._decisions, self._out_pass,
                        self._back_end, self._values):  # fmt: skip
            section(m, w)
        m.d.comb += self.phase.eq(Mux(w.pass_on, Mux(w.pass_lsb, Phase.LSB, Phase.MSB), Phase.IDLE))
        return m

    def _slots(self, m: Module, w: SimpleNamespace) -> None:
        """Request slots and admission: a ``req`` beat fills the next slot once it is free."""
        hd, pw, cnt = self.head_dim, self.spec.out_bits, unsigned(self.max_n.bit_length())
        # --- request slots: a request holds slot seq % SLOTS from its req beat until its output -----------
        # Sequence numbers count modulo 2 * SLOTS so that "the next MSB pass" and "the next admission" are
        # never ambiguous with every slot in flight.
        query = _regs("query", hd * self.q_bits)
        k_req, seed, thr, n_keys = (
            _regs("k_req", cnt),
            _regs("seed", 16),
            _regs("thr", pw + 1),
            _regs("n", cnt),
        )
        busy = _regs("busy", 1)  # admitted, its output not yet taken
        final = _regs("final", 1)  # its final row is known (decided): the back end may start it
        dec_made = _regs("dec_made", 1)  # its decision beat waits on the `decision` port
        dec_refetch, dec_max = _regs("dec_refetch", 1), _regs("dec_max", pw)
        names = ("adm_seq", "msb_seq", "dec_seq", "back_seq")
        adm_seq, msb_seq, dec_seq, back_seq = (Signal(unsigned(SEQ_BITS), name=x) for x in names)

        admit = Signal()
        m.d.comb += [self.req.ready.eq(~busy[_slot(adm_seq)]), admit.eq(self.req.valid & self.req.ready)]
        with m.If(admit):
            s = _slot(adm_seq)
            m.d.sync += [
                query[s].eq(self.req.payload.query),
                k_req[s].eq(self.req.payload.k),
                seed[s].eq(self.req.payload.seed),
                thr[s].eq(self.req.payload.threshold),
                busy[s].eq(1),
                adm_seq.eq(adm_seq + 1),
            ]

        w.__dict__.update(query=query, k_req=k_req, seed=seed, thr=thr, n_keys=n_keys,
                          busy=busy, final=final, dec_made=dec_made, dec_refetch=dec_refetch,
                          dec_max=dec_max, adm_seq=adm_seq, msb_seq=msb_seq, dec_seq=dec_seq,
                          back_seq=back_seq, admit=admit)  # fmt: skip

    def _passes(self, m: Module, w: SimpleNamespace) -> None:
        """Row tags, the Q.K pass arbiter, the key banks and the Q.K input mux."""
        hd, kp, mb, lb, cnt = (
            self.head_dim,
            self.k_par,
            self.k_msb_bits,
            self.lsb_bits,
            unsigned(self.max_n.bit_length()),
        )
        # --- softmax row tags: (request, pass) of every row from its Q.K pass to the end of its OUT pass --
        # rows move through Q.K and the softmax in order, so one queue with a pointer per stage: `t_w` the
        # next pass, `t_l` the row at LOAD, `t_d` the next row maximum (DIV), `t_o` the row at OUT
        tag_seq, tag_lsb = _regs("tag_seq", unsigned(SEQ_BITS), TAGS), _regs("tag_lsb", 1, TAGS)
        tag_dec, tag_final = _regs("tag_dec", 1, TAGS), _regs("tag_final", 1, TAGS)
        t_w, t_l, t_d, t_o = (Signal(TAG_BITS + 1, name=x) for x in ("t_w", "t_l", "t_d", "t_o"))
        occupancy = Signal(TAG_BITS + 1)
        m.d.comb += occupancy.eq(t_w - t_o)
        tag_room = occupancy < TAGS

        # --- Q.K passes: an LSB pass whose decision asked for it first, else the next request's MSB pass --
        pass_on, pass_lsb = Signal(), Signal()
        pass_seq = Signal(unsigned(SEQ_BITS))
        lsb_q = _regs("lsb_q", unsigned(SEQ_BITS))  # requests waiting for their LSB pass, in decision order
        lq_w, lq_r = Signal(SEQ_BITS), Signal(SEQ_BITS)
        lsb_waiting = Signal()
        m.d.comb += lsb_waiting.eq(lq_w != lq_r)
        # key bank b holds the MSB rows of the request in flight with seq % 2 == b until its LSB pass has
        # read them (or its decision says it needs none)
        kb_hold = _regs("kb_hold", 1, 2)
        msb_pending = Signal()
        m.d.comb += msb_pending.eq((w.msb_seq != w.adm_seq) | w.admit)
        start_lsb, start_msb = Signal(), Signal()
        m.d.comb += [
            start_lsb.eq(~pass_on & tag_room & lsb_waiting),
            start_msb.eq(
                ~pass_on & tag_room & ~lsb_waiting & msb_pending & (~kb_hold[w.msb_seq[0]] if lb else 1)
            ),
        ]
        key_row = Signal(range(-(-self.max_n // kp) + 1))
        n_count = Signal(cnt)

        def begin_pass(seq, lsb: bool):
            # an LSB row is final from the start: its OUT pass need not wait for its row maximum
            t = _tag(t_w)
            return [
                pass_on.eq(1), pass_lsb.eq(lsb), pass_seq.eq(seq), key_row.eq(0), n_count.eq(0),
                tag_seq[t].eq(seq), tag_lsb[t].eq(lsb), tag_dec[t].eq(lsb), tag_final[t].eq(lsb),
                t_w.eq(t_w + 1),
            ]  # fmt: skip

        with m.If(start_lsb):
            m.d.sync += begin_pass(lsb_q[lq_r[: SEQ_BITS - 1]], True)
            m.d.sync += lq_r.eq(lq_r + 1)
        with m.Elif(start_msb):
            m.d.sync += begin_pass(w.msb_seq, False)
            m.d.sync += w.msb_seq.eq(w.msb_seq + 1)
            if lb:
                m.d.sync += kb_hold[w.msb_seq[0]].eq(1)

        # the pass's key source: MSB rows from `key` (kept in the key bank), or LSB rows from `lsb`
        m.d.comb += w.qk.query.eq(w.query[_slot(pass_seq)])
        m.d.comb += [
            w.qk.k.valid.eq(pass_on & Mux(pass_lsb, self.lsb.valid, self.key.valid)),
            self.key.ready.eq(pass_on & ~pass_lsb & w.qk.k.ready),
            self.lsb.ready.eq(pass_on & pass_lsb & w.qk.k.ready),
            w.qk.k.payload.last.eq(Mux(pass_lsb, self.lsb.payload.last, self.key.payload.last)),
            w.qk.k.payload.mask.eq(Mux(pass_lsb, self.lsb.payload.mask, self.key.payload.mask)),
        ]
        key_take = Signal()
        m.d.comb += key_take.eq(w.qk.k.valid & w.qk.k.ready)
        k_mask = w.qk.k.payload.mask
        k_pop = sum(k_mask[j] for j in range(kp)) if kp > 1 else k_mask[0]
        with m.If(key_take):
            m.d.sync += [key_row.eq(key_row + 1), n_count.eq(n_count + k_pop)]
            with m.If(w.qk.k.payload.last):
                m.d.sync += [pass_on.eq(0), w.n_keys[_slot(pass_seq)].eq(n_count + k_pop)]
                if lb:
                    with m.If(pass_lsb):
                        m.d.sync += kb_hold[pass_seq[0]].eq(0)

        # --- key banks: the MSB rows of two requests, re-read for their LSB passes ---------------------
        rows_k = -(-self.max_n // kp)
        kr_bits = max(1, (rows_k - 1).bit_length())
        if lb:
            m.submodules.kbuf = kbuf = Memory(shape=unsigned(kp * hd * mb), depth=2 << kr_bits, init=[])
            kb_w, kb_r = kbuf.write_port(), kbuf.read_port(domain="comb")
            kb_addr = Cat(key_row[:kr_bits], pass_seq[0])
            m.d.comb += [
                kb_w.addr.eq(kb_addr),
                kb_w.data.eq(self.key.payload.msb),
                kb_w.en.eq(key_take & ~pass_lsb),
                kb_r.addr.eq(kb_addr),
            ]

        # --- Q.K input mux: MSB estimate (LSBs = middle of their range) or reassembled key -------------
        k_elems = []
        for e in range(kp * hd):
            msb_in = self.key.payload.msb[e * mb : (e + 1) * mb]
            if lb:
                msb_e = Mux(pass_lsb, kb_r.data[e * mb : (e + 1) * mb], msb_in)
                low = Mux(pass_lsb, self.lsb.payload.lsb[e * lb : (e + 1) * lb], Const(1 << (lb - 1), lb))
                k_elems.append(Cat(low, msb_e))
            else:
                k_elems.append(msb_in)
        m.d.comb += w.qk.k.payload.data.eq(Cat(*k_elems))

        w.__dict__.update(tag_seq=tag_seq, tag_lsb=tag_lsb, tag_dec=tag_dec,
                          tag_final=tag_final, t_w=t_w, t_l=t_l, t_d=t_d, t_o=t_o,
                          pass_on=pass_on, pass_lsb=pass_lsb, lsb_q=lsb_q, lq_w=lq_w,
                          kb_hold=kb_hold)  # fmt: skip

    def _scores(self, m: Module, w: SimpleNamespace) -> None:
        """Q.K scores shifted and saturated into the softmax, and the observation ports."""
        kp, sw_in = self.k_par, self.spec.in_bits
        # --- Q.K scores straight into the softmax, k_par lanes per beat ---------------------------------
        # The softmax's LOAD takes one k_par-wide beat per cycle, the rate Q.K produces them; Q.K waits only
        # while both of the softmax's score banks hold rows its EXP has not finished.
        m.d.comb += w.qk.s.ready.eq(w.sm.i.ready)
        hi, lo = (1 << (sw_in - 1)) - 1, -(1 << (sw_in - 1))
        sh = self.score_shift
        scaled = []
        for j in range(kp):
            raw = w.qk.s.payload.data[j]
            x = Signal(signed(w.qk.score_width + 1), name=f"shifted{j}")
            m.d.comb += x.eq((raw + (1 << (sh - 1))) >> sh if sh else raw)
            s = Signal(signed(sw_in), name=f"score{j}")
            m.d.comb += s.eq(Mux(x > hi, hi, Mux(x < lo, lo, x)))
            scaled.append(s)
        m.d.comb += [
            self.score_valid.eq(w.qk.s.valid & w.sm.i.ready),
            self.score_pass.eq(w.tag_lsb[_tag(w.t_l)]),
            self.score_mask.eq(w.qk.s.payload.mask),
            self.score_data.eq(Cat(*scaled)),
            w.sm.i.valid.eq(w.qk.s.valid),
            w.sm.i.payload.data.eq(Cat(*scaled)),
            w.sm.i.payload.mask.eq(w.qk.s.payload.mask),
            w.sm.i.payload.last.eq(w.qk.s.payload.last),
        ]
        with m.If(w.sm.i.valid & w.sm.i.ready & w.sm.i.payload.last):
            m.d.sync += w.t_l.eq(w.t_l + 1)

    def _decisions(self, m: Module, w: SimpleNamespace) -> None:
        """Row maxima at DIV: an MSB row's refetch decision (the ``decision`` port), final rows."""
        lb = self.lsb_bits
        # --- row maximum at DIV: the refetch decision of an MSB row; an LSB row is final ------------------
        d_seq = w.tag_seq[_tag(w.t_d)]
        d_lsb = w.tag_lsb[_tag(w.t_d)]
        refetch = w.rq.o.payload.refetch if lb else Const(0, 1)
        fin_event = Signal()  # this cycle decides that row t_d is its request's final row
        m.d.comb += [
            w.rq.threshold.eq(w.thr[_slot(d_seq)]),
            w.rq.o.ready.eq(1),  # acted on at once; the decision beat waits in its slot for the port
            fin_event.eq(w.rq.o.valid & (d_lsb | ~refetch)),
        ]
        with m.If(self.decision.valid & self.decision.ready):
            m.d.sync += [w.dec_made[_slot(w.dec_seq)].eq(0), w.dec_seq.eq(w.dec_seq + 1)]
        with m.If(w.rq.o.valid):
            m.d.sync += [w.t_d.eq(w.t_d + 1), w.tag_dec[_tag(w.t_d)].eq(1)]
            with m.If(fin_event):
                m.d.sync += [w.tag_final[_tag(w.t_d)].eq(1), w.final[_slot(d_seq)].eq(1)]
            with m.If(~d_lsb):
                m.d.sync += [
                    w.dec_made[_slot(d_seq)].eq(1),
                    w.dec_refetch[_slot(d_seq)].eq(refetch),
                    w.dec_max[_slot(d_seq)].eq(w.rq.o.payload.max_prob),
                ]
                with m.If(refetch):
                    m.d.sync += [w.lsb_q[w.lq_w[: SEQ_BITS - 1]].eq(d_seq), w.lq_w.eq(w.lq_w + 1)]
                if lb:
                    with m.Else():
                        m.d.sync += w.kb_hold[d_seq[0]].eq(0)
        m.d.comb += [
            self.decision.valid.eq(w.dec_made[_slot(w.dec_seq)]),
            self.decision.payload.refetch.eq(w.dec_refetch[_slot(w.dec_seq)]),
            self.decision.payload.max_prob.eq(w.dec_max[_slot(w.dec_seq)]),
        ]

        w.__dict__.update(d_seq=d_seq, fin_event=fin_event)  # fmt: skip

    def _out_pass(self, m: Module, w: SimpleNamespace) -> None:
        """OUT: each final row into its request's probability bank."""
        kp, pw, cnt, tl = self.k_par, self.spec.out_bits, unsigned(self.max_n.bit_length()), self.topk_lanes
        # --- OUT: a final row's probabilities into its request's probability bank (seq % 2); a row to be
        # refetched leaves OUT unused. A bank takes a new request's row once the back end has released it.
        rows_p = -(-self.max_n // tl)  # buffer rows of topk_lanes probabilities
        pr_bits = max(1, (rows_p - 1).bit_length())
        m.submodules.pbuf = pbuf = Memory(shape=unsigned(tl * pw), depth=2 << pr_bits, init=[])
        pb_w = pbuf.write_port()
        bank_free = _regs("bank_free", 1, 2, init=1)
        avail = _regs("avail", cnt, 2)  # rows written into bank b for the request it holds
        o_seq = w.tag_seq[_tag(w.t_o)]
        o_dec, o_final = w.tag_dec[_tag(w.t_o)], w.tag_final[_tag(w.t_o)]
        o_started = Signal()  # the row at OUT has written its first buffer row
        out_row = Signal(cnt)
        fwd = Signal()
        m.d.comb += fwd.eq(o_dec & o_final & (o_started | bank_free[o_seq[0]]))
        sm_take = Signal()  # one buffer row written this cycle
        probs = w.sm.o.payload
        m.d.comb += [pb_w.addr.eq(Cat(out_row[:pr_bits], o_seq[0])), pb_w.en.eq(sm_take)]
        if tl > 1:
            m.d.comb += [
                w.sm.o.ready.eq(o_dec & (~o_final | fwd)),
                sm_take.eq(w.sm.o.valid & fwd),
                pb_w.data.eq(probs.data),
            ]
        else:
            # the engine takes one probability a cycle: the beat's lanes are written one a cycle
            out_lane = Signal(range(kp))
            beat_end = Signal()  # out_lane is the beat's last live lane
            if kp > 1:
                live = Cat(probs.mask, Const(0, 1))
                m.d.comb += [
                    pb_w.data.eq(Array(probs.data[j] for j in range(kp))[out_lane]),
                    beat_end.eq(~live.bit_select(out_lane + 1, 1)),
                ]
            else:
                m.d.comb += [pb_w.data.eq(probs.data[0]), beat_end.eq(1)]
            m.d.comb += [
                w.sm.o.ready.eq(o_dec & (~o_final | (fwd & beat_end))),
                sm_take.eq(w.sm.o.valid & fwd),
            ]
            with m.If(sm_take):
                m.d.sync += out_lane.eq(Mux(beat_end, 0, out_lane + 1))
        with m.If(sm_take):
            m.d.sync += [
                out_row.eq(out_row + 1),
                o_started.eq(1),
                bank_free[o_seq[0]].eq(0),
                avail[o_seq[0]].eq(out_row + 1),
            ]
        with m.If(w.sm.o.valid & w.sm.o.ready & probs.last):
            m.d.sync += [w.t_o.eq(w.t_o + 1), out_row.eq(0), o_started.eq(0)]

        w.__dict__.update(pbuf=pbuf, pr_bits=pr_bits, bank_free=bank_free, avail=avail)  # fmt: skip

    def _back_end(self, m: Module, w: SimpleNamespace) -> None:
        """The back end's start, the probability drain, the top-k engine's input and the kept indices."""
        vp, pw, cnt, tl = self.v_par, self.spec.out_bits, unsigned(self.max_n.bit_length()), self.topk_lanes
        # --- back end: one request at a time, in order, from its final decision: the probability drain,
        # the top-k engine fed from the bank (or the bypass), the kept indices, prob.V and the output
        back_on = Signal()
        bslot, bb = _slot(w.back_seq), w.back_seq[0]
        b_avail = w.avail[bb]
        n = Signal(cnt)  # keys of the request in the back end
        m_keep = Signal(cnt)  # value rows kept: min(max(k, 1), n)
        bypass = Signal()
        draining, k_sent, tk_done, out_done = Signal(), Signal(), Signal(), Signal()
        can_bypass = tl == vp  # one buffer row of probabilities is one value beat
        start_back = Signal()
        m.d.comb += start_back.eq(
            ~back_on & w.busy[bslot] & (w.final[bslot] | (w.fin_event & (w.d_seq == w.back_seq)))
        )

        pr_base, pr_row = Signal(cnt), Signal(cnt)  # drain: element in lane 0 of the next prob beat, its row
        e_base, e_row = Signal(cnt), Signal(cnt)  # engine feed: the same for the next score beat
        kb_base, kb_row = Signal(cnt), Signal(cnt)  # bypass: index in lane 0 of the next kept beat, its row
        rows_v = -(-self.max_n // vp)
        kw_row = Signal(range(rows_v + 1))
        kw_lane = Signal(range(vp))
        kw_count = Signal(cnt)
        v_pos = Signal(cnt)  # first kept row of the next value beat
        v_row = Signal(range(rows_v + 1))
        with m.If(start_back):
            k_in = w.k_req[bslot]
            n_in = w.n_keys[bslot]
            keep_all = Mux(k_in == 0, 1, k_in) >= n_in
            byp = keep_all if can_bypass else Const(0, 1)
            m.d.sync += [
                back_on.eq(1),
                n.eq(n_in),
                m_keep.eq(Mux(k_in == 0, 1, Mux(k_in > n_in, n_in, k_in))),
                bypass.eq(byp),
                draining.eq(1),
                k_sent.eq(byp),
                tk_done.eq(byp),
                out_done.eq(0),
            ]
            m.d.sync += [x.eq(0) for x in (pr_base, pr_row, e_base, e_row, kb_base, kb_row, kw_row, kw_lane,
                                           kw_count, v_pos, v_row)]  # fmt: skip

        # probability drain: one buffer row a beat, each once OUT has written it
        pb_d = w.pbuf.read_port(domain="comb")
        m.d.comb += [
            pb_d.addr.eq(Cat(pr_row[: w.pr_bits], bb)),
            self.prob.valid.eq(back_on & draining & (pr_row < b_avail)),
            self.prob.payload.data.eq(pb_d.data),
            self.prob.payload.mask.eq(Cat(*(pr_base + j < n for j in range(tl)))),
            self.prob.payload.last.eq(pr_base + tl >= n),
        ]
        with m.If(self.prob.valid & self.prob.ready):
            m.d.sync += [pr_base.eq(pr_base + tl), pr_row.eq(pr_row + 1)]
            with m.If(self.prob.payload.last):
                m.d.sync += draining.eq(0)

        # the top-k engine: k at the start, the scores from the bank as OUT writes them, `g` rows a cycle
        # (two when they fit the engine's P lanes: a second read port at the next row)
        g = self.engine_rows
        lanes_in = g * tl
        reads = [w.pbuf.read_port(domain="comb") for _ in range(g)]
        for i, rp in enumerate(reads):
            m.d.comb += rp.addr.eq(Cat((e_row + i)[: w.pr_bits], bb))
        # the beat's last row is written (or the row after the first is past the request's end)
        rows_ready = (
            (e_row < b_avail) & ((e_base + tl >= n) | (e_row + 1 < b_avail)) if g == 2 else e_row < b_avail
        )
        m.d.comb += [
            w.tk.k.valid.eq(back_on & ~k_sent),
            w.tk.k.payload.k.eq(Mux(m_keep == 0, 1, m_keep)),
            w.tk.k.payload.seed.eq(w.seed[bslot]),
            w.tk.i.valid.eq(back_on & ~bypass & (e_base < n) & rows_ready),
            w.tk.i.payload.last.eq(e_base + lanes_in >= n),
        ]
        if lanes_in > 1:
            lane_probs = [rp.data[j * pw : (j + 1) * pw] for rp in reads for j in range(tl)]
            m.d.comb += [
                w.tk.i.payload.score.eq(Cat(*(Cat(x, Const(0, 1)) for x in lane_probs))),
                w.tk.i.payload.mask.eq(Cat(*(e_base + j < n for j in range(lanes_in)))),
            ]
        else:
            m.d.comb += w.tk.i.payload.score.eq(reads[0].data)
        with m.If(w.tk.k.valid & w.tk.k.ready):
            m.d.sync += k_sent.eq(1)
        with m.If(w.tk.i.valid & w.tk.i.ready):
            m.d.sync += [e_base.eq(e_base + lanes_in), e_row.eq(e_row + g)]

        # kept indices: to the `kept` port and, with their probabilities, into v_par lanes
        lanes_v = []
        for j in range(vp):
            mem = Memory(shape=unsigned(pw), depth=rows_v, init=[])
            m.submodules[f"kbuf_p{j}"] = mem
            lanes_v.append((mem.write_port(), mem.read_port(domain="comb")))
        # the engine's beat: up to ol indices (lanes 0 .. c - 1), with their probabilities
        ol, tko = self.kept_lanes, w.tk.o.payload
        tk_index = [tko.index] if ol == 1 else [tko.index[j] for j in range(ol)]
        tk_prob = [tko.score[:pw]] if ol == 1 else [tko.score[j][:pw] for j in range(ol)]
        tk_mask = Const(1, 1) if ol == 1 else tko.mask
        tk_count = Signal(range(ol + 1))
        m.d.comb += tk_count.eq(sum(tk_mask[j] for j in range(ol)))
        kept_take = Signal()
        with m.If(bypass):
            # every row kept: the indices 0 .. n-1, v_par a beat, each beat once its buffer row is written
            m.d.comb += [
                self.kept.valid.eq(back_on & (kb_base < n) & (kb_row < b_avail)),
                self.kept.payload.data.eq(Cat(*((kb_base + j)[: self.index_width] for j in range(vp)))),
                self.kept.payload.mask.eq(Cat(*(kb_base + j < n for j in range(vp)))),
                self.kept.payload.last.eq(kb_base + vp >= n),
            ]
        with m.Else():
            m.d.comb += [
                self.kept.valid.eq(back_on & w.tk.o.valid),
                self.kept.payload.mask.eq(tk_mask),
                self.kept.payload.last.eq(tko.last),
                w.tk.o.ready.eq(back_on & self.kept.ready),
            ]
            m.d.comb += [self.kept.payload.data[j].eq(tk_index[j]) for j in range(ol)]
        m.d.comb += kept_take.eq(self.kept.valid & self.kept.ready)
        with m.If(w.tk.o.valid & w.tk.o.ready & tko.last):
            m.d.sync += tk_done.eq(1)
        # kept position kw_count + j goes to lane memory (kw_lane + j) mod v_par, in row kw_row or the next
        # when it wrapped; so lane memory l takes the beat's lane (l - kw_lane) mod v_par
        probs_arr = Array(tk_prob + [tk_prob[0]] * (vp - ol))
        for lane, (wp, _) in enumerate(lanes_v):
            j = Signal(range(vp), name=f"kept_j{lane}")
            wrapped = Const(lane, range(vp)) < kw_lane
            m.d.comb += [
                j.eq(Mux(wrapped, lane + vp - kw_lane, lane - kw_lane)),
                wp.addr.eq(kw_row + wrapped),
                wp.data.eq(probs_arr[j]),
                wp.en.eq(kept_take & ~bypass & (j < tk_count)),
            ]
        with m.If(kept_take & bypass):
            m.d.sync += [
                kb_base.eq(kb_base + vp),
                kb_row.eq(kb_row + 1),
                kw_count.eq(Mux(kb_base + vp >= n, n, kb_base + vp)),
            ]
        with m.If(kept_take & ~bypass):
            next_lane = kw_lane + tk_count
            m.d.sync += kw_count.eq(kw_count + tk_count)
            with m.If(next_lane >= vp):
                m.d.sync += [kw_lane.eq(next_lane - vp), kw_row.eq(kw_row + 1)]
            with m.Else():
                m.d.sync += kw_lane.eq(next_lane)

        w.__dict__.update(back_on=back_on, bb=bb, bslot=bslot, m_keep=m_keep,
                          bypass=bypass, draining=draining, k_sent=k_sent, tk_done=tk_done,
                          out_done=out_done, lanes_v=lanes_v, kw_count=kw_count, v_pos=v_pos,
                          v_row=v_row, can_bypass=can_bypass)  # fmt: skip

    def _values(self, m: Module, w: SimpleNamespace) -> None:
        """Value rows into prob.V, the output, and the request's release at its end."""
        vp, cnt = self.v_par, unsigned(self.max_n.bit_length())
        # --- value rows: v_par per beat, probabilities from the kept lanes (or the bank on the bypass) ------
        v_end = Signal(cnt)
        m.d.comb += v_end.eq(Mux(w.v_pos + vp >= w.m_keep, w.m_keep, w.v_pos + vp))
        v_ok = Signal()
        m.d.comb += v_ok.eq(w.back_on & (w.kw_count >= v_end) & (w.v_pos < w.m_keep))
        for _, rp in w.lanes_v:
            m.d.comb += rp.addr.eq(w.v_row)
        kept_probs = Cat(*(rp.data for _, rp in w.lanes_v))
        if w.can_bypass:
            pb_v = w.pbuf.read_port(domain="comb")
            m.d.comb += pb_v.addr.eq(Cat(w.v_row[: w.pr_bits], w.bb))
            kept_probs = Mux(w.bypass, pb_v.data, kept_probs)
        m.d.comb += [
            w.vu.i.valid.eq(self.value.valid & v_ok),
            self.value.ready.eq(w.vu.i.ready & v_ok),
            w.vu.i.payload.value.eq(self.value.payload.value),
            w.vu.i.payload.prob.eq(kept_probs),
            w.vu.i.payload.mask.eq(Cat(*((w.v_pos + j) < w.m_keep for j in range(vp)))),
            w.vu.i.payload.last.eq(w.v_pos + vp >= w.m_keep),
        ]
        with m.If(w.vu.i.valid & w.vu.i.ready):
            m.d.sync += [w.v_pos.eq(w.v_pos + vp), w.v_row.eq(w.v_row + 1)]

        # --- output vector; the request ends once its output, every prob beat, its decision beat and the
        # engine's last beat have been taken: its slot and bank are released
        wiring.connect(m, w.vu.o, wiring.flipped(self.out))
        with m.If(self.out.valid & self.out.ready):
            m.d.sync += w.out_done.eq(1)
        with m.If(w.back_on & w.out_done & ~w.draining & w.k_sent & w.tk_done & ~w.dec_made[w.bslot]):
            m.d.sync += [
                w.back_on.eq(0),
                w.busy[w.bslot].eq(0),
                w.final[w.bslot].eq(0),
                w.bank_free[w.bb].eq(1),
                w.avail[w.bb].eq(0),
                w.back_seq.eq(w.back_seq + 1),
            ]
