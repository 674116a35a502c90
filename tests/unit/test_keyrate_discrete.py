"""Discrete modulation (Denys–Brown–Leverrier 2021): closed forms, Gaussian limit, ordering."""

from __future__ import annotations

from math import factorial

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.keyrate.discrete import (
    constellation,
    constellation_moments,
    constellation_mutual_information_bits,
    discrete_modulation_rate,
)
from cvqkd.keyrate.gaussian import gg02

T, XI, BETA = 0.1, 0.01, 0.95


@pytest.mark.parametrize("n_photons", [0.1, 0.4, 1.5])
def test_qpsk_moments_match_closed_form(n_photons: float) -> None:
    """QPSK: τ = Σ_k λ_k |φ_k⟩⟨φ_k| with λ_k = e^{−α²} Σ_n α^{2(4n+k)}/(4n+k)!, and
    a|φ_k⟩ = α √(λ_{k−1}/λ_k) |φ_{k−1}⟩, which gives C = α² Σ λ_{k−1}^{3/2} λ_k^{−1/2} and
    w = α² Σ λ_{k−1}²/λ_k − C²/α² (derived in the eigenbasis; independent of the Fock code)."""
    a2 = n_photons
    lam = [
        np.exp(-a2) * sum(a2 ** (4 * n + k) / factorial(4 * n + k) for n in range(40))
        for k in range(4)
    ]
    c_want = a2 * sum(lam[k - 1] ** 1.5 / lam[k] ** 0.5 for k in range(4))
    w_want = a2 * sum(lam[k - 1] ** 2 / lam[k] for k in range(4)) - c_want**2 / a2
    c_got, w_got = constellation_moments(constellation("qpsk", modulation_variance_snu=2 * a2))
    # double precision on both sides; the guarded support (rank 4) keeps ~1e-13
    assert c_got == pytest.approx(c_want, rel=1e-10)
    assert w_got == pytest.approx(w_want, rel=1e-8, abs=1e-13)


def test_shaped_qam_approaches_thermal_moments() -> None:
    """A discrete-Gaussian 256-QAM samples a Gaussian: C → √(n(n+1)) and w → 0."""
    for va in (1.0, 5.0):
        c, w = constellation_moments(
            constellation("qam256", modulation_variance_snu=va, shaping="discrete-gaussian")
        )
        n = va / 2
        assert c == pytest.approx(np.sqrt(n * (n + 1)), rel=1e-4)
        assert w < 5e-4


def test_fock_truncation_converged() -> None:
    c = constellation("qam64", modulation_variance_snu=4.0)
    a = constellation_moments(c)
    b = constellation_moments(c, fock_dimension=140)
    assert a[0] == pytest.approx(b[0], rel=1e-9)
    assert a[1] == pytest.approx(b[1], rel=1e-6, abs=1e-12)


def test_mutual_information_against_monte_carlo() -> None:
    rng = np.random.default_rng(2024)
    c = constellation("qam16", modulation_variance_snu=4.0)
    scale, var = np.sqrt(0.3 / 2), 1.05
    got = constellation_mutual_information_bits(
        c, snr_amplitude_scale=scale, noise_variance_snu=var
    )
    s = scale * 2 * c.amplitudes
    n = 200_000
    k = rng.choice(s.size, size=n, p=c.probabilities)
    y = s[k] + rng.normal(0, np.sqrt(var), n) + 1j * rng.normal(0, np.sqrt(var), n)
    logf = -(np.abs(y[:, None] - s[None, :]) ** 2) / (2 * var)
    post = np.exp(logf - logf.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    samples = np.log2(post[np.arange(n), k] / c.probabilities[k])
    mc, se = samples.mean(), samples.std() / np.sqrt(n)
    assert got == pytest.approx(mc, abs=5 * se)


def test_mutual_information_limits() -> None:
    c = constellation("qpsk", modulation_variance_snu=40.0)
    # noiseless-ish: QPSK carries its 2 bits
    assert constellation_mutual_information_bits(
        c, snr_amplitude_scale=1.0, noise_variance_snu=1.0
    ) == pytest.approx(2.0, abs=1e-6)


def test_shaped_256qam_approaches_gg02_heterodyne() -> None:
    for va in (1.0, 5.0):
        g = gg02(
            transmittance=T,
            excess_noise_snu=XI,
            modulation_variance_snu=va,
            reconciliation_efficiency=BETA,
            detection="heterodyne",
        )
        c = constellation("qam256", modulation_variance_snu=va, shaping="discrete-gaussian")
        d = discrete_modulation_rate(
            constellation=c, transmittance=T, excess_noise_snu=XI, reconciliation_efficiency=BETA
        )
        # I_AB of the shaped grid equals the Gaussian one to 1e-5 relative
        assert d.mutual_information_bits == pytest.approx(g.mutual_information_bits, rel=1e-5)
        # a lower bound: never above GG02, within 6% of it (w ≈ 1e-4 costs a few % of K here)
        assert d.key_rate_bits_per_symbol <= g.key_rate_bits_per_symbol
        assert d.key_rate_bits_per_symbol == pytest.approx(g.key_rate_bits_per_symbol, rel=0.06)


def test_constellation_ordering_and_qpsk_below_gg02() -> None:
    va = 1.0
    g = gg02(
        transmittance=T,
        excess_noise_snu=XI,
        modulation_variance_snu=va,
        reconciliation_efficiency=BETA,
        detection="heterodyne",
    ).key_rate_bits_per_symbol
    rates = {}
    for name, shaping in [
        ("qpsk", "uniform"),
        ("psk8", "uniform"),
        ("qam16", "uniform"),
        ("qam64", "uniform"),
        ("qam256", "discrete-gaussian"),
    ]:
        c = constellation(name, modulation_variance_snu=va, shaping=shaping)  # type: ignore[arg-type]
        rates[name] = discrete_modulation_rate(
            constellation=c,
            transmittance=T,
            excess_noise_snu=XI,
            reconciliation_efficiency=BETA,
            mutual_information="gaussian",
        ).key_rate_bits_per_symbol
    assert rates["qpsk"] < rates["psk8"] < rates["qam16"] < rates["qam64"] < rates["qam256"] < g
    # QPSK at small amplitude with low noise: positive, and still below GG02
    c = constellation("qpsk", modulation_variance_snu=0.4)
    q = discrete_modulation_rate(
        constellation=c, transmittance=0.5, excess_noise_snu=0.002, reconciliation_efficiency=BETA
    ).key_rate_bits_per_symbol
    gq = gg02(
        transmittance=0.5,
        excess_noise_snu=0.002,
        modulation_variance_snu=0.4,
        reconciliation_efficiency=BETA,
        detection="heterodyne",
    ).key_rate_bits_per_symbol
    assert 0 < q < gq


def test_vectorised_over_channel() -> None:
    c = constellation("psk8", modulation_variance_snu=1.0)
    t = np.array([0.5, 0.2, 0.1])
    v = discrete_modulation_rate(
        constellation=c, transmittance=t, excess_noise_snu=XI, reconciliation_efficiency=BETA
    )
    for i, ti in enumerate(t):
        s = discrete_modulation_rate(
            constellation=c,
            transmittance=float(ti),
            excess_noise_snu=XI,
            reconciliation_efficiency=BETA,
        )
        # ulp-level differences between numpy's array and scalar math paths only
        assert np.asarray(v.key_rate_bits_per_symbol)[i] == pytest.approx(
            s.key_rate_bits_per_symbol, abs=1e-12
        )


def test_unknown_modulation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown modulation"):
        constellation("qam32", modulation_variance_snu=1.0)
    with pytest.raises(ConfigError, match="QAM"):
        constellation("qpsk", modulation_variance_snu=1.0, shaping="discrete-gaussian")
