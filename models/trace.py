"""The request trace: its schema, and reading/writing the authors' release CSV format.

A trace is a ``pandas.DataFrame`` with one row per attention request, i.e. per (step, layer, head,
query). Columns (``TRACE_COLUMNS``):

========================  =======================================================================
step                      generation step (0 = prompt / summarization)
layer, head, query        position of the request (query: index inside the step; 0 for generation)
queries                   queries this row stands for (>1 when a row summarizes a query batch)
head_dim                  D
seq_len                   tokens in the KV cache before pruning (the release ``sentence_length_L``)
keys_fetched              K rows fetched (live tokens after cascade token pruning)
key_bits                  bits per K element fetched first (MSBs under PQ); -1 unquantized
key_lsb_bits              LSB bits fetched on a refetch; -1 when PQ is off or unquantized
refetch                   whether the LSBs were fetched and Q.K recomputed
refetch_threshold         max-probability threshold; -1 when PQ is off
query_bits                bits per Q element; -1 unquantized
values_fetched            V rows fetched (after local value pruning)
value_bits                bits per V element; -1 unquantized
accumulate_importance     token importance is accumulated after this head
rescale_importance        previous importance is rescaled (release field, carried through)
token_topk                k of the token top-k run after this head; -1 when none runs
value_topk                k of the local value top-k; -1 when all values are kept
========================  =======================================================================

The release CSV (the README's "Trace formats") has one row per (step, layer, head) and a last line
naming the training config. :func:`read_release_csv` maps it onto the schema (``query = 0``,
``queries = 1``); :func:`write_release_csv` writes the per-(step, layer, head) rows back in the release's
own layout. The five release files ship inside the package: :data:`RELEASE_TRACES` names them and
:func:`release_trace_path` finds one.

Values the hardware cannot run are refused (:func:`check_trace_values`, used by the reader and by
``sim.simulate.check_trace``) with one line naming the file, the row, the column, the value and the
allowed range:

========================================  ===============================================================
step, layer, head, query, queries          integers 0 .. 999999999 (below 1e9)
seq_len                                    0 .. 999999999
head_dim                                   1 .. 1024 (the accelerator's ``head_dim`` range)
keys_fetched                               0 .. seq_len
values_fetched                             0 .. keys_fetched
key_bits, query_bits, value_bits           -1 (unquantized) or 1 .. 16
key_lsb_bits                               -1 or 0 .. 16 - key_bits; only -1 or 0 when key_bits is -1
refetch_threshold                          -1 (off) or 0 .. 1
token_topk                                 -1 or 0 .. keys_fetched; on the last layer of a step
                                           0 .. seq_len (it picks the next step's tokens from the whole
                                           cache: in the release GPT-2-Small trace layer 11 fetches 102
                                           keys and keeps 921 tokens for the next step)
value_topk                                 -1 or 0 .. keys_fetched
========================================  ===============================================================

Every number must be finite; integer columns must hold integers (in a DataFrame: numbers, not booleans,
complex numbers or text such as ``"993"``).

Files (:func:`read_trace_file`: a release CSV, a CSV of the schema, or ``.parquet``) must be UTF-8 text (CSV)
with no row wider than the header and none narrower except the release's config line. A refusal names the
file and the row: a CSV's 1-based line number (the header is line 1, blank lines count), a Parquet file's
1-based "data row". Values are quoted cut to 40 characters. Quote-free CSVs (all this package writes) are
split with numpy and parsed by pandas' C reader; quoted ones go through the ``csv`` module, with the same
messages.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TRACE_COLUMNS",
    "RELEASE_COLUMNS",
    "RELEASE_TRACES",
    "RELEASE_DIR",
    "MAX_COUNT",
    "read_release_csv",
    "read_trace_file",
    "write_release_csv",
    "empty_trace",
    "check_trace_values",
    "release_trace_path",
]

TRACE_COLUMNS: dict[str, str] = {
    "step": "int64",
    "layer": "int64",
    "head": "int64",
    "query": "int64",
    "queries": "int64",
    "head_dim": "int64",
    "seq_len": "int64",
    "keys_fetched": "int64",
    "key_bits": "int64",
    "key_lsb_bits": "int64",
    "refetch": "bool",
    "refetch_threshold": "float64",
    "query_bits": "int64",
    "values_fetched": "int64",
    "value_bits": "int64",
    "accumulate_importance": "bool",
    "rescale_importance": "bool",
    "token_topk": "int64",
    "value_topk": "int64",
}

RELEASE_COLUMNS: list[str] = [
    "iteration_id",
    "layer_id",
    "head_id",
    "embedding_length_D",
    "sentence_length_L",
    "key_fetch_num",
    "quant_key_bit",
    "quant_query_bit",
    "auto_requant_thres",
    "if_requant",
    "auto_requant_incre",
    "value_fetch_num",
    "quant_value_bit",
    "if_accumulate_importance",
    "if_rescale_previous_importance",
    "if_topk",
    "topk",
]

# release column -> trace column (the booleans and if_topk are handled apart)
_RELEASE_TO_TRACE = {
    "iteration_id": "step",
    "layer_id": "layer",
    "head_id": "head",
    "embedding_length_D": "head_dim",
    "sentence_length_L": "seq_len",
    "key_fetch_num": "keys_fetched",
    "quant_key_bit": "key_bits",
    "quant_query_bit": "query_bits",
    "auto_requant_thres": "refetch_threshold",
    "if_requant": "refetch",
    "auto_requant_incre": "key_lsb_bits",
    "value_fetch_num": "values_fetched",
    "quant_value_bit": "value_bits",
    "if_accumulate_importance": "accumulate_importance",
    "if_rescale_previous_importance": "rescale_importance",
    "topk": "token_topk",
}


# The authors' release files, shipped as package data (spatten.models: data/release/, with their licence).
RELEASE_DIR = Path(__file__).with_name("data") / "release"
RELEASE_TRACES: tuple[str, ...] = (
    "small.csv",
    "summary-gpt2-small-wikitext2-per8.csv",
    "summary-gpt2-small-wikitext2-per8-step1+dedic.csv",
    "summary-gpt2-medium-ptb-per0.csv",
    "summary-gpt2-medium-wikitext2-per0-hp-step5+dedic+glob_p+local_p+hp+topk+quant.csv",
)


def release_trace_path(name: str) -> Path:
    """Path of a shipped release trace, named as in :data:`RELEASE_TRACES` (the ``.csv`` may be left off).

    Raises
    ------
    TypeError
        ``name`` is not a string.
    ValueError
        ``name`` is not one of the shipped files (the message lists them).
    FileNotFoundError
        The package was installed without its data files.
    """
    if not isinstance(name, str):
        raise TypeError(f"release trace name must be a string, got {type(name).__name__}")
    file = name if name.endswith(".csv") else name + ".csv"
    if file not in RELEASE_TRACES:
        raise ValueError(f"release trace {_show(name)} is not one of: {', '.join(RELEASE_TRACES)}")
    p = RELEASE_DIR / file
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing: the package was installed without its data files")
    return p


def empty_trace():
    """An empty trace with the schema's columns and dtypes."""
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TRACE_COLUMNS.items()})


# ---- limits of what the hardware can run --------------------------------------------------------------

MAX_COUNT = 999_999_999  # positions and counts stay below 1e9 (a 1e9-token cache is no workload)
MAX_HEAD_DIM = 1024  # AcceleratorConfig.head_dim range
MAX_BITS = 16  # K, Q and V element widths; a key's MSB + LSB parts (QuantConfig: at most 16)

# column -> (-1 marker allowed, low, high, integer); relations between columns are checked apart
_LIMITS: dict[str, tuple[bool, float, float, bool]] = {
    "step": (False, 0, MAX_COUNT, True),
    "layer": (False, 0, MAX_COUNT, True),
    "head": (False, 0, MAX_COUNT, True),
    "query": (False, 0, MAX_COUNT, True),
    "queries": (False, 0, MAX_COUNT, True),
    "head_dim": (False, 1, MAX_HEAD_DIM, True),
    "seq_len": (False, 0, MAX_COUNT, True),
    "keys_fetched": (False, 0, MAX_COUNT, True),
    "key_bits": (True, 1, MAX_BITS, True),
    "key_lsb_bits": (True, 0, MAX_BITS - 1, True),
    "refetch_threshold": (True, 0, 1, False),
    "query_bits": (True, 1, MAX_BITS, True),
    "values_fetched": (False, 0, MAX_COUNT, True),
    "value_bits": (True, 1, MAX_BITS, True),
    "token_topk": (True, 0, MAX_COUNT, True),
    "value_topk": (True, 0, MAX_COUNT, True),
}

_SHOW = 40  # characters of a value quoted in a message


def _show(v: Any) -> str:
    """A value for a one-line message: numbers as written, other text quoted, cut to a few dozen chars."""
    if isinstance(v, np.datetime64 | np.timedelta64):
        v = str(v)
    elif isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, str):
        try:
            s = v.strip() if math.isfinite(float(v)) else repr(v)
        except ValueError:
            s = repr(v)
    elif isinstance(v, float) and v.is_integer():
        s = str(int(v)) if abs(v) < 1e15 else repr(v)
    else:
        s = repr(v) if not isinstance(v, int | float) else str(v)
    s = " ".join(s.split())  # one line
    return s if len(s) <= _SHOW else s[: _SHOW - 3] + "..."


def _reads_as_bool(v: Any) -> bool:
    """Text such as "True" or "0": a boolean written as text (in a column that should hold booleans)."""
    return isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0")


def _reads_as_number(v: Any) -> bool:
    """Text such as "993": a number written as text (in a DataFrame that should hold numbers)."""
    if not isinstance(v, str | np.str_):
        return False
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


def _range_text(c: str) -> str:
    marker, lo, hi, _ = _LIMITS[c]
    return ("-1 or " if marker else "") + f"{lo}..{hi}"


def _as_float(a: Any, text: bool = True) -> np.ndarray:
    """A column as float64, NaN where an entry is not a real number (booleans and complex numbers are not).

    ``text=False``: numbers written as text (``"993"``) are not numbers either; a DataFrame handed to the
    simulator must hold numbers, the readers of text files parse theirs first.
    """
    a = np.asarray(a)
    if a.dtype.kind in "iuf":
        return a.astype(np.float64)
    if a.dtype.kind not in ("OUST" if text else "O"):  # booleans, complex numbers, dates, ...
        return np.full(a.shape, np.nan)
    import pandas as pd

    s = pd.Series(a.ravel(), dtype=object)
    out = pd.to_numeric(s, errors="coerce").to_numpy()
    if out.dtype.kind == "c" or pd.api.types.infer_dtype(s, skipna=True) not in (
        "integer",
        "floating",
        *(("string",) if text else ()),
    ):
        # a mixed object column: True would count as 1 and 2+1j as 2, so such entries are refused
        odd = (bool, np.bool_, complex, np.complexfloating, *(() if text else (str, bytes)))
        bad = np.fromiter((isinstance(x, odd) for x in s), bool, s.size)
        out = np.where(bad, np.nan, np.real(out))
    return out.astype(np.float64).reshape(a.shape)


def check_trace_values(
    columns: Mapping[str, Any],
    source: str = "trace",
    where: Callable[[int], str] | None = None,
    names: Mapping[str, str] | None = None,
    shown: Mapping[str, Any] | None = None,
) -> None:
    """Refuse values the hardware cannot run, in one line naming source, row, column, value and range.

    Parameters
    ----------
    columns : mapping of trace column name -> 1-d array
        Any subset of :data:`TRACE_COLUMNS` (numbers may be floats; booleans may be 0/1); relations are
        checked when both of their columns are given.
    source : str
        What the rows come from (a file name, or "trace"), first in the message.
    where : callable, optional
        Row position -> its label in the message (default ``"row <i>"``).
    names : mapping, optional
        Trace column -> the name the user wrote (the release CSV's own column names).
    shown : mapping, optional
        Trace column -> the values as written (strings of a CSV), quoted instead of ``columns``.

    Raises
    ------
    ValueError
        At the first refused value (the limits are in the module docstring).
    """
    where = where or (lambda i: f"row {i}")
    names = names or {}
    shown = dict(shown or {})

    def name(c: str) -> str:
        return names.get(c, c)

    def fail(c: str, bad: np.ndarray, why: Callable[[int], str]) -> None:
        i = int(np.flatnonzero(bad)[0])
        v = shown[c][i] if c in shown else col[c][i]
        raise ValueError(f"{source}: {where(i)}: {name(c)} = {_show(v)} {why(i)}")

    col: dict[str, np.ndarray] = {}
    for c in TRACE_COLUMNS:
        if c not in columns:
            continue
        if TRACE_COLUMNS[c] == "bool":
            a = np.asarray(columns[c])
            col[c] = a
            if a.dtype != bool:
                if a.dtype.kind in "iuf":
                    ok = (a == 0) | (a == 1)
                else:  # objects: True, False, 0 and 1 (of any numeric type) hash and compare alike
                    import pandas as pd

                    s = pd.Series(a, dtype=object)
                    ok = s.isin([0, 1]).to_numpy(dtype=bool)
                if not ok.all():
                    fail(
                        c,
                        ~ok,
                        lambda i, a=a: (
                            f"is {'text, ' if _reads_as_bool(a[i]) else ''}not a boolean "
                            "(allowed: True, False, 1, 0)"
                        ),
                    )
            continue
        src = np.asarray(columns[c])
        if src.dtype.kind not in "iuf" and c not in shown:
            shown[c] = src  # quote what was given (text), not its NaN
        a = col[c] = _as_float(src, text=False)
        marker, lo, hi, integer = _LIMITS[c]
        rng = _range_text(c)
        if not np.isfinite(a).all():
            fail(
                c,
                ~np.isfinite(a),
                lambda i, rng=rng, src=src: (
                    f"is {'text (str), ' if _reads_as_number(src[i]) else ''}not a finite number "
                    f"(allowed: {rng})"
                ),
            )
        if integer and (a != np.round(a)).any():
            fail(c, a != np.round(a), lambda i, rng=rng: f"is not an integer (allowed: {rng})")
        out = (a < lo) | (a > hi)
        if marker:
            out &= a != -1
        if out.any():
            fail(c, out, lambda i, rng=rng: f"is outside the allowed range {rng}")

    def rel(c: str, other: str, bad: np.ndarray, marker: bool = False) -> None:
        if bad.any():
            pre = "-1 or " if marker else ""
            hi = col[other]
            fail(c, bad, lambda i: f"is outside the allowed range {pre}0..{hi[i]:.0f} ({name(other)})")

    if "keys_fetched" in col and "seq_len" in col:
        rel("keys_fetched", "seq_len", col["keys_fetched"] > col["seq_len"])
    if "values_fetched" in col and "keys_fetched" in col:
        rel("values_fetched", "keys_fetched", col["values_fetched"] > col["keys_fetched"])
    if "key_lsb_bits" in col and "key_bits" in col:
        kb, lb = col["key_bits"], col["key_lsb_bits"]
        unq = (kb == -1) & (lb > 0)
        if unq.any():
            fail(
                "key_lsb_bits",
                unq,
                lambda i: (
                    f"is outside the allowed range -1 or 0 ({name('key_bits')} = -1: unquantized keys "
                    "have no LSB part)"
                ),
            )
        wide = (kb > 0) & (kb + lb > MAX_BITS)
        if wide.any():
            fail(
                "key_lsb_bits",
                wide,
                lambda i: (
                    f"is outside the allowed range -1 or 0..{MAX_BITS - kb[i]:.0f} "
                    f"({name('key_bits')} = {kb[i]:.0f}; MSB + LSB bits at most {MAX_BITS})"
                ),
            )
    if "value_topk" in col and "keys_fetched" in col:
        rel("value_topk", "keys_fetched", col["value_topk"] > col["keys_fetched"], marker=True)
    if "token_topk" in col and "keys_fetched" in col:
        over = col["token_topk"] > col["keys_fetched"]
        if over.any() and "step" in col and "layer" in col and "seq_len" in col:
            # The last layer's top-k picks the next step's tokens out of the whole cache.
            steps, inv = np.unique(col["step"], return_inverse=True)
            last = np.full(steps.size, -np.inf)
            np.maximum.at(last, inv, col["layer"])
            on_last = col["layer"] == last[inv]
            rel("token_topk", "seq_len", over & on_last & (col["token_topk"] > col["seq_len"]), marker=True)
            over &= ~on_last
        rel("token_topk", "keys_fetched", over, marker=True)


# ---- reading trace files ---------------------------------------------------------------------------------


def _path(p: Path) -> str:
    """A file name for a message, quoted, cut to 200 characters (an argument can be anything)."""
    s = repr(str(p))
    return s if len(s) <= 200 else s[:197] + "..."


def _read_text(p: Path) -> bytes:
    """The file's bytes (a UTF-8 byte-order mark dropped), refused unless they are UTF-8 text."""
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist or is not a regular file"
        raise ValueError(f"trace file {_path(p)} {what}")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ValueError(f"trace file {_path(p)} cannot be read ({e.strerror or type(e).__name__})") from None
    skip = 3 if data.startswith(codecs.BOM_UTF8) else 0
    data = data[skip:]
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise ValueError(f"{p} is not UTF-8 text (it starts with a UTF-16 byte-order mark)")
    nul = data.find(b"\0")
    if nul >= 0:
        raise ValueError(f"{p} is not UTF-8 text (a NUL byte at offset {nul + skip}: a binary file?)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{p} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start + skip}: binary, or "
            "another encoding such as Latin-1 or UTF-16)"
        ) from None
    return data


class _Cells:
    """One column's cells as written, fetched lazily (only a refused row's cell is ever looked at)."""

    def __init__(self, table: _Csv, pos: int) -> None:
        self.table, self.pos = table, pos

    def __getitem__(self, i: int) -> str:
        return self.table.cells(int(i))[self.pos]


class _Csv:
    """A CSV file split into a header and data rows; blank lines are skipped.

    ``lines[j]`` is data row ``j``'s 1-based line number (the header is line 1), ``counts[j]`` its number
    of fields. Quote-free files (every file this package writes) are split with numpy and parsed by
    pandas' C reader; others go through the ``csv`` module.
    """

    header: list[str]
    lines: np.ndarray
    counts: np.ndarray

    def cells(self, j: int) -> list[str]:
        """Data row ``j``'s fields as written, padded with "" to the header's width."""
        raise NotImplementedError

    def frame(self, positions: list[int], n: int):
        """The columns at ``positions`` (named by position) of data rows ``0..n-1``."""
        import pandas as pd

        return pd.DataFrame({q: [self.cells(j)[q] for j in range(n)] for q in positions}, dtype=object)

    def _pad(self, rec: list[str]) -> list[str]:
        return rec + [""] * (len(self.header) - len(rec))


class _FastCsv(_Csv):
    def __init__(
        self, data: bytes, starts: np.ndarray, ends: np.ndarray, commas: np.ndarray, rows: np.ndarray
    ):
        self.data, self.starts, self.ends, self.rows = data, starts, ends, rows
        self.header = data[starts[0] : ends[0]].decode("utf-8").split(",")
        self.lines = rows + 1
        self.counts = commas[rows] + 1

    def cells(self, j: int) -> list[str]:
        r = self.rows[j]
        return self._pad(self.data[self.starts[r] : self.ends[r]].decode("utf-8").split(","))

    def frame(self, positions: list[int], n: int):
        import pandas as pd

        if n == 0:
            return super().frame(positions, 0)
        body = self.data[self.starts[self.rows[0]] : self.ends[self.rows[n - 1]]]
        df = pd.read_csv(
            io.BytesIO(body),
            header=None,
            names=list(range(len(self.header))),
            usecols=positions,
            keep_default_na=False,
            na_values=[],
            skip_blank_lines=True,
            low_memory=False,
            encoding="utf-8",
        )
        if len(df) != n:  # pandas read the lines differently: build the frame from the cells instead
            return super().frame(positions, n)
        return df


def _fast_csv(data: bytes) -> _FastCsv | None:
    """``data`` split with numpy, or None when the csv module's rules are needed (quotes, lone CR, ...)."""
    b = np.frombuffer(data, np.uint8)
    if b.size == 0 or (b == 34).any() or (b >= 128).any():
        return None
    nl = np.flatnonzero(b == 10)
    cr = np.flatnonzero(b == 13)
    if cr.size and not np.isin(cr + 1, nl).all():
        return None
    starts = np.concatenate(([0], nl + 1))
    ends = np.concatenate((nl, [b.size]))
    if starts[-1] == b.size:  # the text ends with a newline
        starts, ends = starts[:-1], ends[:-1]
    ends = ends - ((ends > starts) & (b[np.maximum(ends - 1, 0)] == 13))
    length = ends - starts
    at = np.flatnonzero(b == 44)
    commas = np.searchsorted(at, ends) - np.searchsorted(at, starts)
    # a line of spaces only is blank by the csv module's rule, not by pandas': leave such files to it
    lone = np.flatnonzero((length > 0) & (commas == 0))
    if lone.size > 1000:
        return None
    for r in lone:
        if not data[starts[r] : ends[r]].strip(b" \t\x0b\x0c"):
            return None
    if length[0] == 0:
        return None
    rows = np.flatnonzero(length[1:] > 0) + 1
    return _FastCsv(data, starts, ends, commas, rows)


class _SlowCsv(_Csv):
    def __init__(self, p: Path, text: str) -> None:
        old = csv.field_size_limit()
        csv.field_size_limit(max(old, len(text) + 1))  # long fields are refused by value, cut, not here
        rd = csv.reader(io.StringIO(text, newline=""))
        try:
            self.header = next(rd, None) or []
            rows: list[list[str]] = []
            lines: list[int] = []
            start = rd.line_num + 1
            for rec in rd:
                if len(rec) > 1 or (rec and rec[0].strip()):  # not a blank line
                    rows.append(rec)
                    lines.append(start)
                start = rd.line_num + 1
        except csv.Error as e:
            raise ValueError(f"{p}: line {rd.line_num}: not a readable CSV row ({_show(str(e))})") from None
        finally:
            csv.field_size_limit(old)
        self.rows = rows
        self.lines = np.array(lines, dtype=np.int64)
        self.counts = np.array([len(r) for r in rows], dtype=np.int64)

    def cells(self, j: int) -> list[str]:
        return self._pad(list(self.rows[j]))


def _read_csv(p: Path) -> _Csv:
    """The CSV file at ``p``: UTF-8 text with a header line."""
    data = _read_text(p)
    table = _fast_csv(data) or _SlowCsv(p, data.decode("utf-8"))
    if not table.header or table.header == [""]:
        raise ValueError(f"{p}: not a readable CSV (no header line)")
    return table


def _check_width(p: Path, table: _Csv, n: int) -> None:
    """Refuse the first row with more fields than the header, or of data rows ``0..n-1``, fewer."""
    h = len(table.header)
    wide = table.counts != h
    wide[n:] &= table.counts[n:] > h
    if wide.any():
        j = int(np.flatnonzero(wide)[0])
        raise ValueError(f"{p}: line {table.lines[j]}: {table.counts[j]} fields, the header has {h}")


def _numbers(s) -> np.ndarray:
    """A parsed column as float64; text (and booleans) that is not a number becomes NaN."""
    import pandas as pd

    if s.dtype.kind in "iuf":
        return s.to_numpy(dtype=np.float64)
    return pd.to_numeric(s.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)


def _flags(s, name: str, p: Path, where: Callable[[int], str], cells: _Cells) -> np.ndarray:
    """A parsed column of booleans (True, False, 1, 0; any case, spaces around ignored)."""
    if s.dtype == bool:
        return s.to_numpy()
    t = s.astype(str).str.strip().str.lower()
    ok = t.isin(["true", "false", "1", "0"]).to_numpy()
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"{p}: {where(i)}: {name} = {_show(cells[i])} is not a boolean (allowed: True, False, 1, 0)"
        )
    return t.isin(["true", "1"]).to_numpy()


def _missing_text(missing: list[str]) -> str:
    more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
    return ", ".join(missing[:4]) + more


def read_release_csv(path: str | os.PathLike):
    """Read a release-format workload CSV (or a CSV of the package's own trace schema) into a trace.

    Parameters
    ----------
    path : path-like
        The CSV file, UTF-8 text. Its last line may name the training config (other fields empty). A file
        whose header holds every column of :data:`TRACE_COLUMNS` (and no ``iteration_id``) is read as the
        package's own schema instead (``kv_head`` and ``kv_values_fetched`` are kept when present), one with
        ``key_value_query_fetch_num`` and no ``iteration_id`` as the release's BERT layout
        (:mod:`spatten.models.trace_bert`: each head's row becomes its ``sentence_length_L`` queries).

    Returns
    -------
    (trace, config_name) : (pandas.DataFrame, str or None)
        ``config_name`` is None for a schema CSV.

    Raises
    ------
    ValueError
        Missing or unreadable file, a file that is not UTF-8 text, a row with more fields than the header,
        a missing column, or a value that is not a number / boolean or that the hardware cannot run (see the
        module docstring), in one line naming the file, the line (1-based, the header is line 1), the
        column, the value (cut to 40 characters) and the allowed range.
    """
    p = Path(path)
    table = _read_csv(p)
    header = table.header
    if "iteration_id" not in header and all(c in header for c in TRACE_COLUMNS):
        return _schema_csv(p, table), None
    from spatten.models.trace_bert import is_bert_header, read_bert_table

    if is_bert_header(header):
        return read_bert_table(p, table)
    pos, raw, config_name = release_rows(p, table, RELEASE_COLUMNS, "a release CSV")
    n = len(raw)
    lines = table.lines

    def where(i: int) -> str:
        return f"line {lines[i]}"

    num: dict[str, np.ndarray] = {}
    shown: dict[str, Any] = {}
    flags: dict[str, np.ndarray] = {}
    for rc, tc in _RELEASE_TO_TRACE.items():
        cells = _Cells(table, pos[rc])
        if TRACE_COLUMNS[tc] == "bool":
            flags[tc] = _flags(raw[pos[rc]], rc, p, where, cells)
        else:
            shown[tc] = cells
            num[tc] = _numbers(raw[pos[rc]])
    if_topk = _flags(raw[pos["if_topk"]], "if_topk", p, where, _Cells(table, pos["if_topk"]))
    names = {tc: rc for rc, tc in _RELEASE_TO_TRACE.items()}
    check_trace_values(num, str(p), where, names, shown)
    # if_topk and topk must agree: a k without the flag (or the flag without a k) would be dropped silently
    topk = num["token_topk"]
    for bad, why in (
        (if_topk & (topk < 0), f"is outside the allowed range 0..{MAX_COUNT} (if_topk is True)"),
        (~if_topk & (topk >= 0), "is outside the allowed range -1 (if_topk is False)"),
    ):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"{p}: {where(i)}: topk = {_show(shown['token_topk'][i])} {why}")
    out: dict[str, np.ndarray] = {
        tc: (a.astype(np.int64) if TRACE_COLUMNS[tc] == "int64" else a) for tc, a in num.items()
    }
    out.update(flags)
    out["query"] = np.zeros(n, np.int64)
    out["queries"] = np.ones(n, np.int64)
    # The release marks value pruning only through value_fetch_num < key_fetch_num.
    out["value_topk"] = np.where(out["values_fetched"] < out["keys_fetched"], out["values_fetched"], -1)
    import pandas as pd

    df = pd.DataFrame({c: out[c] for c in TRACE_COLUMNS})
    return df.astype(TRACE_COLUMNS), config_name


def release_rows(p: Path, table: _Csv, columns: list[str], what: str):
    """The data rows of a release-layout ``table`` with ``columns``: ``(positions, frame, config_name)``.

    Refuses missing columns, rows wider (or, but for the config line, narrower) than the header and a file
    without rows. A last line whose fields after the first are all empty names the config.
    """
    missing = [c for c in columns if c not in table.header]
    if missing:
        raise ValueError(
            f"{p}: line 1: missing column(s) {_missing_text(missing)} ({what} has "
            f"{len(columns)}: {columns[0]} .. {columns[-1]})"
        )
    pos = {c: table.header.index(c) for c in columns}
    n = len(table.lines)
    config_name = None
    if n:
        last = table.cells(n - 1)
        if all(last[pos[c]] == "" for c in columns[1:]):
            config_name = last[pos[columns[0]]] or None
            n -= 1
    _check_width(p, table, n)  # the config line may be short (a bare name)
    if n == 0:
        raise ValueError(f"{p}: no request rows")
    return pos, table.frame([pos[c] for c in columns], n), config_name


def _schema_csv(p: Path, table: _Csv):
    """A CSV of the package's own schema (``DataFrame.to_csv(index=False)`` of a trace), checked."""
    import pandas as pd
    from spatten.models.gqa import GQA_COLUMNS, with_gqa_columns

    header = table.header
    cols = [c for c in (*TRACE_COLUMNS, *GQA_COLUMNS) if c in header]
    pos = {c: header.index(c) for c in cols}
    n = len(table.lines)
    _check_width(p, table, n)
    if n == 0:
        raise ValueError(f"{p}: no request rows")
    raw = table.frame([pos[c] for c in cols], n)
    lines = table.lines

    def where(i: int) -> str:
        return f"line {lines[i]}"

    out: dict[str, np.ndarray] = {}
    shown: dict[str, Any] = {c: _Cells(table, pos[c]) for c in cols}
    for c in cols:
        if TRACE_COLUMNS.get(c) == "bool":
            out[c] = _flags(raw[pos[c]], c, p, where, shown[c])
        else:
            out[c] = _numbers(raw[pos[c]])
    check_trace_values({c: out[c] for c in TRACE_COLUMNS}, str(p), where, None, shown)
    gqa = [c for c in GQA_COLUMNS if c in out]
    df = pd.DataFrame({c: out[c] for c in cols}).astype({c: TRACE_COLUMNS[c] for c in TRACE_COLUMNS})
    if gqa:
        df = with_gqa_columns(df, source=str(p), where=where, shown=shown)
    return df


def read_trace_file(path: str | os.PathLike):
    """Read and check a trace file: a release CSV, a CSV of the package's schema, or a ``.parquet`` trace.

    Every value is checked as :func:`check_trace_values` and (for ``kv_head`` / ``kv_values_fetched``)
    :func:`spatten.models.gqa.with_gqa_columns` do. A refusal is one line naming the file, the row (a CSV's
    1-based line, the header being line 1; a Parquet file's 1-based "data row"), the column, the value cut
    to 40 characters and the allowed range.

    Returns
    -------
    pandas.DataFrame
        The trace (schema columns with the schema's dtypes; other columns kept as read).
    """
    p = Path(path)
    if p.suffix.lower() != ".parquet":
        return read_release_csv(p)[0]
    import pandas as pd
    from spatten.models.gqa import GQA_COLUMNS, with_gqa_columns

    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist or is not a regular file"
        raise ValueError(f"trace file {_path(p)} {what}")
    try:
        t = pd.read_parquet(p)
    except ImportError as e:
        raise ValueError(f"{p}: reading Parquet needs pyarrow ({_show(str(e))})") from None
    except Exception as e:  # pyarrow's errors on damaged files are of many kinds; each is the file's fault
        why = (str(e).splitlines() or [type(e).__name__])[0]
        why = why.split("': ", 1)[-1]  # drop pyarrow's "Could not open Parquet input source '<path>'"
        why = why if len(why) <= 60 else why[:57] + "..."
        raise ValueError(f"{p} is not a readable Parquet file ({why})") from None
    if not isinstance(t, pd.DataFrame) or not t.columns.is_unique:
        raise ValueError(f"{p}: a trace's columns must have distinct names")
    missing = [c for c in TRACE_COLUMNS if c not in t.columns]
    if missing:
        raise ValueError(f"{p}: missing column(s) {_missing_text(missing)}")
    if len(t) == 0:
        raise ValueError(f"{p}: no request rows")

    def where(i: int) -> str:
        return f"data row {i + 1}"

    cols = {c: t[c].to_numpy() for c in TRACE_COLUMNS}
    check_trace_values(cols, str(p), where)
    t = t.reset_index(drop=True)
    for c, kind in TRACE_COLUMNS.items():
        if kind != "bool":
            t[c] = _as_float(cols[c]).astype(kind)
        else:
            t[c] = cols[c].astype(bool)
    if any(c in t.columns for c in GQA_COLUMNS):
        t = with_gqa_columns(t, source=str(p), where=where)
    return t


def _fmt_bool(a) -> list[str]:
    return ["True" if v else "False" for v in a]


def write_release_csv(
    trace, path: str | os.PathLike, config_name: str | None = None, layout: str = "gpt2"
) -> None:
    """Write a trace in the release CSV layout (one row per (step, layer, head)).

    Rows with several queries (summarization) are written as they are; the release format has no query
    column, so such a file replays with ``queries = 1`` per row. Written atomically.
    ``layout="bert"``: the release's BERT layout instead, one row per (layer, head)
    (:func:`spatten.models.trace_bert.write_bert_csv`).
    """
    import pandas as pd

    if layout == "bert":
        from spatten.models.trace_bert import write_bert_csv

        return write_bert_csv(trace, path, config_name)
    if layout != "gpt2":
        raise ValueError(f"layout = {layout!r} must be 'gpt2' or 'bert'")
    missing = [c for c in TRACE_COLUMNS if c not in trace.columns]
    if missing:
        raise ValueError(f"trace is missing column(s) {', '.join(missing)}")
    if "kv_head" in trace.columns and (trace["kv_head"].to_numpy() != trace["head"].to_numpy()).any():
        raise ValueError(
            "the release CSV cannot express grouped-query attention (kv_head != head): keep the trace as "
            "Parquet (spatten simulate --out) instead"
        )

    def ints(col: str) -> list[str]:
        return [str(int(v)) for v in trace[col]]

    # The release's own layout: integers everywhere except D (written as a float, e.g. "64.0") and the
    # threshold; booleans as True/False; "-1" for absent values.
    rel = pd.DataFrame(
        {
            "iteration_id": ints("step"),
            "layer_id": ints("layer"),
            "head_id": ints("head"),
            "embedding_length_D": trace["head_dim"].astype(float).map(repr),
            "sentence_length_L": ints("seq_len"),
            "key_fetch_num": ints("keys_fetched"),
            "quant_key_bit": ints("key_bits"),
            "quant_query_bit": ints("query_bits"),
            "auto_requant_thres": [_fmt_thres(v) for v in trace["refetch_threshold"]],
            "if_requant": _fmt_bool(trace["refetch"]),
            "auto_requant_incre": ints("key_lsb_bits"),
            "value_fetch_num": ints("values_fetched"),
            "quant_value_bit": ints("value_bits"),
            "if_accumulate_importance": _fmt_bool(trace["accumulate_importance"]),
            "if_rescale_previous_importance": _fmt_bool(trace["rescale_importance"]),
            "if_topk": _fmt_bool(trace["token_topk"] >= 0),
            "topk": [str(int(v)) if v >= 0 else "-1" for v in trace["token_topk"]],
        },
        columns=RELEASE_COLUMNS,
    )
    if config_name is not None and ("," in config_name or "\n" in config_name or not config_name):
        raise ValueError(f"config_name = {config_name!r} must be non-empty without commas or newlines")
    write_table(rel, Path(path), config_name)


def write_table(rel, p: Path, config_name: str | None) -> None:
    """Write a release-layout table, then the config line if any; atomically, no partial file on failure."""
    if p.exists() and not p.is_file():  # a device or a folder: renaming over it would replace it
        raise ValueError(f"{str(p)[:80]!r} is not a regular file: the trace is written only to a file")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            rel.to_csv(f, index=False, lineterminator="\n")
            if config_name is not None:
                f.write(config_name + "," * (len(rel.columns) - 1) + "\n")
        tmp.replace(p)
    finally:  # no partial file is left behind on failure
        if tmp.exists():
            tmp.unlink()


def _fmt_thres(v: float) -> str:
    return "-1" if v == -1 else repr(float(v))
