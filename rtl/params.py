"""The one check every RTL block runs on its integer parameters before it builds a signature from them."""

from __future__ import annotations

__all__ = ["check_int", "check_power_of_two"]


def check_int(name: str, value: object, lo: int, hi: int) -> int:
    """Return ``value`` when it is an int (not a bool) in ``lo..hi``.

    Parameters
    ----------
    name : str
        The parameter's name, as the constructor spells it (for the message).
    value : object
        What the caller passed.
    lo, hi : int
        Inclusive bounds.

    Returns
    -------
    int
        ``value``, unchanged.

    Raises
    ------
    TypeError
        ``<name> must be an int, got <value>`` for a bool, float, string, ...
    ValueError
        ``<name> = <value> is outside the allowed range <lo>..<hi>``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} = {value} is outside the allowed range {lo}..{hi}")
    return value


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
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 1 <= value <= hi or value & (value - 1):
        raise ValueError(f"{name} = {value} must be a power of two in 1..{hi}")
    return value
