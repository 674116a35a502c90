"""Multidimensional reconciliation (MDR) for d = 1, 2, 4, 8 and channel capacities.

Leverrier, Alléaume, Boutros, Zémor, Grangier, PRA 77, 042325 (2008). Gaussian samples are
grouped in d-tuples and treated as elements of the normed division algebra of dimension d
(R, C, H, O; built here by the Cayley–Dickson construction ``(a,b)(c,d) = (ac − d̄b, da + bc̄)``,
conjugate ``(a,b)̄ = (ā, −b)``), whose product satisfies ``‖ab‖ = ‖a‖‖b‖``.

Reverse reconciliation (Bob's bits are the key):

1. Bob normalises ``y' = y/‖y‖``, draws d uniform bits ``b`` and sets ``u_i = (−1)^{b_i}/√d``.
2. He computes ``m = u·ȳ'`` — the unique element with ``m·y' = u`` (``(uȳ)y = u(ȳy)`` holds in
   every alternative algebra, octonions included) — and publishes ``m`` (and, by default,
   ``‖y‖``).
3. Alice computes ``v = m·x'`` with ``x' = x/‖x‖``. Left multiplication by the unit ``m`` is
   orthogonal, so ``v`` is ``u`` seen through a Gaussian channel.

LLR. Write the channel as ``y = g·x + z`` (gain ``g``, ``z ~ N(0, N)`` per real dimension,
``x ~ N(0, Σ)``). Then ``x = α y + z'`` with ``z'`` Gaussian, independent of ``y`` (and of the
local bits), ``α = gΣ/(g²Σ + N)``, ``Var z' = ΣN/(g²Σ + N)``. Hence
``m·x = ‖x‖ v = α‖y‖ u + m·z'`` where ``m·z'`` is isotropic Gaussian, independent of ``u``:
given ``‖y‖`` the map ``u → m·x`` is exactly a binary-input AWGN channel per coordinate and

    L_i = 2 g ‖x‖ ‖y‖ v_i / (√d · N),

the formula ``L_i = 2‖x‖‖y‖v_i/(√d σ²)`` of the paper with ``σ² = N/g²`` and ``y`` rescaled
by ``1/g``. With ``y_norm`` omitted, ``‖y‖`` is replaced by its expectation-like value
``√(d(g²Σ + N))`` (slightly mis-calibrated LLRs, a small loss of β); by default Bob discloses
``‖y‖`` per tuple, which is what :mod:`cvqkd.reconciliation.reconcile` does.

Why disclosing ``m`` (and ``‖y‖``) leaks nothing beyond the syndrome: ``y'`` is uniform on the
unit sphere and independent of ``‖y‖`` (``y`` is isotropic Gaussian); ``u`` is drawn
independently of ``y``; right multiplication by the unit ``ȳ'`` maps the uniform measure to
itself, so ``m = uȳ'`` is uniform on the sphere and independent of ``u`` — and of ``‖y‖``.
Hence ``I(U; M, ‖Y‖) = 0``. Against Eve holding ``E``: ``(U, M, ‖Y‖)`` is a function of ``Y``
and Bob's private coins, so ``I(U; E M ‖Y‖) ≤ I(U; M ‖Y‖) + I(U M ‖Y‖; E) ≤ 0 + χ(Y; E)`` — the
Holevo quantity the key-rate formula already subtracts. The only extra leak is the syndrome
(and the verification hash), counted by the reconciliation step.

Heterodyne data: use both quadratures as real samples (``np.column_stack([q, p]).ravel()``
keeps each symbol's pair inside one tuple when d is even).

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = rng.standard_normal(16)
>>> bits, m, y_norm = bob_encode(y, dimension=8, rng=rng)
>>> llr = alice_llr(y, m, dimension=8, gain=1.0, noise_variance=0.1, y_norm=y_norm)
>>> bool(np.array_equal((llr < 0).astype(np.uint8), bits))  # x = y: noiseless
True
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError, DataFormatError

__all__ = [
    "DIMENSIONS",
    "alice_llr",
    "awgn_capacity",
    "biawgn_capacity",
    "bob_encode",
    "conjugate",
    "mdr_mutual_information",
    "multiply",
    "rotate",
]

#: Dimensions with a normed division algebra (Hurwitz): R, C, H, O.
DIMENSIONS = (1, 2, 4, 8)


def _check_dimension(dimension: int) -> None:
    if dimension not in DIMENSIONS:
        raise ConfigError(f"MDR dimension must be one of 1, 2, 4, 8, got {dimension}")


def conjugate(a: ArrayLike) -> NDArray[np.float64]:
    """Conjugate of algebra elements ``[..., d]``: first coordinate kept, the others negated."""
    out = np.array(a, dtype=np.float64, copy=True)
    out[..., 1:] *= -1.0
    return out


def multiply(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Cayley–Dickson product of elements ``[..., d]`` (d = 1, 2, 4, 8), vectorised.

    ``(a₁,a₂)(b₁,b₂) = (a₁b₁ − b̄₂a₂, b₂a₁ + a₂b̄₁)``; d = 2 gives C, 4 the quaternions,
    8 the octonions (non-associative, alternative; ``‖ab‖ = ‖a‖‖b‖``).

    >>> multiply([0.0, 1.0], [0.0, 1.0]).tolist()  # i·i = −1
    [-1.0, 0.0]
    """
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    d = x.shape[-1]
    if y.shape[-1] != d:
        raise DataFormatError(f"cannot multiply elements of dimensions {d} and {y.shape[-1]}")
    _check_dimension(d)
    if d == 1:
        return x * y
    h = d // 2
    a1, a2 = x[..., :h], x[..., h:]
    b1, b2 = y[..., :h], y[..., h:]
    first = multiply(a1, b1) - multiply(conjugate(b2), a2)
    second = multiply(b2, a1) + multiply(a2, conjugate(b1))
    return np.concatenate([first, second], axis=-1)


def _tuples(samples: ArrayLike, dimension: int, what: str) -> NDArray[np.float64]:
    _check_dimension(dimension)
    s = np.asarray(samples, dtype=np.float64).ravel()
    if s.size % dimension:
        raise DataFormatError(f"{what}: {s.size} samples is not a multiple of d = {dimension}")
    if not np.all(np.isfinite(s)):
        raise DataFormatError(f"{what} contains NaN or infinity")
    return s.reshape(-1, dimension)


def _unit(t: NDArray[np.float64], what: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    norms = np.linalg.norm(t, axis=-1)
    if np.any(norms == 0.0):
        raise DataFormatError(f"{what} has an all-zero tuple; it cannot be normalised")
    return t / norms[:, None], norms


def bob_encode(
    y: ArrayLike, *, dimension: int, rng: np.random.Generator
) -> tuple[NDArray[np.uint8], NDArray[np.float64], NDArray[np.float64]]:
    """Bob's side of MDR: draw the key bits and the public rotations.

    Parameters
    ----------
    y:
        Bob's real samples (SNU), length a multiple of ``dimension``.
    dimension:
        d ∈ {1, 2, 4, 8}.
    rng:
        Bob's private randomness (the key bits come from here).

    Returns
    -------
    bits:
        ``uint8[N]``, the reconciled key bits (``u_i = (−1)^{b_i}/√d``).
    m:
        ``float64[N/d, d]``, the public elements with ``m·y' = u`` (unit norm).
    y_norm:
        ``float64[N/d]``, ``‖y‖`` per tuple (public: see the module docstring).
    """
    t = _tuples(y, dimension, "y")
    yu, norms = _unit(t, "y")
    bits = rng.integers(0, 2, size=t.shape, dtype=np.uint8)
    u = (1.0 - 2.0 * bits) / math.sqrt(dimension)
    m = multiply(u, conjugate(yu))
    return bits.ravel(), m, norms


def rotate(x: ArrayLike, m: ArrayLike, *, dimension: int) -> tuple[NDArray[np.float64], ...]:
    """Alice's rotation: ``v = m·x'`` per tuple; returns ``(v [N/d, d], ‖x‖ [N/d])``."""
    t = _tuples(x, dimension, "x")
    mm = np.asarray(m, dtype=np.float64).reshape(-1, dimension)
    if mm.shape[0] != t.shape[0]:
        raise DataFormatError(f"{mm.shape[0]} rotations for {t.shape[0]} tuples of x")
    xu, norms = _unit(t, "x")
    return multiply(mm, xu), norms


def alice_llr(
    x: ArrayLike,
    m: ArrayLike,
    *,
    dimension: int,
    gain: float,
    noise_variance: float,
    y_norm: ArrayLike | None = None,
    signal_variance: float | None = None,
) -> NDArray[np.float64]:
    """Alice's LLRs ``log P(b=0)/P(b=1)`` for Bob's bits: ``L_i = 2g‖x‖‖y‖v_i/(√d N)``.

    Parameters
    ----------
    x:
        Alice's real samples (SNU), same layout as Bob's ``y``.
    m:
        Bob's public rotations ``[N/d, d]``.
    dimension:
        d ∈ {1, 2, 4, 8}.
    gain, noise_variance:
        Channel model ``y = gain·x + z``, ``z ~ N(0, noise_variance)`` per real dimension
        (``noise_variance`` in SNU, > 0). SNR per dimension = ``gain²Σ/noise_variance``.
    y_norm:
        Bob's disclosed ``‖y‖`` per tuple. If omitted, ``√(d(gain²Σ + N))`` is used, with
        ``Σ = signal_variance`` (required then).

    Returns
    -------
    ``float64[N]`` LLRs in the order of the samples.
    """
    if not (noise_variance > 0 and math.isfinite(noise_variance)):
        raise ConfigError(f"noise_variance must be positive, got {noise_variance}")
    if not (gain > 0 and math.isfinite(gain)):
        raise ConfigError(f"gain must be positive, got {gain}")
    v, x_norm = rotate(x, m, dimension=dimension)
    if y_norm is None:
        if signal_variance is None or not signal_variance > 0:
            raise ConfigError("alice_llr needs y_norm or a positive signal_variance")
        yn: NDArray[np.float64] = np.full(
            x_norm.shape, math.sqrt(dimension * (gain**2 * signal_variance + noise_variance))
        )
    else:
        yn = np.asarray(y_norm, dtype=np.float64).ravel()
        if yn.shape != x_norm.shape:
            raise DataFormatError(f"{yn.size} norms for {x_norm.size} tuples")
    scale = 2.0 * gain * x_norm * yn / (math.sqrt(dimension) * noise_variance)
    out: NDArray[np.float64] = (scale[:, None] * v).ravel()
    return out


def mdr_mutual_information(
    *, snr: float, dimension: int, rng: np.random.Generator, samples: int = 400_000
) -> tuple[float, float]:
    """Monte-Carlo ``I(b; L)`` per bit of the MDR virtual channel, with its standard error.

    The most any binary code can extract per real dimension after MDR with disclosed norms:
    ``1 − E[log2(1 + exp(−(−1)^b L))]`` over simulated frames (x ~ N(0,1), y = x + z). Measured
    (400 000 samples): SNR 0.03 → ≈ C_AWGN for every d; SNR 1 → 0.34/0.40/0.46 bits for
    d = 1/2/8 (C_AWGN = 0.5); SNR 3 → 0.55/0.66/0.79 (C_AWGN = 1). MDR is a low-SNR scheme.
    """
    n = (samples // dimension) * dimension
    noise = 1.0 / snr
    x = rng.standard_normal(n)
    y = x + math.sqrt(noise) * rng.standard_normal(n)
    bits, m, y_norm = bob_encode(y, dimension=dimension, rng=rng)
    llr = alice_llr(x, m, dimension=dimension, gain=1.0, noise_variance=noise, y_norm=y_norm)
    terms = np.logaddexp(0.0, -(1.0 - 2.0 * bits) * llr) / math.log(2.0)
    return float(1.0 - terms.mean()), float(terms.std() / math.sqrt(n))


# ---------------------------------------------------------------------------- capacities
def awgn_capacity(*, snr: ArrayLike) -> NDArray[np.float64]:
    """Gaussian-input AWGN capacity per real dimension, ``½ log2(1 + SNR)`` bits (Shannon).

    >>> float(awgn_capacity(snr=3.0))
    1.0
    """
    s = np.asarray(snr, dtype=np.float64)
    return 0.5 * np.log2(1.0 + s)


_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(200)


def biawgn_capacity(*, snr: ArrayLike) -> NDArray[np.float64]:
    """Binary-input (±1) AWGN capacity per real dimension in bits.

    ``C = 1 − E[log2(1 + exp(−L))]`` with ``L = 2(1 + σZ)/σ²``, ``σ² = 1/SNR`` (e.g. Richardson
    & Urbanke, Modern Coding Theory, §4.2); expectation by 200-point Gauss–Hermite quadrature
    (accurate to < 1e-10 for 1e-4 ≤ SNR ≤ 100).

    >>> round(float(biawgn_capacity(snr=1.0) / awgn_capacity(snr=1.0)), 2)
    0.97
    """
    s = np.asarray(snr, dtype=np.float64)
    sig = 1.0 / np.sqrt(s)[..., None]
    llr = 2.0 * (1.0 + sig * _GH_X) / sig**2
    loss = np.logaddexp(0.0, -llr) / math.log(2.0)
    out: NDArray[np.float64] = 1.0 - (loss @ _GH_W) / math.sqrt(2.0 * math.pi)
    return out
