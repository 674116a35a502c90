"""GG02 key rate: Gaussian modulation, reverse reconciliation, collective attacks, asymptotic.

Formulas exactly as PHYSICS.md "GG02" (Lodewyck et al., PRA 76, 042305 (2007), Eqs. (4)-(9);
Fossier et al., J. Phys. B 42, 114014 (2009); Laudenbach et al., Adv. Quantum Technol. 1,
1800011 (2018), Sec. 4). Conventions: variances in shot-noise units (vacuum = 1),
``V = V_A + 1``, excess noise ``ξ`` referred to the channel INPUT, entropies in bits.

Every function is vectorised: the physics arguments broadcast against each other with numpy
rules, so a sweep of 10^6 points is one call. A scalar input gives a ``float`` back.

Numerics (tested in tests/unit/test_keyrate_gaussian.py):

* ``G(ν)`` is evaluated as ``g(x) = log2(1 + x) + x log2(1 + 1/x)`` with ``x = (ν − 1)/2``,
  using ``log1p``; this is exact at ``ν = 1`` (``G = 0``), accurate for ``ν − 1 ~ 1e-12`` and
  does not overflow for ``ν → ∞``.
* The smaller eigenvalue of each pair is taken as ``λ2² = B / λ1²`` (and ``λ4² = D / λ3²``)
  instead of ``½[A − √(A² − 4B)]``, which loses all digits when ``A² ≫ 4B`` (large ``V_A``).
* ``I_AB`` uses ``log1p(V_A / (1 + χ_tot))``, accurate for small ``V_A``.

Example:
    >>> r = gg02(transmittance=0.302, excess_noise_snu=0.005, modulation_variance_snu=18.5,
    ...          detector_efficiency=0.606, electronic_noise_snu=0.041,
    ...          reconciliation_efficiency=0.898)
    >>> round(r.key_rate_bits_per_symbol, 4)   # Lodewyck 2007: 12.3 kb/s at 350 kHz
    0.0352
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError
from cvqkd.units import FloatOrArray

Detection = Literal["homodyne", "heterodyne"]
_LN2 = float(np.log(2.0))

__all__ = [
    "Detection",
    "GG02Rate",
    "conditional_eigenvalues",
    "detector_noise_snu",
    "g_entropy_bits",
    "gg02",
    "holevo_bits",
    "mutual_information_bits",
    "symplectic_eigenvalues_ab",
]


@dataclass(frozen=True)
class GG02Rate:
    """Asymptotic GG02 result (bits per symbol; arrays when the inputs were arrays).

    ``key_rate_bits_per_symbol = β I_AB − χ_BE``; it may be negative and is returned as is
    (the caller decides to abort).
    """

    mutual_information_bits: FloatOrArray
    holevo_bits: FloatOrArray
    key_rate_bits_per_symbol: FloatOrArray


def _out(x: NDArray[np.float64]) -> FloatOrArray:
    return float(x) if np.ndim(x) == 0 else x


def _check_detection(detection: str) -> None:
    if detection not in ("homodyne", "heterodyne"):
        raise ConfigError(f"detection must be 'homodyne' or 'heterodyne', got {detection!r}")


def g_entropy_bits(nu: ArrayLike) -> FloatOrArray:
    """Von Neumann entropy [bits] of a thermal mode with symplectic eigenvalue ``ν ≥ 1`` (SNU).

    ``G(ν) = ((ν+1)/2) log2((ν+1)/2) − ((ν−1)/2) log2((ν−1)/2)``, ``G(1) = 0``
    (Weedbrook et al., RMP 84, 621 (2012), Eq. (46)). Values ``ν < 1`` (rounding) give 0.

    Example: ``g_entropy_bits(3.0) == 2.0`` (a thermal state with mean photon number 1).
    """
    x = 0.5 * (np.asarray(nu, dtype=float) - 1.0)
    pos = x > 0.0
    xs = np.where(pos, x, 1.0)
    val = (np.log1p(xs) + xs * np.log1p(1.0 / xs)) / _LN2
    return _out(np.where(pos, val, 0.0))


def detector_noise_snu(
    *,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    detection: Detection = "homodyne",
) -> FloatOrArray:
    """Detection noise referred to Bob's input, ``χ_hom`` or ``χ_het`` [SNU].

    ``χ_hom = (1 − η)/η + v_el/η``; ``χ_het = [1 + (1 − η) + 2 v_el]/η`` (Lodewyck 2007 Eq. (6);
    Fossier 2009). The heterodyne 3 dB penalty is the leading 1 in ``χ_het``.

    Example: ``detector_noise_snu(detection="heterodyne") == 1.0`` (ideal heterodyne).
    """
    _check_detection(detection)
    eta = np.asarray(detector_efficiency, dtype=float)
    vel = np.asarray(electronic_noise_snu, dtype=float)
    if detection == "homodyne":
        return _out((1.0 - eta + vel) / eta)
    return _out((2.0 - eta + 2.0 * vel) / eta)


def mutual_information_bits(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    detection: Detection = "homodyne",
) -> FloatOrArray:
    """Alice–Bob mutual information ``I_AB`` [bits/symbol].

    ``I_hom = ½ log2[(V + χ_tot)/(1 + χ_tot)]``, ``I_het = log2[(V + χ_tot)/(1 + χ_tot)]``,
    ``χ_tot = 1/T − 1 + ξ + χ_det/T`` (Lodewyck 2007 Eq. (5)). Detector noise always counts here
    (trusted or not).

    Example: ``mutual_information_bits(transmittance=1, excess_noise_snu=0,
    modulation_variance_snu=3)`` is ``½ log2(4) = 1.0``.
    """
    t = np.asarray(transmittance, dtype=float)
    xi = np.asarray(excess_noise_snu, dtype=float)
    va = np.asarray(modulation_variance_snu, dtype=float)
    chi_det = np.asarray(
        detector_noise_snu(
            detector_efficiency=detector_efficiency,
            electronic_noise_snu=electronic_noise_snu,
            detection=detection,
        )
    )
    chi_tot = 1.0 / t - 1.0 + xi + chi_det / t
    info = np.log1p(va / (1.0 + chi_tot)) / _LN2
    if detection == "homodyne":
        info = 0.5 * info
    return _out(info)


def symplectic_eigenvalues_ab(
    *, transmittance: ArrayLike, excess_noise_snu: ArrayLike, modulation_variance_snu: ArrayLike
) -> tuple[FloatOrArray, FloatOrArray]:
    """Symplectic eigenvalues ``(λ1, λ2)`` of the EPR-equivalent state shared by Alice and Bob.

    ``A = V²(1 − 2T) + 2T + T²(V + χ_line)²``, ``B = T²(Vχ_line + 1)²``,
    ``λ1,2² = ½[A ± √(A² − 4B)]`` (Lodewyck 2007 Eq. (7)), with ``λ2² = B/λ1²`` for accuracy.

    Example: for ``T = 1, ξ = 0`` the state is pure: ``λ1 = λ2 = 1``.
    """
    t = np.asarray(transmittance, dtype=float)
    xi = np.asarray(excess_noise_snu, dtype=float)
    v = np.asarray(modulation_variance_snu, dtype=float) + 1.0
    chi_line = 1.0 / t - 1.0 + xi
    # A written without the V²(1 − 2T) + T²V² cancellation: (V(1 − T))² + 2T + T²χ(2V + χ).
    a = (v * (1.0 - t)) ** 2 + 2.0 * t + t * t * chi_line * (2.0 * v + chi_line)
    sqrt_b = t * (v * chi_line + 1.0)
    l1_sq, l2_sq = _pair(a, sqrt_b * sqrt_b)
    return _out(np.sqrt(l1_sq)), _out(np.sqrt(l2_sq))


def _pair(
    trace: NDArray[np.float64], det: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Roots of x² − trace·x + det (both ≥ 1 here), larger one first, smaller via det/larger."""
    disc = np.sqrt(np.maximum(trace * trace - 4.0 * det, 0.0))
    big = 0.5 * (trace + disc)
    small = det / big
    # Rounding may put a physically ≥ 1 eigenvalue a few ulps below 1; G() maps that to 0.
    return big, small


def conditional_eigenvalues(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    detection: Detection = "homodyne",
) -> tuple[FloatOrArray, FloatOrArray]:
    """Symplectic eigenvalues ``(λ3, λ4)`` of Eve's purification conditioned on Bob's result.

    Homodyne: ``C = [V√B + T(V + χ_line) + Aχ_hom]/[T(V + χ_tot)]``,
    ``D = √B(V + √B χ_hom)/[T(V + χ_tot)]``. Heterodyne:
    ``C = [Aχ_het² + B + 1 + 2χ_het(V√B + T(V + χ_line)) + 2T(V² − 1)]/[T(V + χ_tot)]²``,
    ``D = [(V + √B χ_het)/(T(V + χ_tot))]²``; ``λ3,4² = ½[C ± √(C² − 4D)]`` (Lodewyck 2007
    Eq. (9); Fossier 2009 for heterodyne; PHYSICS.md). ``λ5 = 1`` contributes nothing.

    Example: ideal homodyne (η = 1, v_el = 0) gives ``λ4 = 1``.
    """
    _check_detection(detection)
    t = np.asarray(transmittance, dtype=float)
    xi = np.asarray(excess_noise_snu, dtype=float)
    v = np.asarray(modulation_variance_snu, dtype=float) + 1.0
    chi_det = np.asarray(
        detector_noise_snu(
            detector_efficiency=detector_efficiency,
            electronic_noise_snu=electronic_noise_snu,
            detection=detection,
        )
    )
    chi_line = 1.0 / t - 1.0 + xi
    chi_tot = chi_line + chi_det / t
    a = (v * (1.0 - t)) ** 2 + 2.0 * t + t * t * chi_line * (2.0 * v + chi_line)
    sqrt_b = t * (v * chi_line + 1.0)
    b = sqrt_b * sqrt_b
    denom = t * (v + chi_tot)
    if detection == "homodyne":
        c = (v * sqrt_b + t * (v + chi_line) + a * chi_det) / denom
        d = sqrt_b * (v + sqrt_b * chi_det) / denom
    else:
        c = (
            a * chi_det**2
            + b
            + 1.0
            + 2.0 * chi_det * (v * sqrt_b + t * (v + chi_line))
            + 2.0 * t * (v * v - 1.0)
        ) / denom**2
        d = ((v + sqrt_b * chi_det) / denom) ** 2
    l3_sq, l4_sq = _pair(c, d)
    return _out(np.sqrt(l3_sq)), _out(np.sqrt(l4_sq))


def holevo_bits(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    detection: Detection = "homodyne",
    trusted_detector: bool = True,
) -> FloatOrArray:
    """Holevo bound ``χ_BE = G(λ1) + G(λ2) − G(λ3) − G(λ4)`` [bits/symbol], reverse reconciliation.

    With ``trusted_detector=False`` Eve is credited with the detector noise: ``η → 1``,
    ``v_el → 0`` here (PHYSICS.md conventions), while :func:`mutual_information_bits` keeps them.

    Example: ``holevo_bits(transmittance=1, excess_noise_snu=0, modulation_variance_snu=10)``
    is 0 (nothing leaks on a lossless, noiseless channel).
    """
    if not trusted_detector:
        detector_efficiency, electronic_noise_snu = 1.0, 0.0
    l1, l2 = symplectic_eigenvalues_ab(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        modulation_variance_snu=modulation_variance_snu,
    )
    l3, l4 = conditional_eigenvalues(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        modulation_variance_snu=modulation_variance_snu,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        detection=detection,
    )
    g = g_entropy_bits
    chi = np.asarray(g(l1)) + np.asarray(g(l2)) - np.asarray(g(l3)) - np.asarray(g(l4))
    return _out(chi)


def gg02(
    *,
    transmittance: ArrayLike,
    excess_noise_snu: ArrayLike,
    modulation_variance_snu: ArrayLike,
    detector_efficiency: ArrayLike = 1.0,
    electronic_noise_snu: ArrayLike = 0.0,
    reconciliation_efficiency: ArrayLike = 1.0,
    detection: Detection = "homodyne",
    trusted_detector: bool = True,
) -> GG02Rate:
    """Asymptotic GG02 key rate ``K = β I_AB − χ_BE`` [bits/symbol] (PHYSICS.md "GG02").

    Args (all keyword-only, floats or broadcastable arrays):
        transmittance: channel power transmittance T in (0, 1].
        excess_noise_snu: ξ at the channel input [SNU].
        modulation_variance_snu: Alice's modulation variance V_A per quadrature [SNU].
        detector_efficiency: η in (0, 1].
        electronic_noise_snu: v_el [SNU].
        reconciliation_efficiency: β.
        detection: ``"homodyne"`` or ``"heterodyne"``.
        trusted_detector: if False, η and v_el are attributed to Eve in χ_BE.

    Example:
        >>> round(gg02(transmittance=0.1, excess_noise_snu=0.0,
        ...            modulation_variance_snu=1e4).key_rate_bits_per_symbol, 5)
        0.07599
    """
    info = mutual_information_bits(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        modulation_variance_snu=modulation_variance_snu,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        detection=detection,
    )
    chi = holevo_bits(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        modulation_variance_snu=modulation_variance_snu,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        detection=detection,
        trusted_detector=trusted_detector,
    )
    beta = np.asarray(reconciliation_efficiency, dtype=float)
    info_arr, chi_arr = np.broadcast_arrays(np.asarray(info), np.asarray(chi))
    key = beta * info_arr - chi_arr
    shape = np.shape(key)
    return GG02Rate(
        mutual_information_bits=_out(np.broadcast_to(info_arr, shape).copy()),
        holevo_bits=_out(np.broadcast_to(chi_arr, shape).copy()),
        key_rate_bits_per_symbol=_out(key),
    )
