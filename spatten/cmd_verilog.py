"""`spatten verilog <block>`: write a block's Verilog (same parameters, same bytes) and lint it."""

from __future__ import annotations

import argparse

from spatten.output import atomic_dir
from spatten.rtl import generate


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verilog",
        help="generate deterministic Verilog for an RTL block and lint it with Verilator",
        description="Generate Verilog for one registered block. Blocks: "
        + "; ".join(f"{b.name}: {b.summary}" for b in generate.BLOCKS.values()),
    )
    p.add_argument("block", choices=generate.block_names(), help="which block")
    seen: set[str] = set()
    for block in generate.BLOCKS.values():
        for prm in block.params:
            if prm.name in seen:
                continue
            seen.add(prm.name)
            p.add_argument(
                prm.flag, dest=prm.name, type=int, default=None, help=f"{prm.help} (default {prm.default})"
            )
    p.add_argument(
        "-o", "--out", required=True, help="output folder (created; <toplevel>.v is written into it)"
    )
    p.add_argument("--no-lint", action="store_true", help="skip `verilator --lint-only`")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    block = generate.get_block(args.block)
    params = {
        prm.name: getattr(args, prm.name) for prm in block.params if getattr(args, prm.name) is not None
    }
    others = [
        prm.flag
        for b in generate.BLOCKS.values()
        for prm in b.params
        if prm.name not in {q.name for q in block.params} and getattr(args, prm.name, None) is not None
    ]
    if others:
        raise ValueError(f"block {block.name!r} does not take {', '.join(sorted(set(others)))}")
    text = generate.verilog(block.name, **params)
    with atomic_dir(args.out) as tmp:
        path = tmp / f"{block.toplevel}.v"
        path.write_text(text)
        if not args.no_lint:
            res = generate.lint(path)
            if not res.ok:
                first = next((ln for ln in res.output.splitlines() if ln.startswith("%Error")), "lint failed")
                raise ValueError(f"verilator --lint-only rejected the Verilog: {first}")
            lint_note = f"verilator --lint-only: 0 errors, {res.warnings} warnings"
        else:
            lint_note = "lint skipped"
    final = f"{args.out.rstrip('/')}/{block.toplevel}.v"
    shown = {prm.name: params.get(prm.name, prm.default) for prm in block.params}
    print(
        f"wrote {final} ({len(text.encode())} bytes; {', '.join(f'{k}={v}' for k, v in shown.items())});"
        f" {lint_note}"
    )
    return 0
