"""Atomic output: write into a temporary sibling, rename into place only on success.

A command that fails half-way leaves no partial file or folder behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder; on success its files are moved into ``path`` (created if needed).

    Files already in ``path`` with the same names are replaced; on an exception nothing in ``path``
    changes and a folder created for the purpose is removed.
    """
    dest = Path(path)
    existed = dest.exists()
    if existed and not dest.is_dir():
        raise ValueError(f"--out {str(dest)!r} exists and is not a folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        yield tmp
        dest.mkdir(exist_ok=True)
        for item in tmp.iterdir():
            target = dest / item.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(item, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success."""
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmpname = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    os.close(fd)
    try:
        with open(tmpname, mode) as f:
            yield f
        os.replace(tmpname, dest)
    finally:
        if os.path.exists(tmpname):
            os.unlink(tmpname)
