"""Replaying every release CSV: bytes and transactions against arithmetic done here on the raw file."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
from spatten.models.config import workload_preset
from spatten.models.trace import RELEASE_TRACES, read_release_csv, release_trace_path
from spatten.sim.api import simulate

FILES = [release_trace_path(n) for n in RELEASE_TRACES]  # shipped in the package (models/data/release/)
UNQ = 12  # the documented width of an unquantized (-1) field: the 12-bit datapath


def _bits(row: dict[str, str], name: str) -> int:
    b = int(row[name])
    return UNQ if b == -1 else b


def _expected(path: Path) -> dict[str, float]:
    tot = {"q": 0.0, "k_msb": 0.0, "k_lsb": 0.0, "v": 0.0, "tx": 0}
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["layer_id"] == "":  # trailing config-name line
                continue
            d = float(r["embedding_length_D"])

            kb = d * float(r["key_fetch_num"]) * _bits(r, "quant_key_bit") / 8
            lsb = 0.0
            if r["if_requant"] == "True" and int(r["auto_requant_incre"]) > 0:
                lsb = d * float(r["key_fetch_num"]) * int(r["auto_requant_incre"]) / 8
            vb = d * float(r["value_fetch_num"]) * _bits(r, "quant_value_bit") / 8
            qb = d * _bits(r, "quant_query_bit") / 8
            tot["q"] += qb
            tot["k_msb"] += kb
            tot["k_lsb"] += lsb
            tot["v"] += vb
            tot["tx"] += sum(math.ceil(x / 32) for x in (qb, kb, lsb, vb))
    return tot


@pytest.mark.parametrize("path", FILES, ids=[p.name[:40] for p in FILES])
def test_release_bytes_match_arithmetic(path: Path) -> None:
    trace, _ = read_release_csv(path)
    res = simulate(workload_preset("gpt2-medium"), trace)
    exp = _expected(path)
    s = res.summary
    assert s["dram_bytes_q"] == exp["q"]
    assert s["dram_bytes_k_msb"] == exp["k_msb"]
    assert s["dram_bytes_k_lsb"] == exp["k_lsb"]
    assert s["dram_bytes_v"] == exp["v"]
    assert s["dram_bytes_total"] == exp["q"] + exp["k_msb"] + exp["k_lsb"] + exp["v"]
    assert s["transactions"] == exp["tx"]
    assert res.actions["dram_bits_k_lsb"] == 8 * exp["k_lsb"]
    assert s["requests"] == len(trace)


def test_release_files_present() -> None:
    assert len(FILES) == 5
