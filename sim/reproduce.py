"""The paper's 30 benchmarks through SpAtten and every baseline; paper-vs-ours figures.

Settings come from ``sim/data/benchmarks.yaml``. For each benchmark:

* SpAtten (full size) and the same hardware dense (baseline a) -> DRAM reduction, throughput;
* SpAtten1/8, A3 and MNNFast on the 1/8 hardware -> speedups over A3 / MNNFast, GOP/s;
* the platform rooflines and the measured numpy time -> speedups over TITAN Xp, Xeon, Nano, Pi 4, numpy;
* energy (``sim.power``, 40 nm): SpAtten's and SpAtten1/8's energy by module from their action counts,
  average power, GOP/J, and the energy saving over A3 / MNNFast (published GOP/J at 128 multipliers, against
  SpAtten1/8 on-chip) and TITAN Xp / Xeon (rated power x roofline time, against SpAtten with HBM2);
* GPT-2 only: the speedup breakdown over TITAN Xp (dedicated datapath; + token/head/value pruning with a
  generic top-k, i.e. a full sort on the same 16 comparators; + the quick-select top-k engine;
  + progressive quantization).

Aggregates: DRAM reduction is the arithmetic mean over benchmarks (the paper's "average"); speedups are
geometric means; throughput is the mean achieved GOP/s over the BERT or GPT-2 benchmarks. Executed ops
count the work SpAtten really does; "dense-equivalent" ops are those of the unpruned model (the only
reading under which SpAtten1/8's 360 GOP/s can exceed its 256 GOP/s multiplier peak).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from spatten.models.config import Workload, workload_preset
from spatten.models.workload import shape_trace
from spatten.sim.baselines import load_settings, numpy_attention_seconds, roofline_seconds
from spatten.sim.power.area import PAPER_POWER_W, PAPER_TOPK_POWER_SHARE
from spatten.sim.power.baselines import BASELINES as ENERGY_BASELINES
from spatten.sim.power.baselines import energy_saving_table
from spatten.sim.power.components import MODULES
from spatten.sim.power.energy import energy, energy_column
from spatten.sim.simulate import Options, run

__all__ = ["benchmarks", "run_all", "paper_vs_ours", "BREAKDOWN_STEPS"]

PLATFORMS = ("titan-xp", "xeon-e5-2640-v4", "jetson-nano", "raspberry-pi-4")
BREAKDOWN_STEPS = (
    "dedicated datapath",
    "+ token/head pruning (generic top-k)",
    "+ top-k engine",
    "+ progressive quantization",
)


def benchmarks() -> list[dict[str, Any]]:
    """The 30 benchmarks: name, model, task, sequence (prompt) length."""
    cfg = load_settings()["benchmarks"]
    out = []
    for model in cfg["bert_models"]:
        for task, length in cfg["bert_tasks"].items():
            out.append({"benchmark": f"{model}/{task}", "model": model, "task": task, "seq_len": int(length)})
    for model in cfg["gpt2_models"]:
        for task in cfg["gpt2_tasks"]:
            out.append(
                {
                    "benchmark": f"{model}/{task}",
                    "model": model,
                    "task": task,
                    "seq_len": int(cfg["gpt2_prompt_len"]),
                }
            )
    return out


def _workload(b: dict[str, Any], accelerator: str) -> Workload:
    cfg = load_settings()["benchmarks"]
    w = workload_preset(b["model"], accelerator, prompt_len=b["seq_len"])
    if w.model.mode == "generation":
        w = dataclasses.replace(w, model=dataclasses.replace(w.model, gen_tokens=int(cfg["gpt2_gen_tokens"])))
    return w


def _dense(w: Workload) -> Workload:
    return dataclasses.replace(
        w,
        pruning=dataclasses.replace(w.pruning, enabled=False),
        quant=dataclasses.replace(w.quant, enabled=False),
    )


def _breakdown(w: Workload) -> dict[str, float]:
    """Seconds of the successive GPT-2 configurations of the speedup breakdown."""
    no_pq = dataclasses.replace(w, quant=dataclasses.replace(w.quant, enabled=False))
    sec = {}
    sec[BREAKDOWN_STEPS[0]] = run(w, shape_trace(_dense(w)), Options("dense")).summary["seconds"]
    tr = shape_trace(no_pq)
    sec[BREAKDOWN_STEPS[1]] = run(no_pq, tr, Options("generic-topk", sort_topk=True)).summary["seconds"]
    sec[BREAKDOWN_STEPS[2]] = run(no_pq, tr, Options("spatten-no-pq")).summary["seconds"]
    sec[BREAKDOWN_STEPS[3]] = run(w, shape_trace(w), Options("spatten")).summary["seconds"]
    return sec


def _simulate_all(w: Workload, w18: Workload, bl: dict[str, Any], tech_nm: int) -> tuple:
    """Summaries of SpAtten and dense on ``w``, SpAtten1/8, A3 and MNNFast on ``w18``; SpAttens' energy."""
    sp = run(w, shape_trace(w), Options("spatten"))
    dn = run(w, shape_trace(_dense(w)), Options("dense")).summary
    sp18 = run(w18, shape_trace(w18), Options("spatten"))
    dense18 = shape_trace(_dense(w18))
    a3 = run(w18, dense18, Options("a3", candidate_fraction=float(bl["a3"]["candidate_fraction"]))).summary
    m = bl["mnnfast"]
    mf = run(
        w18, dense18, Options("mnnfast", value_fraction=float(m["value_fraction"]), serial=bool(m["serial"]))
    ).summary
    e = energy(sp.actions, w.accelerator, tech_nm)
    e18 = energy(sp18.actions, w18.accelerator, tech_nm)
    return sp.summary, dn, sp18.summary, a3, mf, e, e18


def run_all(numpy_budget_s: float = 0.01, tech_nm: int = 40) -> tuple[Any, dict[str, Any]]:
    """Run every benchmark; return (per-benchmark table, aggregates).

    Parameters
    ----------
    numpy_budget_s : float
        Wall time to spend timing the numpy baseline per benchmark.
    tech_nm : int
        Technology node of the energy model (22..90).

    Returns
    -------
    tuple[pandas.DataFrame, dict]
        One row per benchmark (performance, energy by module, savings) and the aggregates.
    """
    import pandas as pd

    bl = load_settings()["baselines"]
    rows = []
    breakdowns = []
    # Benchmarks of one model at one length have identical inputs (the GPT-2 tasks share the release
    # policy): simulate each distinct workload once.
    memo: dict[tuple, Any] = {}
    for b in benchmarks():
        w = _workload(b, "spatten")
        key = (b["model"], b["seq_len"])
        if key not in memo:
            memo[key] = _simulate_all(w, _workload(b, bl["a3"]["accelerator"]), bl, tech_nm)
        sp, dn, sp18, a3, mf, e, e18 = memo[key]
        row = dict(b)
        row.update(
            {
                "cycles": sp["cycles"],
                "seconds": sp["seconds"],
                "dram_bytes": sp["dram_bytes_total"],
                "dense_fp32_bytes": sp["dense_reference_bytes"],
                "dram_reduction": sp["dram_reduction"],
                "computation_reduction": sp["dense_ops"] / sp["ops"] if sp["ops"] else float("nan"),
                "gops": sp["gops"],
                "dense_equiv_gops": sp["dense_equiv_gops"],
                "bounding_stage": sp["bounding_stage"],
                "speedup_over_dense_hw": dn["seconds"] / sp["seconds"],
                "spatten18_gops": sp18["gops"],
                "spatten18_dense_equiv_gops": sp18["dense_equiv_gops"],
                "a3_dense_equiv_gops": a3["dense_equiv_gops"],
                "a3_gops": a3["gops"],
                "a3_op_per_byte": a3["ops"] / a3["dram_bytes_total"],
                "mnnfast_dense_equiv_gops": mf["dense_equiv_gops"],
                "speedup_over_a3": a3["seconds"] / sp18["seconds"],
                "speedup_over_mnnfast": mf["seconds"] / sp18["seconds"],
            }
        )
        roof = {p: roofline_seconds(w, p) for p in PLATFORMS}
        for p in PLATFORMS:
            row[f"speedup_over_{p}"] = roof[p] / sp["seconds"]
        row.update(e.columns())
        row["spatten18_gop_per_j"] = e18.ops / e18.chip_j / 1e9
        power_plats = {p: roof[p] for p, eb in ENERGY_BASELINES.items() if eb.kind == "power"}
        for r in energy_saving_table(e, power_plats, spatten_eighth=e18):
            row[f"energy_saving_over_{r['baseline']}"] = r["saving"]
        npy = numpy_attention_seconds(w, budget_s=numpy_budget_s)
        row["numpy_seconds"] = npy["seconds"]
        row["speedup_over_numpy"] = npy["seconds"] / sp["seconds"]
        rows.append(row)
        if w.model.mode == "generation":
            if key + ("breakdown",) not in memo:
                memo[key + ("breakdown",)] = _breakdown(w)
            sec = memo[key + ("breakdown",)]
            prev = roof["titan-xp"]
            bd = {"benchmark": b["benchmark"]}
            for step in BREAKDOWN_STEPS:
                bd[step] = prev / sec[step]
                prev = sec[step]
            breakdowns.append(bd)
    table = pd.DataFrame(rows)
    bdf = pd.DataFrame(breakdowns)
    return table, _aggregate(table, bdf)


def _gmean(a: Any) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(math.exp(np.mean(np.log(a))))


def _aggregate(t: Any, bdf: Any) -> dict[str, Any]:
    bert = t["model"].str.startswith("bert")
    agg: dict[str, Any] = {
        "dram_reduction_avg": float(t["dram_reduction"].mean()),
        "computation_reduction": float(t["computation_reduction"].mean()),
        "speedup_over": {
            "a3": _gmean(t["speedup_over_a3"]),
            "mnnfast": _gmean(t["speedup_over_mnnfast"]),
            **{p: _gmean(t[f"speedup_over_{p}"]) for p in PLATFORMS},
            "numpy (this machine)": _gmean(t["speedup_over_numpy"]),
        },
        "tflops_bert": float(t.loc[bert, "gops"].mean() / 1000),
        "tflops_gpt2": float(t.loc[~bert, "gops"].mean() / 1000),
        "tflops_bert_dense_equiv": float(t.loc[bert, "dense_equiv_gops"].mean() / 1000),
        "tflops_gpt2_dense_equiv": float(t.loc[~bert, "dense_equiv_gops"].mean() / 1000),
        "spatten18_gops": float(t["spatten18_dense_equiv_gops"].mean()),
        "a3_gops": float(t["a3_dense_equiv_gops"].mean()),
        "breakdown_gpt2_over_titan_xp": {s: _gmean(bdf[s]) for s in BREAKDOWN_STEPS} if len(bdf) else {},
        # The paper's 8.30 W is the chip's power on BERT; HBM2 power is reported beside it.
        "chip_power_bert_w": float(t.loc[bert, "chip_power_w"].mean()),
        "power_bert_w": float(t.loc[bert, "power_w"].mean()),
        "gop_per_j": float(t["gop_per_j"].mean()),
        "spatten18_gop_per_j": float(t["spatten18_gop_per_j"].mean()),
        "topk_power_share": float((t["energy_topk_j"] / t["chip_energy_j"]).mean()),
        "energy_saving_over": {k: _gmean(t[f"energy_saving_over_{k}"]) for k in ENERGY_BASELINES},
        # Mean share of each module in a benchmark's total energy, per model family.
        "energy_share": {
            fam: {m: float((t.loc[sel, energy_column(m)] / t.loc[sel, "energy_j"]).mean()) for m in MODULES}
            for fam, sel in (("BERT", bert), ("GPT-2", ~bert))
        },
    }
    return agg


def paper_vs_ours(agg: dict[str, Any]) -> Any:
    """Rows (metric, paper, ours, ours / paper) comparing the aggregates with the published results."""
    import pandas as pd

    paper = load_settings()["paper"]
    rows = [
        ("DRAM access reduction, mean of 30 (x)", paper["dram_reduction_avg"], agg["dram_reduction_avg"]),
        ("computation reduction (x)", paper["computation_reduction"], agg["computation_reduction"]),
    ]
    for k, v in paper["speedup_over"].items():
        who = "SpAtten1/8" if k in ("a3", "mnnfast") else "SpAtten"
        rows.append((f"speedup of {who} over {k} (x, geomean)", v, agg["speedup_over"][k]))
    rows.append(
        (
            "speedup over numpy on this machine (x, geomean)",
            float("nan"),
            agg["speedup_over"]["numpy (this machine)"],
        )
    )
    rows += [
        ("throughput BERT, executed (TFLOPS)", paper["tflops_bert"], agg["tflops_bert"]),
        ("throughput GPT-2, executed (TFLOPS)", paper["tflops_gpt2"], agg["tflops_gpt2"]),
        ("throughput BERT, dense-equivalent (TFLOPS)", paper["tflops_bert"], agg["tflops_bert_dense_equiv"]),
        ("throughput GPT-2, dense-equivalent (TFLOPS)", paper["tflops_gpt2"], agg["tflops_gpt2_dense_equiv"]),
        ("SpAtten1/8 dense-equivalent GOP/s", paper["spatten18_gops"], agg["spatten18_gops"]),
        ("A3 dense-equivalent GOP/s", paper["a3_gops"], agg["a3_gops"]),
    ]
    rows.append(("chip power, mean over BERT (W)", PAPER_POWER_W, agg["chip_power_bert_w"]))
    rows.append(("top-k share of chip power, mean of 30", PAPER_TOPK_POWER_SHARE, agg["topk_power_share"]))
    for k, b in ENERGY_BASELINES.items():
        who = "SpAtten1/8" if b.kind == "efficiency" else "SpAtten"
        rows.append(
            (f"energy saving of {who} over {k} (x, geomean)", b.paper_saving, agg["energy_saving_over"][k])
        )
    for k, v in paper["breakdown_gpt2_over_titan_xp"].items():
        rows.append(
            (f"GPT-2 breakdown: {k} (x)", v, agg["breakdown_gpt2_over_titan_xp"].get(k, float("nan")))
        )
    df = pd.DataFrame(rows, columns=["metric", "paper", "ours"])
    df["ours/paper"] = df["ours"] / df["paper"]
    return df
