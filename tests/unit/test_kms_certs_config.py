"""Development certificates (CN, SAN, EKU, chain) and kme.toml loading (one-line errors)."""

from __future__ import annotations

import ipaddress
import stat
import textwrap
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cvqkd.errors import ConfigError
from cvqkd.kms.certs import make_dev_pki
from cvqkd.kms.config import load_config


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("pki")
    return make_dev_pki(out, sae_ids=["SAE_A"], kme_ids=["KME_A"])


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_kme_certificate_is_a_server_and_client_with_loopback_san(pki: dict) -> None:
    ca, kme = _load(pki["ca"].cert_file), _load(pki["KME_A"].cert_file)
    assert kme.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "KME_A"
    san = kme.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    eku = kme.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    kme.verify_directly_issued_by(ca)  # raises if the signature or issuer is wrong


def test_sae_certificate_is_client_only_and_keys_are_private(pki: dict) -> None:
    ca, sae = _load(pki["ca"].cert_file), _load(pki["SAE_A"].cert_file)
    assert sae.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SAE_A"
    eku = sae.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    sae.verify_directly_issued_by(ca)
    assert isinstance(sae.public_key(), ec.EllipticCurvePublicKey)
    for ident in ("ca", "SAE_A", "KME_A"):
        assert stat.S_IMODE(pki[ident].key_file.stat().st_mode) == 0o600
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_bad_identities_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        make_dev_pki(tmp_path, sae_ids=["A"], kme_ids=["A"])
    with pytest.raises(ConfigError):
        make_dev_pki(tmp_path, sae_ids=["bad id/with slash"], kme_ids=[])


GOOD = """
schema_version = 1
kme_id = "KME_A"
[listen]
port = 0
[tls]
cert_file = "pki/KME_A.pem"
key_file = "pki/KME_A.key"
ca_file = "pki/ca.pem"
[store]
url = "a.sqlite"
[keys]
key_size_bits = 512
[saes]
SAE_A = "KME_A"
SAE_B = "KME_B"
[peers.KME_B]
url = "https://127.0.0.1:8444"
"""


@pytest.fixture
def cfg_dir(tmp_path: Path) -> Path:
    make_dev_pki(tmp_path / "pki", sae_ids=["SAE_A"], kme_ids=["KME_A"])
    return tmp_path


def test_config_resolves_paths_against_its_folder(cfg_dir: Path) -> None:
    (cfg_dir / "kme.toml").write_text(GOOD)
    cfg = load_config(cfg_dir / "kme.toml")
    assert cfg.tls.cert_file == cfg_dir.resolve() / "pki/KME_A.pem"
    assert cfg.store.url == str(cfg_dir.resolve() / "a.sqlite")
    s = cfg.settings()
    assert s.key_size_bits == 512 and s.peers == frozenset({"KME_B"})
    assert s.sae_kme == {"SAE_A": "KME_A", "SAE_B": "KME_B"}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("[keys]", "[keys]\nkey_size = 1"), "unknown key 'keys.key_size'"),
        (lambda t: t.replace("key_size_bits = 512", "key_size_bits = 12"), "keys.key_size_bits"),
        (lambda t: t.replace('SAE_B = "KME_B"', 'SAE_B = "KME_Z"'), "not a peer"),
        (lambda t: t.replace("pki/ca.pem", "pki/none.pem"), "tls.ca_file"),
        (lambda t: t.replace("schema_version = 1", "schema_version = 7"), "schema_version"),
        (lambda t: t.replace('kme_id = "KME_A"', 'kme_id = "KME_A'), "invalid TOML"),
        (lambda t: t.replace("https://", "http://"), "peers.KME_B.url"),
        (lambda t: t.replace('SAE_A = "KME_A"', 'KME_B = "KME_A"'), "also a KME ID"),
        (
            lambda t: t.replace('url = "a.sqlite"', 'url = "a.sqlite"\npostgres_pool_size = 0'),
            "store.postgres_pool_size",
        ),
    ],
)
def test_bad_config_is_one_clear_line(cfg_dir: Path, edit: object, message: str) -> None:
    (cfg_dir / "kme.toml").write_text(edit(GOOD))  # type: ignore[operator]
    with pytest.raises(ConfigError) as exc:
        load_config(cfg_dir / "kme.toml")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_example_in_the_docstring_is_valid(cfg_dir: Path) -> None:
    import cvqkd.kms.config as mod

    assert mod.__doc__ is not None
    text = mod.__doc__.split("Example (paths are relative to the file)::", 1)[1]
    text = textwrap.dedent(text).replace("certs/", "pki/")
    (cfg_dir / "kme.toml").write_text(text)
    cfg = load_config(cfg_dir / "kme.toml")
    assert cfg.kme_id == "KME_A" and cfg.listen.port == 8443


def test_the_kme_toml_in_docs_is_valid(tmp_path: Path) -> None:
    import re

    doc = (Path(__file__).parents[2] / "docs" / "kme.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(.*?)```", doc, re.S)
    assert block is not None
    make_dev_pki(tmp_path / "certs", sae_ids=[], kme_ids=["KME_A"])
    (tmp_path / "kme.toml").write_text(block.group(1))
    cfg = load_config(tmp_path / "kme.toml")
    assert cfg.kme_id == "KME_A" and cfg.keys.max_key_count == 100_000
    assert cfg.settings().peers == frozenset({"KME_B"})
