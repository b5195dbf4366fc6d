"""spatten.reports.topk_latency: CSV checks and the figure file."""

from __future__ import annotations

import pytest
from spatten.reports.topk_latency import latency_figure, read_rows

HEADER = "n,k,p,requests,search_mean,search_sd,model_mean,release_mean,final_mean\n"


def test_figure_written(tmp_path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text(HEADER + "64,32,16,5,24,6,24,39,33\n1024,512,16,5,230,60,230,255,513\n")
    out = latency_figure(read_rows(csv), tmp_path / "f" / "topk.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["topk.png"]  # no temporary left behind


def test_missing_columns(tmp_path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("n,p\n64,16\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_rows(csv)
