"""Scenario files (cvqkd.scenario): built-ins, strict keys, one clear error line."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest

from cvqkd.errors import ConfigError
from cvqkd.scenario import builtin_scenario_names, load_scenario

MINIMAL = """
schema_version = 1
name = "t"
quantum_wavelength_nm = 1530.33
reconciliation_efficiency = 0.95

[fibre]
length_km = 50.0

[transmitter]
modulation_variance_snu = 4.0
symbol_rate_hz = 1e8
"""


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "s.toml"
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_builtins_are_listed_default_first_and_all_load() -> None:
    names = builtin_scenario_names()
    assert names[0] == "seed-120km"
    assert set(names) >= {"seed-120km", "kumar2015-25km", "lodewyck2007-25km", "metro-25km-80ch"}
    for n in names:
        s = load_scenario(n)
        assert s.name == n and s.description


def test_metro_has_80_channels_at_50_ghz() -> None:
    s = load_scenario("metro-25km-80ch")
    f = sorted(c.frequency_hz for c in s.wdm.channels)
    assert len(f) == 80
    assert all(abs((b - a) - 50e9) < 1.0 for a, b in itertools.pairwise(f))


def test_minimal_file_and_si_conversion(tmp_path: Path) -> None:
    s = load_scenario(_write(tmp_path, MINIMAL))
    assert s.fibre.length_m == 50e3
    assert s.quantum_wavelength_m == pytest.approx(1530.33e-9)
    assert s.fibre.lumped_loss_db == pytest.approx(0.5)  # 2 connectors × 0.25 dB default
    assert s.wdm.channels == ()


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ("colour = 'blue'\n", "colour"),
        ("[receiver]\nefficiency = 0.5\n", "receiver.efficiency"),
        ("[[wdm.channels]]\nwavelength_nm = 1550.0\npower_dbm = 0.0\n", "wdm.channels.0.power_dbm"),
    ],
)
def test_unknown_key_is_rejected_naming_key_and_file(tmp_path: Path, patch: str, key: str) -> None:
    text = patch + MINIMAL if not patch.startswith("[") else MINIMAL + patch
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_scenario(path)
    msg = str(exc.value)
    assert f"unknown key '{key}'" in msg
    assert path in msg
    assert "\n" not in msg


def test_typo_in_fibre_section(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL.replace("length_km", "lenght_km"))
    with pytest.raises(ConfigError, match=r"unknown key 'fibre\.lenght_km'"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("schema_version = 1", "schema_version = 2", "schema_version 2 is not supported"),
        ("length_km = 50.0", "length_km = -5.0", "fibre.length_km"),
        ('name = "t"', 'name = "t', "not valid TOML"),
        (
            "modulation_variance_snu = 4.0\n",
            "",
            "missing key 'transmitter.modulation_variance_snu'",
        ),
        ("[fibre]\n", "[fibre]\nattenuation_model = 'constant'\n", "needs loss_db_per_km"),
        ("quantum_wavelength_nm = 1530.33", "quantum_wavelength_nm = 850", "quantum_wavelength_nm"),
        (
            "symbol_rate_hz = 1e8\n",
            "symbol_rate_hz = 1e8\n[receiver]\nlo = 'local'\nphase_reference_delay_s = 2e-9\n",
            "phase_reference_delay_s applies to a transmitted LO",
        ),
        (
            "symbol_rate_hz = 1e8\n",
            "symbol_rate_hz = 1e8\n[receiver]\nphase_window_pilots = 4\n",
            "phase_window_pilots must be odd",
        ),
        (
            "symbol_rate_hz = 1e8\n",
            "symbol_rate_hz = 1e8\n[receiver]\npilot_period_slots = 1\n",
            "receiver.pilot_period_slots",
        ),
    ],
)
def test_bad_values_give_one_clear_line(tmp_path: Path, old: str, new: str, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_scenario(_write(tmp_path, MINIMAL.replace(old, new)))
    assert needle in str(exc.value)
    assert "\n" not in str(exc.value)


def test_pilot_parameters_reach_the_receiver(tmp_path: Path) -> None:
    text = MINIMAL + (
        "\n[receiver]\nlo = 'local'\npilot_period_slots = 4\npilot_mean_photon_number = 2e5\n"
        "phase_window_pilots = 3\n"
    )
    rx = load_scenario(_write(tmp_path, text)).receiver
    assert (rx.pilot_period_slots, rx.pilot_mean_photon_number, rx.phase_window_pilots) == (
        4,
        2e5,
        3,
    )


def test_unknown_band_is_rejected(tmp_path: Path) -> None:
    text = MINIMAL + "\n[[wdm.combs]]\nband = 'Q'\n"
    with pytest.raises(ConfigError, match="unknown band 'Q'"):
        load_scenario(_write(tmp_path, text))


def test_missing_scenario_names_the_builtins() -> None:
    with pytest.raises(ConfigError, match="seed-120km"):
        load_scenario("no-such-scenario")


def test_copies_for_sweeps_leave_the_original_alone() -> None:
    s = load_scenario("seed-120km")
    longer = s.with_length(length_m=150e3)
    fewer = s.with_channels(s.wdm.channels[:2])
    hotter = s.replace(wdm=s.wdm.scaled_power(factor=2.0))
    assert s.fibre.length_m == 120e3 and longer.fibre.length_m == 150e3
    assert len(fewer.wdm.channels) == 2 and len(s.wdm.channels) == 8
    assert hotter.wdm.total_launch_power_w == pytest.approx(2 * s.wdm.total_launch_power_w)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.name = "x"  # type: ignore[misc]


def test_channel_count_and_power_helpers() -> None:
    s = load_scenario("seed-120km")  # 8 channels 192.8 … 193.5 THz, quantum at 195.9 THz
    assert len(s.with_channel_count(3).wdm.channels) == 3
    big = s.with_channel_count(40)
    f = [c.frequency_hz for c in big.wdm.channels]
    assert len(f) == 40 and len(set(f)) == 40
    assert min(abs(x - s.quantum_frequency_hz) for x in f) > 100e9  # guard kept
    assert all(c.launch_power_w == s.wdm.channels[-1].launch_power_w for c in big.wdm.channels)
    hot = s.with_launch_power(launch_power_w=1e-3)
    assert hot.wdm.total_launch_power_w == pytest.approx(8e-3)
    with pytest.raises(ConfigError, match="at least two channels"):
        s.with_channel_count(1).with_channel_count(5)
