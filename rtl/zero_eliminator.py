"""Zero eliminator: compacts the kept lanes of a P-lane vector to the front, in log2(P) shift stages.

Golden twin: :mod:`models.zero_eliminator`.
"""

from amaranth import Const, Module, Shape, ShapeCastable, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from spatten.rtl.params import check_power_of_two, rejected_quietly

__all__ = ["ZeroEliminator"]


class ZeroEliminator(wiring.Component):
    """Combinational stream compactor: kept lanes move to the front in order; a count says how many.

    Each kept lane ``i`` moves left by ``z_i``, the number of dropped lanes before it (a prefix sum).
    Stage ``s`` (``s = 0 .. log2(P) - 1``) moves every element whose ``z`` has bit ``s`` set by ``2**s``
    lanes; LSB-first shifting never lands two elements on one lane. Output lanes at and beyond
    ``o_count`` hold zero.

    Parameters
    ----------
    shape : amaranth shape
        Shape of one lane's value.
    lanes : int
        P, a power of two in 1..32.

    Ports
    -----
    i_data : In, ``ArrayLayout(shape, P)``
        Lane values.
    i_keep : In, P bits
        Bit ``i`` set: lane ``i`` is kept.
    o_data : Out, ``ArrayLayout(shape, P)``
        Kept values in lanes ``0 .. o_count - 1``, in input lane order; zero elsewhere.
    o_count : Out, ``range(P + 1)``
        Number of kept lanes.
    """

    def __init__(self, shape: object, lanes: int) -> None:
        with rejected_quietly(self):  # every parameter is checked before any signature is built
            if not isinstance(shape, ShapeCastable | Shape | int):
                raise TypeError(f"shape must be an Amaranth shape, got {shape!r}")
            self._lanes = check_power_of_two("lanes", lanes, 32)
        self._shape = shape
        super().__init__(
            {
                "i_data": In(data.ArrayLayout(shape, lanes)),
                "i_keep": In(lanes),
                "o_data": Out(data.ArrayLayout(shape, lanes)),
                "o_count": Out(range(lanes + 1)),
            }
        )

    @property
    def lanes(self) -> int:
        """P."""
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        p = self._lanes
        zw = Shape.cast(range(p + 1)).width
        width = Shape.cast(self._shape).width

        # Prefix sum of dropped lanes: z[i] = number of dropped lanes before i.
        z = [Signal(zw, name=f"z{i}") for i in range(p)]
        for i in range(1, p):
            m.d.comb += z[i].eq(z[i - 1] + ~self.i_keep[i - 1])
        m.d.comb += z[0].eq(0)

        # Lane contents through the network: (valid, zeros-before, raw value bits).
        valid = [self.i_keep[i] for i in range(p)]
        zs = list(z)
        vals = [Value.cast(self.i_data[i]) for i in range(p)]
        stage = 0
        while (1 << stage) < p:
            d = 1 << stage
            n_valid, n_z, n_vals = [], [], []
            for pos in range(p):
                stay = Signal(name=f"s{stage}_stay{pos}")
                m.d.comb += stay.eq(valid[pos] & ~zs[pos][stage])
                if pos + d < p:
                    come = Signal(name=f"s{stage}_come{pos}")
                    m.d.comb += come.eq(valid[pos + d] & zs[pos + d][stage])
                else:
                    come = Const(0, 1)
                v = Signal(name=f"s{stage}_v{pos}")
                zz = Signal(zw, name=f"s{stage}_z{pos}")
                x = Signal(width, name=f"s{stage}_x{pos}")
                m.d.comb += v.eq(stay | come)
                if pos + d < p:
                    with m.If(come):
                        m.d.comb += [zz.eq(zs[pos + d]), x.eq(vals[pos + d])]
                    with m.Elif(stay):
                        m.d.comb += [zz.eq(zs[pos]), x.eq(vals[pos])]
                else:
                    with m.If(stay):
                        m.d.comb += [zz.eq(zs[pos]), x.eq(vals[pos])]
                n_valid.append(v)
                n_z.append(zz)
                n_vals.append(x)
            valid, zs, vals = n_valid, n_z, n_vals
            stage += 1

        for i in range(p):
            lane_out = vals[i] if p > 1 else vals[i] & valid[i].replicate(width)
            m.d.comb += Value.cast(self.o_data[i]).eq(lane_out)
        m.d.comb += self.o_count.eq(sum(self.i_keep[i] for i in range(p)) if p > 1 else self.i_keep)
        return m
