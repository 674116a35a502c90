"""Hybrid key derivation (QKD key + ML-KEM-768 through HKDF-SHA-256) and ML-KEM-768 itself.

- HKDF: RFC 5869 Appendix A vectors, for the project's HKDF and for ``cryptography``'s.
- Derivation: tests/data/apps_hybrid_vectors.json, recomputed here by an independent
  implementation of the documented construction (``cryptography``'s HKDF, ``struct`` packing).
- ML-KEM-768: Wycheproof known-answer test (keygen from seed, decapsulation), an invalid public
  key, and FIPS 203 identities computed with hashlib (rho = SHA3-512(d || k)[:32]; implicit
  rejection K = SHAKE256(z || c, 32)).
All comparisons are exact: these are deterministic byte functions.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cvqkd.apps import hybrid
from cvqkd.errors import ConfigError, DataFormatError
from tests.conftest import load_reference

RFC5869 = load_reference("rfc5869_hkdf_sha256.json")["cases"]
KAT = load_reference("mlkem768_kat.json")
VECTORS = load_reference("apps_hybrid_vectors.json")


def _h(x: str | None) -> bytes | None:
    return None if x is None else bytes.fromhex(x)


def reference_derive(
    *,
    qkd_key: bytes | None,
    qkd_key_id: str | None,
    mlkem_secret: bytes | None,
    ek: bytes | None,
    ct: bytes | None,
    context: bytes,
    chain: bytes | None,
    length: int,
    label: bytes,
) -> bytes:
    """The construction of docs/apps.md written out independently (cryptography's HKDF)."""

    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    mode = (1 if qkd_key else 0) | (2 if mlkem_secret else 0)
    ikm = lp(qkd_key or b"") + lp(mlkem_secret or b"")
    info = (
        lp(label)
        + struct.pack(">B", mode)
        + lp((qkd_key_id or "").encode())
        + lp(hashlib.sha256(ek).digest() if ek else b"")
        + lp(hashlib.sha256(ct).digest() if ct else b"")
        + lp(context)
        + struct.pack(">H", length)
    )
    salt = chain if chain else bytes(32)
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


@pytest.mark.parametrize("case", RFC5869, ids=[c["name"] for c in RFC5869])
def test_hkdf_rfc5869(case: dict) -> None:  # type: ignore[type-arg]
    ikm, salt, info = (bytes.fromhex(case[k]) for k in ("ikm_hex", "salt_hex", "info_hex"))
    assert hybrid.hkdf_extract(salt=salt, ikm=ikm).hex() == case["prk_hex"]
    okm = hybrid.hkdf_sha256(ikm=ikm, salt=salt, info=info, length=case["length"])
    assert okm.hex() == case["okm_hex"]
    ref = HKDF(algorithm=hashes.SHA256(), length=case["length"], salt=salt or None, info=info)
    assert ref.derive(ikm).hex() == case["okm_hex"]


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_derivation_vectors(case: dict) -> None:  # type: ignore[type-arg]
    kwargs = dict(
        qkd_key=_h(case["qkd_key_hex"]),
        qkd_key_id=case["qkd_key_id"],
        mlkem_shared_secret=_h(case["mlkem_secret_hex"]),
        mlkem_public_key=_h(case["ek_hex"]),
        mlkem_ciphertext=_h(case["ct_hex"]),
        context=bytes.fromhex(case["context_hex"]),
        chain_key=_h(case["chain_hex"]),
        length=case["length"],
    )
    got = hybrid.derive_hybrid_key(**kwargs)  # type: ignore[arg-type]
    ref = reference_derive(
        qkd_key=kwargs["qkd_key"],  # type: ignore[arg-type]
        qkd_key_id=case["qkd_key_id"],
        mlkem_secret=kwargs["mlkem_shared_secret"],  # type: ignore[arg-type]
        ek=kwargs["mlkem_public_key"],  # type: ignore[arg-type]
        ct=kwargs["mlkem_ciphertext"],  # type: ignore[arg-type]
        context=kwargs["context"],  # type: ignore[arg-type]
        chain=kwargs["chain_key"],  # type: ignore[arg-type]
        length=case["length"],
        label=VECTORS["label"].encode(),
    )
    assert ref.hex() == case["okm_hex"]  # the stored vector is the documented construction
    assert got.hex() == case["okm_hex"]


def test_every_bound_input_changes_the_key() -> None:
    base = dict(
        qkd_key=bytes(range(32)),
        qkd_key_id="3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        mlkem_shared_secret=bytes(range(32, 64)),
        mlkem_public_key=b"\x01" * 1184,
        mlkem_ciphertext=b"\x02" * 1088,
        context=b"ctx",
        chain_key=None,
        length=32,
    )
    k0 = hybrid.derive_hybrid_key(**base)  # type: ignore[arg-type]
    changes = {
        "qkd_key": bytes(range(1, 33)),
        "qkd_key_id": "3f2504e0-4f89-41d3-9a0c-0305e82c3302",
        "mlkem_shared_secret": bytes(range(33, 65)),
        "mlkem_public_key": b"\x03" * 1184,
        "mlkem_ciphertext": b"\x04" * 1088,
        "context": b"ctY",
        "chain_key": b"\x05" * 32,
    }
    for name, value in changes.items():
        assert hybrid.derive_hybrid_key(**{**base, name: value}) != k0, name  # type: ignore[arg-type]
    # the length is bound too: a 64-byte output does not start with the 32-byte one
    assert hybrid.derive_hybrid_key(**{**base, "length": 64})[:32] != k0  # type: ignore[arg-type]


def test_length_prefix_separates_inputs() -> None:
    # without length prefixes, (a || b, "") and (a, b) would collide; with them they do not
    s = bytes(range(32))
    only_qkd = hybrid.derive_hybrid_key(qkd_key=s + s, mlkem_shared_secret=None)
    assert only_qkd != hybrid.derive_hybrid_key(qkd_key=s, mlkem_shared_secret=s)


def test_needs_a_secret() -> None:
    with pytest.raises(ConfigError, match="needs a QKD key"):
        hybrid.derive_hybrid_key(qkd_key=None, mlkem_shared_secret=None)
    with pytest.raises(DataFormatError):
        hybrid.derive_hybrid_key(qkd_key=bytes(32), mlkem_shared_secret=bytes(31))


# -- ML-KEM-768 -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", KAT["cases"], ids=[c["name"] for c in KAT["cases"]])
def test_mlkem_kat_keygen_and_decaps(case: dict) -> None:  # type: ignore[type-arg]
    seed = bytes.fromhex(case["seed_hex"])
    pair = hybrid.mlkem_keypair_from_seed(seed)
    assert pair.public_key.hex() == case["ek_hex"]
    shared = hybrid.mlkem_decapsulate(seed, bytes.fromhex(case["c_hex"]))
    assert shared.hex() == case["K_hex"]
    if not case["ciphertext_valid"]:
        # FIPS 203 Alg. 18: implicit rejection K = J(z || c) = SHAKE256(z || c, 32)
        j = hashlib.shake_256(seed[32:] + bytes.fromhex(case["c_hex"])).digest(32)
        assert shared == j


@pytest.mark.parametrize("case", KAT["invalid_encapsulation_keys"], ids=lambda c: c["name"])
def test_mlkem_rejects_invalid_public_key(case: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(DataFormatError, match="invalid ML-KEM-768 public key"):
        hybrid.mlkem_encapsulate(bytes.fromhex(case["ek_hex"]))


def test_mlkem_final_standard_rho_identity() -> None:
    # FIPS 203 Alg. 13 line 1: (rho, sigma) = G(d || k), k = 3 for ML-KEM-768; ek ends with rho
    seed = bytes(range(64))
    pair = hybrid.mlkem_keypair_from_seed(seed)
    rho = hashlib.sha3_512(seed[:32] + b"\x03").digest()[:32]
    assert pair.public_key[-32:] == rho
    assert len(pair.public_key) == hybrid.MLKEM768_EK_BYTES


def test_mlkem_round_trip_and_rejection() -> None:
    pair = hybrid.mlkem_generate()
    shared, ct = hybrid.mlkem_encapsulate(pair.public_key)
    assert len(ct) == hybrid.MLKEM768_CT_BYTES
    assert hybrid.mlkem_decapsulate(pair.seed, ct) == shared
    bad = bytes([ct[0] ^ 1]) + ct[1:]
    rejected = hybrid.mlkem_decapsulate(pair.seed, bad)
    assert rejected == hashlib.shake_256(pair.seed[32:] + bad).digest(32)
    assert rejected != shared
    with pytest.raises(DataFormatError):
        hybrid.mlkem_decapsulate(pair.seed, ct[:-1])
    assert pair.seed.hex() not in repr(pair)
