"""RequantDecision: running maximum of a row's probabilities against the refetch threshold.

Twin: ``models.requant.refetch_decision`` (same compare as ``models.quant.pq_decide``).
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from spatten.rtl.params import check_int, rejected_quietly

__all__ = ["RequantDecision"]


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
    threshold : In(p_width + 1), threshold code (``models.quant.threshold_code``), runtime input.
    i_valid, i_last : a beat of probabilities (this block never stalls its input); ``i_last`` ends a row.
    i_prob : In(lanes * p_width), packed unsigned probability codes, lane j at bits [j*p_width, ...).
    i_mask : In(lanes), lanes holding real probabilities.
    o_valid : Out(1), one-cycle pulse the cycle after the row's last beat.
    o_refetch : Out(1), row maximum < threshold (valid with ``o_valid``).
    o_max : Out(p_width), the row maximum (valid with ``o_valid``).
    """

    def __init__(self, p_width: int = 12, lanes: int = 8):
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            for name, v, lo, hi in (("p_width", p_width, 2, 32), ("lanes", lanes, 1, 64)):
                check_int(name, v, lo, hi)
        self.p_width, self.lanes = p_width, lanes
        super().__init__(
            {
                "threshold": In(p_width + 1),
                "i_valid": In(1),
                "i_last": In(1),
                "i_prob": In(lanes * p_width),
                "i_mask": In(lanes),
                "o_valid": Out(1),
                "o_refetch": Out(1),
                "o_max": Out(p_width),
            }
        )

    def elaborate(self, platform):
        m = Module()
        pw = self.p_width
        running = Signal(pw)  # max of the beats before this one in the current row
        best = running
        for j in range(self.lanes):
            p = self.i_prob[j * pw : (j + 1) * pw]
            cand = Mux(self.i_mask[j] & (p > best), p, best)
            nxt = Signal(pw, name=f"max_{j}")
            m.d.comb += nxt.eq(cand)
            best = nxt
        m.d.sync += self.o_valid.eq(0)
        with m.If(self.i_valid):
            with m.If(self.i_last):
                m.d.sync += [
                    running.eq(0),
                    self.o_valid.eq(1),
                    self.o_max.eq(best),
                    self.o_refetch.eq(best < self.threshold),
                ]
            with m.Else():
                m.d.sync += running.eq(best)
        return m
