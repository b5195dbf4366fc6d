"""KV-cache policies (models/kv_policy.py): golden pruners, shape traces and what the simulator charges."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from spatten.models.config import ModelShape, PruningConfig, Workload, workload_preset
from spatten.models.kv_policy import H2OPruner, QuestPruner, StreamingPruner, budget, policy_keys
from spatten.models.workload import shape_trace
from spatten.sim.api import simulate

from spatten.cli import main


def _pruning(policy: str, **kw) -> PruningConfig:
    return PruningConfig(policy=policy, token_keep=0.5, **kw)


def test_budgets_by_hand() -> None:
    p = _pruning("h2o")
    assert [budget(p, n) for n in (0, 1, 2, 3, 10, 11)] == [0, 1, 1, 1, 5, 5]
    assert list(policy_keys(p, [1, 10, 11])) == [1, 5, 5]
    s = _pruning("streamingllm", sink_tokens=4)
    assert list(policy_keys(s, [3, 6, 10, 20])) == [3, 5, 5, 10]  # at least the sinks and the newest token
    q = _pruning("quest", page_size=4)
    assert list(policy_keys(q, [3, 10, 16, 17])) == [3, 4, 8, 8]  # whole pages, at least one


def test_streaming_keeps_sinks_and_the_recent_window() -> None:
    p = StreamingPruner(_pruning("streamingllm", sink_tokens=2), layers=1, heads=2, max_tokens=20)
    p.begin_step(10)  # budget 5: sinks 0, 1 and the last three
    assert p.layer_tokens(0).tolist() == [0, 1, 7, 8, 9]
    assert p.layer_heads(0).tolist() == [0, 1]


def test_h2o_keeps_heavy_hitters_and_recent_tokens_and_never_readmits() -> None:
    p = H2OPruner(_pruning("h2o", recent_fraction=0.5), layers=1, heads=1, max_tokens=20)
    for n in range(1, 9):
        p.begin_step(n)
        live = p.layer_tokens(0)
        probs = np.zeros((1, 1, live.size))
        # token 2 and token 5 draw all the attention while they are alive
        for j, t in enumerate(live):
            probs[0, 0, j] = {2: 0.7, 5: 0.3}.get(int(t), 0.0)
        p.update(live, np.array([0]), probs, np.zeros((1, 1, 4)))
    # n = 8: budget 4, recent ceil(0.5 * 4) = 2 (tokens 6, 7), heavy 2 among the rest: 2 and 5
    assert live.tolist() == [2, 5, 6, 7]
    p.begin_step(9)  # budget 4: recent 7, 8; heavy 2 and 5 again; 6 evicted for good
    assert p.layer_tokens(0).tolist() == [2, 5, 7, 8]
    assert not p.alive[0, 6]


def test_quest_chooses_the_pages_with_the_best_bound() -> None:
    p = QuestPruner(_pruning("quest", page_size=2), layers=1, heads=2, max_tokens=16)
    p.begin_step(8)  # budget 4 tokens = 2 pages out of 4; the current page (6, 7) always
    k = np.zeros((1, 8, 2))
    k[0, 2] = [5.0, 0.0]  # page 1 holds the key that best matches q = (1, 0)
    k[0, 4] = [-5.0, 0.0]
    q = np.zeros((2, 1, 2))
    q[:, 0] = [1.0, 0.0]
    assert p.layer_tokens(0, q, k).tolist() == [2, 3, 6, 7]
    q[:, 0] = [-1.0, 0.0]  # now page 2's min bound wins
    assert p.layer_tokens(0, q, k).tolist() == [4, 5, 6, 7]


def _tiny(policy: str) -> Workload:
    w = workload_preset("smollm2")
    m = ModelShape("tiny", 4, 4, 64, 40, 3, "generation", kv_heads=2)
    return dataclasses.replace(
        w, model=m, pruning=dataclasses.replace(w.pruning, policy=policy, page_size=16)
    )


@pytest.mark.parametrize("policy", ["h2o", "streamingllm", "quest"])
def test_shape_trace_reads_the_budget_in_every_layer_and_head(policy: str) -> None:
    w = _tiny(policy)
    t = shape_trace(w)
    assert len(t) == 3 * 4 * 4  # steps x layers x heads: no head pruned
    for step, g in t.groupby("step"):
        assert (g["keys_fetched"] == policy_keys(w.pruning, 40 + step)).all()
    assert (t["token_topk"] == -1).all()


def test_simulator_charges_each_policy_its_metadata_by_hand() -> None:
    # 4 layers, 4 query heads on 2 K/V heads, steps at 41, 42, 43 tokens, token keep 0.5 of the context
    s = {p: simulate(_tiny(p)).summary for p in ("spatten", "h2o", "streamingllm", "quest")}
    assert s["spatten"]["dram_bytes_state"] == s["streamingllm"]["dram_bytes_state"] == 0
    # H2O: per (step, layer) the live tokens' 16-bit scores read and written back; budget 20, 21, 21
    assert s["h2o"]["dram_bytes_state"] == 4 * sum(2 * k * 16 / 8 for k in (20, 21, 21))
    # Quest: per (step, layer, K/V head) min and max of every 16-token page at 12-bit keys (8 + 4)
    pages = [3, 3, 3]  # ceil(41 / 16), ceil(42 / 16), ceil(43 / 16)
    assert s["quest"]["dram_bytes_state"] == sum(4 * 2 * 2 * pg * 64 * 12 / 8 for pg in pages)


def test_policy_in_the_accuracy_harness_changes_perplexity_and_replays(tmp_path, capsys) -> None:
    base = ["accuracy", "--window-len", "24", "--windows", "1", "--format", "json"]
    assert main([*base, "--policy", "streamingllm", "--out", str(tmp_path / "s")]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["perplexity"] != s["dense_perplexity"] and s["reached_token_keep"] < 1.0
    cfg = tmp_path / "c.yaml"
    cfg.write_text("pruning:\n  policy: streamingllm\n")
    trace = str(tmp_path / "s" / "trace.parquet")
    assert main(["simulate", "--workload", "smollm2", "--config", str(cfg), "--trace", trace,
                 "--format", "json"]) == 0  # fmt: skip
    r = json.loads(capsys.readouterr().out)
    assert r["dram_bytes_total"] == s["dram_bytes_total"]
    for argv, needle in (
        ([*base, "--policy", "h2o", "--mode", "prefill"], "runs on decode steps only"),
        (["simulate", "--workload", "bert-base", "--policy", "quest"], "applies to generation workloads"),
        ([*base, "--policy", "h2o", "--dense"], "no effect with --dense"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and needle in err, err
