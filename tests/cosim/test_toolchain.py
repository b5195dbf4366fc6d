"""Smoke test: an Amaranth block, converted to Verilog, built by Verilator and driven by cocotb."""

import os

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


def test_toolchain_builds_and_runs(tmp_path_factory):
    build = tmp_path_factory.mktemp("toolchain")
    res = run_cocotb(PlusOne(), "plus_one", "tests.cosim.cocotb_plus_one", build, extra_env={"N": "200"})
    assert res.ok, f"cocotb failures, see {res.results_xml}"
    assert res.passed == 1
    assert os.path.exists(build / "plus_one.v")
