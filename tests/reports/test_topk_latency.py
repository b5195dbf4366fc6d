"""spatten.reports.topk_latency: CSV checks, the figure read back, and its two files."""

from __future__ import annotations

import numpy as np
import pytest
from spatten.reports.topk_latency import latency_figure, main, read_rows, write_figure

from tests.reports.figcheck import check_files, overlapping_tick_labels

HEADER = "n,k,p,requests,search_mean,search_sd,model_mean,release_mean,final_mean\n"
ROWS = (
    "64,32,4,5,60,12,60,74,34\n256,128,4,5,254,62,254,276,132\n1024,512,4,5,1005,383,1005,1032,528\n"
    "64,32,16,5,24,6,24,39,33\n256,128,16,5,76,16,76,98,129\n1024,512,16,5,230,60,230,255,513\n"
)


def test_figure_axes_series_and_files(tmp_path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text(HEADER + ROWS)
    rows = read_rows(csv)
    fig = latency_figure(rows)
    search, output = fig.axes
    assert "TopKEngine" in fig.get_suptitle() and "5 random requests per (n, P)" in fig.get_suptitle()
    assert search.get_ylabel() == "search latency (cycles)"
    assert output.get_ylabel() == "final pass + output latency (cycles)"
    for ax in (search, output):
        assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2  # n is a power of two
        assert [t.get_text() for t in ax.get_xticklabels()] == ["64", "256", "1024"]
        assert ax.get_yscale() == "log"
        assert ax.get_xlabel() == "n (scores per request), k = n / 2"
    # per P: the RTL errorbar line, the model marks and the release formula, in the CSV's numbers
    bars = {c.get_label(): c for c in search.containers}
    assert sorted(bars) == ["P = 16", "P = 4"]
    np.testing.assert_allclose(np.asarray(bars["P = 16"].lines[0].get_ydata(), float), [24, 76, 230])
    np.testing.assert_allclose(np.asarray(bars["P = 4"].lines[0].get_xdata(), float), [64, 256, 1024])
    np.testing.assert_allclose(output.get_lines()[1].get_ydata(), [33, 129, 513])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"P = 4", "P = 16", "cycle model (same requests)"} <= set(legend)
    assert overlapping_tick_labels(fig) == []

    paths = write_figure(rows, tmp_path / "f" / "topk.png")
    assert [p.name for p in paths] == ["topk.png", "topk.pdf"]
    assert sorted(p.name for p in paths[0].parent.iterdir()) == ["topk.pdf", "topk.png"]  # no temporaries
    check_files(latency_figure(rows), paths)


def test_main_writes_png_and_pdf(tmp_path, capsys) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text(HEADER + ROWS)
    assert main([str(csv), "-o", str(tmp_path / "o.png")]) == 0
    assert (tmp_path / "o.png").exists() and (tmp_path / "o.pdf").exists()
    assert "o.png" in capsys.readouterr().out


def test_missing_columns(tmp_path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("n,p\n64,16\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_rows(csv)
