"""Chip area by module from the component models, against the paper's 18.71 mm^2 and 2.7% top-k share.

Also the like-for-like component-model estimate of the RTL blocks that :mod:`sim.power.synth`
synthesizes, so the two estimates sit next to each other (:func:`rtl_crosscheck`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from spatten.models.config import AcceleratorConfig
from spatten.sim.power.components import MODULES, check_tech_nm, unit_table

__all__ = [
    "PAPER_AREA_MM2",
    "PAPER_TOPK_AREA_SHARE",
    "PAPER_POWER_W",
    "PAPER_TOPK_POWER_SHARE",
    "AreaReport",
    "area",
    "topk_block_model_mm2",
    "zero_eliminator_model_mm2",
    "rtl_crosscheck",
]

# SpAtten (HPCA 2021), TSMC 40 nm: chip area and power; the top-k engine's share of each.
PAPER_AREA_MM2 = 18.71
PAPER_TOPK_AREA_SHARE = 0.027
PAPER_POWER_W = 8.30
PAPER_TOPK_POWER_SHARE = 0.01


@dataclass(frozen=True)
class AreaReport:
    """Area of one accelerator at one node.

    Attributes
    ----------
    by_module_mm2 : dict[str, float]
        Area by module (keys :data:`sim.power.components.MODULES`; DRAM is off-chip, 0).
    units : list[dict]
        One row per unit: name, module, count, per-instance and total mm^2, model.
    tech_nm : int
        Technology node.
    """

    by_module_mm2: dict[str, float]
    units: list[dict]
    tech_nm: int

    @property
    def total_mm2(self) -> float:
        """Chip area (sum over modules)."""
        return sum(self.by_module_mm2.values())

    @property
    def topk_share(self) -> float:
        """Fraction of the chip area in the top-k engine."""
        return self.by_module_mm2["top-k"] / self.total_mm2 if self.total_mm2 > 0 else 0.0

    def to_dict(self) -> dict:
        """JSON-ready dict including the paper's figures and the relative gap."""
        return {
            "tech_nm": self.tech_nm,
            "total_mm2": self.total_mm2,
            "by_module_mm2": dict(self.by_module_mm2),
            "topk_share": self.topk_share,
            "paper_total_mm2": PAPER_AREA_MM2,
            "paper_topk_share": PAPER_TOPK_AREA_SHARE,
            "gap_vs_paper": self.total_mm2 / PAPER_AREA_MM2 - 1.0,
            "units": list(self.units),
        }


def area(accel: AcceleratorConfig, tech_nm: int = 40) -> AreaReport:
    """Area by module of ``accel`` at ``tech_nm`` from the component models.

    Parameters
    ----------
    accel : AcceleratorConfig
        Hardware parameters.
    tech_nm : int
        Technology node in nm (22..90, default 40).

    Returns
    -------
    AreaReport

    Raises
    ------
    ValueError, TypeError
        Bad node, or a memory geometry outside CACTI's range.
    """
    check_tech_nm(tech_nm)
    table = unit_table(accel, tech_nm)
    by_module = dict.fromkeys(MODULES, 0.0)
    rows = []
    for unit in table.units.values():
        by_module[unit.module] += unit.total_area_mm2
        rows.append(
            {
                "unit": unit.name,
                "module": unit.module,
                "count": unit.count,
                "each_mm2": unit.area_mm2,
                "total_mm2": unit.total_area_mm2,
                "model": unit.model,
            }
        )
    return AreaReport(by_module, rows, tech_nm)


def zero_eliminator_model_mm2(width: int, lanes: int, tech_nm: int = 40) -> float:
    """Component-model area of a combinational zero eliminator (the RTL block's structure).

    A prefix count of dropped lanes (one ``log2(P)+1``-bit Aladdin adder per lane) and ``log2(P)``
    shift stages of one 2:1 multiplexer per lane and bit (Nangate MUX2_X1, as for crossbars).
    """
    from hwcomponents_library import AladdinAdder
    from spatten.sim.power.components import MUX2_UM2_45NM, _area_scale

    lg = max(1, math.ceil(math.log2(max(2, lanes))))
    adder = AladdinAdder(tech_node=tech_nm * 1e-9, width=lg + 1).area * 1e6
    mux = MUX2_UM2_45NM * 1e-6 * _area_scale(tech_nm)
    return lanes * adder + lg * lanes * (width + lg + 1) * mux


def topk_block_model_mm2(score_width: int, max_n: int, parallelism: int, tech_nm: int = 40) -> float:
    """Component-model area of ``rtl.topk.TopKEngine`` at the same parameters.

    P comparators of ``score_width`` bits, two zero eliminators (:func:`zero_eliminator_model_mm2`),
    and its five register-file buffers (input copy and two ping-pong buffers with two halves each) of
    ``ceil(max_n / P)`` rows x P lanes x ``score_width`` bits as Aladdin registers, since the RTL
    builds them from flip-flops (the full-chip model uses CACTI SRAM FIFOs instead).
    """
    from hwcomponents_library import AladdinComparator, AladdinRegister

    t = tech_nm * 1e-9
    cmp_mm2 = AladdinComparator(tech_node=t, width=score_width).area * 1e6
    bits = 5 * math.ceil(max_n / parallelism) * parallelism * score_width
    reg_mm2 = AladdinRegister(tech_node=t, width=bits).area * 1e6
    return parallelism * cmp_mm2 + 2 * zero_eliminator_model_mm2(score_width, parallelism, tech_nm) + reg_mm2


def qk_unit_model_mm2(head_dim: int, k_par: int, width: int, tech_nm: int = 40) -> float:
    """Component-model area of ``rtl.qk.QKUnit`` with ``width``-bit query and key codes.

    ``k_par x head_dim`` Aladdin multipliers of ``width`` bits, ``k_par x (head_dim - 1)`` Aladdin adders
    (the adder tree; its widths grow by a bit per level, charged at the product width ``2 x width``), and
    the pipeline registers: one product row per lane and one partial-sum level per tree level (the query
    is an input held by the caller, not a register of the block).
    """
    from hwcomponents_library import AladdinAdder, AladdinMultiplier, AladdinRegister

    t = tech_nm * 1e-9
    levels = math.ceil(math.log2(head_dim)) if head_dim > 1 else 0
    mul = AladdinMultiplier(tech_node=t, width=width).area * 1e6
    add = AladdinAdder(tech_node=t, width=2 * width).area * 1e6 if head_dim > 1 else 0.0
    # registers: products, then ceil(head_dim / 2^l) sums at level l, each 2*width + l bits
    bits = k_par * sum(math.ceil(head_dim / 2**lvl) * (2 * width + lvl) for lvl in range(levels + 1))
    reg = AladdinRegister(tech_node=t, width=bits).area * 1e6
    return k_par * head_dim * mul + k_par * (head_dim - 1) * add + reg


def rtl_crosscheck(tech_nm: int = 40, topk_max_n: int = 64) -> list[dict]:
    """Synthesize the RTL blocks that exist and put each next to its component-model estimate.

    Parameters
    ----------
    tech_nm : int
        Node for both estimates.
    topk_max_n : int
        ``max_n`` of the synthesized top-k engine (its register files grow with it; 64 synthesizes in
        about half a minute, the full 1024 takes many minutes).

    Returns
    -------
    list[dict]
        One row per block: parameters, generic cells, flip-flops, synthesized and model mm^2.
    """
    from spatten.sim.power.synth import synthesize

    rows = []
    try:
        from spatten.rtl.zero_eliminator import ZeroEliminator
    except ImportError:
        ZeroEliminator = None
    try:
        from spatten.rtl.topk import TopKEngine
    except ImportError:
        TopKEngine = None
    if ZeroEliminator is not None:
        w, p = 16, 16
        r = synthesize(ZeroEliminator(w, p), "zero_eliminator", tech_nm)
        rows.append(
            _row("ZeroEliminator", f"width={w} lanes={p}", r, zero_eliminator_model_mm2(w, p, tech_nm))
        )
    if TopKEngine is not None:
        w, p = 16, 16
        r = synthesize(TopKEngine(score_width=w, max_n=topk_max_n, parallelism=p), "topk", tech_nm)
        model = topk_block_model_mm2(w, topk_max_n, p, tech_nm)
        rows.append(_row("TopKEngine", f"score_width={w} max_n={topk_max_n} P={p}", r, model))
    from spatten.rtl.qk import QKUnit

    d, kp, w = 16, 1, 12
    r = synthesize(QKUnit(head_dim=d, k_par=kp, q_width=w, k_width=w), "qk_unit", tech_nm)
    model = qk_unit_model_mm2(d, kp, w, tech_nm)
    rows.append(_row("QKUnit", f"head_dim={d} k_par={kp} widths={w}", r, model))
    return rows


def _row(block: str, params: str, r, model_mm2: float) -> dict:
    return {
        "block": block,
        "params": params,
        "cells": r.n_cells,
        "flipflops": r.n_flipflops,
        "synth_mm2": r.area_mm2,
        "model_mm2": model_mm2,
        "synth_over_model": r.area_mm2 / model_mm2 if model_mm2 > 0 else math.inf,
    }
