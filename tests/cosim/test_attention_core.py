"""AttentionCore under Verilator + cocotb against models.attention (== on every output), cycle stamps ==
models.attention_core.core_cycles (alone) or stream_cycles (overlapped), and the sim stage model's
figures set against the RTL's.

Per-stage cycles against ``sim/simulate.py`` (what the test asserts, and why they differ):

- Q.K: the RTL takes ``ceil(n / K_PAR)`` key beats per pass on consecutive cycles, exactly the sim's
  Q.K service time; its latency is ``1 + ceil(log2 D)`` (7 at D = 64) against the sim's 11 (release:
  SRAM 1, multiply 1, adder tree 9) - the RTL has no SRAM read stage and a binary tree of D inputs.
- Softmax: the RTL softmax (``rtl.softmax``, ``lanes = K_PAR``) takes Q.K's K_PAR-wide beats in LOAD
  (overlapping Q.K) and runs EXP at K_PAR elements per cycle, then one DIV cycle; its K_PAR-wide output
  beats go whole into the top-k engine (``in_lanes = K_PAR``, as K_PAR <= P = 16 here), so OUT costs
  ``ceil(n / K_PAR)`` cycles: ``3 * ceil(n / K_PAR) + 1`` per pass, against the sim's
  ``ceil(n / K_PAR)`` service plus 88 latency. Bound asserted (per request, up to two passes):
  ``rtl <= 3 * sim_service + 2`` for a row alone; overlapped, the softmax's three stages hold three
  rows, so rows leave every ``ceil(n / K_PAR) + 1`` cycles.
- Top-k: the RTL equals ``QuickSelectTrace.cycles`` exactly (asserted through ``core_cycles``); the
  engine's final pass emits a buffer row's selection ``kept_lanes(V_PAR, P)`` a beat and stops at the
  row of the k-th, where the sim's table (``sim.topk_table``) has the paper's engine (one random pivot, a
  full P-wide final pass); reported, not asserted. A request keeping every row bypasses the engine
  (top-k 0, as in the sim).
- prob.V: kept indices arrive up to V_PAR a beat, value rows V_PAR a beat (``ceil(m / V_PAR)``, as in
  the sim) behind them.
- Requests: alone (each offered once the previous one is complete; stamps == ``core_cycles``) or
  overlapped (each offered once the previous one is accepted; the core holds up to four; stamps ==
  ``stream_cycles``); the overlapped stream's cycles per request are checked against the simulator's
  model of this core as built.

Default suite: D = 16 (K_PAR = V_PAR = 4, max n 512) and D = 64 (K_PAR = V_PAR = 8, max n 1024) with
n in {1, 7, 64, 257} and {1, 7, 64, 257, 1024}; about 1 minute on the 2-core sandbox, builds included.
"""

from __future__ import annotations

import json

import pytest
from spatten.testbench.attention_core_tb import CoreParams, CoreRun
from spatten.testbench.runner import run_cocotb

from tests.cosim.paths import BUILD_ROOT


def run_case(hd: int, kp: int, vp: int, max_n: int, ns: str, idle: float, stall: float, tag: str,
             thresholds: str = "0,1,0.05", seed: int = 3, overlap: bool = False) -> list[dict]:  # fmt: skip
    """Build (or reuse) the core, run the requests, return the report rows; assert every test passed."""
    params = CoreParams(head_dim=hd, k_par=kp, v_par=vp, max_n=max_n)  # 8-bit codes, 8 + 4-bit keys, P = 16
    build = BUILD_ROOT / f"attention-core-{params.tag}"
    build.mkdir(parents=True, exist_ok=True)
    report = build / f"report-{tag}.jsonl"
    report.unlink(missing_ok=True)
    run = CoreRun(ns=tuple(int(x) for x in ns.split(",")), ratios=(1.0, 0.3, 0.2),
                  thresholds=tuple(float(x) for x in thresholds.split(",")), idle=idle, stall=stall,
                  seed=seed, report=str(report.resolve()), overlap=overlap)  # fmt: skip
    env = params.env() | run.env()
    # run_cocotb serializes cases sharing this build folder (pytest-xdist)
    res = run_cocotb(
        params.core(), "attention_core", "spatten.testbench.attention_core_tb", build, extra_env=env,
        waves_on_failure=True,
    )  # fmt: skip
    assert res.ok, res.report()  # the bench's message: the request, then each differing stage element
    return [json.loads(x) for x in report.read_text().splitlines()] if report.exists() else []


def _check_stage_bounds(rows: list[dict]) -> None:
    assert rows
    for r in rows:
        rtl, sim = r["rtl_stages"], r["sim_stages"]
        assert rtl["qk"] == sim["qk"], r  # K_PAR keys per cycle, no bubbles: the sim's figure exactly
        assert rtl["softmax"] <= 3 * sim["softmax"] + 2, r  # K_PAR <= P: the top-k takes whole beats
        assert rtl["qk_latency"] <= sim["qk_latency"], r


@pytest.mark.cosim
@pytest.mark.parametrize(
    ("ns", "idle", "stall", "overlap"),
    [
        pytest.param("1,7,64,257,1024", 0.0, 0.0, False, id="ready-alone"),
        pytest.param("1,7,64,257", 0.3, 0.4, True, id="idle-stall-overlapped"),
    ],
)
def test_attention_core_hd16(ns: str, idle: float, stall: float, overlap: bool) -> None:
    """Requests alone (stamps == core_cycles), and overlapped with idle inputs and stalled outputs."""
    rows = run_case(16, 4, 4, 1024, ns, idle, stall, f"hd16-{idle}", overlap=overlap)
    assert len(rows) == len(ns.split(",")) * 3 * 3
    assert {r["refetch"] for r in rows} == {True, False}
    _check_stage_bounds(rows)
    if overlap:
        _check_overlapped(rows)


@pytest.mark.cosim
@pytest.mark.parametrize(
    ("ns", "idle", "stall", "overlap"),
    [
        pytest.param("1,7,64,257,1024", 0.0, 0.0, True, id="ready-overlapped"),
        pytest.param("7,257,1024", 0.3, 0.4, False, id="idle-stall-alone"),
    ],
)
def test_attention_core_hd64_kp8(ns: str, idle: float, stall: float, overlap: bool) -> None:
    """Overlapped with every input ready (stamps == stream_cycles), and alone with stalls."""
    rows = run_case(64, 8, 8, 1024, ns, idle, stall, f"hd64-{idle}", overlap=overlap)
    assert len(rows) == len(ns.split(",")) * 3 * 3
    assert {r["refetch"] for r in rows} == {True, False}
    assert {r["n"] for r in rows} >= {257, 1024}
    _check_stage_bounds(rows)
    if overlap:
        _check_overlapped(rows)
        _check_stream(rows, CoreParams(head_dim=64, k_par=8, v_par=8, max_n=1024))


def _check_overlapped(rows: list[dict]) -> None:
    """Requests were in the core together: most were accepted before the previous one's last output."""
    early = sum(b["req_at"] < a["end_at"] for a, b in zip(rows, rows[1:], strict=False))
    assert early >= len(rows) // 2, [(r["req_at"], r["end_at"]) for r in rows]


def _check_stream(rows: list[dict], params: CoreParams) -> None:
    """The simulator's model of this core as built predicts the measured stream within 5%."""
    from spatten.testbench.attention_core_tb import stream_summary

    st = stream_summary(rows, params)
    assert abs(st["as_built"] / st["rtl"] - 1) <= 0.05, st


def test_diff_report_names_stage_element_expected_got() -> None:
    """The mismatch report (no simulator needed): first differing stage, element, expected and got."""
    import numpy as np
    from spatten.models.attention_core import CoreStages
    from spatten.testbench.attention_core_tb import diff_report

    want = CoreStages(np.array([5, 6]), np.array([10, 20]), True, 20, np.array([7, 8]), np.array([11, 21]),
                      np.array([1]), np.array([3, -4]))  # fmt: skip
    good = {"scores": {0: [5, 6], 1: [7, 8]}, "refetch": 1, "max_prob": 20, "probs": [11, 21], "kept": [1],
            "out": [3, -4]}  # fmt: skip
    assert diff_report(want, good) == []
    bad = dict(good, scores={0: [5, 6], 1: [7, 9]}, out=[3, -5])
    assert diff_report(want, bad) == [
        "stage scores (LSB pass): element 1: expected 8, got 9",
        "stage output: element 1: expected -4, got -5",
    ]
    assert diff_report(want, dict(good, refetch=0, kept=[0, 1]))[:2] == [
        "stage refetch: expected 1, got 0 (row max expected 20, got 20)",
        "stage kept indices: length expected 1, got 2",
    ]


def test_core_run_round_trips_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    run = CoreRun(ns=(3, 1024), ratios=(1.0, 0.25), thresholds=(0.0, 0.05), requests=7, idle=0.2, stall=0.5,
                  seed=9, report="/tmp/r.jsonl")  # fmt: skip
    for var, value in run.env().items():
        monkeypatch.setenv(var, value)
    assert CoreRun.from_env() == run


def test_rtl_core_service_is_the_cycle_model_of_one_request() -> None:
    """sim.rtl_core on one request alone (its top-k mean aside) == core_cycles' total plus one cycle (the
    span ends the cycle after the last output), and on a stream == stream_cycles' span."""
    import numpy as np
    from spatten.models.attention_core import StreamRequest, core_cycles, kept_lanes, stream_cycles
    from spatten.sim.rtl_core import rtl_stage_service, rtl_topk_cycles

    rng = np.random.default_rng(4)
    for n, k, refetch, kp, hd in ((1024, 1024, False, 8, 64), (1024, 205, True, 8, 64), (7, 3, False, 4, 16),
                                  (300, 60, True, 32, 64)):  # fmt: skip
        probs = rng.integers(0, 1 << 12, n)
        cc = core_cycles(probs, k, k_par=kp, v_par=kp, head_dim=hd, topk_p=16, refetch=refetch, seed=5)
        svc = rtl_stage_service(np.array([n]), np.array([k]), np.array([refetch]), k_par=np.array([kp]),
                                v_par=np.array([kp]), head_dim=np.array([hd]), topk_p=16)  # fmt: skip
        assert (svc[1:] == 0).all()
        if k >= n and kp <= 16:  # bypassed: no top-k, the request's time is the cycle model's exactly
            assert cc.topk == 0
            assert svc[0, 0] == cc.total + 1, (n, k, refetch)
            continue
        mean_tk = rtl_topk_cycles(np.array([n]), np.array([k]), 16, kept_lanes(kp, 16))[0]
        # the cycle model's request with the engine's mean cycles in place of this request's (the output
        # waits for the engine's last kept index in both, which the cases here make sure of)
        assert cc.out > cc.prob_last and cc.out - cc.topk + mean_tk > cc.prob_last
        assert svc[0, 0] == cc.out - cc.topk + mean_tk + 1, (n, k, refetch)
    # a row standing for 6 identical requests: 4 through the stream, 2 more at the last increment
    one = np.ones(1)
    svc = rtl_stage_service(1024 * one, 1024 * one, one < 0, k_par=8 * one, v_par=8 * one, head_dim=64 * one,
                            topk_p=16, count=6 * one)  # fmt: skip
    st = stream_cycles([StreamRequest(1024, 1024, False)] * 4, k_par=8, v_par=8, head_dim=64, topk_p=16)
    ends = [max(s["out"], s["prob_last"]) + 1 for s in st]
    assert svc[0, 0] == ends[3] + 2 * (ends[3] - ends[2])
