"""Every setting counts or is refused: a keep target over a preset's per-layer schedule, and its conflicts."""

from __future__ import annotations

import pytest
from spatten.models.config import from_dict, replace_path, to_dict, workload_preset
from spatten.sim.api import simulate
from spatten.sim.sweep.spec import parse_spec


def test_token_keep_replaces_the_gpt2_schedule() -> None:
    w = replace_path(workload_preset("gpt2-small"), "pruning.token_keep", 0.4)
    assert w.pruning.token_keep_schedule == ()
    sched = w.pruning.token_schedule(w.model.layers)
    assert sched != workload_preset("gpt2-small").pruning.token_schedule(12)
    assert sum(sched) / len(sched) == pytest.approx(0.4)


def test_head_keep_replaces_the_gpt2_medium_head_schedule() -> None:
    w = replace_path(workload_preset("gpt2-medium"), "pruning.head_keep", 1.0)
    assert w.pruning.head_schedule(24) == (1.0,) * 24


def test_sweep_over_token_keep_moves_dram_bytes_monotonically() -> None:
    spec = parse_spec(
        {
            "workloads": ["gpt2-small"],
            "fixed": {"model.gen_tokens": 2},
            "sweep": {"pruning.token_keep": [0.2, 0.4, 0.6, 0.8, 1.0]},
        }
    )
    dram = [simulate(p.workload).summary["dram_bytes_total"] for p in spec.points]
    assert all(a < b for a, b in zip(dram, dram[1:], strict=False)), dram


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ({"token_keep": 0.5, "token_keep_schedule": [1.0] * 12}, ("token_keep", "token_keep_schedule")),
        ({"head_unpruned_fraction": 0.1, "head_keep_schedule": [1.0] * 12}, ("head_unpruned_fraction",)),
    ],
)
def test_target_and_schedule_together_is_an_error_naming_both(override: dict, names: tuple) -> None:
    with pytest.raises(ValueError) as e:
        from_dict({"pruning": override}, base=workload_preset("gpt2-small"))
    for n in names:
        assert f"pruning.{n}" in str(e.value)


def test_unpruned_fraction_alone_under_a_schedule_is_refused() -> None:
    with pytest.raises(
        ValueError, match=r"pruning.token_unpruned_fraction has no effect.*token_keep_schedule"
    ):
        from_dict({"pruning": {"token_unpruned_fraction": 0.3}}, base=workload_preset("gpt2-small"))
    # with no schedule in force it counts
    w = from_dict({"pruning": {"token_unpruned_fraction": 0.5}}, base=workload_preset("bert-base"))
    assert w.pruning.token_schedule(12)[:6] == (1.0,) * 6


def test_sweep_refuses_a_fixed_schedule_beside_a_swept_target() -> None:
    with pytest.raises(ValueError, match=r"^sweep: pruning.token_keep and pruning.token_keep_schedule"):
        parse_spec(
            {
                "workloads": ["gpt2-small"],
                "fixed": {"pruning.token_keep_schedule": [0.5] * 12},
                "sweep": {"pruning.token_keep": [0.2, 0.4]},
            }
        )


def test_written_config_leaves_out_dead_knobs_and_reloads() -> None:
    w = workload_preset("gpt2-small")
    d = to_dict(w)
    assert "token_keep" not in d["pruning"] and "token_unpruned_fraction" not in d["pruning"]
    assert from_dict(d, base=workload_preset("bert-base")).pruning.token_schedule(
        12
    ) == w.pruning.token_schedule(12)


def test_sweep_fixed_fraction_with_swept_target_counts_whatever_the_order() -> None:
    spec = parse_spec(
        {
            "workloads": ["gpt2-small"],
            "fixed": {"pruning.token_unpruned_fraction": 0.5, "model.gen_tokens": 2},
            "sweep": {"pruning.token_keep": [0.6, 0.8]},
        }
    )
    for p, keep in zip(spec.points, (0.6, 0.8), strict=True):
        sched = p.workload.pruning.token_schedule(12)
        assert sched[:6] == (1.0,) * 6  # half the layers unpruned, as the fixed fraction says
        assert sum(sched) / 12 == pytest.approx(keep)
