"""`spatten models`: the model presets and their attention shapes."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models",
        help="list the model presets with their attention shapes",
        description="List every model preset: the paper's workloads and the Hugging Face configs shipped "
        "with the package (each with its source). Any preset works as `simulate --workload NAME`.",
    )
    p.add_argument("--format", choices=["table", "json"], default="table", help="output on stdout")
    p.set_defaults(func=run)


def rows() -> list[dict[str, Any]]:
    """One row per preset: name, kind, layers, heads, kv_heads, head_dim, context, sliding layers and window,
    dense K/V bytes per token at 16 bits, the default run and the source."""
    from spatten.models.config import MODELS
    from spatten.models.hf_config import HF_PRESETS, hf_workload, kv_bytes_per_token

    out = []
    for name, m in MODELS.items():
        kvh = m.n_kv_heads
        out.append({
            "name": name, "kind": "paper workload", "layers": m.layers, "heads": m.heads, "kv_heads": kvh,
            "head_dim": m.head_dim, "context": None, "sliding_layers": 0, "sliding_window": None,
            "kv_bytes_per_token_16b": int(kv_bytes_per_token(m.layers, kvh, m.head_dim, 16)),
            "default_run": f"{m.prompt_len}" + (f" + {m.gen_tokens}" if m.mode == "generation" else ""),
            "source": "models/config.py (SPATTEN.md)",
        })  # fmt: skip
    for name, s in HF_PRESETS.items():
        m = hf_workload(s).model
        out.append({
            "name": name, "kind": "Hugging Face config", "layers": s.layers, "heads": s.heads,
            "kv_heads": s.kv_heads, "head_dim": s.head_dim, "context": s.max_position,
            "sliding_layers": s.sliding_layers, "sliding_window": s.sliding_window,
            "kv_bytes_per_token_16b": int(s.kv_bytes_per_token(16)),
            "default_run": f"{m.prompt_len} + {m.gen_tokens}", "source": s.source,
        })  # fmt: skip
    return out


def run(args: argparse.Namespace) -> int:
    table = rows()
    if args.format == "json":
        json.dump(table, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    head = ["name", "layers", "heads", "K/V", "D", "context", "sliding", "K/V B/token (16b)", "default run"]
    lines = [head]
    for r in table:
        sliding = f"{r['sliding_layers']} x {r['sliding_window']}" if r["sliding_layers"] else "-"
        cells = [
            r["name"],
            r["layers"],
            r["heads"],
            r["kv_heads"],
            r["head_dim"],
            r["context"] or "-",
            sliding,
        ]
        lines.append([*map(str, cells), f"{r['kv_bytes_per_token_16b']:,}", r["default_run"]])
    widths = [max(len(x[i]) for x in lines) for i in range(len(head))]
    for x in lines:
        print("  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip())
    print("\nsources:")
    for r in table:
        if r["kind"] == "Hugging Face config":
            print(f"  {r['name']}: {r['source']}")
    return 0
