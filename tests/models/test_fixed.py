"""Tests of models.fixed: exact split/reassemble, saturation, rounding rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.fixed import (
    check_bits,
    check_finite,
    dequantize,
    msb_estimate,
    qmax,
    quantize,
    quantize_float,
    reassemble,
    saturate,
    shift_round,
    split,
)


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8, 10, 12, 16])
def test_split_reassemble_every_code(bits: int) -> None:
    codes = np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1), dtype=np.int64)
    for lsb in range(bits - 1):
        msb, low = split(codes, bits, lsb)
        assert np.array_equal(reassemble(msb, low, lsb), codes)
        # MSB part is a signed (bits - lsb)-bit number, LSB part unsigned lsb bits.
        assert msb.min() == -(2 ** (bits - lsb - 1)) and msb.max() == 2 ** (bits - lsb - 1) - 1
        assert low.min() >= 0 and low.max() <= 2**lsb - 1
        # Python's floor division and modulo are an independent statement of the same split.
        assert msb.tolist() == [c // 2**lsb for c in codes.tolist()]
        assert low.tolist() == [c % 2**lsb for c in codes.tolist()]


@pytest.mark.parametrize("bits, lsb", [(10, 4), (12, 4), (8, 3), (5, 1)])
def test_msb_estimate_error_at_most_half_lsb_range(bits: int, lsb: int) -> None:
    codes = np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1), dtype=np.int64)
    msb, _ = split(codes, bits, lsb)
    err = msb_estimate(msb, lsb) - codes
    assert np.abs(err).max() <= 2 ** (lsb - 1)
    assert np.array_equal(msb_estimate(codes, 0), codes)


def test_quantize_saturates_and_rounds_half_even() -> None:
    assert quantize([1e9, -1e9], 8, 1.0).tolist() == [127, -127]
    assert quantize([0.5, 1.5, 2.5, -0.5, -1.5], 8, 1.0).tolist() == [0, 2, 2, 0, -2]
    assert quantize([0.26], 4, 0.125).tolist() == [2]
    assert qmax(2) == 1 and qmax(16) == 32767


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=20),
    st.integers(2, 16),
    st.sampled_from([1.0, 0.5, 0.1, 3.0, 2.0**-7]),
)
def test_quantize_matches_python_round(xs: list[float], bits: int, scale: float) -> None:
    m = 2 ** (bits - 1) - 1
    ref = [max(-m, min(m, round(x / scale))) for x in xs]  # Python round() is half-to-even
    q = quantize(xs, bits, scale)
    assert q.tolist() == ref
    inside = np.abs(np.asarray(xs)) <= m * scale
    assert np.all(np.abs(dequantize(q, scale) - np.asarray(xs))[inside] <= scale / 2 + 1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("frac", [-140, -20, -3, 0, 5, 11, 40, 130])
def test_quantize_float_equals_quantize(dtype, frac: int) -> None:
    """The float path (float32 products for float32 inputs, no temporaries) gives quantize's codes, signed
    zeros included; without clipping too when the scale comes from the data's own maximum."""
    rng = np.random.default_rng(frac + 1000)
    e = 10 if dtype == np.float16 else 30  # exponents the type holds
    x = (rng.standard_normal(4000) * 2.0 ** rng.integers(-e, e, 4000)).astype(dtype)
    x[:8] = [0.5, -0.5, 1.5, -2.5, -0.0, 0.0, 1e-45, -1e-45]
    for bits in (4, 8, 12, 16):
        scale = 2.0**-frac
        ref = quantize(x, bits, scale).astype(np.float64)
        got = quantize_float(x, bits, scale, out=np.empty(x.shape))
        assert np.array_equal(got, ref) and np.array_equal(
            np.signbit(got), np.signbit(quantize_float(x, bits, scale))
        )
        assert np.array_equal(quantize_float(x, bits, 0.3), quantize(x, bits, 0.3))
        own = 2.0 ** -math.floor(math.log2(qmax(bits) / float(np.abs(x).max())))  # pow2_frac's rule
        assert np.array_equal(quantize_float(x, bits, own, clip=False), quantize(x, bits, own))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=20), st.integers(0, 20))
def test_shift_round_half_up(xs: list[int], s: int) -> None:
    ref = [math.floor(x / 2**s + 0.5) if s else x for x in xs]  # exact: x / 2**s is a dyadic float
    assert shift_round(xs, s).tolist() == ref


def test_shift_round_hand_cases() -> None:
    assert shift_round([1, 2, 3, -1, -2, -3, 5], 1).tolist() == [1, 1, 2, 0, -1, -1, 3]
    with pytest.raises(ValueError, match="shift"):
        shift_round([1], -1)


def test_saturate() -> None:
    assert saturate([200, -200, 5], 8).tolist() == [127, -128, 5]
    assert saturate([2**20], 16).tolist() == [32767]


def test_validation_names_argument() -> None:
    for bad in (1, 17):
        with pytest.raises(ValueError, match="bits"):
            quantize([1.0], bad, 1.0)
    with pytest.raises(TypeError, match="bits"):
        check_bits("bits", 3.5)
    with pytest.raises(ValueError, match="scale"):
        quantize([1.0], 8, 0.0)
    with pytest.raises(ValueError, match="x"):
        quantize([np.nan], 8, 1.0)
    with pytest.raises(ValueError, match="x"):
        check_finite("x", [])
    with pytest.raises(ValueError, match="q"):
        split([200], 8, 2)
    with pytest.raises(ValueError, match="lsb_bits"):
        split([1], 8, 7)
    with pytest.raises(ValueError, match="total_bits"):
        split([1], 17, 2)
    with pytest.raises(ValueError, match="lsb"):
        reassemble([1], [4], 2)
    with pytest.raises(ValueError, match="shape"):
        reassemble([1, 2], [0], 2)
