"""The incremental sweep dataset: small Parquet files of finished points, named by the points' hashes.

Each file ``OUT/points/<id>[_<id>...].parquet`` holds the rows of 1 to :data:`MAX_BATCH` points, named
by their hashes, so the set of finished points is read from the file names alone. The runner writes a
file as soon as it receives a finished Dask task (a few consecutive points; several tasks that finish
together share files), which amortises the ~1-2 ms fixed cost of writing a Parquet file.

A file is written to a hidden temporary name in the same folder and renamed into place (``os.replace``
is atomic on one filesystem), so a file that exists is complete: a sweep killed at any moment leaves
whole points and, at worst, a stale temporary file that the next run removes.

Damage from outside (a disk filling up, a copy cut short, a hand edit) is found at the start of a run by
:meth:`PointStore.set_aside_damaged`: a part whose bytes are not a whole Parquet file, or whose rows are not
the points its name says, moves to ``OUT/damaged/`` and its points count as not done, so they run again.
:meth:`PointStore.lock` keeps a second sweep out of a folder one is writing.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["MAX_BATCH", "PointStore"]

#: Points per file at most (keeps file names, 21 characters per point, well under 255).
MAX_BATCH = 8
_SUFFIX = ".parquet"
_TMP_PREFIX = ".tmp-"
_SEP = "_"
_MAGIC = b"PAR1"  # a Parquet file starts and ends with it
_LOCK = ".sweep.lock"


class PointStore:
    """The ``points`` folder of a sweep output folder.

    Parameters
    ----------
    root : str or Path
        The sweep output folder; points live in ``root/points``. Nothing is created until
        :meth:`write` is called, so a store can be inspected (dry run) without side effects.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.folder = self.root / "points"

    def _files(self) -> dict[str, str]:
        """Point id -> file name, for every complete file."""
        if not self.folder.is_dir():
            return {}
        out: dict[str, str] = {}
        for name in os.listdir(self.folder):
            if name.endswith(_SUFFIX) and not name.startswith("."):
                for pid in name[: -len(_SUFFIX)].split(_SEP):
                    out[pid] = name
        return out

    def done_ids(self) -> set[str]:
        """Point ids with a complete file (temporary files are not counted)."""
        return set(self._files())

    def damage(self, name: str) -> str | None:
        """Why the part file ``name`` cannot be trusted, or None if it is whole.

        Whole: it starts and ends with the Parquet magic bytes, its footer reads, and its ``point_id``
        column holds exactly the ids its name lists, one row each.
        """
        path = self.folder / name
        try:
            size = path.stat().st_size
            if size < 2 * len(_MAGIC) + 4:
                return f"{size} bytes, too short for a Parquet file"
            with open(path, "rb") as f:
                head = f.read(len(_MAGIC))
                f.seek(-len(_MAGIC), os.SEEK_END)
                tail = f.read(len(_MAGIC))
            if head != _MAGIC or tail != _MAGIC:
                return "not a whole Parquet file (cut short or overwritten)"
            ids = pq.ParquetFile(path).read(columns=["point_id"]).column(0).to_pylist()
        except (OSError, pa.ArrowException, KeyError) as e:
            return f"unreadable: {str(e).splitlines()[0][:80] if str(e) else type(e).__name__}"
        want = name[: -len(_SUFFIX)].split(_SEP)
        if sorted(map(str, ids)) != sorted(want):
            got = [str(i)[:12] for i in ids][:3]
            return f"its rows are points {got}, its name says {[w[:12] for w in want][:3]}"
        return None

    def set_aside_damaged(self) -> list[tuple[str, str]]:
        """Move every damaged part file to ``root/damaged/`` so its points run again.

        Returns
        -------
        list of (str, str)
            The file names set aside and why, in name order.
        """
        if not self.folder.is_dir():
            return []
        out = []
        for name in sorted(set(self._files().values())):
            why = self.damage(name)
            if why is None:
                continue
            dest = self.root / "damaged"
            dest.mkdir(exist_ok=True)
            target = dest / name
            n = 1
            while target.exists():  # keep earlier set-asides
                target, n = dest / f"{name}.{n}", n + 1
            os.replace(self.folder / name, target)
            out.append((name, why))
        return out

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for one sweep: a second one raises ValueError instead of writing beside it.

        An advisory ``flock`` on ``root/.sweep.lock`` (created with ``root``), released when the block
        ends or the process dies, so a killed sweep never leaves the folder locked.
        """
        created = not self.root.exists()
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(
                    f"{str(self.root)!r} is in use by another sweep (it holds {_LOCK}): wait for it to "
                    "finish or pick another --out"
                ) from None
            yield
        except BaseException:
            if created and set(os.listdir(self.root)) <= {_LOCK}:  # a run that failed before storing
                (self.root / _LOCK).unlink(missing_ok=True)
                self.root.rmdir()
            raise
        finally:
            os.close(fd)

    def remove_stale_temporaries(self) -> int:
        """Delete temporary files left by a killed run; return how many were removed."""
        if not self.folder.is_dir():
            return 0
        n = 0
        for name in os.listdir(self.folder):
            if name.startswith(_TMP_PREFIX):
                (self.folder / name).unlink(missing_ok=True)
                n += 1
        return n

    def write(self, rows: Sequence[Mapping[str, Any]]) -> list[Path]:
        """Write finished points atomically, at most :data:`MAX_BATCH` per file.

        Parameters
        ----------
        rows : sequence of mapping
            One mapping per point, column name to scalar; each must have a ``point_id`` (its hash,
            made of characters other than ``_``).

        Returns
        -------
        list of Path
            The files written.
        """
        paths = []
        for start in range(0, len(rows), MAX_BATCH):
            paths.append(self._write_file(rows[start : start + MAX_BATCH]))
        return paths

    def _write_file(self, rows: Sequence[Mapping[str, Any]]) -> Path:
        ids = [str(r["point_id"]) for r in rows]
        if any(not pid or _SEP in pid or "/" in pid for pid in ids):
            raise ValueError(f"point_id values {ids} must be non-empty and contain no '_' or '/'")
        self.folder.mkdir(parents=True, exist_ok=True)
        # Every row gets every column (from_pylist would otherwise take the columns of the first row).
        columns = list(dict.fromkeys(k for r in rows for k in r))
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows])
        dest = self.folder / (_SEP.join(ids) + _SUFFIX)
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{ids[0]}.", dir=self.folder)
        os.close(fd)
        try:
            # One-row files: compression, statistics and dictionaries cost more than they save (~2x).
            pq.write_table(table, tmp, compression="none", write_statistics=False, use_dictionary=False)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def read(self, point_ids: Iterable[str]) -> pd.DataFrame:
        """The stored rows of ``point_ids`` (each must be done), one row each, in the given order.

        A point's row does not depend on which other points shared its file: columns a row did not
        have come back as nulls, and an integer column that is a float in other rows is widened to float.
        """
        ids = list(dict.fromkeys(point_ids))
        if not ids:
            return pd.DataFrame({"point_id": pd.Series([], dtype=object)})
        files = self._files()
        missing = [pid for pid in ids if pid not in files]
        if missing:
            raise ValueError(f"point_ids not in the store: {missing[:3]}")
        # ParquetFile.read: about half the per-file overhead of pq.read_table on tiny files.
        names = list(dict.fromkeys(files[pid] for pid in ids))
        tables = [pq.ParquetFile(self.folder / name).read() for name in names]
        table = pa.concat_tables(tables, promote_options="permissive")
        df = table.to_pandas()
        df = df.drop_duplicates("point_id").set_index("point_id", drop=False).loc[ids]
        df.index = range(len(df))
        return df
