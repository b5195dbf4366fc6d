"""A bank-level HBM2 channel from the device's own timings: a cycle-level reference and a fast estimate.

What one HBM2 channel sustains for a stream of 32-byte reads, and how long a read waits, from the rules
below rather than an assumed bytes-per-cycle figure. ``spatten dram`` runs it; the
simulator's DRAM stage times requests with the same bounds (:func:`spatten.sim.hbm.hbm2_kind_cycles`).

Device (:class:`HBM2Timing` defaults): the ``HBM2_8Gb`` organisation and ``HBM2_2Gbps`` speed of Ramulator 2
(``src/dram/impl/HBM2.cpp``, CMU-SAFARI/ramulator2), the set-up of SpAtten's release: per channel 2
pseudo-channels, each 4 bank groups x 4 banks, rows of 64 columns; tCK 1 ns; nBL 4, nCL 7, nRCD 7, nRP 7,
nRAS 17, nRC 19, nRTP 2, nCCD_S 1, nCCD_L 2, nRRD_S 2, nRRD_L 3, nFAW 15, nREFI 3900; nRFC 350 (JEDEC's
350 ns for an 8 Gb die, Ramulator's refresh table). A read moves ``transaction_bytes`` = 32 B and holds its
pseudo-channel's data bus for nBL clocks.

Address mapping (a 32-byte read's index ``a``, low bits first): channel, pseudo-channel, column, bank group,
bank, row. Consecutive reads rotate over channels and pseudo-channels, then walk a row's columns, so a
sequential stream opens each row once and spreads over every bank group.

Reference (:func:`reference`): each channel on its own (reads map to exactly one channel), clock by
clock. Requests enter in order while fewer than ``outstanding`` of the channel's are in flight; a read
leaves when its last data beat arrives. Each clock and pseudo-channel issues at most one row command
(ACT, PRE) and one column command (RD), FR-FCFS: the oldest waiting read that hits an open row and whose
timings allow goes first; the row command is the first ready one in age order (each bank serves its
oldest waiting read: PRE of a conflicting row once no waiting read hits it, then ACT). Constraints:
ACT->RD nRCD, RD->data nCL, data nBL, RD->RD nCCD_S (nCCD_L in the same bank group) and nBL on the
pseudo-channel's bus, ACT->ACT nRRD_S (nRRD_L same group), at most 4 ACT in nFAW, ACT->ACT same bank nRC,
ACT->PRE nRAS, RD->PRE nRTP, PRE->ACT nRP; every nREFI the pseudo-channel closes all banks and refreshes
for nRFC (all-bank). The channel-level command bus (2-clock ACT) is not modelled.

Fast model (:func:`estimate`): per channel, the busiest resource and the window, combined as a 3-norm (a
queue forms before either bound is reached; the exponent fits the reference), plus one read's latency,
plus nRFC for every nREFI the run spans. The resources: the data bus (nBL per read on the busier
pseudo-channel), activations (each row opening paced by max(nRRD_S, nFAW / 4)) and the busiest bank (each
reopening max(nRC, nRAS + nRP)); the window: reads x one read's latency / outstanding. A read's latency is
nCL + nBL, plus nRCD when it opens a row, plus nRP when that row replaced another (not when a refresh
closed the bank since the bank's previous read). Row openings are counted in arrival order per bank.
Tests hold it within 5% of the reference on sequential, strided, random and pruned-row streams, 1 to 16
channels, 1 to 64 reads outstanding.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

__all__ = ["HBM2Timing", "DramResult", "decode", "pattern_reads", "reference", "estimate"]


@dataclass(frozen=True)
class HBM2Timing:
    """Organisation and timings of one HBM2 channel, in DRAM clocks (module docstring for the source)."""

    pseudo_channels: int = 2
    bank_groups: int = 4
    banks_per_group: int = 4
    columns: int = 64
    transaction_bytes: int = 32
    tck_ns: float = 1.0
    n_bl: int = 4
    n_cl: int = 7
    n_rcd: int = 7
    n_rp: int = 7
    n_ras: int = 17
    n_rc: int = 19
    n_rtp: int = 2
    n_ccd_s: int = 1
    n_ccd_l: int = 2
    n_rrd_s: int = 2
    n_rrd_l: int = 3
    n_faw: int = 15
    n_refi: int = 3900
    n_rfc: int = 350

    @property
    def banks(self) -> int:
        return self.bank_groups * self.banks_per_group


@dataclass(frozen=True)
class DramResult:
    """A stream's run: clocks until the last data beat, bytes per clock per channel, read latencies."""

    cycles: int | float
    bytes_per_cycle_per_channel: float
    latency_mean: float
    latency_max: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready: an unknown value (NaN) is None."""
        d = {
            "cycles": float(self.cycles),
            "bytes_per_cycle_per_channel": self.bytes_per_cycle_per_channel,
            "latency_mean": self.latency_mean,
            "latency_max": self.latency_max,
        }
        return {k: None if v != v else v for k, v in d.items()}


def decode(reads: np.ndarray, channels: int, t: HBM2Timing) -> dict[str, np.ndarray]:
    """Channel, pseudo-channel, bank group, bank (0..banks-1 within the pseudo-channel) and row of reads."""
    a = np.asarray(reads, dtype=np.int64)
    ch = a % channels
    a = a // channels
    pc = a % t.pseudo_channels
    a = a // t.pseudo_channels
    a = a // t.columns  # the column
    bg = a % t.bank_groups
    a = a // t.bank_groups
    ba = a % t.banks_per_group
    row = a // t.banks_per_group
    return {"channel": ch, "pc": pc, "bg": bg, "bank": bg * t.banks_per_group + ba, "row": row}


def pattern_reads(pattern: str, n: int, seed: int = 0, span: int = 1 << 26) -> np.ndarray:
    """Read indices (32-byte units) of a pattern: ``seq``, ``random`` (uniform over ``span`` reads) or
    ``stride:BYTES`` (a multiple of 32)."""
    if pattern == "seq":
        return np.arange(n, dtype=np.int64)
    if pattern == "random":
        return np.random.default_rng(seed).integers(0, span, size=n, dtype=np.int64)
    if pattern.startswith("stride:"):
        step = int(pattern.split(":", 1)[1])
        if step < 32 or step % 32:
            raise ValueError(f"--pattern stride:{step}: the stride must be a multiple of 32 bytes, >= 32")
        return np.arange(n, dtype=np.int64) * (step // 32)
    raise ValueError(f"--pattern {pattern!r} is not seq, random or stride:BYTES")


def reference(
    reads: np.ndarray, outstanding: int, channels: int = 1, t: HBM2Timing | None = None
) -> DramResult:
    """Cycle-level run of ``reads`` (32-byte read indices, in issue order); module docstring for the rules."""
    t = t or HBM2Timing()
    f = decode(reads, channels, t)
    ends, lats = [], []
    for c in range(channels):
        sel = f["channel"] == c
        if sel.any():
            e, lat = _channel(f["pc"][sel], f["bg"][sel], f["bank"][sel], f["row"][sel], outstanding, t)
            ends.append(e)
            lats.append(lat)
    lat = np.concatenate(lats) if lats else np.zeros(0)
    cycles = max(ends) if ends else 0
    return _result(cycles, len(reads), channels, lat, t)


def _result(cycles: float, n: int, channels: int, lat: np.ndarray, t: HBM2Timing) -> DramResult:
    bpc = n * t.transaction_bytes / channels / cycles if cycles else 0.0
    return DramResult(
        cycles, bpc, float(lat.mean()) if lat.size else 0.0, float(lat.max()) if lat.size else 0.0
    )


def _channel(pc, bg, bank, row, outstanding: int, t: HBM2Timing) -> tuple[int, np.ndarray]:
    """One channel clock by clock: (clock of the last data beat, latency of each read)."""
    n = len(pc)
    npc, nb = t.pseudo_channels, t.banks
    open_row = np.full((npc, nb), -1, dtype=np.int64)
    act_ok = np.zeros((npc, nb), dtype=np.int64)  # earliest ACT per bank (nRC, nRP)
    rd_ok = np.zeros((npc, nb), dtype=np.int64)  # earliest RD per bank (nRCD)
    pre_ok = np.zeros((npc, nb), dtype=np.int64)  # earliest PRE per bank (nRAS, nRTP)
    act_any = np.zeros(npc, dtype=np.int64)  # nRRD_S
    act_bg = np.zeros((npc, t.bank_groups), dtype=np.int64)  # nRRD_L
    faw = [deque(maxlen=4) for _ in range(npc)]
    rd_any = np.zeros(npc, dtype=np.int64)  # nCCD_S and the data bus
    rd_bg = np.zeros((npc, t.bank_groups), dtype=np.int64)  # nCCD_L
    next_ref = np.full(npc, t.n_refi, dtype=np.int64)
    busy_until = np.zeros(npc, dtype=np.int64)  # refreshing
    arrive = np.zeros(n, dtype=np.int64)
    done = np.zeros(n, dtype=np.int64)
    window: list[int] = []  # waiting reads (indices), oldest first
    inflight: list[int] = []  # completion clocks of issued reads
    nxt = 0
    clk = 0
    finished = 0
    while finished < n:
        # retire reads whose data has arrived, admit new ones into the window
        if inflight:
            still = [d for d in inflight if d > clk]
            finished += len(inflight) - len(still)
            inflight = still
        while nxt < n and len(window) + len(inflight) < outstanding:
            arrive[nxt] = clk
            window.append(nxt)
            nxt += 1
        for p in range(npc):
            if clk < busy_until[p]:
                continue
            if clk >= next_ref[p]:  # all-bank refresh once every bank can close
                if np.all(pre_ok[p][open_row[p] >= 0] <= clk):
                    open_row[p] = -1
                    busy_until[p] = clk + 1 + t.n_rfc
                    act_ok[p] = np.maximum(act_ok[p], busy_until[p])
                    next_ref[p] += t.n_refi
                continue
            mine = [i for i in window if pc[i] == p]
            if not mine:
                continue
            # column command: the oldest read hitting an open row whose timings allow
            for i in mine:
                b, g = bank[i], bg[i]
                if (
                    open_row[p, b] == row[i]
                    and rd_ok[p, b] <= clk
                    and rd_any[p] <= clk
                    and rd_bg[p, g] <= clk
                ):
                    rd_any[p] = clk + max(t.n_ccd_s, t.n_bl)
                    rd_bg[p, g] = clk + max(t.n_ccd_l, t.n_bl)
                    pre_ok[p, b] = max(pre_ok[p, b], clk + t.n_rtp)
                    done[i] = clk + t.n_cl + t.n_bl
                    inflight.append(int(done[i]))
                    window.remove(i)
                    mine.remove(i)
                    break
            # row command: the oldest waiting read whose PRE or ACT is ready (first ready, then oldest)
            claimed: set[int] = set()  # banks an older read already waits on
            for i in mine:
                b, g = bank[i], bg[i]
                if open_row[p, b] == row[i] or b in claimed:
                    continue  # a hit waiting for its column slot, or a bank an older read is opening
                claimed.add(b)
                if open_row[p, b] >= 0:
                    hits = any(bank[j] == b and open_row[p, b] == row[j] for j in mine)
                    if not hits and pre_ok[p, b] <= clk:
                        open_row[p, b] = -1
                        act_ok[p, b] = max(act_ok[p, b], clk + t.n_rp)
                        break
                    continue
                window_ok = len(faw[p]) < 4 or faw[p][0] + t.n_faw <= clk
                if act_ok[p, b] <= clk and act_any[p] <= clk and act_bg[p, g] <= clk and window_ok:
                    open_row[p, b] = row[i]
                    act_ok[p, b] = clk + t.n_rc
                    rd_ok[p, b] = clk + t.n_rcd
                    pre_ok[p, b] = clk + t.n_ras
                    act_any[p] = clk + t.n_rrd_s
                    act_bg[p, g] = clk + t.n_rrd_l
                    faw[p].append(clk)
                    break
        clk += 1
    return int(done.max()), (done - arrive).astype(np.float64)


def estimate(
    reads: np.ndarray, outstanding: int, channels: int = 1, t: HBM2Timing | None = None
) -> DramResult:
    """The fast model (module docstring): vectorized bounds, no clock loop."""
    t = t or HBM2Timing()
    f = decode(reads, channels, t)
    n = len(reads)
    if n == 0:
        return DramResult(0, 0.0, 0.0, 0.0)
    # row openings: a read opens its row when the previous read of its bank (arrival order) had another
    key = (f["channel"] * t.pseudo_channels + f["pc"]) * t.banks + f["bank"]
    order = np.argsort(key, kind="stable")
    k_sorted, r_sorted = key[order], f["row"][order]
    opens = np.ones(n, dtype=bool)
    opens[1:] = (k_sorted[1:] != k_sorted[:-1]) | (r_sorted[1:] != r_sorted[:-1])
    n_pc = channels * t.pseudo_channels
    pc_id = k_sorted // t.banks
    reads_pc = np.bincount(pc_id, minlength=n_pc)
    acts_pc = np.bincount(pc_id, weights=opens, minlength=n_pc)
    same_bank = np.r_[False, k_sorted[1:] == k_sorted[:-1]]
    conflicts = opens & same_bank
    reopen_bank = np.bincount(k_sorted, weights=conflicts, minlength=n_pc * t.banks)
    gap = np.r_[0, np.diff(order)].astype(np.float64)  # reads between a bank's consecutive accesses
    reads_ch = np.bincount(f["channel"], minlength=channels)
    bottleneck = max(reads_pc.max() * t.n_bl,  # data bus
                     acts_pc.max() * max(t.n_rrd_s, t.n_faw / 4),  # activations
                     reopen_bank.max() * max(t.n_rc, t.n_ras + t.n_rp))  # busiest bank  # fmt: skip
    miss = float(opens.mean())
    conflict = float(conflicts.mean())
    cycles = 0.0
    for _ in range(2):  # the second pass knows the time between a bank's accesses
        lat_read = t.n_cl + t.n_bl + miss * t.n_rcd + conflict * t.n_rp
        window = reads_ch.max() * lat_read / outstanding
        # a bus-bound window queues too: the two bounds meet in a 3-norm, not a max (fits the reference)
        # the first read's data after one latency, each further read after 1 / throughput
        base = (bottleneck**3 + window**3) ** (1 / 3) * (n - 1) / n + lat_read
        # all-bank refreshes at nREFI, 2 nREFI, ...: each holds the channel for nRFC
        cycles = base + np.floor(base / (t.n_refi - t.n_rfc)) * t.n_rfc
        # a refresh in between closes the bank, so that opening needs no precharge (all channels read at
        # once: a gap of g reads lasts g x cycles / n clocks)
        closed = np.minimum(1.0, gap * cycles / n / t.n_refi)
        conflict = float((conflicts * (1.0 - closed)).sum() / n)
    lat_mean = max(lat_read, outstanding * cycles / max(reads_ch.max(), 1))
    # the fast model estimates no latency distribution: its maximum is left unknown (NaN)
    return DramResult(cycles, n * t.transaction_bytes / channels / cycles, float(min(lat_mean, cycles)),
                      float("nan"))  # fmt: skip
