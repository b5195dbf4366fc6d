"""Trace values the hardware cannot run are refused in one line: file (or "trace"), row, column, value, range.

Two entry points share the limits (``models.trace.check_trace_values``): ``read_release_csv`` names the CSV's
1-based line and the release's column names; ``sim.simulate.check_trace`` (every simulation of a trace built
in Python) names the row's index label and the schema's column names. Everything shipped must pass.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from spatten.models.config import MODELS, workload_preset
from spatten.models.trace import (
    RELEASE_COLUMNS,
    RELEASE_TRACES,
    TRACE_COLUMNS,
    read_release_csv,
    release_trace_path,
)
from spatten.models.workload import shape_trace
from spatten.sim.api import simulate
from spatten.sim.simulate import check_trace

from spatten.cli import main

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
HEADER = ",".join(RELEASE_COLUMNS)
# step 0, layer 0, head 0, D 64, L 993, 993 keys, 6-bit K + 4-bit LSB at 0.05, 16-bit Q, 204 values of 6 bit
GOOD_TEXT = "0,0,0,64.0,993,993,6,16,0.05,True,4,204,6,True,False,False,-1"
GOOD = dict(zip(RELEASE_COLUMNS, GOOD_TEXT.split(","), strict=True))


def _row(**kw: str) -> str:
    return ",".join({**GOOD, **kw}[c] for c in RELEASE_COLUMNS)


GOOD_ROW = _row()


def _csv(tmp_path: Path, *rows: str) -> Path:
    p = tmp_path / "bad.csv"
    p.write_text("\n".join([HEADER, *rows, "cfg.yml" + "," * 16]) + "\n")
    return p


def _refused(path: Path) -> str:
    with pytest.raises(ValueError) as e:
        read_release_csv(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{path}: line ")
    return msg


# ---- the release CSV: one refusal per limit ---------------------------------------------------------------

RANGE = "is outside the allowed range"
BIG = "0..999999999"

CASES = [
    # counts against the cache and each other
    ({"key_fetch_num": "994"}, f"key_fetch_num = 994 {RANGE} 0..993 (sentence_length_L)"),
    ({"value_fetch_num": "994"}, f"value_fetch_num = 994 {RANGE} 0..993 (key_fetch_num)"),
    (
        {"key_fetch_num": "500", "value_fetch_num": "600"},
        f"value_fetch_num = 600 {RANGE} 0..500 (key_fetch_num)",
    ),
    # head size
    ({"embedding_length_D": "0.0"}, f"embedding_length_D = 0.0 {RANGE} 1..1024"),
    ({"embedding_length_D": "2048"}, f"embedding_length_D = 2048 {RANGE} 1..1024"),
    # positions
    ({"iteration_id": "-1"}, f"iteration_id = -1 {RANGE} {BIG}"),
    ({"layer_id": "-2"}, f"layer_id = -2 {RANGE} {BIG}"),
    ({"head_id": "-1"}, f"head_id = -1 {RANGE} {BIG}"),
    # threshold: -1 (off) or a probability
    ({"auto_requant_thres": "-0.5"}, f"auto_requant_thres = -0.5 {RANGE} -1 or 0..1"),
    ({"auto_requant_thres": "1.5"}, f"auto_requant_thres = 1.5 {RANGE} -1 or 0..1"),
    (
        {"auto_requant_thres": "inf"},
        "auto_requant_thres = 'inf' is not a finite number (allowed: -1 or 0..1)",
    ),
    (
        {"auto_requant_thres": "nan"},
        "auto_requant_thres = 'nan' is not a finite number (allowed: -1 or 0..1)",
    ),
    # bit widths: -1 or 1..16
    ({"quant_key_bit": "0"}, f"quant_key_bit = 0 {RANGE} -1 or 1..16"),
    ({"quant_key_bit": "17"}, f"quant_key_bit = 17 {RANGE} -1 or 1..16"),
    ({"quant_query_bit": "32"}, f"quant_query_bit = 32 {RANGE} -1 or 1..16"),
    ({"quant_value_bit": "-2"}, f"quant_value_bit = -2 {RANGE} -1 or 1..16"),
    ({"quant_value_bit": "64"}, f"quant_value_bit = 64 {RANGE} -1 or 1..16"),
    # the LSB increment: at most 16 bits with the MSBs, none on unquantized keys
    ({"auto_requant_incre": "64"}, f"auto_requant_incre = 64 {RANGE} -1 or 0..15"),
    (
        {"auto_requant_incre": "12"},
        f"auto_requant_incre = 12 {RANGE} -1 or 0..10 (quant_key_bit = 6; MSB + LSB bits at most 16)",
    ),
    (
        {"quant_key_bit": "12", "auto_requant_incre": "5"},
        f"auto_requant_incre = 5 {RANGE} -1 or 0..4 (quant_key_bit = 12; MSB + LSB bits at most 16)",
    ),
    (
        {"quant_key_bit": "-1", "auto_requant_incre": "4"},
        f"auto_requant_incre = 4 {RANGE} -1 or 0 (quant_key_bit = -1: unquantized keys have no LSB part)",
    ),
    # the token top-k (one-row file: its layer is the step's last, so the bound is the cache)
    ({"if_topk": "True", "topk": "994"}, f"topk = 994 {RANGE} -1 or 0..993 (sentence_length_L)"),
    ({"if_topk": "True", "topk": "-1"}, f"topk = -1 {RANGE} {BIG} (if_topk is True)"),
    ({"if_topk": "False", "topk": "5"}, f"topk = 5 {RANGE} -1 (if_topk is False)"),
    # non-finite anywhere
    ({"key_fetch_num": "inf"}, f"key_fetch_num = 'inf' is not a finite number (allowed: {BIG})"),
    ({"sentence_length_L": "nan"}, f"sentence_length_L = 'nan' is not a finite number (allowed: {BIG})"),
    ({"iteration_id": "1e400"}, f"iteration_id = '1e400' is not a finite number (allowed: {BIG})"),
    ({"embedding_length_D": "-inf"}, "embedding_length_D = '-inf' is not a finite number (allowed: 1..1024)"),
    ({"topk": "inf", "if_topk": "True"}, f"topk = 'inf' is not a finite number (allowed: -1 or {BIG})"),
    ({"value_fetch_num": ""}, f"value_fetch_num = '' is not a finite number (allowed: {BIG})"),
    # absurd counts (1e9 and more)
    (
        {"sentence_length_L": "1000000000", "key_fetch_num": "1000000000"},
        f"sentence_length_L = 1000000000 {RANGE} {BIG}",
    ),
    ({"head_id": "1e30"}, f"head_id = 1e30 {RANGE} {BIG}"),
    ({"iteration_id": "1e9"}, f"iteration_id = 1e9 {RANGE} {BIG}"),
    # not integers, not numbers, not booleans
    ({"key_fetch_num": "2.5"}, f"key_fetch_num = 2.5 is not an integer (allowed: {BIG})"),
    ({"quant_key_bit": "six"}, "quant_key_bit = 'six' is not a finite number (allowed: -1 or 1..16)"),
    ({"if_requant": "maybe"}, "if_requant = 'maybe' is not a boolean (allowed: True, False, 1, 0)"),
]


@pytest.mark.parametrize(
    "change, needle", CASES, ids=[",".join(f"{k}={v}" for k, v in c.items()) for c, _ in CASES]
)
def test_release_csv_refuses(tmp_path: Path, change: dict[str, str], needle: str) -> None:
    assert _refused(_csv(tmp_path, _row(**change))) == f"{tmp_path / 'bad.csv'}: line 2: {needle}"


def test_each_limit_is_the_edge(tmp_path: Path) -> None:
    """The largest allowed value of each limit above is accepted (the refusals are not off by one)."""
    ok = [
        {"key_fetch_num": "993", "value_fetch_num": "993"},
        {"embedding_length_D": "1024.0"},
        {"embedding_length_D": "1"},
        {"auto_requant_thres": "1.0"},
        {"auto_requant_thres": "0"},
        {"auto_requant_thres": "-1"},
        {"quant_key_bit": "12", "auto_requant_incre": "4"},
        {"quant_key_bit": "16", "auto_requant_incre": "0"},
        {"quant_key_bit": "-1", "auto_requant_incre": "-1", "if_requant": "True"},
        {"quant_query_bit": "1", "quant_value_bit": "16"},
        {"if_topk": "True", "topk": "993"},
        {"sentence_length_L": "999999999", "iteration_id": "999999999", "head_id": "999999999"},
    ]
    for change in ok:
        read_release_csv(_csv(tmp_path, _row(**change)))


def test_token_topk_bound_depends_on_the_layer(tmp_path: Path) -> None:
    # Inside a step the top-k keeps at most the keys it saw; the step's last layer picks the next step's
    # tokens out of the whole cache (the release GPT-2-Small trace: 921 of 102 fetched keys on layer 11).
    deep = _row(layer_id="1")
    mid = _row(key_fetch_num="500", value_fetch_num="100", if_topk="True", topk="600")
    msg = _refused(_csv(tmp_path, mid, deep))
    assert msg.endswith(f"line 2: topk = 600 {RANGE} -1 or 0..500 (key_fetch_num)"), msg
    last = _row(layer_id="1", key_fetch_num="500", value_fetch_num="100", if_topk="True", topk="600")
    tr, _ = read_release_csv(_csv(tmp_path, GOOD_ROW, last))
    assert tr["token_topk"].tolist() == [-1, 600]
    # and layer 1 of step 1 is not the last layer when step 1 also has layer 2
    s1 = [
        _row(
            iteration_id="1",
            layer_id="1",
            key_fetch_num="500",
            value_fetch_num="9",
            if_topk="True",
            topk="600",
        )
    ]
    msg = _refused(_csv(tmp_path, GOOD_ROW, last, *s1, _row(iteration_id="1", layer_id="2")))
    assert "line 4: topk = 600" in msg and "(key_fetch_num)" in msg


def test_line_numbers_count_blank_lines_and_the_header(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(
        "\n".join([HEADER, GOOD_ROW, "", GOOD_ROW, _row(layer_id="-1"), "cfg.yml" + "," * 16]) + "\n"
    )
    assert _refused(p).endswith(f"line 5: layer_id = -1 {RANGE} {BIG}")
    p.write_text("\n".join([HEADER, GOOD_ROW, GOOD_ROW + ",extra"]) + "\n")
    assert _refused(p).endswith("line 3: 18 fields, the header has 17")


def test_long_values_are_cut(tmp_path: Path) -> None:
    for value in ("9" * 300, "x" * 300, "1" + "0" * 200 + ".5"):
        msg = _refused(_csv(tmp_path, _row(key_fetch_num=value)))
        assert len(msg) < len(str(tmp_path)) + 140, msg
        assert "..." in msg and value not in msg
    msg = _refused(_csv(tmp_path, _row(if_requant="y" * 500)))
    assert len(msg) < len(str(tmp_path)) + 140 and "..." in msg


# ---- check_trace: the same limits on a DataFrame, rows named by index label ------------------------------


def _golden() -> pd.DataFrame:
    """Six generation rows: steps 0 and 1, layers 0 and 2 (layer 2 is each step's last); see its README."""
    return pd.read_csv(GOLDEN / "gpt2_generation.csv", dtype=TRACE_COLUMNS)


def _trace_refused(t: pd.DataFrame) -> str:
    with pytest.raises(ValueError) as e:
        check_trace(t)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("trace: row ")
    return msg


TRACE_CASES = [
    ("keys_fetched", 994, f"keys_fetched = 994 {RANGE} 0..993 (seq_len)"),
    ("values_fetched", 994, f"values_fetched = 994 {RANGE} 0..993 (keys_fetched)"),
    ("head_dim", 0, f"head_dim = 0 {RANGE} 1..1024"),
    ("head_dim", 4096, f"head_dim = 4096 {RANGE} 1..1024"),
    ("step", -1, f"step = -1 {RANGE} {BIG}"),
    ("layer", -1, f"layer = -1 {RANGE} {BIG}"),
    ("head", -3, f"head = -3 {RANGE} {BIG}"),
    ("query", -1, f"query = -1 {RANGE} {BIG}"),
    ("queries", -1, f"queries = -1 {RANGE} {BIG}"),
    ("queries", 10**9, f"queries = 1000000000 {RANGE} {BIG}"),
    ("seq_len", 10**12, f"seq_len = 1000000000000 {RANGE} {BIG}"),
    ("refetch_threshold", -0.25, f"refetch_threshold = -0.25 {RANGE} -1 or 0..1"),
    ("refetch_threshold", 2.0, f"refetch_threshold = 2 {RANGE} -1 or 0..1"),
    ("refetch_threshold", np.nan, "refetch_threshold = nan is not a finite number (allowed: -1 or 0..1)"),
    ("refetch_threshold", np.inf, "refetch_threshold = inf is not a finite number (allowed: -1 or 0..1)"),
    ("key_bits", 17, f"key_bits = 17 {RANGE} -1 or 1..16"),
    ("query_bits", 0, f"query_bits = 0 {RANGE} -1 or 1..16"),
    ("value_bits", 64, f"value_bits = 64 {RANGE} -1 or 1..16"),
    ("key_lsb_bits", 64, f"key_lsb_bits = 64 {RANGE} -1 or 0..15"),
    ("key_lsb_bits", 9, f"key_lsb_bits = 9 {RANGE} -1 or 0..8 (key_bits = 8; MSB + LSB bits at most 16)"),
    ("value_topk", 994, f"value_topk = 994 {RANGE} -1 or 0..993 (keys_fetched)"),
    ("value_topk", -2, f"value_topk = -2 {RANGE} -1 or {BIG}"),
    ("token_topk", 994, f"token_topk = 994 {RANGE} -1 or 0..993 (keys_fetched)"),  # layer 0: not the last
    ("token_topk", -5, f"token_topk = -5 {RANGE} -1 or {BIG}"),
]


@pytest.mark.parametrize("column, value, needle", TRACE_CASES, ids=[f"{c}={v}" for c, v, _ in TRACE_CASES])
def test_check_trace_refuses(column: str, value: float, needle: str) -> None:
    t = _golden()
    if not float(value).is_integer() or not np.isfinite(value):
        t[column] = t[column].astype(np.float64)
    t.loc[1, column] = value
    assert _trace_refused(t) == f"trace: row 1: {needle}"


def test_check_trace_names_the_index_label_and_other_failures() -> None:
    t = _golden()
    t.index = [f"r{i}" for i in range(len(t))]
    t.loc["r3", "key_bits"] = -1  # key_lsb_bits stays 4: unquantized keys with an LSB part
    assert _trace_refused(t) == (
        f"trace: row r3: key_lsb_bits = 4 {RANGE} -1 or 0 (key_bits = -1: unquantized keys have no LSB part)"
    )
    t = _golden()
    t["keys_fetched"] = t["keys_fetched"].astype(np.float64)
    t.loc[2, "keys_fetched"] = 100.5
    assert _trace_refused(t) == f"trace: row 2: keys_fetched = 100.5 is not an integer (allowed: {BIG})"
    t = _golden()
    t["refetch"] = t["refetch"].astype(object)
    t.loc[4, "refetch"] = "yes"
    assert _trace_refused(t) == "trace: row 4: refetch = 'yes' is not a boolean (allowed: True, False, 1, 0)"
    t = _golden()
    t["head_dim"] = t["head_dim"].astype(object)
    t.loc[0, "head_dim"] = "w" * 300
    msg = _trace_refused(t)
    assert msg.startswith("trace: row 0: head_dim = 'wwww") and "..." in msg and len(msg) < 120
    t = _golden()
    t.index = ["x" * 300] + list(range(1, len(t)))
    t.iloc[0, t.columns.get_loc("layer")] = -1
    assert len(_trace_refused(t)) < 140


def test_check_trace_token_topk_on_the_last_layer() -> None:
    t = _golden()
    t.loc[2, "token_topk"] = 950  # layer 2 is step 0's last: up to seq_len 993 although 894 keys were fetched
    check_trace(t)
    t.loc[2, "token_topk"] = 994
    assert _trace_refused(t) == f"trace: row 2: token_topk = 994 {RANGE} -1 or 0..993 (seq_len)"


def test_simulate_refuses_before_running() -> None:
    t = _golden()
    t.loc[0, "key_lsb_bits"] = 64
    with pytest.raises(ValueError, match=f"^trace: row 0: key_lsb_bits = 64 {RANGE} -1 or 0..15$"):
        simulate(workload_preset("gpt2-medium"), t)


# ---- everything shipped is accepted -----------------------------------------------------------------------


@pytest.mark.parametrize("name", RELEASE_TRACES)
def test_shipped_release_traces_are_accepted(name: str) -> None:
    tr, _ = read_release_csv(release_trace_path(name))
    check_trace(tr)


@pytest.mark.parametrize("name", sorted(p.stem for p in GOLDEN.glob("*.csv")))
def test_golden_traces_are_accepted(name: str) -> None:
    check_trace(pd.read_csv(GOLDEN / f"{name}.csv", dtype=TRACE_COLUMNS))


@pytest.mark.parametrize("model", list(MODELS))
def test_shape_traces_of_every_preset_are_accepted(model: str) -> None:
    check_trace(shape_trace(workload_preset(model, prompt_len=128)))


# ---- the CLI: exit 2, one line on stderr, no traceback ----------------------------------------------------


def test_cli_refuses_a_bad_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _csv(tmp_path, GOOD_ROW, _row(layer_id="1", auto_requant_incre="64"))
    out = tmp_path / "out"
    assert main(["simulate", "--trace", str(bad), "--out", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err.count("\n") == 1
    assert cap.err == f"spatten simulate: error: {bad}: line 3: auto_requant_incre = 64 {RANGE} -1 or 0..15\n"
    assert not out.exists()


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"value_fetch_num": "994"}, "value_fetch_num = 994"),
        ({"embedding_length_D": "0"}, "embedding_length_D = 0"),
        ({"auto_requant_thres": "inf"}, "auto_requant_thres = 'inf'"),
        ({"sentence_length_L": "1" + "0" * 80}, "sentence_length_L = 1000"),
    ],
)
def test_cli_process_exit_status(tmp_path: Path, change: dict[str, str], needle: str) -> None:
    bad = _csv(tmp_path, _row(**change))
    r = subprocess.run(
        [sys.executable, "-m", "spatten", "simulate", "--trace", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"{bad}: line 2: {needle}" in r.stderr and len(r.stderr) < len(str(bad)) + 160
