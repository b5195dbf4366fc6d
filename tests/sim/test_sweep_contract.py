"""`spatten sweep` and the bad-input contract: a plain ``name``, a known baseline, a reachable scheduler.

Every refusal is one line on stderr, exit 2, and no output folder (nor a parent made for it) left behind.
"""

from __future__ import annotations

import socket

import pytest
import yaml
from spatten.sim.sweep.spec import parse_spec
from spatten.sim.sweep.store import PointStore

from spatten import cmd_sweep
from spatten.cli import main

TINY = {
    "workloads": ["gpt2-small"],
    "fixed": {
        "model.layers": 1,
        "model.prompt_len": 8,
        "model.gen_tokens": 1,
        "pruning.token_keep_schedule": [],
        "pruning.head_keep_schedule": [],
    },
    "sweep": {"accelerator.qk_multipliers": [64, 128]},
}


def write_spec(tmp_path, **top) -> str:
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump({**TINY, **top}))
    return str(f)


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# --- name ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "/abs/path",
        "../../x",
        "a/b",
        "a\\b",
        "",
        ".",
        "..",
        ".hidden",
        "..x",
        "a b",
        "x" * 65,
        "a+b",
        5,
        ["a"],
    ],
)
def test_name_must_be_a_plain_folder_name(name):
    with pytest.raises(ValueError) as ei:
        parse_spec({**TINY, "name": name})
    msg = str(ei.value)
    assert msg.startswith("name = ") and "not starting with '.'" in msg and "\n" not in msg, msg
    assert len(msg) < 200


@pytest.mark.parametrize("name", ["small", "gpt2-medium_1000", "v1.2", "A", "x" * 64, "_a", "-a"])
def test_plain_names_are_accepted(name):
    assert parse_spec({**TINY, "name": name}).name == name


def test_a_bad_file_stem_says_where_the_name_came_from():
    with pytest.raises(
        ValueError, match=r"name = '\.hidden' \(the sweep file's name; set name: in the file\)"
    ):
        parse_spec(TINY, default_name=".hidden")


def test_cli_name_escape_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, name="../../escaped")
    assert main(["sweep", spec]) == 2
    assert "name = '../../escaped'" in one_line(capsys)
    assert not (tmp_path / "sweeps").exists() and not (tmp_path.parent / "escaped").exists()


# --- baseline and accelerator --------------------------------------------------------------------


@pytest.mark.parametrize("baseline", ["nope", "", 3, ["spatten"], "x" * 1000])
def test_unknown_baseline_is_refused_before_anything_runs(tmp_path, capsys, baseline):
    out = tmp_path / "deep" / "out"
    assert main(["sweep", write_spec(tmp_path, baseline=baseline), "--out", str(out)]) == 2
    err = one_line(capsys)
    assert "baseline = " in err and "is not one of spatten, dense, a3, mnnfast" in err and len(err) < 200
    assert not (tmp_path / "deep").exists()


def test_unhashable_accelerator_names_the_key():
    with pytest.raises(ValueError, match=r"accelerator = \['spatten'\] is not one of"):
        parse_spec({**TINY, "accelerator": ["spatten"]})


# --- scheduler -----------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("address", "part"),
    [
        ("not an address!!", "is not a scheduler address"),
        ("tcp://host:99999", "is not a scheduler address"),
        ("tcp://host", "is not a scheduler address"),
        ("tcp://:8786", "is not a scheduler address"),
        ("tcp://host:8786/path", "is not a scheduler address"),
        ("inproc://192.168.1.1/123/1", "scheme 'inproc' is not supported"),
        ("x" * 500, "is not a scheduler address"),
    ],
)
def test_garbage_scheduler_leaves_no_folder(tmp_path, capsys, address, part):
    out = tmp_path / "new" / "out"
    assert main(["sweep", write_spec(tmp_path), "--out", str(out), "--scheduler", address]) == 2
    err = one_line(capsys)
    assert "--scheduler " in err and part in err and len(err) < 250, err
    assert not (tmp_path / "new").exists()


def test_unreachable_scheduler_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "new" / "out"
    address = f"tcp://127.0.0.1:{closed_port()}"
    assert main(["sweep", write_spec(tmp_path), "--out", str(out), "--scheduler", address]) == 2
    assert "cannot connect to 127.0.0.1:" in one_line(capsys)
    assert not (tmp_path / "new").exists()


def test_reachable_address_passes_the_check():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        assert cmd_sweep.check_scheduler(f"tcp://127.0.0.1:{port}") == ("127.0.0.1", port)
        assert cmd_sweep.check_scheduler(f"127.0.0.1:{port}") == ("127.0.0.1", port)
    assert cmd_sweep.check_scheduler("tls://[::1]:8786", connect=False) == ("::1", 8786)


def test_dry_run_parses_the_scheduler_but_does_not_connect(tmp_path, capsys):
    spec = write_spec(tmp_path)
    address = f"tcp://127.0.0.1:{closed_port()}"
    assert main(["sweep", spec, "--out", str(tmp_path / "o"), "--scheduler", address, "--dry-run"]) == 0
    assert main(["sweep", spec, "--out", str(tmp_path / "o"), "--scheduler", "tcp://h", "--dry-run"]) == 2
    assert not (tmp_path / "o").exists()


# --- a run that fails after the checks -----------------------------------------------------------


def test_a_failed_run_removes_the_folders_it_made(tmp_path, capsys, monkeypatch):
    import spatten.sim.sweep.runner as runner

    def fail(spec, out, **kw):
        PointStore(out).root.mkdir(parents=True, exist_ok=True)
        (out / ".lock").write_text("")
        raise ValueError("--scheduler 'tcp://x:1': cannot connect (refused)")

    monkeypatch.setattr(runner, "run_sweep", fail)
    out = tmp_path / "new" / "out"
    assert main(["sweep", write_spec(tmp_path), "--out", str(out)]) == 2
    one_line(capsys)
    assert not (tmp_path / "new").exists()


def test_a_failed_run_keeps_stored_points_and_folders_it_did_not_make(tmp_path, capsys, monkeypatch):
    import spatten.sim.sweep.runner as runner

    calls = []

    def fail_after_storing(spec, out, **kw):
        calls.append(out)
        p = spec.unique_points()[0]
        PointStore(out).write([{"point_id": p.point_id, "error": ""}])
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_sweep", fail_after_storing)
    out = tmp_path / "new" / "out"
    assert main(["sweep", write_spec(tmp_path), "--out", str(out)]) == 130
    assert calls and len(PointStore(out).done_ids()) == 1  # a rerun resumes from it

    def fail(spec, out, **kw):
        raise ValueError("boom")

    monkeypatch.setattr(runner, "run_sweep", fail)
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["sweep", write_spec(tmp_path), "--out", str(existing)]) == 2
    assert existing.is_dir()
