"""Resource guards: refuse work whose memory estimate exceeds a limit, before allocating it.

A configuration the validators allow can still be more than the machine holds (a 2**20-token BERT-Large
prompt is 10**10 trace rows). Each large allocation site estimates its need from the sizes it is about to
use and calls :func:`check_memory`, which raises a one-line ``ValueError`` with the estimate and the limit
instead of running into ``MemoryError`` or the swap.

The limit is :data:`DEFAULT_MAX_MEMORY` (2 GiB), or ``$SPATTEN_MAX_MEMORY``, or what
:func:`set_max_memory` set (the CLI's ``--max-memory SIZE``). The per-item costs below were measured on
the 2-core machine (peak resident memory over the allocation, divided by the items).
"""

from __future__ import annotations

import os
import re

__all__ = [
    "DEFAULT_MAX_MEMORY",
    "SIM_BYTES_PER_ROW",
    "GOLDEN_BYTES_PER_SCORE",
    "parse_size",
    "max_memory",
    "set_max_memory",
    "check_memory",
]

DEFAULT_MAX_MEMORY = 2 * 1024**3
#: Simulator peak per trace row (requests table, byte and cycle columns, the per-kind HBM arrays):
#: 880-950 B measured on BERT-Large 4096 tokens (0.9M rows SpAtten, 1.6M rows dense).
SIM_BYTES_PER_ROW = 1024
#: Golden model (``models.attention.run_attention``) peak per attention score of one layer (scores,
#: probabilities, masks and their temporaries over heads x queries x keys): about 60 B measured on
#: BERT-Base at 1024 and 2048 tokens.
GOLDEN_BYTES_PER_SCORE = 64

_ENV = "SPATTEN_MAX_MEMORY"
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_override: int | None = None


def parse_size(text: str) -> int:
    """Bytes in a size such as ``512M``, ``8G``, ``1.5G``, ``2GiB`` or ``1000000`` (binary units).

    Raises
    ------
    ValueError
        Not a size, or not positive.
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?)\s*([KMGT]?)(?:I?B)?\s*", str(text).upper())
    if m is None:
        raise ValueError(f"memory size {str(text)[:40]!r} is not a size such as 512M, 8G or 1000000")
    size = int(float(m.group(1)) * _UNITS[m.group(2)])
    if size <= 0:
        raise ValueError(f"memory size {str(text)[:40]!r} must be positive")
    return size


def max_memory() -> int:
    """The limit in bytes: :func:`set_max_memory`'s, else ``$SPATTEN_MAX_MEMORY``, else 2 GiB."""
    if _override is not None:
        return _override
    env = os.environ.get(_ENV)
    if env:
        try:
            return parse_size(env)
        except ValueError as e:
            raise ValueError(f"${_ENV}: {e}") from None
    return DEFAULT_MAX_MEMORY


def set_max_memory(size: int | None) -> None:
    """Set the limit for this process (None: back to the environment or the default)."""
    global _override
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
        raise ValueError(f"max memory {size!r} must be a positive number of bytes")
    _override = size


def _gib(n: float) -> str:
    return f"{n / 1024**3:.1f} GiB" if n >= 1024**3 / 10 else f"{n / 1024**2:.0f} MiB"


def check_memory(what: str, need: float) -> None:
    """Raise a one-line ValueError when ``need`` bytes (an estimate) exceed the limit.

    Parameters
    ----------
    what : str
        The work, for the message (e.g. ``"simulating 3,145,728 trace rows"``).
    need : float
        Estimated peak bytes.
    """
    limit = max_memory()
    if need > limit:
        raise ValueError(
            f"{what} needs about {_gib(need)} of memory, over the {_gib(limit)} limit: shrink the run, or "
            f"raise the limit with --max-memory SIZE (or ${_ENV})"
        )
