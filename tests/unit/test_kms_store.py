"""The key store: chunking, at-most-once delivery, two-KME agreement, expiry, limits.

Every expectation is an exact identity: delivered bytes equal the slice of the pipeline's
block that the chunk rule names (an independent slow reference: plain byte slicing); no
chunk is delivered twice; chunks are conserved (available + reserved + consumed + expired =
stored). Each test runs on SQLite and, when CVQKD_TEST_POSTGRES_URL is set, on PostgreSQL.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cvqkd.errors import ConfigError, KeyNotFoundError, KeyStoreError
from cvqkd.kms.store import (
    KeyAccessDeniedError,
    KeyStore,
    LinkId,
    NotEnoughKeysError,
    Reservation,
    chunk_ids_for_block,
    open_store,
)

LINK = LinkId("KME_A", "KME_B")


def _pg_url(name: str) -> str:
    url = os.environ.get("CVQKD_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("CVQKD_TEST_POSTGRES_URL is not set")
    import psycopg

    schema = f"kms_unit_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A factory of fresh store URLs of one back end (two per test: both KMEs)."""
    n = iter(range(100))

    def make() -> str:
        i = next(n)
        if request.param == "sqlite":
            return str(tmp_path / f"store{i}.sqlite")
        return _pg_url(f"s{i}")

    yield make


def _pair(store_url: Any) -> tuple[KeyStore, KeyStore]:
    return open_store(store_url()), open_store(store_url())


def _blocks(n: int, nbytes: int) -> list[tuple[uuid.UUID, bytes]]:
    return [(uuid.uuid4(), os.urandom(nbytes)) for _ in range(n)]


def test_chunking_rule_and_tail(store_url: Any) -> None:
    store = open_store(store_url())
    block = (uuid.uuid4(), os.urandom(100))  # 3 chunks of 32 bytes + a 4-byte tail
    assert store.add_keys(LINK, [block]) == 3
    assert store.available_chunks(LINK) == 3
    [(res, key)] = store.reserve(
        LINK, number=1, size_bits=768, master_sae_id="A", slave_sae_ids=["B"]
    )
    assert res.chunk_ids == tuple(chunk_ids_for_block(block[0], 3))
    assert key == block[1][:96]
    store.close()


@pytest.mark.parametrize("size_bits", [8, 64, 256, 264, 512, 1000, 4096])
def test_source_and_target_deliver_the_same_bytes(store_url: Any, size_bits: int) -> None:
    src, dst = _pair(store_url)
    blocks = _blocks(4, 1024)  # 128 chunks
    for s in (src, dst):
        assert s.add_keys(LINK, blocks) == 128
    reserved = src.reserve(
        LINK, number=3, size_bits=size_bits, master_sae_id="SAE_A", slave_sae_ids=["SAE_B"]
    )
    dst.accept_reservations([r for r, _ in reserved])
    src.commit_reserved([r.key_id for r, _ in reserved])
    got = dst.retrieve([r.key_id for r, _ in reserved], master_sae_id="SAE_A", slave_sae_id="SAE_B")
    # Reference: the pool is consumed in order; key k is chunks [k*c, (k+1)*c) truncated.
    stream = b"".join(b for _, b in blocks)
    c = -(-size_bits // 256)
    for k, ((res, key), delivered) in enumerate(zip(reserved, got, strict=True)):
        assert delivered.key_id == res.key_id
        assert key == delivered.key == stream[k * c * 32 : k * c * 32 + size_bits // 8]
    # Both sides' pools shrank by the same chunks.
    assert src.available_chunks(LINK) == dst.available_chunks(LINK) == 128 - 3 * c
    src.close()
    dst.close()


def test_delivered_once_wrong_slave_wrong_master(store_url: Any) -> None:
    src, dst = _pair(store_url)
    blocks = _blocks(1, 256)
    for s in (src, dst):
        s.add_keys(LINK, blocks)
    [(res, key)] = src.reserve(
        LINK, number=1, size_bits=256, master_sae_id="M", slave_sae_ids=["S1", "S2"]
    )
    dst.accept_reservations([res])
    src.commit_reserved([res.key_id])
    with pytest.raises(KeyAccessDeniedError):
        dst.retrieve([res.key_id], master_sae_id="M", slave_sae_id="S3")
    with pytest.raises(KeyNotFoundError):
        dst.retrieve([res.key_id], master_sae_id="OTHER", slave_sae_id="S1")
    assert dst.retrieve([res.key_id], master_sae_id="M", slave_sae_id="S1")[0].key == key
    with pytest.raises(KeyNotFoundError):
        dst.retrieve([res.key_id], master_sae_id="M", slave_sae_id="S1")
    assert dst.retrieve([res.key_id], master_sae_id="M", slave_sae_id="S2")[0].key == key
    with pytest.raises(KeyNotFoundError):
        dst.retrieve([res.key_id], master_sae_id="M", slave_sae_id="S2")
    # Handed out at the source: the source cannot hand it out again either.
    with pytest.raises(KeyStoreError):
        src.commit_reserved([res.key_id])
    with pytest.raises(KeyNotFoundError):
        src.retrieve([res.key_id], master_sae_id="M", slave_sae_id="S1")


def test_release_and_stale_release_return_chunks(store_url: Any) -> None:
    store = open_store(store_url())
    store.add_keys(LINK, _blocks(1, 320))  # 10 chunks
    r1 = store.reserve(LINK, number=2, size_bits=256, master_sae_id="M", slave_sae_ids=["S"])
    assert store.available_chunks(LINK) == 8
    assert store.release([r.key_id for r, _ in r1]) == 2
    assert store.available_chunks(LINK) == 10
    with pytest.raises(KeyStoreError, match="no longer pending"):
        store.commit_reserved([r1[0][0].key_id])
    r2 = store.reserve(
        LINK, number=3, size_bits=256, master_sae_id="M", slave_sae_ids=["S"], now=1000.0
    )
    assert store.release_stale(older_than_s=60, now=1030.0) == 0
    assert store.release_stale(older_than_s=60, now=1061.0) == 3
    # Released chunks come back in pool order: the same material is reserved again.
    r3 = store.reserve(LINK, number=3, size_bits=256, master_sae_id="M", slave_sae_ids=["S"])
    assert [k for _, k in r3] == [k for _, k in r2]
    store.close()


def test_hand_out_states_release_and_crash_recovery(store_url: Any) -> None:
    """pending -> handing out (durable, material kept) -> done; released if the peer failed;
    left by a crash it is erased, never offered again (the master may hold it)."""
    src, dst = _pair(store_url)
    blocks = _blocks(1, 320)  # 10 chunks
    for s in (src, dst):
        s.add_keys(LINK, blocks)
    stream = blocks[0][1]

    def take(n: int, **kw: Any) -> list[tuple[Reservation, bytes]]:
        return src.reserve(
            LINK, number=n, size_bits=256, master_sae_id="M", slave_sae_ids=["S"], **kw
        )

    # Peer failed after the durable hand-out: the chunks come back, in pool order.
    r1 = take(2)
    src.begin_hand_out([r.key_id for r, _ in r1])
    assert src.metrics(LINK).delivered_keys == 2  # counted when handing out starts
    with pytest.raises(KeyStoreError, match="no longer pending"):
        src.begin_hand_out([r1[0][0].key_id])  # all or nothing, not twice
    assert src.release([r.key_id for r, _ in r1]) == 2
    assert (src.available_chunks(LINK), src.metrics(LINK).delivered_keys) == (10, 0)
    # Success: the peer recorded it, the master is answered, the material is erased later.
    r2 = take(2)
    assert [k for _, k in r2] == [k for _, k in r1] == [stream[:32], stream[32:64]]
    dst.accept_reservations([r for r, _ in r2])
    src.commit_many([], hand_out=[r.key_id for r, _ in r2])
    src.finish_hand_out([r.key_id for r, _ in r2] + [r1[0][0].key_id])  # released: skipped
    assert src.release([r.key_id for r, _ in r2]) == 0  # done keys never come back
    assert (src.available_chunks(LINK), src.metrics(LINK).delivered_keys) == (8, 2)
    # A crash between the durable hand-out and the answer: recovery erases, never releases.
    r3 = take(1, now=1000.0)
    take(1, now=1000.0)  # r4: pending, left by the same crash
    src.begin_hand_out([r3[0][0].key_id])
    assert src.release_stale(older_than_s=60, now=1030.0) == 0  # too young: maybe live
    assert src.release_stale(older_than_s=60, now=1061.0) == 1  # r4 (pending) only
    assert (src.available_chunks(LINK), src.metrics(LINK).delivered_keys) == (7, 3)
    src.finish_hand_out([r3[0][0].key_id])  # the live process finishing late: no effect
    assert src.metrics(LINK).delivered_keys == 3
    # The pool continues after r3's chunk: r4's chunk, then the rest; r3's never again.
    rest = take(7)
    assert [k for _, k in rest] == [stream[i * 32 : (i + 1) * 32] for i in range(3, 10)]
    with pytest.raises(NotEnoughKeysError):
        take(1)
    # The peer delivers what was handed out, once.
    got = dst.retrieve([r.key_id for r, _ in r2], master_sae_id="M", slave_sae_id="S")
    assert [k.key for k in got] == [k for _, k in r2]
    src.close()
    dst.close()


def test_commit_many_is_all_or_nothing_across_requests(store_url: Any) -> None:
    store = open_store(store_url())
    store.add_keys(LINK, _blocks(1, 320))
    a = store.reserve(LINK, number=2, size_bits=256, master_sae_id="M", slave_sae_ids=["S"])
    b = store.reserve(LINK, number=1, size_bits=256, master_sae_id="M", slave_sae_ids=["S"])
    store.release([b[0][0].key_id])
    with pytest.raises(KeyStoreError, match="no longer pending"):
        store.commit_many([([a[0][0].key_id], [])], hand_out=[a[1][0].key_id, b[0][0].key_id])
    # Nothing of the failed batch happened: both keys of ``a`` are still pending.
    c = store.reserve(LINK, number=1, size_bits=256, master_sae_id="M", slave_sae_ids=["S"])
    store.begin_hand_out([c[0][0].key_id])
    with pytest.raises(KeyStoreError, match="no longer pending"):  # hand-outs alone, too
        store.commit_many([], hand_out=[a[1][0].key_id, b[0][0].key_id], finish=[c[0][0].key_id])
    assert store.release([c[0][0].key_id]) == 1  # its erasure did not happen either
    store.commit_many([([a[0][0].key_id], ["S"])], hand_out=[a[1][0].key_id])
    assert store.metrics(LINK).delivered_keys == 2
    with pytest.raises(KeyStoreError, match="committed twice"):
        store.commit_many([([a[0][0].key_id], [])], hand_out=[a[0][0].key_id])
    store.close()


def test_not_enough_keys_takes_nothing(store_url: Any) -> None:
    store = open_store(store_url())
    store.add_keys(LINK, _blocks(1, 64))  # 2 chunks
    with pytest.raises(NotEnoughKeysError):
        store.reserve(LINK, number=1, size_bits=768, master_sae_id="M", slave_sae_ids=["S"])
    assert store.available_chunks(LINK) == 2
    store.close()


def test_target_takes_over_chunks_of_an_unfetched_orphan_key(store_url: Any) -> None:
    src, dst = _pair(store_url)
    blocks = _blocks(1, 64)
    for s in (src, dst):
        s.add_keys(LINK, blocks)
    [(x, _)] = src.reserve(LINK, number=1, size_bits=512, master_sae_id="M", slave_sae_ids=["S"])
    dst.accept_reservations([x])
    dst.accept_reservations([x])  # idempotent (a retried KME-to-KME call)
    src.release([x.key_id])  # e.g. the source crashed before handing it out
    [(y, key)] = src.reserve(LINK, number=1, size_bits=512, master_sae_id="M", slave_sae_ids=["S"])
    assert y.chunk_ids == x.chunk_ids and y.key_id != x.key_id
    dst.accept_reservations([y])
    src.commit_reserved([y.key_id])
    with pytest.raises(KeyNotFoundError):
        dst.retrieve([x.key_id], master_sae_id="M", slave_sae_id="S")
    assert dst.retrieve([y.key_id], master_sae_id="M", slave_sae_id="S")[0].key == key
    # Chunks already delivered here are never taken over.
    z = Reservation(
        key_id=str(uuid.uuid4()),
        link=LINK,
        size_bits=512,
        chunk_ids=y.chunk_ids,
        master_sae_id="M",
        slave_sae_ids=("S",),
        expires_at=y.expires_at,
    )
    with pytest.raises(KeyStoreError):
        dst.accept_reservations([z])


def test_reservation_for_unknown_chunks_or_wrong_link_is_refused(store_url: Any) -> None:
    src, dst = _pair(store_url)
    src.add_keys(LINK, _blocks(1, 32))
    dst.add_keys(LinkId("KME_A", "KME_C"), _blocks(1, 32))
    [(res, _)] = src.reserve(LINK, number=1, size_bits=256, master_sae_id="M", slave_sae_ids=["S"])
    with pytest.raises(KeyStoreError):
        dst.accept_reservations([res])


def test_re_adding_blocks_never_resurrects_key_material(store_url: Any) -> None:
    store = open_store(store_url())
    blocks = _blocks(2, 64)
    assert store.add_keys(LINK, blocks) == 4
    assert store.add_keys(LINK, blocks) == 0  # same IDs: skipped
    res = store.reserve(LINK, number=4, size_bits=256, master_sae_id="M", slave_sae_ids=["S"])
    store.commit_reserved([r.key_id for r, _ in res])
    assert store.add_keys(LINK, blocks) == 0  # consumed chunks stay consumed
    assert store.available_chunks(LINK) == 0
    m = store.metrics(LINK)
    assert (m.stored_chunks, m.delivered_keys) == (4, 4)
    store.close()


def test_pool_limit_is_all_or_nothing(store_url: Any) -> None:
    store = open_store(store_url())
    store.set_pool_limit(5)
    assert store.pool_limit() == 5
    store.add_keys(LINK, _blocks(1, 96))  # 3 chunks
    with pytest.raises(KeyStoreError, match="full"):
        store.add_keys(LINK, _blocks(1, 96))  # 3 more would make 6 > 5
    assert store.available_chunks(LINK) == 3
    assert store.add_keys(LINK, _blocks(1, 64)) == 2
    store.close()


def test_expiry_of_pool_chunks_and_of_unfetched_keys(store_url: Any) -> None:
    src, dst = _pair(store_url)
    blocks = _blocks(1, 320)  # 10 chunks
    for s in (src, dst):
        s.add_keys(LINK, blocks, lifetime_s=100.0, now=1000.0)
    [(res, _)] = src.reserve(
        LINK,
        number=1,
        size_bits=512,
        master_sae_id="M",
        slave_sae_ids=["S"],
        lifetime_s=10.0,
        now=1001.0,
    )
    dst.accept_reservations([res], now=1001.0)
    src.commit_reserved([res.key_id])
    assert dst.expire(now=1005.0) == 0
    assert dst.expire(now=1012.0) == 2  # the unfetched key (2 chunks)
    with pytest.raises(KeyNotFoundError):
        dst.retrieve([res.key_id], master_sae_id="M", slave_sae_id="S", now=1012.0)
    assert dst.available_chunks(LINK, now=1050.0) == 8
    assert dst.available_chunks(LINK, now=1100.0) == 0  # expired but not yet erased
    assert dst.expire(now=1100.0) == 8
    assert dst.metrics(LINK).expired_chunks == 10
    with pytest.raises(NotEnoughKeysError):
        src.reserve(
            LINK, number=1, size_bits=256, master_sae_id="M", slave_sae_ids=["S"], now=1100.0
        )


def test_chunk_size_is_fixed_at_creation(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    assert open_store(path, chunk_bits=128).chunk_bits == 128
    assert open_store(path).chunk_bits == 128
    with pytest.raises(KeyStoreError, match="chunk_bits=128"):
        open_store(path, chunk_bits=256)
    with pytest.raises(ConfigError):
        open_store(tmp_path / "t.sqlite", chunk_bits=12)


def test_unsupported_url_and_sqlite_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported"):
        open_store("mysql://x/y")
    store = open_store(f"sqlite:///{tmp_path / 'w.sqlite'}")
    conn = sqlite3.connect(tmp_path / "w.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_concurrent_stores_on_one_database_never_share_a_chunk(store_url: Any) -> None:
    url = store_url()
    with open_store(url) as setup:
        setup.add_keys(LINK, _blocks(16, 256))  # 128 chunks
    n_threads = 8
    taken: list[list[bytes]] = [[] for _ in range(n_threads)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with open_store(url) as s:  # its own connection: the database arbitrates
                while True:
                    try:
                        res = s.reserve(
                            LINK, number=1, size_bits=256, master_sae_id="M", slave_sae_ids=["S"]
                        )
                    except NotEnoughKeysError:
                        return
                    s.commit_reserved([r.key_id for r, _ in res])
                    taken[i].extend(k for _, k in res)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:2]
    keys = [k for t in taken for k in t]
    assert len(keys) == 128 and len(set(keys)) == 128


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["take", "reserve_release", "fetch", "add"]),
            st.integers(1, 3),
            st.sampled_from([8, 256, 264, 512]),
        ),
        max_size=30,
    )
)
def test_property_no_key_twice_and_chunks_conserved(ops: list[tuple[str, int, int]]) -> None:
    src, dst = open_store(":memory:"), open_store(":memory:")
    blocks = _blocks(2, 256)
    for s in (src, dst):
        s.add_keys(LINK, blocks)
    delivered: list[tuple[bytes, tuple[str, ...]]] = []
    issued: list[tuple[str, bytes, tuple[str, ...]]] = []
    for op, n, size in ops:
        if op == "add":
            more = _blocks(1, 64)
            for s in (src, dst):
                s.add_keys(LINK, more)
            continue
        if op == "fetch":
            if issued:
                kid, key, chunk_ids = issued.pop(0)
                got = dst.retrieve([kid], master_sae_id="M", slave_sae_id="S")
                assert got[0].key == key
                delivered.append((got[0].key, chunk_ids))
            continue
        try:
            res = src.reserve(
                LINK, number=n, size_bits=size, master_sae_id="M", slave_sae_ids=["S"]
            )
        except NotEnoughKeysError:
            continue
        if op == "reserve_release":
            src.release([r.key_id for r, _ in res])
            continue
        dst.accept_reservations([r for r, _ in res])
        src.commit_reserved([r.key_id for r, _ in res])
        issued.extend((r.key_id, k, r.chunk_ids) for r, k in res)
    for kid, key, chunk_ids in issued:  # everything issued can be fetched exactly once
        got = dst.retrieve([kid], master_sae_id="M", slave_sae_id="S")
        assert got[0].key == key
        delivered.append((key, chunk_ids))
        with pytest.raises(KeyNotFoundError):
            dst.retrieve([kid], master_sae_id="M", slave_sae_id="S")
    # No chunk is part of two delivered keys.
    all_chunks = [c for _, ids in delivered for c in ids]
    assert len(all_chunks) == len(set(all_chunks))
    # Conservation: the chunks that left the pool are exactly the delivered ones.
    m_src, m_dst = src.metrics(LINK), dst.metrics(LINK)
    assert m_src.available_chunks == m_dst.available_chunks
    assert m_dst.stored_chunks - m_dst.available_chunks == len(all_chunks)


def test_sqlite_zeroes_erased_key_material(tmp_path: Path) -> None:
    """After a hand-out and a checkpoint, the key bytes are nowhere in the database file."""
    path = tmp_path / "z.sqlite"
    store = open_store(path)
    material = os.urandom(64)
    store.add_keys(LINK, [(uuid.uuid4(), material)])
    res = store.reserve(LINK, number=1, size_bits=512, master_sae_id="M", slave_sae_ids=["S"])
    store.commit_reserved([r.key_id for r, _ in res])
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = path.read_bytes()
    assert material[:32] not in data and material[32:] not in data


@pytest.mark.postgres
def test_postgres_replaces_a_broken_connection() -> None:
    """The database drops our session (restart, failover): one call fails with a clear
    KeyStoreError, the next one works on a fresh connection; nothing is half-done."""
    import psycopg

    app = f"kms_test_{uuid.uuid4().hex[:8]}"
    url = _pg_url("broken") + f"&application_name={app}"
    store = open_store(url, pool_size=1)
    store.add_keys(LINK, _blocks(1, 64))
    admin_url = os.environ["CVQKD_TEST_POSTGRES_URL"]
    with psycopg.connect(admin_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [app],
        ).fetchall()
        assert killed == [(True,)]
    with pytest.raises(KeyStoreError):
        for _ in range(2):  # the first call may still find the socket alive
            store.available_chunks(LINK)
    assert store.available_chunks(LINK) == 2
    store.close()
