"""Privacy amplification: Toeplitz hashing by FFT, and the key length from the security accounting.

Toeplitz hashing
----------------
A Toeplitz matrix ``T`` (``ℓ × n`` over GF(2)) is fixed by a seed ``s`` of ``n + ℓ − 1`` bits,
``T[i, j] = s[i − j + n − 1]``. The family is 2-universal (Krawczyk 1994; Carter–Wegman), so the
leftover hash lemma applies (Tomamichel et al., IEEE TIT 57, 5524 (2011)). Its product with the key
``x`` is a window of the linear convolution of two 0/1 vectors::

    y[i] = Σ_j s[i − j + n − 1] x[j]  (mod 2)  =  (s * x)[n − 1 + i]  (mod 2),   0 ≤ i < ℓ

computed with a cyclic FFT convolution of length ``L ≥ n + ℓ − 1`` (a "middle product": the
wrap-around of the 2n + ℓ − 2 linear terms cannot reach the window), rounded to the nearest
integer, then reduced mod 2.

Engines. The default (``backend="auto"`` = ``"scipy"``) is a four-step FFT (Bailey 1990):
``L = c·2^k`` with c ∈ {1, 3, 5} (n = 2^24, ℓ = n/2: L = 3·2^23, not 2^25), split L = N1·N2 so
every transform is a batch of cache-sized rows run on all cores by scipy.fft, with both real
inputs in one complex transform (``z = x + i·s``; ``X·S = (Z_k² − conj(Z_{L−k})²)/(4i)``), the
twiddles fused with blocked transposes and the rounding/parity pass in numba (two threads).
Scratch buffers are kept between calls up to :data:`WORKSPACE_KEEP_MAX_LEN`
(:func:`release_workspace` frees them). The ``numpy``/``fftw``/``cupy`` backends use one
power-of-two real FFT per (tile) product. All engines give identical bits.

Exactness bound (the size limit we rely on)
    The exact convolution values are integers in ``[0, min(n, ℓ)]``; rounding is exact when the
    floating-point error is below 1/2. Percival (Math. Comp. 72, 387 (2003), Thm. 5.1) bounds the
    error of a radix-2 float FFT convolution of length ``L = 2^m``::

        ‖z' − z‖_∞ ≤ ‖x‖₂ ‖s‖₂ [(1 + ε)^{3m} (1 + ε√5)^{3m+1} (1 + β)^{3m} − 1]

    with unit round-off ε = 2⁻⁵³ and twiddle-factor error β. For 0/1 vectors
    ``‖x‖₂‖s‖₂ ≤ √(n (n + ℓ − 1))``. :func:`float64_error_bound` evaluates it with one extra
    stage (``m = ⌈log2 L⌉ + 1``, for the real-FFT packing and mixed radices) and ``β = 2ε``. At
    ``L = 2^27`` the bound is ≤ 7e-6, five orders of magnitude below 1/2 (measured errors are
    ≈ 1e-9). We rely on it only up to ``FLOAT64_MAX_FFT_LEN = 2^27`` (the largest length verified
    against the exact tiled path in tests/benchmarks). The four-step engine counts two more
    stages (its twiddle pass; radix-3/5 butterflies) and twiddles of error 4ε: ≤ 7e-6 at 2^27.
    Above 2^27 the product is split into tiles
    (input pieces × output pieces, each a Toeplitz product with its own seed window and an FFT of
    length ≤ 2^27), each rounded exactly and XOR-ed together. Every transform is additionally
    checked *a posteriori*: if any value lies farther than 1/4 from an integer the hash raises
    instead of releasing a wrong key. Blocks up to 2^27 input bits are supported.

Key length
----------
:func:`key_length` turns Bob's raw bits into the output length ℓ with every term and every ε named:
leaked syndrome bits, verification-hash bits, the disclosed (parameter-estimation) symbols (which
carry no key bits: ``n = N − m``), Eve's Holevo information at worst-case parameters, and the
finite-size terms of Leverrier, Grosshans, Grangier, PRA 81, 062343 (2010) or the composable terms
of Mountogiannakis et al., PRR 4, 013099 (2022).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> key = np.packbits(rng.integers(0, 2, 1000, dtype=np.uint8))
    >>> from cvqkd.randomness import SecretRandom
    >>> seed = random_seed(n_bits=1000, out_bits=100, randomness=SecretRandom())
    >>> out = toeplitz_hash(key, seed=seed, n_bits=1000, out_bits=100)
    >>> bool((out == toeplitz_hash_reference(key, seed=seed, n_bits=1000, out_bits=100)).all())
    True
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError, MissingExtraError, SecurityAbort
from cvqkd.randomness import SecretRandom

#: Unit round-off of IEEE-754 binary64.
FLOAT64_UNIT_ROUNDOFF = 2.0**-53
#: Largest FFT length for which a single float64 transform is used (see the module docstring).
FLOAT64_MAX_FFT_LEN = 2**27
#: Largest key block (input bits) supported.
MAX_INPUT_BITS = 2**27
#: A computed convolution value farther than this from an integer aborts the hash.
ROUNDING_GUARD = 0.25

Backend = Literal["auto", "numpy", "scipy", "fftw", "cupy"]
SecurityLevel = Literal["asymptotic", "finite-size", "composable"]


# --------------------------------------------------------------------------------------------
# Toeplitz hashing
# --------------------------------------------------------------------------------------------


def seed_bits_needed(*, n_bits: int, out_bits: int) -> int:
    """Seed length of an ``out_bits × n_bits`` Toeplitz matrix: ``n + ℓ − 1`` bits.

    >>> seed_bits_needed(n_bits=1000, out_bits=100)
    1099
    """
    return n_bits + out_bits - 1


def random_seed(*, n_bits: int, out_bits: int, randomness: SecretRandom) -> NDArray[np.uint8]:
    """Draw a uniform Toeplitz seed of ``n + ℓ − 1`` bits, packed (np.packbits order).

    The seed is public once announced but must be unpredictable to Eve before she acts (the
    leftover hash lemma needs it independent of her information), so it comes from
    :class:`cvqkd.randomness.SecretRandom`, never from a simulation ``rng``.
    """
    if not isinstance(randomness, SecretRandom):
        raise TypeError("random_seed needs a cvqkd.randomness.SecretRandom (key material)")
    nseed = seed_bits_needed(n_bits=n_bits, out_bits=out_bits)
    raw = np.frombuffer(randomness.bytes((nseed + 7) // 8), dtype=np.uint8).copy()
    return _clear_tail(raw, nseed)


def _clear_tail(packed: NDArray[np.uint8], nbits: int) -> NDArray[np.uint8]:
    """Zero the padding bits after ``nbits`` in a packed array (canonical form)."""
    rem = nbits % 8
    if rem and packed.size:
        packed = packed.copy()
        packed[-1] &= np.uint8((0xFF << (8 - rem)) & 0xFF)
    return packed


def float64_error_bound(
    *,
    n_bits: int,
    seed_bits: int,
    fft_len: int,
    twiddle_error: float = 2 * FLOAT64_UNIT_ROUNDOFF,
    extra_stages: int = 0,
) -> float:
    """Percival's (2003) worst-case error of a float64 FFT convolution of two 0/1 vectors.

    ``n_bits`` and ``seed_bits`` bound the 1-norms (so ``‖x‖₂ ≤ √n_bits``); ``fft_len`` is the
    transform length. One extra radix-2 stage is counted for the real-FFT packing, plus
    ``extra_stages`` (the four-step engine counts 2: its explicit twiddle pass, and the radix-3/5
    butterflies of a mixed-radix length, each counted as a whole extra stage).

    >>> float64_error_bound(n_bits=2**26, seed_bits=2**27, fft_len=2**27) < 1e-4
    True
    """
    eps = FLOAT64_UNIT_ROUNDOFF
    m = math.ceil(math.log2(max(fft_len, 2))) + 1 + extra_stages
    growth = math.expm1(
        3 * m * math.log1p(eps)
        + (3 * m + 1) * math.log1p(eps * math.sqrt(5))
        + 3 * m * math.log1p(twiddle_error)
    )
    return math.sqrt(float(n_bits) * float(seed_bits)) * growth


def _fft_len(size: int) -> int:
    """Smallest power of two ≥ size (the bound above is for power-of-two lengths)."""
    return 1 << max(0, (size - 1).bit_length())


class _FftBackend:
    """rfft/irfft on one array module: numpy (np.fft), scipy (2 workers), pyFFTW, or CuPy."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.xp: Any = np
        if name == "cupy":
            try:
                import cupy
            except ImportError as exc:  # pragma: no cover - depends on the machine
                raise MissingExtraError.for_extra("gpu", "cupy") from exc
            self.xp = cupy
            self._fft: Any = cupy.fft
            self._kw: dict[str, Any] = {}
        elif name == "fftw":
            try:
                import pyfftw
                import pyfftw.interfaces.scipy_fft as fftw_fft
            except ImportError as exc:
                raise MissingExtraError(
                    "backend 'fftw' needs the optional package 'pyfftw': pip install pyfftw"
                ) from exc
            pyfftw.interfaces.cache.enable()
            self._fft = fftw_fft
            self._kw = {"workers": 2, "planner_effort": "FFTW_ESTIMATE"}
        elif name == "scipy":
            import scipy.fft

            self._fft = scipy.fft
            self._kw = {"workers": 2}
        elif name == "numpy":
            self._fft = np.fft
            self._kw = {}
        else:
            raise ConfigError(f"unknown FFT backend {name!r} (numpy, scipy, fftw, cupy, auto)")

    def rfft(self, a: Any, n: int) -> Any:
        return self._fft.rfft(a, n=n, **self._kw)

    def irfft(self, a: Any, n: int) -> Any:
        return self._fft.irfft(a, n=n, **self._kw)


def _pick_backend(backend: Backend) -> _FftBackend:
    # auto = scipy: its four-step engine is the fastest measured (benchmarks/privacy.py), and
    # scipy is a core dependency; pyFFTW stays available by name.
    return _FftBackend("scipy" if backend == "auto" else backend)


@functools.cache
def _parity_kernel() -> Any:
    """numba kernel: one pass computing round(v) mod 2 and max |v − round(v)|."""
    import numba

    @numba.njit(nogil=True)  # no cache=True: a cache written under another module name breaks
    def kernel(conv: Any, out: Any) -> float:
        worst = 0.0
        for i in range(conv.size):
            r = np.rint(conv[i])
            d = abs(conv[i] - r)
            worst = max(worst, d)
            out[i] = np.uint8(np.int64(r) & 1)
        return worst

    return kernel


def _round_bits(xp: Any, conv: Any) -> Any:
    """Round to integers, check the a-posteriori guard, reduce mod 2 (uint8 0/1)."""
    if xp is np:
        out = np.empty(conv.size, dtype=np.uint8)
        worst = float(_parity_kernel()(np.ascontiguousarray(conv), out)) if conv.size else 0.0
        if worst > ROUNDING_GUARD:
            raise ArithmeticError(
                f"float64 FFT convolution not exact (max distance to integer {worst:.3g})"
            )
        return out
    rounded = xp.rint(conv)
    worst = float(xp.abs(conv - rounded).max()) if conv.size else 0.0
    if worst > ROUNDING_GUARD:
        raise ArithmeticError(
            f"float64 FFT convolution not exact (max distance to integer {worst:.3g})"
        )
    return (rounded.astype(xp.int64) & 1).astype(xp.uint8)


def _hash_window(be: _FftBackend, x: Any, s: Any, n: int, ell: int) -> Any:
    """One float64 FFT product: bits ``(s * x)[n−1 : n−1+ℓ] mod 2`` as uint8 (0/1)."""
    length = _fft_len(n + ell - 1)
    spec = be.rfft(x, length)
    spec *= be.rfft(s, length)
    return _round_bits(be.xp, be.irfft(spec, length)[n - 1 : n - 1 + ell])


def _fft_cost_per_point(length: int) -> float:
    """Relative cost per point and stage of a real FFT: transforms that stay in cache are
    ≈ 3× cheaper (measured with np.fft on the project's 2-core EPYC: 0.5, 0.8, 1.6 ns at
    2^18, 2^20, 2^22–2^24 points; 2^25 set from whole-hash timings)."""
    if length <= 2**18:
        return 0.5
    if length <= 2**20:
        return 0.8
    if length <= 2**24:
        return 1.6
    return 1.7


def plan_tiles(*, n_bits: int, out_bits: int, max_fft_len: int = FLOAT64_MAX_FFT_LEN) -> int:
    """FFT length L (a power of two) for the input-tiled product; tiles = ⌈n/(L − ℓ + 1)⌉.

    The input is cut into tiles of ``b = L − ℓ + 1`` bits; each costs two forward FFTs of
    length L, and their products are summed in the frequency domain before one inverse FFT, so
    the cost is ≈ (2·tiles + 1)·L log L. Smaller L means more tiles but cache-resident
    transforms; the model picks the cheapest L ≤ ``max_fft_len`` (with tiles = 1 the product is
    a single transform). Requires ``2ℓ ≤ max_fft_len``.

    >>> plan_tiles(n_bits=2**24, out_bits=2**20)
    4194304
    """
    best: tuple[float, int] | None = None
    length = _fft_len(out_bits + 1)
    top = min(max_fft_len, max(length, _fft_len(n_bits + out_bits - 1)))
    while length <= top:
        b = length - out_bits + 1
        if b >= 1:
            tiles = -(-n_bits // b)
            cost = (2 * tiles + 1) * length * math.log2(length) * _fft_cost_per_point(length)
            if tiles > 1:  # copies, padding and spectrum sums the model leaves out: tile only
                cost /= 0.7  # when it saves ≥ 30 % (measured: 2 tiles lose 10 % at ℓ = n/2)
            if best is None or cost < best[0]:
                best = (cost, length)
        length *= 2
    if best is None:
        raise ConfigError("no FFT length fits: out_bits too large for max_fft_len")
    return best[1]


def _hash_input_tiled(be: _FftBackend, x: Any, s: Any, n: int, ell: int, length: int) -> Any:
    """Exact Toeplitz product with the input cut into equal tiles (last one front-padded).

    Tile J covers input bits ``[j1 − b, j1)`` (b = L − ℓ + 1; bits before 0 are zero) and
    needs the seed window ``s[n − j1 : n − j1 + ℓ + b − 1]`` (zero past the seed's end); every
    tile's output sits at ``[b − 1, b − 1 + ℓ)`` of its convolution, so the spectra are summed
    and inverted once. The values are integers ≤ n; the error bound is the sum of the tiles'.
    """
    xp = be.xp
    b = length - ell + 1
    nseed = n + ell - 1
    acc = None
    for j1 in range(n, 0, -b):
        j0 = j1 - b
        xt = x[max(j0, 0) : j1]
        if j0 < 0:
            xt = xp.concatenate((xp.zeros(-j0, dtype=xp.float64), xt))
        w0 = n - j1
        w1 = w0 + ell + b - 1
        wt = s[w0 : min(w1, nseed)]
        if w1 > nseed:
            wt = xp.concatenate((wt, xp.zeros(w1 - nseed, dtype=xp.float64)))
        spec = be.rfft(xt, length)
        spec *= be.rfft(wt, length)
        if acc is None:
            acc = spec
        else:
            acc += spec
    return _round_bits(xp, be.irfft(acc, length)[b - 1 : b - 1 + ell])


# --------------------------------------------------------------------------------------------
# Four-step (Bailey) engine: cache-sized, multithreaded transforms of fast mixed-radix length
# --------------------------------------------------------------------------------------------

#: Smallest product length for which :func:`_hash_four_step` is used (below: one direct scipy
#: FFT, ≤ 30 ms; this also spares small blocks the ≈ 2–4 s numba compilation of its kernels).
FOUR_STEP_MIN_LEN = 2**20
#: Twiddle error counted in the error bound: the two-table product thi·tlo (two factors within
#: ½ ulp per component, one complex multiplication, ≤ (1 + √5)ε·…) rounds up to 4ε; pocketfft's
#: own twiddles are at least as accurate.
FOUR_STEP_TWIDDLE_ERROR = 4 * FLOAT64_UNIT_ROUNDOFF
_TILE = 64  # transpose tile (64 × 64 complex = 64 KiB in + 64 KiB out: stays in L2)


def four_step_shape(size: int) -> tuple[int, int, int]:
    """Transform length ``N = c·2^k ≥ size`` (smallest, c ∈ {1, 3, 5}) and its split N = N1·N2.

    ``N1 = 2^⌈k/2⌉`` (the second-stage row length) and ``N2 = c·2^⌊k/2⌋`` (the first-stage
    row length): rows of ≤ 2^14 complex points stay in cache for N ≤ 2^27. The middle product needs
    ``N ≥ n + ℓ − 1`` only (see the module docstring), so n = 2^24, ℓ = n/2 takes N = 3·2^23
    instead of 2^25.

    >>> four_step_shape(3 * 2**23 - 1)
    (25165824, 4096, 6144)
    """
    best: tuple[int, int, int] | None = None
    for c in (1, 3, 5):
        k = 0
        while c << k < size or k < 2:
            k += 1
        cand = (c << k, 1 << ((k + 1) // 2), c << (k // 2))
        if best is None or cand[0] < best[0]:
            best = cand
    assert best is not None
    return best


@functools.cache
def _four_step_kernels() -> tuple[Any, Any, Any, Any, Any]:
    """numba kernels (nogil, row ranges, so that two Python threads share the work)."""
    import numba

    @numba.njit(nogil=True)  # see _parity_kernel for why there is no cache=True
    def scatter(x: Any, s: Any, dst: Any, r0: int, r1: int) -> None:
        # dst[j1, j2] = x[j] + i·s[j], j = j1 + N1·j2 (0 past each end): both real inputs in
        # one complex array, transposed so that the first-stage FFT runs along contiguous rows.
        n1, n2 = dst.shape
        for jb in range(r0, r1, 8):  # 8 rows per sweep: measured 2.4× faster than 64 (TLB)
            je = min(jb + 8, r1)
            for j2 in range(n2):
                base = n1 * j2
                for j1 in range(jb, je):
                    idx = base + j1
                    re = float(x[idx]) if idx < x.size else 0.0
                    im = float(s[idx]) if idx < s.size else 0.0
                    dst[j1, j2] = complex(re, im)

    @numba.njit(nogil=True)
    def twiddle_transpose(
        src: Any, dst: Any, tlo: Any, thi: Any, shift: int, n: int, conj: bool, c0: int, c1: int
    ) -> None:
        # dst[c, r] = src[r, c] · ω^(±r·c), ω = exp(−2πi/N), ω^m = thi[m >> shift]·tlo[m & mask]
        rows = src.shape[0]
        mask = (1 << shift) - 1
        for cb in range(c0, c1, 64):  # 64 × 64 tiles: measured 15 % faster than 32 × 32
            ce = min(cb + 64, c1)
            for rb in range(0, rows, 64):
                re = min(rb + 64, rows)
                for c in range(cb, ce):
                    m = (rb * c) % n
                    for r in range(rb, re):
                        w = thi[m >> shift] * tlo[m & mask]
                        if conj:
                            w = w.conjugate()
                        dst[c, r] = src[r, c] * w
                        m += c
                        if m >= n:
                            m -= n

    @numba.njit(nogil=True)
    def spectral_product(z: Any, y: Any, r0: int, r1: int) -> None:
        # Z = X + iS (X, S spectra of real x, s): X_k S_k = (Z_k² − conj(Z_{N−k})²)/(4i). In the
        # permuted layout k = k2 + N2·k1 at z[k2, k1], N − k sits at
        # z[(N2 − k2) mod N2, (N1 − k1 − [k2 > 0]) mod N1]. Rows k2 ≤ N2/2 suffice (Hermitian).
        n2, n1 = z.shape
        for k2 in range(r0, r1):
            p2 = (n2 - k2) % n2
            d = 1 if k2 > 0 else 0
            for k1 in range(n1):
                a = z[k2, k1]
                b = z[p2, (2 * n1 - k1 - d) % n1].conjugate()
                y[k2, k1] = (a * a - b * b) * complex(0.0, -0.25)

    @numba.njit(nogil=True)
    def twiddle_transpose_pairs(
        src: Any, dst: Any, tlo: Any, thi: Any, shift: int, n: int, c0: int, c1: int
    ) -> None:
        # Last inverse step for two real rows at once: with A = row 2p and B = row 2p + 1 of
        # the (conjugate-)twiddled transpose of src, both Hermitian, dst[p] = A + iB over the
        # whole length N2 (mirror k2 → N2 − k2 filled from conj), so one complex IFFT of dst[p]
        # yields row 2p in its real part and row 2p + 1 in its imaginary part.
        rows = src.shape[0]
        n2 = dst.shape[1]
        mask = (1 << shift) - 1
        for pb in range(c0, c1, 16):
            pe = min(pb + 16, c1)
            for rb in range(0, rows, 32):
                re = min(rb + 32, rows)
                for p in range(pb, pe):
                    ja = 2 * p
                    ma = (rb * ja) % n
                    mb = (rb * (ja + 1)) % n
                    for k2 in range(rb, re):
                        a = src[k2, ja] * (thi[ma >> shift] * tlo[ma & mask]).conjugate()
                        b = src[k2, ja + 1] * (thi[mb >> shift] * tlo[mb & mask]).conjugate()
                        if k2 == 0 or 2 * k2 == n2:  # DC/Nyquist: real by symmetry (as irfft)
                            dst[p, k2] = complex(a.real, b.real)
                        else:
                            dst[p, k2] = complex(a.real - b.imag, a.imag + b.real)
                            dst[p, n2 - k2] = complex(a.real + b.imag, b.real - a.imag)
                        ma += ja
                        if ma >= n:
                            ma -= n
                        mb += ja + 1
                        if mb >= n:
                            mb -= n

    @numba.njit(nogil=True)
    def window_parity(
        y: Any, n1: int, paired: bool, off: int, ell: int, out: Any, r0: int, r1: int
    ) -> float:
        # out[idx − off] = round(conv[idx]) mod 2 for idx = j1 + N1·j2 in [off, off + ℓ), with
        # conv[idx] at y[j1, j2], or (paired rows, y a float64 view) at y[j1 // 2, 2·j2 + j1 % 2];
        # returns the largest distance of a value to its integer (the a-posteriori guard).
        n2 = y.shape[1] // 2 if paired else y.shape[1]
        worst = 0.0
        for jb in range(r0, r1, 64):
            je = min(jb + 64, r1)
            for j2 in range(n2):
                base = n1 * j2
                for j1 in range(jb, je):
                    idx = base + j1 - off
                    if 0 <= idx < ell:
                        v = y[j1 >> 1, 2 * j2 + (j1 & 1)] if paired else y[j1, j2]
                        r = np.rint(v)
                        worst = max(worst, abs(v - r))
                        out[idx] = np.uint8(np.int64(r) & 1)
        return worst

    return scatter, twiddle_transpose, spectral_product, twiddle_transpose_pairs, window_parity


@functools.lru_cache(maxsize=4)
def _twiddle_tables(n: int) -> tuple[NDArray[np.complex128], NDArray[np.complex128], int]:
    """ω^m = exp(−2πi m/N) as thi[m >> shift] · tlo[m & (2^shift − 1)]: two tables of ≈ √N
    entries, computed in extended precision (x86 long double, 64-bit mantissa) and rounded
    once to float64 (≤ ½ ulp per component), so a twiddle product carries < 4ε error."""
    shift = max(1, (n.bit_length() + 1) // 2)
    two_pi = 2 * np.longdouble("3.14159265358979323846264338327950288")

    def table(idx: NDArray[np.int64]) -> NDArray[np.complex128]:
        ang = two_pi * (idx % n).astype(np.longdouble) / np.longdouble(n)
        out = np.empty(idx.size, dtype=np.complex128)
        out.real = np.cos(ang).astype(np.float64)
        out.imag = -np.sin(ang).astype(np.float64)
        out.setflags(write=False)
        return out

    tlo = table(np.arange(1 << shift, dtype=np.int64))
    thi = table(np.arange(-(-n >> shift) + 1, dtype=np.int64) << shift)
    return tlo, thi, shift


def _cpu_threads() -> int:
    try:
        return max(1, min(len(os.sched_getaffinity(0)), 8))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, min(os.cpu_count() or 1, 8))


@functools.cache
def _pool(threads: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pa")


def _split(total: int, parts: int, align: int) -> list[tuple[int, int]]:
    step = -(-total // parts)
    step = -(-step // align) * align
    return [(a, min(a + step, total)) for a in range(0, total, step)]


def _run_parallel(threads: int, fn: Any, total: int, *args: Any, align: int = 64) -> list[Any]:
    ranges = _split(total, threads, align)
    if len(ranges) == 1:
        return [fn(*args, 0, total)]
    futures = [_pool(threads).submit(fn, *(*args, a, b)) for a, b in ranges]
    return [f.result() for f in futures]


#: Scratch buffers up to this many complex points are kept between calls (2 × 16 bytes each:
#: 1 GiB at the default), saving the page faults of fresh allocations on repeated blocks.
WORKSPACE_KEEP_MAX_LEN = 2**25
_ws_lock = threading.Lock()
_ws_bufs: list[NDArray[np.complex128]] = []


@contextlib.contextmanager
def _workspace(size: int) -> Iterator[tuple[NDArray[np.complex128], NDArray[np.complex128]]]:
    """Two complex scratch buffers of ≥ ``size`` points: the kept ones when free and large
    enough (one caller at a time), else fresh ones (kept afterwards if ≤ the keep limit)."""
    if size <= WORKSPACE_KEEP_MAX_LEN and _ws_lock.acquire(blocking=False):
        try:
            if not _ws_bufs or _ws_bufs[0].size < size:
                _ws_bufs.clear()
                _ws_bufs.extend(np.empty(size, dtype=np.complex128) for _ in range(2))
            yield _ws_bufs[0], _ws_bufs[1]
        finally:
            _ws_lock.release()
        return
    yield np.empty(size, dtype=np.complex128), np.empty(size, dtype=np.complex128)


def release_workspace() -> None:
    """Free the scratch buffers kept by the four-step engine (≤ 1 GiB)."""
    with _ws_lock:
        _ws_bufs.clear()


def _hash_four_step(
    x_bits: NDArray[np.uint8],
    s_bits: NDArray[np.uint8],
    n: int,
    ell: int,
    shape: tuple[int, int, int],
    threads: int | None = None,
) -> NDArray[np.uint8]:
    """Bits ``(s * x)[n−1 : n−1+ℓ] mod 2`` by one cyclic convolution of length N = N1·N2.

    Bailey's four-step FFT (J. Supercomputing 4, 23 (1990)) with the index maps
    ``j = j1 + N1·j2``, ``k = k2 + N2·k1``, on ``z = x + i·s`` (one complex transform for both
    real inputs): FFTs of length N2 along the rows of the transposed input, a twiddle
    ``ω_N^{j1·k2}`` fused with a blocked transpose, FFTs of length N1 along rows. The spectrum
    stays in this permuted order (a convolution does not care); ``X·S`` is separated from ``Z``
    for the ``N2/2 + 1`` Hermitian-independent rows only, and the inverse retraces the steps
    (complex IFFTs of length N1, conjugate twiddles, then two real rows of length N2 per
    complex IFFT, ``IDFT(A + iB) = a + ib`` for Hermitian A, B, when N1 is even). All FFTs are
    in-place batches of cache-sized rows run by scipy.fft on ``threads`` workers; the numba
    passes split rows between the same number of Python threads.

    ``x_bits``/``s_bits``: unpacked 0/1 (uint8), lengths n and n + ℓ − 1 ≤ N. Returns ℓ uint8
    bits. Raises ArithmeticError if the a-posteriori rounding guard fails.
    """

    big_n, n1, n2 = shape
    if big_n != n1 * n2 or big_n < n + ell - 1:
        raise ValueError(f"bad four-step shape {shape} for n={n}, ℓ={ell}")
    bound = float64_error_bound(
        n_bits=n,
        seed_bits=n + ell - 1,
        fft_len=big_n,
        twiddle_error=FOUR_STEP_TWIDDLE_ERROR,
        extra_stages=2,
    )
    if bound >= 0.5:  # rounding is exact below 1/2; cannot happen for N ≤ 2^27 (bound ≈ 1e-5)
        raise ArithmeticError(f"four-step length {big_n} beyond the float64 error bound")
    threads = threads or _cpu_threads()
    with _workspace(big_n) as (buf_a, buf_b):
        out, worst = _four_step_core(
            x_bits, s_bits, n, ell, shape, threads, buf_a[:big_n], buf_b[:big_n]
        )
    if worst > ROUNDING_GUARD:
        raise ArithmeticError(
            f"float64 FFT convolution not exact (max distance to integer {worst:.3g})"
        )
    return out


def _four_step_core(
    x_bits: NDArray[np.uint8],
    s_bits: NDArray[np.uint8],
    n: int,
    ell: int,
    shape: tuple[int, int, int],
    threads: int,
    buf_a: NDArray[np.complex128],
    buf_b: NDArray[np.complex128],
) -> tuple[NDArray[np.uint8], float]:
    """The steps of :func:`_hash_four_step`; returns the bits and the largest distance of a
    window value to its integer (compared with the guard by the caller)."""
    import scipy.fft

    big_n, n1, n2 = shape
    scatter, twiddle_transpose, spectral_product, tw_pairs, window_parity = _four_step_kernels()
    tlo, thi, shift = _twiddle_tables(big_n)
    half = n2 // 2 + 1
    # forward: z (N1, N2) → FFT rows (N2) → twiddle·transpose (N2, N1) → FFT rows (N1)
    z = buf_a.reshape(n1, n2)
    _run_parallel(threads, scatter, n1, x_bits, s_bits, z)
    z = scipy.fft.fft(z, axis=1, workers=threads, overwrite_x=True)
    zt = buf_b.reshape(n2, n1)
    _run_parallel(threads, twiddle_transpose, n2, z, zt, tlo, thi, shift, big_n, False, align=_TILE)
    zt = scipy.fft.fft(zt, axis=1, workers=threads, overwrite_x=True)
    # product X·S on rows k2 ≤ N2/2, then the inverse steps
    prod = buf_a[: half * n1].reshape(half, n1)
    _run_parallel(threads, spectral_product, half, zt, prod, align=1)
    prod = scipy.fft.ifft(prod, axis=1, workers=threads, overwrite_x=True)
    paired = n1 % 2 == 0
    if paired:  # two real rows per complex IFFT, in place (no c2r copy, no new buffer)
        pairs = buf_b[: n1 // 2 * n2].reshape(n1 // 2, n2)
        _run_parallel(threads, tw_pairs, n1 // 2, prod, pairs, tlo, thi, shift, big_n, align=16)
        pairs = scipy.fft.ifft(pairs, axis=1, workers=threads, overwrite_x=True)
        conv = pairs.view(np.float64)
    else:
        back = buf_b[: n1 * half].reshape(n1, half)
        _run_parallel(
            threads, twiddle_transpose, n1, prod, back, tlo, thi, shift, big_n, True, align=_TILE
        )
        conv = scipy.fft.irfft(back, n=n2, axis=1, workers=threads, overwrite_x=True)
    out = np.empty(ell, dtype=np.uint8)
    worst = max(
        _run_parallel(threads, window_parity, n1, conv, n1, paired, n - 1, ell, out),
        default=0.0,
    )
    return out, worst


def toeplitz_hash(
    key: NDArray[np.uint8],
    *,
    seed: NDArray[np.uint8],
    n_bits: int,
    out_bits: int,
    backend: Backend = "auto",
    max_fft_len: int = FLOAT64_MAX_FFT_LEN,
    fft_len: int | None = None,
) -> NDArray[np.uint8]:
    """Hash ``n_bits`` key bits to ``out_bits`` bits with the Toeplitz matrix of ``seed``.

    Args:
        key: packed key bits (``np.packbits`` order), at least ``n_bits`` bits.
        seed: packed seed, at least ``n_bits + out_bits − 1`` bits (see :func:`random_seed`).
        n_bits: input length n (1 ≤ n ≤ 2^27).
        out_bits: output length ℓ (0 ≤ ℓ ≤ n).
        backend: ``scipy`` (four-step engine on scipy.fft, all cores, for products of ≥ 2^20
            points; one scipy.fft transform below), ``numpy`` (np.fft), ``fftw`` (pyFFTW if
            installed), ``cupy`` (GPU, the ``[gpu]`` extra) or ``auto`` (= ``scipy``).
        max_fft_len: largest single FFT (power of two); longer products are tiled exactly.
        fft_len: force the tile FFT length (power of two; default: :func:`plan_tiles`, or the
            four-step engine's :func:`four_step_shape` for the scipy backend).

    Returns:
        The ``out_bits`` output bits, packed (``np.packbits``; padding bits zero).
    """
    if not 1 <= n_bits <= MAX_INPUT_BITS:
        raise ConfigError(f"n_bits must be in [1, 2^27], got {n_bits}")
    if not 0 <= out_bits <= n_bits:
        raise ConfigError(f"out_bits must be in [0, n_bits={n_bits}], got {out_bits}")
    nseed = seed_bits_needed(n_bits=n_bits, out_bits=out_bits)
    if np.asarray(key).size * 8 < n_bits:
        raise ConfigError(f"key holds {np.asarray(key).size * 8} bits, fewer than n_bits={n_bits}")
    if np.asarray(seed).size * 8 < nseed:
        raise ConfigError(f"seed holds {np.asarray(seed).size * 8} bits, needs {nseed}")
    if max_fft_len < 4 or max_fft_len & (max_fft_len - 1):
        raise ConfigError(f"max_fft_len must be a power of two ≥ 4, got {max_fft_len}")
    if out_bits == 0:
        return np.zeros(0, dtype=np.uint8)
    be = _pick_backend(backend)
    size = n_bits + out_bits - 1
    if be.name == "scipy" and fft_len is None and size >= FOUR_STEP_MIN_LEN:
        shape = four_step_shape(size)
        if shape[0] <= max_fft_len:
            x_bits = np.unpackbits(np.asarray(key, dtype=np.uint8), count=n_bits)
            s_bits = np.unpackbits(np.asarray(seed, dtype=np.uint8), count=nseed)
            return np.packbits(_hash_four_step(x_bits, s_bits, n_bits, out_bits, shape))
    xp = be.xp
    x = _unpack(xp, key, n_bits)
    s = _unpack(xp, seed, nseed)
    if 2 * out_bits <= max_fft_len:
        length = fft_len or plan_tiles(n_bits=n_bits, out_bits=out_bits, max_fft_len=max_fft_len)
        if length & (length - 1) or length <= out_bits or length > max_fft_len:
            raise ConfigError("fft_len must be a power of two in (out_bits, max_fft_len]")
        out = _hash_input_tiled(be, x, s, n_bits, out_bits, length)
    else:
        out = _tiled(be, x, s, n_bits, out_bits, max_fft_len)
    bits = out.get() if be.name == "cupy" else out
    return np.packbits(np.asarray(bits, dtype=np.uint8))


def _unpack(xp: Any, packed: NDArray[np.uint8], nbits: int) -> Any:
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), count=nbits)
    return xp.asarray(bits).astype(xp.float64)


def _tiled(be: _FftBackend, x: Any, s: Any, n: int, ell: int, max_fft_len: int) -> Any:
    """Exact Toeplitz product as a sum of tiles, each one FFT of length ≤ ``max_fft_len``.

    For output rows [i0, i1) and input columns [j0, j1) the tile is the Toeplitz product of
    ``x[j0:j1]`` with the seed window ``s[i0 − j1 + n : i1 − j0 + n − 1]`` (its own n' + ℓ' − 1
    bits), so each tile is rounded exactly and the tiles XOR together.
    """
    xp = be.xp
    a = min(ell, max_fft_len // 2)  # output rows per tile
    b = max_fft_len - a + 1  # input columns per tile: a + b − 1 = max_fft_len
    out = xp.zeros(ell, dtype=xp.uint8)
    for i0 in range(0, ell, a):
        i1 = min(ell, i0 + a)
        for j0 in range(0, n, b):
            j1 = min(n, j0 + b)
            window = s[i0 - j1 + n : i1 - j0 + n - 1]
            out[i0:i1] ^= _hash_window(be, x[j0:j1], window, j1 - j0, i1 - i0)
    return out


def toeplitz_hash_reference(
    key: NDArray[np.uint8], *, seed: NDArray[np.uint8], n_bits: int, out_bits: int
) -> NDArray[np.uint8]:
    """Slow, obviously-correct reference: the dense Toeplitz matrix times the key, mod 2.

    Builds ``T[i, j] = s[i − j + n − 1]`` explicitly (memory ``ℓ × n``); for tests only.
    """
    nseed = seed_bits_needed(n_bits=n_bits, out_bits=out_bits)
    x = np.unpackbits(np.asarray(key, dtype=np.uint8), count=n_bits).astype(np.int64)
    s = np.unpackbits(np.asarray(seed, dtype=np.uint8), count=nseed).astype(np.int64)
    i = np.arange(out_bits)[:, None]
    j = np.arange(n_bits)[None, :]
    matrix = s[i - j + n_bits - 1]
    return np.packbits(((matrix @ x) % 2).astype(np.uint8))


# --------------------------------------------------------------------------------------------
# Security accounting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecurityParameters:
    """The failure probabilities of one block (each ε named; defaults 1e-10).

    eps_pe: parameter estimation (confidence of T_min, ξ_max); eps_smooth: smoothing ε̄ of the
    AEP / ε_s; eps_pa: privacy amplification (leftover hash); eps_cor: correctness, set by the
    verification hash (2^−hash_bits per block); eps_mac: authentication of the classical channel
    (sum over messages of the Wegman–Carter forgery bound). ``eps_ent`` (composable only) is the
    entropy-estimation error.
    """

    eps_pe: float = 1e-10
    eps_smooth: float = 1e-10
    eps_pa: float = 1e-10
    eps_cor: float = 2.0**-64
    eps_mac: float = 0.0
    eps_ent: float = 1e-10

    def __post_init__(self) -> None:
        for name in ("eps_pe", "eps_smooth", "eps_pa", "eps_cor", "eps_mac", "eps_ent"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {v}")
        for name in ("eps_pe", "eps_smooth", "eps_pa"):
            if getattr(self, name) <= 0.0:
                raise ConfigError(f"{name} must be > 0")


@dataclass(frozen=True)
class KeyLength:
    """Output of :func:`key_length`: ℓ and every term that went into it (bits).

    ``terms`` lists the signed contributions in order; ``length_bits = floor(Σ terms)`` clipped
    at nothing (it may be ≤ 0: the caller aborts). ``epsilon_total`` is the security parameter of
    the block at this level; ``finite_size_secure`` is True only for the finite-size and composable
    levels.
    """

    level: str
    length_bits: int
    n_symbols_total: int
    n_symbols_disclosed: int
    n_key_symbols: int
    raw_bits: int
    terms: dict[str, float]
    epsilon_total: float
    finite_size_secure: bool
    reference: str
    epsilons: dict[str, float] = field(default_factory=dict)

    def require_positive(self) -> int:
        """Return ℓ, or raise :class:`SecurityAbort` saying why no key can be released."""
        if self.length_bits <= 0:
            worst = min(self.terms.items(), key=lambda kv: kv[1])
            raise SecurityAbort(
                f"key length {self.length_bits} ≤ 0 at the {self.level} level: the largest "
                f"deduction is {worst[0]} = {worst[1]:.4g} bits"
            )
        return self.length_bits


def key_length(
    *,
    n_symbols_total: int,
    n_symbols_disclosed: int,
    raw_bits_per_symbol: float,
    holevo_bits_per_symbol: float,
    syndrome_bits: int,
    verification_hash_bits: int,
    level: SecurityLevel = "finite-size",
    security: SecurityParameters | None = None,
    frame_success_probability: float = 1.0,
    discretisation_bits: int = 1,
) -> KeyLength:
    """Privacy-amplification output length ℓ for one block, every term named (bits).

    With ``n = N − m`` key symbols (the ``m`` disclosed symbols carry no key), ``H = n·h_raw``
    raw bits (h_raw = 1 for the binary key of multidimensional reconciliation), Eve's Holevo
    information ``χ_BE`` at worst-case parameters, and the leak ``leak = syndrome + hash``:

    - ``asymptotic``: ℓ = H − nχ − leak (not finite-size secure; ε undefined).
    - ``finite-size`` (collective attacks; Leverrier, Grosshans, Grangier, PRA 81, 062343 (2010),
      Eq. (8), with ``dim H_X = 2``): ℓ = H − nχ − leak − 7√(n log2(2/ε̄)) − 2 log2(1/ε_PA);
      ε = ε_PE + ε̄ + ε_PA + ε_cor + ε_MAC.
    - ``composable`` (Mountogiannakis et al., PRR 4, 013099 (2022), Eq. (31) per block):
      ℓ = H − nχ − leak − √n Δ_AEP + Θ, Δ_AEP = 4 log2(2^{d/2} + 2) √(log2(18/(p_EC² ε_s⁴))),
      Θ = log2[p_EC(1 − ε_s²/3)] + 2 log2(√2 ε_h) with ε_h = ε_PA;
      ε = ε_cor + ε_s + ε_h + p_EC(2ε_PE + ε_ent) + ε_MAC.

    The caller must pass ``holevo_bits_per_symbol`` evaluated at the worst-case (T_min, ξ_max)
    of the confidence intervals for the finite-size levels.

    >>> k = key_length(n_symbols_total=2_000_000, n_symbols_disclosed=1_000_000,
    ...                raw_bits_per_symbol=1.0, holevo_bits_per_symbol=0.5,
    ...                syndrome_bits=400_000, verification_hash_bits=64, level="asymptotic")
    >>> k.length_bits
    99936
    """
    sec = security or SecurityParameters()
    if n_symbols_disclosed < 0 or n_symbols_disclosed >= n_symbols_total:
        raise ConfigError(
            f"disclosed symbols ({n_symbols_disclosed}) must be in [0, N={n_symbols_total})"
        )
    if syndrome_bits < 0 or verification_hash_bits < 0:
        raise ConfigError("leaked bit counts must be ≥ 0")
    if not 0.0 < frame_success_probability <= 1.0:
        raise ConfigError("frame_success_probability must be in (0, 1]")
    n = n_symbols_total - n_symbols_disclosed
    raw_bits = round(n * raw_bits_per_symbol)
    terms: dict[str, float] = {
        "raw_bits": float(raw_bits),
        "holevo_eve": -n * float(holevo_bits_per_symbol),
        "syndrome_leak": -float(syndrome_bits),
        "verification_hash_leak": -float(verification_hash_bits),
    }
    eps: dict[str, float] = {}
    if level == "asymptotic":
        total = float("nan")
        ref = "asymptotic GG02 (Lodewyck et al., PRA 76, 042305 (2007)); not finite-size secure"
        secure = False
    elif level == "finite-size":
        terms["aep_smoothing"] = -7.0 * math.sqrt(n * math.log2(2.0 / sec.eps_smooth))
        terms["privacy_amplification"] = -2.0 * math.log2(1.0 / sec.eps_pa)
        eps = {
            "eps_pe": sec.eps_pe,
            "eps_smooth": sec.eps_smooth,
            "eps_pa": sec.eps_pa,
            "eps_cor": sec.eps_cor,
            "eps_mac": sec.eps_mac,
        }
        total = sum(eps.values())
        ref = (
            "finite-size, collective attacks: Leverrier, Grosshans, Grangier, PRA 81, 062343 (2010)"
        )
        secure = True
    elif level == "composable":
        p = frame_success_probability
        d = discretisation_bits
        es = sec.eps_smooth
        delta_aep = (
            4.0 * math.log2(2.0 ** (d / 2.0) + 2.0) * math.sqrt(math.log2(18.0 / (p**2 * es**4)))
        )
        theta = math.log2(p * (1.0 - es**2 / 3.0)) + 2.0 * math.log2(math.sqrt(2.0) * sec.eps_pa)
        terms["aep"] = -math.sqrt(n) * delta_aep
        terms["theta"] = theta
        eps = {
            "eps_cor": sec.eps_cor,
            "eps_s": es,
            "eps_h": sec.eps_pa,
            "p_ec_times_2eps_pe_plus_eps_ent": p * (2 * sec.eps_pe + sec.eps_ent),
            "eps_mac": sec.eps_mac,
        }
        total = sum(eps.values())
        ref = (
            "composable, Gaussian modulation, collective attacks: Mountogiannakis et al., "
            "PRR 4, 013099 (2022)"
        )
        secure = True
    else:
        raise ConfigError(f"unknown security level {level!r}")
    length = math.floor(sum(terms.values()))
    return KeyLength(
        level=level,
        length_bits=int(length),
        n_symbols_total=n_symbols_total,
        n_symbols_disclosed=n_symbols_disclosed,
        n_key_symbols=n,
        raw_bits=raw_bits,
        terms=terms,
        epsilon_total=total,
        finite_size_secure=secure,
        reference=ref,
        epsilons=eps,
    )


def min_symbols_for_key(
    *,
    disclosed_fraction: float,
    raw_bits_per_symbol: float,
    holevo_bits_per_symbol: float,
    leak_bits_per_key_symbol: float,
    verification_hash_bits: int,
    level: SecurityLevel = "finite-size",
    security: SecurityParameters | None = None,
    frame_success_probability: float = 1.0,
    max_symbols: int = 2**62,
) -> int | None:
    """Smallest total block size N (symbols) with ℓ > 0 at ``level``; None if none ≤ max_symbols.

    Assumes the per-symbol quantities stay as given (in particular χ_BE; with a larger block the
    confidence intervals shrink, so this is conservative). The leak scales with the key symbols.
    """

    def ell(total: int) -> int:
        m = min(total - 1, round(total * disclosed_fraction))
        n = total - m
        return key_length(
            n_symbols_total=total,
            n_symbols_disclosed=m,
            raw_bits_per_symbol=raw_bits_per_symbol,
            holevo_bits_per_symbol=holevo_bits_per_symbol,
            syndrome_bits=math.ceil(n * leak_bits_per_key_symbol),
            verification_hash_bits=verification_hash_bits,
            level=level,
            security=security,
            frame_success_probability=frame_success_probability,
        ).length_bits

    if not 0.0 <= disclosed_fraction < 1.0:
        raise ConfigError(f"disclosed_fraction must be in [0, 1), got {disclosed_fraction}")
    lo, hi = 1, 2
    while ell(hi) <= 0:
        lo, hi = hi, hi * 2
        if hi > max_symbols:
            return None
    while hi - lo > max(1, lo // 1000):  # 0.1 % resolution is plenty for a report
        mid = (lo + hi) // 2
        if ell(mid) > 0:
            hi = mid
        else:
            lo = mid
    return hi
