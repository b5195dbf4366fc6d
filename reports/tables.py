"""Plain-text and markdown tables of simulation results."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["summary_lines", "markdown_table"]


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
