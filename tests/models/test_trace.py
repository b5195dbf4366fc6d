"""Tests of models.trace: the release CSV files, byte-exact round trips, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.trace import (
    RELEASE_COLUMNS,
    RELEASE_DIR,
    RELEASE_TRACES,
    TRACE_COLUMNS,
    empty_trace,
    read_release_csv,
    release_trace_path,
    write_release_csv,
)

# The release files ship inside the package (models/data/release/).
FILES = [release_trace_path(n) for n in RELEASE_TRACES]
HEADER = ",".join(RELEASE_COLUMNS)


def _data_rows(path: Path) -> int:
    """Rows of a release file counted from its text: lines minus header minus the config-name line."""
    lines = path.read_text().splitlines()
    return len(lines) - 1 - (1 if lines[-1].endswith(",,,,") else 0)


def test_all_five_release_files_present() -> None:
    assert len(FILES) == 5
    assert sorted(p.name for p in RELEASE_DIR.glob("*.csv")) == sorted(RELEASE_TRACES)
    assert (RELEASE_DIR / "LICENSE").is_file() and (RELEASE_DIR / "README.md").is_file()


def test_release_trace_path_names() -> None:
    assert release_trace_path("small.csv") == release_trace_path("small") == RELEASE_DIR / "small.csv"
    with pytest.raises(ValueError, match=r"release trace 'gpt3\.csv' is not one of: small\.csv, ") as e:
        release_trace_path("gpt3.csv")
    assert "\n" not in str(e.value) and all(n in str(e.value) for n in RELEASE_TRACES)
    with pytest.raises(ValueError, match="is not one of"):
        release_trace_path("../data/release/small.csv")
    with pytest.raises(TypeError, match="string"):
        release_trace_path(RELEASE_DIR / "small.csv")  # type: ignore[arg-type]


def test_release_files_are_package_data() -> None:
    """Every file of the release folder matches a spatten.models package-data glob, so a wheel holds it."""
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    cfg = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    pkg_dir = root / cfg["package-dir"]["spatten.models"]
    assert RELEASE_DIR == pkg_dir / "data" / "release"
    globs = cfg["package-data"]["spatten.models"]
    files = [f.relative_to(pkg_dir).as_posix() for f in RELEASE_DIR.iterdir()]
    assert len(files) == 7
    assert all(any(fnmatch.fnmatch(f, g) for g in globs) for f in files), (files, globs)


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_read_release_file(path: Path) -> None:
    tr, cfg = read_release_csv(path)
    assert list(tr.columns) == list(TRACE_COLUMNS)
    assert {c: str(t) for c, t in tr.dtypes.items()} == TRACE_COLUMNS
    assert len(tr) == _data_rows(path)
    assert cfg is not None and cfg.endswith(".yml")
    assert (tr["keys_fetched"] <= tr["seq_len"]).all()
    assert (tr["head_dim"] == 64).all()


@pytest.mark.parametrize("path", FILES, ids=[f.name for f in FILES])
def test_round_trip_is_byte_exact(path: Path, tmp_path: Path) -> None:
    tr, cfg = read_release_csv(path)
    out = tmp_path / "rt.csv"
    write_release_csv(tr, out, config_name=cfg)
    assert out.read_bytes() == path.read_bytes()
    tr2, cfg2 = read_release_csv(out)
    assert cfg2 == cfg
    pd.testing.assert_frame_equal(tr2, tr)
    assert [p.name for p in tmp_path.iterdir()] == ["rt.csv"]  # no temporary left behind


def test_hand_checked_rows() -> None:
    tr, cfg = read_release_csv(release_trace_path("small"))
    assert cfg == "configs/gpt2/ptb/medium_baseline_train+eval.yml"
    row = tr.iloc[0]
    assert (row["step"], row["layer"], row["head"], row["seq_len"], row["keys_fetched"]) == (
        0,
        0,
        0,
        993,
        993,
    )
    assert (row["key_bits"], row["key_lsb_bits"], row["refetch_threshold"]) == (-1, -1, -1.0)
    assert not row["refetch"] and row["accumulate_importance"] and row["token_topk"] == -1
    assert row["value_topk"] == -1  # 993 values of 993 keys: no value pruning
    # summary-gpt2-medium-wikitext2...: "1,1,15,64.0,994,994,12,16,-1,False,-1,307,8,True,False,True,921"
    wk = next(f for f in FILES if "wikitext2-per0" in f.name)
    med, _ = read_release_csv(wk)
    r = med[(med["step"] == 1) & (med["layer"] == 1) & (med["head"] == 15)].iloc[0]
    assert (r.seq_len, r.keys_fetched, r.key_bits, r.query_bits, r.values_fetched, r.value_bits) == (
        994, 994, 12, 16, 307, 8,
    )  # fmt: skip
    assert r.token_topk == 921 and r.value_topk == 307
    sm = next(f for f in FILES if f.name == "summary-gpt2-small-wikitext2-per8.csv")
    small, _ = read_release_csv(sm)
    r = small.iloc[0]
    assert (r.key_bits, r.key_lsb_bits, r.refetch_threshold, bool(r.refetch)) == (6, 4, 0.05, True)


def _write_lines(p: Path, lines: list[str]) -> Path:
    p.write_text("\n".join(lines) + "\n")
    return p


GOOD = "0,0,0,64.0,993,993,6,16,0.05,True,4,204,6,True,False,False,-1"


@pytest.mark.parametrize(
    "header, row, column",
    [
        (HEADER, GOOD.replace(",993,993,", ",993,abc,"), "key_fetch_num"),
        (HEADER, GOOD.replace(",True,4,", ",maybe,4,"), "if_requant"),
        (HEADER, GOOD.replace("0,0,0,64.0", "0,0.5,0,64.0"), "layer_id"),
        (HEADER, GOOD.replace(",False,False,-1", ",False,yes,-1"), "if_topk"),
        (HEADER, GOOD.replace(",993,993,", ",993,994,"), "key_fetch_num"),
        (HEADER, GOOD.replace(",204,6,", ",-5,6,"), "value_fetch_num"),
        (HEADER.replace(",quant_value_bit", ""), GOOD, "quant_value_bit"),
    ],
)
def test_bad_files_name_the_column(tmp_path: Path, header: str, row: str, column: str) -> None:
    p = _write_lines(tmp_path / "bad.csv", [header, row])
    with pytest.raises(ValueError, match=column):
        read_release_csv(p)


def test_bad_files_other(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_release_csv(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="CSV"):
        read_release_csv(empty)
    only_cfg = _write_lines(tmp_path / "cfg.csv", [HEADER, "name.yml" + "," * 16])
    with pytest.raises(ValueError, match="no request rows"):
        read_release_csv(only_cfg)
    with pytest.raises(ValueError, match="missing column"):
        write_release_csv(pd.DataFrame({"step": [0]}), tmp_path / "x.csv")
    with pytest.raises(ValueError, match="config_name"):
        write_release_csv(empty_trace(), tmp_path / "y.csv", config_name="a,b")
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "y.csv").exists()


@st.composite
def traces(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 12))
    ints = st.integers(0, 50)
    seq = np.array(draw(st.lists(st.integers(1, 2000), min_size=n, max_size=n)))
    keys = np.array([draw(st.integers(0, int(s))) for s in seq])
    vals = np.array([draw(st.integers(0, int(k))) for k in keys])
    pq = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    bits = np.array(draw(st.lists(st.sampled_from([-1, 4, 6, 8, 12]), min_size=n, max_size=n)))
    pq = pq & (bits > 0)  # unquantized keys have no LSB part
    topk = np.array([draw(st.integers(-1, int(k))) for k in keys])
    df = pd.DataFrame(
        {
            "step": draw(st.lists(ints, min_size=n, max_size=n)),
            "layer": draw(st.lists(ints, min_size=n, max_size=n)),
            "head": draw(st.lists(ints, min_size=n, max_size=n)),
            "query": np.zeros(n, np.int64),
            "queries": np.ones(n, np.int64),
            "head_dim": draw(st.lists(st.sampled_from([32, 64, 128]), min_size=n, max_size=n)),
            "seq_len": seq,
            "keys_fetched": keys,
            "key_bits": bits,
            "key_lsb_bits": np.where(pq, 4, -1),
            "refetch": pq & np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))),
            "refetch_threshold": np.where(pq, draw(st.sampled_from([0.05, 0.1, 0.125])), -1.0),
            "query_bits": np.where(bits < 0, -1, 16),
            "values_fetched": vals,
            "value_bits": bits,
            "accumulate_importance": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
            "rescale_importance": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
            "token_topk": topk,
            "value_topk": np.where(vals < keys, vals, -1),
        }
    )
    return df.astype(TRACE_COLUMNS)


@settings(max_examples=40, deadline=None)
@given(traces(), st.one_of(st.none(), st.sampled_from(["cfg.yml", "configs/x+y.yml"])))
def test_round_trip_random_traces(tmp_path_factory, tr: pd.DataFrame, cfg: str | None) -> None:
    out = tmp_path_factory.mktemp("rt") / "t.csv"
    write_release_csv(tr, out, config_name=cfg)
    back, cfg2 = read_release_csv(out)
    assert cfg2 == cfg
    pd.testing.assert_frame_equal(back, tr)


def test_release_writer_never_replaces_a_device_or_a_folder(tmp_path) -> None:
    import os
    import stat

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # stands in for /dev/null: a rename would turn it into a regular file
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    for target in (fifo, folder):
        with pytest.raises(ValueError, match="is not a regular file"):
            write_release_csv(empty_trace(), target)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and folder.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.csv", "pipe.csv"]  # no temporary left
