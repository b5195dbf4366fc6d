"""Sweeps over today's LLM settings: a Hugging Face preset, the batch, the prompt length and the KV policy."""

from __future__ import annotations

import pytest
from spatten.sim.sweep.runner import run_sweep
from spatten.sim.sweep.spec import parse_spec


def test_an_hf_preset_sweeps_batch_prompt_length_and_policy(tmp_path) -> None:
    spec = parse_spec(
        {
            "name": "llm",
            "workloads": ["llama-3.2-1b"],
            "fixed": {"model.gen_tokens": 4},
            "sweep": {
                "model.batch": [1, 2],
                "model.prompt_len": [128, 256],
                "pruning.policy": ["spatten", "streamingllm"],
            },
        }
    )
    assert len(spec.points) == 8
    run = run_sweep(spec, tmp_path / "run", workers=1, processes=False, progress=False)
    r = run.results.set_index(["model.batch", "model.prompt_len", "pruning.policy"]).sort_index()
    assert (r["error"].fillna("") == "").all()
    one, two = r.loc[(1, 256, "streamingllm")], r.loc[(2, 256, "streamingllm")]
    # two sequences: twice the queries and the K/V traffic (StreamingLLM keeps no per-sequence state)
    assert two["queries"] == 2 * one["queries"]
    assert two["dram_bytes_k_msb"] == 2 * one["dram_bytes_k_msb"]
    assert (
        r.loc[(2, 256, "spatten"), "dram_bytes_state"] > 0 == r.loc[(1, 256, "spatten"), "dram_bytes_state"]
    )
    # a longer prompt: more tokens read per generated token
    assert (
        r.loc[(1, 256, "spatten"), "decode_dram_bytes_per_token"]
        > r.loc[(1, 128, "spatten"), "decode_dram_bytes_per_token"]
    )


@pytest.mark.parametrize(
    ("sweep", "needle"),
    [
        ({"model.batch": [0]}, "model.batch = 0 is outside the allowed range 1..4096"),
        (
            {"pruning.policy": ["lru"]},
            "pruning.policy = 'lru' is not one of spatten, h2o, streamingllm, quest",
        ),
    ],
)
def test_bad_llm_sweep_values_are_named(sweep: dict, needle: str) -> None:
    with pytest.raises(ValueError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        parse_spec({"name": "bad", "workloads": ["llama-3.2-1b"], "sweep": sweep})


def test_a_policy_on_an_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match="applies to generation workloads"):
        parse_spec({"name": "bad", "workloads": ["bert-base"], "sweep": {"pruning.policy": ["h2o"]}})
