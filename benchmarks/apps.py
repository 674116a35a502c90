"""Encrypted throughput with a rekey every second, and the QKD key consumption rate.

One command: ``.venv/bin/python benchmarks/apps.py [--seconds 10] [--record-bytes 1048576]
[--hybrid qkd+mlkem|qkd+mlkem+x25519]``.

Four figures:
1. AES-256-GCM sealing alone (sans-I/O, in-memory key pool), hybrid rekey every second;
2. the time one rekey costs the sender (ETSI 014 enc_keys over mTLS + ML-KEM-768 encapsulation
   [+ X25519] + HKDF + transcript HMAC), against a real KME, for both hybrids;
3. one signed handshake, both ends in this process (certificate path validation, two ECDSA
   P-256 signatures and two verifications, ML-KEM-768 key generation);
4. end to end over loopback TCP: this process is the sender (master SAE_A at KME_A), a
   ``cvqkd receive`` child process is the receiver (slave SAE_B at KME_B, output discarded),
   both KMEs are real mTLS ETSI 014 servers (cvqkd.kms.testing.DevKmePair) in this process;
   the handshake is signed with the SAE certificates. The sender streams the same 1 MiB buffer
   until ``--seconds`` have passed.
Prints the machine and the git commit.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

from cvqkd.apps.handshake import PeerAuth
from cvqkd.apps.keysource import Etsi014MasterSource, InMemoryKeyPool
from cvqkd.apps.transport import ReceiverSession, SenderSession, TransportConfig, send_stream
from cvqkd.kms.testing import DevKmePair
from provenance import commit, machine


class RepeatSource:
    """A binary source returning the same buffer until a deadline (no copying)."""

    def __init__(self, size: int, seconds: float) -> None:
        self.buf = os.urandom(size)
        self.deadline = time.monotonic() + seconds

    def read(self, n: int = -1) -> bytes:
        return self.buf if time.monotonic() < self.deadline else b""


def bench_seal(seconds: float, record_bytes: int) -> None:
    pool = InMemoryKeyPool()
    cfg = TransportConfig(record_bytes=record_bytes, rekey_seconds=1.0)
    tx = SenderSession(key_source=pool.master(), config=cfg)
    rx = ReceiverSession(key_source=pool.slave(), config=cfg)
    rx.accept_start(tx.start(rx.hello()))
    buf = os.urandom(record_bytes)
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < seconds:
        tx.seal(buf)
        n += len(buf)
    dt = time.perf_counter() - t0
    print(
        f"[1] AES-256-GCM seal only, {record_bytes} B records, rekey 1 s: "
        f"{8 * n / dt / 1e9:.2f} Gbit/s on one core ({tx.metrics.epochs} epochs in {dt:.1f} s)"
    )


def _time_rekeys(source: object, hybrid: str, n: int) -> float:
    cfg = TransportConfig(
        record_bytes=16,
        rekey_bytes=1,
        rekey_seconds=None,
        hybrid=hybrid,  # type: ignore[arg-type]
    )
    tx = SenderSession(key_source=source, config=cfg)  # type: ignore[arg-type]
    rx = ReceiverSession(key_source=InMemoryKeyPool().slave(), config=cfg)
    tx.start(rx.hello())
    tx.seal(b"x")  # warm up (and the KME connection)
    t0 = time.perf_counter()
    for _ in range(n):
        tx.seal(b"x")
    return (time.perf_counter() - t0) / n


def bench_rekey(kmes: DevKmePair, hybrid: str) -> None:
    certs = kmes.certs["SAE_A"]
    source = Etsi014MasterSource.connect(
        kmes.url("KME_A"),
        slave_sae_id="SAE_B",
        cert_file=str(certs.cert_file),
        key_file=str(certs.key_file),
        ca_file=str(kmes.ca_file),
    )
    with_kme = _time_rekeys(source, hybrid, 200)
    local = _time_rekeys(InMemoryKeyPool().master(), hybrid, 500)
    print(
        f"[2] one {hybrid} rekey at the sender: {with_kme * 1e3:.2f} ms with enc_keys over mTLS "
        f"to a real KME; {local * 1e3:.3f} ms of it local (encapsulation, HKDF, HMAC, GCM key)"
    )


def _auth(kmes: DevKmePair, me: str, peer: str) -> PeerAuth:
    c = kmes.certs[me]
    return PeerAuth.from_files(
        cert_file=c.cert_file, key_file=c.key_file, ca_file=kmes.ca_file, peer_sae_id=peer
    )


def bench_handshake(kmes: DevKmePair) -> None:
    a, b = _auth(kmes, "SAE_A", "SAE_B"), _auth(kmes, "SAE_B", "SAE_A")
    pool = InMemoryKeyPool()
    n = 50
    t0 = time.perf_counter()
    for _ in range(n):
        tx = SenderSession(key_source=pool.master(), auth=a)
        rx = ReceiverSession(key_source=pool.slave(), auth=b)
        tx.accept_auth(rx.accept_start(tx.start(rx.hello())))
    dt = (time.perf_counter() - t0) / n
    print(
        f"[3] one signed handshake, both ends (2 chain validations, 2 ECDSA P-256 signatures "
        f"+ verifications, ML-KEM-768 keygen): {dt * 1e3:.2f} ms"
    )


def bench_end_to_end(kmes: DevKmePair, seconds: float, record_bytes: int, hybrid: str) -> None:
    b = kmes.certs["SAE_B"]
    cmd = [
        sys.executable, "-m", "cvqkd", "receive", "--listen", "127.0.0.1:0",
        "--kme-url", kmes.url("KME_B"), "--cert", str(b.cert_file), "--key", str(b.key_file),
        "--ca", str(kmes.ca_file), "--master-sae-id", "SAE_A", "--json", "--hybrid", hybrid,
    ]  # fmt: skip
    rx = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert rx.stderr is not None
    line = rx.stderr.readline().decode()
    host, port = line.rsplit(" ", 1)[-1].strip().rsplit(":", 1)
    a = kmes.certs["SAE_A"]
    source = Etsi014MasterSource.connect(
        kmes.url("KME_A"),
        slave_sae_id="SAE_B",
        cert_file=str(a.cert_file),
        key_file=str(a.key_file),
        ca_file=str(kmes.ca_file),
    )
    cfg = TransportConfig(
        record_bytes=record_bytes,
        rekey_seconds=1.0,
        hybrid=hybrid,  # type: ignore[arg-type]
    )
    with socket.create_connection((host, int(port))) as sock:
        report = send_stream(
            sock,
            RepeatSource(record_bytes, seconds),  # type: ignore[arg-type]
            key_source=source,
            config=cfg,
            auth=_auth(kmes, "SAE_A", "SAE_B"),
        )
    _out, err = rx.communicate(timeout=60)
    if rx.returncode:
        raise SystemExit(f"receiver failed: {err.decode()}")
    key_bps = report.qkd_key_bits_used / report.seconds
    print(
        f"[4] end to end over loopback TCP (sender here, receiver in a child process, 2 KMEs, "
        f"signed handshake): {report.throughput_bps / 1e9:.2f} Gbit/s, "
        f"{report.plaintext_bytes / 2**30:.1f} GiB in {report.seconds:.1f} s, "
        f"{report.epochs} epochs ({hybrid}, rekey every 1 s)"
    )
    print(
        f"    QKD key consumption: {report.qkd_keys_used} x 256 bit = {key_bps:.0f} bit/s "
        f"(= 256 bit per rekey per stream); ML-KEM-768 encapsulations: {report.epochs}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--record-bytes", type=int, default=1 << 20)
    parser.add_argument("--hybrid", default="qkd+mlkem", choices=["qkd+mlkem", "qkd+mlkem+x25519"])
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"commit:  {commit()}")
    bench_seal(min(args.seconds, 5.0), args.record_bytes)
    with tempfile.TemporaryDirectory() as tmp, DevKmePair(tmp, fill_bits=1 << 20) as kmes:
        bench_rekey(kmes, "qkd+mlkem")
        bench_rekey(kmes, "qkd+mlkem+x25519")
        bench_handshake(kmes)
        bench_end_to_end(kmes, args.seconds, args.record_bytes, args.hybrid)


if __name__ == "__main__":
    main()
