"""Randomness for key material: the OS CSPRNG, kept apart from the simulator's ``rng``.

The rule
--------
Two kinds of randomness, never mixed:

- **Simulation** (the physics: channel noise, detector noise, the simulated transmitter's
  Gaussian modulation, random test codes): ``rng: numpy.random.Generator`` (DESIGN.md). PCG64 is
  fast and reproducible, and *not* cryptographically secure: its state can be recovered from its
  output, so anyone who sees a few public values drawn from it can predict the rest.
- **Key material**: :class:`SecretRandom`. Secret values — the pre-shared authentication secret,
  the Wegman–Carter one-time pads, Bob's reconciliation bits ``b`` (in reverse reconciliation
  they *become* the key), his punctured-position bits and private signs — and public values that
  must be unpredictable to Eve until they are announced — the disclosure (parameter-estimation)
  key, the verification-hash seeds, the Toeplitz seed, block IDs — all come from it. By default
  it reads the operating system's CSPRNG (:func:`secrets.token_bytes`, i.e. ``getrandom(2)`` /
  ``os.urandom``).

:meth:`SecretRandom.insecure_for_tests` gives a deterministic stream from an integer seed (PCG64
under a separate domain tag) for tests and reproducible demos; it carries ``secure = False`` and
its :attr:`~SecretRandom.label` (``"deterministic test randomness — NOT secure (seed S)"``) is
printed in every report that used it (``cvqkd run --seed S``).

In a real transmitter Alice's Gaussian modulation must also come from a secret source (her
symbols are correlated with the raw key); here it is simulated physics and stays on ``rng``.

Example:
    >>> r = SecretRandom.insecure_for_tests(7)
    >>> r.secure, r.label
    (False, 'deterministic test randomness — NOT secure (seed 7)')
    >>> bool((r.bits(16) < 2).all()), 0 <= r.below(10) < 10
    (True, True)
    >>> SecretRandom.insecure_for_tests(7).bytes(8) == SecretRandom.insecure_for_tests(7).bytes(8)
    True
    >>> SecretRandom().secure
    True
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import Any, cast

import numpy as np
from numpy.typing import DTypeLike, NDArray

__all__ = ["OS_LABEL", "SecretRandom"]

#: Label of the OS CSPRNG source in reports.
OS_LABEL = "OS CSPRNG (secrets.token_bytes)"
#: Domain tag mixed into the test seed, so test key material never equals a simulation stream
#: seeded with the same integer.
_TEST_DOMAIN = 0x5EC12E7


class SecretRandom:
    """Uniform secret bytes, bits and integers for key material (see the module docstring).

    ``SecretRandom()`` reads the OS CSPRNG; ``SecretRandom.insecure_for_tests(seed)`` is a
    deterministic, labelled, NOT secure stand-in. Thread-safe. Draws are counted
    (:attr:`bytes_drawn`) so tests can check where key material came from.

    Besides its own methods it offers the two :class:`numpy.random.Generator` methods that
    library code uses for private coins (:meth:`integers`, :meth:`bytes`), with the same
    semantics, so :meth:`as_generator` can hand it to such code (e.g.
    :func:`cvqkd.reconciliation.reconcile.bob_reconcile`); any other Generator method is absent
    and fails loudly (AttributeError) instead of silently falling back to PCG64.
    """

    def __init__(self) -> None:
        self._read: Callable[[int], bytes] = secrets.token_bytes
        self._lock = threading.Lock()
        self.secure = True
        self.label = OS_LABEL
        self.seed: int | None = None
        self.bytes_drawn = 0

    @classmethod
    def insecure_for_tests(cls, seed: int) -> SecretRandom:
        """A deterministic stream from ``seed`` — for tests and reproducible demos only."""
        gen = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([int(seed), _TEST_DOMAIN]))
        )
        out = cls()
        out._read = gen.bytes
        out.secure = False
        out.seed = int(seed)
        out.label = f"deterministic test randomness — NOT secure (seed {int(seed)})"
        return out

    def spawn(self) -> SecretRandom:
        """An independent stream (OS: another reader; tests: a child seed drawn from this one)."""
        if self.secure:
            return SecretRandom()
        return SecretRandom.insecure_for_tests(self.below(2**63))

    def __repr__(self) -> str:
        return f"SecretRandom({self.label!r})"

    # -------------------------------------------------------------------------- draws

    def bytes(self, length: int) -> bytes:
        """``length`` uniform secret bytes."""
        n = int(length)
        if n < 0:
            raise ValueError(f"length must be ≥ 0, got {n}")
        with self._lock:
            out = self._read(n)
            self.bytes_drawn += n
        return out

    def bits(self, size: int | tuple[int, ...]) -> NDArray[np.uint8]:
        """Uniform bits (uint8 0/1) of shape ``size``; 8 bits per byte drawn."""
        shape = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
        n = int(np.prod(shape, dtype=np.int64))
        raw = np.frombuffer(self.bytes((n + 7) // 8), dtype=np.uint8)
        return np.unpackbits(raw, count=n).reshape(shape)

    def below(self, bound: int) -> int:
        """A uniform integer in ``[0, bound)`` (any size; rejection on ``bit_length`` bits)."""
        bound = int(bound)
        if bound < 1:
            raise ValueError(f"bound must be ≥ 1, got {bound}")
        k = (bound - 1).bit_length()
        nbytes = -(-k // 8)
        while True:
            v = int.from_bytes(self.bytes(nbytes), "big") >> (8 * nbytes - k)
            if v < bound:
                return v

    def integers(
        self,
        low: int,
        high: int | None = None,
        size: int | tuple[int, ...] | None = None,
        dtype: DTypeLike = np.int64,
    ) -> Any:
        """Uniform integers in ``[low, high)`` like ``numpy.random.Generator.integers``.

        ``high − low`` ≤ 2^63; vectorised rejection sampling on ``⌈log2(high − low)⌉`` bits.
        Returns a Python-compatible numpy scalar when ``size`` is None.
        """
        if high is None:
            low, high = 0, low
        span = int(high) - int(low)
        if span < 1 or span > 2**63:
            raise ValueError(f"integers: need 1 ≤ high − low ≤ 2^63, got {span}")
        shape: tuple[int, ...]
        if size is None:
            shape = ()
        elif isinstance(size, (int, np.integer)):
            shape = (int(size),)
        else:
            shape = tuple(int(d) for d in size)
        n = int(np.prod(shape, dtype=np.int64))
        if span == 2:
            vals = self.bits(n).astype(np.uint64)
        else:
            vals = self._uniform_u64(span, n)
        arr = (vals.astype(np.int64) + np.int64(low)).astype(dtype).reshape(shape)
        return arr[()] if size is None else arr

    def _uniform_u64(self, span: int, n: int) -> NDArray[np.uint64]:
        k = (span - 1).bit_length()
        nbytes = max(1, -(-k // 8))
        out = np.empty(n, dtype=np.uint64)
        filled = 0
        while filled < n:
            want = n - filled
            draw = want + want // 2 + 8  # ≥ 1/2 acceptance per value
            raw = np.frombuffer(self.bytes(draw * nbytes), dtype=np.uint8).reshape(draw, nbytes)
            v = np.zeros(draw, dtype=np.uint64)
            for j in range(nbytes):  # big-endian
                v = (v << np.uint64(8)) | raw[:, j].astype(np.uint64)
            v >>= np.uint64(8 * nbytes - k)
            ok = v[v < np.uint64(span)]
            take = min(ok.size, want)
            out[filled : filled + take] = ok[:take]
            filled += take
        return out

    def as_generator(self) -> np.random.Generator:
        """This object, typed as a Generator for code whose ``rng`` draws private coins.

        Only :meth:`integers` and :meth:`bytes` exist; anything else raises AttributeError.
        """
        return cast(np.random.Generator, self)
