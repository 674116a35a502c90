"""KME service pieces without HTTP: group commit and settings validation."""

from __future__ import annotations

import threading
import time

import pytest

from cvqkd.errors import ConfigError, KeyStoreError
from cvqkd.kms.service import GroupCommit, KmeSettings


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
