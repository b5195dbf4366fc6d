"""QKUnit: K_PAR dot products of one query with streamed key rows per cycle.

Twin: ``models.qk.qk_scores`` (values) and ``models.qk.qk_latency`` (pipeline depth).
"""

import math

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from spatten.rtl.layouts import lane_beat
from spatten.rtl.params import check_int, rejected_quietly

__all__ = ["QKUnit", "key_layout", "score_layout", "score_width"]


def tree_levels(head_dim: int) -> int:
    """Register levels of the adder tree over ``head_dim`` products: ``ceil(log2(head_dim))``."""
    return math.ceil(math.log2(head_dim)) if head_dim > 1 else 0


def score_width(head_dim: int, q_width: int, k_width: int) -> int:
    """Bits of one score: the product width plus one per adder-tree level."""
    return q_width + k_width + tree_levels(head_dim)


def key_layout(head_dim: int, k_par: int, k_width: int) -> data.StructLayout:
    """Key beats: ``k_par`` lanes of ``head_dim`` signed codes (key j element i at ``data[j][i]``)."""
    return lane_beat(data.ArrayLayout(signed(k_width), head_dim), k_par)


def score_layout(k_par: int, width: int) -> data.StructLayout:
    """Score beats: ``k_par`` signed scores of ``width`` bits."""
    return lane_beat(signed(width), k_par)


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
    query : In, ``ArrayLayout(signed(q_width), head_dim)`` (``head_dim * q_width`` bits)
        The query codes, element i at bits [i*q_width, (i+1)*q_width); held for a request.
    k : In, stream of ``key_layout(head_dim, k_par, k_width)`` (``k_par * head_dim * k_width + k_par + 1``
        bits)
        ``data[j][i]`` key j's element i (signed); ``mask`` lane j holds a real key (only a request's last
        beat may be partial); ``last`` the request's last beat.
    s : Out, stream of ``score_layout(k_par, score_width)`` (``k_par * score_width + k_par + 1`` bits)
        ``data[j]`` key j's signed score, ``score_width = q_width + k_width + ceil(log2(head_dim))``;
        ``mask`` and ``last`` as on the key beat it came from.

    The whole pipeline advances when ``s.ready`` or when the output register is empty, so with ready
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
        self.levels = tree_levels(head_dim)
        self.score_width = score_width(head_dim, q_width, k_width)
        super().__init__(
            {
                "query": In(data.ArrayLayout(signed(q_width), head_dim)),
                "k": In(stream.Signature(key_layout(head_dim, k_par, k_width))),
                "s": Out(stream.Signature(score_layout(k_par, self.score_width))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        hd, kp, qw, kw = self.head_dim, self.k_par, self.q_width, self.k_width
        advance = Signal()
        m.d.comb += advance.eq(self.s.ready | ~self.s.valid)
        m.d.comb += self.k.ready.eq(advance)

        q = self.query
        # Stage 0: multiplier registers, one per (key lane, element).
        valid = Signal(name="v0")
        last = Signal(name="l0")
        mask = Signal(kp, name="m0")
        level = []
        for j in range(kp):
            row = []
            for i in range(hd):
                p = Signal(signed(qw + kw), name=f"p_{j}_{i}")
                with m.If(advance):
                    m.d.sync += p.eq(q[i] * self.k.payload.data[j][i])
                row.append(p)
            level.append(row)
        with m.If(advance):
            m.d.sync += [valid.eq(self.k.valid), last.eq(self.k.payload.last), mask.eq(self.k.payload.mask)]
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
        m.d.comb += [self.s.valid.eq(valid), self.s.payload.last.eq(last), self.s.payload.mask.eq(mask)]
        for j in range(kp):
            m.d.comb += self.s.payload.data[j].eq(level[j][0])
        return m
