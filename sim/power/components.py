"""Per-action energy, leakage and area of every SpAtten hardware unit, from the hwcomponents models.

Each unit of the accelerator (multiplier arrays, adder trees, softmax lanes, top-k comparators, zero
eliminators and FIFOs, K/V SRAM banks, fetcher address generators and crossbars, HBM2) is built from
the field's component models at the requested technology node:

* ``hwcomponents_library`` Aladdin models (Shao et al., ISCA 2014; 40 nm characterisation, scaled by
  width and by the Stillmaker-Baas technology equations) for multipliers, adders, comparators and
  registers;
* ``hwcomponents_cacti`` (CACTI) for SRAMs and FIFOs at their real width, depth and bank count, and its
  HBM2 model (pJ per bit) for DRAM;
* ``hwcomponents_library.Wire`` for crossbar wires.

Where those packages have no model, the unit is built from ones they have, and every constant says
where it comes from: the exponential is a 5th-order Taylor polynomial in Horner form (SpAtten paper),
i.e. 5 multiplies and 5 adds; a divider is a restoring array divider (one adder per quotient bit);
a crossbar is one 2:1 multiplexer per input, output and bit at the Nangate 45 nm MUX2_X1 area (see
:mod:`sim.power.synth`) with each bit charged one ``Wire`` as long as the crossbar's side; every
arithmetic result is registered (one Aladdin register per unit output, the pipelined datapath of
the release latency model). Modelling choices without a published value are named constants below
(softmax/top-k word width, address width).

CACTI results are cached on disk (``$SPATTEN_CACHE_DIR`` or ``~/.cache/spatten/cacti``), keyed by the
memory geometry, node and package version, so a sweep pays for each distinct memory once; everything
is also memoised in-process per (accelerator, node).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from spatten.models.config import AcceleratorConfig

__all__ = [
    "TECH_NM_RANGE",
    "MODULES",
    "Unit",
    "UnitTable",
    "check_tech_nm",
    "unit_table",
    "sram_cost",
    "cache_dir",
    "softmax_bits",
]

# CACTI's technology tables in hwcomponents-cacti cover 22..90 nm (outside they extrapolate).
TECH_NM_RANGE = (22, 90)
# Modules of the breakdown, in report order.
MODULES = ("Q.K", "softmax", "top-k", "prob.V", "SRAM", "DRAM", "fetcher")
# CACTI geometry range we accept for one memory instance (bits per access, rows, total bits).
SRAM_WIDTH_RANGE = (8, 8192)
SRAM_DEPTH_RANGE = (1, 1 << 20)
SRAM_BITS_RANGE = (
    8,
    64 * 8 * (1 << 20),
)  # up to 64 MiB (hwcomponents scales small ones from CACTI's minimum)
# SpAtten paper, section on softmax: exp is evaluated by a 5th-order Taylor expansion (Horner form:
# one multiply and one add per order).
EXP_TAYLOR_ORDER = 5
# Nangate 45 nm Open Cell Library, MUX2_X1 cell area in um^2 (library databook), used for crossbars.
MUX2_UM2_45NM = 1.862
# DRAM address width carried by the fetcher's address crossbar (byte address of an HBM2 stack).
ADDRESS_BITS = 32
# Bits of one HBM2 channel's data bus per beat (JESD235: 128-bit channel).
HBM2_CHANNEL_BITS = 128


@dataclass(frozen=True)
class Unit:
    """One kind of hardware unit: per-instance costs and how many instances the chip has.

    Attributes
    ----------
    name : str
        Dotted unit name, e.g. ``"qk.multiplier"``.
    module : str
        Module of the breakdown (one of :data:`MODULES`).
    count : int
        Instances on the chip.
    energy_j : dict[str, float]
        Energy in joules of one action of one instance, by action name.
    leak_w : float
        Leakage power of one instance in watts.
    area_mm2 : float
        Area of one instance in mm^2.
    model : str
        The component model the numbers come from.
    """

    name: str
    module: str
    count: int
    energy_j: dict[str, float]
    leak_w: float
    area_mm2: float
    model: str

    @property
    def total_area_mm2(self) -> float:
        """Area of all instances."""
        return self.count * self.area_mm2

    @property
    def total_leak_w(self) -> float:
        """Leakage of all instances."""
        return self.count * self.leak_w


@dataclass(frozen=True)
class UnitTable:
    """All units of one accelerator at one node, plus the per-action energies the energy model uses.

    Attributes
    ----------
    units : dict[str, Unit]
        Units by name.
    action_energy_j : dict[str, dict[str, float]]
        For each simulator action, its energy in joules split by module (one action may touch
        several modules, e.g. a DRAM bit also crosses the fetcher's data crossbar).
    tech_nm : int
        Technology node.
    """

    units: dict[str, Unit]
    action_energy_j: dict[str, dict[str, float]]
    tech_nm: int


def check_tech_nm(tech_nm: object) -> int:
    """Validate a technology node in nm; return it.

    Raises
    ------
    TypeError, ValueError
        Not an integer, or outside :data:`TECH_NM_RANGE`.
    """
    lo, hi = TECH_NM_RANGE
    if isinstance(tech_nm, bool) or not isinstance(tech_nm, int):
        raise TypeError(f"tech_nm must be an integer number of nm, got {tech_nm!r}")
    if not lo <= tech_nm <= hi:
        raise ValueError(
            f"tech_nm = {tech_nm} is outside the allowed range {lo}..{hi} (CACTI's technology tables)"
        )
    return tech_nm


def softmax_bits(accel: AcceleratorConfig) -> int:
    """Word width of the softmax, top-k and importance datapath.

    Scores leave Q.K as sums of ``head_dim`` products of two ``datapath_bits`` words; the softmax and
    the top-k work on them at twice the datapath width (24 bits for the 12-bit release datapath), a
    fixed-point stand-in for the paper's floating-point softmax.
    """
    return 2 * accel.datapath_bits


def cache_dir() -> Path:
    """Folder of the on-disk CACTI cache (``$SPATTEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/spatten/cacti``)."""
    env = os.environ.get("SPATTEN_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spatten" / "cacti"


def _check_geometry(field: str, what: str, width: int, depth: int) -> None:
    wl, wh = SRAM_WIDTH_RANGE
    dl, dh = SRAM_DEPTH_RANGE
    bl, bh = SRAM_BITS_RANGE
    bits = width * depth
    if not (wl <= width <= wh and dl <= depth <= dh and bl <= bits <= bh):
        raise ValueError(
            f"{field} gives a {what} of {width} bits x {depth} rows ({bits} bits), outside CACTI's range: "
            f"width {wl}..{wh} bits, depth {dl}..{dh} rows, size {bl}..{bh} bits"
        )


def sram_cost(width: int, depth: int, tech_nm: int, field: str = "memory", what: str = "memory") -> dict:
    """CACTI read/write energy, leakage and area of one single-port SRAM of ``width`` x ``depth`` bits.

    Parameters
    ----------
    width, depth : int
        Bits per access and rows.
    tech_nm : int
        Technology node in nm (22..90).
    field, what : str
        Config field and memory name used in the error message when the geometry is out of range.

    Returns
    -------
    dict
        ``read_j``, ``write_j`` (per access of ``width`` bits), ``leak_w``, ``area_mm2``.

    Raises
    ------
    ValueError
        Geometry outside CACTI's range, or CACTI failed.
    """
    check_tech_nm(tech_nm)
    _check_geometry(field, what, width, depth)
    version = importlib.metadata.version("hwcomponents-cacti")
    key = f"sram-w{width}-d{depth}-t{tech_nm}-v{version}"
    path = cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key:
            return data["cost"]
    except (OSError, ValueError, KeyError):
        pass
    cost = _run_cacti(width, depth, tech_nm, field, what)
    _atomic_json(path, {"key": key, "cost": cost})
    return cost


def _run_cacti(width: int, depth: int, tech_nm: int, field: str, what: str) -> dict:
    from hwcomponents_cacti import SRAM
    from spatten.sim.power.cacti_build import ensure_cacti

    ensure_cacti(verbose=False)
    try:
        s = SRAM(tech_node=tech_nm * 1e-9, width=width, size=width * depth)
        read, write = s.read().energy, s.write().energy
    except Exception as e:  # CACTI reports failures as bare Exceptions/asserts
        raise ValueError(f"{field}: CACTI could not model the {what} ({width} x {depth}): {e}") from None
    return {"read_j": read, "write_j": write, "leak_w": s.leak_power, "area_mm2": s.area * 1e6}


def _logic(cls, tech_nm: int, **kw):
    """Instantiate a hwcomponents logic model at ``tech_nm`` nm (the models take metres)."""
    return cls(tech_node=tech_nm * 1e-9, **kw)


def _unit_from_model(name, module, count, model, actions: dict[str, float], label) -> Unit:
    return Unit(name, module, count, actions, model.leak_power, model.area * 1e6, label)


@functools.lru_cache(maxsize=1)
def _model_stamp() -> str:
    """Identity of the model packages and of this file: a cached table is stale when either changes.

    The packages are identified by size and mtime of their model sources (found without importing
    them; ``importlib.metadata`` costs tens of ms per lookup, more than the energy computation).
    """
    import importlib.util

    parts = []
    for pkg, rel in (
        ("hwcomponents", "model.py"),
        ("hwcomponents_cacti", "hwcomponents_cacti.py"),
        ("hwcomponents_library", "library/aladdin.py"),
    ):
        spec = importlib.util.find_spec(pkg)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{pkg} is not installed (pip install {pkg.replace('_', '-')})")
        st = (Path(spec.origin).parent / rel).stat()
        parts.append(f"{pkg}:{st.st_size}:{st.st_mtime_ns}")
    parts.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest())
    return "|".join(parts)


@functools.lru_cache(maxsize=64)
def unit_table(accel: AcceleratorConfig, tech_nm: int = 40) -> UnitTable:
    """Build every unit of ``accel`` at ``tech_nm`` nm and the per-action energy map.

    The table is cached in memory and on disk (next to the CACTI results, keyed by the accelerator,
    the node, the model package versions and this module's source), so a process that has the disk
    cache warm does not even import the model packages.

    Parameters
    ----------
    accel : AcceleratorConfig
        Hardware parameters (multiplier counts, widths, SRAM bytes, channels, lanes).
    tech_nm : int
        Technology node in nm, 22..90 (default 40, the paper's TSMC 40 nm).

    Returns
    -------
    UnitTable

    Raises
    ------
    ValueError
        Bad node, or a memory whose geometry is outside CACTI's range (message names the field).
    """
    if not isinstance(accel, AcceleratorConfig):
        raise TypeError(f"accel must be an AcceleratorConfig, got {type(accel).__name__}")
    check_tech_nm(tech_nm)
    key = f"table|{accel!r}|{tech_nm}|{_model_stamp()}"
    path = cache_dir() / ("table-" + hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")
    try:
        data = json.loads(path.read_text())
        if data.get("key") == key:
            units = {n: Unit(**u) for n, u in data["units"].items()}
            return UnitTable(units, data["action_energy_j"], tech_nm)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    table = _build_table(accel, tech_nm)
    payload = {
        "key": key,
        "units": {n: dataclasses.asdict(u) for n, u in table.units.items()},
        "action_energy_j": table.action_energy_j,
    }
    _atomic_json(path, payload)
    return table


def _atomic_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f)
    os.replace(tmp, path)  # atomic: concurrent writers race harmlessly to the same content


def _build_table(accel: AcceleratorConfig, tech_nm: int) -> UnitTable:
    """Instantiate the component models for every unit (see :func:`unit_table`)."""
    from hwcomponents_cacti import HBM2
    from hwcomponents_library import (
        AladdinAdder,
        AladdinComparator,
        AladdinMultiplier,
        AladdinRegister,
        Wire,
    )

    dp = accel.datapath_bits
    d = accel.head_dim
    sw = softmax_bits(accel)
    kpc, vpc = accel.keys_per_cycle, accel.values_per_cycle
    row_bits = d * dp  # one key or value vector
    # Tokens one K (or V) SRAM holds per buffer (double buffered, SPATTEN.md: 2 x 1024 x 64 x 12 bit).
    tokens = max(1, accel.kv_sram_bytes * 8 // (2 * row_bits))
    tree_width = 2 * dp + math.ceil(math.log2(max(2, d)))
    acc_width = 2 * dp + math.ceil(math.log2(max(2, tokens)))
    u: dict[str, Unit] = {}

    def reg_bits_j(bits: int) -> float:
        """Write + read energy of a ``bits``-wide pipeline register (result registered every stage)."""
        r = _logic(AladdinRegister, tech_nm, width=bits)
        return r.write().energy + r.read().energy

    def reg_area_mm2(bits: int) -> float:
        return _logic(AladdinRegister, tech_nm, width=bits).area * 1e6

    def add(name, module, count, model, actions, label, reg_bits=0):
        """A logic unit whose result is registered: register energy per action and area per instance."""
        e = {a: v + (reg_bits_j(reg_bits) if reg_bits else 0.0) for a, v in actions.items()}
        unit = _unit_from_model(name, module, count, model, e, label)
        if reg_bits:
            unit = Unit(
                unit.name, module, count, e, unit.leak_w, unit.area_mm2 + reg_area_mm2(reg_bits), label
            )
        u[name] = unit

    # --- K and V SRAMs: one bank per key (value) lane so a lane reads a whole vector per cycle -------
    for kind, lanes in (("k", kpc), ("v", vpc)):
        depth = accel.kv_sram_bytes * 8 // (lanes * row_bits)
        c = sram_cost(row_bits, depth, tech_nm, "accelerator.kv_sram_bytes", f"{kind.upper()} SRAM bank")
        u[f"{kind}_sram"] = Unit(
            f"{kind}_sram",
            "SRAM",
            lanes,
            {"read_bit": c["read_j"] / row_bits, "write_bit": c["write_j"] / row_bits},
            c["leak_w"],
            c["area_mm2"],
            "CACTI SRAM",
        )

    # --- Q.K: multiplier array, one adder tree per key lane, the query held in registers -------------
    mul = _logic(AladdinMultiplier, tech_nm, width=dp)
    add(
        "qk.multiplier",
        "Q.K",
        accel.qk_multipliers,
        mul,
        {"op": mul.multiply().energy},
        "AladdinMultiplier",
        2 * dp,
    )
    tree = _logic(AladdinAdder, tech_nm, width=tree_width)
    add("qk.adder", "Q.K", kpc * (d - 1), tree, {"op": tree.add().energy}, "AladdinAdder", tree_width)
    qreg = _logic(AladdinRegister, tech_nm, width=row_bits)
    u["qk.query_reg"] = Unit(
        "qk.query_reg",
        "Q.K",
        1,
        {"read_bit": qreg.read().energy / row_bits},
        qreg.leak_power,
        qreg.area * 1e6,
        "AladdinRegister",
    )

    # --- softmax: per key lane, Horner exp, accumulate, array divider; PQ max-probability check ------
    smul = _logic(AladdinMultiplier, tech_nm, width=sw)
    sadd = _logic(AladdinAdder, tech_nm, width=sw)
    exp_e = EXP_TAYLOR_ORDER * (smul.multiply().energy + sadd.add().energy)
    u["softmax.exp"] = Unit(
        "softmax.exp",
        "softmax",
        kpc,
        {"op": exp_e + reg_bits_j(sw)},
        EXP_TAYLOR_ORDER * (smul.leak_power + sadd.leak_power),
        EXP_TAYLOR_ORDER * (smul.area + sadd.area) * 1e6 + reg_area_mm2(sw),
        "Aladdin mul+add x Taylor order",
    )
    add("softmax.adder", "softmax", kpc, sadd, {"op": sadd.add().energy}, "AladdinAdder", sw)
    # A restoring array divider is sw rows of an sw-bit subtractor (one adder each).
    u["softmax.divider"] = Unit(
        "softmax.divider",
        "softmax",
        kpc,
        {"op": sw * sadd.add().energy + reg_bits_j(sw)},
        sw * sadd.leak_power,
        sw * sadd.area * 1e6 + reg_area_mm2(sw),
        "AladdinAdder x width (array divider)",
    )
    cmp_s = _logic(AladdinComparator, tech_nm, width=sw)
    add("softmax.pq_comparator", "softmax", kpc, cmp_s, {"op": cmp_s.compare().energy}, "AladdinComparator")

    # --- top-k: P comparators, two zero eliminators, greater/less FIFOs -----------------------------
    p = accel.topk_parallelism
    lg = max(1, math.ceil(math.log2(max(2, p))))
    add("topk.comparator", "top-k", p, cmp_s, {"op": cmp_s.compare().energy}, "AladdinComparator", sw)
    # Zero eliminator: a prefix count of zeros (lg-bit adder per lane) and lg shift rounds whose
    # outputs are registered; an element passes one eliminator per comparison.
    zadd = _logic(AladdinAdder, tech_nm, width=lg + 1)
    zreg = _logic(AladdinRegister, tech_nm, width=lg * sw)
    u["topk.zero_eliminator"] = Unit(
        "topk.zero_eliminator",
        "top-k",
        2 * p,
        {"op": zadd.add().energy + reg_bits_j(lg * sw)},
        zadd.leak_power + zreg.leak_power,
        (zadd.area + zreg.area) * 1e6,
        "AladdinAdder + AladdinRegister",
    )
    fifo_depth = max(1, math.ceil(tokens / p))
    fifo = sram_cost(p * sw, fifo_depth, tech_nm, "accelerator.topk_parallelism", "top-k FIFO")
    per_elem = (fifo["read_j"] + fifo["write_j"]) / p  # an element is written once and read once
    u["topk.fifo"] = Unit(
        "topk.fifo", "top-k", 2, {"op": per_elem}, fifo["leak_w"], fifo["area_mm2"], "CACTI SRAM"
    )

    # --- prob.V: multiplier array; adder per multiplier (tree across rows + accumulator) -------------
    add(
        "pv.multiplier",
        "prob.V",
        accel.pv_multipliers,
        mul,
        {"op": mul.multiply().energy},
        "AladdinMultiplier",
        2 * dp,
    )
    acc = _logic(AladdinAdder, tech_nm, width=acc_width)
    add("pv.adder", "prob.V", accel.pv_multipliers, acc, {"op": acc.add().energy}, "AladdinAdder", acc_width)

    # --- DRAM: HBM2 energy per bit ------------------------------------------------------------------
    hbm = HBM2()  # the model's energy is per bit; its width only sets the nominal access size
    u["dram"] = Unit(
        "dram", "DRAM", 1, {"bit": hbm.read().energy / hbm.width}, 0.0, 0.0, "hwcomponents_cacti HBM2"
    )

    # --- fetcher: address generators, address and data crossbars, per-channel response FIFOs -------
    ch, lanes_f = accel.hbm_channels, accel.fetcher_lanes
    agen = _logic(AladdinAdder, tech_nm, width=ADDRESS_BITS)
    add(
        "fetcher.address_gen",
        "fetcher",
        lanes_f,
        agen,
        {"op": agen.add().energy},
        "AladdinAdder",
        ADDRESS_BITS,
    )
    mux_mm2 = MUX2_UM2_45NM * 1e-6 * _area_scale(tech_nm)
    data_bits = int(round(accel.bytes_per_channel_cycle * 8))
    for name, n_in, n_out, width, action in (
        ("fetcher.address_xbar", lanes_f, ch, ADDRESS_BITS, "transaction"),
        ("fetcher.data_xbar", ch, lanes_f, data_bits, "bit"),
    ):
        area = max(1, n_in - 1) * n_out * width * mux_mm2
        # A bit crosses the crossbar once: one wire as long as the crossbar's side.
        wire = Wire(length=math.sqrt(area) * 1e-3, tech_node=tech_nm * 1e-9)
        e_bit = wire.read().energy
        u[name] = Unit(
            name,
            "fetcher",
            1,
            {action: e_bit * (width if action == "transaction" else 1)},
            0.0,
            area,
            "Nangate MUX2_X1 area + hwcomponents Wire",
        )
    fdepth = max(2, accel.max_outstanding * accel.transaction_bytes * 8 // max(1, data_bits))
    ff = sram_cost(data_bits, fdepth, tech_nm, "accelerator.max_outstanding", "fetcher response FIFO")
    u["fetcher.fifo"] = Unit(
        "fetcher.fifo",
        "fetcher",
        ch,
        {"bit": (ff["read_j"] + ff["write_j"]) / data_bits},
        ff["leak_w"],
        ff["area_mm2"],
        "CACTI SRAM",
    )

    e = {n: x.energy_j for n, x in u.items()}
    dram_bit = {"DRAM": e["dram"]["bit"], "fetcher": e["fetcher.data_xbar"]["bit"] + e["fetcher.fifo"]["bit"]}
    action_energy = {
        "qk_mul": {"Q.K": e["qk.multiplier"]["op"] + dp * e["qk.query_reg"]["read_bit"]},
        "qk_add": {"Q.K": e["qk.adder"]["op"]},
        "pv_mul": {"prob.V": e["pv.multiplier"]["op"]},
        "pv_add": {"prob.V": e["pv.adder"]["op"]},
        "softmax_exp": {"softmax": e["softmax.exp"]["op"]},
        "softmax_div": {"softmax": e["softmax.divider"]["op"]},
        "softmax_add": {"softmax": e["softmax.adder"]["op"]},
        "pq_compare": {"softmax": e["softmax.pq_comparator"]["op"]},
        "topk_compare": {
            "top-k": e["topk.comparator"]["op"] + e["topk.zero_eliminator"]["op"] + e["topk.fifo"]["op"]
        },
        "k_sram_read_bits": {"SRAM": e["k_sram"]["read_bit"]},
        "k_sram_write_bits": {"SRAM": e["k_sram"]["write_bit"]},
        "v_sram_read_bits": {"SRAM": e["v_sram"]["read_bit"]},
        "v_sram_write_bits": {"SRAM": e["v_sram"]["write_bit"]},
        "dram_bits_q": dram_bit,
        "dram_bits_k_msb": dram_bit,
        "dram_bits_k_lsb": dram_bit,
        "dram_bits_v": dram_bit,
        "dram_bits_state": dram_bit,
        "dram_transactions": {
            "fetcher": e["fetcher.address_gen"]["op"] + e["fetcher.address_xbar"]["transaction"]
        },
    }
    return UnitTable(u, action_energy, tech_nm)


def _area_scale(tech_nm: int) -> float:
    """Area factor from 45 nm (the Nangate library's node) to ``tech_nm`` (Stillmaker-Baas)."""
    from hwcomponents.scaling.techscaling import tech_node_area

    return tech_node_area(tech_nm * 1e-9, 45e-9)
