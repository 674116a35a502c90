"""An ETSI GS QKD 014 client over mutual TLS, and the KME-to-KME peer client.

One persistent HTTPS connection (HTTP/1.1 keep-alive) per client, guarded by a lock, so a
client may be shared between threads (calls are then serialised; use one client per thread
for parallel requests). A broken keep-alive connection is reopened once.

Errors: an answer with an error status raises :class:`Etsi014Error` (a
:class:`~cvqkd.errors.KeyStoreError`) carrying the server's ``message``, ``details`` and
``status_code``; the "not found" answer of dec_keys raises :class:`Etsi014KeyNotFoundError`
(also a :class:`~cvqkd.errors.KeyNotFoundError`). Transport failures raise
:class:`~cvqkd.errors.KeyStoreError`.

Example::

    client = Etsi014Client("https://127.0.0.1:8443", cert_file="SAE_A.pem",
                           key_file="SAE_A.key", ca_file="ca.pem")
    keys = client.get_keys("SAE_B", number=2, size_bits=256)      # master side
    same = other.get_keys_with_ids("SAE_A", [k.key_id for k in keys])  # slave side
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvqkd.errors import ConfigError, KeyNotFoundError, KeyStoreError
from cvqkd.kms.models import KeyContainer, Status
from cvqkd.kms.store import NOT_FOUND_MESSAGE, ChunksUnavailableError, Reservation

__all__ = [
    "Etsi014Client",
    "Etsi014Error",
    "Etsi014KeyNotFoundError",
    "Key",
    "KmePeerClient",
    "client_ssl_context",
    "fetch_metrics",
]


class Etsi014Error(KeyStoreError):
    """An error answer of a KME: HTTP ``status_code``, the server's ``message`` and ``details``."""

    def __init__(
        self, message: str, *, status_code: int, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.details = details


class Etsi014KeyNotFoundError(Etsi014Error, KeyNotFoundError):
    """The KME does not hold (any more) one of the requested key IDs (HTTP 400)."""


@dataclass(frozen=True)
class Key:
    """A key from the KME: UUID string ``key_id`` and the ``key`` bytes (not in repr)."""

    key_id: str
    key: bytes = field(repr=False)


def client_ssl_context(
    *, cert_file: str | Path, key_file: str | Path, ca_file: str | Path
) -> ssl.SSLContext:
    """TLS >= 1.2 client context: verify the KME against ``ca_file``, present our certificate."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cafile=str(ca_file))
        ctx.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load TLS files ({cert_file}, {key_file}, {ca_file}): {exc}"
        ) from None
    return ctx


class _HttpsJson:
    """A persistent HTTPS connection that sends and receives JSON."""

    def __init__(self, base_url: str, ctx: ssl.SSLContext, timeout_s: float) -> None:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme != "https" or not u.hostname:
            raise ConfigError(f"KME URL must be https://host:port, not {base_url!r}")
        self.base_url = base_url
        self._host = u.hostname
        self._port = u.port or 443
        self._prefix = u.path.rstrip("/")
        self._ctx = ctx
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPSConnection | None = None
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection(
            self._host, self._port, context=self._ctx, timeout=self._timeout_s
        )
        conn.connect()
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Send one request; returns (status, decoded JSON or None)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        with self._lock:
            for attempt in (0, 1):
                fresh = self._conn is None
                try:
                    if self._conn is None:
                        self._conn = self._connect()
                    self._conn.request(method, self._prefix + path, body=data, headers=headers)
                    resp = self._conn.getresponse()
                    raw = resp.read()
                    if resp.will_close:
                        self._conn.close()
                        self._conn = None
                    break
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    self._drop()
                    raise KeyStoreError(f"TLS with KME at {self.base_url} failed: {exc}") from None
                except (http.client.HTTPException, OSError) as exc:
                    self._drop()
                    # A keep-alive connection the server closed: reopen once.
                    if attempt == 0 and not fresh:
                        continue
                    raise KeyStoreError(f"cannot reach KME at {self.base_url}: {exc}") from None
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return resp.status, payload

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _raise_for(status: int, payload: Any) -> None:
    if status == 200:
        return
    message = f"KME answered HTTP {status}"
    details = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        message = payload["message"]
        d = payload.get("details")
        details = d if isinstance(d, list) else None
    cls = (
        Etsi014KeyNotFoundError if status == 400 and message == NOT_FOUND_MESSAGE else Etsi014Error
    )
    raise cls(message, status_code=status, details=details)


def _keys(payload: Any) -> list[Key]:
    try:
        container = KeyContainer.model_validate(payload)
        return [
            Key(key_id=k.key_ID, key=base64.b64decode(k.key, validate=True)) for k in container.keys
        ]
    except (ValueError, binascii.Error) as exc:
        raise KeyStoreError(f"malformed key container from KME: {exc}") from None


class Etsi014Client:
    """ETSI GS QKD 014 client of one SAE (its certificate's CN is its SAE ID)."""

    def __init__(
        self,
        base_url: str,
        *,
        cert_file: str | Path,
        key_file: str | Path,
        ca_file: str | Path,
        timeout_s: float = 10.0,
    ) -> None:
        ctx = client_ssl_context(cert_file=cert_file, key_file=key_file, ca_file=ca_file)
        self._http = _HttpsJson(base_url, ctx, timeout_s)

    def __enter__(self) -> Etsi014Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._http.close()

    @staticmethod
    def _sae(sae_id: str) -> str:
        return urllib.parse.quote(sae_id, safe="")

    def status(self, slave_sae_id: str) -> Status:
        """``GET /api/v1/keys/{slave_SAE_ID}/status``."""
        status, payload = self._http.request(
            "GET", f"/api/v1/keys/{self._sae(slave_sae_id)}/status"
        )
        _raise_for(status, payload)
        try:
            return Status.model_validate(payload)
        except ValueError as exc:
            raise KeyStoreError(f"malformed status from KME: {exc}") from None

    def get_keys(
        self,
        slave_sae_id: str,
        *,
        number: int = 1,
        size_bits: int | None = None,
        additional_slave_sae_ids: Sequence[str] = (),
    ) -> list[Key]:
        """Get new keys for ``slave_sae_id`` (``POST .../enc_keys``, master side)."""
        body: dict[str, Any] = {"number": number}
        if size_bits is not None:
            body["size"] = size_bits
        if additional_slave_sae_ids:
            body["additional_slave_SAE_IDs"] = list(additional_slave_sae_ids)
        status, payload = self._http.request(
            "POST", f"/api/v1/keys/{self._sae(slave_sae_id)}/enc_keys", body
        )
        _raise_for(status, payload)
        return _keys(payload)

    def get_keys_with_ids(self, master_sae_id: str, key_ids: Sequence[str]) -> list[Key]:
        """Get the keys ``key_ids`` that ``master_sae_id`` obtained (``POST .../dec_keys``)."""
        body = {"key_IDs": [{"key_ID": k} for k in key_ids]}
        status, payload = self._http.request(
            "POST", f"/api/v1/keys/{self._sae(master_sae_id)}/dec_keys", body
        )
        _raise_for(status, payload)
        return _keys(payload)


def fetch_metrics(
    base_url: str,
    *,
    cert_file: str | Path,
    key_file: str | Path,
    ca_file: str | Path,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """``GET /kme/v1/metrics`` of a running KME (with its own or a peer KME's certificate)."""
    ctx = client_ssl_context(cert_file=cert_file, key_file=key_file, ca_file=ca_file)
    conn = _HttpsJson(base_url, ctx, timeout_s)
    try:
        status, payload = conn.request("GET", "/kme/v1/metrics")
    finally:
        conn.close()
    _raise_for(status, payload)
    if not isinstance(payload, dict):
        raise KeyStoreError("malformed metrics from KME")
    return payload


class KmePeerClient:
    """The KME-to-KME call: tell a peer KME which chunks form which keys.

    Keeps a small pool of persistent connections per peer so concurrent enc_keys requests
    do not queue behind one connection.
    """

    def __init__(
        self,
        peer_urls: Mapping[str, str],
        *,
        cert_file: str | Path,
        key_file: str | Path,
        ca_file: str | Path,
        timeout_s: float = 10.0,
    ) -> None:
        self._ctx = client_ssl_context(cert_file=cert_file, key_file=key_file, ca_file=ca_file)
        self._urls = dict(peer_urls)
        self._timeout_s = timeout_s
        self._idle: dict[str, list[_HttpsJson]] = {k: [] for k in self._urls}
        self._lock = threading.Lock()

    def reserve(self, kme_id: str, reservations: Sequence[Reservation]) -> None:
        """``POST /kme/v1/reservations`` at KME ``kme_id``; raises KeyStoreError on failure."""
        if kme_id not in self._urls:
            raise KeyStoreError(f"no URL for peer KME {kme_id}")
        with self._lock:
            conn = self._idle[kme_id].pop() if self._idle[kme_id] else None
        if conn is None:
            conn = _HttpsJson(self._urls[kme_id], self._ctx, self._timeout_s)
        try:
            status, payload = conn.request(
                "POST",
                "/kme/v1/reservations",
                {"reservations": [r.to_json() for r in reservations]},
            )
        except KeyStoreError:
            conn.close()
            raise
        with self._lock:
            self._idle[kme_id].append(conn)
        if status == 503 and isinstance(payload, dict):
            for d in payload.get("details") or []:
                ids = d.get("unavailable_chunk_IDs") if isinstance(d, dict) else None
                if isinstance(ids, list):
                    raise ChunksUnavailableError(str(payload.get("message")), [str(i) for i in ids])
        _raise_for(status, payload)

    def close(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            for conns in self._idle.values():
                for c in conns:
                    c.close()
                conns.clear()
