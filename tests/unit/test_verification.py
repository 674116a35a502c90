"""Tests for frame verification: polynomial hash vs a slow reference, ε bound, corruption."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.verification import (
    FrameTag,
    collision_probability,
    make_tag,
    poly_hash,
    verify,
)


def slow_hash(bits: np.ndarray, seed: int, k: int) -> int:
    """Independent reference: chunks from a string, polynomial summed term by term."""
    p = (1 << k) - 1
    w = k - 1
    s = "".join(str(int(b)) for b in bits)
    chunks = [int(s[i : i + w][::-1], 2) for i in range(0, len(s), w)]  # little-endian
    L = len(chunks)
    total = len(bits) * pow(seed, L + 1, p)
    for i, c in enumerate(chunks, start=1):
        total += c * pow(seed, L + 1 - i, p)
    return total % p


@pytest.mark.parametrize("k", [13, 31, 61, 89, 127])
@pytest.mark.parametrize("n", [1, 59, 60, 61, 500, 1000])
def test_matches_slow_reference(k: int, n: int) -> None:
    rng = np.random.default_rng(k * 1000 + n)
    bits = rng.integers(0, 2, n, dtype=np.uint8)
    seed = int(rng.integers(0, 2**12))
    assert poly_hash(bits, seed=seed, prime_bits=k) == slow_hash(bits, seed, k)


def test_collision_bound_exhaustive_over_all_seeds() -> None:
    # With p = 2^13 − 1, enumerate every seed: two different messages collide for at most
    # L + 1 of the p seeds (roots of the difference polynomial), i.e. ε ≤ (L + 1)/p exactly.
    rng = np.random.default_rng(3)
    k, n = 13, 120  # L = 10 chunks of 12 bits
    eps = collision_probability(n_bits=n, prime_bits=k)
    assert eps == pytest.approx(11 / 8191)
    p = (1 << k) - 1
    worst = 0
    for _ in range(6):
        a = rng.integers(0, 2, n, dtype=np.uint8)
        b = a.copy()
        b[rng.choice(n, int(rng.integers(1, 5)), replace=False)] ^= 1
        ha = np.array([poly_hash(a, seed=s, prime_bits=k) for s in range(p)])
        hb = np.array([poly_hash(b, seed=s, prime_bits=k) for s in range(p)])
        worst = max(worst, int((ha == hb).sum()))
    assert worst <= 11
    # different lengths are separated by the length term too (zero padding is not a collision)
    z = np.zeros(12, dtype=np.uint8)
    assert poly_hash(z, seed=5, prime_bits=k) == 12 * 25
    assert poly_hash(z[:11], seed=5, prime_bits=k) == 11 * 25


def test_catches_corrupted_frames() -> None:
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2, 100_000, dtype=np.uint8)
    for _ in range(50):
        tag = make_tag(bits, rng=rng)
        assert verify(bits, tag)
        bad = bits.copy()
        bad[rng.choice(bits.size, int(rng.integers(1, 30)), replace=False)] ^= 1
        assert not verify(bad, tag)  # fails with probability ≤ ε = 1.5e-14 per trial
    assert collision_probability(n_bits=10**6, prime_bits=61) < 7.3e-15


def test_tag_wire_round_trip_and_errors() -> None:
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, 777, dtype=np.uint8)
    for k in (61, 127):
        tag = make_tag(bits, rng=rng, prime_bits=k)
        assert FrameTag.from_bytes(tag.to_bytes()) == tag
        assert tag.leaked_bits == k
    with pytest.raises(DataFormatError):
        FrameTag.from_bytes(b"\x3d\x00")
    with pytest.raises(DataFormatError):
        FrameTag.from_bytes(b"\x07" + bytes(2))
    with pytest.raises(ConfigError):
        poly_hash(bits, seed=1, prime_bits=64)
    with pytest.raises(DataFormatError):
        poly_hash(np.array([0, 2]), seed=1)


def test_seeds_are_uniform() -> None:
    # rejection sampling: seeds with p = 2^13 − 1 spread evenly (chi-square, 16 bins)
    from scipy import stats

    rng = np.random.default_rng(6)
    seeds = np.array([make_tag([1], rng=rng, prime_bits=13).seed for _ in range(16000)])
    assert seeds.max() < 8191
    counts = np.bincount(seeds * 16 // 8191, minlength=16)
    assert stats.chisquare(counts).pvalue > 1e-3
