"""An AES-256-GCM record stream between two endpoints, rekeyed from the KME with in-band key IDs.

The sender is the ETSI GS QKD 014 *master* SAE, the receiver the *slave* SAE. The format and
the reasoning are in docs/apps.md; in short (all integers big-endian; handshake messages are
frames ``magic (4) | version u8 = 2 | flags u8 | payload_len u32 | payload``)::

    receiver -> sender   HELLO  "CVQR", payload = ML-KEM-768 ek | receiver nonce (16)
                                [| X25519 public key (32)] [| receiver SAE certificate (DER)]
    sender -> receiver   START  "CVQS", payload = mode u8 | session id (16) [| sender cert]
                         [SIG   "CVQV", payload = sender's signature of T]
    receiver -> sender   [SIG   "CVQV", payload = receiver's signature of T]
        flags: 1 = certificates and signatures (cvqkd.apps.handshake), 2 = X25519;
        T = SHA-256(HELLO || START)
    then records         header (20) = type u8 | direction u8 | flags u16 | epoch u32 | seq u64
                                       | body_len u32
      KEY  (type 1)  body = key_mode u8 | key ID (16, UUID) | ct_len u16 | ML-KEM ciphertext
                            [| sender X25519 public key (32)] [| transcript HMAC (32) if QKD]
                            | GCM tag over the empty string (key confirmation, seq 0)
      DATA (type 2)  body = AES-256-GCM(plaintext) || tag, seq = 1, 2, ...
      END  (type 3)  body = AES-256-GCM(total bytes u64 | total DATA records u64) || tag
    receiver -> sender   ACK (type 4, direction 2) body = AES-256-GCM(total bytes u64) || tag

    AAD   = session id || header || key ID        (KEY records: || the body before the tag)
    nonce = direction u8 || 0x000000 || seq u64    (96 bits; NIST SP 800-38D §8.2.1 deterministic)
    epoch key, next chain = HKDF (cvqkd.apps.hybrid) of the QKD key and/or ML-KEM secret
            [and X25519], salted with the previous chain, context = T || epoch u32

Without data, the sender still rekeys every ``rekey_seconds`` (:meth:`SenderSession.poll`;
``send_stream`` reads a source that may wait, such as a pipe, in a helper thread to do so).

Each epoch key is fresh (new KME key, new ML-KEM encapsulation, new session id), the sequence
number never repeats within an epoch and direction, so no (key, nonce) pair repeats. Records are
accepted only in order (epoch and seq exact), so a dropped, replayed, reordered or flipped record
stops the stream with :class:`cvqkd.errors.AuthenticationError` before its plaintext is released;
a missing END means truncation.

Per-key limits: at most ``max_records_per_key`` GCM invocations (default 2^24, the RFC 8446 §5.5
figure of 2^24.5 full records rounded down; hard cap 2^32, NIST SP 800-38D §8.3) and
``max_bytes_per_key`` (default and hard cap 2^38 bytes, below RFC 8446's 2^24.5 x 2^14 ~ 2^38.5
for a 2^-57 confidentiality margin). The sender rekeys before a limit; the receiver enforces them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import queue
import secrets
import socket
import stat
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cvqkd.apps.handshake import (
    BIND_BYTES,
    ROLE_RECEIVER,
    ROLE_SENDER,
    PeerAuth,
    transcript_binding,
    verify_signature,
)
from cvqkd.apps.hybrid import (
    MLKEM768_CT_BYTES,
    MLKEM768_EK_BYTES,
    MODE_HYBRID,
    MODE_MLKEM,
    MODE_QKD,
    MODE_X25519,
    X25519_BYTES,
    derive_hybrid_key,
    mlkem_decapsulate,
    mlkem_encapsulate,
    mlkem_generate,
    x25519_generate,
    x25519_shared,
)
from cvqkd.apps.keysource import MasterKeySource, SlaveKeySource
from cvqkd.apps.policy import DryPolicy, Metrics, PolicyConfig, obtain_key
from cvqkd.errors import (
    AuthenticationError,
    ConfigError,
    CvqkdError,
    DataFormatError,
    KeyNotFoundError,
)

log = logging.getLogger("cvqkd.apps")

VERSION = 2
MAGIC_HELLO = b"CVQR"
MAGIC_START = b"CVQS"
MAGIC_SIG = b"CVQV"
TYPE_KEY, TYPE_DATA, TYPE_END, TYPE_ACK = 1, 2, 3, 4
DIR_SENDER, DIR_RECEIVER = 1, 2
#: Handshake flags: certificates + signatures, X25519 in the combiner.
FLAG_CERT, FLAG_X25519 = 0x01, 0x02

HEADER = struct.Struct(">BBHIQI")
#: Handshake frame header: magic, version, flags, payload length.
FRAME = struct.Struct(">4sBBI")
#: Largest handshake payload accepted (an ML-KEM key, a nonce, a certificate, a signature).
MAX_FRAME_PAYLOAD = 16384
NONCE_BYTES = 16
TAG_BYTES = 16
KEY_ID_BYTES = 16

#: NIST SP 800-38D §8.3: at most 2^32 invocations of the authenticated encryption per key.
GCM_MAX_INVOCATIONS = 2**32
#: RFC 8446 §5.5: 2^24.5 full-size records per key; rounded down.
DEFAULT_MAX_RECORDS_PER_KEY = 2**24
#: Bytes per key: 2^38, below RFC 8446's 2^24.5 records x 2^14 bytes (~2^38.5).
MAX_BYTES_PER_KEY = 2**38
#: Largest plaintext per record this implementation accepts (16 MiB; GCM allows 2^36 - 32).
MAX_RECORD_BYTES = 1 << 24

Mode = Literal["hybrid", "qkd"]
Hybrid = Literal["qkd+mlkem", "qkd+mlkem+x25519"]
_MODE_BYTE = {"qkd": MODE_QKD, "hybrid": MODE_HYBRID}
_HYBRIDS = ("qkd+mlkem", "qkd+mlkem+x25519")
_MODE_NAMES = {
    MODE_QKD: "qkd",
    MODE_HYBRID: "hybrid qkd+mlkem",
    MODE_HYBRID | MODE_X25519: "hybrid qkd+mlkem+x25519",
}


@dataclass(frozen=True)
class TransportConfig:
    """Settings shared by sender and receiver.

    ``mode``: ``hybrid`` (every epoch key = QKD key + ML-KEM-768) or ``qkd`` (QKD key only).
    ``hybrid``: the hybrid's inputs, ``qkd+mlkem`` or ``qkd+mlkem+x25519`` (X25519 as a third,
    classical input; mode ``hybrid`` only).
    ``rekey_seconds`` / ``rekey_bytes``: new key after this time (s) or plaintext (bytes),
    whichever first (``None``: never for that reason); the time also runs while idle.
    ``record_bytes``: plaintext per record.
    ``key_fetch_timeout_s``: how long the receiver retries an unknown key ID (the peer KME may
    lag) before giving up.
    """

    mode: Mode = "hybrid"
    hybrid: Hybrid = "qkd+mlkem"
    rekey_seconds: float | None = 1.0
    rekey_bytes: int | None = None
    record_bytes: int = 1 << 20
    max_records_per_key: int = DEFAULT_MAX_RECORDS_PER_KEY
    max_bytes_per_key: int = MAX_BYTES_PER_KEY
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    key_fetch_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if self.mode not in _MODE_BYTE:
            raise ConfigError(f"unknown mode {self.mode!r} (use hybrid or qkd)")
        if self.hybrid not in _HYBRIDS:
            raise ConfigError(f"unknown hybrid {self.hybrid!r} (use {' or '.join(_HYBRIDS)})")
        if self.mode == "qkd" and self.hybrid != "qkd+mlkem":
            raise ConfigError(f"hybrid {self.hybrid} needs mode hybrid, not qkd")
        if self.rekey_seconds is not None and not self.rekey_seconds > 0:
            raise ConfigError(f"rekey_seconds must be > 0, got {self.rekey_seconds}")
        if self.rekey_bytes is not None and self.rekey_bytes <= 0:
            raise ConfigError(f"rekey_bytes must be > 0, got {self.rekey_bytes}")
        if not 1 <= self.record_bytes <= MAX_RECORD_BYTES:
            raise ConfigError(
                f"record_bytes must be 1..{MAX_RECORD_BYTES}, got {self.record_bytes}"
            )
        if not 2 <= self.max_records_per_key <= GCM_MAX_INVOCATIONS:
            raise ConfigError(
                f"max_records_per_key must be 2..2^32 (NIST SP 800-38D), got "
                f"{self.max_records_per_key}"
            )
        if not self.record_bytes <= self.max_bytes_per_key <= MAX_BYTES_PER_KEY:
            raise ConfigError(
                f"max_bytes_per_key must be record_bytes..2^38, got {self.max_bytes_per_key}"
            )
        if self.key_fetch_timeout_s < 0:
            raise ConfigError("key_fetch_timeout_s must be >= 0")

    @property
    def uses_x25519(self) -> bool:
        """Whether X25519 is a third input of every epoch key."""
        return self.mode == "hybrid" and self.hybrid == "qkd+mlkem+x25519"

    @property
    def session_mode(self) -> int:
        """The mode byte of START: which inputs a QKD-keyed epoch combines (1, 3 or 7)."""
        return _MODE_BYTE[self.mode] | (MODE_X25519 if self.uses_x25519 else 0)

    @property
    def pqc_only_mode(self) -> int:
        """The key mode of an epoch without QKD key: ML-KEM (2), with X25519 if configured (6)."""
        return MODE_MLKEM | (MODE_X25519 if self.uses_x25519 else 0)

    @property
    def allow_pqc_only(self) -> bool:
        """Whether epochs keyed by ML-KEM alone are sent/accepted (policy ``pqc-only``)."""
        return DryPolicy(self.policy.policy) is DryPolicy.PQC_ONLY


def nonce_for(direction: int, seq: int) -> bytes:
    """The 96-bit GCM nonce: direction (1 byte), three zero bytes, sequence number (8 bytes)."""
    return bytes([direction]) + b"\x00\x00\x00" + seq.to_bytes(8, "big")


def _key_id_bytes(key_id: str | None) -> bytes:
    if key_id is None:
        return bytes(KEY_ID_BYTES)
    try:
        return uuid.UUID(key_id).bytes
    except ValueError:
        raise DataFormatError(f"key ID {key_id!r} is not a UUID (ETSI GS QKD 014)") from None


# -- handshake frames ---------------------------------------------------------------------


def frame(magic: bytes, flags: int, payload: bytes) -> bytes:
    """One handshake frame: ``magic | version | flags | u32 length | payload``."""
    return FRAME.pack(magic, VERSION, flags, len(payload)) + payload


def parse_frame(data: bytes, *, magic: bytes, what: str) -> tuple[int, bytes, bytes]:
    """Split one handshake frame off ``data``: ``(flags, payload, rest)``."""
    if len(data) < FRAME.size:
        raise DataFormatError(f"{what} is too short ({len(data)} bytes)")
    got, version, flags, length = FRAME.unpack_from(data)
    if got != magic:
        raise DataFormatError(f"peer did not send a cvqkd {what} (magic {got!r})")
    if version != VERSION:
        raise DataFormatError(f"{what} has protocol version {version}; this end speaks {VERSION}")
    end = FRAME.size + length
    if length > MAX_FRAME_PAYLOAD or len(data) < end:
        raise DataFormatError(f"{what} length {length} is wrong or too large")
    return flags, data[FRAME.size : end], data[end:]


def _check_flags(flags: int, *, config: TransportConfig, auth: PeerAuth | None, peer: str) -> None:
    """Both ends must agree on certificates and on X25519; no silent downgrade."""
    if flags & ~(FLAG_CERT | FLAG_X25519):
        raise DataFormatError(f"the {peer}'s handshake has unknown flags {flags:#04x}")
    if bool(flags & FLAG_CERT) != (auth is not None):
        if auth is not None:
            raise AuthenticationError(
                f"the {peer}'s handshake carries no certificate, and this end requires one (a "
                f"man-in-the-middle stripped it, or the {peer} has none configured)"
            )
        raise ConfigError(
            f"the {peer} signs its handshake with an SAE certificate; give this end its "
            "certificate, key and CA too"
        )
    if bool(flags & FLAG_X25519) != config.uses_x25519:
        theirs = "qkd+mlkem+x25519" if flags & FLAG_X25519 else "qkd+mlkem (or mode qkd)"
        raise ConfigError(
            f"the {peer} uses hybrid {theirs}; this end {config.mode} {config.hybrid}"
        )


@dataclass
class _Epoch:
    number: int
    key_id_bytes: bytes
    aead: AESGCM
    key_mode: int
    next_seq: int = 1
    plaintext_bytes: int = 0
    soft_bytes: int = 0
    soft_started: float = 0.0
    key_fp: bytes = b""


def _derive_epoch(
    *,
    qkd_key: bytes | None,
    key_id: str | None,
    mlkem_secret: bytes | None,
    ek: bytes,
    ct: bytes | None,
    x25519_secret: bytes | None,
    x25519_public_keys: bytes,
    transcript: bytes,
    epoch: int,
    chain: bytes | None,
) -> tuple[bytes, bytes]:
    okm = derive_hybrid_key(
        qkd_key=qkd_key,
        qkd_key_id=key_id,
        mlkem_shared_secret=mlkem_secret,
        mlkem_public_key=ek if mlkem_secret else None,
        mlkem_ciphertext=ct if mlkem_secret else None,
        x25519_shared_secret=x25519_secret,
        x25519_public_keys=x25519_public_keys if x25519_secret else None,
        context=transcript + epoch.to_bytes(4, "big"),
        chain_key=chain,
        length=64,
    )
    return okm[:32], okm[32:]


class SenderSession:
    """The sending end (master SAE), without I/O: feed it the HELLO, get bytes to send.

    ``auth`` (optional): this SAE's certificate and key, the CA and the receiver's SAE ID; then
    both ends sign the handshake (cvqkd.apps.handshake). Without it, the handshake is confirmed
    by an HMAC under each QKD key, and ML-KEM-only epochs wait for a first QKD-keyed one.

    >>> from cvqkd.apps.keysource import InMemoryKeyPool
    >>> pool = InMemoryKeyPool()
    >>> rx = ReceiverSession(key_source=pool.slave())
    >>> tx = SenderSession(key_source=pool.master())
    >>> rx.accept_start(tx.start(rx.hello()))  # with auth: tx.accept_auth(<this reply>)
    b''
    >>> wire = b"".join(tx.seal(b"hello")) + tx.finish()
    >>> b"".join(rx.open_all(wire))
    b'hello'
    """

    def __init__(
        self,
        *,
        key_source: MasterKeySource,
        config: TransportConfig | None = None,
        metrics: Metrics | None = None,
        auth: PeerAuth | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or TransportConfig()
        self.metrics = metrics or Metrics()
        self.auth = auth
        self._source = key_source
        self._clock = clock
        self._sleep = sleep
        self._epoch: _Epoch | None = None
        self._chain: bytes | None = None
        self._ek = b""
        self._rx_x25519 = b""
        self._transcript = b""
        self._peer_cert: Any = None
        self._awaiting_auth = False
        self._qkd_anchored = False
        self.session_id = b""
        self._finished = False
        self.data_records = 0
        #: (SHA-256 of the key, nonce) of every GCM invocation when ``track_nonces`` is set.
        self.track_nonces = False
        self.nonces_used: list[tuple[bytes, bytes]] = []

    @property
    def peer_auth(self) -> str:
        """How the handshake is authenticated: ``certificate <SAE ID>`` or ``qkd-binding``."""
        return "qkd-binding" if self.auth is None else f"certificate {self.auth.peer_sae_id}"

    def start(self, hello: bytes) -> bytes:
        """Check the receiver's HELLO; return START (and, with ``auth``, the signature frame)."""
        if self._transcript:
            raise ConfigError("start() was already called: one handshake per session")
        flags, payload, rest = parse_frame(hello, magic=MAGIC_HELLO, what="HELLO")
        if rest:
            raise DataFormatError("HELLO has trailing bytes")
        _check_flags(flags, config=self.config, auth=self.auth, peer="receiver")
        fixed = MLKEM768_EK_BYTES + NONCE_BYTES
        x_len = X25519_BYTES if flags & FLAG_X25519 else 0
        if len(payload) < fixed + x_len:
            raise DataFormatError("HELLO is too short for an ML-KEM-768 key")
        self._ek = payload[:MLKEM768_EK_BYTES]
        mlkem_encapsulate(self._ek)  # validates the key now (FIPS 203 §7.2), result unused
        self._rx_x25519 = payload[fixed : fixed + x_len]
        cert_der = payload[fixed + x_len :]
        if self.auth is not None:
            self._peer_cert = self.auth.verify_peer_certificate(cert_der)
        elif cert_der:
            raise DataFormatError("HELLO carries a certificate without its flag")
        self.session_id = secrets.token_bytes(16)
        body = bytes([self.config.session_mode]) + self.session_id
        start = frame(MAGIC_START, flags, body + (self.auth.certificate_der if self.auth else b""))
        self._transcript = hashlib.sha256(hello + start).digest()
        if self.auth is None:
            return start
        self._awaiting_auth = True
        signature = self.auth.sign(role=ROLE_SENDER, transcript=self._transcript)
        return start + frame(MAGIC_SIG, DIR_SENDER, signature)

    @property
    def awaiting_auth(self) -> bool:
        """Whether the receiver's handshake signature is still to be verified."""
        return self._awaiting_auth

    def accept_auth(self, data: bytes) -> None:
        """Verify the receiver's signature frame (only with ``auth``); no record before it."""
        if not self._awaiting_auth:
            raise ConfigError("no handshake signature is expected")
        role, signature, rest = parse_frame(data, magic=MAGIC_SIG, what="handshake signature")
        if role != DIR_RECEIVER or rest:
            raise DataFormatError("the receiver's signature frame is malformed")
        verify_signature(
            self._peer_cert, role=ROLE_RECEIVER, transcript=self._transcript, signature=signature
        )
        self._awaiting_auth = False

    def _ready(self) -> None:
        if not self._transcript:
            raise ConfigError("call start() with the receiver's HELLO first")
        if self._awaiting_auth:
            raise ConfigError(
                "the receiver's handshake signature is not verified yet (accept_auth)"
            )
        if self._finished:
            raise ConfigError("the stream is finished")

    # -- keys -----------------------------------------------------------------------------
    def _can_keep(self, next_len: int) -> bool:
        ep = self._epoch
        return ep is not None and _within_limits(ep, next_len, self.config)

    def _rekey(self, next_len: int) -> list[bytes]:
        pqc_safe = self.auth is not None or self._qkd_anchored
        decision = obtain_key(
            self._source,
            config=self.config.policy,
            metrics=self.metrics,
            can_keep=self._can_keep(next_len),
            can_pqc=self.config.allow_pqc_only and pqc_safe,
            why_not_pqc="" if pqc_safe else "no certificates and no QKD-keyed epoch yet",
            sleep=self._sleep,
            clock=self._clock,
        )
        if decision.kind == "keep":
            assert self._epoch is not None
            self._epoch.soft_started = self._clock()
            self._epoch.soft_bytes = 0
            return []
        qkd_key = decision.key if decision.kind == "qkd" else None
        key_id = decision.key_id if decision.kind == "qkd" else None
        cfg = self.config
        key_mode = cfg.session_mode if qkd_key else cfg.pqc_only_mode
        secret, ct = mlkem_encapsulate(self._ek) if key_mode & MODE_MLKEM else (None, None)
        x_secret, x_pub = None, b""
        if key_mode & MODE_X25519:
            eph = x25519_generate()
            x_secret, x_pub = x25519_shared(eph.private_key, self._rx_x25519), eph.public_key
        number = 1 if self._epoch is None else self._epoch.number + 1
        data_key, chain = _derive_epoch(
            qkd_key=qkd_key,
            key_id=key_id,
            mlkem_secret=secret,
            ek=self._ek,
            ct=ct,
            x25519_secret=x_secret,
            x25519_public_keys=self._rx_x25519 + x_pub,
            transcript=self._transcript,
            epoch=number,
            chain=self._chain,
        )
        bind = b""
        if qkd_key is not None and key_id is not None:
            bind = transcript_binding(
                qkd_key=qkd_key, key_id=key_id, transcript=self._transcript, epoch=number
            )
        kid = _key_id_bytes(key_id)
        ct = ct or b""
        prefix = bytes([key_mode]) + kid + len(ct).to_bytes(2, "big") + ct + x_pub + bind
        header = HEADER.pack(TYPE_KEY, DIR_SENDER, 0, number, 0, len(prefix) + TAG_BYTES)
        aead = AESGCM(data_key)
        tag = aead.encrypt(nonce_for(DIR_SENDER, 0), b"", self.session_id + header + kid + prefix)
        self._chain = chain
        self._qkd_anchored = self._qkd_anchored or qkd_key is not None
        self._epoch = _Epoch(number, kid, aead, key_mode, soft_started=self._clock())
        if self.track_nonces:
            self._epoch.key_fp = hashlib.sha256(data_key).digest()
            self.nonces_used.append((self._epoch.key_fp, nonce_for(DIR_SENDER, 0)))
        self.metrics.epochs += 1
        record = header + prefix + tag
        self.metrics.wire_bytes += len(record)
        log.info("epoch %d keyed (mode %d)", number, key_mode)
        return [record]

    def _need_rekey(self, next_len: int) -> bool:
        ep = self._epoch
        if ep is None or not _within_limits(ep, next_len, self.config):
            return True
        cfg = self.config
        if cfg.rekey_bytes is not None and ep.soft_bytes >= cfg.rekey_bytes:
            return True
        return cfg.rekey_seconds is not None and (
            self._clock() - ep.soft_started >= cfg.rekey_seconds
        )

    def next_rekey_in(self) -> float | None:
        """Seconds until the timer wants a new key (0.0: now); ``None`` if no timer runs.

        The timer runs once the first epoch is keyed, until :meth:`finish`.
        """
        ep = self._epoch
        period = self.config.rekey_seconds
        if ep is None or period is None or self._finished or self._awaiting_auth:
            return None
        return max(0.0, ep.soft_started + period - self._clock())

    def poll(self) -> list[bytes]:
        """Rekey on the timer while no data flows: the KEY record to send now, or ``[]``.

        Call it when :meth:`next_rekey_in` has elapsed (``send_stream`` does). Under the ``keep``
        policy with a dry KME it restarts the timer and returns ``[]``.
        """
        self._ready()
        due = self.next_rekey_in()
        if due is None or due > 0:
            return []
        records = self._rekey(0)
        if records:
            self.metrics.idle_rekeys += 1
        return records

    # -- records --------------------------------------------------------------------------
    def seal(self, data: bytes | memoryview) -> list[bytes]:
        """Encrypt ``data`` into records (rekeying first when due); return the bytes to send."""
        self._ready()
        out: list[bytes] = []
        view = memoryview(data)
        step = self.config.record_bytes
        for offset in range(0, len(view), step):
            chunk = view[offset : offset + step]
            if self._need_rekey(len(chunk)):
                out.extend(self._rekey(len(chunk)))
            ep = self._epoch
            assert ep is not None
            seq = ep.next_seq
            header = HEADER.pack(TYPE_DATA, DIR_SENDER, 0, ep.number, seq, len(chunk) + TAG_BYTES)
            body = ep.aead.encrypt(
                nonce_for(DIR_SENDER, seq), chunk, self.session_id + header + ep.key_id_bytes
            )
            if self.track_nonces:
                self.nonces_used.append((ep.key_fp, nonce_for(DIR_SENDER, seq)))
            ep.next_seq += 1
            ep.plaintext_bytes += len(chunk)
            ep.soft_bytes += len(chunk)
            self.data_records += 1
            self.metrics.records += 1
            self.metrics.plaintext_bytes += len(chunk)
            self.metrics.wire_bytes += len(header) + len(body)
            out.append(header)
            out.append(body)
        return out

    def finish(self) -> bytes:
        """The END record (authenticates the totals; the receiver detects truncation)."""
        self._ready()
        # an empty stream still keys one epoch, so that END is authenticated
        prefix_records = b"".join(self._rekey(0)) if self._epoch is None else b""
        ep = self._epoch
        assert ep is not None
        seq = ep.next_seq
        plain = self.metrics.plaintext_bytes.to_bytes(8, "big") + self.data_records.to_bytes(
            8, "big"
        )
        header = HEADER.pack(TYPE_END, DIR_SENDER, 0, ep.number, seq, len(plain) + TAG_BYTES)
        body = ep.aead.encrypt(
            nonce_for(DIR_SENDER, seq), plain, self.session_id + header + ep.key_id_bytes
        )
        if self.track_nonces:
            self.nonces_used.append((ep.key_fp, nonce_for(DIR_SENDER, seq)))
        ep.next_seq += 1
        self._finished = True
        self.metrics.wire_bytes += len(header) + len(body)
        return prefix_records + header + body

    def check_ack(self, header: bytes, body: bytes) -> int:
        """Verify the receiver's ACK; return the byte count it confirms."""
        kind, direction, flags, epoch, seq, blen = HEADER.unpack(header)
        ep = self._epoch
        if kind != TYPE_ACK or direction != DIR_RECEIVER or flags or ep is None:
            raise AuthenticationError("expected an ACK record from the receiver")
        if epoch != ep.number or seq != 0 or blen != len(body):
            raise AuthenticationError("ACK does not match the last epoch")
        try:
            plain = ep.aead.decrypt(
                nonce_for(DIR_RECEIVER, 0), body, self.session_id + header + ep.key_id_bytes
            )
        except InvalidTag:
            raise AuthenticationError("ACK failed authentication") from None
        confirmed = int.from_bytes(plain, "big")
        if confirmed != self.metrics.plaintext_bytes:
            raise AuthenticationError(
                f"receiver confirmed {confirmed} bytes, {self.metrics.plaintext_bytes} were sent"
            )
        return confirmed


def _within_limits(ep: _Epoch, next_len: int, cfg: TransportConfig) -> bool:
    # next_seq counts GCM invocations so far (seq 0 = key confirmation); +1 for END.
    return (
        ep.next_seq + 2 <= cfg.max_records_per_key
        and ep.plaintext_bytes + next_len <= cfg.max_bytes_per_key
    )


class ReceiverSession:
    """The receiving end (slave SAE), without I/O: records in, verified plaintext out.

    Nothing is returned from a record before its tag is verified and its position (epoch,
    sequence number) is the expected one; any deviation raises :class:`AuthenticationError`.
    ``auth`` as for :class:`SenderSession` (the peer SAE ID is then the sender's).
    """

    def __init__(
        self,
        *,
        key_source: SlaveKeySource,
        config: TransportConfig | None = None,
        metrics: Metrics | None = None,
        auth: PeerAuth | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or TransportConfig()
        self.metrics = metrics or Metrics()
        self.auth = auth
        self._source = key_source
        self._clock = clock
        self._sleep = sleep
        self._mlkem = mlkem_generate()
        self._x25519 = x25519_generate() if self.config.uses_x25519 else None
        flags = (FLAG_CERT if auth else 0) | (FLAG_X25519 if self._x25519 else 0)
        payload = self._mlkem.public_key + secrets.token_bytes(NONCE_BYTES)
        payload += self._x25519.public_key if self._x25519 else b""
        payload += auth.certificate_der if auth else b""
        self._hello = frame(MAGIC_HELLO, flags, payload)
        self._transcript = b""
        self._qkd_anchored = False
        self.session_id = b""
        self._epoch: _Epoch | None = None
        self._chain: bytes | None = None
        self.finished = False
        self.data_records = 0

    @property
    def peer_auth(self) -> str:
        """How the handshake is authenticated: ``certificate <SAE ID>`` or ``qkd-binding``."""
        return "qkd-binding" if self.auth is None else f"certificate {self.auth.peer_sae_id}"

    def hello(self) -> bytes:
        """The HELLO message (the receiver speaks first)."""
        return self._hello

    def accept_start(self, data: bytes) -> bytes:
        """Check the sender's START (and signature frame); return this end's reply.

        The reply is the receiver's signature frame with ``auth``, else ``b""`` (nothing to send).
        """
        if self._transcript:
            raise ConfigError("accept_start() was already called: one handshake per session")
        flags, payload, rest = parse_frame(data, magic=MAGIC_START, what="START")
        _check_flags(flags, config=self.config, auth=self.auth, peer="sender")
        if len(payload) < 17:
            raise DataFormatError("START is too short")
        mode, session_id, cert_der = payload[0], payload[1:17], payload[17:]
        if mode != self.config.session_mode:
            theirs = _MODE_NAMES.get(mode, str(mode))
            mine = _MODE_NAMES[self.config.session_mode]
            raise ConfigError(f"sender uses mode {theirs}, this receiver expects {mine}")
        transcript = hashlib.sha256(self._hello + data[: len(data) - len(rest)]).digest()
        reply = b""
        if self.auth is not None:
            peer = self.auth.verify_peer_certificate(cert_der)
            role, signature, extra = parse_frame(rest, magic=MAGIC_SIG, what="handshake signature")
            if role != DIR_SENDER or extra:
                raise DataFormatError("the sender's signature frame is malformed")
            verify_signature(peer, role=ROLE_SENDER, transcript=transcript, signature=signature)
            signed = self.auth.sign(role=ROLE_RECEIVER, transcript=transcript)
            reply = frame(MAGIC_SIG, DIR_RECEIVER, signed)
        elif cert_der or rest:
            raise DataFormatError("START carries a certificate or signature without its flag")
        self.session_id = session_id
        self._transcript = transcript
        return reply

    def _fetch(self, key_id: str) -> bytes:
        deadline = self._clock() + self.config.key_fetch_timeout_s
        delay = 0.05
        while True:
            try:
                return self._source.key_by_id(key_id)
            except KeyNotFoundError as exc:
                if self._clock() >= deadline:
                    raise KeyNotFoundError(
                        f"key ID {key_id} announced by the sender is not available at this KME "
                        f"(lost, expired, already used, or never issued): {exc}"
                    ) from exc
            self._sleep(delay)
            delay = min(2 * delay, 1.0)

    def _open_key(self, header: bytes, epoch: int, seq: int, body: bytes) -> None:
        expected = 1 if self._epoch is None else self._epoch.number + 1
        if epoch != expected or seq != 0:
            raise AuthenticationError(
                f"KEY record for epoch {epoch} out of order (want {expected})"
            )
        if len(body) < 1 + KEY_ID_BYTES + 2 + TAG_BYTES:
            raise DataFormatError("KEY record too short")
        key_mode = body[0]
        kid = body[1 : 1 + KEY_ID_BYTES]
        ct_len = int.from_bytes(body[1 + KEY_ID_BYTES : 3 + KEY_ID_BYTES], "big")
        ct_end = 3 + KEY_ID_BYTES + ct_len
        x_end = ct_end + (X25519_BYTES if key_mode & MODE_X25519 else 0)
        prefix_len = x_end + (BIND_BYTES if key_mode & MODE_QKD else 0)
        if len(body) != prefix_len + TAG_BYTES:
            raise DataFormatError("KEY record length does not match its contents")
        ct = body[3 + KEY_ID_BYTES : ct_end]
        x_pub, bind = body[ct_end:x_end], body[x_end:prefix_len]
        cfg = self.config
        allowed = {cfg.session_mode} | ({cfg.pqc_only_mode} if cfg.allow_pqc_only else set())
        if key_mode not in allowed:
            what = "ML-KEM only" if not key_mode & MODE_QKD else f"key mode {key_mode}"
            raise AuthenticationError(
                f"sender keyed epoch {epoch} with {what}, which this receiver's policy refuses"
            )
        if not key_mode & MODE_QKD and self.auth is None and not self._qkd_anchored:
            raise AuthenticationError(
                f"sender keyed epoch {epoch} with ML-KEM only before any QKD key confirmed the "
                "handshake, and the handshake is not signed (configure SAE certificates)"
            )
        if bool(key_mode & MODE_MLKEM) != (ct_len == MLKEM768_CT_BYTES) or (
            ct_len not in (0, MLKEM768_CT_BYTES)
        ):
            raise DataFormatError("KEY record ML-KEM ciphertext length is wrong for its mode")
        key_id: str | None = None
        qkd_key: bytes | None = None
        if key_mode & MODE_QKD:
            key_id = str(uuid.UUID(bytes=kid))
            qkd_key = self._fetch(key_id)
            self.metrics.qkd_keys_used += 1
            want = transcript_binding(
                qkd_key=qkd_key, key_id=key_id, transcript=self._transcript, epoch=epoch
            )
            if not hmac.compare_digest(bind, want):
                raise AuthenticationError(
                    f"the handshake is not confirmed by the QKD key of epoch {epoch}: HELLO or "
                    "START was altered in transit (man-in-the-middle), or the two KMEs hold "
                    "different keys under this ID"
                )
        elif kid != bytes(KEY_ID_BYTES):
            raise DataFormatError("ML-KEM-only KEY record carries a key ID")
        secret = mlkem_decapsulate(self._mlkem.seed, ct) if key_mode & MODE_MLKEM else None
        x_secret = None
        if self._x25519 is not None and key_mode & MODE_X25519:
            x_secret = x25519_shared(self._x25519.private_key, x_pub)
        data_key, chain = _derive_epoch(
            qkd_key=qkd_key,
            key_id=key_id,
            mlkem_secret=secret,
            ek=self._mlkem.public_key,
            ct=ct,
            x25519_secret=x_secret,
            x25519_public_keys=(self._x25519.public_key if self._x25519 else b"") + x_pub,
            transcript=self._transcript,
            epoch=epoch,
            chain=self._chain,
        )
        aead = AESGCM(data_key)
        aad = self.session_id + header + kid + body[:prefix_len]
        try:
            aead.decrypt(nonce_for(DIR_SENDER, 0), body[prefix_len:], aad)
        except InvalidTag:
            raise AuthenticationError(
                f"KEY record of epoch {epoch} failed authentication (tampered, or the two KMEs "
                "hold different keys under this ID)"
            ) from None
        self._chain = chain
        self._qkd_anchored = self._qkd_anchored or qkd_key is not None
        self._epoch = _Epoch(epoch, kid, aead, key_mode)
        self.metrics.epochs += 1
        if not key_mode & MODE_QKD:
            self.metrics.pqc_only_epochs += 1
            log.warning("epoch %d keyed without a QKD key (sender's KME was dry)", epoch)

    def open(self, header: bytes, body: bytes) -> bytes | None:
        """Verify one record; return its plaintext (DATA) or ``None`` (KEY, END)."""
        if not self._transcript:
            raise ConfigError("call accept_start() first")
        if len(header) != HEADER.size:
            raise DataFormatError(f"record header is {HEADER.size} bytes, got {len(header)}")
        kind, direction, flags, epoch, seq, blen = HEADER.unpack(header)
        if direction != DIR_SENDER or flags or blen != len(body):
            raise AuthenticationError("record header is malformed (direction, flags or length)")
        if self.finished:
            raise AuthenticationError("record after the END record")
        self.metrics.wire_bytes += len(header) + len(body)
        if kind == TYPE_KEY:
            self._open_key(header, epoch, seq, body)
            return None
        if kind not in (TYPE_DATA, TYPE_END):
            raise DataFormatError(f"unknown record type {kind}")
        ep = self._epoch
        if ep is None or epoch != ep.number or seq != ep.next_seq:
            want = "(no key yet)" if ep is None else f"epoch {ep.number} seq {ep.next_seq}"
            raise AuthenticationError(
                f"record epoch {epoch} seq {seq} out of order (want {want}): dropped, replayed "
                "or reordered"
            )
        plain_len = len(body) - TAG_BYTES if kind == TYPE_DATA else 0
        if seq >= self.config.max_records_per_key or (
            ep.plaintext_bytes + plain_len > self.config.max_bytes_per_key
        ):
            raise AuthenticationError("sender exceeded the per-key AES-GCM limits")
        try:
            plain = ep.aead.decrypt(
                nonce_for(DIR_SENDER, seq), body, self.session_id + header + ep.key_id_bytes
            )
        except InvalidTag:
            raise AuthenticationError(
                f"record epoch {epoch} seq {seq} failed authentication (tampered)"
            ) from None
        ep.next_seq += 1
        if kind == TYPE_END:
            total = int.from_bytes(plain[:8], "big")
            records = int.from_bytes(plain[8:16], "big")
            if (
                len(plain) != 16
                or total != self.metrics.plaintext_bytes
                or (records != self.data_records)
            ):
                raise AuthenticationError("END totals do not match what was received")
            self.finished = True
            return None
        ep.plaintext_bytes += len(plain)
        self.data_records += 1
        self.metrics.records += 1
        self.metrics.plaintext_bytes += len(plain)
        return plain

    def open_all(self, wire: bytes) -> list[bytes]:
        """Split a byte string of whole records and :meth:`open` each (tests, files)."""
        out: list[bytes] = []
        offset = 0
        while offset < len(wire):
            if len(wire) - offset < HEADER.size:
                raise AuthenticationError("stream truncated inside a record header")
            header = wire[offset : offset + HEADER.size]
            blen = HEADER.unpack(header)[5]
            body = wire[offset + HEADER.size : offset + HEADER.size + blen]
            if len(body) != blen:
                raise AuthenticationError("stream truncated inside a record")
            offset += HEADER.size + blen
            plain = self.open(header, body)
            if plain is not None:
                out.append(plain)
        if not self.finished:
            raise AuthenticationError("stream truncated: no END record")
        return out

    def ack(self) -> bytes:
        """The ACK record confirming the total bytes (after END)."""
        ep = self._epoch
        if not self.finished or ep is None:
            raise ConfigError("ACK only after a verified END record")
        plain = self.metrics.plaintext_bytes.to_bytes(8, "big")
        header = HEADER.pack(TYPE_ACK, DIR_RECEIVER, 0, ep.number, 0, len(plain) + TAG_BYTES)
        body = ep.aead.encrypt(
            nonce_for(DIR_RECEIVER, 0), plain, self.session_id + header + ep.key_id_bytes
        )
        return header + body


# -- I/O over a socket ------------------------------------------------------------------------


class PeerConnectionError(CvqkdError):
    """The TCP connection to the peer failed or was reset (the peer may have refused the stream;
    its own error says why)."""


class _Reader(Protocol):
    def read(self, n: int = ..., /) -> bytes: ...


def read_exact(reader: _Reader, n: int, *, what: str) -> bytes:
    """Read exactly ``n`` bytes or raise :class:`AuthenticationError` (truncated stream)."""
    data = reader.read(n)
    while len(data) < n:
        more = reader.read(n - len(data))
        if not more:
            raise AuthenticationError(f"connection closed inside the {what} (truncated stream)")
        data += more
    return data


def read_record(reader: _Reader, *, max_body: int) -> tuple[bytes, bytes] | None:
    """Read one record; ``None`` at a clean end of stream between records."""
    first = reader.read(HEADER.size)
    if not first:
        return None
    header = (
        first
        if len(first) == HEADER.size
        else first + read_exact(reader, HEADER.size - len(first), what="record header")
    )
    blen = HEADER.unpack(header)[5]
    if blen > max_body:
        raise DataFormatError(f"record body of {blen} bytes exceeds the limit of {max_body}")
    return header, read_exact(reader, blen, what="record")


@dataclass(frozen=True)
class TransferReport:
    """What one end of a transfer did: bytes, records, epochs, time (s), keys, policy events.

    ``peer_auth``: ``certificate <peer SAE ID>`` or ``qkd-binding``; ``hybrid``: the inputs of
    a QKD-keyed epoch (``qkd``, ``qkd+mlkem`` or ``qkd+mlkem+x25519``).
    """

    role: str
    plaintext_bytes: int
    data_records: int
    epochs: int
    seconds: float
    throughput_bps: float
    qkd_keys_used: int
    qkd_key_bits_used: int
    session_id: str
    peer_auth: str
    hybrid: str
    metrics: dict[str, object]


def _report(
    role: str,
    session: SenderSession | ReceiverSession,
    t0: float,
) -> TransferReport:
    seconds = max(time.perf_counter() - t0, 1e-9)
    metrics = session.metrics
    cfg = session.config
    return TransferReport(
        role=role,
        plaintext_bytes=metrics.plaintext_bytes,
        data_records=session.data_records,
        epochs=metrics.epochs,
        seconds=seconds,
        throughput_bps=8 * metrics.plaintext_bytes / seconds,
        qkd_keys_used=metrics.qkd_keys_used,
        qkd_key_bits_used=256 * metrics.qkd_keys_used,
        session_id=session.session_id.hex(),
        peer_auth=session.peer_auth,
        hybrid=cfg.hybrid if cfg.mode == "hybrid" else "qkd",
        metrics=metrics.as_dict(),
    )


#: Largest record body read from the wire: a full DATA record, or a KEY record (< 2 KiB).
MAX_BODY_BYTES = MAX_RECORD_BYTES + TAG_BYTES


def read_frame(reader: _Reader, *, what: str) -> bytes:
    """Read one whole handshake frame (header and payload) from ``reader``."""
    head = read_exact(reader, FRAME.size, what=what)
    _magic, version, _flags, length = FRAME.unpack(head)
    if version != VERSION:
        raise DataFormatError(f"{what} has protocol version {version}; this end speaks {VERSION}")
    if length > MAX_FRAME_PAYLOAD:
        raise DataFormatError(f"{what} length {length} is too large")
    return head + read_exact(reader, length, what=what)


def _read_handshake(reader: _Reader, *, what: str, peer: str) -> bytes:
    try:
        return read_frame(reader, what=what)
    except AuthenticationError:  # closed mid-handshake: the peer refused something
        raise PeerConnectionError(
            f"the {peer} closed the connection during the handshake (at the {what}); it may have "
            "refused this end's certificate or settings: see its error"
        ) from None


def send_stream(
    sock: socket.socket,
    source: BinaryIO,
    *,
    key_source: MasterKeySource,
    config: TransportConfig | None = None,
    metrics: Metrics | None = None,
    auth: PeerAuth | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> TransferReport:
    """Encrypt ``source`` to a connected socket (``sendall``/``makefile``) until EOF.

    Reads the receiver's HELLO, sends START (with ``auth``: signs, and verifies the receiver's
    signature), then records and END, and waits for the ACK. ``source`` is read in a helper
    thread when it may wait (a pipe, socket or terminal; not a regular file or an in-memory
    object), so the sender rekeys every ``rekey_seconds`` even while ``source`` has nothing to
    give (a KEY record on an idle stream), and sends what arrives without waiting for a full
    record. ``on_progress(n)`` is called with each chunk's
    plaintext size (progress bars).
    """
    t0 = time.perf_counter()
    session = SenderSession(key_source=key_source, config=config, metrics=metrics, auth=auth)
    reader = sock.makefile("rb")
    try:
        _send_body(sock, reader, session, source, on_progress)
    except OSError as exc:
        raise PeerConnectionError(
            f"connection to the receiver failed: {exc} (the receiver may have rejected the "
            "stream; see its error)"
        ) from None
    finally:
        reader.close()
    return _report("sender", session, t0)


def _put(
    chunks: queue.Queue[bytes | BaseException], item: bytes | BaseException, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            chunks.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _pump(
    source: BinaryIO, size: int, chunks: queue.Queue[bytes | BaseException], stop: threading.Event
) -> None:
    """Read ``source`` into ``chunks``: what is there, up to ``size`` (b"" at EOF, or the error).

    ``read1`` (one read of the pipe or socket) when the source has it, so data is sent as it
    comes rather than when a whole record has accumulated.
    """
    read = getattr(source, "read1", source.read)
    try:
        while not stop.is_set():
            chunk = read(size)
            _put(chunks, chunk, stop)
            if not chunk:
                return
    except BaseException as exc:  # handed to the sending thread, which raises it
        _put(chunks, exc, stop)


def _may_block(source: Any) -> bool:
    """Whether reading ``source`` can wait for a producer (pipe, socket, terminal)."""
    try:
        return not stat.S_ISREG(os.fstat(source.fileno()).st_mode)
    except (AttributeError, OSError, ValueError):  # in-memory objects: never wait
        return False


def _send_body(
    sock: socket.socket,
    reader: Any,
    session: SenderSession,
    source: BinaryIO,
    on_progress: Callable[[int], None] | None,
) -> None:
    hello = _read_handshake(reader, what="HELLO", peer="receiver")
    sock.sendall(session.start(hello))
    if session.awaiting_auth:
        session.accept_auth(_read_handshake(reader, what="handshake signature", peer="receiver"))
    if session.config.rekey_seconds is None or not _may_block(source):
        _send_direct(sock, session, source, on_progress)
    else:
        _send_threaded(sock, session, source, on_progress)
    sock.sendall(session.finish())
    got = read_record(reader, max_body=4096)
    if got is None:
        raise AuthenticationError("receiver closed the connection without an ACK")
    session.check_ack(*got)


def _send_direct(
    sock: socket.socket,
    session: SenderSession,
    source: BinaryIO,
    on_progress: Callable[[int], None] | None,
) -> None:
    """A source that never waits (file, memory): read, seal, send; the timer is seen per chunk."""
    while True:
        chunk = source.read(session.config.record_bytes)
        if not chunk:
            return
        for part in session.seal(chunk):
            sock.sendall(part)
        if on_progress is not None:
            on_progress(len(chunk))


def _send_threaded(
    sock: socket.socket,
    session: SenderSession,
    source: BinaryIO,
    on_progress: Callable[[int], None] | None,
) -> None:
    """A source that may wait (pipe, socket): read it in a helper thread, rekey when idle."""
    chunks: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=4)
    stop = threading.Event()
    pump = threading.Thread(
        target=_pump,
        args=(source, session.config.record_bytes, chunks, stop),
        name="cvqkd-send-reader",
        daemon=True,
    )
    pump.start()
    try:
        while True:
            try:
                item = chunks.get(timeout=session.next_rekey_in())
            except queue.Empty:  # idle past the rekey interval: key a new epoch anyway
                for part in session.poll():
                    sock.sendall(part)
                continue
            if isinstance(item, BaseException):
                raise item
            if not item:
                break
            for part in session.seal(item):
                sock.sendall(part)
            if on_progress is not None:
                on_progress(len(item))
    finally:
        stop.set()


def receive_stream(
    sock: socket.socket,
    sink: BinaryIO,
    *,
    key_source: SlaveKeySource,
    config: TransportConfig | None = None,
    metrics: Metrics | None = None,
    auth: PeerAuth | None = None,
) -> TransferReport:
    """Receive, verify and write to ``sink`` one stream from a connected socket; send the ACK.

    With ``auth`` the sender's certificate and handshake signature are checked before any record.
    """
    t0 = time.perf_counter()
    session = ReceiverSession(key_source=key_source, config=config, metrics=metrics, auth=auth)
    reader = sock.makefile("rb")
    try:
        _receive_body(sock, reader, session, sink)
    except OSError as exc:
        raise PeerConnectionError(f"connection to the sender failed: {exc}") from None
    finally:
        reader.close()
    return _report("receiver", session, t0)


def _receive_body(
    sock: socket.socket, reader: Any, session: ReceiverSession, sink: BinaryIO
) -> None:
    sock.sendall(session.hello())
    start = _read_handshake(reader, what="START", peer="sender")
    if session.auth is not None:
        start += _read_handshake(reader, what="handshake signature", peer="sender")
    reply = session.accept_start(start)
    if reply:
        sock.sendall(reply)
    while not session.finished:
        got = read_record(reader, max_body=MAX_BODY_BYTES)
        if got is None:
            raise AuthenticationError("stream truncated: connection closed before END")
        plain = session.open(*got)
        if plain:
            sink.write(plain)
    sink.flush()
    sock.sendall(session.ack())
