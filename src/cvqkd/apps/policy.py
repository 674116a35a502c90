"""What the encryptor does when the KME runs dry: ``wait``, ``keep`` or ``pqc-only``.

Never plaintext. Each policy is logged (logger ``cvqkd.apps``; keys are never logged) and
counted in :class:`Metrics`:

- ``wait``: retry the KME with exponential backoff (``backoff_initial_s`` doubling up to
  ``backoff_max_s``) until ``wait_timeout_s``; then stop with :class:`KeyUnavailableError`.
- ``keep``: keep encrypting under the current key, past the rekey interval but never past the
  AES-GCM per-key limits (the transport's job); with no usable current key it waits as ``wait``.
- ``pqc-only``: derive the next epoch key from a fresh ML-KEM-768 secret alone (with X25519 if
  configured), salted with the chain of earlier epoch keys (so it stays as strong as the earlier
  QKD keys, and as ML-KEM). Logged as a warning: the epoch is no longer information-theoretically
  keyed. Only once the peer's ML-KEM key is authenticated (signed handshake, or an earlier
  QKD-keyed epoch); before that it waits as ``wait``.

>>> from cvqkd.apps.keysource import InMemoryKeyPool
>>> metrics = Metrics()
>>> d = obtain_key(InMemoryKeyPool(capacity=0).master(), config=PolicyConfig(policy="keep"),
...                metrics=metrics, can_keep=True)
>>> d.kind, metrics.kme_dry_events, metrics.keep_extensions
('keep', 1, 1)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Literal

from cvqkd.apps.keysource import KeyUnavailableError, MasterKeySource
from cvqkd.errors import ConfigError

log = logging.getLogger("cvqkd.apps")


class DryPolicy(StrEnum):
    """The configured answer to a dry KME."""

    WAIT = "wait"
    KEEP = "keep"
    PQC_ONLY = "pqc-only"


@dataclass(frozen=True)
class PolicyConfig:
    """Dry-KME policy and its timing (seconds)."""

    policy: DryPolicy | str = DryPolicy.WAIT
    wait_timeout_s: float = 30.0
    backoff_initial_s: float = 0.05
    backoff_max_s: float = 2.0

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "policy", DryPolicy(self.policy))
        except ValueError:
            allowed = ", ".join(p.value for p in DryPolicy)
            raise ConfigError(f"unknown dry-KME policy {self.policy!r} (use {allowed})") from None
        if self.wait_timeout_s < 0:
            raise ConfigError(f"wait_timeout_s must be >= 0, got {self.wait_timeout_s}")
        if not 0 < self.backoff_initial_s <= self.backoff_max_s:
            raise ConfigError("need 0 < backoff_initial_s <= backoff_max_s")


@dataclass
class Metrics:
    """Counters of one endpoint (mutable; read them with :meth:`as_dict`)."""

    qkd_keys_used: int = 0
    epochs: int = 0
    kme_dry_events: int = 0
    wait_retries: int = 0
    wait_seconds: float = 0.0
    keep_extensions: int = 0
    pqc_only_epochs: int = 0
    idle_rekeys: int = 0
    records: int = 0
    plaintext_bytes: int = 0
    wire_bytes: int = 0
    policy_log: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        """All counters as a plain dict (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True)
class KeyDecision:
    """Outcome of :func:`obtain_key`: a new QKD key, keep the current key, or ML-KEM only."""

    kind: Literal["qkd", "keep", "pqc-only"]
    key_id: str | None = None
    key: bytes | None = field(default=None, repr=False)


def _note(metrics: Metrics, level: int, message: str) -> None:
    log.log(level, message)
    metrics.policy_log.append(message)


def obtain_key(
    source: MasterKeySource,
    *,
    config: PolicyConfig,
    metrics: Metrics,
    can_keep: bool,
    can_pqc: bool = True,
    why_not_pqc: str = "",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> KeyDecision:
    """Ask ``source`` for a key; on :class:`KeyUnavailableError` apply the dry-KME policy.

    ``can_keep``: the current key may still be used (within the GCM limits). ``can_pqc``: an
    ML-KEM-only epoch is safe now (the peer's ML-KEM key is authenticated); ``why_not_pqc`` says
    why not, for the log. Raises :class:`KeyUnavailableError` when waiting
    times out. ``sleep`` and ``clock`` are injectable for tests.
    """
    try:
        key_id, key = source.new_key()
    except KeyUnavailableError as exc:
        first_error = exc
    else:
        metrics.qkd_keys_used += 1
        return KeyDecision("qkd", key_id, key)

    metrics.kme_dry_events += 1
    policy = DryPolicy(config.policy)
    if policy is DryPolicy.KEEP and can_keep:
        metrics.keep_extensions += 1
        _note(metrics, logging.WARNING, f"KME dry ({first_error}); policy keep: current key kept")
        return KeyDecision("keep")
    if policy is DryPolicy.PQC_ONLY and can_pqc:
        metrics.pqc_only_epochs += 1
        _note(
            metrics,
            logging.WARNING,
            f"KME dry ({first_error}); policy pqc-only: next epoch keyed by ML-KEM-768 only",
        )
        return KeyDecision("pqc-only")

    reason = "policy wait" if policy is DryPolicy.WAIT else f"policy {policy.value} not possible"
    if policy is DryPolicy.PQC_ONLY and why_not_pqc:
        reason += f" ({why_not_pqc})"
    _note(metrics, logging.WARNING, f"KME dry ({first_error}); {reason}: waiting")
    start = clock()
    deadline = start + config.wait_timeout_s
    backoff = config.backoff_initial_s
    last_error: KeyUnavailableError = first_error
    while True:
        remaining = deadline - clock()
        if remaining <= 0:
            metrics.wait_seconds += clock() - start
            _note(metrics, logging.ERROR, f"KME still dry after {config.wait_timeout_s:g} s")
            raise KeyUnavailableError(
                f"KME dry for {config.wait_timeout_s:g} s ({reason}): {last_error}"
            )
        sleep(min(backoff, remaining))
        backoff = min(2 * backoff, config.backoff_max_s)
        metrics.wait_retries += 1
        try:
            key_id, key = source.new_key()
        except KeyUnavailableError as exc:
            last_error = exc
            continue
        metrics.wait_seconds += clock() - start
        metrics.qkd_keys_used += 1
        _note(metrics, logging.INFO, f"KME delivered again after {clock() - start:.3g} s")
        return KeyDecision("qkd", key_id, key)
