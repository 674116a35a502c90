"""Byte transports for the classical channel: in-process (queues) and TCP (length-prefixed frames).

A transport moves opaque frames; authentication is the job of
:class:`cvqkd.classical.auth.AuthenticatedChannel` above it. TCP frames are an 8-byte big-endian
length followed by the payload; frames above ``MAX_FRAME_BYTES`` are refused.

Example:
    >>> a, b = InProcessTransport.pair()
    >>> a.send(b"ping"); b.recv(1.0)
    b'ping'
"""

from __future__ import annotations

import queue
import socket
import struct
import time
from typing import Protocol

from cvqkd.errors import CvqkdError

#: Largest frame accepted (1 GiB): a Toeplitz seed of 2^28 bits is 32 MiB.
MAX_FRAME_BYTES = 1 << 30


class TransportError(CvqkdError):
    """The classical channel is closed, timed out or sent an impossible frame."""

    exit_code = 5


class Transport(Protocol):
    """Moves whole frames between the two parties."""

    def send(self, data: bytes) -> None: ...

    def recv(self, timeout_s: float | None) -> bytes: ...

    def close(self) -> None: ...


class InProcessTransport:
    """One end of an in-process pipe (two queues), for two parties running as threads."""

    def __init__(self, inbox: queue.Queue[bytes | None], outbox: queue.Queue[bytes | None]) -> None:
        self._inbox = inbox
        self._outbox = outbox

    @classmethod
    def pair(cls) -> tuple[InProcessTransport, InProcessTransport]:
        """Two connected ends (Alice's, Bob's)."""
        q1: queue.Queue[bytes | None] = queue.Queue()
        q2: queue.Queue[bytes | None] = queue.Queue()
        return cls(q1, q2), cls(q2, q1)

    def send(self, data: bytes) -> None:
        self._outbox.put(bytes(data))

    def recv(self, timeout_s: float | None) -> bytes:
        try:
            item = self._inbox.get(timeout=timeout_s)
        except queue.Empty as exc:
            raise TransportError(f"no classical message within {timeout_s} s") from exc
        if item is None:
            raise TransportError("the peer closed the classical channel")
        return item

    def close(self) -> None:
        self._outbox.put(None)


class TcpTransport:
    """Length-prefixed frames over a connected TCP socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @classmethod
    def listen(
        cls,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        timeout_s: float = 60.0,
        ready: list[int] | None = None,
    ) -> TcpTransport:
        """Accept one connection on ``host:port`` (port 0: any; the bound port is appended to
        ``ready`` before waiting, so a caller in another thread can read it)."""
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            srv.bind((host, port))
            srv.listen(1)
            if ready is not None:
                ready.append(srv.getsockname()[1])
            srv.settimeout(timeout_s)
            try:
                conn, _ = srv.accept()
            except TimeoutError as exc:
                raise TransportError(
                    f"no peer connected to {host}:{port} within {timeout_s} s"
                ) from exc
        except OSError as exc:
            if isinstance(exc, TransportError):
                raise
            raise TransportError(f"cannot listen on {host}:{port}: {exc}") from exc
        finally:
            srv.close()
        conn.settimeout(None)
        return cls(conn)

    @classmethod
    def connect(cls, host: str, port: int, *, timeout_s: float = 60.0) -> TcpTransport:
        """Connect to a listening peer, retrying until ``timeout_s`` (the peer may start later)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                sock = socket.create_connection((host, port), timeout=5.0)
                sock.settimeout(None)
                return cls(sock)
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
                time.sleep(0.1)

    def send(self, data: bytes) -> None:
        if len(data) > MAX_FRAME_BYTES:
            raise TransportError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
        try:
            self._sock.sendall(struct.pack(">Q", len(data)) + bytes(data))
        except OSError as exc:
            raise TransportError(f"classical channel send failed: {exc}") from exc

    def _read_exact(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self._sock.recv_into(view[got:], n - got)
            if k == 0:
                raise TransportError("the peer closed the classical channel")
            got += k
        return bytes(buf)

    def recv(self, timeout_s: float | None) -> bytes:
        self._sock.settimeout(timeout_s)
        try:
            (length,) = struct.unpack(">Q", self._read_exact(8))
            if length > MAX_FRAME_BYTES:
                raise TransportError(
                    f"peer announced a frame of {length} bytes (limit {MAX_FRAME_BYTES})"
                )
            return self._read_exact(length)
        except TimeoutError as exc:
            raise TransportError(f"no classical message within {timeout_s} s") from exc
        except OSError as exc:
            raise TransportError(f"classical channel receive failed: {exc}") from exc
        finally:
            self._sock.settimeout(None)

    def close(self) -> None:
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
