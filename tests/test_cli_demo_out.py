"""`spatten demo --out` is checked before the demo runs: one line, exit 2, nothing printed or left behind."""

from __future__ import annotations

import pytest
import spatten.sim.api

from spatten.cli import main


@pytest.fixture
def no_demo(monkeypatch):
    """The demo's first step fails loudly: a test passes only if the check comes before it."""

    def ran(*a, **k):
        raise RuntimeError("the demo ran before --out was checked")

    monkeypatch.setattr(spatten.sim.api, "simulate", ran)


@pytest.mark.parametrize(
    ("out", "part"),
    [
        ("/proc/spatten-demo-x", "cannot write there"),
        ("{file}/sub", "is a file, not a folder"),
        ("{file}/a/b", "is a file, not a folder"),
        ("{file}", "exists and is not a folder"),
    ],
)
def test_unwritable_out_fails_before_the_demo(tmp_path, capsys, no_demo, out, part):
    f = tmp_path / "plain.txt"
    f.write_text("x")
    out = out.format(file=f)
    assert main(["demo", "--out", out]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err.count("\n") == 1 and "--out" in cap.err and part in cap.err, cap.err
    assert f.read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]


def test_a_demo_that_fails_after_the_check_leaves_no_folder(tmp_path, capsys, monkeypatch):
    def bad(*a, **k):
        raise ValueError("bad workload")

    monkeypatch.setattr(spatten.sim.api, "simulate", bad)
    out = tmp_path / "new" / "demo"
    assert main(["demo", "--out", str(out)]) == 2
    assert "bad workload" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_an_existing_out_folder_is_kept_on_failure(tmp_path, capsys, monkeypatch):
    def bad(*a, **k):
        raise ValueError("bad workload")

    monkeypatch.setattr(spatten.sim.api, "simulate", bad)
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert (tmp_path / "keep.txt").read_text() == "mine"
