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
    p.set_defaults(func=run)


def reproduce(out: str | Path) -> tuple[object, object, dict]:
    """Run everything, write ``out`` atomically; return (benchmark table, paper-vs-ours, aggregates)."""
    from reports.figures import write_figures
    from reports.tables import markdown_table
    from sim.baselines import load_settings
    from sim.reproduce import paper_vs_ours, run_all
    from spatten.output import atomic_dir

    table, agg = run_all()
    pvo = paper_vs_ours(agg)
    with atomic_dir(out) as d:
        table.to_csv(d / "benchmarks.csv", index=False)
        pvo.to_csv(d / "paper_vs_ours.csv", index=False)
        (d / "paper_vs_ours.md").write_text(markdown_table(pvo) + "\n")
        (d / "aggregates.json").write_text(json.dumps(agg, indent=2) + "\n")
        write_figures(table, agg, load_settings(), d)
    return table, pvo, agg


def run(args: argparse.Namespace) -> int:
    from reports.tables import markdown_table

    table, pvo, agg = reproduce(args.out)
    if args.format == "json":
        json.dump(agg, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    cols = ["benchmark", "seq_len", "dram_reduction", "gops", "speedup_over_a3", "speedup_over_titan-xp"]
    print(markdown_table(table[cols]))
    print()
    print(markdown_table(pvo))
    print(
        f"\nwrote {args.out}/: benchmarks.csv paper_vs_ours.csv paper_vs_ours.md aggregates.json "
        "dram_reduction.png speedup_breakdown.png roofline.png"
    )
    return 0
