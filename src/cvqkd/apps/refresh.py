"""Can a link's secret key rate refresh X Gbit/s of traffic every T seconds?

Each rekey of each encrypted stream consumes one ``key_bits``-bit QKD key (256 for AES-256), so
the QKD key rate needed is::

    required_key_rate_bps = streams * key_bits / T_eff,
    T_eff = min(T, max_bytes_per_key / traffic_bytes_per_s,
                max_records_per_key * record_bytes / traffic_bytes_per_s)

where the AES-GCM per-key limits (:mod:`cvqkd.apps.transport`: 2^38 bytes, RFC 8446 §5.5; 2^24
records) may force rekeying faster than asked at high traffic. ``margin = key_rate / required``;
the link keeps up when ``margin >= 1``. A hybrid (QKD + ML-KEM-768) key costs the same QKD bits;
what changes is the shortfall: with ``hybrid`` (and the ``pqc-only`` policy) traffic stays
post-quantum protected when the pool runs dry, without it the encryptor waits or keeps a key.
With a stored pool of ``pool_bits``, a deficit empties it in ``pool_bits / deficit`` seconds.

Inputs broadcast as numpy arrays (for sweeps); scalars give floats.

>>> r = assess_refresh(key_rate_bps=1000.0, traffic_gbps=10.0, rekey_interval_s=1.0)
>>> r.required_key_rate_bps, r.margin, bool(r.keeps_up)
(256.0, 3.90625, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from cvqkd.apps.transport import DEFAULT_MAX_RECORDS_PER_KEY, MAX_BYTES_PER_KEY
from cvqkd.errors import ConfigError

ArrayLike = float | npt.NDArray[np.float64]


@dataclass(frozen=True)
class RefreshAssessment:
    """The answer of :func:`assess_refresh` (bit/s, seconds; arrays when inputs were)."""

    key_rate_bps: Any
    traffic_gbps: Any
    rekey_interval_s: Any
    effective_rekey_interval_s: Any
    gcm_limited: Any
    key_bits: int
    streams: int
    hybrid: bool
    required_key_rate_bps: Any
    margin: Any
    keeps_up: Any
    surplus_bps: Any
    seconds_until_pool_dry: Any

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _out(x: npt.NDArray[Any]) -> Any:
    return x.item() if x.ndim == 0 else x


def assess_refresh(
    *,
    key_rate_bps: ArrayLike,
    traffic_gbps: ArrayLike,
    rekey_interval_s: ArrayLike,
    key_bits: int = 256,
    streams: int = 1,
    hybrid: bool = True,
    pool_bits: float = 0.0,
    record_bytes: int = 1 << 20,
    max_bytes_per_key: int = MAX_BYTES_PER_KEY,
    max_records_per_key: int = DEFAULT_MAX_RECORDS_PER_KEY,
) -> RefreshAssessment:
    """Whether ``key_rate_bps`` of QKD key refreshes ``streams`` flows of ``traffic_gbps``.

    ``rekey_interval_s`` is the asked rekey period T (s); ``key_bits`` the QKD key per rekey;
    ``pool_bits`` a stored key reserve (bits). See the module docstring for the formula.
    """
    rate = np.asarray(key_rate_bps, dtype=float)
    gbps = np.asarray(traffic_gbps, dtype=float)
    period = np.asarray(rekey_interval_s, dtype=float)
    if np.any(rate < 0) or np.any(gbps < 0) or np.any(period <= 0):
        raise ConfigError("need key_rate_bps >= 0, traffic_gbps >= 0 and rekey_interval_s > 0")
    if key_bits <= 0 or key_bits % 8 or streams < 1:
        raise ConfigError("key_bits must be a positive multiple of 8 and streams >= 1")
    bytes_per_s = gbps * 1e9 / 8
    with np.errstate(divide="ignore"):
        limit_s = np.minimum(
            max_bytes_per_key / bytes_per_s, max_records_per_key * record_bytes / bytes_per_s
        )
    eff = np.minimum(period, limit_s)
    required = streams * key_bits / eff
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.where(required > 0, rate / required, np.inf)
        deficit = required - rate
        dry = np.where(deficit > 0, pool_bits / deficit, np.inf)
    return RefreshAssessment(
        key_rate_bps=_out(rate),
        traffic_gbps=_out(gbps),
        rekey_interval_s=_out(period),
        effective_rekey_interval_s=_out(eff),
        gcm_limited=_out(limit_s < period),
        key_bits=key_bits,
        streams=streams,
        hybrid=hybrid,
        required_key_rate_bps=_out(required),
        margin=_out(margin),
        keeps_up=_out(margin >= 1.0),
        surplus_bps=_out(rate - required),
        seconds_until_pool_dry=_out(dry),
    )
