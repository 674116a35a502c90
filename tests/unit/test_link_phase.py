"""Pilot-aided phase recovery model (cvqkd.link.phase) against the simulator's own DSP."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvqkd.link.budget import noise_budget
from cvqkd.link.phase import (
    phase_noise_snu,
    pilot_phase_variance_rad2,
    pilot_residual_phase_variance_rad2,
    wiener_variance_per_slot_rad2,
)
from cvqkd.scenario import load_scenario
from cvqkd.sim import ChannelParameters
from cvqkd.sim.phase_recovery import centred_moving_average, interpolate_frames, pilot_phases
from cvqkd.sim.session import block_metadata


def _monte_carlo(
    *, period: int, window: int, sw: float, sn: float, frames: int, rng: np.random.Generator
) -> float:
    """Slow reference: a discrete Wiener phase, noisy pilots, the simulator's window average
    and interpolation; the mean squared error φ − ψ̂ away from the edges."""
    n = frames * period
    phi = np.cumsum(rng.standard_normal(n + period) * math.sqrt(sw))
    pilots = phi[::period][: frames + 1] + rng.standard_normal(frames + 1) * math.sqrt(sn)
    sm = centred_moving_average(pilots, window=window)
    psi = interpolate_frames(sm[:frames], float(sm[frames]), period=period).reshape(-1)
    err = (phi[:n] - psi)[period * window : -period * window]
    return float(np.mean(err**2))


@pytest.mark.parametrize(
    ("period", "window", "sw", "sn"),
    [(10, 1, 1e-3, 5e-4), (8, 3, 1e-4, 2e-3), (4, 5, 5e-5, 1e-2), (6, 7, 1e-3, 1e-3)],
)
def test_residual_variance_matches_monte_carlo_of_the_dsp(
    period: int, window: int, sw: float, sn: float
) -> None:
    # 10^5 frames; the error is correlated over ~W+1 pilots, so ≥ 1.2·10^4 independent
    # stretches: relative standard error of the variance ≲ √(2/12500) ≈ 1.3 %. 4 % is 3σ.
    got = _monte_carlo(
        period=period, window=window, sw=sw, sn=sn, frames=100_000, rng=np.random.default_rng(5)
    )
    model = pilot_residual_phase_variance_rad2(
        pilot_period_slots=period,
        window_pilots=window,
        wiener_variance_per_slot_rad2=sw,
        pilot_phase_variance_rad2=sn,
    )
    assert got == pytest.approx(model, rel=0.04)


def test_single_pilot_window_is_the_brownian_bridge() -> None:
    # W = 1: mean over f = j/P of σ_w² P f(1 − f) + σ_n²((1 − f)² + f²) (exact identity).
    p, sw, sn = 7, 3e-4, 2e-3
    f = np.arange(p) / p
    ref = float(np.mean(sw * p * f * (1 - f) + sn * ((1 - f) ** 2 + f**2)))
    got = pilot_residual_phase_variance_rad2(
        pilot_period_slots=p,
        window_pilots=1,
        wiener_variance_per_slot_rad2=sw,
        pilot_phase_variance_rad2=sn,
    )
    assert got == pytest.approx(ref, rel=1e-13)


def test_pilot_phase_variance_matches_the_simulators_estimator() -> None:
    # Phase-diverse pilot: A² = 2ηT n_p per quadrature, noise N = 1 + v_el; the variance of
    # arg(p·conj(y)) over 2·10^5 draws has a relative standard error of 0.3 %, and the
    # first-order formula's own error is ≈ N/A² ≈ 0.3 % here: 2 % covers both (≥ 3σ).
    n_p, t, eta, vel = 5e3, 0.1, 0.6, 0.02
    model = pilot_phase_variance_rad2(
        pilot_mean_photon_number=n_p,
        transmittance=t,
        detector_efficiency=eta,
        electronic_noise_snu=vel,
    )
    rng = np.random.default_rng(3)
    m = 200_000
    amp = math.sqrt(2 * eta * t * n_p)  # |mean| of the (x, p) pair at Bob, pilot along x
    y = rng.standard_normal((m, 2)) * math.sqrt(1 + vel)
    y[:, 0] += amp
    psi = pilot_phases(y, np.full(m, 2 * math.sqrt(n_p), dtype=np.complex128))
    assert float(np.var(psi)) == pytest.approx(model, rel=0.02)


def test_budget_phase_entry_is_the_simulators_prediction() -> None:
    # The budget and the simulator take the pilot period, photon number and window from the
    # same scenario: their predicted residual agrees up to the pilots' own excess noise,
    # η T ξ/2 ≈ 3e-5 of the vacuum at 120 km, which the budget leaves out (hence 1e-4).
    sc = load_scenario("seed-120km")
    b = noise_budget(sc)
    ch = ChannelParameters.from_budget(b, sc)
    assert (ch.pilot_period_slots, ch.pilot_mean_photon_number, ch.phase_window_pilots) == (
        5,
        1e6,
        1,
    )
    meta = block_metadata(ch)
    assert meta.pilot_period == 5
    assert meta.truth["phase_noise_snu_predicted"] == pytest.approx(
        b.sources_snu["phase"], rel=1e-4
    )
    # the same number by hand: Wiener drift of two 10 kHz lasers at 100 MBd, pilots of 1e6
    # photons through ηT, Marie & Alléaume's 2V_A(1 − e^{−V/2}) at the scenario's V_A = 7 SNU
    v = pilot_residual_phase_variance_rad2(
        pilot_period_slots=5,
        window_pilots=1,
        wiener_variance_per_slot_rad2=wiener_variance_per_slot_rad2(
            transmitter_linewidth_hz=10e3, lo_linewidth_hz=10e3, symbol_rate_hz=100e6
        ),
        pilot_phase_variance_rad2=(1 + 0.02) / (2 * 0.6 * b.transmittance * 1e6),
    )
    assert b.sources_snu["phase"] == pytest.approx(
        phase_noise_snu(modulation_variance_snu=7.0, phase_error_variance_rad2=v), rel=1e-12
    )


def test_seed_120km_keeps_a_positive_key_with_the_pilot_model() -> None:
    # The end-to-end pipeline runs on seed-120km at the scenario's β = 0.93: the budget's key,
    # with the pilot-aided phase residual included, must be positive there.
    from cvqkd.keyrate.gaussian import gg02

    b = noise_budget(load_scenario("seed-120km"))
    assert 0.003 < b.sources_snu["phase"] < 0.02
    assert b.key_rate_bps() > 0
    k93 = gg02(
        transmittance=b.transmittance,
        excess_noise_snu=b.excess_noise_snu,
        modulation_variance_snu=b.modulation_variance_snu,
        detector_efficiency=b.detector_efficiency,
        electronic_noise_snu=b.electronic_noise_snu,
        reconciliation_efficiency=0.93,
        detection=b.detection,
    ).key_rate_bits_per_symbol
    assert float(k93) > 0


def test_transmitted_lo_ignores_the_pilots() -> None:
    # kumar2015 has a transmitted LO and no delay: no phase noise whatever the pilot keys say.
    b = noise_budget(load_scenario("kumar2015-25km"))
    assert b.sources_snu["phase"] == 0.0
