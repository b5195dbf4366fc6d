"""QKUnit: K_PAR dot products of one query with streamed key rows per cycle.

Twin: ``models.qk.qk_scores`` (values) and ``models.qk.qk_latency`` (pipeline depth).
"""

import math

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from spatten.rtl.params import check_int, rejected_quietly

__all__ = ["QKUnit"]


class QKUnit(wiring.Component):
    """Multiplier array and pipelined adder tree computing ``k_par`` query-key dot products per cycle.

    Parameters
    ----------
    head_dim : int
        Elements per query/key row, 1..1024.
    k_par : int
        Keys accepted per cycle, 1..64.
    q_width, k_width : int
        Signed code widths of query and key elements, 2..32.

    Ports
    -----
    query : In(head_dim * q_width)
        Packed signed query codes (element i at bits [i*q_width, (i+1)*q_width)); held for a request.
    k_valid, k_ready, k_last : handshake of the key stream (``k_last`` marks the request's last beat).
    k_data : In(k_par * head_dim * k_width)
        Packed signed key codes, key j element i at index ``j*head_dim + i``.
    k_mask : In(k_par)
        Lane j holds a real key (the last beat of a request may be partial).
    s_valid, s_ready, s_last, s_mask : handshake of the score stream, same beat structure as the input.
    s_data : Out(k_par * score_width)
        Packed signed scores, ``score_width = q_width + k_width + ceil(log2(head_dim))``.

    The whole pipeline advances when ``s_ready`` or when the output register is empty, so with ready
    inputs and outputs it accepts one beat every cycle (no bubbles).
    """

    def __init__(self, head_dim: int = 64, k_par: int = 8, q_width: int = 16, k_width: int = 12):
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            for name, v, lo, hi in (
                ("head_dim", head_dim, 1, 1024),
                ("k_par", k_par, 1, 64),
                ("q_width", q_width, 2, 32),
                ("k_width", k_width, 2, 32),
            ):
                check_int(name, v, lo, hi)
        self.head_dim, self.k_par, self.q_width, self.k_width = head_dim, k_par, q_width, k_width
        self.levels = math.ceil(math.log2(head_dim)) if head_dim > 1 else 0
        self.score_width = q_width + k_width + self.levels
        super().__init__(
            {
                "query": In(head_dim * q_width),
                "k_valid": In(1),
                "k_ready": Out(1),
                "k_last": In(1),
                "k_mask": In(k_par),
                "k_data": In(k_par * head_dim * k_width),
                "s_valid": Out(1),
                "s_ready": In(1),
                "s_last": Out(1),
                "s_mask": Out(k_par),
                "s_data": Out(k_par * self.score_width),
            }
        )

    def elaborate(self, platform):
        m = Module()
        hd, kp, qw, kw = self.head_dim, self.k_par, self.q_width, self.k_width
        sw = self.score_width
        advance = Signal()
        m.d.comb += advance.eq(self.s_ready | ~self.s_valid)
        m.d.comb += self.k_ready.eq(advance)

        q = [self.query[i * qw : (i + 1) * qw].as_signed() for i in range(hd)]
        # Stage 0: multiplier registers, one per (key lane, element).
        valid = Signal(name="v0")
        last = Signal(name="l0")
        mask = Signal(kp, name="m0")
        level = []
        for j in range(kp):
            row = []
            for i in range(hd):
                base = (j * hd + i) * kw
                p = Signal(signed(qw + kw), name=f"p_{j}_{i}")
                with m.If(advance):
                    m.d.sync += p.eq(q[i] * self.k_data[base : base + kw].as_signed())
                row.append(p)
            level.append(row)
        with m.If(advance):
            m.d.sync += [valid.eq(self.k_valid), last.eq(self.k_last), mask.eq(self.k_mask)]
        # Adder tree: one register level per halving; odd leftovers pass through a register.
        width = qw + kw
        for lv in range(self.levels):
            width += 1
            nv, nl, nm = Signal(name=f"v{lv + 1}"), Signal(name=f"l{lv + 1}"), Signal(kp, name=f"m{lv + 1}")
            new_level = []
            for j in range(kp):
                row = level[j]
                out = []
                for a in range(0, len(row), 2):
                    s = Signal(signed(width), name=f"s{lv + 1}_{j}_{a // 2}")
                    rhs = row[a] + row[a + 1] if a + 1 < len(row) else row[a]
                    with m.If(advance):
                        m.d.sync += s.eq(rhs)
                    out.append(s)
                new_level.append(out)
            with m.If(advance):
                m.d.sync += [nv.eq(valid), nl.eq(last), nm.eq(mask)]
            level, valid, last, mask = new_level, nv, nl, nm
        m.d.comb += [self.s_valid.eq(valid), self.s_last.eq(last), self.s_mask.eq(mask)]
        for j in range(kp):
            m.d.comb += self.s_data[j * sw : (j + 1) * sw].eq(level[j][0])
        return m
