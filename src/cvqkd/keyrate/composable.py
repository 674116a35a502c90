"""Composable finite-size GG02 key rate (Mountogiannakis, Papanastasiou, Braverman, Pirandola).

Source: A. G. Mountogiannakis, P. Papanastasiou, B. Braverman, S. Pirandola, "Composably secure
data processing for Gaussian-modulated continuous-variable quantum key distribution", Phys. Rev.
Research 4, 013099 (2022), arXiv:2103.16589, Eqs. (B1)-(B4) / Sec. III; PHYSICS.md.
Verified: the published version uses ``Δ_AEP = 4 log2(2^{d/2} + 2) √(log2(18/(p_EC² ε_s⁴)))``
(arXiv v1 had ``log2(2^{1+d/2} + 1)``); the authors' public code (``generic.py``, function
``composable_key_rate``) computes exactly the expressions below, and the ε total including
``p_EC (2 ε_PE + ε_ent)``::

    R = (n p_EC / N) [R_M − Δ_AEP/√n + Θ/n]                        [bit per sent symbol]
    R_M = β I_AB − χ_BE(T_min, ξ_max)
    Θ = log2[p_EC (1 − ε_s²/3)] + 2 log2(√2 ε_h)
    ε = ε_cor + ε_s + ε_h + p_EC (2 ε_PE + ε_ent)

``d`` is the number of bits each key symbol is discretised into (the AEP alphabet has
``2^d`` letters: with heterodyne and ``p`` bits per quadrature, pass ``d = 2p``),
``p_EC`` the probability that a frame passes error correction and verification (1 − FER).
The worst-case ``T_min``, ``ξ_max`` come from the Leverrier-style confidence intervals of
:func:`cvqkd.keyrate.finite_size.worst_case_parameters` (``w = √2 erfinv(1 − ε_PE)``), the
"Leverrier" parameter-estimation option of the authors' code, with the estimators at their
expected values and ``m = N − n`` disclosed symbols.

Example:
    >>> sec = SecurityParameters.uniform(2.0**-32)
    >>> r = composable_gg02(transmittance=0.1, excess_noise_snu=0.01, modulation_variance_snu=4,
    ...                     reconciliation_efficiency=0.95, block_size=1e10,
    ...                     estimation_fraction=0.1, frame_success_probability=0.9, security=sec)
    >>> r.key_rate_bits_per_symbol > 0
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError
from cvqkd.keyrate.finite_size import SecurityParameters, block_information
from cvqkd.keyrate.gaussian import Detection
from cvqkd.units import FloatOrArray

__all__ = [
    "ComposableRate",
    "composable_epsilon",
    "composable_gg02",
    "delta_aep_bits",
    "minimum_block_size",
    "theta_bits",
]


@dataclass(frozen=True)
class ComposableRate:
    """Composable GG02 result; ``key_rate_bits_per_symbol`` is per sent symbol."""

    key_rate_bits_per_symbol: FloatOrArray
    rate_worst_case_bits: FloatOrArray  # R_M = β I_AB − χ_BE(worst)
    mutual_information_bits: FloatOrArray
    holevo_worst_bits: FloatOrArray
    delta_aep_bits: FloatOrArray
    theta_bits: FloatOrArray
    transmittance_min: FloatOrArray
    excess_noise_max_snu: FloatOrArray
    key_symbols: FloatOrArray
    epsilon_total: FloatOrArray


def _out(x: NDArray[np.float64]) -> FloatOrArray:
    return float(x) if np.ndim(x) == 0 else x


def delta_aep_bits(
    *, discretisation_bits: ArrayLike, frame_success_probability: ArrayLike, epsilon_smooth: float
) -> FloatOrArray:
    """``Δ_AEP = 4 log2(2^{d/2} + 2) √(log2(18 / (p_EC² ε_s⁴)))`` [bits] (Mountogiannakis 2022).

    Example: ``delta_aep_bits(discretisation_bits=2, frame_success_probability=1,
    epsilon_smooth=2**-32)`` = ``8 √(log2 18 + 128)`` ≈ 91.97.
    """
    d = np.asarray(discretisation_bits, dtype=float)
    p = np.asarray(frame_success_probability, dtype=float)
    return _out(
        4.0
        * np.log2(2.0 ** (d / 2.0) + 2.0)
        * np.sqrt(np.log2(18.0) - 2.0 * np.log2(p) - 4.0 * np.log2(epsilon_smooth))
    )


def theta_bits(
    *, frame_success_probability: ArrayLike, epsilon_smooth: float, epsilon_pa: float
) -> FloatOrArray:
    """``Θ = log2[p_EC (1 − ε_s²/3)] + 2 log2(√2 ε_h)`` [bits] (negative; ε_h = ``epsilon_pa``).

    Example: ``theta_bits(frame_success_probability=1, epsilon_smooth=1e-300,
    epsilon_pa=2**-32)`` = ``1 − 64 = −63``.
    """
    p = np.asarray(frame_success_probability, dtype=float)
    return _out(
        np.log2(p * (1.0 - epsilon_smooth**2 / 3.0)) + 2.0 * np.log2(np.sqrt(2.0) * epsilon_pa)
    )


def composable_epsilon(
    *, security: SecurityParameters, frame_success_probability: ArrayLike
) -> FloatOrArray:
    """Total ``ε = ε_cor + ε_s + ε_h + p_EC (2 ε_PE + ε_ent)``.

    Example: all ε = 1e-10 and ``p_EC = 1`` give 6e-10.
    """
    p = np.asarray(frame_success_probability, dtype=float)
    s = security
    return _out(
        s.epsilon_cor + s.epsilon_smooth + s.epsilon_pa + p * (2.0 * s.epsilon_pe + s.epsilon_ent)
    )


def composable_gg02(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    block_size: ArrayLike,
    estimation_fraction: ArrayLike,
    security: SecurityParameters,
    frame_success_probability: ArrayLike = 1.0,
    discretisation_bits: ArrayLike = 5,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    reconciliation_efficiency: ArrayLike = 1.0,
    detection: Detection = "homodyne",
    trusted_detector: bool = True,
) -> ComposableRate:
    """Composable key rate of GG02 for a block of ``N`` symbols, ``m = fraction·N`` disclosed.

    Args: as :func:`cvqkd.keyrate.finite_size.finite_size_gg02`, plus
        frame_success_probability: ``p_EC`` = 1 − FER of the error-correction stage.
        discretisation_bits: ``d`` bits per key symbol (default 5).

    Vectorised; the result may be negative (returned as is).

    Example: ``minimum_block_size`` below finds the smallest N with a positive rate.
    """
    p_ec = np.asarray(frame_success_probability, dtype=float)
    if np.any((p_ec <= 0) | (p_ec > 1)):
        raise ConfigError("frame_success_probability must lie in (0, 1]")
    block = block_information(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        modulation_variance_snu=modulation_variance_snu,
        block_size=block_size,
        estimation_fraction=estimation_fraction,
        epsilon_pe=security.epsilon_pe,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        detection=detection,
        trusted_detector=trusted_detector,
    )
    big_n, n = block.block_size, block.key_symbols
    info, chi, worst = block.mutual_information_bits, block.holevo_worst_bits, block.worst
    beta = np.asarray(reconciliation_efficiency, dtype=float)
    r_m = beta * info - chi
    d_aep = np.asarray(
        delta_aep_bits(
            discretisation_bits=discretisation_bits,
            frame_success_probability=p_ec,
            epsilon_smooth=security.epsilon_smooth,
        )
    )
    theta = np.asarray(
        theta_bits(
            frame_success_probability=p_ec,
            epsilon_smooth=security.epsilon_smooth,
            epsilon_pa=security.epsilon_pa,
        )
    )
    key = (n * p_ec / big_n) * (r_m - d_aep / np.sqrt(n) + theta / n)
    shape = np.shape(key)

    def full(x: ArrayLike) -> FloatOrArray:
        return _out(np.broadcast_to(np.asarray(x, dtype=float), shape).copy())

    return ComposableRate(
        key_rate_bits_per_symbol=_out(key),
        rate_worst_case_bits=full(r_m),
        mutual_information_bits=full(info),
        holevo_worst_bits=full(chi),
        delta_aep_bits=full(d_aep),
        theta_bits=full(theta),
        transmittance_min=full(worst.transmittance_min),
        excess_noise_max_snu=full(worst.excess_noise_max_snu),
        key_symbols=full(n),
        epsilon_total=full(composable_epsilon(security=security, frame_success_probability=p_ec)),
    )


def minimum_block_size(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    estimation_fraction: ArrayLike,
    security: SecurityParameters,
    frame_success_probability: ArrayLike = 1.0,
    discretisation_bits: ArrayLike = 5,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    reconciliation_efficiency: ArrayLike = 1.0,
    detection: Detection = "homodyne",
    trusted_detector: bool = True,
    max_block_size: float = 1e16,
) -> FloatOrArray:
    """Smallest block size ``N`` (symbols) with a positive composable key rate; ``inf`` if none.

    Bisection on ``log10 N`` in ``[10, log10 max_block_size]`` (vectorised; 60 halvings give a
    relative precision far below 1e-6). The rate rises with ``N`` (every finite-size penalty
    shrinks), so the crossing is unique. The result is rounded up to an integer.

    Example: the asymptotic rate must be positive for a finite answer; at 25 km with typical
    parameters the answer is of order 10^6-10^8 symbols.
    """
    kw = dict(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        modulation_variance_snu=modulation_variance_snu,
        estimation_fraction=estimation_fraction,
        security=security,
        frame_success_probability=frame_success_probability,
        discretisation_bits=discretisation_bits,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        reconciliation_efficiency=reconciliation_efficiency,
        detection=detection,
        trusted_detector=trusted_detector,
    )

    def rate(log_n: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(invalid="ignore", divide="ignore"):
            r = composable_gg02(block_size=10.0**log_n, **kw)  # type: ignore[arg-type]
        return np.asarray(r.key_rate_bits_per_symbol)

    hi_val = float(np.log10(max_block_size))
    shape = np.shape(rate(np.asarray(hi_val)))
    lo = np.full(shape, 1.0)
    hi = np.full(shape, hi_val)
    feasible = rate(hi) > 0
    already = rate(lo) > 0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        pos = rate(mid) > 0
        hi = np.where(pos, mid, hi)
        lo = np.where(pos, lo, mid)
    result = np.where(feasible, np.ceil(10.0**hi), np.inf)
    result = np.where(already, 10.0, result)
    return _out(result)
