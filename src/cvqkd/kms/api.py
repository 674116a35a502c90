"""The HTTPS server of one KME: ETSI GS QKD 014 over mutual TLS (stdlib only).

``ssl`` + :class:`http.server.ThreadingHTTPServer`, HTTP/1.1 keep-alive, one thread per
connection. The TLS handshake runs in the connection's thread (a slow client cannot stall
``accept``) and requires a client certificate signed by the configured CA: no certificate or
an untrusted one ends the handshake. The caller's identity is the certificate subject's CN
(an SAE ID, or a peer KME ID for ``/kme/v1/reservations``).

Routes::

    GET       /api/v1/keys/{slave_SAE_ID}/status
    GET|POST  /api/v1/keys/{slave_SAE_ID}/enc_keys      (GET: ?number=&size=)
    GET|POST  /api/v1/keys/{master_SAE_ID}/dec_keys     (GET: ?key_ID=)
    POST      /kme/v1/reservations                      (peer KME only)
    GET       /kme/v1/metrics                           (this KME's own certificate, or a peer)

Example::

    server = KmeServer(service, host="127.0.0.1", port=8443, ssl_context=ctx)
    server.start()            # in a background thread; server.stop() ends it
"""

from __future__ import annotations

import json
import logging
import re
import socket
import ssl
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cvqkd.errors import ConfigError
from cvqkd.kms.service import EtsiError, KmeService

__all__ = ["KmeServer", "server_ssl_context"]

log = logging.getLogger(__name__)

#: Largest request body accepted (bytes); a key-ID list of 128 UUIDs is ~7 kB.
MAX_BODY_BYTES = 1 << 20

_ROUTE = re.compile(r"^/api/v1/keys/([^/]+)/(status|enc_keys|dec_keys)$")


def server_ssl_context(
    *, cert_file: str | Path, key_file: str | Path, ca_file: str | Path
) -> ssl.SSLContext:
    """TLS >= 1.2 server context that requires a client certificate signed by ``ca_file``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_cert_chain(certfile=str(cert_file), keyfile=str(key_file))
        ctx.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load TLS files ({cert_file}, {key_file}, {ca_file}): {exc}"
        ) from None
    return ctx


def _common_name(cert: dict[str, Any] | None) -> str | None:
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cvqkd-kme"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: KmeServer
    _body: bytes = b""

    # -- plumbing --------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(self, status: int, body: dict[str, Any], *, close: bool = False) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        reason = HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {reason}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n"
            "Cache-Control: no-store\r\n"
        )
        if status == 401:
            head += 'WWW-Authenticate: Mutual realm="cvqkd-kme"\r\n'
        if status == 503:
            head += "Retry-After: 1\r\n"
        if close:
            head += "Connection: close\r\n"
            self.close_connection = True
        self.wfile.write(head.encode("latin-1") + b"\r\n" + data)
        self.log_request(status, len(data))

    def _error(self, exc: EtsiError, *, close: bool = False) -> None:
        self._send(exc.status, exc.body(), close=close)

    def _caller(self) -> str:
        conn = self.connection
        cn = _common_name(conn.getpeercert()) if isinstance(conn, ssl.SSLSocket) else None
        if cn is None:
            raise EtsiError(401, "the client certificate has no common name")
        return cn

    def _read_body(self) -> bytes:
        """The whole request body (read before anything can fail, so that a keep-alive
        connection stays in step)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise EtsiError(400, "chunked request bodies are not supported; send Content-Length")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise EtsiError(400, "invalid Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            self.close_connection = True
            raise EtsiError(400, f"request body larger than {MAX_BODY_BYTES} bytes")
        return self.rfile.read(length) if length else b""

    def _json(self, *, empty_ok: bool) -> dict[str, Any]:
        raw = self._body
        if not raw.strip():
            if empty_ok:
                return {}
            raise EtsiError(400, "the request body is empty")
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EtsiError(400, f"malformed JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise EtsiError(400, "the request body must be a JSON object")
        return obj

    # -- dispatch ----------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _method_not_allowed(self) -> None:
        # The body (if any) is not read: close the connection rather than parse it as a request.
        self._send(405, {"message": f"method {self.command} not allowed"}, close=True)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = _method_not_allowed

    def _dispatch(self, method: str) -> None:
        svc: KmeService = self.server.service
        split = urllib.parse.urlsplit(self.path)
        m = _ROUTE.match(split.path)
        peer_call = split.path == "/kme/v1/reservations"
        call = m.group(2) if m else ("reservations" if peer_call else "?")
        try:
            self._body = b""
            self._body = self._read_body()
            caller = self._caller()
            if peer_call and method == "POST":
                out = svc.peer_reserve(caller_kme_id=caller, body=self._json(empty_ok=False))
            elif split.path == "/kme/v1/metrics" and method == "GET":
                call = "metrics"
                out = svc.metrics_for(caller)
            elif m is None:
                raise EtsiError(404, f"no such resource: {split.path}")
            else:
                sae = urllib.parse.unquote(m.group(1))
                out = self._etsi(svc, call, method, caller, sae, split.query)
        except EtsiError as exc:
            svc.count(call, error=True)
            self._error(exc)
            return
        except Exception:  # a bug must not leak a traceback to the client
            log.exception("internal error in %s", call)
            svc.count(call, error=True)
            self._send(503, {"message": "internal KME error"}, close=True)
            return
        svc.count(call, error=False)
        self._send(200, out)

    def _etsi(
        self, svc: KmeService, call: str, method: str, caller: str, sae: str, query: str
    ) -> dict[str, Any]:
        params = urllib.parse.parse_qs(query, keep_blank_values=True, strict_parsing=False)
        if method == "POST":
            if call == "status":
                raise EtsiError(405, "status is GET only")
            if query:
                raise EtsiError(400, "POST takes its parameters in the JSON body, not the query")
            body = self._json(empty_ok=(call == "enc_keys"))
        else:
            body = self._query_body(call, params)
        if call == "status":
            return svc.status(caller_sae_id=caller, slave_sae_id=sae)
        if call == "enc_keys":
            return svc.enc_keys(caller_sae_id=caller, slave_sae_id=sae, request=body)
        return svc.dec_keys(caller_sae_id=caller, master_sae_id=sae, request=body)

    @staticmethod
    def _query_body(call: str, params: dict[str, list[str]]) -> dict[str, Any]:
        allowed = {"status": set(), "enc_keys": {"number", "size"}, "dec_keys": {"key_ID"}}[call]
        for name, values in params.items():
            if name not in allowed:
                raise EtsiError(400, f"unknown query parameter {name!r}")
            if len(values) != 1:
                raise EtsiError(400, f"query parameter {name!r} given more than once")
        if call == "dec_keys":
            if "key_ID" not in params:
                raise EtsiError(400, "GET dec_keys needs the query parameter key_ID")
            return {"key_IDs": [{"key_ID": params["key_ID"][0]}]}
        body: dict[str, Any] = {}
        for name in ("number", "size"):
            if name in params:
                text = params[name][0]
                if not re.fullmatch(r"[0-9]{1,9}", text):
                    raise EtsiError(400, f"query parameter {name!r} must be an integer")
                body[name] = int(text)
        return body


class KmeServer(ThreadingHTTPServer):
    """A KME's HTTPS server: mTLS handshake per connection thread, then :class:`_Handler`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        service: KmeService,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        handshake_timeout_s: float = 10.0,
    ) -> None:
        self.service = service
        self.ssl_context = ssl_context
        self.handshake_timeout_s = handshake_timeout_s
        self._thread: threading.Thread | None = None
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from None

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        sock: socket.socket = request
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.handshake_timeout_s)
            tls = self.ssl_context.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake with %s refused: %s", client_address, exc)
            return
        try:
            tls.settimeout(_Handler.timeout)
            self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (ssl.SSLError, OSError) as exc:
            log.debug("connection from %s ended: %s", client_address, exc)
        finally:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()

    def start(self) -> threading.Thread:
        """Serve in a daemon thread; returns it."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def build_server(config: Any) -> KmeServer:
    """A ready :class:`KmeServer` (not yet serving) from a loaded ``KmeConfig``.

    Opens the store, sets its pool limit, connects the peer client.
    """
    from cvqkd.kms.client import KmePeerClient
    from cvqkd.kms.store import open_store

    settings = config.settings()
    opts: dict[str, Any] = {}
    if "://" not in config.store.url:
        opts["synchronous"] = config.store.sqlite_synchronous
    elif config.store.url.startswith(("postgresql://", "postgres://")):
        opts["pool_size"] = config.store.postgres_pool_size
    store = open_store(config.store.url, chunk_bits=config.store.chunk_bits, **opts)
    store.set_pool_limit(config.keys.max_key_count * store.chunks_per_key(settings.key_size_bits))
    peers = None
    if config.peers:
        peers = KmePeerClient(
            {k: p.url for k, p in config.peers.items()},
            cert_file=config.tls.cert_file,
            key_file=config.tls.key_file,
            ca_file=config.tls.ca_file,
            timeout_s=max(p.timeout_s for p in config.peers.values()),
        )
    service = KmeService(settings, store, peers)
    ctx = server_ssl_context(
        cert_file=config.tls.cert_file, key_file=config.tls.key_file, ca_file=config.tls.ca_file
    )
    return KmeServer(service, host=config.listen.host, port=config.listen.port, ssl_context=ctx)
