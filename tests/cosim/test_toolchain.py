"""Smoke test: an Amaranth block, converted to Verilog, built by Verilator and driven by cocotb."""

import os
import shutil
from pathlib import Path

import pytest
from amaranth import Module, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from spatten.testbench.runner import run_cocotb

pytestmark = pytest.mark.cosim


class PlusOne(wiring.Component):
    """Stream block returning each 8-bit payload plus one (mod 256)."""

    i: In(stream.Signature(unsigned(8)))
    o: Out(stream.Signature(unsigned(8)))

    def elaborate(self, platform):
        m = Module()
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(self.i.payload + 1)]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m


BUILD = Path(__file__).resolve().parents[2] / "build" / "cosim" / "toolchain"


def test_toolchain_builds_and_runs():
    build = BUILD
    res = run_cocotb(PlusOne(), "plus_one", "tests.cosim.cocotb_plus_one", build, extra_env={"N": "200"})
    assert res.ok, res.report()
    assert res.passed == 1
    assert os.path.exists(build / "plus_one.v")


def test_failing_case_reports_and_keeps_waves():
    """A failing bench returns (no SystemExit under pytest) with its message and a VCD of the re-run."""
    build = BUILD  # the same model as the passing case: only the test's expectation differs
    shutil.rmtree(build.with_name(build.name + "_waves"), ignore_errors=True)
    res = run_cocotb(
        PlusOne(), "plus_one", "tests.cosim.cocotb_plus_one", build, extra_env={"N": "50", "PLUS": "2"},
        waves_on_failure=True,
    )  # fmt: skip
    assert not res.ok and res.failed == 1
    # the first output is input + 1, the test expects input + 2: element 0 differs, all 50 do
    assert len(res.failures) == 1 and "element 0: got" in res.failures[0]
    assert "(50 of 50 differ)" in res.failures[0]
    assert res.waves is not None and res.waves.stat().st_size > 0
    assert "element 0: got" in res.report() and str(res.waves) in res.report()
