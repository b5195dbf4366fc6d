"""Fixed-point helpers: the only place where rounding rules live.

Conventions
-----------
- Values are signed two's-complement integers held in ``numpy.int64`` arrays.
- Symmetric quantization: ``q = clip(round_half_even(x / scale), -(2**(b-1) - 1), 2**(b-1) - 1)``,
  so that the code is symmetric about zero (no lonely most-negative code).
- Right shifts that drop fraction bits round half up: ``(x + 2**(s-1)) >> s``; hardware does this with
  one adder before the shift.
- An MSB/LSB split keeps the arithmetic-shift quotient as the signed MSB part and the remainder as an
  unsigned LSB part, so ``(msb << lsb_bits) | lsb == q`` exactly.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "check_bits",
    "check_finite",
    "qmax",
    "quantize",
    "quantize_float",
    "dequantize",
    "saturate",
    "shift_round",
    "split",
    "reassemble",
    "msb_estimate",
]

IntArray = npt.NDArray[np.int64]


def check_bits(name: str, bits: object, lo: int = 2, hi: int = 16) -> int:
    """Validate a bit width; raise ``ValueError`` naming ``name`` when outside ``lo..hi``."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise TypeError(f"{name} must be an integer bit width, got {bits!r}")
    if not lo <= int(bits) <= hi:
        raise ValueError(f"{name} = {bits} is outside the allowed range {lo}..{hi}")
    return int(bits)


def check_finite(name: str, x: npt.ArrayLike) -> np.ndarray:
    """Return ``x`` as a float64 array; raise ``ValueError`` naming ``name`` if empty or not finite."""
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def qmax(bits: int) -> int:
    """Largest code of a symmetric ``bits``-bit quantizer (``2**(bits-1) - 1``)."""
    return (1 << (bits - 1)) - 1


def quantize(x: npt.ArrayLike, bits: int, scale: float) -> IntArray:
    """Symmetric quantization of real values to signed ``bits``-bit codes.

    Parameters
    ----------
    x : array_like
        Finite real values.
    bits : int
        Code width, 2..16.
    scale : float
        Real value of one code step (> 0).

    Returns
    -------
    numpy.ndarray of int64
        Codes in ``[-qmax(bits), qmax(bits)]`` (saturated).
    """
    check_bits("bits", bits)
    if not (isinstance(scale, int | float | np.floating) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale = {scale!r} must be a finite number > 0")
    return quantize_float(check_finite("x", x), bits, scale).astype(np.int64)


def quantize_float(
    x: np.ndarray, bits: int, scale: float, *, clip: bool = True, out: np.ndarray | None = None
) -> npt.NDArray[np.float64]:
    """:func:`quantize` without its checks, the codes held in float64 (exactly: they are below 2**15).

    For callers that validated ``x`` (finite real values), ``bits`` and ``scale`` themselves and multiply
    the codes as float64 next (a BLAS product of integer codes is exact below 2**53). The codes are those of
    :func:`quantize`: for a power-of-two scale ``x * (1/scale)`` is the same correctly rounded number as
    ``x / scale``, and for float32 ``x`` it is exact in float32 except far below 1/2, where it still rounds
    to the same signed zero. ``clip=False`` skips the saturation, which changes nothing when
    ``max |x| / scale < qmax + 1/2``, as for a scale chosen from x's own maximum by
    ``models.attention.pow2_frac`` (at most qmax up to float rounding): rounding is monotone. ``out``
    (float64, x's shape) receives the codes instead of a new array.
    """
    if out is None:
        out = np.empty(x.shape, dtype=np.float64)
    inv = 1.0 / scale
    if math.frexp(scale)[0] == 0.5 and math.isfinite(inv):
        if x.dtype == np.float32 and 2.0**-126 <= inv <= 2.0**127:
            # in float32 (exact, see above; rint is exact too), then one widening copy: a float32 loop
            # writing float64 output goes through numpy's slower buffered casting
            tmp = np.multiply(x, np.float32(inv))
            np.rint(tmp, out=tmp)
            out[...] = tmp
        else:
            np.multiply(x, np.float64(inv), out=out)
            np.rint(out, out=out)
    else:
        np.divide(x, np.float64(scale), out=out)
        np.rint(out, out=out)
    if clip:
        m = qmax(bits)
        np.clip(out, -m, m, out=out)
    return out


def dequantize(q: npt.ArrayLike, scale: float) -> npt.NDArray[np.float64]:
    """Real values of codes ``q`` at ``scale``."""
    return np.asarray(q, dtype=np.float64) * scale


def saturate(x: npt.ArrayLike, bits: int) -> IntArray:
    """Clip integers to the full signed range of ``bits`` bits, ``[-2**(bits-1), 2**(bits-1) - 1]``."""
    check_bits("bits", bits, 1, 62)
    a = np.asarray(x, dtype=np.int64)
    return np.clip(a, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def shift_round(x: npt.ArrayLike, shift: int) -> IntArray:
    """Arithmetic right shift by ``shift`` bits, rounding half up (``shift = 0`` is identity)."""
    if shift < 0:
        raise ValueError(f"shift = {shift} must be >= 0")
    a = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return a.copy()
    out = a + (1 << (shift - 1))
    out >>= shift  # in place: one new array per call (shifts run over whole score matrices)
    return out


def split(q: npt.ArrayLike, total_bits: int, lsb_bits: int) -> tuple[IntArray, IntArray]:
    """Split ``total_bits``-bit signed codes into a signed MSB part and an unsigned LSB part.

    Parameters
    ----------
    q : array_like of int
        Signed codes representable in ``total_bits`` bits.
    total_bits : int
        Width of the full code, 2..16.
    lsb_bits : int
        Width of the LSB part, 0..total_bits-2 (the MSB part keeps at least 2 bits).

    Returns
    -------
    (msb, lsb) : tuple of int64 arrays
        ``msb = q >> lsb_bits`` (signed, ``total_bits - lsb_bits`` bits) and
        ``lsb = q & (2**lsb_bits - 1)`` (unsigned).
    """
    check_bits("total_bits", total_bits)
    check_bits("lsb_bits", lsb_bits, 0, total_bits - 2)
    a = np.asarray(q, dtype=np.int64)
    lo, hi = -(1 << (total_bits - 1)), (1 << (total_bits - 1)) - 1
    if a.size and (a.min() < lo or a.max() > hi):
        raise ValueError(f"q has values outside the {total_bits}-bit signed range {lo}..{hi}")
    return a >> lsb_bits, a & ((1 << lsb_bits) - 1)


def reassemble(msb: npt.ArrayLike, lsb: npt.ArrayLike, lsb_bits: int) -> IntArray:
    """Exact inverse of :func:`split`: ``(msb << lsb_bits) | lsb``."""
    m = np.asarray(msb, dtype=np.int64)
    low = np.asarray(lsb, dtype=np.int64)
    if m.shape != low.shape:
        raise ValueError(f"msb shape {m.shape} and lsb shape {low.shape} differ")
    if low.size and (low.min() < 0 or low.max() >= (1 << lsb_bits)):
        raise ValueError(f"lsb has values outside 0..{(1 << lsb_bits) - 1}")
    return (m << lsb_bits) | low


def msb_estimate(msb: npt.ArrayLike, lsb_bits: int) -> IntArray:
    """Full-scale estimate of a code from its MSB part alone, before the LSBs arrive.

    The missing LSBs are replaced by the middle of their range (``2**(lsb_bits-1)``), which halves the
    worst-case error against truncation; with ``lsb_bits = 0`` the MSBs are the code.
    """
    m = np.asarray(msb, dtype=np.int64)
    if lsb_bits == 0:
        return m.copy()
    return (m << lsb_bits) + (1 << (lsb_bits - 1))
