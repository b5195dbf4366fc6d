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

Every number must be finite; integer columns must hold integers.
"""

from __future__ import annotations

import csv
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
    if isinstance(v, np.generic):
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


def _range_text(c: str) -> str:
    marker, lo, hi, _ = _LIMITS[c]
    return ("-1 or " if marker else "") + f"{lo}..{hi}"


def _as_float(a: Any) -> np.ndarray:
    """A column as float64 (NaN where an entry is not a number)."""
    a = np.asarray(a)
    if a.dtype.kind in "biuf":
        return a.astype(np.float64)
    import pandas as pd

    return pd.to_numeric(pd.Series(a, dtype=object), errors="coerce").to_numpy(dtype=np.float64)


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
                ok = np.array([isinstance(x, bool | np.bool_) or (_is_num(x) and x in (0, 1)) for x in a])
                if not ok.all():
                    fail(c, ~ok, lambda i: "is not a boolean (allowed: True, False, 1, 0)")
            continue
        src = np.asarray(columns[c])
        if src.dtype.kind not in "biuf" and c not in shown:
            shown[c] = src  # quote what was given (text), not its NaN
        a = col[c] = _as_float(src)
        marker, lo, hi, integer = _LIMITS[c]
        rng = _range_text(c)
        if not np.isfinite(a).all():
            fail(c, ~np.isfinite(a), lambda i, rng=rng: f"is not a finite number (allowed: {rng})")
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


def _is_num(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def _as_bool(col, name: str, path: str, where: Callable[[int], str]) -> np.ndarray:
    s = col.astype(str).str.strip().str.lower()
    ok = s.isin(["true", "false", "1", "0"]).to_numpy()
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise ValueError(
            f"{path}: {where(i)}: {name} = {_show(str(col.iloc[i]))} is not a boolean "
            "(allowed: True, False, 1, 0)"
        )
    return s.isin(["true", "1"]).to_numpy()


def _read_rows(p: Path) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (blank lines skipped) and each row's 1-based line number."""
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            rd = csv.reader(f)
            header = next(rd, None)
            if not header:
                raise ValueError(f"{p}: not a readable CSV (no header line)")
            rows: list[list[str]] = []
            lines: list[int] = []
            start = rd.line_num + 1
            for rec in rd:
                if len(rec) > 1 or (rec and rec[0].strip()):  # not a blank line
                    rows.append(rec)
                    lines.append(start)
                start = rd.line_num + 1
    except (UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{p}: not a readable CSV ({_show(str(e).splitlines()[0])})") from None
    return header, rows, lines


def read_release_csv(path: str | os.PathLike):
    """Read a release-format workload CSV into a trace.

    Parameters
    ----------
    path : path-like
        The CSV file. Its last line may name the training config (other fields empty).

    Returns
    -------
    (trace, config_name) : (pandas.DataFrame, str or None)

    Raises
    ------
    ValueError
        Missing or unreadable file, a missing column, or a value that is not a number / boolean or that
        the hardware cannot run (see the module docstring), in one line naming the file, the line (1-based,
        the header is line 1), the column, the value and the allowed range.
    """
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        what = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ValueError(f"trace file {str(p)!r} {what}")
    header, rows, lines = _read_rows(p)
    missing = [c for c in RELEASE_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{p}: missing column(s) {', '.join(missing)}")
    for rec, line in zip(rows, lines, strict=True):
        if len(rec) > len(header):
            raise ValueError(f"{p}: line {line}: {len(rec)} fields, the header has {len(header)}")
        rec.extend([""] * (len(header) - len(rec)))  # short rows (a bare config name) are padded
    pos = {c: header.index(c) for c in RELEASE_COLUMNS}
    config_name = None
    if rows and all(rows[-1][pos[c]] == "" for c in RELEASE_COLUMNS[1:]):
        config_name = rows[-1][pos["iteration_id"]] or None
        rows, lines = rows[:-1], lines[:-1]
    if not rows:
        raise ValueError(f"{p}: no request rows")
    raw = pd.DataFrame([[r[pos[c]] for c in RELEASE_COLUMNS] for r in rows], columns=RELEASE_COLUMNS)

    def where(i: int) -> str:
        return f"line {lines[i]}"

    num: dict[str, np.ndarray] = {}
    shown: dict[str, np.ndarray] = {}
    flags: dict[str, np.ndarray] = {}
    for rc, tc in _RELEASE_TO_TRACE.items():
        if TRACE_COLUMNS[tc] == "bool":
            flags[tc] = _as_bool(raw[rc], rc, str(p), where)
        else:
            shown[tc] = raw[rc].to_numpy()
            num[tc] = pd.to_numeric(raw[rc].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    if_topk = _as_bool(raw["if_topk"], "if_topk", str(p), where)
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
    n = len(raw)
    out["query"] = np.zeros(n, np.int64)
    out["queries"] = np.ones(n, np.int64)
    # The release marks value pruning only through value_fetch_num < key_fetch_num.
    out["value_topk"] = np.where(out["values_fetched"] < out["keys_fetched"], out["values_fetched"], -1)
    df = pd.DataFrame({c: out[c] for c in TRACE_COLUMNS})
    return df.astype(TRACE_COLUMNS), config_name


def _fmt_bool(a) -> list[str]:
    return ["True" if v else "False" for v in a]


def write_release_csv(trace, path: str | os.PathLike, config_name: str | None = None) -> None:
    """Write a trace in the release CSV layout (one row per (step, layer, head)).

    Rows with several queries (summarization) are written as they are; the release format has no query
    column, so such a file replays with ``queries = 1`` per row. Written atomically.
    """
    import pandas as pd

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
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", newline="") as f:
            rel.to_csv(f, index=False, lineterminator="\n")
            if config_name is not None:
                f.write(config_name + "," * (len(RELEASE_COLUMNS) - 1) + "\n")
        tmp.replace(p)
    finally:  # no partial file is left behind on failure
        if tmp.exists():
            tmp.unlink()


def _fmt_thres(v: float) -> str:
    return "-1" if v == -1 else repr(float(v))
