"""refresh.assess_refresh: exact identities of the key-budget arithmetic (no tolerance beyond
floating-point rounding, rel 1e-12)."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.apps.refresh import assess_refresh
from cvqkd.errors import ConfigError


def test_required_rate_is_key_bits_per_period() -> None:
    r = assess_refresh(key_rate_bps=300.0, traffic_gbps=10.0, rekey_interval_s=1.0)
    assert r.required_key_rate_bps == 256.0
    assert r.margin == pytest.approx(300 / 256, rel=1e-12)
    assert r.keeps_up is True and r.gcm_limited is False
    assert r.surplus_bps == 44.0 and r.seconds_until_pool_dry == np.inf


def test_streams_and_key_bits_scale_linearly() -> None:
    r = assess_refresh(
        key_rate_bps=1000.0, traffic_gbps=1.0, rekey_interval_s=0.5, streams=4, key_bits=128
    )
    assert r.required_key_rate_bps == 4 * 128 / 0.5


def test_gcm_byte_limit_forces_faster_rekey() -> None:
    # 100 Gbit/s = 1.25e10 B/s; 2^38 bytes per key last 2^38 / 1.25e10 = 21.99 s < 60 s
    r = assess_refresh(key_rate_bps=10.0, traffic_gbps=100.0, rekey_interval_s=60.0)
    assert r.gcm_limited is True
    assert r.effective_rekey_interval_s == pytest.approx(2**38 / 1.25e10, rel=1e-12)
    assert r.required_key_rate_bps == pytest.approx(256 * 1.25e10 / 2**38, rel=1e-12)
    assert r.keeps_up is False


def test_pool_drains_at_the_deficit() -> None:
    r = assess_refresh(key_rate_bps=56.0, traffic_gbps=1.0, rekey_interval_s=1.0, pool_bits=2e6)
    assert r.seconds_until_pool_dry == pytest.approx(2e6 / 200.0, rel=1e-12)


def test_vectorised_over_key_rate() -> None:
    rates = np.array([100.0, 256.0, 1000.0])
    r = assess_refresh(key_rate_bps=rates, traffic_gbps=10.0, rekey_interval_s=1.0)
    assert r.keeps_up.tolist() == [False, True, True]
    np.testing.assert_allclose(r.margin, rates / 256.0, rtol=1e-12)


def test_bad_inputs() -> None:
    with pytest.raises(ConfigError):
        assess_refresh(key_rate_bps=1.0, traffic_gbps=1.0, rekey_interval_s=0.0)
    with pytest.raises(ConfigError):
        assess_refresh(key_rate_bps=1.0, traffic_gbps=1.0, rekey_interval_s=1.0, key_bits=100)
