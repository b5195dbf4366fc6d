"""Suite-wide: under `make test` (SPATTEN_NO_SKIP=1) a skipped test fails the run.

Some tests skip when an optional input is missing (e.g. the MiniLM weight package). That is
right for a user's partial install, but `make test` installs everything, so there a skip means the
set-up is broken and must not pass silently.
"""

from __future__ import annotations

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("SPATTEN_NO_SKIP") == "1" and _skipped and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if os.environ.get("SPATTEN_NO_SKIP") == "1" and _skipped:
        terminalreporter.write_line(
            f"SPATTEN_NO_SKIP=1: {len(_skipped)} skipped test(s) fail the run: " + ", ".join(_skipped[:5]),
            red=True,
        )
