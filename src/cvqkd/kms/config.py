"""kme.toml: the configuration of one KME (pydantic, unknown keys rejected by name).

Example (paths are relative to the file)::

    schema_version = 1
    kme_id = "KME_A"

    [listen]
    host = "127.0.0.1"
    port = 8443

    [tls]
    cert_file = "certs/KME_A.pem"
    key_file = "certs/KME_A.key"
    ca_file = "certs/ca.pem"

    [store]
    url = "kme_a.sqlite"          # or "postgresql://user@127.0.0.1:5432/kme_a"

    [keys]                        # all optional
    key_size_bits = 256
    max_keys_per_request = 128

    [saes]                        # SAE ID -> the KME it is attached to
    SAE_A = "KME_A"
    SAE_B = "KME_B"

    [peers.KME_B]
    url = "https://127.0.0.1:8444"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cvqkd.errors import ConfigError
from cvqkd.kms.service import KmeSettings

__all__ = ["KmeConfig", "load_config"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListenConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8443, ge=0, le=65535)


class TlsConfig(_Section):
    cert_file: Path
    key_file: Path
    ca_file: Path


class StoreConfig(_Section):
    url: str = "kme.sqlite"
    chunk_bits: int = Field(default=256, gt=0, multiple_of=8)
    sqlite_synchronous: str = Field(default="FULL", pattern="^(FULL|NORMAL|EXTRA)$")
    #: PostgreSQL connections per KME process (requests beyond it wait for a free one).
    postgres_pool_size: int = Field(default=8, ge=1, le=256)


class KeysConfig(_Section):
    key_size_bits: int = Field(default=256, gt=0, multiple_of=8)
    min_key_size_bits: int = Field(default=64, gt=0, multiple_of=8)
    max_key_size_bits: int = Field(default=8192, gt=0, multiple_of=8)
    max_keys_per_request: int = Field(default=128, ge=1, le=10_000)
    max_key_count: int = Field(default=100_000, ge=1)
    max_sae_id_count: int = Field(default=4, ge=0, le=64)
    key_lifetime_s: float = Field(default=86_400.0, gt=0)


class PeerConfig(_Section):
    url: str = Field(pattern=r"^https://")
    timeout_s: float = Field(default=10.0, gt=0)


class KmeConfig(_Section):
    """The whole kme.toml."""

    schema_version: int = 1
    kme_id: str = Field(min_length=1, max_length=64)
    listen: ListenConfig = ListenConfig()
    tls: TlsConfig
    store: StoreConfig = StoreConfig()
    keys: KeysConfig = KeysConfig()
    saes: dict[str, str] = Field(default_factory=dict)
    peers: dict[str, PeerConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> KmeConfig:
        if self.schema_version != 1:
            raise ValueError(f"schema_version {self.schema_version} is not supported (1 is)")
        if self.kme_id in self.peers:
            raise ValueError("a KME cannot be its own peer")
        for sae, kme in self.saes.items():
            if sae == self.kme_id or sae in self.peers:
                raise ValueError(f"SAE ID {sae!r} is also a KME ID (identities are CNs)")
            if kme != self.kme_id and kme not in self.peers:
                raise ValueError(f"SAE {sae!r} is attached to {kme!r}, which is not a peer")
        k = self.keys
        if not k.min_key_size_bits <= k.key_size_bits <= k.max_key_size_bits:
            raise ValueError("keys: need min_key_size_bits <= key_size_bits <= max_key_size_bits")
        return self

    def settings(self) -> KmeSettings:
        """The service settings this configuration describes."""
        k = self.keys
        return KmeSettings(
            kme_id=self.kme_id,
            sae_kme=dict(self.saes),
            key_size_bits=k.key_size_bits,
            min_key_size_bits=k.min_key_size_bits,
            max_key_size_bits=k.max_key_size_bits,
            max_keys_per_request=k.max_keys_per_request,
            max_key_count=k.max_key_count,
            max_sae_id_count=k.max_sae_id_count,
            key_lifetime_s=k.key_lifetime_s,
            stale_reservation_s=max(60.0, *(3 * p.timeout_s for p in self.peers.values()), 0.0),
            peers=frozenset(self.peers),
        )


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    # An unknown key (a typo) usually explains the "missing" ones: report it first.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    where = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"unknown key {where!r}"
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def load_config(path: str | Path) -> KmeConfig:
    """Read kme.toml; relative TLS and SQLite paths are resolved against its folder.

    Raises :class:`ConfigError` with one line naming what is wrong.
    """
    p = Path(path)
    try:
        data: dict[str, Any] = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    try:
        cfg = KmeConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{p}: {_first_error(exc)}") from None
    base = p.resolve().parent
    tls = cfg.tls.model_copy(
        update={f: base / getattr(cfg.tls, f) for f in ("cert_file", "key_file", "ca_file")}
    )
    for f in ("cert_file", "key_file", "ca_file"):
        if not getattr(tls, f).is_file():
            raise ConfigError(f"{p}: tls.{f} {getattr(tls, f)} does not exist")
    store = cfg.store
    if "://" not in store.url and store.url != ":memory:":
        store = store.model_copy(update={"url": str(base / store.url)})
    return cfg.model_copy(update={"tls": tls, "store": store})
