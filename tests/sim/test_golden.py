"""Golden regression: small hand-written traces against hand-derived summaries.

Each case in ``tests/data/golden`` is a trace CSV (the columns of ``models.trace.TRACE_COLUMNS``) and an
``<name>.expected.yaml`` whose values are arithmetic expressions written by hand from the trace rows
and the documented byte / cycle / ops model, with the derivation in a comment. Nothing is copied from
a simulator run, so a change to the model that alters a documented quantity fails here, and a
legitimate change (e.g. to the top-k cost table) that does not touch these quantities passes.
"""

from __future__ import annotations

import ast
import math
import operator
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from spatten.models.config import workload_preset
from spatten.models.trace import TRACE_COLUMNS, read_release_csv, write_release_csv
from spatten.sim.api import simulate

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "golden"
CASES = sorted(p.name.removesuffix(".expected.yaml") for p in GOLDEN.glob("*.expected.yaml"))

# the release layout has no query / queries column: read back as query 0, queries 1
RELEASE_LOSSY = ("query", "queries")

_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCS = {"ceil": math.ceil, "min": min, "max": max}


def evaluate(expr: str) -> float:
    """Evaluate an arithmetic expression: numbers, + - * / // %, unary minus, ceil/min/max.

    Anything else (names, attributes, other calls) raises ValueError, so an expected file cannot run code.
    """

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS
            and not node.keywords
            and node.args
        ):
            return _FUNCS[node.func.id](*(ev(a) for a in node.args))
        raise ValueError(f"{expr!r}: {type(node).__name__} is not allowed in an expected expression")

    return ev(ast.parse(expr, mode="eval"))


def load_trace(name: str) -> pd.DataFrame:
    """Read a golden trace with the schema's dtypes (booleans written True/False)."""
    path = GOLDEN / f"{name}.csv"
    head = path.read_text().splitlines()[0].split(",")
    assert head == list(TRACE_COLUMNS), f"{path.name}: header must be exactly TRACE_COLUMNS in order"
    return pd.read_csv(path, dtype=TRACE_COLUMNS)


def load_expected(name: str) -> dict[str, Any]:
    return yaml.safe_load((GOLDEN / f"{name}.expected.yaml").read_text())


@cache
def summary(name: str) -> dict[str, Any]:
    exp = load_expected(name)
    return simulate(workload_preset(exp["workload"]), load_trace(name)).summary


def test_cases_present() -> None:
    assert len(CASES) >= 3
    for name in CASES:
        exp = load_expected(name)
        assert exp["trace"] == f"{name}.csv"
        assert (GOLDEN / exp["trace"]).is_file()


def test_evaluator_rejects_code() -> None:
    expr = "2 * (3 + 4) // 5 % 3 - ceil(7 / 2) + max(1, 2) - min(4, 5)"
    assert evaluate(expr) == 2 * 7 // 5 % 3 - 4 + 2 - 4
    for bad in ("__import__('os')", "x + 1", "(1).real", "ceil(x=1)", "'a' * 3", "[1][0]"):
        with pytest.raises(ValueError):
            evaluate(bad)


@pytest.mark.parametrize("name", CASES)
def test_trace_schema(name: str) -> None:
    t = load_trace(name)
    assert 3 <= len(t) <= 8
    assert {c: str(t[c].dtype) for c in t.columns} == TRACE_COLUMNS


@pytest.mark.parametrize("name", CASES)
def test_summary_exact(name: str) -> None:
    """Every ``expected`` entry equals the simulator's summary exactly (byte counts are binary fractions,
    cycle and transaction counts integers, so float64 holds them exactly)."""
    exp = load_expected(name)
    got = summary(name)
    wrong = {}
    for key, expr in exp["expected"].items():
        want = evaluate(str(expr))
        if got[key] != want:
            wrong[key] = (got[key], want, expr)
    assert not wrong, f"{name}: (simulated, expected, expression): {wrong}"


@pytest.mark.parametrize("name", CASES)
def test_summary_close(name: str) -> None:
    """``expected_close`` entries involve float divisions (restoring factors) whose rounding depends on
    the order of operations, so they are compared to 1e-12 relative."""
    exp = load_expected(name)
    got = summary(name)
    for key, expr in (exp.get("expected_close") or {}).items():
        want = evaluate(str(expr))
        assert math.isclose(got[key], want, rel_tol=1e-12), f"{name}.{key}: {got[key]} != {want} ({expr})"


@pytest.mark.parametrize("name", CASES)
def test_release_csv_round_trip(name: str, tmp_path: Path) -> None:
    """The trace survives the project's CSV writer and reader (models.trace release layout); only the
    columns that layout does not have (query, queries) come back as the documented defaults."""
    t = load_trace(name)
    out = tmp_path / f"{name}.csv"
    write_release_csv(t, out, config_name=f"golden:{name}")
    back, cfg = read_release_csv(out)
    assert cfg == f"golden:{name}"
    keep = [c for c in TRACE_COLUMNS if c not in RELEASE_LOSSY]
    pd.testing.assert_frame_equal(back[keep], t[keep], check_exact=True)
    assert (back["query"] == 0).all() and (back["queries"] == 1).all()
    if (t["query"] == 0).all() and (t["queries"] == 1).all():  # generation traces round-trip whole
        pd.testing.assert_frame_equal(back, t, check_exact=True)
