"""QKUnit under Verilator + cocotb against models.qk (one build per parameter set, lengths at run time)."""

import pytest
from spatten.rtl.qk import QKUnit
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
    qw, kw = 16, 12
    build = BUILD_ROOT / f"qk-hd{head_dim}-kp{k_par}"
    env = {
        "HEAD_DIM": str(head_dim),
        "K_PAR": str(k_par),
        "Q_WIDTH": str(qw),
        "K_WIDTH": str(kw),
        "NS": ns,
        "IDLE": str(idle),
        "STALL": str(stall),
        "SEED": "7",
    }
    res = run_cocotb(
        QKUnit(head_dim, k_par, qw, kw),
        "qk_unit",
        "spatten.testbench.qk_tb",
        build,
        extra_env=env,
        waves_on_failure=True,
    )
    assert res.ok, res.report()
