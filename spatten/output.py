"""Atomic output: write into a temporary sibling, rename into place only on success.

A command that fails half-way leaves no partial file or folder behind, not even a parent folder it
created for the output. A path that cannot be written (a file where a folder is needed, no permission)
is a one-line ``ValueError`` naming it, which the CLI prints with exit status 2.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _unwritable(dest: Path, e: OSError) -> ValueError:
    return ValueError(f"--out {str(dest)!r}: cannot write there: {e.strerror or type(e).__name__}")


def _make_parents(dest: Path) -> Path | None:
    """Create the missing parents of ``dest``; return the topmost one created (None if none was)."""
    missing = [p for p in dest.parents if not p.exists()]
    first = next((p for p in dest.parents if p.exists()), None)
    if first is not None and not first.is_dir():
        raise ValueError(f"--out {str(dest)!r}: {str(first)!r} is a file, not a folder")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _unwritable(dest, e) from None
    return missing[-1] if missing else None


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success its files are moved into ``path`` (created if needed).

    Files already in ``path`` with the same names are replaced; on an exception nothing in ``path``
    changes and any folder created for the purpose is removed.
    """
    dest = Path(path)
    existed = dest.exists()
    if existed and not dest.is_dir():
        raise ValueError(f"--out {str(dest)!r} exists and is not a folder")
    created = _make_parents(dest)
    ok = False
    try:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        except OSError as e:
            raise _unwritable(dest, e) from None
        try:
            yield tmp
            try:
                dest.mkdir(exist_ok=True)
                for item in tmp.iterdir():
                    target = dest / item.name
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    os.replace(item, target)
            except OSError as e:
                raise _unwritable(dest, e) from None
            ok = True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if not ok and created is not None:
            shutil.rmtree(created, ignore_errors=True)


def check_file_target(path: str | os.PathLike) -> None:
    """Raise the one-line ValueError :func:`atomic_file` would, before any work: ``path`` must be a
    regular file or absent, in a folder where a file can be created. Leaves nothing behind."""
    try:
        with atomic_file(path):
            raise _Probe
    except _Probe:
        pass


def check_dir_target(path: str | os.PathLike) -> None:
    """Raise the one-line ValueError :func:`atomic_dir` would, before any work: ``path`` must be a folder
    or absent, where a folder can be made. Leaves nothing behind (not even ``path``)."""
    try:
        with atomic_dir(path):
            raise _Probe
    except _Probe:
        pass


class _Probe(Exception):
    """Ends :func:`check_file_target`'s write before anything is renamed into place."""


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    dest = Path(path)
    if dest.is_dir():
        raise ValueError(f"--out {str(dest)!r} is a folder, not a file")
    if dest.exists() and not dest.is_file():  # a device or a pipe: renaming over it would replace it
        raise ValueError(f"--out {str(dest)!r} is not a regular file")
    created = _make_parents(dest)
    ok = False
    try:
        try:
            fd, tmpname = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        except OSError as e:
            raise _unwritable(dest, e) from None
        os.close(fd)
        try:
            with open(tmpname, mode) as f:
                yield f
            try:
                os.replace(tmpname, dest)
            except OSError as e:
                raise _unwritable(dest, e) from None
            ok = True
        finally:
            if os.path.exists(tmpname):
                os.unlink(tmpname)
    finally:
        if not ok and created is not None:
            shutil.rmtree(created, ignore_errors=True)
