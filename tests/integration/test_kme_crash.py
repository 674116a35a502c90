"""Crash safety: a process killed with SIGKILL at an arbitrary moment loses no undelivered key
and never delivers a key twice.

1. Store level: a child process runs the two-KME protocol (reserve at the source, record at
   the target, hand out, fetch) in a loop and prints each hand-out after it returns; the
   parent kills it mid-stream, recovers, lets a second child drain the pool, and checks
   exact identities: no chunk in two keys, every key printed as handed out is never handed
   out again, and every chunk is accounted for (at most the one in-flight answer is lost).
2. Server level: two ``cvqkd kme serve`` processes; the source KME is killed -9 while clients
   take keys, restarted from the same kme.toml, and all keys are fetched at the other KME.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cvqkd.errors import KeyNotFoundError, KeyStoreError
from cvqkd.kms.certs import make_dev_pki
from cvqkd.kms.client import Etsi014Client
from cvqkd.kms.store import LinkId, open_store
from cvqkd.kms.testing import fill_link

LINK = LinkId("KME_A", "KME_B")

CHILD = textwrap.dedent(
    """
    import sys, threading
    from cvqkd.kms.store import LinkId, NotEnoughKeysError, open_store
    src, dst = open_store(sys.argv[1]), open_store(sys.argv[2])
    overlap = sys.argv[3] == "overlap"
    link = LinkId("KME_A", "KME_B")
    print("READY", flush=True)
    to_finish = []
    while True:
        try:
            res = src.reserve(link, number=2, size_bits=384, master_sae_id="M",
                              slave_sae_ids=["S"])
        except NotEnoughKeysError:
            print("EMPTY", flush=True)
            break
        ids = [r.key_id for r, _ in res]
        if overlap:  # what KmeService does: hand-out here while the peer records, then
            # the answer, and the material is erased later (with the next request's commit)
            failed = []
            def record():
                try:
                    dst.accept_reservations([r for r, _ in res])
                except Exception as exc:
                    failed.append(exc)
            peer = threading.Thread(target=record)
            peer.start()
            src.commit_many([], hand_out=ids, finish=to_finish)
            peer.join()
            if failed:  # never in this test: chunks must not be offered twice
                raise failed[0]
            to_finish = ids
        else:
            dst.accept_reservations([r for r, _ in res])
            src.commit_reserved(ids)
        for r, k in res:
            print("ISSUED", r.key_id, ",".join(r.chunk_ids), k.hex(), flush=True)
        for r, _ in res:
            got = dst.retrieve([r.key_id], master_sae_id="M", slave_sae_id="S")
            print("FETCHED", r.key_id, got[0].key.hex(), flush=True)
    """
)


def _run_child(src: str, dst: str, mode: str, *, kill_after_lines: int | None) -> list[list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, src, dst, mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[list[str]] = []
    for line in proc.stdout:
        lines.append(line.split())
        if kill_after_lines is not None and len(lines) >= kill_after_lines:
            os.kill(proc.pid, signal.SIGKILL)
            break
    # After the kill: a line cut off mid-write (no newline) is an answer the client never
    # received, the same as one never printed; only complete lines count.
    rest = proc.stdout.read().splitlines(keepends=True)
    lines.extend(ln.split() for ln in rest if ln.endswith("\n"))
    proc.wait(timeout=30)
    return [ln for ln in lines if ln]


def _pg_urls() -> tuple[str, str]:
    url = os.environ.get("CVQKD_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CVQKD_TEST_POSTGRES_URL is not set")
    import psycopg

    out = []
    for side in ("src", "dst"):
        schema = f"kms_crash_{side}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in url else "?"
        out.append(f"{url}{sep}options=-csearch_path%3D{schema}")
    return out[0], out[1]


@pytest.mark.parametrize("mode", ["serial", "overlap"])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_kill_9_mid_stream_loses_nothing_and_delivers_nothing_twice(
    tmp_path: Path, backend: str, mode: str
) -> None:
    """``serial``: reserve, the target records, commit at the source (the pipeline's path).
    ``overlap``: the durable hand-out at the source runs while the target records (the KME's
    enc_keys path), erasure deferred; a kill may fall in any of these steps."""
    if backend == "sqlite":
        src_url, dst_url = str(tmp_path / "a.sqlite"), str(tmp_path / "b.sqlite")
    else:
        src_url, dst_url = _pg_urls()
    with open_store(src_url) as src, open_store(dst_url) as dst:
        fill_link([src, dst], LINK, bits=600 * 256)
        total = src.available_chunks(LINK)
    assert total == 600

    issued: dict[str, tuple[list[str], str]] = {}
    fetched: dict[str, str] = {}
    # Three kills at different moments, then a run that drains the pool.
    for kill_after in (37, 120, 211, None):
        lines = _run_child(src_url, dst_url, mode, kill_after_lines=kill_after)
        assert lines[0] == ["READY"]
        for ln in lines[1:]:
            if ln[0] == "ISSUED":
                assert ln[1] not in issued, "a key ID was handed out twice"
                issued[ln[1]] = (ln[2].split(","), ln[3])
            elif ln[0] == "FETCHED":
                assert ln[1] not in fetched, "a key was fetched twice"
                assert issued[ln[1]][1] == ln[2], "the slave got other bytes than the master"
                fetched[ln[1]] = ln[2]
        # Recovery: what a crash left pending goes back to the pool; what it left handing
        # out is erased (the master may hold it).
        with open_store(src_url) as src:
            src.release_stale(older_than_s=0.0)
    assert lines[-1] == ["EMPTY"]

    # No chunk in two handed-out keys.
    chunks = [c for ids, _ in issued.values() for c in ids]
    assert len(chunks) == len(set(chunks))
    # Every chunk is accounted for: handed out (printed), or lost with a killed answer
    # (committed, not printed: at most one request of 2 keys x 2 chunks per kill), or left
    # over (fewer than one request's 4 chunks).
    with open_store(src_url) as src, open_store(dst_url) as dst:
        left = src.available_chunks(LINK)
        assert left < 4
        lost = total - left - len(chunks)
        assert 0 <= lost <= 3 * 4
        # Keys handed out but whose fetch the kill interrupted are still fetchable, once;
        # unless the kill fell between the fetch's commit and its print (a lost answer).
        lost_fetches = 0
        for kid, (_, key_hex) in issued.items():
            if kid in fetched:
                with pytest.raises(KeyNotFoundError):
                    dst.retrieve([kid], master_sae_id="M", slave_sae_id="S")
                continue
            try:
                got = dst.retrieve([kid], master_sae_id="M", slave_sae_id="S")
            except KeyNotFoundError:
                lost_fetches += 1
                continue
            assert got[0].key.hex() == key_hex
            with pytest.raises(KeyNotFoundError):
                dst.retrieve([kid], master_sae_id="M", slave_sae_id="S")
        assert lost_fetches <= 3


# ---- server level ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_config(tmp: Path, kme: str, port: int, peer: str, peer_port: int) -> Path:
    cfg = tmp / f"{kme}.toml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            schema_version = 1
            kme_id = "{kme}"
            [listen]
            host = "127.0.0.1"
            port = {port}
            [tls]
            cert_file = "certs/{kme}.pem"
            key_file = "certs/{kme}.key"
            ca_file = "certs/ca.pem"
            [store]
            url = "{kme}.sqlite"
            [saes]
            SAE_A = "KME_A"
            SAE_B = "KME_B"
            [peers.{peer}]
            url = "https://127.0.0.1:{peer_port}"
            timeout_s = 5.0
            """
        )
    )
    return cfg


def _serve(cfg: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cvqkd", "kme", "serve", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("KME did not start")


def _wait_for(cond: Any, *, what: str, timeout_s: float = 30.0) -> None:
    """Poll ``cond()`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("victim", ["KME_A", "KME_B"])
def test_kill_9_of_a_kme_under_load_then_restart(tmp_path: Path, victim: str) -> None:
    """KME_A serves enc_keys (the source), KME_B records reservations and serves dec_keys.
    Killing KME_B mid-stream leaves it with reservations KME_A never handed out: KME_A
    releases them and KME_B takes their chunks over when they are offered again."""
    certs = make_dev_pki(tmp_path / "certs", sae_ids=["SAE_A", "SAE_B"], kme_ids=["KME_A", "KME_B"])
    pa, pb = _free_port(), _free_port()
    cfg_a = _write_config(tmp_path, "KME_A", pa, "KME_B", pb)
    cfg_b = _write_config(tmp_path, "KME_B", pb, "KME_A", pa)
    with open_store(tmp_path / "KME_A.sqlite") as a, open_store(tmp_path / "KME_B.sqlite") as b:
        # far more keys than 4 clients fetch in the few seconds of the test, so the pool never
        # runs dry before the restart (with 2 000 keys a fast run emptied it within 1 s)
        fill_link([a, b], LINK, bits=20_000 * 256)

    def client(sae: str, port: int) -> Etsi014Client:
        return Etsi014Client(
            f"https://127.0.0.1:{port}",
            cert_file=certs[sae].cert_file,
            key_file=certs[sae].key_file,
            ca_file=certs["ca"].cert_file,
            timeout_s=5.0,
        )

    procs = {"KME_B": _serve(cfg_b, pb), "KME_A": _serve(cfg_a, pa)}
    cfgs = {"KME_A": (cfg_a, pa), "KME_B": (cfg_b, pb)}
    received: list[Any] = []
    lock = threading.Lock()
    stop = threading.Event()

    def master() -> None:
        c = client("SAE_A", pa)
        while not stop.is_set():
            try:
                keys = c.get_keys("SAE_B", number=2)
            except KeyStoreError:
                time.sleep(0.02)  # KME down or restarting
                continue
            with lock:
                received.extend(keys)
        c.close()

    try:
        threads = [threading.Thread(target=master) for _ in range(4)]
        for t in threads:
            t.start()
        _wait_for(lambda: len(received) >= 200, what="keys before the kill")
        os.kill(procs[victim].pid, signal.SIGKILL)
        procs[victim].wait(timeout=10)
        with lock:
            before_restart = len(received)
        procs[victim] = _serve(*cfgs[victim])
        _wait_for(lambda: len(received) >= before_restart + 200, what="keys after the restart")
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert before_restart > 0 and len(received) > before_restart
        ids = [k.key_id for k in received]
        assert len(ids) == len(set(ids))
        assert len({k.key for k in received}) == len(received)
        with client("SAE_B", pb) as bob:
            for start in range(0, len(received), 128):
                batch = received[start : start + 128]
                assert bob.get_keys_with_ids("SAE_A", [k.key_id for k in batch]) == batch
        procs["KME_B"].send_signal(signal.SIGTERM)  # a clean stop: exit status 0
        assert procs["KME_B"].wait(timeout=10) == 0
    finally:
        stop.set()
        for p in procs.values():
            p.kill()
            p.wait(timeout=10)
    with open_store(tmp_path / "KME_A.sqlite") as a:
        a.release_stale(older_than_s=0.0)
        m = a.metrics(LINK)
    # Every chunk is available again or was handed out (2 chunks per request lost at most
    # per in-flight request when the process died: 4 client threads).
    handed_out = len(received)
    assert m.stored_chunks - m.available_chunks - handed_out <= 4 * 2
    print(json.dumps({"keys": handed_out}))
