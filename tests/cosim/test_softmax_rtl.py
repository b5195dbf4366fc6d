"""Softmax RTL under Verilator + cocotb against models.softmax (one build per lane count, row lengths at
run time)."""

import pytest
from spatten.models.softmax import DEFAULT_SPEC
from spatten.rtl.softmax import Softmax
from spatten.testbench.runner import run_cocotb

from tests.cosim.paths import BUILD_ROOT

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize(
    ("lanes", "ns", "stall"),
    [
        pytest.param(1, "1,7,64,257,1024", 0.0, id="lanes1-ready"),
        pytest.param(1, "1,7,64,257", 0.3, id="lanes1-idle-stall"),
        pytest.param(4, "1,3,4,5,64,257", 0.0, id="lanes4-ready"),
        pytest.param(4, "1,7,64,257", 0.3, id="lanes4-idle-stall"),
        pytest.param(8, "1,7,8,9,1023,1024", 0.0, id="lanes8-ready"),
    ],
)
def test_softmax_cosim(lanes: int, ns: str, stall: float) -> None:
    env = {"NS": ns, "STALL": str(stall), "SEED": "11", "LANES": str(lanes)}
    dut = Softmax(DEFAULT_SPEC, max_n=1024, lanes=lanes)
    build = BUILD_ROOT / ("softmax-n1024" + (f"-l{lanes}" if lanes > 1 else ""))
    res = run_cocotb(
        dut, "softmax", "spatten.testbench.softmax_tb", build, extra_env=env, waves_on_failure=True
    )
    assert res.ok, res.report()
