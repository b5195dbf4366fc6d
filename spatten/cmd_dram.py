"""`spatten dram`: what an HBM2 channel sustains for a read stream, from the device's own timings."""

from __future__ import annotations

import argparse
import json
import sys

#: Reads the clock-by-clock reference runs at most (about 10 s); longer streams take the fast model alone.
REFERENCE_MAX_READS = 200_000


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dram",
        help="HBM2 channel: cycles, bytes per cycle and read latency of a 32-byte read stream",
        description="Run a stream of 32-byte reads through the bank-level HBM2 model (HBM2_8Gb / "
        "HBM2_2Gbps timings; sim/hbm2.py states the rules and the address mapping): the clock-by-clock "
        "reference and the fast estimate side by side. With --reads 1: one read's latency on a closed bank.",
    )
    p.add_argument(
        "--pattern", default="seq", help="seq, random or stride:BYTES (a multiple of 32; default seq)"
    )
    p.add_argument(
        "--reads", type=int, default=10_000, help="reads in the stream, 1..10,000,000 (default 10,000)"
    )
    p.add_argument(
        "--outstanding", type=int, default=16, help="reads in flight per channel, 1..1024 (default 16)"
    )
    p.add_argument("--channels", type=int, default=1, help="channels the stream interleaves over, 1..64")
    p.add_argument("--seed", type=int, default=0, help="seed of the random pattern (default 0)")
    p.add_argument("--format", choices=["table", "json"], default="table", help="output on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spatten.models.config import check_int
    from spatten.sim.hbm2 import estimate, pattern_reads, reference

    check_int("--reads", args.reads, 1, 10_000_000)
    check_int("--outstanding", args.outstanding, 1, 1024)
    check_int("--channels", args.channels, 1, 64)
    check_int("--seed", args.seed, 0, 2**32 - 1)
    reads = pattern_reads(args.pattern, args.reads, seed=args.seed)
    fast = estimate(reads, args.outstanding, args.channels)
    ref = reference(reads, args.outstanding, args.channels) if args.reads <= REFERENCE_MAX_READS else None
    main = ref or fast
    out = {**main.to_dict(), "model": "reference" if ref else "fast", "fast": fast.to_dict()}
    if args.format == "json":
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"{args.reads:,} reads, {args.pattern}, {args.outstanding} outstanding, {args.channels} channel(s)")
    print(f"{'':28s} {'reference':>12s} {'fast model':>12s}")
    rows = (
        ("cycles", "cycles (DRAM clocks)"),
        ("bytes_per_cycle_per_channel", "bytes / clock / channel"),
        ("latency_mean", "read latency mean"),
        ("latency_max", "read latency max"),
    )
    for key, label in rows:
        r = f"{getattr(ref, key):12.2f}" if ref else f"{'(too long)':>12s}"
        print(f"{label:28s} {r} {getattr(fast, key):12.2f}")
    return 0
