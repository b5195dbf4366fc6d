"""Sweep points on a real model: the policy's accuracy, and the cycles, DRAM and energy of its own trace.

A point of an accuracy sweep (``accuracy:`` block, :class:`~sim.sweep.spec.AccuracySpec`) runs its
policy inside the real model on real text with :func:`sim.accuracy.run_accuracy`, the run ``spatten
accuracy`` makes, and then simulates that run's trace on the point's accelerator. Its row holds

- from the model run: the quality metric (SmolLM2: ``perplexity``, ``dense_perplexity``,
  ``perplexity_increase``; MiniLM: ``cosine_mean``, ``cosine_min``, ``task_accuracy``,
  ``dense_task_accuracy``, ``task_accuracy_drop``), the pruning reached (``reached_token_keep`` ...) and the
  run's setting (``model``, ``mode``, ``windows``, ``window_len``, ``datapath``);
- from the simulation of the run's own (real-data) trace, not of a shape-only one: every simulator summary
  column (``cycles``, ``seconds``, ``dram_bytes_*``, ``dram_reduction`` ...) and the energy and area
  columns at :data:`~sim.sweep.runner.TECH_NM`, as for a shape-only point.

The model run does not depend on the accelerator, so it is kept on disk per policy (model, text, windows,
window length, mode, datapath, pruning, quant): ``$SPATTEN_CACHE_DIR/sweep-traces/<key>.parquet``, the trace
with the run's summary in the file's metadata, ``key`` being :func:`sim.accuracy.cache_key` of the policy on
a fixed accelerator (so it follows that module's ``VERSION``). Points that differ only in hardware, and
reruns into a fresh ``--out``, therefore cost a simulation, not a model run.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from spatten.models.config import AcceleratorConfig, Workload
from spatten.sim.sweep.spec import AccuracySpec

__all__ = ["evaluate_accuracy_point", "real_run", "trace_cache_dir"]

_META = b"spatten.accuracy_summary"


def trace_cache_dir() -> Path:
    """Folder of the per-policy real traces: beside :func:`sim.accuracy.cache_dir` (``.../sweep-traces``)."""
    from spatten.sim.accuracy import cache_dir

    return cache_dir().parent / "sweep-traces"


def evaluate_accuracy_point(workload: Workload, baseline: str, accuracy: AccuracySpec) -> dict[str, Any]:
    """One real-model point's row (runs on a worker): accuracy columns plus its trace simulated.

    Parameters
    ----------
    workload : Workload
        The point's full config; ``workload.model.name`` is the real model (``minilm`` or ``smollm2``).
    baseline : str
        ``spatten`` (the spec refuses any other for an accuracy sweep).
    accuracy : AccuracySpec
        Windows, window length, mode, datapath and text.

    Returns
    -------
    dict
        ``error`` ("" or the one-line ``ValueError``/``TypeError`` of the model run or the simulator) and
        the columns listed in the module docstring.
    """
    from spatten.sim.api import simulate
    from spatten.sim.sweep.runner import energy_area

    try:
        summary, trace = real_run(workload, accuracy)
        result = simulate(workload, trace, baseline=baseline)
    except (ValueError, TypeError) as e:
        return {"error": (str(e).splitlines() or [type(e).__name__])[0]}
    # The summary's own simulation was on whatever accelerator ran the model first: this point's wins.
    row: dict[str, Any] = {"error": ""}
    row.update((k, _plain(v)) for k, v in summary.items() if k not in result.summary)
    row.update((k, _plain(v)) for k, v in result.summary.items())
    row.update(energy_area(result.actions, workload.accelerator))
    return row


def real_run(workload: Workload, accuracy: AccuracySpec) -> tuple[dict[str, Any], Any]:
    """The model run of ``workload``'s policy: ``(summary, trace)``, from the trace cache when there.

    A missing or unreadable cache file is (re)computed and written atomically (two workers that race
    write the same content).
    """
    from spatten.sim.accuracy import cache_key, run_accuracy

    model = workload.model.name
    s = accuracy.settings(model)
    policy = dataclasses.replace(workload, accelerator=AcceleratorConfig())  # the run ignores the hardware
    key = cache_key(policy, model, accuracy.text, s["windows"], s["window_len"], s["mode"], s["datapath"])
    path = trace_cache_dir() / f"{key}.parquet"
    try:
        return _load(str(path))
    except (OSError, ValueError, KeyError, TypeError):  # absent or damaged: run the model
        pass
    run = run_accuracy(workload, model, text=accuracy.text, **s)
    _save(path, run.summary, run.trace)
    return run.summary, run.trace


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[dict[str, Any], Any]:
    """A cached run (per worker process: a policy's hardware points usually share a task)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    summary = json.loads(table.schema.metadata[_META])
    return summary, table.replace_schema_metadata(None).to_pandas()


def _save(path: Path, summary: dict[str, Any], trace: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(trace, preserve_index=False)
    meta = json.dumps(summary, default=lambda x: x.item() if hasattr(x, "item") else str(x))
    table = table.replace_schema_metadata({_META: meta.encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _plain(x: Any) -> Any:
    """numpy scalars as Python ones (Parquet rows and JSON)."""
    return x.item() if hasattr(x, "item") else x
