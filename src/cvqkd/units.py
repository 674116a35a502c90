"""Unit conversions: the only place dB↔linear, dBm↔W, km↔m and λ↔ν live.

Inside cvqkd everything is SI and linear; dB, dBm, km and nm appear only at the edges
(configuration, CLI, plots) and in names that say so. All functions accept floats or numpy
arrays.

Example:
    >>> round(db_to_linear(-3.0), 4)
    0.5012
    >>> round(dbm_to_watt(0.0), 6)
    0.001
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Planck constant [J s] (exact, SI 2019).
PLANCK_J_S = 6.62607015e-34
#: Speed of light in vacuum [m/s] (exact).
SPEED_OF_LIGHT_M_S = 299_792_458.0
#: Boltzmann constant [J/K] (exact, SI 2019).
BOLTZMANN_J_K = 1.380649e-23

FloatOrArray = float | NDArray[np.float64]


def _out(x: NDArray[np.float64]) -> FloatOrArray:
    return float(x) if x.ndim == 0 else x


def db_to_linear(db: ArrayLike) -> FloatOrArray:
    """Power ratio from decibels: 10^(dB/10). ``db_to_linear(-10) == 0.1``."""
    return _out(np.power(10.0, np.asarray(db, dtype=float) / 10.0))


def linear_to_db(ratio: ArrayLike) -> FloatOrArray:
    """Decibels from a power ratio: 10 log10(ratio). ``linear_to_db(0.5) ≈ -3.01``."""
    return _out(10.0 * np.log10(np.asarray(ratio, dtype=float)))


def dbm_to_watt(dbm: ArrayLike) -> FloatOrArray:
    """Power in W from dBm: 1 mW · 10^(dBm/10)."""
    return _out(1e-3 * np.power(10.0, np.asarray(dbm, dtype=float) / 10.0))


def watt_to_dbm(watt: ArrayLike) -> FloatOrArray:
    """Power in dBm from W."""
    return _out(10.0 * np.log10(np.asarray(watt, dtype=float) / 1e-3))


def km_to_m(km: ArrayLike) -> FloatOrArray:
    """Metres from kilometres."""
    return _out(np.asarray(km, dtype=float) * 1e3)


def m_to_km(m: ArrayLike) -> FloatOrArray:
    """Kilometres from metres."""
    return _out(np.asarray(m, dtype=float) * 1e-3)


def nm_to_m(nm: ArrayLike) -> FloatOrArray:
    """Metres from nanometres."""
    return _out(np.asarray(nm, dtype=float) * 1e-9)


def m_to_nm(m: ArrayLike) -> FloatOrArray:
    """Nanometres from metres."""
    return _out(np.asarray(m, dtype=float) * 1e9)


def wavelength_m_to_frequency_hz(wavelength_m: ArrayLike) -> FloatOrArray:
    """Optical frequency ν = c/λ [Hz] from vacuum wavelength [m]."""
    return _out(SPEED_OF_LIGHT_M_S / np.asarray(wavelength_m, dtype=float))


def frequency_hz_to_wavelength_m(frequency_hz: ArrayLike) -> FloatOrArray:
    """Vacuum wavelength λ = c/ν [m] from optical frequency [Hz]."""
    return _out(SPEED_OF_LIGHT_M_S / np.asarray(frequency_hz, dtype=float))


def wavelength_nm_to_frequency_thz(wavelength_nm: ArrayLike) -> FloatOrArray:
    """Edge helper: frequency [THz] from wavelength [nm] (1550 nm → 193.414 THz)."""
    return _out(SPEED_OF_LIGHT_M_S / (np.asarray(wavelength_nm, dtype=float) * 1e-9) / 1e12)


def frequency_thz_to_wavelength_nm(frequency_thz: ArrayLike) -> FloatOrArray:
    """Edge helper: wavelength [nm] from frequency [THz]."""
    return _out(SPEED_OF_LIGHT_M_S / (np.asarray(frequency_thz, dtype=float) * 1e12) * 1e9)


def attenuation_db_per_km_to_per_m(loss_db_per_km: ArrayLike) -> FloatOrArray:
    """Field-power attenuation α [1/m] from dB/km: α = α_dB · ln(10)/10 / 1000.

    0.2 dB/km → 4.605e-5 /m (PHYSICS.md conventions).
    """
    return _out(np.asarray(loss_db_per_km, dtype=float) * np.log(10.0) / 10.0 / 1e3)


def transmittance_from_loss_db(loss_db: ArrayLike) -> FloatOrArray:
    """Power transmittance T = 10^(−loss/10) from a loss in dB (positive = loss)."""
    return _out(np.power(10.0, -np.asarray(loss_db, dtype=float) / 10.0))


def loss_db_from_transmittance(transmittance: ArrayLike) -> FloatOrArray:
    """Loss in dB (positive) from a power transmittance T in (0, 1]."""
    return _out(-10.0 * np.log10(np.asarray(transmittance, dtype=float)))


def photon_energy_j(*, wavelength_m: ArrayLike) -> FloatOrArray:
    """Photon energy h c / λ [J]."""
    return _out(PLANCK_J_S * SPEED_OF_LIGHT_M_S / np.asarray(wavelength_m, dtype=float))
