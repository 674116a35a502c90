"""Finite-size (LGG 2010) rates and worst-case parameters; Zhang 2020 as upper bounds."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import erfc

from cvqkd.errors import ConfigError
from cvqkd.keyrate.finite_size import (
    SecurityParameters,
    confidence_z,
    delta_privacy_bits,
    expected_estimates,
    finite_size_gg02,
    worst_case_parameters,
)
from cvqkd.keyrate.gaussian import gg02
from cvqkd.units import transmittance_from_loss_db
from tests.conftest import load_reference

SEC = SecurityParameters.uniform(1e-10)
LINK = dict(
    transmittance=0.3,
    excess_noise_snu=0.01,
    modulation_variance_snu=4.0,
    detector_efficiency=0.6,
    electronic_noise_snu=0.05,
    reconciliation_efficiency=0.95,
)


def test_confidence_number_is_the_gaussian_quantile() -> None:
    for eps in (1e-3, 1e-10, 2.0**-32):
        z = confidence_z(epsilon_pe=eps)
        # two-sided Gaussian tail: erfc(z/√2) = ε, to double precision
        assert erfc(z / np.sqrt(2.0)) == pytest.approx(eps, rel=1e-9)


def test_worst_case_formula_by_hand() -> None:
    t_hat, s2, m, va, eta, vel = 0.4, 1.1, 1e6, 4.0, 0.6, 0.05
    w = worst_case_parameters(
        t_hat=t_hat,
        sigma_sq_hat=s2,
        estimation_symbols=m,
        modulation_variance_snu=va,
        detector_efficiency=eta,
        electronic_noise_snu=vel,
        epsilon_pe=1e-10,
    )
    z = 6.466951074732419  # √2 erfinv(1 − 1e-10)
    t_min = t_hat - z * np.sqrt(s2 / (m * va))
    s2_max = s2 + z * s2 * np.sqrt(2.0) / np.sqrt(m)
    assert w.transmittance_min == pytest.approx(t_min**2 / eta, rel=1e-12)
    assert w.excess_noise_max_snu == pytest.approx((s2_max - 1 - vel) / (t_min**2), rel=1e-12)


@pytest.mark.parametrize("detection", ["homodyne", "heterodyne"])
def test_worst_case_tends_to_truth_for_large_m(detection: str) -> None:
    t, s2 = expected_estimates(
        transmittance=0.3,
        excess_noise_snu=0.01,
        detector_efficiency=0.6,
        electronic_noise_snu=0.05,
        detection=detection,
    )  # type: ignore[arg-type]
    w = worst_case_parameters(
        t_hat=t,
        sigma_sq_hat=s2,
        estimation_symbols=1e20,
        modulation_variance_snu=4.0,
        detector_efficiency=0.6,
        electronic_noise_snu=0.05,
        detection=detection,
    )  # type: ignore[arg-type]
    # the interval half-widths scale as 1/√m = 1e-10
    assert w.transmittance_min == pytest.approx(0.3, rel=1e-8)
    assert w.excess_noise_max_snu == pytest.approx(0.01, rel=1e-5)


def test_estimators_unbiased_and_intervals_cover_against_monte_carlo() -> None:
    """Independent check: simulate homodyne data y = t x + z and apply the estimators."""
    rng = np.random.default_rng(12345)
    t_true, eta, vel, xi, va = 0.3, 0.6, 0.05, 0.02, 4.0
    t_exp, s2_exp = expected_estimates(
        transmittance=t_true, excess_noise_snu=xi, detector_efficiency=eta, electronic_noise_snu=vel
    )
    m, trials, eps = 4000, 400, 0.05
    covered_t = covered_s = 0
    t_hats = []
    for _ in range(trials):
        x = rng.normal(0.0, np.sqrt(va), m)
        y = t_exp * x + rng.normal(0.0, np.sqrt(s2_exp), m)
        t_hat = float(x @ y / (x @ x))
        s2_hat = float(np.mean((y - t_hat * x) ** 2))
        t_hats.append(t_hat)
        w = worst_case_parameters(
            t_hat=t_hat,
            sigma_sq_hat=s2_hat,
            estimation_symbols=m,
            modulation_variance_snu=va,
            detector_efficiency=eta,
            electronic_noise_snu=vel,
            epsilon_pe=eps,
        )
        covered_t += float(w.t_min) <= t_exp
        covered_s += float(w.sigma_sq_max) >= s2_exp
    # mean of t̂: standard error √(σ²/(m V_A))/√trials ≈ 4e-4; 5 s.e. tolerance
    assert np.mean(t_hats) == pytest.approx(t_exp, abs=2e-3)
    # one-sided bounds at z(ε=0.05) cover with probability ≥ 1 − ε/2; binomial s.e. ≈ 0.008
    assert covered_t / trials >= 0.95
    assert covered_s / trials >= 0.95


def test_delta_by_hand() -> None:
    n = 1e9
    want = 7 * np.sqrt(np.log2(2 / 1e-10) / n) + 2 / n * np.log2(1 / 1e-10)
    assert delta_privacy_bits(
        key_symbols=n, epsilon_smooth=1e-10, epsilon_pa=1e-10
    ) == pytest.approx(want, rel=1e-14)


def test_finite_size_tends_to_asymptotic_and_grows_with_block_size() -> None:
    sizes = np.logspace(6, 18, 13)
    r = finite_size_gg02(**LINK, block_size=sizes, estimation_fraction=0.2, security=SEC)  # type: ignore[arg-type]
    k = np.asarray(r.key_rate_bits_per_symbol)
    assert np.all(np.diff(k) > 0)
    asym = gg02(**LINK).key_rate_bits_per_symbol  # type: ignore[arg-type]
    # at N = 1e18: Δ ≈ 5e-8 bit and ξ_max − ξ ≈ 1e-7 SNU (z σ² √(2/m)/(ηT)), i.e. ~1e-7 bit
    # in all, 2e-6 relative; the limit is (n/N) K_asym
    assert k[-1] == pytest.approx(0.8 * asym, rel=1e-5)
    assert np.all(k < 0.8 * asym)
    assert r.epsilon_total == pytest.approx(4e-10)


def test_zhang2020_published_finite_size_rates_are_below_our_asymptotic_bound() -> None:
    ref = load_reference("gg02_zhang2020_bounds.json")
    com = ref["common"]
    for row in ref["rows"]:
        k = gg02(
            transmittance=transmittance_from_loss_db(row["loss_db"]),
            excess_noise_snu=row["worst_case_excess_noise_snu"],
            modulation_variance_snu=row["modulation_variance_snu"],
            detector_efficiency=com["detector_efficiency"],
            electronic_noise_snu=row["electronic_noise_snu"],
            reconciliation_efficiency=row["reconciliation_efficiency"],
            detection=com["detection"],
        ).key_rate_bits_per_symbol
        bps = (
            com["symbol_rate_hz"]
            * (1 - com["reference_pulse_fraction"])
            * (1 - row["frame_error_rate"])
            * k
        )
        assert bps >= row["published_key_rate_bps"], row["length_km"]


def test_security_parameters_validate() -> None:
    with pytest.raises(ConfigError, match="epsilon_pe"):
        SecurityParameters(epsilon_pe=0.0)
    with pytest.raises(ConfigError, match="estimation_fraction"):
        finite_size_gg02(**LINK, block_size=1e9, estimation_fraction=1.0, security=SEC)  # type: ignore[arg-type]
