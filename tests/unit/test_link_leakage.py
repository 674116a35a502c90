"""Crosstalk, ASE (cvqkd.link.leakage) and phase noise (cvqkd.link.phase)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cvqkd.link.leakage import (
    ase_photons_per_mode,
    crosstalk_photons_per_mode,
    spontaneous_emission_factor,
)
from cvqkd.link.phase import phase_error_variance_rad2, phase_noise_snu
from cvqkd.units import PLANCK_J_S


def test_ideal_high_gain_amplifier_has_nsp_one() -> None:
    # NF → 2 (3 dB quantum limit) as G → ∞ means n_sp → 1 (Desurvire 1994).
    assert spontaneous_emission_factor(
        gain_db=40.0, noise_figure_db=10 * np.log10(2.0)
    ) == pytest.approx(1.0, rel=1e-3)
    assert spontaneous_emission_factor(gain_db=0.0, noise_figure_db=5.0) == 0.0


def test_ase_photons_per_mode_identity() -> None:
    # p · 2 n_sp (G − 1) · 10^{−ISO/10}: with p = ½ and no isolation it is n_sp (G − 1).
    g = 100.0
    nsp = spontaneous_emission_factor(gain_db=20.0, noise_figure_db=5.0)
    assert ase_photons_per_mode(
        gain_db=20.0, noise_figure_db=5.0, isolation_db=0.0
    ) == pytest.approx(nsp * (g - 1))
    assert ase_photons_per_mode(
        gain_db=20.0, noise_figure_db=5.0, isolation_db=30.0, lo_polarisation_factor=1.0
    ) == pytest.approx(2 * nsp * (g - 1) * 1e-3)


def test_crosstalk_from_osnr() -> None:
    # 1 mW carrier, OSNR 40 dB in 12.5 GHz: S = 1e-7 W / 12.5 GHz (both polarisations).
    nu = 193.1e12
    n = crosstalk_photons_per_mode(
        launch_power_w=1e-3, osnr_db=40.0, isolation_db=20.0, quantum_frequency_hz=nu
    )
    assert n == pytest.approx(0.5 * 1e-7 / 12.5e9 * 1e-2 / (PLANCK_J_S * nu), rel=1e-12)
    vec = crosstalk_photons_per_mode(
        launch_power_w=np.array([1e-3, 2e-3]),
        osnr_db=40.0,
        isolation_db=20.0,
        quantum_frequency_hz=nu,
    )
    np.testing.assert_allclose(vec, [n, 2 * n], rtol=1e-12)


@given(st.floats(0.1, 100.0), st.floats(1e-8, 1e-2))
def test_phase_noise_small_error_limit(va: float, v_err: float) -> None:
    # 2 V_A (1 − e^{−V/2}) = V_A V (1 − V/4 + …): relative deviation ≤ V/4.
    xi = phase_noise_snu(modulation_variance_snu=va, phase_error_variance_rad2=v_err)
    assert xi == pytest.approx(va * v_err, rel=v_err / 4 + 1e-12)
    assert xi <= va * v_err


def test_phase_noise_saturates_at_2va() -> None:
    # A uniformly random phase destroys the correlation: ξ → 2 V_A (Marie & Alléaume 2017).
    assert phase_noise_snu(
        modulation_variance_snu=4.0, phase_error_variance_rad2=1e3
    ) == pytest.approx(8.0)


def test_phase_error_variance_local_vs_transmitted_lo() -> None:
    kw = dict(transmitter_linewidth_hz=1e3, lo_linewidth_hz=2e3, delay_s=1e-6, residual_rad2=1e-4)
    local = phase_error_variance_rad2(lo="local", **kw)  # type: ignore[arg-type]
    tlo = phase_error_variance_rad2(lo="transmitted", **kw)  # type: ignore[arg-type]
    assert local == pytest.approx(2 * np.pi * 3e3 * 1e-6 + 1e-4)
    assert tlo == pytest.approx(2 * np.pi * 1e3 * 1e-6 + 1e-4)
