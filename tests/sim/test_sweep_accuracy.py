"""Accuracy sweeps: the ``accuracy:`` block, real-model points, their cache, the CLI end to end.

The end-to-end test runs ``examples/sweeps/minilm-accuracy-tiny.yaml`` (MiniLM, 4 Brown documents of
8 tokens, 8 points of 4 policies) through ``spatten sweep`` with ``SPATTEN_CACHE_DIR`` in a temporary
folder, and checks its rows against runs of ``sim.accuracy`` made here, point by point.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from spatten.models.config import to_dict
from spatten.sim import accuracy as sim_accuracy
from spatten.sim.sweep.real import trace_cache_dir
from spatten.sim.sweep.spec import SCHEMA, load_spec, parse_spec

from spatten.cli import main as cli_main
from tests.reports.figcheck import check_pdf, check_png

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "sweeps" / "minilm-accuracy-tiny.yaml"


def real(sweep: dict | None = None, accuracy: dict | None = None, **top) -> dict:
    doc = {
        "workloads": ["minilm"],
        "accuracy": {"windows": 4, "window_len": 8} if accuracy is None else accuracy,
    }
    return doc | {"sweep": sweep or {"pruning.value_keep": [0.5, 1.0]}} | top


# --- the accuracy block --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (real(accuracy={"window": 4}), "accuracy.window: unknown key (allowed: windows, window_len, mode,"),
        (real(accuracy={"windows": 0}), "accuracy.windows = 0 must be an integer in 1.."),
        (real(accuracy={"window_len": "8"}), "accuracy.window_len = '8' must be an integer"),
        (real(accuracy={"windows": True}), "accuracy.windows = True must be an integer"),
        (real(accuracy={"mode": "decode"}), "accuracy.mode = 'decode' is not one of prefill, generation"),
        (real(accuracy={"mode": "generation"}), "accuracy.mode = 'generation' needs a decoder: minilm"),
        (real(accuracy={"datapath": "double"}), "accuracy.datapath = 'double' is not one of fixed, float"),
        (real(accuracy={"text": "no-such-file.txt"}), "accuracy.text: text file"),
        (real(accuracy={"text": 3}), "accuracy.text = 3 must be the path of a UTF-8 text file"),
        (real(accuracy=[4, 8]), "accuracy must be a mapping with keys windows, window_len"),
        (real(workloads=["gpt2-small"]), "accuracy: workload 'gpt2-small' is shape-only"),
        (real(workloads=["minilm", "bert-base"]), "accuracy: workload 'bert-base' is shape-only"),
        (real({"model.layers": [2, 4]}), "sweep.model.layers: has no effect in an accuracy sweep"),
        (real(fixed={"model.prompt_len": 64}), "fixed.model.prompt_len: has no effect in an accuracy sweep"),
        (real({"quant.shape_refetch_rate": [0.1]}), "sweep.quant.shape_refetch_rate: has no effect"),
        (real(baseline="a3"), "baseline = 'a3': an accuracy sweep simulates SpAtten"),
    ],
)
def test_bad_accuracy_blocks_raise_one_line_naming_the_key(doc, needle):
    with pytest.raises((ValueError, TypeError)) as info:
        parse_spec(doc)
    assert "\n" not in str(info.value)
    assert needle in str(info.value)


def test_model_fields_stay_sweepable_without_an_accuracy_block():
    spec = parse_spec({"workloads": ["minilm"], "sweep": {"model.layers": [2, 4]}})
    assert spec.accuracy is None and [p.workload.model.layers for p in spec.points] == [2, 4]


def test_defaults_come_from_sim_accuracy_per_model():
    spec = parse_spec(real(accuracy={}, workloads=["minilm", "smollm2"]))
    for model, mode in (("minilm", "prefill"), ("smollm2", "generation")):
        s = spec.accuracy.settings(model)
        assert (s["windows"], s["window_len"]) == sim_accuracy.DEFAULTS[model]
        assert (s["mode"], s["datapath"]) == (mode, "fixed")
    # an empty block means the same
    assert (
        parse_spec(real(accuracy=None) | {"accuracy": None}).accuracy
        == parse_spec(real(accuracy={})).accuracy
    )


def test_text_is_read_relative_to_the_sweep_file(tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "my.txt").write_text("Some words of my own.\n" * 20)
    (folder / "s.yaml").write_text(yaml.safe_dump(real(accuracy={"text": "my.txt", "windows": 2})))
    monkeypatch.chdir(tmp_path)  # not the sweep file's folder
    spec = load_spec(folder / "s.yaml")
    assert spec.accuracy.text == (folder / "my.txt").read_text() and spec.accuracy.text_file == "my.txt"
    assert "text my.txt" in spec.accuracy.describe("minilm")


def test_point_ids_depend_on_the_accuracy_settings_and_shape_only_ids_are_unchanged():
    base = parse_spec(real())
    changes = [{"windows": 5, "window_len": 8}, {"windows": 4, "window_len": 9}]
    changes.append({"windows": 4, "window_len": 8, "datapath": "float"})
    for change in changes:
        other = parse_spec(real(accuracy=change))
        assert all(a.point_id != b.point_id for a, b in zip(base.points, other.points, strict=True)), change
    # Spelled-out defaults are the same points as the defaults.
    spelled = parse_spec(
        real(accuracy={"windows": 4, "window_len": 8, "mode": "prefill", "datapath": "fixed"})
    )
    assert [p.point_id for p in spelled.points] == [p.point_id for p in base.points]
    # A shape-only point hashes the documented payload, as before accuracy sweeps existed (stores resume).
    shape = parse_spec({"workloads": ["minilm"], "sweep": {"pruning.value_keep": [0.5]}})
    payload = {"schema": SCHEMA, "baseline": "spatten", "config": to_dict(shape.points[0].workload)}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    assert shape.points[0].point_id == hashlib.sha256(text.encode()).hexdigest()[:20]


def test_cli_bad_accuracy_block_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(real({"model.layers": [2]})))
    assert cli_main(["sweep", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sweep.model.layers" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


# --- the per-policy cache of model runs ----------------------------------------------------------


def test_model_runs_are_cached_per_policy_and_a_damaged_file_is_rerun(tmp_path, monkeypatch):
    from spatten.models.config import replace_path
    from spatten.sim.sweep import real as real_mod

    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path))
    calls = []

    def fake_run(w, model, **kw):  # a stand-in model run: what it was asked, a two-row trace
        calls.append((model, kw))
        return sim_accuracy.AccuracyRun({"cosine_mean": 0.25 * len(calls)}, None, pd.DataFrame({"a": [1, 2]}))

    monkeypatch.setattr(sim_accuracy, "run_accuracy", fake_run)
    spec = parse_spec(real())
    w = spec.points[0].workload
    summary, trace = real_mod.real_run(w, spec.accuracy)
    expect = {"text": None, "windows": 4, "window_len": 8, "mode": "prefill", "datapath": "fixed"}
    assert calls == [("minilm", expect)] and summary == {"cosine_mean": 0.25}
    assert trace["a"].tolist() == [1, 2]
    # other hardware, same policy: no new run (the model does not see the accelerator)
    assert real_mod.real_run(replace_path(w, "accelerator.hbm_channels", 2), spec.accuracy)[0] == summary
    assert len(calls) == 1
    # another policy runs; a damaged file is run again
    real_mod.real_run(spec.points[1].workload, spec.accuracy)
    assert len(calls) == 2
    assert len(list(trace_cache_dir().glob("*.parquet"))) == 2
    for f in trace_cache_dir().glob("*.parquet"):
        f.write_bytes(b"not parquet")
    real_mod._load.cache_clear()  # the worker's in-memory copy: gone as in a new process
    assert real_mod.real_run(w, spec.accuracy)[0] == {"cosine_mean": 0.75}
    assert len(calls) == 3


# --- end to end ----------------------------------------------------------------------------------


def brute_front(values: np.ndarray, maximize: list[bool]) -> list[int]:
    """Indices of the rows no other row dominates (written out, independently of the plot module)."""
    v = values * np.where(maximize, -1.0, 1.0)
    out = []
    for i in range(len(v)):
        if not any(np.all(v[j] <= v[i]) and np.any(v[j] < v[i]) for j in range(len(v)) if j != i):
            out.append(i)
    return out


def test_tiny_minilm_sweep_end_to_end(tmp_path, monkeypatch, capsys):
    """`spatten sweep` on the tiny example: rows checked point by point, figures, resume, cache reuse."""
    from spatten.sim.api import simulate
    from spatten.sim.power.energy import energy
    from spatten.sim.sweep.runner import run_sweep

    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = ["sweep", str(TINY), "--out", str(out), "--workers", "2", "--no-progress"]
    assert cli_main(argv) == 0
    assert "4 points (4 distinct): 4 simulated, 0 already stored, 0 failed" in capsys.readouterr().out
    spec = load_spec(TINY)
    res = pd.read_parquet(out / "results.parquet")
    assert len(res) == 4 and (res["error"] == "").all()
    # one model run per policy: the two qk_multipliers values of a token_keep share it
    assert len(list(trace_cache_dir().glob("*.parquet"))) == 2

    # Each row against the accuracy module run here: metrics from the run, the rest from its own trace.
    runs = {}  # one model run per policy; each point simulates it on its own accelerator
    for i, p in enumerate(spec.points):
        key = (p.workload.pruning, p.workload.quant)
        if key not in runs:
            runs[key] = sim_accuracy.run_accuracy(p.workload, "minilm", windows=4, window_len=8)
        run = runs[key]
        sim = simulate(p.workload, run.trace)
        row = res.iloc[i]
        for key in (
            "cosine_mean",
            "cosine_min",
            "task_accuracy",
            "dense_task_accuracy",
            "reached_token_keep",
        ):
            assert row[key] == run.summary[key], (i, key)
        for key in ("cycles", "seconds", "dram_bytes_total", "dram_reduction", "bounding_stage"):
            assert row[key] == sim.summary[key], (i, key)
        assert row["energy_j"] == energy(sim.actions, p.workload.accelerator, 40).total_j
    assert res.loc[0, "area_mm2"] < res.loc[1, "area_mm2"]  # 128 against 512 Q.K multipliers

    # Figures written and read back; the front file lists exactly the non-dominated points.
    for stem in ("accuracy_cosine_mean", "accuracy_task_accuracy", "pareto_dram"):
        check_png(out / f"{stem}.png")
        check_pdf(out / f"{stem}.pdf")
    front = pd.read_csv(out / "accuracy_front.csv")
    cols = ["cosine_mean", "dram_reduction", "seconds", "energy_j"]
    expect = brute_front(res[cols].to_numpy(float), [True, True, False, False])
    assert sorted(front.loc[front["metric"] == "cosine_mean", "index"]) == sorted(res["index"].iloc[expect])
    assert "## Accuracy: Pareto-optimal points" in (out / "summary.md").read_text()

    # A resume reruns nothing (an evaluation would raise), with the same rows as the CLI wrote.
    def no_run(*args, **kwargs):
        raise AssertionError("the model ran again")

    resumed = run_sweep(spec, out, workers=1, processes=False, progress=False, evaluate=no_run)
    assert (resumed.n_run, resumed.n_skipped, resumed.n_lost) == (0, 4, 0)
    for col in ("cosine_mean", "task_accuracy", "cycles", "energy_j"):
        assert resumed.results[col].tolist() == res[col].tolist(), col

    # A fresh output folder gets the same rows from the per-policy cache, without a model run (threads:
    # the patch applies to the workers).
    monkeypatch.setattr(sim_accuracy, "run_accuracy", no_run)
    fresh = run_sweep(spec, tmp_path / "fresh", workers=1, processes=False, progress=False)
    assert (fresh.n_run, fresh.n_failed, fresh.n_lost) == (4, 0, 0)
    for col in ("cosine_mean", "task_accuracy", "cycles", "dram_reduction", "energy_j", "area_mm2"):
        assert fresh.results[col].tolist() == res[col].tolist(), col


def test_smollm2_example_expands_to_quantized_policies():
    spec = load_spec(ROOT / "examples" / "sweeps" / "smollm2-accuracy.yaml")
    assert spec.workloads == ("smollm2",) and spec.accuracy.settings("smollm2")["mode"] == "generation"
    assert len(spec.unique_points()) == len(spec.points) == 20
    assert all(p.workload.quant.enabled for p in spec.points)
    assert {p.workload.model.name for p in spec.points} == {"smollm2"}
