"""Four-wave mixing (FWM) among co-propagating classical channels, landing on the quantum one.

Inoue, J. Lightwave Technol. 10, 1553 (1992), the formula Eraerds et al., NJP 12, 063027
(2010) use for QKD coexistence (their Eqs. 4–6; the search tool found no copy of that paper's
text, so the form below is Inoue's, checked against an independent slow implementation in
tests/unit/test_link_fwm.py): the product of channels i, j, k at f_F = f_i + f_j − f_k has power

    P_F = η_ijk (D_x γ L_eff / 3)² P_i P_j P_k e^{−αL},    L_eff = (1 − e^{−αL})/α,
    η_ijk = α²/(α² + Δβ²) · [1 + 4 e^{−αL} sin²(ΔβL/2)/(1 − e^{−αL})²],

D_x = 3 for the degenerate product (i = j), 6 otherwise (k ≠ i, j), co-polarised channels
(worst case). The phase mismatch Δβ = β(ω_i) + β(ω_j) − β(ω_k) − β(ω_F) is computed exactly for
β(ω) = β₂(ω − ω₀)²/2 + β₃(ω − ω₀)³/6, β₂ = −λ₀² D/(2πc), β₃ = λ₀⁴ (S + 2D/λ₀)/(2πc)² (D and
S = dD/dλ at λ₀), which gives Δβ = −β₂(ω̄)(ω_i − ω_k)(ω_j − ω_k) with β₂ at ω̄ = (ω_i + ω_j)/2.
Inoue's closed form Δβ = (2πλ²/c)|Δf_ik||Δf_jk|[D + (λ²/2c)(dD/dλ)(|Δf_ik| + |Δf_jk|)] is the
same when f_i and f_j lie on the same side of f_k; its absolute values misplace β₂ otherwise,
which matters near the zero-dispersion wavelength (verified in tests/unit/test_link_fwm.py).

Spectrum: each classical channel occupies ``signal_bandwidth_hz`` (flat); a product's spectrum
is their triple convolution, taken as a Gaussian of the same variance σ² = 3B²/12. Photons per
LO mode at the fibre output: N = S_F(f_q − f_F)/(hν), all products summed (the product is
taken aligned with the LO: worst case).

Example:
    >>> from cvqkd.link.fibre import Fibre
    >>> f = Fibre(length_m=25e3, dispersion_s_per_m2=0.0, dispersion_slope_s_per_m3=0.0)
    >>> products = fwm_products(frequencies_hz=[193.1e12, 193.2e12])
    >>> sorted({round(p / 1e9) for p in products["frequency_hz"]})
    [193000, 193300]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.units import PLANCK_J_S, SPEED_OF_LIGHT_M_S

if TYPE_CHECKING:
    from cvqkd.link.fibre import Fibre


def fwm_products(
    *, frequencies_hz: ArrayLike
) -> dict[str, NDArray[np.float64] | NDArray[np.int64]]:
    """All distinct FWM products: indices i ≤ j, k ∉ {i, j}, f_F = f_i + f_j − f_k, and the
    degeneracy factor D_x (3 if i = j else 6)."""
    f = np.asarray(frequencies_hz, dtype=float)
    n = f.size
    i, j, k = np.meshgrid(np.arange(n), np.arange(n), np.arange(n), indexing="ij")
    keep = (i <= j) & (k != i) & (k != j)
    i, j, k = i[keep], j[keep], k[keep]
    return {
        "i": i,
        "j": j,
        "k": k,
        "frequency_hz": f[i] + f[j] - f[k],
        "degeneracy": np.where(i == j, 3.0, 6.0),
    }


def phase_matching_efficiency(
    *, delta_beta_per_m: ArrayLike, attenuation_per_m: float, length_m: float
) -> NDArray[np.float64]:
    """Inoue's η = α²/(α² + Δβ²)[1 + 4 e^{−αL} sin²(ΔβL/2)/(1 − e^{−αL})²]; η(Δβ=0) = 1."""
    db = np.asarray(delta_beta_per_m, dtype=float)
    a, el = attenuation_per_m, np.exp(-attenuation_per_m * length_m)
    return (a**2 / (a**2 + db**2)) * (
        1.0 + 4.0 * el * np.sin(db * length_m / 2.0) ** 2 / (1.0 - el) ** 2
    )


def fwm_photons_per_mode(
    *,
    frequencies_hz: ArrayLike,
    launch_powers_w: ArrayLike,
    quantum_frequency_hz: float,
    fibre: Fibre,
    signal_bandwidth_hz: float = 32e9,
    cutoff_sigmas: float = 8.0,
) -> float:
    """FWM photons per LO mode at the quantum frequency, at the fibre output (module doc)."""
    f = np.asarray(frequencies_hz, dtype=float)
    p = np.asarray(launch_powers_w, dtype=float)
    if f.size < 2:
        return 0.0
    sigma = np.sqrt(3.0 / 12.0) * signal_bandwidth_hz
    cut = cutoff_sigmas * sigma
    if not (2 * f.min() - f.max() - cut < quantum_frequency_hz < 2 * f.max() - f.min() + cut):
        return 0.0  # no product can reach the quantum channel
    ff3 = f[:, None, None] + f[None, :, None] - f[None, None, :]
    i, j, k = np.nonzero(np.abs(ff3 - quantum_frequency_hz) < cut)
    keep = (i <= j) & (k != i) & (k != j)
    i, j, k = i[keep], j[keep], k[keep]
    if i.size == 0:
        return 0.0
    ff = ff3[i, j, k]
    dx = np.where(i == j, 3.0, 6.0)
    lam0 = fibre.dispersion_reference_m
    d, s = fibre.dispersion_s_per_m2, fibre.dispersion_slope_s_per_m3
    b2 = -(lam0**2) * d / (2 * np.pi * SPEED_OF_LIGHT_M_S)
    b3 = lam0**4 * (s + 2 * d / lam0) / (2 * np.pi * SPEED_OF_LIGHT_M_S) ** 2
    w0 = 2 * np.pi * SPEED_OF_LIGHT_M_S / lam0
    # exact for the cubic β(ω), written without cancellation (module doc)
    wi, wj, wk = 2 * np.pi * f[i], 2 * np.pi * f[j], 2 * np.pi * f[k]
    dbeta = -(wi - wk) * (wj - wk) * (b2 + b3 * ((wi + wj) / 2 - w0))
    lam_q = SPEED_OF_LIGHT_M_S / quantum_frequency_hz
    alpha = float(fibre.attenuation_per_m(wavelength_m=lam_q))
    length = fibre.length_m
    leff = float(fibre.effective_length_m(wavelength_m=lam_q))
    eta = phase_matching_efficiency(
        delta_beta_per_m=dbeta, attenuation_per_m=alpha, length_m=length
    )
    gamma = fibre.nonlinear_coefficient_per_w_m
    p_f = eta * (dx * gamma * leff / 3.0) ** 2 * p[i] * p[j] * p[k] * np.exp(-alpha * length)
    density = (
        p_f
        * np.exp(-((quantum_frequency_hz - ff) ** 2) / (2 * sigma**2))
        / (np.sqrt(2 * np.pi) * sigma)
    )
    return float(density.sum() / (PLANCK_J_S * quantum_frequency_hz))
