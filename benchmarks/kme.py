"""KME throughput: ETSI 014 enc_keys requests/s and keys/s over mutual TLS on loopback.

Starts two real KMEs (``cvqkd kme serve``, one process each, SQLite or PostgreSQL stores
filled with the same development key material), then drives enc_keys at KME_A from C client
threads, each with its own persistent HTTPS connection, for a fixed time. Every request
includes the KME-to-KME reservation at KME_B (the two-KME path). Reports requests/s,
keys/s, p50/p99 latency, the KME processes' CPU time per request, and, for the 32-client
run, the duplicates (must be 0) and whether KME_B hands the slave exactly the same bytes
for every key ID.

    .venv/bin/python benchmarks/kme.py                    # SQLite; PostgreSQL too if
    CVQKD_TEST_POSTGRES_URL=postgresql://... .venv/bin/python benchmarks/kme.py

``CVQKD_BENCH_POSTGRES_URL_B`` puts KME_B's store on another PostgreSQL server (as two sites
would have); by default both stores share one server, hence one WAL, whose fsyncs then
serialise the two KMEs' commits.

Prints the machine (platform, CPU, cores) and the git commit.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cvqkd.errors import KeyStoreError
from cvqkd.kms.certs import make_dev_pki
from cvqkd.kms.client import Etsi014Client, Key
from cvqkd.kms.store import LinkId, open_store
from cvqkd.kms.testing import fill_link

SAES = {"SAE_A": "KME_A", "SAE_B": "KME_B"}


def _machine() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    py = platform.python_version()
    return f"{platform.platform()}; {cpu}; {os.cpu_count()} logical CPUs; Python {py}"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src/cvqkd/kms"], capture_output=True, text=True
        ).stdout.strip()
        return out + ("+dirty(kms)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc), NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Kmes:
    """Two ``cvqkd kme serve`` processes sharing filled stores."""

    def __init__(self, work: Path, store_urls: dict[str, str], fill_bits: int, sync: str) -> None:
        self.work = work
        self.certs = make_dev_pki(work / "certs", sae_ids=list(SAES), kme_ids=["KME_A", "KME_B"])
        self.ports = {"KME_A": _free_port(), "KME_B": _free_port()}
        stores = [open_store(store_urls[k]) for k in ("KME_A", "KME_B")]
        fill_link(stores, LinkId("KME_A", "KME_B"), bits=fill_bits, block_bytes=1 << 16)
        for s in stores:
            s.close()
        self.procs: list[subprocess.Popen[bytes]] = []
        for kme, peer in (("KME_B", "KME_A"), ("KME_A", "KME_B")):
            cfg = work / f"{kme}.toml"
            cfg.write_text(
                textwrap.dedent(
                    f"""
                    kme_id = "{kme}"
                    [listen]
                    port = {self.ports[kme]}
                    [tls]
                    cert_file = "certs/{kme}.pem"
                    key_file = "certs/{kme}.key"
                    ca_file = "certs/ca.pem"
                    [store]
                    url = "{store_urls[kme]}"
                    sqlite_synchronous = "{sync}"
                    [keys]
                    max_key_count = 10000000
                    [saes]
                    SAE_A = "KME_A"
                    SAE_B = "KME_B"
                    [peers.{peer}]
                    url = "https://127.0.0.1:{self.ports[peer]}"
                    """
                )
            )
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cvqkd", "kme", "serve", "--config", str(cfg)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports.values():
            deadline = time.monotonic() + 30
            while True:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("KME did not start")
                time.sleep(0.05)

    def client(self, sae: str) -> Etsi014Client:
        return Etsi014Client(
            f"https://127.0.0.1:{self.ports[SAES[sae]]}",
            cert_file=self.certs[sae].cert_file,
            key_file=self.certs[sae].key_file,
            ca_file=self.certs["ca"].cert_file,
        )

    def close(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def drive(kmes: Kmes, *, clients: int, seconds: float, number: int) -> dict[str, Any]:
    """C threads calling enc_keys for ``seconds``; returns throughput, latency, keys."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    got: list[list[Key]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start_barrier = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def work(i: int) -> None:
        c = kmes.client("SAE_A")
        c.status("SAE_B")  # handshake before timing
        start_barrier.wait()
        while time.perf_counter() < stop_at[0]:
            t0 = time.perf_counter()
            try:
                keys = c.get_keys("SAE_B", number=number)
            except KeyStoreError:
                errors[i] += 1
                continue
            lat[i].append(time.perf_counter() - t0)
            got[i].extend(keys)
        c.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + 3600
    start_barrier.wait()
    cpu0 = sum(_cpu_s(p.pid) for p in kmes.procs)
    t_start = time.perf_counter()
    stop_at[0] = t_start + seconds
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    cpu = sum(_cpu_s(p.pid) for p in kmes.procs) - cpu0
    all_lat = sorted(x for row in lat for x in row)
    keys = [k for row in got for k in row]
    n = len(all_lat)

    def pct(q: float) -> float:
        return all_lat[min(n - 1, int(q * n))] * 1e3 if n else float("nan")

    return {
        "requests_per_s": n / elapsed,
        "keys_per_s": len(keys) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "errors": sum(errors),
        "kme_cpu_ms_per_request": 1e3 * cpu / max(n, 1),
        "keys": keys,
    }


def check_keys(kmes: Kmes, keys: list[Key]) -> tuple[int, int]:
    """(duplicates, mismatches at the slave's KME) over ``keys``."""
    dup = (len(keys) - len({k.key_id for k in keys})) + (len(keys) - len({k.key for k in keys}))
    mismatch = 0
    with kmes.client("SAE_B") as bob:
        for s in range(0, len(keys), 128):
            batch = keys[s : s + 128]
            got = bob.get_keys_with_ids("SAE_A", [k.key_id for k in batch])
            mismatch += sum(a != b for a, b in zip(batch, got, strict=True))
    return dup, mismatch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--number", type=int, default=1, help="keys per enc_keys request")
    ap.add_argument("--backends", default="sqlite,sqlite-normal,postgres")
    args = ap.parse_args()
    pg = os.environ.get("CVQKD_TEST_POSTGRES_URL")
    pg_b = os.environ.get("CVQKD_BENCH_POSTGRES_URL_B") or pg
    pg_of = {"KME_A": pg, "KME_B": pg_b}
    print(f"machine: {_machine()}")
    print(f"commit:  {_commit()}")
    print(f"enc_keys, {args.number} key(s) of 256 bits per request, {args.seconds:.0f} s per row,")
    print("two KMEs (one process each) + load generator on this machine, mTLS, keep-alive")
    print(
        f"{'store':<22}{'clients':>8}{'req/s':>10}{'keys/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'dup':>6}{'mismatch':>10}{'KME cpu ms/req':>16}"
    )
    for backend in args.backends.split(","):
        if backend == "postgres" and not pg:
            print(f"{'postgres':<22}  skipped (CVQKD_TEST_POSTGRES_URL not set)")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            if backend.startswith("sqlite"):
                urls = {k: str(work / f"{k}.sqlite") for k in ("KME_A", "KME_B")}
            else:
                import psycopg

                urls = {}
                for k in ("KME_A", "KME_B"):
                    schema = f"kme_bench_{k.lower()}_{uuid.uuid4().hex[:6]}"
                    with psycopg.connect(pg_of[k], autocommit=True) as conn:
                        conn.execute(f"CREATE SCHEMA {schema}")
                    sep = "&" if "?" in (pg_of[k] or "") else "?"
                    urls[k] = f"{pg_of[k]}{sep}options=-csearch_path%3D{schema}"
            sync = "NORMAL" if backend == "sqlite-normal" else "FULL"
            kmes = Kmes(work, urls, fill_bits=256 * 400_000, sync=sync)
            label = {
                "sqlite": "SQLite (sync=FULL)",
                "sqlite-normal": "SQLite (sync=NORMAL)",
                "postgres": "PostgreSQL" + (" (2 servers)" if pg_b != pg else ""),
            }
            try:
                for c in (int(x) for x in args.clients.split(",")):
                    r = drive(kmes, clients=c, seconds=args.seconds, number=args.number)
                    dup, mismatch = check_keys(kmes, r["keys"]) if c == 32 else ("-", "-")
                    print(
                        f"{label.get(backend, 'PostgreSQL'):<22}{c:>8}{r['requests_per_s']:>10.0f}"
                        f"{r['keys_per_s']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
                        f"{r['errors']:>8}{dup!s:>6}{mismatch!s:>10}"
                        f"{r['kme_cpu_ms_per_request']:>16.2f}",
                        flush=True,
                    )
            finally:
                kmes.close()
                if not backend.startswith("sqlite"):
                    import psycopg

                    for k, u in urls.items():
                        with psycopg.connect(pg_of[k], autocommit=True) as conn:
                            conn.execute(f"DROP SCHEMA IF EXISTS {u.rsplit('%3D', 1)[1]} CASCADE")


if __name__ == "__main__":
    main()
