"""Generic cocotb helpers for Amaranth ``lib.stream`` ports: a driver, a monitor and a cycle clock.

A stream port ``x`` of an Amaranth component becomes the Verilog ports ``x__valid``, ``x__ready`` and
``x__payload`` (a struct payload is one flat vector, its first field in the LSBs). The classes here bind
to those by prefix (``"x__"``) and convert payloads to and from plain dicts with the component's own
``amaranth.lib.data`` layout, so a testbench never hard-codes bit positions.

Timing discipline (cocotb 2.x): signals are written right after a rising edge, sampled in ``ReadOnly``;
a beat moves at the edge that ends a cycle in which ``valid`` and ``ready`` were both high. Cycle
numbers come from one shared :class:`CycleClock` so the stamps of different ports are comparable.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cocotb
from cocotb.triggers import Event, FallingEdge, ReadOnly, RisingEdge

__all__ = ["pack", "unpack", "CycleClock", "Beat", "StreamDriver", "StreamMonitor", "LevelProbe"]


def _fields(layout: Any) -> list[tuple[str, int, int, bool]]:
    """(name, offset, width, signed) of every field of an ``amaranth.lib.data`` struct layout."""
    from amaranth import Shape

    out = []
    for name, fld in layout:
        shape = Shape.cast(fld.shape)
        out.append((name, fld.offset, shape.width, shape.signed))
    return out


def pack(layout: Any, value: Mapping[str, int] | int) -> int:
    """Flatten a payload: a dict of field values (missing fields are 0) or an int passed through."""
    if layout is None or isinstance(value, int):
        return int(value)  # type: ignore[arg-type]
    fields = _fields(layout)
    unknown = set(value) - {f[0] for f in fields}
    if unknown:
        raise ValueError(
            f"payload has unknown fields {sorted(unknown)}; layout fields are {[f[0] for f in fields]}"
        )
    word = 0
    for name, offset, width, signed in fields:
        v = int(value.get(name, 0))
        lo, hi = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if signed else (0, (1 << width) - 1)
        if not lo <= v <= hi:
            raise ValueError(f"payload field {name} = {v} is outside the allowed range {lo}..{hi}")
        word |= (v & ((1 << width) - 1)) << offset
    return word


def unpack(layout: Any, word: int) -> dict[str, int] | int:
    """Split a flat payload into a dict of field values (signed fields sign-extended)."""
    if layout is None:
        return word
    out = {}
    for name, offset, width, signed in _fields(layout):
        v = (word >> offset) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        out[name] = v
    return out


class CycleClock:
    """Cycle numbers from simulation time: ``now`` = time / period (clock edges at multiples of it).

    No coroutine runs per cycle; the drivers and monitors below also sleep on value-change triggers
    whenever nothing can happen (empty queue, ``ready`` low, ``valid`` low), which keeps cocotb's cost
    to the cycles in which beats actually move.
    """

    def __init__(self, clk: Any, period_ns: float) -> None:
        if period_ns <= 0:
            raise ValueError(f"period_ns = {period_ns} must be positive")
        self.clk = clk
        self.period_ns = period_ns

    @property
    def now(self) -> int:
        """The current cycle (the one that began at the latest rising edge)."""
        from cocotb.utils import get_sim_time

        return int(get_sim_time("ns") // self.period_ns)

    def start(self) -> None:
        """Nothing to start (kept so every part of a testbench has the same interface)."""


@dataclass(frozen=True)
class Beat:
    """One transferred beat: the cycle of its handshake and its payload."""

    cycle: int
    payload: Mapping[str, int] | int


class _Bound:
    def __init__(self, dut: Any, prefix: str, layout: Any, clock: CycleClock) -> None:
        self.valid = getattr(dut, f"{prefix}valid")
        self.ready = getattr(dut, f"{prefix}ready")
        self.payload = getattr(dut, f"{prefix}payload")
        self.layout = layout
        self.clock = clock


class StreamDriver(_Bound):
    """Sends queued payloads on an input stream, inserting idle cycles with probability ``idle``.

    Parameters
    ----------
    dut : cocotb handle
        The toplevel.
    prefix : str
        Port prefix, e.g. ``"i__"``.
    layout : amaranth.lib.data.StructLayout or None
        Payload layout (None: payloads are plain ints).
    clock : CycleClock
        Shared cycle counter.
    idle : float
        Probability, 0..1 (exclusive of 1), of holding ``valid`` low in a cycle with data waiting.
    rng : random.Random, optional
        Source of the idle pattern (deterministic per seed).
    on_beat : callable, optional
        Called with each :class:`Beat` as it is accepted.
    """

    def __init__(
        self,
        dut: Any,
        prefix: str,
        layout: Any,
        clock: CycleClock,
        *,
        idle: float = 0.0,
        rng: random.Random | None = None,
        on_beat: Callable[[Beat], None] | None = None,
    ) -> None:
        super().__init__(dut, prefix, layout, clock)
        if not 0.0 <= idle < 1.0:
            raise ValueError(f"idle = {idle} is outside the allowed range [0, 1)")
        self.idle = idle
        self.rng = rng or random.Random(0)
        self.on_beat = on_beat
        self.queue: deque[Mapping[str, int] | int] = deque()
        self.sent: list[Beat] = []
        self._wake = Event()
        self.valid.value = 0

    def send(self, payload: Mapping[str, int] | int) -> None:
        """Queue one beat."""
        self.queue.append(payload)
        self._wake.set()

    def start(self) -> None:
        """Run the driver loop in the background."""
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        clk = self.clock.clk
        while True:
            if not self.queue:
                self.valid.value = 0
                self._wake.clear()
                await self._wake.wait()
                await RisingEdge(clk)
                continue
            offer = self.idle == 0.0 or self.rng.random() >= self.idle
            if offer:
                self.payload.value = pack(self.layout, self.queue[0])
            self.valid.value = int(offer)
            await ReadOnly()
            if offer and self.ready.value != 1 and self.idle == 0.0:
                # hold the beat and sleep until the sink becomes ready (inputs change only at edges)
                await RisingEdge(self.ready)
                await ReadOnly()
            if offer and self.ready.value == 1:
                beat = Beat(self.clock.now, self.queue.popleft())
                self.sent.append(beat)
                if self.on_beat is not None:
                    self.on_beat(beat)
            await RisingEdge(clk)


class StreamMonitor(_Bound):
    """Drives ``ready`` on an output stream (low with probability ``backpressure``) and records every beat.

    Parameters are as for :class:`StreamDriver`, with ``backpressure`` in [0, 1) instead of ``idle``.
    """

    def __init__(
        self,
        dut: Any,
        prefix: str,
        layout: Any,
        clock: CycleClock,
        *,
        backpressure: float = 0.0,
        rng: random.Random | None = None,
        on_beat: Callable[[Beat], None] | None = None,
    ) -> None:
        super().__init__(dut, prefix, layout, clock)
        if not 0.0 <= backpressure < 1.0:
            raise ValueError(f"backpressure = {backpressure} is outside the allowed range [0, 1)")
        self.backpressure = backpressure
        self.rng = rng or random.Random(0)
        self.on_beat = on_beat
        self.received: list[Beat] = []
        self.ready.value = 0

    def start(self) -> None:
        """Run the monitor loop in the background."""
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        clk = self.clock.clk
        while True:
            rdy = self.backpressure == 0.0 or self.rng.random() >= self.backpressure
            self.ready.value = int(rdy)
            await ReadOnly()
            if rdy and self.valid.value != 1 and self.backpressure == 0.0:
                await RisingEdge(self.valid)  # nothing to take until the source offers a beat
                await ReadOnly()
            if rdy and self.valid.value == 1:
                beat = Beat(self.clock.now, unpack(self.layout, int(self.payload.value)))
                self.received.append(beat)
                if self.on_beat is not None:
                    self.on_beat(beat)
            await RisingEdge(clk)


class LevelProbe:
    """Records the cycles in which a 1-bit output is high, as [first, end) intervals, from its edges."""

    def __init__(self, signal: Any, clock: CycleClock) -> None:
        self.signal = signal
        self.clock = clock
        self.intervals: list[tuple[int, int]] = []
        self._open: int | None = None

    def start(self) -> None:
        """Run the probe loop in the background."""
        cocotb.start_soon(self._run())

    async def _run(self) -> None:
        while True:
            await RisingEdge(self.signal)
            self._open = self.clock.now
            await FallingEdge(self.signal)
            self.intervals.append((self._open, self.clock.now))
            self._open = None

    def count_between(self, after: int, upto: int) -> int:
        """High cycles c with ``after < c <= upto``."""
        spans = self.intervals + ([(self._open, self.clock.now)] if self._open is not None else [])
        return sum(max(0, min(end - 1, upto) - max(first, after + 1) + 1) for first, end in spans)
