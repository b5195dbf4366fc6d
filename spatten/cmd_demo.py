"""`spatten demo` (`make demo`): the default workload simulated, then `reproduce` into out/demo.

``--out`` is checked before anything runs: a place that cannot be written (``/proc/x``, a path under a
regular file, no permission) is one line and exit 2, with nothing printed or left behind.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="simulate the default workload (GPT-2-Medium generation) and reproduce the paper into out/demo",
    )
    p.add_argument("--out", metavar="DIR", default="out/demo", help="output folder (default out/demo)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # --out was checked before this runs (cli.main); a demo that fails part-way leaves nothing behind
    out = Path(args.out)
    created = next((p for p in reversed((out, *out.parents)) if not p.exists()), None)
    try:
        return _demo(args)
    except BaseException:
        if created is not None:  # the check made it; the demo failed before filling it
            shutil.rmtree(created, ignore_errors=True)
        raise


def _demo(args: argparse.Namespace) -> int:
    from spatten.cmd_reproduce import reproduce
    from spatten.models.config import workload_preset
    from spatten.reports.tables import markdown_table, summary_lines
    from spatten.sim.api import simulate
    from spatten.sim.power.energy import energy

    w = workload_preset("gpt2-medium")
    res = simulate(w)
    print(
        f"== default workload: {w.model.name}, prompt {w.model.prompt_len} + {w.model.gen_tokens} generated, "
        f"on {w.accelerator.name}"
    )
    keys = [
        "requests",
        "cycles",
        "seconds",
        "dram_bytes_total",
        "dram_reduction",
        "refetch_rate",
        "gops",
        "dram_gbs",
        "bounding_stage",
    ]
    shown = {k: res.summary[k] for k in keys}
    cols = energy(res.actions, w.accelerator).columns()
    shown.update({k: cols[k] for k in ("energy_j", "chip_power_w", "power_w", "gop_per_j")})
    print("\n".join(summary_lines(shown)))
    _, pvo, _, _ = reproduce(args.out)
    print(f"\n== paper vs ours (all 30 benchmarks; tables and figures in {args.out}/)")
    print(markdown_table(pvo))
    return 0
