"""Every cocotb bench under the second simulator, Icarus Verilog 11 (Verilog-2005), on small cases.

The benches touch top-level ports only, so the same Driver / Monitor / Model / Scoreboard classes run
unchanged; each case checks the outputs == the golden twin. The softmax (rows alone and back to back)
and the attention core run with nothing stalled, so their exact cycle stamps are checked too; the top-k,
Q.K and value-unit cases run with idle and back-pressure. Builds go to ``build/cosim/icarus/<block>/``.
Verilator covers the large cases.
"""

from __future__ import annotations

import pytest
from spatten.testbench import qk_tb, softmax_tb, topk_tb, value_tb
from spatten.testbench.attention_core_tb import CoreParams, CoreRun
from spatten.testbench.icarus import find_icarus
from spatten.testbench.runner import run_cocotb

from tests.cosim.paths import BUILD_ROOT

ICARUS = BUILD_ROOT / "icarus"
pytestmark = [
    pytest.mark.cosim,
    # `make install` unpacks it into the venv; under `make test` a skip fails the run
    pytest.mark.skipif(find_icarus() is None, reason="iverilog missing: python -m spatten.testbench.icarus"),
]


def _run(dut, toplevel: str, module: str, block: str, env: dict[str, str]):
    build = ICARUS / block
    res = run_cocotb(dut, toplevel, module, build, extra_env=env, simulator="icarus", waves_on_failure=True)
    assert res.ok, res.report()
    # the build really was Icarus, compiled as Verilog-2005 (-g2012 would load the SystemVerilog VPI module)
    vvp = (build / "sim.vvp").read_text()
    assert ":ivl_version" in vvp and "v2005_math.vpi" in vvp and "v2009.vpi" not in vvp
    return res


def test_topk_icarus() -> None:
    p = topk_tb.Params(4, 16, 64, 4, requests=40, seed=2, idle=0.3, backpressure=0.4)
    res = _run(p.engine(), "topk", "spatten.testbench.topk_tb", "topk-p4-l4", p.env())
    assert res.passed == 2


def test_qk_icarus() -> None:
    p = qk_tb.Params(16, 4, 16, 12, (1, 7, 64), 0.3, 0.3, seed=7)
    _run(p.unit(), "qk_unit", "spatten.testbench.qk_tb", "qk-hd16-kp4", p.env())


def test_softmax_icarus() -> None:
    p = softmax_tb.Params(4, 64, (1, 3, 5, 64), 0.0, seed=11)  # no stall: every cycle stamp checked too
    _run(p.unit(), "softmax", "spatten.testbench.softmax_tb", "softmax-l4", p.env())


def test_value_unit_icarus() -> None:
    p = value_tb.Params(max_n=64, ns=(1, 7, 64), stall=0.3)
    _run(p.unit(), "value_unit", "spatten.testbench.value_tb", "value-hd16-vp4", p.env())


def test_attention_core_icarus() -> None:
    p = CoreParams(head_dim=16, k_par=4, v_par=4, max_n=64)
    # no idle or stall: every cycle stamp == core_cycles too (Verilator covers idle and back-pressure)
    env = p.env() | CoreRun(ns=(1, 7, 64), ratios=(1.0, 0.3), seed=3).env()
    _run(p.core(), "attention_core", "spatten.testbench.attention_core_tb", "attention-core-hd16", env)


def test_verify_cli_runs_icarus(tmp_path, capsys) -> None:
    from spatten.cli import main

    build = tmp_path / "topk"
    rc = main(["verify", "topk", "--simulator", "icarus", "--parallelism", "4", "--max-n", "16",
               "--requests", "5", "--build-dir", str(build)])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "Icarus (Verilog-2005) build" in out and "PASS" in out
    assert (build / "sim.vvp").exists()
