"""Spontaneous Raman scattering from classical channels into the quantum channel's LO mode.

Closed forms (Kumar, Qin, Alléaume, NJP 17, 043027 (2015), Eqs. for N_fwd/N_bwd; Eraerds et al.,
NJP 12, 063027 (2010)), generalised to different attenuations α_c (classical) and α_q
(quantum) — they reduce to Kumar's L e^{−αL} and (1 − e^{−2αL})/(2α) when α_c = α_q::

    photons per LO mode at the fibre output (one classical channel, power P at its launch end)
    N_fwd = p (λ_q³/(h c²)) β_R P · e^{−α_q L} (1 − e^{−(α_c − α_q) L})/(α_c − α_q)
    N_bwd = p (λ_q³/(h c²)) β_R P · (1 − e^{−(α_c + α_q) L})/(α_c + α_q)

β_R [1/m²] (1/(km·nm) = 1e6 /m²) is the Raman coefficient per unit
fibre length and unit bandwidth (both polarisations). ``p`` is the fraction of unpolarised
Raman light that the single-polarisation LO selects: ½ (Kumar 2015, the default,
``lo_polarisation_factor=0.5``); Laudenbach et al. 2018 omit it (p = 1, a factor 2 more
conservative). The receiver bandwidth cancels: coherent detection sees only its LO mode.

Raman spectrum: β_R(ν_c → ν_q) = K · g_R(|Δν|) · (n_th + 1) on the Stokes side (ν_q < ν_c) and
K · g_R(|Δν|) · n_th on the anti-Stokes side, n_th = 1/(exp(h|Δν|/k_B T) − 1). g_R is the
Hollenbeck–Cantrell multiple-vibrational-mode model of silica (JOSA B 19, 2886 (2002), Table 1:
13 modes with positions, amplitudes, Gaussian and Lorentzian widths), whose response
h_R(t) = Σ (A'_i/ω_i) e^{−γ_i t} e^{−Γ_i² t²/4} sin(ω_i t), A'_i = A_i ω_i, γ_i = π c L_i,
Γ_i = π c G_i, has the exact transform Im H(Ω) = Σ (A_i/2)[Re K_i(Ω − ω_i) − Re K_i(Ω + ω_i)] with
K_i(x) = (√π/Γ_i) w((x + iγ_i)/Γ_i) (w: Faddeeva function). K is fixed by the measured anchor
β_R = 3e-9 /(km·nm) for a 1550.12 nm classical channel seen at 1531.12 nm (anti-Stokes; Kumar
2015, measured 1.5–3.1e-9 across the C band). A user table of measured β_R vs offset replaces
the model (:class:`RamanModel` ``measured_offsets_hz``/``measured_coefficients_per_m2``).
Not modelled: the ~ν_pump scaling of the cross-section and Rayleigh-backscattered Raman.

Example (the anchor itself, and the same pair with the channels swapped: Stokes side):
    >>> m = RamanModel()
    >>> from cvqkd.units import SPEED_OF_LIGHT_M_S as c
    >>> round(m.coefficient_per_km_nm(classical_frequency_hz=c / 1550.12e-9,
    ...     quantum_frequency_hz=c / 1531.12e-9) * 1e9, 3)
    3.0
    >>> round(m.coefficient_per_km_nm(classical_frequency_hz=c / 1531.12e-9,
    ...     quantum_frequency_hz=c / 1550.12e-9) * 1e9, 2)
    4.4
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import wofz

from cvqkd.errors import ConfigError
from cvqkd.units import (
    BOLTZMANN_J_K,
    PLANCK_J_S,
    SPEED_OF_LIGHT_M_S,
    FloatOrArray,
)

#: 1/(km·nm) in SI 1/m².
PER_KM_NM_IN_PER_M2 = 1.0 / (1e3 * 1e-9)

#: Hollenbeck & Cantrell (2002) Table 1: position [cm⁻¹], amplitude, Gaussian FWHM [cm⁻¹],
#: Lorentzian FWHM [cm⁻¹].
HOLLENBECK_CANTRELL_MODES = np.array(
    [
        [56.25, 1.00, 52.10, 17.37],
        [100.00, 11.40, 110.42, 38.81],
        [231.25, 36.67, 175.00, 58.33],
        [362.50, 67.67, 162.50, 54.17],
        [463.00, 74.00, 135.33, 45.11],
        [497.00, 4.50, 24.50, 8.17],
        [611.50, 6.80, 41.50, 13.83],
        [691.67, 4.60, 155.00, 51.67],
        [793.67, 4.20, 59.50, 19.83],
        [835.50, 4.50, 64.30, 21.43],
        [930.00, 2.70, 150.00, 50.00],
        [1080.00, 3.10, 91.00, 30.33],
        [1215.00, 3.00, 160.00, 53.33],
    ]
)

#: Below this detuning [Hz] the spectrum is evaluated at the floor (g → 0, n_th → ∞ limit).
_MIN_OFFSET_HZ = 1e9


def _gain_unnormalised(offset_hz: NDArray[np.float64]) -> NDArray[np.float64]:
    # Work in angular wavenumber units (rad/cm): Ω = 2π ν̃, γ = π L, Γ = π G (c cancels).
    nu_cm = np.abs(offset_hz)[..., None] / (SPEED_OF_LIGHT_M_S * 100.0)
    pos, amp, g_fwhm, l_fwhm = HOLLENBECK_CANTRELL_MODES.T
    om, om_i = 2 * np.pi * nu_cm, 2 * np.pi * pos
    big_g, small_g = np.pi * g_fwhm, np.pi * l_fwhm

    def k(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return (np.sqrt(np.pi) / big_g) * wofz((x + 1j * small_g) / big_g).real

    return np.sum((amp / 2) * (k(om - om_i) - k(om + om_i)), axis=-1)


@lru_cache(maxsize=1)
def _peak() -> float:
    grid = np.linspace(1e12, 20e12, 4001)
    return float(_gain_unnormalised(grid).max())


def raman_gain_shape(*, offset_hz: ArrayLike) -> FloatOrArray:
    """Silica Raman gain g_R(|Δν|) normalised to its peak (≈13.2 THz), Hollenbeck–Cantrell.

    >>> round(raman_gain_shape(offset_hz=13.2e12), 2)
    1.0
    """
    x = np.asarray(offset_hz, dtype=float)
    out = _gain_unnormalised(x) / _peak()
    return float(out) if out.ndim == 0 else out


def thermal_occupation(*, offset_hz: ArrayLike, temperature_k: float) -> FloatOrArray:
    """Bose–Einstein phonon occupation n_th = 1/(exp(h|Δν|/k_B T) − 1)."""
    x = PLANCK_J_S * np.abs(np.asarray(offset_hz, dtype=float)) / (BOLTZMANN_J_K * temperature_k)
    out = 1.0 / np.expm1(x)
    return float(out) if out.ndim == 0 else out


def _spectrum(offset_hz: NDArray[np.float64], temperature_k: float) -> NDArray[np.float64]:
    """g_R · (n_th + 1) for offset < 0 (Stokes: ν_q < ν_c), g_R · n_th for offset > 0."""
    mag = np.maximum(np.abs(offset_hz), _MIN_OFFSET_HZ)
    g = np.asarray(raman_gain_shape(offset_hz=mag))
    n = np.asarray(thermal_occupation(offset_hz=mag, temperature_k=temperature_k))
    return g * np.where(offset_hz < 0, n + 1.0, n)


@dataclass(frozen=True)
class RamanModel:
    """The Raman coefficient β_R(ν_c → ν_q) [1/m²]: the Hollenbeck–Cantrell spectrum with
    thermal weighting, calibrated at one measured anchor, or a measured table.

    ``measured_offsets_hz`` are ν_q − ν_c (positive: anti-Stokes) in increasing order with
    ``measured_coefficients_per_m2`` (β_R in 1/m²; 3e-9 /(km·nm) = 3e-3 /m²), linearly
    interpolated; an offset outside the table is a :class:`ConfigError`.
    """

    temperature_k: float = 300.0
    anchor_coefficient_per_m2: float = 3e-9 * PER_KM_NM_IN_PER_M2
    anchor_classical_wavelength_m: float = 1550.12e-9
    anchor_quantum_wavelength_m: float = 1531.12e-9
    measured_offsets_hz: tuple[float, ...] = ()
    measured_coefficients_per_m2: tuple[float, ...] = ()
    lo_polarisation_factor: float = 0.5

    def coefficient_per_m2(
        self, *, classical_frequency_hz: ArrayLike, quantum_frequency_hz: float
    ) -> FloatOrArray:
        """β_R [1/m²] for classical channels at ``classical_frequency_hz`` (vectorised)."""
        off = quantum_frequency_hz - np.asarray(classical_frequency_hz, dtype=float)
        if self.measured_offsets_hz:
            xs = np.asarray(self.measured_offsets_hz, dtype=float)
            ys = np.asarray(self.measured_coefficients_per_m2, dtype=float)
            if np.any((off < xs[0] - 1.0) | (off > xs[-1] + 1.0)):
                bad = off[(off < xs[0] - 1.0) | (off > xs[-1] + 1.0)][0] if off.ndim else off
                raise ConfigError(
                    f"measured Raman table covers offsets {xs[0] / 1e9:g}..{xs[-1] / 1e9:g} GHz "
                    f"but a classical channel sits at {float(bad) / 1e9:g} GHz from the quantum one"
                )
            out = np.interp(off, xs, ys)
        else:
            anchor_off = SPEED_OF_LIGHT_M_S * (
                1 / self.anchor_quantum_wavelength_m - 1 / self.anchor_classical_wavelength_m
            )
            scale = self.anchor_coefficient_per_m2 / float(
                _spectrum(np.asarray(anchor_off), self.temperature_k)
            )
            out = scale * _spectrum(off, self.temperature_k)
        return float(out) if np.ndim(out) == 0 else out

    def coefficient_per_km_nm(
        self, *, classical_frequency_hz: ArrayLike, quantum_frequency_hz: float
    ) -> FloatOrArray:
        """β_R in the customary 1/(km·nm) (edge unit)."""
        b = self.coefficient_per_m2(
            classical_frequency_hz=classical_frequency_hz,
            quantum_frequency_hz=quantum_frequency_hz,
        )
        return (
            float(b) / PER_KM_NM_IN_PER_M2
            if np.ndim(b) == 0
            else np.asarray(b) / PER_KM_NM_IN_PER_M2
        )


def _rel_integral(rate_per_m: NDArray[np.float64], length_m: float) -> NDArray[np.float64]:
    """(1 − e^{−r L})/r, → L as r → 0 (r may be negative)."""
    x = rate_per_m * length_m
    safe = np.where(np.abs(x) > 1e-12, x, 1.0)
    return length_m * np.where(np.abs(x) > 1e-12, -np.expm1(-x) / safe, 1.0 - x / 2)


def raman_photons_per_mode(
    *,
    launch_power_w: ArrayLike,
    coefficient_per_m2: ArrayLike,
    length_m: float,
    classical_attenuation_per_m: ArrayLike,
    quantum_attenuation_per_m: float,
    quantum_wavelength_m: float,
    counter_propagating: ArrayLike = False,
    lo_polarisation_factor: float = 0.5,
) -> FloatOrArray:
    """Raman photons per LO mode at the fibre output (Bob's end), per classical channel.

    Kumar 2015 closed forms generalised to α_c ≠ α_q (module doc); vectorised over channels.
    Multiply by the losses after the fibre and by η to get photons at Bob's detector; the
    excess noise there is 2N (SNU).

    >>> n = raman_photons_per_mode(launch_power_w=1e-3, coefficient_per_m2=3e-3,
    ...     length_m=25e3, classical_attenuation_per_m=4.605e-5,
    ...     quantum_attenuation_per_m=4.605e-5, quantum_wavelength_m=1531.12e-9)
    >>> round(2 * n * 10 ** -0.05 * 1e3, 3)   # Kumar 2015 forward anchor, 0.5 dB add/drop
    1.274
    """
    p = np.asarray(launch_power_w, dtype=float)
    b = np.asarray(coefficient_per_m2, dtype=float)
    ac = np.asarray(classical_attenuation_per_m, dtype=float)
    aq = float(quantum_attenuation_per_m)
    counter = np.asarray(counter_propagating, dtype=bool)
    fwd = np.exp(-aq * length_m) * _rel_integral(ac - aq, length_m)
    bwd = _rel_integral(ac + aq, length_m)
    geom = np.where(counter, bwd, fwd)
    mode = quantum_wavelength_m**3 / (PLANCK_J_S * SPEED_OF_LIGHT_M_S**2)
    out = lo_polarisation_factor * mode * b * p * geom
    return float(out) if out.ndim == 0 else out
