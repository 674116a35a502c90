"""An AES-256-GCM record stream between two endpoints, rekeyed from the KME with in-band key IDs.

The sender is the ETSI GS QKD 014 *master* SAE, the receiver the *slave* SAE. The format and
the reasoning are in docs/apps.md; in short (all integers big-endian)::

    receiver -> sender   HELLO  "CVQR" | version u8 | flags u8 | ek_len u16 | ML-KEM-768 ek
                                | receiver nonce (16)
    sender -> receiver   START  "CVQS" | version u8 | mode u8 (1 qkd, 3 hybrid) | session id (16)
    then records         header (20) = type u8 | direction u8 | flags u16 | epoch u32 | seq u64
                                       | body_len u32
      KEY  (type 1)  body = key_mode u8 | key ID (16, UUID) | ct_len u16 | ML-KEM ciphertext
                            | GCM tag over the empty string (key confirmation, seq 0)
      DATA (type 2)  body = AES-256-GCM(plaintext) || tag, seq = 1, 2, ...
      END  (type 3)  body = AES-256-GCM(total bytes u64 | total DATA records u64) || tag
    receiver -> sender   ACK (type 4, direction 2) body = AES-256-GCM(total bytes u64) || tag

    AAD   = session id || header || key ID        (KEY records: || the body before the tag)
    nonce = direction u8 || 0x000000 || seq u64    (96 bits; NIST SP 800-38D §8.2.1 deterministic)
    epoch key, next chain = HKDF (cvqkd.apps.hybrid) of the QKD key and/or ML-KEM secret,
            salted with the previous chain, context = SHA-256(HELLO || START) || epoch u32

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
import logging
import secrets
import socket
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Literal, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cvqkd.apps.hybrid import (
    MLKEM768_CT_BYTES,
    MLKEM768_EK_BYTES,
    MODE_HYBRID,
    MODE_MLKEM,
    MODE_QKD,
    derive_hybrid_key,
    mlkem_decapsulate,
    mlkem_encapsulate,
    mlkem_generate,
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

VERSION = 1
MAGIC_HELLO = b"CVQR"
MAGIC_START = b"CVQS"
TYPE_KEY, TYPE_DATA, TYPE_END, TYPE_ACK = 1, 2, 3, 4
DIR_SENDER, DIR_RECEIVER = 1, 2

HEADER = struct.Struct(">BBHIQI")
HELLO = struct.Struct(">4sBBH")
START = struct.Struct(">4sBB16s")
HELLO_BYTES = HELLO.size + MLKEM768_EK_BYTES + 16
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
_MODE_BYTE = {"qkd": MODE_QKD, "hybrid": MODE_HYBRID}


@dataclass(frozen=True)
class TransportConfig:
    """Settings shared by sender and receiver.

    ``mode``: ``hybrid`` (every epoch key = QKD key + ML-KEM-768) or ``qkd`` (QKD key only).
    ``rekey_seconds`` / ``rekey_bytes``: new key after this time (s) or plaintext (bytes),
    whichever first (``None``: never for that reason). ``record_bytes``: plaintext per record.
    ``key_fetch_timeout_s``: how long the receiver retries an unknown key ID (the peer KME may
    lag) before giving up.
    """

    mode: Mode = "hybrid"
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
        context=transcript + epoch.to_bytes(4, "big"),
        chain_key=chain,
        length=64,
    )
    return okm[:32], okm[32:]


class SenderSession:
    """The sending end (master SAE), without I/O: feed it the HELLO, get bytes to send.

    >>> from cvqkd.apps.keysource import InMemoryKeyPool
    >>> pool = InMemoryKeyPool()
    >>> rx = ReceiverSession(key_source=pool.slave())
    >>> tx = SenderSession(key_source=pool.master())
    >>> rx.accept_start(tx.start(rx.hello()))
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or TransportConfig()
        self.metrics = metrics or Metrics()
        self._source = key_source
        self._clock = clock
        self._sleep = sleep
        self._epoch: _Epoch | None = None
        self._chain: bytes | None = None
        self._ek = b""
        self._transcript = b""
        self.session_id = b""
        self._finished = False
        self.data_records = 0
        #: (SHA-256 of the key, nonce) of every GCM invocation when ``track_nonces`` is set.
        self.track_nonces = False
        self.nonces_used: list[tuple[bytes, bytes]] = []

    def start(self, hello: bytes) -> bytes:
        """Check the receiver's HELLO and return the START message."""
        if len(hello) != HELLO_BYTES:
            raise DataFormatError(f"HELLO is {HELLO_BYTES} bytes, got {len(hello)}")
        magic, version, _flags, ek_len = HELLO.unpack_from(hello)
        if magic != MAGIC_HELLO or version != VERSION:
            raise DataFormatError("peer is not a cvqkd receiver (bad HELLO magic or version)")
        if ek_len != MLKEM768_EK_BYTES:
            raise DataFormatError(f"HELLO carries a {ek_len}-byte key, not ML-KEM-768")
        self._ek = hello[HELLO.size : HELLO.size + ek_len]
        mlkem_encapsulate(self._ek)  # validates the key now (FIPS 203 §7.2), result unused
        self.session_id = secrets.token_bytes(16)
        start = START.pack(MAGIC_START, VERSION, _MODE_BYTE[self.config.mode], self.session_id)
        self._transcript = hashlib.sha256(hello + start).digest()
        return start

    # -- keys -----------------------------------------------------------------------------
    def _can_keep(self, next_len: int) -> bool:
        ep = self._epoch
        return ep is not None and _within_limits(ep, next_len, self.config)

    def _rekey(self, next_len: int) -> list[bytes]:
        decision = obtain_key(
            self._source,
            config=self.config.policy,
            metrics=self.metrics,
            can_keep=self._can_keep(next_len),
            can_pqc=self.config.allow_pqc_only,
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
        use_mlkem = decision.kind == "pqc-only" or self.config.mode == "hybrid"
        secret, ct = mlkem_encapsulate(self._ek) if use_mlkem else (None, None)
        key_mode = (MODE_QKD if qkd_key else 0) | (MODE_MLKEM if secret else 0)
        number = 1 if self._epoch is None else self._epoch.number + 1
        data_key, chain = _derive_epoch(
            qkd_key=qkd_key,
            key_id=key_id,
            mlkem_secret=secret,
            ek=self._ek,
            ct=ct,
            transcript=self._transcript,
            epoch=number,
            chain=self._chain,
        )
        kid = _key_id_bytes(key_id)
        ct = ct or b""
        prefix = bytes([key_mode]) + kid + len(ct).to_bytes(2, "big") + ct
        header = HEADER.pack(TYPE_KEY, DIR_SENDER, 0, number, 0, len(prefix) + TAG_BYTES)
        aead = AESGCM(data_key)
        tag = aead.encrypt(nonce_for(DIR_SENDER, 0), b"", self.session_id + header + kid + prefix)
        self._chain = chain
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

    # -- records --------------------------------------------------------------------------
    def seal(self, data: bytes | memoryview) -> list[bytes]:
        """Encrypt ``data`` into records (rekeying first when due); return the bytes to send."""
        if not self._transcript:
            raise ConfigError("call start() with the receiver's HELLO first")
        if self._finished:
            raise ConfigError("the stream is finished")
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
        if self._finished:
            raise ConfigError("the stream is finished")
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
    """

    def __init__(
        self,
        *,
        key_source: SlaveKeySource,
        config: TransportConfig | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or TransportConfig()
        self.metrics = metrics or Metrics()
        self._source = key_source
        self._clock = clock
        self._sleep = sleep
        self._mlkem = mlkem_generate()
        self._hello = HELLO.pack(MAGIC_HELLO, VERSION, 0, MLKEM768_EK_BYTES) + (
            self._mlkem.public_key + secrets.token_bytes(16)
        )
        self._transcript = b""
        self.session_id = b""
        self._epoch: _Epoch | None = None
        self._chain: bytes | None = None
        self.finished = False
        self.data_records = 0

    def hello(self) -> bytes:
        """The HELLO message (the receiver speaks first)."""
        return self._hello

    def accept_start(self, start: bytes) -> None:
        """Check the sender's START message."""
        if len(start) != START.size:
            raise DataFormatError(f"START is {START.size} bytes, got {len(start)}")
        magic, version, mode, session_id = START.unpack(start)
        if magic != MAGIC_START or version != VERSION:
            raise DataFormatError("peer is not a cvqkd sender (bad START magic or version)")
        if mode != _MODE_BYTE[self.config.mode]:
            theirs = {v: k for k, v in _MODE_BYTE.items()}.get(mode, str(mode))
            raise ConfigError(
                f"sender uses mode {theirs}, this receiver expects {self.config.mode}"
            )
        self.session_id = session_id
        self._transcript = hashlib.sha256(self._hello + start).digest()

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
        prefix_len = 3 + KEY_ID_BYTES + ct_len
        if len(body) != prefix_len + TAG_BYTES:
            raise DataFormatError("KEY record length does not match its ciphertext length")
        ct = body[3 + KEY_ID_BYTES : prefix_len]
        session_mode = _MODE_BYTE[self.config.mode]
        allowed = {session_mode} | ({MODE_MLKEM} if self.config.allow_pqc_only else set())
        if key_mode not in allowed:
            what = "ML-KEM only" if key_mode == MODE_MLKEM else f"key mode {key_mode}"
            raise AuthenticationError(
                f"sender keyed epoch {epoch} with {what}, which this receiver's policy refuses"
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
        elif kid != bytes(KEY_ID_BYTES):
            raise DataFormatError("ML-KEM-only KEY record carries a key ID")
        secret = mlkem_decapsulate(self._mlkem.seed, ct) if key_mode & MODE_MLKEM else None
        data_key, chain = _derive_epoch(
            qkd_key=qkd_key,
            key_id=key_id,
            mlkem_secret=secret,
            ek=self._mlkem.public_key,
            ct=ct,
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
        self._epoch = _Epoch(epoch, kid, aead, key_mode)
        self.metrics.epochs += 1
        if key_mode == MODE_MLKEM:
            self.metrics.pqc_only_epochs += 1
            log.warning("epoch %d keyed by ML-KEM-768 only (sender's KME was dry)", epoch)

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
    """What one end of a transfer did: bytes, records, epochs, time (s), keys, policy events."""

    role: str
    plaintext_bytes: int
    data_records: int
    epochs: int
    seconds: float
    throughput_bps: float
    qkd_keys_used: int
    qkd_key_bits_used: int
    session_id: str
    metrics: dict[str, object]


def _report(
    role: str, session_id: bytes, metrics: Metrics, records: int, t0: float
) -> TransferReport:
    seconds = max(time.perf_counter() - t0, 1e-9)
    return TransferReport(
        role=role,
        plaintext_bytes=metrics.plaintext_bytes,
        data_records=records,
        epochs=metrics.epochs,
        seconds=seconds,
        throughput_bps=8 * metrics.plaintext_bytes / seconds,
        qkd_keys_used=metrics.qkd_keys_used,
        qkd_key_bits_used=256 * metrics.qkd_keys_used,
        session_id=session_id.hex(),
        metrics=metrics.as_dict(),
    )


#: Largest record body read from the wire: a full DATA record, or a KEY record (< 2 KiB).
MAX_BODY_BYTES = MAX_RECORD_BYTES + TAG_BYTES


def send_stream(
    sock: socket.socket,
    source: BinaryIO,
    *,
    key_source: MasterKeySource,
    config: TransportConfig | None = None,
    metrics: Metrics | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> TransferReport:
    """Encrypt ``source`` to a connected socket (``sendall``/``makefile``) until EOF.

    Reads the receiver's HELLO, sends START, records and END, then waits for the ACK.
    ``on_progress(n)`` is called with each chunk's plaintext size (progress bars).
    """
    t0 = time.perf_counter()
    session = SenderSession(key_source=key_source, config=config, metrics=metrics)
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
    return _report("sender", session.session_id, session.metrics, session.data_records, t0)


def _send_body(
    sock: socket.socket,
    reader: Any,
    session: SenderSession,
    source: BinaryIO,
    on_progress: Callable[[int], None] | None,
) -> None:
    hello = read_exact(reader, HELLO_BYTES, what="HELLO")
    sock.sendall(session.start(hello))
    size = session.config.record_bytes
    while True:
        chunk = source.read(size)
        if not chunk:
            break
        for part in session.seal(chunk):
            sock.sendall(part)
        if on_progress is not None:
            on_progress(len(chunk))
    sock.sendall(session.finish())
    got = read_record(reader, max_body=4096)
    if got is None:
        raise AuthenticationError("receiver closed the connection without an ACK")
    session.check_ack(*got)


def receive_stream(
    sock: socket.socket,
    sink: BinaryIO,
    *,
    key_source: SlaveKeySource,
    config: TransportConfig | None = None,
    metrics: Metrics | None = None,
) -> TransferReport:
    """Receive, verify and write to ``sink`` one stream from a connected socket; send the ACK."""
    t0 = time.perf_counter()
    session = ReceiverSession(key_source=key_source, config=config, metrics=metrics)
    reader = sock.makefile("rb")
    try:
        _receive_body(sock, reader, session, sink)
    except OSError as exc:
        raise PeerConnectionError(f"connection to the sender failed: {exc}") from None
    finally:
        reader.close()
    return _report("receiver", session.session_id, session.metrics, session.data_records, t0)


def _receive_body(
    sock: socket.socket, reader: Any, session: ReceiverSession, sink: BinaryIO
) -> None:
    sock.sendall(session.hello())
    session.accept_start(read_exact(reader, START.size, what="START"))
    while not session.finished:
        got = read_record(reader, max_body=MAX_BODY_BYTES)
        if got is None:
            raise AuthenticationError("stream truncated: connection closed before END")
        plain = session.open(*got)
        if plain:
            sink.write(plain)
    sink.flush()
    sock.sendall(session.ack())
