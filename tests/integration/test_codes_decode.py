"""Shipped codes decode on seeded BIAWGN frames at their design margin (numba decoder)."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.reconciliation.codes import adapt, load_code, load_code_data
from cvqkd.reconciliation.decoder import decode
from cvqkd.reconciliation.design import snr_for_efficiency


def _frames(code, rate, beta, frames, seed, adapted=None):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    snr = float(snr_for_efficiency(rate=rate, beta=beta))
    sigma = 1.0 / np.sqrt(snr)
    n_data = code.n_vars if adapted is None else adapted.n_data
    bits = rng.integers(0, 2, size=(frames, n_data), dtype=np.uint8)
    llr = 2.0 * ((1.0 - 2.0 * bits) + sigma * rng.standard_normal(bits.shape)) / sigma**2
    word = bits if adapted is None else adapted.full_bits(bits)
    if adapted is not None:
        llr = adapted.full_llr(llr)
    res = decode(code, llr, code.syndrome(word), max_iterations=300, backend="numba")
    return res, word


@pytest.mark.parametrize("name", ["rl-r0.1", "rl-r0.2"])
def test_decodes_at_design_margin(name: str) -> None:
    # 0.08 below the PEXIT efficiency β*: about twice the finite-length loss measured at
    # n = 10^5 (docs/codes.md), so every seeded frame must decode to Bob's bits.
    d = load_code_data(name)
    code = load_code(name, n_target=100_000)
    res, word = _frames(code, code.rate, d.beta - 0.08, 2, seed=11)
    assert res.converged.all()
    assert np.array_equal(res.bits, word)


def test_adapted_code_decodes() -> None:
    # the rate-0.1 member truncated to rate 0.11 and shortened to 0.09, 0.08 below β*
    beta = load_code_data("rl-r0.1").beta - 0.08
    for rate in (0.11, 0.09):
        a = adapt("rl-r0.1", rate=rate, n_target=100_000)
        res, word = _frames(a.code, a.rate, beta, 2, seed=12, adapted=a)
        assert res.converged.all()
        assert np.array_equal(res.bits, word)


def test_fails_far_beyond_capacity() -> None:
    # a code cannot decode above capacity (β = 1.15): the decoder must report failure
    code = load_code("rl-r0.2", n_target=100_000)
    res, _ = _frames(code, code.rate, 1.15, 1, seed=13)
    assert not res.converged.any()
