"""Tests of models.softmax: a scalar Python re-derivation, float64 softmax bounds, hand-checked rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from spatten.models.softmax import (
    DEFAULT_SPEC,
    SoftmaxSpec,
    _e_table,
    _exp_table,
    _softmax_p,
    _steps,
    error_bound,
    exp_table,
    log2e_constant,
    softmax_fixed,
    softmax_float,
    softmax_steps,
)


def _rshift_round(x: int, s: int) -> int:
    """Python-int rounding right shift (half up), written independently of models.fixed."""
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def scalar_softmax(row: list[int], spec: SoftmaxSpec) -> list[int]:
    """The module docstring's nine steps, one element at a time with Python ints and math."""
    k = round(math.log2(math.e) * spec.scale * 2**spec.const_bits)
    w = spec.lut_bits + spec.interp_bits
    table = [round(2**spec.exp_bits * 2 ** (-i / 2**spec.lut_bits)) for i in range(2**spec.lut_bits + 1)]
    m = max(row)
    es = []
    for s in row:
        y = _rshift_round((m - s) * k, spec.frac_bits + spec.const_bits - w)
        n, f = y // 2**w, y % 2**w
        i, r = f // 2**spec.interp_bits, f % 2**spec.interp_bits
        g = table[i] - _rshift_round((table[i] - table[i + 1]) * r, spec.interp_bits)
        es.append(_rshift_round(g, min(n, spec.exp_bits + 2)))
    rcp = 2 ** (spec.exp_bits + spec.recip_bits) // sum(es)
    top = 2**spec.out_bits - 1
    return [min(top, _rshift_round(e * rcp, spec.exp_bits + spec.recip_bits - spec.out_bits)) for e in es]


@st.composite
def specs(draw: st.DrawFn) -> SoftmaxSpec:
    lut = draw(st.integers(2, 8))
    interp = draw(st.integers(0, 6))
    const = draw(st.integers(8, 16))
    frac = draw(st.integers(max(0, lut + interp - const), 12))
    return SoftmaxSpec(
        in_bits=draw(st.integers(4, 20)),
        frac_bits=frac,
        const_bits=const,
        lut_bits=lut,
        interp_bits=interp,
        exp_bits=draw(st.integers(8, 16)),
        recip_bits=draw(st.integers(8, 20)),
        out_bits=draw(st.integers(4, 16)),
        scale=draw(st.sampled_from([1.0, 0.5, 0.125, 0.3, 2.0])),
    )


@st.composite
def spec_and_rows(draw: st.DrawFn, max_n: int = 64) -> tuple[SoftmaxSpec, np.ndarray]:
    spec = draw(specs())
    lo, hi = -(2 ** (spec.in_bits - 1)), 2 ** (spec.in_bits - 1) - 1
    n = draw(st.integers(1, max_n))
    rows = draw(st.integers(1, 3))
    spread = draw(st.integers(0, spec.in_bits - 1))
    centre = draw(st.integers(lo, hi))
    vals = draw(st.lists(st.integers(-(2**spread), 2**spread), min_size=n * rows, max_size=n * rows))
    a = np.clip(np.array(vals, dtype=np.int64) + centre, lo, hi).reshape(rows, n)
    return spec, a


@settings(max_examples=60, deadline=None)
@given(spec_and_rows())
def test_matches_scalar_reference(case: tuple[SoftmaxSpec, np.ndarray]) -> None:
    spec, a = case
    got = softmax_fixed(a, spec)
    for row, g in zip(a, got, strict=True):
        assert g.tolist() == scalar_softmax(row.tolist(), spec)


@settings(max_examples=60, deadline=None)
@given(spec_and_rows(max_n=256))
def test_error_within_stated_bound(case: tuple[SoftmaxSpec, np.ndarray]) -> None:
    spec, a = case
    p = softmax_fixed(a, spec) / 2.0**spec.out_bits
    ref = softmax_float(a * spec.scale / 2.0**spec.frac_bits)
    per, total = error_bound(ref, spec)
    err = np.abs(p - ref)
    assert np.all(err <= per)
    assert np.all(err.sum(axis=-1) <= total)


def test_error_bound_default_random_rows() -> None:
    rng = np.random.default_rng(7)
    for n in (16, 1024):
        for sd in (4.0, 64.0, 2000.0):
            a = np.clip(np.rint(rng.normal(0, sd, (20, n))), -32768, 32767).astype(np.int64)
            p = softmax_fixed(a) / 4096.0
            ref = softmax_float(a / 256.0)
            per, total = error_bound(ref)
            assert np.all(np.abs(p - ref) <= per)
            assert np.all(np.abs(p - ref).sum(-1) <= total)


@settings(max_examples=40, deadline=None)
@given(spec_and_rows())
def test_shift_invariance_and_monotonicity(case: tuple[SoftmaxSpec, np.ndarray]) -> None:
    spec, a = case
    p = softmax_fixed(a, spec)
    # Adding a constant that keeps every score in range leaves the result unchanged (max subtraction).
    hi = 2 ** (spec.in_bits - 1) - 1
    room = hi - int(a.max())
    if room > 0:
        assert np.array_equal(softmax_fixed(a + room, spec), p)
    for row, pr in zip(a, p, strict=True):
        order = np.argsort(row, kind="stable")
        assert np.all(np.diff(pr[order]) >= 0)


def test_hand_checked_rows() -> None:
    # One score: e = 2**E, sum = 2**E, rcp = 2**R, p = 2**P saturated to 2**P - 1.
    assert softmax_fixed([123]).tolist() == [4095]
    # Two equal scores: rcp = 2**(R-1), p = 2**(E + R - 1) >> (E + R - 12) = 2048 each.
    assert softmax_fixed([7, 7]).tolist() == [2048, 2048]
    assert softmax_fixed([[-5, -5, -5, -5]]).tolist() == [[1024, 1024, 1024, 1024]]
    # A gap of 128 (real 128 with F = 0): exp(-128) underflows, y >> W >= E + 2, e = 0.
    spec0 = SoftmaxSpec(frac_bits=0)
    assert softmax_fixed([0, -128], spec0).tolist() == [4095, 0]


def test_hand_checked_steps_small_spec() -> None:
    # F = 0, C = 4 (K = round(1.4427 * 16) = 23), T = 2, I = 0, E = 4, R = 4, P = 4.
    spec = SoftmaxSpec(in_bits=4, frac_bits=0, const_bits=4, lut_bits=2, interp_bits=0, exp_bits=4,
                       recip_bits=4, out_bits=4)  # fmt: skip
    assert log2e_constant(spec) == 23
    # Table round(16 * 2**(-i/4)), i = 0..4: 16, 13.45 -> 13, 11.31 -> 11, 9.51 -> 10, 8.
    assert exp_table(spec).tolist() == [16, 13, 11, 10, 8]
    # Scores [0, -1]: d = [0, 1], y = round(23 / 4) = 6 (W = 2): n = 1, f = 2 -> LUT 11, e = round(5.5) = 6.
    # sum = 16 + 6 = 22, rcp = floor(256 / 22) = 11, p_0 = (176 + 8) >> 4 = 11, p_1 = (66 + 8) >> 4 = 4.
    assert softmax_fixed([0, -1], spec).tolist() == [11, 4]
    st_ = softmax_steps([0, -1], spec)
    assert (st_.d.tolist(), st_.y.tolist(), st_.shift.tolist(), st_.index.tolist()) == (
        [0, 1],
        [0, 6],
        [0, 1],
        [0, 2],
    )
    assert (st_.mantissa.tolist(), st_.e.tolist(), st_.total.tolist(), st_.rcp.tolist()) == (
        [16, 11],
        [16, 6],
        [22],
        [11],
    )
    assert st_.p.tolist() == [11, 4]


def test_float_softmax_against_definition() -> None:
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    e = np.exp([1.0, 2.0, 3.0])
    assert np.allclose(softmax_float(x)[0], e / e.sum(), rtol=1e-15, atol=0)
    assert np.allclose(softmax_float(x)[1], 1 / 3, rtol=1e-15, atol=0)
    assert np.allclose(softmax_float(x, axis=0)[:, 0], np.exp([1, 0]) / np.exp([1, 0]).sum())
    # Large values do not overflow thanks to the max subtraction.
    assert np.allclose(softmax_float([1000.0, 1000.0]), [0.5, 0.5])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"in_bits": 1}, "in_bits"),
        ({"in_bits": 33}, "in_bits"),
        ({"out_bits": 17}, "out_bits"),
        ({"out_bits": 1}, "out_bits"),
        ({"exp_bits": 17}, "exp_bits"),
        ({"lut_bits": 11}, "lut_bits"),
        ({"recip_bits": 1}, "recip_bits"),
        ({"scale": 0.0}, "scale"),
        ({"scale": float("nan")}, "scale"),
        ({"frac_bits": 0, "const_bits": 4, "lut_bits": 4, "interp_bits": 4}, "frac_bits"),
    ],
)
def test_spec_validation(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        SoftmaxSpec(**kwargs)


def test_bad_scores() -> None:
    with pytest.raises(ValueError, match="scores"):
        softmax_fixed([])
    with pytest.raises(ValueError, match="scores"):
        softmax_fixed(np.zeros((3, 0), np.int64))
    with pytest.raises(ValueError, match="scores"):
        softmax_fixed([1.0, float("nan")])
    with pytest.raises(ValueError, match="scores"):
        softmax_fixed([0.5, 1.0])
    with pytest.raises(ValueError, match="in_bits"):
        softmax_fixed([40000, 0])
    with pytest.raises(TypeError, match="spec"):
        softmax_fixed([1, 2], spec="default")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="x"):
        softmax_float([np.inf, 1.0])
    with pytest.raises(ValueError, match="x"):
        softmax_float([])


def test_default_spec_widths_fit() -> None:
    # Widths the RTL copies: table entries need E + 1 bits; the product e * rcp fits in E + R + 2 bits.
    spec = DEFAULT_SPEC
    assert exp_table(spec).max() == 2**spec.exp_bits
    assert exp_table(spec).min() == 2 ** (spec.exp_bits - 1)
    assert log2e_constant(spec) < 2 ** (spec.const_bits + 1)


@settings(max_examples=80, deadline=None)
@given(spec_and_rows(max_n=128), st.integers(0, 2**31), st.sampled_from([0.0, 0.3, 0.8, 1.0]))
def test_fast_core_and_mask_equal_the_steps(
    case: tuple[SoftmaxSpec, np.ndarray], seed: int, drop: float
) -> None:
    """The hot path (table of e over d) equals softmax_fixed; a masked row equals the row cut to its
    unmasked entries, bit for bit, with 0 at masked entries (and 0 everywhere in an empty row)."""
    spec, a = case
    assert np.array_equal(_softmax_p(a, spec), softmax_fixed(a, spec))
    mask = np.random.default_rng(seed).random(a.shape) >= drop
    for got in (_softmax_p(a, spec, mask), _steps(a, spec, mask).p):
        for row, m, g in zip(a, mask, got, strict=True):
            assert not g[~m].any()
            if m.any():
                assert g[m].tolist() == scalar_softmax(row[m].tolist(), spec)


def test_exp_table_is_shared_read_only_and_returned_as_a_copy() -> None:
    t = exp_table(DEFAULT_SPEC)
    t[0] = -1  # the caller's copy: the cached table is untouched
    assert exp_table(DEFAULT_SPEC)[0] == 2**DEFAULT_SPEC.exp_bits
    assert not _exp_table(DEFAULT_SPEC).flags.writeable
    # wide score fractions make the e-over-d table too large: the step-by-step path serves them
    assert _e_table(SoftmaxSpec(frac_bits=16)) is None
    a = np.array([[0, -1 << 14, 100, -5]])
    assert np.array_equal(
        _softmax_p(a, SoftmaxSpec(frac_bits=16)), softmax_fixed(a, SoftmaxSpec(frac_bits=16))
    )
