"""The incremental sweep dataset: one small Parquet file per finished point, named by its hash.

``OUT/points/<point_id>.parquet`` holds one row. It is written to a hidden temporary file in the same
folder and renamed into place (``os.replace`` is atomic on one filesystem), so a file that exists is
complete: a sweep killed at any moment leaves whole points and, at worst, a stale temporary file that
the next run removes. A rerun lists the folder and skips every point already there.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["PointStore"]

_SUFFIX = ".parquet"
_TMP_PREFIX = ".tmp-"


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

    def done_ids(self) -> set[str]:
        """Point ids with a complete file (temporary files are not counted)."""
        if not self.folder.is_dir():
            return set()
        return {
            name[: -len(_SUFFIX)]
            for name in os.listdir(self.folder)
            if name.endswith(_SUFFIX) and not name.startswith(".")
        }

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

    def write(self, point_id: str, row: Mapping[str, Any]) -> Path:
        """Write one point's row atomically as ``points/<point_id>.parquet``.

        Parameters
        ----------
        point_id : str
            The point's hash (file name).
        row : mapping
            Column name to scalar value.

        Returns
        -------
        Path
            The final file.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([dict(row)])
        dest = self.folder / f"{point_id}{_SUFFIX}"
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{point_id}.", dir=self.folder)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def read(self, point_ids: Iterable[str]) -> pd.DataFrame:
        """The stored rows of ``point_ids`` (each must be done), one row each, in the given order.

        Columns missing from some rows (a failed point has no metrics) come back as nulls; an integer
        column that is a float in other rows is widened to float.
        """
        ids = list(dict.fromkeys(point_ids))
        if not ids:
            return pd.DataFrame({"point_id": pd.Series([], dtype=object)})
        # ParquetFile.read: about half the per-file overhead of pq.read_table on one-row files.
        tables = [pq.ParquetFile(self.folder / f"{pid}{_SUFFIX}").read() for pid in ids]
        table = pa.concat_tables(tables, promote_options="permissive")
        df = table.to_pandas()
        df.index = range(len(df))
        return df
