"""The key store: QKD key material per link, delivered at most once.

Model
-----
The pipeline fills the store of *both* KMEs of a link with the same key material under the
same IDs (:meth:`KeyStore.add_keys`). Material is kept as fixed-size **chunks** (default
256 bits); a block longer than one chunk is cut into chunks whose IDs are derived from the
block's UUID (``uuid5(block_id, str(i))``), so both ends derive the same chunk IDs; a tail
shorter than one chunk is dropped at both ends alike.

A delivered key of ``size_bits`` (a multiple of 8) is the concatenation of
``ceil(size_bits / chunk_bits)`` chunks, truncated to ``size_bits / 8`` bytes, under a fresh
UUID ``key_ID``. Only the link's *source* KME hands keys out (enc_keys); it tells the *target*
KME which chunks form which key (:meth:`accept_reservations`), and the target's dec_keys reads
the same chunks, so both ends return the same bytes.

Lifecycle of a chunk: available (0) → reserved for a key (1) → consumed (2, material erased)
or expired (3, material erased). Consumed and expired rows stay as tombstones so a chunk ID
can never be added (and delivered) twice. Lifecycle of a key at the source KME: pending (0,
reserved, not yet handed out) → issued (1, handed to the master; material kept only while
slaves at this KME must still fetch it) → done (2) or expired (3); for a key whose slaves sit
at the peer KME, pending → *handing out* (4, durable while the peer is told, see
:meth:`KeyStore.begin_hand_out`) → done.

At most once, crash-safe: every state change is one database transaction (SQLite
``BEGIN IMMEDIATE`` in WAL mode; PostgreSQL ``SELECT ... FOR UPDATE SKIP LOCKED``), and the
service answers only after the commit. A crash (kill -9) before a commit rolls it back (the
keys stay available); pending reservations left by a crash go back to the pool with
:meth:`release_stale`. A crash after a commit but before the answer reaches the SAE loses that
answer's keys (they are never handed out again): loss of one answer, never a duplicate.

Example::

    >>> import uuid
    >>> store = open_store(":memory:")
    >>> link = LinkId("KME_A", "KME_B")
    >>> store.add_keys(link, [(uuid.UUID(int=1), bytes(64))])   # 512 bits = 2 chunks
    2
    >>> store.available_chunks(link)
    2
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cvqkd.errors import ConfigError, KeyNotFoundError, KeyStoreError, MissingExtraError

__all__ = [
    "DEFAULT_CHUNK_BITS",
    "DeliveredKey",
    "KeyAccessDeniedError",
    "KeyStore",
    "LinkId",
    "NotEnoughKeysError",
    "PostgresKeyStore",
    "Reservation",
    "SqliteKeyStore",
    "StoreMetrics",
    "chunk_ids_for_block",
    "open_store",
]

#: Default chunk size: 256 bits (an AES-256 key).
DEFAULT_CHUNK_BITS = 256
#: Default pool limit per link, in chunks (10^7 x 256 bit = 320 MB of key).
DEFAULT_MAX_CHUNKS_PER_LINK = 10_000_000
#: Default key lifetime: one day.
DEFAULT_LIFETIME_S = 86_400.0

NOT_FOUND_MESSAGE = "one or more keys specified are not found on KME"

_AVAILABLE, _RESERVED, _CONSUMED, _EXPIRED = 0, 1, 2, 3
_PENDING, _ISSUED, _DONE = 0, 1, 2
#: Key state at the source KME: committed durably while the peer KME is told (see
#: :meth:`KeyStore.begin_hand_out`); may have reached the master.
_HANDING_OUT = 4


class NotEnoughKeysError(KeyStoreError):
    """The link's pool holds fewer chunks than a request needs (HTTP 503)."""


class KeyAccessDeniedError(KeyStoreError):
    """A key exists but was not issued for the asking SAE (HTTP 401)."""


class ChunksUnavailableError(KeyStoreError):
    """The target KME does not hold (any more) some chunks a reservation names.

    ``chunk_ids`` lists them, so the source KME can erase them too (e.g. they expired at
    the target first) instead of offering them again.
    """

    def __init__(self, message: str, chunk_ids: Sequence[str]) -> None:
        super().__init__(message)
        self.chunk_ids = tuple(chunk_ids)


@dataclass(frozen=True, order=True)
class LinkId:
    """A directed QKD link: keys handed out by ``source_kme_id`` for SAEs at ``target_kme_id``."""

    source_kme_id: str
    target_kme_id: str


@dataclass(frozen=True)
class DeliveredKey:
    """A key as handed to an SAE: UUID string ``key_id`` and ``key`` bytes (never printed)."""

    key_id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Reservation:
    """Which chunks form key ``key_id`` of ``size_bits`` for whom; sent source → target KME."""

    key_id: str
    link: LinkId
    size_bits: int
    chunk_ids: tuple[str, ...]
    master_sae_id: str
    slave_sae_ids: tuple[str, ...]
    expires_at: float

    def to_json(self) -> dict[str, Any]:
        """JSON form for the KME-to-KME call."""
        return {
            "key_ID": self.key_id,
            "source_KME_ID": self.link.source_kme_id,
            "target_KME_ID": self.link.target_kme_id,
            "size": self.size_bits,
            "chunk_IDs": list(self.chunk_ids),
            "master_SAE_ID": self.master_sae_id,
            "slave_SAE_IDs": list(self.slave_sae_ids),
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reservation:
        """Inverse of :meth:`to_json`; raises :class:`ConfigError` on a malformed object."""
        try:
            res = cls(
                key_id=str(uuid.UUID(str(data["key_ID"]))),
                link=LinkId(str(data["source_KME_ID"]), str(data["target_KME_ID"])),
                size_bits=int(data["size"]),
                chunk_ids=tuple(str(c) for c in data["chunk_IDs"]),
                master_sae_id=str(data["master_SAE_ID"]),
                slave_sae_ids=tuple(str(s) for s in data["slave_SAE_IDs"]),
                expires_at=float(data["expires_at"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"malformed key reservation: {exc}") from None
        if not res.chunk_ids or not res.slave_sae_ids or res.size_bits <= 0:
            raise ConfigError("malformed key reservation: empty chunks, slaves or size")
        return res


@dataclass(frozen=True)
class StoreMetrics:
    """Counters of one link: chunks ``stored`` (ever added), ``available`` now, keys
    ``delivered`` (handed to an SAE at this KME), chunks ``expired``."""

    stored_chunks: int
    available_chunks: int
    delivered_keys: int
    expired_chunks: int


def chunk_ids_for_block(block_id: uuid.UUID, n_chunks: int) -> list[str]:
    """Chunk IDs of a pipeline block: ``uuid5(block_id, str(i))``, the same at both KMEs.

    >>> block = uuid.UUID(int=7)
    >>> chunk_ids_for_block(block, 2)[1] == str(uuid.uuid5(block, "1"))
    True
    """
    return [str(uuid.uuid5(block_id, str(i))) for i in range(n_chunks)]


# --------------------------------------------------------------------------------------------
# The store (SQL shared by both back ends; placeholders written as "?")
# --------------------------------------------------------------------------------------------


class KeyStore(ABC):
    """Key material per link with at-most-once delivery. Thread-safe; see the module doc."""

    chunk_bits: int
    _skip_locked = ""
    #: SQLite's planner may prefer the expiry index and sort the whole pool: pin the pool one.
    _pool_index = ""
    #: Largest number of bound parameters in one ``IN (...)`` list.
    _max_params = 500
    #: Transactions worth running at once for group commits (SQLite: one writer).
    commit_concurrency = 1

    # ---- back-end hooks ------------------------------------------------------------------

    @abstractmethod
    @contextmanager
    def _tx(self, *, durable: bool = True, write: bool = True) -> Iterator[Any]:
        """A transaction; yields a cursor-like object with ``execute(sql, params)``.

        ``durable=False`` lets SQLite skip the fsync of this commit (its effect becomes durable
        with the next durable commit; a process crash never loses it, a power cut may):
        used for reservations, which are undone safely. ``write=False``: read only.
        """

    @abstractmethod
    def close(self) -> None:
        """Close the database connection(s)."""

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(sql, tuple(params))
        return cur

    def _execmany(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur.executemany(sql, [tuple(r) for r in rows])

    # ---- meta ---------------------------------------------------------------------------

    def _init_meta(self, chunk_bits: int | None) -> None:
        with self._tx() as cur:
            row = self._exec(cur, "SELECT value FROM kms_meta WHERE name = 'chunk_bits'").fetchone()
            if row is None:
                bits = chunk_bits or DEFAULT_CHUNK_BITS
                if bits <= 0 or bits % 8:
                    raise ConfigError(f"chunk_bits must be a positive multiple of 8, got {bits}")
                self._exec(
                    cur,
                    "INSERT INTO kms_meta (name, value) VALUES ('chunk_bits', ?)",
                    [bits],
                )
                self._exec(
                    cur,
                    "INSERT INTO kms_meta (name, value) VALUES ('max_chunks_per_link', ?)",
                    [DEFAULT_MAX_CHUNKS_PER_LINK],
                )
            else:
                bits = int(row[0])
                if chunk_bits is not None and chunk_bits != bits:
                    raise KeyStoreError(
                        f"the store was created with chunk_bits={bits}, not {chunk_bits}"
                    )
        self.chunk_bits = bits

    @property
    def chunk_bytes(self) -> int:
        """Chunk size in bytes."""
        return self.chunk_bits // 8

    def set_pool_limit(self, max_chunks_per_link: int) -> None:
        """Persist the pool limit: :meth:`add_keys` refuses to hold more available chunks."""
        if max_chunks_per_link <= 0:
            raise ConfigError("max_chunks_per_link must be positive")
        with self._tx() as cur:
            self._exec(
                cur,
                "UPDATE kms_meta SET value = ? WHERE name = 'max_chunks_per_link'",
                [int(max_chunks_per_link)],
            )

    def pool_limit(self) -> int:
        """The pool limit per link, in chunks."""
        with self._tx(durable=False, write=False) as cur:
            row = self._exec(
                cur, "SELECT value FROM kms_meta WHERE name = 'max_chunks_per_link'"
            ).fetchone()
        return int(row[0])

    # ---- filling (the pipeline) ---------------------------------------------------------

    def add_keys(
        self,
        link: LinkId,
        keys: Sequence[tuple[uuid.UUID, bytes]],
        *,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        now: float | None = None,
    ) -> int:
        """Add key blocks ``(block_id, material)`` to ``link``'s pool; returns chunks added.

        Each block is cut into ``chunk_bits`` chunks with IDs :func:`chunk_ids_for_block`; a
        tail shorter than a chunk is dropped. Chunk IDs already known (available, delivered or
        expired) are skipped, so re-adding a block after a crash is harmless and a delivered
        chunk can never come back. All or nothing: raises :class:`KeyStoreError` (nothing
        added) if the pool limit would be exceeded.
        """
        t = time.time() if now is None else now
        expires = t + float(lifetime_s)
        rows: list[tuple[Any, ...]] = []
        cb = self.chunk_bytes
        for block_id, material in keys:
            if not isinstance(material, (bytes, bytearray)):
                raise ConfigError("key material must be bytes")
            n = len(material) // cb
            for i, cid in enumerate(chunk_ids_for_block(uuid.UUID(str(block_id)), n)):
                rows.append(
                    (
                        cid,
                        link.source_kme_id,
                        link.target_kme_id,
                        bytes(material[i * cb : (i + 1) * cb]),
                        expires,
                    )
                )
        if not rows:
            return 0
        with self._tx() as cur:
            ids = [r[0] for r in rows]
            known: set[str] = set()
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                known.update(
                    r[0]
                    for r in self._exec(
                        cur,
                        f"SELECT chunk_id FROM kms_chunks WHERE chunk_id IN ({marks})",
                        part,
                    ).fetchall()
                )
            new = [r for r in rows if r[0] not in known]
            if len(new) != len({r[0] for r in new}):
                raise ConfigError("duplicate block IDs in one add_keys call")
            limit = int(
                self._exec(
                    cur, "SELECT value FROM kms_meta WHERE name = 'max_chunks_per_link'"
                ).fetchone()[0]
            )
            have = self._count_available(cur, link, t)
            if have + len(new) > limit:
                raise KeyStoreError(
                    f"key pool of {link.source_kme_id}->{link.target_kme_id} is full: "
                    f"{have} + {len(new)} chunks > limit {limit}"
                )
            self._execmany(
                cur,
                "INSERT INTO kms_chunks (chunk_id, source_kme, target_kme, material, state, "
                f"expires_at) VALUES (?, ?, ?, ?, {_AVAILABLE}, ?)",
                new,
            )
            self._bump(cur, link, "stored", len(new))
        return len(new)

    # ---- counting -------------------------------------------------------------------------

    def _count_available(self, cur: Any, link: LinkId, now: float) -> int:
        row = self._exec(
            cur,
            f"SELECT COUNT(*) FROM kms_chunks{self._pool_index} WHERE source_kme = ? "
            f"AND target_kme = ? AND state = {_AVAILABLE} AND expires_at > ?",
            [link.source_kme_id, link.target_kme_id, now],
        ).fetchone()
        return int(row[0])

    def available_chunks(self, link: LinkId, *, now: float | None = None) -> int:
        """Number of unexpired available chunks of ``link``."""
        with self._tx(durable=False, write=False) as cur:
            return self._count_available(cur, link, time.time() if now is None else now)

    def chunks_per_key(self, size_bits: int) -> int:
        """Chunks a key of ``size_bits`` consumes: ``ceil(size_bits / chunk_bits)``."""
        return -(-int(size_bits) // self.chunk_bits)

    def _counter_shard(self) -> str:
        """Suffix of this thread's counter rows: with concurrent transactions (PostgreSQL),
        each thread bumps its own row (``delivered#3``) instead of waiting for another
        transaction's lock on one shared row until that one commits."""
        if self.commit_concurrency == 1:
            return ""
        shard = getattr(_shard, "value", None)
        if shard is None:
            shard = _shard.value = f"#{next(_shard_ids) % 64}"
        return str(shard)

    def _bump(self, cur: Any, link: LinkId, name: str, n: int) -> None:
        if n == 0:
            return
        self._exec(
            cur,
            "INSERT INTO kms_counters (source_kme, target_kme, name, value) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (source_kme, target_kme, name) "
            "DO UPDATE SET value = kms_counters.value + ?",
            [
                link.source_kme_id,
                link.target_kme_id,
                name + self._counter_shard(),
                n,
                n,
            ],
        )

    def metrics(self, link: LinkId) -> StoreMetrics:
        """Counters of ``link`` (see :class:`StoreMetrics`)."""
        with self._tx(durable=False, write=False) as cur:
            rows = self._exec(
                cur,
                "SELECT name, value FROM kms_counters WHERE source_kme = ? AND target_kme = ?",
                [link.source_kme_id, link.target_kme_id],
            ).fetchall()
            avail = self._count_available(cur, link, time.time())
        c: dict[str, int] = {}
        for name, value in rows:
            base = str(name).split("#", 1)[0]
            c[base] = c.get(base, 0) + int(value)
        return StoreMetrics(
            stored_chunks=c.get("stored", 0),
            available_chunks=avail,
            delivered_keys=c.get("delivered", 0),
            expired_chunks=c.get("expired", 0),
        )

    def links(self) -> list[LinkId]:
        """Every link the store has seen."""
        with self._tx(durable=False, write=False) as cur:
            rows = self._exec(
                cur,
                "SELECT DISTINCT source_kme, target_kme FROM kms_counters ORDER BY 1, 2",
            ).fetchall()
        return [LinkId(str(a), str(b)) for a, b in rows]

    # ---- source KME: reserve, then commit or release --------------------------------------

    def reserve(
        self,
        link: LinkId,
        *,
        number: int,
        size_bits: int,
        master_sae_id: str,
        slave_sae_ids: Sequence[str],
        lifetime_s: float = DEFAULT_LIFETIME_S,
        now: float | None = None,
    ) -> list[tuple[Reservation, bytes]]:
        """Reserve ``number`` keys of ``size_bits`` (step 1 of enc_keys; state *pending*).

        Returns each reservation with its key bytes. The keys are not handed out until
        :meth:`commit_reserved`; :meth:`release` (or :meth:`release_stale` after a crash)
        gives them back. Raises :class:`NotEnoughKeysError` if the pool is short.
        """
        if number <= 0 or size_bits <= 0 or size_bits % 8:
            raise ConfigError("number must be >= 1 and size a positive multiple of 8")
        t = time.time() if now is None else now
        per_key = self.chunks_per_key(size_bits)
        need = per_key * number
        with self._tx(durable=False) as cur:
            rows = self._exec(
                cur,
                f"SELECT seq, chunk_id, material FROM kms_chunks{self._pool_index} "
                f"WHERE source_kme = ? AND target_kme = ? AND state = {_AVAILABLE} "
                "AND expires_at > ? "
                f"ORDER BY seq LIMIT ?{self._skip_locked}",
                [link.source_kme_id, link.target_kme_id, t, need],
            ).fetchall()
            if len(rows) < need:
                raise NotEnoughKeysError(
                    f"not enough key material on link {link.source_kme_id}->"
                    f"{link.target_kme_id}: {need} chunks of {self.chunk_bits} bits needed"
                )
            out: list[tuple[Reservation, bytes]] = []
            updates: list[tuple[Any, ...]] = []
            key_rows: list[tuple[Any, ...]] = []
            slaves = tuple(slave_sae_ids)
            for k in range(number):
                part = rows[k * per_key : (k + 1) * per_key]
                key_id = str(uuid.uuid4())
                res = Reservation(
                    key_id=key_id,
                    link=link,
                    size_bits=int(size_bits),
                    chunk_ids=tuple(str(r[1]) for r in part),
                    master_sae_id=master_sae_id,
                    slave_sae_ids=slaves,
                    expires_at=t + float(lifetime_s),
                )
                material = b"".join(bytes(r[2]) for r in part)[: size_bits // 8]
                out.append((res, material))
                updates.extend((key_id, r[0]) for r in part)
                key_rows.append(self._key_row(res, _PENDING, pending=slaves, now=t))
            self._execmany(
                cur,
                f"UPDATE kms_chunks SET state = {_RESERVED}, key_id = ? WHERE seq = ?",
                updates,
            )
            self._insert_keys(cur, key_rows)
        return out

    def _key_row(
        self, res: Reservation, state: int, *, pending: Sequence[str], now: float
    ) -> tuple[Any, ...]:
        return (
            res.key_id,
            res.link.source_kme_id,
            res.link.target_kme_id,
            res.master_sae_id,
            json.dumps(list(res.slave_sae_ids)),
            json.dumps(list(pending)),
            res.size_bits,
            json.dumps(list(res.chunk_ids)),
            state,
            now,
            res.expires_at,
        )

    def _insert_keys(self, cur: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        self._execmany(
            cur,
            "INSERT INTO kms_keys (key_id, source_kme, target_kme, master_sae, slaves, pending, "
            "size_bits, chunk_ids, state, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def _set_chunk_keys(self, cur: Any, pairs: Sequence[tuple[str, str]]) -> None:
        """Mark chunks reserved for keys: ``pairs`` of ``(key_id, chunk_id)``."""
        self._execmany(
            cur,
            f"UPDATE kms_chunks SET state = {_RESERVED}, key_id = ? WHERE chunk_id = ?",
            pairs,
        )

    def commit_reserved(self, key_ids: Sequence[str], *, slaves_here: Sequence[str] = ()) -> None:
        """Hand out reserved keys (step 2 of enc_keys): they leave this KME's pool.

        ``slaves_here`` are slave SAEs attached to this same KME (a local link); the material
        stays until each has fetched it. Raises :class:`KeyStoreError` if any reservation is
        no longer pending (it was released meanwhile): then nothing is handed out.
        """
        self.commit_many([(key_ids, slaves_here)])

    def begin_hand_out(self, key_ids: Sequence[str]) -> None:
        """Pending reservations → *handing out*, durably (material kept).

        The source KME runs this at the same time as the KME-to-KME call and answers the
        master only when both succeeded; afterwards :meth:`finish_hand_out` erases the
        material, and if the peer call failed :meth:`release` gives the chunks back. A key
        left *handing out* by a crash is never offered again (:meth:`release_stale` erases
        it): the master may have received it. Raises :class:`KeyStoreError` (nothing
        changed) if any reservation is no longer pending.
        """
        self.commit_many([], hand_out=key_ids)

    def finish_hand_out(self, key_ids: Sequence[str]) -> None:
        """Keys *handing out* → done: material erased. Keys in another
        state (erased by :meth:`release_stale` meanwhile) are skipped. Not fsynced: if a
        power cut undoes it, :meth:`release_stale` erases the keys later."""
        self.commit_many([], finish=key_ids)

    def _in(self, ids: Sequence[str]) -> tuple[str, list[Any]]:
        """``IN (...)`` for ``ids``: SQL text and its parameters (PostgreSQL: ``= ANY(?)``)."""
        return f"IN ({','.join('?' * len(ids))})", list(ids)

    def commit_many(
        self,
        batches: Sequence[tuple[Sequence[str], Sequence[str]]],
        *,
        hand_out: Sequence[str] = (),
        finish: Sequence[str] = (),
    ) -> None:
        """One transaction for several requests (group commit: one fsync for many).

        ``batches``: :meth:`commit_reserved` of each ``(key_ids, slaves_here)``;
        ``hand_out``: :meth:`begin_hand_out`; ``finish``: :meth:`finish_hand_out`. All or
        nothing: raises :class:`KeyStoreError` if a key of ``batches`` or ``hand_out`` is no
        longer pending. Durable (fsynced) unless there is only ``finish`` work.
        """
        done = [kid for key_ids, here in batches if not here for kid in key_ids]
        issued = [
            (json.dumps(list(here)), kid) for key_ids, here in batches if here for kid in key_ids
        ]
        from_pending = done + [kid for _, kid in issued] + list(hand_out)
        if len(set(from_pending)) != len(from_pending):
            raise KeyStoreError("a reservation is committed twice")
        finish = [k for k in dict.fromkeys(finish) if k not in set(from_pending)]
        if not from_pending and not finish:
            return
        step = self._max_params
        with self._tx(durable=bool(from_pending)) as cur:
            per_link: dict[LinkId, int] = {}

            def move(ids: Sequence[str], old: int, new: int, *, count: bool) -> int:
                moved = 0
                for part in _parts(ids, step):
                    cond, params = self._in(part)
                    rows = self._exec(
                        cur,
                        f"UPDATE kms_keys SET state = {new}, pending = '[]' WHERE key_id {cond} "
                        f"AND state = {old} RETURNING source_kme, target_kme",
                        params,
                    ).fetchall()
                    if new == _DONE:
                        self._exec(
                            cur,
                            f"UPDATE kms_chunks SET state = {_CONSUMED}, material = NULL "
                            f"WHERE key_id {cond} AND state = {_RESERVED}",
                            params,
                        )
                    moved += len(rows)
                    if count:
                        for src, dst in rows:
                            link = LinkId(str(src), str(dst))
                            per_link[link] = per_link.get(link, 0) + 1
                return moved

            if move(done, _PENDING, _DONE, count=True) != len(done):
                raise KeyStoreError("a reservation is no longer pending")
            if issued:
                self._execmany(
                    cur,
                    f"UPDATE kms_keys SET state = {_ISSUED}, pending = ? WHERE key_id = ? "
                    f"AND state = {_PENDING}",
                    issued,
                )
                ids = [kid for _, kid in issued]
                n = 0
                for part in _parts(ids, step):
                    cond, params = self._in(part)
                    for src, dst in self._exec(
                        cur,
                        f"SELECT source_kme, target_kme FROM kms_keys WHERE key_id {cond} "
                        f"AND state = {_ISSUED}",
                        params,
                    ).fetchall():
                        link = LinkId(str(src), str(dst))
                        per_link[link] = per_link.get(link, 0) + 1
                        n += 1
                if n != len(ids):
                    raise KeyStoreError("a reservation is no longer pending")
            # Counted as delivered when handing out starts (uncounted if released).
            if move(hand_out, _PENDING, _HANDING_OUT, count=True) != len(hand_out):
                raise KeyStoreError("a reservation is no longer pending")
            move(finish, _HANDING_OUT, _DONE, count=False)
            for link, n in sorted(per_link.items()):
                self._bump(cur, link, "delivered", n)

    def release(self, key_ids: Sequence[str], *, discard_chunk_ids: Sequence[str] = ()) -> int:
        """Give pending (or *handing out*, see :meth:`begin_hand_out`) reservations back to
        the pool: the peer KME could not be told, the master was not answered.

        Chunks in ``discard_chunk_ids`` (the peer no longer holds them) are erased instead.
        Returns the number of reservations released.
        """
        released = 0
        discard = set(discard_chunk_ids)
        with self._tx(durable=False) as cur:
            for kid in key_ids:
                row = self._exec(
                    cur,
                    "SELECT chunk_ids, source_kme, target_kme, state FROM kms_keys "
                    f"WHERE key_id = ? AND state IN ({_PENDING}, {_HANDING_OUT})",
                    [kid],
                ).fetchone()
                if row is None:
                    continue
                self._exec(cur, "DELETE FROM kms_keys WHERE key_id = ?", [kid])
                released += 1
                if int(row[3]) == _HANDING_OUT:
                    self._bump(cur, LinkId(str(row[1]), str(row[2])), "delivered", -1)
                self._exec(
                    cur,
                    f"UPDATE kms_chunks SET state = {_AVAILABLE}, key_id = NULL "
                    f"WHERE key_id = ? AND state = {_RESERVED}",
                    [kid],
                )
                gone = [c for c in json.loads(row[0]) if c in discard]
                if gone:
                    self._execmany(
                        cur,
                        f"UPDATE kms_chunks SET state = {_EXPIRED}, material = NULL "
                        f"WHERE chunk_id = ? AND state = {_AVAILABLE}",
                        [(c,) for c in gone],
                    )
                    self._bump(cur, LinkId(str(row[1]), str(row[2])), "expired", len(gone))
        return released

    def release_stale(self, *, older_than_s: float, now: float | None = None) -> int:
        """Recovery after a crash, for reservations older than ``older_than_s``: pending ones
        go back to the pool (never handed out); *handing out* ones are erased (the master may
        hold them; they count as delivered). Returns the number released to the pool."""
        t = time.time() if now is None else now
        with self._tx(durable=False, write=False) as cur:
            rows = self._exec(
                cur,
                f"SELECT key_id, state FROM kms_keys WHERE state IN ({_PENDING}, {_HANDING_OUT}) "
                "AND created_at < ?",
                [t - older_than_s],
            ).fetchall()
        stuck = [str(r[0]) for r in rows if int(r[1]) == _HANDING_OUT]
        if stuck:
            self.commit_many([], finish=stuck)
        return self.release([str(r[0]) for r in rows if int(r[1]) == _PENDING])

    # ---- target KME: accept the source's reservation, deliver to slaves --------------------

    def accept_reservations(
        self, reservations: Sequence[Reservation], *, now: float | None = None
    ) -> None:
        """Record at the target KME that each ``res.chunk_ids`` form key ``res.key_id``.

        One transaction for all. Idempotent for the same reservation. A chunk held by another
        key that no slave has fetched yet is taken over (the source KME released that key
        after a failure or crash and never handed it out). Raises
        :class:`ChunksUnavailableError` (and records nothing) if chunks are unknown,
        consumed or expired here, :class:`KeyStoreError` on any other inconsistency.
        """
        t = time.time() if now is None else now
        lock = self._skip_locked.replace("SKIP LOCKED", "")
        with self._tx() as cur:
            existing: dict[str, tuple[Any, ...]] = {}
            for part in _parts([r.key_id for r in reservations], self._max_params):
                cond, params = self._in(part)
                for kid, chunk_ids, state in self._exec(
                    cur,
                    f"SELECT key_id, chunk_ids, state FROM kms_keys WHERE key_id {cond}",
                    params,
                ).fetchall():
                    existing[str(kid)] = (json.loads(chunk_ids), int(state))
            todo: list[Reservation] = []
            for res in reservations:
                old = existing.get(res.key_id)
                if old is None:
                    todo.append(res)
                elif old != (list(res.chunk_ids), _ISSUED):
                    raise KeyStoreError(f"key ID {res.key_id} already used")
            owner = {c: res for res in todo for c in res.chunk_ids}
            if len(owner) != sum(len(res.chunk_ids) for res in todo):
                raise KeyStoreError("reservations name a chunk twice")
            if not todo:
                return
            found: dict[str, tuple[Any, ...]] = {}
            for part in _parts(list(owner), self._max_params):
                cond, params = self._in(part)
                for row in self._exec(
                    cur,
                    "SELECT chunk_id, state, key_id, source_kme, target_kme, expires_at "
                    f"FROM kms_chunks WHERE chunk_id {cond}{lock}",
                    params,
                ).fetchall():
                    found[str(row[0])] = row
            missing = [c for c in owner if c not in found]
            takeover: set[str] = set()
            for cid, state, kid, src, dst, expires_at in found.values():
                link = owner[str(cid)].link
                if (str(src), str(dst)) != (link.source_kme_id, link.target_kme_id):
                    raise KeyStoreError(f"chunk {cid} belongs to another link")
                if int(state) == _RESERVED:
                    takeover.add(str(kid))
                elif int(state) != _AVAILABLE or float(expires_at) <= t:
                    missing.append(str(cid))
            if missing:
                raise ChunksUnavailableError(
                    f"{len(missing)} chunk(s) of the reservation are not available here",
                    missing,
                )
            for part in _parts(sorted(takeover)):
                marks = ",".join("?" * len(part))
                rows = self._exec(
                    cur,
                    f"SELECT slaves, pending FROM kms_keys WHERE key_id IN ({marks}){lock}",
                    part,
                ).fetchall()
                if len(rows) != len(part) or any(
                    json.loads(sl) != json.loads(pe) for sl, pe in rows
                ):
                    raise KeyStoreError("chunks of a key were already delivered here")
                self._exec(cur, f"DELETE FROM kms_keys WHERE key_id IN ({marks})", part)
                self._exec(
                    cur,
                    f"UPDATE kms_chunks SET state = {_AVAILABLE}, key_id = NULL "
                    f"WHERE key_id IN ({marks})",
                    part,
                )
            self._set_chunk_keys(cur, [(res.key_id, c) for res in todo for c in res.chunk_ids])
            self._insert_keys(
                cur,
                [self._key_row(res, _ISSUED, pending=res.slave_sae_ids, now=t) for res in todo],
            )

    def retrieve(
        self,
        key_ids: Sequence[str],
        *,
        master_sae_id: str,
        slave_sae_id: str,
        now: float | None = None,
    ) -> list[DeliveredKey]:
        """Deliver keys to a slave SAE (dec_keys), once each; all or nothing.

        Raises :class:`KeyNotFoundError` (HTTP 400) if any ID is unknown here, expired, of
        another master, or already fetched by this slave; :class:`KeyAccessDeniedError`
        (HTTP 401) if a key was not issued for ``slave_sae_id``. The first offending ID in
        request order decides which.
        """
        t = time.time() if now is None else now
        if len(set(key_ids)) != len(key_ids):
            raise KeyNotFoundError("a key ID is repeated in the request")
        lock = self._skip_locked.replace("SKIP LOCKED", "")
        with self._tx() as cur:
            rows: dict[str, Any] = {}
            for part in _parts(list(key_ids)):
                marks = ",".join("?" * len(part))
                for row in self._exec(
                    cur,
                    "SELECT key_id, master_sae, slaves, pending, size_bits, chunk_ids, state, "
                    "expires_at, source_kme, target_kme FROM kms_keys "
                    f"WHERE key_id IN ({marks}){lock}",
                    part,
                ).fetchall():
                    rows[str(row[0])] = row
            plan: list[tuple[str, int, list[str], list[str], LinkId]] = []
            for kid in key_ids:
                row = rows.get(kid)
                if row is None or int(row[6]) != _ISSUED or float(row[7]) <= t:
                    raise KeyNotFoundError(NOT_FOUND_MESSAGE)
                master, slaves, pending = (
                    str(row[1]),
                    json.loads(row[2]),
                    json.loads(row[3]),
                )
                if slave_sae_id not in slaves:
                    raise KeyAccessDeniedError(f"key {kid} was not issued for SAE {slave_sae_id!r}")
                if master != master_sae_id or slave_sae_id not in pending:
                    raise KeyNotFoundError(NOT_FOUND_MESSAGE)
                rest = [x for x in pending if x != slave_sae_id]
                link = LinkId(str(row[8]), str(row[9]))
                plan.append((kid, int(row[4]), json.loads(row[5]), rest, link))
            all_chunks = [c for _, _, chunk_ids, _, _ in plan for c in chunk_ids]
            mats: dict[str, Any] = {}
            for part in _parts(all_chunks):
                marks = ",".join("?" * len(part))
                mats.update(
                    (str(c), m)
                    for c, m in self._exec(
                        cur,
                        f"SELECT chunk_id, material FROM kms_chunks WHERE chunk_id IN ({marks})",
                        part,
                    ).fetchall()
                )
            out: list[DeliveredKey] = []
            done: list[str] = []
            partial: list[tuple[str, str]] = []
            delivered_per_link: dict[LinkId, int] = {}
            for kid, size_bits, chunk_ids, rest, link in plan:
                if any(mats.get(c) is None for c in chunk_ids):
                    raise KeyStoreError(f"key material of {kid} is missing")
                key = b"".join(bytes(mats[c]) for c in chunk_ids)[: size_bits // 8]
                out.append(DeliveredKey(key_id=kid, key=key))
                if rest:
                    partial.append((json.dumps(rest), kid))
                else:
                    done.append(kid)
                delivered_per_link[link] = delivered_per_link.get(link, 0) + 1
            if partial:
                self._execmany(cur, "UPDATE kms_keys SET pending = ? WHERE key_id = ?", partial)
            for part in _parts(done):
                marks = ",".join("?" * len(part))
                self._exec(
                    cur,
                    f"UPDATE kms_keys SET state = {_DONE}, pending = '[]' "
                    f"WHERE key_id IN ({marks})",
                    part,
                )
                self._exec(
                    cur,
                    f"UPDATE kms_chunks SET state = {_CONSUMED}, material = NULL "
                    f"WHERE key_id IN ({marks})",
                    part,
                )
            for link, n in delivered_per_link.items():
                self._bump(cur, link, "delivered", n)
        return out

    # ---- expiry ---------------------------------------------------------------------------

    def expire(self, *, now: float | None = None) -> int:
        """Erase expired available chunks and unfetched keys; returns chunks erased."""
        t = time.time() if now is None else now
        total = 0
        with self._tx(durable=False) as cur:
            per_link = self._exec(
                cur,
                "SELECT source_kme, target_kme, COUNT(*) FROM kms_chunks "
                f"WHERE state = {_AVAILABLE} AND expires_at <= ? GROUP BY source_kme, target_kme",
                [t],
            ).fetchall()
            if per_link:
                self._exec(
                    cur,
                    f"UPDATE kms_chunks SET state = {_EXPIRED}, material = NULL "
                    f"WHERE state = {_AVAILABLE} AND expires_at <= ?",
                    [t],
                )
            for src, dst, n in per_link:
                self._bump(cur, LinkId(str(src), str(dst)), "expired", int(n))
                total += int(n)
            keys = self._exec(
                cur,
                "SELECT key_id, source_kme, target_kme, chunk_ids FROM kms_keys "
                f"WHERE state = {_ISSUED} AND expires_at <= ?",
                [t],
            ).fetchall()
            for kid, src, dst, chunk_ids in keys:
                self._exec(
                    cur,
                    f"UPDATE kms_keys SET state = {_EXPIRED_KEY} WHERE key_id = ?",
                    [kid],
                )
                self._exec(
                    cur,
                    f"UPDATE kms_chunks SET state = {_EXPIRED}, material = NULL WHERE key_id = ?",
                    [kid],
                )
                n = len(json.loads(chunk_ids))
                self._bump(cur, LinkId(str(src), str(dst)), "expired", n)
                total += n
        return total


_EXPIRED_KEY = 3
_shard = threading.local()
_shard_ids = itertools.count()


def _parts(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    """``items`` in slices of at most ``size`` (bound parameters per statement)."""
    if len(items) <= size:
        if items:
            yield items
        return
    for start in range(0, len(items), size):
        yield items[start : start + size]


_DDL_COMMON = """
CREATE TABLE IF NOT EXISTS kms_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS kms_counters (
  source_kme TEXT NOT NULL, target_kme TEXT NOT NULL, name TEXT NOT NULL,
  value BIGINT NOT NULL, PRIMARY KEY (source_kme, target_kme, name));
CREATE TABLE IF NOT EXISTS kms_keys (
  key_id TEXT PRIMARY KEY, source_kme TEXT NOT NULL, target_kme TEXT NOT NULL,
  master_sae TEXT NOT NULL, slaves TEXT NOT NULL, pending TEXT NOT NULL,
  size_bits INTEGER NOT NULL, chunk_ids TEXT NOT NULL, state INTEGER NOT NULL,
  created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS kms_keys_state ON kms_keys (state, created_at);
CREATE INDEX IF NOT EXISTS kms_chunks_pool
  ON kms_chunks (source_kme, target_kme, state, seq, expires_at);
CREATE INDEX IF NOT EXISTS kms_chunks_key ON kms_chunks (key_id);
CREATE INDEX IF NOT EXISTS kms_chunks_expiry ON kms_chunks (state, expires_at);
CREATE INDEX IF NOT EXISTS kms_keys_expiry ON kms_keys (state, expires_at);
"""

_DDL_SQLITE = (
    """
CREATE TABLE IF NOT EXISTS kms_chunks (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL UNIQUE,
  source_kme TEXT NOT NULL, target_kme TEXT NOT NULL, material BLOB,
  state INTEGER NOT NULL, key_id TEXT, expires_at DOUBLE PRECISION NOT NULL);
"""
    + _DDL_COMMON
)

_DDL_POSTGRES = (
    """
CREATE TABLE IF NOT EXISTS kms_chunks (
  seq BIGSERIAL PRIMARY KEY, chunk_id TEXT NOT NULL UNIQUE,
  source_kme TEXT NOT NULL, target_kme TEXT NOT NULL, material BYTEA,
  state INTEGER NOT NULL, key_id TEXT, expires_at DOUBLE PRECISION NOT NULL);
"""
    + _DDL_COMMON
)


# One statement, hence one transaction in autocommit mode and one round trip: lock the pool
# head (SKIP LOCKED: concurrent callers take disjoint chunks), and only if there are enough
# chunks, mark them for the keys (chunk i goes to key i // per) and insert the key rows.
# The reservation need not be durable (a power cut undoes it: safe), hence set_config.
_PG_RESERVE = f"""
WITH picked AS MATERIALIZED (
  SELECT seq FROM kms_chunks
  WHERE source_kme = %(src)s AND target_kme = %(dst)s AND state = {_AVAILABLE}
    AND expires_at > %(now)s
  ORDER BY seq LIMIT %(need)s FOR UPDATE SKIP LOCKED),
enough AS (SELECT count(*) = %(need)s AS ok FROM picked),
numbered AS (
  SELECT seq, row_number() OVER (ORDER BY seq) AS rn FROM picked
  WHERE (SELECT ok FROM enough)),
upd AS (
  UPDATE kms_chunks c SET state = {_RESERVED},
    key_id = (%(kids)s::text[])[((n.rn - 1) / %(per)s)::int + 1]
  FROM numbered n WHERE c.seq = n.seq
  RETURNING c.seq, c.chunk_id, c.material, c.key_id),
ins AS (
  INSERT INTO kms_keys (key_id, source_kme, target_kme, master_sae, slaves, pending,
    size_bits, chunk_ids, state, created_at, expires_at)
  SELECT k.id, %(src)s, %(dst)s, %(master)s, %(slaves)s, %(slaves)s, %(size)s,
    (SELECT json_agg(u.chunk_id ORDER BY u.seq)::text FROM upd u WHERE u.key_id = k.id),
    {_PENDING}, %(now)s, %(exp)s
  FROM unnest(%(kids)s::text[]) AS k(id) WHERE (SELECT ok FROM enough))
SELECT u.chunk_id, u.material, u.key_id, set_config('synchronous_commit', 'off', true)
FROM upd u ORDER BY u.seq
"""


_KEY_COLUMNS = (
    "key_id",
    "source_kme",
    "target_kme",
    "master_sae",
    "slaves",
    "pending",
    "size_bits",
    "chunk_ids",
    "state",
    "created_at",
    "expires_at",
)
_KEY_TYPES = ("text",) * 6 + ("int", "text", "int", "float8", "float8")
_KEY_ARRAYS = ", ".join(f"%(k_{c})s::{t}[]" for c, t in zip(_KEY_COLUMNS, _KEY_TYPES, strict=True))

# The target's record in one statement (autocommit: its own fsynced transaction): lock the
# named chunks; only if each is available here, unexpired and of the right link, and no key
# ID is known yet, mark them and insert the keys. Otherwise nothing is written.
_PG_ACCEPT = f"""
WITH want AS (
  SELECT * FROM unnest(%(cids)s::text[], %(ckids)s::text[], %(csrc)s::text[], %(cdst)s::text[])
    AS w(c, k, src, dst)),
locked AS MATERIALIZED (
  SELECT chunk_id, state, source_kme, target_kme, expires_at FROM kms_chunks
  WHERE chunk_id = ANY(%(cids)s::text[]) FOR UPDATE),
ok AS (
  SELECT (SELECT count(*) FROM locked l JOIN want w ON w.c = l.chunk_id
          WHERE l.state = {_AVAILABLE} AND l.source_kme = w.src AND l.target_kme = w.dst
            AND l.expires_at > %(now)s) = %(n)s
     AND NOT EXISTS (SELECT 1 FROM kms_keys WHERE key_id = ANY(%(kids)s::text[])) AS ok),
upd AS (
  UPDATE kms_chunks ch SET state = {_RESERVED}, key_id = w.k FROM want w
  WHERE ch.chunk_id = w.c AND (SELECT ok FROM ok)),
ins AS (
  INSERT INTO kms_keys ({", ".join(_KEY_COLUMNS)})
  SELECT * FROM unnest({_KEY_ARRAYS})
  WHERE (SELECT ok FROM ok))
SELECT ok FROM ok
"""


# Hand-outs and erasures at the source in one statement (autocommit: its own transaction):
# only if every key to hand out is still pending (locked), pending -> handing out (counted
# as delivered); handing out -> done with the chunks' material erased. Otherwise nothing.
_PG_HAND_OUT = f"""
WITH lk AS MATERIALIZED (
  SELECT key_id FROM kms_keys
  WHERE key_id = ANY(%(ho)s::text[]) AND state = {_PENDING} FOR UPDATE),
ok AS (SELECT count(*) = %(n)s AS ok FROM lk),
ho AS (
  UPDATE kms_keys SET state = {_HANDING_OUT}, pending = '[]'
  WHERE key_id = ANY(%(ho)s::text[]) AND state = {_PENDING} AND (SELECT ok FROM ok)
  RETURNING source_kme, target_kme),
fk AS (
  UPDATE kms_keys SET state = {_DONE}, pending = '[]'
  WHERE key_id = ANY(%(fin)s::text[]) AND state = {_HANDING_OUT} AND (SELECT ok FROM ok)
  RETURNING key_id),
fc AS (
  UPDATE kms_chunks SET state = {_CONSUMED}, material = NULL
  WHERE key_id IN (SELECT key_id FROM fk) AND state = {_RESERVED}),
cnt AS (
  INSERT INTO kms_counters (source_kme, target_kme, name, value)
  SELECT source_kme, target_kme, %(counter)s, count(*) FROM ho GROUP BY source_kme, target_kme
  ON CONFLICT (source_kme, target_kme, name)
  DO UPDATE SET value = kms_counters.value + excluded.value)
SELECT ok, set_config('synchronous_commit', %(sync)s, true) FROM ok
"""


class SqliteKeyStore(KeyStore):
    """SQLite back end: one file, WAL journal, ``BEGIN IMMEDIATE`` write transactions.

    One connection per store object guarded by a lock (SQLite has one writer anyway);
    other processes on the same file are serialised by SQLite's lock and ``busy_timeout``.
    ``synchronous=FULL`` by default: every hand-out (commit, retrieve, accept) is fsynced
    and survives a power cut; reservations and expiry commit without fsync (a process
    crash never loses them; after a power cut they are simply undone).
    """

    _pool_index = " INDEXED BY kms_chunks_pool"

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_bits: int | None = None,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 30_000,
    ) -> None:
        if synchronous.upper() not in {"FULL", "NORMAL", "EXTRA"}:
            raise ConfigError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self.path = str(path)
        try:
            self._conn = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=busy_timeout_ms / 1000,
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if self.path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
            # Overwrite erased key material with zeros instead of leaving it in free space.
            self._conn.execute("PRAGMA secure_delete = ON")
            self._sync = self._sync_now = synchronous.upper()
            self._conn.execute(f"PRAGMA synchronous = {self._sync}")
        except sqlite3.Error as exc:
            raise KeyStoreError(f"cannot open key store {self.path!r}: {exc}") from None
        self._lock = threading.RLock()
        # Reads (counts, metrics) on their own connection: in WAL mode they never wait for,
        # nor hold up, the writer.
        self._rconn: sqlite3.Connection | None = None
        self._rlock = threading.Lock()
        with self._tx() as cur:
            for stmt in _DDL_SQLITE.split(";"):
                if stmt.strip():
                    cur.execute(stmt)
        self._init_meta(chunk_bits)
        if self.path != ":memory:":
            try:
                self._rconn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                self._rconn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            except sqlite3.Error as exc:
                raise KeyStoreError(f"cannot open key store {self.path!r}: {exc}") from None

    @contextmanager
    def _read(self) -> Iterator[Any]:
        assert self._rconn is not None
        with self._rlock:
            cur = self._rconn.cursor()
            try:
                cur.execute("BEGIN")
                yield cur
                self._rconn.commit()
            except sqlite3.Error as exc:
                self._rconn.rollback()
                raise KeyStoreError(f"key store error: {exc}") from None
            except BaseException:
                self._rconn.rollback()
                raise
            finally:
                cur.close()

    @contextmanager
    def _tx(self, *, durable: bool = True, write: bool = True) -> Iterator[Any]:
        if not write and self._rconn is not None:
            with self._read() as rcur:
                yield rcur
            return
        with self._lock:
            want = self._sync if durable else "NORMAL"
            cur = self._conn.cursor()
            try:
                if want != self._sync_now:  # only settable outside a transaction
                    cur.execute(f"PRAGMA synchronous = {want}")
                    self._sync_now = want
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            except sqlite3.Error as exc:
                cur.close()
                raise KeyStoreError(f"key store busy or unavailable: {exc}") from None
            try:
                yield cur
                self._conn.commit()
            except sqlite3.Error as exc:
                self._conn.rollback()
                raise KeyStoreError(f"key store error: {exc}") from None
            except BaseException:
                self._conn.rollback()
                raise
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
        with self._rlock:
            if self._rconn is not None:
                self._rconn.close()


class PostgresKeyStore(KeyStore):
    """PostgreSQL back end (psycopg 3, ``[postgres]`` extra): a pool of up to ``pool_size``
    connections opened on demand (a broken one is replaced), row locks with
    ``FOR UPDATE SKIP LOCKED`` so concurrent requests take disjoint chunks."""

    _skip_locked = " FOR UPDATE SKIP LOCKED"
    _max_params = 1 << 30  # arrays: one parameter whatever the length

    def __init__(self, url: str, *, chunk_bits: int | None = None, pool_size: int = 8) -> None:
        try:
            import psycopg
        except ImportError:
            raise MissingExtraError.for_extra("postgres", "psycopg") from None
        self._psycopg = psycopg
        self.url = url
        self._idle: list[Any] = []
        self._opened = 0
        self._size = max(1, pool_size)
        self.commit_concurrency = max(1, self._size // 3)
        self._cond = threading.Condition()
        with self._tx() as cur:
            # Serialise schema creation between processes starting at once.
            cur.execute("SELECT pg_advisory_xact_lock(720140014)")
            # DDL on existing tables would take table locks that deadlock with live traffic.
            cur.execute("SELECT to_regclass('kms_meta'), to_regclass('kms_keys_expiry')")
            if None in cur.fetchone():
                for stmt in _DDL_POSTGRES.split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
        self._init_meta(chunk_bits)

    def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(sql.replace("?", "%s"), tuple(params))
        return cur

    def _execmany(self, cur: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])

    def _acquire(self) -> Any:
        with self._cond:
            while not self._idle and self._opened >= self._size:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._opened += 1
        try:
            # Autocommit: a single-statement call (reserve) is its own transaction, one round
            # trip; multi-statement calls open one explicitly (conn.transaction()).
            return self._psycopg.connect(self.url, autocommit=True)
        except self._psycopg.Error as exc:
            with self._cond:
                self._opened -= 1
                self._cond.notify()
            raise KeyStoreError(f"cannot connect to the key store database: {exc}") from None

    def _give_back(self, conn: Any) -> None:
        with self._cond:
            if conn.broken or conn.closed:
                conn.close()
                self._opened -= 1
            else:
                self._idle.append(conn)
            self._cond.notify()

    @contextmanager
    def _tx(self, *, durable: bool = True, write: bool = True) -> Iterator[Any]:
        conn = self._acquire()
        try:
            with conn.transaction(), conn.cursor() as cur:
                if not durable and write:
                    cur.execute("SET LOCAL synchronous_commit = off")
                yield cur
        except self._psycopg.Error as exc:
            raise KeyStoreError(f"key store database error: {exc}") from None
        finally:
            self._give_back(conn)

    def _in(self, ids: Sequence[str]) -> tuple[str, list[Any]]:
        return "= ANY(?)", [list(ids)]

    def _insert_keys(self, cur: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        # One statement over arrays (one round trip) instead of one INSERT per key.
        if not rows:
            return
        cols = [list(c) for c in zip(*rows, strict=True)]
        cur.execute(
            "INSERT INTO kms_keys (key_id, source_kme, target_kme, master_sae, slaves, pending, "
            "size_bits, chunk_ids, state, created_at, expires_at) SELECT * FROM unnest("
            "%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::int[], %s::text[], %s::int[], %s::float8[], %s::float8[])",
            cols,
        )

    def _set_chunk_keys(self, cur: Any, pairs: Sequence[tuple[str, str]]) -> None:
        if not pairs:
            return
        cur.execute(
            f"UPDATE kms_chunks c SET state = {_RESERVED}, key_id = v.k "
            "FROM unnest(%s::text[], %s::text[]) AS v(k, c) WHERE c.chunk_id = v.c",
            [[k for k, _ in pairs], [c for _, c in pairs]],
        )

    def reserve(
        self,
        link: LinkId,
        *,
        number: int,
        size_bits: int,
        master_sae_id: str,
        slave_sae_ids: Sequence[str],
        lifetime_s: float = DEFAULT_LIFETIME_S,
        now: float | None = None,
    ) -> list[tuple[Reservation, bytes]]:
        """:meth:`KeyStore.reserve` in one statement (one round trip, no fsync): pick the
        pool head with ``FOR UPDATE SKIP LOCKED``, mark it, insert the keys, all or nothing
        (fewer chunks than needed: nothing is written)."""
        if number <= 0 or size_bits <= 0 or size_bits % 8:
            raise ConfigError("number must be >= 1 and size a positive multiple of 8")
        t = time.time() if now is None else now
        per_key = self.chunks_per_key(size_bits)
        need = per_key * number
        key_ids = [str(uuid.uuid4()) for _ in range(number)]
        slaves = tuple(slave_sae_ids)
        params = {
            "src": link.source_kme_id,
            "dst": link.target_kme_id,
            "now": t,
            "need": need,
            "per": per_key,
            "kids": key_ids,
            "master": master_sae_id,
            "slaves": json.dumps(list(slaves)),
            "size": int(size_bits),
            "exp": t + float(lifetime_s),
        }
        conn = self._acquire()
        try:
            rows = conn.execute(_PG_RESERVE, params).fetchall()
        except self._psycopg.Error as exc:
            raise KeyStoreError(f"key store database error: {exc}") from None
        finally:
            self._give_back(conn)
        if len(rows) < need:
            raise NotEnoughKeysError(
                f"not enough key material on link {link.source_kme_id}->"
                f"{link.target_kme_id}: {need} chunks of {self.chunk_bits} bits needed"
            )
        out: list[tuple[Reservation, bytes]] = []
        for k, key_id in enumerate(key_ids):
            part = rows[k * per_key : (k + 1) * per_key]
            assert all(r[2] == key_id for r in part)
            res = Reservation(
                key_id=key_id,
                link=link,
                size_bits=int(size_bits),
                chunk_ids=tuple(str(r[0]) for r in part),
                master_sae_id=master_sae_id,
                slave_sae_ids=slaves,
                expires_at=t + float(lifetime_s),
            )
            out.append((res, b"".join(bytes(r[1]) for r in part)[: size_bits // 8]))
        return out

    def commit_many(
        self,
        batches: Sequence[tuple[Sequence[str], Sequence[str]]],
        *,
        hand_out: Sequence[str] = (),
        finish: Sequence[str] = (),
    ) -> None:
        """:meth:`KeyStore.commit_many`; hand-outs and erasures (the KME's enc_keys path) in
        one statement: one round trip, one fsync (none for erasures alone)."""
        if batches:
            super().commit_many(batches, hand_out=hand_out, finish=finish)
            return
        ho = list(hand_out)
        if len(set(ho)) != len(ho):
            raise KeyStoreError("a reservation is committed twice")
        fin = [k for k in dict.fromkeys(finish) if k not in set(ho)]
        if not ho and not fin:
            return
        params = {
            "ho": ho,
            "n": len(ho),
            "fin": fin,
            "counter": "delivered" + self._counter_shard(),
            "sync": "on" if ho else "off",
        }
        conn = self._acquire()
        try:
            ok = bool(conn.execute(_PG_HAND_OUT, params).fetchone()[0])
        except self._psycopg.Error as exc:
            raise KeyStoreError(f"key store database error: {exc}") from None
        finally:
            self._give_back(conn)
        if not ok:
            raise KeyStoreError("a reservation is no longer pending")

    def accept_reservations(
        self, reservations: Sequence[Reservation], *, now: float | None = None
    ) -> None:
        """:meth:`KeyStore.accept_reservations`; the usual case (every chunk available here,
        no key ID known yet) in one statement, one round trip and one fsync. Anything else
        (a retry, a take-over, missing chunks) writes nothing there and takes the general
        path, which says what is wrong."""
        t = time.time() if now is None else now
        pairs = [(c, res) for res in reservations for c in res.chunk_ids]
        kids = [res.key_id for res in reservations]
        if (
            reservations
            and len({c for c, _ in pairs}) == len(pairs)
            and len(set(kids)) == len(kids)
        ):
            rows = [
                self._key_row(res, _ISSUED, pending=res.slave_sae_ids, now=t)
                for res in reservations
            ]
            params: dict[str, Any] = {
                "cids": [c for c, _ in pairs],
                "ckids": [res.key_id for _, res in pairs],
                "csrc": [res.link.source_kme_id for _, res in pairs],
                "cdst": [res.link.target_kme_id for _, res in pairs],
                "now": t,
                "n": len(pairs),
                "kids": kids,
            }
            for name, col in zip(_KEY_COLUMNS, zip(*rows, strict=True), strict=True):
                params["k_" + name] = list(col)
            conn = self._acquire()
            try:
                ok = bool(conn.execute(_PG_ACCEPT, params).fetchone()[0])
            except self._psycopg.Error:
                ok = False  # e.g. the same key ID inserted meanwhile: the general path decides
            finally:
                self._give_back(conn)
            if ok:
                return
        super().accept_reservations(reservations, now=now)

    def close(self) -> None:
        with self._cond:
            for conn in self._idle:
                conn.close()
            self._opened -= len(self._idle)
            self._idle.clear()


def open_store(
    url_or_path: str | Path, *, chunk_bits: int | None = None, **options: Any
) -> KeyStore:
    """Open (creating if needed) the key store at a SQLite path or a PostgreSQL URL.

    ``postgresql://user@host:port/db`` (or ``postgres://``) selects PostgreSQL; anything else
    is a SQLite file path (``sqlite:///path`` accepted too; ``:memory:`` for tests).

    >>> open_store(":memory:").chunk_bits
    256
    """
    s = str(url_or_path)
    if s.startswith(("postgresql://", "postgres://")):
        return PostgresKeyStore(s, chunk_bits=chunk_bits, **options)
    if s.startswith("sqlite:///"):
        s = s[len("sqlite:///") :]
    elif "://" in s:
        raise ConfigError(f"unsupported key store URL {s!r}: use a SQLite path or postgresql://")
    return SqliteKeyStore(s, chunk_bits=chunk_bits, **options)
