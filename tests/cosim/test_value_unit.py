"""ValueUnit under Verilator + cocotb against models.value_unit (one build, request shapes at run time)."""

import pytest
from spatten.rtl.value_unit import ValueUnit
from spatten.testbench.runner import run_cocotb

from tests.cosim.paths import BUILD_ROOT

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize("stall", [pytest.param(0.0, id="ready"), pytest.param(0.3, id="idle-stall")])
def test_value_unit_cosim(stall: float) -> None:
    hd, vp, pw, vw, max_n = 16, 4, 12, 6, 1024
    env = {
        "HEAD_DIM": str(hd), "V_PAR": str(vp), "P_WIDTH": str(pw), "V_WIDTH": str(vw), "MAX_N": str(max_n),
        "NS": "1,7,64,257,1024", "KEEPS": "1.0,0.3,0.2", "STALL": str(stall), "SEED": "5",
    }  # fmt: skip
    dut = ValueUnit(hd, vp, pw, vw, max_n)
    res = run_cocotb(
        dut,
        "value_unit",
        "spatten.testbench.value_tb",
        BUILD_ROOT / f"value-hd{hd}-vp{vp}",
        extra_env=env,
        waves_on_failure=True,
    )
    assert res.ok, res.report()
