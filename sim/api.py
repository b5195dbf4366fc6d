"""The simulator's public entry point: :func:`simulate`.

``simulate(workload)`` runs the workload's shape-only trace (:func:`models.workload.shape_trace`) on its
accelerator; ``simulate(workload, trace)`` replays a given trace (e.g. a release CSV read with
:func:`models.trace.read_release_csv`). ``baseline`` picks SpAtten or a baseline in the same framework:

``spatten``   the trace as given (pruning, PQ, top-k engine).
``dense``     the same hardware with pruning and PQ off: every key and value of the cache fetched, K/Q/V
              unquantized (the -1 width). From a shape trace: the workload re-run with pruning and
              quantization disabled; from a given trace: each row widened (pruned heads cannot be restored).
``a3``        A3 (HPCA 2020): dense fetch, candidate search over every key, exact math on a fraction.
``mnnfast``   MNNFast (ISCA 2019): dense fetch, dense Q.K, prob.V skipping small probabilities, no overlap.
``rtl``       this package's RTL attention core as built (:mod:`sim.rtl_core`): the trace as given through
              the core's overlapped request stream (its exact cycle model, the top-k engine's mean
              cycles); the DRAM fetch runs ahead as usual.
              Work the RTL core has no unit for is not charged: a row's token top-k, a KV policy's
              selection and Quest's page bounds.

Baseline parameters live in ``sim/data/benchmarks.yaml`` (with sources) and are read by
:mod:`sim.baselines`.
"""

from __future__ import annotations

from typing import Any

from spatten.models.config import Workload
from spatten.sim.simulate import ACTION_KEYS, SimResult

__all__ = ["simulate", "SimResult", "ACTION_KEYS", "BASELINES", "OWN_HARDWARE"]

BASELINES = ("spatten", "dense", "a3", "mnnfast", "rtl")
#: Baselines that run on SpAtten's own units, so the energy model (``sim.power``) applies to them; A3 and
#: MNNFast are charged from their published efficiency instead (``sim.power.baselines``).
OWN_HARDWARE = ("spatten", "dense", "rtl")


def simulate(workload: Workload, trace: Any = None, *, baseline: str = "spatten") -> SimResult:
    """Simulate one workload (or a given trace) on its accelerator.

    Parameters
    ----------
    workload : models.config.Workload
        Accelerator, model shape and policy.
    trace : pandas.DataFrame, optional
        Request trace with :data:`models.trace.TRACE_COLUMNS`; None: the workload's shape trace.
    baseline : str
        One of ``BASELINES``.

    Returns
    -------
    SimResult
        ``requests`` (per-request table), ``summary`` (flat dict) and ``actions`` (energy-model counts).
    """
    from spatten.sim import baselines

    if not isinstance(workload, Workload):
        raise TypeError(f"workload must be a Workload, got {type(workload).__name__}")
    if baseline not in BASELINES:
        raise ValueError(f"baseline = {baseline!r} is not one of {', '.join(BASELINES)}")
    return baselines.run_baseline(workload, trace, baseline)
