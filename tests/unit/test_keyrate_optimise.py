"""Optimal modulation variance and the vectorised golden-section maximiser.

Reference: a dense brute-force grid (independent of the bracketing/golden-section logic).
"""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.keyrate.gaussian import gg02
from cvqkd.keyrate.optimise import maximise_scalar, optimal_modulation_variance


def test_maximise_scalar_finds_known_maxima_elementwise() -> None:
    centres = np.array([0.05, 0.7, 3.0, 40.0])
    x, f = maximise_scalar(
        lambda v: -((np.log(v) - np.log(centres)) ** 2), lower=0.01, upper=100.0, shape=(4,)
    )
    # golden section to 60 iterations: far below 1e-8 relative in x
    np.testing.assert_allclose(x, centres, rtol=1e-8)
    np.testing.assert_allclose(f, 0.0, atol=1e-15)


def test_maximum_on_the_boundary_is_returned() -> None:
    x, _ = maximise_scalar(lambda v: v, lower=1.0, upper=5.0)
    assert float(x) == pytest.approx(5.0, rel=1e-9)


def test_optimal_va_matches_brute_force_grid() -> None:
    t = np.array([0.5, 0.1, 0.01, 0.001])
    kw = dict(
        excess_noise_snu=0.01,
        reconciliation_efficiency=0.95,
        detector_efficiency=0.6,
        electronic_noise_snu=0.05,
    )
    best = optimal_modulation_variance(transmittance=t, **kw)  # type: ignore[arg-type]
    grid = np.logspace(-2, 3, 200_001)
    for i, ti in enumerate(t):
        k = np.asarray(
            gg02(transmittance=ti, modulation_variance_snu=grid, **kw).key_rate_bits_per_symbol  # type: ignore[arg-type]
        )
        j = int(np.argmax(k))
        # the optimiser is at least as good as the grid (up to rounding) ...
        assert np.asarray(best.rate.key_rate_bits_per_symbol)[i] >= k[j] - 1e-15
        # ... and agrees on the location to the grid step (5.8e-5 in log10 -> 1.4e-4 relative)
        va = float(np.asarray(best.modulation_variance_snu)[i])
        assert va == pytest.approx(grid[j], rel=2e-3)


def test_unit_efficiency_pushes_va_to_the_upper_bound() -> None:
    best = optimal_modulation_variance(
        transmittance=0.2, excess_noise_snu=0.0, bounds_snu=(0.1, 500.0)
    )
    assert best.modulation_variance_snu == pytest.approx(500.0, rel=1e-6)
