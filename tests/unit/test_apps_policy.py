"""Dry-KME policies (wait, keep, pqc-only) on the record stream, and the key sources.

Each policy: the stream either carries on encrypted or stops with an error; the wire never holds
the plaintext; each event is counted in the metrics and logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from cvqkd.apps import transport as tp
from cvqkd.apps.keysource import (
    Etsi014MasterSource,
    Etsi014SlaveSource,
    InMemoryKeyPool,
    KeyUnavailableError,
    MasterKeySource,
    SlaveKeySource,
)
from cvqkd.apps.policy import Metrics, PolicyConfig, obtain_key
from cvqkd.errors import AuthenticationError, KeyNotFoundError, KeyStoreError

SECRET = b"attack at dawn; " * 64  # 1 KiB


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps = 0
        self.on_sleep: list = []  # type: ignore[type-arg]

    def __call__(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        self.t += dt
        self.sleeps += 1
        for hook in self.on_sleep:
            hook(self.sleeps)


def session(policy: str, capacity: int, *, rx_policy: str | None = None, **cfg_kw: object):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    pool = InMemoryKeyPool(capacity=capacity)
    pol = PolicyConfig(policy=policy, wait_timeout_s=1.0, backoff_initial_s=0.1, backoff_max_s=0.4)
    cfg = tp.TransportConfig(
        record_bytes=128,
        rekey_bytes=256,
        rekey_seconds=None,
        policy=pol,
        **cfg_kw,  # type: ignore[arg-type]
    )
    rx_cfg = tp.TransportConfig(
        record_bytes=128,
        policy=PolicyConfig(policy=rx_policy or policy),
        **cfg_kw,  # type: ignore[arg-type]
    )
    tx = tp.SenderSession(key_source=pool.master(), config=cfg, clock=clock, sleep=clock.sleep)
    rx = tp.ReceiverSession(key_source=pool.slave(), config=rx_cfg, clock=clock, sleep=clock.sleep)
    rx.accept_start(tx.start(rx.hello()))
    return tx, rx, pool, clock


def test_wait_retries_until_the_kme_refills(caplog: pytest.LogCaptureFixture) -> None:
    tx, rx, pool, clock = session("wait", capacity=1)
    clock.on_sleep.append(lambda n: pool.refill(10) if n == 3 else None)
    with caplog.at_level(logging.WARNING, logger="cvqkd.apps"):
        wire = b"".join(tx.seal(SECRET)) + tx.finish()
    assert b"".join(rx.open_all(wire)) == SECRET
    assert tx.metrics.kme_dry_events == 1 and tx.metrics.wait_retries == 3
    assert clock.t == pytest.approx(0.1 + 0.2 + 0.4)  # exponential backoff
    assert tx.metrics.epochs == 4  # 1024 bytes, a new key each 256 bytes
    assert "policy wait" in caplog.text
    assert SECRET[:32] not in wire


def test_wait_times_out_without_sending_plaintext() -> None:
    tx, _rx, _pool, clock = session("wait", capacity=1)
    out: list[bytes] = []
    with pytest.raises(KeyUnavailableError, match="KME dry for 1 s"):
        for i in range(0, len(SECRET), 128):
            out += tx.seal(SECRET[i : i + 128])
    assert clock.t == pytest.approx(1.0)
    assert tx.metrics.kme_dry_events == 1
    assert SECRET[:32] not in b"".join(out)
    assert len(b"".join(out)) < 3 * (128 + 40) + 2000  # only the first epoch's records


def test_keep_carries_on_under_the_current_key() -> None:
    tx, rx, pool, _ = session("keep", capacity=1)
    wire = b"".join(tx.seal(SECRET)) + tx.finish()
    assert b"".join(rx.open_all(wire)) == SECRET
    assert tx.metrics.epochs == 1 and pool.keys_issued == 1
    assert tx.metrics.keep_extensions == 3  # at 256, 512, 768 bytes
    assert SECRET[:32] not in wire


def test_keep_stops_at_the_gcm_limit() -> None:
    # 1 KiB in 128-byte records needs 8 DATA records; a key may serve only 5 invocations
    tx, _rx, _pool, _ = session("keep", capacity=1, max_records_per_key=5)
    with pytest.raises(KeyUnavailableError, match="policy keep not possible"):
        tx.seal(SECRET)
    assert tx.metrics.keep_extensions >= 1 and tx.metrics.wait_retries > 0


def test_pqc_only_falls_back_to_mlkem(caplog: pytest.LogCaptureFixture) -> None:
    tx, rx, _pool, _ = session("pqc-only", capacity=1)
    with caplog.at_level(logging.WARNING, logger="cvqkd.apps"):
        wire = b"".join(tx.seal(SECRET)) + tx.finish()
        assert b"".join(rx.open_all(wire)) == SECRET
    assert tx.metrics.epochs == 4 and tx.metrics.pqc_only_epochs == 3
    assert rx.metrics.pqc_only_epochs == 3 and rx.metrics.qkd_keys_used == 1
    assert "ML-KEM-768 only" in caplog.text
    assert SECRET[:32] not in wire


def test_receiver_refuses_pqc_only_unless_its_policy_allows() -> None:
    tx, rx, _pool, _ = session("pqc-only", capacity=1, rx_policy="wait")
    wire = b"".join(tx.seal(SECRET)) + tx.finish()
    with pytest.raises(AuthenticationError, match="ML-KEM only"):
        rx.open_all(wire)


def test_qkd_mode_pqc_only_epochs_still_authenticate() -> None:
    tx, rx, _pool, _ = session("pqc-only", capacity=2, mode="qkd")
    wire = b"".join(tx.seal(SECRET)) + tx.finish()
    assert b"".join(rx.open_all(wire)) == SECRET
    assert tx.metrics.pqc_only_epochs == 2


def test_obtain_key_counts() -> None:
    metrics = Metrics()
    d = obtain_key(
        InMemoryKeyPool(capacity=1).master(), config=PolicyConfig(), metrics=metrics, can_keep=False
    )
    assert d.kind == "qkd" and d.key is not None and len(d.key) == 32
    assert metrics.qkd_keys_used == 1 and metrics.kme_dry_events == 0
    assert d.key.hex() not in repr(d)


# -- key sources -------------------------------------------------------------------------------


def test_in_memory_pool_delivers_once() -> None:
    pool = InMemoryKeyPool(capacity=2, key_bits=128)
    master, slave = pool.master(), pool.slave()
    assert isinstance(master, MasterKeySource) and isinstance(slave, SlaveKeySource)
    kid, key = master.new_key()
    assert len(key) == 16 and slave.key_by_id(kid) == key
    with pytest.raises(KeyNotFoundError):
        slave.key_by_id(kid)
    master.new_key()
    with pytest.raises(KeyUnavailableError):
        master.new_key()


@dataclass
class _Key:
    key_id: str
    key: bytes


class _FakeClient:
    """Stands in for cvqkd.kms.client.Etsi014Client (same method names)."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[tuple[str, object]] = []

    def get_keys(self, slave: str, *, number: int = 1, size_bits: int | None = None) -> list[_Key]:
        self.calls.append((slave, (number, size_bits)))
        if self.error:
            raise self.error
        return [_Key("3f2504e0-4f89-41d3-9a0c-0305e82c3301", b"k" * ((size_bits or 256) // 8))]

    def get_keys_with_ids(self, master: str, key_ids: list[str]) -> list[_Key]:
        self.calls.append((master, tuple(key_ids)))
        if self.error:
            raise self.error
        return [_Key(key_ids[0], b"k" * 32)]


def test_etsi_adapters_map_errors() -> None:
    ok = _FakeClient()
    assert Etsi014MasterSource(ok, slave_sae_id="SAE_B").new_key()[1] == b"k" * 32
    assert ok.calls[-1] == ("SAE_B", (1, 256))
    assert Etsi014SlaveSource(ok, master_sae_id="SAE_A").key_by_id("x") == b"k" * 32
    assert ok.calls[-1] == ("SAE_A", ("x",))
    dry = Etsi014MasterSource(_FakeClient(KeyStoreError("no keys")), slave_sae_id="SAE_B")
    with pytest.raises(KeyUnavailableError, match="no keys"):
        dry.new_key()
    down = Etsi014MasterSource(_FakeClient(ConnectionRefusedError("refused")), slave_sae_id="B")
    with pytest.raises(KeyUnavailableError, match="unreachable"):
        down.new_key()
    refused = KeyStoreError("not a slave SAE of this master")
    refused.status_code = 401  # type: ignore[attr-defined]
    wrong = Etsi014MasterSource(_FakeClient(refused), slave_sae_id="SAE_X")
    with pytest.raises(KeyStoreError, match="HTTP 401") as info:
        wrong.new_key()
    assert not isinstance(info.value, KeyUnavailableError)  # no waiting on a refusal
    missing = Etsi014SlaveSource(_FakeClient(KeyNotFoundError("gone")), master_sae_id="SAE_A")
    with pytest.raises(KeyNotFoundError, match="gone"):
        missing.key_by_id("x")
