"""cocotb test for the toolchain smoke block: random stream in, every output == input + 1 (mod 256).

``PLUS`` (default 1) is the increment the test expects: any other value makes it fail on purpose, which is
how the runner's failure path (message, waveform re-run) is tested.
"""

from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from spatten.testbench.compare import first_difference


@cocotb.test()
async def plus_one(dut) -> None:
    n = int(os.environ.get("N", "100"))
    plus = int(os.environ.get("PLUS", "1"))
    rng = random.Random(1)
    data = [rng.randrange(256) for _ in range(n)]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    got: list[int] = []
    sent = 0
    for _ in range(20 * n):
        # drive this cycle (with random idles and back-pressure), settle, record the handshakes
        dut.i__valid.value = int(sent < n and rng.random() < 0.7)
        dut.i__payload.value = data[sent] if sent < n else 0
        dut.o__ready.value = int(rng.random() < 0.7)
        await ReadOnly()
        if dut.o__valid.value == 1 and dut.o__ready.value == 1:
            got.append(int(dut.o__payload.value))
        if dut.i__valid.value == 1 and dut.i__ready.value == 1:
            sent += 1
        await RisingEdge(dut.clk)
        if len(got) == n:
            break
    diff = first_difference(got, [(x + plus) % 256 for x in data])
    assert diff is None, diff
