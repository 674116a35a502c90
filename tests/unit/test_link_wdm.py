"""ITU-T G.694.1 grid and channel plans (cvqkd.link.wdm)."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.link.wdm import band_comb, channel_comb, grid_frequency_hz, in_band, snap_to_grid_hz


def test_grid_is_anchored_at_193_1_thz() -> None:
    # G.694.1 §6: ν = 193.1 THz + n × Δ.
    assert grid_frequency_hz(0, spacing_hz=12.5e9) == 193.1e12
    assert grid_frequency_hz(-4, spacing_hz=25e9) == pytest.approx(193.0e12)
    assert snap_to_grid_hz(193.1e12 + 30e9, spacing_hz=50e9) == pytest.approx(193.15e12)


def test_off_grid_spacing_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"G\.694\.1"):
        channel_comb(count=2, spacing_hz=33e9, start_frequency_hz=193.1e12)


def test_comb_from_wavelength_climbs_in_wavelength() -> None:
    chans = channel_comb(
        count=40, spacing_hz=100e9, start_wavelength_m=1530e-9, launch_power_dbm=3.0
    )
    lam = np.array([c.wavelength_m for c in chans])
    assert len(chans) == 40
    assert np.all(np.diff(lam) > 0)
    f = np.array([c.frequency_hz for c in chans])
    np.testing.assert_allclose(np.diff(f), -100e9, rtol=1e-9)
    # first channel: the grid point nearest 1530 nm = 195.94 THz → 195.9 THz
    assert f[0] == pytest.approx(195.9e12)
    assert chans[0].launch_power_w == pytest.approx(10**0.3 * 1e-3)


def test_band_presets_count_grid_channels() -> None:
    # C band 1530–1565 nm = 191.56–195.94 THz: 100 GHz grid 191.6 … 195.9 THz → 44 channels;
    # 50 GHz → 191.60 … 195.90 = 87; C+L (1530–1625 nm, 184.49–195.94 THz) at 100 GHz → 115.
    assert len(band_comb(band="C", spacing_hz=100e9)) == 44
    assert len(band_comb(band="C", spacing_hz=50e9)) == 87
    assert len(band_comb(band="C+L", spacing_hz=100e9)) == 115


def test_band_comb_leaves_a_guard_around_the_quantum_channel() -> None:
    chans = band_comb(band="C", spacing_hz=100e9, exclude_hz=(193.1e12,), guard_hz=150e9)
    f = np.array([c.frequency_hz for c in chans])
    assert np.min(np.abs(f - 193.1e12)) >= 200e9 - 1
    assert len(chans) == 44 - 3


def test_in_band_and_unknown_band() -> None:
    assert in_band(wavelength_m=1310e-9, band="O")
    assert not in_band(wavelength_m=1310e-9, band="C+L")
    with pytest.raises(ConfigError, match="unknown band 'X'"):
        band_comb(band="C+X")
