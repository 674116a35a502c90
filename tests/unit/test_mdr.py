"""Tests for multidimensional reconciliation: algebra identities, rotation, LLRs, independence."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.mdr import (
    DIMENSIONS,
    alice_llr,
    awgn_capacity,
    biawgn_capacity,
    bob_encode,
    conjugate,
    mdr_mutual_information,
    multiply,
    rotate,
)
from tests.conftest import load_reference


@pytest.mark.parametrize("d", DIMENSIONS)
def test_norm_is_multiplicative_and_inverse(d: int) -> None:
    rng = np.random.default_rng(d)
    a = rng.standard_normal((1000, d))
    b = rng.standard_normal((1000, d))
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(np.linalg.norm(multiply(a, b), axis=1), na * nb, rtol=1e-12)
    # alternativity: (a b̄) b = ‖b‖² a  (what makes m = u·ȳ' satisfy m·y' = u, octonions too)
    back = multiply(multiply(a, conjugate(b)), b)
    np.testing.assert_allclose(back, a * (nb**2)[:, None], rtol=1e-10, atol=1e-10)


def test_known_products() -> None:
    # complex: (1+2i)(3+4i) = −5 + 10i; quaternions: i·j = k, j·i = −k
    assert multiply([1.0, 2.0], [3.0, 4.0]).tolist() == [-5.0, 10.0]
    e = np.eye(4)
    assert np.array_equal(multiply(e[1], e[2]), e[3])
    assert np.array_equal(multiply(e[2], e[1]), -e[3])
    # octonions are not associative: some triple of basis elements fails (ab)c = a(bc)
    o = np.eye(8)
    assoc = [
        np.allclose(multiply(multiply(o[i], o[j]), o[k]), multiply(o[i], multiply(o[j], o[k])))
        for i in range(1, 8)
        for j in range(1, 8)
        for k in range(1, 8)
    ]
    assert not all(assoc)


@pytest.mark.parametrize("d", DIMENSIONS)
def test_rotation_is_orthogonal(d: int) -> None:
    rng = np.random.default_rng(10 + d)
    m = rng.standard_normal(d)
    m /= np.linalg.norm(m)
    # the matrix of x ↦ m·x; orthogonal because ‖m·x‖ = ‖x‖
    mat = np.stack([multiply(m, e) for e in np.eye(d)], axis=1)
    np.testing.assert_allclose(mat.T @ mat, np.eye(d), atol=1e-12)


@pytest.mark.parametrize("d", DIMENSIONS)
def test_noiseless_recovers_u_exactly(d: int) -> None:
    rng = np.random.default_rng(20 + d)
    y = rng.standard_normal(4000)
    bits, m, y_norm = bob_encode(y, dimension=d, rng=rng)
    v, x_norm = rotate(y, m, dimension=d)
    u = (1.0 - 2.0 * bits.reshape(-1, d)) / np.sqrt(d)
    np.testing.assert_allclose(v, u, atol=1e-12)
    np.testing.assert_allclose(x_norm, y_norm, rtol=1e-15)
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-12)


@pytest.mark.parametrize("d", [2, 4, 8])
def test_disclosed_rotation_is_independent_of_bits(d: int) -> None:
    # m must be uniform on the sphere whatever b is: compare each coordinate's distribution
    # for tuples whose first bit is 0 with those whose first bit is 1 (two-sample KS), and
    # check the correlation of m with u vanishes. Fixed seed; p > 1e-3 fails a dependent m
    # (e.g. m = u + y') with overwhelming probability at 20 000 tuples.
    rng = np.random.default_rng(30 + d)
    y = rng.standard_normal(20000 * d)
    bits, m, _ = bob_encode(y, dimension=d, rng=rng)
    b = bits.reshape(-1, d)
    u = 1.0 - 2.0 * b
    for i in range(d):
        p = stats.ks_2samp(m[b[:, 0] == 0, i], m[b[:, 0] == 1, i]).pvalue
        assert p > 1e-3, (i, p)
    corr = (m.T @ u) / m.shape[0]  # E[m_i u_j] = 0 for all i, j; std ≈ 1/√(d·N)
    assert np.abs(corr).max() < 5.0 / np.sqrt(d * m.shape[0])
    # and m is uniform: ‖m‖ = 1 and the coordinate variance is 1/d
    np.testing.assert_allclose(m.var(axis=0), 1.0 / d, rtol=0.05)


def _max_calibration_z(llr: np.ndarray, sgn: np.ndarray, bins: int = 20) -> float:
    """Largest |mean((−1)^b) − mean(tanh(L/2))| over LLR-quantile bins, in standard errors."""
    edges = np.quantile(llr, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, llr, side="right") - 1, 0, bins - 1)
    z = 0.0
    for k in range(bins):
        sel = idx == k
        diff = sgn[sel].mean() - np.tanh(llr[sel] / 2).mean()
        z = max(z, abs(diff) * np.sqrt(sel.sum()))
    return z


@pytest.mark.parametrize("d", DIMENSIONS)
def test_llr_is_calibrated(d: int) -> None:
    # For exact LLRs, E[(−1)^b | L] = tanh(L/2). Simulate y = g x + z and compare per LLR bin
    # (20 bins of 20 000 samples; a ±1 mean has standard error ≤ 1/√20000): every bin within
    # 5 standard errors. The same check on an LLR 1.5× too large (e.g. a wrong norm or a
    # forgotten √d) fails by far more, so the test can fail.
    rng = np.random.default_rng(40 + d)
    n = 400_000
    gain, sigma_x2, noise = 0.7, 2.0, 1.3
    x = rng.normal(0.0, np.sqrt(sigma_x2), n)
    y = gain * x + rng.normal(0.0, np.sqrt(noise), n)
    bits, m, y_norm = bob_encode(y, dimension=d, rng=rng)
    llr = alice_llr(x, m, dimension=d, gain=gain, noise_variance=noise, y_norm=y_norm)
    sgn = 1.0 - 2.0 * bits
    assert _max_calibration_z(llr, sgn) < 5.0
    assert _max_calibration_z(llr * 1.5, sgn) > 10.0


def test_llr_with_expected_norm() -> None:
    rng = np.random.default_rng(50)
    x = rng.normal(0.0, 1.0, 8000)
    y = x + rng.normal(0.0, 0.5, 8000)
    bits, m, _ = bob_encode(y, dimension=8, rng=rng)
    llr = alice_llr(x, m, dimension=8, gain=1.0, noise_variance=0.25, signal_variance=1.0)
    assert np.mean((llr < 0) != bits) < 0.1  # SNR 4: most hard decisions right
    with pytest.raises(ConfigError, match="y_norm"):
        alice_llr(x, m, dimension=8, gain=1.0, noise_variance=0.25)


def test_input_errors() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="dimension"):
        bob_encode(np.ones(6), dimension=3, rng=rng)
    with pytest.raises(DataFormatError, match="multiple"):
        bob_encode(np.ones(6), dimension=4, rng=rng)
    with pytest.raises(DataFormatError, match="zero"):
        bob_encode(np.zeros(4), dimension=2, rng=rng)


def test_capacities_against_published_values() -> None:
    ref = load_reference("reconciliation_limits.json")
    lim = ref["biawgn_shannon_limit"]
    assert float(biawgn_capacity(snr=1.0 / lim["sigma"] ** 2)) == pytest.approx(
        lim["rate"], abs=1e-3
    )
    for case in ref["biawgn_over_awgn"]:
        ratio = biawgn_capacity(snr=case["snr"]) / awgn_capacity(snr=case["snr"])
        assert float(ratio) == pytest.approx(case["ratio"], abs=0.005)
    table = ref["snr_for_beta"]
    for row in table["rows"]:
        beta = row["rate"] / awgn_capacity(snr=np.array(row["snr"]))
        np.testing.assert_allclose(beta, table["betas"], rtol=1e-3)
    # at low SNR binary input costs nothing (< 0.01% at SNR 0.08 per the notes' claim)
    low = biawgn_capacity(snr=0.08) / awgn_capacity(snr=0.08)
    assert 0.99 < float(low) <= 1.0


def test_mdr_mutual_information_bounds() -> None:
    # I(b; L) ≤ I(X; Y) = C_AWGN (data processing); at low SNR MDR loses almost nothing, and a
    # larger d helps at SNR 1 (Leverrier et al. 2008, Fig. 3). Tolerances: 4 standard errors.
    rng = np.random.default_rng(60)
    c_low = float(awgn_capacity(snr=0.03))
    for d in (1, 8):
        i, se = mdr_mutual_information(snr=0.03, dimension=d, rng=rng, samples=200_000)
        assert i <= c_low + 4 * se
        assert i >= 0.9 * c_low
    i1, s1 = mdr_mutual_information(snr=1.0, dimension=1, rng=rng, samples=100_000)
    i8, s8 = mdr_mutual_information(snr=1.0, dimension=8, rng=rng, samples=100_000)
    assert i1 + 4 * (s1 + s8) < i8 <= 0.5 + 4 * s8
