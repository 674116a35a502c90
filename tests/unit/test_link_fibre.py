"""Fibre attenuation, effective length and dispersion (cvqkd.link.fibre)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cvqkd.link.fibre import Fibre, attenuation_db_per_km
from tests.conftest import load_reference


def test_smf_and_ull_presets_match_datasheet_bands() -> None:
    ref = load_reference("fibre_g652_attenuation.json")
    for model in ("smf", "ull"):
        for nm, (lo, hi) in ref[model].items():
            a = attenuation_db_per_km(wavelength_m=float(nm) * 1e-9, model=model)
            assert lo <= a <= hi, (model, nm, a)


def test_smf_stays_under_g652d_cabled_maximum_o_to_l_band() -> None:
    ref = load_reference("fibre_g652_attenuation.json")["g652d_cabled_max_db_per_km"]
    lam = np.linspace(1310e-9, 1625e-9, 316)
    assert np.all(np.asarray(attenuation_db_per_km(wavelength_m=lam)) <= ref["1310_1625"])
    assert attenuation_db_per_km(wavelength_m=1550e-9) <= ref["1550"]


def test_minimum_loss_sits_in_the_c_to_l_band() -> None:
    # Rayleigh falls as λ⁻⁴ and the IR tail rises: the G.652.D minimum is at ~1550-1570 nm and
    # the loss at 1625 nm is ~0.02 dB/km above the 1550 nm value (datasheets, tests/data).
    ref = load_reference("fibre_g652_attenuation.json")
    lam = np.linspace(1260e-9, 1625e-9, 3651)
    a = np.asarray(attenuation_db_per_km(wavelength_m=lam))
    lo_nm, hi_nm = ref["smf_minimum_nm"]
    assert lo_nm * 1e-9 <= lam[np.argmin(a)] <= hi_nm * 1e-9
    rise = attenuation_db_per_km(wavelength_m=1625e-9) - attenuation_db_per_km(wavelength_m=1550e-9)
    lo, hi = ref["smf_rise_1550_to_1625_db_per_km"]
    assert lo <= rise <= hi


def test_constant_model_and_unit_conversion() -> None:
    f = Fibre(length_m=50e3, model="constant", loss_db_per_km=0.2, lumped_loss_db=1.0)
    # 0.2 dB/km → α = 0.2 ln(10)/10 per km (PHYSICS.md: 0.04605 /km); 10 dB + 1 dB lumped.
    assert f.attenuation_per_m(wavelength_m=1310e-9) == pytest.approx(0.2 * np.log(10) / 10 / 1e3)
    assert f.transmittance(wavelength_m=1550e-9) == pytest.approx(10 ** (-1.1), rel=1e-12)


@given(st.floats(1e3, 300e3), st.floats(0.01, 1.0))
def test_effective_length_closed_form(length_m: float, loss_db_per_km: float) -> None:
    f = Fibre(length_m=length_m, model="constant", loss_db_per_km=loss_db_per_km)
    a = loss_db_per_km * np.log(10) / 10 / 1e3
    assert f.effective_length_m(wavelength_m=1550e-9) == pytest.approx(
        (1 - np.exp(-a * length_m)) / a, rel=1e-12
    )


def test_effective_length_limits() -> None:
    short = Fibre(length_m=1.0, model="constant", loss_db_per_km=0.2)
    assert short.effective_length_m(wavelength_m=1550e-9) == pytest.approx(1.0, rel=1e-4)
    lossless = Fibre(length_m=10e3, model="constant", loss_db_per_km=0.0)
    assert lossless.effective_length_m(wavelength_m=1550e-9) == 10e3
    long = Fibre(length_m=1000e3, model="constant", loss_db_per_km=0.2)
    assert long.effective_length_m(wavelength_m=1550e-9) == pytest.approx(
        1 / (0.2 * np.log(10) / 10 / 1e3), rel=1e-9
    )


def test_dispersion_is_linear_in_wavelength() -> None:
    f = Fibre(length_m=1.0)
    # G.652 typical: D(1550) = 16.7 ps/(nm km), S = 0.056 ps/(nm² km) → D(1560) = 17.26.
    assert f.dispersion_s_per_m2_at(wavelength_m=1550e-9) == pytest.approx(16.7e-6)
    assert f.dispersion_s_per_m2_at(wavelength_m=1560e-9) == pytest.approx(17.26e-6)
