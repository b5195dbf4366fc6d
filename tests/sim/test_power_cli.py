"""`spatten area`: text and JSON output, config file, one-line errors with exit 2."""

import json

import pytest

from spatten.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("SPATTEN_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cacti-cache-cli"))


def test_area_json(capsys):
    assert main(["area", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["total_mm2"] == pytest.approx(sum(d["by_module_mm2"].values()))
    assert d["paper_total_mm2"] == 18.71
    assert 0 < d["topk_share"] < 1
    assert {u["unit"] for u in d["units"]} >= {"qk.multiplier", "k_sram", "topk.comparator"}


def test_area_text_and_config(tmp_path, capsys):
    cfg = tmp_path / "small.yaml"
    cfg.write_text("accelerator:\n  name: half\n  qk_multipliers: 256\n  pv_multipliers: 256\n")
    assert main(["area", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("half at 40 nm")
    assert "paper 18.71 mm^2" in out and "top-k share" in out


@pytest.mark.parametrize(
    "argv, match",
    [
        (["area", "--tech-nm", "5"], "tech_nm = 5 is outside the allowed range 22..90"),
        (["area", "--config", "/nonexistent.yaml"], "does not exist"),
    ],
)
def test_area_errors_are_one_line_exit_2(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_area_geometry_error_names_the_field(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text("accelerator:\n  kv_sram_bytes: 100\n")
    assert main(["area", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "accelerator.kv_sram_bytes" in err and "CACTI's range" in err and err.count("\n") == 1
