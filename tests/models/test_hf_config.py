"""Shapes from Hugging Face config.json files: presets, both RoPE spellings, dense K/V bytes, bad files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from spatten.models.hf_config import HF_PRESETS, hf_workload, parse_hf_config
from spatten.models.workload import shape_trace
from spatten.sim.api import simulate

from spatten.cli import main

# (layers, heads, K/V heads, head_dim, max_position, sliding layers, window) as the published configs state
# them; head_dim is hidden_size / heads where the file gives none (Llama-3.1-8B 4096/32, Qwen2.5-7B
# 3584/28, Mistral-7B 4096/32, SmolLM2 576/9) and the file's own otherwise (Llama-3.2-1B 64, Gemma 3 256).
PUBLISHED = {
    "llama-3.1-8b": (32, 32, 8, 128, 131072, 0, None),
    "llama-3.2-1b": (16, 32, 8, 64, 131072, 0, None),
    "qwen2.5-7b": (28, 28, 4, 128, 131072, 0, None),  # use_sliding_window: false
    "mistral-7b": (32, 32, 8, 128, 32768, 32, 4096),  # v0.1: every layer slides
    "gemma-3-270m": (18, 4, 1, 256, 32768, 15, 512),  # every sixth layer full
    "smollm2-135m": (30, 9, 3, 64, 8192, 0, None),
}
# Dense K/V bytes per token at 16 bits, 2 x layers x kv_heads x head_dim x 2 B, worked out by hand.
KV_BYTES_16B = {
    "llama-3.1-8b": 2 * 32 * 8 * 128 * 2,  # 131,072
    "llama-3.2-1b": 2 * 16 * 8 * 64 * 2,  # 32,768
    "qwen2.5-7b": 2 * 28 * 4 * 128 * 2,  # 57,344
    "mistral-7b": 2 * 32 * 8 * 128 * 2,  # 131,072
    "gemma-3-270m": 2 * 18 * 1 * 256 * 2,  # 18,432
    "smollm2-135m": 2 * 30 * 3 * 64 * 2,  # 23,040
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_presets_have_the_published_shapes(name: str) -> None:
    s = HF_PRESETS[name]
    got = (s.layers, s.heads, s.kv_heads, s.head_dim, s.max_position, s.sliding_layers, s.sliding_window)
    assert got == PUBLISHED[name]
    assert s.kv_bytes_per_token(16) == KV_BYTES_16B[name]
    assert s.source.startswith("https://huggingface.co/") and s.source.endswith("/config.json")


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_dense_kv_bytes_in_the_simulator_equal_the_formula(name: str) -> None:
    """A 100-token prompt and one generated token, dense on SpAtten's hardware, at the datapath's
    unquantized width (12 bits): the prompt pass reads K and V of its 100 tokens once per layer and K/V head
    (100 keys of every preset fit on chip, so a group's query heads and the prompt's queries share one
    fetch), the generated token those of all 101."""
    w = hf_workload(HF_PRESETS[name], prompt_len=100, gen_tokens=1)
    s = simulate(w, baseline="dense").summary
    bits = w.quant.unquantized_bits
    assert s["dram_bytes_k_msb"] + s["dram_bytes_v"] == KV_BYTES_16B[name] * bits / 16 * (100 + 101)


def test_sliding_layers_read_their_window_only() -> None:
    """Gemma 3 270M: 15 of 18 layers slide over 512 tokens. One generated token after 1,000, dense: each
    full layer reads 1,001 tokens' K and V, each sliding layer 512 (K/V heads 1, head_dim 256, 12 bits).
    Even 512 such keys (192 KB) overflow half the K SRAM, so each of the 4 query heads fetches them."""
    shape = HF_PRESETS["gemma-3-270m"]
    w = hf_workload(shape, prompt_len=1000, gen_tokens=1)
    w = dataclasses.replace(w, model=dataclasses.replace(w.model, prompt_in_trace=False))
    s = simulate(w, baseline="dense").summary
    per_token_layer = 2 * 1 * 256 * 12 / 8
    assert s["dram_bytes_k_msb"] + s["dram_bytes_v"] == 4 * per_token_layer * (3 * 1001 + 15 * 512)


def test_batch_multiplies_the_traffic_and_charges_the_pruning_state() -> None:
    """Eight sequences read eight K/V caches: dense bytes x 8 exactly; with pruning, each (step, layer)
    also swaps every sequence's importance scores (16 bits per live token and per head, out and in)."""
    shape = HF_PRESETS["llama-3.2-1b"]
    one, eight = (hf_workload(shape, prompt_len=300, gen_tokens=2, batch=b) for b in (1, 8))
    d1, d8 = (simulate(w, baseline="dense").summary for w in (one, eight))
    for k in ("dram_bytes_q", "dram_bytes_k_msb", "dram_bytes_v", "queries"):
        assert d8[k] == 8 * d1[k]
    assert d1["dram_bytes_state"] == d8["dram_bytes_state"] == 0  # dense prunes nothing: no state
    s1, s8 = (simulate(w).summary for w in (one, eight))
    assert s1["dram_bytes_state"] == 0  # one sequence keeps its state on chip
    trace = shape_trace(eight)
    first = trace.drop_duplicates(["step", "layer"])
    heads = trace.groupby(["step", "layer"], sort=False).size().to_numpy()
    want = (8 * 2 * (first["keys_fetched"].to_numpy() + heads) * 16 / 8).sum()
    assert s8["dram_bytes_state"] == want
    assert s8["dram_bytes_k_msb"] == 8 * s1["dram_bytes_k_msb"]


def test_causal_prompt_rows_read_half_the_keys_per_query() -> None:
    """The prompt pass is one row per (layer, head) standing for its queries; query i reads i + 1 keys."""
    from spatten.models.batch import causal_mean_keys

    assert causal_mean_keys(4, 4) == (1 + 2 + 3 + 4) / 4
    assert causal_mean_keys(3, 10) == (8 + 9 + 10) / 3  # the last 3 queries of 10 keys
    assert causal_mean_keys(6, 6, 3) == (1 + 2 + 3 + 3 + 3 + 3) / 6  # a window of 3
    assert causal_mean_keys(2, 10, 4) == 4.0
    w = hf_workload(HF_PRESETS["smollm2-135m"], prompt_len=64, gen_tokens=1)
    t = shape_trace(w)
    prompt = t[t["step"] == 0]
    assert len(prompt) == 30 * 9 and (prompt["queries"] == prompt["keys_fetched"]).all()
    assert (prompt["keys_per_query"] == (prompt["keys_fetched"] + 1) / 2).all()


def test_both_rope_spellings_and_per_layer_types_load() -> None:
    base = {
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "hidden_size": 64,
        "max_position_embeddings": 64,
    }
    old = parse_hf_config({**base, "rope_scaling": {"rope_type": "linear", "factor": 2.0}})
    new = parse_hf_config({**base, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}})
    types = ["sliding_attention", "full_attention"]
    rope = {"full_attention": {"rope_theta": 1e6}, "sliding_attention": {"rope_theta": 1e4}}
    split = parse_hf_config({**base, "sliding_window": 8, "layer_types": types, "rope_parameters": rope})
    assert old.rope["factor"] == 2.0 and new.rope["rope_theta"] == 1e6 and "full_attention" in split.rope
    assert (old.kv_heads, old.head_dim) == (4, 16)  # no num_key_value_heads: multi-head
    assert split.layer_types == ("sliding_attention", "full_attention") and split.sliding_window == 8
    qwen = parse_hf_config({**base, "sliding_window": 8, "use_sliding_window": True, "max_window_layers": 1})
    assert qwen.layer_types == ("full_attention", "sliding_attention")  # layers from max_window_layers on


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"num_attention_heads": None}, "required field num_attention_heads is missing"),
        ({"max_position_embeddings": None}, "required field max_position_embeddings is missing"),
        ({"num_key_value_heads": 3}, "num_attention_heads = 4 is not a multiple of num_key_value_heads = 3"),
        ({"kv_lora_rank": 512}, "kv_lora_rank = 512: latent-KV attention"),
        ({"head_dim": 0}, "head_dim = 0 is outside the allowed range 1..1024"),
        ({"num_hidden_layers": "32"}, "num_hidden_layers = '32' is outside the allowed range"),
        ({"layer_types": ["full_attention"]}, "layer_types must list 2 entries"),
        ({"use_sliding_window": "yes"}, "use_sliding_window = 'yes' must be true or false"),
        ({"hidden_size": 66}, "hidden_size = 66 is not a multiple of num_attention_heads = 4"),
    ],
)
def test_bad_configs_are_one_line(change: dict, needle: str) -> None:
    data = {
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "hidden_size": 64,
        "max_position_embeddings": 64,
    }
    data = {k: v for k, v in {**data, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        parse_hf_config(data, source="c.json")


def test_cli_hf_config_runs_and_refuses(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "config.json"
    fields = {"num_hidden_layers": 4, "num_attention_heads": 8, "num_key_value_heads": 2, "hidden_size": 256}
    cfg.write_text(json.dumps({**fields, "max_position_embeddings": 512, "_name_or_path": "org/tiny"}))
    assert (
        main(
            ["simulate", "--hf-config", str(cfg), "--seq-len", "200", "--gen-tokens", "4", "--format", "json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["dram_reduction"] > 1.0
    for argv, needle in (
        (["--seq-len", "600"], "exceed max_position_embeddings = 512 of tiny"),
        (["--workload", "gpt2-small"], "--hf-config gives the model"),
        (["--gen-tokens", "0"], "--gen-tokens"),
    ):
        assert main(["simulate", "--hf-config", str(cfg), *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
    assert main(["simulate", "--workload", "gpt2-small", "--batch", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch = 0 is outside the allowed range 1..4096" in err, err
    assert main(["simulate", "--workload", "bert-base", "--batch", "2"]) == 2
    assert "--batch applies to generation workloads" in capsys.readouterr().err
    assert main(["models", "--format", "json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert set(PUBLISHED) <= set(names) and "gpt2-medium" in names
