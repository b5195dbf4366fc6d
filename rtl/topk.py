"""Quick-select top-k engine: P comparators per cycle, zero-eliminator compaction, ping-pong buffers.

Golden twin: :func:`models.topk.topk_ref` (selection) and :func:`models.topk.quickselect_trace`
(pivot sequence and exact cycle counts).
"""

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from spatten.models.topk import LFSR_MASK, pivot_lanes
from spatten.rtl.params import check_int, check_power_of_two, rejected_quietly
from spatten.rtl.zero_eliminator import ZeroEliminator

__all__ = ["TopKEngine", "score_layout", "k_layout", "out_layout"]

MAX_N_LIMIT = 1 << 16
"""Largest supported request length (the 16-bit LFSR pivot rule spreads positions over at most 2**16)."""


def _median3(a: Value, b: Value, c: Value) -> Value:
    """``max(min(a, b), min(max(a, b), c))``, as :func:`models.topk.median3`."""
    lo, hi = Mux(a < b, a, b), Mux(a > b, a, b)
    upper = Mux(hi < c, hi, c)
    return Mux(lo > upper, lo, upper)


def _row_median(values: list[Value]) -> Value:
    """A median of three, or the median of three medians of three (the model's ``_row_median``)."""
    if len(values) == 3:
        return _median3(*values)
    return _median3(*(_median3(*values[i : i + 3]) for i in (0, 3, 6)))


def score_layout(width: int, lanes: int = 1) -> data.StructLayout:
    """Payload of the score input stream, LSB first.

    ``lanes == 1``: ``score`` (signed ``width`` bits) then ``last``. ``lanes > 1``: ``score``, an
    ``ArrayLayout(signed(width), lanes)`` (lane j at bits [j*width, (j+1)*width)), ``mask`` (``lanes``
    bits, the live lanes) then ``last``.
    """
    if lanes == 1:
        return data.StructLayout({"score": signed(width), "last": 1})
    return data.StructLayout({"score": data.ArrayLayout(signed(width), lanes), "mask": lanes, "last": 1})


def k_layout(max_n: int) -> data.StructLayout:
    """Payload of the per-request k stream: ``k`` (0..max_n) then a 16-bit pivot ``seed``."""
    return data.StructLayout({"k": unsigned(max_n.bit_length()), "seed": unsigned(16)})


def out_layout(width: int, max_n: int, lanes: int = 1) -> data.StructLayout:
    """Payload of the output stream, LSB first.

    ``lanes == 1``: ``index``, ``score``, ``last``, ``empty``. ``lanes > 1``: ``index`` and ``score`` as
    ``ArrayLayout``s of ``lanes`` (lane j the beat's j-th selected score), ``mask`` (``lanes`` bits, the
    live lanes, a run from lane 0), ``last``, ``empty``.
    """
    index = unsigned(max(1, (max_n - 1).bit_length()))
    if lanes == 1:
        return data.StructLayout({"index": index, "score": signed(width), "last": 1, "empty": 1})
    return data.StructLayout({
        "index": data.ArrayLayout(index, lanes), "score": data.ArrayLayout(signed(width), lanes),
        "mask": lanes, "last": 1, "empty": 1,
    })  # fmt: skip


class TopKEngine(wiring.Component):
    """Select the k largest of n signed scores (ties: earliest index) and stream them out in index order.

    One request at a time: n scores arrive on ``i``, ``in_lanes`` per beat at most (the beat with
    ``last`` set ends the request), its k on ``k``. The engine buffers the scores (a beat's live lanes
    go to consecutive positions of the input copy, whose P lane memories each take at most one of them,
    so a beat costs one cycle whatever its width), runs quick-select rounds (P comparisons per cycle
    against one pivot; two :class:`~rtl.zero_eliminator.ZeroEliminator` compact the "greater" and
    "less" lanes into the halves of a ping-pong buffer; equal lanes are counted; the round recurses into
    the side holding rank k) until the pivot is the k-th largest value, then a final pass over the
    buffered input emits every score above that value plus the first ``k - n_above`` equal ones, in index
    order, up to ``out_lanes`` a beat (a third zero eliminator compacts a buffer row's selected lanes).
    The pivot of a round comes from the 16-bit Galois LFSR of :mod:`models.topk`, seeded from the
    request's ``seed``: with a full buffer row left and P >= 4, the median of the
    :func:`models.topk.pivot_lanes` of row ``(lfsr * (n_round // P)) >> 16`` (nine lanes as a median of
    three medians when P >= 16, three when P is 4 or 8), read in the one pivot cycle; otherwise the
    score at ``(lfsr * n_round) >> 16``. So :func:`models.topk.quickselect_trace` predicts every round
    and every cycle.

    Timing (t0 = the cycle in which the request's last score and its k have both been accepted):
    cycles t0+1 .. t0+S are the search (``searching`` high, ``S = sum over rounds of ceil(n_round / P)
    + 1``: one pivot-read cycle, then the streaming cycles, the last of which also takes the recursion
    decision from the counts including its own row); then the final pass emits one
    beat per cycle, a buffer row with ``c`` selected scores costing ``max(1, ceil(c / out_lanes))``
    cycles (:func:`models.topk.final_pass_cycles`; it stops at the beat holding the k-th); the
    output is registered, so with ``o.ready`` held high the last beat is accepted at
    ``t0 + QuickSelectTrace.cycles``. Inputs are not accepted from t0 until the last output beat has been
    handed to the output register. Buffers are register files (combinational read), each made of ``P``
    lane memories of ``buffer_depth`` rows: one input copy plus two ping-pong buffers with a "greater"
    and a "less" half each. The longest combinational path (buffer read, comparators, zero-eliminator
    counts, recursion decision) is not timing-closed for silicon; registering the read data would add
    one cycle per round (``models.topk.ROUND_OVERHEAD``).

    Request completion: every request ends with exactly one output beat carrying ``last = 1``. When
    ``k = 0`` that beat is the only one and has ``empty = 1`` (its index and score are zero and carry no
    selection); ``empty`` is 0 on every other beat. ``k > n`` is treated as ``k = n``. A request longer
    than ``max_n`` is ended at its ``max_n``-th score, as if that beat had ``last`` set (lanes of that
    beat past the ``max_n``-th score are dropped).

    Parameters
    ----------
    score_width : int
        W, bits of a signed score, 2..64.
    max_n : int
        Largest n per request, 1..65536; sets the index width ``max(1, bit_length(max_n - 1))``.
    parallelism : int
        P, comparators per cycle, a power of two in 1..32 (lane and row are bit fields of a position).
    buffer_depth : int or None
        Rows of each lane memory; at least ``ceil(max_n / P)`` (the default), at most 65536. A larger
        value models a fixed SRAM macro size and changes no behaviour.
    in_lanes : int
        L, scores per input beat, 1..P (default 1: the one-score port below, unchanged). The search,
        final pass and their cycles do not depend on L; only the input phase takes ``ceil(n / L)``
        beats instead of n.
    out_lanes : int
        O, selected scores per output beat, 1..P (default 1: the one-index port below, unchanged).

    Ports
    -----
    i : In, stream of ``score_layout(W, L)`` (W + 1 bits for L = 1, L*W + L + 1 bits otherwise)
        ``i.payload.score`` the scores: signed W bits for L = 1; for L > 1, L*W bits with lane j's signed
        score at bits [j*W, (j+1)*W). ``i.payload.mask`` (L > 1 only, L bits) the live lanes: a non-empty
        run from lane 0 (lanes 0..c-1 hold the next c scores of the request, c = popcount(mask)); only
        the last beat of a request may be partial (the engine takes a partial earlier beat correctly,
        but the producer contract is full beats). ``i.payload.last`` ends the request. ``i.valid`` /
        ``i.ready`` handshake; gaps (valid low) are allowed anywhere.
    k : In, stream of ``k_layout(max_n)`` (bit_length(max_n) + 16 bits)
        ``k.payload.k`` how many to keep (0..max_n); ``k.payload.seed`` 16-bit pivot seed
        (``models.topk.lfsr_seed``). One beat per request, accepted any time before or after the scores
        (one beat is held ahead).
    o : Out, stream of ``out_layout(W, max_n, O)`` (I + W + 2 bits for O = 1, O*(I + W + 1) + 2
        otherwise, I = the index width)
        ``o.payload.index`` the selected score's position in the request (0-based), ``o.payload.score``
        its value; for O > 1 both are arrays of O lanes and ``o.payload.mask`` (O bits) marks the live
        ones, a run from lane 0, ascending index order across lanes and beats. ``o.payload.last`` the
        request's final beat, ``o.payload.empty`` the k = 0 beat (mask 0 for O > 1). Back-pressure
        (``o.ready`` low) stalls the engine without loss or duplication.
    searching : Out, 1 bit
        High in every search cycle (pivot read, streaming); for latency measurement.
    """

    def __init__(
        self,
        score_width: int = 16,
        max_n: int = 1024,
        parallelism: int = 16,
        buffer_depth: int | None = None,
        in_lanes: int = 1,
        out_lanes: int = 1,
    ) -> None:
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            self.score_width = check_int("score_width", score_width, 2, 64)
            self.max_n = check_int("max_n", max_n, 1, MAX_N_LIMIT)
            self.parallelism = check_power_of_two("parallelism", parallelism, 32)
            rows_needed = -(-max_n // parallelism)
            if buffer_depth is None:
                buffer_depth = rows_needed
            self.buffer_depth = check_int("buffer_depth", buffer_depth, rows_needed, MAX_N_LIMIT)
            # at most P: a beat's scores then fall on distinct lane memories (one write port each)
            self.in_lanes = check_int("in_lanes", in_lanes, 1, parallelism)
            self.out_lanes = check_int("out_lanes", out_lanes, 1, parallelism)  # a row's selection at most
        super().__init__(
            {
                "i": In(stream.Signature(score_layout(score_width, in_lanes))),
                "k": In(stream.Signature(k_layout(max_n))),
                "o": Out(stream.Signature(out_layout(score_width, max_n, out_lanes))),
                "searching": Out(1),
            }
        )

    def elaborate(self, platform):
        m = Module()
        p = self.parallelism
        lb = p.bit_length() - 1  # log2(P)
        w = self.score_width
        depth = self.buffer_depth
        cnt_shape = unsigned(self.max_n.bit_length())
        row_shape = unsigned(max(1, (depth - 1).bit_length()))

        def lane_of(pos):
            return pos[:lb] if lb else Const(0, 1)

        def row_of(pos):
            return pos >> lb

        # --- buffers: input copy `a`, ping-pong `b[buffer][half]` (half 0 greater, 1 less) -------------
        def lane_mems(tag):
            mems = []
            for lane in range(p):
                mem = Memory(shape=signed(w), depth=depth, init=[])
                m.submodules[f"{tag}_l{lane}"] = mem
                mems.append((mem.write_port(), mem.read_port(domain="comb")))
            return mems

        a = lane_mems("a")
        b = [[lane_mems(f"b{bi}_{'gt' if h == 0 else 'lt'}") for h in range(2)] for bi in range(2)]

        m.submodules.ze_gt = ze_gt = ZeroEliminator(signed(w), p)
        m.submodules.ze_lt = ze_lt = ZeroEliminator(signed(w), p)

        # --- registers ----------------------------------------------------------------------------------
        n = Signal(cnt_shape)  # scores accepted in the current request
        got_last = Signal()
        have_k = Signal()
        k_held = Signal(cnt_shape)
        seed_held = Signal(16)
        k_cur = Signal(cnt_shape)
        lfsr = Signal(16)
        m_cnt = Signal(cnt_shape)  # candidates in this round
        rank = Signal(cnt_shape)  # wanted rank inside the candidates (1 = largest)
        src = Signal(2)  # 0: input copy, 1: b[0], 2: b[1]
        src_half = Signal()
        row = Signal(row_shape)
        pivot = Signal(signed(w))
        gcount = Signal(cnt_shape)
        lcount = Signal(cnt_shape)
        ecount = Signal(cnt_shape)
        thr = Signal(signed(w))
        need_eq = Signal(cnt_shape)
        keep_all = Signal()
        eq_seen = Signal(cnt_shape)
        done_mask = Signal(p)
        out_count = Signal(cnt_shape)

        # --- k stream: one beat held ahead ----------------------------------------------------------------
        m.d.comb += self.k.ready.eq(~have_k)
        with m.If(self.k.valid & self.k.ready):
            m.d.sync += [have_k.eq(1), k_held.eq(self.k.payload.k), seed_held.eq(self.k.payload.seed)]
        k_avail = have_k | self.k.valid
        k_now = Signal(cnt_shape)
        seed_now = Signal(16)
        with m.If(have_k):
            m.d.comb += [k_now.eq(k_held), seed_now.eq(seed_held)]
        with m.Else():
            m.d.comb += [k_now.eq(self.k.payload.k), seed_now.eq(self.k.payload.seed)]

        # --- output register: a beat leaves when ready; a new one may enter in the same cycle
        can_emit = ~self.o.valid | self.o.ready
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # --- shared read addressing ----------------------------------------------------------------------
        # Pivot (models.topk): with a full row left and P >= 4, the median of pivot_lanes(P) of row
        # (lfsr * (m_cnt // P)) >> 16, which is ((lfsr * (m_cnt rounded down to rows)) >> 16) >> log2 P: one
        # multiplier serves both rules, its operand muxed.
        cand_lanes = pivot_lanes(p)
        use_row = Signal()
        m.d.comb += use_row.eq(m_cnt >= p if cand_lanes else 0)
        pick_span = Signal(cnt_shape)
        m.d.comb += pick_span.eq(Mux(use_row, (m_cnt >> lb) << lb, m_cnt))
        pos = Signal(cnt_shape)  # (lfsr * span) >> 16 < span: the count's width is enough
        m.d.comb += pos.eq((lfsr * pick_span) >> 16)
        rd_row = Signal(row_shape)
        for _wp, rp in a:
            m.d.comb += rp.addr.eq(rd_row)
        for bi in range(2):
            for h in range(2):
                for _wp, rp in b[bi][h]:
                    m.d.comb += rp.addr.eq(rd_row)
        src_data = [Signal(signed(w), name=f"src_d{lane}") for lane in range(p)]
        for lane in range(p):
            with m.Switch(src):
                with m.Case(0):
                    m.d.comb += src_data[lane].eq(a[lane][1].data)
                with m.Case(1):
                    m.d.comb += src_data[lane].eq(b[0][0][lane][1].data)
                    with m.If(src_half):
                        m.d.comb += src_data[lane].eq(b[0][1][lane][1].data)
                with m.Default():
                    m.d.comb += src_data[lane].eq(b[1][0][lane][1].data)
                    with m.If(src_half):
                        m.d.comb += src_data[lane].eq(b[1][1][lane][1].data)
        src_arr = data.ArrayLayout(signed(w), p)
        src_view = Signal(src_arr)
        for lane in range(p):
            m.d.comb += src_view[lane].eq(src_data[lane])

        # --- scan datapath: compare, compact, write into the destination buffer --------------------------
        dst = Signal()  # destination buffer: b[0] unless reading b[0]
        m.d.comb += dst.eq(src == 1)
        lane_valid = Signal(p)
        gt = Signal(p)
        lt = Signal(p)
        eq = Signal(p)
        for lane in range(p):
            m.d.comb += [
                lane_valid[lane].eq(((row << lb) | lane) < m_cnt),
                gt[lane].eq(lane_valid[lane] & (src_data[lane] > pivot)),
                lt[lane].eq(lane_valid[lane] & (src_data[lane] < pivot)),
                eq[lane].eq(lane_valid[lane] & (src_data[lane] == pivot)),
            ]
        m.d.comb += [
            ze_gt.i_data.eq(src_view),
            ze_gt.i_keep.eq(gt),
            ze_lt.i_data.eq(src_view),
            ze_lt.i_keep.eq(lt),
        ]
        scanning = Signal()

        def compacted_write(ports, ze, count, enable):
            # Positions count .. count + ze.o_count - 1: lane l takes element (l - count) mod P, in row
            # count // P, or the next row when l wrapped below count mod P.
            off = lane_of(count)
            base = row_of(count)
            for lane, (wp, _rp) in enumerate(ports):
                j = Signal(range(p), name=f"wj{lane}") if p > 1 else Const(0, 1)
                if p > 1:
                    m.d.comb += j.eq((lane - off)[:lb])
                    wrapped = Const(lane, lb) < off
                else:
                    wrapped = Const(0, 1)
                m.d.comb += [
                    wp.addr.eq(base + wrapped),
                    wp.data.eq(ze.o_data[j] if p > 1 else ze.o_data[0]),
                    wp.en.eq(enable & (j < ze.o_count)),
                ]

        for bi in range(2):
            compacted_write(b[bi][0], ze_gt, gcount, scanning & (dst == bi))
            compacted_write(b[bi][1], ze_lt, lcount, scanning & (dst == bi))

        # --- final pass datapath ---------------------------------------------------------------------------
        fin_valid = Signal(p)
        fin_gt = Signal(p)
        fin_eq = Signal(p)
        sel = Signal(p)
        eq_prefix = [Signal(cnt_shape, name=f"eqpre{lane}") for lane in range(p)]
        for lane in range(p):
            x = a[lane][1].data
            m.d.comb += [
                fin_valid[lane].eq(((row << lb) | lane) < n),
                fin_gt[lane].eq(fin_valid[lane] & (x > thr)),
                fin_eq[lane].eq(fin_valid[lane] & (x == thr)),
            ]
            if lane == 0:
                m.d.comb += eq_prefix[0].eq(eq_seen)
            else:
                m.d.comb += eq_prefix[lane].eq(eq_prefix[lane - 1] + fin_eq[lane - 1])
            m.d.comb += sel[lane].eq(
                fin_valid[lane] & (keep_all | fin_gt[lane] | (fin_eq[lane] & (eq_prefix[lane] < need_eq)))
            )
        rem = Signal(p)
        m.d.comb += rem.eq(sel & ~done_mask)
        first = Signal(range(p)) if p > 1 else Const(0, 1)
        if p > 1:
            for lane in reversed(range(p)):
                with m.If(rem[lane]):
                    m.d.comb += first.eq(lane)
        lowbit = Signal(p)
        m.d.comb += lowbit.eq(rem & (~rem + 1)[:p])
        only_one = (rem & (rem - 1)[:p]) == 0
        eq_in_row = sum(fin_eq[lane] for lane in range(p)) if p > 1 else fin_eq[0]
        a_view = Signal(src_arr)
        for lane in range(p):
            m.d.comb += a_view[lane].eq(a[lane][1].data)

        # O > 1: a third zero eliminator compacts the row's remaining selected lanes (score, lane); the
        # first O of them leave in one beat, the row is done once at most O were left
        ol = self.out_lanes
        if ol > 1:
            m.submodules.ze_out = ze_out = ZeroEliminator(unsigned(w + lb), p)
            m.d.comb += ze_out.i_keep.eq(rem)
            for lane in range(p):
                m.d.comb += ze_out.i_data[lane].eq(Cat(a[lane][1].data, Const(lane, lb)))
            rem_pre = [Signal(range(p + 1), name=f"rempre{lane}") for lane in range(p)]  # remaining before
            m.d.comb += rem_pre[0].eq(0)
            for lane in range(1, p):
                m.d.comb += rem_pre[lane].eq(rem_pre[lane - 1] + rem[lane - 1])
            taken = Signal(p)  # the lanes this beat carries: the first O remaining ones
            m.d.comb += taken.eq(Cat(*(rem[lane] & (rem_pre[lane] < ol) for lane in range(p))))
            n_out = Signal(range(ol + 1))
            m.d.comb += n_out.eq(Mux(ze_out.o_count > ol, ol, ze_out.o_count))
            row_done = ze_out.o_count <= ol

        def start_final():
            return [row.eq(0), eq_seen.eq(0), done_mask.eq(0), out_count.eq(0)]

        def advance_row():
            return [row.eq(row + 1), done_mask.eq(0), eq_seen.eq(eq_seen + eq_in_row)]

        # --- input writes ----------------------------------------------------------------------------------
        accept = Signal()
        m.d.comb += accept.eq(self.i.valid & self.i.ready)
        nl = self.in_lanes
        if nl == 1:
            for lane, (wp, _rp) in enumerate(a):
                m.d.comb += [
                    wp.addr.eq(row_of(n)),
                    wp.data.eq(self.i.payload.score),
                    wp.en.eq(accept & (lane_of(n) == lane)),
                ]
        else:
            # c = popcount(mask) scores at positions n .. n + c - 1, clipped at max_n: lane memory l takes
            # beat lane (l - n) mod P, in row n // P or the next when l wrapped below n mod P (as in
            # compacted_write; L <= P keeps that to one score per lane memory).
            in_score = [self.i.payload.score[j] for j in range(nl)]
            in_cnt = Signal(range(nl + 1))
            m.d.comb += in_cnt.eq(sum(self.i.payload.mask[j] for j in range(nl)))
            room = Signal(cnt_shape)  # positions left before max_n
            m.d.comb += room.eq(self.max_n - n)
            beat_count = Signal(range(nl + 1))
            m.d.comb += beat_count.eq(Mux(in_cnt > room, room, in_cnt))
            off = lane_of(n)
            for lane, (wp, _rp) in enumerate(a):
                j = Signal(lb, name=f"ij{lane}")
                m.d.comb += j.eq((lane - off)[:lb])
                m.d.comb += [
                    wp.addr.eq(row_of(n) + (Const(lane, lb) < off)),
                    wp.data.eq(Array(in_score + [in_score[0]] * (p - nl))[j]),
                    wp.en.eq(accept & (j < beat_count)),
                ]

        rows_total = (m_cnt + (p - 1)) >> lb

        with m.FSM(name="topk_fsm") as fsm:
            with m.State("LOAD"):
                m.d.comb += [self.i.ready.eq(~got_last), rd_row.eq(row)]
                n_total = Signal(cnt_shape)
                if nl == 1:
                    last_beat = self.i.payload.last | (n == self.max_n - 1)
                    m.d.comb += n_total.eq(n + accept)
                else:
                    last_beat = self.i.payload.last | (n + beat_count >= self.max_n)
                    m.d.comb += n_total.eq(n + Mux(accept, beat_count, 0))
                with m.If(accept):
                    m.d.sync += n.eq(n + 1 if nl == 1 else n_total)
                    with m.If(last_beat):
                        m.d.sync += got_last.eq(1)
                with m.If((got_last | (accept & last_beat)) & k_avail):
                    m.d.sync += [got_last.eq(0), have_k.eq(0), n.eq(n_total), keep_all.eq(0)]
                    m.d.sync += start_final()
                    with m.If(k_now == 0):
                        m.d.sync += k_cur.eq(0)
                        m.next = "EMPTY"
                    with m.Elif(k_now >= n_total):
                        m.d.sync += [k_cur.eq(n_total), keep_all.eq(1)]
                        m.next = "FINAL"
                    with m.Else():
                        m.d.sync += [
                            k_cur.eq(k_now),
                            m_cnt.eq(n_total),
                            rank.eq(k_now),
                            src.eq(0),
                            src_half.eq(0),
                            lfsr.eq(seed_now + 1),
                        ]
                        with m.If(seed_now == 0xFFFF):
                            m.d.sync += lfsr.eq(1)
                        m.next = "PIVOT"

            with m.State("PIVOT"):
                m.d.comb += rd_row.eq(row_of(pos))
                if p > 1:
                    m.d.sync += pivot.eq(src_view[lane_of(pos)])
                else:
                    m.d.sync += pivot.eq(src_data[0])
                if cand_lanes:
                    with m.If(use_row):
                        m.d.sync += pivot.eq(_row_median([src_view[lane] for lane in cand_lanes]))
                m.d.sync += [row.eq(0), gcount.eq(0), lcount.eq(0), ecount.eq(0)]
                m.next = "SCAN"

            with m.State("SCAN"):
                m.d.comb += [rd_row.eq(row), scanning.eq(1)]
                g_tot = Signal(cnt_shape)
                l_tot = Signal(cnt_shape)
                e_tot = Signal(cnt_shape)
                m.d.comb += [
                    g_tot.eq(gcount + ze_gt.o_count),
                    l_tot.eq(lcount + ze_lt.o_count),
                    e_tot.eq(ecount + (sum(eq[lane] for lane in range(p)) if p > 1 else eq[0])),
                ]
                m.d.sync += [row.eq(row + 1), gcount.eq(g_tot), lcount.eq(l_tot), ecount.eq(e_tot)]
                with m.If(row == rows_total - 1):
                    # Last row: decide with this row's counts included (no separate decision cycle).
                    with m.If(lfsr[0]):  # one Galois LFSR step per round (models.topk.lfsr_step)
                        m.d.sync += lfsr.eq((lfsr >> 1) ^ LFSR_MASK)
                    with m.Else():
                        m.d.sync += lfsr.eq(lfsr >> 1)
                    with m.If(rank <= g_tot):
                        m.d.sync += [m_cnt.eq(g_tot), src.eq(dst + 1), src_half.eq(0)]
                        m.next = "PIVOT"
                    with m.Elif(rank <= g_tot + e_tot):
                        m.d.sync += [thr.eq(pivot), need_eq.eq(rank - g_tot)]
                        m.d.sync += start_final()
                        m.next = "FINAL"
                    with m.Else():
                        m.d.sync += [
                            rank.eq(rank - g_tot - e_tot),
                            m_cnt.eq(l_tot),
                            src.eq(dst + 1),
                            src_half.eq(1),
                        ]
                        m.next = "PIVOT"

            with m.State("FINAL"):
                m.d.comb += rd_row.eq(row)
                with m.If(rem == 0):
                    m.d.sync += advance_row()
                # one beat: up to O of the row's remaining selection (O = 1: its first one)
                if ol > 1:
                    emitted, took, row_finished = n_out, taken, row_done
                    lanes = [ze_out.o_data[j] for j in range(ol)]
                    payload = [self.o.payload.mask.eq((1 << n_out) - 1)]
                    payload += [self.o.payload.index[j].eq((row << lb) | x[w:]) for j, x in enumerate(lanes)]
                    payload += [self.o.payload.score[j].eq(x[:w].as_signed()) for j, x in enumerate(lanes)]
                else:
                    emitted, took, row_finished = 1, lowbit, only_one
                    payload = [
                        self.o.payload.index.eq((row << lb) | first),
                        self.o.payload.score.eq(a_view[first] if p > 1 else a[0][1].data),
                    ]
                with m.Elif(can_emit):
                    is_last = out_count + emitted >= k_cur
                    m.d.sync += payload + [
                        self.o.valid.eq(1),
                        self.o.payload.last.eq(is_last),
                        self.o.payload.empty.eq(0),
                        out_count.eq(out_count + emitted),
                        done_mask.eq(done_mask | took),
                    ]
                    with m.If(is_last):
                        m.d.sync += [n.eq(0), row.eq(0)]
                        m.next = "LOAD"
                    with m.Elif(row_finished):
                        m.d.sync += advance_row()

            with m.State("EMPTY"):
                m.d.comb += rd_row.eq(row)
                with m.If(can_emit):
                    m.d.sync += [
                        self.o.valid.eq(1),
                        self.o.payload.index.eq(0),
                        self.o.payload.score.eq(0),
                        self.o.payload.last.eq(1),
                        self.o.payload.empty.eq(1),
                        n.eq(0),
                        row.eq(0),
                    ]
                    if ol > 1:
                        m.d.sync += self.o.payload.mask.eq(0)
                    m.next = "LOAD"

        m.d.comb += self.searching.eq(fsm.ongoing("PIVOT") | fsm.ongoing("SCAN"))
        return m
