"""The release's BERT CSV layout: read (format from the header), written back, replayed, refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from spatten.models.attention import run_attention
from spatten.models.config import workload_preset
from spatten.models.trace import TRACE_COLUMNS, read_release_csv, read_trace_file, write_release_csv
from spatten.models.trace_bert import BERT_COLUMNS, write_bert_csv
from spatten.sim.api import simulate

HEADER = ",".join(BERT_COLUMNS)
# Three heads: (0, 0) 2 of 4 queries refetch; (0, 1) runs a token top-k keeping 3; (1, 0) all 3 refetch.
ROWS = [
    "0,0,64.0,4,4,8,8,8,0.1,True,4,2,True,False,-1",
    "0,1,64.0,4,4,8,8,8,0.1,False,4,-1,True,True,3",
    "1,0,64.0,3,3,8,8,8,0.1,True,4,3,True,False,-1",
]
CONFIG = "configs/bert/base.yml" + "," * 14


def _file(tmp_path: Path, rows: list[str], config: bool = True, name: str = "b.csv") -> Path:
    p = tmp_path / name
    p.write_text("\n".join([HEADER, *rows, *([CONFIG] if config else [])]) + "\n")
    return p


def test_each_head_becomes_its_queries(tmp_path: Path) -> None:
    trace, config = read_release_csv(_file(tmp_path, ROWS))
    assert config == "configs/bert/base.yml"
    assert list(trace.columns) == list(TRACE_COLUMNS)
    assert trace["layer"].tolist() == [0] * 8 + [1] * 3
    assert trace["head"].tolist() == [0] * 4 + [1] * 4 + [0] * 3
    assert trace["query"].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2]
    assert trace["refetch"].tolist() == [True, True, False, False] + [False] * 4 + [True] * 3
    assert trace["token_topk"].tolist() == [-1] * 7 + [3] + [-1] * 3  # after the head's last query
    assert (trace["keys_fetched"] == trace["values_fetched"]).all()
    assert trace["seq_len"].tolist() == [4] * 8 + [3] * 3
    assert (trace["step"] == 0).all() and (trace["queries"] == 1).all() and (trace["value_topk"] == -1).all()
    assert (trace["key_lsb_bits"] == 4).all() and (trace["refetch_threshold"] == 0.1).all()


def test_replay_moves_the_bytes_worked_out_by_hand(tmp_path: Path) -> None:
    # K and V once per head (they fit the SRAM), Q once per query; 8-bit fields, D = 64, LSBs 4 bits
    res = simulate(workload_preset("bert-base"), read_trace_file(_file(tmp_path, ROWS)))
    s = res.summary
    assert s["dram_bytes_q"] == 11 * 64
    assert s["dram_bytes_k_msb"] == (4 + 4 + 3) * 64
    assert s["dram_bytes_v"] == (4 + 4 + 3) * 64
    assert s["dram_bytes_k_lsb"] == (4 + 3) * 64 * 4 / 8  # the two heads that refetch, once each


@pytest.mark.parametrize("config", [True, False])
def test_a_canonical_file_round_trips_byte_for_byte(tmp_path: Path, config: bool) -> None:
    src = _file(tmp_path, ROWS, config)
    trace, name = read_release_csv(src)
    out = tmp_path / "out.csv"
    write_release_csv(trace, out, name, layout="bert")
    assert out.read_bytes() == src.read_bytes()


def test_other_spellings_of_requant_read_as_documented(tmp_path: Path) -> None:
    rows = [
        "0,0,64.0,4,4,8,8,8,0.1,True,4,-1,True,False,-1",  # -1 with True: every query
        "0,1,64.0,4,4,8,8,8,0.1,False,4,0,True,False,-1",  # 0 with False: none
    ]
    trace, _ = read_release_csv(_file(tmp_path, rows))
    assert trace["refetch"].tolist() == [True] * 4 + [False] * 4
    out = tmp_path / "out.csv"
    write_release_csv(trace, out, layout="bert")  # written back in the canonical form
    body = out.read_text().splitlines()[1:]
    assert body == [
        "0,0,64.0,4,4,8,8,8,0.1,True,4,4,True,False,-1",
        "0,1,64.0,4,4,8,8,8,0.1,False,4,-1,True,False,-1",
    ]


def test_a_golden_summarization_trace_survives_the_trip(tmp_path: Path) -> None:
    w = workload_preset("bert-base", prompt_len=24)
    trace = run_attention(w).trace
    assert trace["token_topk"].max() > 0  # cascade token pruning ran
    out = tmp_path / "golden.csv"
    write_release_csv(trace, out, "spatten-golden", layout="bert")
    back, name = read_release_csv(out)
    assert name == "spatten-golden"
    assert len(back) == len(trace)
    for c in TRACE_COLUMNS:
        if c not in ("seq_len", "query"):
            assert (back[c].to_numpy() == trace[c].to_numpy()).all(), c
    # seq_len becomes the head's query count (the live tokens), the one column the layout cannot carry
    live = trace.groupby(["layer", "head"], sort=False)["query"].transform("size")
    assert (back["seq_len"].to_numpy() == live.to_numpy()).all()
    a, b = simulate(w, trace).summary, simulate(w, back).summary
    for k in ("dram_bytes_q", "dram_bytes_k_msb", "dram_bytes_k_lsb", "dram_bytes_v", "ops"):
        assert a[k] == b[k], k


BAD = [
    (2, ",3,3,", ",3,4,", "key_value_query_fetch_num = 4 is outside the allowed range 0..3"),  # fetch > L
    (0, "4,4,8", "0,0,8", "sentence_length_L = 0 is outside the allowed range 1.."),
    (0, "True,4,2", "True,4,5", "auto_requant_num = 5 is outside the allowed range -1 or 0..4"),
    (1, "False,4,-1", "False,4,2", "auto_requant_num = 2 is outside the allowed range -1 or 0 (if_requant"),
    (1, "True,True,3", "True,False,3", "topk = 3 is outside the allowed range -1 (if_topk is False)"),
    (0, "0.1,True", "0.1,maybe", "if_requant = 'maybe' is not a boolean"),
    (0, "64.0", "2000.0", "embedding_length_D = 2000.0 is outside the allowed range 1..1024"),
]


@pytest.mark.parametrize(("row", "old", "new", "msg"), BAD, ids=[b[3][:28] for b in BAD])
def test_bad_values_are_one_line_naming_line_and_column(
    tmp_path: Path, row: int, old: str, new: str, msg: str
) -> None:
    rows = list(ROWS)
    rows[row] = rows[row].replace(old, new, 1)
    p = _file(tmp_path, rows)
    with pytest.raises(ValueError) as e:
        read_release_csv(p)
    text = str(e.value)
    assert msg in text and f"line {row + 2}" in text and "\n" not in text


def test_missing_columns_and_huge_expansions_are_refused(tmp_path: Path) -> None:
    p = tmp_path / "m.csv"
    p.write_text(HEADER.replace(",auto_requant_num", "") + "\n")
    with pytest.raises(ValueError, match="missing column.s. auto_requant_num .a release BERT CSV has 15"):
        read_release_csv(p)
    rows = [f"{i},0,64.0,999999999,1,8,8,8,-1,False,-1,-1,True,False,-1" for i in range(60)]
    with pytest.raises(ValueError, match="add up to 59999999940 queries, more than the 50,000,000"):
        read_release_csv(_file(tmp_path, rows))


def test_the_writer_refuses_what_one_row_per_head_cannot_hold(tmp_path: Path) -> None:
    trace, _ = read_release_csv(_file(tmp_path, ROWS))
    out = tmp_path / "w.csv"
    cases = []
    t = trace.copy()
    t.loc[1, "keys_fetched"] = 3
    cases.append((t, "layer 0 head 0: its rows differ in keys_fetched"))
    t = trace.copy()
    t["values_fetched"] = t["values_fetched"] - 1
    cases.append((t, "layer 0 head 0 fetches 4 keys but 3 values"))
    t = trace.copy()
    t.loc[5, "token_topk"] = 2
    cases.append((t, "layer 0 head 1 runs more than one token top-k"))
    t = trace.copy()
    t["step"] = 1
    cases.append((t, "one summarization pass .step 0.; the trace has step.s. 1"))
    t = trace.iloc[[0, 1]].copy()
    t["keys_fetched"] = t["values_fetched"] = 3
    cases.append((t, "fetches 3 keys for 2 queries"))
    for bad, msg in cases:
        with pytest.raises(ValueError, match=msg):
            write_bert_csv(bad, out)
        assert not out.exists()
    with pytest.raises(ValueError, match="not start with a digit"):
        write_bert_csv(trace, out, "12-layer")
    with pytest.raises(ValueError, match="layout = 'xml' must be 'gpt2' or 'bert'"):
        write_release_csv(trace, out, layout="xml")


def test_spatten_simulate_replays_a_bert_file_and_refuses_a_bad_one(tmp_path: Path) -> None:
    good = _file(tmp_path, ROWS)
    r = subprocess.run(
        [sys.executable, "-m", "spatten", "simulate", "--trace", str(good), "--format", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '"dram_bytes_k_msb": 704' in r.stdout.replace(".0,", ",")
    assert '"workload": "bert-base"' in r.stdout  # a BERT file without --workload is labelled as BERT
    rows = list(ROWS)
    rows[2] = rows[2].replace(",3,3,", ",3,4,", 1)
    bad = _file(tmp_path, rows, name="bad.csv")
    r = subprocess.run(
        [sys.executable, "-m", "spatten", "simulate", "--trace", str(bad)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1
    assert "key_value_query_fetch_num = 4 is outside the allowed range 0..3" in r.stderr


def test_spatten_trace_writes_the_bert_layout_for_summarization_only(tmp_path: Path) -> None:
    out = tmp_path / "t.csv"
    cmd = [sys.executable, "-m", "spatten", "trace", "--seq-len", "16", "--out", str(out), "--layout", "bert"]
    r = subprocess.run([*cmd, "--workload", "bert-base"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert out.read_text().splitlines()[0] == HEADER
    trace, name = read_release_csv(out)
    assert name.startswith("spatten-golden:bert-base") and (trace["layer"].diff().fillna(0) >= 0).all()
    out.unlink()
    r = subprocess.run([*cmd, "--workload", "gpt2-small"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and not out.exists()
    assert "--layout bert holds one summarization pass; gpt2-small is a generation workload" in r.stderr
