"""The KME logic of ETSI GS QKD 014 V1.1.1, without HTTP.

:class:`KmeService` takes the authenticated caller (the CN of its TLS client certificate)
and the decoded JSON request, and returns the answer's JSON object or raises
:class:`EtsiError` with the HTTP status (400, 401 or 503) and the Error body. The HTTP layer
(:mod:`cvqkd.kms.api`) only moves bytes.

Two KMEs share a link's keys (see docs/kme.md): the link's source KME serves enc_keys; it
reserves chunks in its store, tells the target KME which chunks form which key ID over the
KME-to-KME call (mTLS, :meth:`KmeService.peer_reserve`), and hands the keys out only after the
peer has recorded them. The target KME serves dec_keys from its own store. When master and
slave SAE are attached to the same KME, the link is (KME, KME) and no peer is involved.

Example::

    >>> from cvqkd.kms.store import open_store
    >>> settings = KmeSettings(kme_id="K", sae_kme={"A": "K", "B": "K"})
    >>> svc = KmeService(settings, open_store(":memory:"))
    >>> svc.status(caller_sae_id="A", slave_sae_id="B")["stored_key_count"]
    0
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from cvqkd.errors import ConfigError, KeyNotFoundError, KeyStoreError
from cvqkd.kms.models import KeyIDs, KeyRequest, Status, b64encode_key
from cvqkd.kms.store import (
    NOT_FOUND_MESSAGE,
    ChunksUnavailableError,
    KeyAccessDeniedError,
    KeyStore,
    LinkId,
    NotEnoughKeysError,
    Reservation,
)

__all__ = ["EtsiError", "KmeService", "KmeSettings", "PeerNotifier"]

MSG_SIZE_MULTIPLE_OF_8 = "size shall be a multiple of 8"
MSG_EXT_MANDATORY = "not all extension_mandatory parameters are supported"


class EtsiError(Exception):
    """An ETSI 014 error answer: HTTP ``status`` with the Error body ``{message, details}``."""

    def __init__(
        self, status: int, message: str, details: Sequence[Mapping[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = [dict(d) for d in details] if details else None

    def body(self) -> dict[str, Any]:
        """The Error JSON object."""
        out: dict[str, Any] = {"message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class PeerNotifier(Protocol):
    """Tells a peer KME which chunks form which keys (the KME-to-KME call)."""

    def reserve(self, kme_id: str, reservations: Sequence[Reservation]) -> None:
        """Record ``reservations`` at KME ``kme_id``; raise :class:`KeyStoreError` on failure."""
        ...


@dataclass(frozen=True)
class KmeSettings:
    """What one KME serves. Sizes in bits; ``sae_kme`` maps every known SAE ID to its KME ID."""

    kme_id: str
    sae_kme: Mapping[str, str]
    key_size_bits: int = 256
    min_key_size_bits: int = 64
    max_key_size_bits: int = 8192
    max_keys_per_request: int = 128
    max_key_count: int = 100_000
    max_sae_id_count: int = 4
    key_lifetime_s: float = 86_400.0
    stale_reservation_s: float = 60.0
    peers: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        for name in ("key_size_bits", "min_key_size_bits", "max_key_size_bits"):
            v = getattr(self, name)
            if v <= 0 or v % 8:
                raise ConfigError(f"{name} must be a positive multiple of 8, got {v}")
        if not self.min_key_size_bits <= self.key_size_bits <= self.max_key_size_bits:
            raise ConfigError("need min_key_size_bits <= key_size_bits <= max_key_size_bits")
        if self.max_keys_per_request < 1 or self.max_key_count < 1 or self.max_sae_id_count < 0:
            raise ConfigError("max_keys_per_request and max_key_count must be >= 1")


class _Slot:
    __slots__ = ("error", "finished", "item", "taken")

    def __init__(self, item: Any) -> None:
        self.item = item
        self.taken = False
        self.finished = False
        self.error: BaseException | None = None


class GroupCommit:
    """Run ``fn(items)`` on the items that concurrent callers submit, batched: one database
    transaction (one fsync) for every request waiting at that moment.

    Leader/follower: the first caller runs the batch, the others wait. With ``leaders`` > 1
    (PostgreSQL: transactions on several connections share the server's WAL flushes), a new
    batch may start while ``leaders - 1`` others are still committing. If a batch fails,
    each of its items is retried alone, so one bad request never fails the others.
    """

    def __init__(
        self, fn: Any, *, leaders: int = 1, weight: Any = None, max_weight: int = 0
    ) -> None:
        self._fn = fn
        self._cond = threading.Condition()
        self._queue: list[_Slot] = []
        self._max_leaders = max(1, leaders)
        self._busy = 0
        self._weight = weight
        self._max_weight = max_weight

    def submit(self, item: Any) -> None:
        """Run ``item`` (in some batch) and return when it is committed, or raise its error."""
        slot = _Slot(item)
        with self._cond:
            self._queue.append(slot)
            while not slot.finished:
                if slot.taken or self._busy >= self._max_leaders:
                    self._cond.wait()
                    continue
                self._busy += 1
                batch, self._queue = self._take()
                for s in batch:
                    s.taken = True
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy -= 1
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error

    def _take(self) -> tuple[list[_Slot], list[_Slot]]:
        """The next batch (all queued items, or as many as fit ``max_weight``) and the rest."""
        if self._weight is None:
            return self._queue, []
        total = 0
        for n, s in enumerate(self._queue):
            total += self._weight(s.item)
            if n and total > self._max_weight:
                return self._queue[:n], self._queue[n:]
        return self._queue, []

    def _run(self, batch: list[_Slot]) -> None:
        try:
            self._fn([s.item for s in batch])
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                for s in batch:
                    try:
                        self._fn([s.item])
                    except BaseException as one:
                        s.error = one
        for s in batch:
            s.finished = True


class Committer:
    """Group commit on a dedicated thread, so that a request can do something else (the
    KME-to-KME call) while its commit waits for the disk.

    :meth:`start` queues an item and returns at once; :meth:`wait` returns when it is
    committed or raises its error. The thread runs ``fn(items, finish)`` on every item
    queued at that moment (one transaction, one fsync); ``finish`` carries the key IDs
    given to :meth:`defer` since the last run (work that need not be waited for: it rides
    along with the next batch, or runs alone after ``defer_s``). If a batch fails, each
    item is retried alone, so one bad request never fails the others.

    >>> seen = []
    >>> c = Committer(lambda items, finish: seen.append((items, finish)))
    >>> c.defer(["k0"]); c.wait(c.start("a")); c.close()
    >>> seen
    [(['a'], ['k0'])]
    """

    def __init__(self, fn: Any, *, defer_s: float = 0.05, workers: int = 1) -> None:
        self._fn = fn
        self._defer_s = defer_s
        self._workers = max(1, workers)
        self._cond = threading.Condition()
        self._queue: list[_Slot] = []
        self._finish: list[str] = []
        self._finish_since = 0.0
        self._threads: list[threading.Thread] = []
        self._closed = False

    def start(self, item: Any) -> _Slot:
        """Queue ``item`` for the next batch; returns the handle for :meth:`wait`."""
        slot = _Slot(item)
        with self._cond:
            if self._closed:
                raise KeyStoreError("the KME is shutting down")
            self._queue.append(slot)
            self._ensure_thread()
            self._cond.notify_all()
        return slot

    def wait(self, slot: _Slot) -> None:
        """Block until ``slot`` is committed; raise its error if it failed."""
        with self._cond:
            while not slot.finished:
                self._cond.wait()
        if slot.error is not None:
            raise slot.error

    def submit(self, item: Any) -> None:
        """:meth:`start` then :meth:`wait`."""
        self.wait(self.start(item))

    def defer(self, key_ids: Sequence[str]) -> None:
        """Queue finishing work that nobody waits for."""
        with self._cond:
            if not self._finish:
                self._finish_since = time.monotonic()
            self._finish.extend(key_ids)
            self._ensure_thread()
            self._cond.notify_all()

    def close(self) -> None:
        """Run what is queued, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout=30)

    def _ensure_thread(self) -> None:
        while len(self._threads) < self._workers:
            t = threading.Thread(target=self._loop, name="kme-commit", daemon=True)
            self._threads.append(t)
            t.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._queue or (self._closed and self._finish):
                        break
                    if self._closed:
                        return
                    if self._finish:
                        left = self._finish_since + self._defer_s - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    else:
                        self._cond.wait()
                batch, self._queue = self._queue, []
                finish, self._finish = self._finish, []
            self._run(batch, finish)
            with self._cond:
                for s in batch:
                    s.finished = True
                self._cond.notify_all()

    def _run(self, batch: list[_Slot], finish: list[str]) -> None:
        try:
            self._fn([s.item for s in batch], finish)
            return
        except BaseException as exc:
            if len(batch) == 1 and not finish:
                batch[0].error = exc
                return
        for s in batch:
            try:
                self._fn([s.item], [])
            except BaseException as one:
                s.error = one
        if finish:
            try:
                self._fn([], finish)
            except BaseException:  # release_stale erases them later
                pass


def _validation_details(exc: ValidationError) -> list[dict[str, Any]]:
    return [{".".join(str(p) for p in err["loc"]) or "body": err["msg"]} for err in exc.errors()]


class KmeService:
    """One KME: ETSI 014 status, enc_keys and dec_keys, and the KME-to-KME reservation.

    Thread-safe (the store is). Counts requests and errors per call for :meth:`metrics`.
    """

    def __init__(
        self,
        settings: KmeSettings,
        store: KeyStore,
        peers: PeerNotifier | None = None,
        *,
        clock: Any = time.time,
    ) -> None:
        self.settings = settings
        self.store = store
        self.peers = peers
        self._clock = clock
        self._lock = threading.Lock()
        self._requests: dict[str, int] = {}
        self._errors: dict[str, int] = {}
        self._last_maintenance = 0.0
        self._count_cache: dict[LinkId, tuple[float, int]] = {}
        workers = store.commit_concurrency
        self._commit = Committer(self._commit_batch, workers=workers)
        self._accept = GroupCommit(
            lambda items: store.accept_reservations([r for rs in items for r in rs]),
            leaders=workers,
        )
        # Concurrent requests share one KME-to-KME call (and so one record at the peer),
        # up to max_keys_per_request keys per call (the peer's request-size limit).
        self._peer_calls = GroupCommit(
            self._notify_peers,
            leaders=2,
            weight=lambda item: len(item[1]),
            max_weight=settings.max_keys_per_request,
        )
        # Reservations left pending by a crash (older than any live request) go back.
        store.release_stale(older_than_s=settings.stale_reservation_s)

    def _commit_batch(self, items: Sequence[tuple[str, Any]], finish: Sequence[str]) -> None:
        local = [x for kind, x in items if kind == "local"]
        hand_out = [k for kind, x in items if kind == "hand_out" for k in x]
        self.store.commit_many(local, hand_out=hand_out, finish=finish)

    def _notify_peers(self, items: Sequence[tuple[str, Sequence[Reservation]]]) -> None:
        assert self.peers is not None
        per_peer: dict[str, list[Reservation]] = {}
        for kme_id, reservations in items:
            per_peer.setdefault(kme_id, []).extend(reservations)
        for kme_id, reservations in per_peer.items():
            self.peers.reserve(kme_id, reservations)

    def close(self) -> None:
        """Finish the queued commits (call before closing the store)."""
        self._commit.close()

    # ---- bookkeeping ----------------------------------------------------------------------

    def count(self, call: str, *, error: bool) -> None:
        """Count one request to ``call`` (and one error if ``error``)."""
        with self._lock:
            self._requests[call] = self._requests.get(call, 0) + 1
            if error:
                self._errors[call] = self._errors.get(call, 0) + 1

    def maintenance(self, *, force: bool = False) -> None:
        """Expire old keys and release stale reservations, at most once a second."""
        now = self._clock()
        with self._lock:
            if not force and now - self._last_maintenance < 1.0:
                return
            self._last_maintenance = now
        self.store.expire(now=now)
        self.store.release_stale(older_than_s=self.settings.stale_reservation_s, now=now)

    def metrics(self) -> dict[str, Any]:
        """Requests and errors per call, and the store's counters per link."""
        with self._lock:
            req, err = dict(self._requests), dict(self._errors)
        links = {}
        for link in self.store.links():
            m = self.store.metrics(link)
            links[f"{link.source_kme_id}->{link.target_kme_id}"] = {
                "stored_chunks": m.stored_chunks,
                "available_chunks": m.available_chunks,
                "delivered_keys": m.delivered_keys,
                "expired_chunks": m.expired_chunks,
            }
        return {
            "kme_id": self.settings.kme_id,
            "chunk_bits": self.store.chunk_bits,
            "requests": req,
            "errors": err,
            "links": links,
        }

    def metrics_for(self, caller_id: str) -> dict[str, Any]:
        """``GET /kme/v1/metrics``: for this KME's own certificate or a peer KME only."""
        if caller_id != self.settings.kme_id and caller_id not in self.settings.peers:
            raise EtsiError(401, f"{caller_id!r} may not read the metrics of this KME")
        return self.metrics()

    # ---- checks ----------------------------------------------------------------------------

    def _available(self, link: LinkId) -> int:
        """Available chunks of ``link``, cached for a second (a COUNT over a large pool)."""
        now = time.monotonic()
        with self._lock:
            hit = self._count_cache.get(link)
        if hit is not None and now - hit[0] < 1.0:
            return hit[1]
        n = self.store.available_chunks(link)
        with self._lock:
            self._count_cache[link] = (now, n)
        return n

    def _local_sae(self, sae_id: str) -> None:
        if self.settings.sae_kme.get(sae_id) != self.settings.kme_id:
            raise EtsiError(401, f"SAE {sae_id!r} is not authorised at KME {self.settings.kme_id}")

    def _known_sae(self, sae_id: str, role: str) -> str:
        kme = self.settings.sae_kme.get(sae_id)
        if kme is None:
            raise EtsiError(400, f"{role} SAE ID {sae_id!r} is unknown to this KME")
        return kme

    def _link_for(self, slave_kme: str) -> LinkId:
        return LinkId(self.settings.kme_id, slave_kme)

    # ---- ETSI 014 calls ----------------------------------------------------------------------

    def status(self, *, caller_sae_id: str, slave_sae_id: str) -> dict[str, Any]:
        """``GET /api/v1/keys/{slave_SAE_ID}/status`` called by master ``caller_sae_id``."""
        self._local_sae(caller_sae_id)
        slave_kme = self._known_sae(slave_sae_id, "slave")
        link = self._link_for(slave_kme)
        s = self.settings
        avail = self._available(link)
        stored = avail // self.store.chunks_per_key(s.key_size_bits)
        return Status(
            source_KME_ID=s.kme_id,
            target_KME_ID=slave_kme,
            master_SAE_ID=caller_sae_id,
            slave_SAE_ID=slave_sae_id,
            key_size=s.key_size_bits,
            stored_key_count=min(stored, s.max_key_count),
            max_key_count=s.max_key_count,
            max_key_per_request=s.max_keys_per_request,
            max_key_size=s.max_key_size_bits,
            min_key_size=s.min_key_size_bits,
            max_SAE_ID_count=s.max_sae_id_count,
            status_extension={
                "chunk_bits": self.store.chunk_bits,
                "available_bits": avail * self.store.chunk_bits,
            },
        ).model_dump(exclude_none=True)

    def enc_keys(
        self, *, caller_sae_id: str, slave_sae_id: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``GET|POST /api/v1/keys/{slave_SAE_ID}/enc_keys`` called by master ``caller_sae_id``."""
        s = self.settings
        self._local_sae(caller_sae_id)
        slave_kme = self._known_sae(slave_sae_id, "slave")
        try:
            req = KeyRequest.model_validate(dict(request))
        except ValidationError as exc:
            raise EtsiError(400, "invalid key request", _validation_details(exc)) from None
        if req.extension_mandatory:
            names = [k for ext in req.extension_mandatory for k in ext]
            raise EtsiError(400, MSG_EXT_MANDATORY, [{"extension_mandatory": n} for n in names])
        number = 1 if req.number is None else req.number
        size = s.key_size_bits if req.size is None else req.size
        if number < 1:
            raise EtsiError(400, "number shall be at least 1")
        if number > s.max_keys_per_request:
            raise EtsiError(400, f"number exceeds max_key_per_request ({s.max_keys_per_request})")
        if size % 8:
            raise EtsiError(400, MSG_SIZE_MULTIPLE_OF_8)
        if not s.min_key_size_bits <= size <= s.max_key_size_bits:
            raise EtsiError(
                400,
                f"size shall be between min_key_size ({s.min_key_size_bits}) and "
                f"max_key_size ({s.max_key_size_bits})",
            )
        slaves = [slave_sae_id]
        for extra in req.additional_slave_SAE_IDs or []:
            if self._known_sae(extra, "additional slave") != slave_kme:
                raise EtsiError(
                    400, f"additional slave SAE {extra!r} is not attached to KME {slave_kme}"
                )
            slaves.append(extra)
        if len(slaves) - 1 > s.max_sae_id_count:
            raise EtsiError(
                400, f"too many additional_slave_SAE_IDs (max_SAE_ID_count = {s.max_sae_id_count})"
            )
        if len(set(slaves)) != len(slaves) or caller_sae_id in slaves:
            raise EtsiError(400, "slave SAE IDs must be distinct and differ from the master's")
        link = self._link_for(slave_kme)
        remote = slave_kme != s.kme_id
        if remote and (self.peers is None or slave_kme not in s.peers):
            raise EtsiError(503, f"no key link from KME {s.kme_id} to KME {slave_kme}")
        self.maintenance()
        for attempt in range(3):
            try:
                reserved = self.store.reserve(
                    link,
                    number=number,
                    size_bits=size,
                    master_sae_id=caller_sae_id,
                    slave_sae_ids=slaves,
                    lifetime_s=s.key_lifetime_s,
                    now=self._clock(),
                )
            except NotEnoughKeysError as exc:
                raise EtsiError(503, str(exc)) from None
            except KeyStoreError as exc:
                raise EtsiError(503, f"key store error: {exc}") from None
            key_ids = [r.key_id for r, _ in reserved]
            if not remote:
                try:
                    self._commit.submit(("local", (key_ids, slaves)))
                except KeyStoreError as exc:
                    self._release(key_ids)
                    raise EtsiError(503, f"keys could not be handed out: {exc}") from None
                break
            # The durable hand-out here and the peer's record there run at the same time
            # (docs/kme.md, "One fsync on the critical path"); the master is answered only
            # when both have succeeded.
            assert self.peers is not None
            slot = self._commit.start(("hand_out", key_ids))
            peer_error: KeyStoreError | None = None
            try:
                self._peer_calls.submit((slave_kme, [r for r, _ in reserved]))
            except KeyStoreError as exc:
                peer_error = exc
            try:
                self._commit.wait(slot)
            except KeyStoreError as exc:
                self._release(key_ids)
                raise EtsiError(503, f"keys could not be handed out: {exc}") from None
            if peer_error is None:
                self._commit.defer(key_ids)  # erase the material here; nobody waits for it
                break
            if isinstance(peer_error, ChunksUnavailableError):
                # The peer no longer holds some chunks (expired there first): erase them
                # here as well and try again with the next ones.
                self._release(key_ids, discard=peer_error.chunk_ids)
                if attempt == 2:
                    raise EtsiError(503, f"key stores of the link disagree: {peer_error}") from None
                continue
            self._release(key_ids)
            raise EtsiError(
                503, f"keys could not be reserved with the peer KME: {peer_error}"
            ) from None
        return {"keys": [{"key_ID": r.key_id, "key": b64encode_key(k)} for r, k in reserved]}

    def _release(self, key_ids: Sequence[str], *, discard: Sequence[str] = ()) -> None:
        try:
            self.store.release(key_ids, discard_chunk_ids=discard)
        except KeyStoreError:
            pass  # released later by maintenance (stale reservation)

    def dec_keys(
        self, *, caller_sae_id: str, master_sae_id: str, request: Mapping[str, Any]
    ) -> dict[str, Any]:
        """``GET|POST /api/v1/keys/{master_SAE_ID}/dec_keys`` called by slave ``caller_sae_id``."""
        self._local_sae(caller_sae_id)
        self._known_sae(master_sae_id, "master")
        try:
            ids = KeyIDs.model_validate(dict(request))
        except ValidationError as exc:
            raise EtsiError(400, "invalid key IDs request", _validation_details(exc)) from None
        if len(ids.key_IDs) > self.settings.max_keys_per_request:
            raise EtsiError(
                400,
                f"too many key IDs (max_key_per_request = {self.settings.max_keys_per_request})",
            )
        key_ids: list[str] = []
        for entry in ids.key_IDs:
            try:
                key_ids.append(str(uuid.UUID(entry.key_ID)))
            except ValueError:
                raise EtsiError(400, NOT_FOUND_MESSAGE, [{"key_ID": entry.key_ID}]) from None
        self.maintenance()
        try:
            keys = self.store.retrieve(
                key_ids, master_sae_id=master_sae_id, slave_sae_id=caller_sae_id, now=self._clock()
            )
        except KeyNotFoundError:
            raise EtsiError(400, NOT_FOUND_MESSAGE) from None
        except KeyAccessDeniedError as exc:
            raise EtsiError(401, str(exc)) from None
        except KeyStoreError as exc:
            raise EtsiError(503, f"key store error: {exc}") from None
        return {"keys": [{"key_ID": k.key_id, "key": b64encode_key(k.key)} for k in keys]}

    # ---- KME to KME ------------------------------------------------------------------------

    def peer_reserve(self, *, caller_kme_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /kme/v1/reservations`` from the source KME of a link ending here."""
        if caller_kme_id not in self.settings.peers:
            raise EtsiError(401, f"{caller_kme_id!r} is not a peer KME of {self.settings.kme_id}")
        items = body.get("reservations")
        if not isinstance(items, list) or not items:
            raise EtsiError(400, "reservations must be a non-empty list")
        try:
            res = [Reservation.from_json(x) for x in items if isinstance(x, dict)]
        except ConfigError as exc:
            raise EtsiError(400, str(exc)) from None
        if len(res) != len(items):
            raise EtsiError(400, "each reservation must be an object")
        for r in res:
            if r.link != LinkId(caller_kme_id, self.settings.kme_id):
                raise EtsiError(401, "a KME may reserve keys only on its own link to this KME")
            for sae in r.slave_sae_ids:
                if self.settings.sae_kme.get(sae) != self.settings.kme_id:
                    raise EtsiError(400, f"slave SAE {sae!r} is not attached to this KME")
        try:
            self._accept.submit(res)
        except ChunksUnavailableError as exc:
            raise EtsiError(
                503, f"reservation refused: {exc}", [{"unavailable_chunk_IDs": list(exc.chunk_ids)}]
            ) from None
        except KeyStoreError as exc:
            raise EtsiError(503, f"reservation refused: {exc}") from None
        return {"accepted": len(res)}
