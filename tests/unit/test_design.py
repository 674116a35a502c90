"""Density evolution / PEXIT machinery and ensemble design (cvqkd.reconciliation.design)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.design import (
    J,
    Protograph,
    awgn_capacity,
    biawgn_capacity,
    de_regular_converges,
    efficiency,
    interleave_rows,
    inverse_J,
    optimise_raptor_like,
    permanent_bound,
    pexit_converges,
    pexit_threshold_snr,
    snr_for_efficiency,
)
from tests.conftest import load_reference


def _biawgn_capacity_quad(snr: float) -> float:
    """Independent reference: C = 1 − E[log2(1 + exp(−2y/σ²))], y ~ N(1, σ²), by quad."""
    s2 = 1.0 / snr

    def f(y: float) -> float:
        pdf = math.exp(-((y - 1.0) ** 2) / (2 * s2)) / math.sqrt(2 * math.pi * s2)
        return pdf * np.logaddexp(0.0, -2.0 * y / s2) / math.log(2.0)

    val, _ = integrate.quad(f, 1 - 40 * math.sqrt(s2), 1 + 40 * math.sqrt(s2), limit=400)
    return 1.0 - val


@pytest.mark.parametrize("snr", [0.01, 0.03, 0.3, 1.0, 3.0])
def test_j_function_is_biawgn_capacity(snr: float) -> None:
    # J(2 sqrt(snr)) is the BIAWGN capacity; quadrature reference, tolerance 1e-4 relative
    # (the tabulated J is linearly interpolated on a 6000-point geometric grid).
    assert float(biawgn_capacity(snr)) == pytest.approx(_biawgn_capacity_quad(snr), rel=1e-4)


def test_inverse_j_round_trip() -> None:
    # above σ ≈ 15, 1 − J(σ) < 1e-16 underflows in float64: invert only where J < 1
    sig = np.geomspace(1e-2, 12, 50)
    assert np.allclose(inverse_J(J(sig)), sig, rtol=1e-3)
    assert float(J(0.0)) == 0.0


def test_capacities_and_efficiency_match_reference_table() -> None:
    ref = load_reference("reconciliation_limits.json")
    table = ref["snr_for_beta"]
    for row in table["rows"]:
        for beta, snr in zip(table["betas"], row["snr"], strict=True):
            # tolerance from the reference file: relative 1e-3 in beta
            assert float(efficiency(rate=row["rate"], snr=snr)) == pytest.approx(beta, rel=1e-3)
            back = float(snr_for_efficiency(rate=row["rate"], beta=beta))
            assert float(efficiency(rate=row["rate"], snr=back)) == pytest.approx(beta, abs=1e-12)
    for case in ref["biawgn_over_awgn"]:
        ratio = float(biawgn_capacity(case["snr"]) / awgn_capacity(case["snr"]))
        assert ratio == pytest.approx(case["ratio"], abs=0.005)
    lim = ref["biawgn_shannon_limit"]
    assert float(biawgn_capacity(1.0 / lim["sigma"] ** 2)) == pytest.approx(0.5, abs=1e-3)


def test_discretised_de_brackets_the_textbook_36_threshold() -> None:
    ref = load_reference("ldpc_thresholds.json")["regular"][0]
    assert ref["sigma_bp"] == 0.8809
    # bracket 0.45% around sigma* (see the reference file for the quantisation argument)
    assert de_regular_converges(var_degree=3, check_degree=6, sigma=0.877)
    assert not de_regular_converges(var_degree=3, check_degree=6, sigma=0.885)


def test_pexit_threshold_of_regular_36_protograph() -> None:
    ref = load_reference("ldpc_thresholds.json")["regular"][0]
    proto = Protograph(base=np.array([[3, 3]]), punctured=np.zeros(2, bool))
    sigma = 1.0 / math.sqrt(pexit_threshold_snr(proto))
    assert sigma == pytest.approx(ref["sigma_bp"], rel=0.01)


def test_pexit_is_invariant_under_protograph_splitting() -> None:
    # [[3, 3]] and its 2-cover [[2, 1, 2, 1], [1, 2, 1, 2]] have the same (3,6) degree profile
    # and PEXIT sees only edge-type statistics: identical convergence decisions.
    a = Protograph(base=np.array([[3, 3]]), punctured=np.zeros(2, bool))
    b = Protograph(base=np.array([[2, 1, 2, 1], [1, 2, 1, 2]]), punctured=np.zeros(4, bool))
    snrs = np.array([1.2, 1.25, 1.28, 1.3, 1.35, 1.5])
    ca, _ = pexit_converges(a, snr=snrs)
    cb, _ = pexit_converges(b, snr=snrs)
    assert np.array_equal(ca, cb)
    assert ca[-1] and not ca[0]


def test_degree_one_folding_matches_unfolded_run() -> None:
    # Folding transmitted degree-one columns is exact: a 'degree-one' column duplicated as a
    # punctured-free extra base row pair gives the same thresholds as the folded computation.
    proto = Protograph.raptor_like(core_rows=[[2, 2, 1]], extension_rows=[[1, 1, 0], [0, 1, 1]])
    thr = pexit_threshold_snr(proto)
    assert np.isfinite(thr)
    ok, _ = pexit_converges(proto, snr=[thr * 1.01, thr * 0.99])
    assert ok.tolist() == [True, False]


def test_raptor_like_layout_and_rate() -> None:
    proto = Protograph.raptor_like(core_rows=[[1, 1, 1, 1]], extension_rows=[[1, 1, 0, 0]] * 6)
    assert proto.shape == (7, 10)
    assert proto.rate == pytest.approx(3 / 10)
    assert np.array_equal(proto.base[1:, 4:], np.eye(6, dtype=np.int64))
    t = proto.truncated(2)
    assert t.shape == (3, 6) and t.rate == pytest.approx(3 / 6)
    with pytest.raises(ConfigError):
        proto.truncated(7)


def test_interleave_keeps_prefix_proportions() -> None:
    pats = np.array([[1, 0], [0, 1]])
    rows = interleave_rows(pats, np.array([30, 10]))
    for k in (4, 8, 20, 40):
        frac = rows[:k, 1].sum() / k
        assert abs(frac - 0.25) <= 1.0 / k + 1e-12


def test_optimiser_improves_and_is_deterministic() -> None:
    a = optimise_raptor_like(rate=0.2, steps=4, seed=3, n_starts=2)
    b = optimise_raptor_like(rate=0.2, steps=4, seed=3, n_starts=2)
    start = optimise_raptor_like(rate=0.2, steps=0, seed=3, n_starts=2)
    assert np.array_equal(a.protograph.base, b.protograph.base)
    assert a.threshold_snr == b.threshold_snr
    assert a.threshold_snr <= start.threshold_snr
    assert a.protograph.rate == pytest.approx(0.2)
    p = a.protograph.base[:4, :8]
    assert permanent_bound(p) >= 24  # the distance constraint holds for the result
    with pytest.raises(ConfigError):
        optimise_raptor_like(rate=0.0123, steps=0)


def test_permanent_bound_matches_found_codeword() -> None:
    # The 2 × 4 precode [[1,2,1,1],[1,2,1,1]] has bound 6; the decoder converged to a codeword
    # with exactly 2 + 2 + 2 core bits in columns 1..3 of a lifting of it (docs/codes.md).
    assert permanent_bound([[1, 2, 1, 1], [1, 2, 1, 1]]) == 6
    # columns that touch fewer rows are bounded on their own rows (3 columns, 2 rows: 12)
    assert permanent_bound([[2, 0, 2, 1], [1, 2, 1, 0], [0, 0, 0, 1]]) == 12
