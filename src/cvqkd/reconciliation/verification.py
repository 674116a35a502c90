"""Frame verification after decoding: a polynomial universal hash over GF(2^k − 1).

Decoding can converge to a wrong word that satisfies the syndrome (an undetected error,
frequent with random low-rate graphs), so every frame is checked: Bob draws a fresh uniform
seed ``s ∈ GF(p)``, ``p = 2^k − 1`` a Mersenne prime, and sends ``(s, h_s(b))`` over the
authenticated channel; Alice keeps her decoded frame only if ``h_s(b̂) = h_s(b)``.

The hash (Carter–Wegman polynomial evaluation; e.g. Bernstein, "The Poly1305-AES message-
authentication code", FSE 2005, §3): split the ``n`` bits into ``L = ⌈n/(k−1)⌉`` chunks
``c_1..c_L`` of ``k − 1`` bits (each < p, little-endian bit order, zero padded) and

    h_s(b) = n·s^{L+1} + Σ_i c_i s^{L+1−i}   (mod p).

For two different bit strings the difference is a non-zero polynomial in ``s`` of degree
``≤ L + 1`` with no constant term, so it has at most ``L`` non-zero roots and

    ε_cor = P_s[h_s(b̂) = h_s(b)] ≤ (L + 1)/p      for b̂ ≠ b.

With the default ``k = 61`` and ``n = 10^6``: L = 16 667, ε_cor ≤ 7.2·10⁻¹⁵ per frame; the tag
discloses at most ``k`` bits, counted as leaked. Small primes (k = 13, 17, 19, 31) exist for
tests.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> bits = rng.integers(0, 2, 1000, dtype=np.uint8)
>>> tag = make_tag(bits, rng=rng)
>>> verify(bits, tag), verify(bits ^ np.eye(1, 1000, 7, dtype=np.uint8)[0], tag)
(True, False)
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from cvqkd.errors import ConfigError, DataFormatError

__all__ = [
    "MERSENNE_EXPONENTS",
    "FrameTag",
    "collision_probability",
    "make_tag",
    "poly_hash",
    "verify",
]

#: Exponents k with 2^k − 1 prime that the hash accepts (13–31 are for tests).
MERSENNE_EXPONENTS = (13, 17, 19, 31, 61, 89, 127)


def _prime(prime_bits: int) -> int:
    if prime_bits not in MERSENNE_EXPONENTS:
        raise ConfigError(f"prime_bits must be one of {MERSENNE_EXPONENTS}, got {prime_bits}")
    return (1 << prime_bits) - 1


def _chunks(bits: ArrayLike, width: int) -> tuple[int, list[int]]:
    """The bit string as ``width``-bit little-endian integers (last one zero padded)."""
    b = np.asarray(bits).ravel()
    if b.size and (b.min() < 0 or b.max() > 1):
        raise DataFormatError("bits must be 0 or 1")
    n = int(b.size)
    n_chunks = -(-n // width)
    padded = np.zeros(n_chunks * width, dtype=np.uint64)
    padded[:n] = b
    mat = padded.reshape(n_chunks, width)
    if width <= 63:
        w = np.left_shift(np.uint64(1), np.arange(width, dtype=np.uint64))
        return n, [int(v) for v in (mat * w).sum(axis=1, dtype=np.uint64).tolist()]
    out = [0] * n_chunks
    for start in range(0, width, 63):  # ≤ 63-bit pieces fit a uint64 exactly
        stop = min(start + 63, width)
        weights = np.left_shift(np.uint64(1), np.arange(stop - start, dtype=np.uint64))
        piece = (mat[:, start:stop] * weights).sum(axis=1, dtype=np.uint64)
        for i, val in enumerate(piece.tolist()):
            out[i] |= int(val) << start
    return n, out


def poly_hash(bits: ArrayLike, *, seed: int, prime_bits: int = 61) -> int:
    """``h_s(b) = n·s^{L+1} + Σ c_i s^{L+1−i} mod (2^k − 1)`` (see the module docstring)."""
    p = _prime(prime_bits)
    if not 0 <= seed < p:
        raise ConfigError(f"seed must be in [0, 2^{prime_bits} − 1)")
    n, chunks = _chunks(bits, prime_bits - 1)
    acc = n % p
    for c in chunks:
        acc = (acc * seed + c) % p
    return (acc * seed) % p


def collision_probability(*, n_bits: int, prime_bits: int = 61) -> float:
    """ε_cor = (L + 1)/p, the bound on accepting a wrong ``n_bits`` frame."""
    p = _prime(prime_bits)
    n_chunks = -(-int(n_bits) // (prime_bits - 1))
    return (n_chunks + 1) / p


@dataclass(frozen=True)
class FrameTag:
    """Bob's verification message: the fresh seed and his hash value (both public)."""

    seed: int
    tag: int
    prime_bits: int = 61

    @property
    def leaked_bits(self) -> int:
        """Bits of the key the tag can disclose: ``prime_bits`` (log2 of the tag space)."""
        return self.prime_bits

    def to_bytes(self) -> bytes:
        """Wire form: 1 byte ``k`` then seed and tag, each ``⌈k/8⌉`` bytes big-endian."""
        width = -(-self.prime_bits // 8)
        return (
            bytes([self.prime_bits])
            + self.seed.to_bytes(width, "big")
            + self.tag.to_bytes(width, "big")
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FrameTag:
        """Parse :meth:`to_bytes` output; raises :class:`DataFormatError` if malformed."""
        if not data:
            raise DataFormatError("empty frame tag")
        k = data[0]
        if k not in MERSENNE_EXPONENTS:
            raise DataFormatError(f"frame tag names an unknown prime 2^{k} − 1")
        width = -(-k // 8)
        if len(data) != 1 + 2 * width:
            raise DataFormatError(f"frame tag has {len(data)} bytes, expected {1 + 2 * width}")
        seed = int.from_bytes(data[1 : 1 + width], "big")
        tag = int.from_bytes(data[1 + width :], "big")
        p = (1 << k) - 1
        if seed >= p or tag >= p:
            raise DataFormatError("frame tag value out of range")
        return cls(seed=seed, tag=tag, prime_bits=k)


def _uniform_below(p: int, rng: np.random.Generator) -> int:
    """Uniform integer in [0, p) by rejection on ``bit_length(p)`` random bits."""
    nbytes = -(-p.bit_length() // 8)
    extra = nbytes * 8 - p.bit_length()
    while True:
        v = int.from_bytes(rng.bytes(nbytes), "big") >> extra
        if v < p:
            return v


def make_tag(bits: ArrayLike, *, rng: np.random.Generator, prime_bits: int = 61) -> FrameTag:
    """Bob: draw a fresh seed (uniform in GF(p)) and hash his frame ``bits``."""
    p = _prime(prime_bits)
    seed = _uniform_below(p, rng)
    return FrameTag(
        seed=seed, tag=poly_hash(bits, seed=seed, prime_bits=prime_bits), prime_bits=prime_bits
    )


def verify(bits: ArrayLike, tag: FrameTag) -> bool:
    """Alice: does her decoded frame hash to Bob's tag? (constant-time comparison)."""
    mine = poly_hash(bits, seed=tag.seed, prime_bits=tag.prime_bits)
    width = -(-tag.prime_bits // 8)
    return hmac.compare_digest(mine.to_bytes(width, "big"), tag.tag.to_bytes(width, "big"))
