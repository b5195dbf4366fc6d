"""Bad input the validators used to accept or crash on: one line naming it, exit 2, nothing built."""

from __future__ import annotations

from pathlib import Path

import pytest

from spatten.cli import main


@pytest.mark.parametrize("name", ["5", "[a, b]", "''", "x" * 65])
def test_model_name_must_be_a_name(tmp_path: Path, capsys, name: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  name: {name}\n")
    assert main(["simulate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.name = " in err and "1..64 characters" in err, err


def test_verify_checks_seed_and_build_folder_before_building(tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    for block in ("topk", "attention-core"):
        for argv, needle in (
            (["--seed", "-1"], "--seed -1 is outside the allowed range 0..4294967295"),
            (["--seed", str(2**32)], "is outside the allowed range 0..4294967295"),
            (["--build-dir", str(afile)], "exists and is not a folder"),
            (["--build-dir", "/dev/null"], "exists and is not a folder"),
            (["--build-dir", str(afile / "sub")], "is not a folder"),
        ):
            assert main(["verify", block, *argv]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_large_sweep_says_so_while_it_expands(tmp_path: Path, capsys, monkeypatch) -> None:
    import spatten.sim.sweep.spec as spec_mod

    monkeypatch.setattr(spec_mod, "EXPAND_PROGRESS_FROM", 4)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    f = tmp_path / "s.yaml"
    f.write_text("name: s\nworkloads: [gpt2-small]\nsweep:\n  accelerator.hbm_channels: [1, 2, 4, 8]\n")
    assert main(["sweep", str(f), "--dry-run"]) == 0
    assert "sweep s: expanding" in capsys.readouterr().err
    f.write_text("name: s\nworkloads: [gpt2-small]\nsweep:\n  accelerator.hbm_channels: [1, 2, 4]\n")
    assert main(["sweep", str(f), "--dry-run"]) == 0
    assert "expanding" not in capsys.readouterr().err  # small sweeps stay quiet


@pytest.mark.parametrize(
    ("out", "needle"),
    [("/proc/x.csv", "cannot write there"), ("/dev/null", "is not a regular file")],
)
def test_trace_out_is_checked_before_the_run(out: str, needle: str, capsys) -> None:
    argv = ["trace", "--workload", "gpt2-small", "--layers", "1", "--steps", "1", "--out", out]
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1 and needle in cap.err, cap  # refused before any work
    assert not Path("/proc/x.csv").exists() and Path("/dev/null").is_char_device()
