"""The bad-input contract, for every command: exit 2, one line on stderr, no traceback, nothing left behind.

Three sources of bad input:

* every numeric flag of every subcommand, found by walking the argument parser (a new command or flag is
  covered without editing this file), with values out of any sensible range;
* the corpus in ``tests/data/bad/``: hand-made files of each kind a user passes (configs, sweep specs,
  top-k vectors, traces), each run through every command that reads that kind;
* hypothesis-generated config files: random fields with values of the wrong type or range.

Each case runs in process with the working folder moved to an empty temporary folder, so a default output
(``out/``, ``build/``, ``sweeps/``) would show up there.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spatten.cli import build_parser, main

BAD = Path(__file__).parent / "data" / "bad"


def _run(argv: list[str], where: Path, capsys) -> tuple[int, str, str]:
    """Run the CLI in ``where``; return (exit status, stderr, stdout)."""
    old = os.getcwd()
    os.chdir(where)
    try:
        try:
            code = main(argv)
        except SystemExit as e:  # argparse's own usage errors
            code = int(e.code or 0)
    finally:
        os.chdir(old)
    cap = capsys.readouterr()
    return code, cap.err, cap.out


def _assert_refused(argv: list[str], where: Path, capsys) -> tuple[str, str]:
    """Assert the contract for ``argv``; return (stderr, stdout)."""
    before = set(os.listdir(where))
    code, err, out = _run(argv, where, capsys)
    shown = " ".join(argv)
    assert code == 2, f"{shown}: exit {code}, stderr {err!r}"
    assert err.count("\n") == 1 and err.endswith("\n"), f"{shown}: not one line: {err!r}"
    assert "Traceback" not in err and len(err) < 600, f"{shown}: {err!r}"
    assert set(os.listdir(where)) == before, f"{shown}: left {set(os.listdir(where)) - before}"
    return err, out


# --- every numeric flag ------------------------------------------------------------------------------


def _base_argv(command: str, tmp: Path) -> list[str]:
    """A valid invocation of ``command`` that the bad flag is added to."""
    spec = tmp / "spec.yaml"
    spec.write_text("name: s\nworkloads: [gpt2-small]\nsweep:\n  accelerator.hbm_channels: [1, 2]\n")
    cfg = tmp / "c.yaml"
    cfg.write_text("accelerator:\n  hbm_channels: 8\n")
    return {
        "demo": ["demo", "--out", str(tmp / "o")],
        "trace": ["trace", "--workload", "gpt2-small"],
        "sweep": ["sweep", str(spec), "--dry-run"],
        "simulate": ["simulate"],
        "accuracy": ["accuracy", "--model", "minilm"],
        "compare": ["compare", str(cfg), str(cfg)],
        "reproduce": ["reproduce", "--out", str(tmp / "o")],
        "area": ["area"],
        "dram": ["dram", "--reads", "10"],
        "timing": ["timing", "--block", "requant"],
        "verilog": ["verilog", "topk", "-o", str(tmp / "o")],
        "verify": ["verify", "topk", "--build-dir", str(tmp / "o")],
    }[command]


def _numeric_flags() -> list[tuple[str, str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for command, p in sub.choices.items():
        for a in p._actions:
            if a.option_strings and a.type is int:
                out.append((command, a.option_strings[-1]))
    return out


FLAGS = _numeric_flags()


def test_the_parser_walk_finds_the_flags() -> None:
    assert len(FLAGS) > 30 and ("verilog", "--max-n") in FLAGS and ("simulate", "--seq-len") in FLAGS


@pytest.mark.parametrize("value", ["-1", "10000000000000000000000", "1.5", "nan"])
@pytest.mark.parametrize(("command", "flag"), FLAGS, ids=[f"{c} {f}" for c, f in FLAGS])
def test_every_numeric_flag_refuses_values_out_of_range(command, flag, value, tmp_path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    base = _base_argv(command, tmp_path)
    _assert_refused([*base, flag, value], work, capsys)
    assert not (tmp_path / "o").exists()


def _out_commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [c for c, p in sub.choices.items() if any(a.dest == "out" for a in p._actions)]


OUT_COMMANDS = _out_commands()


@pytest.mark.parametrize("target", ["/dev/null", "/proc/spatten-x/y"])
@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_every_output_location_is_checked_before_any_work(command, target, tmp_path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    base = [a for a in _base_argv(command, tmp_path) if a != str(tmp_path / "o")]
    base = [a for i, a in enumerate(base) if not (a in ("--out", "-o") and i + 1 == len(base))]
    err, out = _assert_refused([*base, "--out", target], work, capsys)
    assert "--out" in err and out == ""  # refused before the command printed anything


# --- the corpus ---------------------------------------------------------------------------------------

CONFIG_COMMANDS = (
    ["simulate", "--config", "{f}"],
    ["compare", "{f}", "{f}"],
    ["area", "--config", "{f}"],
    ["accuracy", "--model", "minilm", "--config", "{f}"],
)
KINDS: dict[str, tuple[list[str], ...]] = {
    "config": CONFIG_COMMANDS,
    "sweep": (["sweep", "{f}", "--out", "{out}"], ["sweep", "{f}"]),
    "vectors": (["verify", "topk", "--vectors", "{f}", "--build-dir", "{out}"],),
    "trace": (
        ["simulate", "--workload", "gpt2-medium", "--trace", "{f}"],
        ["simulate", "--workload", "gpt2-medium", "--trace", "{f}", "--out", "{out}"],
    ),
}


def _kind(name: str) -> str:
    if name.startswith("sweep_"):
        return "sweep"
    if name.startswith("vectors_"):
        return "vectors"
    if name.startswith("trace_"):
        return "trace"
    return "config"


CORPUS = sorted(p.name for p in BAD.iterdir())
CASES = [(name, i) for name in CORPUS for i in range(len(KINDS[_kind(name)]))]


def test_the_corpus_covers_every_kind() -> None:
    assert {_kind(n) for n in CORPUS} == set(KINDS) and len(CORPUS) >= 20


@pytest.mark.parametrize(("name", "i"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_corpus_file_is_refused_by_every_command_that_reads_it(name, i, tmp_path, capsys) -> None:
    work = tmp_path / "work"
    work.mkdir()
    argv = [a.format(f=BAD / name, out=tmp_path / "out") for a in KINDS[_kind(name)][i]]
    err, _ = _assert_refused(argv, work, capsys)
    assert not (tmp_path / "out").exists()
    assert argv[0] in err  # the command names itself, and the message the file or a field
    assert name in err or re.search(r"[a-z_]+\.[a-z_]+|--[a-z]|[a-z_] = ", err), err


# --- generated configs --------------------------------------------------------------------------------


def _fields() -> list[str]:
    from spatten.sim.sweep.spec import config_fields

    return sorted(config_fields())


BAD_VALUES = st.one_of(
    st.sampled_from([-1, -(2**63), 2**70, 1e308, -1e-300, float("inf"), float("nan"), "", "x" * 300]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.text(max_size=20),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(_fields()), value=BAD_VALUES)
def test_generated_bad_config_values_are_refused_or_run(field, value, tmp_path_factory, capsys) -> None:
    import yaml

    tmp = tmp_path_factory.mktemp("cfg")
    section, key = field.split(".", 1)
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump({section: {key: value}}))
    work = tmp / "work"
    work.mkdir()
    code, err, _ = _run(["area", "--config", str(cfg)], work, capsys)
    # a value may happen to be valid (area then runs); bad ones are one line naming the field
    assert code in (0, 2), err
    if code == 2:
        assert err.count("\n") == 1 and "Traceback" not in err and len(err) < 600, err
    assert os.listdir(work) == []
