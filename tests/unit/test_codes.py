"""The shipped code family and rate adaptation (cvqkd.reconciliation.codes)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.codes import (
    FAMILY,
    CodeData,
    CodeSpec,
    adapt,
    available_codes,
    code_family,
    code_for_rate,
    code_rate,
    load_code,
    load_code_data,
    member_for_rate,
    met_codes,
    predicted_beta,
    qc_codes,
    select_code,
)
from cvqkd.reconciliation.construction import canonical_edges, count_4cycles_base
from cvqkd.reconciliation.design import efficiency, permanent_bound, pexit_threshold_snr

NAMES = [s.name for s in FAMILY]


def test_every_family_member_is_shipped() -> None:
    assert qc_codes() == tuple(NAMES)
    assert available_codes() == met_codes() + qc_codes()
    assert {"met-r0.01", "met-r0.02"} <= set(met_codes())
    assert all(code_family(n) == "met" for n in met_codes())
    assert all(code_family(n) == "qc" for n in qc_codes())
    with pytest.raises(ConfigError, match="no shipped code"):
        code_family("ldpc-r0.5")


@pytest.mark.parametrize("name", NAMES)
def test_shipped_threshold_is_reproduced_by_pexit(name: str) -> None:
    # identity check of data + PEXIT code: the stored threshold was found by the same PEXIT
    # with a 0.2% bracket; recomputing with a 0.1% bracket must land within 0.3%.
    d = load_code_data(name)
    thr = pexit_threshold_snr(d.protograph)
    assert thr == pytest.approx(d.threshold_snr, rel=3e-3)
    assert d.beta == pytest.approx(float(efficiency(rate=d.rate, snr=d.threshold_snr)), rel=1e-12)


def test_claimed_asymptotic_efficiencies() -> None:
    # the PEXIT β* claimed in the table of docs/codes.md (3 decimals, rounded down)
    claimed = {"rl-r0.01": 0.920, "rl-r0.02": 0.926, "rl-r0.05": 0.892, "rl-r0.1": 0.891}
    claimed["rl-r0.2"] = 0.854
    for name, beta in claimed.items():
        assert load_code_data(name).beta >= beta, name


@pytest.mark.parametrize("spec", FAMILY, ids=NAMES)
def test_precode_distance_bound(spec: CodeSpec) -> None:
    p = load_code_data(spec.name).protograph
    # the design constraint (docs/codes.md): precode codewords may have weight up to the bound;
    # the spec's bound keeps the lightest full codewords at hundreds to thousands of bits
    assert permanent_bound(p.base[: p.n_precode, : p.n_core]) >= spec.min_distance_bound
    deg = p.column_degrees()[: p.n_core]
    assert deg.min() >= 0.6 * deg.mean()


@pytest.mark.parametrize("name", NAMES)
def test_lifted_code_follows_protograph_rate_and_has_no_4cycles(name: str) -> None:
    d = load_code_data(name)
    p = d.protograph
    z = d.lifting_for(100_000)
    code = load_code(name, lifting=z)
    m_b, n_b = p.shape
    assert (code.n_checks, code.n_vars) == (m_b * z, n_b * z)
    assert code.rate == pytest.approx(d.rate, abs=1e-12)
    # every lifted column/row has the degree of its base column/row
    assert np.array_equal(code.var_degrees, np.repeat(p.column_degrees(), z))
    assert np.array_equal(code.check_degrees, np.repeat(p.row_degrees(), z))
    # block (i, j) of H holds exactly base[i, j]·Z ones
    blocks = np.zeros(p.shape, dtype=np.int64)
    np.add.at(blocks, (code.edge_checks // z, code.check_vars // z), 1)
    assert np.array_equal(blocks, p.base * z)
    # no 4-cycles: two columns share at most one check (independent of the shift algebra)
    h = sp.csr_matrix(
        (np.ones(code.n_edges, dtype=np.int32), (code.edge_checks, code.check_vars)),
        shape=(code.n_checks, code.n_vars),
    )
    g = (h.T @ h).tocoo()
    off = g.row != g.col
    assert g.data[off].max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_all_shipped_liftings_are_4cycle_free(name: str) -> None:
    d = load_code_data(name)
    for z, s in d.shifts.items():
        assert count_4cycles_base(d.protograph.base, s, lifting=z) == 0


@pytest.mark.parametrize("name", NAMES)
def test_parallel_edge_shifts_are_coprime_to_lifting(name: str) -> None:
    # a weight-2 circulant I + P^δ has kernel vectors of weight Z / gcd(δ, Z): the construction
    # keeps δ coprime to Z (a gcd of 125 at Z = 500 gave 4-bit precode codewords)
    d = load_code_data(name)
    rows, cols = canonical_edges(d.protograph.base)
    for z, s in d.shifts.items():
        for r, c in {(int(a), int(b)) for a, b in zip(rows, cols, strict=True)}:
            sh = s[(rows == r) & (cols == c)]
            for i in range(sh.size):
                for j in range(i + 1, sh.size):
                    assert np.gcd(int(sh[i] - sh[j]) % z, z) == 1


def test_block_lengths_cover_1e5_and_1e6() -> None:
    for name in NAMES:
        d = load_code_data(name)
        assert [d.n_vars(z) for z in d.liftings] == [100_000, 1_000_000]


def test_json_round_trip_and_malformed_data() -> None:
    d = load_code_data("rl-r0.1")
    again = CodeData.from_json(json.loads(json.dumps(d.to_json())))
    assert np.array_equal(again.protograph.base, d.protograph.base)
    assert all(np.array_equal(again.shifts[z], d.shifts[z]) for z in d.shifts)
    bad = d.to_json()
    bad["liftings"] = {k: v[:-1] for k, v in bad["liftings"].items()}
    with pytest.raises(DataFormatError):
        CodeData.from_json(bad)
    bad = d.to_json()
    bad["rate"] = 0.3
    with pytest.raises(DataFormatError):
        CodeData.from_json(bad)
    with pytest.raises(ConfigError, match="no shipped code"):
        load_code_data("nope")


@pytest.mark.parametrize("rate", [0.012, 0.015, 0.02, 0.0199])
def test_truncation_gives_the_claimed_rate_and_is_a_prefix(rate: float) -> None:
    mother = load_code("rl-r0.01", n_target=100_000)
    a = adapt("rl-r0.01", rate=rate, n_target=100_000)
    k = mother.n_vars - mother.n_checks
    assert a.code.n_vars - a.code.n_checks == k  # same information size
    # n' = ceil(k/R): the achieved rate is at most R and at least R/(1 + R/k) (one bit)
    assert rate / (1 + rate / k) <= a.rate <= rate
    assert a.leak_bits == a.code.n_checks
    assert a.shortened.size == 0 and a.punctured.size == 0
    # H' is the top-left block of H: the syndrome of a prefix word is the syndrome prefix
    rng = np.random.default_rng(1)
    word = rng.integers(0, 2, mother.n_vars, dtype=np.uint8)
    word[a.code.n_vars :] = 0
    s_full = mother.syndrome(word)
    assert np.array_equal(a.code.syndrome(word[: a.code.n_vars]), s_full[: a.code.n_checks])


@pytest.mark.parametrize("rate", [0.015, 0.018, 0.0195])
def test_shortening_gives_the_claimed_rate(rate: float) -> None:
    a = adapt("rl-r0.02", rate=rate, n_target=100_000)
    n, m, s = a.code.n_vars, a.code.n_checks, a.shortened.size
    assert a.rate == pytest.approx((n - m - s) / (n - s), abs=1e-15)
    assert a.rate <= rate and a.rate == pytest.approx(rate, abs=2.0 / n)
    d = load_code_data("rl-r0.02")
    assert a.shortened.max() < d.protograph.n_core * a.lifting  # core positions only
    assert np.unique(a.shortened).size == s
    rng = np.random.default_rng(2)
    data = rng.integers(0, 2, a.n_data, dtype=np.uint8)
    word = a.full_bits(data)
    assert np.array_equal(word[a.data_positions], data) and not word[a.shortened].any()
    llr = a.full_llr(np.ones(a.n_data))
    assert np.all(llr[a.shortened] > 100) and np.all(llr[a.data_positions] == 1)


def test_select_code_picks_nearest_member() -> None:
    from cvqkd.reconciliation.design import snr_for_efficiency

    qc = qc_codes()
    for spec in FAMILY:
        snr = float(snr_for_efficiency(rate=spec.rate, beta=0.95))
        a = select_code(snr=snr, beta=0.95, n_target=100_000, names=qc)
        assert a.mother == spec.name
        assert a.rate == pytest.approx(spec.rate, abs=8 / a.code.n_vars)  # align_data
    # between members: truncate the lower-rate one (measured better than shortening)
    snr = float(snr_for_efficiency(rate=0.017, beta=0.9))
    a = select_code(snr=snr, beta=0.9, n_target=100_000, names=qc)
    assert a.mother == "rl-r0.01" and a.shortened.size == 0
    assert a.rate == pytest.approx(0.017, rel=1e-3)
    # below the lowest member: shorten it
    a = select_code(
        snr=float(snr_for_efficiency(rate=0.008, beta=0.9)), beta=0.9, n_target=100_000, names=qc
    )
    assert a.mother == "rl-r0.01" and a.shortened.size > 0
    with pytest.raises(ConfigError):
        select_code(snr=-1.0, beta=0.95)


def test_low_rates_use_the_met_family() -> None:
    # the rule of codes.member_for_rate (docs/met-codes.md, "Rate adaptation"): a member whose
    # window [0.95, 1.1]·rate holds the target, else the member below truncated (up to 2×),
    # below the lowest member that one shortened; the QC family above twice the highest MET
    # rate. Built at n = 10^5 for the members that construct there (met-r0.005 needs
    # n >= 3.2·10^5 for a 4-cycle-free graph: selection only).
    rates = {n: code_rate(n) for n in met_codes()}
    top = max(rates.values())
    for name, r in rates.items():
        assert member_for_rate(rate=r) == name
        assert member_for_rate(rate=r * 1.08) == name  # small step up: truncate
        assert member_for_rate(rate=r * 0.96) == name  # small step down: shorten
    for name in ("met-r0.01", "met-r0.02"):
        r = rates[name]
        a = code_for_rate(rate=r, n_target=100_000)
        assert a.mother == name and a.shortened.size == 0 and a.rate == pytest.approx(r)
        a = code_for_rate(rate=r * 1.08, n_target=100_000)
        # truncated from a longer mother: the frame keeps its length
        assert a.mother == name and a.code.n_vars == pytest.approx(100_000, rel=0.01)
        assert a.rate == pytest.approx(r * 1.08, abs=8 / a.code.n_vars)
        a = code_for_rate(rate=r * 0.96, n_target=100_000)
        assert a.mother == name and a.shortened.size > 0
        assert a.rate == pytest.approx(r * 0.96, abs=8 / a.code.n_vars)
    # between windows: the member below, truncated
    assert member_for_rate(rate=0.013) == "met-r0.01"
    lowest = min(rates, key=lambda n: rates[n])
    assert member_for_rate(rate=rates[lowest] * 0.8) == lowest  # below: shorten the lowest
    assert member_for_rate(rate=top * 2.5).startswith("rl-")
    a = select_code(snr=0.0296, beta=0.95, n_target=100_000)
    assert a.mother == "met-r0.02" and a.rate == pytest.approx(0.02, abs=8 / a.code.n_vars)


@pytest.mark.parametrize("rate", [0.0099, 0.0104, 0.015, 0.033, 0.08])
def test_code_for_rate_aligns_the_data_to_mdr_groups(rate: float) -> None:
    # MDR needs the data length divisible by d = 8; the extra known bits are core (degree ≥ 2)
    # bits, deterministic, and cost at most 7/n of rate
    a = code_for_rate(rate=rate, n_target=100_000)
    assert a.n_data % 8 == 0
    assert a.rate == pytest.approx(rate, abs=8 / a.code.n_vars)
    assert np.all(a.code.var_degrees[a.shortened] >= 2)
    assert np.array_equal(a.shortened, np.unique(a.shortened))
    b = code_for_rate(rate=rate, n_target=100_000)
    assert np.array_equal(a.shortened, b.shortened)
    k = a.code.n_vars - a.code.n_checks - a.shortened.size
    assert a.rate == pytest.approx(k / a.n_data, rel=1e-12)


def test_predicted_beta_of_mother_and_truncation() -> None:
    # untruncated: the stored PEXIT β* (0.3%: bracket widths); truncation to whole base rows
    # gives a protograph of the claimed higher rate whose β* is finite and below 1
    d = load_code_data("rl-r0.1")
    assert predicted_beta(adapt("rl-r0.1", rate=0.1, n_target=100_000)) == pytest.approx(
        d.beta, rel=3e-3
    )
    b = predicted_beta(adapt("rl-r0.1", rate=0.125, n_target=100_000))
    assert 0.5 < b < 1.0
