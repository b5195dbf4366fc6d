"""The installed package lives under one namespace: no top-level `models`, `sim`, `rtl`, ... on the path.

Run in a subprocess from a folder outside the repository, the way a researcher's own project imports us.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SUBPACKAGES = ("models", "sim", "rtl", "testbench", "reports")


def _run(code: str, cwd: Path, pythonpath: Path | None = None) -> str:
    env = {"PATH": "/usr/bin:/bin"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    res = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_no_top_level_card_folders_on_the_path(tmp_path: Path) -> None:
    code = (
        "import importlib.util as u\n"
        f"print(','.join(n for n in {SUBPACKAGES!r} if u.find_spec(n) is not None))"
    )
    assert _run(code, tmp_path) == ""


def test_users_own_models_and_sim_packages_are_untouched(tmp_path: Path) -> None:
    # A researcher's project with its own `models` and `sim` packages, first on the path.
    for name in ("models", "sim"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"OWNER = 'user-{name}'\n")
    code = (
        "import models, sim\n"
        "import spatten.models.config, spatten.sim.api, spatten.rtl.topk, spatten.reports.figures\n"
        "import spatten.testbench.runner, sys\n"
        "from spatten.sim.api import simulate\n"
        "from spatten.models.config import workload_preset\n"
        "simulate(workload_preset('gpt2-small'))\n"
        "print(models.OWNER, sim.OWNER)\n"
    )
    out = _run(code, tmp_path, pythonpath=tmp_path)
    assert out.split() == ["user-models", "user-sim"]


def test_rtl_does_not_import_the_testbench() -> None:
    """The hardware stands alone: no block (nor the Verilog generator) reaches into the cocotb benches."""
    import ast

    rtl = Path(__file__).resolve().parents[1] / "rtl"
    for path in sorted(rtl.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            assert not any("testbench" in n for n in names), f"{path.name} imports {names}"
