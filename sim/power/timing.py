"""Critical-path estimate of an RTL block: Yosys logic depth on generic gates, turned into a delay.

The block is synthesized as for the area cross-check (:mod:`sim.power.synth`: ``synth -flatten`` to
Yosys's generic cells, memories as flip-flops and multiplexers), then ``ltp -noff`` finds the longest
topological path between flip-flops and ports, counted in cells. That count becomes a delay with three
stated figures:

- **FO4 delay** = 0.36 ns per um of drawn gate length (the rule of thumb of Ho, Mai and Horowitz, "The
  future of wires", Proc. IEEE 89(4), 2001), so 14.4 ps at 40 nm.
- **One generic cell = 1.5 FO4** (:data:`LEVEL_FO4`). A generic cell is a 2-input AND/OR/XOR/MUX or an
  AOI/OAI; by logical effort a NAND2 or NOR2 with fan-out 4 is about 1.3-1.7 FO4 and an XOR2 or MUX2
  2 or more, an inverter 1. The figure is a middle value; ``level_fo4`` takes another.
- **Flip-flop overhead = 3 FO4** per cycle (:data:`FLOP_OVERHEAD_FO4`): latch overhead 1.8 FO4 plus clock
  skew and jitter about 1 FO4 (Hrishikesh et al., "The optimal logic depth per pipeline stage is 6 to 8
  FO4 inverter delays", ISCA 2002).

So at 40 nm and 1 GHz a path fits in (1000 / 14.4 - 3) / 1.5 = 44 cell levels. The estimate is a
pessimistic one for arithmetic: Yosys's generic flow builds ripple-carry adders and array multipliers,
where a timing-driven synthesis would pick carry-lookahead or Booth/Wallace structures. ``fast_adders``
asks Yosys for those (``synth -booth -extra-map +/choices/kogge-stone.v``: Booth multipliers, Kogge-Stone
carry chains; ABC then maps for area, so the gain is partial: a registered 32-bit add goes from 62 to 42
levels, the Q.K unit from 49 to 35), at a much longer synthesis (a divider takes more than ten minutes).
It has no wires and no placement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FLOP_OVERHEAD_FO4", "LEVEL_FO4", "TimingResult", "critical_path", "fo4_ps"]

FO4_PS_PER_UM = 360.0
"""FO4 inverter delay per um of drawn gate length (Ho, Mai, Horowitz 2001)."""
LEVEL_FO4 = 1.5
"""Delay of one Yosys generic cell, in FO4 (logical-effort middle value, see the module docstring)."""
FLOP_OVERHEAD_FO4 = 3.0
"""Per-cycle register overhead in FO4: 1.8 latch overhead + about 1 skew and jitter (Hrishikesh 2002)."""

_LTP = re.compile(r"Longest topological path in \S+ \(length=(\d+)\):\n((?:\s+\d+: .*\n?)*)")
_NODE = re.compile(r"^\s+\d+: (\S+)")


def fo4_ps(tech_nm: float) -> float:
    """FO4 delay in ps at a node (drawn gate length ``tech_nm``)."""
    return FO4_PS_PER_UM * tech_nm / 1000.0


@dataclass(frozen=True)
class TimingResult:
    """Longest register-to-register (or port) path of a block and what it means for the clock.

    Attributes
    ----------
    name : str
        Top module name.
    levels : int
        Generic cells on the longest path (``ltp -noff``).
    start : str
        The path's first named net (a register or a port; ``ltp`` lists nets, and the ones after the start
        are synthesis-made, so the end register is not named).
    tech_nm, clock_ghz, level_fo4 : float
        The node, the target clock and the delay of one cell in FO4.
    """

    name: str
    levels: int
    start: str
    tech_nm: float
    clock_ghz: float
    level_fo4: float = LEVEL_FO4

    @property
    def delay_ps(self) -> float:
        """Path delay: levels x level delay + register overhead."""
        return (self.levels * self.level_fo4 + FLOP_OVERHEAD_FO4) * fo4_ps(self.tech_nm)

    @property
    def period_ps(self) -> float:
        """The target clock period."""
        return 1000.0 / self.clock_ghz

    @property
    def slack_ps(self) -> float:
        """Period minus delay; negative when the path does not fit."""
        return self.period_ps - self.delay_ps

    @property
    def max_levels(self) -> int:
        """Most cell levels that fit in the period."""
        return int((self.period_ps / fo4_ps(self.tech_nm) - FLOP_OVERHEAD_FO4) // self.level_fo4)

    @property
    def fmax_ghz(self) -> float:
        """Highest clock this path allows."""
        return 1000.0 / self.delay_ps

    @property
    def meets(self) -> bool:
        return self.slack_ps >= 0


def parse_ltp(text: str) -> tuple[int, str]:
    """Levels and the first named net of the path in Yosys ``ltp`` output.

    Raises
    ------
    ValueError
        No ``Longest topological path`` report in ``text``.
    """
    m = _LTP.search(text)
    if m is None:
        raise ValueError("no 'Longest topological path' report in the Yosys output")
    nodes = [n.group(1) for line in m.group(2).splitlines() if (n := _NODE.match(line))]
    named = [n.lstrip("\\") for n in nodes if not n.startswith("$")]  # "$...": made by synthesis
    start = named[0] if named else (nodes[0] if nodes else "?")
    return int(m.group(1)), start


def critical_path(
    component,
    name: str,
    tech_nm: float = 40,
    clock_ghz: float = 1.0,
    level_fo4: float = LEVEL_FO4,
    fast_adders: bool = False,
) -> TimingResult:
    """Synthesize ``component`` to generic cells and measure its longest combinational path.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The block.
    name : str
        Top module name.
    tech_nm : float
        Node for the FO4 delay (22..90).
    clock_ghz : float
        Target clock.
    level_fo4 : float
        Delay of one generic cell in FO4.
    fast_adders : bool
        Booth multipliers and Kogge-Stone carry chains instead of array multipliers and ripple carry.

    Returns
    -------
    TimingResult

    Raises
    ------
    RuntimeError
        Yosys failed (message carries its last lines).
    """
    from spatten.sim.power.components import check_tech_nm
    from spatten.sim.power.synth import synth_report

    check_tech_nm(int(tech_nm))
    arith = "-booth -extra-map +/choices/kogge-stone.v" if fast_adders else ""
    levels, start = parse_ltp(synth_report(component, name, "ltp -noff", arith))
    return TimingResult(name, levels, start, tech_nm, clock_ghz, level_fo4)


def core_blocks(max_n: int = 64) -> dict[str, tuple[str, object]]:
    """The attention core's blocks at the core's default parameters: name -> (parameters, factory).

    D = 64, K_PAR = V_PAR = 8, 8-bit queries and values, 8 + 4-bit keys, P = 12-bit probabilities, top-k
    P = 16 taking 8 scores a beat; the Q.K unit with one key lane (its K_PAR lanes are copies side by
    side, so the depth is the same) and the whole core at D = 16, K_PAR = V_PAR = 4 (to keep the
    synthesis to about a minute). ``max_n`` sizes the register files (the top-k's buffers, the softmax's
    score memory, the core's key and probability buffers); 1,024 adds about log2(1024 / 64) = 4 levels
    of read multiplexers to the paths through them and takes many minutes to synthesize.
    """
    from spatten.models.attention import softmax_spec
    from spatten.rtl.attention_core import AttentionCore
    from spatten.rtl.qk import QKUnit
    from spatten.rtl.requant import RequantDecision
    from spatten.rtl.softmax import Softmax
    from spatten.rtl.topk import TopKEngine
    from spatten.rtl.value_unit import ValueUnit
    from spatten.rtl.zero_eliminator import ZeroEliminator

    spec = softmax_spec(64)
    p = spec.out_bits
    return {
        "qk_unit": ("D=64 K_PAR=1 q 8 b, k 12 b", lambda: QKUnit(64, 1, 8, 12)),
        "softmax": (f"lanes=8 max_n={max_n}", lambda: Softmax(spec, max_n=max_n, lanes=8)),
        "requant": (f"p {p} b, lanes=8", lambda: RequantDecision(p, 8)),
        "zero_eliminator": ("17 b x 16 lanes", lambda: ZeroEliminator(17, 16)),
        "topk": (
            f"W=16 P=16 in_lanes=8 out_lanes=8 max_n={max_n}",
            lambda: TopKEngine(16, max_n, 16, in_lanes=8, out_lanes=8),
        ),
        "value_unit": (f"D=64 V_PAR=8 p {p} b, v 8 b", lambda: ValueUnit(64, 8, p, 8, 1024)),
        "attention_core": (
            f"D=16 K_PAR=V_PAR=4 max_n={max_n}",
            lambda: AttentionCore(16, 4, 4, score_shift=8, topk_p=16, max_n=max_n),
        ),
    }
