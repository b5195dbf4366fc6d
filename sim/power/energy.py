"""Energy of one simulation: simulator action counts x per-action energies + leakage x time.

The simulator (``sim.api.simulate``) counts actions: multiplies and adds of Q.K and prob.V, softmax
exponentials, divisions and adds, top-k and PQ comparisons, K/V SRAM bits read and written, DRAM
bits by kind and DRAM transactions, plus the run time. :func:`energy` turns those counts into joules
per module with the per-action energies of :mod:`sim.power.components` and adds every module's
leakage over the run time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from spatten.models.config import AcceleratorConfig
from spatten.sim.power.components import MODULES, check_tech_nm, unit_table
from spatten.sim.simulate import ACTION_KEYS

__all__ = ["ACTIONS", "EnergyReport", "energy", "energy_column", "ops_of", "peak_power_w"]

# Action counts energy() charges: the simulator's counts (``cycles`` is implied by ``seconds``).
ACTIONS = tuple(k for k in ACTION_KEYS if k != "cycles")


@dataclass(frozen=True)
class EnergyReport:
    """Energy of one run, by module.

    Attributes
    ----------
    dynamic_j, leakage_j : dict[str, float]
        Dynamic and leakage energy in joules by module (keys: :data:`sim.power.components.MODULES`).
    seconds : float
        Run time the leakage was charged over.
    ops : float
        Operations credited to the run (for GOP/J; default two per multiply: multiply and add).
    tech_nm : int
        Technology node.
    """

    dynamic_j: dict[str, float]
    leakage_j: dict[str, float]
    seconds: float
    ops: float
    tech_nm: int
    by_action_j: dict[str, float] = field(default_factory=dict)

    @property
    def module_j(self) -> dict[str, float]:
        """Dynamic + leakage energy by module."""
        return {m: self.dynamic_j[m] + self.leakage_j[m] for m in MODULES}

    @property
    def total_j(self) -> float:
        """Total energy including DRAM."""
        return sum(self.module_j.values())

    @property
    def chip_j(self) -> float:
        """On-chip energy (everything except the DRAM devices)."""
        return self.total_j - self.module_j["DRAM"]

    @property
    def power_w(self) -> float:
        """Average power including DRAM (0 for a zero-time run)."""
        return self.total_j / self.seconds if self.seconds > 0 else 0.0

    @property
    def chip_power_w(self) -> float:
        """Average on-chip power (the paper's 8.30 W is a chip figure)."""
        return self.chip_j / self.seconds if self.seconds > 0 else 0.0

    @property
    def gop_per_j(self) -> float:
        """Energy efficiency in 1e9 operations per joule (total energy, DRAM included)."""
        return self.ops / self.total_j / 1e9 if self.total_j > 0 else 0.0

    def columns(self) -> dict[str, float]:
        """Flat columns for a result table: totals, power, efficiency and per-module joules."""
        out = {
            "energy_j": self.total_j,
            "chip_energy_j": self.chip_j,
            "power_w": self.power_w,
            "chip_power_w": self.chip_power_w,
            "gop_per_j": self.gop_per_j,
        }
        for m, v in self.module_j.items():
            out[energy_column(m)] = v
        return out

    def to_dict(self) -> dict:
        """JSON-ready dict (columns plus the dynamic/leakage split)."""
        return {
            **self.columns(),
            "seconds": self.seconds,
            "ops": self.ops,
            "tech_nm": self.tech_nm,
            "dynamic_j": dict(self.dynamic_j),
            "leakage_j": dict(self.leakage_j),
        }


def energy_column(module: str) -> str:
    """Column of a module's joules in :meth:`EnergyReport.columns` (``"top-k"``: ``"energy_topk_j"``)."""
    return "energy_" + module.lower().replace(".", "").replace("-", "") + "_j"


def ops_of(actions: Mapping[str, float]) -> float:
    """Operations of a run: each Q.K and prob.V multiply counts with its add (2 ops per MAC)."""
    return 2.0 * (float(actions["qk_mul"]) + float(actions["pv_mul"]))


#: Counts a record may lack, read as 0: results stored before the simulator charged them (a lone
#: sequence's pruning state never leaves the chip).
OPTIONAL_ACTIONS = frozenset({"dram_bits_state"})


def _count(actions: Mapping, name: str) -> float:
    if name not in actions and name in OPTIONAL_ACTIONS:
        return 0.0
    if name not in actions:
        raise ValueError(f"actions is missing {name!r} (required: {', '.join(ACTIONS)})")
    v = actions[name]
    if isinstance(v, bool) or not isinstance(v, int | float) and not hasattr(v, "__float__"):
        raise TypeError(f"actions[{name!r}] must be a number, got {v!r}")
    v = float(v)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"actions[{name!r}] = {v} is outside the allowed range >= 0 (finite)")
    return v


def energy(
    actions: Mapping[str, float],
    accel: AcceleratorConfig,
    tech_nm: int = 40,
    ops: float | None = None,
) -> EnergyReport:
    """Energy by module of a run with the given action counts.

    Parameters
    ----------
    actions : Mapping[str, float]
        Action counts of the run (keys :data:`ACTIONS`; ``seconds`` is the run time). Extra keys are
        ignored.
    accel : AcceleratorConfig
        The accelerator that ran it (sets unit widths, counts and memory geometry).
    tech_nm : int
        Technology node in nm (22..90, default 40).
    ops : float, optional
        Operations to credit for GOP/J; default :func:`ops_of` (2 per Q.K / prob.V multiply).

    Returns
    -------
    EnergyReport

    Raises
    ------
    ValueError, TypeError
        Missing or negative counts, a bad node, or a memory outside CACTI's range.
    """
    if not isinstance(actions, Mapping):
        raise TypeError(f"actions must be a mapping of action counts, got {type(actions).__name__}")
    check_tech_nm(tech_nm)
    counts = {a: _count(actions, a) for a in ACTIONS}
    table = unit_table(accel, tech_nm)
    dynamic = dict.fromkeys(MODULES, 0.0)
    by_action: dict[str, float] = {}
    for a, split in table.action_energy_j.items():
        n = counts[a]
        by_action[a] = 0.0
        for module, e in split.items():
            dynamic[module] += n * e
            by_action[a] += n * e
    seconds = counts["seconds"]
    leakage = dict.fromkeys(MODULES, 0.0)
    for unit in table.units.values():
        leakage[unit.module] += unit.total_leak_w * seconds
    if ops is None:
        ops = ops_of(counts)
    elif isinstance(ops, bool) or not isinstance(ops, int | float) or not math.isfinite(ops) or ops < 0:
        raise ValueError(f"ops = {ops!r} is outside the allowed range >= 0 (finite)")
    return EnergyReport(dynamic, leakage, seconds, float(ops), tech_nm, by_action)


def peak_power_w(accel: AcceleratorConfig, tech_nm: int = 40) -> dict[str, float]:
    """On-chip power by module with every unit doing one action every cycle, plus leakage.

    An upper bound on what :func:`energy` can report for a real run (each unit instance at most one
    action per clock: a multiply, an add, a comparison, a full-width SRAM read per bank, one DRAM
    transaction per fetcher lane). DRAM is left out (its power is set by the traffic, not the clock).

    Parameters
    ----------
    accel : AcceleratorConfig
        Hardware parameters (``clock_ghz`` sets the action rate).
    tech_nm : int
        Technology node in nm (22..90).

    Returns
    -------
    dict[str, float]
        Watts by module (without ``"DRAM"``).
    """
    check_tech_nm(tech_nm)
    t = unit_table(accel, tech_nm)
    u = t.units
    row_bits = accel.head_dim * accel.datapath_bits
    per_cycle = {
        "qk_mul": u["qk.multiplier"].count,
        "qk_add": u["qk.adder"].count,
        "pv_mul": u["pv.multiplier"].count,
        "pv_add": u["pv.adder"].count,
        "softmax_exp": u["softmax.exp"].count,
        "softmax_div": u["softmax.divider"].count,
        "softmax_add": u["softmax.adder"].count,
        "pq_compare": u["softmax.pq_comparator"].count,
        "topk_compare": u["topk.comparator"].count,
        "k_sram_read_bits": u["k_sram"].count * row_bits,
        "v_sram_read_bits": u["v_sram"].count * row_bits,
        "dram_transactions": u["fetcher.address_gen"].count,
    }
    hz = accel.clock_ghz * 1e9
    out = {m: 0.0 for m in MODULES if m != "DRAM"}
    for a, n in per_cycle.items():
        for module, e in t.action_energy_j[a].items():
            out[module] += n * e * hz
    for unit in u.values():
        if unit.module in out:
            out[unit.module] += unit.total_leak_w
    return out
