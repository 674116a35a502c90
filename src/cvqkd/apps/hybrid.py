"""Hybrid key derivation: a QKD key, an ML-KEM-768 secret and optionally X25519, via HKDF-SHA-256.

In the manner of ETSI TS 103 744 (hybrid key establishment, "concatenate then KDF", which allows
several component secrets): the secrets enter one HKDF-Extract, each with a 4-byte big-endian
length prefix, and everything public that identifies the exchange (label, which inputs are
present, the QKD key ID, hashes of the ML-KEM encapsulation key and ciphertext, of the two X25519
public keys, a caller context, the output length) is bound into HKDF-Expand's ``info``. HKDF is
a dual-PRF in its IKM when any input is uniformly random and unknown to the attacker, so the
output is secure if *any* of the QKD key, the ML-KEM secret (or the X25519 secret) is
(Krawczyk 2010; Giacon, Heuer & Poettering, PKC 2018 for KEM combiners: binding the ciphertext
makes the combiner robust against a broken KEM).

Construction (all lengths in bytes, ``lp(x) = len(x) as u32 big-endian || x``)::

    mode = 1 (QKD) | 2 (ML-KEM) | 4 (X25519), OR-ed; X25519 never alone
    PRK  = HKDF-Extract(salt = chain_key or 32 zero bytes,
                        IKM  = lp(qkd_key or b"") || lp(mlkem_secret or b"")
                               [|| lp(x25519_secret)                      if mode & 4])
    info = lp(label) || u8(mode) || lp(utf8(qkd_key_id or ""))
           || lp(SHA-256(mlkem_public_key) or b"") || lp(SHA-256(mlkem_ciphertext) or b"")
           [|| lp(SHA-256(x25519_public_keys))                            if mode & 4]
           || lp(context) || u16(length)
    OKM  = HKDF-Expand(PRK, info, length)

Without X25519 the construction is byte for byte the one of v1 (same label); the X25519 fields
are present exactly when mode bit 4 is, so every mode parses uniquely. ``x25519_public_keys`` is
the receiver's then the sender's public key (32 + 32 bytes).

HKDF is RFC 5869; SHA-256 is FIPS 180-4; ML-KEM-768 is FIPS 203 (``cryptography``'s
OpenSSL-backed implementation, which stores a private key as its 64-byte seed d || z); X25519 is
RFC 7748 (``cryptography``/OpenSSL), its all-zero output (a small-order peer key) refused.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from cvqkd.errors import ConfigError, DataFormatError

#: Default label; change it (versioned) whenever the construction changes.
HYBRID_LABEL = b"cvqkd/apps/hybrid-kdf/v1"

#: ML-KEM-768 sizes (FIPS 203, Table 3), in bytes.
MLKEM768_EK_BYTES = 1184
MLKEM768_CT_BYTES = 1088
MLKEM768_SS_BYTES = 32
MLKEM_SEED_BYTES = 64

#: X25519 sizes (RFC 7748 §5), in bytes.
X25519_BYTES = 32

MODE_QKD = 1
MODE_MLKEM = 2
MODE_HYBRID = 3
MODE_X25519 = 4

_HASH_BYTES = 32
_MAX_OKM = 255 * _HASH_BYTES


def _lp(data: bytes) -> bytes:
    """Length-prefix ``data`` with its length as a 4-byte big-endian integer."""
    return len(data).to_bytes(4, "big") + data


def hkdf_extract(*, salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-256 (RFC 5869 §2.2): ``PRK = HMAC-SHA-256(salt, IKM)``.

    An empty salt means 32 zero bytes, as the RFC says.

    >>> hkdf_extract(salt=b"", ikm=b"\\x0b" * 22).hex()[:16]
    '19ef24a32c717b16'
    """
    return hmac.new(salt or bytes(_HASH_BYTES), ikm, hashlib.sha256).digest()


def hkdf_expand(*, prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-256 (RFC 5869 §2.3); ``length`` in bytes, at most 255 * 32."""
    if not 0 < length <= _MAX_OKM:
        raise ConfigError(f"HKDF output length must be 1..{_MAX_OKM} bytes, got {length}")
    out = bytearray()
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return bytes(out[:length])


def hkdf_sha256(*, ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA-256 (RFC 5869): extract then expand; ``length`` in bytes."""
    return hkdf_expand(prk=hkdf_extract(salt=salt, ikm=ikm), info=info, length=length)


def hybrid_info(
    *,
    mode: int,
    qkd_key_id: str | None,
    mlkem_public_key: bytes | None,
    mlkem_ciphertext: bytes | None,
    context: bytes,
    length: int,
    label: bytes = HYBRID_LABEL,
    x25519_public_keys: bytes | None = None,
) -> bytes:
    """The HKDF ``info`` string of :func:`derive_hybrid_key` (public values only)."""
    ek_hash = hashlib.sha256(mlkem_public_key).digest() if mlkem_public_key else b""
    ct_hash = hashlib.sha256(mlkem_ciphertext).digest() if mlkem_ciphertext else b""
    x_part = b""
    if mode & MODE_X25519:
        x_part = _lp(hashlib.sha256(x25519_public_keys or b"").digest())
    return (
        _lp(label)
        + bytes([mode])
        + _lp((qkd_key_id or "").encode("utf-8"))
        + _lp(ek_hash)
        + _lp(ct_hash)
        + x_part
        + _lp(context)
        + length.to_bytes(2, "big")
    )


def derive_hybrid_key(
    *,
    qkd_key: bytes | None,
    qkd_key_id: str | None = None,
    mlkem_shared_secret: bytes | None = None,
    mlkem_public_key: bytes | None = None,
    mlkem_ciphertext: bytes | None = None,
    x25519_shared_secret: bytes | None = None,
    x25519_public_keys: bytes | None = None,
    context: bytes = b"",
    chain_key: bytes | None = None,
    length: int = 32,
    label: bytes = HYBRID_LABEL,
) -> bytes:
    """Derive ``length`` bytes from a QKD key, an ML-KEM secret and/or X25519 (see module doc).

    A QKD key or an ML-KEM secret must be given; an X25519 secret (32 bytes, with
    ``x25519_public_keys`` = receiver's || sender's public key) is an optional third input.
    ``chain_key`` (optional, secret) is the HKDF salt: the transport passes the previous epoch's
    chaining secret, so an epoch that falls back to ML-KEM only still depends on every earlier
    QKD key.

    >>> k = derive_hybrid_key(qkd_key=bytes(32), qkd_key_id="id", mlkem_shared_secret=bytes(32))
    >>> len(k)
    32
    """
    if not qkd_key and not mlkem_shared_secret:
        raise ConfigError("hybrid key derivation needs a QKD key, an ML-KEM secret, or both")
    if qkd_key is not None and len(qkd_key) < 16:
        raise ConfigError(f"a QKD key of {len(qkd_key)} bytes is too short (need >= 16)")
    if mlkem_shared_secret is not None and len(mlkem_shared_secret) != MLKEM768_SS_BYTES:
        raise DataFormatError(
            f"an ML-KEM shared secret is {MLKEM768_SS_BYTES} bytes, got {len(mlkem_shared_secret)}"
        )
    if x25519_shared_secret is not None and (
        len(x25519_shared_secret) != X25519_BYTES
        or x25519_public_keys is None
        or len(x25519_public_keys) != 2 * X25519_BYTES
    ):
        raise DataFormatError(
            "an X25519 input is a 32-byte secret with 64 bytes of public keys (receiver, sender)"
        )
    mode = (
        (MODE_QKD if qkd_key else 0)
        | (MODE_MLKEM if mlkem_shared_secret else 0)
        | (MODE_X25519 if x25519_shared_secret else 0)
    )
    ikm = _lp(qkd_key or b"") + _lp(mlkem_shared_secret or b"")
    if x25519_shared_secret:
        ikm += _lp(x25519_shared_secret)
    info = hybrid_info(
        mode=mode,
        qkd_key_id=qkd_key_id,
        mlkem_public_key=mlkem_public_key,
        mlkem_ciphertext=mlkem_ciphertext,
        context=context,
        length=length,
        label=label,
        x25519_public_keys=x25519_public_keys,
    )
    return hkdf_sha256(ikm=ikm, salt=chain_key or b"", info=info, length=length)


@dataclass(frozen=True)
class MlKemKeyPair:
    """An ML-KEM-768 key pair: ``seed`` (64 bytes, d || z; secret) and ``public_key`` (1184)."""

    seed: bytes
    public_key: bytes

    def __repr__(self) -> str:  # never show the seed
        return f"MlKemKeyPair(public_key=<{len(self.public_key)} bytes>)"


def mlkem_generate() -> MlKemKeyPair:
    """A fresh ML-KEM-768 key pair from the operating system's CSPRNG (FIPS 203 Alg. 19)."""
    private = mlkem.MLKEM768PrivateKey.generate()
    return MlKemKeyPair(
        seed=private.private_bytes_raw(), public_key=private.public_key().public_bytes_raw()
    )


def mlkem_keypair_from_seed(seed: bytes) -> MlKemKeyPair:
    """The ML-KEM-768 key pair of a 64-byte seed d || z (FIPS 203 Alg. 16, deterministic)."""
    if len(seed) != MLKEM_SEED_BYTES:
        raise DataFormatError(f"an ML-KEM seed is {MLKEM_SEED_BYTES} bytes, got {len(seed)}")
    private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    return MlKemKeyPair(seed=seed, public_key=private.public_key().public_bytes_raw())


def mlkem_encapsulate(public_key: bytes) -> tuple[bytes, bytes]:
    """Encapsulate to an ML-KEM-768 public key: ``(shared_secret, ciphertext)`` (Alg. 20).

    The public key is checked (length and the modulus check of FIPS 203 §7.2); a bad one raises
    :class:`DataFormatError`.
    """
    try:
        ek = mlkem.MLKEM768PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise DataFormatError(f"invalid ML-KEM-768 public key: {exc}") from exc
    shared, ciphertext = ek.encapsulate()
    return shared, ciphertext


def mlkem_decapsulate(seed: bytes, ciphertext: bytes) -> bytes:
    """Decapsulate with the key pair of ``seed``: the 32-byte shared secret (FIPS 203 Alg. 21).

    An invalid ciphertext of the right length yields the implicit-rejection secret (a value the
    sender does not know), not an error; the transport then fails authentication.
    """
    if len(ciphertext) != MLKEM768_CT_BYTES:
        raise DataFormatError(
            f"an ML-KEM-768 ciphertext is {MLKEM768_CT_BYTES} bytes, got {len(ciphertext)}"
        )
    private = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed)
    return private.decapsulate(ciphertext)


@dataclass(frozen=True)
class X25519KeyPair:
    """An X25519 key pair (RFC 7748): ``private_key`` (32 bytes; secret) and ``public_key`` (32)."""

    private_key: bytes
    public_key: bytes

    def __repr__(self) -> str:  # never show the private key
        return f"X25519KeyPair(public_key={self.public_key.hex()})"


def x25519_generate() -> X25519KeyPair:
    """A fresh X25519 key pair from the operating system's CSPRNG."""
    private = x25519.X25519PrivateKey.generate()
    return X25519KeyPair(private.private_bytes_raw(), private.public_key().public_bytes_raw())


def x25519_shared(private_key: bytes, peer_public_key: bytes) -> bytes:
    """X25519(k, u) of RFC 7748 §5 (32 bytes); an all-zero result raises DataFormatError.

    >>> a, b = x25519_generate(), x25519_generate()
    >>> x25519_shared(a.private_key, b.public_key) == x25519_shared(b.private_key, a.public_key)
    True
    """
    if len(private_key) != X25519_BYTES or len(peer_public_key) != X25519_BYTES:
        raise DataFormatError(f"X25519 keys are {X25519_BYTES} bytes")
    try:
        return x25519.X25519PrivateKey.from_private_bytes(private_key).exchange(
            x25519.X25519PublicKey.from_public_bytes(peer_public_key)
        )
    except ValueError as exc:  # OpenSSL refuses the all-zero shared secret (RFC 7748 §6.1)
        raise DataFormatError(f"invalid X25519 public key (small order?): {exc}") from exc
