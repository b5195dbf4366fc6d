"""ValueUnit: prob.V accumulation, V_PAR kept value rows per cycle into head-dim accumulators.

Twin: ``models.value_unit.prob_v``.
"""

import math

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from spatten.rtl.params import check_int, rejected_quietly

__all__ = ["ValueUnit", "row_layout", "sum_layout", "acc_width"]


def acc_width(p_width: int, v_width: int, max_n: int) -> int:
    """Accumulator bits: product width, one more for the sign, and ``ceil(log2(max_n))`` of growth."""
    return p_width + 1 + v_width + max(1, math.ceil(math.log2(max_n)))


def row_layout(head_dim: int, v_par: int, p_width: int, v_width: int) -> data.StructLayout:
    """Input beats: ``prob`` (``v_par`` unsigned codes), ``value`` (``v_par`` rows of ``head_dim`` signed
    codes, row j element e at ``value[j][e]``), ``mask`` (``v_par``) and ``last``."""
    return data.StructLayout({
        "prob": data.ArrayLayout(unsigned(p_width), v_par),
        "value": data.ArrayLayout(data.ArrayLayout(signed(v_width), head_dim), v_par),
        "mask": v_par,
        "last": 1,
    })  # fmt: skip


def sum_layout(head_dim: int, width: int) -> data.StructLayout:
    """Output beats: ``data``, ``head_dim`` signed sums of ``width`` bits (element e at ``data[e]``)."""
    return data.StructLayout({"data": data.ArrayLayout(signed(width), head_dim)})


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
    i : In, stream of ``row_layout(head_dim, v_par, p_width, v_width)`` (``v_par * (p_width + head_dim *
        v_width) + v_par + 1`` bits)
        ``prob[j]`` lane j's unsigned probability, ``value[j][e]`` its row's signed element e, ``mask``
        lane j holds a kept row (masked lanes add nothing; an all-zero beat is allowed), ``last`` the
        request's last beat.
    o : Out, stream of ``sum_layout(head_dim, acc_width)`` (``head_dim * acc_width`` bits), one beat per
        request
        ``data[e]`` the signed sum of element e, ``acc_width = p_width + 1 + v_width + ceil(log2(max_n))``.

    Accumulation happens on each accepted beat; after the last beat the sums are held on ``o.payload.data``
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
        self.acc_width = acc_width(p_width, v_width, max_n)
        super().__init__(
            {
                "i": In(stream.Signature(row_layout(head_dim, v_par, p_width, v_width))),
                "o": Out(stream.Signature(sum_layout(head_dim, self.acc_width))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        hd, vp, aw = self.head_dim, self.v_par, self.acc_width
        acc = [Signal(signed(aw), name=f"acc_{e}") for e in range(hd)]
        beat = self.i.payload
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
            m.d.sync += [a.eq(0) for a in acc]
        with m.If(self.i.valid & self.i.ready):
            for e in range(hd):
                terms = [Mux(beat.mask[j], beat.prob[j] * beat.value[j][e], 0) for j in range(vp)]
                total = terms[0]
                for t in terms[1:]:
                    total = total + t
                m.d.sync += acc[e].eq(acc[e] + total)
            with m.If(beat.last):
                m.d.sync += self.o.valid.eq(1)
        for e in range(hd):
            m.d.comb += self.o.payload.data[e].eq(acc[e])
        return m
