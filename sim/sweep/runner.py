"""Run a sweep's missing points on Dask and gather every point's row.

Points go to Dask in small tasks (1 to 8 consecutive points, see :func:`chunk_size`). The client writes
the rows of a task to the :class:`~sim.sweep.store.PointStore` as soon as it receives them (workers never
touch the output folder, so a remote cluster needs no shared filesystem). Points already stored are not
submitted again; a killed run therefore loses only the points in flight (those of unfinished tasks), and
because a row depends on nothing but the point's config, a resumed sweep ends with the same rows as an
uninterrupted one.

Workers are processes with one thread each by default: the simulator spends much of its time in
Python between short numpy calls, which hold the GIL, so two threads in one process share one core;
two processes use both. The only extra cost is pickling a small config in and a flat dict out
(``benchmarks/bench_sweep.py --threads`` measures both).

An accuracy sweep (a real model, ``spec.accuracy``) evaluates points with
:func:`sim.sweep.real.evaluate_accuracy_point`, one task per policy (the points that share pruning and
quantization and differ only in hardware), so a policy's model run (a second to minutes) happens once
and its hardware points then cost a simulation each.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from spatten.models.config import ModelShape, PruningConfig, QuantConfig, Workload, to_dict
from spatten.sim.sweep.spec import SweepPoint, SweepSpec
from spatten.sim.sweep.store import PointStore

__all__ = ["SweepRun", "energy_area", "evaluate_point", "run_sweep"]

#: Largest --workers accepted for a LocalCluster.
MAX_WORKERS = 256
#: Most points in one Dask task.
MAX_CHUNK = 8
#: How long to wait for a --scheduler to answer.
CONNECT_TIMEOUT = "10s"
#: Technology node of the energy and area columns (the paper's 40 nm).
TECH_NM = 40

Evaluator = Callable[[Workload, str], dict[str, Any]]


def evaluate_point(workload: Workload, baseline: str) -> dict[str, Any]:
    """Simulate one point and return its flat result row (runs on a worker).

    Parameters
    ----------
    workload : Workload
        The point's full config.
    baseline : str
        Passed to :func:`sim.api.simulate`.

    Returns
    -------
    dict
        ``error`` ("" on success, else the one-line message of the simulator's ``ValueError`` or
        ``TypeError``; such a point is stored as done, since the same config fails the same way) and,
        on success, every entry of ``SimResult.summary`` with numpy scalars turned into Python ones,
        and for SpAtten and dense points the energy columns of :meth:`sim.power.energy.EnergyReport.columns`
        and ``area_mm2`` at :data:`TECH_NM` (``energy_error`` instead when the energy model rejects the
        hardware, e.g. an SRAM outside CACTI's range; the performance columns are kept).
    """
    from spatten.sim.api import (  # here, not at import: specs and dry runs need no simulator
        OWN_HARDWARE,
        simulate,
    )

    try:
        if baseline == "spatten":
            # simulate(w) is simulate(w, shape_trace(w)) for SpAtten; the trace ignores the accelerator,
            # so points that differ only in hardware share one (about 40% of a GPT-2 point's time).
            trace = _shape_trace(workload.model, workload.pruning, workload.quant)
            result = simulate(workload, trace, baseline=baseline)
        else:
            result = simulate(workload, baseline=baseline)
    except (ValueError, TypeError) as e:
        return {"error": (str(e).splitlines() or [type(e).__name__])[0]}
    row: dict[str, Any] = {"error": ""}
    for key, value in result.summary.items():
        row[key] = value.item() if hasattr(value, "item") else value
    if baseline in OWN_HARDWARE:
        row.update(energy_area(result.actions, workload.accelerator))
    return row


def energy_area(actions: dict[str, float], accel: Any) -> dict[str, Any]:
    """Energy columns and modelled area at :data:`TECH_NM` (CACTI results come from the disk cache).

    ``energy_error`` instead when the energy model rejects the hardware (e.g. an SRAM outside CACTI's range).
    """
    from spatten.sim.power.area import area
    from spatten.sim.power.energy import energy

    try:
        cols = energy(actions, accel, TECH_NM).columns()
        cols["area_mm2"] = area(accel, TECH_NM).total_mm2
    except (ValueError, TypeError) as e:  # e.g. a memory geometry outside CACTI's range
        return {"energy_error": (str(e).splitlines() or [type(e).__name__])[0]}
    return cols


def _chunks(spec: SweepSpec, todo: list[SweepPoint], n_workers: int) -> list[list[SweepPoint]]:
    """The tasks: :func:`chunk_size` consecutive points, or for an accuracy sweep one task per policy."""
    if spec.accuracy is None:
        size = chunk_size(len(todo), n_workers)
        return [todo[start : start + size] for start in range(0, len(todo), size)]
    groups: dict[tuple, list[SweepPoint]] = {}
    for p in todo:
        groups.setdefault((p.workload.model, p.workload.pruning, p.workload.quant), []).append(p)
    return list(groups.values())


def chunk_size(n_points: int, n_workers: int) -> int:
    """Points per Dask task: up to :data:`MAX_CHUNK`, but at least 16 tasks per worker for balance.

    One task per point costs the client and scheduler about as much CPU as a small point itself;
    a few points per task amortise that while keeping what a kill can lose (the points of unfinished
    tasks) small.
    """
    return max(1, min(MAX_CHUNK, n_points // (16 * max(1, n_workers))))


def _evaluate_chunk(
    workloads: list[Workload], baseline: str, evaluate: Evaluator
) -> list[tuple[bool, dict[str, Any] | str]]:
    """Run ``evaluate`` on each workload (one Dask task): ``(True, row)`` or ``(False, why it crashed)``."""
    out: list[tuple[bool, dict[str, Any] | str]] = []
    for w in workloads:
        try:
            out.append((True, evaluate(w, baseline)))
        except Exception as e:  # not stored, so a rerun retries it; the others in the chunk are kept
            out.append((False, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
    return out


@functools.lru_cache(maxsize=16)
def _shape_trace(model: ModelShape, pruning: PruningConfig, quant: QuantConfig) -> pd.DataFrame:
    """The shape-only trace of a policy (per worker process, cached; the accelerator is not used)."""
    from spatten.models.workload import shape_trace

    return shape_trace(Workload(model=model, pruning=pruning, quant=quant))


@dataclass
class SweepRun:
    """What a sweep run did.

    Attributes
    ----------
    results : pandas.DataFrame
        One row per point in expansion order: the point columns of ``SweepSpec.points_frame`` joined
        with the stored row (``config``, ``error`` and the simulator summary). Points whose task was lost
        (worker crash) have nulls.
    n_points, n_unique : int
        Points in the spec, and distinct configs among them.
    n_skipped : int
        Distinct configs already stored when the run started.
    n_run : int
        Configs simulated and stored by this run.
    n_failed : int
        Stored points whose simulation raised (``error`` non-empty).
    n_lost : int
        Tasks that died without a result (not stored; a rerun retries them).
    seconds : float
        Wall time of the run, cluster start included.
    """

    results: pd.DataFrame
    n_points: int
    n_unique: int
    n_skipped: int
    n_run: int
    n_failed: int
    n_lost: int
    seconds: float


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    workers: int = 2,
    scheduler: str | None = None,
    processes: bool = True,
    progress: bool = True,
    evaluate: Evaluator | None = None,
) -> SweepRun:
    """Simulate every point of ``spec`` not yet stored under ``out`` and return all rows.

    Parameters
    ----------
    spec : SweepSpec
        The expanded sweep.
    out : str or Path
        Output folder; rows go to ``out/points``.
    workers : int
        LocalCluster workers (1..256); ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to use instead of a LocalCluster.
    processes : bool
        LocalCluster workers as processes (default) or threads of this process.
    progress : bool
        Show a progress bar on stderr (points done, rate, time left).
    evaluate : callable, optional
        ``(workload, baseline) -> row``; must be importable by the workers (a module-level function or a
        ``functools.partial`` of one). Default :func:`evaluate_point`, or for an accuracy sweep
        :func:`sim.sweep.real.evaluate_accuracy_point` with the spec's accuracy settings.

    Returns
    -------
    SweepRun
    """
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an integer, got {workers!r}")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers = {workers} is outside the allowed range 1..{MAX_WORKERS}")
    if evaluate is None:
        evaluate = _default_evaluator(spec)
    t0 = time.perf_counter()
    store = PointStore(out)
    unique = spec.unique_points()
    with store.lock():
        for name, why in store.set_aside_damaged():
            print(f"sweep: damaged part points/{name} ({why}) moved to damaged/; its points run again",
                  file=sys.stderr)  # fmt: skip
        done = store.done_ids()
        todo = [p for p in unique if p.point_id not in done]
        n_run = n_lost = 0
        if todo:
            n_run, n_lost = _run_on_dask(spec, todo, store, workers, scheduler, processes, progress, evaluate)
        stored = store.done_ids()
        rows = store.read(p.point_id for p in unique if p.point_id in stored)
    frame = spec.points_frame()
    # The simulator's summary repeats some point columns (its ``workload`` is the model name): the
    # point's own columns win.
    rows = rows.drop(columns=[c for c in rows.columns if c in frame.columns and c != "point_id"])
    results = frame.merge(rows, on="point_id", how="left", validate="many_to_one")
    results = results.sort_values("index", kind="stable").reset_index(drop=True)
    n_failed = int((results.drop_duplicates("point_id")["error"].fillna("") != "").sum()) if len(rows) else 0
    return SweepRun(
        results=results,
        n_points=len(spec.points),
        n_unique=len(unique),
        n_skipped=len(unique) - len(todo),
        n_run=n_run,
        n_failed=n_failed,
        n_lost=n_lost,
        seconds=time.perf_counter() - t0,
    )


def _default_evaluator(spec: SweepSpec) -> Evaluator:
    if spec.accuracy is None:
        return evaluate_point
    from spatten.sim.sweep.real import evaluate_accuracy_point

    return functools.partial(evaluate_accuracy_point, accuracy=spec.accuracy)


def _run_on_dask(
    spec: SweepSpec,
    todo: list,
    store: PointStore,
    workers: int,
    scheduler: str | None,
    processes: bool,
    progress: bool,
    evaluate: Evaluator,
) -> tuple[int, int]:
    import dask
    from dask.distributed import Client, LocalCluster, as_completed
    from tqdm import tqdm

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as e:
            raise ValueError(f"--scheduler {scheduler!r}: cannot connect ({e})") from None
    else:
        # Dask starts worker processes with MALLOC_TRIM_THRESHOLD_=65536, which makes glibc unmap every
        # large freed array; the simulator allocates many short-lived ones and runs ~1.6x slower so.
        # Leave glibc's adaptive default instead (keep the other entries: one BLAS thread per worker).
        environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
        environ.pop("MALLOC_TRIM_THRESHOLD_", None)
        # A point's own progress bars (a real model's windows) would interleave with the sweep's.
        environ["TQDM_DISABLE"] = "1"
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=processes,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,  # lost tasks are reported below, one line each
            )
        client = Client(cluster)
    n_run = n_lost = 0
    bar = tqdm(
        total=len(todo),
        unit="pt",
        desc=f"sweep {spec.name}",
        file=sys.stderr,
        disable=not progress,
        smoothing=0.05,
    )
    try:
        store.remove_stale_temporaries()
        n_workers = len(client.scheduler_info().get("workers", {})) or workers
        by_key = {}
        futures = []
        for chunk in _chunks(spec, todo, n_workers):
            key = f"spatten-sweep-{chunk[0].point_id}-{len(chunk)}"
            args = ([p.workload for p in chunk], spec.baseline, evaluate)
            fut = client.submit(_evaluate_chunk, *args, key=key, pure=False, retries=0)
            by_key[fut.key] = chunk
            futures.append(fut)
        # Each batch is every chunk finished since the last one: written at once, a few points per file.
        for batch in as_completed(futures, with_results=True, raise_errors=False).batches():
            rows = []
            finished = 0
            for fut, value in batch:
                chunk = by_key.pop(fut.key)
                finished += len(chunk)
                if fut.status == "error":  # the worker died: the whole chunk is lost (a rerun retries it)
                    exc = value[1] if isinstance(value, tuple) and len(value) == 3 else value
                    outcomes = [(False, f"{type(exc).__name__}: {exc}")] * len(chunk)
                else:
                    outcomes = value
                for p, (ok, out) in zip(chunk, outcomes, strict=True):
                    if not ok:
                        n_lost += 1
                        bar.write(f"sweep: point {p.index} lost: {out}", file=sys.stderr)
                        continue
                    config = json.dumps(to_dict(p.workload), sort_keys=True, separators=(",", ":"))
                    rows.append({"point_id": p.point_id, "baseline": spec.baseline, "config": config} | out)
                fut.release()
            store.write(rows)
            n_run += len(rows)
            bar.update(finished)
    finally:
        bar.close()
        client.close()
        if cluster is not None:
            cluster.close()
    return n_run, n_lost
