"""A sweep folder damaged from outside, or wanted by two sweeps at once (the bad-input contract)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from spatten.sim.sweep.runner import run_sweep
from spatten.sim.sweep.spec import parse_spec
from spatten.sim.sweep.store import PointStore


def _evaluate(w, baseline: str) -> dict:
    """A stand-in simulator (module level: the thread workers import it)."""
    return {"error": "", "cycles": 1000 // w.accelerator.qk_multipliers}


def _spec():
    return parse_spec(
        {
            "name": "faults",
            "workloads": ["gpt2-medium"],
            "sweep": {"accelerator.qk_multipliers": [64, 128, 256, 512]},
        }
    )


def _run(out):
    return run_sweep(_spec(), out, workers=1, processes=False, progress=False, evaluate=_evaluate)


def test_damaged_parts_are_set_aside_named_and_run_again(tmp_path, capsys) -> None:
    first = _run(tmp_path)
    store = PointStore(tmp_path)
    files = sorted(p for p in store.folder.iterdir() if p.suffix == ".parquet")
    ids = sorted(first.results["point_id"])
    assert len(files) >= 1 and store.done_ids() == set(ids)
    # Damage every way the issue names, each on its own file (one point per file from here on).
    for f in files:
        f.unlink()
    store.write([{"point_id": pid, "error": "", "cycles": 1} for pid in ids[:1]])  # whole, kept
    (store.folder / f"{ids[1]}.parquet").write_bytes(b"")  # zero bytes
    good = store.folder / f"{ids[0]}.parquet"
    (store.folder / f"{ids[2]}.parquet").write_bytes(good.read_bytes()[:-9])  # cut short
    # a whole Parquet file whose row is another point
    pq.write_table(pa.table({"point_id": [ids[0]], "error": [""]}), store.folder / f"{ids[3]}.parquet")
    (store.folder / f".tmp-{ids[3]}.x").write_bytes(b"PAR")  # a stale temporary
    capsys.readouterr()

    second = _run(tmp_path)
    err = capsys.readouterr().err
    for pid, why in ((ids[1], "0 bytes"), (ids[2], "not a whole Parquet file"), (ids[3], "its name says")):
        line = next(x for x in err.splitlines() if pid in x)
        assert why in line and "run again" in line, err
    assert ids[0] not in err
    assert second.n_run == 3 and second.n_skipped == 1
    assert sorted(p.name for p in (tmp_path / "damaged").iterdir()) == sorted(f"{i}.parquet" for i in ids[1:])
    assert not [p for p in store.folder.iterdir() if p.name.startswith(".tmp-")]
    kept = second.results.set_index("point_id")["cycles"]
    assert kept[ids[0]] == 1  # the whole part was read back, not rerun
    want = first.results.set_index("point_id")["cycles"]
    assert all(kept[i] == want[i] for i in ids[1:])  # the damaged ones were simulated again
    assert _run(tmp_path).n_run == 0  # and stored whole this time


def test_a_second_sweep_into_a_busy_folder_is_refused(tmp_path) -> None:
    with PointStore(tmp_path / "busy").lock():
        with pytest.raises(ValueError, match="in use by another sweep"):
            _run(tmp_path / "busy")
    assert _run(tmp_path / "busy").n_run == 4  # released: the next run goes ahead
    with pytest.raises(ValueError, match="in use by another sweep"):
        with PointStore(tmp_path / "new").lock():
            _run(tmp_path / "new")
    assert not (tmp_path / "new").exists()  # nothing stored: the folder the lock made is gone
