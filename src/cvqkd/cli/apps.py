"""``cvqkd send`` / ``cvqkd receive``: a file or stdin/stdout stream, AES-256-GCM encrypted
with keys from two ETSI GS QKD 014 KMEs (master SAE at the sender, slave SAE at the receiver),
rekeyed every N seconds (also when idle) or bytes, optionally hybrid with ML-KEM-768 (and
X25519). Both ends sign the handshake with their SAE certificates (the ones for mTLS to the KME)
and check that the peer's chains to ``--ca`` and names the expected peer SAE ID."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cvqkd.errors import ConfigError

if TYPE_CHECKING:
    from cvqkd.apps.transport import TransferReport, TransportConfig

_KME = "KME (ETSI GS QKD 014)"
KmeUrl = Annotated[str, typer.Option("--kme-url", help=f"Base URL of this end's {_KME}.")]
Cert = Annotated[
    Path,
    typer.Option("--cert", help="This SAE's certificate (PEM, CN = SAE ID): KME mTLS, handshake."),
]
Key = Annotated[Path, typer.Option("--key", help="This SAE's private key (PEM).")]
Ca = Annotated[
    Path, typer.Option("--ca", help="CA certificate of the KME and of the peer SAE (PEM).")
]
Mode = Annotated[
    str, typer.Option("--mode", help="hybrid (QKD key + ML-KEM-768 per epoch) or qkd (QKD only).")
]
Hybrid = Annotated[
    str,
    typer.Option("--hybrid", help="Inputs of a hybrid epoch key: qkd+mlkem or qkd+mlkem+x25519."),
]
Policy = Annotated[
    str,
    typer.Option("--policy", help="When the KME runs dry: wait, keep, or pqc-only (ML-KEM only)."),
]
WaitTimeout = Annotated[
    float, typer.Option("--wait-timeout", min=0.0, help="Seconds to wait for a dry KME.")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")]


def _host_port(value: str, flag: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{flag} must be HOST:PORT, got {value!r}")
    return host, int(port)


def _check_files(**paths: Path) -> None:
    for flag, path in paths.items():
        if not path.is_file():
            raise ConfigError(f"--{flag} file not found: {path}")


def _config(
    *,
    mode: str,
    hybrid: str = "qkd+mlkem",
    policy: str,
    wait_timeout: float,
    rekey_seconds: float | None = 1.0,
    rekey_bytes: int | None = None,
    record_bytes: int = 1 << 20,
    key_fetch_timeout: float = 5.0,
) -> TransportConfig:
    from cvqkd.apps.policy import PolicyConfig
    from cvqkd.apps.transport import TransportConfig

    return TransportConfig(
        mode=mode,  # type: ignore[arg-type]
        hybrid=hybrid,  # type: ignore[arg-type]
        rekey_seconds=rekey_seconds if rekey_seconds and rekey_seconds > 0 else None,
        rekey_bytes=rekey_bytes if rekey_bytes and rekey_bytes > 0 else None,
        record_bytes=record_bytes,
        policy=PolicyConfig(policy=policy, wait_timeout_s=wait_timeout),
        key_fetch_timeout_s=key_fetch_timeout,
    )


def _auth(*, cert: Path, key: Path, ca: Path, peer: str) -> Any:
    from cvqkd.apps.handshake import PeerAuth

    return PeerAuth.from_files(cert_file=cert, key_file=key, ca_file=ca, peer_sae_id=peer)


def _print_report(report: TransferReport, *, json_out: bool, to_stderr: bool) -> None:
    from cvqkd.cli.output import print_json, print_table

    if json_out:
        if to_stderr:
            import json

            from cvqkd.cli.output import to_jsonable

            sys.stderr.write(json.dumps(to_jsonable(report)) + "\n")
        else:
            print_json(report)
        return
    rows: list[tuple[str, Any]] = [
        ("plaintext bytes", report.plaintext_bytes),
        ("records", report.data_records),
        ("key epochs", report.epochs),
        ("QKD keys used", report.qkd_keys_used),
        ("seconds", report.seconds),
        ("throughput (Mbit/s)", report.throughput_bps / 1e6),
        ("KME dry events", report.metrics["kme_dry_events"]),
        ("keep extensions", report.metrics["keep_extensions"]),
        ("ML-KEM-only epochs", report.metrics["pqc_only_epochs"]),
        ("idle rekeys", report.metrics["idle_rekeys"]),
        ("hybrid inputs", report.hybrid),
        ("handshake authenticated by", report.peer_auth),
    ]
    if to_stderr:
        for name, value in rows:
            sys.stderr.write(f"{name}: {value}\n")
    else:
        print_table(f"cvqkd {report.role}", ["quantity", "value"], rows)


@contextmanager
def _progress(total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar on stderr when it is a terminal (never in CI or pipes)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    from cvqkd.cli.output import error_console

    with Progress(console=error_console, transient=True) as progress:
        task = progress.add_task("sending", total=total)
        yield lambda n: progress.advance(task, n)


def send(
    to: Annotated[str, typer.Option("--to", help="Receiver address HOST:PORT.")],
    kme_url: KmeUrl,
    cert: Cert,
    key: Key,
    ca: Ca,
    slave_sae_id: Annotated[
        str, typer.Option("--slave-sae-id", help="The receiver's SAE ID (key requests name it).")
    ],
    infile: Annotated[
        str, typer.Option("--in", help="File to send, or - for standard input.")
    ] = "-",
    mode: Mode = "hybrid",
    hybrid: Hybrid = "qkd+mlkem",
    rekey_seconds: Annotated[
        float,
        typer.Option(
            "--rekey-seconds", help="New key after this many seconds, also when idle (0: off)."
        ),
    ] = 1.0,
    rekey_bytes: Annotated[
        int, typer.Option("--rekey-bytes", min=0, help="New key after this many bytes (0: off).")
    ] = 0,
    policy: Policy = "wait",
    wait_timeout: WaitTimeout = 30.0,
    record_bytes: Annotated[
        int, typer.Option("--record-bytes", min=1, help="Plaintext bytes per record.")
    ] = 1 << 20,
    json_out: JsonOut = False,
) -> None:
    """Encrypt a file or stdin to a `cvqkd receive` peer with keys from the master SAE's KME."""
    import socket

    from cvqkd.apps.keysource import Etsi014MasterSource
    from cvqkd.apps.transport import send_stream

    host, port = _host_port(to, "--to")
    _check_files(cert=cert, key=key, ca=ca)
    cfg = _config(
        mode=mode,
        hybrid=hybrid,
        policy=policy,
        wait_timeout=wait_timeout,
        rekey_seconds=rekey_seconds,
        rekey_bytes=rekey_bytes,
        record_bytes=record_bytes,
    )
    if infile != "-" and not Path(infile).is_file():
        raise ConfigError(f"--in file not found: {infile}")
    auth = _auth(cert=cert, key=key, ca=ca, peer=slave_sae_id)
    source = Etsi014MasterSource.connect(
        kme_url,
        slave_sae_id=slave_sae_id,
        cert_file=str(cert),
        key_file=str(key),
        ca_file=str(ca),
        size_bits=256,
    )
    try:
        sock = socket.create_connection((host, port), timeout=30.0)
    except OSError as exc:
        raise ConfigError(f"cannot connect to receiver {to}: {exc}") from None
    stream = sys.stdin.buffer if infile == "-" else open(infile, "rb")
    try:
        with sock, _progress(None if infile == "-" else Path(infile).stat().st_size) as advance:
            sock.settimeout(None)
            report = send_stream(
                sock, stream, key_source=source, config=cfg, auth=auth, on_progress=advance
            )
    finally:
        if infile != "-":
            stream.close()
    _print_report(report, json_out=json_out, to_stderr=False)


def receive(
    listen: Annotated[
        str, typer.Option("--listen", help="HOST:PORT to listen on (port 0: any free port).")
    ],
    kme_url: KmeUrl,
    cert: Cert,
    key: Key,
    ca: Ca,
    master_sae_id: Annotated[
        str, typer.Option("--master-sae-id", help="The sender's SAE ID (dec_keys names it).")
    ],
    out: Annotated[
        str, typer.Option("--out", help="File to write, or - for standard output.")
    ] = "-",
    mode: Mode = "hybrid",
    hybrid: Hybrid = "qkd+mlkem",
    policy: Policy = "wait",
    key_fetch_timeout: Annotated[
        float, typer.Option("--key-fetch-timeout", min=0.0, help="Seconds to retry a key ID.")
    ] = 5.0,
    json_out: JsonOut = False,
) -> None:
    """Accept one `cvqkd send` stream, verify and decrypt it with keys from the slave's KME.

    With --out FILE the data goes to FILE.part, renamed to FILE only once the whole stream is
    authenticated (deleted otherwise). The address is announced on stderr
    ("listening on HOST:PORT").
    """
    import os
    import socket

    from cvqkd.apps.keysource import Etsi014SlaveSource
    from cvqkd.apps.transport import receive_stream

    host, port = _host_port(listen, "--listen")
    _check_files(cert=cert, key=key, ca=ca)
    cfg = _config(
        mode=mode,
        hybrid=hybrid,
        policy=policy,
        wait_timeout=0.0,
        key_fetch_timeout=key_fetch_timeout,
    )
    auth = _auth(cert=cert, key=key, ca=ca, peer=master_sae_id)
    source = Etsi014SlaveSource.connect(
        kme_url,
        master_sae_id=master_sae_id,
        cert_file=str(cert),
        key_file=str(key),
        ca_file=str(ca),
    )
    try:
        server = socket.create_server((host, port))
    except OSError as exc:
        raise ConfigError(f"cannot listen on {listen}: {exc}") from None
    with server:
        bound_host, bound_port = server.getsockname()[:2]
        sys.stderr.write(f"cvqkd receive: listening on {bound_host}:{bound_port}\n")
        sys.stderr.flush()
        conn, _addr = server.accept()
    part = Path(out + ".part") if out != "-" else None
    sink = sys.stdout.buffer if part is None else open(part, "wb")
    ok = False
    try:
        with conn:
            report = receive_stream(conn, sink, key_source=source, config=cfg, auth=auth)
        ok = True
    finally:
        if part is not None:
            sink.close()
            if ok:
                os.replace(part, out)
            else:
                part.unlink(missing_ok=True)
    _print_report(report, json_out=json_out, to_stderr=part is None)


def register(app: typer.Typer) -> None:
    """Add ``send`` and ``receive`` to the ``cvqkd`` application."""
    app.command("send")(send)
    app.command("receive")(receive)
