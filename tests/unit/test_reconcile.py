"""Tests for the per-block reconcile step: Bob/Alice message exchange, discards, accounting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.mdr import awgn_capacity
from cvqkd.reconciliation.reconcile import (
    FrameLayout,
    alice_reconcile,
    binary_beta_ceiling,
    bob_reconcile,
    keep_frames,
)
from cvqkd.reconciliation.verification import make_tag
from tests.unit.test_decoder import met_like_code


@pytest.fixture(scope="module")
def code():  # type: ignore[no-untyped-def]
    return met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )


def _samples(n: int, snr: float, rng: np.random.Generator, gain: float = 0.5):  # type: ignore[no-untyped-def]
    sigma_x2 = 4.0
    noise = gain**2 * sigma_x2 / snr
    x = rng.normal(0.0, np.sqrt(sigma_x2), n)
    y = gain * x + rng.normal(0.0, np.sqrt(noise), n)
    return x, y, noise


def test_all_frames_pass_at_comfortable_snr(code) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    gain = 0.5
    x, y, noise = _samples(6 * 1000 + 123, 0.6, rng, gain)  # 6 frames + unused tail
    bob_bits, msg = bob_reconcile(y, layout=code, dimension=8, rng=rng)
    assert bob_bits.shape == (6, 1000) and msg.syndromes.shape == (6, 900)
    res = alice_reconcile(
        x,
        msg,
        layout=code,
        gain=gain,
        noise_variance=noise,
        max_iterations=200,
        batch_frames=4,
        signal_variance=4.0,
    )
    s = res.stats
    assert (s.frames_tried, s.frames_failed) == (6, 0)
    assert np.array_equal(res.key_bits, keep_frames(bob_bits, res.frame_ok))
    assert s.key_bits == 6000
    assert s.leaked_bits == 6 * (900 + 61)  # syndrome + hash tag per kept frame
    assert s.rate == pytest.approx(0.1)
    assert s.snr == pytest.approx(0.6)
    assert s.beta == pytest.approx(0.1 / float(awgn_capacity(snr=0.6)))
    assert s.epsilon_cor < 1e-15


def test_bad_frames_are_discarded_and_counted(code) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    x, y, noise = _samples(5000, 0.6, rng)
    bob_bits, msg = bob_reconcile(y, layout=code, dimension=4, rng=rng)
    # frame 1: a corrupted syndrome bit → decodes to some other word (or not at all);
    # frame 3: a tag for different bits → converges but fails the hash
    syn = msg.syndromes.copy()
    syn[1, 5] ^= 1
    tags = list(msg.tags)
    tags[3] = make_tag(bob_bits[3] ^ 1, rng=rng)
    bad = dataclasses.replace(msg, syndromes=syn, tags=tuple(tags))
    res = alice_reconcile(x, bad, layout=code, gain=0.5, noise_variance=noise, max_iterations=200)
    assert res.frame_ok.tolist() == [True, False, True, False, True]
    assert res.stats.frames_failed == 2 and res.stats.frames_hash_failed >= 1
    assert res.stats.frames_unconverged + res.stats.frames_hash_failed == 2
    assert np.array_equal(res.key_bits, bob_bits[[0, 2, 4]])
    assert res.stats.leaked_bits == 3 * (900 + 61)


def test_punctured_and_shortened_layout(code) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    lay = FrameLayout(
        code=code,
        punctured=np.arange(0, 16, dtype=np.int64),
        shortened=np.arange(100, 164, dtype=np.int64),
    )
    assert lay.n_data == 1000 - 80 and lay.rate == pytest.approx((920 - 900) / 920)
    x, y, noise = _samples(3 * lay.n_data, 0.5, rng)
    bob_bits, msg = bob_reconcile(y, layout=lay, dimension=8, rng=rng)
    res = alice_reconcile(x, msg, layout=lay, gain=0.5, noise_variance=noise, max_iterations=200)
    assert res.stats.frames_failed == 0
    assert np.array_equal(res.key_bits, bob_bits)

    class Adapted:  # duck-typed adapted code (like codes.AdaptedCode)
        def __init__(self) -> None:
            self.code, self.punctured, self.shortened = code, lay.punctured, lay.shortened

    assert FrameLayout.of(Adapted()).n_data == lay.n_data


def test_errors(code) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(4)
    with pytest.raises(ConfigError, match="fewer than one frame"):
        bob_reconcile(np.ones(10), layout=code, dimension=8, rng=rng)
    with pytest.raises(ConfigError, match="multiple of d"):
        odd = FrameLayout(code=code, punctured=np.arange(3, dtype=np.int64))  # 997 data bits
        bob_reconcile(np.ones(5000), layout=odd, dimension=8, rng=rng)
    x, y, noise = _samples(2000, 0.6, rng)
    _, msg = bob_reconcile(y, layout=code, dimension=8, rng=rng)
    with pytest.raises(DataFormatError, match="frames"):
        alice_reconcile(x[:1000], msg, layout=code, gain=0.5, noise_variance=noise)
    with pytest.raises(DataFormatError, match="frame_ok"):
        keep_frames(np.zeros((2, 3), np.uint8), [True])
    with pytest.raises(ConfigError, match="cannot use"):
        FrameLayout.of(42)


def test_binary_ceiling() -> None:
    assert float(binary_beta_ceiling(snr=0.02)) > 0.999
    assert 0.84 < float(binary_beta_ceiling(snr=3.0)) < 0.86
