"""`spatten simulate` against dense and --baseline, --per-layer, refused combinations; `spatten compare`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spatten.models.config import replace_path, workload_preset
from spatten.sim.api import simulate

from spatten.cli import main

SMALL = ["--workload", "gpt2-small", "--config"]


def _cfg(tmp_path: Path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _short(tmp_path: Path) -> str:
    return _cfg(tmp_path, "short.yaml", "model:\n  gen_tokens: 2\n  prompt_len: 128\n")


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_simulate_reports_ratios_over_dense_and_the_baseline(tmp_path: Path, capsys) -> None:
    s = _json(capsys, ["simulate", *SMALL, _short(tmp_path), "--baseline", "mnnfast", "--format", "json"])
    w = workload_preset("gpt2-small")
    w = replace_path(replace_path(w, "model.gen_tokens", 2), "model.prompt_len", 128)
    ours, dense = simulate(w).summary, simulate(w, baseline="dense").summary
    mnn = simulate(w, baseline="mnnfast").summary
    assert s["speedup_over_dense"] == dense["seconds"] / ours["seconds"]
    assert s["dram_reduction_over_dense"] == dense["dram_bytes_total"] / ours["dram_bytes_total"]
    assert s["speedup_over_mnnfast"] == mnn["seconds"] / ours["seconds"]
    # MNNFast has no energy model of its units: compared on-chip, from its published 120 GOP/J
    assert s["energy_saving_over_mnnfast"] == (mnn["dense_ops"] / 120e9) / s["chip_energy_j"]
    assert s["energy_saving_over_dense"] > 1.0


def test_per_layer_table_adds_up_to_the_summary(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    s = _json(
        capsys, ["simulate", *SMALL, _short(tmp_path), "--per-layer", "--format", "json", "--out", str(out)]
    )
    layers = s["per_layer"]
    assert [r["layer"] for r in layers] == list(range(12))
    for kind in ("q", "k_msb", "k_lsb", "v"):
        assert sum(r[f"bytes_{kind}"] for r in layers) == s[f"dram_bytes_{kind}"]
    for stage in ("dram", "qk", "softmax", "topk", "pv"):
        assert np.isclose(sum(r[f"busy_{stage}"] for r in layers), s[f"busy_{stage}"], rtol=1e-12)
    for r in layers:
        busy = {st: r[f"busy_{st}"] for st in ("dram", "qk", "softmax", "topk", "pv")}
        assert r["bounding_stage"] == max(busy, key=busy.get) and r["cycles"] == max(busy.values())
    # the cascade: later layers never keep more tokens than earlier ones
    keeps = [r["token_keep"] for r in layers]
    assert all(b <= a + 1e-12 for a, b in zip(keeps, keeps[1:], strict=False))
    assert (out / "per_layer.csv").read_text().splitlines()[0].startswith("layer,cycles")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--seq-len", "64", "--trace", "TRACE"], "--prompt-len/--seq-len has no effect with --trace"),
        (["--seq-len", "64", "--config", "PROMPT"], "--seq-len 64 and model.prompt_len"),
        (["--trace", "TRACE", "--config", "PRUNE"], "pruning.token_keep in"),
    ],
)
def test_ignored_settings_are_refused(tmp_path: Path, capsys, argv: list[str], needle: str) -> None:
    trace = tmp_path / "t.csv"
    assert (
        main(["trace", "--workload", "gpt2-small", "--layers", "2", "--steps", "1", "--out", str(trace)]) == 0
    )
    capsys.readouterr()
    files = {
        "TRACE": str(trace),
        "PROMPT": _cfg(tmp_path, "p.yaml", "model:\n  prompt_len: 32\n"),
        "PRUNE": _cfg(tmp_path, "k.yaml", "pruning:\n  token_keep: 0.3\n"),
    }
    assert main(["simulate", *[files.get(a, a) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err


def test_compare_lists_changed_fields_and_ratios(tmp_path: Path, capsys) -> None:
    a = _cfg(tmp_path, "a.yaml", "model:\n  gen_tokens: 2\npruning:\n  token_keep: 0.6\n")
    b = _cfg(tmp_path, "b.yaml", "model:\n  gen_tokens: 2\npruning:\n  token_keep: 0.3\n")
    out = _json(capsys, ["compare", a, b, "--workload", "gpt2-small", "--format", "json"])
    assert out["changed"] == [{"field": "pruning.token_keep", "a": 0.6, "b": 0.3}]
    fig = {r["figure"]: r for r in out["figures"]}
    base = replace_path(workload_preset("gpt2-small"), "model.gen_tokens", 2)
    sa = simulate(replace_path(base, "pruning.token_keep", 0.6)).summary
    sb = simulate(replace_path(base, "pruning.token_keep", 0.3)).summary
    assert fig["dram_bytes_total"]["a"] == sa["dram_bytes_total"]
    assert fig["dram_bytes_total"]["b_over_a"] == sb["dram_bytes_total"] / sa["dram_bytes_total"] < 1.0
    assert fig["area_mm2"]["b_over_a"] == 1.0  # same hardware
    assert main(["compare", a, b, "--workload", "gpt2-small"]) == 0
    text = capsys.readouterr().out
    assert "pruning.token_keep" in text and "B/A" in text


def test_compare_bad_config_is_one_line(tmp_path: Path, capsys) -> None:
    a = _cfg(tmp_path, "a.yaml", "pruning:\n  token_kep: 0.6\n")
    assert main(["compare", a, a]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pruning.token_kep" in err


@pytest.mark.parametrize(
    ("argv", "text", "needle"),
    [
        (["simulate", "--config"], "- 1\n- 2\n", "config must be a mapping"),
        (
            ["simulate", "--design", "dense", "--config"],
            "pruning:\n  token_keep: 0.3\n",
            "no effect with --design",
        ),
        (["simulate", "--config"], "pruning:\n  token_keep_schedule: 0.5\n", "must be a list of ratios"),
        (
            ["simulate", "--trace", "models/data/release/small.csv", "--config"],
            "model:\n  kv_heads: 2\n",
            "kv_heads",
        ),
    ],
)
def test_more_ignored_or_malformed_settings(tmp_path: Path, capsys, argv, text, needle) -> None:
    from spatten.models.trace import RELEASE_DIR

    argv = [str(RELEASE_DIR / "small.csv") if a.startswith("models/data") else a for a in argv]
    assert main([*argv, _cfg(tmp_path, "c.yaml", text)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_compare_writes_null_where_no_ratio_exists(tmp_path: Path, capsys) -> None:
    a = _cfg(tmp_path, "a.yaml", "model:\n  gen_tokens: 2\nquant:\n  progressive: false\n")
    b = _cfg(tmp_path, "b.yaml", "model:\n  gen_tokens: 2\n")
    out = _json(capsys, ["compare", a, b, "--workload", "gpt2-small", "--format", "json"])
    fig = {r["figure"]: r for r in out["figures"]}
    assert fig["refetch_rate"]["a"] == 0.0 and fig["refetch_rate"]["b_over_a"] is None
    assert main(["compare", a, b, "--workload", "gpt2-small", "--design", "a3"]) == 2
    assert "no effect" in capsys.readouterr().err
