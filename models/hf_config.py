"""Model shapes from a Hugging Face ``config.json`` (a local file; nothing is downloaded).

Fields read (anything else is ignored):

* ``num_hidden_layers``, ``num_attention_heads``, ``max_position_embeddings``: required;
* ``num_key_value_heads``: K/V heads (absent: one per query head, multi-head attention); it must divide the
  query heads (grouped-query attention; 1 is multi-query);
* ``head_dim``: wins over ``hidden_size / num_attention_heads`` when present (Gemma 3: 256 with a hidden
  size of 640 and 4 heads);
* ``sliding_window``, ``use_sliding_window``, ``max_window_layers``, ``layer_types``: which layers attend
  to a window of recent tokens only. ``layer_types`` (``"full_attention"`` / ``"sliding_attention"`` per
  layer) decides when present; else a ``sliding_window`` makes every layer sliding unless
  ``use_sliding_window`` is false (Qwen2), and with Qwen2's ``max_window_layers`` only the layers from that
  index on slide;
* ``rope_scaling`` (older files) or ``rope_parameters`` (transformers 5), kept as read: RoPE does not change
  the attention's traffic, but both spellings must load.

Latent-KV attention (DeepSeek's ``kv_lora_rank``) caches a compressed vector per token instead of K and V per
head; the simulator cannot express it, so such a file is refused naming the field.

Dense K/V bytes per token: ``2 x layers x kv_heads x head_dim x bits / 8`` (K and V, every layer, every K/V
head); :meth:`HFShape.kv_bytes_per_token`.

:data:`HF_PRESETS` holds the architecture fields of six published configs, each with its source.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "HFShape",
    "HF_PRESETS",
    "kv_bytes_per_token",
    "parse_hf_config",
    "load_hf_config",
    "hf_preset",
    "hf_workload",
]

FULL, SLIDING = "full_attention", "sliding_attention"
#: Default run of an HF shape: a 992-token prompt and 32 generated tokens (the GPT-2 presets' lengths),
#: shortened to fit the model's context.
DEFAULT_PROMPT, DEFAULT_GEN = 992, 32


@dataclass(frozen=True)
class HFShape:
    """The attention shape of one transformer, as its config.json states it.

    Attributes
    ----------
    name : str
        Preset name, else the config's ``_name_or_path`` or the file's folder name.
    layers, heads, kv_heads, head_dim : int
        Decoder layers, query heads, K/V heads and the per-head dimension.
    max_position : int
        ``max_position_embeddings``: the longest context the model was built for.
    sliding_window : int or None
        Window of the sliding layers (None: no layer slides).
    layer_types : tuple of str
        ``"full_attention"`` or ``"sliding_attention"`` per layer.
    rope : dict
        ``rope_scaling`` / ``rope_parameters`` as read (may be empty).
    source : str
        Where the fields come from (a file path or the published config's address).
    """

    name: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    max_position: int
    sliding_window: int | None
    layer_types: tuple[str, ...]
    rope: dict = dataclasses.field(default_factory=dict)
    source: str = ""

    @property
    def sliding_layers(self) -> int:
        """How many layers attend to a window only."""
        return sum(t == SLIDING for t in self.layer_types)

    def kv_bytes_per_token(self, bits: int) -> float:
        """Dense K/V bytes one token adds to the cache (:func:`kv_bytes_per_token`)."""
        return kv_bytes_per_token(self.layers, self.kv_heads, self.head_dim, bits)


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int, bits: int) -> float:
    """Dense K/V bytes one token adds to the cache: ``2 x layers x kv_heads x head_dim x bits / 8``."""
    return 2 * layers * kv_heads * head_dim * bits / 8


def _cut(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _int(data: Mapping[str, Any], key: str, where: str, lo: int, hi: int, default: Any = ...) -> Any:
    if key not in data or data[key] is None:
        if default is ...:
            raise ValueError(f"{where}: required field {key} is missing")
        return default
    v = data[key]
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ValueError(f"{where}: {key} = {_cut(v)} is outside the allowed range {lo}..{hi} (an integer)")
    return v


def parse_hf_config(data: Any, source: str = "config.json", name: str | None = None) -> HFShape:
    """The :class:`HFShape` of a parsed config.json (module docstring for the fields and rules).

    Raises
    ------
    ValueError
        One line naming ``source`` and the field: a required field missing, a value out of range, heads not
        divisible by K/V heads, latent-KV attention, ``layer_types`` of the wrong length or kind.
    """
    where = str(source)
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: a config.json is a JSON object, got {type(data).__name__}")
    if data.get("kv_lora_rank") is not None:
        raise ValueError(
            f"{where}: kv_lora_rank = {_cut(data['kv_lora_rank'])}: latent-KV attention (DeepSeek MLA) "
            "caches one compressed vector per token, not K and V per head; the simulator cannot express it"
        )
    layers = _int(data, "num_hidden_layers", where, 1, 1024)
    heads = _int(data, "num_attention_heads", where, 1, 1024)
    kv_heads = _int(data, "num_key_value_heads", where, 1, 1024, default=heads)
    if heads % kv_heads:
        raise ValueError(
            f"{where}: num_attention_heads = {heads} is not a multiple of num_key_value_heads = {kv_heads}"
        )
    if data.get("head_dim") is not None:
        head_dim = _int(data, "head_dim", where, 1, 1024)
    else:
        hidden = _int(data, "hidden_size", where, 1, 1 << 20)
        if hidden % heads:
            raise ValueError(
                f"{where}: hidden_size = {hidden} is not a multiple of num_attention_heads = {heads} "
                "(and no head_dim is given)"
            )
        head_dim = hidden // heads
        if head_dim > 1024:
            raise ValueError(f"{where}: head dimension {head_dim} is outside the allowed range 1..1024")
    max_position = _int(data, "max_position_embeddings", where, 1, 1 << 24)
    window = _int(data, "sliding_window", where, 1, 1 << 24, default=None)
    use = data.get("use_sliding_window", True)
    if not isinstance(use, bool):
        raise ValueError(f"{where}: use_sliding_window = {_cut(use)} must be true or false")
    types = data.get("layer_types")
    if types is not None:
        if (
            not isinstance(types, list)
            or len(types) != layers
            or any(t not in (FULL, SLIDING) for t in types)
        ):
            raise ValueError(
                f"{where}: layer_types must list {layers} entries of {FULL!r} or {SLIDING!r}, "
                f"got {_cut(types)}"
            )
        if SLIDING in types and window is None:
            raise ValueError(f"{where}: layer_types has sliding layers but sliding_window is missing")
        layer_types = tuple(types)
    elif window is not None and use:
        first = _int(data, "max_window_layers", where, 0, layers, default=0)
        layer_types = tuple(SLIDING if i >= first else FULL for i in range(layers))
    else:
        layer_types = (FULL,) * layers
    if SLIDING not in layer_types:
        window = None
    rope = data.get("rope_parameters", data.get("rope_scaling")) or {}
    if not isinstance(rope, Mapping):
        raise ValueError(f"{where}: rope_scaling / rope_parameters = {_cut(rope)} must be an object or null")
    if name is None:
        given = data.get("_name_or_path")
        name = given.rsplit("/", 1)[-1] if isinstance(given, str) and given else Path(where).parent.name
    name = (name or "hf-model")[:64]
    return HFShape(
        name, layers, heads, kv_heads, head_dim, max_position, window, layer_types, dict(rope), where
    )


def load_hf_config(path: str | os.PathLike) -> HFShape:
    """Read a local config.json (UTF-8 JSON within the package's input budgets) and parse it."""
    from spatten.models.safe_load import load_json

    return parse_hf_config(load_json(path, what="--hf-config"), source=str(path))


# The architecture fields of published configs (values as published; the hub address is each one's source).
# Only what parse_hf_config reads is kept.
_PUBLISHED: dict[str, tuple[dict[str, Any], str]] = {
    "llama-3.1-8b": (
        {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096,
         "max_position_embeddings": 131072,
         "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3"}},
        "https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json",
    ),
    "llama-3.2-1b": (
        {"num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 2048,
         "head_dim": 64, "max_position_embeddings": 131072,
         "rope_scaling": {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3"}},
        "https://huggingface.co/meta-llama/Llama-3.2-1B/blob/main/config.json",
    ),
    "qwen2.5-7b": (
        {"num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4, "hidden_size": 3584,
         "max_position_embeddings": 131072, "sliding_window": 131072, "use_sliding_window": False,
         "max_window_layers": 28},
        "https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json",
    ),
    "mistral-7b": (
        {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096,
         "max_position_embeddings": 32768, "sliding_window": 4096},
        "https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json",
    ),
    "gemma-3-270m": (
        {"num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1, "hidden_size": 640,
         "head_dim": 256, "max_position_embeddings": 32768, "sliding_window": 512,
         "layer_types": [FULL if (i + 1) % 6 == 0 else SLIDING for i in range(18)], "rope_scaling": None},
        "https://huggingface.co/google/gemma-3-270m/blob/main/config.json",
    ),
    "smollm2-135m": (
        {"num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "hidden_size": 576,
         "max_position_embeddings": 8192, "rope_scaling": None},
        "https://huggingface.co/HuggingFaceTB/SmolLM2-135M/blob/main/config.json",
    ),
}  # fmt: skip

#: Shapes of the published configs above, by preset name.
HF_PRESETS: dict[str, HFShape] = {
    name: parse_hf_config(fields, source=src, name=name) for name, (fields, src) in _PUBLISHED.items()
}


def hf_preset(name: str) -> HFShape:
    """One of :data:`HF_PRESETS`."""
    try:
        return HF_PRESETS[name]
    except KeyError:
        raise ValueError(f"model {name!r} is not one of {', '.join(HF_PRESETS)}") from None


def hf_workload(
    shape: HFShape,
    accelerator: str = "spatten",
    *,
    prompt_len: int | None = None,
    gen_tokens: int | None = None,
    batch: int = 1,
    beyond_max_position: bool = False,
) -> Any:
    """A generation workload of ``shape`` with the decoder policy (the ``smollm2`` preset's pruning and
    quantization: GQA-aware, token keep 0.5, value keep 0.5, 8+4-bit progressive K).

    The prompt pass is in the trace (step 0: one causal row per layer and head standing for its queries,
    :mod:`spatten.models.batch`), sliding layers read their window at most, and ``batch`` sequences decode
    together, each with its own K/V cache and pruning state.

    Parameters
    ----------
    shape : HFShape
    accelerator : str
        Hardware preset.
    prompt_len, gen_tokens : int, optional
        Default: 32 generated tokens after a prompt of 992 tokens, shortened to fit the context.
    batch : int
        Sequences decoded together, 1..4096.
    beyond_max_position : bool
        Allow a context longer than ``max_position_embeddings`` (refused otherwise).

    Raises
    ------
    ValueError
        A length or batch out of range, or a context beyond ``max_position_embeddings`` without
        ``beyond_max_position``.
    """
    from spatten.models.config import ModelShape, Workload, check_int, workload_preset

    if gen_tokens is not None:
        check_int("--gen-tokens", gen_tokens, 1, 1 << 16)
    if prompt_len is not None:
        check_int("--prompt-len", prompt_len, 1, 1 << 20)
    check_int("--batch", batch, 1, 4096)
    gen = DEFAULT_GEN if gen_tokens is None else gen_tokens
    prompt = max(1, min(DEFAULT_PROMPT, shape.max_position - gen)) if prompt_len is None else prompt_len
    total = prompt + gen
    if total > shape.max_position and not beyond_max_position:
        raise ValueError(
            f"prompt {prompt} + {gen} generated tokens exceed max_position_embeddings = "
            f"{shape.max_position} of {shape.name}: shorten them or pass --beyond-max-position"
        )
    base = workload_preset("smollm2", accelerator)
    sliding = tuple(i for i, t in enumerate(shape.layer_types) if t == SLIDING)
    model = ModelShape(shape.name, shape.layers, shape.heads, shape.head_dim, prompt, gen, "generation",
                       prompt_in_trace=True, kv_heads=shape.kv_heads, batch=batch,
                       sliding_window=shape.sliding_window or 0 if sliding else 0,
                       sliding_layers=sliding)  # fmt: skip
    return Workload(base.accelerator, model, base.pruning, base.quant)
