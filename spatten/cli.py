"""The `spatten` console script.

Each subcommand lives in its own module ``spatten/cmd_<name>.py`` exposing ``register(subparsers)``,
which adds a parser whose ``func(args) -> int`` does the work. Errors from bad input (``ValueError``,
``TypeError``, :class:`UsageError`) are printed as one line on stderr and exit with status 2; no
command leaves a partial output file behind (outputs are written through :mod:`spatten.output`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from spatten import __version__

# Subcommand modules, in the order `spatten --help` lists them.
COMMANDS: list[str] = [
    "demo",
    "trace",
    "sweep",
    "simulate",
    "models",
    "dram",
    "timing",
    "accuracy",
    "compare",
    "reproduce",
    "area",
    "verilog",
    "verify",
]


class UsageError(Exception):
    """Bad command-line input; printed as one line, exit status 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line on stderr and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand registered."""
    parser = OneLineParser(
        prog="spatten",
        description="SpAtten co-design: golden models, cycle-approximate simulation, RTL generation and "
        "verification.",
    )
    parser.add_argument("--version", action="version", version=f"spatten {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"spatten.cmd_{name.replace('-', '_')}").register(sub)
    from spatten.models.limits import parse_size

    def size(text: str) -> int:
        try:
            return parse_size(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    for p in sub.choices.values():  # every command: the resource guard's limit (models/limits.py)
        p.add_argument(
            "--max-memory",
            type=size,
            metavar="SIZE",
            help="refuse work estimated to need more memory than SIZE (e.g. 8G; default 2G or "
            "$SPATTEN_MAX_MEMORY)",
        )
    return parser


#: Commands whose ``--out`` is one file; every other command's ``--out`` is a folder.
FILE_OUTPUTS = frozenset({"trace"})


def _check_out(args: argparse.Namespace) -> None:
    """Refuse an output location that cannot take the command's output before the command does any work
    (one line, nothing made): every command, so a new one cannot skip it."""
    from spatten.output import check_dir_target, check_file_target

    out = getattr(args, "out", None)
    if out:
        (check_file_target if args.command in FILE_OUTPUTS else check_dir_target)(out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from spatten.models.limits import set_max_memory

    try:
        set_max_memory(args.max_memory)
        _check_out(args)
        return int(args.func(args) or 0)
    except (UsageError, ValueError, TypeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        sys.stderr.write(f"spatten {args.command}: error: {msg}\n")
        return 2
    except BrokenPipeError:  # output piped into `head` and closed early
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("spatten: interrupted\n")
        return 130
