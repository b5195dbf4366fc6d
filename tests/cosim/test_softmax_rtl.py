"""Softmax RTL under Verilator + cocotb against models.softmax (one build per lane count, row lengths at
run time)."""

import pytest
from spatten.testbench.runner import run_cocotb
from spatten.testbench.softmax_tb import Params

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
    p = Params(lanes, 1024, tuple(int(x) for x in ns.split(",")), stall, seed=11)
    build = BUILD_ROOT / ("softmax-n1024" + (f"-l{lanes}" if lanes > 1 else ""))
    res = run_cocotb(p.unit(), "softmax", "spatten.testbench.softmax_tb", build, extra_env=p.env(),
                     waves_on_failure=True)  # fmt: skip
    assert res.ok, res.report()
    assert res.passed == 2  # the rows one at a time, then back to back (exact stamps of the row stream)


def test_params_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Params(8, 512, (1, 9, 512), 0.25, 3)
    for var, value in p.env().items():
        monkeypatch.setenv(var, value)
    assert Params.from_env() == p
