"""``cvqkd kme``: certs, fill-dev, status --json, and one-line errors (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cvqkd.cli.main import run


def test_certs_json_writes_every_identity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["kme", "certs", "--out", str(tmp_path), "--sae", "SAE_A", "--sae", "SAE_B"]
    assert run([*argv, "--kme", "KME_A", "--kme", "KME_B", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"ca", "SAE_A", "SAE_B", "KME_A", "KME_B"}
    for paths in out.values():
        assert Path(paths["cert_file"]).is_file() and Path(paths["key_file"]).is_file()


def _config(tmp_path: Path) -> Path:
    assert run(["kme", "certs", "--out", str(tmp_path / "c"), "--kme", "KME_A"]) == 0
    cfg = tmp_path / "kme.toml"
    cfg.write_text(
        'kme_id = "KME_A"\n[tls]\ncert_file = "c/KME_A.pem"\nkey_file = "c/KME_A.key"\n'
        'ca_file = "c/ca.pem"\n[store]\nurl = "a.sqlite"\n'
    )
    return cfg


def test_fill_dev_then_status_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = _config(tmp_path)
    capsys.readouterr()
    store = str(tmp_path / "a.sqlite")
    other = str(tmp_path / "b.sqlite")
    argv = ["kme", "fill-dev", "--store", store, "--store", other, "--source", "KME_A"]
    assert run([*argv, "--target", "KME_B", "--bits", str(3 * 256 + 8), "--json"]) == 0
    filled = json.loads(capsys.readouterr().out)
    assert filled["chunks_added"] == {store: 3, other: 3}  # the 8-bit tail is dropped
    assert run(["kme", "status", "--config", str(cfg), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["kme_id"] == "KME_A" and status["chunk_bits"] == 256
    assert status["links"] == {
        "KME_A->KME_B": {
            "stored_chunks": 3,
            "available_chunks": 3,
            "delivered_keys": 0,
            "expired_chunks": 0,
        }
    }
    assert run(["kme", "status", "--config", str(cfg)]) == 0  # the table form
    assert "KME_A->KME_B" in capsys.readouterr().out


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "kme.toml"
    cfg.write_text('kme_id = "K"\nlisten_port = 1\n')
    proc = subprocess.run(
        [sys.executable, "-m", "cvqkd", "kme", "serve", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "listen_port" in proc.stderr


def test_bad_fill_and_certs_arguments_exit_2(tmp_path: Path) -> None:
    assert run(["kme", "certs", "--out", str(tmp_path)]) == 2
    argv = ["kme", "fill-dev", "--store", str(tmp_path / "x.sqlite"), "--source", "A"]
    assert run([*argv, "--target", "B", "--bits", "12"]) == 2


def test_status_live_asks_the_running_kme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cvqkd.kms.testing import DevKmePair

    with DevKmePair(tmp_path / "pair", fill_bits=64 * 256) as pair:
        with pair.client("SAE_A") as alice:
            alice.get_keys("SAE_B", number=3)
            alice.status("SAE_B")
        c = pair.certs["KME_A"]
        port = pair.url("KME_A").rsplit(":", 1)[1]
        cfg = tmp_path / "kme.toml"
        cfg.write_text(
            f'kme_id = "KME_A"\n[listen]\nport = {port}\n[tls]\ncert_file = "{c.cert_file}"\n'
            f'key_file = "{c.key_file}"\nca_file = "{pair.ca_file}"\n'
        )
        capsys.readouterr()
        assert run(["kme", "status", "--config", str(cfg), "--live", "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["requests"] == {"enc_keys": 1, "status": 1} and data["errors"] == {}
        assert data["links"]["KME_A->KME_B"]["delivered_keys"] == 3
        # An SAE certificate may not read the metrics.
        from cvqkd.kms.client import Etsi014Error, fetch_metrics

        s = pair.certs["SAE_A"]
        with pytest.raises(Etsi014Error) as exc:
            fetch_metrics(
                pair.url("KME_A"), cert_file=s.cert_file, key_file=s.key_file, ca_file=pair.ca_file
            )
        assert exc.value.status_code == 401
