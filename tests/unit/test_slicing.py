"""Tests for sliced (multilevel) reconciliation: quantiser, LLRs, level information, exchange."""

from __future__ import annotations

import dataclasses
import doctest
import itertools
import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import ndtr
from scipy.stats import norm

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation import slicing
from cvqkd.reconciliation.met import count_four_cycles
from cvqkd.reconciliation.reconcile import keep_frames
from cvqkd.reconciliation.slicing import (
    SliceQuantiser,
    design_slices,
    equiprobable_quantiser,
    interval_log_probs,
    level_code,
    level_information,
    level_llr,
    optimised_quantiser,
    slice_reconcile_alice,
    slice_reconcile_bob,
)
from cvqkd.reconciliation.verification import make_tag


# ----------------------------------------------------------------------------- references
def _slow_interval_probs(x: float, bnd: np.ndarray, gain: float, noise: float) -> np.ndarray:
    """P(Q = k | x) by numerical integration of the Gaussian density over each interval."""
    s = math.sqrt(noise)
    out = []
    for a, b in itertools.pairwise(bnd):
        val, _ = quad(lambda y: norm.pdf(y, loc=gain * x, scale=s), a, b, epsabs=1e-14)
        out.append(val)
    return np.array(out)


def _slow_llr(p: np.ndarray, labels: np.ndarray, level: int, lower: int) -> float:
    """LLR of bit ``level`` by direct sums over the intervals consistent with ``lower``."""
    mask = (1 << level) - 1
    p0 = sum(
        p[k] for k in range(p.size) if labels[k] & mask == lower and not labels[k] >> level & 1
    )
    p1 = sum(p[k] for k in range(p.size) if labels[k] & mask == lower and labels[k] >> level & 1)
    return math.log(p0 / p1)


# ----------------------------------------------------------------------------- quantiser
def test_equiprobable_intervals_have_equal_probability() -> None:
    q = equiprobable_quantiser(bits=4)
    p = np.diff(ndtr(np.concatenate([[-np.inf], q.thresholds, [np.inf]])))
    np.testing.assert_allclose(p, 1 / 16, rtol=1e-12)  # exact up to rounding of ndtri/ndtr


def test_gray_labels_of_adjacent_intervals_differ_in_one_bit() -> None:
    lab = equiprobable_quantiser(bits=5, labelling="gray").labels
    assert sorted(lab.tolist()) == list(range(32))
    assert all(bin(int(a ^ b)).count("1") == 1 for a, b in itertools.pairwise(lab))


def test_level_bits_are_the_label_bits_of_the_interval() -> None:
    q = equiprobable_quantiser(bits=3, labelling="gray")
    y = np.array([-5.0, -0.7, -0.1, 0.1, 0.5, 5.0])
    k = q.quantise(y, y_std=2.0)
    t = q.boundaries(y_std=2.0)
    assert np.all((t[k] <= y) & (y < t[k + 1]))
    bits = q.level_bits(y, y_std=2.0)
    assert np.array_equal(bits.T, q.label_bits[k])


def test_quantiser_rejects_bad_thresholds() -> None:
    with pytest.raises(ConfigError, match="increasing"):
        SliceQuantiser(bits=2, thresholds=np.array([0.0, -1.0, 1.0]))
    with pytest.raises(ConfigError, match="thresholds"):
        SliceQuantiser(bits=2, thresholds=np.array([0.0]))


# ----------------------------------------------------------------------------- LLRs
@pytest.mark.parametrize("labelling", ["natural", "gray"])
def test_llr_matches_numerical_integration(labelling: str) -> None:
    """Every level, random lower bits, x near and far from the boundaries: agreement with
    quad-integrated interval probabilities to 1e-7 (quad's absolute error ≤ 1e-14 on
    probabilities ≥ 1e-6 here, so the log ratio is good to ~1e-8)."""
    q = optimised_quantiser(bits=3, snr=3.0, labelling=labelling)  # type: ignore[arg-type]
    gain, noise, y_std = 0.7, 0.5, 1.3
    bnd = q.boundaries(y_std=y_std)
    rng = np.random.default_rng(3)
    xs = np.array([-2.1, -0.4, 0.0, 0.33, 1.7])
    lp = interval_log_probs(xs, boundaries=bnd, gain=gain, noise_variance=noise)
    for i, x in enumerate(xs):
        ref_p = _slow_interval_probs(float(x), bnd, gain, noise)
        np.testing.assert_allclose(np.exp(lp[i]), ref_p, rtol=1e-9, atol=1e-13)
    for level in range(q.bits):
        lower = rng.integers(0, 2, (level, xs.size), dtype=np.uint8)
        llr = level_llr(lp, quantiser=q, level=level, lower_bits=lower if level else None)
        for i, x in enumerate(xs):
            c = int(sum(int(lower[j, i]) << j for j in range(level)))
            ref = _slow_llr(_slow_interval_probs(float(x), bnd, gain, noise), q.labels, level, c)
            assert llr[i] == pytest.approx(ref, abs=1e-7)


def test_interval_log_probs_stay_finite_in_the_far_tail() -> None:
    """40 σ from every boundary: the log-domain form gives the tail asymptotics
    log Φ(−z) ≈ −z²/2 − log(z√(2π)) (relative 1e-3 at z = 40), where direct CDF differences
    give log 0."""
    lp = interval_log_probs(
        np.array([0.0]),
        boundaries=np.array([-np.inf, 40.0, 41.0, np.inf]),
        gain=1.0,
        noise_variance=1.0,
    )[0]
    z = 40.0
    assert np.all(np.isfinite(lp))
    assert lp[2] == pytest.approx(
        -(41.0**2) / 2 - math.log(41.0 * math.sqrt(2 * math.pi)), rel=1e-3
    )
    assert lp[0] == pytest.approx(0.0, abs=1e-300)
    assert lp[1] == pytest.approx(-(z**2) / 2 - math.log(z * math.sqrt(2 * math.pi)), rel=1e-3)


# ----------------------------------------------------------------------------- information
@pytest.mark.parametrize(
    ("bits", "snr", "labelling"), [(3, 1.0, "natural"), (4, 3.0, "gray"), (4, 10.0, "natural")]
)
def test_chain_rule_and_independent_integral(bits: int, snr: float, labelling: str) -> None:
    """Σ_i I(X; B_i | B_<i) = I(X; Q(Y)) (chain rule: exact up to rounding), and I(X; Q(Y))
    agrees with an adaptive quad integral of H(Q | x) to 1e-7 bit (quad tolerance 1e-10)."""
    q = optimised_quantiser(bits=bits, snr=snr, labelling=labelling)  # type: ignore[arg-type]
    info = level_information(q, snr=snr)
    assert sum(info.level_information_bits) == pytest.approx(
        info.quantised_information_bits, abs=1e-12
    )
    assert sum(info.level_entropy_bits) == pytest.approx(info.quantiser_entropy_bits, abs=1e-12)
    t = np.concatenate([[-np.inf], q.thresholds * math.sqrt(1 + snr), [np.inf]])

    def h_given(xi: float) -> float:
        p = np.diff(ndtr(t - math.sqrt(snr) * xi))
        p = p[p > 0]
        return float(-(p * np.log2(p)).sum() * norm.pdf(xi))

    hqx, _ = quad(h_given, -12, 12, limit=400, epsabs=1e-10)
    assert info.quantised_information_bits == pytest.approx(
        info.quantiser_entropy_bits - hqx, abs=1e-7
    )
    assert 0 < info.ideal_beta < 1  # data processing: I(X;Q) < I(X;Y)


def test_conditional_entropy_matches_the_llrs() -> None:
    """h_i = E[log2(1 + e^{−(1−2b)L})] over simulated samples with the exact LLRs (the LLR is
    the true posterior). 1.2·10^5 samples: standard error < 2.5·10^-3 bit; tolerance 0.01 (4σ)."""
    snr = 3.0
    q = optimised_quantiser(bits=4, snr=snr)
    info = level_information(q, snr=snr)
    rng = np.random.default_rng(8)
    x = rng.standard_normal(120_000) * math.sqrt(snr)
    y = x + rng.standard_normal(x.size)
    lv = q.level_bits(y, y_std=math.sqrt(1 + snr))
    lp = interval_log_probs(
        x, boundaries=q.boundaries(y_std=math.sqrt(1 + snr)), gain=1.0, noise_variance=1.0
    )
    for i in range(4):
        llr = level_llr(lp, quantiser=q, level=i, lower_bits=lv[:i] if i else None)
        emp = float(np.mean(np.logaddexp(0.0, -(1.0 - 2.0 * lv[i]) * llr)) / math.log(2.0))
        assert emp == pytest.approx(info.level_conditional_entropy_bits[i], abs=0.01)


def test_more_bits_and_optimised_boundaries_give_more_information() -> None:
    snr = 3.0
    eq = [
        level_information(equiprobable_quantiser(bits=m), snr=snr).ideal_beta for m in (2, 3, 4, 5)
    ]
    assert eq == sorted(eq)
    for m in (2, 3, 4):
        opt = level_information(optimised_quantiser(bits=m, snr=snr), snr=snr).ideal_beta
        assert opt >= level_information(equiprobable_quantiser(bits=m), snr=snr).ideal_beta


# ----------------------------------------------------------------------------- codes
def _degree_two_forest(code) -> bool:  # type: ignore[no-untyped-def]
    """Degree-2 variables as edges between their two checks: a forest iff E = V − components."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    two = np.flatnonzero(code.var_degrees == 2)
    ends = np.array([code.var_checks[code.var_ptr[v] : code.var_ptr[v + 1]] for v in two])
    g = coo_matrix((np.ones(two.size), (ends[:, 0], ends[:, 1])), shape=(code.n_checks,) * 2)
    n_comp, _ = connected_components(g, directed=False)
    return bool(two.size == code.n_checks - n_comp)


def test_level_code_is_reproducible_and_follows_its_profile() -> None:
    kw = dict(n_vars=6000, n_checks=4700, profile=(0.4, 20, 0.06), seed=5)
    a, b = level_code(**kw), level_code(**kw)  # type: ignore[arg-type]
    assert np.array_equal(a.check_vars, b.check_vars) and np.array_equal(a.check_ptr, b.check_ptr)
    deg = np.bincount(a.var_degrees)
    assert deg[2] == int(0.4 * 4700) and deg[20] == round(0.06 * 6000)
    assert deg[3] == 6000 - deg[2] - deg[20]
    assert a.check_degrees.max() - a.check_degrees.min() <= 1
    assert count_four_cycles(a) == 0  # sparse checks: the 4-cycle-free construction
    assert _degree_two_forest(a)


def test_high_rate_level_code_keeps_degrees_and_a_degree_two_forest() -> None:
    """Dense checks (d_c ≈ 33): only multi-edges and degree-2 cycles are removed."""
    code = level_code(n_vars=6000, n_checks=1000, profile=(0.3, 20, 0.15), seed=2)
    deg = np.bincount(code.var_degrees)
    assert (deg[2], deg[20], deg[3]) == (300, 900, 4800)
    assert code.n_edges == 2 * 300 + 20 * 900 + 3 * 4800  # from_edges rejects multi-edges
    assert _degree_two_forest(code)


def test_density_evolution_reproduces_the_regular_3_6_threshold() -> None:
    """BIAWGN channel samples (LLR ~ N(2/σ², 4/σ²)) and the profile that is (3,6)-regular at
    check fraction ½: density-evolution threshold σ* = 0.8809 (Richardson & Urbanke, Modern
    Coding Theory, Table 4.127). Population dynamics is statistical: test 5 % either side."""
    rng = np.random.default_rng(4)

    def channel(sigma: float) -> np.ndarray:
        return 2 / sigma**2 + 2 / sigma * rng.standard_normal(200_000)

    for sigma, expect in ((0.84, True), (0.92, False)):
        got = slicing.density_evolution_converges(
            (0.0, 3, 0.0), check_fraction=0.5, channel=channel(sigma), rng=rng
        )
        assert got is expect


def test_level_channel_samples_carry_the_level_entropy() -> None:
    """E[log2(1 + e^{−v})] of the symmetrised samples is h_i (1.2·10^5 samples, tolerance
    0.01 ≈ 4 standard errors)."""
    q = optimised_quantiser(bits=4, snr=10.0)
    h = level_information(q, snr=10.0).level_conditional_entropy_bits
    v = slicing.level_channel_samples(
        q, snr=10.0, level=2, size=120_000, rng=np.random.default_rng(2)
    )
    ent = float(np.mean(np.logaddexp(0.0, -v)) / math.log(2.0))
    assert ent == pytest.approx(h[2], abs=0.01)


# ----------------------------------------------------------------------------- the exchange
SNR = 3.0


@pytest.fixture(scope="module")
def design():  # type: ignore[no-untyped-def]
    # generous margin (0.08 bit per coded level) so that short frames decode surely
    return design_slices(
        snr=SNR, bits=4, frame_length=6000, margin_bits=0.08, seed=11, planner="exit"
    )


def _pair(frames: int, n: int, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    gain, sigma_x2 = 0.6, 2.0
    noise = gain**2 * sigma_x2 / SNR
    x = rng.normal(0, math.sqrt(sigma_x2), frames * n)
    y = gain * x + rng.normal(0, math.sqrt(noise), x.size)
    return x, y, gain, noise, sigma_x2, rng


def test_seeded_frames_reconcile_to_identical_bits(design) -> None:  # type: ignore[no-untyped-def]
    n = design.frame_length
    x, y, gain, noise, sx2, rng = _pair(2, n, 21)
    key, msg = slice_reconcile_bob(y, design=design, rng=rng)
    res = slice_reconcile_alice(
        x, msg, design=design, gain=gain, noise_variance=noise, signal_variance=sx2
    )
    assert design.disclosed_levels == (0, 1) and design.coded_levels == (2, 3)
    assert res.frame_ok.tolist() == [True, True]
    assert np.array_equal(res.key_bits, keep_frames(key, res.frame_ok))
    assert res.key_bits.shape == (2, 2 * n)
    assert res.stats.snr == pytest.approx(SNR)


def test_hash_catches_a_corrupted_frame(design) -> None:  # type: ignore[no-untyped-def]
    n = design.frame_length
    x, y, gain, noise, _sx2, rng = _pair(2, n, 22)
    key, msg = slice_reconcile_bob(y, design=design, rng=rng)
    wrong = key[1].copy()
    wrong[17] ^= 1  # Bob's tag of frame 1 now covers a different word than Alice decodes
    bad = dataclasses.replace(msg, tags=(msg.tags[0], make_tag(wrong, rng=rng)))
    res = slice_reconcile_alice(x, bad, design=design, gain=gain, noise_variance=noise)
    assert res.frame_ok.tolist() == [True, False]
    assert res.stats.frames_hash_failed == 1 and res.stats.frames_unconverged == 0
    assert np.array_equal(res.key_bits, key[:1])


def test_disclosed_information_is_counted_bit_for_bit(design) -> None:  # type: ignore[no-untyped-def]
    n = design.frame_length
    x, y, gain, noise, sx2, rng = _pair(3, n, 23)
    _key, msg = slice_reconcile_bob(y, design=design, rng=rng)
    res = slice_reconcile_alice(
        x, msg, design=design, gain=gain, noise_variance=noise, signal_variance=sx2
    )
    public = msg.disclosed.size + sum(s.size for s in msg.syndromes) + 61 * msg.frames
    assert public == msg.public_bits_per_frame * 3
    per_symbol = len(design.disclosed_levels) + sum(design.level_checks) / n + 61 / n
    assert public == pytest.approx(3 * n * per_symbol, abs=1e-6)
    st = res.stats
    assert st.disclosed_bits_per_symbol == pytest.approx(per_symbol, abs=1e-12)
    kept = int(res.frame_ok.sum())
    assert kept == 3
    assert st.leaked_bits == kept * (sum(s.shape[1] for s in msg.syndromes) + 61)
    assert st.key_bits == kept * len(design.coded_levels) * n == res.key_bits.size
    beta = (design.info.quantiser_entropy_bits - per_symbol) / (0.5 * math.log2(1 + SNR))
    assert st.beta == pytest.approx(beta, abs=1e-12)
    assert st.ideal_beta > st.beta


def test_alice_rejects_a_message_of_another_design(design) -> None:  # type: ignore[no-untyped-def]
    n = design.frame_length
    x, y, gain, noise, _, rng = _pair(1, n, 24)
    _, msg = slice_reconcile_bob(y, design=design, rng=rng)
    other = dataclasses.replace(msg, fingerprint=(*msg.fingerprint[:-1], 999))
    with pytest.raises(DataFormatError, match="different slice design"):
        slice_reconcile_alice(x, other, design=design, gain=gain, noise_variance=noise)
    short = dataclasses.replace(msg, syndromes=(msg.syndromes[0][:, :-1], *msg.syndromes[1:]))
    with pytest.raises(DataFormatError, match="syndrome sizes"):
        slice_reconcile_alice(x, short, design=design, gain=gain, noise_variance=noise)
    with pytest.raises(ConfigError, match="fewer than one frame"):
        slice_reconcile_bob(y[: n - 1], design=design, rng=rng)


def test_docstring_examples() -> None:
    result = doctest.testmod(slicing, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0
