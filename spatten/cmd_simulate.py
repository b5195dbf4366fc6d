"""`spatten simulate`: one workload (or a release-format trace) through the cycle-approximate simulator."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from spatten.models.config import (
    ACCELERATORS,
    KV_POLICIES,
    MODELS,
    PruningConfig,
    Workload,
    check_int,
    from_dict,
    read_yaml,
    workload_preset,
)
from spatten.models.hf_config import HF_PRESETS
from spatten.sim.api import BASELINES

# Policy fields a design other than SpAtten runs without (dense and the baselines prune and quantize nothing).
POLICY_KEEPS = {("quant", "unquantized_bits"), ("quant", "reference_bits")}

# Fields a replayed trace fixes row by row (lengths, head sizes, what was fetched at which width), so a
# config that sets them would be ignored: refused instead.
TRACE_FIXES = {
    "model": (
        "layers",
        "heads",
        "head_dim",
        "prompt_len",
        "gen_tokens",
        "mode",
        "prompt_in_trace",
        "kv_heads",
        "batch",
        "sliding_window",
        "sliding_layers",
    ),
    # every pruning field but the KV policy's: its selection and metadata are charged from the config
    "pruning": tuple(
        f.name for f in dataclasses.fields(PruningConfig) if f.name not in ("policy", "page_size", "enabled")
    ),
    "quant": (
        "enabled",
        "key_msb_bits",
        "key_lsb_bits",
        "value_bits",
        "query_bits",
        "refetch_threshold",
        "progressive",
        "shape_refetch_rate",
    ),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "simulate",
        help="simulate a workload or a release CSV trace: cycles, DRAM bytes, energy, speedup over dense",
        description="Simulate one workload on SpAtten (or a baseline design), print its summary and how it "
        "compares with dense on the same hardware and with --baseline.",
    )
    p.add_argument(
        "--workload",
        choices=[*MODELS, *HF_PRESETS],
        help="preset workload (default gpt2-medium; `spatten models` lists them); with --trace, the model "
        "the trace came from",
    )
    p.add_argument(
        "--hf-config",
        metavar="FILE",
        help="a Hugging Face config.json (local): its layers, heads, K/V heads and head_dim, run in "
        "generation with the decoder policy",
    )
    p.add_argument("--gen-tokens", type=int, help="generated tokens of a generation workload")
    p.add_argument(
        "--batch",
        type=int,
        help="sequences decoded together, each with its own K/V cache and pruning state (generation; "
        "default 1)",
    )
    p.add_argument(
        "--policy",
        choices=KV_POLICIES,
        help="KV policy (pruning.policy): spatten cascade (default), h2o, streamingllm or quest, at the "
        "config's token budget",
    )
    p.add_argument(
        "--beyond-max-position",
        action="store_true",
        help="allow a context longer than the config's max_position_embeddings",
    )
    p.add_argument(
        "--trace",
        metavar="FILE",
        help="replay a release-format CSV, or a trace in the package's schema (.parquet)",
    )
    p.add_argument(
        "--prompt-len",
        "--seq-len",
        dest="seq_len",
        type=int,
        help="the prompt (sequence) length; not with --trace",
    )
    p.add_argument(
        "--config", metavar="FILE.yaml", help="YAML overriding accelerator/model/pruning/quant fields"
    )
    p.add_argument("--accelerator", choices=list(ACCELERATORS), default="spatten", help="hardware preset")
    p.add_argument("--design", choices=BASELINES, default="spatten", help="what runs (default spatten)")
    p.add_argument(
        "--baseline",
        choices=BASELINES,
        default="dense",
        help="what it is compared with besides dense on the same hardware (default dense)",
    )
    p.add_argument(
        "--per-layer", action="store_true", help="also print (and with --out write) a per-layer table"
    )
    p.add_argument("--format", choices=["table", "json"], default="table", help="summary on stdout")
    p.add_argument(
        "--tech-nm", type=int, default=40, help="technology node of the energy model, 22..90 (default 40)"
    )
    p.add_argument(
        "--out", metavar="DIR", help="write requests.parquet, summary.json (and per_layer.csv) into DIR"
    )
    p.set_defaults(func=run)


def _base_workload(args: argparse.Namespace) -> Workload:
    """The preset, Hugging Face preset or config.json the flags name, at the lengths they give."""
    from spatten.models.hf_config import hf_preset, hf_workload, load_hf_config

    if args.hf_config and (args.workload or args.trace):
        raise ValueError("--hf-config gives the model: not with --workload or --trace")
    shape = load_hf_config(args.hf_config) if args.hf_config else None
    if shape is None and args.workload in HF_PRESETS:
        shape = hf_preset(args.workload)
    if shape is not None:
        return hf_workload(shape, args.accelerator, prompt_len=args.seq_len, gen_tokens=args.gen_tokens,
                           batch=1 if args.batch is None else args.batch,
                           beyond_max_position=args.beyond_max_position)  # fmt: skip
    if args.beyond_max_position:
        raise ValueError("--beyond-max-position applies to --hf-config and the Hugging Face presets only")
    w = workload_preset(
        args.workload or _default_model(args.trace), args.accelerator, prompt_len=args.seq_len
    )
    if args.gen_tokens is not None:
        if w.model.mode != "generation":
            raise ValueError(
                f"--gen-tokens applies to generation workloads; {w.model.name} is {w.model.mode}"
            )
        check_int("--gen-tokens", args.gen_tokens, 1, 1 << 16)
        w = dataclasses.replace(w, model=dataclasses.replace(w.model, gen_tokens=args.gen_tokens))
    if args.batch is not None:
        check_int("--batch", args.batch, 1, 4096)
        if w.model.mode != "generation":
            raise ValueError(f"--batch applies to generation workloads; {w.model.name} is {w.model.mode}")
        w = dataclasses.replace(w, model=dataclasses.replace(w.model, batch=args.batch))
    return w


def _default_model(trace: str | None) -> str:
    """The preset when --workload is not given: bert-base for a release BERT file, else gpt2-medium."""
    from spatten.models.trace_bert import is_bert_header

    if trace:
        try:
            with open(trace, encoding="utf-8-sig", errors="replace") as f:
                header = f.readline(1 << 16).strip().split(",")
        except OSError:  # the trace reader names the problem later, in its own words
            return "gpt2-medium"
        if is_bert_header(header):
            return "bert-base"
    return "gpt2-medium"


def build_workload(args: argparse.Namespace) -> Workload:
    """The workload of ``simulate``'s flags, refusing flags and config fields that would be ignored."""
    for flag, value in (
        ("--prompt-len/--seq-len", args.seq_len),
        ("--gen-tokens", args.gen_tokens),
        ("--batch", args.batch),
    ):
        if args.trace and value is not None:
            raise ValueError(f"{flag} has no effect with --trace: the trace's rows fix the sequence length")
    w = _base_workload(args)
    if args.policy is not None:
        if args.design != "spatten":
            raise ValueError(f"--policy has no effect with --design {args.design}: it prunes nothing")
        w = dataclasses.replace(w, pruning=dataclasses.replace(w.pruning, policy=args.policy))
    if not args.config:
        return _check_policy(w)
    data = read_yaml(args.config)
    if data is not None and not isinstance(data, dict):
        raise TypeError(
            f"{args.config}: config must be a mapping with sections accelerator, model, pruning, quant"
        )
    sets = {(sec, k) for sec, v in (data or {}).items() if isinstance(v, dict) for k in v}
    if args.design != "spatten":
        for sec, key in sorted(sets):
            if sec in ("pruning", "quant") and (sec, key) not in POLICY_KEEPS:
                raise ValueError(
                    f"{sec}.{key} in {args.config} has no effect with --design {args.design}: "
                    f"it prunes and quantizes nothing"
                )
    if args.seq_len is not None and ("model", "prompt_len") in sets:
        raise ValueError(
            f"--seq-len {args.seq_len} and model.prompt_len in {args.config} both set the prompt length: "
            f"give one"
        )
    if args.trace:
        for sec, key in sorted(sets):
            fixed = TRACE_FIXES.get(sec, ())
            if fixed == "*" or key in fixed:
                raise ValueError(
                    f"{sec}.{key} in {args.config} has no effect with --trace: the trace's rows fix it"
                )
    return _check_policy(from_dict(data, base=w))


def _check_policy(w: Workload) -> Workload:
    """Refuse a KV policy on a workload without decode steps (models/kv_policy.py)."""
    p = w.pruning
    if p.enabled and p.policy != "spatten" and w.model.mode != "generation":
        raise ValueError(
            f"pruning.policy = {p.policy} applies to generation workloads (decode steps); {w.model.name} is "
            f"{w.model.mode}"
        )
    return w


def read_trace(path: str) -> Any:
    """A release CSV, a CSV of the package's schema, or a ``.parquet`` trace (``spatten accuracy --out``),
    checked value by value (:func:`spatten.models.trace.read_trace_file`)."""
    from spatten.models.trace import read_trace_file

    return read_trace_file(path)


def run(args: argparse.Namespace) -> int:
    from spatten.reports.tables import per_layer_lines, summary_lines
    from spatten.sim.compare import evaluate, per_layer, ratios
    from spatten.sim.power.components import check_tech_nm

    check_tech_nm(args.tech_nm)
    w = build_workload(args)
    trace = None
    if args.trace:
        trace = read_trace(args.trace)
    else:  # the dense comparison is the largest run: refuse before the first one starts
        from spatten.models.limits import SIM_BYTES_PER_ROW, check_memory
        from spatten.models.workload import shape_rows
        from spatten.sim.baselines import dense_workload

        rows = shape_rows(dense_workload(w))
        check_memory(
            f"the dense comparison's {rows:,}-request trace and its simulation", rows * SIM_BYTES_PER_ROW
        )
    main = evaluate(w, trace, args.design, args.tech_nm)
    summary = dict(main.summary)
    if summary.get("sram_overflow", 0.0) > 0:
        kb = w.accelerator.kv_sram_bytes // 2
        print(
            f"spatten simulate: warning: {100 * summary['sram_overflow']:.1f}% of the requests' keys "
            f"overflow half the K SRAM ({kb:,} B): a GQA group's heads each fetch them, a multi-query row "
            "once per query",
            file=sys.stderr,
        )
    if args.trace:
        summary["trace"] = str(args.trace)
    for other in dict.fromkeys(("dense", args.baseline)):
        if other == args.design:
            continue
        for k, v in ratios(main.summary, evaluate(w, trace, other, args.tech_nm).summary).items():
            summary[f"{k}_over_{other}"] = v
    layers = per_layer(main.result) if args.per_layer else None
    if args.out:
        _write(args.out, main, summary, layers)
    if args.format == "json":
        out: dict[str, Any] = dict(summary)
        if layers is not None:
            out["per_layer"] = layers.to_dict(orient="records")
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print("\n".join(summary_lines(summary)))
    if layers is not None:
        print()
        print("\n".join(per_layer_lines(layers)))
    return 0


def _write(out: str, main: Any, summary: dict[str, Any], layers: Any) -> None:
    from spatten.output import atomic_dir

    res = main.result
    with atomic_dir(out) as d:
        try:
            res.requests.to_parquet(d / "requests.parquet", index=False)
        except ImportError:  # pyarrow missing: CSV instead
            res.requests.to_csv(d / "requests.csv", index=False)
        if layers is not None:
            layers.to_csv(d / "per_layer.csv", index=False)
        rep = main.energy
        body = {"summary": summary, "actions": res.actions, "energy": rep.to_dict() if rep else None}
        (d / "summary.json").write_text(json.dumps(body, indent=2) + "\n")
