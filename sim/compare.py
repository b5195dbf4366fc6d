"""Results that compare: one design against dense and a baseline, two configurations, and per layer.

* :func:`evaluate` simulates one design (SpAtten or a baseline) and attaches its energy: from the energy
  model for designs on SpAtten's own units, from the published efficiency for A3 and MNNFast (on-chip,
  as in ``spatten reproduce``).
* :func:`ratios` turns two evaluations into speedup, DRAM reduction and energy saving of the first over the
  second. Energy is compared like for like: total (with HBM2) where both sides carry it, on-chip where the
  other side is an efficiency figure.
* :func:`per_layer` folds a simulation's per-request table into one row per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from spatten.models.config import Workload, to_dict
from spatten.sim.api import OWN_HARDWARE, SimResult, simulate
from spatten.sim.simulate import STAGES

__all__ = ["Evaluation", "evaluate", "ratios", "per_layer", "changed_fields", "HEADLINE"]

#: The figures ``spatten compare`` puts side by side, with their units.
HEADLINE: tuple[tuple[str, str], ...] = (
    ("cycles", "cycles"),
    ("seconds", "s"),
    ("dram_bytes_total", "B"),
    ("transactions", "count"),
    ("ops", "op"),
    ("gops", "GOP/s"),
    ("refetch_rate", "fraction"),
    ("energy_j", "J"),
    ("chip_energy_j", "J"),
    ("chip_power_w", "W"),
    ("gop_per_j", "GOP/J"),
    ("area_mm2", "mm^2"),
)


@dataclass(frozen=True)
class Evaluation:
    """One design simulated, with its energy.

    Attributes
    ----------
    design : str
        ``spatten``, ``dense``, ``a3`` or ``mnnfast``.
    result : SimResult
        The simulation.
    summary : dict
        ``result.summary`` plus energy columns (``energy_j`` and the rest for own-hardware designs,
        ``chip_energy_j`` and ``energy_basis`` for A3 and MNNFast).
    energy : EnergyReport or None
        The energy model's report (own-hardware designs only).
    """

    design: str
    result: SimResult
    summary: dict[str, Any]
    energy: Any = None


def evaluate(w: Workload, trace: Any = None, design: str = "spatten", tech_nm: int = 40) -> Evaluation:
    """Simulate ``design`` on ``w`` (or on ``trace``) and attach its energy.

    Parameters
    ----------
    w : Workload
        Accelerator, model and policy.
    trace : pandas.DataFrame, optional
        A request trace to replay; None runs the workload's shape trace.
    design : str
        One of :data:`spatten.sim.api.BASELINES`.
    tech_nm : int
        Technology node of the energy model (22..90).

    Returns
    -------
    Evaluation
    """
    from spatten.sim.power.baselines import BASELINES as ENERGY_BASELINES
    from spatten.sim.power.energy import energy

    res = simulate(w, trace, baseline=design)
    summary = dict(res.summary)
    rep = None
    if design in OWN_HARDWARE:
        rep = energy(res.actions, w.accelerator, tech_nm)
        summary.update(rep.columns())
    else:
        b = ENERGY_BASELINES[design]
        summary["chip_energy_j"] = float(summary["dense_ops"]) / (b.gop_per_j * 1e9)
        summary["chip_power_w"] = summary["chip_energy_j"] / summary["seconds"] if summary["seconds"] else 0.0
        summary["energy_basis"] = f"published {b.gop_per_j:g} GOP/J on-chip x dense-equivalent ops"
    return Evaluation(design, res, summary, rep)


def ratios(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, float]:
    """Speedup, DRAM reduction and energy saving of ``ours`` over ``other`` (each > 1 when ours is better).

    Parameters
    ----------
    ours, other : dict
        Summaries from :func:`evaluate`.

    Returns
    -------
    dict
        ``speedup``, ``dram_reduction`` and ``energy_saving`` (total energy where both sides have it,
        else on-chip energy; left out when either side has none).
    """

    def over(key: str) -> float:
        a, b = float(ours[key]), float(other[key])
        return b / a if a > 0 else float("inf")

    out = {"speedup": over("seconds"), "dram_reduction": over("dram_bytes_total")}
    if "energy_j" in ours and "energy_j" in other:
        out["energy_saving"] = over("energy_j")
    elif "chip_energy_j" in ours and "chip_energy_j" in other:
        out["energy_saving"] = over("chip_energy_j")
    return out


def per_layer(res: SimResult) -> Any:
    """One row per layer of a simulation: cycles, bytes by kind, pruning and the bounding stage.

    ``busy_<stage>`` sums the stage's service cycles over the layer's requests; ``cycles`` is the largest of
    them, the time the layer holds the pipeline in steady state (overlap with neighbouring layers is not
    split, so the rows add up to at least the pipeline's busiest stage, not to the makespan).
    ``token_keep`` and ``value_keep`` are keys and values fetched over the keys the requests could see.

    Parameters
    ----------
    res : SimResult
        A simulation (its ``requests`` table).

    Returns
    -------
    pandas.DataFrame
    """
    r = res.requests.copy()
    r["q_keys"] = r["queries"] * r["keys"]
    r["q_vals"] = r["queries"] * r["values"]
    r["q_seq"] = r["queries"] * r["seq_len"]
    r["q_refetch"] = r["queries"] * r["refetch"].astype(np.float64)
    agg = {
        "requests": ("layer", "size"),
        "queries": ("queries", "sum"),
        "heads": ("head", "nunique"),
        **{f"busy_{s}": (f"cycles_{s}", "sum") for s in STAGES},
        **{f"bytes_{k}": (f"bytes_{k}", "sum") for k in ("q", "k_msb", "k_lsb", "v")},
        "q_keys": ("q_keys", "sum"),
        "q_vals": ("q_vals", "sum"),
        "q_seq": ("q_seq", "sum"),
        "q_refetch": ("q_refetch", "sum"),
    }
    t = r.groupby("layer", sort=True).agg(**agg).reset_index()
    busy = t[[f"busy_{s}" for s in STAGES]].to_numpy()
    t.insert(1, "cycles", busy.max(axis=1))
    t["bounding_stage"] = [STAGES[i] for i in busy.argmax(axis=1)]
    t["bytes_total"] = t[[f"bytes_{k}" for k in ("q", "k_msb", "k_lsb", "v")]].sum(axis=1)
    t["token_keep"] = t["q_keys"] / t["q_seq"].where(t["q_seq"] > 0)
    t["value_keep"] = t["q_vals"] / t["q_seq"].where(t["q_seq"] > 0)
    t["refetch_rate"] = t["q_refetch"] / t["queries"]
    return t.drop(columns=["q_keys", "q_vals", "q_seq", "q_refetch"])


def changed_fields(a: Workload, b: Workload) -> list[tuple[str, Any, Any]]:
    """The ``section.field`` settings that differ between two workloads, with both values, in config order."""
    da, db = to_dict(a), to_dict(b)
    out = []
    for sec in da:
        for k in dict.fromkeys([*da[sec], *db[sec]]):
            va, vb = da[sec].get(k, "-"), db[sec].get(k, "-")
            if va != vb:
                out.append((f"{sec}.{k}", va, vb))
    return out
