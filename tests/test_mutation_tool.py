"""benchmarks/mutation.py's candidates: operators on code, none in comments, docstrings or strings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("mutation_tool", ROOT / "benchmarks" / "mutation.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_mutants_skip_strings_comments_and_docstrings() -> None:
    tool = _tool()
    text = (
        '"""Docstring with a + 1 and a < b."""\n'
        "# a comment: x + 1\n"
        'x = Signal(a + 1, name=f"v{i + 1}")  # trailing: y < z\n'
        'label = "p < q"\n'
        "ok = c < d\n"
    )
    got = [(m.line, m.label, m.mutated) for m in tool.mutants_of(Path("rtl/x.py"), text)]
    assert got == [
        (3, "+ 1 to + 2", 'x = Signal(a + 2, name=f"v{i + 1}")'),
        (5, "< to <=", "ok = c <= d"),
    ]


def test_every_rtl_candidate_changes_code_outside_strings() -> None:
    tool = _tool()
    ms = tool.candidates()
    assert len(ms) > 300
    assert all(m.original != m.mutated for m in ms)
    # the f-string names of the Q.K tree's registers are no candidates any more
    assert not any('f"v{lv + 2}"' in m.mutated for m in ms)
