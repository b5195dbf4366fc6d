"""spatten.sim.power.cacti_build: the loader check, the rebuild guard and idempotence."""

import hashlib
import os

from spatten.sim.power import cacti_build


def _fake_cacti(folder, script):
    exe = folder / "cacti"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(0o755)
    return exe


def test_loader_failure_is_detected(tmp_path):
    _fake_cacti(tmp_path, 'echo "./cacti: /lib/libc.so.6: version \\`GLIBC_2.38\' not found" >&2\nexit 1\n')
    assert not cacti_build.binary_runs(tmp_path)


def test_a_binary_that_starts_runs(tmp_path):
    # A working CACTI given a missing input file complains about the file and exits non-zero.
    _fake_cacti(tmp_path, 'echo "$2 is missing!"\nexit 255\n')
    assert cacti_build.binary_runs(tmp_path)


def test_missing_binary_does_not_run(tmp_path):
    assert not cacti_build.binary_runs(tmp_path)


def test_installed_cacti_runs_and_is_stamped(monkeypatch):
    exe = cacti_build.ensure_cacti(verbose=False)
    assert exe.is_file() and os.access(exe, os.X_OK)
    assert cacti_build.binary_runs(exe.parent)
    stamp = exe.parent / ".spatten_cacti_ok"
    assert stamp.read_text().strip() == hashlib.sha256(exe.read_bytes()).hexdigest()

    def no_probe(folder):
        raise AssertionError("probed again although the stamp matches")

    monkeypatch.setattr(cacti_build, "binary_runs", no_probe)
    assert cacti_build.ensure_cacti(verbose=False) == exe  # idempotent: the stamp short-cuts
