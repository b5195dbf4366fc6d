"""Tests of models.config: presets, validation messages, YAML round trip, derived schedules."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.config import (
    ACCELERATORS,
    MODELS,
    ModelShape,
    PruningConfig,
    QuantConfig,
    Workload,
    load_yaml,
    replace_path,
    save_yaml,
    workload_preset,
)


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("acc", sorted(ACCELERATORS))
def test_every_preset_is_valid_and_round_trips(model: str, acc: str, tmp_path: Path) -> None:
    w = workload_preset(model, acc)
    assert isinstance(w, Workload)
    assert len(w.pruning.token_schedule(w.model.layers)) == w.model.layers
    assert len(w.pruning.head_schedule(w.model.layers)) == w.model.layers
    p = tmp_path / "w.yaml"
    save_yaml(w, p)
    assert load_yaml(p) == w


def test_release_schedules() -> None:
    # SPATTEN.md: GPT-2-Medium keeps all for 2 layers, then 0.9, 0.8 x2, 0.6 x6, 0.3 x13.
    med = workload_preset("gpt2-medium")
    assert med.pruning.token_schedule(24) == (1.0, 1.0, 0.9, 0.8, 0.8) + (0.6,) * 6 + (0.3,) * 13
    heads = [round(r * 16) for r in med.pruning.head_schedule(24)]
    assert heads == [16] * 16 + [13] * 6 + [10] * 2
    small = workload_preset("gpt2-small")
    assert small.pruning.token_schedule(12) == (0.9, 0.7) + (0.2,) * 4 + (0.1,) * 6


def test_unknown_yaml_key_rejected_by_name(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("model:\n  layers: 4\n  heads_typo: 3\n")
    with pytest.raises(ValueError, match="model.heads_typo"):
        load_yaml(p)
    p.write_text("modle:\n  layers: 4\n")
    with pytest.raises(ValueError, match="modle"):
        load_yaml(p)
    p.write_text("model:\n  layers: 0\n")
    with pytest.raises(ValueError, match="model.layers"):
        load_yaml(p)
    with pytest.raises(ValueError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")


def test_yaml_override_keeps_other_fields(tmp_path: Path) -> None:
    p = tmp_path / "o.yaml"
    p.write_text("quant:\n  refetch_threshold: 0.1\n")
    w = load_yaml(p)
    base = workload_preset("gpt2-medium")
    assert w.quant.refetch_threshold == 0.1
    assert w.model == base.model and w.pruning == base.pruning
    assert replace_path(base, "model.layers", 6).model.layers == 6


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: QuantConfig(key_msb_bits=17), "quant.key_msb_bits"),
        (lambda: QuantConfig(key_msb_bits=1), "quant.key_msb_bits"),
        (lambda: QuantConfig(key_msb_bits=12, key_lsb_bits=6), "key_lsb_bits"),
        (lambda: QuantConfig(refetch_threshold=1.5), "quant.refetch_threshold"),
        (lambda: QuantConfig(refetch_threshold=float("nan")), "quant.refetch_threshold"),
        (lambda: PruningConfig(token_keep=0.0), "pruning.token_keep"),
        (lambda: PruningConfig(value_keep=1.01), "pruning.value_keep"),
        (lambda: PruningConfig(token_keep_schedule=(1.0, 0.0)), r"pruning.token_keep_schedule\[1\]"),
        (lambda: ModelShape(layers=0), "model.layers"),
        (lambda: ModelShape(mode="chat"), "model.mode"),
        (lambda: workload_preset("gpt3"), "workload"),
        (lambda: workload_preset("gpt2-small", prompt_len=0), "seq_len"),
    ],
)
def test_validation_names_field(make, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make()


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        QuantConfig().key_msb_bits = 4  # type: ignore[misc]


def test_explicit_schedule_length_checked() -> None:
    with pytest.raises(ValueError, match="token_keep_schedule"):
        PruningConfig(token_keep_schedule=(1.0, 0.5)).token_schedule(3)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 48), st.floats(0.05, 1.0), st.floats(0.0, 0.5))
def test_derived_schedule_average_matches_target(n_layers: int, target: float, free: float) -> None:
    cfg = PruningConfig(token_keep=target, token_unpruned_fraction=free)
    n_free = min(n_layers, math.ceil(free * n_layers - 1e-9))  # the first ceil(fraction * n) layers
    # the pruned layers must average at least the 1e-3 floor of a layer's keep ratio
    reachable = (
        n_free == n_layers or target >= 1.0 or target * n_layers - n_free >= 1e-3 * (n_layers - n_free)
    )
    if not reachable:
        with pytest.raises(ValueError, match="unreachable"):
            cfg.token_schedule(n_layers)
        return
    sched = cfg.token_schedule(n_layers)
    assert len(sched) == n_layers
    assert all(0 < r <= 1 for r in sched)
    assert all(a >= b for a, b in zip(sched, sched[1:], strict=False))  # cascade: never grows back
    assert all(r == 1.0 for r in sched[:n_free])
    if n_free < n_layers and target < 1.0:
        assert sum(sched) / n_layers == pytest.approx(target, abs=1e-9)


def test_disabled_pruning_keeps_everything() -> None:
    cfg = PruningConfig(enabled=False, token_keep=0.2, value_keep=0.1)
    assert cfg.token_schedule(5) == (1.0,) * 5
    assert cfg.value_ratio == 1.0


def test_multipliers_below_the_hardware_head_dim_are_refused() -> None:
    import pytest
    from spatten.models.config import AcceleratorConfig

    with pytest.raises(ValueError, match=r"qk_multipliers = 32 is below accelerator.head_dim = 64"):
        AcceleratorConfig(qk_multipliers=32)
