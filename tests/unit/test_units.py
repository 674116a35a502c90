"""Unit conversions: exact identities and round trips (hypothesis)."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from cvqkd import units


def test_attenuation_convention_from_physics_sheet() -> None:
    # PHYSICS.md: 0.2 dB/km -> 0.04605 /km (exact: 0.02 ln 10).
    assert math.isclose(units.attenuation_db_per_km_to_per_m(0.2) * 1e3, 0.02 * math.log(10))


def test_known_values() -> None:
    assert units.dbm_to_watt(0.0) == 1e-3
    assert math.isclose(units.db_to_linear(-10.0), 0.1)
    assert math.isclose(units.wavelength_nm_to_frequency_thz(1550.0), 193.4144890322581)
    assert math.isclose(units.transmittance_from_loss_db(3.0), 0.5011872336272722)


def test_arrays_stay_arrays() -> None:
    out = units.db_to_linear(np.array([0.0, 10.0]))
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, [1.0, 10.0])


@given(st.floats(min_value=-80, max_value=40))
def test_dbm_round_trip(dbm: float) -> None:
    assert math.isclose(units.watt_to_dbm(units.dbm_to_watt(dbm)), dbm, abs_tol=1e-9)


@given(st.floats(min_value=1e-3, max_value=60.0))
def test_loss_transmittance_round_trip(loss_db: float) -> None:
    t = units.transmittance_from_loss_db(loss_db)
    assert math.isclose(units.loss_db_from_transmittance(t), loss_db, rel_tol=1e-12)


@given(st.floats(min_value=1200.0, max_value=1700.0))
def test_wavelength_frequency_round_trip(nm: float) -> None:
    thz = units.wavelength_nm_to_frequency_thz(nm)
    assert math.isclose(units.frequency_thz_to_wavelength_nm(thz), nm, rel_tol=1e-12)
