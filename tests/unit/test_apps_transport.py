"""The AES-256-GCM record stream: round trips, rekeying (also when idle), tampering, lost keys,
nonce uniqueness, the X25519 third input. Handshake authentication: test_apps_handshake.py.

Sender and receiver run sans-I/O against an in-memory key pool (one-time delivery, like a KME);
the socket path is covered at the end and, with real KMEs, in tests/integration.
"""

from __future__ import annotations

import socket
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvqkd.apps import transport as tp
from cvqkd.apps.keysource import InMemoryKeyPool
from cvqkd.apps.policy import PolicyConfig
from cvqkd.errors import (
    AuthenticationError,
    ConfigError,
    CvqkdError,
    DataFormatError,
    KeyNotFoundError,
)

PLAIN = bytes(range(256)) * 64  # 16 KiB, distinctive


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt


def split_records(wire: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(wire):
        blen = tp.HEADER.unpack(wire[offset : offset + tp.HEADER.size])[5]
        out.append(wire[offset : offset + tp.HEADER.size + blen])
        offset += tp.HEADER.size + blen
    return out


def pair(
    config: tp.TransportConfig | None = None,
    rx_config: tp.TransportConfig | None = None,
    pool: InMemoryKeyPool | None = None,
    clock: FakeClock | None = None,
) -> tuple[tp.SenderSession, tp.ReceiverSession, InMemoryKeyPool]:
    pool = pool or InMemoryKeyPool()
    kw = {"clock": clock, "sleep": clock.sleep} if clock else {}
    tx = tp.SenderSession(key_source=pool.master(), config=config, **kw)  # type: ignore[arg-type]
    rx = tp.ReceiverSession(key_source=pool.slave(), config=rx_config or config, **kw)  # type: ignore[arg-type]
    rx.accept_start(tx.start(rx.hello()))
    return tx, rx, pool


def run(tx: tp.SenderSession, data: bytes, chunk: int = 1000) -> bytes:
    wire = b""
    for i in range(0, len(data), chunk):
        wire += b"".join(tx.seal(data[i : i + chunk]))
    return wire + tx.finish()


def test_round_trip_many_records_across_rekeys() -> None:
    cfg = tp.TransportConfig(record_bytes=700, rekey_bytes=3000, rekey_seconds=None)
    tx, rx, pool = pair(cfg)
    wire = run(tx, PLAIN)
    assert b"".join(rx.open_all(wire)) == PLAIN
    assert rx.finished
    # 16384 bytes in <= 1000-byte writes, a new key each >= 3000 bytes: 6 epochs
    assert tx.metrics.epochs == rx.metrics.epochs == 6
    assert pool.keys_issued == pool.keys_retrieved == 6
    assert tx.data_records == rx.data_records > 16
    assert PLAIN[:64] not in wire  # never plaintext on the wire
    header, body = (lambda r: (r[: tp.HEADER.size], r[tp.HEADER.size :]))(rx.ack())
    assert tx.check_ack(header, body) == len(PLAIN)


def test_time_based_rekey() -> None:
    clock = FakeClock()
    tx, rx, _ = pair(tp.TransportConfig(rekey_seconds=1.0), clock=clock)
    wire = b""
    for _ in range(5):
        wire += b"".join(tx.seal(b"x" * 100))
        clock.t += 0.6
    wire += tx.finish()
    assert b"".join(rx.open_all(wire)) == b"x" * 500
    # writes at t = 0, 0.6, 1.2, 1.8, 2.4: new keys at 0, 1.2 and 2.4
    assert tx.metrics.epochs == 3


def test_idle_sender_rekeys_on_the_timer() -> None:
    clock = FakeClock()
    tx, rx, pool = pair(tp.TransportConfig(rekey_seconds=1.0), clock=clock)
    assert tx.next_rekey_in() is None  # no epoch yet: nothing to refresh
    wire = b"".join(tx.seal(b"x" * 100))  # epoch 1 at t = 0
    assert tx.next_rekey_in() == 1.0 and tx.poll() == []
    clock.t = 0.999
    assert tx.poll() == []
    for t in (1.0, 2.5, 3.5):  # idle: no data, the timer still rekeys
        clock.t = t
        assert tx.next_rekey_in() == 0.0
        records = tx.poll()
        assert len(records) == 1 and records[0][0] == tp.TYPE_KEY
        assert tx.poll() == []  # once per interval
        wire += records[0]
    wire += b"".join(tx.seal(b"y" * 100)) + tx.finish()
    assert b"".join(rx.open_all(wire)) == b"x" * 100 + b"y" * 100
    assert tx.metrics.idle_rekeys == 3
    assert tx.metrics.epochs == rx.metrics.epochs == 4 == pool.keys_retrieved


def test_idle_rekey_over_a_socket() -> None:
    import io
    import os
    import time

    pool = InMemoryKeyPool()
    cfg = tp.TransportConfig(rekey_seconds=0.05)
    a, b = socket.socketpair()
    sink = io.BytesIO()
    result: dict[str, object] = {}
    r, w = os.pipe()  # the sender reads a pipe: data, 0.4 s of nothing, data, EOF

    def producer() -> None:
        os.write(w, b"first")
        deadline = time.monotonic() + 10
        while sink.getvalue() != b"first" and time.monotonic() < deadline:
            time.sleep(0.01)  # idle only once "first" went through
        time.sleep(0.4)
        os.write(w, b"second")
        os.close(w)

    def receiver() -> None:
        result["rx"] = tp.receive_stream(b, sink, key_source=pool.slave(), config=cfg)

    threads = [threading.Thread(target=receiver), threading.Thread(target=producer)]
    for t in threads:
        t.start()
    with os.fdopen(r, "rb") as source:
        report = tp.send_stream(a, source, key_source=pool.master(), config=cfg)
    for t in threads:
        t.join(10)
    a.close()
    b.close()
    assert sink.getvalue() == b"firstsecond"
    rx_report = result["rx"]
    # "first" is sent at once (no waiting for a full record), then 0.4 s idle at one rekey per
    # 0.05 s: about 8 idle rekeys; at least 4 even on a loaded machine
    assert report.data_records == 2
    assert report.metrics["idle_rekeys"] >= 4
    assert report.epochs == rx_report.epochs == report.qkd_keys_used  # type: ignore[attr-defined]


def test_x25519_third_input() -> None:
    cfg = tp.TransportConfig(
        hybrid="qkd+mlkem+x25519", rekey_bytes=100, record_bytes=100, rekey_seconds=None
    )
    tx, rx, _ = pair(cfg)
    wire = run(tx, PLAIN[:300], chunk=300)
    recs = split_records(wire)
    assert recs[0][tp.HEADER.size] == 7  # key mode: QKD | ML-KEM | X25519
    assert len(recs[0]) == tp.HEADER.size + 1 + 16 + 2 + 1088 + 32 + 32 + 16
    assert b"".join(rx.open_all(wire)) == PLAIN[:300]
    # a flipped byte of the sender's X25519 public key fails the key confirmation
    tx, rx, _ = pair(cfg)
    recs = split_records(run(tx, PLAIN[:300], chunk=300))
    at = tp.HEADER.size + 1 + 16 + 2 + 1088 + 5
    with pytest.raises(AuthenticationError, match="KEY record of epoch 1"):
        _feed(rx, [_flip(recs[0], at)])
    # both ends must agree on the inputs
    pool = InMemoryKeyPool()
    tx = tp.SenderSession(key_source=pool.master(), config=tp.TransportConfig())
    rx = tp.ReceiverSession(key_source=pool.slave(), config=cfg)
    with pytest.raises(ConfigError, match="qkd\\+mlkem\\+x25519"):
        tx.start(rx.hello())
    with pytest.raises(ConfigError, match="needs mode hybrid"):
        tp.TransportConfig(mode="qkd", hybrid="qkd+mlkem+x25519")


def test_x25519_in_pqc_only_epochs() -> None:
    pol = PolicyConfig(policy="pqc-only", wait_timeout_s=0.1)
    cfg = tp.TransportConfig(
        hybrid="qkd+mlkem+x25519", rekey_bytes=100, record_bytes=100, rekey_seconds=None, policy=pol
    )
    tx, rx, _ = pair(cfg, pool=InMemoryKeyPool(capacity=1))
    wire = run(tx, PLAIN[:300], chunk=300)
    modes = [r[tp.HEADER.size] for r in split_records(wire) if r[0] == tp.TYPE_KEY]
    assert modes == [7, 6, 6]  # then ML-KEM + X25519 without QKD key
    assert b"".join(rx.open_all(wire)) == PLAIN[:300]


@pytest.mark.parametrize("mode", ["qkd", "hybrid"])
def test_modes_and_empty_stream(mode: str) -> None:
    tx, rx, _ = pair(tp.TransportConfig(mode=mode))  # type: ignore[arg-type]
    assert rx.open_all(tx.finish()) == []
    assert rx.finished and tx.metrics.epochs == 1


def test_mode_mismatch_is_refused() -> None:
    pool = InMemoryKeyPool()
    tx = tp.SenderSession(key_source=pool.master(), config=tp.TransportConfig(mode="qkd"))
    rx = tp.ReceiverSession(key_source=pool.slave(), config=tp.TransportConfig(mode="hybrid"))
    with pytest.raises(ConfigError, match="sender uses mode qkd"):
        rx.accept_start(tx.start(rx.hello()))


def _records() -> tuple[tp.ReceiverSession, list[bytes]]:
    cfg = tp.TransportConfig(
        record_bytes=1000, rekey_bytes=4000, rekey_seconds=None, key_fetch_timeout_s=0.1
    )
    tx, rx, _ = pair(cfg)
    return rx, split_records(run(tx, PLAIN[:9000]))


def _feed(rx: tp.ReceiverSession, records: list[bytes]) -> list[bytes]:
    released: list[bytes] = []
    for rec in records:
        plain = rx.open(rec[: tp.HEADER.size], rec[tp.HEADER.size :])
        if plain is not None:
            released.append(plain)
    return released


def _flip(record: bytes, index: int) -> bytes:
    return record[:index] + bytes([record[index] ^ 0x01]) + record[index + 1 :]


@pytest.mark.parametrize(
    ("where", "index"),
    [
        ("data body", -1),  # last byte of the tag
        ("data body", tp.HEADER.size + 3),  # ciphertext
        ("data header: epoch", 7),
        ("data header: seq", 15),
        ("data header: direction", 1),
        ("data header: flags", 3),
    ],
)
def test_tampered_data_record_is_rejected(where: str, index: int) -> None:
    rx, recs = _records()
    target = 3  # KEY, DATA, DATA, DATA(target), ...
    released = _feed(rx, recs[:target])
    with pytest.raises(AuthenticationError):
        released += _feed(rx, [_flip(recs[target], index)])
    assert b"".join(released) == PLAIN[:2000]  # nothing from the tampered record on


@pytest.mark.parametrize("index", [tp.HEADER.size + 1, tp.HEADER.size + 20, -1, 5])
def test_tampered_key_record_is_rejected(index: int) -> None:
    # key ID byte, ML-KEM ciphertext byte, confirmation tag, epoch field
    rx, recs = _records()
    with pytest.raises((AuthenticationError, KeyNotFoundError)):
        _feed(rx, [_flip(recs[0], index), *recs[1:]])


def test_reordered_dropped_replayed_truncated() -> None:
    rx, recs = _records()
    with pytest.raises(AuthenticationError, match="out of order"):
        _feed(rx, [recs[0], recs[2], recs[1]])
    rx, recs = _records()
    with pytest.raises(AuthenticationError, match="out of order"):
        _feed(rx, [recs[0], recs[1], recs[1]])
    rx, recs = _records()
    with pytest.raises(AuthenticationError, match="out of order"):
        _feed(rx, recs[:2] + recs[3:])
    rx, recs = _records()
    with pytest.raises(AuthenticationError, match="truncated"):
        rx.open_all(b"".join(recs[:-1]))
    rx, recs = _records()
    with pytest.raises(AuthenticationError, match="after the END"):
        _feed(rx, [*recs, recs[-1]])


def test_unknown_key_id_gives_a_clear_error() -> None:
    cfg = tp.TransportConfig(key_fetch_timeout_s=0.0)
    sender_pool, receiver_pool = InMemoryKeyPool(), InMemoryKeyPool()
    tx = tp.SenderSession(key_source=sender_pool.master(), config=cfg)
    rx = tp.ReceiverSession(key_source=receiver_pool.slave(), config=cfg)
    rx.accept_start(tx.start(rx.hello()))
    with pytest.raises(KeyNotFoundError, match="not available at this KME"):
        rx.open_all(b"".join(tx.seal(b"secret")) + tx.finish())


def test_lost_key_waits_then_fails_and_late_key_is_found() -> None:
    clock = FakeClock()
    cfg = tp.TransportConfig(key_fetch_timeout_s=2.0)
    pool = InMemoryKeyPool()
    tx, rx, _ = pair(cfg, pool=pool, clock=clock)
    wire = b"".join(tx.seal(b"secret")) + tx.finish()
    key_record = split_records(wire)[0]
    # the key was already taken (e.g. by another receiver): one-time delivery -> lost
    key_id = str(uuid.UUID(bytes=key_record[tp.HEADER.size + 1 : tp.HEADER.size + 17]))
    pool.slave().key_by_id(key_id)
    with pytest.raises(KeyNotFoundError, match=key_id):
        rx.open_all(wire)
    assert clock.t >= 2.0  # it retried for the configured time first


def test_nonces_never_repeat() -> None:
    cfg = tp.TransportConfig(record_bytes=64, rekey_bytes=512, rekey_seconds=None)
    seen: set[tuple[bytes, bytes]] = set()
    total = 0
    for _ in range(2):  # two sessions from the same pool
        tx, rx, _ = pair(cfg)
        tx.track_nonces = True
        rx.open_all(run(tx, PLAIN[:4096], chunk=300))
        total += len(tx.nonces_used)
        seen.update(tx.nonces_used)
    assert len(seen) == total > 140


def test_gcm_record_limit_forces_rekey_and_is_enforced() -> None:
    cfg = tp.TransportConfig(record_bytes=10, max_records_per_key=8, rekey_seconds=None)
    tx, rx, _ = pair(cfg)
    tx.track_nonces = True
    rx.open_all(run(tx, b"y" * 200, chunk=200))
    per_key: dict[bytes, int] = {}
    for key_fp, _nonce in tx.nonces_used:
        per_key[key_fp] = per_key.get(key_fp, 0) + 1
    assert max(per_key.values()) <= 8
    assert tx.metrics.epochs == len(per_key) >= 3
    # a sender allowed more than the receiver accepts is stopped by the receiver
    loose = tp.TransportConfig(record_bytes=10, max_records_per_key=100, rekey_seconds=None)
    pool = InMemoryKeyPool()
    tx2 = tp.SenderSession(key_source=pool.master(), config=loose)
    rx2 = tp.ReceiverSession(key_source=pool.slave(), config=cfg)
    rx2.accept_start(tx2.start(rx2.hello()))
    with pytest.raises(AuthenticationError, match="per-key AES-GCM limits"):
        rx2.open_all(run(tx2, b"y" * 200, chunk=200))


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="SP 800-38D"):
        tp.TransportConfig(max_records_per_key=2**32 + 1)
    with pytest.raises(ConfigError, match="max_bytes_per_key"):
        tp.TransportConfig(max_bytes_per_key=2**39)
    with pytest.raises(ConfigError, match="unknown dry-KME policy"):
        tp.TransportConfig(policy=PolicyConfig(policy="shrug"))
    with pytest.raises(DataFormatError, match="HELLO"):
        tp.SenderSession(key_source=InMemoryKeyPool().master()).start(b"nope")


def test_over_a_socket() -> None:
    pool = InMemoryKeyPool()
    cfg = tp.TransportConfig(record_bytes=4096, rekey_bytes=8192, rekey_seconds=None)
    a, b = socket.socketpair()
    import io

    sink = io.BytesIO()
    result: dict[str, object] = {}

    def receiver() -> None:
        try:
            result["rx"] = tp.receive_stream(b, sink, key_source=pool.slave(), config=cfg)
        except Exception as exc:  # pragma: no cover - surfaced below
            result["error"] = exc

    t = threading.Thread(target=receiver)
    t.start()
    report = tp.send_stream(a, io.BytesIO(PLAIN * 4), key_source=pool.master(), config=cfg)
    t.join(10)
    a.close()
    b.close()
    assert "error" not in result
    assert sink.getvalue() == PLAIN * 4
    assert report.plaintext_bytes == len(PLAIN) * 4 == result["rx"].plaintext_bytes  # type: ignore[attr-defined]
    assert report.epochs == 8 and report.qkd_keys_used == 8


# -- properties (hypothesis) -------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(0, 5000),
    record=st.integers(16, 900),
    rekey=st.integers(1, 3000),
    chunk=st.integers(1, 2000),
)
def test_round_trip_any_chunking(size: int, record: int, rekey: int, chunk: int) -> None:
    data = PLAIN[:size]
    cfg = tp.TransportConfig(record_bytes=record, rekey_bytes=rekey, rekey_seconds=None)
    tx, rx, _ = pair(cfg)
    tx.track_nonces = True
    assert b"".join(rx.open_all(run(tx, data, chunk=chunk))) == data
    assert len(set(tx.nonces_used)) == len(tx.nonces_used)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_single_bit_flip_is_detected(data: st.DataObject) -> None:
    cfg = tp.TransportConfig(
        record_bytes=300, rekey_bytes=700, rekey_seconds=None, key_fetch_timeout_s=0.0
    )
    tx, rx, _ = pair(cfg)
    message = PLAIN[:2000]
    wire = run(tx, message, chunk=500)
    position = data.draw(st.integers(0, 8 * len(wire) - 1), label="bit")
    flipped = bytearray(wire)
    flipped[position // 8] ^= 1 << (position % 8)
    released: list[bytes] = []
    with pytest.raises(CvqkdError):
        offset = 0
        while offset < len(flipped):
            header = bytes(flipped[offset : offset + tp.HEADER.size])
            blen = tp.HEADER.unpack(header)[5]
            body = bytes(flipped[offset + tp.HEADER.size : offset + tp.HEADER.size + blen])
            if len(body) != blen:
                raise AuthenticationError("truncated")
            offset += tp.HEADER.size + blen
            plain = rx.open(header, body)
            if plain is not None:
                released.append(plain)
        if not rx.finished:
            raise AuthenticationError("no END")
    # what was released before the flip is an authentic prefix of the message
    assert message.startswith(b"".join(released))


def test_read_record_bounds_and_truncation() -> None:
    import io

    big = tp.HEADER.pack(tp.TYPE_DATA, 1, 0, 1, 1, tp.MAX_BODY_BYTES + 1)
    with pytest.raises(DataFormatError, match="exceeds the limit"):
        tp.read_record(io.BytesIO(big), max_body=tp.MAX_BODY_BYTES)
    short = tp.HEADER.pack(tp.TYPE_DATA, 1, 0, 1, 1, 100) + b"x" * 10
    with pytest.raises(AuthenticationError, match="truncated"):
        tp.read_record(io.BytesIO(short), max_body=tp.MAX_BODY_BYTES)
    assert tp.read_record(io.BytesIO(b""), max_body=10) is None
