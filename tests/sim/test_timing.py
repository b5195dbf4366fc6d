"""Critical-path estimate: the delay arithmetic by hand, the ltp report parser, and Yosys on small blocks
whose depth ordering is known."""

from __future__ import annotations

import json

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from spatten.sim.power.timing import TimingResult, critical_path, fo4_ps, parse_ltp


def test_delay_arithmetic_by_hand() -> None:
    # FO4 at 40 nm = 0.36 ns/um x 0.04 um = 14.4 ps; a cell 1.5 FO4 = 21.6 ps; overhead 3 FO4 = 43.2 ps
    assert fo4_ps(40) == pytest.approx(14.4)
    fits = TimingResult("b", 44, "a", 40, 1.0)
    assert fits.delay_ps == pytest.approx(44 * 21.6 + 43.2)  # 993.6 ps
    assert fits.meets and fits.slack_ps == pytest.approx(6.4)
    late = TimingResult("b", 45, "a", 40, 1.0)
    assert late.delay_ps == pytest.approx(1015.2) and not late.meets
    # (1000 / 14.4 - 3) / 1.5 = 44.3: 44 levels fit a 1 GHz cycle
    assert fits.max_levels == 44
    assert late.fmax_ghz == pytest.approx(1000 / 1015.2)
    # at 2 FO4 a cell, 65 nm: FO4 23.4 ps, (1000 / 23.4 - 3) / 2 = 19.9
    assert TimingResult("b", 1, "a", 65, 1.0, level_fo4=2.0).max_levels == 19


def test_parse_ltp_report() -> None:
    text = (
        "3. Executing LTP pass (find longest path).\n\n"
        "Longest topological path in top (length=3):\n"
        "    0: \\count [3]\n"
        "    1: $abc$1$new_n5 (via $abc$1$auto$7)\n"
        "    2: \\sum (via $abc$1$auto$8)\n"
        "    3: $abc$1$new_n9 (via $abc$1$auto$9)\n"
    )
    assert parse_ltp(text) == (3, "count")
    with pytest.raises(ValueError, match="no 'Longest topological path'"):
        parse_ltp("nothing here")


class _Adder(wiring.Component):
    """Registered a + b of ``width`` bits: a ripple-carry adder after generic synthesis."""

    def __init__(self, width: int) -> None:
        self.width = width
        super().__init__({"a": In(width), "b": In(width), "s": Out(width + 1)})

    def elaborate(self, platform):
        m = Module()
        ra, rb = Signal(self.width, name="ra"), Signal(self.width, name="rb")
        m.d.sync += [ra.eq(self.a), rb.eq(self.b), self.s.eq(ra + rb)]
        return m


class _Wire(wiring.Component):
    """Register to register with nothing between."""

    def __init__(self) -> None:
        super().__init__({"a": In(8), "s": Out(8)})

    def elaborate(self, platform):
        m = Module()
        r = Signal(8)
        m.d.sync += [r.eq(self.a), self.s.eq(r)]
        return m


def test_yosys_depth_orders_blocks() -> None:
    assert critical_path(_Wire(), "wire").levels == 0
    narrow, wide = critical_path(_Adder(4), "add4"), critical_path(_Adder(32), "add32")
    # a carry crosses every bit: the 32-bit adder is several times deeper than the 4-bit one
    assert 0 < narrow.levels and wide.levels > 4 * narrow.levels
    assert wide.start in ("ra", "rb")
    # a Kogge-Stone carry chain is shallower than ripple carry (ABC then maps for area: 62 -> 42 here)
    fast = critical_path(_Adder(32), "add32", fast_adders=True)
    assert 0 < fast.levels < 0.8 * wide.levels


def test_timing_cli_json(capsys) -> None:
    from spatten.cli import main

    assert main(["timing", "--block", "requant", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tech_nm"] == 40 and out["clock_ghz"] == 1.0 and out["fo4_ps"] == pytest.approx(14.4)
    (row,) = out["blocks"]
    assert row["block"] == "requant" and row["levels"] > 0 and row["max_levels"] == 44
    assert row["meets"] == (row["levels"] <= 44)


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--block", "nope"], "--block nope is unknown"),
        (["--clock-ghz", "0"], "--clock-ghz"),
        (["--tech-nm", "7"], "tech"),
        (["--max-n", "0"], "--max-n"),
    ],
)
def test_timing_cli_bad_input(args: list[str], text: str, capsys) -> None:
    from spatten.cli import main

    assert main(["timing", *args]) == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1
