"""Energy-saving table: SpAtten's modelled energy against A3, MNNFast, TITAN Xp and Xeon.

Accelerator baselines (A3, MNNFast) are charged from their published energy efficiency at 128
multipliers (the SpAtten paper compares them with SpAtten1/8, which also has 128 multipliers). Those
efficiencies are accelerator (on-chip) figures, so SpAtten's side of those rows is its on-chip energy
(DRAM excluded). GPU and CPU are charged their rated power times their modelled run time; board and
package power include their memory traffic, so SpAtten's side there is its total energy, HBM2
included. Every figure carries its source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from spatten.sim.power.energy import EnergyReport

__all__ = ["Baseline", "BASELINES", "energy_saving_table"]


@dataclass(frozen=True)
class Baseline:
    """One platform the paper compares with.

    Attributes
    ----------
    name : str
        Display name.
    kind : str
        ``"efficiency"`` (energy = ops / GOP per J) or ``"power"`` (energy = watts x modelled time).
    gop_per_j : float
        Published efficiency (efficiency baselines).
    power_w : float
        Rated power (power baselines).
    paper_saving : float
        SpAtten's energy saving over it as published.
    source : str
        Where the figure comes from.
    """

    name: str
    kind: str
    gop_per_j: float
    power_w: float
    paper_saving: float
    source: str


BASELINES: dict[str, Baseline] = {
    "a3": Baseline(
        "A3",
        "efficiency",
        269.0,
        math.nan,
        1.4,
        "A3 (Ham et al., HPCA 2020) at 128 multipliers: 269 GOP/J, as tabulated in the SpAtten paper's "
        "accelerator comparison (with SpAtten1/8 at 382 GOP/J: 382/269 = 1.42, the paper's 1.4x)",
    ),
    "mnnfast": Baseline(
        "MNNFast",
        "efficiency",
        120.0,
        math.nan,
        3.2,
        "MNNFast (Jang et al., ISCA 2019) at 128 multipliers: 120 GOP/J, as tabulated in the SpAtten "
        "paper's accelerator comparison (382/120 = 3.18, the paper's 3.2x)",
    ),
    "titan-xp": Baseline(
        "TITAN Xp",
        "power",
        math.nan,
        250.0,
        1193.0,
        "NVIDIA TITAN Xp board power 250 W (NVIDIA product specification)",
    ),
    "xeon-e5-2640-v4": Baseline(
        "Xeon E5-2640 v4",
        "power",
        math.nan,
        90.0,
        4059.0,
        "Intel Xeon E5-2640 v4 TDP 90 W (Intel ARK)",
    ),
}


def energy_saving_table(
    spatten: EnergyReport,
    baseline_seconds: Mapping[str, float],
    spatten_eighth: EnergyReport | None = None,
) -> list[dict]:
    """Rows of the energy-saving table for the same workload.

    Parameters
    ----------
    spatten : EnergyReport
        Full-size SpAtten's energy for the workload (compared with the GPU and CPU).
    baseline_seconds : Mapping[str, float]
        Modelled run time of the workload on each power baseline, keyed like the simulator's platforms
        (``"titan-xp"``, ``"xeon-e5-2640-v4"``; e.g. ``sim.baselines.roofline_seconds(w, key)``);
        missing ones are left out of the table.
    spatten_eighth : EnergyReport, optional
        SpAtten1/8's energy (128 multipliers) for the A3 and MNNFast rows; without it those rows use
        ``spatten``.

    Returns
    -------
    list[dict]
        One row per baseline: ``baseline`` (key), ``name``, ``basis``, ``baseline_j``, ``spatten_j``
        (on-chip for A3/MNNFast, total for GPU/CPU), ``saving``, ``paper_saving``, ``source``.

    Raises
    ------
    ValueError
        A negative or non-finite run time, or an unknown baseline name.
    """
    for k, v in baseline_seconds.items():
        if k not in BASELINES or BASELINES[k].kind != "power":
            allowed = ", ".join(n for n, b in BASELINES.items() if b.kind == "power")
            raise ValueError(f"baseline_seconds key {k!r} is not one of {allowed}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ValueError(f"baseline_seconds[{k!r}] = {v!r} is outside the allowed range >= 0 (finite)")
    rows = []
    for name, b in BASELINES.items():
        if b.kind == "efficiency":
            sp = spatten_eighth if spatten_eighth is not None else spatten
            base_j = sp.ops / (b.gop_per_j * 1e9)
            sp_j = sp.chip_j  # like for like: published accelerator efficiencies are on-chip
            basis = f"{sp.ops / 1e9:.3g} GOP / {b.gop_per_j:g} GOP/J"
        else:
            if name not in baseline_seconds:
                continue
            sp = spatten
            base_j = b.power_w * float(baseline_seconds[name])
            sp_j = sp.total_j  # rated power covers the platform's memory, so count SpAtten's HBM2 too
            basis = f"{b.power_w:g} W x {float(baseline_seconds[name]):.3g} s"
        rows.append(
            {
                "baseline": name,
                "name": b.name,
                "basis": basis,
                "baseline_j": base_j,
                "spatten_j": sp_j,
                "saving": base_j / sp_j if sp_j > 0 else math.inf,
                "paper_saving": b.paper_saving,
                "source": b.source,
            }
        )
    return rows
