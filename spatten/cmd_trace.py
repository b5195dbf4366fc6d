"""`spatten trace`: run the golden attention model on a workload and print the request-trace summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from spatten.models.config import MODELS, workload_preset


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trace",
        help="run the golden model (pruning + progressive quantization) and summarize its request trace",
        description="Run SpAtten attention (cascade token/head pruning, local value pruning, progressive "
        "quantization) on seeded synthetic Q/K/V for a preset workload (minilm: the real Q/K/V of the "
        "MiniLM-L6 encoder on a text), print keys and values fetched per layer, the refetch rate and the "
        "pruning ratios, and optionally write the trace as a release CSV.",
    )
    p.add_argument("--workload", choices=sorted(MODELS), default="gpt2-medium", help="preset (gpt2-medium)")
    p.add_argument("--layers", type=int, default=None, help="run only the first N layers (default: all)")
    p.add_argument("--steps", type=int, default=None, help="generation steps to run (default: all)")
    p.add_argument("--seq-len", type=int, default=None, help="prompt / sentence length (default: preset)")
    p.add_argument("--mode", choices=["fixed", "float"], default="fixed", help="arithmetic (fixed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic Q/K/V (0)")
    p.add_argument(
        "--text",
        default=None,
        metavar="FILE",
        help="minilm only: UTF-8 text whose real MiniLM Q/K/V are traced (default: a built-in paragraph)",
    )
    p.add_argument(
        "--out", default=None, metavar="FILE.csv", help="write the trace in the release CSV format"
    )
    p.add_argument(
        "--layout",
        choices=["gpt2", "bert"],
        default="gpt2",
        help="release CSV layout of --out: gpt2 (one row per step, layer, head; default) or bert (one row "
        "per layer and head, the C++ BERT model's input; summarization workloads only)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from spatten.models.attention import run_attention, summarize_trace
    from spatten.models.trace import write_release_csv

    real = args.workload == "minilm"  # real Q/K/V from the MiniLM encoder instead of synthetic ones
    if args.text is not None and not real:
        raise ValueError(f"--text applies to --workload minilm only, not {args.workload}")
    if real and args.seq_len is not None:
        raise ValueError("--seq-len does not apply to minilm: the length is the text's token count")
    w = workload_preset(args.workload, prompt_len=args.seq_len)
    m = w.model
    if args.layout == "bert" and m.mode == "generation":
        raise ValueError(f"--layout bert holds one summarization pass; {m.name} is a generation workload")
    if args.steps is not None and m.mode != "generation":
        raise ValueError(f"--steps applies to generation workloads only; {m.name} is {m.mode}")
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed = {args.seed} is outside the allowed range 0..4294967295")
    out = Path(args.out) if args.out else None
    if out is not None and (not out.parent.is_dir() or out.is_dir()):
        raise ValueError(f"--out {str(out)!r} must be a file path in an existing folder")
    qkv = None
    if real:
        qkv, n_tok = _minilm_qkv(args.text)
        w = workload_preset(args.workload, prompt_len=n_tok)
        m = w.model
    r = run_attention(w, mode=args.mode, seed=args.seed, layers=args.layers, steps=args.steps, qkv=qkv)
    per_layer, ov = summarize_trace(r.trace, r.heads, r.full_keys)
    steps = int(r.trace["step"].max()) + 1
    print(
        f"{m.name} {m.mode} ({args.mode} point): {r.layers} layers x {m.heads} heads, "
        f"{'prompt' if m.mode == 'generation' else 'length'} {m.prompt_len}"
        + (f", {steps} steps" if m.mode == "generation" else "")
        + (f", text {args.text or 'built-in'}" if real else f", seed {args.seed}")
    )
    print(per_layer.to_string(index=False, formatters={"refetch_rate": "{:.3f}".format}))
    print(
        f"requests {ov['requests']}, keys fetched {ov['keys_fetched']}, values fetched {ov['values_fetched']}"
    )
    print(
        f"keep ratios: token {ov['token_keep']:.3f}, head {ov['head_keep']:.3f}, "
        f"value {ov['value_keep']:.3f}; refetch rate {ov['refetch_rate']:.3f}\n"
        f"reduction vs. no pruning: keys {ov['key_reduction']:.2f}x, values {ov['value_reduction']:.2f}x"
    )
    if out is not None:
        src = f"text:{Path(args.text).name if args.text else 'built-in'}" if real else f"seed{args.seed}"
        try:
            name = f"spatten-golden:{m.name}:{args.mode}:{src}"
            write_release_csv(r.trace, out, config_name=name, layout=args.layout)
        except OSError as e:  # the folder changed during the run
            raise ValueError(
                f"--out {str(out)!r}: cannot write there: {e.strerror or type(e).__name__}"
            ) from None
        print(f"wrote {out}")
    return 0


def _minilm_qkv(text_file: str | None):
    """Real per-layer Q/K/V of MiniLM for the text in ``text_file`` (None: the built-in text)."""
    from spatten.models.real_qkv import DEFAULT_TEXT, encode

    text = DEFAULT_TEXT
    if text_file is not None:
        p = Path(text_file)
        if not p.is_file():
            raise ValueError(f"--text {text_file!r} is not a readable file")
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"--text {text_file!r} is not UTF-8 text") from None
    r = encode(text)
    return (r.q, r.k, r.v), int(r.token_ids.size)
