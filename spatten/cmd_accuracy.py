"""`spatten accuracy`: a real model with SpAtten in every layer, on real text: quality, pruning, simulated."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from spatten.models.config import KV_POLICIES, from_dict, read_yaml, workload_preset
from spatten.sim.accuracy import DEFAULTS, MODELS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "accuracy",
        help="what a pruning/quantization policy costs in model quality (MiniLM, SmolLM2 on real text)",
        description="Run a real model with SpAtten's golden model as the attention of every layer and "
        "report its quality against the dense model (SmolLM2: perplexity; MiniLM: embedding cosine and a "
        "genre probe), the pruning reached, and that run's own trace simulated on the accelerator.",
    )
    p.add_argument("--model", choices=MODELS, default="smollm2", help="real model (default smollm2)")
    p.add_argument("--text", metavar="FILE", help="UTF-8 text to use instead of the Brown corpus")
    p.add_argument(
        "--windows", type=int, help="windows (MiniLM: documents) to run; default 4 (SmolLM2) / 32 (MiniLM)"
    )
    p.add_argument("--window-len", type=int, help="tokens per window (default 128)")
    p.add_argument(
        "--mode",
        choices=("prefill", "generation"),
        help="decoder: generation (default; each token from the pruned cache) or prefill (the whole window "
        "at once, pruning inside it); encoder: prefill only",
    )
    p.add_argument("--datapath", choices=("fixed", "float"), default="fixed", help="bit-accurate or float64")
    pol = p.add_mutually_exclusive_group()
    pol.add_argument("--config", metavar="FILE.yaml", help="policy: YAML over the model's preset")
    pol.add_argument("--dense", action="store_true", help="only the dense model's metric (no SpAtten run)")
    p.add_argument(
        "--policy",
        choices=KV_POLICIES,
        help="KV policy choosing the cached tokens a step reads (default the config's, spatten); the others "
        "run in generation mode at the config's token budget",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="SmolLM2: Dask worker processes for the windows (default 1)"
    )
    p.add_argument(
        "--threads", type=int, default=1,
        help="SmolLM2: BLAS threads per process (default 1; 2 helps an idle 2-core machine, not a busy one)",
    )  # fmt: skip
    p.add_argument("--format", choices=("table", "json"), default="table", help="output on stdout")
    p.add_argument(
        "--out", metavar="DIR", help="write summary.json, windows.csv and the run's trace into DIR"
    )
    p.set_defaults(func=run)


def _inputs(args: argparse.Namespace) -> tuple[int, int, str]:
    windows, window_len = DEFAULTS[args.model]
    windows = windows if args.windows is None else args.windows
    window_len = window_len if args.window_len is None else args.window_len
    for name, v in (("--windows", windows), ("--window-len", window_len)):
        if v < 1:
            raise ValueError(f"{name} {v} is outside the allowed range >= 1")
    if args.dense and (args.mode or args.datapath != "fixed" or args.workers != 1):
        raise ValueError(
            "--mode, --datapath and --workers choose how SpAtten runs: they have no effect with --dense"
        )
    mode = args.mode or ("prefill" if args.model == "minilm" else "generation")
    if args.model == "minilm" and mode != "prefill":
        raise ValueError("--mode generation needs a decoder: MiniLM is an encoder (use --mode prefill)")
    return windows, window_len, mode


def run(args: argparse.Namespace) -> int:
    from spatten.models import brown
    from spatten.sim.accuracy import run_accuracy

    windows, window_len, mode = _inputs(args)
    if not 1 <= args.threads <= 64:
        raise ValueError(f"--threads {args.threads} is outside the allowed range 1..64")
    from spatten.models import smollm2

    smollm2.BLAS_THREADS = smollm2.DECODE_THREADS = args.threads
    w = workload_preset(args.model)
    if args.config:
        data = read_yaml(args.config)
        if data is not None and not isinstance(data, dict):
            raise TypeError(f"{args.config}: config must be a mapping of sections")
        for sec, fields in (data or {}).items():
            for key in fields if isinstance(fields, dict) else ():
                if sec == "model" or (sec, key) == ("quant", "shape_refetch_rate"):
                    raise ValueError(
                        f"{sec}.{key} in {args.config} has no effect here: the real model {args.model} and "
                        "the text fix the shape, lengths and refetches"
                    )
        w = from_dict(data, base=w)
    if args.policy is not None:
        if args.dense:
            raise ValueError("--policy chooses what SpAtten runs: it has no effect with --dense")
        w = dataclasses.replace(w, pruning=dataclasses.replace(w.pruning, policy=args.policy))
    if w.pruning.enabled and w.pruning.policy != "spatten" and mode != "generation":
        where = "MiniLM is an encoder" if args.model == "minilm" else "use --mode generation"
        raise ValueError(f"pruning.policy = {w.pruning.policy} runs on decode steps only: {where}")
    text = brown.read_text(args.text) if args.text else None
    r = run_accuracy(w, args.model, text=text, windows=windows, window_len=window_len, mode=mode,
                     datapath=args.datapath, dense=args.dense, workers=args.workers)  # fmt: skip
    out, table, trace = r.summary, r.table, r.trace
    if args.out:
        _write(args.out, out, table, trace)
    if args.format == "json":
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from spatten.reports.tables import summary_lines

        print("\n".join(summary_lines(out)))
    return 0


def _write(dest: str, out: dict, table: Any, trace: Any) -> None:
    from spatten.models.trace import write_release_csv
    from spatten.output import atomic_dir

    with atomic_dir(dest) as d:
        (d / "summary.json").write_text(json.dumps(out, indent=2) + "\n")
        if table is not None:
            table.to_csv(d / "windows.csv", index=False)
        if trace is not None:
            # the whole schema (query rows, kv_head) replays exactly: spatten simulate --trace trace.parquet
            trace.to_parquet(d / "trace.parquet", index=False)
            if (trace["kv_head"] == trace["head"]).all():  # the release CSV cannot say which heads share K/V
                write_release_csv(trace, d / "trace.csv", config_name="spatten-accuracy")
