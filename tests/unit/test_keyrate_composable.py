"""Composable GG02 key rate (Mountogiannakis et al. 2022): terms, limits, minimum block size."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.keyrate.composable import (
    composable_epsilon,
    composable_gg02,
    delta_aep_bits,
    minimum_block_size,
    theta_bits,
)
from cvqkd.keyrate.finite_size import SecurityParameters
from cvqkd.keyrate.gaussian import gg02

SEC = SecurityParameters.uniform(2.0**-32)
LINK = dict(
    transmittance=0.3,
    excess_noise_snu=0.01,
    modulation_variance_snu=4.0,
    detector_efficiency=0.6,
    electronic_noise_snu=0.05,
    reconciliation_efficiency=0.95,
)


def test_terms_by_hand() -> None:
    # Δ_AEP with d = 2, p_EC = 1, ε_s = 2^-32: 4 log2(2 + 2) √(log2 18 + 128)
    assert delta_aep_bits(
        discretisation_bits=2, frame_success_probability=1.0, epsilon_smooth=2.0**-32
    ) == pytest.approx(8.0 * np.sqrt(np.log2(18.0) + 128.0), rel=1e-14)
    # Θ with p_EC = 0.5, ε_s → 0, ε_h = 2^-32: log2(0.5) + 2 log2(√2 · 2^-32) = −1 + 1 − 64
    assert theta_bits(
        frame_success_probability=0.5, epsilon_smooth=1e-300, epsilon_pa=2.0**-32
    ) == pytest.approx(-64.0, rel=1e-14)
    sec = SecurityParameters(
        epsilon_pe=1e-9, epsilon_smooth=2e-9, epsilon_pa=3e-9, epsilon_cor=4e-9, epsilon_ent=5e-9
    )
    # ε = ε_cor + ε_s + ε_h + p_EC(2 ε_PE + ε_ent)
    assert composable_epsilon(security=sec, frame_success_probability=0.8) == pytest.approx(
        4e-9 + 2e-9 + 3e-9 + 0.8 * (2e-9 + 5e-9), rel=1e-14
    )


def test_rate_equals_formula_assembled_from_parts() -> None:
    r = composable_gg02(
        **LINK,
        block_size=1e9,
        estimation_fraction=0.1,
        security=SEC,  # type: ignore[arg-type]
        frame_success_probability=0.9,
        discretisation_bits=5,
    )
    n = 0.9e9
    want = (n * 0.9 / 1e9) * (
        r.rate_worst_case_bits - r.delta_aep_bits / np.sqrt(n) + r.theta_bits / n
    )
    assert r.key_rate_bits_per_symbol == pytest.approx(want, rel=1e-14)
    # R_M uses the worst case, so it is below the asymptotic β I − χ
    assert r.rate_worst_case_bits < gg02(**LINK).key_rate_bits_per_symbol  # type: ignore[arg-type]


def test_tends_to_p_ec_times_kept_fraction_times_asymptotic() -> None:
    sizes = np.logspace(7, 19, 7)
    r = composable_gg02(
        **LINK,
        block_size=sizes,
        estimation_fraction=0.1,
        security=SEC,  # type: ignore[arg-type]
        frame_success_probability=0.9,
    )
    k = np.asarray(r.key_rate_bits_per_symbol)
    assert np.all(np.diff(k) > 0)
    asym = gg02(**LINK).key_rate_bits_per_symbol  # type: ignore[arg-type]
    # at N = 1e19 the Δ_AEP/√n term is ~1e-7 bit: 1e-5 relative is ample
    assert k[-1] == pytest.approx(0.9 * 0.9 * asym, rel=1e-5)


def test_minimum_block_size_is_the_zero_crossing() -> None:
    kw = dict(**LINK, estimation_fraction=0.1, security=SEC, frame_success_probability=0.9)
    n_min = float(minimum_block_size(**kw))  # type: ignore[arg-type]
    assert 1e4 < n_min < 1e12
    assert composable_gg02(block_size=n_min, **kw).key_rate_bits_per_symbol > 0  # type: ignore[arg-type]
    assert composable_gg02(block_size=0.999 * n_min, **kw).key_rate_bits_per_symbol <= 0  # type: ignore[arg-type]
    # vectorised over distance: longer links need bigger blocks; a dead link needs infinity
    t = np.array([0.5, 0.3, 0.1, 0.1])
    xi = np.array([0.01, 0.01, 0.01, 0.2])
    dead = {**LINK, "transmittance": 0.1, "excess_noise_snu": 0.2}
    assert gg02(**dead).key_rate_bits_per_symbol < 0  # type: ignore[arg-type]
    sizes = np.asarray(
        minimum_block_size(**{**kw, "transmittance": t, "excess_noise_snu": xi})  # type: ignore[arg-type]
    )
    assert np.all(np.diff(sizes[:3]) > 0)
    assert np.isinf(sizes[3])
