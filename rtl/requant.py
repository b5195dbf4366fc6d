"""RequantDecision: running maximum of a row's probabilities against the refetch threshold.

Twin: ``models.requant.refetch_decision`` (same compare as ``models.quant.pq_decide``).
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from spatten.rtl.layouts import lane_beat
from spatten.rtl.params import check_int, rejected_quietly

__all__ = ["RequantDecision", "decision_layout"]


def decision_layout(p_width: int) -> data.StructLayout:
    """A row's decision: ``refetch`` (1 bit) then ``max_prob``, the row maximum (``p_width`` bits)."""
    return data.StructLayout({"refetch": 1, "max_prob": p_width})


class RequantDecision(wiring.Component):
    """Watch ``lanes`` probabilities per cycle; at the row's end say whether to refetch the key LSBs.

    Parameters
    ----------
    p_width : int
        Unsigned probability code width, 2..32.
    lanes : int
        Probabilities per input beat, 1..64.

    Ports
    -----
    threshold : In(p_width + 1)
        Threshold code (``models.quant.threshold_code``), runtime input.
    i : In, stream of ``lane_beat(unsigned(p_width), lanes)`` (``lanes * p_width + lanes + 1`` bits)
        ``data[j]`` lane j's unsigned probability code, ``mask`` the lanes holding one, ``last`` the row's
        last beat. The block never stalls its input: ``ready`` is always 1.
    o : Out, stream of ``decision_layout(p_width)`` (``1 + p_width`` bits)
        One beat per row, valid from the cycle after the row's last beat until taken; ``refetch`` = row
        maximum < threshold; ``max_prob`` the row maximum. (A consumer with ``ready`` held high sees a
        one-cycle pulse; one that waits longer than a row takes the latest row's decision.)
    """

    def __init__(self, p_width: int = 12, lanes: int = 8):
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            for name, v, lo, hi in (("p_width", p_width, 2, 32), ("lanes", lanes, 1, 64)):
                check_int(name, v, lo, hi)
        self.p_width, self.lanes = p_width, lanes
        super().__init__(
            {
                "threshold": In(p_width + 1),
                # not always_ready: a constant ready cannot be a top-level port (timing, area runs)
                "i": In(stream.Signature(lane_beat(unsigned(p_width), lanes))),
                "o": Out(stream.Signature(decision_layout(p_width))),
            }
        )

    def elaborate(self, platform):
        m = Module()
        pw = self.p_width
        running = Signal(pw)  # max of the beats before this one in the current row
        best = running
        beat = self.i.payload
        for j in range(self.lanes):
            p = beat.data[j]
            cand = Mux(beat.mask[j] & (p > best), p, best)
            nxt = Signal(pw, name=f"max_{j}")
            m.d.comb += nxt.eq(cand)
            best = nxt
        m.d.comb += self.i.ready.eq(1)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid):
            with m.If(beat.last):
                m.d.sync += [
                    running.eq(0),
                    self.o.valid.eq(1),
                    self.o.payload.max_prob.eq(best),
                    self.o.payload.refetch.eq(best < self.threshold),
                ]
            with m.Else():
                m.d.sync += running.eq(best)
        return m
