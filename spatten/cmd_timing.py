"""`spatten timing`: each RTL block's longest combinational path after synthesis, against the clock."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "timing",
        help="critical path of each RTL block (Yosys logic depth -> delay at the node) against the clock",
        description="Synthesize the attention core's blocks to Yosys generic cells, take the longest path "
        "between registers and ports (ltp -noff) and turn its cell count into a delay: FO4 = 0.36 ns per "
        "um of gate length, one cell = 1.5 FO4, 3 FO4 register overhead (sim/power/timing.py gives the "
        "sources). A pessimistic estimate for adders (ripple carry), without wires.",
    )
    p.add_argument("--block", action="append", default=None, help="a block to time (repeatable; default all)")
    p.add_argument("--tech-nm", type=int, default=40, help="process node in nm, 22..90 (default 40)")
    p.add_argument("--clock-ghz", type=float, default=1.0, help="target clock, 0.05..5 GHz (default 1)")
    p.add_argument("--level-fo4", type=float, default=None, help="delay of one generic cell in FO4 (1.5)")
    p.add_argument(
        "--max-n", type=int, default=64, help="register-file depth of the blocks that have one, 1..1024 (64)"
    )
    p.add_argument(
        "--fast-adders",
        action="store_true",
        help="Booth multipliers and Kogge-Stone carries (much slower synthesis; a divider takes >10 min)",
    )
    p.add_argument("--format", choices=["table", "json"], default="table", help="output on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from spatten.models.config import check_float, check_int
    from spatten.sim.power.components import check_tech_nm
    from spatten.sim.power.timing import LEVEL_FO4, core_blocks, critical_path, fo4_ps

    check_tech_nm(args.tech_nm)
    check_float("--clock-ghz", args.clock_ghz, 0.05, 5.0)
    level = LEVEL_FO4 if args.level_fo4 is None else args.level_fo4
    check_float("--level-fo4", level, 0.5, 4.0)
    check_int("--max-n", args.max_n, 1, 1024)
    blocks = core_blocks(args.max_n)
    names = args.block or list(blocks)
    unknown = [b for b in names if b not in blocks]
    if unknown:
        raise ValueError(f"--block {unknown[0]} is unknown; choose from {', '.join(blocks)}")
    rows = []
    for name in tqdm(names, desc="yosys synth + ltp", unit="block", file=sys.stderr, leave=False):
        params, make = blocks[name]
        r = critical_path(make(), name, args.tech_nm, args.clock_ghz, level, args.fast_adders)
        rows.append(
            {"block": name, "params": params, "levels": r.levels, "max_levels": r.max_levels,
             "delay_ps": round(r.delay_ps, 1), "slack_ps": round(r.slack_ps, 1),
             "fmax_ghz": round(r.fmax_ghz, 3), "meets": r.meets, "start": r.start}
        )  # fmt: skip
    if args.format == "json":
        json.dump({"tech_nm": args.tech_nm, "clock_ghz": args.clock_ghz, "level_fo4": level,
                   "fast_adders": args.fast_adders,
                   "fo4_ps": fo4_ps(args.tech_nm), "blocks": rows}, sys.stdout, indent=2)  # fmt: skip
        sys.stdout.write("\n")
        return 0
    print(
        f"{args.tech_nm} nm, FO4 {fo4_ps(args.tech_nm):.1f} ps, one cell {level} FO4, target"
        f" {args.clock_ghz} GHz ({1000 / args.clock_ghz:.0f} ps: at most {rows[0]['max_levels']} levels)"
    )
    print(
        f"{'block':16s} {'parameters':34s} {'levels':>6s} {'delay ps':>9s} {'slack ps':>9s}"
        f" {'fmax GHz':>8s}  path from"
    )
    for r in rows:
        mark = "" if r["meets"] else "  MISSES"
        print(
            f"{r['block']:16s} {r['params']:34s} {r['levels']:6d} {r['delay_ps']:9.0f} {r['slack_ps']:9.0f}"
            f" {r['fmax_ghz']:8.2f}  {r['start']}{mark}"
        )
    return 0
