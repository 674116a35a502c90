"""The transport's handshake authentication: SAE-certificate signatures and the QKD-key HMAC.

Threat: a man-in-the-middle replacing the receiver's ML-KEM-768 encapsulation key in HELLO, so
that an epoch keyed by ML-KEM alone (policy ``pqc-only`` with a KME dry at session start) is
readable. Checked here, sans-I/O against in-memory key pools and the development PKI of
``cvqkd kme certs`` (cvqkd.kms.certs.make_dev_pki):

- with certificates, the replaced key is detected at both ends (signatures over the transcript),
  a replayed signature is refused, a certificate from another CA or for another SAE is refused,
  and stripping the certificate from HELLO is refused (no downgrade);
- without certificates, the replaced key is detected by the HMAC under the first QKD key, and an
  ML-KEM-only epoch is neither sent nor accepted before a QKD-keyed one;
- the signed bytes and the HMAC are recomputed independently (``cryptography`` and
  ``hmac``/``hashlib``) from the documented formats (docs/apps.md);
- any single bit flipped in HELLO, START or a signature stops the stream before any plaintext
  (hypothesis), with and without certificates.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvqkd.apps import transport as tp
from cvqkd.apps.handshake import PeerAuth
from cvqkd.apps.hybrid import mlkem_generate
from cvqkd.apps.keysource import InMemoryKeyPool, KeyUnavailableError
from cvqkd.apps.policy import PolicyConfig
from cvqkd.errors import AuthenticationError, ConfigError, CvqkdError
from cvqkd.kms.certs import CertPaths, make_dev_pki

PQC_ONLY = PolicyConfig(policy="pqc-only", wait_timeout_s=0.2, backoff_initial_s=0.05)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, CertPaths]]:
    root = tmp_path_factory.mktemp("pki")
    ours = make_dev_pki(root / "ours", sae_ids=["SAE_A", "SAE_B"], kme_ids=["KME_A"])
    other = make_dev_pki(root / "other", sae_ids=["SAE_A", "SAE_B"], kme_ids=["KME_X"])
    return {"ours": ours, "other": other}


def auth(
    pki: dict[str, dict[str, CertPaths]], me: str, peer: str, *, issuer: str = "ours"
) -> PeerAuth:
    mine = pki[issuer][me]
    return PeerAuth.from_files(
        cert_file=mine.cert_file,
        key_file=mine.key_file,
        ca_file=pki["ours"]["ca"].cert_file,
        peer_sae_id=peer,
    )


def sessions(
    tx_auth: PeerAuth | None,
    rx_auth: PeerAuth | None,
    *,
    pool: InMemoryKeyPool | None = None,
    config: tp.TransportConfig | None = None,
) -> tuple[tp.SenderSession, tp.ReceiverSession]:
    pool = pool or InMemoryKeyPool()
    cfg = config or tp.TransportConfig(rekey_seconds=None)
    tx = tp.SenderSession(key_source=pool.master(), config=cfg, auth=tx_auth)
    rx = tp.ReceiverSession(key_source=pool.slave(), config=cfg, auth=rx_auth)
    return tx, rx


def handshake(tx: tp.SenderSession, rx: tp.ReceiverSession) -> None:
    reply = rx.accept_start(tx.start(rx.hello()))
    if reply:
        tx.accept_auth(reply)


def replace_ek(hello: bytes) -> bytes:
    """What the man-in-the-middle does: put its own ML-KEM-768 key into the HELLO."""
    flags, payload, _ = tp.parse_frame(hello, magic=tp.MAGIC_HELLO, what="HELLO")
    attacker = mlkem_generate().public_key
    return tp.frame(tp.MAGIC_HELLO, flags, attacker + payload[len(attacker) :])


def test_signed_round_trip_and_signed_bytes(pki: dict[str, dict[str, CertPaths]]) -> None:
    tx, rx = sessions(auth(pki, "SAE_A", "SAE_B"), auth(pki, "SAE_B", "SAE_A"))
    hello = rx.hello()
    start_and_sig = tx.start(hello)
    reply = rx.accept_start(start_and_sig)
    tx.accept_auth(reply)
    wire = b"".join(tx.seal(b"attack at dawn")) + tx.finish()
    assert b"".join(rx.open_all(wire)) == b"attack at dawn"
    assert tx.peer_auth == "certificate SAE_B" and rx.peer_auth == "certificate SAE_A"
    # the documented signed message, checked with cryptography directly
    _, start_payload, sig_frame = tp.parse_frame(start_and_sig, magic=tp.MAGIC_START, what="S")
    start = start_and_sig[: len(start_and_sig) - len(sig_frame)]
    transcript = hashlib.sha256(hello + start).digest()
    for role, frame_bytes, sae in ((b"sender", sig_frame, "SAE_A"), (b"receiver", reply, "SAE_B")):
        _, signature, _ = tp.parse_frame(frame_bytes, magic=tp.MAGIC_SIG, what="SIG")
        public = x509.load_pem_x509_certificate(pki["ours"][sae].cert_file.read_bytes())
        key = public.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        message = b"cvqkd/apps/handshake/v2\x00" + role + b"\x00" + transcript
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))  # raises if not
    # START carries the sender's certificate after mode and session ID
    assert start_payload[17:] == auth(pki, "SAE_A", "SAE_B").certificate_der
    # one handshake per session: a second START or HELLO is refused
    with pytest.raises(ConfigError, match="already called"):
        rx.accept_start(start_and_sig)
    with pytest.raises(ConfigError, match="already called"):
        tx.start(hello)


@pytest.mark.parametrize("mode", ["hybrid", "qkd"])
def test_mitm_replacing_the_ml_kem_key_is_detected_with_certificates(
    pki: dict[str, dict[str, CertPaths]], mode: str
) -> None:
    cfg = tp.TransportConfig(mode=mode, rekey_seconds=None, policy=PQC_ONLY)  # type: ignore[arg-type]
    dry = InMemoryKeyPool(capacity=0)  # KME dry from the start: epoch 1 would be ML-KEM only
    tx, rx = sessions(
        auth(pki, "SAE_A", "SAE_B"), auth(pki, "SAE_B", "SAE_A"), pool=dry, config=cfg
    )
    start_and_sig = tx.start(replace_ek(rx.hello()))
    # the receiver's transcript differs from the one the sender signed
    with pytest.raises(AuthenticationError, match="signature does not verify"):
        rx.accept_start(start_and_sig)
    with pytest.raises(ConfigError, match="not verified yet"):
        tx.seal(b"secret")  # and the sender sends nothing before the receiver's signature


def test_replayed_receiver_signature_is_refused(pki: dict[str, dict[str, CertPaths]]) -> None:
    a, b = auth(pki, "SAE_A", "SAE_B"), auth(pki, "SAE_B", "SAE_A")
    tx_old, rx_old = sessions(a, b)
    old_reply = rx_old.accept_start(tx_old.start(rx_old.hello()))
    tx, rx = sessions(a, b)
    tx.start(rx.hello())
    with pytest.raises(AuthenticationError, match="receiver's handshake signature"):
        tx.accept_auth(old_reply)  # a valid signature, but of another session's transcript


def test_signed_handshake_allows_ml_kem_only_first_epoch(
    pki: dict[str, dict[str, CertPaths]],
) -> None:
    cfg = tp.TransportConfig(rekey_seconds=None, policy=PQC_ONLY)
    dry = InMemoryKeyPool(capacity=0)
    tx, rx = sessions(
        auth(pki, "SAE_A", "SAE_B"), auth(pki, "SAE_B", "SAE_A"), pool=dry, config=cfg
    )
    handshake(tx, rx)
    wire = b"".join(tx.seal(b"post-quantum only")) + tx.finish()
    assert b"".join(rx.open_all(wire)) == b"post-quantum only"
    assert tx.metrics.pqc_only_epochs == rx.metrics.pqc_only_epochs == 1


@pytest.mark.parametrize(
    ("tx_as", "tx_issuer", "rx_expects", "match"),
    [
        ("SAE_A", "other", "SAE_A", "does not chain to the configured CA"),
        ("SAE_A", "ours", "SAE_A2", "is for SAE 'SAE_A', expected 'SAE_A2'"),
        ("KME_A", "ours", "SAE_A", "is for SAE 'KME_A', expected 'SAE_A'"),
    ],
)
def test_receiver_refuses_a_wrong_sender_certificate(
    pki: dict[str, dict[str, CertPaths]], tx_as: str, tx_issuer: str, rx_expects: str, match: str
) -> None:
    tx, rx = sessions(auth(pki, tx_as, "SAE_B", issuer=tx_issuer), auth(pki, "SAE_B", rx_expects))
    with pytest.raises(AuthenticationError, match=match):
        rx.accept_start(tx.start(rx.hello()))


@pytest.mark.parametrize(
    ("rx_issuer", "tx_expects", "match"),
    [
        ("other", "SAE_B", "does not chain to the configured CA"),
        ("ours", "SAE_B2", "is for SAE 'SAE_B', expected 'SAE_B2'"),
    ],
)
def test_sender_refuses_a_wrong_receiver_certificate(
    pki: dict[str, dict[str, CertPaths]], rx_issuer: str, tx_expects: str, match: str
) -> None:
    tx, rx = sessions(auth(pki, "SAE_A", tx_expects), auth(pki, "SAE_B", "SAE_A", issuer=rx_issuer))
    with pytest.raises(AuthenticationError, match=match):
        tx.start(rx.hello())


def test_stripping_the_certificate_is_refused(pki: dict[str, dict[str, CertPaths]]) -> None:
    tx, rx = sessions(auth(pki, "SAE_A", "SAE_B"), auth(pki, "SAE_B", "SAE_A"))
    flags, payload, _ = tp.parse_frame(rx.hello(), magic=tp.MAGIC_HELLO, what="HELLO")
    stripped = tp.frame(tp.MAGIC_HELLO, flags & ~tp.FLAG_CERT, payload[: 1184 + 16])
    with pytest.raises(AuthenticationError, match="carries no certificate"):
        tx.start(stripped)
    # an end without certificates facing one with them is told to configure them
    plain_tx, signed_rx = sessions(None, auth(pki, "SAE_B", "SAE_A"))
    with pytest.raises(ConfigError, match="signs its handshake"):
        plain_tx.start(signed_rx.hello())


def test_key_must_match_certificate(pki: dict[str, dict[str, CertPaths]]) -> None:
    a = pki["ours"]["SAE_A"]
    with pytest.raises(ConfigError, match="does not belong"):
        PeerAuth.from_files(
            cert_file=a.cert_file,
            key_file=pki["ours"]["SAE_B"].key_file,
            ca_file=pki["ours"]["ca"].cert_file,
            peer_sae_id="SAE_B",
        )
    with pytest.raises(ConfigError, match="cannot load"):
        PeerAuth.from_files(
            cert_file=Path("/nonexistent.pem"),
            key_file=a.key_file,
            ca_file=a.cert_file,
            peer_sae_id="SAE_B",
        )


# -- without certificates: the QKD key binds the transcript ------------------------------------


def _reference_binding(qkd_key: bytes, key_id: str, transcript: bytes, epoch: int) -> bytes:
    """docs/apps.md's K_bind and HMAC, written out with hmac/hashlib (RFC 5869 HKDF)."""

    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    label = b"cvqkd/apps/transcript-bind/v2"
    prk = hmac.new(bytes(32), lp(qkd_key), hashlib.sha256).digest()
    k_bind = hmac.new(prk, lp(label) + lp(key_id.encode()) + b"\x01", hashlib.sha256).digest()
    msg = label + transcript + struct.pack(">I", epoch)
    return hmac.new(k_bind, msg, hashlib.sha256).digest()


def test_key_record_carries_the_documented_transcript_hmac() -> None:
    pool = InMemoryKeyPool()
    tx, rx = sessions(None, None, pool=pool)
    hello = rx.hello()
    start = tx.start(hello)
    assert rx.accept_start(start) == b""
    record = b"".join(tx.seal(b"x"))
    body = record[tp.HEADER.size :]
    key_id = str(uuid.UUID(bytes=body[1:17]))
    qkd_key = pool.take_slave(key_id)
    ct_len = int.from_bytes(body[17:19], "big")
    bind = body[19 + ct_len : 19 + ct_len + 32]
    transcript = hashlib.sha256(hello + start).digest()
    assert bind == _reference_binding(qkd_key, key_id, transcript, 1)


@pytest.mark.parametrize("mode", ["hybrid", "qkd"])
def test_mitm_replacing_the_ml_kem_key_is_detected_by_the_qkd_key(mode: str) -> None:
    cfg = tp.TransportConfig(mode=mode, rekey_seconds=None, policy=PQC_ONLY)  # type: ignore[arg-type]
    tx, rx = sessions(None, None, config=cfg)
    rx.accept_start(tx.start(replace_ek(rx.hello())))
    wire = b"".join(tx.seal(b"secret")) + tx.finish()
    with pytest.raises(AuthenticationError, match="not confirmed by the QKD key of epoch 1"):
        rx.open_all(wire)


def test_without_certificates_no_ml_kem_only_epoch_before_a_qkd_key() -> None:
    cfg = tp.TransportConfig(rekey_seconds=None, policy=PQC_ONLY)
    tx, rx = sessions(None, None, pool=InMemoryKeyPool(capacity=0), config=cfg)
    handshake(tx, rx)
    # the sender will not key epoch 1 with ML-KEM alone: it waits, then gives up
    with pytest.raises(KeyUnavailableError, match="KME dry"):
        tx.seal(b"secret")
    assert "no certificates and no QKD-keyed epoch yet" in " ".join(tx.metrics.policy_log)
    # a forged ML-KEM-only epoch 1 (a sender without that rule) is refused by the receiver
    forger, rx2 = sessions(None, None, pool=InMemoryKeyPool(capacity=0), config=cfg)
    handshake(forger, rx2)
    forger._qkd_anchored = True  # pretend: skip the sender-side rule
    wire = b"".join(forger.seal(b"secret"))
    with pytest.raises(AuthenticationError, match="before any QKD key confirmed the handshake"):
        rx2.open_all(wire)


def test_without_certificates_ml_kem_only_after_a_qkd_epoch() -> None:
    cfg = tp.TransportConfig(rekey_seconds=None, rekey_bytes=100, record_bytes=100, policy=PQC_ONLY)
    tx, rx = sessions(None, None, pool=InMemoryKeyPool(capacity=1), config=cfg)
    handshake(tx, rx)
    wire = b"".join(tx.seal(b"z" * 300)) + tx.finish()
    assert b"".join(rx.open_all(wire)) == b"z" * 300
    assert tx.metrics.qkd_keys_used == 1 and tx.metrics.pqc_only_epochs == 2
    assert rx.metrics.pqc_only_epochs == 2


# -- any change to the handshake in flight stops the stream -------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), signed=st.booleans())
def test_any_bit_flip_in_the_handshake_is_detected(
    pki: dict[str, dict[str, CertPaths]], data: st.DataObject, signed: bool
) -> None:
    tx, rx = sessions(
        auth(pki, "SAE_A", "SAE_B") if signed else None,
        auth(pki, "SAE_B", "SAE_A") if signed else None,
    )
    which = data.draw(st.sampled_from(["HELLO", "START", "SIG"] if signed else ["HELLO", "START"]))

    def flip(message: bytes, name: str) -> bytes:
        if name != which:
            return message
        # signatures vary in length (DER ECDSA): draw a position, reduce it to the message
        bit = data.draw(st.integers(0, 2**20), label=f"bit of {name}") % (8 * len(message))
        out = bytearray(message)
        out[bit // 8] ^= 1 << (bit % 8)
        return bytes(out)

    released: list[bytes] = []
    with pytest.raises(CvqkdError):
        reply = rx.accept_start(flip(tx.start(flip(rx.hello(), "HELLO")), "START"))
        if signed:
            tx.accept_auth(flip(reply, "SIG"))
        # unsigned: the first QKD-keyed KEY record carries the transcript HMAC
        for plain in rx.open_all(b"".join(tx.seal(b"secret")) + tx.finish()):
            released.append(plain)
    assert released == []


def test_certificate_with_an_unknown_curve_is_an_authentication_error(
    pki: dict[str, dict[str, CertPaths]],
) -> None:
    # a flipped bit in the key's curve OID (P-256, 1.2.840.10045.3.1.7) makes the library
    # report an unsupported curve, not bad DER: still one AuthenticationError, no other type
    from cryptography.hazmat.primitives.serialization import Encoding

    der = auth(pki, "SAE_A", "SAE_B").certificate.public_bytes(Encoding.DER)
    oid = bytes.fromhex("06082a8648ce3d030107")
    assert der.count(oid) == 1
    bad = der.replace(oid, oid[:-1] + bytes([oid[-1] ^ 0x04]))
    with pytest.raises(AuthenticationError, match="not valid DER"):
        auth(pki, "SAE_B", "SAE_A").verify_peer_certificate(bad)
