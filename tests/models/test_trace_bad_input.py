"""Bad trace files and DataFrames: one line naming the file, the row, the column, a cut value, the range.

Covers what ``tests/sim/test_trace_checks.py`` does not: files that are not UTF-8 text, 1 MB fields, rows
wider or narrower than the header, CSVs of the package's own schema, Parquet traces
(``read_trace_file``), the csv-module path (quoted files) against the numpy/pandas path, and DataFrames
whose numeric columns hold booleans, complex numbers, text or duplicate names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from spatten.models.config import replace_path, workload_preset
from spatten.models.gqa import GQA_COLUMNS, with_gqa_columns
from spatten.models.trace import (
    RELEASE_COLUMNS,
    RELEASE_TRACES,
    TRACE_COLUMNS,
    read_release_csv,
    read_trace_file,
    release_trace_path,
)
from spatten.models.workload import shape_trace
from spatten.sim.simulate import check_trace

from spatten.cli import main

HEADER = ",".join(RELEASE_COLUMNS)
GOOD = dict(
    zip(
        RELEASE_COLUMNS,
        "0,0,0,64.0,993,993,6,16,0.05,True,4,204,6,True,False,False,-1".split(","),
        strict=True,
    )
)
CONFIG = "cfg.yml" + "," * 16
BIG = "x" * 1_000_000  # a 1 MB field


def _row(**kw: str) -> str:
    return ",".join({**GOOD, **kw}[c] for c in RELEASE_COLUMNS)


def _write(tmp_path: Path, *lines: str, name: str = "t.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _refused(path: Path, reader=read_release_csv) -> str:
    with pytest.raises(ValueError) as e:
        reader(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    assert len(msg) < len(str(path)) + 170, msg  # a value is quoted cut, never whole
    return msg


# ---- not UTF-8 text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s.replace("cfg", "cfg\u00e9").encode("latin-1"),
        lambda s: s.encode("utf-16"),  # with its byte-order mark
        lambda s: s.encode("utf-16-le"),  # without: NUL bytes
        lambda s: bytes(range(256)) * 40,
        lambda s: b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)),
    ],
    ids=["latin-1", "utf-16", "utf-16-le", "binary", "png"],
)
def test_files_that_are_not_utf8_text(tmp_path: Path, encode) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(encode("\n".join([HEADER, _row(), CONFIG]) + "\n"))
    assert _refused(p).startswith(f"{p} is not UTF-8 text (")
    assert _refused(p, read_trace_file).startswith(f"{p} is not UTF-8 text (")


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_bytes(b"\xef\xbb\xbf" + ("\n".join([HEADER, _row(), CONFIG]) + "\n").encode())
    t, cfg = read_release_csv(p)
    assert len(t) == 1 and cfg == "cfg.yml"


# ---- long fields, extra and missing fields ----------------------------------------------------------------


@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
@pytest.mark.parametrize(
    "column, needle",
    [("key_fetch_num", "is not a finite number"), ("if_requant", "is not a boolean"), ("topk", "finite")],
)
def test_a_1mb_field_is_named_and_cut(tmp_path: Path, quoted: bool, column: str, needle: str) -> None:
    value = f'"{BIG}"' if quoted else BIG
    p = _write(tmp_path, HEADER, _row(), _row(**{column: value}), CONFIG)
    msg = _refused(p)
    assert msg.startswith(f"{p}: line 3: {column} = 'xxxx") and "..." in msg and needle in msg


@pytest.mark.parametrize("extra", [",extra,more", "," + BIG, ',"' + BIG + '"'], ids=["two", "1mb", "quoted"])
def test_a_row_wider_than_the_header(tmp_path: Path, extra: str) -> None:
    p = _write(tmp_path, HEADER, _row(), _row() + extra, CONFIG)
    n = 17 + extra.count(",")
    assert _refused(p) == f"{p}: line 3: {n} fields, the header has 17"


def test_a_row_narrower_than_the_header(tmp_path: Path) -> None:
    p = _write(tmp_path, HEADER, _row(), "0,0,0,64.0,993", CONFIG)
    assert _refused(p) == f"{p}: line 3: 5 fields, the header has 17"
    p = _write(tmp_path, HEADER, _row(), '0,0,"0,64.0')  # an unterminated quote swallows the rest
    assert _refused(p) == f"{p}: line 3: 3 fields, the header has 17"
    # the config line alone may be a bare name
    assert read_release_csv(_write(tmp_path, HEADER, _row(), "cfg.yml"))[1] == "cfg.yml"


def test_a_header_that_names_nothing_is_cut(tmp_path: Path) -> None:
    p = _write(tmp_path, "h" * 1_000_000, _row())
    msg = _refused(p)
    assert (
        msg.startswith(f"{p}: line 1: missing column(s) iteration_id, layer_id, head_id") and "13 more" in msg
    )


@pytest.mark.parametrize(
    "column, value, needle",
    [
        ("embedding_length_D", "inf", "embedding_length_D = 'inf' is not a finite number (allowed: 1..1024)"),
        (
            "auto_requant_thres",
            "nan",
            "auto_requant_thres = 'nan' is not a finite number (allowed: -1 or 0..1)",
        ),
        ("key_fetch_num", "-inf", "key_fetch_num = '-inf' is not a finite number (allowed: 0..999999999)"),
        ("key_fetch_num", "1e18", "key_fetch_num = 1e18 is outside the allowed range 0..999999999"),
        (
            "value_fetch_num",
            "994",
            "value_fetch_num = 994 is outside the allowed range 0..993 (key_fetch_num)",
        ),
        ("iteration_id", "-1", "iteration_id = -1 is outside the allowed range 0..999999999"),
        ("auto_requant_incre", "64", "auto_requant_incre = 64 is outside the allowed range -1 or 0..15"),
    ],
)
@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted"])
def test_both_csv_paths_give_the_same_message(
    tmp_path: Path, quoted: bool, column: str, value: str, needle: str
) -> None:
    """Quote-free files are split with numpy and parsed by pandas, quoted ones by the csv module."""
    last = '"cfg.yml"' + "," * 16 if quoted else CONFIG
    p = _write(tmp_path, HEADER, _row(), "", _row(layer_id="1", **{column: value}), last)
    assert _refused(p) == f"{p}: line 4: {needle}"


@pytest.mark.parametrize("name", RELEASE_TRACES)
def test_both_csv_paths_read_the_shipped_traces_alike(tmp_path: Path, name: str) -> None:
    path = release_trace_path(name)
    want, cfg = read_release_csv(path)
    lines = path.read_text().splitlines()
    quoted = _write(tmp_path, *lines[:-1], '"' + lines[-1].split(",")[0] + '"' + "," * 16, name="q.csv")
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(("\r\n".join([lines[0], "", *lines[1:]]) + "\r\n\r\n").encode())
    for p in (quoted, crlf):
        got, got_cfg = read_release_csv(p)
        pd.testing.assert_frame_equal(got, want)
        assert got_cfg == cfg


# ---- the package's own schema: CSV and Parquet ------------------------------------------------------------


@pytest.fixture(scope="module")
def gqa_trace() -> pd.DataFrame:
    """A small SmolLM2 shape trace (9 query heads on 3 K/V heads: kv_head and kv_values_fetched)."""
    w = replace_path(workload_preset("smollm2", prompt_len=64), "model.gen_tokens", 1)
    return shape_trace(w).reset_index(drop=True)


def test_schema_csv_and_parquet_read_back(tmp_path: Path, gqa_trace: pd.DataFrame) -> None:
    gqa_trace.to_csv(tmp_path / "t.csv", index=False)
    gqa_trace.to_parquet(tmp_path / "t.parquet", index=False)
    for p in (tmp_path / "t.csv", tmp_path / "t.parquet"):
        got = read_trace_file(p)
        pd.testing.assert_frame_equal(got[list(gqa_trace.columns)], gqa_trace)
        check_trace(got)
    assert read_release_csv(tmp_path / "t.csv")[1] is None


OUT = "is outside the allowed range"
NOT_FINITE = "is not a finite number (allowed:"
SCHEMA_CASES = [
    ("head_dim", 0, f"{OUT} 1..1024"),
    ("head_dim", 10**15, f"{OUT} 1..1024"),
    ("head_dim", 2048, f"{OUT} 1..1024"),
    ("keys_fetched", 10**9, f"{OUT} 0..999999999"),
    ("keys_fetched", 10**18, f"{OUT} 0..999999999"),
    ("keys_fetched", 66, f"{OUT} 0..65 (seq_len)"),
    ("values_fetched", 66, f"{OUT} 0..65 (keys_fetched)"),
    ("layer", -1, f"{OUT} 0..999999999"),
    ("step", -1, f"{OUT} 0..999999999"),
    ("head", -1, f"{OUT} 0..999999999"),
    ("query", -1, f"{OUT} 0..999999999"),
    ("refetch_threshold", -0.5, f"{OUT} -1 or 0..1"),
    ("refetch_threshold", 1.5, f"{OUT} -1 or 0..1"),
    ("refetch_threshold", np.inf, f"{NOT_FINITE} -1 or 0..1)"),
    ("refetch_threshold", np.nan, f"{NOT_FINITE} -1 or 0..1)"),
    ("key_lsb_bits", 64, f"{OUT} -1 or 0..15"),
    ("key_bits", 64, f"{OUT} -1 or 1..16"),
    ("value_bits", 0, f"{OUT} -1 or 1..16"),
    ("seq_len", np.inf, f"{NOT_FINITE} 0..999999999)"),
    ("kv_values_fetched", 66, "is outside values_fetched..keys_fetched (allowed on this row: 32..65)"),
    ("kv_values_fetched", np.inf, "is outside finite numbers (allowed on this row: 32..65)"),
    ("kv_head", -1, "is outside 0..head (allowed on this row: 0..3)"),
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("column, value, allowed", SCHEMA_CASES, ids=[f"{c}={v}" for c, v, _ in SCHEMA_CASES])
def test_schema_files_refuse(
    tmp_path: Path, gqa_trace: pd.DataFrame, fmt: str, column, value, allowed
) -> None:
    t = gqa_trace.copy()
    if not float(value).is_integer() or not np.isfinite(value):
        t[column] = t[column].astype(np.float64)
    t.loc[3, column] = value
    p = tmp_path / f"t.{fmt}"
    t.to_csv(p, index=False) if fmt == "csv" else t.to_parquet(p, index=False)
    row = "line 5" if fmt == "csv" else "data row 4"  # the header is line 1; data rows count from 1
    msg = _refused(p, read_trace_file)
    assert msg.startswith(f"{p}: {row}: {column} = "), msg
    assert allowed in msg, msg


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("column", ["keys_fetched", "kv_values_fetched", "refetch"])
def test_schema_files_cut_a_1mb_cell(tmp_path: Path, gqa_trace: pd.DataFrame, fmt: str, column: str) -> None:
    t = gqa_trace.copy()
    t[column] = t[column].astype(str)
    t.loc[2, column] = BIG
    p = tmp_path / f"t.{fmt}"
    t.to_csv(p, index=False) if fmt == "csv" else t.to_parquet(p, index=False)
    msg = _refused(p, read_trace_file)
    if fmt == "csv":
        assert msg.startswith(f"{p}: line 4: {column} = 'xxxx") and "..." in msg
    else:  # Parquet columns are typed: a column of text is refused at its first row
        assert msg.startswith(f"{p}: data row 1: {column} = ") and "text" in msg


def test_damaged_parquet_files(tmp_path: Path, gqa_trace: pd.DataFrame) -> None:
    good = tmp_path / "good.parquet"
    gqa_trace.to_parquet(good, index=False)
    for name, data in [
        ("empty", b""),
        ("garbage", b"PAR1" + bytes(range(256)) * 4),
        ("truncated", good.read_bytes()[:300]),
    ]:
        p = tmp_path / f"{name}.parquet"
        p.write_bytes(data)
        assert _refused(p, read_trace_file).startswith(f"{p} is not a readable Parquet file (")
    p = tmp_path / "cols.parquet"
    gqa_trace.drop(columns=["seq_len"]).to_parquet(p)
    assert _refused(p, read_trace_file) == f"{p}: missing column(s) seq_len"
    p = tmp_path / "norows.parquet"
    gqa_trace.iloc[:0].to_parquet(p)
    assert _refused(p, read_trace_file) == f"{p}: no request rows"


# ---- DataFrames handed to the simulator ------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    t, _ = read_release_csv(release_trace_path("summary-gpt2-small-wikitext2-per8"))
    return t.iloc[:6].copy()


def _frame_refused(t: pd.DataFrame) -> str:
    with pytest.raises(ValueError) as e:
        check_trace(t)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("trace: ") and len(msg) < 160, msg
    return msg


@pytest.mark.parametrize(
    "value, needle",
    [
        (True, "keys_fetched = True is not a finite number"),
        (2 + 1j, "keys_fetched = (2+1j) is not a finite number"),
        ("993", "keys_fetched = 993 is text (str), not a finite number"),
        (BIG, "keys_fetched = 'xxxx"),
    ],
)
def test_numeric_columns_hold_real_numbers(value, needle: str) -> None:
    t = _frame()
    t["keys_fetched"] = t["keys_fetched"].astype(object)
    t.loc[2, "keys_fetched"] = value
    assert _frame_refused(t).startswith(f"trace: row 2: {needle}")


def test_whole_columns_of_the_wrong_kind() -> None:
    t = _frame()
    t["keys_fetched"] = t["keys_fetched"] > 0
    assert _frame_refused(t).startswith("trace: row 0: keys_fetched = True is not a finite number")
    t = _frame()
    t["keys_fetched"] = t["keys_fetched"].astype(np.complex128)
    assert _frame_refused(t).startswith("trace: row 0: keys_fetched = (993+0j) is not a finite number")
    t = _frame()
    t["refetch"] = t["refetch"].astype(str)
    assert (
        _frame_refused(t)
        == "trace: row 0: refetch = 'True' is text, not a boolean (allowed: True, False, 1, 0)"
    )
    t = _frame()
    t["refetch"] = t["refetch"].astype(np.int64)  # 0 and 1 are booleans
    check_trace(t)
    t.loc[4, "refetch"] = 2
    assert _frame_refused(t) == "trace: row 4: refetch = 2 is not a boolean (allowed: True, False, 1, 0)"


def test_duplicate_columns_are_refused() -> None:
    t = _frame()
    t = pd.concat([t, t[["seq_len"]]], axis=1)
    assert _frame_refused(t) == "trace: column seq_len appears 2 times (allowed: once)"


def test_gqa_columns_name_the_value_and_the_row_range() -> None:
    t = _frame()
    t["kv_head"] = t["head"]
    t["kv_values_fetched"] = t["values_fetched"].astype(object)
    t.loc[1, "kv_values_fetched"] = BIG
    with pytest.raises(ValueError) as e:
        with_gqa_columns(t, source="f.parquet", where=lambda i: f"data row {i + 1}")
    msg = str(e.value)
    assert msg.startswith("f.parquet: data row 2: kv_values_fetched = 'xxxx") and len(msg) < 160
    assert msg.endswith("(allowed on this row: 204..993)")
    assert set(GQA_COLUMNS) <= set(with_gqa_columns(_frame()).columns)


# ---- the command line -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, needle",
    [
        ("utf-16", "t.csv is not UTF-8 text (it starts with a UTF-16 byte-order mark)"),
        ("1mb", "t.csv: line 2: key_fetch_num = 'xxxxxxxxx"),
        ("extra", "t.csv: line 2: 18 fields, the header has 17"),
    ],
)
def test_cli_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, needle: str
) -> None:
    p = tmp_path / "t.csv"
    text = "\n".join([HEADER, _row(), CONFIG]) + "\n"
    if kind == "utf-16":
        p.write_bytes(text.encode("utf-16"))
    else:
        extra = _row(key_fetch_num=BIG) if kind == "1mb" else _row() + ",x"
        p.write_text("\n".join([HEADER, extra, CONFIG]) + "\n")
    out = tmp_path / "out"
    assert main(["simulate", "--trace", str(p), "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1 and "Traceback" not in cap.err
    assert needle in cap.err and len(cap.err) < len(str(p)) + 200
    assert not out.exists()


def test_trace_columns_unchanged() -> None:
    """The schema these checks cover (a new column needs a limit in models.trace._LIMITS)."""
    from spatten.models.trace import _LIMITS

    assert {c for c, t in TRACE_COLUMNS.items() if t != "bool"} == set(_LIMITS)
