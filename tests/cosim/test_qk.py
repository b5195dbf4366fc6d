"""QKUnit under Verilator + cocotb against models.qk (one build per parameter set, lengths at run time)."""

import pytest
from spatten.testbench.qk_tb import Params
from spatten.testbench.runner import run_cocotb

from tests.cosim.paths import BUILD_ROOT

pytestmark = pytest.mark.cosim


@pytest.mark.parametrize(
    ("head_dim", "k_par", "ns", "idle", "stall"),
    [
        pytest.param(16, 4, "1,7,64,257", 0.0, 0.0, id="hd16-kp4-ready"),
        pytest.param(16, 4, "1,7,64,257", 0.3, 0.3, id="hd16-kp4-idle-stall"),
        pytest.param(64, 8, "1,7,1024", 0.0, 0.0, id="hd64-kp8-ready", marks=pytest.mark.slow),
        pytest.param(64, 8, "257,1024", 0.2, 0.4, id="hd64-kp8-idle-stall", marks=pytest.mark.slow),
    ],
)
def test_qk_cosim(head_dim: int, k_par: int, ns: str, idle: float, stall: float) -> None:
    p = Params(head_dim, k_par, 16, 12, tuple(int(x) for x in ns.split(",")), idle, stall, seed=7)
    build = BUILD_ROOT / f"qk-hd{head_dim}-kp{k_par}"
    res = run_cocotb(
        p.unit(), "qk_unit", "spatten.testbench.qk_tb", build, extra_env=p.env(), waves_on_failure=True
    )
    assert res.ok, res.report()


def test_params_round_trip_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Params(64, 8, 14, 10, (3, 1024), 0.25, 0.5, seed=11)
    for var, value in p.env().items():
        monkeypatch.setenv(var, value)
    assert Params.from_env() == p
    assert p.score_width == 14 + 10 + 6
