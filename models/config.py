"""The one validated, frozen configuration family: accelerator, quantization, pruning, model shape.

Every field is checked in ``__post_init__``; a bad value raises ``ValueError`` (or ``TypeError``) whose
message starts with the dotted field name and states the allowed range, so the CLI can print it as one
line. YAML round trips through :func:`load_yaml` / :func:`save_yaml`; unknown keys are rejected by name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "AcceleratorConfig",
    "QuantConfig",
    "PruningConfig",
    "ModelShape",
    "Workload",
    "ACCELERATORS",
    "MODELS",
    "workload_preset",
    "load_yaml",
    "save_yaml",
    "from_dict",
    "to_dict",
    "replace_path",
]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """The one integer-parameter check (configs, CLI options and RTL constructors): ``value`` unchanged
    when it is an int (not a bool) in ``lo..hi`` (``hi`` None: unbounded).

    Raises
    ------
    TypeError
        ``<name> must be an integer, got <value>`` for a bool, float, string, ...
    ValueError
        ``<name> = <value> is outside the allowed range <lo>..<hi>``.
    """
    if not _is_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} = {value} is outside the allowed range {rng}")
    return value


def check_float(name: str, value: Any, lo: float, hi: float, lo_open: bool = False) -> None:
    """Raise unless ``value`` is a finite real in ``[lo, hi]`` (``(lo, hi]`` when ``lo_open``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} = {value} must be finite")
    if (value <= lo if lo_open else value < lo) or value > hi:
        rng = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
        raise ValueError(f"{name} = {value} is outside the allowed range {rng}")


@dataclass(frozen=True)
class AcceleratorConfig:
    """Hardware parameters of one SpAtten instance (defaults: full size, SPATTEN.md section 2).

    Attributes
    ----------
    clock_ghz : float
        Core clock (release: 1 GHz).
    qk_multipliers, pv_multipliers : int
        Multipliers in the Q.K and prob.V arrays (512 each); keys per cycle = multipliers / head_dim.
    head_dim : int
        Hardware vector width D (64).
    datapath_bits : int
        Fixed-point datapath width (release: 12).
    topk_parallelism : int
        Comparators in the quick-select top-k engine (P = 16).
    kv_sram_bytes : int
        Bytes of each of the K and V SRAMs (196 KB: 2 x 1024 x 64 x 12 bit).
    hbm_channels : int
        HBM2 channels (16).
    dram_model : {"hbm2", "peak"}
        How the DRAM stage times a request's reads: ``hbm2`` (default) from the HBM2 device timings,
        bank by bank (``sim/hbm.py``; what a channel sustains: 14.6 B per DRAM clock for a dense stream);
        ``peak``, the earlier assumed figure of ``bytes_per_channel_cycle`` per core cycle.
    bytes_per_channel_cycle : float
        ``peak`` model only: bytes one channel moves per core cycle (128 bit x 2 Gb/s = 32 B/ns at 1 GHz).
    transaction_bytes : int
        DRAM access granularity, interleaved across channels (32 B).
    dram_tcl, dram_trcd, dram_trp, dram_burst : int
        HBM2 2 Gb/s timings in DRAM clocks (7, 7, 7, burst 4).
    dram_row_bytes : int
        Row-buffer size per bank (1 KiB for HBM2 pseudo-channels).
    max_outstanding : int
        Reads in flight per channel (release: 16).
    fetcher_lanes : int
        Address generator lanes of the fetcher (32).
    qk_latency, softmax_latency, pq_latency, pv_latency : int
        Pipeline fill latencies in cycles (release behaviour model: 11, 87, 1, 3).
    stage_buffer : int
        Requests each inter-stage FIFO can hold (bounded buffers of the pipeline).
    """

    name: str = "spatten"
    clock_ghz: float = 1.0
    qk_multipliers: int = 512
    pv_multipliers: int = 512
    head_dim: int = 64
    datapath_bits: int = 12
    topk_parallelism: int = 16
    kv_sram_bytes: int = 196_608
    hbm_channels: int = 16
    dram_model: str = "hbm2"
    bytes_per_channel_cycle: float = 32.0
    transaction_bytes: int = 32
    dram_tcl: int = 7
    dram_trcd: int = 7
    dram_trp: int = 7
    dram_burst: int = 4
    dram_row_bytes: int = 1024
    max_outstanding: int = 16
    fetcher_lanes: int = 32
    qk_latency: int = 11
    softmax_latency: int = 87
    pq_latency: int = 1
    pv_latency: int = 3
    stage_buffer: int = 2
    # DRAM clock period the dram_t* timings count in (release: HBM2_2Gbps, tCK = 1 ns).
    dram_tck_ns: float = 1.0

    def __post_init__(self) -> None:
        p = "accelerator"
        check_float(f"{p}.clock_ghz", self.clock_ghz, 0.0, 10.0, lo_open=True)
        check_int(f"{p}.head_dim", self.head_dim, 1, 1024)
        check_int(f"{p}.qk_multipliers", self.qk_multipliers, 1, 1 << 20)
        check_int(f"{p}.pv_multipliers", self.pv_multipliers, 1, 1 << 20)
        check_int(f"{p}.datapath_bits", self.datapath_bits, 2, 32)
        check_int(f"{p}.topk_parallelism", self.topk_parallelism, 1, 1024)
        check_int(f"{p}.kv_sram_bytes", self.kv_sram_bytes, 1, 1 << 34)
        check_int(f"{p}.hbm_channels", self.hbm_channels, 1, 1024)
        if self.dram_model not in ("hbm2", "peak"):
            raise ValueError(f"{p}.dram_model = {self.dram_model!r} must be 'hbm2' or 'peak'")
        check_float(f"{p}.bytes_per_channel_cycle", self.bytes_per_channel_cycle, 0.0, 4096.0, lo_open=True)
        check_int(f"{p}.transaction_bytes", self.transaction_bytes, 1, 4096)
        for n in ("dram_tcl", "dram_trcd", "dram_trp"):
            check_int(f"{p}.{n}", getattr(self, n), 0, 1000)
        check_int(f"{p}.dram_burst", self.dram_burst, 1, 64)
        check_int(f"{p}.dram_row_bytes", self.dram_row_bytes, 1, 1 << 20)
        check_int(f"{p}.max_outstanding", self.max_outstanding, 1, 4096)
        check_int(f"{p}.fetcher_lanes", self.fetcher_lanes, 1, 4096)
        for n in ("qk_latency", "softmax_latency", "pq_latency", "pv_latency"):
            check_int(f"{p}.{n}", getattr(self, n), 0, 1_000_000)
        check_int(f"{p}.stage_buffer", self.stage_buffer, 1, 1 << 20)
        check_float(f"{p}.dram_tck_ns", self.dram_tck_ns, 0.0, 100.0, lo_open=True)
        for n in ("qk_multipliers", "pv_multipliers"):
            if getattr(self, n) < self.head_dim:
                raise ValueError(
                    f"{p}.{n} = {getattr(self, n)} is below {p}.head_dim = {self.head_dim}: the unit "
                    f"must hold at least one head_dim-wide dot-product tree"
                )

    @property
    def keys_per_cycle(self) -> int:
        """Keys processed by Q.K per cycle at the hardware's own head size (multipliers / head_dim, >= 1)."""
        return max(1, self.qk_multipliers // self.head_dim)

    @property
    def values_per_cycle(self) -> int:
        """Value rows processed by prob.V per cycle at the hardware's own head size."""
        return max(1, self.pv_multipliers // self.head_dim)

    def rows_per_cycle(self, multipliers: int, d: Any) -> Any:
        """Keys (or value rows) of head size ``d`` one unit handles per cycle.

        The unit is ``multipliers // head_dim`` dot-product trees of ``head_dim`` lanes each. A tree takes
        ``head_dim // d`` rows at once when ``d <= head_dim`` (a 64-lane tree serves two 32-dim keys); a
        wider row spans ``ceil(d / head_dim)`` trees. So ``accelerator.head_dim`` shapes the cycles, not only
        the energy and area: 512 multipliers as 48-lane trees serve 5 keys of 64 per cycle, not 8.

        Parameters
        ----------
        multipliers : int
            ``qk_multipliers`` or ``pv_multipliers``.
        d : int or numpy.ndarray
            Head size of the rows (>= 1).

        Returns
        -------
        float or numpy.ndarray
            Rows per cycle; below 1 when one row needs more trees than the unit has.
        """
        import numpy as np

        d = np.maximum(np.asarray(d, dtype=np.float64), 1.0)
        hd = float(self.head_dim)
        trees = max(1, multipliers // self.head_dim)
        packed = trees * np.floor(hd / np.minimum(d, hd))
        span = np.ceil(d / hd)  # trees one wide row needs
        wide = np.where(span <= trees, np.floor(trees / span), trees / span)
        return np.where(d <= hd, packed, wide)

    @property
    def peak_bytes_per_cycle(self) -> float:
        """Aggregate peak DRAM bytes per core cycle over all channels."""
        return self.hbm_channels * self.bytes_per_channel_cycle


@dataclass(frozen=True)
class QuantConfig:
    """Progressive quantization of K (MSB then LSB) and static quantization of Q and V.

    ``enabled = False`` means unquantized (the release CSV's ``-1``): K, Q and V move at
    ``unquantized_bits`` (the 12-bit datapath width by default).
    """

    enabled: bool = True
    key_msb_bits: int = 6
    key_lsb_bits: int = 4
    value_bits: int = 6
    query_bits: int = 16
    refetch_threshold: float = 0.05
    progressive: bool = True
    unquantized_bits: int = 12
    # Shape-only traces (no data) mark this fraction of rows for the LSB refetch. Source: the paper
    # reports that about 5.9% of attention rows need the LSB refetch (SPATTEN.md section 1, PQ).
    shape_refetch_rate: float = 0.059
    # Bits per K/Q/V element of the dense reference that DRAM reduction is measured against: the
    # paper's 10.0x (pruning 2.1x times PQ about 5x) is relative to unquantized fp32 tensors.
    reference_bits: int = 32

    def __post_init__(self) -> None:
        p = "quant"
        if not isinstance(self.enabled, bool):
            raise TypeError(f"{p}.enabled must be true or false, got {self.enabled!r}")
        if not isinstance(self.progressive, bool):
            raise TypeError(f"{p}.progressive must be true or false, got {self.progressive!r}")
        for n in ("key_msb_bits", "value_bits", "query_bits", "unquantized_bits"):
            check_int(f"{p}.{n}", getattr(self, n), 2, 16)
        check_int(f"{p}.key_lsb_bits", self.key_lsb_bits, 0, 14)
        if self.key_msb_bits + self.key_lsb_bits > 16:
            raise ValueError(
                f"{p}.key_msb_bits + key_lsb_bits = {self.key_msb_bits + self.key_lsb_bits} exceeds 16"
            )
        check_float(f"{p}.refetch_threshold", self.refetch_threshold, 0.0, 1.0)
        check_float(f"{p}.shape_refetch_rate", self.shape_refetch_rate, 0.0, 1.0)
        check_int(f"{p}.reference_bits", self.reference_bits, 2, 64)

    @property
    def key_full_bits(self) -> int:
        """Bits of a reassembled full-precision key element."""
        return self.key_msb_bits + self.key_lsb_bits


#: KV policies ``pruning.policy`` takes (models/kv_policy.py).
KV_POLICIES = ("spatten", "h2o", "streamingllm", "quest")


def _default_token_schedule() -> tuple[float, ...]:
    return ()


@dataclass(frozen=True)
class PruningConfig:
    """Cascade token/head pruning and local value pruning policy.

    Per-layer keep ratios either come from an explicit schedule (``token_keep_schedule``,
    ``head_keep_schedule``; one ratio per layer, relative to the original count) or are derived from an
    average target by :meth:`token_schedule` / :meth:`head_schedule`: the first
    ``token_unpruned_fraction`` (15%) / ``head_unpruned_fraction`` (30%) of layers keep everything, then
    the ratio falls linearly so that the average over all layers equals the target.
    """

    enabled: bool = True
    token_keep: float = 0.5
    head_keep: float = 1.0
    value_keep: float = 1.0
    token_unpruned_fraction: float = 0.15
    head_unpruned_fraction: float = 0.30
    token_keep_schedule: tuple[float, ...] = field(default_factory=_default_token_schedule)
    head_keep_schedule: tuple[float, ...] = field(default_factory=tuple)
    # Token pruning never leaves fewer live tokens than this (all of them while the sequence is shorter).
    # A decoder that starts generating from a handful of tokens would otherwise prune its first token, the
    # attention sink every later step leans on, for good (SmolLM2: perplexity x60 without it).
    token_min_keep: int = 0
    # Which tokens' K/V a decode step reads (models/kv_policy.py): SpAtten's cascade, or a KV-cache policy
    # at the same budget (token_keep of the context): H2O, StreamingLLM or Quest.
    policy: str = "spatten"
    # H2O: share of the budget kept for the most recent tokens (the rest: heavy hitters). The H2O paper's
    # default splits the budget evenly.
    recent_fraction: float = 0.5
    # StreamingLLM: attention sinks kept at the start (the paper's 4).
    sink_tokens: int = 4
    # Quest: tokens per page of the per-page key min/max (the paper's 16).
    page_size: int = 16

    def __post_init__(self) -> None:
        p = "pruning"
        if self.policy not in KV_POLICIES:
            raise ValueError(f"{p}.policy = {str(self.policy)[:40]!r} is not one of {', '.join(KV_POLICIES)}")
        check_float(f"{p}.recent_fraction", self.recent_fraction, 0.0, 1.0)
        check_int(f"{p}.sink_tokens", self.sink_tokens, 0, 1 << 16)
        check_int(f"{p}.page_size", self.page_size, 1, 1 << 16)
        if not isinstance(self.enabled, bool):
            raise TypeError(f"{p}.enabled must be true or false, got {self.enabled!r}")
        for n in ("token_keep", "head_keep", "value_keep"):
            check_float(f"{p}.{n}", getattr(self, n), 0.0, 1.0, lo_open=True)
        for n in ("token_unpruned_fraction", "head_unpruned_fraction"):
            check_float(f"{p}.{n}", getattr(self, n), 0.0, 1.0)
        check_int(f"{p}.token_min_keep", self.token_min_keep, 0, 1 << 20)
        for n in ("token_keep_schedule", "head_keep_schedule"):
            sched = getattr(self, n)
            if isinstance(sched, list):
                object.__setattr__(self, n, tuple(sched))
                sched = getattr(self, n)
            if not isinstance(sched, tuple):
                raise TypeError(f"{p}.{n} must be a list of ratios, got {sched!r}")
            for i, r in enumerate(sched):
                check_float(f"{p}.{n}[{i}]", r, 0.0, 1.0, lo_open=True)

    @staticmethod
    def _derive(n_layers: int, target: float, unpruned_fraction: float) -> tuple[float, ...]:
        n_free = min(n_layers, math.ceil(unpruned_fraction * n_layers - 1e-9))
        n_pruned = n_layers - n_free
        if n_pruned == 0 or target >= 1.0:
            return (1.0,) * n_layers
        # Pruned layers must average r so that (n_free + n_pruned * r) / n_layers == target.
        r = (target * n_layers - n_free) / n_pruned
        if r < 1e-3:  # the pruned layers would have to keep less than the 1e-3 floor of every layer
            raise ValueError(
                f"pruning: keep target {target} is unreachable with {n_free} of {n_layers} layers unpruned"
            )
        # Linear fall from just under 1 to 2r - a, symmetric about r, clipped to (0, 1].
        a = min(1.0, 2 * r - 1e-3) if r < 1 else 1.0
        b = 2 * r - a
        if n_pruned == 1:
            ramp = [r]
        else:
            ramp = [a + (b - a) * i / (n_pruned - 1) for i in range(n_pruned)]
        ramp = [min(1.0, max(1e-3, x)) for x in ramp]
        return (1.0,) * n_free + tuple(ramp)

    def token_schedule(self, n_layers: int) -> tuple[float, ...]:
        """Per-layer token keep ratio (relative to the original length) after each layer; all 1.0 for a KV
        policy other than ``spatten`` (it keeps a budget of the context instead: models/kv_policy.py)."""
        if not self.enabled or self.policy != "spatten":
            return (1.0,) * n_layers
        if self.token_keep_schedule:
            return _fit_schedule("pruning.token_keep_schedule", self.token_keep_schedule, n_layers)
        return self._derive(n_layers, self.token_keep, self.token_unpruned_fraction)

    def head_schedule(self, n_layers: int) -> tuple[float, ...]:
        """Per-layer head keep ratio (relative to the original head count); all 1.0 for a KV policy."""
        if not self.enabled or self.policy != "spatten":
            return (1.0,) * n_layers
        if self.head_keep_schedule:
            return _fit_schedule("pruning.head_keep_schedule", self.head_keep_schedule, n_layers)
        return self._derive(n_layers, self.head_keep, self.head_unpruned_fraction)

    @property
    def value_ratio(self) -> float:
        """Local value keep ratio, 1.0 when pruning is off."""
        return self.value_keep if self.enabled else 1.0


def _fit_schedule(name: str, sched: tuple[float, ...], n_layers: int) -> tuple[float, ...]:
    if len(sched) != n_layers:
        raise ValueError(f"{name} has {len(sched)} entries but the model has {n_layers} layers")
    out = []
    prev = 1.0
    for r in sched:  # cascade: a later layer never keeps more than an earlier one
        prev = min(prev, r)
        out.append(prev)
    return tuple(out)


@dataclass(frozen=True)
class ModelShape:
    """Transformer shape and run mode.

    ``mode = "summarization"`` (BERT): all ``prompt_len`` queries per layer, no generation.
    ``mode = "generation"`` (GPT-2): the prompt, then ``gen_tokens`` steps of one query each against
    the KV cache.
    """

    name: str = "gpt2-medium"
    layers: int = 24
    heads: int = 16
    head_dim: int = 64
    prompt_len: int = 992
    gen_tokens: int = 32
    mode: str = "generation"
    # Generation only: also simulate the prompt pass (step 0, one batched row per layer and head). The
    # release traces and the paper's GPT-2 throughput cover the generation steps alone.
    prompt_in_trace: bool = False
    # K/V heads (grouped-query attention, rules in models/gqa.py); 0 means one per query head (multi-head).
    kv_heads: int = 0
    # Generation only: sequences decoded together, each with its own K/V cache and pruning state
    # (models/batch.py).
    batch: int = 1
    # Layers that attend to the last `sliding_window` tokens only (Mistral, Gemma 3, Qwen2 sliding layers).
    sliding_window: int = 0
    sliding_layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        p = "model"
        if not isinstance(self.name, str) or not 1 <= len(self.name) <= 64:
            raise ValueError(f"{p}.name = {str(self.name)[:40]!r} must be a name of 1..64 characters")
        check_int(f"{p}.layers", self.layers, 1, 1024)
        check_int(f"{p}.heads", self.heads, 1, 1024)
        check_int(f"{p}.head_dim", self.head_dim, 1, 1024)
        check_int(f"{p}.prompt_len", self.prompt_len, 1, 1 << 20)
        check_int(f"{p}.gen_tokens", self.gen_tokens, 0, 1 << 16)
        if self.mode not in ("summarization", "generation"):
            raise ValueError(f"{p}.mode = {self.mode!r} must be 'summarization' or 'generation'")
        if self.mode == "generation" and self.gen_tokens == 0:
            raise ValueError(f"{p}.gen_tokens = 0 is outside the allowed range >= 1 for generation")
        if not isinstance(self.prompt_in_trace, bool):
            raise TypeError(f"{p}.prompt_in_trace must be true or false, got {self.prompt_in_trace!r}")
        check_int(f"{p}.kv_heads", self.kv_heads, 0, self.heads)
        if self.kv_heads and self.heads % self.kv_heads:
            raise ValueError(
                f"{p}.kv_heads = {self.kv_heads} must divide {p}.heads = {self.heads} (0: one per head)"
            )
        check_int(f"{p}.batch", self.batch, 1, 4096)
        if self.batch > 1 and self.mode != "generation":
            raise ValueError(f"{p}.batch = {self.batch} applies to generation; {p}.mode is {self.mode}")
        check_int(f"{p}.sliding_window", self.sliding_window, 0, 1 << 20)
        if isinstance(self.sliding_layers, list):
            object.__setattr__(self, "sliding_layers", tuple(self.sliding_layers))
        if not isinstance(self.sliding_layers, tuple):
            raise TypeError(
                f"{p}.sliding_layers must be a list of layer indices, got {self.sliding_layers!r}"
            )
        for i, layer in enumerate(self.sliding_layers):
            check_int(f"{p}.sliding_layers[{i}]", layer, 0, self.layers - 1)
        if len(set(self.sliding_layers)) != len(self.sliding_layers):
            raise ValueError(f"{p}.sliding_layers lists a layer twice: {list(self.sliding_layers)}")
        if self.sliding_layers and not self.sliding_window:
            raise ValueError(f"{p}.sliding_layers needs {p}.sliding_window >= 1 (the window's tokens)")

    @property
    def n_kv_heads(self) -> int:
        """K/V heads: ``kv_heads``, or ``heads`` when it is 0 (multi-head attention)."""
        return self.kv_heads or self.heads


@dataclass(frozen=True)
class Workload:
    """A complete run: accelerator, model shape, pruning and quantization policy."""

    accelerator: AcceleratorConfig = field(default_factory=AcceleratorConfig)
    model: ModelShape = field(default_factory=ModelShape)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)

    def __post_init__(self) -> None:
        for n, t in (
            ("accelerator", AcceleratorConfig),
            ("model", ModelShape),
            ("pruning", PruningConfig),
            ("quant", QuantConfig),
        ):
            if not isinstance(getattr(self, n), t):
                raise TypeError(f"{n} must be a {t.__name__}")


# --- presets ---------------------------------------------------------------------------------------

ACCELERATORS: dict[str, AcceleratorConfig] = {
    "spatten": AcceleratorConfig(),
    # SpAtten1/8: 128 multipliers (64 + 64) and 1/8 of the bandwidth, for comparison with A3/MNNFast.
    "spatten-1/8": AcceleratorConfig(
        name="spatten-1/8", qk_multipliers=64, pv_multipliers=64, hbm_channels=2
    ),
}

MODELS: dict[str, ModelShape] = {
    "bert-base": ModelShape("bert-base", 12, 12, 64, 128, 0, "summarization"),
    "bert-large": ModelShape("bert-large", 24, 16, 64, 384, 0, "summarization"),
    "gpt2-small": ModelShape("gpt2-small", 12, 12, 64, 992, 32, "generation"),
    "gpt2-medium": ModelShape("gpt2-medium", 24, 16, 64, 992, 32, "generation"),
    # all-MiniLM-L6-v2 (BERT architecture; real Q/K/V from models.real_qkv). `spatten trace` sets the
    # length to the text's token count; 128 is the shape-only default.
    "minilm": ModelShape("minilm", 6, 12, 32, 128, 0, "summarization"),
    # SmolLM2-135M (Llama architecture, GQA: 9 query heads share 3 K/V heads; models/smollm2.py). The
    # accuracy harness runs it on real text; 512 + 32 is the shape-only default.
    "smollm2": ModelShape("smollm2", 30, 9, 64, 512, 32, "generation", kv_heads=3),
}

# The paper's policies per model family (release schedules for GPT-2; paper averages for BERT).
_POLICIES: dict[str, tuple[PruningConfig, QuantConfig]] = {
    "bert-base": (
        PruningConfig(token_keep=0.6, head_keep=0.9, value_keep=1.0),
        QuantConfig(key_msb_bits=12, key_lsb_bits=0, value_bits=12, query_bits=12, progressive=False),
    ),
    "bert-large": (
        PruningConfig(token_keep=0.6, head_keep=0.9, value_keep=1.0),
        QuantConfig(key_msb_bits=12, key_lsb_bits=0, value_bits=12, query_bits=12, progressive=False),
    ),
    "gpt2-small": (
        PruningConfig(
            token_keep_schedule=(0.9, 0.7, 0.2, 0.2, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1),
            head_keep=1.0,
            value_keep=0.2,
        ),
        QuantConfig(key_msb_bits=6, key_lsb_bits=4, value_bits=6, query_bits=16, refetch_threshold=0.05),
    ),
    "gpt2-medium": (
        PruningConfig(
            token_keep_schedule=(1.0, 1.0, 0.9, 0.8, 0.8) + (0.6,) * 6 + (0.3,) * 13,
            head_keep_schedule=(1.0,) * 16 + (13 / 16,) * 6 + (10 / 16,) * 2,
            value_keep=0.3,
        ),
        QuantConfig(key_msb_bits=8, key_lsb_bits=4, value_bits=8, query_bits=16, refetch_threshold=0.05),
    ),
}
_POLICIES["minilm"] = _POLICIES["bert-base"]  # a BERT encoder: the paper's BERT averages
# A decoder in generation: the GPT-2 family's kind of policy with a derived schedule (no release schedule
# exists for it): half the tokens on average, all heads, 8+4-bit progressive K.
_POLICIES["smollm2"] = (
    PruningConfig(token_keep=0.5, head_keep=1.0, value_keep=0.5, token_min_keep=4),
    QuantConfig(key_msb_bits=8, key_lsb_bits=4, value_bits=8, query_bits=16, refetch_threshold=0.05),
)


def workload_preset(model: str, accelerator: str = "spatten", prompt_len: int | None = None) -> Workload:
    """Return the preset workload for ``model`` on ``accelerator``.

    Parameters
    ----------
    model : str
        One of ``MODELS`` (bert-base, bert-large, gpt2-small, gpt2-medium, minilm, smollm2).
    accelerator : str
        One of ``ACCELERATORS``.
    prompt_len : int, optional
        Override the sequence (prompt) length.
    """
    if model not in MODELS:
        raise ValueError(f"workload = {model!r} is not one of {', '.join(MODELS)}")
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator = {accelerator!r} is not one of {', '.join(ACCELERATORS)}")
    shape = MODELS[model]
    if prompt_len is not None:
        check_int("seq_len", prompt_len, 1, 1 << 20)
        shape = dataclasses.replace(shape, prompt_len=prompt_len)
    pruning, quant = _POLICIES[model]
    return Workload(ACCELERATORS[accelerator], shape, pruning, quant)


# --- dict / YAML -------------------------------------------------------------------------------------

_SECTIONS: dict[str, type] = {
    "accelerator": AcceleratorConfig,
    "model": ModelShape,
    "pruning": PruningConfig,
    "quant": QuantConfig,
}


def to_dict(w: Workload) -> dict[str, dict[str, Any]]:
    """Plain nested dict of a workload (tuples as lists), the YAML form.

    A per-layer schedule's average target and unpruned fraction are left out while the schedule is in force:
    they have no effect, and :func:`from_dict` refuses them beside a schedule.
    """
    out: dict[str, dict[str, Any]] = {}
    for sec in _SECTIONS:
        d = dataclasses.asdict(getattr(w, sec))
        out[sec] = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
    for sched, knobs in DERIVED_BY.items():  # dead while a schedule is in force: not written
        if out["pruning"][sched]:
            for knob in knobs:
                del out["pruning"][knob]
    return out


def from_dict(data: Any, base: Workload | None = None, also_set: frozenset[str] = frozenset()) -> Workload:
    """Build a workload from a nested dict, overriding ``base`` (default preset: gpt2-medium).

    Unknown sections or keys raise ``ValueError`` naming them.
    """
    if base is None:
        base = workload_preset("gpt2-medium")
    if data is None:
        return base
    if not isinstance(data, dict):
        raise TypeError("config must be a mapping with sections accelerator, model, pruning, quant")
    parts: dict[str, Any] = {}
    for sec, val in data.items():
        if sec not in _SECTIONS:
            raise ValueError(f"unknown config section {sec!r} (allowed: {', '.join(_SECTIONS)})")
        if not isinstance(val, dict):
            raise TypeError(f"{sec} must be a mapping of fields")
        cls = _SECTIONS[sec]
        names = {f.name for f in fields(cls)}
        for k in val:
            if k not in names:
                raise ValueError(f"unknown config key {sec}.{k} (allowed: {', '.join(sorted(names))})")
        clean = {k: tuple(v) if isinstance(v, list) else v for k, v in val.items()}
        if sec == "pruning":
            clean = _resolve_schedules(base.pruning, clean, also_set)
        parts[sec] = dataclasses.replace(getattr(base, sec), **clean)
    return dataclasses.replace(base, **parts)


# An average keep target and the fraction of unpruned layers only shape a *derived* schedule; an explicit
# per-layer schedule fixes every layer and would make them dead settings.
DERIVED_BY = {
    "token_keep_schedule": ("token_keep", "token_unpruned_fraction"),
    "head_keep_schedule": ("head_keep", "head_unpruned_fraction"),
}


def _resolve_schedules(base: PruningConfig, new: dict[str, Any], also_set: frozenset[str]) -> dict[str, Any]:
    """Make every pruning override count: a keep target replaces an inherited per-layer schedule.

    ``pruning.token_keep`` given over a preset that has ``token_keep_schedule`` (the GPT-2 presets) drops the
    schedule, so the target is what is simulated. Giving a target and a non-empty schedule together, or only
    the unpruned fraction while a schedule stays in force, is an error naming both fields.
    """
    out = dict(new)
    for sched, (target, fraction) in DERIVED_BY.items():
        if sched in new and not isinstance(new[sched], tuple | list):
            raise TypeError(f"pruning.{sched} must be a list of ratios, got {str(new[sched])[:40]!r}")
        given_sched = sched in new and len(new[sched]) > 0
        for knob in (target, fraction):
            if knob in new and given_sched:
                raise ValueError(
                    f"pruning.{knob} and pruning.{sched} are both set: the schedule fixes every layer's "
                    f"ratio, so give one of them"
                )
        if sched in new or not getattr(base, sched):
            continue
        if target in new or f"pruning.{target}" in also_set:
            out[sched] = ()  # the target wins over the inherited schedule
        elif fraction in new:
            raise ValueError(
                f"pruning.{fraction} has no effect while pruning.{sched} is in force: set pruning.{target} "
                f"too (it replaces the schedule) or set pruning.{sched}: []"
            )
    return out


def check_override_keys(values: dict[str, Any], where: str = "config") -> None:
    """Refuse overrides (a sweep's fixed and swept fields) that set a non-empty schedule beside its target.

    Applied one field at a time, the later of the two would silently replace the earlier.

    Parameters
    ----------
    values : dict
        ``section.field`` -> the list of values it takes.
    where : str
        Prefix of the error message.
    """
    for sched, knobs in DERIVED_BY.items():
        if not any(len(v) > 0 for v in values.get(f"pruning.{sched}", ())):
            continue
        for knob in knobs:
            if f"pruning.{knob}" in values:
                raise ValueError(
                    f"{where}: pruning.{knob} and pruning.{sched} are both set: the schedule fixes every "
                    f"layer's ratio, so give one of them"
                )


def replace_path(w: Workload, dotted: str, value: Any, also_set: frozenset[str] = frozenset()) -> Workload:
    """Return ``w`` with one field replaced, addressed as ``section.field`` (validated).

    ``also_set`` names the other ``section.field`` keys the same override sets (a sweep applies its fields one
    at a time): an unpruned fraction is then not refused for a keep target that comes in another call.
    """
    sec, _, key = dotted.partition(".")
    if not key:
        raise ValueError(f"config field {dotted!r} must be written section.field")
    return from_dict({sec: {key: value}}, base=w, also_set=also_set)


def read_yaml(path: str | Path) -> Any:
    """The parsed contents of a config YAML file (not yet validated); a one-line ValueError if unreadable.

    Read through :mod:`models.safe_load`: not UTF-8, too large, nested too deep or an alias bomb is refused.
    """
    from spatten.models.safe_load import load_yaml as safe_load_yaml

    return safe_load_yaml(path, "config file")


def load_yaml(path: str | Path, base: Workload | None = None) -> Workload:
    """Load a workload from a YAML file, overriding ``base``; unknown keys are rejected by name."""
    return from_dict(read_yaml(path), base=base)


def save_yaml(w: Workload, path: str | Path) -> None:
    """Write a workload as YAML (atomic: a temporary file renamed into place)."""
    import yaml

    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(w), sort_keys=False))
    tmp.replace(p)
