"""``cvqkd codes``: list, show, select, design (reproducible), and clear errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from cvqkd.cli.main import run
from cvqkd.reconciliation.codes import FAMILY, met_codes


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:  # type: ignore[type-arg]
    assert run(argv) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["codes", "list", "--json"])
    names = [c["name"] for c in out["codes"]]
    assert names == [*met_codes(), *(s.name for s in FAMILY)]
    for c in out["codes"]:
        assert 0 < c["threshold_beta"] < 1
        assert c["threshold_snr_db"] == pytest.approx(10 * math.log10(c["threshold_snr"]))
        if c["family"] == "qc":
            assert c["block_lengths"] == [100_000, 1_000_000]
            assert c["threshold_method"] == "PEXIT"
        else:
            assert c["unit"] > 0 and c["threshold_method"] == "EXIT"


def test_show_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["codes", "show", "rl-r0.2", "--json"])
    assert out["rate"] == pytest.approx(0.2)
    assert sum(p["rows"] for p in out["extension_patterns"]) == out["base_shape"][0] - 4
    assert out["generator"].startswith("cvqkd codes design --name rl-r0.2")


def test_show_met_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["codes", "show", "met-r0.02", "--json"])
    assert out["family"] == "met" and out["rate"] == pytest.approx(0.02)
    unit = out["unit"]
    assert sum(t["count"] for t in out["variable_types"]) == unit
    assert unit - sum(t["count"] for t in out["check_types"]) == round(0.02 * unit)


def test_select_json(capsys: pytest.CaptureFixture[str]) -> None:
    # SNR −15.3 dB = 0.0295 at β = 0.95 asks for rate 0.0199: the rate-0.02 MET member,
    # shortened (the MET family serves rates up to 0.02, docs/met-codes.md)
    out = _json(capsys, ["codes", "select", "--snr-db", "-15.3", "--beta", "0.95", "--json"])
    assert out["mother"] == "met-r0.02" and out["family"] == "met" and out["shortened"] > 0
    assert out["rate"] == pytest.approx(0.95 * 0.5 * math.log2(1 + 10**-1.53), rel=1e-3)
    assert out["n_vars"] == 1_000_000


def test_unknown_code_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["codes", "show", "rl-r9"]) == 2
    err = capsys.readouterr().err
    assert "no shipped code named 'rl-r9'" in err and "Traceback" not in err
    assert run(["codes", "design"]) == 2
    assert "--name NAME or --all" in capsys.readouterr().err


def test_design_is_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        argv = ["codes", "design", "--name", "rl-r0.1", "--steps", "3", "--starts", "2"]
        argv += ["--out", str(out)]
        assert run([*argv, "--json"]) == 0
        capsys.readouterr()
    assert (a / "rl-r0.1.json").read_bytes() == (b / "rl-r0.1.json").read_bytes()
    doc = json.loads((a / "rl-r0.1.json").read_text())
    assert doc["generator"] == "cvqkd codes design --name rl-r0.1 --steps 3 --starts 2  (seed 110)"


def test_analyse_spec_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the (3,6) regular ensemble as a TOML spec: DE threshold σ* = 0.8809 (Richardson &
    # Urbanke), i.e. β* = 0.5 / (½ log2(1 + 1/σ*²)) = 0.837
    spec = tmp_path / "r36.toml"
    spec.write_text('name = "r36"\nunit = 2\nvar_types = [[2, [3]]]\ncheck_types = [[1, [6]]]\n')
    out = _json(
        capsys,
        ["codes", "analyse", str(spec), "--population", "5000", "--lo", "0.7",
         "--resolution", "0.01", "--beta", "0.6", "--json"],
    )  # fmt: skip
    assert out["name"] == "r36" and out["rate"] == 0.5
    assert out["exit_beta"] == pytest.approx(0.837, abs=0.003)
    # 5 000 samples: the bracket scatters by ≈ ±0.02 in β around the threshold
    assert 0.8 <= out["de_converges_at"] < out["de_fails_at"] <= 0.88
    # far below the threshold DE converges for both seeds (the ordering in β is unit-tested)
    assert len(out["de_iterations"]["0.6"]) == 2 and None not in out["de_iterations"]["0.6"]


def test_analyse_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["codes", "analyse", "met-r9"]) == 2
    assert "neither a MET code" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"unit": 2, "var_types": [[2, [3]]], "check_types": [[1, [5]]]}')
    assert run(["codes", "analyse", str(bad), "--no-threshold"]) == 2
    err = capsys.readouterr().err
    assert "edge sockets per type differ" in err and "Traceback" not in err


def test_search_writes_a_spec_that_analyse_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "found.toml"
    out = _json(
        capsys,
        [
            "codes", "search", "--rate", "0.02", "--beta", "0.9", "--generations", "1",
            "--popsize", "1", "--population", "2000", "--max-iterations", "60",
            "--core-min", "12", "--core-max", "24", "--out", str(spec), "--json",
        ],
    )  # fmt: skip
    assert out["start"] == "met-r0.02" and out["unit"] == 400
    assert out["best"]["score"] <= next(f["score"] for f in out["finalists"] if f["is_start"])
    assert "found by: cvqkd" in spec.read_text()
    again = _json(capsys, ["codes", "analyse", str(spec), "--no-threshold", "--json"])
    assert again["rate"] == pytest.approx(0.02)
    assert again["name"] == "search-r0.02-b0.9"


def test_search_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["codes", "search", "--rate", "0.02", "--unit", "333"]) == 2
    err = capsys.readouterr().err
    assert "--unit" in err and "Traceback" not in err
    assert run(["codes", "search", "--rate", "0.02", "--start", "met-r9"]) == 2
    assert "met-r9" in capsys.readouterr().err
