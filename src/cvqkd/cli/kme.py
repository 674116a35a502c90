"""``cvqkd kme``: run a KME (ETSI GS QKD 014 over mTLS), make development certificates,
inspect a key store, and fill stores with development keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cvqkd.errors import ConfigError

kme_app = typer.Typer(
    name="kme",
    help="Key management entity: ETSI GS QKD 014 key delivery over mutual TLS.",
    no_args_is_help=True,
)


@kme_app.command("serve")
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="kme.toml of this KME.")],
) -> None:
    """Start one KME and serve until interrupted (Ctrl-C)."""
    import logging
    import signal
    import sys

    from cvqkd.kms.api import build_server
    from cvqkd.kms.config import load_config

    cfg = load_config(config)
    server = build_server(cfg)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.stderr.write(
        f"KME {cfg.kme_id} serving ETSI GS QKD 014 on https://{cfg.listen.host}:{server.port} "
        f"(store {cfg.store.url.split('@')[-1]})\n"
    )

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)  # SIGTERM stops as cleanly as Ctrl-C
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.service.close()
        server.service.store.close()


@kme_app.command("certs")
def certs(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the PEM files.")],
    sae: Annotated[list[str] | None, typer.Option("--sae", help="An SAE ID (repeat).")] = None,
    kme: Annotated[list[str] | None, typer.Option("--kme", help="A KME ID (repeat).")] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="Validity in days.")] = 365,
    json_out: Annotated[bool, typer.Option("--json", help="Print the file paths as JSON.")] = False,
) -> None:
    """Make a development CA and KME/SAE certificates (CN = the ID; KMEs get SAN 127.0.0.1)."""
    from cvqkd.cli.output import print_json, print_table
    from cvqkd.kms.certs import make_dev_pki

    if not kme and not sae:
        raise ConfigError("give at least one --kme or --sae")
    paths = make_dev_pki(out, sae_ids=sae or [], kme_ids=kme or [], days=days)
    rows = [(ident, str(p.cert_file), str(p.key_file)) for ident, p in paths.items()]
    if json_out:
        print_json({ident: {"cert_file": c, "key_file": k} for ident, c, k in rows})
    else:
        print_table("development certificates", ["identity", "certificate", "key"], rows)


@kme_app.command("status")
def status(
    config: Annotated[Path, typer.Option("--config", "-c", help="kme.toml of the KME.")],
    live: Annotated[
        bool,
        typer.Option("--live", help="Ask the running KME (requests, errors) instead of its store."),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a KME's key store per link (stored, available, delivered, expired chunks);
    with --live, also the running server's requests and errors per call."""
    from cvqkd.cli.output import print_json, print_table
    from cvqkd.kms.config import load_config

    cfg = load_config(config)
    if live:
        from cvqkd.kms.client import fetch_metrics

        host = cfg.listen.host if cfg.listen.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        data = fetch_metrics(
            f"https://{host}:{cfg.listen.port}",
            cert_file=cfg.tls.cert_file,
            key_file=cfg.tls.key_file,
            ca_file=cfg.tls.ca_file,
        )
    else:
        data = _store_metrics(cfg)
    if json_out:
        print_json(data)
        return
    print_table(
        f"key store of {data['kme_id']} (chunks of {data['chunk_bits']} bits)",
        ["link", "stored", "available", "delivered keys", "expired"],
        [
            (
                name,
                m["stored_chunks"],
                m["available_chunks"],
                m["delivered_keys"],
                m["expired_chunks"],
            )
            for name, m in data["links"].items()
        ],
    )
    if "requests" in data:
        calls = sorted(set(data["requests"]) | set(data["errors"]))
        print_table(
            "requests since start",
            ["call", "requests", "errors"],
            [(c, data["requests"].get(c, 0), data["errors"].get(c, 0)) for c in calls],
        )


def _store_metrics(cfg: Any) -> dict[str, Any]:
    from cvqkd.kms.store import open_store

    links = {}
    with open_store(cfg.store.url, chunk_bits=cfg.store.chunk_bits) as store:
        for link in store.links():
            m = store.metrics(link)
            links[f"{link.source_kme_id}->{link.target_kme_id}"] = {
                "stored_chunks": m.stored_chunks,
                "available_chunks": m.available_chunks,
                "delivered_keys": m.delivered_keys,
                "expired_chunks": m.expired_chunks,
            }
        chunk_bits = store.chunk_bits
    return {"kme_id": cfg.kme_id, "chunk_bits": chunk_bits, "links": links}


@kme_app.command("fill-dev")
def fill_dev(
    store_url: Annotated[
        list[str],
        typer.Option("--store", help="Key store (path or postgresql:// URL); repeat per KME."),
    ],
    source: Annotated[str, typer.Option("--source", help="Source KME ID of the link.")],
    target: Annotated[str, typer.Option("--target", help="Target KME ID of the link.")],
    bits: Annotated[int, typer.Option("--bits", min=8, help="Bits of key material to add.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """DEVELOPMENT ONLY: put the same random (not QKD!) key material into every store."""
    import os
    import uuid

    from cvqkd.cli.output import print_json
    from cvqkd.kms.store import LinkId, open_store

    if bits % 8:
        raise ConfigError("--bits must be a multiple of 8")
    block_bytes = 4096
    n_bytes = bits // 8
    blocks = [
        (uuid.uuid4(), os.urandom(min(block_bytes, n_bytes - i)))
        for i in range(0, n_bytes, block_bytes)
    ]
    added = {}
    for url in store_url:
        with open_store(url) as store:
            added[url.split("@")[-1]] = store.add_keys(LinkId(source, target), blocks)
    if json_out:
        print_json({"link": f"{source}->{target}", "chunks_added": added})
    else:
        for url, n in added.items():
            typer.echo(f"{url}: {n} chunks added to {source}->{target}")


def register(app: typer.Typer) -> None:
    """Add ``cvqkd kme ...`` to the application."""
    app.add_typer(kme_app, name="kme")
