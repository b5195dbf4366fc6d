"""Plain-text and markdown tables of simulation results."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["summary_lines", "markdown_table", "per_layer_lines"]


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "-"
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1):
            return f"{v:.4g}"
        return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.1f}"
    return str(v)


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """``key  value`` lines of a flat summary dict, aligned."""
    w = max(len(k) for k in summary)
    return [f"{k:<{w}}  {_fmt(v)}" for k, v in summary.items()]


def markdown_table(df: Any) -> str:
    """A pandas DataFrame as a GitHub markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(_fmt(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def per_layer_lines(layers: Any) -> list[str]:
    """A terminal-width view of :func:`spatten.sim.compare.per_layer`: cycles, MB by kind, keep ratios.

    The CSV written by ``spatten simulate --per-layer --out`` keeps every column at full precision.
    """
    head = (
        f"{'layer':>5} {'cycles':>10} {'bound':>7} {'Q MB':>7} {'K MSB MB':>9} {'K LSB MB':>9} {'V MB':>7} "
        f"{'token keep':>10} {'value keep':>10} {'refetch':>7}"
    )
    lines = [head]
    for _, r in layers.iterrows():
        mb = [r[f"bytes_{k}"] / 1e6 for k in ("q", "k_msb", "k_lsb", "v")]
        lines.append(
            f"{int(r['layer']):>5} {r['cycles']:>10.0f} {r['bounding_stage']:>7} {mb[0]:>7.3f} {mb[1]:>9.3f} "
            f"{mb[2]:>9.3f} {mb[3]:>7.3f} {r['token_keep']:>10.3f} {r['value_keep']:>10.3f} "
            f"{r['refetch_rate']:>7.3f}"
        )
    return lines
