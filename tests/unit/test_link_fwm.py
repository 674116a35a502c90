"""Four-wave mixing (cvqkd.link.fwm): where products land, the phase-matching efficiency, and
the photon count against a slow loop over Inoue's formula."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cvqkd.link.fibre import Fibre
from cvqkd.link.fwm import fwm_photons_per_mode, fwm_products, phase_matching_efficiency
from cvqkd.link.wdm import channel_comb
from cvqkd.units import PLANCK_J_S, SPEED_OF_LIGHT_M_S


def test_products_land_on_fi_plus_fj_minus_fk() -> None:
    f = np.array([193.1e12, 193.2e12, 193.35e12, 193.7e12])  # unequal spacing
    prod = fwm_products(frequencies_hz=f)
    brute = {
        (min(i, j), max(i, j), k): f[i] + f[j] - f[k]
        for i, j, k in itertools.product(range(4), repeat=3)
        if k != i and k != j
    }
    got = {
        (int(i), int(j), int(k)): ff
        for i, j, k, ff in zip(prod["i"], prod["j"], prod["k"], prod["frequency_hz"], strict=True)
    }
    assert got.keys() == brute.keys()
    for key, ff in brute.items():
        assert got[key] == ff
    # N channels: N²(N−1)/2 distinct products (Inoue 1992): 4 → 24.
    assert len(got) == 4 * 4 * 3 // 2
    deg = prod["degeneracy"]
    assert set(np.unique(deg)) == {3.0, 6.0}
    assert np.all((deg == 3.0) == (prod["i"] == prod["j"]))


def test_equally_spaced_products_fall_on_the_grid() -> None:
    chans = channel_comb(count=3, spacing_hz=100e9, start_frequency_hz=193.1e12)
    f = np.array([c.frequency_hz for c in chans])
    pf = np.unique(np.round(fwm_products(frequencies_hz=f)["frequency_hz"] / 1e9))
    assert set(pf) == {192900, 193000, 193100, 193200, 193300, 193400, 193500}


def test_phase_matching_efficiency_limits() -> None:
    a, length = 4.6e-5, 50e3
    assert phase_matching_efficiency(
        delta_beta_per_m=0.0, attenuation_per_m=a, length_m=length
    ) == pytest.approx(1.0, rel=1e-12)
    # Large mismatch: η → α²/(α² + Δβ²) × [1 + small], decreasing.
    e = phase_matching_efficiency(
        delta_beta_per_m=np.array([1e-4, 1e-3, 1e-2]), attenuation_per_m=a, length_m=length
    )
    assert np.all(np.diff(e) < 0)


def _slow_inoue(f: np.ndarray, p: np.ndarray, fq: float, fibre: Fibre, bw: float) -> float:
    """Independent reference: explicit loops over Inoue 1992's power formula, with the phase
    mismatch Δβ = 4π² (f_i − f_k)(f_j − f_k) β₂(λ̄), β₂ = −λ̄² D(λ̄)/(2πc) taken from the fibre's
    D(λ) at the mean frequency of i and j (exact for a cubic β(ω); it equals Inoue's
    |Δf_ik||Δf_jk|[D + (λ²/2c) S (|Δf_ik| + |Δf_jk|)] when f_i, f_j sit on the same side of
    f_k), and a Gaussian product spectrum with σ = B/2."""
    c = SPEED_OF_LIGHT_M_S
    lam_q = c / fq
    a = float(fibre.attenuation_per_m(wavelength_m=lam_q))
    length = fibre.length_m
    leff = (1 - np.exp(-a * length)) / a
    gam = fibre.nonlinear_coefficient_per_w_m
    sigma = bw / 2
    total = 0.0
    n = len(f)
    for i in range(n):
        for j in range(i, n):
            for k in range(n):
                if k in (i, j):
                    continue
                ff = f[i] + f[j] - f[k]
                lam_m = c / ((f[i] + f[j]) / 2)
                d = float(fibre.dispersion_s_per_m2_at(wavelength_m=lam_m))
                beta2 = -(lam_m**2) * d / (2 * np.pi * c)
                db = 4 * np.pi**2 * (f[i] - f[k]) * (f[j] - f[k]) * beta2
                el = np.exp(-a * length)
                eta = (
                    a**2
                    / (a**2 + db**2)
                    * (1 + 4 * el * np.sin(db * length / 2) ** 2 / (1 - el) ** 2)
                )
                dx = 3.0 if i == j else 6.0
                pf = eta * (dx * gam * leff / 3) ** 2 * p[i] * p[j] * p[k] * el
                dens = (
                    pf * np.exp(-((fq - ff) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
                )
                total += dens / (PLANCK_J_S * fq)
    return total


@pytest.mark.parametrize("dispersion_ps", [0.0, 2.0, 16.7])
@pytest.mark.parametrize("slope_ps", [0.0, 0.056])
def test_photons_agree_with_slow_inoue_loop(dispersion_ps: float, slope_ps: float) -> None:
    fibre = Fibre(
        length_m=25e3,
        dispersion_s_per_m2=dispersion_ps * 1e-6,
        dispersion_slope_s_per_m3=slope_ps * 1e3,
    )
    f = np.array([193.1e12, 193.2e12, 193.3e12, 193.5e12])
    p = np.array([1e-3, 2e-3, 1e-3, 0.5e-3])
    fq = 193.4e12  # on the grid: several products land here
    got = fwm_photons_per_mode(
        frequencies_hz=f,
        launch_powers_w=p,
        quantum_frequency_hz=fq,
        fibre=fibre,
        signal_bandwidth_hz=32e9,
    )
    ref = _slow_inoue(f, p, fq, fibre, 32e9)
    assert ref > 0
    # The library expands β(ω) to third order about 1550 nm; the reference takes D(λ) linear
    # in λ: the two β₂ agree to O(Δλ/λ) ≈ 1e-3, and ΔβL enters η smoothly: 1 % tolerance.
    assert got == pytest.approx(ref, rel=0.01)


def test_quantum_channel_off_the_products_sees_no_fwm() -> None:
    fibre = Fibre(length_m=25e3, dispersion_s_per_m2=0.0, dispersion_slope_s_per_m3=0.0)
    f = np.array([193.1e12, 193.2e12, 193.3e12])
    p = np.full(3, 1e-3)
    on = fwm_photons_per_mode(
        frequencies_hz=f,
        launch_powers_w=p,
        quantum_frequency_hz=193.4e12,
        fibre=fibre,
        signal_bandwidth_hz=10e9,
    )
    off = fwm_photons_per_mode(
        frequencies_hz=f,
        launch_powers_w=p,
        quantum_frequency_hz=193.45e12,
        fibre=fibre,
        signal_bandwidth_hz=10e9,
    )
    assert on > 0
    assert off < 1e-6 * on  # 50 GHz = 10 σ away from the nearest product


def test_zero_dispersion_cubic_power_law() -> None:
    fibre = Fibre(length_m=10e3, dispersion_s_per_m2=0.0, dispersion_slope_s_per_m3=0.0)
    f = np.array([193.1e12, 193.2e12])
    kw = dict(frequencies_hz=f, quantum_frequency_hz=193.3e12, fibre=fibre)
    one = fwm_photons_per_mode(launch_powers_w=np.full(2, 1e-3), **kw)  # type: ignore[arg-type]
    two = fwm_photons_per_mode(launch_powers_w=np.full(2, 2e-3), **kw)  # type: ignore[arg-type]
    assert two / one == pytest.approx(8.0, rel=1e-12)  # P_F ∝ P_i P_j P_k
