"""`spatten compare A.yaml B.yaml`: two configurations side by side, the changed fields, then the figures."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spatten.models.config import ACCELERATORS, MODELS, load_yaml, workload_preset
from spatten.sim.api import BASELINES, OWN_HARDWARE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="two configurations side by side: changed fields, then cycles, bytes, energy, area and B/A",
        description="Load two config YAMLs over the same preset workload, list the fields that differ, "
        "simulate both and print each figure for A and B with the ratio B/A.",
    )
    p.add_argument("config_a", metavar="A.yaml", help="first configuration")
    p.add_argument("config_b", metavar="B.yaml", help="second configuration")
    p.add_argument("--workload", choices=list(MODELS), default="gpt2-medium", help="preset both override")
    p.add_argument("--accelerator", choices=list(ACCELERATORS), default="spatten", help="hardware preset")
    p.add_argument("--design", choices=BASELINES, default="spatten", help="what runs (default spatten)")
    p.add_argument(
        "--tech-nm", type=int, default=40, help="technology node of the energy model, 22..90 (default 40)"
    )
    p.add_argument("--format", choices=["table", "json"], default="table", help="output on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spatten.sim.compare import HEADLINE, changed_fields, evaluate
    from spatten.sim.power.area import area
    from spatten.sim.power.components import check_tech_nm

    check_tech_nm(args.tech_nm)
    base = workload_preset(args.workload, args.accelerator)
    wa, wb = load_yaml(args.config_a, base=base), load_yaml(args.config_b, base=base)
    changed = changed_fields(wa, wb)
    for field, _, _ in changed:
        sec, _, key = field.partition(".")
        if (
            args.design != "spatten"
            and sec in ("pruning", "quant")
            and key not in ("unquantized_bits", "reference_bits")
        ):
            raise ValueError(
                f"{field} differs, but --design {args.design} prunes and quantizes nothing: it has no effect"
            )
    sides = []
    for w in (wa, wb):
        s = dict(evaluate(w, None, args.design, args.tech_nm).summary)
        if args.design in OWN_HARDWARE:  # A3's and MNNFast's own area is not modelled
            s["area_mm2"] = area(w.accelerator, args.tech_nm).total_mm2
        sides.append(s)
    rows = [
        {
            "figure": k,
            "unit": unit,
            "a": sides[0][k],
            "b": sides[1][k],
            "b_over_a": _ratio(sides[0][k], sides[1][k]),
        }
        for k, unit in HEADLINE
        if k in sides[0] and k in sides[1]
    ]
    rows.append(
        {
            "figure": "bounding_stage",
            "unit": "",
            "a": sides[0]["bounding_stage"],
            "b": sides[1]["bounding_stage"],
            "b_over_a": None,
        }
    )
    if args.format == "json":
        out: dict[str, Any] = {
            "workload": args.workload,
            "design": args.design,
            "a": args.config_a,
            "b": args.config_b,
            "changed": [{"field": f, "a": a, "b": b} for f, a, b in changed],
            "figures": rows,
        }
        json.dump(out, sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
        return 0
    where = f"{args.workload} on {base.accelerator.name} ({args.design})"
    print(f"{where}: A = {args.config_a}, B = {args.config_b}")
    print("changed fields:" if changed else "changed fields: none (the two configurations are the same)")
    wf = max([len(f) for f, _, _ in changed] + [5])
    for f, a, b in changed:
        print(f"  {f:<{wf}}  {_short(a):>14}  ->  {_short(b)}")
    print()
    print(f"{'figure':<16} {'unit':<9} {'A':>12} {'B':>12} {'B/A':>8}")
    for r in rows:
        ratio = "" if r["b_over_a"] is None else f"{r['b_over_a']:.3f}"
        print(f"{r['figure']:<16} {r['unit']:<9} {_short(r['a']):>12} {_short(r['b']):>12} {ratio:>8}")
    return 0


def _ratio(a: Any, b: Any) -> float | None:
    """B / A, or None (JSON null) when A is 0: no ratio exists."""
    a, b = float(a), float(b)
    return None if a == 0 else b / a


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    text = str(v)
    return text if len(text) <= 40 else text[:37] + "..."
