"""Wegman–Carter authentication: tags, tampering, replay, reordering, key accounting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvqkd.classical.auth import (
    P127,
    TAG_BYTES,
    AuthenticatedChannel,
    KeyPool,
    PresharedKey,
    collision_bound,
    poly_hash,
)
from cvqkd.classical.transport import InProcessTransport
from cvqkd.errors import AuthenticationError, SecurityAbort

SECRET = bytes((7 * i + 3) % 256 for i in range(16 + 2 * 16 * 20))


def _reference_poly_hash(key: int, data: bytes) -> int:
    """Slow reference: Σ c_j k^{L+1−j} + len(data) with explicit powers."""
    chunks = [int.from_bytes(data[i : i + 15], "big") + 2**120 for i in range(0, len(data), 15)]
    total = len(data)
    big_l = len(chunks)
    for j, c in enumerate(chunks, start=1):
        total += c * pow(key, big_l + 1 - j, P127)
    return total % P127


@settings(max_examples=100, deadline=None)
@given(key=st.integers(0, P127 - 1), data=st.binary(max_size=100))
def test_poly_hash_equals_explicit_polynomial(key: int, data: bytes) -> None:
    assert poly_hash(key, data) == _reference_poly_hash(key, data)


def test_length_is_bound_into_the_hash() -> None:
    # trailing zero bytes change the chunking marker / length term
    assert poly_hash(12345, b"ab") != poly_hash(12345, b"ab\x00")
    assert poly_hash(12345, b"") != poly_hash(12345, b"\x00")


def test_collision_bound_value() -> None:
    # 30 bytes = 2 chunks, plus the length term: degree 3, bound 3 / p
    assert collision_bound(30) == pytest.approx(3 / P127)


class Tap:
    """A man in the middle on Alice → Bob: records, and can modify, drop or replay frames."""

    def __init__(self, inner: InProcessTransport) -> None:
        self.inner = inner
        self.sent: list[bytes] = []
        self.mutate = lambda i, data: data

    def send(self, data: bytes) -> None:
        i = len(self.sent)
        self.sent.append(data)
        out = self.mutate(i, data)
        if out is not None:
            self.inner.send(out)

    def recv(self, timeout_s: float | None) -> bytes:
        return self.inner.recv(timeout_s)

    def close(self) -> None:
        self.inner.close()


def _pair() -> tuple[AuthenticatedChannel, AuthenticatedChannel, Tap]:
    ta, tb = InProcessTransport.pair()
    tap = Tap(ta)
    alice = AuthenticatedChannel(
        tap, role="alice", psk=PresharedKey.from_secret(SECRET), timeout_s=2
    )
    bob = AuthenticatedChannel(tb, role="bob", psk=PresharedKey.from_secret(SECRET), timeout_s=2)
    return alice, bob, tap


def test_round_trip_both_directions_and_accounting() -> None:
    alice, bob, _ = _pair()
    alice.send("a", x=np.arange(4))
    assert bob.recv("a")["x"].tolist() == [0, 1, 2, 3]
    bob.send("b", y=b"hi")
    assert alice.recv("b")["y"] == b"hi"
    alice.send("c")
    assert bob.recv("c") == {}
    assert alice.psk.alice_to_bob.consumed_bytes == 2 * TAG_BYTES
    assert alice.psk.bob_to_alice.consumed_bytes == TAG_BYTES
    assert bob.psk.consumed_bytes == alice.psk.consumed_bytes == 3 * TAG_BYTES
    assert 0 < alice.forgery_bound < 1e-30


@settings(max_examples=40, deadline=None)
@given(pos=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_any_flipped_bit_is_detected(pos: int, bit: int) -> None:
    alice, bob, tap = _pair()

    def flip(i: int, data: bytes) -> bytes:
        b = bytearray(data)
        b[pos % len(b)] ^= 1 << bit
        return bytes(b)

    tap.mutate = flip
    alice.send("syndrome", s=np.arange(50, dtype=np.uint8), n=50)
    with pytest.raises(AuthenticationError):
        bob.recv("syndrome")
    with pytest.raises(AuthenticationError, match="earlier"):
        bob.recv("syndrome")


def test_replay_is_detected() -> None:
    alice, bob, tap = _pair()
    alice.send("m", v=1)
    assert bob.recv("m")["v"] == 1
    tap.inner.send(tap.sent[0])  # Eve replays the first frame
    with pytest.raises(AuthenticationError, match="replayed or reordered"):
        bob.recv("m")


def test_reorder_is_detected() -> None:
    alice, bob, tap = _pair()
    held: list[bytes] = []
    tap.mutate = lambda i, d: (held.append(d), None)[1] if i == 0 else d
    alice.send("m", v=1)
    alice.send("m", v=2)
    tap.inner.send(held[0])
    with pytest.raises(AuthenticationError, match="sequence 1, expected 0"):
        bob.recv("m")


def test_reflection_is_detected() -> None:
    # Eve sends Alice's own frame back to her: it was tagged with the other direction's pad.
    alice, bob, tap = _pair()
    alice.send("m", v=1)
    bob.transport.send(tap.sent[0])
    with pytest.raises(AuthenticationError):
        alice.recv("m")


def test_forged_frame_with_guessed_tag_fails() -> None:
    alice, bob, _tap = _pair()
    from cvqkd.classical.messages import encode_message

    bob.transport.send(b"")  # not even a frame
    with pytest.raises(AuthenticationError):
        alice.recv()
    _alice2, bob2, tap2 = _pair()
    frame = encode_message("m", seq=0, sender="alice", fields={"v": 9})
    tap2.inner.send(frame + bytes(TAG_BYTES))
    with pytest.raises(AuthenticationError, match="failed its MAC"):
        bob2.recv("m")


def test_unexpected_kind_and_peer_abort() -> None:
    alice, bob, _ = _pair()
    alice.send("x")
    with pytest.raises(AuthenticationError, match="expected 'y'"):
        bob.recv("y")
    alice, bob, _ = _pair()
    alice.abort("gate failed")
    with pytest.raises(SecurityAbort, match="gate failed"):
        bob.recv("anything")


def test_pool_exhaustion_and_replenishment() -> None:
    pool = KeyPool(bytes(40))
    pool.take(32)
    with pytest.raises(SecurityAbort, match="exhausted"):
        pool.take(16)
    pool.replenish(bytes(24))
    assert pool.take(16) == bytes(16)
    assert (pool.consumed_bytes, pool.replenished_bytes, pool.available_bytes) == (48, 24, 16)
    psk = PresharedKey.from_secret(bytes(16 + 64))
    psk.replenish(bytes(10))
    assert psk.alice_to_bob.available_bytes == psk.bob_to_alice.available_bytes == 37


def test_preshared_key_state_round_trips_after_use() -> None:
    alice, bob, _ = _pair()
    alice.send("m")
    bob.recv("m")
    alice.psk.replenish(bytes(range(40)))
    state = alice.psk.dump()
    again = PresharedKey.load(state)
    assert again.hash_key == alice.psk.hash_key
    assert again.alice_to_bob.take(
        again.alice_to_bob.available_bytes
    ) == alice.psk.alice_to_bob.take(alice.psk.alice_to_bob.available_bytes)
    assert PresharedKey.load(SECRET).hash_key == PresharedKey.from_secret(SECRET).hash_key
