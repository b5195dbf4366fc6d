"""sim.accuracy_search: the policy search (on synthetic quality), its constraints, its cache and replay."""

from __future__ import annotations

import itertools
import json

import pandas as pd
import pytest
from spatten.sim import accuracy_search as acs
from spatten.sim.power.energy import ACTIONS

LADDERS = acs.LADDERS
START = {"key_msb_bits": 12, "value_bits": 12, "value_keep": 1.0, "token_keep": 1.0, "head_keep": 1.0}


def dram(p: dict) -> float:
    """A synthetic DRAM reduction that grows down every ladder: K and V bytes over fp32."""
    k = p["key_msb_bits"] * p["token_keep"] * p["head_keep"]
    v = p["value_bits"] * p["value_keep"] * p["token_keep"] * p["head_keep"]
    return 64.0 / (k + v)


# Quality holds down to these values and breaks below them (a box of feasible policies).
LIMITS = {"key_msb_bits": 6, "value_bits": 8, "value_keep": 0.7, "token_keep": 0.9, "head_keep": 1.0}


def box_ok(p: dict) -> bool:
    return all(p[k] >= v for k, v in LIMITS.items())


def grid() -> list[dict]:
    return [dict(zip(LADDERS, vals, strict=True)) for vals in itertools.product(*LADDERS.values())]


def run(evaluate, is_feasible=lambda r: r["ok"], start=START) -> acs.Search:
    return acs.coordinate_search(start, LADDERS, evaluate, is_feasible)


def box_eval(p: dict) -> dict:
    return {"dram_reduction": dram(p), "ok": box_ok(p)}


def test_finds_the_best_feasible_point_of_a_box() -> None:
    s = run(box_eval)
    # brute force over all 6912 policies of the ladders
    want = max((p for p in grid() if box_ok(p)), key=dram)
    assert s.complete and s.best is not None
    assert s.best.policy == want == LIMITS
    # one failed trial per knob at most (the knob is then frozen), plus the start
    assert sum(not t.accepted for t in s.trials) <= len(LADDERS)
    assert len(s.trials) < 20


def loss(p: dict) -> float:
    """Each step down a ladder costs quality; the knobs share one budget (a knapsack, not a box)."""
    cost = {"key_msb_bits": 0.3, "value_bits": 0.25, "value_keep": 0.2, "token_keep": 0.6, "head_keep": 0.8}
    return sum(c * list(LADDERS[k]).index(p[k]) for k, c in cost.items())


def test_respects_a_shared_budget_and_stops_at_a_local_optimum() -> None:
    budget = 1.3
    s = run(lambda p: {"dram_reduction": dram(p), "loss": loss(p)}, lambda r: r["loss"] <= budget)
    assert s.complete
    for t in s.trials:
        assert t.feasible == (loss(t.policy) <= budget)
        assert not t.accepted or t.feasible
    best = s.best.policy
    assert loss(best) <= budget
    assert dram(best) == max(dram(t.policy) for t in s.trials if loss(t.policy) <= budget)
    # no single further step is both feasible and better
    for k, ladder in LADDERS.items():
        i = list(ladder).index(best[k])
        if i + 1 < len(ladder):
            nb = {**best, k: ladder[i + 1]}
            assert loss(nb) > budget or dram(nb) <= dram(best)
    # better than the start and than spending the budget on one knob in a fixed order would need
    assert dram(best) > dram(START)


def test_deterministic() -> None:
    def ev(p):
        return {"dram_reduction": dram(p), "loss": loss(p)}

    a = run(ev, lambda r: r["loss"] <= 1.0)
    b = run(ev, lambda r: r["loss"] <= 1.0)
    assert [(t.policy, t.knob, t.accepted) for t in a.trials] == [
        (t.policy, t.knob, t.accepted) for t in b.trials
    ]


def test_a_step_that_does_not_reduce_dram_is_not_kept() -> None:
    def ev(p):  # 4-bit keys refetch so much that they move more bytes than 6-bit ones
        d = dram(p) if p["key_msb_bits"] != 4 else dram({**p, "key_msb_bits": 8})
        return {"dram_reduction": d, "ok": True}

    s = run(ev)
    assert s.best.policy["key_msb_bits"] == 6
    four = [t for t in s.trials if t.policy["key_msb_bits"] == 4]
    assert len(four) == 1 and four[0].feasible and not four[0].accepted


def test_infeasible_start_ends_the_search() -> None:
    s = run(lambda p: {"dram_reduction": dram(p), "ok": False})
    assert s.complete and s.best is None and len(s.trials) == 1


def test_a_missing_result_stops_the_replay_on_the_same_path() -> None:
    full = run(box_eval)
    for n in (0, 3, len(full.trials) - 1):
        seen = []

        def ev(p, n=n, seen=seen):
            if len(seen) == n:
                return None
            seen.append(p)
            return box_eval(p)

        part = run(ev)
        assert not part.complete
        assert [t.policy for t in part.trials] == [t.policy for t in full.trials[:n]]


def test_start_must_be_on_the_ladders() -> None:
    with pytest.raises(ValueError, match="not on its ladder"):
        run(box_eval, start={**START, "value_keep": 0.85})


def test_constraints() -> None:
    assert acs.feasible("smollm2", {"perplexity_increase": 0.01})
    assert not acs.feasible("smollm2", {"perplexity_increase": 0.0101})
    assert acs.feasible("minilm", {"cosine_mean": 0.99, "task_accuracy_drop": 0.005})
    assert not acs.feasible("minilm", {"cosine_mean": 0.9899, "task_accuracy_drop": 0.0})
    assert not acs.feasible("minilm", {"cosine_mean": 0.999, "task_accuracy_drop": 0.0625})
    assert acs.feasible("minilm", {"cosine_mean": 0.999})  # unlabelled text: cosine only


def test_policy_workload() -> None:
    w = acs.policy_workload("smollm2", {**START, "key_msb_bits": 6, "value_keep": 0.8})
    assert (w.quant.key_msb_bits, w.quant.key_lsb_bits, w.quant.progressive) == (6, 6, True)
    assert w.pruning.enabled and w.pruning.value_keep == 0.8 and w.pruning.token_keep == 1.0
    assert w.pruning.token_min_keep == 4  # the preset's other pruning fields stay
    w = acs.policy_workload("minilm", START)
    assert not w.pruning.enabled and w.quant.enabled
    assert (w.quant.key_lsb_bits, w.quant.progressive) == (0, False)
    # the gentlest rung of every ladder, whatever the preset's quantization (SmolLM2: 8+4-bit PQ)
    assert acs.start_policy("smollm2") == {"key_msb_bits": 12, "value_bits": 12, "value_keep": 1.0,
                                           "token_keep": 1.0, "head_keep": 1.0}  # fmt: skip


# --- the search on a model, through the cache -------------------------------------------------------------

DENSE_SECONDS = 1e-3


def fake_measure(w, model, text, windows, window_len) -> dict:
    """A synthetic record: quality from LIMITS, bytes from dram(), time halved by any pruning or PQ."""
    q, pr = w.quant, w.pruning
    p = {"key_msb_bits": q.key_msb_bits if q.enabled else 12, "value_bits": q.value_bits if q.enabled else 12}
    p.update({k: getattr(pr, k) if pr.enabled else 1.0 for k in ("value_keep", "token_keep", "head_keep")})
    dense = not q.enabled and not pr.enabled
    seconds = DENSE_SECONDS if dense else DENSE_SECONDS / 2
    rec = {
        "perplexity": 10.0,
        "dense_perplexity": 10.0,
        "perplexity_increase": 0.0 if box_ok(p) else 0.5,
        "cycles": int(seconds * 1e9),
        "seconds": seconds,
        "dram_bytes_total": 1e6 / dram(p),
        "dram_reduction": dram(p),
        **{f"reached_{k}": p.get(k, 0.0) for k in ("token_keep", "head_keep", "value_keep", "refetch_rate")},
        "actions": {a: (1e6 / dram(p) if a.startswith("dram") else 1e3) for a in ACTIONS},
    }
    rec["actions"]["seconds"] = seconds
    return rec


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(acs, "_measure", fake_measure)
    return tmp_path / "accuracy_search"


def no_run(*a, **k):
    raise AssertionError("a cached point ran again")


def test_model_search_is_cached_and_replays(cache, monkeypatch) -> None:
    kw = {"windows": 1, "window_len": 8}
    s = acs.search_model("smollm2", **kw)
    assert s.complete and s.best is not None
    pts = s.points
    assert pts["role"].iloc[0] == "dense" and (pts["role"] == "start").sum() == 1
    assert len(list(cache.glob("*.json"))) == len(pts)  # one record per point
    b = s.best
    want = max((p for p in grid() if box_ok(p) and p["key_msb_bits"] <= 8 and p["value_bits"] <= 8), key=dram)
    assert {k: b[k] for k in LADDERS} == want
    assert b["speedup"] == pytest.approx(2.0)  # the fake halves the dense run's time
    assert b["energy_saving"] > 1.0  # fewer DRAM bits, shorter leakage
    assert pts["chosen"].sum() == 1 and bool(pts.loc[pts["chosen"], "feasible"].iloc[0])

    monkeypatch.setattr(acs, "_measure", no_run)
    again = acs.search_model("smollm2", **kw)
    pd.testing.assert_frame_equal(again.points, pts)
    replay = acs.cached_search("smollm2", **kw)
    assert replay.complete
    pd.testing.assert_frame_equal(replay.points, pts)
    assert replay.best == s.best

    # a damaged or missing record: the replay stops there, incomplete, on the same path
    last = acs.policy_workload("smollm2", pts.iloc[-1][list(LADDERS)].to_dict())
    acs._record_path(last, "smollm2", None, 1, 8).write_text("{not json")
    part = acs.cached_search("smollm2", **kw)
    assert not part.complete and len(part.points) == len(pts) - 1
    pd.testing.assert_frame_equal(part.points.drop(columns="chosen"), pts.iloc[:-1].drop(columns="chosen"))


def test_replay_of_an_empty_cache(cache, monkeypatch) -> None:
    monkeypatch.setattr(acs, "_measure", no_run)
    s = acs.cached_search("minilm", windows=2, window_len=8)
    assert not s.complete and s.best is None and len(s.points) == 0


def test_records_are_keyed_by_sizes(cache) -> None:
    acs.search_model("smollm2", windows=1, window_len=8)
    n = len(list(cache.glob("*.json")))
    assert not acs.cached_search("smollm2", windows=1, window_len=9).complete
    assert not acs.cached_search("smollm2", windows=2, window_len=8).complete
    assert len(list(cache.glob("*.json"))) == n
    rec = json.loads(next(cache.glob("*.json")).read_text())
    assert rec["record_version"] == acs.RECORD_VERSION and set(ACTIONS) <= set(rec["actions"])


@pytest.mark.parametrize(
    ("kw", "needle"), [({"windows": 0}, "windows 0"), ({"window_len": -1}, "window_len -1")]
)
def test_bad_sizes(cache, kw, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        acs.search_model("smollm2", **kw)
    with pytest.raises(ValueError, match="is not one of"):
        acs.search_model("bert")
