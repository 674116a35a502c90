"""Discrete modulation (PSK, QAM, probabilistically shaped QAM): the Denys–Brown–Leverrier bound.

Source: A. Denys, P. Brown, A. Leverrier, "Explicit asymptotic secret key rate of continuous-
variable quantum key distribution with an arbitrary modulation", Quantum 5, 540 (2021),
arXiv:2103.13945, Theorem 1 (heterodyne, reverse reconciliation, collective attacks,
asymptotic); PHYSICS.md. Checked against the public QOSST implementation (qosst-sim,
``Simulator.covariance``) for the same chain of definitions.

Alice sends ``|α_k⟩`` with probability ``p_k``; ``τ = Σ p_k |α_k⟩⟨α_k|``. Eve's Holevo
information is bounded by that of the Gaussian state with covariance matrix::

    Γ = [[V 𝟙, Z* σ_z], [Z* σ_z, W 𝟙]],   V = V_A + 1 = 1 + 2⟨n_A⟩,   W = 1 + 2 n_B
    Z* = 2 c1 − 2 √(w (n_B − 2 c2²/V_A))
    a_τ = τ^{1/2} a τ^{−1/2}   (τ^{−1/2} restricted to the support of τ)
    w  = Σ p_k (⟨α_k|a_τ† a_τ|α_k⟩ − |⟨α_k|a_τ|α_k⟩|²)

For a phase-insensitive Gaussian channel (T, ξ at the input) the expected statistics are
``n_B = T(V_A + ξ)/2``, ``c1 = √T Tr(τ^{1/2} a τ^{1/2} a†)``, ``c2 = √T V_A/2``, hence
``n_B − 2c2²/V_A = Tξ/2``. The bound Γ is then fed to the GG02 heterodyne Holevo function
(:func:`cvqkd.keyrate.gaussian.holevo_bits`) through the equivalent Gaussian channel
``T_eff = Z*²/(V² − 1)``, ``ξ_eff = W/T_eff − V − 1/T_eff + 1``, so trusted detector noise is
handled exactly as for GG02. ``I_AB`` is the mutual information of the constellation itself over
the heterodyne AWGN channel (2-D Gauss–Hermite quadrature), not the Gaussian capacity.

Numerics: τ lives in a truncated Fock space (dimension chosen from the largest |α_k|², or
given); ``τ^{−1/2}`` keeps only eigenvalues above ``support_rtol · λ_max`` — a QPSK τ has rank 4,
and inverting the ~1e-17 rounding eigenvalues of the other directions would give garbage.

Example:
    >>> c = constellation("qpsk", modulation_variance_snu=0.4)
    >>> r = discrete_modulation_rate(constellation=c, transmittance=0.5, excess_noise_snu=0.002,
    ...                              reconciliation_efficiency=0.95)
    >>> 0 < r.key_rate_bits_per_symbol < 0.2
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError
from cvqkd.keyrate.gaussian import holevo_bits
from cvqkd.units import FloatOrArray

__all__ = [
    "MODULATIONS",
    "Constellation",
    "DiscreteRate",
    "constellation",
    "constellation_moments",
    "constellation_mutual_information_bits",
    "discrete_modulation_rate",
]

#: Names accepted by :func:`constellation` (``gaussian`` is handled by GG02, not here).
MODULATIONS: tuple[str, ...] = ("qpsk", "psk8", "qam16", "qam64", "qam256")

Shaping = Literal["uniform", "discrete-gaussian"]


@dataclass(frozen=True)
class Constellation:
    """A finite coherent-state alphabet: amplitudes ``α_k`` (photon units) and weights ``p_k``.

    ``modulation_variance_snu = 2 Σ p_k |α_k|²`` (V_A per quadrature, SNU).
    """

    name: str
    amplitudes: NDArray[np.complex128]
    probabilities: NDArray[np.float64]

    @property
    def modulation_variance_snu(self) -> float:
        return float(2.0 * np.sum(self.probabilities * np.abs(self.amplitudes) ** 2))


def constellation(
    name: str,
    *,
    modulation_variance_snu: float,
    shaping: Shaping = "uniform",
    shaping_span_sigmas: float = 3.0,
) -> Constellation:
    """Build a named constellation scaled to ``modulation_variance_snu`` (V_A, SNU).

    - ``qpsk``, ``psk8``: M-PSK, ``α_k = α e^{i(2πk/M + π/M)}``, uniform, ``|α|² = V_A/2``.
    - ``qam16``, ``qam64``, ``qam256``: square grid, levels ``±1, ±3, …, ±(L−1)`` per quadrature.
      ``shaping="discrete-gaussian"`` weights point k by ``exp(−|x_k|²/(2s²))`` (probabilistic
      shaping), with the outermost level at ``shaping_span_sigmas · s`` — a sampled Gaussian.

    Example: ``constellation("qam16", modulation_variance_snu=4).modulation_variance_snu == 4``.
    """
    if modulation_variance_snu <= 0:
        raise ConfigError("modulation_variance_snu must be positive")
    name = name.lower()
    if name in ("qpsk", "psk4", "psk8"):
        m = 8 if name == "psk8" else 4
        k = np.arange(m)
        pts = np.exp(1j * (2 * np.pi * k / m + np.pi / m))
        probs = np.full(m, 1.0 / m)
        if shaping != "uniform":
            raise ConfigError("probabilistic shaping applies to QAM constellations only")
    elif name in ("qam16", "qam64", "qam256"):
        m = int(name[3:])
        side = {16: 4, 64: 8, 256: 16}[m]
        levels = np.arange(-(side - 1), side, 2, dtype=float)
        re, im = np.meshgrid(levels, levels, indexing="ij")
        pts = (re + 1j * im).ravel()
        if shaping == "uniform":
            probs = np.full(m, 1.0 / m)
        elif shaping == "discrete-gaussian":
            s = (side - 1) / shaping_span_sigmas
            weights = np.exp(-(np.abs(pts) ** 2) / (2.0 * s * s))
            probs = weights / weights.sum()
        else:
            raise ConfigError(f"unknown shaping {shaping!r} (uniform | discrete-gaussian)")
    else:
        raise ConfigError(f"unknown modulation {name!r}; choose one of {', '.join(MODULATIONS)}")
    scale = np.sqrt(modulation_variance_snu / (2.0 * np.sum(probs * np.abs(pts) ** 2)))
    label = name if shaping == "uniform" else f"{name}-{shaping}"
    return Constellation(name=label, amplitudes=(pts * scale).astype(complex), probabilities=probs)


def _coherent_vectors(alphas: NDArray[np.complex128], dim: int) -> NDArray[np.complex128]:
    """Columns ``|α⟩`` truncated to ``dim`` Fock states (recursion, no factorial overflow)."""
    out = np.empty((dim, alphas.size), dtype=complex)
    out[0] = np.exp(-(np.abs(alphas) ** 2) / 2.0)
    for n in range(1, dim):
        out[n] = out[n - 1] * alphas / np.sqrt(n)
    return out


def _default_dim(c: Constellation) -> int:
    nmax = float(np.max(np.abs(c.amplitudes) ** 2))
    return int(np.ceil(nmax + 12.0 * np.sqrt(nmax) + 30.0))


def constellation_moments(
    c: Constellation, *, fock_dimension: int | None = None, support_rtol: float = 1e-12
) -> tuple[float, float]:
    """``(C, w)``: ``C = Tr(τ^{1/2} a τ^{1/2} a†)`` and the non-Gaussianity ``w`` (DBL 2021).

    For a Gaussian (thermal) τ, ``C = √(n(n+1))`` with ``n = V_A/2`` and ``w = 0``.

    Example: for QPSK, ``C`` and ``w`` agree with the closed forms in the eigenbasis
    ``λ_k = e^{−α²} Σ_n α^{2(4n+k)}/(4n+k)!`` (tested).
    """
    return _moments_cached(
        c.amplitudes.tobytes(),
        c.probabilities.tobytes(),
        fock_dimension or _default_dim(c),
        support_rtol,
    )


@lru_cache(maxsize=64)
def _moments_cached(
    amp_bytes: bytes, prob_bytes: bytes, dim: int, support_rtol: float
) -> tuple[float, float]:
    alphas = np.frombuffer(amp_bytes, dtype=complex)
    probs = np.frombuffer(prob_bytes, dtype=float)
    vecs = _coherent_vectors(alphas, dim)
    tau = (vecs * probs) @ vecs.conj().T
    tau = 0.5 * (tau + tau.conj().T)
    lam, u = np.linalg.eigh(tau)
    keep = lam > support_rtol * lam.max()
    lam_s, u_s = lam[keep], u[:, keep]
    sqrt_tau = (u_s * np.sqrt(lam_s)) @ u_s.conj().T
    inv_sqrt_tau = (u_s / np.sqrt(lam_s)) @ u_s.conj().T  # pseudo-inverse on the support only
    a = np.diag(np.sqrt(np.arange(1, dim, dtype=float)), k=1).astype(complex)
    c_val = float(np.real(np.trace(sqrt_tau @ a @ sqrt_tau @ a.conj().T)))
    a_tau = sqrt_tau @ a @ inv_sqrt_tau
    av = a_tau @ vecs  # a_τ |α_k⟩
    second = np.sum(np.abs(av) ** 2, axis=0)
    first = np.sum(vecs.conj() * av, axis=0)
    w_val = float(np.sum(probs * (second - np.abs(first) ** 2)))
    return c_val, max(w_val, 0.0)


def constellation_mutual_information_bits(
    c: Constellation, *, snr_amplitude_scale: float, noise_variance_snu: float, nodes: int = 24
) -> float:
    """Mutual information [bits/symbol] of the constellation over complex AWGN (heterodyne).

    Bob's two quadratures are ``y = s_k + n`` with ``s_k = snr_amplitude_scale · 2α_k`` (per
    quadrature, SNU) and i.i.d. noise of variance ``noise_variance_snu`` per quadrature.
    ``I = H(X) − E[log2(Σ_j p_j e^{−(|s_k−s_j+n|²−|n|²)/(2σ²)} / p_k)]`` evaluated with a
    ``nodes × nodes`` Gauss–Hermite rule.

    Example: at very high SNR a uniform QPSK carries 2 bits.
    """
    s = snr_amplitude_scale * 2.0 * c.amplitudes
    p = c.probabilities
    x, wts = np.polynomial.hermite.hermgauss(nodes)
    sig = np.sqrt(noise_variance_snu)
    nr = (np.sqrt(2.0) * sig * x)[:, None] + 0j
    ni = (np.sqrt(2.0) * sig * x)[None, :]
    noise = (nr + 1j * ni).ravel()  # quadrature nodes of the complex noise
    weight = (wts[:, None] * wts[None, :]).ravel() / np.pi
    total = 0.0
    chunk = max(1, 4_000_000 // (p.size * noise.size))
    for start in range(0, p.size, chunk):
        idx = slice(start, start + chunk)
        d = s[idx, None] - s[None, :]  # (k, j)
        expo = -(
            np.abs(d[:, :, None]) ** 2 + 2.0 * np.real(d[:, :, None] * noise.conj()[None, None, :])
        ) / (2.0 * noise_variance_snu)
        mx = expo.max(axis=1, keepdims=True)
        lse = mx[:, 0, :] + np.log(np.sum(p[None, :, None] * np.exp(expo - mx), axis=1))
        # log2 of Σ_j p_j e^{...} / p_k ; average over noise (weights) and k (p_k)
        term = (lse - np.log(p[idx])[:, None]) / np.log(2.0)
        total += float(np.sum(p[idx] * (term @ weight)))
    return _mi_from(total, p)


def _entropy(p: NDArray[np.float64]) -> float:
    return float(-np.sum(p * np.log2(p)))


def _mi_from(total: float, p: NDArray[np.float64]) -> float:
    # total = E[log2(Σ_j p_j r_j / p_k)] with r_j = f(y|j)/f(y|k) is H(X|Y); I = H(X) − H(X|Y).
    return max(_entropy(p) - total, 0.0)


@dataclass(frozen=True)
class DiscreteRate:
    """Discrete-modulation key rate (bits per symbol) and the bound's ingredients."""

    mutual_information_bits: FloatOrArray
    holevo_bits: FloatOrArray
    key_rate_bits_per_symbol: FloatOrArray
    correlation_c: float
    non_gaussianity_w: float
    z_star_snu: FloatOrArray


def discrete_modulation_rate(
    *,
    constellation: Constellation,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    detector_efficiency: float = 1.0,
    electronic_noise_snu: float = 0.0,
    reconciliation_efficiency: ArrayLike = 1.0,
    trusted_detector: bool = True,
    fock_dimension: int | None = None,
    mutual_information: Literal["constellation", "gaussian"] = "constellation",
) -> DiscreteRate:
    """DBL 2021 key-rate bound ``β I_AB − χ_BE`` for heterodyne detection, reverse reconciliation.

    Vectorised over ``transmittance`` and ``excess_noise_snu`` (τ's moments are computed once);
    ``I_AB`` is computed per point (~0.5 s per point for 256-QAM on this 2-core machine).
    ``mutual_information="gaussian"`` uses the Gaussian-input value ``log2(1 + SNR)`` instead,
    an upper bound on the constellation's, fast for sweeps; the default is the true value.
    Returns negative rates as they are; where ``Z* ≤ 0`` the bound certifies nothing and the
    rate is ``−inf``.

    Example: see the module docstring.
    """
    c = constellation
    va = c.modulation_variance_snu
    c_val, w_val = constellation_moments(c, fock_dimension=fock_dimension)
    t = np.asarray(transmittance, dtype=float)
    xi = np.asarray(excess_noise_snu, dtype=float)
    t_b, xi_b = np.broadcast_arrays(t, xi)
    v = va + 1.0
    n_b = t_b * (va + xi_b) / 2.0
    z_star = 2.0 * np.sqrt(t_b) * c_val - 2.0 * np.sqrt(w_val * np.maximum(t_b * xi_b / 2.0, 0.0))
    w_cm = 2.0 * n_b + 1.0
    ok = z_star > 0
    t_eff = np.where(ok, z_star**2 / (v * v - 1.0), 1.0)
    xi_eff = np.where(ok, w_cm / t_eff - v - 1.0 / t_eff + 1.0, 0.0)
    chi = np.asarray(
        holevo_bits(
            transmittance=t_eff,
            excess_noise_snu=xi_eff,
            modulation_variance_snu=va,
            detector_efficiency=detector_efficiency,
            electronic_noise_snu=electronic_noise_snu,
            detection="heterodyne",
            trusted_detector=trusted_detector,
        )
    )
    chi = np.where(ok, chi, np.inf)
    eta = detector_efficiency
    noise_var = 1.0 + electronic_noise_snu + eta * t_b * xi_b / 2.0
    info = np.empty(t_b.shape)
    if mutual_information == "gaussian":
        info[...] = np.log2(1.0 + eta * t_b * va / 2.0 / noise_var)
    elif mutual_information != "constellation":
        raise ConfigError("mutual_information must be 'constellation' or 'gaussian'")
    for idx in np.ndindex(t_b.shape) if mutual_information == "constellation" else ():
        info[idx] = constellation_mutual_information_bits(
            c,
            snr_amplitude_scale=float(np.sqrt(eta * t_b[idx] / 2.0)),
            noise_variance_snu=float(noise_var[idx]),
        )
    beta = np.asarray(reconciliation_efficiency, dtype=float)
    key = beta * info - chi

    def out(x: NDArray[np.float64]) -> FloatOrArray:
        return float(x) if np.ndim(x) == 0 else x

    return DiscreteRate(
        mutual_information_bits=out(info),
        holevo_bits=out(chi),
        key_rate_bits_per_symbol=out(key),
        correlation_c=c_val,
        non_gaussianity_w=w_val,
        z_star_snu=out(z_star),
    )
