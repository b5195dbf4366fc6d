"""Resource guards: work estimated beyond the memory limit is refused in one line before it starts."""

from __future__ import annotations

import pytest
from spatten.models import limits
from spatten.models.config import replace_path, workload_preset
from spatten.models.workload import shape_rows, shape_trace

from spatten.cli import main


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1000000", 1_000_000),
        ("512M", 512 * 2**20),
        ("8G", 8 * 2**30),
        ("1.5g", 3 * 2**29),
        ("2GiB", 2 * 2**30),
    ],
)
def test_sizes_parse(text: str, size: int) -> None:
    assert limits.parse_size(text) == size


@pytest.mark.parametrize("text", ["", "x", "1.5x", "-3G", "0", "G", "1e9"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        limits.parse_size(text)


def test_limit_comes_from_the_override_then_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("SPATTEN_MAX_MEMORY", raising=False)
    assert limits.max_memory() == limits.DEFAULT_MAX_MEMORY
    monkeypatch.setenv("SPATTEN_MAX_MEMORY", "3G")
    assert limits.max_memory() == 3 * 2**30
    limits.set_max_memory(2**20)
    try:
        assert limits.max_memory() == 2**20
        with pytest.raises(ValueError, match=r"work needs about 2 MiB of memory, over the 1 MiB limit"):
            limits.check_memory("work", 2 * 2**20)
        limits.check_memory("work", 2**20)  # at the limit: fine
    finally:
        limits.set_max_memory(None)
    monkeypatch.setenv("SPATTEN_MAX_MEMORY", "lots")
    with pytest.raises(ValueError, match=r"\$SPATTEN_MAX_MEMORY: memory size 'lots'"):
        limits.max_memory()


@pytest.mark.parametrize(
    "workload",
    [
        workload_preset("bert-base", prompt_len=128),
        workload_preset("gpt2-small", prompt_len=64),
        replace_path(workload_preset("gpt2-small", prompt_len=64), "model.prompt_in_trace", True),
        workload_preset("smollm2"),
    ],
    ids=["summarization", "generation", "generation+prompt", "gqa"],
)
def test_shape_rows_counts_the_shape_trace(workload) -> None:
    assert shape_rows(workload) == len(shape_trace(workload))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["simulate", "--workload", "bert-large", "--seq-len", "1000000"], "GiB of memory, over the 2.0 GiB"),
        (["simulate", "--workload", "bert-large", "--seq-len", "8192"], "dense comparison's 3,145,728"),
        (["simulate", "--workload", "gpt2-medium", "--max-memory", "1M"], "over the 1 MiB limit"),
        (["trace", "--workload", "bert-base", "--seq-len", "4096"], "golden model on 12 layer(s)"),
    ],
)
def test_cli_refuses_before_working(argv: list[str], needle: str, capsys, monkeypatch) -> None:
    import spatten.models.attention
    import spatten.sim.compare

    # refused up front: neither a simulation nor the golden model's inputs may start
    monkeypatch.setattr(spatten.sim.compare, "evaluate", _no_work)
    monkeypatch.setattr(spatten.models.attention, "_inputs", _no_work)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def _no_work(*args, **kwargs):
    raise AssertionError("the work started before the memory check refused it")


def test_cli_bad_limit_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["simulate", "--max-memory", "lots"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "--max-memory: memory size 'lots'" in err


def test_verilog_of_a_huge_core_is_refused_before_elaboration(tmp_path, capsys, monkeypatch) -> None:
    import amaranth.back.verilog

    monkeypatch.setattr(amaranth.back.verilog, "convert", _no_work)
    out = tmp_path / "v"
    argv = [
        "verilog",
        "attention-core",
        "--head-dim",
        "1024",
        "--k-par",
        "64",
        "--v-par",
        "64",
        "-o",
        str(out),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "131,072 multiplier lanes" in err and "GiB of memory" in err, err
    assert not out.exists()


def test_a_smollm2_window_too_long_for_memory_is_refused_before_the_model_runs(capsys, monkeypatch) -> None:
    from spatten.models import smollm2

    monkeypatch.setattr(smollm2, "forward", _no_work)
    argv = ["accuracy", "--model", "smollm2", "--mode", "prefill", "--window-len", "8000", "--windows", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SmolLM2 on a window of 8,001 tokens (prefill)" in err, err
