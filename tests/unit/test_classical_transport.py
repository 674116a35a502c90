"""Transports: in-process queues and TCP with length-prefixed frames on loopback."""

from __future__ import annotations

import os
import threading
import time

import pytest

from cvqkd.classical.auth import AuthenticatedChannel, PresharedKey
from cvqkd.classical.transport import InProcessTransport, TcpTransport, TransportError


def _tcp_pair() -> tuple[TcpTransport, TcpTransport]:
    ready: list[int] = []
    box: dict[str, TcpTransport] = {}
    t = threading.Thread(target=lambda: box.setdefault("s", TcpTransport.listen(ready=ready)))
    t.start()
    while not ready:
        time.sleep(0.001)
    client = TcpTransport.connect("127.0.0.1", ready[0], timeout_s=5)
    t.join(5)
    return box["s"], client


def test_tcp_round_trip_large_and_many_frames() -> None:
    server, client = _tcp_pair()
    big = os.urandom(5_000_000)
    frames = [big] + [bytes([i]) * i for i in range(100)]
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(server.recv(5) for _ in frames))
    reader.start()  # the kernel buffer is smaller than 5 MB: read while sending
    for f in frames:
        client.send(f)
    reader.join(10)
    assert got == frames
    server.send(b"")
    assert client.recv(5) == b""
    client.close()
    with pytest.raises(TransportError, match="closed"):
        server.recv(5)
    server.close()


def test_tcp_timeout_raises() -> None:
    server, client = _tcp_pair()
    with pytest.raises(TransportError, match="within"):
        server.recv(0.2)
    server.close()
    client.close()


def test_authenticated_channel_over_tcp() -> None:
    server, client = _tcp_pair()
    secret = os.urandom(16 + 64)
    alice = AuthenticatedChannel(client, role="alice", psk=PresharedKey.from_secret(secret))
    bob = AuthenticatedChannel(server, role="bob", psk=PresharedKey.from_secret(secret))
    alice.send("hello", payload=b"x" * 1000)
    assert bob.recv("hello")["payload"] == b"x" * 1000
    bob.send("reply", n=7)
    assert alice.recv("reply")["n"] == 7
    server.close()
    client.close()


def test_in_process_close_and_timeout() -> None:
    a, b = InProcessTransport.pair()
    with pytest.raises(TransportError, match="within"):
        b.recv(0.05)
    a.close()
    with pytest.raises(TransportError, match="closed"):
        b.recv(1)
