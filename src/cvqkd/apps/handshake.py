"""Authenticating the transport's handshake: SAE certificate signatures, or a QKD-key HMAC.

The receiver's HELLO carries the ML-KEM-768 encapsulation key. Unauthenticated, a
man-in-the-middle could replace it with its own and read an epoch keyed by ML-KEM alone (policy
``pqc-only`` with a KME dry at session start). Two mechanisms close that (docs/apps.md,
"Handshake authentication"):

1. **Certificates** (:class:`PeerAuth`; the CLI always uses them). Each endpoint puts its SAE
   certificate (the one it uses for mutual TLS to its KME, made by ``cvqkd kme certs``) into its
   handshake message and signs the transcript hash ``T = SHA-256(HELLO || START)``::

       signed = "cvqkd/apps/handshake/v2" || 0x00 || role ("sender" | "receiver") || 0x00 || T

   The peer's certificate must chain to the configured CA (RFC 5280 path validation by
   ``cryptography.x509.verification``, EKU clientAuth, validity now) and its subject CN must be
   the expected peer SAE ID. Keys are ECDSA (the development PKI's P-256), signing with SHA-256
   (FIPS 186-5); the Web PKI profile of the verifier does not admit Ed25519 certificates.
2. **QKD binding** (:func:`transcript_binding`): every KEY record keyed with a QKD key carries
   ``HMAC-SHA-256(K_bind, "cvqkd/apps/transcript-bind/v2" || T || u32 epoch)`` with
   ``K_bind = HKDF-SHA-256(IKM = lp(qkd_key), salt = 0^32, info = lp(label) || lp(key ID))``,
   so a transcript changed in flight fails at the first QKD-keyed epoch. Without certificates
   an ML-KEM-only epoch is allowed only after such a confirmed epoch.

>>> len(transcript_binding(qkd_key=bytes(32), key_id="k", transcript=bytes(32), epoch=1))
32
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from cvqkd.apps.hybrid import hkdf_sha256
from cvqkd.errors import AuthenticationError, ConfigError

SIGN_LABEL = b"cvqkd/apps/handshake/v2"
BIND_LABEL = b"cvqkd/apps/transcript-bind/v2"
ROLE_SENDER = b"sender"
ROLE_RECEIVER = b"receiver"
BIND_BYTES = 32

SigningKey = ec.EllipticCurvePrivateKey


def _lp(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def signed_message(*, role: bytes, transcript: bytes) -> bytes:
    """The bytes an endpoint signs: label, role and the 32-byte transcript hash."""
    return SIGN_LABEL + b"\x00" + role + b"\x00" + transcript


def transcript_binding(*, qkd_key: bytes, key_id: str, transcript: bytes, epoch: int) -> bytes:
    """HMAC-SHA-256 of the transcript hash under a key derived from one QKD key (32 bytes)."""
    k_bind = hkdf_sha256(
        ikm=_lp(qkd_key),
        salt=b"",
        info=_lp(BIND_LABEL) + _lp(key_id.encode("utf-8")),
        length=32,
    )
    return hmac.new(
        k_bind, BIND_LABEL + transcript + epoch.to_bytes(4, "big"), hashlib.sha256
    ).digest()


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[0].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


@dataclass(frozen=True)
class PeerAuth:
    """This endpoint's SAE certificate and key, the CA for the peer, and the peer's SAE ID.

    Example::

        auth = PeerAuth.from_files(cert_file="certs/SAE_A.pem", key_file="certs/SAE_A.key",
                                   ca_file="certs/ca.pem", peer_sae_id="SAE_B")
    """

    certificate: x509.Certificate
    private_key: SigningKey = field(repr=False)
    ca_certificates: tuple[x509.Certificate, ...]
    peer_sae_id: str

    def __post_init__(self) -> None:
        if not self.peer_sae_id:
            raise ConfigError("the expected peer SAE ID is empty")
        if not self.ca_certificates:
            raise ConfigError("no CA certificate to verify the peer with")
        mine = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if mine != theirs:
            raise ConfigError("the SAE private key does not belong to the SAE certificate")

    @classmethod
    def from_files(
        cls, *, cert_file: str | Path, key_file: str | Path, ca_file: str | Path, peer_sae_id: str
    ) -> PeerAuth:
        """Load PEM files (the same ones as for mTLS to the KME)."""
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
            key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
            cas = tuple(x509.load_pem_x509_certificates(Path(ca_file).read_bytes()))
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"cannot load the SAE certificate, key or CA ({cert_file}, {key_file}, "
                f"{ca_file}): {exc}"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"SAE key {key_file}: only ECDSA keys can sign the handshake")
        return cls(certificate=cert, private_key=key, ca_certificates=cas, peer_sae_id=peer_sae_id)

    @property
    def certificate_der(self) -> bytes:
        """This endpoint's certificate, DER-encoded (as sent in the handshake)."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def sae_id(self) -> str:
        """This endpoint's SAE ID (its certificate's subject CN)."""
        return _common_name(self.certificate)

    def sign(self, *, role: bytes, transcript: bytes) -> bytes:
        """Sign :func:`signed_message` with this SAE's key."""
        message = signed_message(role=role, transcript=transcript)
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))

    def verify_peer_certificate(self, der: bytes) -> x509.Certificate:
        """Parse the peer's certificate; check it chains to the CA and names the expected SAE.

        Raises :class:`AuthenticationError` naming what is wrong.
        """
        try:
            # the parse is lazy: touch the fields used below so a corrupt field fails here
            cert = x509.load_der_x509_certificate(der)
            cn = _common_name(cert)
            cert.public_key()
        except (ValueError, UnsupportedAlgorithm):
            # a corrupt key field can read as an unknown algorithm or curve, not only bad DER
            raise AuthenticationError("the peer's handshake certificate is not valid DER") from None
        ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
            x509.SubjectAlternativeName, Criticality.AGNOSTIC, None
        )
        verifier = (
            PolicyBuilder()
            .store(Store(list(self.ca_certificates)))
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
            .build_client_verifier()
        )
        try:
            verifier.verify(cert, [])
        except (VerificationError, ValueError) as exc:
            raise AuthenticationError(
                f"the peer's certificate (CN {cn!r}) does not chain to the configured CA: {exc}"
            ) from None
        if cn != self.peer_sae_id:
            raise AuthenticationError(
                f"the peer's certificate is for SAE {cn!r}, expected {self.peer_sae_id!r}"
            )
        return cert


def verify_signature(
    cert: x509.Certificate, *, role: bytes, transcript: bytes, signature: bytes
) -> None:
    """Verify the peer's handshake signature; raise :class:`AuthenticationError` if it fails."""
    message = signed_message(role=role, transcript=transcript)
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise AuthenticationError("the peer's certificate key cannot be parsed") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AuthenticationError("the peer's certificate key is not an ECDSA key")
    try:
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise AuthenticationError(
            f"the {role.decode()}'s handshake signature does not verify: the handshake was "
            "altered in transit (man-in-the-middle?)"
        ) from None
