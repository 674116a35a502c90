"""Quasi-cyclic lifting with 4-cycle control (cvqkd.reconciliation.construction)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.construction import (
    assign_shifts,
    canonical_edges,
    count_4cycles_base,
    lift_edges,
)


def _dense_h(base: np.ndarray, shifts: np.ndarray, z: int) -> np.ndarray:
    """Slow reference: H as a sum (mod 2) of explicit circulant permutation matrices."""
    m, n = base.shape
    h = np.zeros((m * z, n * z), dtype=np.int64)
    rows, cols = canonical_edges(base)
    eye = np.eye(z, dtype=np.int64)
    for r, c, s in zip(rows, cols, shifts, strict=True):
        h[r * z : (r + 1) * z, c * z : (c + 1) * z] += np.roll(eye, s, axis=1)
    return h


def _has_4cycle_dense(h: np.ndarray) -> bool:
    """Two columns sharing two or more rows <=> a 4-cycle (h must be 0/1)."""
    g = h.T @ h
    np.fill_diagonal(g, 0)
    return bool(g.max() >= 2)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 4),
    st.integers(3, 6),
    st.integers(7, 23),
    st.integers(0, 2**31),
)
def test_lift_matches_dense_circulants_and_is_4cycle_free(
    m: int, n: int, z: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 3, size=(m, n))
    base[:, base.sum(axis=0) == 0] = 1
    try:
        shifts = assign_shifts(base, lifting=z, rng=rng)
    except ConfigError:
        return  # too small a lifting for this base: allowed outcome, tested separately
    h = _dense_h(base, shifts, z)
    assert h.max() <= 1  # parallel edges got distinct shifts
    checks, vars_ = lift_edges(base, shifts, lifting=z)
    fast = np.zeros_like(h)
    fast[checks, vars_] = 1
    assert np.array_equal(fast, h)
    # block degrees follow the protograph
    assert np.array_equal(h.reshape(m, z, n, z).sum(axis=(1, 3)) // z, base)
    assert not _has_4cycle_dense(h)
    assert count_4cycles_base(base, shifts, lifting=z) == 0


def test_bad_shifts_are_detected_by_both_checks() -> None:
    base = np.array([[1, 1], [1, 1]])
    shifts = np.array([0, 1, 2, 3])  # s00 − s10 + s11 − s01 = 0 − 2 + 3 − 1 = 0 → 4-cycles
    assert count_4cycles_base(base, shifts, lifting=5) > 0
    assert _has_4cycle_dense(_dense_h(base, shifts, 5))
    # a double edge with shifts Z/2 apart closes a 4-cycle through itself
    base2 = np.array([[2]])
    assert count_4cycles_base(base2, np.array([0, 3]), lifting=6) > 0
    assert _has_4cycle_dense(_dense_h(base2, np.array([0, 3]), 6))


def test_too_small_lifting_raises() -> None:
    base = np.ones((4, 4), dtype=np.int64)  # needs Z >= 5 at least (distinct differences)
    with pytest.raises(ConfigError, match="too small"):
        assign_shifts(base, lifting=2, rng=np.random.default_rng(0))


def test_fixed_shifts_are_kept_and_degree_one_gets_zero() -> None:
    base = np.array([[1, 1, 1, 0], [1, 1, 0, 1]])
    fixed = np.array([5, -1, -1, -1, -1, -1])
    s = assign_shifts(base, lifting=11, rng=np.random.default_rng(2), fixed=fixed)
    assert s[0] == 5
    _rows, cols = canonical_edges(base)
    assert np.all(s[base.sum(axis=0)[cols] == 1] == 0)


def test_parallel_shifts_are_coprime_to_lifting() -> None:
    base = np.array([[2, 1], [1, 2]])
    s = assign_shifts(base, lifting=12, rng=np.random.default_rng(4))
    assert np.gcd(int(s[0] - s[1]) % 12, 12) == 1
    assert np.gcd(int(s[4] - s[5]) % 12, 12) == 1
