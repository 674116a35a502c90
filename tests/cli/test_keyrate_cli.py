"""``cvqkd keyrate``: the issue's example, the stable JSON fields, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cvqkd.cli.main import run
from tests.conftest import load_reference

STABLE = (
    "transmittance",
    "excess_noise_snu",
    "mutual_information_bits",
    "holevo_bits",
    "key_rate_bits_per_symbol",
    "plob_bits_per_use",
)


def _json(capsys, args: list[str]) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert run(["keyrate", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_issue_example_reproduces_lodewyck2007(capsys) -> None:  # type: ignore[no-untyped-def]
    ref = load_reference("gg02_lodewyck2007.json")
    out = _json(
        capsys,
        [
            "--transmittance",
            "0.302",
            "--modulation-variance-snu",
            "18.5",
            "--excess-noise-snu",
            "0.005",
            "--detector-efficiency",
            "0.606",
            "--electronic-noise-snu",
            "0.041",
            "--reconciliation-efficiency",
            "0.898",
            "--detection",
            "homodyne",
        ],
    )
    for key in STABLE:
        assert key in out
    exp = ref["expected_per_symbol"]
    # reference tolerance: 1e-4 bit/symbol
    for key in ("mutual_information_bits", "holevo_bits", "key_rate_bits_per_symbol"):
        assert out[key] == pytest.approx(exp[key], abs=1e-4)
    assert out["security"] == "asymptotic"
    assert "key_rate_bps" not in out


def test_distance_symbol_rate_and_optimal_va(capsys) -> None:  # type: ignore[no-untyped-def]
    out = _json(
        capsys,
        [
            "--distance-km",
            "50",
            "--loss-db-per-km",
            "0.2",
            "--excess-noise-snu",
            "0.01",
            "--symbol-rate-hz",
            "1e8",
        ],
    )
    assert out["transmittance"] == pytest.approx(0.1, rel=1e-12)
    assert out["modulation_variance_optimised"] is True
    assert out["key_rate_bps"] == pytest.approx(1e8 * out["key_rate_bits_per_symbol"], rel=1e-12)
    # the asymptotic key never beats PLOB
    assert out["key_rate_bits_per_symbol"] < out["plob_bits_per_use"]


def test_security_levels_order(capsys) -> None:  # type: ignore[no-untyped-def]
    base = [
        "--transmittance",
        "0.1",
        "--excess-noise-snu",
        "0.01",
        "--modulation-variance-snu",
        "4",
    ]
    a = _json(capsys, base)
    f = _json(
        capsys, [*base, "--security", "finite-size", "--block-size", "1e9", "--epsilon", "1e-10"]
    )
    c = _json(
        capsys,
        [
            *base,
            "--security",
            "composable",
            "--block-size",
            "1e9",
            "--epsilon",
            "1e-10",
            "--epsilon-pe",
            "1e-12",
        ],
    )
    assert c["epsilon_pe"] == 1e-12 and c["epsilon_cor"] == 1e-10
    assert 0 < f["key_rate_bits_per_symbol"] < a["key_rate_bits_per_symbol"]
    assert 0 < c["key_rate_bits_per_symbol"] < a["key_rate_bits_per_symbol"]
    assert f["excess_noise_worst_case_snu"] > 0.01


def test_dv_protocols(capsys) -> None:  # type: ignore[no-untyped-def]
    ref = load_reference("bb84_decoy_gys.json")
    inp = ref["inputs"]
    out = _json(
        capsys,
        [
            "--protocol",
            "bb84-decoy",
            "--distance-km",
            "100",
            "--loss-db-per-km",
            str(inp["loss_db_per_km"]),
            "--detector-efficiency",
            str(inp["bob_efficiency"]),
            "--background-yield",
            str(inp["background_yield"]),
            "--misalignment-error",
            str(inp["misalignment_error"]),
            "--error-correction-inefficiency",
            str(inp["error_correction_inefficiency"]),
        ],
    )
    # reference tolerance: relative 1%
    assert out["key_rate_bits_per_symbol"] == pytest.approx(
        ref["recomputed"]["key_rate_bits_per_pulse_100km"], rel=1e-2
    )
    assert out["holevo_bits"] is None
    mdi = _json(
        capsys,
        [
            "--protocol",
            "mdi",
            "--distance-km",
            "50",
            "--detector-efficiency",
            "0.145",
            "--background-yield",
            "3e-6",
            "--misalignment-error",
            "0.015",
            "--mean-photon-number",
            "0.5",
        ],
    )
    assert mdi["mean_photon_number"] == 0.5
    assert 0 < mdi["key_rate_bits_per_symbol"] < mdi["plob_bits_per_use"]


def test_discrete_modulation(capsys) -> None:  # type: ignore[no-untyped-def]
    base = [
        "--transmittance",
        "0.5",
        "--excess-noise-snu",
        "0.002",
        "--modulation-variance-snu",
        "0.4",
    ]
    q = _json(capsys, [*base, "--modulation", "qpsk"])
    g = _json(capsys, [*base, "--detection", "heterodyne"])
    assert q["detection"] == "heterodyne"
    assert 0 < q["key_rate_bits_per_symbol"] < g["key_rate_bits_per_symbol"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--excess-noise-snu", "0.01"], "missing --transmittance"),
        (
            ["--transmittance", "0.5", "--distance-km", "3", "--excess-noise-snu", "0.01"],
            "not both",
        ),
        (["--transmittance", "1.5", "--excess-noise-snu", "0.01"], "--transmittance"),
        (["--transmittance", "0.5"], "--excess-noise-snu"),
        (
            ["--transmittance", "0.5", "--excess-noise-snu", "0.01", "--security", "finite-size"],
            "--block-size",
        ),
        (
            ["--transmittance", "0.5", "--excess-noise-snu", "0.01", "--epsilon", "1e-9"],
            "--security",
        ),
        (
            [
                "--transmittance",
                "0.5",
                "--excess-noise-snu",
                "0.01",
                "--modulation",
                "qpsk",
                "--detection",
                "homodyne",
            ],
            "heterodyne",
        ),
        (["--protocol", "mdi", "--transmittance", "0.1"], "--background-yield"),
        (
            [
                "--transmittance",
                "0.5",
                "--excess-noise-snu",
                "0.01",
                "--modulation-variance-snu",
                "lots",
            ],
            "--modulation-variance-snu",
        ),
        (
            [
                "--protocol",
                "bb84-decoy",
                "--transmittance",
                "0.1",
                "--detector-efficiency",
                "0.1",
                "--background-yield",
                "1e-6",
                "--misalignment-error",
                "0.01",
                "--excess-noise-snu",
                "0.01",
            ],
            "gg02 only",
        ),
    ],
)
def test_user_errors_are_one_line_exit_2(args: list[str], message: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(["keyrate", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cvqkd: error:") and err.count("\n") == 1
    assert message in err


def test_subprocess_has_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cvqkd", "keyrate", "--transmittance", "2"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
