"""Pilot phase recovery: streaming equals one-shot, slow references, and tracked offsets."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cvqkd.dataset import SLOT_PILOT
from cvqkd.sim import ChannelParameters, SessionSettings, simulate_block
from cvqkd.sim.phase_recovery import (
    centred_moving_average,
    interpolate_frames,
    pilot_phases,
    unwrap_continuing,
)
from cvqkd.sim.session import predicted_phase_error_variance_rad2


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-3.1, 3.1), min_size=1, max_size=60),
    st.integers(1, 59),
)
def test_chunked_unwrap_equals_numpy_unwrap(values: list[float], cut: int) -> None:
    w = np.array(values)
    ref = np.unwrap(w)
    a = unwrap_continuing(w[:cut], previous=None)
    b = unwrap_continuing(w[cut:], previous=float(a[-1]) if a.size else None)
    assert np.allclose(np.concatenate((a, b)), ref, atol=1e-12)


def test_moving_average_against_loop() -> None:
    v = np.random.default_rng(0).standard_normal(37)
    for window in (1, 3, 7):
        h = window // 2
        ref = [np.mean(v[max(0, i - h) : i + h + 1]) for i in range(v.size)]
        assert np.allclose(centred_moving_average(v, window=window), ref, atol=1e-12)


def test_interpolation_reproduces_a_line() -> None:
    p = 7
    pil = 0.3 * np.arange(5) * p - 2.0
    out = interpolate_frames(pil, float(0.3 * 5 * p - 2.0), period=p)
    assert np.allclose(out.reshape(-1), 0.3 * np.arange(5 * p) - 2.0, atol=1e-12)


def test_pilot_phase_sign_convention() -> None:
    # Bob sees y = A e^{-iφ} p; ψ = arg(p·conj(y)) = φ
    phi = np.array([0.4, -2.0])
    p = np.array([3.0 + 0j, 3.0 + 0j])
    y = 2.0 * np.exp(-1j * phi) * p
    ps = np.stack((y.real, y.imag), axis=1)
    assert np.allclose(pilot_phases(ps, p), phi, atol=1e-12)


def test_predicted_phase_error_formula() -> None:
    # Slow reference: average over slots j of σ_w² P f(1−f) + σ_n²((1−f)² + f²), f = j/P.
    P, sw, sn = 6, 2e-3, 5e-4
    ref = np.mean(
        [sw * P * (j / P) * (1 - j / P) + sn * ((1 - j / P) ** 2 + (j / P) ** 2) for j in range(P)]
    )
    got = predicted_phase_error_variance_rad2(
        pilot_period=P, wiener_variance_per_symbol_rad2=sw, pilot_phase_variance_rad2=sn
    )
    assert np.isclose(got, ref, rtol=1e-14)


def _llo(**kw: object) -> ChannelParameters:
    base: dict[str, object] = dict(
        transmittance=0.8,
        detector_efficiency=0.6,
        electronic_noise_snu=0.05,
        detection="heterodyne",
        excess_noise_sources_snu={"raman_forward": 0.01},
        modulation_variance_snu=4.0,
        symbol_rate_hz=1e8,
        local_oscillator="local",
        linewidth_alice_hz=20e3,
        linewidth_bob_hz=20e3,
        frequency_offset_hz=2e6,
    )
    base.update(kw)
    return ChannelParameters(**base)  # type: ignore[arg-type]


def test_streamed_phase_recovery_equals_one_shot() -> None:
    # Small chunks with a 5-pilot averaging window exercise the look-ahead across chunks:
    # recomputing ψ̂ from all pilot samples at once must give the same values.
    s = SessionSettings(chunk_slots=640, phase_window_pilots=5, pilot_period=8)
    b = simulate_block(_llo(), n_symbols=10_003, rng=np.random.default_rng(7), settings=s)
    assert b.n_slots == 10_003
    pil = b.slot_kind == SLOT_PILOT
    assert np.array_equal(np.flatnonzero(pil), np.arange(0, 10_003, 8))
    psi = unwrap_continuing(pilot_phases(b.pilot_samples, b.alice_symbols[pil]), previous=None)
    sm = centred_moving_average(psi, window=5)
    full = interpolate_frames(sm, float(sm[-1]), period=8).reshape(-1)[: b.n_slots]
    assert np.allclose(b.phase_estimate, full.astype(np.float32), rtol=0, atol=1e-6)


def test_frequency_offset_and_phase_noise_are_tracked() -> None:
    from cvqkd.estimation import estimate

    # With recovery, ξ̂ matches the injected noise plus the predicted residual phase noise;
    # without it (ψ̂ zeroed) the 2 MHz offset scrambles the phase: no correlation is left.
    ch = _llo()
    b = simulate_block(
        ch, n_symbols=1_000_000, rng=np.random.default_rng(1), settings=SessionSettings(adc_bits=0)
    )
    est = estimate(b, disclosed_fraction=0.5, epsilon_pe=1e-4, rng=np.random.default_rng(2))
    truth = ch.excess_noise_snu + b.metadata.truth["phase_noise_snu_predicted"]
    assert est.excess_noise_snu.contains(truth)
    assert est.gates.passed
    from dataclasses import replace

    bad = replace(b, phase_estimate=np.zeros_like(b.phase_estimate))
    est_bad = estimate(bad, disclosed_fraction=0.5, epsilon_pe=1e-4, rng=np.random.default_rng(2))
    assert est_bad.transmittance.high < 0.01
    assert est_bad.worst_case_excess_noise_snu > 100.0
