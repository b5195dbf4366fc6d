"""Softmax: the fixed-point softmax of ``models.softmax.softmax_fixed``, ``lanes`` elements per cycle a pass.

Passes (the numbered steps of ``models/softmax.py``): LOAD buffers the row and tracks the max (step 1);
EXP computes e_j (steps 3-6), buffers it and accumulates the sum (step 7); DIV forms the one reciprocal
of the row (step 8); OUT multiplies and rounds (step 9). No floating point anywhere. With L lanes every
pass but DIV handles one L-wide buffer row per cycle, each lane with its own copy of the per-element
datapath; max and the integer sum are associative, so reducing a row's lanes before the running max /
sum gives the model's result exactly.

The passes are three stages working on three rows at once: LOAD fills one of two score banks while EXP
reads the other, and EXP fills one of two e banks (with its row's reciprocal) while OUT reads the
other, so a row's passes are not serialized against the next rows' (cycles:
``models.softmax.softmax_row_cycles``).
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from spatten.models.softmax import DEFAULT_SPEC, SoftmaxSpec, exp_table, log2e_constant
from spatten.rtl.layouts import lane_beat
from spatten.rtl.params import check_int, rejected_quietly

__all__ = ["Softmax", "score_layout", "prob_layout"]


def score_layout(spec: SoftmaxSpec, lanes: int) -> data.StructLayout:
    """Input beats: ``lanes`` signed ``spec.in_bits`` score codes."""
    return lane_beat(signed(spec.in_bits), lanes)


def prob_layout(spec: SoftmaxSpec, lanes: int) -> data.StructLayout:
    """Output beats: ``lanes`` unsigned ``spec.out_bits`` probability codes."""
    return lane_beat(unsigned(spec.out_bits), lanes)


MAX_LANES = 64


def _shift_round(x, s: int):
    """Round-half-up right shift by a constant, as ``models.fixed.shift_round``."""
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def _tree(values: list, op):
    """Balanced reduction of ``values`` with the binary ``op`` (log2 depth)."""
    while len(values) > 1:
        values = [op(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]  # fmt: skip
    return values[0]


class Softmax(wiring.Component):
    """Streaming fixed-point softmax of one row of up to ``max_n`` scores, ``lanes`` per beat.

    A row alone takes ``3 * ceil(n / lanes) + 1`` cycles with its input offered and its output taken
    every cycle: ``ceil(n / lanes)`` input beats (LOAD), as many EXP cycles, one DIV cycle and
    ``ceil(n / lanes)`` output beats (OUT). The next row's beats are taken from the cycle after the
    last one, into the other score bank; the input waits only while both score banks hold rows EXP has
    not finished. Rows offered back to back leave every ``ceil(n / lanes) + 1`` cycles (EXP + DIV);
    every stamp is :func:`models.softmax.softmax_row_cycles`.

    Parameters
    ----------
    spec : models.softmax.SoftmaxSpec
        Integer widths; the RTL is exactly the model for this spec.
    max_n : int
        Longest row, 1..65536. Scores and e values each get two banks of ``ceil(max_n / lanes)`` rows of
        ``lanes`` elements, each bank rounded up to a power of two rows (the bank is the address's top bit).
    lanes : int
        L, scores per input beat and probabilities per output beat, 1..64.

    Ports
    -----
    i : In, stream of ``score_layout(spec, L)`` (``L * in_bits + L + 1`` bits)
        ``data[j]`` lane j's signed score code (``frac_bits`` fraction bits), element order = lane order
        within a beat, beats in row order; ``mask`` the lanes holding scores, a non-empty prefix (lane 0
        always set; only a row's last beat may be partial); ``last`` the row's last beat.
    o : Out, stream of ``prob_layout(spec, L)`` (``L * out_bits + L + 1`` bits)
        ``data[j]`` lane j's unsigned probability code; ``mask`` and ``last`` as on the matching input
        beat.
    peak : Out, stream of ``prob_layout(spec, 1)`` (``out_bits + 2`` bits)
        One beat per row, valid from the cycle after the row's DIV until taken: ``data[0]`` the row's
        largest probability (== the maximum of its ``o`` beats), ``mask`` and ``last`` 1. A consumer must
        take it before the next row's DIV (a later one overwrites it).
    """

    def __init__(self, spec: SoftmaxSpec = DEFAULT_SPEC, max_n: int = 1024, lanes: int = 1):
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            if not isinstance(spec, SoftmaxSpec):
                raise TypeError(f"spec must be a SoftmaxSpec, got {type(spec).__name__}")
            check_int("max_n", max_n, 1, 65536)
            check_int("lanes", lanes, 1, MAX_LANES)
        self.spec, self.max_n, self.lanes = spec, max_n, lanes
        super().__init__(
            {
                "i": In(stream.Signature(score_layout(spec, lanes))),
                "o": Out(stream.Signature(prob_layout(spec, lanes))),
                "peak": Out(stream.Signature(prob_layout(spec, 1))),
            }
        )

    def _exp(self, m: Module, mx, s, lut, j: int):
        """Steps 3-6 for one lane: e = 2**E * 2**(-(mx - s) * K / 2**(F + C)), rounded as the model."""
        sp = self.spec
        S, F, C, T, I, E = (  # noqa: N806, E741 - the model's names
            sp.in_bits, sp.frac_bits, sp.const_bits, sp.lut_bits, sp.interp_bits, sp.exp_bits,
        )  # fmt: skip
        W = T + I  # noqa: N806
        d = Signal(S + 1, name=f"d{j}")
        m.d.comb += d.eq(mx - s)
        y = Signal(S + 1 + C + 3, name=f"y{j}")
        m.d.comb += y.eq(_shift_round(d * log2e_constant(sp), F + C - W))
        n_int = y >> W
        i_tab = Signal(T, name=f"i_tab{j}")
        r_w = Signal(max(1, I), name=f"r_w{j}")
        m.d.comb += [i_tab.eq(y[I:W]), r_w.eq(y[:I] if I else 0)]
        g = Signal(E + 2, name=f"g{j}")
        if I:
            lo, hi = lut[i_tab], lut[i_tab + 1]
            m.d.comb += g.eq(lo - _shift_round((lo - hi) * r_w, I))
        else:
            m.d.comb += g.eq(lut[i_tab])
        nsat = Signal(range(E + 3), name=f"nsat{j}")
        m.d.comb += nsat.eq(Mux(n_int > E + 2, E + 2, n_int))
        e_val = Signal(E + 1, name=f"e{j}")
        m.d.comb += e_val.eq((g + ((Const(1, E + 4) << nsat) >> 1)) >> nsat)
        return e_val

    def elaborate(self, platform):
        m = Module()
        sp = self.spec
        L = self.lanes  # noqa: N806
        S, E, R, P = sp.in_bits, sp.exp_bits, sp.recip_bits, sp.out_bits  # noqa: N806
        depth = -(-self.max_n // L)
        aw = max(1, (self.max_n - 1).bit_length())
        rw = max(1, (depth - 1).bit_length())  # bits of a buffer row within a bank
        # two banks per memory (bank = the address's top bit): LOAD fills one score bank while EXP reads
        # the other, and EXP fills one e bank while OUT reads the other
        m.submodules.smem = smem = Memory(shape=L * S, depth=2 << rw, init=[])
        m.submodules.emem = emem = Memory(shape=L * (E + 1), depth=2 << rw, init=[])
        sw, sr = smem.write_port(), smem.read_port(domain="comb")
        ew, er = emem.write_port(), emem.read_port(domain="comb")
        lut = Array(Const(int(v), E + 1) for v in exp_table(sp))
        count_shape, rows_shape = range(self.max_n + 1), range(depth + 1)

        # --- LOAD: one beat per cycle into score bank l_bank; the row's count, beats and max ---------------
        l_bank = Signal()
        l_count, l_rows, l_mx = Signal(count_shape), Signal(rows_shape), Signal(signed(S))
        s_full = Signal(2)  # score bank b holds a whole row EXP has not finished
        s_count = [Signal(count_shape, name=f"s_count{b}") for b in range(2)]
        s_rows = [Signal(rows_shape, name=f"s_rows{b}") for b in range(2)]
        s_mx = [Signal(signed(S), name=f"s_mx{b}") for b in range(2)]
        mask = self.i.payload.mask
        lowest = Const(-(1 << (S - 1)), signed(S))  # max identity: the most negative code
        ins = [self.i.payload.data[j] for j in range(L)]
        bmax = Signal(signed(S))
        m.d.comb += bmax.eq(
            _tree([Mux(mask[j], ins[j], lowest) for j in range(L)], lambda a, b: Mux(b > a, b, a))
        )
        popcount = Signal(range(L + 1))
        m.d.comb += popcount.eq(_tree([mask[j] for j in range(L)], lambda a, b: a + b))
        new_mx = Signal(signed(S))
        m.d.comb += new_mx.eq(Mux((l_count == 0) | (bmax > l_mx), bmax, l_mx))
        m.d.comb += [
            self.i.ready.eq(~s_full.bit_select(l_bank, 1)),
            sw.addr.eq(Cat(l_rows[:rw], l_bank)),
            sw.data.eq(self.i.payload.data),
            sw.en.eq(self.i.valid & self.i.ready),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [l_count.eq(l_count + popcount), l_rows.eq(l_rows + 1), l_mx.eq(new_mx)]
            with m.If(self.i.payload.last):
                for b in range(2):
                    with m.If(l_bank == b):
                        m.d.sync += [
                            s_full[b].eq(1),
                            s_count[b].eq(l_count + popcount),
                            s_rows[b].eq(l_rows + 1),
                            s_mx[b].eq(new_mx),
                        ]
                m.d.sync += [l_count.eq(0), l_rows.eq(0), l_bank.eq(~l_bank)]

        # --- EXP: steps 3-6 on one buffer row per cycle from score bank x_bank into e bank x_bank (row r
        # uses bank r mod 2 of both memories), the live e values summed; then one DIV cycle forms the row's
        # reciprocal (step 8) -----------------------------------------------------------------------------
        x_bank, x_div = Signal(), Signal()
        x_idx = Signal(rows_shape)
        x_base = Signal(aw + 1 + 7)  # x_idx * L: element number of lane 0 of row x_idx
        total = Signal(E + 1 + aw + 1)
        e_full = Signal(2)  # e bank b holds a row (and its reciprocal) OUT has not finished
        e_count = [Signal(count_shape, name=f"e_count{b}") for b in range(2)]
        e_rows = [Signal(rows_shape, name=f"e_rows{b}") for b in range(2)]
        rcp = [Signal(E + R + 1, name=f"rcp{b}") for b in range(2)]
        x_count, x_rows, x_mx = Array(s_count)[x_bank], Array(s_rows)[x_bank], Array(s_mx)[x_bank]
        x_go = Signal()
        m.d.comb += x_go.eq(s_full.bit_select(x_bank, 1) & ~e_full.bit_select(x_bank, 1) & ~x_div)
        m.d.comb += sr.addr.eq(Cat(x_idx[:rw], x_bank))
        e_vals = [self._exp(m, x_mx, sr.data[j * S : (j + 1) * S].as_signed(), lut, j) for j in range(L)]
        e_sum = Signal(E + 1 + 7)
        m.d.comb += e_sum.eq(
            _tree([Mux(x_base + j < x_count, e_vals[j], 0) for j in range(L)], lambda a, b: a + b)
        )
        m.d.comb += [ew.addr.eq(Cat(x_idx[:rw], x_bank)), ew.data.eq(Cat(*e_vals)), ew.en.eq(x_go)]
        with m.If(x_go):
            m.d.sync += [
                total.eq(Mux(x_idx == 0, 0, total) + e_sum),
                x_idx.eq(x_idx + 1),
                x_base.eq(x_base + L),
                x_div.eq(x_idx == x_rows - 1),
            ]
        rcp_new = Signal(E + R + 1)
        m.d.comb += rcp_new.eq(Const(1 << (E + R), E + R + 1) // total)
        # the row maximum's probability, known at DIV: the max score's e is exp_table[0] (d = 0), and the
        # output is monotone in e, so it is what OUT will give the max element (the refetch decision
        # needs no OUT pass)
        pk_valid, pk_rcp = Signal(), Signal(E + R + 1)
        pk_prod = _shift_round(Const(int(exp_table(sp)[0]), E + 1) * pk_rcp, E + R - P)
        m.d.comb += [
            self.peak.valid.eq(pk_valid),
            self.peak.payload.data[0].eq(Mux(pk_prod > (1 << P) - 1, (1 << P) - 1, pk_prod)),
            self.peak.payload.mask.eq(1),
            self.peak.payload.last.eq(1),
        ]
        with m.If(self.peak.ready):
            m.d.sync += pk_valid.eq(0)
        with m.If(x_div):
            m.d.sync += [pk_valid.eq(1), pk_rcp.eq(rcp_new)]
            for b in range(2):
                with m.If(x_bank == b):
                    m.d.sync += [
                        rcp[b].eq(rcp_new),
                        e_full[b].eq(1),
                        e_count[b].eq(x_count),
                        e_rows[b].eq(x_rows),
                        s_full[b].eq(0),
                    ]
            m.d.sync += [x_div.eq(0), x_idx.eq(0), x_base.eq(0), x_bank.eq(~x_bank)]

        # --- OUT: step 9 in every lane of e bank o_bank's buffer row o_idx, one output beat per cycle ------
        o_bank = Signal()
        o_idx = Signal(rows_shape)
        o_base = Signal(aw + 1 + 7)
        o_count, o_rows, o_rcp = Array(e_count)[o_bank], Array(e_rows)[o_bank], Array(rcp)[o_bank]
        o_last = Signal()
        m.d.comb += [er.addr.eq(Cat(o_idx[:rw], o_bank)), o_last.eq(o_idx == o_rows - 1)]
        pmax = (1 << P) - 1
        probs = []
        for j in range(L):
            prod = _shift_round(er.data[j * (E + 1) : (j + 1) * (E + 1)] * o_rcp, E + R - P)
            p = Signal(P, name=f"p{j}")
            m.d.comb += p.eq(Mux(prod > pmax, pmax, prod))
            probs.append(p)
        m.d.comb += [
            self.o.valid.eq(e_full.bit_select(o_bank, 1)),
            self.o.payload.data.eq(Cat(*probs)),
            self.o.payload.mask.eq(Cat(*(o_base + j < o_count for j in range(L)))),
            self.o.payload.last.eq(o_last),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [o_idx.eq(o_idx + 1), o_base.eq(o_base + L)]
            with m.If(o_last):
                for b in range(2):
                    with m.If(o_bank == b):
                        m.d.sync += e_full[b].eq(0)
                m.d.sync += [o_idx.eq(0), o_base.eq(0), o_bank.eq(~o_bank)]
        return m
