"""Alice's constellations: exact scaling identities and sampling frequencies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cvqkd.errors import ConfigError
from cvqkd.sim.modulation import (
    MODULATIONS,
    constellation,
    default_shaping_nu,
    draw_symbols,
)

DISCRETE = [m for m in MODULATIONS if m != "gaussian"]
SIZES = {
    "qpsk": 4,
    "psk8": 8,
    "qam16": 16,
    "qam64": 64,
    "qam256": 256,
    "psqam16": 16,
    "psqam64": 64,
    "psqam256": 256,
}


@pytest.mark.parametrize("name", DISCRETE)
@pytest.mark.parametrize("va", [0.3, 4.0, 37.5])
def test_constellation_is_scaled_to_modulation_variance(name: str, va: float) -> None:
    # Exact identity (up to rounding): Σ p_k |a_k|²/2 = V_A, both quadratures equal, mean zero.
    c = constellation(name, modulation_variance_snu=va)
    assert c.points.size == SIZES[name]
    assert np.isclose(c.probabilities.sum(), 1.0, rtol=0, atol=1e-14)
    assert np.isclose(np.sum(c.probabilities * c.points.real**2), va, rtol=1e-12)
    assert np.isclose(np.sum(c.probabilities * c.points.imag**2), va, rtol=1e-12)
    assert abs(np.sum(c.probabilities * c.points)) < 1e-12 * va
    # mean photon number of the coherent states = V_A / 2
    assert np.isclose(np.sum(c.probabilities * np.abs(c.alphas) ** 2), va / 2, rtol=1e-12)


def test_psk_points_lie_on_a_circle() -> None:
    for name in ("qpsk", "psk8"):
        c = constellation(name, modulation_variance_snu=2.0)
        # |a|² = 2 V_A for every point of a PSK
        assert np.allclose(np.abs(c.points) ** 2, 4.0, rtol=1e-12)


def test_shaped_qam_weights_are_discrete_gaussian() -> None:
    nu = 0.05
    c = constellation("psqam64", modulation_variance_snu=3.0, shaping_nu=nu)
    grid = c.points / (c.points.real.max() / 7.0)  # back to the odd-integer grid ±1..±7
    w = np.exp(-nu * np.abs(grid) ** 2)
    assert np.allclose(c.probabilities, w / w.sum(), rtol=1e-10)
    # default ν: outermost level at 3 σ of exp(−ν x²) (σ² = 1/(2ν))
    assert np.isclose(15.0 / np.sqrt(1 / (2 * default_shaping_nu(256))), 3.0)


@pytest.mark.parametrize("name", ["qpsk", "psk8", "qam16", "qam64", "qam256", "psqam64"])
def test_same_constellation_as_the_key_rate_bound(name: str) -> None:
    # The simulator's Alice and the Denys–Brown–Leverrier bound (KEYRATE's module) must use the
    # same alphabet: identical amplitudes α_k = a_k/2 and weights.
    from cvqkd.keyrate import discrete

    shaped = name.startswith("psqam")
    theirs = discrete.constellation(
        name[2:] if shaped else name,
        modulation_variance_snu=2.5,
        shaping="discrete-gaussian" if shaped else "uniform",
    )
    ours = constellation(name, modulation_variance_snu=2.5)
    assert np.allclose(ours.alphas, theirs.amplitudes, rtol=0, atol=1e-12)
    assert np.allclose(ours.probabilities, theirs.probabilities, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["qpsk", "psqam16"])
def test_draw_frequencies_follow_probabilities(name: str) -> None:
    c = constellation(name, modulation_variance_snu=1.0)
    a = c.draw(200_000, rng=np.random.default_rng(5))
    idx = np.argmin(np.abs(a[:, None] - c.points[None, :]), axis=1)
    counts = np.bincount(idx, minlength=c.points.size)
    # chi-square goodness of fit; p > 1e-4 fails with probability 1e-4 under the null
    p = stats.chisquare(counts, c.probabilities * a.size).pvalue
    assert p > 1e-4


def test_gaussian_draws_have_variance_va() -> None:
    n = 400_000
    a = draw_symbols("gaussian", n, modulation_variance_snu=4.0, rng=np.random.default_rng(3))
    # sample variance of N(0, 4): standard error 4·√(2/n) ≈ 0.009; allow 5 standard errors
    for q in (a.real, a.imag):
        assert abs(np.mean(q**2) - 4.0) < 5 * 4.0 * np.sqrt(2 / n)
    assert abs(np.mean(a.real * a.imag)) < 5 * 4.0 / np.sqrt(n)


def test_bad_names_and_variances_raise() -> None:
    with pytest.raises(ConfigError, match="unknown discrete modulation"):
        constellation("qam32x", modulation_variance_snu=1.0)
    with pytest.raises(ConfigError, match="modulation_variance_snu"):
        constellation("qpsk", modulation_variance_snu=0.0)
    with pytest.raises(ConfigError, match="modulation_variance_snu"):
        draw_symbols("gaussian", 3, modulation_variance_snu=-1.0, rng=np.random.default_rng(0))
