"""Energy and area of SpAtten from the component models, against the paper; cost of the energy model.

Prints:
1. the time energy() adds to a simulation (first call in the process with the CACTI cache warm, and
   the steady state), per preset workload;
2. average power over the 22 BERT benchmarks (BERT-Base/Large at each task's length from
   sim/data/benchmarks.yaml) against the paper's 8.30 W, and the top-k engine's power share;
3. area against 18.71 mm^2 and the top-k area share against 2.7%;
4. the energy-saving table (A3/MNNFast from published efficiency vs SpAtten1/8, GPU/CPU from rated
   power x roofline time) on the presets;
5. with --rtl, the Yosys generic-cell cross-check of the RTL blocks (about a minute).

Run: ``.venv/bin/python benchmarks/bench_energy.py [--rtl]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time


def _first_call_overhead() -> None:
    """Time simulate() and energy() in a fresh process per preset (the in-process caches start cold)."""
    code = """
import time, json, sys
from spatten.models.config import workload_preset
from spatten.sim.api import simulate
name = sys.argv[1]
w = workload_preset(name)
simulate(w)  # warm the simulator's own imports and caches
t = time.perf_counter(); r = simulate(w); t_sim = time.perf_counter() - t
from spatten.sim.power.energy import energy
t = time.perf_counter(); energy(r.actions, w.accelerator); t_first = time.perf_counter() - t
t = time.perf_counter()
for _ in range(100):
    energy(r.actions, w.accelerator)
t_steady = (time.perf_counter() - t) / 100
print(json.dumps([t_sim, t_first, t_steady]))
"""
    import json

    print("1. cost of energy() per simulation (CACTI cache warm; fresh process per workload)")
    print(f"   {'workload':12s} {'simulate':>10s} {'energy 1st':>11s} {'energy':>9s} {'overhead 1st':>13s}")
    for name in ("bert-base", "bert-large", "gpt2-small", "gpt2-medium"):
        out = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, check=True)
        t_sim, t_first, t_steady = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"   {name:12s} {t_sim * 1e3:8.1f}ms {t_first * 1e3:9.2f}ms {t_steady * 1e3:7.3f}ms "
            f"{t_first / t_sim:12.1%}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rtl", action="store_true", help="also run the Yosys cross-check (about a minute)")
    ap.add_argument("--tech-nm", type=int, default=40)
    args = ap.parse_args(argv)

    from spatten.sim.power.cacti_build import ensure_cacti

    ensure_cacti(verbose=False)
    from spatten.models.config import ACCELERATORS, workload_preset
    from spatten.sim.api import simulate
    from spatten.sim.baselines import load_settings, roofline_seconds
    from spatten.sim.power.area import (
        PAPER_AREA_MM2,
        PAPER_POWER_W,
        PAPER_TOPK_AREA_SHARE,
        PAPER_TOPK_POWER_SHARE,
        area,
        rtl_crosscheck,
    )
    from spatten.sim.power.baselines import BASELINES, energy_saving_table
    from spatten.sim.power.energy import energy, peak_power_w

    # Warm the CACTI cache for both accelerators before timing anything.
    for acc in ACCELERATORS.values():
        area(acc, args.tech_nm)
    _first_call_overhead()

    print()
    print(f"2. power over the BERT benchmarks (paper: {PAPER_POWER_W} W, top-k about 1% of power)")
    settings = load_settings()["benchmarks"]
    rows = []
    for model in settings["bert_models"]:
        for task, length in settings["bert_tasks"].items():
            w = workload_preset(model, prompt_len=int(length))
            e = energy(simulate(w).actions, w.accelerator, args.tech_nm)
            rows.append((model, task, e))
    print(f"   {'benchmark':24s} {'total W':>8s} {'chip W':>7s} {'DRAM W':>7s} {'GOP/J':>7s} {'top-k':>7s}")
    for model, task, e in rows:
        dram_w = e.module_j["DRAM"] / e.seconds
        print(
            f"   {model + ' ' + task:24s} {e.power_w:8.2f} {e.chip_power_w:7.2f} {dram_w:7.2f} "
            f"{e.gop_per_j:7.0f} {e.module_j['top-k'] / e.total_j:7.2%}"
        )
    mean_total = statistics.mean(e.power_w for *_, e in rows)
    mean_chip = statistics.mean(e.chip_power_w for *_, e in rows)
    print(
        f"   mean over {len(rows)}: total {mean_total:.2f} W ({mean_total / PAPER_POWER_W - 1:+.0%} vs "
        f"{PAPER_POWER_W} W), chip only {mean_chip:.2f} W ({mean_chip / PAPER_POWER_W - 1:+.0%})"
    )
    peak = peak_power_w(ACCELERATORS["spatten"], args.tech_nm)
    peak_total = sum(peak.values())
    print(
        f"   all units busy every cycle (upper bound, chip): {peak_total:.2f} W "
        f"({peak_total / PAPER_POWER_W - 1:+.0%}); top-k {peak['top-k'] / peak_total:.2%} of it; "
        + ", ".join(f"{m} {v:.2f}" for m, v in peak.items())
    )
    gpt = []
    for model in settings["gpt2_models"]:
        w = workload_preset(model)
        e = energy(simulate(w).actions, w.accelerator, args.tech_nm)
        gpt.append((model, e))
        print(
            f"   {model:24s} {e.power_w:8.2f} {e.chip_power_w:7.2f} {e.module_j['DRAM'] / e.seconds:7.2f} "
            f"{e.gop_per_j:7.0f} {e.module_j['top-k'] / e.total_j:7.2%}"
        )
    allrep = [e for *_, e in rows] + [e for _, e in gpt]
    share_total = statistics.mean(e.module_j["top-k"] / e.total_j for e in allrep)
    share_chip = statistics.mean(e.module_j["top-k"] / e.chip_j for e in allrep)
    print(
        f"   top-k share of power, mean over these {len(allrep)} runs: {share_total:.2%} of total, "
        f"{share_chip:.2%} of chip (paper about {PAPER_TOPK_POWER_SHARE:.0%})"
    )

    print()
    rep = area(ACCELERATORS["spatten"], args.tech_nm)
    gap = rep.total_mm2 / PAPER_AREA_MM2 - 1
    print(
        f"3. area at {args.tech_nm} nm: {rep.total_mm2:.2f} mm^2 ({gap:+.0%} vs {PAPER_AREA_MM2}); "
        f"top-k share {rep.topk_share:.2%} (paper {PAPER_TOPK_AREA_SHARE:.1%})"
    )
    for m, v in rep.by_module_mm2.items():
        if m != "DRAM":
            print(f"   {m:8s} {v:7.3f} mm^2 {v / rep.total_mm2:6.1%}")

    print()
    print("4. energy saving (A3/MNNFast: published GOP/J vs SpAtten1/8; GPU/CPU: rated W x roofline time)")
    plats = [k for k, b in BASELINES.items() if b.kind == "power"]
    savings: dict[str, list[float]] = {k: [] for k in BASELINES}
    for model in ("bert-base", "bert-large", "gpt2-small", "gpt2-medium"):
        w = workload_preset(model)
        w8 = workload_preset(model, accelerator="spatten-1/8")
        e = energy(simulate(w).actions, w.accelerator, args.tech_nm)
        e8 = energy(simulate(w8).actions, w8.accelerator, args.tech_nm)
        table = energy_saving_table(e, {p: roofline_seconds(w, p) for p in plats}, spatten_eighth=e8)
        print(f"   {model}: " + ", ".join(f"{r['name']} {r['saving']:.3g}x" for r in table))
        for r in table:
            savings[r["baseline"]].append(r["saving"])
    print(
        "   geomean: "
        + ", ".join(
            f"{BASELINES[k].name} {math.exp(statistics.mean(map(math.log, v))):.3g}x "
            f"(paper {BASELINES[k].paper_saving:g}x)"
            for k, v in savings.items()
            if v
        )
    )

    if args.rtl:
        print()
        print("5. RTL cross-check: Yosys generic cells (Nangate 45 nm X1 areas, scaled) vs component models")
        t = time.perf_counter()
        for r in rtl_crosscheck(args.tech_nm):
            print(
                f"   {r['block']:16s} {r['params']:34s} cells {r['cells']:6d} FFs {r['flipflops']:5d} "
                f"synth {r['synth_mm2']:.5f} mm^2  model {r['model_mm2']:.5f} mm^2  "
                f"ratio {r['synth_over_model']:.2f}"
            )
        print(f"   ({time.perf_counter() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
