"""``cvqkd run``, ``cvqkd alice`` and ``cvqkd bob`` on a short homodyne link with a fast code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cvqkd.cli.main import run

SCENARIO = """
schema_version = 1
name = "test-1km-homodyne"
description = "1 km dark fibre, homodyne, for fast end-to-end tests"
quantum_wavelength_nm = 1550.0
reconciliation_efficiency = 0.9

[fibre]
length_km = 1.0
attenuation_model = "constant"
loss_db_per_km = 0.2
connector_count = 0

[transmitter]
modulation_variance_snu = 4.0
symbol_rate_hz = 1e8
laser_linewidth_hz = 0.0
modulation_noise_snu = 0.005

[receiver]
detection = "homodyne"
detector_efficiency = 0.9
electronic_noise_snu = 0.01
lo = "transmitted"
"""

FAST = ["--symbols", "60000", "--code", "regular:2000:3:8", "--seed", "3"]


@pytest.fixture
def scenario(tmp_path: Path) -> str:
    p = tmp_path / "short.toml"
    p.write_text(SCENARIO, encoding="utf-8")
    return str(p)


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cvqkd", *args], capture_output=True, text=True, timeout=timeout
    )


def test_run_json_report_files_and_key_stores(scenario: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _cli("run", scenario, *FAST, "--level", "asymptotic", "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["keys_identical"] is True
    assert rep["alice_key_bits"] == rep["bob_key_bits"] == rep["delivered_bits"] > 0
    assert rep["level"] == "asymptotic"
    assert "NOT finite-size" in rep["security_statement"]
    # --seed makes the key material reproducible too, and the report says it is not secure
    assert rep["randomness_secure"] is False
    assert rep["randomness"] == "deterministic test randomness — NOT secure (seed 3)"
    assert rep["security_statement"].startswith("deterministic test randomness — NOT secure")
    assert rep["min_symbols_finite_size"] > 60_000
    assert rep["noise_budget"]["detection"] == "homodyne"
    assert rep["key_rate_bps"] == pytest.approx(rep["key_rate_bits_per_symbol"] * 1e8)
    for name in ("report.json", "stages.png", "key_length.png", "noise_budget.png"):
        assert (out / name).stat().st_size > 0
    from cvqkd.kms.store import LinkId, open_store

    link = LinkId("KME_A", "KME_B")
    with open_store(out / "keys-alice.db") as sa, open_store(out / "keys-bob.db") as sb:
        assert sa.available_chunks(link) == sb.available_chunks(link) > 0


def test_run_human_output(scenario: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    no_seed = FAST[: FAST.index("--seed")]  # key material (and simulation) from the OS
    code = run(["run", scenario, *no_seed, "--store-dir", str(tmp_path)])
    text = capsys.readouterr().out
    assert code == 0
    assert "OS CSPRNG" in text and "NOT secure" not in text
    for heading in (
        "Noise budget",
        "Parameter estimation",
        "Reconciliation",
        "Bits left after each stage",
        "Key length",
        "Secret key",
        "Security:",
    ):
        assert heading in text


def test_strict_finite_size_on_a_small_block_aborts_with_one_line(
    scenario: str, tmp_path: Path
) -> None:
    proc = _cli("run", scenario, *FAST, "--level", "finite-size", "--store-dir", str(tmp_path))
    assert proc.returncode == 3
    assert "Traceback" not in proc.stderr
    assert "≤ 0 at the finite-size level" in proc.stderr.strip().splitlines()[-1]


def test_bad_code_flag_is_a_config_error(scenario: str) -> None:
    proc = _cli("run", scenario, "--code", "magic")
    assert proc.returncode == 2
    assert "--code" in proc.stderr and "Traceback" not in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SLICED = ["--symbols", "120000", "--frame-length", "20000", "--slice-planner", "exit"]


@pytest.mark.parametrize(
    ("parameters", "scheme"),
    [("estimated", "binary"), ("model", "binary"), ("estimated", "sliced"), ("model", "disclose")],
)
def test_two_processes_over_loopback_tcp_make_identical_keys(
    scenario: str, tmp_path: Path, parameters: str, scheme: str
) -> None:
    secret = os.urandom(4096)
    for who in ("alice", "bob"):
        (tmp_path / f"{who}.psk").write_bytes(secret)
    addr = f"127.0.0.1:{_free_port()}"
    block = {
        "binary": FAST,
        "sliced": [*SLICED, "--seed", "3"],  # SNR̂ ≈ 3.4: auto slices
        # a (3,15) code (rate 0.8) at the edge for this channel (SNR 3.4, MDR d = 8 carries
        # 0.79 bit): frames fail plainly, disclosure brings them through
        "disclose": [
            *FAST[:2],
            "--code",
            "regular:2000:3:15",
            "--seed",
            "11",
            "--disclosure",
            "0.2",
        ],
    }[scheme]
    common = [scenario, *block, "--level", "asymptotic", "--json", "--timeout", "120"]
    common += ["--parameters", parameters]
    bob = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cvqkd",
            "bob",
            *common,
            "--listen",
            addr,
            "--psk",
            str(tmp_path / "bob.psk"),
            "--key-out",
            str(tmp_path / "bob.key"),
            "--store",
            str(tmp_path / "bob.db"),
            # Bob's bits from a fixed private seed: which frames need disclosure is reproducible
            *(["--private-seed", "5"] if scheme == "disclose" else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    alice = _cli(
        "alice",
        *common,
        "--connect",
        addr,
        "--psk",
        str(tmp_path / "alice.psk"),
        "--key-out",
        str(tmp_path / "alice.key"),
        "--store",
        str(tmp_path / "alice.db"),
    )
    b_out, b_err = bob.communicate(timeout=300)
    assert alice.returncode == 0, alice.stderr
    assert bob.returncode == 0, b_err
    ka, kb = (tmp_path / "alice.key").read_bytes(), (tmp_path / "bob.key").read_bytes()
    assert len(ka) > 0 and ka == kb
    ra, rb = json.loads(alice.stdout), json.loads(b_out)
    assert ra["block_id"] == rb["block_id"] and ra["key_bits"] == rb["key_bits"] == 8 * len(ka)
    assert ra["parameters"] == rb["parameters"] == parameters
    assert rb["reconciliation_scheme"] == ("sliced" if scheme == "sliced" else "binary")
    if scheme == "disclose":  # the request/answer rounds ran over TCP, both sides agree
        # (measured: 11 of 12 frames kept, all 11 by disclosure)
        assert ra["reconciliation"]["frames_with_disclosure"] >= 8, ra["reconciliation"]
        assert ra["reconciliation"]["disclosed_bits"] == rb["reconciliation"]["disclosed_bits"]
    # without --private-seed Bob's key bits come from the OS
    assert rb["randomness_secure"] is (scheme != "disclose")
    # both pre-shared-key files advanced identically (pads used, then replenished from the key)
    pa, pb = (tmp_path / "alice.psk").read_bytes(), (tmp_path / "bob.psk").read_bytes()
    assert pa == pb and pa != secret


def test_wrong_psk_aborts_both_parties(scenario: str, tmp_path: Path) -> None:
    (tmp_path / "alice.psk").write_bytes(os.urandom(4096))
    (tmp_path / "bob.psk").write_bytes(os.urandom(4096))
    addr = f"127.0.0.1:{_free_port()}"
    common = [scenario, *FAST, "--level", "asymptotic", "--timeout", "60"]
    bob = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cvqkd",
            "bob",
            *common,
            "--listen",
            addr,
            "--psk",
            str(tmp_path / "bob.psk"),
            "--store",
            str(tmp_path / "bob.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    alice = _cli(
        "alice",
        *common,
        "--connect",
        addr,
        "--psk",
        str(tmp_path / "alice.psk"),
        "--store",
        str(tmp_path / "alice.db"),
    )
    _, b_err = bob.communicate(timeout=120)
    assert alice.returncode == 4 and "failed its MAC" in alice.stderr
    assert bob.returncode != 0 and "Traceback" not in b_err


def test_run_on_a_dataset_file(scenario: str, tmp_path: Path) -> None:
    data = tmp_path / "block.h5"
    sim = _cli("simulate", scenario, "--symbols", "60000", "--seed", "4", "--out", str(data))
    assert sim.returncode == 0, sim.stderr
    proc = _cli(
        "run",
        scenario,
        "--dataset",
        str(data),
        "--code",
        "regular:2000:3:8",
        "--level",
        "asymptotic",
        "--json",
        "--store-dir",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["bits_after_stage"]["slots_sent"] == 60000
    assert rep["keys_identical"] and rep["delivered_bits"] > 0
    assert rep["randomness_secure"] is True and "NOT secure" not in rep["security_statement"]


def test_aborted_block_still_writes_its_report(scenario: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = _cli("run", scenario, *FAST, "--level", "composable", "--out", str(out))
    assert proc.returncode == 3
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert "≤ 0 at the composable level" in rep["aborted"]
    assert rep["partial"]["key_length"]["composable"]["length_bits"] <= 0
    assert rep["partial"]["min_symbols_composable"] > 60_000
    assert rep["partial"]["randomness"].startswith("deterministic test randomness — NOT secure")
    assert "symbols for a finite-size key" in proc.stdout


# ------------------------------------------------- --parameters model (assumed link model)


def test_run_with_model_parameters_labels_the_key(scenario: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from cvqkd.pipeline import MODEL_LABEL

    no_seed = FAST[: FAST.index("--seed")]
    args = ["run", scenario, *no_seed, "--parameters", "model", "--store-dir", str(tmp_path)]
    assert run([*args, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["parameters"] == "model" and rep["config"]["parameters"] == "model"
    assert rep["level"] == "asymptotic" and set(rep["key_length"]["all_levels"]) == {"asymptotic"}
    assert rep["security_statement"].startswith(MODEL_LABEL)
    assert "NOT finite-size or composably secure" in rep["security_statement"]
    # the model is the scenario's noise budget, and it agreed with this block
    pu = rep["parameters_used"]
    assert pu["source"] == "model" and pu["assumed_from"] == "link model (NoiseBudget)"
    assert pu["transmittance"] == rep["noise_budget"]["transmittance"]
    assert pu["excess_noise_snu"] == pytest.approx(rep["noise_budget"]["total_snu"], rel=1e-12)
    assert rep["model_consistency"]["passed"] is True
    assert rep["keys_identical"] and rep["delivered_bits"] > 0
    # human output: the assumed parameters are shown as such
    assert run(args) == 0
    text = capsys.readouterr().out
    assert "ASSUMED from the link model" in text and "Security: asymptotic, assumed" in text


def test_model_parameters_refuse_a_finite_size_level(scenario: str) -> None:
    proc = _cli("run", scenario, *FAST, "--parameters", "model", "--level", "finite-size")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--level finite-size needs --parameters estimated" in proc.stderr
    bad = _cli("run", scenario, *FAST, "--parameters", "guessed")
    assert bad.returncode == 2 and "--parameters must be estimated or model" in bad.stderr


def test_model_gate_aborts_a_block_from_a_different_channel(scenario: str, tmp_path: Path) -> None:
    # the block comes from the same link with 3 dB/km instead of 0.2 (T = 0.50 instead of
    # 0.95): assuming the scenario's model, the gate must stop it (exit 3), storing nothing
    lossy = tmp_path / "lossy.toml"
    lossy.write_text(SCENARIO.replace("loss_db_per_km = 0.2", "loss_db_per_km = 3.0"))
    data = tmp_path / "lossy.h5"
    sim = _cli("simulate", str(lossy), "--symbols", "60000", "--seed", "4", "--out", str(data))
    assert sim.returncode == 0, sim.stderr
    out = tmp_path / "out"
    proc = _cli(
        "run",
        scenario,
        "--dataset",
        str(data),
        "--code",
        "regular:2000:3:8",
        "--parameters",
        "model",
        "--out",
        str(out),
    )
    assert proc.returncode == 3, proc.stderr
    assert "differs from the assumed model parameters" in proc.stderr.strip().splitlines()[-1]
    assert "model T = 0.955 outside" in proc.stderr
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["partial"]["model_consistency"]["transmittance_in_interval"] is False
    from cvqkd.kms.store import LinkId, open_store

    with open_store(out / "keys-bob.db") as sb:
        assert sb.available_chunks(LinkId("KME_A", "KME_B")) == 0


def test_run_switches_to_sliced_reconciliation_on_a_short_link(
    scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 1 km, V_A = 4, η = 0.9: SNR̂ ≈ 3.4, so --reconciliation auto (the default) slices
    args = ["run", scenario, *SLICED, "--seed", "3", "--level", "asymptotic"]
    assert run([*args, "--store-dir", str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["reconciliation"]["scheme"] == "sliced" and rep["keys_identical"]
    assert rep["delivered_bits"] > 0
    assert run([*args, "--store-dir", str(tmp_path / "h")]) == 0
    assert "sliced + multistage LDPC decoding" in capsys.readouterr().out
    assert run([*args, "--reconciliation", "sliced", "--code", "regular:2000:3:8"]) == 2
    assert "drop 'code'" in capsys.readouterr().err
    assert run([*args, "--slice-bits", "9"]) == 2
    assert "slice_bits must be in 2..6" in capsys.readouterr().err
    assert run([*args, "--slice-bits", "5", "--store-dir", str(tmp_path / "5"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reconciliation"]["discretisation_bits"] == 5
