"""sim.accuracy: one accuracy point (real model, policy, simulation) and its disk cache."""

from __future__ import annotations

import pytest
from spatten.models.config import replace_path, workload_preset
from spatten.sim import accuracy


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path))
    return tmp_path / "accuracy"


def test_cache_stores_reuses_and_keys_on_the_policy(cache, monkeypatch) -> None:
    w = workload_preset("minilm")
    kw = {"windows": 4, "window_len": 8}
    assert accuracy.cached_accuracy(w, "minilm", only_cached=True, **kw) is None
    first = accuracy.cached_accuracy(w, "minilm", **kw)
    assert len(list(cache.glob("*.json"))) == 1
    assert 0.0 < first["cosine_mean"] <= 1.0 and first["dram_reduction"] > 1.0

    def no_run(*a, **k):
        raise AssertionError("a cached point ran again")

    monkeypatch.setattr(accuracy, "run_accuracy", no_run)
    assert accuracy.cached_accuracy(w, "minilm", **kw) == first
    w2 = replace_path(w, "pruning.value_keep", 0.5)
    assert accuracy.cache_key(w2, "minilm", None, 4, 8, None, "fixed") != accuracy.cache_key(
        w, "minilm", None, 4, 8, None, "fixed"
    )
    assert accuracy.cache_key(w, "minilm", "other text", 4, 8, None, "fixed") != accuracy.cache_key(
        w, "minilm", None, 4, 8, None, "fixed"
    )
    assert accuracy.cached_accuracy(w2, "minilm", only_cached=True, **kw) is None


def test_damaged_cache_entry_is_recomputed(cache) -> None:
    w = workload_preset("minilm")
    key = accuracy.cache_key(w, "minilm", None, 4, 8, None, "fixed")
    cache.mkdir(parents=True)
    (cache / f"{key}.json").write_text("{not json")
    got = accuracy.cached_accuracy(w, "minilm", windows=4, window_len=8)
    assert "cosine_mean" in got


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"windows": 0}, "windows 0 is outside"),
        ({"window_len": True}, "window_len True is outside"),
        ({"mode": "generation"}, "MiniLM is an encoder"),
        ({"mode": "decode"}, "must be 'prefill' or 'generation'"),
    ],
)
def test_bad_settings_are_one_line(kw, needle) -> None:
    with pytest.raises(ValueError, match=needle):
        accuracy.run_accuracy(workload_preset("minilm"), "minilm", **kw)
    with pytest.raises(ValueError, match="is not one of"):
        accuracy.run_accuracy(workload_preset("minilm"), "bert")
