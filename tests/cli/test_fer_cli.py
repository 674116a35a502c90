"""`cvqkd fer`: JSON output, plot, and one-line errors."""

from __future__ import annotations

import json

import numpy as np

from cvqkd.cli.main import run
from tests.unit.test_decoder import met_like_code


def _alist(tmp_path) -> str:  # type: ignore[no-untyped-def]
    code = met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )
    path = tmp_path / "met.alist"
    code.write_alist(path)
    return str(path)


def test_fer_json_and_plot(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    png = tmp_path / "fer.png"
    rc = run(
        [
            "fer",
            "--alist",
            _alist(tmp_path),
            "--snr-db",
            "-2.5,-2.2",
            "--max-frames",
            "4",
            "--target-errors",
            "2",
            "--json",
            "--plot",
            str(png),
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rate"] == 0.1 and out["frame_length"] == 1000 and out["dimension"] == 8
    assert [round(p["snr_db"], 6) for p in out["points"]] == [-2.5, -2.2]
    for p in out["points"]:
        assert p["frames"] == 4 and p["frame_errors"] == 0
        assert 0 < p["beta"] < 1
    # the normal-approximation bound (finite_length) for a rate-0.1 code of length 1000:
    # below the measured FER's 95 % interval, and falling with the SNR
    bounds = [p["fer_bound"] for p in out["points"]]
    assert 0 < bounds[1] < bounds[0] < 1
    assert png.stat().st_size > 1000


def test_fer_beta_range_table(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    rc = run(
        [
            "fer",
            "--alist",
            _alist(tmp_path),
            "--beta",
            "0.2:0.3:0.1",
            "--max-frames",
            "2",
            "--dimension",
            "4",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "FER of" in text and "0.2" in text and "FER bound" in text


def test_fer_errors(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _alist(tmp_path)
    assert run(["fer", "--alist", path, "--snr-db", "1", "--dimension", "3"]) == 2
    assert "--dimension" in capsys.readouterr().err
    assert run(["fer", "--alist", path, "--snr-db", "1", "--schedule", "x"]) == 2
    assert "--schedule" in capsys.readouterr().err
    assert run(["fer", "--alist", path]) == 2
    assert "exactly one of" in capsys.readouterr().err
    assert run(["fer", "--alist", path, "--snr-db", "a,b"]) == 2
    err = capsys.readouterr().err
    assert "--snr-db" in err and "Traceback" not in err
    assert run(["fer", "--alist", str(tmp_path / "none.alist"), "--snr-db", "1"]) == 2


def test_fer_code_from_an_ensemble_spec(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = tmp_path / "cand.toml"
    spec.write_text(
        'name = "cand"\nunit = 400\n'
        "var_types = [[4, [2, 4, 0]], [12, [3, 77, 0]], [384, [0, 0, 1]]]\n"
        "check_types = [[4, [5, 0, 0]], [4, [6, 0, 0]], [212, [0, 2, 1]], [172, [0, 3, 1]]]\n"
    )
    rc = run(
        ["fer", "--code", str(spec), "--frame-length", "20000", "--beta", "0.6",
         "--max-frames", "2", "--json"]
    )  # fmt: skip
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["code"] == "cand-n20000" and out["rate"] == 0.02
    assert out["points"][0]["frame_errors"] == 0
    assert run(["fer", "--code", str(spec), "--rate", "0.01", "--beta", "0.6"]) != 0
    assert "not the requested" in capsys.readouterr().err


def test_fer_with_disclosure_keeps_frames_and_charges_them(capsys) -> None:  # type: ignore[no-untyped-def]
    # met-r0.02 at n = 4·10^4 and β = 1: every frame fails plainly (seed 2) ...
    args = ["fer", "--rate", "0.02", "--frame-length", "40000", "--beta", "1.0",
            "--max-frames", "4", "--target-errors", "4", "--seed", "2", "--json"]  # fmt: skip
    assert run(args) == 0
    plain = json.loads(capsys.readouterr().out)["points"][0]
    assert plain["frame_errors"] == 4 and plain["net_beta"] == plain["beta"]
    # ... while up to 20 % of k disclosed in 8 rounds brings frames back, charged in β net
    assert run([*args, "--disclosure", "0.2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["disclosure"] == {"fraction_of_k": 0.2, "step_bits": 20, "max_bits": 160}
    p = out["points"][0]
    kept = p["frames"] - p["frame_errors"]
    assert kept >= 2 and p["frames_kept_after_disclosure"] == kept
    assert 0.8 * p["beta"] < p["net_beta"] < p["beta"]  # at most 20 % of k (+ 4 bits)
