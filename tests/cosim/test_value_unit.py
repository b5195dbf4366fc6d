"""ValueUnit under Verilator + cocotb against models.value_unit (one build, request shapes at run time)."""

import pytest
from spatten.testbench.runner import run_cocotb
from spatten.testbench.value_tb import Params

from tests.cosim.paths import BUILD_ROOT

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize("stall", [pytest.param(0.0, id="ready"), pytest.param(0.3, id="idle-stall")])
def test_value_unit_cosim(stall: float) -> None:
    p = Params(stall=stall)  # D = 16, V_PAR = 4, 12-bit probabilities, 6-bit values, max_n 1024
    build = BUILD_ROOT / f"value-hd{p.head_dim}-vp{p.v_par}"
    res = run_cocotb(p.unit(), "value_unit", "spatten.testbench.value_tb", build, extra_env=p.env(),
                     waves_on_failure=True)  # fmt: skip
    assert res.ok, res.report()


def test_params_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Params(64, 8, 10, 8, 512, (2, 300), (1.0, 0.25), 0.5, 9)
    for var, value in p.env().items():
        monkeypatch.setenv(var, value)
    assert Params.from_env() == p
    assert p.acc_width == 10 + 1 + 8 + 9
