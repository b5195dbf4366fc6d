"""`spatten accuracy`: a real model with SpAtten in every layer, on real text: quality, pruning, simulated."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from spatten.models.config import from_dict, read_yaml, workload_preset

MODELS = ("minilm", "smollm2")
# What one run costs by default (2-core machine): MiniLM 32 Brown documents of 128 tokens, about half a
# minute; SmolLM2 two windows of 128 tokens in generation mode, about 40 s.
DEFAULTS = {"minilm": (32, 128), "smollm2": (2, 128)}


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
    p.add_argument("--windows", type=int, help="windows (MiniLM: documents) to run; default 2 / 32")
    p.add_argument("--window-len", type=int, help="tokens per window (default 128)")
    p.add_argument(
        "--mode",
        choices=("prefill", "generation"),
        help="decoder: generation (each token from the pruned cache); encoder: prefill (the only one)",
    )
    p.add_argument("--datapath", choices=("fixed", "float"), default="fixed", help="bit-accurate or float64")
    pol = p.add_mutually_exclusive_group()
    pol.add_argument("--config", metavar="FILE.yaml", help="policy: YAML over the model's preset")
    pol.add_argument("--dense", action="store_true", help="only the dense model's metric (no SpAtten run)")
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
    if args.dense and (args.mode or args.datapath != "fixed"):
        raise ValueError("--mode and --datapath choose how SpAtten runs: they have no effect with --dense")
    mode = args.mode or ("prefill" if args.model == "minilm" else "generation")
    if args.model == "minilm" and mode != "prefill":
        raise ValueError("--mode generation needs a decoder: MiniLM is an encoder (use --mode prefill)")
    return windows, window_len, mode


def run(args: argparse.Namespace) -> int:
    from spatten.models import brown

    windows, window_len, mode = _inputs(args)
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
    text = brown.read_text(args.text) if args.text else None
    if args.model == "minilm":
        out, table, trace = _encoder(w, text, windows, window_len, args)
    else:
        out, table, trace = _decoder(w, text, windows, window_len, mode, args)
    if trace is not None:
        from spatten.models.attention import summarize_trace
        from spatten.sim.api import simulate

        _, overall = summarize_trace(trace, w.model.heads)
        out.update(
            {f"reached_{k}": overall[k] for k in ("token_keep", "head_keep", "value_keep", "refetch_rate")}
        )
        sim = simulate(w, trace).summary
        out.update({k: sim[k] for k in _SIM_KEYS})
    if args.out:
        _write(args.out, out, table, trace)
    if args.format == "json":
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        from spatten.reports.tables import summary_lines

        print("\n".join(summary_lines(out)))
    return 0


_SIM_KEYS = (
    "cycles", "seconds", "dram_bytes_q", "dram_bytes_k_msb", "dram_bytes_k_lsb", "dram_bytes_v",
    "dram_bytes_total", "dram_reduction", "bounding_stage",
)  # fmt: skip


def _encoder(w: Any, text: str | None, windows: int, window_len: int, args: argparse.Namespace):
    import numpy as np

    from spatten.models.accuracy import encoder_accuracy, encoder_windows, probe_balanced_accuracy
    from spatten.models.real_qkv import encode, load_minilm

    inputs = encoder_windows(text, window_len, windows, load_minilm())
    out: dict[str, Any] = {"model": "minilm", "mode": "prefill", "windows": windows, "window_len": window_len}
    if args.dense:
        labels = [lab for _, lab, _ in inputs]
        if all(lab is not None for lab in labels):
            from spatten.models.accuracy import IMAGINATIVE

            emb = np.array([encode(t).hidden[-1].mean(axis=0, dtype=np.float64) for _, _, t in inputs])
            y = np.array([lab in IMAGINATIVE for lab in labels])
            out["dense_task_accuracy"] = probe_balanced_accuracy(emb, y)
        return out, None, None
    r = encoder_accuracy(w, inputs, args.datapath)
    out.update({"datapath": args.datapath, "cosine_mean": r.cosine_mean, "cosine_min": float(r.cosine.min())})
    if r.task_accuracy is not None:
        out.update({"task_accuracy": r.task_accuracy, "dense_task_accuracy": r.dense_task_accuracy,
                    "task_accuracy_drop": r.dense_task_accuracy - r.task_accuracy})  # fmt: skip
    import pandas as pd

    return out, pd.DataFrame(r.windows), r.trace


def _decoder(w: Any, text: str | None, windows: int, window_len: int, mode: str, args: argparse.Namespace):
    import pandas as pd

    from spatten.models import brown, smollm2
    from spatten.models.accuracy import decoder_accuracy

    if text is None:
        text = "\n".join(d.text for d in brown.documents())
    out: dict[str, Any] = {"model": "smollm2", "mode": mode, "windows": windows, "window_len": window_len}
    if args.dense:
        res = smollm2.perplexity(text, window_len, windows)
        out["dense_perplexity"] = res.perplexity
        return out, None, None
    r = decoder_accuracy(w, text, window_len, windows, args.datapath, mode)
    out.update({"datapath": args.datapath, "perplexity": r.perplexity, "dense_perplexity": r.dense_perplexity,
                "perplexity_increase": r.perplexity / r.dense_perplexity - 1.0})  # fmt: skip
    table = pd.DataFrame({"window": range(windows), "nll": r.window_nll, "dense_nll": r.dense_window_nll})
    return out, table, r.trace


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
