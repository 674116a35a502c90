"""`cvqkd simulate` and `cvqkd estimate`: files, JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest

from cvqkd.cli.main import run


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_then_estimate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "run.h5"
    code, out, err = _run(
        capsys,
        "simulate",
        "seed-120km",
        "--symbols",
        "20000",
        "--out",
        str(path),
        "--seed",
        "3",
        "--json",
    )
    assert code == 0, err
    rep = json.loads(out)
    assert rep["symbols"] == 20000 and rep["scenario"] == "seed-120km"
    assert rep["truth"]["transmittance"] > 0
    with h5py.File(path) as f:
        assert f.attrs["schema_version"] == 1
        assert f["slots/kind"].shape == (20000,)
    code, out, err = _run(
        capsys, "estimate", str(path), "--epsilon-pe", "0.001", "--seed", "1", "--json"
    )
    assert code == 0, err
    est = json.loads(out)
    assert est["passed"] is True
    e = est["estimates"]
    assert e["detection"] == rep["detection"]
    assert e["n_slots"] == 20000
    for key in (
        "transmittance",
        "excess_noise_snu",
        "electronic_noise_snu",
        "snr",
        "shot_noise_raw",
    ):
        assert e[key]["low"] <= e[key]["value"] <= e[key]["high"]
    assert e["electronic_noise_snu"]["low"] < rep["truth"]["electronic_noise_snu"] + 0.01
    # the human table
    code, out, _ = _run(capsys, "estimate", str(path), "--seed", "1")
    assert code == 0 and "excess noise" in out and "gates: passed" in out


def test_simulate_discrete_modulation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "q.h5"
    code, _, err = _run(
        capsys,
        "simulate",
        "lodewyck2007-25km",
        "--symbols",
        "5000",
        "--out",
        str(path),
        "--modulation",
        "qpsk",
        "--detection",
        "heterodyne",
    )
    assert code == 0, err
    with h5py.File(path) as f:
        assert f["metadata"].attrs["modulation"] == "qpsk"
        assert f["bob/samples"].shape == (5000, 2)


def test_fault_injection_trips_the_drift_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "drift.h5"
    code, _, err = _run(
        capsys,
        "simulate",
        "lodewyck2007-25km",
        "--symbols",
        "300000",
        "--out",
        str(path),
        "--seed",
        "4",
        "--lo-power-drift-fraction",
        "0.3",
    )
    assert code == 0, err
    code, out, err = _run(capsys, "estimate", str(path), "--seed", "2", "--json")
    assert code == 3
    rep = json.loads(out)
    assert rep["passed"] is False and any("drifts" in r for r in rep["reasons"])


def test_failed_gate_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.h5"
    assert (
        _run(
            capsys,
            "simulate",
            "lodewyck2007-25km",
            "--symbols",
            "50000",
            "--out",
            str(path),
            "--seed",
            "1",
        )[0]
        == 0
    )
    with h5py.File(path, "r+") as f:  # bias the shot-noise records: SNU 30 % too high
        kind = f["slots/kind"][:]
        s = f["bob/samples"][:].astype(float)
        s[kind == 2] *= 1.3**0.5
        del f["bob/samples"]
        f.create_dataset("bob/samples", data=s)
    code, out, err = _run(capsys, "estimate", str(path), "--seed", "2")
    assert code == 3
    assert "gates: FAILED" in out
    assert err.startswith("cvqkd: error:") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "seed-120km", "--symbols", "0", "--out", "x.h5"], "--symbols"),
        (
            ["simulate", "seed-120km", "--symbols", "10", "--out", "x.h5", "--modulation", "qam7"],
            "unknown modulation",
        ),
        (
            ["simulate", "seed-120km", "--symbols", "10", "--out", "x.h5", "--detection", "pd"],
            "--detection",
        ),
        (["simulate", "no-such-scenario", "--symbols", "10", "--out", "x.h5"], "no-such-scenario"),
        (["estimate", "missing.h5"], "does not exist"),
        (["estimate", "junk.txt"], "not a readable HDF5 file"),
    ],
)
def test_user_errors_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.txt").write_text("hello")
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert message in err
    assert err.startswith("cvqkd: error:") and err.count("\n") == 1
