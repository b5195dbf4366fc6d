"""Design-space sweeps: spec expansion, hashing, the incremental store, the Dask runner, the report, the CLI.

The runner tests with a stand-in evaluator use in-process (thread) workers to stay fast; the crash test
starts the real `spatten sweep` as a subprocess with worker processes, SIGKILLs it mid-run, reruns it
and compares the results row for row with an uninterrupted run.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from spatten.models.config import Workload, replace_path, workload_preset
from spatten.reports.sweep_plots import pareto_mask, summary_table, write_report
from spatten.sim.sweep.runner import evaluate_point, run_sweep
from spatten.sim.sweep.spec import load_spec, parse_spec, point_hash
from spatten.sim.sweep.store import MAX_BATCH, PointStore

from spatten.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]

# A small GPT-2 generation workload (points take milliseconds).
TINY_FIXED = {
    "model.layers": 2,
    "model.prompt_len": 32,
    "model.gen_tokens": 2,
    "pruning.token_keep_schedule": [],
    "pruning.head_keep_schedule": [],
    "pruning.token_keep": 0.8,
}


def spec_of(sweep: dict, **top) -> dict:
    return {"workloads": ["gpt2-small"], "fixed": dict(TINY_FIXED), "sweep": sweep, **top}


# --- expansion -----------------------------------------------------------------------------------


def test_list_range_and_geometric_values_and_product_order():
    spec = parse_spec(
        spec_of(
            {
                "accelerator.qk_multipliers": [64, 128],
                "accelerator.hbm_channels": {"start": 2, "stop": 8, "step": 3},
                "accelerator.pv_multipliers": {"start": 64, "stop": 512, "factor": 2},
            }
        )
    )
    assert dict(spec.axes) == {
        "accelerator.qk_multipliers": (64, 128),
        "accelerator.hbm_channels": (2, 5, 8),
        "accelerator.pv_multipliers": (64, 128, 256, 512),
    }
    assert len(spec.points) == 2 * 3 * 4
    # last axis fastest
    expected = list(itertools.product((64, 128), (2, 5, 8), (64, 128, 256, 512)))
    got = [tuple(v for _, v in p.params) for p in spec.points]
    assert got == expected
    for p, (qk, ch, pv) in zip(spec.points, expected, strict=True):
        acc = p.workload.accelerator
        assert (acc.qk_multipliers, acc.hbm_channels, acc.pv_multipliers) == (qk, ch, pv)
        assert p.workload.model.layers == 2 and p.workload.model.prompt_len == 32


def test_float_range_includes_stop_without_float_noise():
    spec = parse_spec(spec_of({"quant.refetch_threshold": {"start": 0.0, "stop": 0.3, "step": 0.1}}))
    assert dict(spec.axes)["quant.refetch_threshold"] == (0.0, 0.1, 0.2, 0.3)
    spec = parse_spec(spec_of({"pruning.value_keep": {"start": 1.0, "stop": 0.5, "step": -0.25}}))
    assert dict(spec.axes)["pruning.value_keep"] == (1.0, 0.75, 0.5)


def test_random_samples_are_seeded_and_typed():
    axis = {"distribution": "uniform", "low": 2, "high": 9, "n": 50, "seed": 3}
    a = parse_spec(spec_of({"accelerator.hbm_channels": axis}))
    b = parse_spec(spec_of({"accelerator.hbm_channels": dict(axis)}))
    values = dict(a.axes)["accelerator.hbm_channels"]
    assert values == dict(b.axes)["accelerator.hbm_channels"]
    assert all(type(v) is int and 2 <= v <= 9 for v in values)
    assert set(values) == set(range(2, 10))  # 50 draws from 8 integers: all appear (p > 0.99)
    other = parse_spec(spec_of({"accelerator.hbm_channels": axis | {"seed": 4}}))
    assert dict(other.axes)["accelerator.hbm_channels"] != values

    f = parse_spec(
        spec_of(
            {"quant.refetch_threshold": {"distribution": "loguniform", "low": 0.01, "high": 0.5, "n": 20}}
        )
    )
    fv = dict(f.axes)["quant.refetch_threshold"]
    assert len(fv) == 20 and all(type(v) is float and 0.01 <= v <= 0.5 for v in fv)
    c = parse_spec(spec_of({"quant.enabled": {"distribution": "choice", "values": [True, False], "n": 6}}))
    assert set(dict(c.axes)["quant.enabled"]) <= {True, False}


def test_workloads_are_the_outermost_axis():
    spec = parse_spec(
        {
            "workloads": ["bert-base", "gpt2-small"],
            "fixed": {"model.layers": 4, "pruning.token_keep_schedule": [], "pruning.head_keep_schedule": []},
            "sweep": {"accelerator.qk_multipliers": [64, 128]},
        }
    )
    assert [(p.workload_name, p.params[0][1]) for p in spec.points] == [
        ("bert-base", 64),
        ("bert-base", 128),
        ("gpt2-small", 64),
        ("gpt2-small", 128),
    ]
    assert spec.points[0].workload.model.mode == "summarization"
    assert spec.points[3].workload.model.mode == "generation"


# --- hashing -------------------------------------------------------------------------------------


def test_hash_depends_on_every_section_and_the_baseline_but_not_on_spelling():
    w = workload_preset("gpt2-medium")
    h = point_hash(w, "spatten")
    assert len(h) == 20 and h == point_hash(workload_preset("gpt2-medium"), "spatten")
    assert point_hash(w, "a3") != h
    for path, value in (
        ("accelerator.dram_tcl", 8),  # a field nobody sweeps still counts: the FULL config is hashed
        ("model.gen_tokens", 31),
        ("pruning.value_keep", 0.31),
        ("quant.query_bits", 15),
    ):
        assert point_hash(replace_path(w, path, value), "spatten") != h, path
    # 0 and 0.0 for a float field are the same config
    a = parse_spec(spec_of({"quant.refetch_threshold": [0]}))
    b = parse_spec(spec_of({"quant.refetch_threshold": [0.0]}))
    assert a.points[0].point_id == b.points[0].point_id


def test_duplicate_configs_share_a_point_id_and_run_once():
    spec = parse_spec(spec_of({"accelerator.qk_multipliers": [64, 128, 64]}))
    assert len(spec.points) == 3
    assert spec.points[0].point_id == spec.points[2].point_id
    assert [p.index for p in spec.unique_points()] == [0, 1]


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (
            spec_of({"accelerator.qk_multiplier": [64]}),
            "sweep.accelerator.qk_multiplier: unknown config field",
        ),
        (
            spec_of({"accelerator.hbm_channels": {"start": 8, "stop": 2, "step": 2}}),
            "sweep.accelerator.hbm_channels",
        ),
        (spec_of({"accelerator.hbm_channels": []}), "sweep.accelerator.hbm_channels: empty list"),
        (
            spec_of({"accelerator.qk_multipliers": ["many"]}),
            "sweep.accelerator.qk_multipliers must be an integer",
        ),
        (spec_of({"accelerator.qk_multipliers": [0]}), "sweep.accelerator.qk_multipliers = 0 is outside"),
        (
            spec_of({"quant.refetch_threshold": {"start": 0, "stop": 1, "step": 0}}),
            "sweep.quant.refetch_threshold",
        ),
        (spec_of({"accelerator.hbm_channels": {"start": "a", "stop": 2, "step": 1}}), "hbm_channels.start"),
        (
            spec_of({"accelerator.hbm_channels": {"distribution": "normal", "n": 2}}),
            "hbm_channels.distribution",
        ),
        (
            spec_of({"accelerator.hbm_channels": {"distribution": "uniform", "low": 1, "high": 4}}),
            "hbm_channels.n",
        ),
        (spec_of({"accelerator.hbm_channels": {"begin": 1}}), "sweep.accelerator.hbm_channels"),
        (spec_of({}, sweeps={}), "unknown sweep key 'sweeps'"),
        (spec_of({}, workloads=["gpt5"]), "workloads"),
        (spec_of({}, fixed={"model.layer": 2}), "fixed.model.layer: unknown config field"),
        (spec_of({"quant.key_msb_bits": [12], "quant.key_lsb_bits": [6]}), "key_lsb_bits"),
        ({"workloads": ["gpt2-medium"], "fixed": {"model.layers": 3}}, "token_keep_schedule"),
    ],
)
def test_bad_specs_raise_one_line_naming_the_field(doc, needle):
    with pytest.raises((ValueError, TypeError)) as info:
        parse_spec(doc)
    msg = str(info.value)
    assert "\n" not in msg
    assert needle in msg


def test_cli_bad_yaml_exits_2_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec_of({"accelerator.hbm_channels": {"start": 4, "stop": 1, "step": 1}})))
    out = tmp_path / "out"
    assert cli_main(["sweep", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sweep.accelerator.hbm_channels" in err[0] and "empty range" in err[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]

    (tmp_path / "broken.yaml").write_text("sweep: [1, 2\n")
    assert cli_main(["sweep", str(tmp_path / "broken.yaml"), "--out", str(out)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert not out.exists()


def test_cli_dry_run_lists_points_and_writes_nothing(tmp_path, capsys):
    f = tmp_path / "s.yaml"
    f.write_text(
        yaml.safe_dump(spec_of({"accelerator.qk_multipliers": [64, 128], "accelerator.hbm_channels": [2, 4]}))
    )
    assert cli_main(["sweep", str(f), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.strip().splitlines()[-1].startswith("4 points (4 distinct configs, 0 already stored)")
    assert len(text.strip().splitlines()) == 1 + 4 + 1  # header, points, count
    assert not (tmp_path / "out").exists()


def test_example_sweeps_expand():
    small = load_spec(ROOT / "examples" / "sweeps" / "small.yaml")
    big = load_spec(ROOT / "examples" / "sweeps" / "gpt2-medium-1000.yaml")
    assert len(small.points) > 1
    assert len(big.points) == len(big.unique_points()) == 1000
    assert {p.workload.model.name for p in big.points} == {"gpt2-medium"}


# --- Pareto front -------------------------------------------------------------------------------


def brute_force_front(x, y):
    n = len(x)
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        if not (np.isfinite(x[i]) and np.isfinite(y[i])):
            continue
        out[i] = not any(
            x[j] <= x[i] and y[j] <= y[i] and (x[j] < x[i] or y[j] < y[i])
            for j in range(n)
            if j != i and np.isfinite(x[j]) and np.isfinite(y[j])
        )
    return out


def test_pareto_hand_case():
    x = [1, 2, 3, 2, 4, 1]
    y = [5, 3, 1, 3, 1, 6]
    # (1,5) front; (2,3) twice, both front; (3,1) front; (4,1) dominated by (3,1); (1,6) by (1,5)
    assert pareto_mask(x, y).tolist() == [True, True, True, True, False, False]


@pytest.mark.parametrize("seed", range(20))
def test_pareto_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    x = rng.integers(0, 8, n).astype(float)  # small ranges: many ties
    y = rng.integers(0, 8, n).astype(float)
    x[rng.random(n) < 0.05] = np.nan
    assert pareto_mask(x, y).tolist() == brute_force_front(x, y).tolist()


# --- store ---------------------------------------------------------------------------------------


def test_store_round_trip_batches_and_stale_temporaries(tmp_path):
    store = PointStore(tmp_path)
    assert store.done_ids() == set() and not (tmp_path / "points").exists()
    rows = [
        {"point_id": f"p{i:02d}", "cycles": i, "seconds": i / 2, "error": ""} for i in range(MAX_BATCH + 3)
    ]
    rows.append({"point_id": "bad", "error": "simulator said no"})  # no metrics
    paths = store.write(rows[:2]) + store.write(rows[2:])
    assert [len(p.stem.split("_")) for p in paths] == [2, MAX_BATCH, 10 - MAX_BATCH]
    (tmp_path / "points" / ".tmp-p99.xyz").write_bytes(b"half a file")
    assert store.done_ids() == {r["point_id"] for r in rows}
    assert store.remove_stale_temporaries() == 1
    ids = ["p10", "bad", "p00", "p07"]
    df = store.read(ids)
    assert df["point_id"].tolist() == ids
    assert df["cycles"].tolist()[0] == 10 and pd.isna(df["cycles"].tolist()[1])
    assert df["error"].tolist() == ["", "simulator said no", "", ""]
    # a point's row does not depend on its file-mates
    alone = PointStore(tmp_path / "alone")
    alone.write([rows[7]])
    pd.testing.assert_frame_equal(alone.read(["p07"]), store.read(["p07"]))
    with pytest.raises(ValueError, match="not in the store"):
        store.read(["nope"])


# --- runner with a stand-in evaluator (thread workers) -------------------------------------------

CALLS: list[int] = []
_LOCK = threading.Lock()


def fake_evaluate(w: Workload, baseline: str) -> dict:
    """A stand-in simulator: known closed-form metrics, a ValueError for one config, a crash for another."""
    acc = w.accelerator
    with _LOCK:
        CALLS.append(acc.qk_multipliers)
    if acc.qk_multipliers == 96:
        raise RuntimeError("worker crashed")
    if acc.qk_multipliers == 80:
        return {"error": "accelerator.qk_multipliers = 80 rejected"}
    return {
        "error": "",
        "cycles": 1000 // acc.qk_multipliers + acc.hbm_channels,
        "seconds": (1000 // acc.qk_multipliers + acc.hbm_channels) * 1e-9,
        "dram_bytes_total": 100.0 * acc.hbm_channels,
        "bounding_stage": "qk",
    }


def test_runner_stores_each_point_and_a_rerun_skips_them(tmp_path):
    spec = parse_spec(
        spec_of({"accelerator.qk_multipliers": [64, 80, 96, 128], "accelerator.hbm_channels": [2, 4]})
    )
    CALLS.clear()
    first = run_sweep(spec, tmp_path, workers=2, processes=False, progress=False, evaluate=fake_evaluate)
    assert sorted(CALLS) == sorted([64, 80, 96, 128] * 2)
    assert (first.n_run, first.n_failed, first.n_lost, first.n_skipped) == (6, 2, 2, 0)
    res = first.results
    assert res["index"].tolist() == list(range(8))
    ok = res[res["error"] == ""]
    qk = ok["accelerator.qk_multipliers"]
    ch = ok["accelerator.hbm_channels"]
    assert ok["cycles"].tolist() == (1000 // qk + ch).tolist()
    assert ok["dram_bytes_total"].tolist() == (100.0 * ch).tolist()
    assert res.loc[res["accelerator.qk_multipliers"] == 96, "cycles"].isna().all()  # lost: not stored

    CALLS.clear()
    second = run_sweep(spec, tmp_path, workers=1, processes=False, progress=False, evaluate=fake_evaluate)
    assert CALLS == [96, 96]  # only the lost points are retried; the ValueError rows count as done
    assert (second.n_run, second.n_skipped, second.n_lost) == (0, 6, 2)
    pd.testing.assert_frame_equal(first.results, second.results)


def test_report_files_and_summary_numbers(tmp_path):
    spec = parse_spec(
        spec_of({"accelerator.qk_multipliers": [64, 128, 256], "accelerator.hbm_channels": [2, 8]})
    )
    run = run_sweep(
        spec, tmp_path / "run", workers=1, processes=False, progress=False, evaluate=fake_evaluate
    )
    text = write_report(run.results, spec.params, tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    figures = ["pareto_dram", "pareto_area", *(f"sensitivity_{p}" for p in spec.params)]
    assert {"summary.md", "summary.csv", "sensitivity.csv"} <= names
    for stem in figures:  # every figure as a PNG and a PDF, both listed in the summary
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
        assert f"{stem}.png, {stem}.pdf" in text
    assert "# sweep" in text
    table = summary_table(run.results, spec.params)
    # hand-computed: cycles = 1000 // qk + channels -> fastest is qk 256, 2 channels: 3 + 2 = 5
    assert table["seconds_min"].iloc[0] == pytest.approx(5e-9)
    assert table["fastest_params"].iloc[0] == "accelerator.qk_multipliers=256, accelerator.hbm_channels=2"
    # DRAM = 100 * channels; at 200 B the fastest is 5 cycles, at 800 B it's 3 + 8 = 11: only the first
    # is on the front (both smaller)
    assert table["pareto_points"].iloc[0] == 1


def test_existing_scheduler_is_used_and_a_bad_address_writes_nothing(tmp_path, monkeypatch):
    import spatten.sim.sweep.runner as runner
    from dask.distributed import LocalCluster

    spec = parse_spec(spec_of({"accelerator.qk_multipliers": [64, 128]}))
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        run = run_sweep(
            spec, tmp_path / "a", scheduler=cluster.scheduler_address, progress=False, evaluate=fake_evaluate
        )
    assert run.n_run == 2 and run.results["cycles"].tolist() == [1000 // 64 + 16, 1000 // 128 + 16]

    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(ValueError, match="--scheduler 'tcp://127.0.0.1:9': cannot connect"):
        run_sweep(spec, tmp_path / "b", scheduler="tcp://127.0.0.1:9", progress=False, evaluate=fake_evaluate)
    assert not (tmp_path / "b").exists()


def test_chunks_keep_every_worker_busy():
    assert runner_chunk(1000, 2) == 8 and runner_chunk(64, 2) == 2 and runner_chunk(5, 4) == 1
    assert runner_chunk(10_000, 1) == 8


def runner_chunk(n: int, workers: int) -> int:
    from spatten.sim.sweep.runner import chunk_size

    return chunk_size(n, workers)


# --- the real simulator --------------------------------------------------------------------------


def test_rows_equal_direct_simulation():
    from spatten.sim.api import simulate

    spec = parse_spec(spec_of({"accelerator.qk_multipliers": [64, 512], "pruning.value_keep": [0.5, 1.0]}))
    for p in spec.points:  # the trace cache must not leak between points
        row = evaluate_point(p.workload, "spatten")
        direct = simulate(p.workload).summary
        assert row["error"] == ""
        assert {k: row[k] for k in direct} == direct


def test_rows_carry_energy_and_area_of_the_power_model():
    from spatten.sim.api import simulate
    from spatten.sim.power.area import area
    from spatten.sim.power.energy import energy

    spec = parse_spec(spec_of({"accelerator.qk_multipliers": [64, 512]}))
    rows = [evaluate_point(p.workload, "spatten") for p in spec.points]
    for p, row in zip(spec.points, rows, strict=True):
        acc = p.workload.accelerator
        assert row["energy_j"] == energy(simulate(p.workload).actions, acc, 40).total_j
        assert row["area_mm2"] == area(acc, 40).total_mm2
    assert rows[0]["area_mm2"] < rows[1]["area_mm2"]  # 448 fewer multipliers
    assert "energy_j" not in evaluate_point(spec.points[0].workload, "a3")


def _sweep_cmd(spec_file: Path, out: Path, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "spatten",
        "sweep",
        str(spec_file),
        "--out",
        str(out),
        "--workers",
        str(workers),
    ]


def test_killed_sweep_resumes_to_the_same_rows(tmp_path):
    """SIGKILL a running sweep, rerun it, and compare with an uninterrupted run row for row."""
    doc = {
        "workloads": ["gpt2-medium"],
        "sweep": {
            # 128 points: at about 100 points/s the kill after 6 stored points has a second to land
            "accelerator.qk_multipliers": {"start": 64, "stop": 1024, "step": 64},
            "accelerator.hbm_channels": {"start": 2, "stop": 16, "step": 2},
        },
    }
    spec_file = tmp_path / "s.yaml"
    spec_file.write_text(yaml.safe_dump(doc))
    n = 128
    env = dict(os.environ, MPLBACKEND="Agg")

    clean = tmp_path / "clean"
    done = subprocess.run(
        _sweep_cmd(spec_file, clean, 2), capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert f"{n} points ({n} distinct): {n} simulated" in done.stdout

    crashed = tmp_path / "crashed"
    proc = subprocess.Popen(
        _sweep_cmd(spec_file, crashed, 2),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # its own process group: the kill takes the Dask workers with it
    )
    try:
        deadline = time.monotonic() + 60
        while len(PointStore(crashed).done_ids()) < 6:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    stored = len(PointStore(crashed).done_ids())
    assert 6 <= stored < n
    assert not (crashed / "results.parquet").exists()

    resumed = subprocess.run(
        _sweep_cmd(spec_file, crashed, 1), capture_output=True, text=True, env=env, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{n - stored} simulated, {stored} already stored" in resumed.stdout

    a = pd.read_parquet(clean / "results.parquet")
    b = pd.read_parquet(crashed / "results.parquet")
    assert len(a) == n
    pd.testing.assert_frame_equal(a, b)
    # and the files agree at the Parquet level too (same columns and types)
    assert pq.read_schema(clean / "results.parquet").equals(pq.read_schema(crashed / "results.parquet"))
    assert isinstance(pq.read_table(clean / "results.parquet"), pa.Table)
