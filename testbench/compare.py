"""Where two sequences first differ, for scoreboard messages that point at the failing element."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["first_difference"]


def first_difference(got: Sequence[Any], want: Sequence[Any], what: str = "element") -> str | None:
    """Describe the first index where ``got`` and ``want`` differ, or None when they are equal.

    Parameters
    ----------
    got, want : sequence
        What the RTL produced and what the golden model expects, compared with ``==`` element by element.
    what : str
        The element's name in the message ("beat", "score", ...).

    Returns
    -------
    str or None
        ``"<what> i: got X, expected Y (n of m differ)"``, or a length message when one sequence is a prefix
        of the other.
    """
    bad = [i for i, (g, w) in enumerate(zip(got, want, strict=False)) if g != w]
    if bad:
        i = bad[0]
        return (
            f"{what} {i}: got {got[i]}, expected {want[i]} ({len(bad)} of {min(len(got), len(want))} differ)"
        )
    if len(got) != len(want):
        return f"{len(got)} {what}s out, expected {len(want)}"
    return None
