"""Two real KMEs on loopback for tests, demos and benchmarks (development certificates).

:class:`DevKmePair` makes a CA and certificates in a folder, opens a store per KME (SQLite
files there by default, or given URLs), fills both with the same random key material (NOT
QKD key: for development only), and serves both KMEs over mTLS on free loopback ports.

Example::

    with DevKmePair(tmp_path, fill_bits=1 << 20) as kmes:
        with kmes.client("SAE_A") as alice, kmes.client("SAE_B") as bob:
            keys = alice.get_keys("SAE_B", number=2)
            assert bob.get_keys_with_ids("SAE_A", [k.key_id for k in keys]) == keys
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cvqkd.kms.api import KmeServer, server_ssl_context
from cvqkd.kms.certs import CertPaths, make_dev_pki
from cvqkd.kms.client import Etsi014Client, KmePeerClient
from cvqkd.kms.service import KmeService, KmeSettings
from cvqkd.kms.store import KeyStore, LinkId, open_store

__all__ = ["DEFAULT_SAES", "DevKmePair", "fill_link"]

#: SAE ID -> KME ID used by default: two SAEs at each site.
DEFAULT_SAES: Mapping[str, str] = {
    "SAE_A": "KME_A",
    "SAE_A2": "KME_A",
    "SAE_B": "KME_B",
    "SAE_B2": "KME_B",
}


def fill_link(stores: list[KeyStore], link: LinkId, *, bits: int, block_bytes: int = 4096) -> int:
    """Put the same random material (``os.urandom``; development only) into every store."""
    n_bytes = bits // 8
    blocks = [
        (uuid.uuid4(), os.urandom(min(block_bytes, n_bytes - i)))
        for i in range(0, n_bytes, block_bytes)
    ]
    added = 0
    for store in stores:
        added = store.add_keys(link, blocks)
    return added


@dataclass
class _Kme:
    kme_id: str
    store: KeyStore
    server: KmeServer
    url: str


class DevKmePair:
    """KME_A and KME_B serving ETSI 014 on loopback, sharing random key material."""

    def __init__(
        self,
        workdir: str | Path,
        *,
        saes: Mapping[str, str] = DEFAULT_SAES,
        store_urls: Mapping[str, str] | None = None,
        fill_bits: int = 1 << 20,
        settings: Mapping[str, Any] | None = None,
        sqlite_synchronous: str = "FULL",
    ) -> None:
        self.workdir = Path(workdir)
        self.saes = dict(saes)
        self.kme_ids = ("KME_A", "KME_B")
        self.store_urls = dict(
            store_urls or {k: str(self.workdir / f"{k}.sqlite") for k in self.kme_ids}
        )
        self.fill_bits = fill_bits
        self.settings_overrides = dict(settings or {})
        self.sqlite_synchronous = sqlite_synchronous
        self.certs: dict[str, CertPaths] = {}
        self.kmes: dict[str, _Kme] = {}

    def __enter__(self) -> DevKmePair:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ca_file(self) -> Path:
        """The development CA certificate."""
        return self.certs["ca"].cert_file

    def url(self, kme_id: str) -> str:
        """Base URL of a KME."""
        return self.kmes[kme_id].url

    def store(self, kme_id: str) -> KeyStore:
        """The store of a KME."""
        return self.kmes[kme_id].store

    def service(self, kme_id: str) -> KmeService:
        """The service of a KME."""
        return self.kmes[kme_id].server.service

    def start(self) -> None:
        """Make certificates, open and fill the stores, start both servers."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.certs = make_dev_pki(
            self.workdir / "certs", sae_ids=list(self.saes), kme_ids=list(self.kme_ids)
        )
        stores: dict[str, KeyStore] = {}
        for k in self.kme_ids:
            url = self.store_urls[k]
            opts: dict[str, Any] = {}
            if "://" not in url:
                opts["synchronous"] = self.sqlite_synchronous
            stores[k] = open_store(url, **opts)
        if self.fill_bits:
            for link in (LinkId("KME_A", "KME_B"), LinkId("KME_B", "KME_A")):
                fill_link(list(stores.values()), link, bits=self.fill_bits)
            for k in self.kme_ids:
                fill_link([stores[k]], LinkId(k, k), bits=self.fill_bits)
        for k in self.kme_ids:
            peer = "KME_B" if k == "KME_A" else "KME_A"
            base = KmeSettings(kme_id=k, sae_kme=self.saes, peers=frozenset({peer}))
            settings = replace(base, **self.settings_overrides)
            ctx = server_ssl_context(
                cert_file=self.certs[k].cert_file,
                key_file=self.certs[k].key_file,
                ca_file=self.ca_file,
            )
            server = KmeServer(
                KmeService(settings, stores[k]), host="127.0.0.1", port=0, ssl_context=ctx
            )
            self.kmes[k] = _Kme(k, stores[k], server, f"https://127.0.0.1:{server.port}")
        for k, kme in self.kmes.items():
            peer = "KME_B" if k == "KME_A" else "KME_A"
            kme.server.service.peers = KmePeerClient(
                {peer: self.kmes[peer].url},
                cert_file=self.certs[k].cert_file,
                key_file=self.certs[k].key_file,
                ca_file=self.ca_file,
            )
            kme.server.start()

    def client(self, sae_id: str, *, kme_id: str | None = None) -> Etsi014Client:
        """An ETSI 014 client for ``sae_id`` at its KME (or at ``kme_id``)."""
        kme = kme_id or self.saes[sae_id]
        return Etsi014Client(
            self.kmes[kme].url,
            cert_file=self.certs[sae_id].cert_file,
            key_file=self.certs[sae_id].key_file,
            ca_file=self.ca_file,
        )

    def stop(self) -> None:
        """Stop both servers and close the stores."""
        for kme in self.kmes.values():
            kme.server.stop()
            kme.server.service.close()
            peers = kme.server.service.peers
            if isinstance(peers, KmePeerClient):
                peers.close()
        for kme in self.kmes.values():
            kme.store.close()
        self.kmes.clear()
