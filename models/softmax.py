"""Softmax golden models: float64 for float mode, and the fixed-point pipeline the RTL implements.

Fixed-point softmax, step by step (all integers, numpy int64, along the last axis)
------------------------------------------------------------------------------------
Parameters and their defaults (:class:`SoftmaxSpec`): ``in_bits`` S = 16 (signed score width),
``frac_bits`` F = 8 (score fraction bits: real score = s / 2**F), ``const_bits`` C = 15,
``lut_bits`` T = 6 (64-entry table), ``interp_bits`` I = 4 (0 = no interpolation),
``exp_bits`` E = 15, ``recip_bits`` R = 16, ``out_bits`` P = 12, ``scale`` (real factor applied to
every score, e.g. 1/sqrt(D); folded into the constant). W = T + I.

1. Max:      ``m = max_j s_j``; ``d_j = m - s_j`` >= 0, unsigned, S + 1 bits.
2. Constant: ``K = round(log2(e) * scale * 2**C)`` (:func:`log2e_constant`), at most C + 2 bits.
3. Exponent: ``y_j = shift_round(d_j * K, F + C - W)`` (requires F + C >= W), so that
   ``y_j / 2**W ~= (m - s_j) * scale * log2(e) / 2**F`` and ``exp(scale*(s_j - m)/2**F) ~= 2**(-y_j/2**W)``.
   Product width S + C + 3 bits.
4. Split:    ``n_j = y_j >> W`` (integer part: a right shift), ``f_j = y_j & (2**W - 1)``;
   ``i_j = f_j >> I`` (table index, T bits) and ``r_j = f_j & (2**I - 1)`` (interpolation weight).
5. Table:    ``LUT[i] = round(2**E * 2**(-i / 2**T))`` for ``i = 0..2**T`` (2**T + 1 entries, E + 1 bits
   unsigned; entry 2**T = 2**(E-1) is only read by the interpolation).
   Mantissa ``g_j = LUT[i] - shift_round((LUT[i] - LUT[i+1]) * r_j, I)`` (with I = 0: ``g_j = LUT[i]``),
   E + 1 bits, in [2**(E-1), 2**E].
6. Shift:    ``e_j = shift_round(g_j, min(n_j, E + 2))``, E + 1 bits; the shift count saturates at E + 2,
   beyond which every mantissa rounds to 0 anyway. The row maximum gives ``e = 2**E`` exactly.
7. Sum:      ``sum = sum_j e_j``, E + 1 + ceil(log2 n) bits, and ``sum >= 2**E``.
8. Divide:   ``rcp = floor(2**(E + R) / sum)`` once per row (a sequential restoring divider in RTL),
   R + 1 bits, in [1, 2**R].
9. Output:   ``p_j = min(shift_round(e_j * rcp, E + R - P), 2**P - 1)``: unsigned P-bit probabilities
   with P fraction bits (real probability = p / 2**P). Product width E + R + 2 bits.

Error against float64 softmax (the stated bound)
------------------------------------------------
With p the float64 softmax of ``scale * s / 2**F`` and p' = p_code / 2**P, every element and row obey
(:func:`error_bound` computes both; ``tests/models/test_softmax.py`` checks them on random rows and
random specs)::

    |p'_j - p_j|       <= (2*rho*delta + n*2**-(E+1)) * p_j + 2**-(E+1) + 2**-R + 2**-P
    sum_j |p'_j - p_j| <= 2*(rho*delta + n*2**-(E+1)) + n*(2**-R + 2**-(P+1)) + 2**-(P+1)

where n is the row length, ``delta`` (:func:`relative_exp_error`) bounds the relative error of the
mantissa path (exponent rounding, constant rounding, table/interpolation rounding, interpolation
curvature) and ``rho = 1 / (1 - delta - n*2**-(E+1))``. Terms: each e_j is within ``delta`` relative plus
half an LSB of ``2**E * exp(x_j)``, so the row sum is within ``delta`` relative plus n/2 LSB; the floor of
the reciprocal costs at most 2**-R; output rounding 2**-(P+1) and saturation of p = 1 at most 2**-P.
Defaults: delta = 5.6e-4, so for n = 1024 the per-element bound is 0.0170 * p_j + 2.9e-4 (the n/2-LSB
term dominates: it is reached only when many scores sit just below half an LSB of exp); the total
bound is 0.173. Measured by ``benchmarks/bench_golden.py`` on Gaussian random rows (n = 1..1024, score
spreads 0.5..30000 LSB), the error stays below half of both bounds, and the largest per-element error
seen is 2**-12 (saturation).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from spatten.models.fixed import check_bits, check_finite, shift_round

__all__ = [
    "RowCycles",
    "softmax_row_cycles",
    "SoftmaxSpec",
    "softmax_float",
    "softmax_fixed",
    "softmax_steps",
    "SoftmaxSteps",
    "log2e_constant",
    "exp_table",
    "error_bound",
    "relative_exp_error",
    "DEFAULT_SPEC",
]


@dataclass(frozen=True)
class SoftmaxSpec:
    """Integer widths of the fixed-point softmax (see the module docstring for each step).

    Attributes
    ----------
    in_bits : int
        Signed score width S, 2..32 (Q.K sums are wider than the 16-bit datapath words).
    frac_bits : int
        Score fraction bits F, 0..32.
    const_bits : int
        Fraction bits C of the log2(e) * scale constant, 2..16.
    lut_bits : int
        log2 of the exp table size T, 2..10.
    interp_bits : int
        Linear interpolation bits I between table entries, 0..8 (0: plain table look-up).
    exp_bits : int
        Fraction bits E of the exponentials (the table entries), 2..16.
    recip_bits : int
        Extra precision R of the per-row reciprocal, 2..24.
    out_bits : int
        Unsigned probability width P (and fraction bits), 2..16.
    scale : float
        Real factor applied to every score before exp (for attention: 1/sqrt(head_dim)), in (0, 16].
    """

    in_bits: int = 16
    frac_bits: int = 8
    const_bits: int = 15
    lut_bits: int = 6
    interp_bits: int = 4
    exp_bits: int = 15
    recip_bits: int = 16
    out_bits: int = 12
    scale: float = 1.0

    def __post_init__(self) -> None:
        check_bits("in_bits", self.in_bits, 2, 32)
        check_bits("frac_bits", self.frac_bits, 0, 32)
        check_bits("const_bits", self.const_bits, 2, 16)
        check_bits("lut_bits", self.lut_bits, 2, 10)
        check_bits("interp_bits", self.interp_bits, 0, 8)
        check_bits("exp_bits", self.exp_bits, 2, 16)
        check_bits("recip_bits", self.recip_bits, 2, 24)
        check_bits("out_bits", self.out_bits, 2, 16)
        s = self.scale
        if isinstance(s, bool) or not isinstance(s, int | float | np.floating) or not math.isfinite(s):
            raise ValueError(f"scale = {s!r} must be a finite number in (0, 16]")
        if not 0 < s <= 16:
            raise ValueError(f"scale = {s} is outside the allowed range (0, 16]")
        if self.frac_bits + self.const_bits < self.lut_bits + self.interp_bits:
            raise ValueError(
                f"frac_bits + const_bits = {self.frac_bits + self.const_bits} must be >= "
                f"lut_bits + interp_bits = {self.lut_bits + self.interp_bits}"
            )

    @property
    def w_bits(self) -> int:
        """Fraction bits W = T + I of the base-2 exponent y."""
        return self.lut_bits + self.interp_bits


DEFAULT_SPEC = SoftmaxSpec()


def softmax_float(x: npt.ArrayLike, axis: int = -1) -> npt.NDArray[np.float64]:
    """Float64 softmax along ``axis`` with max subtraction.

    Parameters
    ----------
    x : array_like
        Finite scores, not empty.
    axis : int
        Axis to normalize over.

    Returns
    -------
    numpy.ndarray of float64, same shape as ``x``.
    """
    a = check_finite("x", x)
    if a.ndim == 0:
        raise ValueError("x must have at least one dimension")
    return _softmax_float(a, axis)


def _softmax_float(a: np.ndarray, axis: int = -1) -> npt.NDArray[np.float64]:
    """:func:`softmax_float` of a finite float64 array, unchecked (for callers that produced it)."""
    z = np.exp(a - a.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def log2e_constant(spec: SoftmaxSpec = DEFAULT_SPEC) -> int:
    """``K = round(log2(e) * scale * 2**const_bits)``, the one multiplier constant of step 2."""
    return int(round(math.log2(math.e) * spec.scale * (1 << spec.const_bits)))


def exp_table(spec: SoftmaxSpec = DEFAULT_SPEC) -> npt.NDArray[np.int64]:
    """The 2**T + 1 entries ``round(2**E * 2**(-i / 2**T))`` of step 5 (ROM contents for the RTL)."""
    return _exp_table(spec).copy()


@functools.lru_cache(maxsize=64)
def _exp_table(spec: SoftmaxSpec) -> npt.NDArray[np.int64]:
    """:func:`exp_table`, computed once per spec (read-only: every softmax call shares it)."""
    t = spec.lut_bits
    i = np.arange((1 << t) + 1, dtype=np.float64)
    lut = np.rint(np.ldexp(np.exp2(-i / (1 << t)), spec.exp_bits)).astype(np.int64)
    lut.flags.writeable = False
    return lut


def _check_scores(scores: npt.ArrayLike, in_bits: int) -> npt.NDArray[np.int64]:
    a = np.asarray(scores)
    if a.ndim == 0 or a.shape[-1] == 0 or a.size == 0:
        raise ValueError(f"scores must have a non-empty last axis, got shape {a.shape}")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("scores contains NaN or inf")
        if not np.all(a == np.round(a)):
            raise ValueError("scores must be integers (fixed-point codes)")
    elif a.dtype.kind not in "iu":
        raise TypeError(f"scores must be integer codes, got dtype {a.dtype}")
    a = a.astype(np.int64)
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    if a.min() < lo or a.max() > hi:
        raise ValueError(f"scores has values outside the in_bits = {in_bits} signed range {lo}..{hi}")
    return a


@dataclass(frozen=True)
class SoftmaxSteps:
    """Every intermediate of :func:`softmax_fixed` (module docstring step numbers), for RTL debugging.

    Per-element arrays have the shape of the scores (..., n); per-row ones keep a length-1 last axis.
    """

    d: np.ndarray  # step 1: max - s, unsigned S + 1 bits
    y: np.ndarray  # step 3: base-2 exponent, W fraction bits
    shift: np.ndarray  # step 4/6: integer part n, saturated at E + 2
    index: np.ndarray  # step 4: table index (T bits)
    weight: np.ndarray  # step 4: interpolation weight (I bits)
    mantissa: np.ndarray  # step 5: g, E + 1 bits
    e: np.ndarray  # step 6: exponentials, E + 1 bits
    total: np.ndarray  # step 7: row sums (..., 1)
    rcp: np.ndarray  # step 8: floor(2**(E + R) / total) (..., 1)
    p: np.ndarray  # step 9: probabilities, P bits


def softmax_fixed(scores: npt.ArrayLike, spec: SoftmaxSpec = DEFAULT_SPEC) -> npt.NDArray[np.int64]:
    """Bit-exact fixed-point softmax along the last axis (the RTL's golden twin).

    Parameters
    ----------
    scores : array_like of int, shape (..., n)
        Signed ``spec.in_bits``-bit score codes with ``spec.frac_bits`` fraction bits.
    spec : SoftmaxSpec
        Integer widths (module docstring).

    Returns
    -------
    numpy.ndarray of int64, shape (..., n)
        Unsigned ``out_bits``-bit probability codes (real value = code / 2**out_bits).
    """
    return softmax_steps(scores, spec).p


def softmax_steps(scores: npt.ArrayLike, spec: SoftmaxSpec = DEFAULT_SPEC) -> SoftmaxSteps:
    """:func:`softmax_fixed` with all its intermediates (same arguments); ``.p`` is the result."""
    if not isinstance(spec, SoftmaxSpec):
        raise TypeError(f"spec must be a SoftmaxSpec, got {type(spec).__name__}")
    return _steps(_check_scores(scores, spec.in_bits), spec)


def _steps(s: np.ndarray, spec: SoftmaxSpec, mask: np.ndarray | None = None) -> SoftmaxSteps:
    """Steps 1-9 on int64 scores already inside ``spec.in_bits`` (no checks: callers produced them).

    ``mask`` (bool, broadcast against ``s``; True = the entry takes part) leaves masked entries out of the
    row: the maximum is taken over the unmasked ones and masked exponentials are 0, so every unmasked
    probability equals the softmax of the unmasked entries alone, bit for bit (their d, y, e, sum and
    reciprocal are the same integers), and masked probabilities are 0. A row with nothing unmasked has
    all probabilities 0 (its sum is taken as 1 for the divide). Masked entries' d, y, ... are meaningless.
    """
    d = _max_minus(s, spec, mask, 0)
    y, n, idx, r, g, e = _exp_steps(d, spec)
    if mask is not None:
        e = np.where(mask, e, 0)
    total, rcp, p = _normalize(e, spec, mask is not None)
    return SoftmaxSteps(d, y, n, idx, r, g, e, total, rcp, p)


def _softmax_p(s: np.ndarray, spec: SoftmaxSpec, mask: np.ndarray | None = None) -> npt.NDArray[np.int64]:
    """``_steps(s, spec, mask).p``, with steps 3-6 read from a table of e over d when the table is small.

    e depends on d alone and is 0 from ``d_zero`` on (the shift saturates), so ``table[min(d, d_zero)]``
    is every e bit for bit; masked entries get ``d = d_zero``, hence e = 0.
    """
    table = _e_table(spec)
    if table is None:
        return _steps(s, spec, mask).p
    d_zero = table.size - 1
    e = table[np.minimum(_max_minus(s, spec, mask, d_zero), d_zero)]
    return _normalize(e, spec, mask is not None)[2]


def _max_minus(s: np.ndarray, spec: SoftmaxSpec, mask: np.ndarray | None, masked_d: int) -> np.ndarray:
    """Step 1, ``d = max - s``; with a mask, the maximum over unmasked entries and ``masked_d`` elsewhere."""
    if mask is None:
        return s.max(axis=-1, keepdims=True) - s
    lo = -(1 << (spec.in_bits - 1))  # the smallest score: a row of masked entries only keeps it
    return np.where(mask, np.where(mask, s, lo).max(axis=-1, keepdims=True) - s, masked_d)


def _exp_steps(d: np.ndarray, spec: SoftmaxSpec) -> tuple[np.ndarray, ...]:
    """Steps 3-6, element by element: y, shift n, table index, weight, mantissa g and e from d >= 0."""
    w = spec.w_bits
    y = shift_round(d * log2e_constant(spec), spec.frac_bits + spec.const_bits - w)
    n = np.minimum(y >> w, spec.exp_bits + 2)
    f = y & ((1 << w) - 1)
    idx = f >> spec.interp_bits
    r = f & ((1 << spec.interp_bits) - 1)
    lut = _exp_table(spec)
    g = lut[idx]
    if spec.interp_bits:
        g = g - shift_round((g - lut[idx + 1]) * r, spec.interp_bits)
    # Per-element rounding right shift (half up), as fixed.shift_round does for a scalar shift:
    # (g + 2**(n-1)) >> n for n > 0 and g for n = 0 are both ((2g >> n) + 1) >> 1.
    e = (((g << 1) >> n) + 1) >> 1
    return y, n, idx, r, g, e


def _normalize(e: np.ndarray, spec: SoftmaxSpec, maybe_empty: bool) -> tuple[np.ndarray, ...]:
    """Steps 7-9: row sum, reciprocal, probabilities."""
    total = e.sum(axis=-1, keepdims=True)  # >= 2**E: the row maximum contributes exactly 2**E
    if maybe_empty:
        total = np.maximum(total, 1)  # a row with nothing unmasked: all e are 0, so every p is 0
    rcp = (np.int64(1) << (spec.exp_bits + spec.recip_bits)) // total
    p = shift_round(e * rcp, spec.exp_bits + spec.recip_bits - spec.out_bits)
    return total, rcp, np.minimum(p, (1 << spec.out_bits) - 1)


_E_TABLE_MAX = 1 << 16


@functools.lru_cache(maxsize=64)
def _e_table(spec: SoftmaxSpec) -> npt.NDArray[np.int64] | None:
    """e for d = 0..d_zero (read-only), d_zero the first d whose shift saturates at E + 2 (e = 0 there and
    beyond); None when that table would exceed 2**16 entries (wide score fractions)."""
    sh = spec.frac_bits + spec.const_bits - spec.w_bits
    y_sat = (spec.exp_bits + 2) << spec.w_bits  # y >> W >= E + 2 from here on
    half = (1 << (sh - 1)) if sh else 0
    k = log2e_constant(spec)
    d_zero = max(0, -(-((y_sat << sh) - half) // k))  # smallest d with (d * K + half) >> sh >= y_sat
    if d_zero >= _E_TABLE_MAX:
        return None
    e = _exp_steps(np.arange(d_zero + 1, dtype=np.int64), spec)[-1]
    e.flags.writeable = False
    return e


def error_bound(p: npt.ArrayLike, spec: SoftmaxSpec = DEFAULT_SPEC) -> tuple[np.ndarray, np.ndarray]:
    """Stated error bounds of :func:`softmax_fixed` against the float64 softmax ``p``.

    Parameters
    ----------
    p : array_like, shape (..., n)
        The true (float64) probabilities of the rows.
    spec : SoftmaxSpec
        The widths.

    Returns
    -------
    (per_prob, total) : (numpy.ndarray, numpy.ndarray)
        Bound on ``|p'_j - p_j|`` for every element (shape of ``p``) and on ``sum_j |p'_j - p_j|`` per
        row (shape ``p.shape[:-1]``); formulas in the module docstring.
    """
    pa = check_finite("p", p)
    if pa.ndim == 0:
        raise ValueError("p must have at least one dimension")
    n = pa.shape[-1]
    delta = relative_exp_error(spec)
    e, r, o = spec.exp_bits, spec.recip_bits, spec.out_bits
    sum_term = n * 2.0 ** -(e + 1)  # integer rounding of every e_j moves the sum by up to n/2 LSB
    rho = 1.0 / max(1e-9, 1.0 - delta - sum_term)
    per = (2 * rho * delta + sum_term) * pa + 2.0 ** -(e + 1) + 2.0**-r + 2.0**-o
    total = 2 * (rho * delta + sum_term) + n * (2.0**-r + 2.0 ** -(o + 1)) + 2.0 ** -(o + 1)
    return per, np.full(pa.shape[:-1], total)


def relative_exp_error(spec: SoftmaxSpec = DEFAULT_SPEC) -> float:
    """Bound delta on the relative error of the mantissa path (steps 2-5), before integer rounding.

    Sums: the exponent rounding (half an LSB of 2**-W) plus the constant's rounding over exponents up to
    E + 3 (beyond that both the true and computed e_j are below one LSB), the table and interpolation
    rounding (one LSB each against entries >= 2**(E-1)) and the linear interpolation's curvature error.
    """
    k = log2e_constant(spec)
    y_err = 2.0 ** -(spec.w_bits + 1) + (spec.exp_bits + 3) * 0.5 / k
    interp = (math.log(2) ** 2) * 2.0 ** -(2 * spec.lut_bits + 2) if spec.interp_bits else 0.0
    return (2.0**y_err - 1.0) + 2.0 ** -(spec.exp_bits - 1) + interp


@dataclass(frozen=True)
class RowCycles:
    """Cycle stamps of one row through ``rtl.softmax.Softmax`` (cycle numbers of the clock edges' cycles).

    ``first`` / ``last_in``: its first and last input beat accepted; ``exp``: its first EXP cycle;
    ``div``: its DIV cycle; ``out``: its first output beat; ``done``: its last output beat accepted.
    """

    first: int
    last_in: int
    exp: int
    div: int
    out: int
    done: int


def softmax_row_cycles(ns: Sequence[int], lanes: int, start: int = 0) -> list[RowCycles]:
    """The RTL softmax's exact cycles for rows offered back to back with the output always taken.

    The block is three stages with two banks between each pair (scores LOAD -> EXP, e values EXP ->
    OUT), so three rows are in flight. With ``B_r = ceil(n_r / lanes)`` beats in row ``r`` and the
    producer offering row ``r``'s first beat the cycle after row ``r - 1``'s last:

    - LOAD takes a beat a cycle once its score bank is free; the bank of row ``r`` is row ``r - 2``'s,
      freed by that row's DIV: ``first_r = max(last_in_{r-1} + 1, div_{r-2} + 1)``,
      ``last_in_r = first_r + B_r - 1``;
    - EXP starts the cycle after the row is loaded, once EXP has finished row ``r - 1`` (its DIV) and
      OUT has emptied the e bank of row ``r - 2``: ``exp_r = max(last_in_r, div_{r-1}, done_{r-2}) + 1``;
      it takes ``B_r`` cycles and DIV one more: ``div_r = exp_r + B_r``;
    - OUT starts after the DIV, once row ``r - 1`` is out: ``out_r = max(div_r, done_{r-1}) + 1``,
      ``done_r = out_r + B_r - 1``.

    One row alone spans ``3 B + 1`` cycles (first beat to last output); back to back, equal rows
    leave every ``B + 1`` cycles (EXP plus DIV is the slowest stage).

    Parameters
    ----------
    ns : sequence of int
        Row lengths, each >= 1.
    lanes : int
        Scores per beat (the block's ``lanes``), >= 1.
    start : int
        Cycle of the first row's first beat.

    Returns
    -------
    list of RowCycles
    """
    if lanes < 1:
        raise ValueError(f"lanes = {lanes} is outside the allowed range >= 1")
    out: list[RowCycles] = []
    for r, n in enumerate(ns):
        if n < 1:
            raise ValueError(f"row {r}: n = {n} is outside the allowed range >= 1")
        b = -(-n // lanes)
        first = start if r == 0 else out[-1].last_in + 1
        if r >= 2:
            first = max(first, out[r - 2].div + 1)
        last_in = first + b - 1
        waits = [last_in] + ([out[r - 1].div] if r >= 1 else []) + ([out[r - 2].done] if r >= 2 else [])
        exp = max(waits) + 1
        div = exp + b
        out_c = max(div, out[r - 1].done if r >= 1 else div) + 1
        out.append(RowCycles(first, last_in, exp, div, out_c, out_c + b - 1))
    return out
