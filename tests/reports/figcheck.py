"""What a reviewer checks in a saved figure, as functions the figure tests share.

- the PNG is 200 dpi (its pHYs chunk) and ``figsize * 200`` pixels, the PDF is a real PDF with no
  Type 3 fonts;
- no two tick labels of one axis overlap, and no two shown movable labels (counts, front numbers) overlap.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image
from spatten.reports.figures import MOVABLE, OPTIONAL


def check_png(path: Path, figsize: tuple[float, float] | None = None) -> None:
    """A PNG at 200 dpi (pHYs chunk) and, given the figure's size in inches, 200 pixels per inch."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        dpi = im.info["dpi"]
        size = im.size
    assert dpi[0] == dpi[1] and abs(dpi[0] - 200) < 0.01, dpi
    if figsize is not None:
        assert size == (round(figsize[0] * 200), round(figsize[1] * 200)), (size, figsize)


def check_pdf(path: Path) -> None:
    """A non-trivial PDF without Type 3 fonts (camera-ready checks reject them)."""
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 2000
    assert b"/Type3" not in data


def check_files(fig: Figure, paths: list[Path]) -> None:
    """``paths`` are ``<stem>.png`` at 200 dpi and ``<stem>.pdf``, both of this figure."""
    png, pdf = paths
    assert png.suffix == ".png" and pdf.suffix == ".pdf" and png.stem == pdf.stem
    check_png(png, tuple(fig.get_size_inches()))
    check_pdf(pdf)


def overlapping_tick_labels(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of visible, non-empty tick labels of one axis whose boxes overlap."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            bad += [(a, b) for (a, ba), (b, bb) in combinations(boxes, 2) if ba.overlaps(bb)]
    return bad


def overlapping_labels(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of visible movable annotations (counts, front numbers) of one axes whose boxes overlap."""
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        texts = [t for t in ax.texts if t.get_gid() in (MOVABLE, OPTIONAL) and t.get_visible()]
        boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
        bad += [(a, b) for (a, ba), (b, bb) in combinations(boxes, 2) if ba.overlaps(bb)]
    return bad


def annotations(ax) -> list[str]:
    """Texts of every annotation and text of ``ax``."""
    return [t.get_text() for t in ax.texts]
