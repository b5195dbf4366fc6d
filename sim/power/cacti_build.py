"""Make the CACTI binary inside ``hwcomponents-cacti`` runnable on this machine.

The wheel ships a prebuilt ``cacti`` linked against glibc 2.38; on older systems (Debian 12 has 2.36)
the loader refuses it. The C++ sources ship beside the binary, so when the shipped binary does not run
we rebuild it in place with the folder's own makefile (after removing the stale ``obj_dbg`` objects
that came with the wheel). No root is needed: the folder lives in the venv.

Run as ``python -m spatten.sim.power.cacti_build``. It is idempotent and quick when already done: a stamp file
beside the binary records the hash of a binary that was checked to run.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["cacti_dir", "binary_runs", "ensure_cacti"]

_STAMP = ".spatten_cacti_ok"


def cacti_dir() -> Path:
    """Folder of the CACTI sources and binary shipped in ``hwcomponents_cacti``.

    Raises
    ------
    RuntimeError
        If ``hwcomponents-cacti`` is not installed.
    """
    spec = importlib.util.find_spec("hwcomponents_cacti")
    if spec is None or spec.origin is None:
        raise RuntimeError("hwcomponents-cacti is not installed (pip install hwcomponents-cacti)")
    return Path(spec.origin).parent / "cacti"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def binary_runs(folder: Path) -> bool:
    """True when ``folder/cacti`` starts (the dynamic loader accepts it).

    A working CACTI started with an unreadable input file prints its own error and exits; a binary
    the loader rejects (missing GLIBC/GLIBCXX symbol versions) fails before ``main`` with a loader
    message. We tell the two apart by that message and by exit status 126/127.
    """
    exe = folder / "cacti"
    if not exe.is_file():
        return False
    try:
        r = subprocess.run(
            [str(exe), "-infile", "/nonexistent-spatten-probe.cfg"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    out = r.stdout + r.stderr
    loader_failed = "GLIBC" in out or "error while loading shared libraries" in out
    return not loader_failed and r.returncode not in (126, 127)


def ensure_cacti(verbose: bool = True) -> Path:
    """Return the path of a runnable CACTI binary, rebuilding it from the shipped sources if needed.

    Parameters
    ----------
    verbose : bool
        Print what was done (one line).

    Raises
    ------
    RuntimeError
        If the build tools are missing or the rebuilt binary still does not run.
    """
    folder = cacti_dir()
    exe = folder / "cacti"
    stamp = folder / _STAMP
    # A lock so that parallel test workers do not build the same folder at once.
    with open(folder / ".spatten_cacti.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.is_file() and stamp.is_file() and stamp.read_text().strip() == _digest(exe):
            if verbose:
                print(f"cacti: ok ({exe})")
            return exe
        if binary_runs(folder):
            stamp.write_text(_digest(exe) + "\n")
            if verbose:
                print(f"cacti: shipped binary runs ({exe})")
            return exe
        for tool in ("make", "g++"):
            if shutil.which(tool) is None:
                raise RuntimeError(
                    f"cacti: the shipped binary does not run and `{tool}` is missing to rebuild it"
                )
        shutil.rmtree(folder / "obj_dbg", ignore_errors=True)
        r = subprocess.run(["make"], cwd=folder, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            raise RuntimeError(f"cacti: rebuild failed in {folder}: {' | '.join(tail)}")
        if not binary_runs(folder):
            raise RuntimeError(f"cacti: rebuilt binary in {folder} still does not run")
        stamp.write_text(_digest(exe) + "\n")
        if verbose:
            print(f"cacti: rebuilt from the shipped sources ({exe})")
        return exe


def main() -> int:
    """Console entry: ensure CACTI runs; exit 1 with one line on failure."""
    try:
        ensure_cacti()
    except RuntimeError as e:
        sys.stderr.write(f"{e}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
