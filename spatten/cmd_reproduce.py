"""`spatten reproduce`: the paper's 30 benchmarks, every baseline, paper vs ours, figures."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run the paper's 30 benchmarks and baselines; print paper vs ours; write tables and figures",
        description="Reproduce the SpAtten paper's headline results with the simulator.",
    )
    p.add_argument(
        "--out", metavar="DIR", default="out/reproduce", help="output folder (default out/reproduce)"
    )
    p.add_argument("--format", choices=["table", "json"], default="table", help="paper vs ours on stdout")
    p.add_argument("--tech-nm", type=int, default=40, help="technology node of the energy model, 22..90 (40)")
    p.set_defaults(func=run)


def reproduce(out: str | Path, tech_nm: int = 40) -> tuple[object, object, dict, list[str]]:
    """Run everything, write ``out`` atomically; return (table, paper-vs-ours, aggregates, figure names)."""
    from spatten.output import atomic_dir
    from spatten.reports.figures import write_figures
    from spatten.reports.tables import markdown_table
    from spatten.sim.baselines import load_settings
    from spatten.sim.power.components import check_tech_nm
    from spatten.sim.reproduce import paper_vs_ours, run_all

    check_tech_nm(tech_nm)
    table, agg = run_all(tech_nm=tech_nm)
    pvo = paper_vs_ours(agg)
    with atomic_dir(out) as d:
        table.to_csv(d / "benchmarks.csv", index=False)
        pvo.to_csv(d / "paper_vs_ours.csv", index=False)
        (d / "paper_vs_ours.md").write_text(markdown_table(pvo) + "\n")
        (d / "aggregates.json").write_text(json.dumps(agg, indent=2) + "\n")
        figures = write_figures(table, agg, load_settings(), d, tech_nm=tech_nm)
    return table, pvo, agg, figures


def run(args: argparse.Namespace) -> int:
    from spatten.reports.tables import markdown_table

    table, pvo, agg, figures = reproduce(args.out, args.tech_nm)
    if args.format == "json":
        json.dump(agg, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    cols = [
        "benchmark",
        "seq_len",
        "dram_reduction",
        "gops",
        "speedup_over_a3",
        "speedup_over_titan-xp",
        "chip_power_w",
        "gop_per_j",
    ]
    print(markdown_table(table[cols]))
    print()
    print(markdown_table(pvo))
    files = ["benchmarks.csv", "paper_vs_ours.csv", "paper_vs_ours.md", "aggregates.json", *figures]
    print(f"\nwrote {args.out}/: " + " ".join(files))
    return 0
