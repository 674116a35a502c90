"""`cvqkd scenarios` and `cvqkd budget`: JSON fields, human tables, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cvqkd.cli.main import run
from cvqkd.link.budget import SOURCE_NAMES


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:  # type: ignore[type-arg]
    assert run(argv) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_scenarios_json_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["scenarios", "--json"])
    names = [s["name"] for s in out["scenarios"]]
    assert out["default"] == "seed-120km" == names[0]
    assert {"kumar2015-25km", "lodewyck2007-25km", "metro-25km-80ch"} <= set(names)
    assert all(s["description"] for s in out["scenarios"])


def test_budget_json_fields_and_consistency(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["budget", "seed-120km", "--json"])
    for key in (
        "scenario",
        "transmittance",
        "detector_efficiency",
        "electronic_noise_snu",
        "sources",
        "excess_noise_snu",
        "key_rate_bits_per_symbol",
        "key_rate_bps",
    ):
        assert key in out
    assert out["scenario"] == "seed-120km"
    assert set(out["sources"]) == {*SOURCE_NAMES, "detector"}
    # excess_noise_snu is the untrusted total: every source but the trusted detector
    untrusted = {k: s for k, s in out["sources"].items() if not s["trusted"]}
    assert set(untrusted) == set(SOURCE_NAMES)
    total = sum(s["input_snu"] for s in untrusted.values())
    assert out["excess_noise_snu"] == pytest.approx(total, rel=1e-12)
    for s in out["sources"].values():
        assert s["bob_snu"] == pytest.approx(
            s["input_snu"] * out["transmittance"] * out["detector_efficiency"], rel=1e-12
        )
    # the detector entry: v_el at Bob, v_el/(ηT) at the input (exact identity, as above)
    det = out["sources"]["detector"]
    assert det["trusted"] is True
    assert det["bob_snu"] == out["electronic_noise_snu"] == 0.02
    assert out["key_rate_bits_per_symbol"] > 0
    # seed-120km uses a local LO with a pilot every 5 slots: 4/5 of the slots carry key
    assert out["key_slot_fraction"] == pytest.approx(0.8, rel=1e-12)
    assert out["key_rate_bps"] == pytest.approx(
        out["key_rate_bits_per_symbol"] * out["symbol_rate_hz"] * 0.8, rel=1e-12
    )


def test_budget_length_override(capsys: pytest.CaptureFixture[str]) -> None:
    short = _json(capsys, ["budget", "seed-120km", "--length-km", "60", "--json"])
    assert short["length_km"] == 60
    assert short["key_rate_bps"] > 0


def test_budget_table_names_every_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["budget", "kumar2015-25km"]) == 0
    out = capsys.readouterr().out
    for name in (*SOURCE_NAMES, "total excess noise", "key rate [bit/s]", "loss [dB]", "detector"):
        assert name in out
    assert "\\[" not in out  # unit labels are escaped once (by print_table), not twice


def test_budget_accepts_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import resources

    text = (resources.files("cvqkd") / "scenarios" / "kumar2015-25km.toml").read_text("utf-8")
    p = tmp_path / "mine.toml"
    p.write_text(text.replace("length_km = 25.0", "length_km = 30.0"), encoding="utf-8")
    out = _json(capsys, ["budget", str(p), "--json"])
    assert out["length_km"] == 30


def test_bad_scenario_file_exits_2_with_one_line(tmp_path: Path) -> None:
    from importlib import resources

    text = (resources.files("cvqkd") / "scenarios" / "kumar2015-25km.toml").read_text("utf-8")
    p = tmp_path / "typo.toml"
    p.write_text(text.replace("loss_db_per_km = 0.2", "los_db_per_km = 0.2"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "cvqkd", "budget", str(p), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "unknown key 'fibre.los_db_per_km'" in lines[0] and str(p) in lines[0]
    assert proc.stdout == ""


def test_bad_length_is_a_config_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["budget", "seed-120km", "--length-km", "-3"]) == 2
    assert "--length-km must be > 0" in capsys.readouterr().err


def test_budget_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    base = _json(capsys, ["budget", "seed-120km", "--json"])
    more = _json(capsys, ["budget", "seed-120km", "--channels", "16", "--json"])
    hot = _json(capsys, ["budget", "seed-120km", "--launch-power-dbm", "-6", "--json"])
    assert more["classical_channels"] == 16
    assert hot["total_launch_power_w"] == pytest.approx(8 * 10 ** (-0.6) * 1e-3)
    # Raman is linear in the launch power: every channel from the scenario's power to −6 dBm.
    ratio = (
        hot["sources"]["raman_forward"]["input_snu"] / base["sources"]["raman_forward"]["input_snu"]
    )
    power_ratio = hot["total_launch_power_w"] / base["total_launch_power_w"]
    assert power_ratio > 1.5  # the override really changed the power
    assert ratio == pytest.approx(power_ratio, rel=1e-12)
    assert more["excess_noise_snu"] > base["excess_noise_snu"]
    o_band = _json(capsys, ["budget", "seed-120km", "--quantum-wavelength-nm", "1310", "--json"])
    assert o_band["quantum_wavelength_nm"] == pytest.approx(1310)
    assert run(["budget", "seed-120km", "--quantum-wavelength-nm", "500"]) == 2
    assert "--quantum-wavelength-nm" in capsys.readouterr().err
