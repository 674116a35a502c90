"""Decoy-state BB84 (GYS set, Ma et al. 2005), MDI-QKD and background yields."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from cvqkd.errors import ConfigError
from cvqkd.keyrate.dv import (
    _i0m1,
    _mdi_terms,
    _mdi_x_gain,
    background_yield_from_noise,
    bb84_decoy,
    binary_entropy,
    mdi_qkd,
)
from cvqkd.units import PLANCK_J_S, SPEED_OF_LIGHT_M_S, transmittance_from_loss_db
from tests.conftest import load_reference

REF = load_reference("bb84_decoy_gys.json")
INP = REF["inputs"]


def _gys(length_km: float, **kw):  # type: ignore[no-untyped-def]
    return bb84_decoy(
        transmittance=transmittance_from_loss_db(INP["loss_db_per_km"] * length_km),
        detector_efficiency=INP["bob_efficiency"],
        background_yield=INP["background_yield"],
        misalignment_error=INP["misalignment_error"],
        error_correction_inefficiency=INP["error_correction_inefficiency"],
        sifting_factor=INP["sifting_factor"],
        **kw,
    )


def _max_distance(**kw) -> float:  # type: ignore[no-untyped-def]
    return float(brentq(lambda d: _gys(d, **kw).key_rate_bits_per_pulse, 50.0, 200.0, xtol=1e-6))


def test_gys_rates_match_recomputed_values() -> None:
    rec = REF["recomputed"]
    # file tolerance: relative 1%
    assert _gys(0.0).key_rate_bits_per_pulse == pytest.approx(
        rec["key_rate_bits_per_pulse_0km"], rel=1e-2
    )
    assert _gys(100.0).key_rate_bits_per_pulse == pytest.approx(
        rec["key_rate_bits_per_pulse_100km"], rel=1e-2
    )


def test_gys_optimal_mu_and_max_distance_infinite_decoy() -> None:
    pub = REF["published"]
    # the paper quotes μ ≈ 0.48 (two figures): ±0.02
    assert _gys(50.0).mean_photon_number == pytest.approx(pub["optimal_mu_f122"], abs=0.02)
    # file tolerance: maximum distance within 0.5 km
    assert _max_distance() == pytest.approx(pub["max_distance_km_infinite_decoy"], abs=0.5)


def test_vacuum_weak_decoy_bounds() -> None:
    """Vacuum + weak decoy approaches infinite decoys as ν → 0 (exact limit of the bounds) and
    loses distance as ν grows; the published 140.55 km lies between ν = 0.05 and ν = 0.1."""
    inf_d = _max_distance()
    small = _max_distance(decoy="vacuum+weak", weak_decoy_photon_number=1e-4)
    assert small == pytest.approx(inf_d, abs=0.05)
    d05 = _max_distance(decoy="vacuum+weak", weak_decoy_photon_number=0.05)
    d10 = _max_distance(decoy="vacuum+weak", weak_decoy_photon_number=0.1)
    assert d10 < REF["published"]["max_distance_km_vacuum_weak_decoy"] < d05 < inf_d
    # at a fixed distance the bounded single-photon terms never beat the exact ones
    a, b = (
        _gys(80.0, mean_photon_number=0.5),
        _gys(80.0, mean_photon_number=0.5, decoy="vacuum+weak", weak_decoy_photon_number=0.1),
    )
    assert b.single_photon_gain <= a.single_photon_gain
    assert b.single_photon_error >= a.single_photon_error


def test_binary_entropy_identities() -> None:
    assert binary_entropy(0.5) == 1.0
    assert binary_entropy(0.0) == 0.0
    assert binary_entropy(0.11) == pytest.approx(0.4999, abs=1e-4)


def test_background_yield_from_noise() -> None:
    # Poisson arrivals: Y0 = 1 − (1 − p_dark) e^{−η N}
    rate, gate, pd, eta = 2e6, 1e-9, 1e-6, 0.1
    want = 1 - (1 - pd) * np.exp(-eta * rate * gate)
    got = background_yield_from_noise(
        photon_rate_hz=rate, gate_width_s=gate, dark_count_probability=pd, detector_efficiency=eta
    )
    assert got == pytest.approx(want, rel=1e-12)
    # from a spectral density: S Δλ / (h c / λ) photons per second
    lam, s, dl = 1550e-9, 1e-12, 0.8e-9
    rate2 = s * dl / (PLANCK_J_S * SPEED_OF_LIGHT_M_S / lam)
    got2 = background_yield_from_noise(
        noise_spectral_density_w_per_m=s,
        filter_width_m=dl,
        wavelength_m=lam,
        gate_width_s=gate,
        dark_count_probability=pd,
        detector_efficiency=eta,
    )
    assert got2 == pytest.approx(1 - (1 - pd) * np.exp(-eta * rate2 * gate), rel=1e-12)
    # the same noise given as an in-band power
    got3 = background_yield_from_noise(
        noise_power_w=s * dl,
        wavelength_m=lam,
        gate_width_s=gate,
        dark_count_probability=pd,
        detector_efficiency=eta,
    )
    assert got3 == pytest.approx(got2, rel=1e-12)
    with pytest.raises(ConfigError):
        background_yield_from_noise(
            gate_width_s=gate, dark_count_probability=pd, detector_efficiency=eta
        )


def _reference_mdi_gain(mu: float, eta: float, pd: float, ed: float) -> tuple[float, float]:
    """Slow reference: click patterns of the polarisation BSM, phase averaged numerically."""
    a = b = eta * mu
    # correct events: orthogonal polarisations, no interference
    qa, qb = a / 2, b / 2

    def click(m: float) -> float:
        return 1 - (1 - pd) * np.exp(-m)

    def none(m: float) -> float:
        return (1 - pd) * np.exp(-m)

    q_c = 2 * click(qa) * click(qb) * none(qa) * none(qb)
    # same polarisation: c gets μ'/2 + 2x cos φ, d gets μ'/2 − 2x cos φ; V modes dark only
    phi = np.linspace(0, 2 * np.pi, 20001)[:-1]
    x = np.sqrt(a * b) / 2
    mc = (a + b) / 2 + 2 * x * np.cos(phi)
    md = (a + b) / 2 - 2 * x * np.cos(phi)
    pat = (click(mc) * none(md) + click(md) * none(mc)) * pd * (1 - pd)  # type: ignore[arg-type]
    q_e = float(np.mean(pat))
    q = q_c + q_e
    return q, (ed * q_c + (1 - ed) * q_e) / q


def test_mdi_gain_and_qber_against_click_pattern_reference() -> None:
    for mu, eta, pd, ed in [
        (0.5, 0.05, 3e-6, 0.015),
        (1.0, 0.3, 1e-3, 0.02),
        (0.2, 0.9, 0.01, 0.0),
    ]:
        a = np.asarray(eta)
        _, q_z, e_z, _, _ = _mdi_terms(
            np.asarray(mu), a, a, np.asarray(pd), np.asarray(ed), np.asarray(1.16), 1.0
        )
        q_ref, e_ref = _reference_mdi_gain(mu, eta, pd, ed)
        # phase average by a 20000-point rectangle rule on a periodic integrand: exponential
        # convergence, far below 1e-10 relative
        assert float(q_z) == pytest.approx(q_ref, rel=1e-10)
        assert float(e_z) == pytest.approx(e_ref, rel=1e-10)


def test_mdi_ideal_limit() -> None:
    """No dark counts, no misalignment: R = μ² e^{−2μ} η_aη_b/2, maximal at μ = 1."""
    t = 0.01
    r = mdi_qkd(
        transmittance=t, detector_efficiency=0.5, dark_count_probability=0.0, misalignment_error=0.0
    )
    eta = 0.5 * np.sqrt(t)
    assert r.mean_photon_number == pytest.approx(1.0, rel=1e-6)
    assert r.key_rate_bits_per_pulse == pytest.approx(np.exp(-2) * eta * eta / 2, rel=1e-9)
    assert r.error_11_x == 0.0


def test_mdi_rate_falls_with_distance_and_dies() -> None:
    t = transmittance_from_loss_db(0.2 * np.array([0.0, 50.0, 100.0, 150.0, 400.0]))
    r = mdi_qkd(
        transmittance=t,
        detector_efficiency=0.145,
        dark_count_probability=3e-6,
        misalignment_error=0.015,
    )
    k = np.asarray(r.key_rate_bits_per_pulse)
    assert np.all(np.diff(k) < 0)
    assert k[-1] < 0 < k[-2]


@settings(max_examples=60, deadline=None)
@given(
    length_km=st.floats(0.0, 150.0),
    extra_km=st.floats(1.0, 50.0),
    y0=st.floats(1e-7, 1e-4),
    e_d=st.floats(0.0, 0.05),
)
def test_bb84_rate_falls_with_distance_and_background(length_km, extra_km, y0, e_d) -> None:  # type: ignore[no-untyped-def]
    def rate(d: float, bg: float) -> float:
        return float(
            bb84_decoy(
                transmittance=transmittance_from_loss_db(0.2 * d),
                detector_efficiency=0.1,
                background_yield=bg,
                misalignment_error=e_d,
            ).key_rate_bits_per_pulse
        )

    k0 = rate(length_km, y0)
    # the optimised rate max(R, 0) is monotone (a weaker channel can always be simulated)
    # (1e-9 relative slack: the golden-section optimum of μ is found to ~1e-12 in μ)
    assert max(rate(length_km + extra_km, y0), 0.0) <= max(k0, 0.0) * (1 + 1e-9) + 1e-15
    assert max(rate(length_km, 2.0 * y0), 0.0) <= max(k0, 0.0) * (1 + 1e-9) + 1e-15


def _reference_x_gain(a: float, b: float, pd: float) -> tuple[float, float]:
    """Slow reference for the X basis (e_d = 0): diagonal coherent states with independent
    random phases; both Bell-state projections ψ± announced; averaged over Alice's and Bob's
    bits. Same diagonal: c_H = c_V = m₊, d_H = d_V = m₋; opposite: c_H = d_V = m₊,
    c_V = d_H = m₋ with m± = (a + b ± 2√(ab) cos φ)/4. ψ− clicks (c_H, d_V) or (c_V, d_H);
    ψ+ clicks (c_H, c_V) or (d_H, d_V); ψ− is an error for equal bits, ψ+ for different."""

    def click(m):  # type: ignore[no-untyped-def]
        return 1 - (1 - pd) * np.exp(-m)

    def none(m):  # type: ignore[no-untyped-def]
        return (1 - pd) * np.exp(-m)

    phi = np.linspace(0, 2 * np.pi, 40001)[:-1]
    mp = (a + b + 2 * np.sqrt(a * b) * np.cos(phi)) / 4
    mm = (a + b - 2 * np.sqrt(a * b) * np.cos(phi)) / 4
    # equal bits: ψ− (error) and ψ+ (correct) have the same probability by symmetry
    same_psi_minus = np.mean(2 * click(mp) * none(mp) * click(mm) * none(mm))
    same_psi_plus = np.mean(click(mp) ** 2 * none(mm) ** 2 + click(mm) ** 2 * none(mp) ** 2)
    # different bits: the roles swap
    diff_psi_minus = same_psi_plus
    diff_psi_plus = same_psi_minus
    q = 0.5 * (same_psi_minus + same_psi_plus + diff_psi_minus + diff_psi_plus)
    errors = 0.5 * (same_psi_minus + diff_psi_plus)
    return float(q), float(errors)


def test_mdi_x_basis_gain_against_click_pattern_reference() -> None:
    for a, b, pd in [(0.05, 0.05, 3e-6), (0.3, 0.1, 1e-3), (0.5, 0.0, 1e-2), (1.0, 2.0, 0.05)]:
        q, eq = _mdi_x_gain(np.asarray(a), np.asarray(b), np.asarray(pd), np.asarray(0.0))
        q_ref, eq_ref = _reference_x_gain(a, b, pd)
        # periodic rectangle rule with 40000 points: exponentially accurate
        assert float(q) == pytest.approx(q_ref, rel=1e-10)
        assert float(eq) == pytest.approx(eq_ref, rel=1e-10)


def test_mdi_vacuum_weak_bounds_are_valid_and_tight_as_nu_vanishes() -> None:
    args = (np.asarray(1.16), 1.0)
    for length_km in (0.0, 60.0, 120.0):
        eta = np.asarray(0.145 * np.sqrt(transmittance_from_loss_db(0.2 * length_km)))
        pd, ed = np.asarray(3e-6), np.asarray(0.015)
        for mu in (0.2, 0.5):
            m = np.asarray(mu)
            exact = _mdi_terms(m, eta, eta, pd, ed, *args)
            for nu in (0.01, 0.05, 0.1):
                bound = _mdi_terms(m, eta, eta, pd, ed, *args, np.asarray(nu))
                # valid bounds: Y11^L <= Y11, e11^U >= e11, hence a lower key rate
                assert float(bound[3]) <= float(exact[3]) * (1 + 1e-12)
                assert float(bound[4]) >= float(exact[4]) * (1 - 1e-12)
                assert float(bound[0]) <= float(exact[0])
            # ν → 0: both bounds become tight (O(ν) corrections)
            tight = _mdi_terms(m, eta, eta, pd, ed, *args, np.asarray(1e-4))
            assert float(tight[3]) == pytest.approx(float(exact[3]), rel=1e-3)
            assert float(tight[4]) == pytest.approx(float(exact[4]), rel=1e-2)
    full = mdi_qkd(
        transmittance=0.01,
        detector_efficiency=0.145,
        dark_count_probability=3e-6,
        misalignment_error=0.015,
    )
    vw = mdi_qkd(
        transmittance=0.01,
        detector_efficiency=0.145,
        dark_count_probability=3e-6,
        misalignment_error=0.015,
        decoy="vacuum+weak",
    )
    assert 0.97 * full.key_rate_bits_per_pulse < vw.key_rate_bits_per_pulse
    assert vw.key_rate_bits_per_pulse < full.key_rate_bits_per_pulse


def test_i0_minus_one_is_accurate_everywhere() -> None:
    from scipy.special import i0

    x = np.array([0.1, 0.5, 0.999, 1.0, 2.0, 10.0, 50.0])
    np.testing.assert_allclose(_i0m1(x), i0(x) - 1.0, rtol=1e-12)
    tiny = np.array([1e-8, 1e-4])
    # I0(x) − 1 = x²/4 + x⁴/64 + ...: scipy's i0(x) − 1 would return 0 or ~1e-9 relative noise
    np.testing.assert_allclose(_i0m1(tiny), tiny**2 / 4 + tiny**4 / 64, rtol=1e-14)
