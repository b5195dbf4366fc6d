"""`spatten demo`: the main job on the built-in default workload (what `make demo` runs)."""

from __future__ import annotations

import argparse

from models.config import workload_preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the default workload (GPT-2-Medium generation) and print a summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    w = workload_preset("gpt2-medium")
    tok = w.pruning.token_schedule(w.model.layers)
    head = w.pruning.head_schedule(w.model.layers)
    print(
        f"{w.model.name}: {w.model.layers} layers x {w.model.heads} heads, prompt {w.model.prompt_len}, "
        f"{w.model.gen_tokens} generated"
    )
    print("layer  token_keep  head_keep")
    for i, (t, h) in enumerate(zip(tok, head, strict=True)):
        print(f"{i:5d}  {t:10.3f}  {h:9.3f}")
    return 0
