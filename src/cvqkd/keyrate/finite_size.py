"""Finite-size GG02 key rate, collective attacks (Leverrier, Grosshans, Grangier 2010).

Source: A. Leverrier, F. Grosshans, P. Grangier, "Finite-size analysis of a continuous-variable
quantum key distribution", PRA 81, 062343 (2010), Eqs. (6)-(8), (22)-(27); PHYSICS.md.

Of ``N`` symbols, ``m`` are disclosed for parameter estimation and ``n = N − m`` make the key::

    K = (n/N) [β I_AB − χ_BE(T_min, ξ_max) − Δ(n)]                       [bit per sent symbol]
    Δ(n) = (2 dim H_X + 3) √(log2(2/ε̄)/n) + (2/n) log2(1/ε_PA),  dim H_X = 2  →  7 √(...)

Parameter estimation (homodyne, Bob's data ``y = t x + z``): ``t̂ = Σxy/Σx²`` estimates
``t = √(ηT)``; ``σ̂² = (1/m) Σ(y − t̂x)²`` estimates ``σ² = 1 + v_el + ηTξ``. With
``z_ε = √2 erfinv(1 − ε_PE)``::

    t_min   = t̂ − z_ε √(σ̂² / (m V_A))
    σ²_max  = σ̂² + z_ε σ̂² √2 / √m
    T_min   = t_min² / η,   ξ_max = (σ²_max − 1 − v_el) / (η T_min)

Heterodyne: each of the two quadratures obeys ``y = t x + z`` with ``t = √(ηT/2)``,
``σ² = 1 + v_el + ηTξ/2`` (each arm's shot noise = 1 SNU), and ``m`` symbols give ``2m``
samples; the same intervals apply with ``m → 2m`` and ``T = 2t²/η``, ``ξ = 2(σ² − 1 − v_el)/(ηT)``.

The predicted rate takes the estimators at their expected values (no sampling randomness): it is
what a block of size ``N`` yields on average, the number a planner wants. Total failure
probability (LGG 2010, Eq. (3)): ``ε = ε_PE + ε̄ + ε_EC + ε_PA`` (``ε_EC`` = ``epsilon_cor``).

Example:
    >>> sec = SecurityParameters.uniform(1e-10)
    >>> r = finite_size_gg02(transmittance=0.1, excess_noise_snu=0.01, modulation_variance_snu=4,
    ...                      reconciliation_efficiency=0.95, block_size=1e10,
    ...                      estimation_fraction=0.5, security=sec)
    >>> 0 < r.key_rate_bits_per_symbol < 0.02
    True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erfinv

from cvqkd.errors import ConfigError
from cvqkd.keyrate.gaussian import Detection, holevo_bits, mutual_information_bits
from cvqkd.units import FloatOrArray

__all__ = [
    "FiniteSizeRate",
    "SecurityParameters",
    "WorstCaseParameters",
    "confidence_z",
    "delta_privacy_bits",
    "expected_estimates",
    "finite_size_gg02",
    "worst_case_parameters",
]


@dataclass(frozen=True)
class SecurityParameters:
    """Every ε of the finite-size and composable analyses, each named (probabilities in (0, 1)).

    - ``epsilon_pe``: parameter-estimation failure (true T, ξ outside the confidence region).
    - ``epsilon_smooth``: smoothing parameter ε̄ / ε_s of the smooth min-entropy.
    - ``epsilon_pa``: privacy amplification / hashing ε_PA = ε_h (leftover hash lemma).
    - ``epsilon_cor``: correctness (failure of the verification hash) ε_EC = ε_cor.
    - ``epsilon_ent``: entropy-estimation error of the composable analysis (Mountogiannakis 2022).

    Example: ``SecurityParameters.uniform(1e-10).epsilon_pe == 1e-10``.
    """

    epsilon_pe: float = 1e-10
    epsilon_smooth: float = 1e-10
    epsilon_pa: float = 1e-10
    epsilon_cor: float = 1e-10
    epsilon_ent: float = 1e-10

    def __post_init__(self) -> None:
        for name in ("epsilon_pe", "epsilon_smooth", "epsilon_pa", "epsilon_cor", "epsilon_ent"):
            v = getattr(self, name)
            if not (0.0 < v < 1.0):
                raise ConfigError(f"{name} must lie in (0, 1), got {v!r}")

    @classmethod
    def uniform(cls, epsilon: float) -> SecurityParameters:
        """All five ε equal to ``epsilon``."""
        return cls(epsilon, epsilon, epsilon, epsilon, epsilon)

    def total_lgg(self) -> float:
        """LGG 2010 total security parameter ``ε_PE + ε̄ + ε_EC + ε_PA``."""
        return self.epsilon_pe + self.epsilon_smooth + self.epsilon_cor + self.epsilon_pa


@dataclass(frozen=True)
class WorstCaseParameters:
    """Worst-case channel parameters from the estimators' confidence intervals at ``ε_PE``."""

    transmittance_min: FloatOrArray
    excess_noise_max_snu: FloatOrArray
    t_min: FloatOrArray
    sigma_sq_max: FloatOrArray


@dataclass(frozen=True)
class FiniteSizeRate:
    """Finite-size GG02 result. ``key_rate_bits_per_symbol`` is per SENT symbol (× n/N)."""

    key_rate_bits_per_symbol: FloatOrArray
    mutual_information_bits: FloatOrArray
    holevo_worst_bits: FloatOrArray
    delta_bits: FloatOrArray
    transmittance_min: FloatOrArray
    excess_noise_max_snu: FloatOrArray
    key_symbols: FloatOrArray
    estimation_symbols: FloatOrArray
    epsilon_total: float


def _out(x: NDArray[np.float64]) -> FloatOrArray:
    return float(x) if np.ndim(x) == 0 else x


def _kappa(detection: Detection) -> float:
    if detection == "homodyne":
        return 1.0
    if detection == "heterodyne":
        return 0.5
    raise ConfigError(f"detection must be 'homodyne' or 'heterodyne', got {detection!r}")


def confidence_z(*, epsilon_pe: ArrayLike) -> FloatOrArray:
    """Confidence number ``z = √2 erfinv(1 − ε_PE)`` (LGG 2010; ``ε_PE = 1e-10`` → 6.467).

    Example: ``round(confidence_z(epsilon_pe=1e-10), 3) == 6.467``.
    """
    return _out(np.sqrt(2.0) * erfinv(1.0 - np.asarray(epsilon_pe, dtype=float)))


def expected_estimates(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    detection: Detection = "homodyne",
) -> tuple[FloatOrArray, FloatOrArray]:
    """Expected values ``(t, σ²)`` of the estimators ``t̂``, ``σ̂²`` (per quadrature sample).

    ``t = √(κηT)``, ``σ² = 1 + v_el + κηTξ`` with ``κ = 1`` (homodyne) or ``½`` (heterodyne).

    Example: ``expected_estimates(transmittance=0.25, excess_noise_snu=0.0)`` → ``(0.5, 1.0)``.
    """
    k = _kappa(detection)
    t = np.asarray(transmittance, dtype=float)
    eta = np.asarray(detector_efficiency, dtype=float)
    xi = np.asarray(excess_noise_snu, dtype=float)
    vel = np.asarray(electronic_noise_snu, dtype=float)
    return _out(np.sqrt(k * eta * t)), _out(1.0 + vel + k * eta * t * xi)


def worst_case_parameters(
    *,
    t_hat: ArrayLike,
    sigma_sq_hat: ArrayLike,
    estimation_symbols: ArrayLike,
    modulation_variance_snu: ArrayLike,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    epsilon_pe: float = 1e-10,
    detection: Detection = "homodyne",
) -> WorstCaseParameters:
    """Worst-case ``T_min`` and ``ξ_max`` [SNU, channel input] from the estimates (LGG 2010).

    Args:
        t_hat: estimated ``√(κηT)`` (``Σxy/Σx²``, x in SNU of Alice's modulation).
        sigma_sq_hat: estimated conditional variance ``(1/m)Σ(y − t̂x)²`` [SNU].
        estimation_symbols: ``m``, symbols disclosed (heterodyne: 2m quadrature samples used).
        modulation_variance_snu: ``V_A`` (per quadrature).
        detector_efficiency, electronic_noise_snu: calibrated η and v_el [SNU].
        epsilon_pe: parameter-estimation failure probability.
        detection: ``"homodyne"`` or ``"heterodyne"``.

    ``t_min`` is clipped at 0 (a hopeless estimate gives ``T_min = 0`` and ``ξ_max = inf``).

    Example: ``worst_case_parameters(t_hat=0.5, sigma_sq_hat=1.0, estimation_symbols=1e8,
    modulation_variance_snu=4.0).transmittance_min`` ≈ 0.2496.
    """
    k = _kappa(detection)
    samples = np.asarray(estimation_symbols, dtype=float) * (1.0 if k == 1.0 else 2.0)
    z = np.asarray(confidence_z(epsilon_pe=epsilon_pe))
    th = np.asarray(t_hat, dtype=float)
    s2 = np.asarray(sigma_sq_hat, dtype=float)
    va = np.asarray(modulation_variance_snu, dtype=float)
    eta = np.asarray(detector_efficiency, dtype=float)
    vel = np.asarray(electronic_noise_snu, dtype=float)
    t_min = np.maximum(th - z * np.sqrt(s2 / (samples * va)), 0.0)
    s2_max = s2 + z * s2 * np.sqrt(2.0 / samples)
    t_worst = t_min**2 / (k * eta)
    with np.errstate(divide="ignore", invalid="ignore"):
        xi_max = np.where(t_worst > 0, (s2_max - 1.0 - vel) / (k * eta * t_worst), np.inf)
    return WorstCaseParameters(
        transmittance_min=_out(t_worst),
        excess_noise_max_snu=_out(xi_max),
        t_min=_out(t_min),
        sigma_sq_max=_out(s2_max),
    )


def delta_privacy_bits(
    *, key_symbols: ArrayLike, epsilon_smooth: float, epsilon_pa: float
) -> FloatOrArray:
    """LGG 2010 finite-size correction ``Δ(n) = 7√(log2(2/ε̄)/n) + (2/n) log2(1/ε_PA)`` [bits].

    Example: ``delta_privacy_bits(key_symbols=1e10, epsilon_smooth=1e-10, epsilon_pa=1e-10)``
    ≈ 4.09e-4.
    """
    n = np.asarray(key_symbols, dtype=float)
    return _out(
        7.0 * np.sqrt(np.log2(2.0 / epsilon_smooth) / n) + (2.0 / n) * np.log2(1.0 / epsilon_pa)
    )


@dataclass(frozen=True)
class BlockInformation:
    """What the finite-size and composable rates share for a block of ``N`` symbols: ``m``
    disclosed and ``n = N − m`` kept, ``I_AB`` at the true parameters and ``χ_BE`` at the
    worst case of the estimators' intervals taken at their expected values (``inf`` where
    the worst-case T is not positive)."""

    block_size: NDArray[np.float64]
    estimation_symbols: NDArray[np.float64]
    key_symbols: NDArray[np.float64]
    mutual_information_bits: NDArray[np.float64]
    holevo_worst_bits: NDArray[np.float64]
    worst: WorstCaseParameters


def block_information(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    block_size: ArrayLike,
    estimation_fraction: ArrayLike,
    epsilon_pe: float,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    detection: Detection = "homodyne",
    trusted_detector: bool = True,
) -> BlockInformation:
    """Split a block, and evaluate ``I_AB`` (expected) and ``χ_BE`` (worst case) for it."""
    big_n = np.asarray(block_size, dtype=float)
    frac = np.asarray(estimation_fraction, dtype=float)
    if np.any((frac <= 0) | (frac >= 1)):
        raise ConfigError("estimation_fraction must lie in (0, 1)")
    if np.any(big_n <= 1):
        raise ConfigError("block_size must be larger than 1")
    m = frac * big_n
    n = big_n - m
    t_exp, s2_exp = expected_estimates(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        detection=detection,
    )
    worst = worst_case_parameters(
        t_hat=t_exp,
        sigma_sq_hat=s2_exp,
        estimation_symbols=m,
        modulation_variance_snu=modulation_variance_snu,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        epsilon_pe=epsilon_pe,
        detection=detection,
    )
    info = np.asarray(
        mutual_information_bits(
            transmittance=transmittance,
            excess_noise_snu=excess_noise_snu,
            modulation_variance_snu=modulation_variance_snu,
            detector_efficiency=detector_efficiency,
            electronic_noise_snu=electronic_noise_snu,
            detection=detection,
        )
    )
    t_min = np.asarray(worst.transmittance_min)
    ok = t_min > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        chi = np.asarray(
            holevo_bits(
                transmittance=np.where(ok, t_min, 1.0),
                excess_noise_snu=np.where(ok, worst.excess_noise_max_snu, 0.0),
                modulation_variance_snu=modulation_variance_snu,
                detector_efficiency=detector_efficiency,
                electronic_noise_snu=electronic_noise_snu,
                detection=detection,
                trusted_detector=trusted_detector,
            )
        )
    return BlockInformation(
        block_size=big_n,
        estimation_symbols=m,
        key_symbols=n,
        mutual_information_bits=info,
        holevo_worst_bits=np.where(ok, chi, np.inf),
        worst=worst,
    )


def finite_size_gg02(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    block_size: ArrayLike,
    estimation_fraction: ArrayLike,
    security: SecurityParameters,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    reconciliation_efficiency: ArrayLike = 1.0,
    detection: Detection = "homodyne",
    trusted_detector: bool = True,
) -> FiniteSizeRate:
    """Predicted LGG 2010 finite-size key rate for a block of ``N = block_size`` symbols.

    ``m = estimation_fraction · N`` symbols are disclosed, ``n = N − m`` kept. ``I_AB`` uses the
    true (expected) parameters, ``χ_BE`` the worst case from :func:`worst_case_parameters` at the
    estimators' expected values. Vectorised (``block_size`` may be an array, e.g. a sweep).

    Example: as ``N → ∞`` the rate tends to ``(1 − fraction) · K_asymptotic`` (tested).
    """
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
    big_n, m, n = block.block_size, block.estimation_symbols, block.key_symbols
    info, chi, worst = block.mutual_information_bits, block.holevo_worst_bits, block.worst
    delta = np.asarray(
        delta_privacy_bits(
            key_symbols=n, epsilon_smooth=security.epsilon_smooth, epsilon_pa=security.epsilon_pa
        )
    )
    beta = np.asarray(reconciliation_efficiency, dtype=float)
    key = (n / big_n) * (beta * info - chi - delta)
    shape = np.shape(key)

    def full(x: ArrayLike) -> FloatOrArray:
        return _out(np.broadcast_to(np.asarray(x, dtype=float), shape).copy())

    return FiniteSizeRate(
        key_rate_bits_per_symbol=_out(key),
        mutual_information_bits=full(info),
        holevo_worst_bits=full(chi),
        delta_bits=full(delta),
        transmittance_min=full(worst.transmittance_min),
        excess_noise_max_snu=full(worst.excess_noise_max_snu),
        key_symbols=full(n),
        estimation_symbols=full(m),
        epsilon_total=security.total_lgg(),
    )
