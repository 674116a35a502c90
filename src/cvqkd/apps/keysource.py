"""Where the encryptor's keys come from: an ETSI GS QKD 014 KME, or an in-memory pool.

Two roles, as in ETSI GS QKD 014: the *master* SAE (here the sender) asks its KME for a new key
and gets ``(key_ID, key)``; the *slave* SAE (the receiver) learns the key ID in-band and asks its
own KME for the same key by ID. Both views are :class:`typing.Protocol` s, so the transport does
not care where keys live:

- :class:`Etsi014MasterSource` / :class:`Etsi014SlaveSource` wrap
  :class:`cvqkd.kms.client.Etsi014Client` (HTTPS with mutual TLS);
- :class:`InMemoryKeyPool` holds both ends in one process (tests, benchmarks), with the same
  one-time delivery rule as a KME.

A KME that cannot deliver now (pool empty, 503, unreachable) raises :class:`KeyUnavailableError`;
the dry-KME policy (:mod:`cvqkd.apps.policy`) decides what happens next. A request the KME
refuses outright (HTTP 400/401: wrong SAE ID, bad size) raises :class:`KeyStoreError` at once.
A key ID the slave's KME does not know raises :class:`cvqkd.errors.KeyNotFoundError`.

>>> pool = InMemoryKeyPool(capacity=1)
>>> key_id, key = pool.master().new_key()
>>> pool.slave().key_by_id(key_id) == key
True
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from cvqkd.errors import KeyNotFoundError, KeyStoreError

#: 256-bit keys (AES-256) by default.
DEFAULT_KEY_BITS = 256


class KeyUnavailableError(KeyStoreError):
    """The KME cannot deliver a key right now (pool empty, HTTP 503, unreachable)."""


@runtime_checkable
class MasterKeySource(Protocol):
    """The master SAE's view of its KME: a fresh key and its ID, delivered once."""

    def new_key(self) -> tuple[str, bytes]:
        """Return ``(key_id, key)``; raise :class:`KeyUnavailableError` if the pool is dry."""
        ...


@runtime_checkable
class SlaveKeySource(Protocol):
    """The slave SAE's view of its KME: the key issued to the master under ``key_id``."""

    def key_by_id(self, key_id: str) -> bytes:
        """Return the key; raise :class:`KeyNotFoundError` if the ID is unknown or used."""
        ...


class InMemoryKeyPool:
    """Both ends of a key pool in one process, with one-time delivery (tests, benchmarks).

    ``capacity`` keys of ``key_bits`` bits can be issued (``None``: unlimited); :meth:`refill`
    adds more. A key issued to the master waits for the slave, which can fetch it once.
    Keys come from :func:`secrets.token_bytes` (the OS CSPRNG). Thread-safe.
    """

    def __init__(self, *, capacity: int | None = None, key_bits: int = DEFAULT_KEY_BITS) -> None:
        if key_bits % 8 or key_bits <= 0:
            raise ValueError(f"key_bits must be a positive multiple of 8, got {key_bits}")
        self._key_bytes = key_bits // 8
        self._remaining = capacity
        self._issued: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.keys_issued = 0
        self.keys_retrieved = 0

    def refill(self, count: int) -> None:
        """Allow ``count`` more keys (a capacity of ``None`` stays unlimited)."""
        with self._lock:
            if self._remaining is not None:
                self._remaining += count

    def take_master(self) -> tuple[str, bytes]:
        """Issue a new key to the master (see :class:`MasterKeySource`)."""
        with self._lock:
            if self._remaining is not None:
                if self._remaining <= 0:
                    raise KeyUnavailableError("in-memory key pool is empty")
                self._remaining -= 1
            key_id = str(uuid.uuid4())
            key = secrets.token_bytes(self._key_bytes)
            self._issued[key_id] = key
            self.keys_issued += 1
            return key_id, key

    def take_slave(self, key_id: str) -> bytes:
        """Hand the slave the key issued under ``key_id``, once."""
        with self._lock:
            try:
                key = self._issued.pop(key_id)
            except KeyError:
                raise KeyNotFoundError(f"key ID {key_id} is not known to the key pool") from None
            self.keys_retrieved += 1
            return key

    def master(self) -> _PoolMaster:
        """The master SAE's view."""
        return _PoolMaster(self)

    def slave(self) -> _PoolSlave:
        """The slave SAE's view."""
        return _PoolSlave(self)


class _PoolMaster:
    def __init__(self, pool: InMemoryKeyPool) -> None:
        self._pool = pool

    def new_key(self) -> tuple[str, bytes]:
        return self._pool.take_master()


class _PoolSlave:
    def __init__(self, pool: InMemoryKeyPool) -> None:
        self._pool = pool

    def key_by_id(self, key_id: str) -> bytes:
        return self._pool.take_slave(key_id)


def _make_client(
    base_url: str, *, cert_file: str, key_file: str, ca_file: str, timeout_s: float
) -> Any:
    from cvqkd.kms.client import Etsi014Client

    return Etsi014Client(
        base_url, cert_file=cert_file, key_file=key_file, ca_file=ca_file, timeout_s=timeout_s
    )


class Etsi014MasterSource:
    """Master SAE keys from a KME over ETSI GS QKD 014 ``enc_keys`` (one key per call).

    ``client`` is a :class:`cvqkd.kms.client.Etsi014Client` (or anything with its ``get_keys``);
    ``size_bits`` is the requested key size in bits (multiple of 8).
    """

    def __init__(self, client: Any, *, slave_sae_id: str, size_bits: int = DEFAULT_KEY_BITS):
        if size_bits % 8 or size_bits < 128:
            raise ValueError(f"size_bits must be a multiple of 8 and >= 128, got {size_bits}")
        self._client = client
        self._slave = slave_sae_id
        self._size_bits = size_bits

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        slave_sae_id: str,
        cert_file: str,
        key_file: str,
        ca_file: str,
        size_bits: int = DEFAULT_KEY_BITS,
        timeout_s: float = 10.0,
    ) -> Etsi014MasterSource:
        """Open an mTLS client to the KME at ``base_url`` with the master SAE's certificate."""
        client = _make_client(
            base_url, cert_file=cert_file, key_file=key_file, ca_file=ca_file, timeout_s=timeout_s
        )
        return cls(client, slave_sae_id=slave_sae_id, size_bits=size_bits)

    def new_key(self) -> tuple[str, bytes]:
        try:
            keys: Sequence[Any] = self._client.get_keys(
                self._slave, number=1, size_bits=self._size_bits
            )
        except KeyStoreError as exc:
            status = getattr(exc, "status_code", None)
            if status in (400, 401):  # a request the KME will never grant: not "dry"
                raise KeyStoreError(f"KME refused enc_keys (HTTP {status}): {exc}") from exc
            raise KeyUnavailableError(f"KME could not deliver a key: {exc}") from exc
        except OSError as exc:
            raise KeyUnavailableError(f"KME unreachable: {exc}") from exc
        if len(keys) != 1:
            raise KeyStoreError(f"KME returned {len(keys)} keys for a request of 1")
        key = keys[0]
        if len(key.key) * 8 != self._size_bits:
            raise KeyStoreError(
                f"KME returned a {len(key.key) * 8}-bit key, {self._size_bits} bits were asked"
            )
        return str(key.key_id), bytes(key.key)


class Etsi014SlaveSource:
    """Slave SAE keys from a KME over ETSI GS QKD 014 ``dec_keys`` (by key ID)."""

    def __init__(self, client: Any, *, master_sae_id: str) -> None:
        self._client = client
        self._master = master_sae_id

    @classmethod
    def connect(
        cls,
        base_url: str,
        *,
        master_sae_id: str,
        cert_file: str,
        key_file: str,
        ca_file: str,
        timeout_s: float = 10.0,
    ) -> Etsi014SlaveSource:
        """Open an mTLS client to the KME at ``base_url`` with the slave SAE's certificate."""
        client = _make_client(
            base_url, cert_file=cert_file, key_file=key_file, ca_file=ca_file, timeout_s=timeout_s
        )
        return cls(client, master_sae_id=master_sae_id)

    def key_by_id(self, key_id: str) -> bytes:
        try:
            keys: Sequence[Any] = self._client.get_keys_with_ids(self._master, [key_id])
        except OSError as exc:
            raise KeyStoreError(f"KME unreachable: {exc}") from exc
        for key in keys:
            if str(key.key_id) == key_id:
                return bytes(key.key)
        raise KeyNotFoundError(f"KME did not return key ID {key_id}")
