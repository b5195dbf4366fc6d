"""HBM2 traffic and timing of attention requests, vectorized over requests.

Two timing models, chosen by ``accelerator.dram_model``. The default, ``hbm2``, times each request's
reads from the device's own timings (:class:`spatten.sim.hbm2.HBM2Timing`: the release's HBM2_8Gb /
HBM2_2Gbps set-up, with ``dram_tcl``/``dram_trcd``/``dram_trp`` from the config), per kind of data and
channel, by the bounds of :func:`spatten.sim.hbm2.estimate`:

* a request's reads of one kind spread over the channels (``ceil(tx / C)`` on the busiest) and over each
  channel's pseudo-channels (``ceil(. / 2)`` on the busier); layout in DRAM (the address map of
  ``sim/hbm2.py``: channel, pseudo-channel, column, bank group, bank, row, low bits first): each kind of a
  head's cache (K MSBs, K LSBs, V) is its own contiguous region of ``seq_len`` tokens, a pseudo-channel
  row holds 64 reads of 32 B, so the rows a request opens per pseudo-channel are
  ``min(reads, ceil(region / (2 KiB x C x 2)))`` (the Q of consecutive queries is one stream, its rows
  shared by consecutive requests);
* the pseudo-channel is busy for the largest of its data bus (``nBL`` clocks per read), its activations
  (``max(nRRD_S, nFAW / 4)`` per row opened) and its busiest bank (``max(nRC, nRAS + nRP)`` per reopening:
  the openings spread over the 16 banks, a bank's first one overlapping the others; the Q stream's
  fractional share), combined in a 3-norm with the outstanding-read window
  (reads of the channel x one read's latency / ``max_outstanding``; a read's latency is ``nCL + nBL``, plus
  ``nRCD + nRP`` when it opens a row: another region's row is open in that bank);
* all-bank refresh stretches that by ``nREFI / (nREFI - nRFC)``;
* DRAM clocks become core cycles at ``dram_tck_ns x clock_ghz``: the core clock never changes what the
  memory delivers. A dense stream gets 14.6 B per DRAM clock per channel, scattered 32-byte reads 12.8
  (both what ``spatten dram`` measures on the cycle-level reference).

``peak`` is the earlier assumed model, kept for comparison (parameters from ``AcceleratorConfig``;
SPATTEN.md section 2 and the release's Ramulator set-up):

* Bytes are exact arithmetic on a request's fields (see :func:`request_bytes`); each kind (Q, K MSB,
  K LSB, V) lives in its own region, so each is rounded up to whole ``transaction_bytes`` (32 B)
  transactions on its own.
* Transactions are interleaved round-robin over ``hbm_channels`` channels; the busiest channel carries
  ``ceil(n / C)``. A transaction occupies its channel ``transaction_bytes / bytes_per_channel_cycle``
  core cycles (32 B at 32 B per cycle: 128 bit x 2 Gb/s, i.e. burst 4 on each of the two 64-bit
  pseudo-channels).
* Row buffer: a request's fetched rows are a subset of its head's cache region (``seq_len`` tokens at
  the kind's width), so the rows it opens per channel are ``min(transactions, ceil(span / (row_bytes C)))``.
  Opening a row costs ``tRP + tRCD``; FR-FCFS with ``max_outstanding`` reads queued per channel overlaps
  that with the transfers of the previous row, so each row exposes
  ``max(0, tRP + tRCD - min(max_outstanding, transactions per row) * t_burst)`` cycles. Dense streams
  (32 transactions per 1 KiB row) hide it fully; sparse, pruned fetches (few transactions per row) do not.
* Q vectors of consecutive queries are contiguous, so Q streams share rows across requests (row openings
  amortized); K and V streams of a request start in their own head's region.
* First-data latency ``tRCD + tCL`` is a pipeline latency of the fetch stage, not channel occupancy.
* DRAM timings count in DRAM clocks of ``dram_tck_ns`` and are converted to core cycles.
"""

from __future__ import annotations

import numpy as np
from spatten.models.config import AcceleratorConfig
from spatten.sim.hbm2 import HBM2Timing

__all__ = [
    "KINDS",
    "request_bytes",
    "kind_cycles",
    "hbm2_kind_cycles",
    "peak_kind_cycles",
    "hbm2_timing",
    "first_data_latency",
    "stream_gbs",
    "t_burst",
]

KINDS = ("q", "k_msb", "k_lsb", "v")


def t_burst(acc: AcceleratorConfig) -> float:
    """Core cycles one transaction occupies its channel."""
    return acc.transaction_bytes / acc.bytes_per_channel_cycle


def _dram_to_core(acc: AcceleratorConfig, clocks: float) -> float:
    return clocks * acc.dram_tck_ns * acc.clock_ghz


def first_data_latency(acc: AcceleratorConfig) -> float:
    """Core cycles from a request's first read to its first data (tRCD + tCL)."""
    return _dram_to_core(acc, acc.dram_trcd + acc.dram_tcl)


def request_bytes(
    keys: np.ndarray,
    values: np.ndarray,
    queries: np.ndarray,
    head_dim: np.ndarray,
    key_bits: np.ndarray,
    lsb_bits: np.ndarray,
    query_bits: np.ndarray,
    value_bits: np.ndarray,
    refetch: np.ndarray,
) -> dict[str, np.ndarray]:
    """Exact DRAM bytes per request and kind (float64, before rounding to transactions).

    K MSB = keys x D x key_bits / 8; K LSB = keys x D x lsb_bits / 8 when refetched;
    V = values x D x value_bits / 8; Q = queries x D x query_bits / 8. Bits must already have the
    unquantized (-1) width substituted; a negative LSB width counts as 0.
    """
    d = head_dim.astype(np.float64)
    return {
        "q": queries * d * query_bits / 8.0,
        "k_msb": keys * d * key_bits / 8.0,
        "k_lsb": np.where(refetch, keys * d * np.maximum(lsb_bits, 0) / 8.0, 0.0),
        "v": values * d * value_bits / 8.0,
    }


def kind_cycles(
    acc: AcceleratorConfig, nbytes: np.ndarray, span_bytes: np.ndarray, contiguous: bool = False
) -> tuple[np.ndarray, ...]:
    """Transactions, busiest-channel occupancy (core cycles) and rows opened per channel for one kind of
    each request, by ``acc.dram_model`` (module docstring); arguments as :func:`peak_kind_cycles`."""
    if acc.dram_model == "peak":
        return peak_kind_cycles(acc, nbytes, span_bytes, contiguous)
    return hbm2_kind_cycles(acc, nbytes, span_bytes, contiguous)


def stream_gbs(acc: AcceleratorConfig) -> float:
    """GB/s the DRAM model gives one long sequential stream over all channels (a roofline's memory roof):
    64 MiB through :func:`kind_cycles`, so the roof is what the simulator itself charges."""
    nbytes = np.array([float(1 << 26)])
    cycles = kind_cycles(acc, nbytes, nbytes, contiguous=True)[1][0]
    return float(nbytes[0] / (cycles / acc.clock_ghz))


def hbm2_timing(acc: AcceleratorConfig) -> HBM2Timing:
    """The device timings of the ``hbm2`` model: the release's HBM2 with the config's tCL, tRCD, tRP."""
    return HBM2Timing(
        n_cl=acc.dram_tcl, n_rcd=acc.dram_trcd, n_rp=acc.dram_trp, transaction_bytes=acc.transaction_bytes,
        tck_ns=acc.dram_tck_ns,
    )  # fmt: skip


def hbm2_kind_cycles(
    acc: AcceleratorConfig, nbytes: np.ndarray, span_bytes: np.ndarray, contiguous: bool = False
) -> tuple[np.ndarray, ...]:
    """:func:`kind_cycles` of the ``hbm2`` model (module docstring)."""
    t = hbm2_timing(acc)
    c, npc = acc.hbm_channels, t.pseudo_channels
    tx = np.ceil(nbytes / t.transaction_bytes - 1e-12)
    per_ch = np.ceil(tx / c)
    per_pc = np.ceil(per_ch / npc)
    row_set = t.columns * t.transaction_bytes * c * npc  # bytes that fill one row of every pseudo-channel
    if contiguous:
        rows = nbytes / row_set
    else:
        region_rows = np.ceil(np.maximum(span_bytes, nbytes) / row_set)
        rows = np.where(per_pc > 0, np.minimum(per_pc, np.maximum(region_rows, 1.0)), 0.0)
    miss = np.divide(rows, per_pc, out=np.zeros_like(per_pc), where=per_pc > 0)
    bus = per_pc * t.n_bl
    acts = rows * max(t.n_rrd_s, t.n_faw / 4)
    # a bank's first opening in the request overlaps the others; each further one waits for the bank
    reopen = rows / t.banks if contiguous else np.maximum(0.0, np.ceil(rows / t.banks) - 1.0)
    bank = reopen * max(t.n_rc, t.n_ras + t.n_rp)
    latency = t.n_cl + t.n_bl + miss * (t.n_rcd + t.n_rp)
    window = per_ch * latency / acc.max_outstanding
    busy = (np.maximum(np.maximum(bus, acts), bank) ** 3 + window**3) ** (1 / 3)
    clocks = busy * t.n_refi / (t.n_refi - t.n_rfc)
    return tx, clocks * t.tck_ns * acc.clock_ghz, rows * npc


def peak_kind_cycles(
    acc: AcceleratorConfig, nbytes: np.ndarray, span_bytes: np.ndarray, contiguous: bool = False
) -> tuple[np.ndarray, ...]:
    """Transactions, busiest-channel occupancy and rows opened for one kind of each request (``peak``).

    Parameters
    ----------
    acc : AcceleratorConfig
    nbytes : numpy.ndarray
        Bytes fetched per request.
    span_bytes : numpy.ndarray
        Bytes of the region the fetched rows are spread over (>= nbytes).
    contiguous : bool
        The requests continue one stream (Q vectors of consecutive queries): rows are shared between
        consecutive requests, so each request opens ``bytes / (row_bytes C)`` rows per channel (fractional)
        instead of at least one.

    Returns
    -------
    (transactions, cycles, rows) : tuple of numpy.ndarray
    """
    tx = np.ceil(nbytes / acc.transaction_bytes - 1e-12)
    c = acc.hbm_channels
    per_ch = np.ceil(tx / c)
    region_rows = np.ceil(np.maximum(span_bytes, nbytes) / (acc.dram_row_bytes * c))
    if contiguous:
        rows = nbytes / (acc.dram_row_bytes * c)
    else:
        rows = np.where(per_ch > 0, np.minimum(per_ch, np.maximum(region_rows, 1.0)), 0.0)
    tb = t_burst(acc)
    tx_per_row = np.divide(per_ch, rows, out=np.zeros_like(per_ch), where=rows > 0)
    if contiguous:
        tx_per_row = np.full_like(per_ch, acc.dram_row_bytes / acc.transaction_bytes)
    hide = np.minimum(float(acc.max_outstanding), tx_per_row) * tb
    open_cost = _dram_to_core(acc, acc.dram_trp + acc.dram_trcd)
    exposed = np.maximum(0.0, open_cost - hide)
    cycles = per_ch * tb + rows * exposed
    return tx, cycles, rows
