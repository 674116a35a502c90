"""Hybrid key derivation (QKD key + ML-KEM-768 [+ X25519] through HKDF-SHA-256), ML-KEM-768, X25519.

- HKDF: RFC 5869 Appendix A vectors, for the project's HKDF and for ``cryptography``'s.
- Derivation: tests/data/apps_hybrid_vectors.json, recomputed here by two independent
  implementations of the documented construction (``struct`` packing; ``cryptography``'s HKDF,
  and HKDF written out with ``hmac``/``hashlib``), with and without the X25519 input.
- X25519: RFC 7748 §5.2 and §6.1 vectors (tests/data/rfc7748_x25519.json) for the library used.
- ML-KEM-768: Wycheproof known-answer test (keygen from seed, decapsulation), an invalid public
  key, and FIPS 203 identities computed with hashlib (rho = SHA3-512(d || k)[:32]; implicit
  rejection K = SHAKE256(z || c, 32)).
All comparisons are exact: these are deterministic byte functions.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cvqkd.apps import hybrid
from cvqkd.errors import ConfigError, DataFormatError
from tests.conftest import load_reference

RFC5869 = load_reference("rfc5869_hkdf_sha256.json")["cases"]
RFC7748 = load_reference("rfc7748_x25519.json")
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
    x25519_secret: bytes | None = None,
    x25519_publics: bytes | None = None,
) -> bytes:
    """The construction of docs/apps.md written out independently, HKDF computed twice.

    Once with ``cryptography``'s HKDF, once as RFC 5869 §2.2-2.3 with ``hmac``/``hashlib``;
    the two must agree (they are both checked against RFC 5869 Appendix A above).
    """

    def lp(b: bytes) -> bytes:
        return struct.pack(">I", len(b)) + b

    mode = (1 if qkd_key else 0) | (2 if mlkem_secret else 0) | (4 if x25519_secret else 0)
    ikm = lp(qkd_key or b"") + lp(mlkem_secret or b"")
    x_info = b""
    if x25519_secret:
        ikm += lp(x25519_secret)
        x_info = lp(hashlib.sha256(x25519_publics or b"").digest())
    info = (
        lp(label)
        + struct.pack(">B", mode)
        + lp((qkd_key_id or "").encode())
        + lp(hashlib.sha256(ek).digest() if ek else b"")
        + lp(hashlib.sha256(ct).digest() if ct else b"")
        + x_info
        + lp(context)
        + struct.pack(">H", length)
    )
    salt = chain if chain else bytes(32)
    via_lib = HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm, counter = okm + block, counter + 1
    assert okm[:length] == via_lib
    return via_lib


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
        x25519_shared_secret=_h(case.get("x25519_secret_hex")),
        x25519_public_keys=_h(case.get("x25519_publics_hex")),
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
        x25519_secret=kwargs["x25519_shared_secret"],  # type: ignore[arg-type]
        x25519_publics=kwargs["x25519_public_keys"],  # type: ignore[arg-type]
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
        x25519_shared_secret=bytes(range(64, 96)),
        x25519_public_keys=bytes(range(96, 160)),
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
        "x25519_shared_secret": bytes(range(65, 97)),
        "x25519_public_keys": bytes(range(97, 161)),
    }
    for name, value in changes.items():
        assert hybrid.derive_hybrid_key(**{**base, name: value}) != k0, name  # type: ignore[arg-type]
    # the length is bound too: a 64-byte output does not start with the 32-byte one
    assert hybrid.derive_hybrid_key(**{**base, "length": 64})[:32] != k0  # type: ignore[arg-type]
    # dropping X25519 changes the mode byte and the IKM
    no_x = {**base, "x25519_shared_secret": None, "x25519_public_keys": None}
    assert hybrid.derive_hybrid_key(**no_x) != k0  # type: ignore[arg-type]


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
    # X25519 is a third input, never the only one (it is not post-quantum)
    with pytest.raises(ConfigError, match="needs a QKD key"):
        hybrid.derive_hybrid_key(
            qkd_key=None, x25519_shared_secret=bytes(32), x25519_public_keys=bytes(64)
        )
    with pytest.raises(DataFormatError, match="X25519"):
        hybrid.derive_hybrid_key(qkd_key=bytes(32), x25519_shared_secret=bytes(32))


# -- X25519 (RFC 7748) ------------------------------------------------------------------------


@pytest.mark.parametrize("case", RFC7748["scalar_mult"], ids=lambda c: c["name"])
def test_x25519_rfc7748_scalar_mult(case: dict) -> None:  # type: ignore[type-arg]
    out = hybrid.x25519_shared(bytes.fromhex(case["scalar_hex"]), bytes.fromhex(case["u_hex"]))
    assert out.hex() == case["out_hex"]


def test_x25519_rfc7748_iterated() -> None:
    # RFC 7748 §5.2: k = u = 9; repeat k, u = X25519(k, u), k
    k = u = bytes([9]) + bytes(31)
    want = {c["iterations"]: c["k_hex"] for c in RFC7748["iterated"]}
    for i in range(1, max(want) + 1):
        k, u = hybrid.x25519_shared(k, u), k
        if i in want:
            assert k.hex() == want[i], i


def test_x25519_rfc7748_diffie_hellman() -> None:
    dh = {k: bytes.fromhex(v) for k, v in RFC7748["diffie_hellman"].items()}
    base = bytes([9]) + bytes(31)
    assert hybrid.x25519_shared(dh["alice_private_hex"], base) == dh["alice_public_hex"]
    assert hybrid.x25519_shared(dh["bob_private_hex"], base) == dh["bob_public_hex"]
    assert hybrid.x25519_shared(dh["alice_private_hex"], dh["bob_public_hex"]) == dh["shared_hex"]
    assert hybrid.x25519_shared(dh["bob_private_hex"], dh["alice_public_hex"]) == dh["shared_hex"]


def test_x25519_refuses_small_order_point() -> None:
    # u = 0 is of small order: the shared secret would be all zeros (RFC 7748 §6.1 check)
    pair = hybrid.x25519_generate()
    with pytest.raises(DataFormatError, match="small order"):
        hybrid.x25519_shared(pair.private_key, bytes(32))
    assert pair.private_key.hex() not in repr(pair)


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
