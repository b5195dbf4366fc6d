"""ValueUnit: prob.V accumulation, V_PAR kept value rows per cycle into head-dim accumulators.

Twin: ``models.value_unit.prob_v``.
"""

import math

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from spatten.rtl.params import check_int, rejected_quietly

__all__ = ["ValueUnit"]


class ValueUnit(wiring.Component):
    """Multiply ``v_par`` value rows by their probabilities and accumulate into ``head_dim`` registers.

    Parameters
    ----------
    head_dim : int
        Elements per value row, 1..1024.
    v_par : int
        Value rows accepted per cycle, 1..64.
    p_width : int
        Unsigned probability code width, 2..32.
    v_width : int
        Signed value code width, 2..32.
    max_n : int
        Largest number of rows per request (sizes the accumulators), 1..65536.

    Ports
    -----
    i_valid, i_ready, i_last : input handshake; ``i_last`` marks the request's last beat.
    i_prob : In(v_par * p_width), packed unsigned probabilities, lane j at bits [j*p_width, ...).
    i_value : In(v_par * head_dim * v_width), packed signed values, lane j element e at j*head_dim+e.
    i_mask : In(v_par), lane j holds a kept row (masked lanes add nothing; an all-zero beat is allowed).
    o_valid, o_ready : output handshake, one beat per request.
    o_data : Out(head_dim * acc_width), packed signed accumulators,
        ``acc_width = p_width + 1 + v_width + ceil(log2(max_n))``.

    Accumulation happens on each accepted beat; after the last beat the sums are held on ``o_data``
    until accepted. Input is not accepted while a result waits.
    """

    def __init__(
        self, head_dim: int = 64, v_par: int = 8, p_width: int = 12, v_width: int = 6, max_n: int = 1024
    ):
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            for name, v, lo, hi in (
                ("head_dim", head_dim, 1, 1024),
                ("v_par", v_par, 1, 64),
                ("p_width", p_width, 2, 32),
                ("v_width", v_width, 2, 32),
                ("max_n", max_n, 1, 65536),
            ):
                check_int(name, v, lo, hi)
        self.head_dim, self.v_par, self.p_width, self.v_width, self.max_n = (
            head_dim,
            v_par,
            p_width,
            v_width,
            max_n,
        )
        self.acc_width = p_width + 1 + v_width + max(1, math.ceil(math.log2(max_n)))
        super().__init__(
            {
                "i_valid": In(1),
                "i_ready": Out(1),
                "i_last": In(1),
                "i_mask": In(v_par),
                "i_prob": In(v_par * p_width),
                "i_value": In(v_par * head_dim * v_width),
                "o_valid": Out(1),
                "o_ready": In(1),
                "o_data": Out(head_dim * self.acc_width),
            }
        )

    def elaborate(self, platform):
        m = Module()
        hd, vp, pw, vw, aw = self.head_dim, self.v_par, self.p_width, self.v_width, self.acc_width
        acc = [Signal(signed(aw), name=f"acc_{e}") for e in range(hd)]
        m.d.comb += self.i_ready.eq(~self.o_valid)
        with m.If(self.o_valid & self.o_ready):
            m.d.sync += self.o_valid.eq(0)
            m.d.sync += [a.eq(0) for a in acc]
        with m.If(self.i_valid & self.i_ready):
            for e in range(hd):
                terms = []
                for j in range(vp):
                    p = self.i_prob[j * pw : (j + 1) * pw].as_unsigned()
                    base = (j * hd + e) * vw
                    v = self.i_value[base : base + vw].as_signed()
                    terms.append(Mux(self.i_mask[j], p * v, 0))
                total = terms[0]
                for t in terms[1:]:
                    total = total + t
                m.d.sync += acc[e].eq(acc[e] + total)
            with m.If(self.i_last):
                m.d.sync += self.o_valid.eq(1)
        for e in range(hd):
            m.d.comb += self.o_data[e * aw : (e + 1) * aw].eq(acc[e])
        return m
