"""KME service pieces without HTTP: group commit, the committer thread, the overlap of the
local hand-out with the KME-to-KME call, and settings validation."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from typing import Any

import pytest

from cvqkd.errors import ConfigError, KeyStoreError
from cvqkd.kms.service import Committer, GroupCommit, KmeService, KmeSettings
from cvqkd.kms.store import LinkId, open_store


def test_group_commit_batches_concurrent_callers_and_isolates_failures() -> None:
    calls: list[list[int]] = []
    lock = threading.Lock()

    def fn(items: list[int]) -> None:
        with lock:
            calls.append(list(items))
        time.sleep(0.02)  # a slow commit (fsync): the others queue up meanwhile
        if 13 in items:
            raise KeyStoreError("item 13 is bad")

    gc = GroupCommit(fn)
    outcome: dict[int, str] = {}

    def submit(i: int) -> None:
        try:
            gc.submit(i)
            outcome[i] = "ok"
        except KeyStoreError as exc:
            outcome[i] = str(exc)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Every item committed exactly once in a successful call, except 13 which failed alone.
    ok_calls = [c for c in calls if 13 not in c]
    committed = sorted(i for c in ok_calls for i in c)
    assert committed == [i for i in range(40) if i != 13]
    assert outcome[13] == "item 13 is bad"
    assert all(outcome[i] == "ok" for i in range(40) if i != 13)
    # Batching happened: callers that queued during a 20 ms commit shared one call.
    assert max(len(c) for c in calls) > 1


@pytest.mark.parametrize(
    "kw",
    [
        {"key_size_bits": 12},
        {"min_key_size_bits": 512, "key_size_bits": 256},
        {"max_keys_per_request": 0},
    ],
)
def test_settings_are_checked(kw: dict) -> None:
    with pytest.raises(ConfigError):
        KmeSettings(kme_id="K", sae_kme={}, **kw)


def test_group_commit_with_two_leaders_runs_two_batches_at_once() -> None:
    """PostgreSQL mode: a second batch starts while the first is still committing (both
    calls must be inside ``fn`` at the same time to pass the barrier; one leader deadlocks
    on it and the barrier times out)."""
    both_inside = threading.Barrier(2, timeout=5)
    calls: list[list[int]] = []

    def fn(items: list[int]) -> None:
        calls.append(list(items))
        if len(calls) <= 2:
            both_inside.wait()

    gc = GroupCommit(fn, leaders=2)
    threads = [threading.Thread(target=gc.submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(i for c in calls for i in c) == [0, 1] and len(calls) == 2


def test_committer_start_returns_before_the_commit_and_batches_deferred_work() -> None:
    release, entered = threading.Event(), threading.Event()
    calls: list[tuple[list[str], list[str]]] = []

    def fn(items: list[str], finish: list[str]) -> None:
        calls.append((list(items), list(finish)))
        entered.set()
        if "bad" in items:
            raise KeyStoreError("bad item")
        release.wait(5)

    c = Committer(fn, defer_s=10.0)
    slot = c.start("a")  # returns while fn is blocked: the caller can work meanwhile
    assert entered.wait(5) and not slot.finished
    c.defer(["k1", "k2"])  # rides along with the next batch
    s_b = c.start("b")
    s_bad = c.start("bad")
    release.set()
    c.wait(slot)
    c.wait(s_b)
    with pytest.raises(KeyStoreError, match="bad item"):
        c.wait(s_bad)
    c.close()
    # Batch 1: a. Batch 2 (b, bad, finish k1 k2) failed as a whole, then each alone.
    assert calls[0] == (["a"], [])
    assert calls[1] == (["b", "bad"], ["k1", "k2"])
    assert calls[2:] == [(["b"], []), (["bad"], []), ([], ["k1", "k2"])]


def test_committer_runs_deferred_work_alone_after_defer_s_and_at_close() -> None:
    calls: list[tuple[list[str], list[str]]] = []
    c = Committer(lambda items, finish: calls.append((items, finish)), defer_s=0.05)
    c.defer(["k1"])
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == [([], ["k1"])]
    c2 = Committer(lambda items, finish: calls.append((items, finish)), defer_s=60.0)
    c2.defer(["k2"])
    c2.close()  # does not wait 60 s
    assert calls[-1] == ([], ["k2"])


class _Meeting:
    """Two events: the peer call and the local hand-out each wait until the other started."""

    def __init__(self) -> None:
        self.peer_started = threading.Event()
        self.commit_started = threading.Event()


class _Peer:
    def __init__(self, meeting: _Meeting) -> None:
        self.m = meeting

    def reserve(self, kme_id: str, reservations: Any) -> None:
        self.m.peer_started.set()
        assert self.m.commit_started.wait(5), "the local hand-out did not start meanwhile"


class _Store:
    def __init__(self, store: Any, meeting: _Meeting) -> None:
        self.store, self.m = store, meeting

    def commit_many(self, batches: Any, *, hand_out: Any = (), finish: Any = ()) -> None:
        if hand_out:
            self.m.commit_started.set()
            assert self.m.peer_started.wait(5), "the peer call did not start meanwhile"
        self.store.commit_many(batches, hand_out=hand_out, finish=finish)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_enc_keys_overlaps_the_peer_call_with_the_local_commit() -> None:
    store = open_store(":memory:")
    link = LinkId("KME_A", "KME_B")
    store.add_keys(link, [(uuid.uuid4(), bytes(range(64)))])
    meeting = _Meeting()
    settings = KmeSettings(
        kme_id="KME_A", sae_kme={"A": "KME_A", "B": "KME_B"}, peers=frozenset({"KME_B"})
    )
    svc = KmeService(settings, _Store(store, meeting), _Peer(meeting))  # type: ignore[arg-type]
    out = svc.enc_keys(caller_sae_id="A", slave_sae_id="B", request={"number": 2})
    svc.close()
    assert [base64.b64decode(k["key"]) for k in out["keys"]] == [
        bytes(range(32)),
        bytes(range(32, 64)),
    ]
    assert store.metrics(link).delivered_keys == 2 and store.available_chunks(link) == 0
    assert store.release([k["key_ID"] for k in out["keys"]]) == 0  # finished: never back


def test_group_commit_max_weight_splits_a_batch() -> None:
    """Peer calls carry at most ``max_weight`` keys (the peer's request-size limit)."""
    gate = threading.Event()
    calls: list[list[int]] = []

    def fn(items: list[int]) -> None:
        calls.append(list(items))
        gate.wait(5)

    gc = GroupCommit(fn, weight=lambda n: n, max_weight=5)
    first = threading.Thread(target=gc.submit, args=(1,))
    first.start()
    while not calls:
        time.sleep(0.001)
    rest = [threading.Thread(target=gc.submit, args=(n,)) for n in (3, 2, 4, 9)]
    for t in rest:
        t.start()
        time.sleep(0.02)  # queue in this order while the first call is blocked
    gate.set()
    for t in [first, *rest]:
        t.join()
    # After [1]: [3, 2] (5 <= 5), [4] (4 + 9 > 5), [9] (alone even if heavier than the limit).
    assert calls == [[1], [3, 2], [4], [9]]


class _SlowPeer:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def reserve(self, kme_id: str, reservations: Any) -> None:
        with self.lock:
            self.calls.append(len(reservations))
        time.sleep(0.02)  # a round trip and an fsync at the peer


def test_concurrent_requests_share_kme_to_kme_calls() -> None:
    store = open_store(":memory:")
    link = LinkId("KME_A", "KME_B")
    store.add_keys(link, [(uuid.uuid4(), bytes(64 * 32))])
    peer = _SlowPeer()
    settings = KmeSettings(
        kme_id="KME_A", sae_kme={"A": "KME_A", "B": "KME_B"}, peers=frozenset({"KME_B"})
    )
    svc = KmeService(settings, store, peer)
    got: list[str] = []

    def one() -> None:
        out = svc.enc_keys(caller_sae_id="A", slave_sae_id="B", request={"number": 2})
        got.extend(k["key_ID"] for k in out["keys"])

    threads = [threading.Thread(target=one) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    svc.close()
    assert len(got) == len(set(got)) == 32 and sum(peer.calls) == 32
    assert len(peer.calls) < 16 and max(peer.calls) > 2  # shared calls, two at a time at most
    assert store.metrics(link).delivered_keys == 32 and store.available_chunks(link) == 32
