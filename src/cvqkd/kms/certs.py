"""Development PKI for the KMEs: a CA, KME certificates (server and client) and SAE
certificates (client), made with ``cryptography``. For tests and demos, not production.

Identity is the certificate's subject CN: the KME takes the SAE ID (or the peer KME ID) from
it. KME certificates carry SAN ``IP:127.0.0.1``, ``DNS:localhost`` and ``DNS:<kme id>`` so
clients can verify them on loopback. Keys are ECDSA P-256 (fast TLS handshakes), written
with mode 0600.

Example::

    >>> paths = make_dev_pki(tmp_path, sae_ids=["SAE_A"], kme_ids=["KME_A"])  # doctest: +SKIP
    >>> sorted(paths)                                                         # doctest: +SKIP
    ['KME_A', 'SAE_A', 'ca']
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cvqkd.errors import ConfigError

__all__ = ["CertPaths", "make_ca", "make_dev_pki", "make_leaf"]

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class CertPaths:
    """Where one identity's PEM files are: certificate and private key."""

    cert_file: Path
    key_file: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def make_ca(
    *, common_name: str = "cvqkd development CA", days: int = 365
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A self-signed CA certificate and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(
    *,
    common_name: str,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    server: bool,
    days: int = 365,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate with subject CN ``common_name`` signed by the CA.

    ``server=True`` (a KME): EKU serverAuth and clientAuth (a KME also calls its peer) and
    SAN IP:127.0.0.1, DNS:localhost, DNS:<cn>. ``server=False`` (an SAE): EKU clientAuth.
    """
    if not _ID_RE.match(common_name):
        raise ConfigError(f"identity {common_name!r} must be 1-64 letters, digits, '_', '-' or '.'")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        eku.insert(0, ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if server:
        san: list[x509.GeneralName] = [
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.DNSName("localhost"),
        ]
        if re.match(r"^[A-Za-z0-9.\-]+$", common_name):
            san.append(x509.DNSName(common_name.lower()))
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_dev_pki(
    out_dir: str | Path,
    *,
    sae_ids: Sequence[str],
    kme_ids: Sequence[str],
    days: int = 365,
) -> dict[str, CertPaths]:
    """Write ``ca.pem``/``ca.key`` and ``<id>.pem``/``<id>.key`` for every KME and SAE.

    Returns the paths by identity (``"ca"`` for the CA). Existing files are overwritten.
    """
    ids = list(kme_ids) + list(sae_ids)
    if len(set(ids)) != len(ids):
        raise ConfigError("KME and SAE IDs must all be distinct")
    if "ca" in ids:
        raise ConfigError("'ca' is reserved for the CA's files")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = make_ca(days=days)
    paths = {"ca": CertPaths(out / "ca.pem", out / "ca.key")}
    _write_cert(paths["ca"].cert_file, ca_cert)
    _write_key(paths["ca"].key_file, ca_key)
    for ident in ids:
        cert, key = make_leaf(
            common_name=ident, ca_cert=ca_cert, ca_key=ca_key, server=ident in kme_ids, days=days
        )
        p = CertPaths(out / f"{ident}.pem", out / f"{ident}.key")
        _write_cert(p.cert_file, cert)
        _write_key(p.key_file, key)
        paths[ident] = p
    return paths
