"""`spatten area`: chip area by module from the component models, against the paper's 18.71 mm^2."""

from __future__ import annotations

import argparse
import json

from spatten.models.config import AcceleratorConfig, load_yaml, workload_preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "area",
        help="area by module (hwcomponents: Aladdin logic, CACTI SRAMs) vs the paper's 18.71 mm^2",
        description="Area of the accelerator by module from the hwcomponents component models "
        "(Aladdin multipliers/adders/comparators/registers, CACTI SRAMs and FIFOs), the total against "
        "the paper's 18.71 mm^2 and the top-k engine's share against 2.7%. With --rtl, the RTL blocks "
        "are also synthesized with Yosys to generic cells (about 15 s).",
    )
    p.add_argument("--config", metavar="FILE", help="workload YAML; its accelerator section is used")
    p.add_argument("--tech-nm", type=int, default=40, help="technology node in nm, 22..90 (default 40)")
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument(
        "--rtl", action="store_true", help="also synthesize the RTL blocks (Yosys) next to the model estimate"
    )
    p.set_defaults(func=run)


def _accelerator(config: str | None) -> AcceleratorConfig:
    if config is None:
        return workload_preset("gpt2-medium").accelerator
    return load_yaml(config).accelerator


def run(args: argparse.Namespace) -> int:
    from spatten.sim.power.area import PAPER_AREA_MM2, PAPER_TOPK_AREA_SHARE, area, rtl_crosscheck

    accel = _accelerator(args.config)
    rep = area(accel, args.tech_nm)
    rtl = rtl_crosscheck(args.tech_nm) if args.rtl else None
    if args.format == "json":
        out = rep.to_dict()
        out["accelerator"] = accel.name
        if rtl is not None:
            out["rtl_crosscheck"] = rtl
        print(json.dumps(out, indent=2))
        return 0
    print(f"{accel.name} at {rep.tech_nm} nm (component models: Aladdin logic, CACTI memories)")
    print(f"{'module':10s} {'mm^2':>9s} {'share':>7s}")
    for m, v in rep.by_module_mm2.items():
        if m == "DRAM":
            continue  # off-chip
        print(f"{m:10s} {v:9.4f} {v / rep.total_mm2:7.1%}")
    gap = rep.total_mm2 / PAPER_AREA_MM2 - 1
    print(f"{'total':10s} {rep.total_mm2:9.4f}   paper {PAPER_AREA_MM2} mm^2 (model {gap:+.0%})")
    print(f"top-k share {rep.topk_share:.2%}   paper {PAPER_TOPK_AREA_SHARE:.1%}")
    print()
    print(f"{'unit':24s} {'module':8s} {'count':>6s} {'each um^2':>11s} {'total mm^2':>11s}  model")
    for u in rep.units:
        if u["total_mm2"] == 0:
            continue
        print(
            f"{u['unit']:24s} {u['module']:8s} {u['count']:6d} {u['each_mm2'] * 1e6:11.1f} "
            f"{u['total_mm2']:11.4f}  {u['model']}"
        )
    if rtl is not None:
        print()
        print("RTL cross-check (Yosys generic cells, Nangate 45 nm X1 areas scaled to the node)")
        print(
            f"{'block':16s} {'params':34s} {'cells':>7s} {'FFs':>6s} {'synth mm^2':>11s} {'model mm^2':>11s}"
        )
        for r in rtl:
            print(
                f"{r['block']:16s} {r['params']:34s} {r['cells']:7d} {r['flipflops']:6d} "
                f"{r['synth_mm2']:11.5f} {r['model_mm2']:11.5f}"
            )
    return 0
