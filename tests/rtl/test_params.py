"""Every RTL block's integer parameters: both ends of each stated range build, one past either end is
refused in one line naming the parameter (the ranges are the ones the constructors' docstrings state)."""

from __future__ import annotations

import pytest
from amaranth.hdl import unsigned
from spatten.models.softmax import DEFAULT_SPEC
from spatten.rtl.attention_core import AttentionCore
from spatten.rtl.params import check_int, check_power_of_two
from spatten.rtl.qk import QKUnit
from spatten.rtl.requant import RequantDecision
from spatten.rtl.softmax import Softmax
from spatten.rtl.topk import TopKEngine
from spatten.rtl.value_unit import ValueUnit
from spatten.rtl.zero_eliminator import ZeroEliminator

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def built(component) -> None:
    """Mark a component built only for its constructor as used (else Amaranth warns when it is collected,
    in whatever test runs then)."""
    component._MustUse__silence = True


# block -> (constructor taking keyword parameters, small base parameters, {parameter: (lo, hi)})
BLOCKS = {
    "qk": (QKUnit, dict(head_dim=4, k_par=2, q_width=4, k_width=4),
           {"head_dim": (1, 1024), "k_par": (1, 64), "q_width": (2, 32), "k_width": (2, 32)}),
    "requant": (RequantDecision, dict(p_width=8, lanes=2), {"p_width": (2, 32), "lanes": (1, 64)}),
    "softmax": (Softmax, dict(spec=DEFAULT_SPEC, max_n=16, lanes=1), {"max_n": (1, 65536), "lanes": (1, 64)}),
    "value": (ValueUnit, dict(head_dim=4, v_par=2, p_width=8, v_width=4, max_n=16),
              {"head_dim": (1, 1024), "v_par": (1, 64), "p_width": (2, 32), "v_width": (2, 32),
               "max_n": (1, 65536)}),
    "topk": (TopKEngine, dict(score_width=8, max_n=16, parallelism=4, in_lanes=1),
             {"score_width": (2, 64), "max_n": (1, 65536), "in_lanes": (1, 4)}),
    "attention-core": (AttentionCore, dict(head_dim=4, k_par=2, v_par=2, max_n=16, topk_p=4),
                       {"head_dim": (1, 1024), "k_par": (1, 64), "v_par": (1, 64), "q_bits": (2, 16),
                        "k_msb_bits": (2, 16), "lsb_bits": (0, 8), "v_bits": (2, 16), "score_shift": (0, 62),
                        "max_n": (1, 65536)}),
}  # fmt: skip

CASES = [(b, name, lo, hi) for b, (_, _, ranges) in BLOCKS.items() for name, (lo, hi) in ranges.items()]


@pytest.mark.parametrize(("block", "name", "lo", "hi"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_range_ends(block: str, name: str, lo: int, hi: int) -> None:
    make, base, _ = BLOCKS[block]
    for v in (lo, hi):
        built(make(**{**base, name: v}))
    for v in (lo - 1, hi + 1):
        with pytest.raises(ValueError, match=f"^{name} = {v} is outside the allowed range {lo}..{hi}$"):
            make(**{**base, name: v})
    with pytest.raises(TypeError, match=f"^{name} must be an integer, got True$"):
        make(**{**base, name: True})


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda v: TopKEngine(8, 64, v), "parallelism"),
        (lambda v: AttentionCore(4, 2, 2, max_n=16, topk_p=v), "topk_p"),
        (lambda v: ZeroEliminator(unsigned(4), v), "lanes"),
    ],
    ids=["topk", "attention-core", "zero-eliminator"],
)
def test_power_of_two_lanes(make, name: str) -> None:
    for v in (1, 2, 32):
        built(make(v))
    for v in (0, 3, 64):
        with pytest.raises(ValueError, match=f"^{name} = {v} must be a power of two in 1..32$"):
            make(v)


def test_check_helpers() -> None:
    assert check_int("x", 3, 3, 3) == 3 and check_power_of_two("p", 16, 16) == 16
    with pytest.raises(TypeError, match="x must be an integer, got 2.0"):
        check_int("x", 2.0, 0, 4)
    with pytest.raises(TypeError, match="p must be an integer, got '4'"):
        check_power_of_two("p", "4", 8)


def test_topk_buffer_depth_at_least_the_rows() -> None:
    built(TopKEngine(8, 64, 4, buffer_depth=16))  # ceil(64 / 4) rows: the least allowed
    with pytest.raises(ValueError, match=r"^buffer_depth = 15 is outside the allowed range 16..65536$"):
        TopKEngine(8, 64, 4, buffer_depth=15)


def test_softmax_spec_integer_bits_cover_the_table() -> None:
    """frac_bits + const_bits >= lut_bits + interp_bits: equality builds, one short is refused."""
    from dataclasses import replace

    edge = replace(DEFAULT_SPEC, lut_bits=6, interp_bits=4, frac_bits=4, const_bits=6)  # 10 >= 10
    built(Softmax(edge, max_n=16))
    with pytest.raises(ValueError, match=r"const_bits = 9 must be >= lut_bits \+ interp_bits = 10"):
        replace(edge, const_bits=5)  # SoftmaxSpec refuses it, so no Softmax can be built from it
