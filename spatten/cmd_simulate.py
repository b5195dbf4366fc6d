"""`spatten simulate`: one workload (or a release-format trace) through the cycle-approximate simulator."""

from __future__ import annotations

import argparse
import json
import sys

from spatten.models.config import ACCELERATORS, MODELS, load_yaml, workload_preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a workload or a release CSV trace: cycles, DRAM bytes, GOP/s, per-stage activity",
        description="Simulate one workload on SpAtten (or a baseline) and print its summary.",
    )
    p.add_argument(
        "--workload",
        choices=list(MODELS),
        help="preset workload (default gpt2-medium); with --trace, the model the trace came from",
    )
    p.add_argument("--trace", metavar="FILE.csv", help="replay a release-format workload CSV")
    p.add_argument("--seq-len", type=int, help="override the sequence (prompt) length")
    p.add_argument(
        "--config", metavar="FILE.yaml", help="YAML overriding accelerator/model/pruning/quant fields"
    )
    p.add_argument("--accelerator", choices=list(ACCELERATORS), default="spatten", help="hardware preset")
    p.add_argument("--baseline", choices=["spatten", "dense", "a3", "mnnfast"], default="spatten")
    p.add_argument("--format", choices=["table", "json"], default="table", help="summary on stdout")
    p.add_argument(
        "--tech-nm", type=int, default=40, help="technology node of the energy model, 22..90 (default 40)"
    )
    p.add_argument("--out", metavar="DIR", help="write requests.parquet and summary.json into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spatten.reports.tables import summary_lines
    from spatten.sim.api import OWN_HARDWARE, simulate
    from spatten.sim.power.components import check_tech_nm
    from spatten.sim.power.energy import energy

    check_tech_nm(args.tech_nm)
    w = workload_preset(args.workload or "gpt2-medium", args.accelerator, prompt_len=args.seq_len)
    if args.config:
        w = load_yaml(args.config, base=w)
    trace = None
    if args.trace:
        from spatten.models.trace import read_release_csv

        trace, _ = read_release_csv(args.trace)
    res = simulate(w, trace, baseline=args.baseline)
    summary = dict(res.summary)
    if args.trace:
        summary["trace"] = str(args.trace)
    rep = energy(res.actions, w.accelerator, args.tech_nm) if args.baseline in OWN_HARDWARE else None
    if rep is not None:
        summary.update(rep.columns())
    if args.out:
        from spatten.output import atomic_dir

        with atomic_dir(args.out) as d:
            try:
                res.requests.to_parquet(d / "requests.parquet", index=False)
            except ImportError:  # pyarrow missing: CSV instead
                res.requests.to_csv(d / "requests.csv", index=False)
            (d / "summary.json").write_text(
                json.dumps(
                    {
                        "summary": summary,
                        "actions": res.actions,
                        "energy": rep.to_dict() if rep is not None else None,
                    },
                    indent=2,
                )
                + "\n"
            )
    if args.format == "json":
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(summary_lines(summary)))
    return 0
