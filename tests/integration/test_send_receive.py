"""`cvqkd send` -> `cvqkd receive` end to end through two real KMEs on loopback.

The KMEs are cvqkd.kms.testing.DevKmePair (real mTLS ETSI GS QKD 014 servers in threads, real
development certificates); send and receive run as separate processes, as they would at two
sites: master SAE_A at the sender (KME_A), slave SAE_B at the receiver (KME_B). Checked: the
bytes arrive unchanged, the number of key epochs, the QKD + ML-KEM + X25519 hybrid, the dry-KME
policies (pqc-only with a signed handshake), that each end refuses a peer certificate naming
another SAE, and that a failed stream leaves no output file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cvqkd.kms.testing import DevKmePair

TIMEOUT_S = 60


@pytest.fixture
def kmes(tmp_path: Path):  # type: ignore[no-untyped-def]
    with DevKmePair(tmp_path / "kme", fill_bits=1 << 16) as pair:  # 256 keys of 256 bits
        yield pair


def _tls(kmes: DevKmePair, sae: str) -> list[str]:
    c = kmes.certs[sae]
    return ["--cert", str(c.cert_file), "--key", str(c.key_file), "--ca", str(kmes.ca_file)]


def _start_receiver(kmes: DevKmePair, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    cmd = [sys.executable, "-m", "cvqkd", "receive", "--listen", "127.0.0.1:0"]
    cmd += ["--kme-url", kmes.url("KME_B"), *_tls(kmes, "SAE_B"), *args]
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    assert "listening on" in line, line
    return proc, line.rsplit(" ", 1)[-1].strip()


def _send(kmes: DevKmePair, address: str, *args: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    cmd = [sys.executable, "-m", "cvqkd", "send", "--to", address]
    cmd += ["--kme-url", kmes.url("KME_A"), *_tls(kmes, "SAE_A"), "--slave-sae-id", "SAE_B"]
    return subprocess.run(
        [*cmd, *args], input=stdin, capture_output=True, timeout=TIMEOUT_S, check=False
    )


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, bytes, str]:
    out, err = proc.communicate(timeout=TIMEOUT_S)
    return proc.returncode, out, err.decode()


def test_file_round_trip_with_rekeys(kmes: DevKmePair, tmp_path: Path) -> None:
    data = os.urandom(3 << 20) + b"tail"
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(data)
    x25519 = ("--hybrid", "qkd+mlkem+x25519")
    rx, addr = _start_receiver(
        kmes, "--master-sae-id", "SAE_A", "--out", str(dst), "--json", *x25519
    )
    sent = _send(
        kmes,
        addr,
        *x25519,
        "--in",
        str(src),
        "--rekey-bytes",
        str(1 << 20),
        "--record-bytes",
        "65536",
        "--json",
    )
    assert sent.returncode == 0, sent.stderr.decode()
    code, out, err = _finish(rx)
    assert code == 0, err
    assert dst.read_bytes() == data
    tx_report: dict[str, Any] = json.loads(sent.stdout)
    rx_report: dict[str, Any] = json.loads(out)
    # 3 MiB + 4 bytes rekeyed every 1 MiB: 4 epochs, one 256-bit QKD key each, both ends agree
    assert tx_report["epochs"] == rx_report["epochs"] == 4
    assert tx_report["qkd_keys_used"] == rx_report["qkd_keys_used"] == 4
    assert rx_report["plaintext_bytes"] == len(data)
    assert tx_report["session_id"] == rx_report["session_id"]
    assert tx_report["hybrid"] == rx_report["hybrid"] == "qkd+mlkem+x25519"
    assert tx_report["peer_auth"] == "certificate SAE_B"
    assert rx_report["peer_auth"] == "certificate SAE_A"


def test_stdin_to_stdout_qkd_mode_rekeys_while_idle(kmes: DevKmePair) -> None:
    data = b"line of text\n" * 5000
    rx, addr = _start_receiver(kmes, "--master-sae-id", "SAE_A", "--mode", "qkd")
    received = bytearray()
    first_part = threading.Event()

    def drain() -> None:  # read the receiver's stdout as it comes (a pipe holds only 64 KiB)
        assert rx.stdout is not None
        while chunk := rx.stdout.read1(65536):  # type: ignore[attr-defined]
            received.extend(chunk)
            if len(received) >= 30000:
                first_part.set()

    reader = threading.Thread(target=drain)
    reader.start()
    cmd = [sys.executable, "-m", "cvqkd", "send", "--to", addr, "--kme-url", kmes.url("KME_A")]
    cmd += [*_tls(kmes, "SAE_A"), "--slave-sae-id", "SAE_B", "--mode", "qkd"]
    cmd += ["--record-bytes", "4096", "--rekey-seconds", "0.2", "--json"]
    sender = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert sender.stdin is not None
    sender.stdin.write(data[:30000])
    sender.stdin.flush()
    assert first_part.wait(TIMEOUT_S)  # the first part went through; now 1 s of nothing
    time.sleep(1.0)
    out_tx, err_tx = sender.communicate(data[30000:], timeout=TIMEOUT_S)
    assert sender.returncode == 0, err_tx.decode()
    reader.join(TIMEOUT_S)
    assert rx.stderr is not None
    err = rx.stderr.read().decode()
    assert rx.wait(TIMEOUT_S) == 0, err
    assert bytes(received) == data
    assert "plaintext bytes: 65000" in err  # report on stderr when stdout carries the data
    report = json.loads(out_tx)
    # 1 s idle with a key in use, at one rekey per 0.2 s: about 5 idle rekeys, >= 3 under load
    assert report["metrics"]["idle_rekeys"] >= 3
    assert f"key epochs: {report['epochs']}" in err  # the receiver followed every rekey


def test_dry_kme_pqc_only(tmp_path: Path) -> None:
    with DevKmePair(tmp_path / "kme", fill_bits=2 * 256) as kmes:  # two keys only
        rx, addr = _start_receiver(
            kmes,
            "--master-sae-id",
            "SAE_A",
            "--policy",
            "pqc-only",
            "--out",
            str(tmp_path / "o"),
            "--json",
        )
        sent = _send(
            kmes,
            addr,
            "--rekey-bytes",
            "10000",
            "--record-bytes",
            "5000",
            "--policy",
            "pqc-only",
            "--json",
            stdin=b"z" * 50000,
        )
        assert sent.returncode == 0, sent.stderr.decode()
        code, out, err = _finish(rx)
    assert code == 0, err
    assert (tmp_path / "o").read_bytes() == b"z" * 50000
    report = json.loads(sent.stdout)
    assert report["qkd_keys_used"] == 2 and report["epochs"] == 5
    assert report["metrics"]["pqc_only_epochs"] == 3
    assert json.loads(out)["metrics"]["pqc_only_epochs"] == 3


def test_dry_kme_wait_times_out_and_leaves_no_file(tmp_path: Path) -> None:
    with DevKmePair(tmp_path / "kme", fill_bits=256) as kmes:  # one key only
        dst = tmp_path / "o"
        rx, addr = _start_receiver(kmes, "--master-sae-id", "SAE_A", "--out", str(dst))
        sent = _send(
            kmes,
            addr,
            "--rekey-bytes",
            "1000",
            "--record-bytes",
            "1000",
            "--policy",
            "wait",
            "--wait-timeout",
            "0.5",
            stdin=b"q" * 5000,
        )
        code, _out, err = _finish(rx)
    assert sent.returncode == 1
    stderr = sent.stderr.decode()
    assert "KME dry for 0.5 s" in stderr and "Traceback" not in stderr
    assert code != 0 and "truncated" in err and "Traceback" not in err
    assert not dst.exists() and not Path(str(dst) + ".part").exists()


def test_receiver_refuses_a_sender_certificate_for_another_sae(
    kmes: DevKmePair, tmp_path: Path
) -> None:
    # the receiver expects master SAE_A2; the sender signs with SAE_A's (valid) certificate
    dst = tmp_path / "o"
    rx, addr = _start_receiver(kmes, "--master-sae-id", "SAE_A2", "--out", str(dst))
    sent = _send(kmes, addr, stdin=b"secret")
    code, _out, err = _finish(rx)
    assert code == 4 and sent.returncode != 0
    assert err.count("\n") <= 2 and "Traceback" not in err
    assert "certificate is for SAE 'SAE_A', expected 'SAE_A2'" in err
    assert b"Traceback" not in sent.stderr and b"may have refused this end's certificate" in (
        sent.stderr
    )
    assert not dst.exists()


def test_bad_flags_exit_2(kmes: DevKmePair, tmp_path: Path) -> None:
    bad = _send(kmes, "localhost", stdin=b"")
    assert bad.returncode == 2 and b"--to must be HOST:PORT" in bad.stderr
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "cvqkd",
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--kme-url",
            "https://127.0.0.1:1",
            "--cert",
            str(tmp_path / "nope.pem"),
            "--key",
            "k",
            "--ca",
            "c",
            "--master-sae-id",
            "SAE_A",
        ],
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert missing.returncode == 2 and b"--cert file not found" in missing.stderr
    policy = _send(kmes, "127.0.0.1:9", "--policy", "maybe", stdin=b"")
    assert policy.returncode == 2 and b"unknown dry-KME policy" in policy.stderr


def test_sender_refuses_a_receiver_certificate_for_another_sae(kmes: DevKmePair) -> None:
    rx, addr = _start_receiver(kmes, "--master-sae-id", "SAE_A")
    cmd = [sys.executable, "-m", "cvqkd", "send", "--to", addr, "--kme-url", kmes.url("KME_A")]
    cmd += [*_tls(kmes, "SAE_A"), "--slave-sae-id", "SAE_NOBODY", "--wait-timeout", "30"]
    sent = subprocess.run(cmd, input=b"x", capture_output=True, timeout=TIMEOUT_S, check=False)
    code, _out, err = _finish(rx)
    # refused in the handshake, before any key is asked of the KME
    assert sent.returncode == 4 and b"Traceback" not in sent.stderr
    assert b"certificate is for SAE 'SAE_B', expected 'SAE_NOBODY'" in sent.stderr
    assert code != 0 and "Traceback" not in err
    with kmes.client("SAE_A") as alice:
        assert alice.status("SAE_B").stored_key_count == 256  # no key was taken
