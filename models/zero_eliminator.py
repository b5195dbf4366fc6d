"""Golden twin of ``rtl/zero_eliminator.py``: stable compaction of the kept lanes of one vector."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["compact", "shift_network"]


def compact(values: Sequence[int], keep: Sequence[bool]) -> tuple[list[int], int]:
    """Kept values moved to the front in their original order; the count of kept values.

    Parameters
    ----------
    values : sequence of int
        One value per lane.
    keep : sequence of bool
        Lane mask, same length as ``values``.

    Returns
    -------
    (list of int, int)
        The kept values (length = count, lane order) and the count. Lanes at and beyond the count
        are unspecified in hardware and are not part of the result.
    """
    if len(values) != len(keep):
        raise ValueError(f"keep has {len(keep)} lanes, values has {len(values)}: they must match")
    kept = [int(v) for v, k in zip(values, keep, strict=True) if k]
    return kept, len(kept)


def shift_network(values: Sequence[int], keep: Sequence[bool]) -> list[int | None]:
    """The RTL's algorithm, stage by stage: each kept lane moves left by its zero count, one bit per stage.

    Stage ``s`` moves an element by ``2**s`` when bit ``s`` of the number of dropped lanes before it is
    set (LSB first, which never makes two elements collide). Returns every output lane, ``None`` where
    no element landed.

    Parameters
    ----------
    values : sequence of int
        One value per lane; the lane count must be a power of two.
    keep : sequence of bool
        Lane mask.
    """
    p = len(values)
    if p < 1 or p & (p - 1):
        raise ValueError(f"lane count {p} must be a power of two >= 1")
    if len(keep) != p:
        raise ValueError(f"keep has {len(keep)} lanes, values has {p}: they must match")
    zeros_before = [sum(1 for j in range(i) if not keep[j]) for i in range(p)]
    lanes: list[tuple[int, int] | None] = [
        (int(v), z) if k else None for v, k, z in zip(values, keep, zeros_before, strict=True)
    ]
    s = 0
    while (1 << s) < p:
        nxt: list[tuple[int, int] | None] = [None] * p
        for pos, item in enumerate(lanes):
            if item is None:
                continue
            dest = pos - (1 << s) if (item[1] >> s) & 1 else pos
            if nxt[dest] is not None:  # pragma: no cover - impossible by construction
                raise AssertionError("zero eliminator collision")
            nxt[dest] = item
        lanes = nxt
        s += 1
    return [None if item is None else item[0] for item in lanes]
