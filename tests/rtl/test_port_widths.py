"""Every RTL block's ports have the widths its docstring states, worked out by hand for odd parameters.

The benches drive and read handshake bits as bit 0 and payloads as integers, so a port one bit too wide
(or a payload field mis-sized where the extra bits stay zero) passes them; this table does not. The
parameters are chosen so that no two formulas give the same number by accident (D = 20 is not a power
of two, max_n = 300 is not a power of two, every width differs).
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Shape, unsigned
from amaranth.lib import data
from spatten.models.softmax import DEFAULT_SPEC
from spatten.rtl.attention_core import AttentionCore
from spatten.rtl.qk import QKUnit
from spatten.rtl.requant import RequantDecision
from spatten.rtl.softmax import Softmax
from spatten.rtl.topk import TopKEngine
from spatten.rtl.value_unit import ValueUnit
from spatten.rtl.zero_eliminator import ZeroEliminator

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def widths(component) -> dict[str, int]:
    """Port name -> width; a stream payload's fields as ``<port>.<field>``."""
    out: dict[str, int] = {}
    for path, member in component.signature.members.flatten():
        if not member.is_port:
            continue
        name = ".".join(str(p) for p in path)
        if path[-1] == "payload" and isinstance(member.shape, data.Layout):
            for field, f in member.shape:
                out[f"{path[0]}.{field}"] = Shape.cast(f.shape).width
        else:
            out[name] = Shape.cast(member.shape).width
    return out


def handshake(*ports: str) -> dict[str, int]:
    return {f"{p}.{s}": 1 for p in ports for s in ("valid", "ready")}


# P = DEFAULT_SPEC.out_bits = 12 and in_bits = 16 below; bit_length(300) = 9, ceil(log2 300) = 9
CASES = {
    "qk": (
        lambda: QKUnit(head_dim=20, k_par=4, q_width=8, k_width=6),
        {
            "query": 20 * 8,
            **handshake("k", "s"), "k.data": 4 * 20 * 6, "k.mask": 4, "k.last": 1,
            # score width = 8 + 6 + ceil(log2 20) = 19
            "s.data": 4 * 19, "s.mask": 4, "s.last": 1,
        },
    ),
    "requant": (
        lambda: RequantDecision(p_width=10, lanes=3),
        {"threshold": 11, **handshake("i", "o"), "i.data": 30, "i.mask": 3, "i.last": 1,
         "o.refetch": 1, "o.max_prob": 10},
    ),
    "softmax-1": (
        lambda: Softmax(DEFAULT_SPEC, max_n=300, lanes=1),
        {**handshake("i", "o", "peak"), "i.data": 16, "i.mask": 1, "i.last": 1,
         "o.data": 12, "o.mask": 1, "o.last": 1, "peak.data": 12, "peak.mask": 1, "peak.last": 1},
    ),
    "softmax-4": (
        lambda: Softmax(DEFAULT_SPEC, max_n=300, lanes=4),
        {**handshake("i", "o", "peak"), "i.data": 64, "i.mask": 4, "i.last": 1,
         "o.data": 48, "o.mask": 4, "o.last": 1, "peak.data": 12, "peak.mask": 1, "peak.last": 1},
    ),
    "value": (
        lambda: ValueUnit(head_dim=20, v_par=2, p_width=10, v_width=5, max_n=300),
        # accumulator: 10 + 1 + 5 + ceil(log2 300) = 25 bits
        {**handshake("i", "o"), "i.prob": 20, "i.value": 2 * 20 * 5, "i.mask": 2, "i.last": 1,
         "o.data": 20 * 25},
    ),
    "zero-eliminator": (
        lambda: ZeroEliminator(unsigned(7), 4),
        {"i_data": 28, "i_keep": 4, "o_data": 28, "o_count": 3},  # o_count 0..4
    ),
    "topk-1": (
        lambda: TopKEngine(score_width=10, max_n=300, parallelism=8),
        {**handshake("i", "k", "o"), "i.score": 10, "i.last": 1, "k.k": 9, "k.seed": 16,
         "o.index": 9, "o.score": 10, "o.last": 1, "o.empty": 1, "searching": 1},
    ),
    "topk-4": (
        lambda: TopKEngine(score_width=10, max_n=300, parallelism=8, in_lanes=4),
        {**handshake("i", "k", "o"), "i.score": 40, "i.mask": 4, "i.last": 1, "k.k": 9, "k.seed": 16,
         "o.index": 9, "o.score": 10, "o.last": 1, "o.empty": 1, "searching": 1},
    ),
    "attention-core": (
        lambda: AttentionCore(
            20, 4, 2, q_bits=8, k_msb_bits=6, lsb_bits=3, v_bits=5, score_shift=8, spec=DEFAULT_SPEC,
            topk_p=8, max_n=300,
        ),
        {
            **handshake("req", "key", "decision", "lsb", "prob", "kept", "value", "out"),
            "req.query": 20 * 8, "req.k": 9, "req.seed": 16, "req.threshold": 13,
            "key.msb": 4 * 20 * 6, "key.mask": 4, "key.last": 1,
            "decision.refetch": 1, "decision.max_prob": 12,
            "lsb.lsb": 4 * 20 * 3, "lsb.mask": 4, "lsb.last": 1,
            # topk_lanes = K_PAR = 4 (K_PAR <= P) probabilities a beat; V_PAR = 2 kept indices a beat
            "prob.data": 4 * 12, "prob.mask": 4, "prob.last": 1,
            "kept.data": 2 * 9, "kept.mask": 2, "kept.last": 1,
            "value.value": 2 * 20 * 5,
            # accumulator: P + 1 + v_bits + ceil(log2 max_n) = 12 + 1 + 5 + 9 = 27 bits
            "out.data": 20 * 27,
            "score_valid": 1, "score_pass": 1, "score_mask": 4, "score_data": 4 * 16, "phase": 3,
        },
    ),
}  # fmt: skip


@pytest.mark.parametrize("block", list(CASES))
def test_port_widths(block: str) -> None:
    make, want = CASES[block]
    component = make()
    component._MustUse__silence = True  # built for its signature only: no "unused" warning at collection
    assert widths(component) == want


@pytest.mark.parametrize("block", list(CASES))
def test_block_elaborates_without_combinational_cycle(block: str) -> None:
    """Conversion builds the netlist and checks it: a combinational loop is refused here in seconds,
    where the simulator would spin until its time-out."""
    from amaranth.back import rtlil

    make, _ = CASES[block]
    rtlil.convert(make(), name=block.replace("-", "_"), emit_src=False)
