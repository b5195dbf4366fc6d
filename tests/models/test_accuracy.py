"""The accuracy harness: Brown text, the probe, and real models with SpAtten inside (short windows)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spatten.models import brown
from spatten.models.accuracy import IMAGINATIVE, probe_balanced_accuracy

from spatten.cli import main


def test_plain_text_strips_tags_and_joins_punctuation() -> None:
    tagged = "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ,/, it/pps did/dod ./."
    tagged += "\n\n\tNext/ap ./.\n"
    assert brown.plain_text(tagged) == 'The jury said "no evidence", it did.\nNext.'


def test_corpus_has_500_documents_in_15_genres() -> None:
    docs = brown.documents()
    assert len(docs) == 500 and len({d.genre for d in docs}) == 15
    assert sum(d.genre in IMAGINATIVE for d in docs) == 126  # Brown's imaginative prose, categories K-R
    assert "/" not in docs[0].text.split()[0]


def test_probe_separates_separable_classes_and_is_balanced() -> None:
    rng = np.random.default_rng(0)
    y = np.tile([False, True], 40)
    x = rng.normal(size=(80, 8)) + 3.0 * y[:, None]
    assert probe_balanced_accuracy(x, y) == 1.0
    assert probe_balanced_accuracy(rng.normal(size=(80, 8)), y) < 0.8  # noise: near chance
    with pytest.raises(ValueError, match="both classes"):
        probe_balanced_accuracy(x, np.zeros(80, bool))


def test_text_file_errors_are_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9".encode("latin-1"))
    short = tmp_path / "short.txt"
    short.write_text("only a few words here")
    for argv, needle in (
        (["--text", str(bad)], "is not UTF-8 text"),
        (["--text", str(tmp_path / "none.txt")], "does not exist"),
        (["--text", str(short), "--window-len", "64"], "too short for 4 windows of 64"),
        (["--window-len", "0"], "--window-len 0 is outside"),
        (["--model", "minilm", "--mode", "generation"], "MiniLM is an encoder"),
        (["--threads", "0"], "--threads 0 is outside the allowed range 1..64"),
        (["--workers", "0"], "workers 0 is outside the allowed range 1..64"),
        (["--model", "minilm", "--workers", "2"], "MiniLM runs in one process"),
    ):
        assert main(["accuracy", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err


def test_policy_off_in_float_is_the_dense_model(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "off.yaml"
    cfg.write_text("pruning:\n  enabled: false\nquant:\n  enabled: false\n")
    out = tmp_path / "run"
    argv = ["accuracy", "--window-len", "12", "--windows", "1", "--datapath", "float", "--config", str(cfg)]
    assert main([*argv, "--format", "json", "--out", str(out)]) == 0
    s = json.loads(capsys.readouterr().out)
    # generation through the cache with nothing pruned or quantized predicts as the dense prefill does
    assert s["perplexity"] == pytest.approx(s["dense_perplexity"], rel=1e-5)
    assert s["reached_token_keep"] == 1.0 and s["reached_value_keep"] == 1.0
    assert {p.name for p in out.iterdir()} == {"summary.json", "windows.csv", "trace.parquet"}  # GQA: no CSV


def test_minilm_policy_moves_cosine_and_the_trace_replays(tmp_path: Path, capsys) -> None:
    out = tmp_path / "m"
    argv = ["accuracy", "--model", "minilm", "--windows", "4", "--window-len", "32", "--format", "json"]
    assert main([*argv, "--out", str(out)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert 0.0 < s["cosine_mean"] < 1.0  # the BERT preset prunes heads and tokens
    assert s["reached_head_keep"] < 1.0 and s["dram_reduction"] > 1.0
    for name in ("trace.parquet", "trace.csv"):  # both formats replay to the run's own figures
        assert main(["simulate", "--workload", "minilm", "--trace", str(out / name), "--format", "json"]) == 0
        r = json.loads(capsys.readouterr().out)
        assert (r["dram_bytes_total"], r["dram_reduction"]) == (s["dram_bytes_total"], s["dram_reduction"])


def test_settings_the_real_model_fixes_are_refused(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  prompt_len: 64\n")
    for argv, needle in (
        (["--config", str(cfg)], "model.prompt_len in"),
        (["--dense", "--datapath", "float"], "have no effect with --dense"),
        (["--model", "minilm", "--windows", "2"], "allowed range 4..252"),
    ):
        assert main(["accuracy", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err


def test_decoder_windows_do_not_depend_on_batching_or_workers() -> None:
    from spatten.models.accuracy import WINDOW_BATCH, decoder_accuracy
    from spatten.models.config import workload_preset

    text = "\n".join(d.text for d in brown.documents()[:3])
    w = workload_preset("smollm2")
    windows = WINDOW_BATCH + 1  # a lockstep group of WINDOW_BATCH, then one window alone
    one = decoder_accuracy(w, text, 6, windows)
    two = decoder_accuracy(w, text, 6, windows, workers=2)  # each group on its own Dask process
    assert one.perplexity == two.perplexity
    np.testing.assert_array_equal(one.window_nll, two.window_nll)
    assert one.trace.equals(two.trace)
    assert sorted(one.trace["step"].unique()) == list(range(windows * 6))  # 6 steps per window, in order
    group = decoder_accuracy(w, text, 6, WINDOW_BATCH)  # the same first group: the same bits
    np.testing.assert_array_equal(group.window_nll, one.window_nll[:WINDOW_BATCH])
    # Alone, a window runs matrix-vector products, summed in another order: with the preset policy a 6-token
    # window's NLL then moves by about 1% (a near-tie of a pruning or scale decision goes the other way).
    # test_policy_off_in_float_is_the_dense_model checks the lone-window path against the dense model.


def test_decoder_prefill_prunes_inside_the_prompt_and_off_is_dense(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "off.yaml"
    cfg.write_text("pruning:\n  enabled: false\nquant:\n  enabled: false\n")
    base = ["accuracy", "--window-len", "24", "--windows", "2", "--mode", "prefill", "--format", "json"]
    assert main([*base, "--datapath", "float", "--config", str(cfg)]) == 0
    off = json.loads(capsys.readouterr().out)
    # all queries at once with nothing pruned or quantized: the dense model up to float summation order
    assert off["mode"] == "prefill" and off["perplexity"] == pytest.approx(off["dense_perplexity"], rel=1e-5)
    assert off["reached_token_keep"] == 1.0 and off["reached_value_keep"] == 1.0  # causal: i + 1 keys dense
    out = tmp_path / "p"
    assert main([*base, "--out", str(out)]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["dense_perplexity"] == off["dense_perplexity"]
    assert s["perplexity"] != s["dense_perplexity"] and s["reached_token_keep"] < 1.0
    assert (
        main(["simulate", "--workload", "smollm2", "--trace", str(out / "trace.parquet"), "--format", "json"])
        == 0
    )
    r = json.loads(capsys.readouterr().out)
    assert (r["dram_bytes_total"], r["dram_reduction"]) == (s["dram_bytes_total"], s["dram_reduction"])


def test_decoder_prefill_windows_are_one_step_each() -> None:
    """(The Dask path is the generation test's: the same function with the prefill runner.)"""
    from spatten.models.accuracy import decoder_accuracy
    from spatten.models.config import workload_preset

    text = "\n".join(d.text for d in brown.documents()[:3])
    w = workload_preset("smollm2")
    one = decoder_accuracy(w, text, 10, 2, mode="prefill")
    alone = decoder_accuracy(w, text, 10, 1, mode="prefill")
    assert alone.window_nll[0] == one.window_nll[0]  # a window does not depend on the others
    assert sorted(one.trace["step"].unique()) == [0, 1]  # one step per window
    n = 11  # BOS + 10: every query of every window has its rows
    assert set(one.trace.loc[one.trace["layer"] == 0, "query"]) == set(range(n))
