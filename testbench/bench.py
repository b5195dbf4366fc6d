"""What the cycle-exact benches (Q.K, softmax, value unit) share: parameters through the environment, payload
packing by the RTL's own layouts, and the per-cycle loop that steps a driver and a monitor.

The blocks' ports are ``lib.stream`` ports (``<port>__valid``, ``__ready``, ``__payload`` in the Verilog);
a payload is packed and unpacked with the block's layout (:func:`testbench.stream.pack` and ``unpack``),
so the field offsets are written once, in ``rtl/``. The benches step their driver and monitor in one
coroutine, each cycle: drive, ``ReadOnly``, sample, count the handshake, next edge. That keeps every
request's cycle count exact for the cycle checks.
"""

from __future__ import annotations

import os
from dataclasses import fields
from typing import Any, Protocol

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from spatten.testbench.stream import pack, unpack

__all__ = [
    "EnvParams",
    "Driver",
    "Monitor",
    "LaneMonitor",
    "BeatDriver",
    "pack_lanes",
    "unpack_lanes",
    "masked_lanes",
    "reset",
    "step_until",
]

CLOCK_NS = 10


class EnvParams:
    """A frozen dataclass's fields through environment variables (``ENV`` maps field -> variable).

    Tuples are written comma-separated; a field is read back as its default's type (a tuple's elements as
    its first element's), or by its annotation when the default is None (``int | None``, ``str | None``).
    """

    ENV: dict[str, str] = {}

    def env(self) -> dict[str, str]:
        """The bench's environment (fields left at None are not written)."""
        out = {}
        for f, var in self.ENV.items():
            v = getattr(self, f)
            if v is not None:
                out[var] = (
                    ",".join(map(str, v))
                    if isinstance(v, tuple)
                    else str(int(v) if isinstance(v, bool) else v)
                )
        return out

    @classmethod
    def from_env(cls) -> Any:
        """The parameters the environment describes (inside the simulator)."""
        spec = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
        out: dict[str, object] = {}
        for name, var in cls.ENV.items():
            v = os.environ.get(var)
            if not v:
                continue
            default = spec[name].default
            if isinstance(default, tuple):
                out[name] = tuple(type(default[0])(x) for x in v.split(","))
            elif isinstance(default, bool | int | float):
                out[name] = type(default)(float(v))  # a bool is written 0 / 1
            else:  # None default: the annotation names the type
                out[name] = int(v) if "int" in str(spec[name].type) else v
        return cls(**out)


def pack_lanes(values: Any, width: int) -> int:
    """Lane j's value (two's complement when negative) at bits [j*width, (j+1)*width)."""
    return sum((int(v) & ((1 << width) - 1)) << (i * width) for i, v in enumerate(values))


def masked_lanes(beat: dict[str, int], width: int, lanes: int, signed: bool = False) -> list[int]:
    """The live lanes (``mask``) of a lane beat's ``data`` (:func:`rtl.layouts.lane_beat`), in lane order."""
    vals = unpack_lanes(beat["data"], width, lanes, signed)
    return [v for j, v in enumerate(vals) if beat["mask"] >> j & 1]


def unpack_lanes(raw: int, width: int, lanes: int, signed: bool = True) -> list[int]:
    """The ``lanes`` values of ``width`` bits packed in ``raw``, sign-extended when ``signed``."""
    out = []
    for j in range(lanes):
        x = (raw >> (j * width)) & ((1 << width) - 1)
        out.append(x - (1 << width) if signed and x >> (width - 1) else x)
    return out


class BeatDriver:
    """Offers ``beats`` (payload dicts for ``layout``) in order on stream port ``port``, valid low with
    probability ``idle`` in a cycle; a subclass's ``load`` fills ``beats`` and may override
    :meth:`accepted`."""

    def __init__(self, dut, port: str, layout: Any, idle: float, rng: Any) -> None:
        self.layout, self.idle, self.rng = layout, idle, rng
        self.valid_port = getattr(dut, f"{port}__valid")
        self.ready_port = getattr(dut, f"{port}__ready")
        self.payload_port = getattr(dut, f"{port}__payload")
        self.beats: list[dict[str, int]] = []
        self.sent = 0
        self.valid = False

    def drive(self) -> None:
        """Before the cycle's sampling: the next beat on the port, valid unless idle."""
        self.valid = self.sent < len(self.beats) and self.rng.random() >= self.idle
        if self.sent < len(self.beats):
            self.payload_port.value = pack(self.layout, self.beats[self.sent])
        self.valid_port.value = int(self.valid)

    def handshake(self, cycle: int) -> None:
        """In ReadOnly: count the beat the block accepted."""
        if self.valid and self.ready_port.value == 1:
            self.accepted(cycle)
            self.sent += 1

    def accepted(self, cycle: int) -> None:
        """Beat ``self.sent`` was accepted in ``cycle``."""

    def stop(self) -> None:
        self.valid_port.value = 0


class Driver(Protocol):
    def drive(self) -> None: ...  # put this cycle's beat (and valid) on the ports
    def handshake(self, cycle: int) -> None: ...  # in ReadOnly: count what the block accepted
    def stop(self) -> None: ...


class Monitor(Protocol):
    def drive(self) -> None: ...  # this cycle's ready
    def sample(self) -> None: ...  # in ReadOnly: take an output beat
    def done(self) -> bool: ...


class LaneMonitor:
    """Takes beats on stream port ``port`` (ready low with probability ``stall``) until one carries ``last``,
    collecting what :meth:`lanes` decodes from each beat's fields (``layout``: the port's payload layout)."""

    def __init__(self, dut, port: str, layout: Any, stall: float, rng: Any) -> None:
        self.dut, self.layout, self.stall, self.rng = dut, layout, stall, rng
        self.valid = getattr(dut, f"{port}__valid")
        self.ready = getattr(dut, f"{port}__ready")
        self.payload = getattr(dut, f"{port}__payload")
        self.got: list[int] = []
        self.last = False

    def start(self) -> None:
        self.got, self.last = [], False

    def drive(self) -> None:
        self.ready.value = int(self.rng.random() >= self.stall)

    def done(self) -> bool:
        return self.last

    def sample(self) -> None:
        if self.valid.value == 1 and self.ready.value == 1:
            beat = unpack(self.layout, int(self.payload.value))
            self.got += self.lanes(beat)
            self.last = beat["last"] == 1

    def lanes(self, beat: dict[str, int]) -> list[int]:
        """The values of a beat (its fields' raw bits): its masked lanes."""
        raise NotImplementedError


async def reset(dut, low: tuple[str, ...]) -> None:
    """Start the clock, hold reset one cycle with the ``low`` ports (valids, readies) at 0."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    dut.rst.value = 1
    for name in low:
        getattr(dut, name).value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0


async def step_until(dut, driver: Driver, monitor: Monitor, budget: int, what: str) -> int:
    """Step ``driver`` and ``monitor`` a cycle at a time until the monitor is done; returns the cycles.

    Raises AssertionError naming ``what`` after ``budget`` cycles.
    """
    cycles = 0
    while not monitor.done():
        if cycles > budget:
            raise AssertionError(f"{what}: timeout after {budget} cycles")
        driver.drive()
        monitor.drive()
        await ReadOnly()
        monitor.sample()
        driver.handshake(cycles)
        await RisingEdge(dut.clk)
        cycles += 1
    driver.stop()
    return cycles
