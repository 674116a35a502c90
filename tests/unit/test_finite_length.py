"""Tests of cvqkd.reconciliation.finite_length: the normal approximation for binary codes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.design import biawgn_capacity
from cvqkd.reconciliation.finite_length import (
    beta_ceiling,
    biawgn_dispersion,
    normal_approximation_fer,
    normal_approximation_rate,
)


@pytest.mark.parametrize("snr", [0.005, 0.03, 0.3, 1.0, 10.0])
def test_capacity_matches_design_module(snr: float) -> None:
    c, _ = biawgn_dispersion(snr=snr)
    assert c == pytest.approx(float(biawgn_capacity(snr)), rel=1e-5)  # design.J is tabulated


def test_dispersion_matches_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    snr = 0.5
    y = 1.0 + rng.standard_normal(2_000_000) / math.sqrt(snr)
    dens = 1.0 - np.logaddexp(0.0, -2.0 * snr * y) / math.log(2.0)
    c, v = biawgn_dispersion(snr=snr)
    assert c == pytest.approx(dens.mean(), abs=2e-3)
    assert v == pytest.approx(dens.var(), rel=5e-3)


def test_low_snr_dispersion_is_the_gaussian_one() -> None:
    # at SNR << 1 binary input loses nothing: V -> snr·log2(e)^2, as for Gaussian input
    snr = 1e-3
    _, v = biawgn_dispersion(snr=snr)
    gauss = snr * (snr + 2) / (2 * (snr + 1) ** 2) / math.log(2) ** 2
    assert v == pytest.approx(gauss, rel=2e-3)


def test_rate_and_fer_are_inverse() -> None:
    for fer in (1e-3, 0.1, 0.5):
        r = normal_approximation_rate(snr=0.03, n=1e6, fer=fer)
        assert normal_approximation_fer(snr=0.03, n=1e6, rate=r) == pytest.approx(fer, rel=1e-6)


def test_rate_approaches_capacity_with_length() -> None:
    c, _ = biawgn_dispersion(snr=0.03)
    gaps = [c - normal_approximation_rate(snr=0.03, n=n, fer=0.1) for n in (1e4, 1e6, 1e8)]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    # the gap shrinks as 1/sqrt(n) once the log(n)/(2n) term is negligible
    assert gaps[1] / gaps[2] == pytest.approx(10.0, rel=0.05)


def _gaussian_input_ceiling(rate: float, n: float, fer: float) -> float:
    """Independent reference: the same normal approximation with the Gaussian-input closed
    forms C = ½log2(1+s), V = s(s+2)/(2(s+1)²)·log2(e)² (Polyanskiy, Poor & Verdú 2010, eq.
    (293)); at SNR ≪ 1 binary input loses nothing, so both ceilings agree there."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def gap(s: float) -> float:
        c = 0.5 * math.log2(1 + s)
        v = s * (s + 2) / (2 * (s + 1) ** 2) / math.log(2) ** 2
        return c - math.sqrt(v / n) * norm.isf(fer) + math.log2(n) / (2 * n) - rate

    s = brentq(gap, 1e-6, 10.0)
    return rate / (0.5 * math.log2(1 + s))


def test_beta_ceiling_figures() -> None:
    # the ceilings quoted in the module docstring and docs/met-codes.md (0.985, 0.980), against
    # the Gaussian-input closed form
    for rate in (0.02, 0.01):
        ref = _gaussian_input_ceiling(rate, 1e6, 0.1)
        assert beta_ceiling(rate=rate, n=1e6, fer=0.1) == pytest.approx(ref, abs=5e-4)
    assert round(beta_ceiling(rate=0.02, n=1e6, fer=0.1), 3) == 0.985
    assert round(beta_ceiling(rate=0.01, n=1e6, fer=0.1), 3) == 0.980
    # shorter frames and lower FER cost efficiency
    assert beta_ceiling(rate=0.02, n=1e5, fer=0.1) < beta_ceiling(rate=0.02, n=1e6, fer=0.1)
    assert beta_ceiling(rate=0.02, n=1e6, fer=0.01) < beta_ceiling(rate=0.02, n=1e6, fer=0.1)
    # and at the ceiling the normal-approximation FER is the one asked for
    b = beta_ceiling(rate=0.02, n=1e6, fer=0.1)
    snr = 2.0 ** (2 * 0.02 / b) - 1.0
    assert normal_approximation_fer(snr=snr, n=1e6, rate=0.02) == pytest.approx(0.1, rel=1e-4)


@pytest.mark.parametrize(
    "call",
    [
        lambda: biawgn_dispersion(snr=0.0),
        lambda: biawgn_dispersion(snr=float("nan")),
        lambda: normal_approximation_rate(snr=0.03, n=1e6, fer=0.0),
        lambda: normal_approximation_fer(snr=0.03, n=0.5, rate=0.02),
        lambda: beta_ceiling(rate=1.5, n=1e6, fer=0.1),
    ],
)
def test_bad_input_is_a_config_error(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        call()
