"""Softmax RTL under Verilator + cocotb against models.softmax (one build, row lengths at run time)."""

import pytest

from models.softmax import DEFAULT_SPEC
from rtl.softmax import Softmax
from testbench.runner import run_cocotb

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize(
    ("ns", "stall"),
    [
        pytest.param("1,7,64,257,1024", 0.0, id="ready"),
        pytest.param("1,7,64,257", 0.3, id="idle-stall"),
    ],
)
def test_softmax_cosim(ns: str, stall: float) -> None:
    env = {"NS": ns, "STALL": str(stall), "SEED": "11"}
    dut = Softmax(DEFAULT_SPEC, max_n=1024)
    res = run_cocotb(dut, "softmax", "testbench.softmax_tb", "build/cosim/softmax-n1024", extra_env=env)
    assert res.ok, f"cocotb failures, see {res.results_xml}"
