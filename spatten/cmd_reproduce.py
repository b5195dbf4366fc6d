"""`spatten reproduce`: the paper's 30 benchmarks, every baseline, paper vs ours, figures.

With ``--accuracy`` it also searches each real model's policy for the largest DRAM reduction within an
accuracy constraint (``sim.accuracy_search``; minutes, every point cached on disk). Without it the search is
replayed from that cache, loading no model: the accuracy table appears once it has been measured.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spatten.sim.accuracy import MODELS


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
    a = p.add_argument_group(
        "accuracy",
        "the largest DRAM reduction at no accuracy loss on real models (SmolLM2: perplexity +1% at most; "
        "MiniLM: cosine >= 0.99, task accuracy drop <= 0.5 pt), found by a policy search; shown whenever "
        "the cache holds it",
    )
    a.add_argument(
        "--accuracy",
        action="store_true",
        help="run the search (minutes; each point is cached, so a rerun or a plain reproduce is fast)",
    )
    a.add_argument(
        "--no-benchmarks",
        action="store_true",
        help="skip the 30 benchmarks: only the accuracy table and figure (other files in --out stay)",
    )
    a.add_argument(
        "--accuracy-models", nargs="+", choices=MODELS, default=list(MODELS), metavar="MODEL",
        help=f"real models to search or show ({', '.join(MODELS)}; default both)",
    )  # fmt: skip
    a.add_argument(
        "--accuracy-windows", type=int, metavar="N",
        help="windows per run (MiniLM: documents); default MiniLM 32, SmolLM2 4",
    )  # fmt: skip
    a.add_argument("--accuracy-window-len", type=int, metavar="N", help="tokens per window (default 128)")
    p.set_defaults(func=run)


def reproduce(
    out: str | Path, tech_nm: int = 40, accuracy: Sequence[Any] | None = None
) -> tuple[object, object, dict, list[str]]:
    """Run everything, write ``out`` atomically; return (table, paper-vs-ours, aggregates, file names).

    ``accuracy`` holds policy searches (``sim.accuracy_search.ModelSearch``) whose tables and figure are
    written beside the rest; the last element lists the figures, then those files.
    """
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
        figures += write_accuracy(d, accuracy or ())
    return table, pvo, agg, figures


def paper_dram_reduction() -> float:
    """The paper's claimed DRAM access reduction (mean of its 30 benchmarks, with no accuracy loss)."""
    from spatten.sim.baselines import load_settings

    return float(load_settings()["paper"]["dram_reduction_avg"])


def write_accuracy(d: Path, searches: Sequence[Any]) -> list[str]:
    """Write the complete searches' points, best rows, table and figure into ``d``; return the file names."""
    import pandas as pd

    from spatten.reports.accuracy_figures import write_accuracy_figure
    from spatten.reports.tables import markdown_table
    from spatten.sim.accuracy_search import best_table

    done = [s for s in searches if s.complete]
    if not done:
        return []
    paper = paper_dram_reduction()
    numbers, display = best_table(done, paper)
    points = pd.concat([s.points for s in done], ignore_index=True)
    points.to_csv(d / "accuracy.csv", index=False)
    numbers.to_csv(d / "accuracy_best.csv", index=False)
    (d / "accuracy.md").write_text(markdown_table(display) + "\n")
    titles = {s.model: _title(s) for s in done}
    return [
        "accuracy.csv",
        "accuracy_best.csv",
        "accuracy.md",
        *write_accuracy_figure(points, paper, d, titles),
    ]


def _title(s: Any) -> str:
    from spatten.sim.accuracy_search import CONSTRAINTS

    name = {"minilm": "MiniLM-L6 (encoder)", "smollm2": "SmolLM2-135M (decoder, generation)"}[s.model]
    unit = "documents" if s.model == "minilm" else "windows"
    return f"{name}: {s.windows} {unit} × {s.window_len} Brown tokens\nconstraint: {CONSTRAINTS[s.model]}"


def accuracy_lines(searches: Sequence[Any]) -> list[str]:
    """What the terminal shows: the table of complete searches, one line for the models still missing."""
    from spatten.reports.tables import markdown_table
    from spatten.sim.accuracy_search import best_table

    done = [s for s in searches if s.complete]
    missing = [f"{s.model} ({s.windows} x {s.window_len} tokens)" for s in searches if not s.complete]
    lines = []
    if done:
        lines += ["Largest DRAM reduction at no accuracy loss (policy search on real models, cached):"]
        lines += [markdown_table(best_table(done, paper_dram_reduction())[1])]
    if missing:
        lines.append(
            f"accuracy at no loss: {', '.join(missing)} not (all) in the cache; "
            "`spatten reproduce --accuracy` measures it (minutes)"
        )
    return lines


def _check(args: argparse.Namespace) -> None:
    from spatten.sim.power.components import check_tech_nm

    check_tech_nm(args.tech_nm)
    # checked even without --accuracy (a plain reproduce shows the cached search of these sizes); the
    # model's own limits (documents, context length) are checked when its run is resolved
    for flag, v, top in (
        ("--accuracy-windows", args.accuracy_windows, 10_000),
        ("--accuracy-window-len", args.accuracy_window_len, 8192),
    ):
        if v is not None and not 1 <= v <= top:
            raise ValueError(f"{flag} {v} is outside the allowed range 1..{top}")


def _searches(args: argparse.Namespace) -> list[Any]:
    """Each model's search: run (``--accuracy``, with a progress bar) or replayed from the cache."""
    from spatten.sim.accuracy_search import search_model

    kw = {"windows": args.accuracy_windows, "window_len": args.accuracy_window_len, "tech_nm": args.tech_nm}
    run_it = args.accuracy
    return [
        search_model(m, progress=run_it, only_cached=not run_it, **kw)
        for m in dict.fromkeys(args.accuracy_models)
    ]


def run(args: argparse.Namespace) -> int:
    from spatten.reports.tables import markdown_table

    _check(args)
    searches = _searches(args)
    if args.no_benchmarks:
        return _accuracy_only(args, searches)
    table, pvo, agg, files = reproduce(args.out, args.tech_nm, searches)
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
    print()
    print("\n".join(accuracy_lines(searches)))
    files = ["benchmarks.csv", "paper_vs_ours.csv", "paper_vs_ours.md", "aggregates.json", *files]
    print(f"\nwrote {args.out}/: " + " ".join(files))
    return 0


def _accuracy_only(args: argparse.Namespace, searches: Sequence[Any]) -> int:
    """``--no-benchmarks``: the accuracy outputs alone (nothing written when nothing is cached)."""
    from spatten.output import atomic_dir
    from spatten.sim.accuracy_search import best_table

    files: list[str] = []
    if any(s.complete for s in searches):
        with atomic_dir(args.out) as d:
            files = write_accuracy(d, searches)
    if args.format == "json":
        done = [s for s in searches if s.complete]
        rows = best_table(done, paper_dram_reduction())[0].to_json(orient="records") if done else "[]"
        sys.stdout.write(json.dumps(json.loads(rows), indent=2) + "\n")
        return 0
    print("\n".join(accuracy_lines(searches)))
    if files:
        print(f"\nwrote {args.out}/: " + " ".join(files))
    return 0
