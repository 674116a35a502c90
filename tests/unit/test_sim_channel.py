"""Channel and detector models: exact identities and second moments against the SNU formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.sim.channel import ChannelParameters, phase_walk, transmit
from cvqkd.sim.detection import Adc, heterodyne, homodyne, receiver_output

N = 400_000
# Relative standard error of a sample variance of N Gaussian values is √(2/N) ≈ 2.2e-3;
# the checks below allow 5 of them (a false failure has probability < 1e-6).
TOL = 5 * math.sqrt(2 / N)


def _channel(**kw: object) -> ChannelParameters:
    base: dict[str, object] = dict(
        transmittance=0.3,
        detector_efficiency=0.6,
        electronic_noise_snu=0.05,
        detection="homodyne",
        excess_noise_sources_snu={"a": 0.02, "b": 0.03},
        modulation_variance_snu=4.0,
        symbol_rate_hz=1e8,
    )
    base.update(kw)
    return ChannelParameters(**base)  # type: ignore[arg-type]


def test_transmit_without_noise_is_exact() -> None:
    a = np.array([1 + 2j, -3 + 0.5j])
    phi = np.array([0.3, -1.1])
    out = transmit(
        a, transmittance=0.49, excess_noise_snu=0.0, phase_rad=phi, rng=np.random.default_rng(0)
    )
    assert np.allclose(out, 0.7 * np.exp(-1j * phi) * a, rtol=0, atol=1e-15)


def test_excess_noise_variance_is_t_xi() -> None:
    out = transmit(
        np.zeros(N, complex),
        transmittance=0.25,
        excess_noise_snu=0.2,
        phase_rad=None,
        rng=np.random.default_rng(1),
    )
    for q in (out.real, out.imag):
        assert abs(q.var() / (0.25 * 0.2) - 1) < TOL


@pytest.mark.parametrize("detection", ["homodyne", "heterodyne"])
def test_detected_variance_matches_snu_formula(detection: str) -> None:
    # Var(y) = κ ηT (V_A + ξ) + 1 + v_el, κ = 1 homodyne, 1/2 per heterodyne quadrature
    # (Laudenbach et al. 2018; PHYSICS.md χ_hom, χ_het).
    rng = np.random.default_rng(2)
    T, eta, xi, va, vel = 0.3, 0.6, 0.05, 4.0, 0.05
    a = (rng.standard_normal(2 * N) * math.sqrt(va)).view(complex)
    field = transmit(a, transmittance=T, excess_noise_snu=xi, phase_rad=None, rng=rng)
    if detection == "homodyne":
        theta = rng.integers(0, 2, N) * (np.pi / 2)
        y = homodyne(field, quadrature_angle_rad=theta, detector_efficiency=eta, rng=rng)
        cols = [y]
        kappa = 1.0
    else:
        y2 = heterodyne(field, detector_efficiency=eta, rng=rng)
        cols = [y2[:, 0], y2[:, 1]]
        kappa = 0.5
    for col in cols:
        raw = receiver_output(col, gain=3.0, electronic_gain=3.0, electronic_noise_snu=vel, rng=rng)
        expect = 9.0 * (kappa * eta * T * (va + xi) + 1 + vel)
        assert abs(raw.var() / expect - 1) < TOL


def test_adc_rounds_and_clips() -> None:
    adc = Adc(bits=4)
    assert (adc.min_code, adc.max_code) == (-8, 7)
    assert adc.digitise(np.array([-100.0, -7.6, 0.49, 6.5, 7.4, 50.0])).tolist() == [
        -8,
        -8,
        0,
        6,
        7,
        7,
    ]
    assert Adc(bits=0).digitise(np.array([1.25])).tolist() == [1.25]


def test_quantisation_adds_sheppard_variance() -> None:
    # Rounding a smooth density with σ ≫ 1 code adds Δ²/12 = 1/12 code² (Sheppard's correction).
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4 * N) * 20.0
    q = Adc(bits=12).digitise(x).astype(float)
    extra = q.var() - x.var()
    # standard error of the difference ≈ sd(q² − x²)/√n ≈ 2·20·0.29/√(4N) ≈ 0.009
    assert abs(extra - 1 / 12) < 0.05


def test_phase_walk_increments() -> None:
    rng = np.random.default_rng(4)
    phi = phase_walk(
        N, start_rad=1.0, variance_per_symbol_rad2=1e-3, ramp_rad_per_symbol=0.01, rng=rng
    )
    d = np.diff(np.concatenate(([1.0], phi)))
    assert abs(d.mean() - 0.01) < 5 * math.sqrt(1e-3 / N)
    assert abs(d.var() / 1e-3 - 1) < TOL
    ramp = phase_walk(
        3, start_rad=0.0, variance_per_symbol_rad2=0.0, ramp_rad_per_symbol=0.5, rng=rng
    )
    assert ramp.tolist() == [0.5, 1.0, 1.5]


def test_channel_parameters_properties_and_validation() -> None:
    ch = _channel(
        local_oscillator="local",
        linewidth_alice_hz=1e4,
        linewidth_bob_hz=3e4,
        frequency_offset_hz=1e6,
    )
    assert ch.excess_noise_snu == pytest.approx(0.05, abs=1e-15)
    assert ch.phase_noise_variance_per_symbol == pytest.approx(2 * math.pi * 4e4 / 1e8, rel=1e-15)
    assert ch.frequency_offset_rad_per_symbol == pytest.approx(2 * math.pi * 1e-2, rel=1e-15)
    assert _channel(linewidth_alice_hz=1e4).phase_noise_variance_per_symbol == 0.0  # TLO
    with pytest.raises(ConfigError, match="transmittance"):
        _channel(transmittance=1.5)
    with pytest.raises(ConfigError, match="detection"):
        _channel(detection="photon")
    with pytest.raises(ConfigError, match="'b'"):
        _channel(excess_noise_sources_snu={"b": -1.0})


def test_from_budget_of_seed_scenario() -> None:
    from cvqkd.link.budget import noise_budget
    from cvqkd.scenario import load_scenario

    sc = load_scenario("seed-120km")
    b = noise_budget(sc)
    ch = ChannelParameters.from_budget(b, sc)
    assert ch.transmittance == b.transmittance
    assert ch.detector_efficiency == b.detector_efficiency
    assert ch.electronic_noise_snu == b.electronic_noise_snu
    assert ch.detection == b.detection
    assert ch.local_oscillator == sc.receiver.lo
    assert ch.linewidth_alice_hz == sc.transmitter.laser_linewidth_hz
    assert ch.linewidth_bob_hz == sc.receiver.lo_linewidth_hz
    # Raman (and every other non-phase source) is injected as it is in the budget ...
    for name, v in b.sources_snu.items():
        if name != "phase" or ch.local_oscillator != "local":
            assert ch.excess_noise_sources_snu[name] == v
    # ... while a local LO's phase noise is simulated physically, not injected
    if ch.local_oscillator == "local":
        assert "phase" not in ch.excess_noise_sources_snu
        assert ch.excess_noise_snu == pytest.approx(
            b.excess_noise_snu - b.sources_snu.get("phase", 0.0), rel=1e-12
        )
    assert ChannelParameters.from_budget(b, sc, detection="homodyne").detection == "homodyne"
