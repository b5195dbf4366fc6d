"""`spatten verilog attention-core` and `spatten verify attention-core`: good runs and bad input."""

from __future__ import annotations

import pytest

from spatten.cli import main

SMALL = ["--head-dim", "4", "--k-par", "2", "--v-par", "2", "--max-n", "16", "--topk-p", "4"]


def test_verilog_attention_core_writes_and_lints(tmp_path, capsys) -> None:
    out = tmp_path / "v"
    assert main(["verilog", "attention-core", *SMALL, "-o", str(out)]) == 0
    text = (out / "attention_core.v").read_text()
    assert "module attention_core(" in text
    for port in ("req__valid", "key__payload", "lsb__ready", "decision__payload", "prob__valid",
                 "kept__payload", "value__ready", "out__payload", "score_data", "phase"):  # fmt: skip
        assert port in text, port
    assert "verilator --lint-only: 0 errors" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--k-par", "0"], "k_par = 0 is outside the allowed range 1..64"),
        (["--topk-p", "12"], "topk_p = 12 must be a power of two in 1..32"),
        (["--lsb-bits", "9"], "lsb_bits = 9 is outside the allowed range 0..8"),
        (["--head-dim", "2000"], "head_dim = 2000 is outside the allowed range 1..1024"),
        (["--parallelism", "4"], "does not take --parallelism"),
    ],
)
def test_verilog_attention_core_bad_input(tmp_path, capsys, argv, text) -> None:
    out = tmp_path / "never"
    assert main(["verilog", "attention-core", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--requests", "-1"], "--requests -1 is outside the allowed range 0..100000"),
        (["--max-n", "0"], "--max-n 0 is outside the allowed range 1..4096"),
        (["--seed", "-2"], "--seed -2 is outside the allowed range 0..4294967295"),
        (["--vectors", "v.json"], "--vectors applies to the topk block only"),
        (["--width", "8"], "--width applies to the topk block only"),
        (["--out-lanes", "2"], "--out-lanes applies to the topk block only"),
        (["--head-dim", "0"], "--head-dim 0 is outside the allowed range 1..1024"),
        (["--k-par", "65"], "--k-par 65 is outside the allowed range 1..64"),
        (["--lsb-bits", "9"], "--lsb-bits 9 is outside the allowed range 0..8"),
        (["--score-shift", "63"], "--score-shift 63 is outside the allowed range 0..62"),
        (["--topk-p", "12"], "--topk-p 12 must be a power of two in 1..32"),
        (["--q-bits", "1"], "--q-bits 1 is outside the allowed range 2..16"),
    ],
)
def test_verify_attention_core_bad_input(tmp_path, capsys, argv, text) -> None:
    build = tmp_path / "b"
    assert main(["verify", "attention-core", *argv, "--build-dir", str(build)]) == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1
    assert not build.exists()


@pytest.mark.parametrize(
    ("argv", "text"),
    [
        (["--out-lanes", "20"], "out_lanes = 20 is outside the allowed range 1..16"),
        (["--parallelism", "4", "--in-lanes", "5"], "in_lanes = 5 is outside the allowed range 1..4"),
        (["--out-lanes", "0"], "out_lanes = 0 is outside the allowed range 1..16"),
    ],
)
def test_verify_topk_bad_lanes(tmp_path, capsys, argv, text) -> None:
    build = tmp_path / "b"
    assert main(["verify", "topk", *argv, "--build-dir", str(build)]) == 2
    err = capsys.readouterr().err
    assert text in err and err.count("\n") == 1
    assert not build.exists()


@pytest.mark.parametrize("flag", ["--k-par", "--v-bits", "--topk-p"])
def test_verify_topk_rejects_attention_core_flags(tmp_path, capsys, flag) -> None:
    build = tmp_path / "b"
    assert main(["verify", "topk", flag, "4", "--build-dir", str(build)]) == 2
    err = capsys.readouterr().err
    assert f"{flag} applies to the attention-core block only" in err and err.count("\n") == 1
    assert not build.exists()


@pytest.mark.cosim
def test_verify_attention_core_takes_every_parameter_with_waves(tmp_path, capsys) -> None:
    """A core unlike the suite's builds: D = 6, K_PAR = 5 > top-k P = 4 (serialized top-k input),
    V_PAR = 3, narrow codes, 6 + 2-bit keys, a hand-set shift; every request == the golden model, and
    --waves leaves a VCD in the sibling folder (one traced build serves both checks)."""
    build = tmp_path / "b"
    argv = ["verify", "attention-core", "--head-dim", "6", "--k-par", "5", "--v-par", "3", "--q-bits", "6",
            "--k-msb-bits", "6", "--lsb-bits", "2", "--v-bits", "5", "--score-shift", "4", "--topk-p", "4",
            "--max-n", "24", "--requests", "6", "--seed", "9", "--waves",
            "--build-dir", str(build)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "attention-core D=6 K_PAR=5 V_PAR=3 q/k/v bits 6/6+2/5 shift 4 top-k P=4 max_n=24" in out
    # directed: n in (1, 7) x 3 ratios x 2 thresholds = 12, then 6 random
    assert "PASS" in out and "18 requests, overlapped, == models.attention" in out
    assert (build.with_name("b_waves") / "dump.vcd").stat().st_size > 0
