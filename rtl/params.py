"""The checks every RTL block runs on its integer parameters before it builds a signature from them.

``check_int`` is the package's one integer check (:func:`models.config.check_int`), re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from spatten.models.config import check_int

__all__ = ["check_int", "check_power_of_two", "rejected_quietly"]


@contextmanager
def rejected_quietly(component: object) -> Iterator[None]:
    """Run a constructor's parameter checks; on a ``TypeError`` / ``ValueError`` mark ``component`` as used
    before re-raising, so a rejected component does not also warn "unused elaboratable" at exit."""
    try:
        yield
    except (TypeError, ValueError):
        component._MustUse__silence = True  # type: ignore[attr-defined]
        raise


def check_power_of_two(name: str, value: object, hi: int) -> int:
    """Return ``value`` when it is an int power of two in ``1..hi`` (lane and row are bit fields).

    Raises
    ------
    TypeError
        For a value that is not an int.
    ValueError
        ``<name> = <value> must be a power of two in 1..<hi>``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not 1 <= value <= hi or value & (value - 1):
        raise ValueError(f"{name} = {value} must be a power of two in 1..{hi}")
    return value
