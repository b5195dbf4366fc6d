"""Softmax: the fixed-point softmax of ``models.softmax.softmax_fixed``, one element per cycle per pass.

Passes (the numbered steps of ``models/softmax.py``): LOAD buffers the row and tracks the max (step 1);
EXP computes e_j (steps 3-6), buffers it and accumulates the sum (step 7); DIV forms the one reciprocal
of the row (step 8); OUT multiplies and rounds (step 9). No floating point anywhere.
"""

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.softmax import DEFAULT_SPEC, SoftmaxSpec, exp_table, log2e_constant

__all__ = ["Softmax"]


def _shift_round(x, s: int):
    """Round-half-up right shift by a constant, as ``models.fixed.shift_round``."""
    return x if s == 0 else (x + (1 << (s - 1))) >> s


class Softmax(wiring.Component):
    """Streaming fixed-point softmax of one row of up to ``max_n`` scores.

    Parameters
    ----------
    spec : models.softmax.SoftmaxSpec
        Integer widths; the RTL is exactly the model for this spec.
    max_n : int
        Longest row, 1..65536 (depth of the two row buffers).

    Ports
    -----
    i_valid, i_ready, i_last : score stream handshake; ``i_last`` ends a row.
    i_score : In(signed(in_bits)), score codes with ``frac_bits`` fraction bits.
    o_valid, o_ready, o_last : probability stream handshake, same row length and order as the input.
    o_prob : Out(out_bits), unsigned probability codes.
    """

    def __init__(self, spec: SoftmaxSpec = DEFAULT_SPEC, max_n: int = 1024):
        if not isinstance(spec, SoftmaxSpec):
            raise TypeError(f"spec must be a SoftmaxSpec, got {type(spec).__name__}")
        if isinstance(max_n, bool) or not isinstance(max_n, int) or not 1 <= max_n <= 65536:
            raise ValueError(f"max_n = {max_n!r} is outside the allowed range 1..65536")
        if spec.frac_bits + spec.const_bits < spec.lut_bits + spec.interp_bits:
            raise ValueError("spec: frac_bits + const_bits must be >= lut_bits + interp_bits")
        self.spec, self.max_n = spec, max_n
        super().__init__(
            {
                "i_valid": In(1),
                "i_ready": Out(1),
                "i_last": In(1),
                "i_score": In(signed(spec.in_bits)),
                "o_valid": Out(1),
                "o_ready": In(1),
                "o_last": Out(1),
                "o_prob": Out(spec.out_bits),
            }
        )

    def elaborate(self, platform):
        m = Module()
        sp = self.spec
        S, F, C, T, I, E, R, P = (  # noqa: N806, E741 - the model's names
            sp.in_bits, sp.frac_bits, sp.const_bits, sp.lut_bits, sp.interp_bits, sp.exp_bits,
            sp.recip_bits, sp.out_bits,
        )  # fmt: skip
        W = T + I  # noqa: N806
        aw = max(1, (self.max_n - 1).bit_length())
        m.submodules.smem = smem = Memory(shape=signed(S), depth=self.max_n, init=[])
        m.submodules.emem = emem = Memory(shape=E + 1, depth=self.max_n, init=[])
        sw, sr = smem.write_port(), smem.read_port(domain="comb")
        ew, er = emem.write_port(), emem.read_port(domain="comb")

        count = Signal(aw + 1)
        idx = Signal(aw + 1)
        mx = Signal(signed(S))
        total = Signal(E + 1 + aw + 1)
        rcp = Signal(E + R + 1)
        lut = Array(Const(int(v), E + 1) for v in exp_table(sp))

        # Steps 3-6 on the buffered score at idx.
        m.d.comb += [sr.addr.eq(idx), er.addr.eq(idx)]
        d = Signal(S + 1)
        m.d.comb += d.eq(mx - sr.data)
        y = Signal(S + 1 + C + 3)
        m.d.comb += y.eq(_shift_round(d * log2e_constant(sp), F + C - W))
        n_int = y >> W
        i_tab = Signal(T)
        r_w = Signal(max(1, I))
        m.d.comb += [i_tab.eq(y[I:W]), r_w.eq(y[:I] if I else 0)]
        g = Signal(E + 2)
        if I:
            lo, hi = lut[i_tab], lut[i_tab + 1]
            m.d.comb += g.eq(lo - _shift_round((lo - hi) * r_w, I))
        else:
            m.d.comb += g.eq(lut[i_tab])
        nsat = Signal(range(E + 3))
        m.d.comb += nsat.eq(Mux(n_int > E + 2, E + 2, n_int))
        e_val = Signal(E + 1)
        m.d.comb += e_val.eq((g + ((Const(1, E + 4) << nsat) >> 1)) >> nsat)

        # Step 9 on the buffered e at idx.
        prod = _shift_round(er.data * rcp, E + R - P)
        pmax = (1 << P) - 1
        m.d.comb += self.o_prob.eq(Mux(prod > pmax, pmax, prod))

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += [self.i_ready.eq(1), sw.addr.eq(count), sw.data.eq(self.i_score)]
                with m.If(self.i_valid):
                    m.d.comb += sw.en.eq(1)
                    m.d.sync += count.eq(count + 1)
                    with m.If((count == 0) | (self.i_score > mx)):
                        m.d.sync += mx.eq(self.i_score)
                    with m.If(self.i_last):
                        m.d.sync += [idx.eq(0), total.eq(0)]
                        m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += [ew.addr.eq(idx), ew.data.eq(e_val), ew.en.eq(1)]
                m.d.sync += [total.eq(total + e_val), idx.eq(idx + 1)]
                with m.If(idx == count - 1):
                    m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += [rcp.eq(Const(1 << (E + R), E + R + 1) // total), idx.eq(0)]
                m.next = "OUT"
            with m.State("OUT"):
                m.d.comb += [self.o_valid.eq(1), self.o_last.eq(idx == count - 1)]
                with m.If(self.o_ready):
                    m.d.sync += idx.eq(idx + 1)
                    with m.If(idx == count - 1):
                        m.d.sync += count.eq(0)
                        m.next = "LOAD"
        return m
