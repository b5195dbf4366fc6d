"""Tests of `spatten trace`: summary output, release CSV output, one-line errors and no partial files."""

from __future__ import annotations

from pathlib import Path

import pytest
from spatten.models.trace import read_release_csv

from spatten.cli import main


def test_trace_prints_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "--layers", "3", "--steps", "2", "--seq-len", "64"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gpt2-medium generation (fixed point): 3 layers x 16 heads, prompt 64, 2 steps")
    lines = out.splitlines()
    header = lines[1].split()
    assert header == ["layer", "requests", "keys_fetched", "values_fetched", "refetch_rate", "live_heads"]
    # Layers 0 and 1 keep every token (release GPT-2-Medium schedule): 16 heads x (65 + 66) keys.
    assert lines[2].split()[:3] == ["0", "32", str(16 * (65 + 66))]
    assert lines[3].split()[:3] == ["1", "32", str(16 * (65 + 66))]
    assert "refetch rate" in out and "keep ratios: token" in out and "reduction vs. no pruning" in out


def test_trace_writes_release_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.csv"
    args = ["trace", "--layers", "2", "--steps", "3", "--seq-len", "32", "--mode", "float", "--out", str(out)]
    assert main(args) == 0
    tr, cfg = read_release_csv(out)
    assert len(tr) == 3 * 2 * 16
    assert cfg == "spatten-golden:gpt2-medium:float:seed0"
    assert sorted(tr["seq_len"].unique()) == [33, 34, 35]
    assert f"wrote {out}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv"]


def test_trace_bert(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "--workload", "bert-base", "--layers", "2", "--seq-len", "16"]) == 0
    assert "bert-base summarization (fixed point): 2 layers x 12 heads, length 16" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--layers", "0"], "layers"),
        (["--layers", "25"], "layers"),
        (["--steps", "33"], "steps"),
        (["--seq-len", "0"], "seq_len"),
        (["--seed", "-1"], "seed"),
        (["--workload", "bert-base", "--steps", "2"], "--steps"),
    ],
)
def test_bad_arguments_one_line_exit_2(
    args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    assert main(["trace", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and err.startswith("spatten trace: error:")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_bad_out_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "--layers", "1", "--steps", "1", "--out", str(tmp_path / "no" / "t.csv")]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["trace", "--layers", "1", "--steps", "1", "--out", str(tmp_path)]) == 2


def test_unknown_workload_is_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["trace", "--workload", "gpt3"])
    assert e.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1
