"""Unwritable --out paths: one line naming the path, exit 2, nothing left behind (every writing command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spatten.cli import main
from spatten.output import atomic_dir, atomic_file

SWEEP = Path(__file__).resolve().parents[1] / "examples" / "sweeps" / "small.yaml"

COMMANDS = {
    "simulate": ["simulate", "--workload", "bert-base", "--seq-len", "16", "--out"],
    "verilog": ["verilog", "topk", "--parallelism", "1", "--max-n", "8", "--no-lint", "-o"],
    "sweep": ["sweep", str(SWEEP), "--no-progress", "--workers", "1", "--out"],
}


@pytest.mark.parametrize("cmd", sorted(COMMANDS))
def test_out_under_a_file_is_one_line_exit_2(cmd: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "afile").write_text("x")
    before = sorted(tmp_path.rglob("*"))
    assert main([*COMMANDS[cmd], str(tmp_path / "afile" / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "afile" in err and "not a folder" in err
    assert sorted(tmp_path.rglob("*")) == before


def test_trace_folder_is_named(tmp_path: Path, capsys) -> None:
    assert main(["simulate", "--trace", str(tmp_path)]) == 2
    assert "is a folder, not a file" in capsys.readouterr().err


def test_failed_command_removes_the_parents_it_made(tmp_path: Path) -> None:
    for ctx in (atomic_dir, atomic_file):
        target = tmp_path / "a" / "b" / "out"
        with pytest.raises(RuntimeError), ctx(target):
            raise RuntimeError("the command failed")
        assert list(tmp_path.iterdir()) == []


def test_success_keeps_new_parents(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "a" / "b" / "f.txt") as f:
        f.write("ok")
    assert (tmp_path / "a" / "b" / "f.txt").read_text() == "ok"


def test_trace_refuses_a_device_as_out(capsys) -> None:
    assert (
        main(["trace", "--workload", "gpt2-small", "--layers", "1", "--steps", "1", "--out", "/dev/null"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a regular file" in err
    assert Path("/dev/null").is_char_device()  # still the device


def test_sweep_name_cannot_leave_the_sweeps_folder() -> None:
    from spatten.sim.sweep.spec import parse_spec

    for bad in ("/abs/path", "../../x", "a/b", ".."):
        with pytest.raises(ValueError, match="names the folder under sweeps/"):
            parse_spec({"name": bad, "workloads": ["bert-base"], "sweep": {"pruning.token_keep": [0.5]}})
