"""Information-theoretically secure authentication of the classical channel (Wegman–Carter).

Tag of a frame ``M`` (bytes) with sequence number ``i``::

    tag_i = (h_k(M) + r_i) mod p,      p = 2^127 − 1

``h_k`` is the polynomial hash over GF(p): ``M`` is cut into 15-byte chunks ``c_1..c_L`` (each
``+ 2^120`` so that length is encoded), then ``h_k(M) = Σ c_j k^{L+1−j} + len(M) mod p`` by Horner.
Two different messages of at most L chunks collide for at most ``L + 1`` keys ``k`` (non-zero
polynomial of degree ≤ L + 1), so the family is ε-almost-Δ-universal with ε = (L + 1)/p; one-time
pad encryption of the hash with a fresh uniform ``r_i`` makes the tag an ε-secure MAC (Wegman &
Carter, JCSS 22, 265 (1981); Stinson 1994). The hash key ``k`` (16 bytes, read once) may be
reused; each tag consumes 16 fresh bytes of pad. The bytes come from a pre-shared secret pool that
is replenished from generated key; both ends consume the pool in the same order (one pool per
direction), and :class:`KeyPool` accounts every byte.

Sequence numbers are inside the authenticated frame: a replayed, reordered or dropped message
fails (its tag is checked against the pad of the expected position) and raises
:class:`cvqkd.errors.AuthenticationError`; after that the channel refuses all further use.

Example:
    >>> from cvqkd.classical.transport import InProcessTransport
    >>> ta, tb = InProcessTransport.pair()
    >>> secret = bytes(range(200))
    >>> alice = AuthenticatedChannel(ta, role="alice", psk=PresharedKey.from_secret(secret))
    >>> bob = AuthenticatedChannel(tb, role="bob", psk=PresharedKey.from_secret(secret))
    >>> alice.send("hello", n=3)
    >>> bob.recv("hello")["n"]
    3
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from cvqkd.classical.messages import decode_message, encode_message, peek_header
from cvqkd.classical.transport import Transport
from cvqkd.errors import AuthenticationError, DataFormatError, SecurityAbort

P127 = (1 << 127) - 1
TAG_BYTES = 16
HASH_KEY_BYTES = 16
_CHUNK = 15
_MARK = 1 << 120
PSK_MAGIC = b"CVQKPSK1"


def poly_hash(key: int, data: bytes) -> int:
    """Polynomial hash of ``data`` over GF(2^127 − 1) at point ``key`` (see module docstring)."""
    h = 0
    mv = memoryview(data)
    for i in range(0, len(data), _CHUNK):
        h = (h * key + int.from_bytes(mv[i : i + _CHUNK], "big") + _MARK) % P127
    return (h * key + len(data)) % P127


def collision_bound(n_bytes: int) -> float:
    """Forgery probability of one tag on a message of ``n_bytes``: (L + 1)/p, L = ⌈n/15⌉ + 1."""
    return (-(-n_bytes // _CHUNK) + 2) / float(P127)


def _field_element(raw: bytes) -> int:
    """127 uniform bits → an element of GF(p); the all-ones value (prob. 2^-127) maps to 0."""
    return (int.from_bytes(raw, "big") & P127) % P127


def wegman_carter_tag(*, hash_key: int, pad: bytes, data: bytes) -> bytes:
    """16-byte tag ``(h_k(data) + r) mod p`` with one-time pad ``r`` from ``pad`` (16 bytes)."""
    if len(pad) != TAG_BYTES:
        raise ValueError("the pad must be 16 bytes")
    return ((poly_hash(hash_key, data) + _field_element(pad)) % P127).to_bytes(TAG_BYTES, "big")


class KeyPool:
    """A pool of secret bytes consumed in order; accounts what was taken and added."""

    def __init__(self, secret: bytes) -> None:
        self._buf = bytearray(secret)
        self.consumed_bytes = 0
        self.replenished_bytes = 0

    @property
    def available_bytes(self) -> int:
        """Bytes left in the pool."""
        return len(self._buf)

    def take(self, nbytes: int) -> bytes:
        """Remove and return the next ``nbytes``; raises SecurityAbort if the pool is empty."""
        if nbytes > len(self._buf):
            raise SecurityAbort(
                f"pre-shared authentication key exhausted: need {nbytes} bytes, "
                f"{len(self._buf)} left (replenish from generated key or a larger secret)"
            )
        out = bytes(self._buf[:nbytes])
        del self._buf[:nbytes]
        self.consumed_bytes += nbytes
        return out

    def replenish(self, key: bytes) -> None:
        """Append fresh secret bytes (from generated, verified key)."""
        self._buf.extend(key)
        self.replenished_bytes += len(key)


@dataclass
class PresharedKey:
    """The authentication secret of one party: a hash key and one pad pool per direction."""

    hash_key: int
    alice_to_bob: KeyPool
    bob_to_alice: KeyPool

    @classmethod
    def from_secret(cls, secret: bytes) -> PresharedKey:
        """Split a pre-shared secret: 16 bytes of hash key, the rest halved between directions.

        Both parties call this on the same secret and get identical, independent copies.
        """
        if len(secret) < HASH_KEY_BYTES + 2 * TAG_BYTES:
            raise ValueError(f"pre-shared secret too short ({len(secret)} bytes, need ≥ 48)")
        k = _field_element(secret[:HASH_KEY_BYTES])
        rest = secret[HASH_KEY_BYTES:]
        half = len(rest) // 2
        return cls(k, KeyPool(rest[:half]), KeyPool(rest[half : 2 * half]))

    def dump(self) -> bytes:
        """Serialise the current state (hash key and what is left of both pools).

        Save it after each block: the next block starts from the replenished pools.
        """
        a, b = bytes(self.alice_to_bob._buf), bytes(self.bob_to_alice._buf)
        return PSK_MAGIC + self.hash_key.to_bytes(16, "big") + len(a).to_bytes(8, "big") + a + b

    @classmethod
    def load(cls, data: bytes) -> PresharedKey:
        """Read :meth:`dump` output, or split a raw secret (:meth:`from_secret`)."""
        if not data.startswith(PSK_MAGIC):
            return cls.from_secret(data)
        body = data[len(PSK_MAGIC) :]
        if len(body) < 24:
            raise DataFormatError("pre-shared key file is truncated")
        k = int.from_bytes(body[:16], "big")
        na = int.from_bytes(body[16:24], "big")
        if k >= P127 or 24 + na > len(body):
            raise DataFormatError("pre-shared key file is malformed")
        return cls(k, KeyPool(body[24 : 24 + na]), KeyPool(body[24 + na :]))

    @property
    def consumed_bytes(self) -> int:
        """Pad bytes consumed in both directions."""
        return self.alice_to_bob.consumed_bytes + self.bob_to_alice.consumed_bytes

    def replenish(self, key: bytes) -> None:
        """Split fresh key in halves between the two directions (both parties do the same)."""
        half = len(key) // 2
        self.alice_to_bob.replenish(key[:half])
        self.bob_to_alice.replenish(key[half : 2 * half])


class AuthenticatedChannel:
    """Send and receive authenticated, sequenced messages over a :class:`Transport`.

    ``send(kind, **fields)`` frames the fields, appends a Wegman–Carter tag and advances the
    sequence number; ``recv(kind)`` checks sequence, tag, sender and kind, in that order, and
    returns the fields. Any failure raises :class:`AuthenticationError` and breaks the channel.
    A peer's ``abort`` message raises :class:`SecurityAbort` with the peer's reason.
    """

    def __init__(
        self, transport: Transport, *, role: str, psk: PresharedKey, timeout_s: float = 600.0
    ) -> None:
        if role not in ("alice", "bob"):
            raise ValueError("role must be 'alice' or 'bob'")
        self.transport = transport
        self.role = role
        self.peer = "bob" if role == "alice" else "alice"
        self.psk = psk
        self.timeout_s = timeout_s
        self._out = psk.alice_to_bob if role == "alice" else psk.bob_to_alice
        self._in = psk.bob_to_alice if role == "alice" else psk.alice_to_bob
        self.send_seq = 0
        self.recv_seq = 0
        self.forgery_bound = 0.0
        self.bytes_sent = 0
        self.bytes_received = 0
        self._broken = False

    def _check_usable(self) -> None:
        if self._broken:
            raise AuthenticationError("the classical channel failed authentication earlier")

    def send(self, kind: str, **fields: Any) -> None:
        """Send one authenticated message of ``kind`` with ``fields`` (arrays, bytes, JSON)."""
        self._check_usable()
        frame = encode_message(kind, seq=self.send_seq, sender=self.role, fields=fields)
        tag = wegman_carter_tag(
            hash_key=self.psk.hash_key, pad=self._out.take(TAG_BYTES), data=frame
        )
        self.transport.send(frame + tag)
        self.send_seq += 1
        self.bytes_sent += len(frame) + TAG_BYTES
        self.forgery_bound += collision_bound(len(frame))

    def abort(self, reason: str) -> None:
        """Tell the peer (best effort, authenticated) that this block is aborted."""
        if self._broken:
            return
        try:
            self.send("abort", reason=reason)
        except Exception:  # best effort: the caller is already failing
            pass

    def recv(self, kind: str | None = None) -> dict[str, Any]:
        """Receive the next message; check seq, tag, sender, kind; return its fields."""
        self._check_usable()
        data = self.transport.recv(self.timeout_s)
        try:
            return self._verify(data, kind)
        except (AuthenticationError, DataFormatError) as exc:
            self._broken = True
            if isinstance(exc, DataFormatError):
                raise AuthenticationError(f"malformed classical message: {exc}") from exc
            raise

    def _verify(self, data: bytes, kind: str | None) -> dict[str, Any]:
        if len(data) < TAG_BYTES + 8:
            raise AuthenticationError("classical message too short to carry a tag")
        frame, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
        header = peek_header(frame)  # unauthenticated: used for the diagnostic only
        pad = self._in.take(TAG_BYTES)
        want = wegman_carter_tag(hash_key=self.psk.hash_key, pad=pad, data=frame)
        if header["seq"] != self.recv_seq:
            raise AuthenticationError(
                f"classical message replayed or reordered: sequence {header['seq']}, "
                f"expected {self.recv_seq}"
            )
        if not hmac.compare_digest(tag, want):
            raise AuthenticationError(
                f"classical message {header['kind']!r} (seq {self.recv_seq}) failed its MAC: "
                "tampered or forged"
            )
        msg = decode_message(frame)
        if msg.sender != self.peer:
            raise AuthenticationError(f"classical message from {msg.sender}, expected {self.peer}")
        self.recv_seq += 1
        self.bytes_received += len(data)
        if msg.kind == "abort":
            self._broken = True
            raise SecurityAbort(f"the peer aborted the block: {msg.fields.get('reason')}")
        if kind is not None and msg.kind != kind:
            raise AuthenticationError(
                f"unexpected classical message {msg.kind!r}, expected {kind!r}"
            )
        return msg.fields
