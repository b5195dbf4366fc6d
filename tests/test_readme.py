"""The README's Python examples run as doctests, so the documented API stays true."""

from __future__ import annotations

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_examples() -> None:
    res = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} README examples failed (see the output above)"
    assert res.attempted >= 30  # the API section is there: simulate, compare, traces, configs, sweeps
