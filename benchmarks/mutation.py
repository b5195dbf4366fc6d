"""Mutation check of the RTL: single-line mutants of ``rtl/`` run against the tests of their block.

Each mutant changes one line of one block: a comparison flipped (``<`` to ``<=``, ``>`` to ``>=``, ``==`` to
``!=`` and back), an arithmetic operator swapped (``+`` / ``-``), or a constant moved by one (``+ 1`` to
``+ 2``, ``- 1`` to ``- 2``, ``<< 1`` to ``<< 2``, a literal ``1`` to ``2`` in a width or bound).
Candidates are every such spot on a code line (not comments, docstrings or string literals: a ``+ 1``
inside an f-string only renames a signal) of the files in ``rtl/``; the check takes ``--mutants`` of them,
spread over the blocks with ``--seed``.

A mutant is written over its file, the tests of its block run (``tests/rtl/test_<block>_amaranth.py``, the
port-width and parameter-range tables ``tests/rtl/test_port_widths.py`` and ``test_params.py``, and
with ``--cosim`` also ``tests/cosim/test_<block>*.py`` under Verilator), and the file is put back (also on
Ctrl-C). A mutant is *killed* when a test fails or the run times out, *survives* when every test passes.
Byte-code caching is off for the runs and ``rtl/__pycache__`` is cleared around each, so a put-back file
never runs a mutant's stale byte code.

Prints one line per mutant and the surviving ones at the end; exit status 1 when any survives.

Run: ``.venv/bin/python benchmarks/mutation.py [--mutants 36] [--seed 0] [--cosim] [--list]``.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RTL = ROOT / "rtl"

# (pattern, replacement, label): applied once, at one match, on one code line
OPERATORS: tuple[tuple[str, str, str], ...] = (
    (r" < ", " <= ", "< to <="),
    (r" <= ", " < ", "<= to <"),
    (r" > ", " >= ", "> to >="),
    (r" >= ", " > ", ">= to >"),
    (r" == ", " != ", "== to !="),
    (r" != ", " == ", "!= to =="),
    (r" \+ 1\b", " + 2", "+ 1 to + 2"),
    (r" - 1\b", " - 2", "- 1 to - 2"),
    (r" \+ (?![12]\b)", " - ", "+ to -"),
    (r"<< 1\b", "<< 2", "<< 1 to << 2"),
    (r"\(1\)", "(2)", "(1) to (2)"),
)


@dataclass(frozen=True)
class Mutant:
    """One change: file, 1-based line, the operator and the match's column."""

    path: Path
    line: int
    column: int
    label: str
    original: str
    mutated: str

    @property
    def block(self) -> str:
        return self.path.stem


def _code_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) of the lines that hold code: no docstring or comment-only lines."""
    out, in_doc = [], False
    for i, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        quotes = s.count('"""')
        if in_doc:
            in_doc = quotes % 2 == 0
            continue
        if s.startswith('"""'):
            in_doc = quotes == 1
            continue
        if not s or s.startswith("#") or s.startswith(("import ", "from ")):
            continue
        out.append((i, line.split("  #")[0]))
    return out


def _string_spans(text: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions, (line, column), of the string literals in ``text``, f-strings whole."""
    spans, opened = [], []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        kind = tokenize.tok_name[tok.type]
        if kind == "STRING":
            spans.append((tok.start, tok.end))
        elif kind == "FSTRING_START":
            opened.append(tok.start)
        elif kind == "FSTRING_END":
            spans.append((opened.pop(), tok.end))
    return spans


def mutants_of(path: Path, text: str) -> list[Mutant]:
    """Every single-spot mutant of one file's ``text`` (one per operator match outside strings)."""
    out = []
    spans = _string_spans(text)
    for no, code in _code_lines(text):
        for pattern, repl, label in OPERATORS:
            for m in re.finditer(pattern, code):
                if any(a <= (no, m.start()) < b for a, b in spans):
                    continue
                spot = re.sub(pattern, repl, code[m.start() : m.end()])
                mutated = code[: m.start()] + spot + code[m.end() :]
                out.append(Mutant(path, no, m.start(), label, code.strip(), mutated.strip()))
    return out


def candidates() -> list[Mutant]:
    """Every single-spot mutant of the blocks in ``rtl/``."""
    out = []
    for path in sorted(RTL.glob("*.py")):
        if path.name not in ("__init__.py", "generate.py"):
            out += mutants_of(path, path.read_text())
    return out


def pick(all_mutants: list[Mutant], n: int, seed: int) -> list[Mutant]:
    """``n`` mutants spread evenly over the blocks (round robin over a seeded shuffle of each block's)."""
    rng = random.Random(seed)
    by_block: dict[str, list[Mutant]] = {}
    for m in all_mutants:
        by_block.setdefault(m.block, []).append(m)
    for ms in by_block.values():
        rng.shuffle(ms)
    out: list[Mutant] = []
    while len(out) < n and any(by_block.values()):
        for ms in by_block.values():
            if ms and len(out) < n:
                out.append(ms.pop())
    return out


#: Blocks tested through the block that contains them.
TESTED_IN = {"zero_eliminator": "topk"}


def tests_for(block: str, cosim: bool) -> list[str]:
    """The test files of a block: its Amaranth-simulator tests, and with ``cosim`` its Verilator ones."""
    block = TESTED_IN.get(block, block)
    # every block's port widths and parameter ranges are checked by hand-derived tables
    files = [ROOT / "tests" / "rtl" / "test_port_widths.py", ROOT / "tests" / "rtl" / "test_params.py"]
    files += sorted((ROOT / "tests" / "rtl").glob(f"test_{block}_amaranth.py"))
    if cosim:
        files += sorted((ROOT / "tests" / "cosim").glob(f"test_{block}*.py"))
    return [str(f.relative_to(ROOT)) for f in files]


def _clear_bytecode() -> None:
    shutil.rmtree(RTL / "__pycache__", ignore_errors=True)


def run(m: Mutant, cosim: bool, timeout: float) -> str:
    """``killed``, ``survived``, ``timeout`` or ``no tests`` for one mutant; the file is always restored."""
    tests = tests_for(m.block, cosim)
    if not tests:
        return "no tests"
    original = m.path.read_text()
    lines = original.splitlines(keepends=True)
    line = lines[m.line - 1]
    # the same single substitution on the file's line (its indentation and comment kept)
    pattern, repl = next((p, r) for p, r, label in OPERATORS if label == m.label)
    hit = re.compile(pattern).search(line, m.column)
    if hit is None or hit.start() != m.column:
        return "stale"
    new = line[: hit.start()] + re.sub(pattern, repl, line[hit.start() : hit.end()]) + line[hit.end() :]
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TQDM_DISABLE="1", MPLBACKEND="Agg")
    try:
        _clear_bytecode()
        m.path.write_text("".join([*lines[: m.line - 1], new, *lines[m.line :]]))
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
        try:
            r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return "timeout"
        return "survived" if r.returncode == 0 else "killed"
    finally:
        m.path.write_text(original)
        _clear_bytecode()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", type=int, default=36, help="mutants to run (default 36)")
    ap.add_argument("--seed", type=int, default=0, help="which mutants (default 0)")
    ap.add_argument("--cosim", action="store_true", help="also run each block's Verilator cosim tests")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per mutant (default 600)")
    ap.add_argument("--list", action="store_true", help="list the chosen mutants and stop")
    ap.add_argument("--only", metavar="I,J,...", help="run only these of the chosen mutants (their numbers)")
    args = ap.parse_args()
    chosen: list[Mutant | None] = list(pick(candidates(), args.mutants, args.seed))
    if args.only:
        keep = {int(x) for x in args.only.split(",")}
        chosen = [m if i in keep else None for i, m in enumerate(chosen)]
    print(f"{len(candidates())} candidate mutants in rtl/; running {len(chosen)} (seed {args.seed})")
    survivors = []
    for i, m in enumerate(chosen):
        if m is None:
            continue
        where = f"{m.path.name}:{m.line}"
        if args.list:
            print(f"{i:3d} {where:24s} {m.label:12s} {m.mutated[:70]}")
            continue
        t0 = time.perf_counter()
        verdict = run(m, args.cosim, args.timeout)
        took = time.perf_counter() - t0
        print(f"{i:3d} {where:24s} {m.label:12s} {verdict:9s} {took:6.1f} s  {m.mutated[:60]}", flush=True)
        if verdict == "survived":
            survivors.append((where, m.label, m.mutated))
    if args.list:
        return 0
    ran = sum(m is not None for m in chosen)
    print(f"\n{ran - len(survivors)} of {ran} mutants killed; {len(survivors)} survive:")
    for where, label, code in survivors:
        print(f"  {where:24s} {label:12s} {code}")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
