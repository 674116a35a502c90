"""Parameter estimation: unbiasedness and interval coverage over seeded runs, gates, streaming.

Statistical tolerances are stated where they are used. Every run is seeded (SeedSequence
spawning), so a test either always passes or always fails; the tolerances are chosen so that
a correct implementation fails with probability < 1e-3 over the choice of seeds.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from cvqkd.dataset import SLOT_DATA, SLOT_SHOT_NOISE, TransmissionBlock
from cvqkd.errors import ConfigError, DataFormatError, SecurityAbort
from cvqkd.estimation import (
    DISCLOSURE_KEY_BOUND,
    Estimates,
    disclosed_mask,
    disclosed_slots,
    enforce_gates,
    estimate,
    key_samples,
    z_score,
)
from cvqkd.sim import ChannelParameters, SessionSettings, simulate_block, simulate_stream

T_TRUE, ETA, XI_TRUE, VEL_TRUE, VA = 0.4, 0.6, 0.05, 0.05, 4.0


def _channel(detection: str = "homodyne", **kw: object) -> ChannelParameters:
    base: dict[str, object] = dict(
        transmittance=T_TRUE,
        detector_efficiency=ETA,
        electronic_noise_snu=VEL_TRUE,
        detection=detection,
        excess_noise_sources_snu={"raman_forward": XI_TRUE},
        modulation_variance_snu=VA,
        symbol_rate_hz=1e8,
    )
    base.update(kw)
    return ChannelParameters(**base)  # type: ignore[arg-type]


def _snr_true(detection: str) -> float:
    k = 0.5 if detection == "heterodyne" else 1.0
    return k * ETA * T_TRUE * VA / (1 + VEL_TRUE + k * ETA * T_TRUE * XI_TRUE)


def _runs(detection: str, runs: int, n: int, eps: float) -> list[Estimates]:
    ch = _channel(detection)
    out = []
    for s in np.random.SeedSequence(2024).spawn(runs):
        r_sim, r_pe = (np.random.default_rng(x) for x in s.spawn(2))
        b = simulate_block(ch, n_symbols=n, rng=r_sim, settings=SessionSettings(adc_bits=0))
        out.append(estimate(b, disclosed_fraction=0.5, epsilon_pe=eps, rng=r_pe))
    return out


RUNS, N_SLOTS, EPS = 400, 10_000, 0.1


@pytest.fixture(scope="module", params=["homodyne", "heterodyne"])
def runs(request: pytest.FixtureRequest) -> tuple[str, list[Estimates]]:
    return request.param, _runs(request.param, RUNS, N_SLOTS, EPS)


def test_z_score_is_the_two_sided_normal_quantile() -> None:
    assert z_score(0.05) == pytest.approx(1.959963984540054, rel=1e-12)
    assert z_score(1e-10) == pytest.approx(stats.norm.isf(0.5e-10), rel=1e-9)
    with pytest.raises(ConfigError):
        z_score(0.0)


def test_estimators_are_unbiased(runs: tuple[str, list[Estimates]]) -> None:
    # Mean over 400 runs within 4 standard errors of the truth (the ratio estimators' O(1/m)
    # bias is ≪ their standard error at m ≈ 4·10^3 pairs).
    det, est = runs
    for name, truth in [
        ("transmittance", T_TRUE),
        ("excess_noise_snu", XI_TRUE),
        ("electronic_noise_snu", VEL_TRUE),
        ("snr", _snr_true(det)),
    ]:
        v = np.array([getattr(e, name).value for e in est])
        se = v.std(ddof=1) / math.sqrt(v.size)
        assert abs(v.mean() - truth) < 4 * se, (name, v.mean(), truth, se)
        # the reported standard error matches the spread across runs (within 15 %: the
        # spread of a sample sd over 400 runs is ≈ 3.5 %, plus first-order delta-method error)
        sd_reported = np.mean([getattr(e, name).std for e in est])
        assert abs(sd_reported / v.std(ddof=1) - 1) < 0.15, (name, sd_reported, v.std())


def test_intervals_cover_the_truth_at_the_stated_rate(runs: tuple[str, list[Estimates]]) -> None:
    # With ε_PE = 0.1 each interval misses the truth in Binomial(400, 0.1) runs: mean 40,
    # sd 6. Accept 20..62 (3.6 sd; a correct implementation fails with probability < 1e-3).
    det, est = runs
    lo, hi = stats.binom.ppf([2e-4, 1 - 2e-4], RUNS, EPS)
    assert (lo, hi) == (20, 62) or (lo <= 20 and hi >= 60)
    for name, truth in [
        ("transmittance", T_TRUE),
        ("excess_noise_snu", XI_TRUE),
        ("electronic_noise_snu", VEL_TRUE),
        ("snr", _snr_true(det)),
    ]:
        misses = sum(not getattr(e, name).contains(truth) for e in est)
        assert 20 <= misses <= 62, (name, misses)


def test_worst_case_values_bracket_lgg(runs: tuple[str, list[Estimates]]) -> None:
    # Ours adds the shot-noise calibration's uncertainty to LGG 2010 (KEYRATE's
    # implementation), so it is at least as pessimistic; both are worse than the estimate.
    _, est = runs
    for e in est[:50]:
        assert e.worst_case_transmittance <= e.lgg_worst_case_transmittance <= e.transmittance.value
        assert e.worst_case_excess_noise_snu >= e.lgg_worst_case_excess_noise_snu
        assert e.lgg_worst_case_excess_noise_snu >= e.excess_noise_snu.value


def test_lgg_inputs_reproduce_the_estimates(runs: tuple[str, list[Estimates]]) -> None:
    # Exact identities between the reported quantities (PHYSICS.md): t̂² = κηT, and
    # σ̂² = 1 + v_el + κηTξ̂ in SNU (κ = 1 homodyne, ½ heterodyne).
    det, est = runs
    k = 0.5 if det == "heterodyne" else 1.0
    for e in est[:20]:
        assert e.t_hat_snu**2 == pytest.approx(k * e.eta_transmittance.value, rel=1e-12)
        rebuilt = (
            1
            + e.electronic_noise_snu.value
            + k * e.eta_transmittance.value * (e.excess_noise_snu.value)
        )
        assert e.sigma_sq_hat_snu == pytest.approx(rebuilt, rel=1e-9)


def test_worst_case_matches_lgg_formula_when_calibration_is_large() -> None:
    # With 10x more calibration than data the calibration term is small: ours → LGG (PHYSICS.md
    # t_min, σ²_max formula) within 5 % of the distance between estimate and bound.
    ch = _channel()
    s = SessionSettings(
        adc_bits=0, shot_noise_calibration_fraction=0.6, electronic_noise_calibration_fraction=0.3
    )
    b = simulate_block(ch, n_symbols=400_000, rng=np.random.default_rng(11), settings=s)
    e = estimate(b, disclosed_fraction=0.5, epsilon_pe=1e-10, rng=np.random.default_rng(12))
    gap_ours = e.transmittance.value - e.worst_case_transmittance
    gap_lgg = e.transmittance.value - e.lgg_worst_case_transmittance
    assert gap_ours >= gap_lgg > 0
    assert gap_ours / gap_lgg < 1.6


def test_quantisation_noise_is_counted_as_electronic_noise() -> None:
    # A coarse ADC adds Δ²/12 per sample (Sheppard); the receiver calibrates it as part of v_el
    # and it cancels from T and ξ. 6 bits with full scale 6 √SNU: Δ²/12 in SNU = (6/32)²/12.
    s = SessionSettings(adc_bits=6, adc_full_scale_snu=6.0)
    ch = _channel(transmittance=0.05)
    b = simulate_block(ch, n_symbols=400_000, rng=np.random.default_rng(5), settings=s)
    e = estimate(b, disclosed_fraction=0.5, epsilon_pe=1e-3, rng=np.random.default_rng(6))
    q = (6 / 32) ** 2 / 12
    assert b.metadata.truth["quantisation_noise_snu"] == pytest.approx(q)
    assert e.electronic_noise_snu.contains(VEL_TRUE + q)
    assert not e.electronic_noise_snu.contains(VEL_TRUE)
    assert e.transmittance.contains(0.05)
    assert e.excess_noise_snu.contains(XI_TRUE)


@pytest.mark.parametrize("modulation", ["qpsk", "psqam64"])
def test_discrete_modulation_estimates(modulation: str) -> None:
    ch = _channel("heterodyne")
    b = simulate_block(
        ch,
        n_symbols=200_000,
        rng=np.random.default_rng(8),
        settings=SessionSettings(modulation=modulation, adc_bits=0),
    )
    e = estimate(b, disclosed_fraction=0.5, epsilon_pe=1e-4, rng=np.random.default_rng(9))
    assert e.transmittance.contains(T_TRUE)
    assert e.excess_noise_snu.contains(XI_TRUE)
    assert e.gates.passed, e.gates.reasons
    if modulation == "qpsk":  # every QPSK point has x² = V_A exactly
        assert e.modulation_variance_snu == pytest.approx(VA, rel=1e-6)


# ---------------------------------------------------------------------------- gates


@pytest.fixture(scope="module")
def good_block() -> TransmissionBlock:
    return simulate_block(_channel(), n_symbols=300_000, rng=np.random.default_rng(21))


def _est(block: TransmissionBlock | list[TransmissionBlock], seed: int = 22) -> Estimates:
    return estimate(block, disclosed_fraction=0.5, epsilon_pe=1e-6, rng=np.random.default_rng(seed))


def test_good_data_pass_every_gate(good_block: TransmissionBlock) -> None:
    e = _est(good_block)
    assert e.gates.passed and e.gates.reasons == ()
    assert enforce_gates(e) is e
    e.require_passed()


def test_gate_negative_excess_noise(good_block: TransmissionBlock) -> None:
    # A shot-noise calibration taken at 10 % too high LO power biases the SNU upwards; the
    # data then look quieter than vacuum and ξ̂ ≈ ξ − 0.1/ηT is significantly negative.
    b = good_block
    s = b.bob_samples.astype(np.float64)
    sel = b.slot_kind == SLOT_SHOT_NOISE
    s[sel] *= math.sqrt(1.10)
    e = _est(replace(b, bob_samples=s))
    assert not e.gates.passed
    assert any("significantly below zero" in r for r in e.gates.reasons), e.gates.reasons
    with pytest.raises(SecurityAbort, match="below zero"):
        e.require_passed()


def test_gate_non_gaussian_mean(good_block: TransmissionBlock) -> None:
    b = good_block
    s = b.bob_samples.astype(np.float64)
    s[b.slot_kind == SLOT_DATA] += 0.05 * math.sqrt(b.metadata.truth["shot_noise_variance_raw"])
    e = _est(replace(b, bob_samples=s))
    assert any("residual mean" in r for r in e.gates.reasons), e.gates.reasons


def test_gate_non_gaussian_kurtosis(good_block: TransmissionBlock) -> None:
    # Heavy-tailed (Laplace) extra noise on the data: kurtosis ≫ Gaussian's.
    b = good_block
    s = b.bob_samples.astype(np.float64)
    d = b.slot_kind == SLOT_DATA
    g = math.sqrt(b.metadata.truth["shot_noise_variance_raw"])
    s[d] += np.random.default_rng(3).laplace(0.0, 0.5 * g, size=int(d.sum()))
    e = _est(replace(b, bob_samples=s))
    assert any("kurtosis" in r for r in e.gates.reasons), e.gates.reasons


def test_gate_clipping() -> None:
    b = simulate_block(
        _channel(transmittance=0.9),
        n_symbols=100_000,
        rng=np.random.default_rng(4),
        settings=SessionSettings(adc_full_scale_snu=3.0),
    )
    e = _est(b)
    assert e.clip_fraction > 1e-3
    assert any("clipping" in r for r in e.gates.reasons), e.gates.reasons


def test_gate_shot_noise_drift() -> None:
    # The LO power (hence the shot-noise variance) rises 20 % over the block. With n_s shot
    # records the relative slope's standard error is √(24/n_s) ≈ 0.028 here, so 20 % is ≈ 7 s.e.
    b = simulate_block(
        _channel(),
        n_symbols=300_000,
        rng=np.random.default_rng(31),
        settings=SessionSettings(lo_power_drift_fraction=0.2),
    )
    e = _est(b)
    assert e.shot_noise_drift_fraction == pytest.approx(0.2, abs=0.1)
    assert any("shot noise drifts" in r for r in e.gates.reasons), e.gates.reasons
    with pytest.raises(SecurityAbort, match="drifts"):
        enforce_gates(e)


# ------------------------------------------------------------------- streaming & key data


def test_streamed_estimate_equals_one_shot() -> None:
    ch = _channel(
        "heterodyne", local_oscillator="local", linewidth_alice_hz=1e3, linewidth_bob_hz=1e3
    )
    s = SessionSettings(chunk_slots=4096)
    chunks = list(simulate_stream(ch, n_symbols=50_000, rng=np.random.default_rng(41), settings=s))
    assert len(chunks) > 5
    one = _est(TransmissionBlock.concatenate(chunks), seed=42)
    many = _est(chunks, seed=42)
    for name in (
        "transmittance",
        "excess_noise_snu",
        "electronic_noise_snu",
        "snr",
        "shot_noise_raw",
    ):
        a, b = getattr(one, name), getattr(many, name)
        # identical sums in a different order: agreement to rounding
        assert a.value == pytest.approx(b.value, rel=1e-9, abs=1e-12)
        assert a.std == pytest.approx(b.std, rel=1e-9)
    assert one.n_disclosed_symbols == many.n_disclosed_symbols
    assert one.gates == many.gates


def test_key_samples_are_the_undisclosed_data(good_block: TransmissionBlock) -> None:
    e = _est(good_block)
    km = key_samples(good_block, e)
    disc = disclosed_mask(good_block, key=e.disclosure_key, fraction=e.disclosed_fraction)
    data = np.flatnonzero(good_block.slot_kind == SLOT_DATA)
    assert km.slots.size == e.n_key_symbols
    assert np.array_equal(np.sort(np.concatenate((km.slots, np.flatnonzero(disc)))), data)
    # Bob's key samples in SNU: Var = ηT V_A + ηT ξ + 1 + v_el (+ quantisation), to 5 s.e.
    expect = ETA * T_TRUE * (VA + XI_TRUE) + 1 + VEL_TRUE
    expect += good_block.metadata.truth["quantisation_noise_snu"]
    n = km.bob.size
    assert (
        abs(km.bob.var() / expect - 1)
        < 5 * math.sqrt(2 / n) + 5 * e.shot_noise_raw.std / e.shot_noise_raw.value
    )
    assert km.alice.shape == km.bob.shape


def test_heterodyne_key_samples_have_two_columns() -> None:
    b = simulate_block(_channel("heterodyne"), n_symbols=5_000, rng=np.random.default_rng(1))
    e = _est(b)
    km = key_samples(b, e)
    assert km.alice.shape == km.bob.shape == (e.n_key_symbols, 2)


def test_estimate_argument_errors(good_block: TransmissionBlock) -> None:
    with pytest.raises(ConfigError, match="disclosed_fraction"):
        estimate(good_block, disclosed_fraction=1.5, epsilon_pe=0.1, rng=np.random.default_rng(0))
    with pytest.raises(DataFormatError, match="empty"):
        estimate([], disclosed_fraction=0.5, epsilon_pe=0.1, rng=np.random.default_rng(0))
    tiny = simulate_block(_channel(), n_symbols=10, rng=np.random.default_rng(0))
    with pytest.raises(DataFormatError):
        estimate(tiny, disclosed_fraction=0.5, epsilon_pe=0.1, rng=np.random.default_rng(0))


def test_announced_disclosure_key_gives_the_same_estimate(good_block: TransmissionBlock) -> None:
    # the pipeline announces the key (drawn from SecretRandom) and passes it in: the result
    # must be exactly what the rng path gives for the same key
    key = int(np.random.default_rng(22).integers(0, DISCLOSURE_KEY_BOUND))
    via_rng = _est(good_block, seed=22)
    via_key = estimate(good_block, disclosed_fraction=0.5, epsilon_pe=1e-6, disclosure_key=key)
    assert via_rng.disclosure_key == via_key.disclosure_key == key
    assert via_key == via_rng
    # Alice's view (start + slot kinds only) selects exactly Bob's disclosed slots
    alice = disclosed_slots(
        start=good_block.start, slot_kind=good_block.slot_kind, key=key, fraction=0.5
    )
    assert np.array_equal(alice, disclosed_mask(good_block, key=key, fraction=0.5))
    assert int(alice.sum()) == via_key.n_disclosed_symbols


def test_estimate_needs_exactly_one_disclosure_source(good_block: TransmissionBlock) -> None:
    kw = {"disclosed_fraction": 0.5, "epsilon_pe": 0.1}
    with pytest.raises(ConfigError, match="exactly one"):
        estimate(good_block, **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exactly one"):
        estimate(good_block, rng=np.random.default_rng(0), disclosure_key=1, **kw)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="disclosure_key"):
        estimate(good_block, disclosure_key=-1, **kw)  # type: ignore[arg-type]
