"""Softmax: the fixed-point softmax of ``models.softmax.softmax_fixed``, ``lanes`` elements per cycle a pass.

Passes (the numbered steps of ``models/softmax.py``): LOAD buffers the row and tracks the max (step 1);
EXP computes e_j (steps 3-6), buffers it and accumulates the sum (step 7); DIV forms the one reciprocal
of the row (step 8); OUT multiplies and rounds (step 9). No floating point anywhere. With L lanes every
pass but DIV handles one L-wide buffer row per cycle, each lane with its own copy of the per-element
datapath; max and the integer sum are associative, so reducing a row's lanes before the running max /
sum gives the model's result exactly.
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

    A row takes ``3 * ceil(n / lanes) + 1`` cycles with its input offered and its output taken every
    cycle: ``ceil(n / lanes)`` input beats (LOAD), as many EXP cycles, one DIV cycle and
    ``ceil(n / lanes)`` output beats (OUT). The input is not ready from the row's last beat until its
    last output beat has been taken.

    Parameters
    ----------
    spec : models.softmax.SoftmaxSpec
        Integer widths; the RTL is exactly the model for this spec.
    max_n : int
        Longest row, 1..65536 (two row buffers of ``ceil(max_n / lanes)`` rows of ``lanes`` elements).
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
        m.submodules.smem = smem = Memory(shape=L * S, depth=depth, init=[])
        m.submodules.emem = emem = Memory(shape=L * (E + 1), depth=depth, init=[])
        sw, sr = smem.write_port(), smem.read_port(domain="comb")
        ew, er = emem.write_port(), emem.read_port(domain="comb")

        count = Signal(aw + 1)  # elements of the row loaded so far
        rows = Signal(range(depth + 1))  # buffer rows (beats) of the row loaded so far
        idx = Signal(range(depth + 1))  # buffer row of the EXP / OUT pass
        base = Signal(aw + 1 + 7)  # idx * L: element number of lane 0 of row idx
        mx = Signal(signed(S))
        total = Signal(E + 1 + aw + 1)
        rcp = Signal(E + R + 1)
        lut = Array(Const(int(v), E + 1) for v in exp_table(sp))
        last_row = Signal()
        m.d.comb += [sr.addr.eq(idx), er.addr.eq(idx), last_row.eq(idx == rows - 1)]
        # lanes of row idx holding elements (a prefix: only the last row may be partial)
        live = [Signal(name=f"live{j}") for j in range(L)]
        m.d.comb += [live[j].eq(base + j < count) for j in range(L)]

        # LOAD: the beat's max over its masked lanes (identity: the most negative code).
        mask = self.i.payload.mask
        lowest = Const(-(1 << (S - 1)), signed(S))
        ins = [self.i.payload.data[j] for j in range(L)]
        beat_max = _tree([Mux(mask[j], ins[j], lowest) for j in range(L)], lambda a, b: Mux(b > a, b, a))
        bmax = Signal(signed(S))
        m.d.comb += bmax.eq(beat_max)
        popcount = Signal(range(L + 1))
        m.d.comb += popcount.eq(_tree([mask[j] for j in range(L)], lambda a, b: a + b))

        # EXP: steps 3-6 in every lane of row idx; the row's live e values summed into total.
        e_vals = [self._exp(m, mx, sr.data[j * S : (j + 1) * S].as_signed(), lut, j) for j in range(L)]
        e_sum = Signal(E + 1 + 7)
        m.d.comb += e_sum.eq(_tree([Mux(live[j], e_vals[j], 0) for j in range(L)], lambda a, b: a + b))

        # OUT: step 9 in every lane of the buffered e row idx.
        pmax = (1 << P) - 1
        probs = []
        for j in range(L):
            prod = _shift_round(er.data[j * (E + 1) : (j + 1) * (E + 1)] * rcp, E + R - P)
            p = Signal(P, name=f"p{j}")
            m.d.comb += p.eq(Mux(prod > pmax, pmax, prod))
            probs.append(p)
        m.d.comb += [self.o.payload.data.eq(Cat(*probs)), self.o.payload.mask.eq(Cat(*live))]

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += [self.i.ready.eq(1), sw.addr.eq(rows), sw.data.eq(self.i.payload.data)]
                with m.If(self.i.valid):
                    m.d.comb += sw.en.eq(1)
                    m.d.sync += [count.eq(count + popcount), rows.eq(rows + 1)]
                    with m.If((count == 0) | (bmax > mx)):
                        m.d.sync += mx.eq(bmax)
                    with m.If(self.i.payload.last):
                        m.d.sync += [idx.eq(0), base.eq(0), total.eq(0)]
                        m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += [ew.addr.eq(idx), ew.data.eq(Cat(*e_vals)), ew.en.eq(1)]
                m.d.sync += [total.eq(total + e_sum), idx.eq(idx + 1), base.eq(base + L)]
                with m.If(last_row):
                    m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += [rcp.eq(Const(1 << (E + R), E + R + 1) // total), idx.eq(0), base.eq(0)]
                m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.last.eq(last_row)]
                with m.If(self.o.ready):
                    m.d.sync += [idx.eq(idx + 1), base.eq(base + L)]
                    with m.If(last_row):
                        m.d.sync += [count.eq(0), rows.eq(0)]
                        m.next = "LOAD"
        return m
