"""GG02 asymptotic engine: published numbers, exact identities, an independent reference.

The independent reference below builds the full covariance matrix of Lodewyck's entangling-
cloner picture (Alice's EPR mode A, Bob's mode B, the detector's EPR pair F0/G mixed on a beam
splitter of transmittance η), conditions it on Bob's homodyne or heterodyne outcome with the
Gaussian update rule, and takes the symplectic spectra numerically (eigenvalues of iΩγ). It shares
no formula with cvqkd.keyrate.gaussian beyond G(ν).
"""

from __future__ import annotations

from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvqkd.keyrate.bounds import plob_bits_per_use
from cvqkd.keyrate.gaussian import (
    g_entropy_bits,
    gg02,
    holevo_bits,
    mutual_information_bits,
)
from tests.conftest import load_reference

# ---------------------------------------------------------------- independent slow reference


def _omega(n_modes: int) -> np.ndarray:
    return np.kron(np.eye(n_modes), np.array([[0.0, 1.0], [-1.0, 0.0]]))


def _entropy_cm(gamma: np.ndarray) -> float:
    n = gamma.shape[0] // 2
    ev = np.sort(np.abs(np.linalg.eigvals(1j * _omega(n) @ gamma)))[::2]
    total = 0.0
    for nu in ev:
        if nu > 1.0 + 1e-12:
            total += ((nu + 1) / 2) * np.log2((nu + 1) / 2) - ((nu - 1) / 2) * np.log2((nu - 1) / 2)
    return total


def _reference_holevo(t, xi, va, eta, vel, detection):  # type: ignore[no-untyped-def]
    v = va + 1.0
    z = np.diag([1.0, -1.0])
    i2 = np.eye(2)
    chi_line = 1 / t - 1 + xi
    c = np.sqrt(t * (v * v - 1))
    gab = np.block([[v * i2, c * z], [c * z, t * (v + chi_line) * i2]])
    s_ab = _entropy_cm(gab)
    # detector: EPR (F0, G) of variance w, F0 enters the beam splitter with B. The heterodyne's
    # two homodynes each add v_el, i.e. 2 v_el referred to one quadrature of B'.
    n_el = vel if detection == "homodyne" else 2.0 * vel
    w = 1.0 + n_el / (1.0 - eta) if eta < 1 else 1.0
    cw = np.sqrt(w * w - 1)
    # full CM ordered A, B, F0, G
    g = np.zeros((8, 8))
    g[:4, :4] = gab
    g[4:, 4:] = np.block([[w * i2, cw * z], [cw * z, w * i2]])
    s = np.eye(8)
    se, ce = np.sqrt(eta), np.sqrt(1 - eta)
    s[2:4, 2:4] = se * i2
    s[2:4, 4:6] = ce * i2
    s[4:6, 2:4] = -ce * i2
    s[4:6, 4:6] = se * i2
    g = s @ g @ s.T
    keep = [0, 1, 4, 5, 6, 7]  # A, F, G
    gx = g[np.ix_(keep, keep)]
    sig = g[np.ix_(keep, [2, 3])]
    gb = g[2:4, 2:4]
    if detection == "homodyne":
        proj = np.diag([1.0, 0.0])
        inv = np.linalg.pinv(proj @ gb @ proj)
    else:
        inv = np.linalg.inv(gb + i2)
    cond = gx - sig @ inv @ sig.T
    return s_ab - _entropy_cm(cond)


# ---------------------------------------------------------------- published numbers


def test_lodewyck2007_reference_case() -> None:
    ref = load_reference("gg02_lodewyck2007.json")
    inp = ref["inputs"]
    r = gg02(
        transmittance=inp["transmittance"],
        excess_noise_snu=inp["excess_noise_snu"],
        modulation_variance_snu=inp["modulation_variance_snu"],
        detector_efficiency=inp["detector_efficiency"],
        electronic_noise_snu=inp["electronic_noise_snu"],
        reconciliation_efficiency=inp["reconciliation_efficiency"],
        detection=inp["detection"],
    )
    exp = ref["expected_per_symbol"]
    # 1e-4 bit/symbol: the file's stated tolerance (paper prints 3 significant figures).
    assert r.mutual_information_bits == pytest.approx(exp["mutual_information_bits"], abs=1e-4)
    assert r.holevo_bits == pytest.approx(exp["holevo_bits"], abs=1e-4)
    assert r.key_rate_bits_per_symbol == pytest.approx(exp["key_rate_bits_per_symbol"], abs=1e-4)
    # and the published bit/s figures (3 significant figures -> 0.5% relative)
    f = inp["effective_symbol_rate_hz"]
    pub = ref["published"]
    assert f * r.mutual_information_bits == pytest.approx(pub["mutual_information_bps"], rel=5e-3)
    assert f * r.holevo_bits == pytest.approx(pub["holevo_bps"], rel=5e-3)


def test_plob_identity_reference_cases() -> None:
    ref = load_reference("plob_identity.json")
    inp = ref["inputs"]
    for case in ref["cases"]:
        r = gg02(
            transmittance=case["transmittance"],
            excess_noise_snu=inp["excess_noise_snu"],
            modulation_variance_snu=inp["modulation_variance_snu"],
            detector_efficiency=inp["detector_efficiency"],
            electronic_noise_snu=inp["electronic_noise_snu"],
            reconciliation_efficiency=inp["reconciliation_efficiency"],
            detection=inp["detection"],
        )
        plob = plob_bits_per_use(transmittance=case["transmittance"])
        # file tolerance: relative 1e-4 (finite V_A = 1e4)
        assert plob == pytest.approx(case["plob_bits_per_use"], rel=1e-6)
        assert r.key_rate_bits_per_symbol == pytest.approx(
            case["key_rate_bits_per_symbol"], rel=1e-4
        )
        # the identity itself holds as V_A → ∞; at V_A = 1e4 the gap is ~1.5e-4 relative
        assert r.key_rate_bits_per_symbol == pytest.approx(0.5 * plob, rel=5e-4)
        assert r.key_rate_bits_per_symbol < 0.5 * plob


def test_ideal_homodyne_converges_to_half_plob_as_va_grows() -> None:
    """V_A → ∞: the gap to ½ PLOB shrinks ~1/V_A and stays accurate up to V_A = 1e9."""
    t = np.array([0.5, 0.1, 0.01, 1e-3])
    half = 0.5 * np.asarray(plob_bits_per_use(transmittance=t))
    gaps = []
    for va in (1e3, 1e5, 1e7, 1e9):
        k = np.asarray(
            gg02(
                transmittance=t, excess_noise_snu=0.0, modulation_variance_snu=va
            ).key_rate_bits_per_symbol
        )
        gaps.append(np.abs(k - half) / half)
    gaps_arr = np.array(gaps)
    assert np.all(np.diff(gaps_arr, axis=0) <= 0.0)
    # the V_A = 1e9 value is within 1e-6 relative: no loss of digits at large V_A
    assert np.all(gaps_arr[-1] < 1e-6)


# ---------------------------------------------------------------- independent reference


@pytest.mark.parametrize("detection", ["homodyne", "heterodyne"])
@pytest.mark.parametrize("trusted", [True, False])
def test_holevo_matches_covariance_matrix_reference(detection: str, trusted: bool) -> None:
    rng = np.random.default_rng(20260101)
    for _ in range(25):
        t = float(rng.uniform(0.01, 0.95))
        xi = float(rng.uniform(0.0, 0.1))
        va = float(rng.uniform(0.5, 40.0))
        eta = float(rng.uniform(0.4, 0.99))
        vel = float(rng.uniform(0.0, 0.3))
        got = holevo_bits(
            transmittance=t,
            excess_noise_snu=xi,
            modulation_variance_snu=va,
            detector_efficiency=eta,
            electronic_noise_snu=vel,
            detection=detection,  # type: ignore[arg-type]
            trusted_detector=trusted,
        )
        if trusted:
            want = _reference_holevo(t, xi, va, eta, vel, detection)
        else:
            want = _reference_holevo(t, xi, va, 1.0, 0.0, detection)
        # 1e-8: both are double precision; the eigen-solver route loses a few digits.
        assert got == pytest.approx(want, abs=1e-8)


def test_mutual_information_identities() -> None:
    # ideal heterodyne: I = log2(1 + T V_A / (2 + T ξ)); ideal homodyne: ½ log2(1 + T V_A/(1 + Tξ))
    t, xi, va = 0.3, 0.02, 5.0
    het = mutual_information_bits(
        transmittance=t, excess_noise_snu=xi, modulation_variance_snu=va, detection="heterodyne"
    )
    hom = mutual_information_bits(transmittance=t, excess_noise_snu=xi, modulation_variance_snu=va)
    assert het == pytest.approx(np.log2(1 + t * va / (2 + t * xi)), rel=1e-14)
    assert hom == pytest.approx(0.5 * np.log2(1 + t * va / (1 + t * xi)), rel=1e-14)


def test_untrusted_equals_trusted_for_ideal_detector_and_is_lower_otherwise() -> None:
    kw = dict(transmittance=0.2, excess_noise_snu=0.01, modulation_variance_snu=4.0)
    for det in ("homodyne", "heterodyne"):
        a = gg02(**kw, detection=det, trusted_detector=True)  # type: ignore[arg-type]
        b = gg02(**kw, detection=det, trusted_detector=False)  # type: ignore[arg-type]
        assert a.key_rate_bits_per_symbol == b.key_rate_bits_per_symbol
        c = gg02(**kw, detector_efficiency=0.6, electronic_noise_snu=0.05, detection=det)  # type: ignore[arg-type]
        d = gg02(
            **kw,
            detector_efficiency=0.6,
            electronic_noise_snu=0.05,
            detection=det,  # type: ignore[arg-type]
            trusted_detector=False,
        )
        assert d.key_rate_bits_per_symbol < c.key_rate_bits_per_symbol
        assert d.mutual_information_bits == c.mutual_information_bits


# ---------------------------------------------------------------- limits and numerics


def test_g_entropy_near_one_against_high_precision() -> None:
    getcontext().prec = 50
    for eps in (1e-15, 1e-12, 1e-8, 1e-3, 1.0, 1e6):
        nu = Decimal(1) + Decimal(eps)
        a, b = (nu + 1) / 2, (nu - 1) / 2
        ln2 = Decimal(2).ln()
        want = float((a * a.ln() - b * b.ln()) / ln2)
        # eps = 1e-15 is itself only representable to ~1e-16 relative in float64 ν; compare x-exact
        got = g_entropy_bits(1.0 + eps)
        assert got == pytest.approx(want, rel=1e-6 if eps < 1e-10 else 1e-13)
    assert g_entropy_bits(1.0) == 0.0
    assert g_entropy_bits(3.0) == pytest.approx(2.0, rel=1e-15)


def test_lossless_noiseless_limit() -> None:
    """T → 1, ξ → 0, ideal detector: χ_BE → 0 and K → I_AB = ½ log2(V)."""
    for t in (1.0, 1 - 1e-9):
        r = gg02(transmittance=t, excess_noise_snu=0.0, modulation_variance_snu=15.0)
        assert r.holevo_bits == pytest.approx(0.0, abs=1e-6)
        assert r.key_rate_bits_per_symbol == pytest.approx(0.5 * np.log2(16.0), abs=1e-6)


def test_xi_to_zero_is_continuous() -> None:
    kw = dict(
        transmittance=0.05,
        modulation_variance_snu=4.0,
        detector_efficiency=0.6,
        electronic_noise_snu=0.03,
    )
    k0 = gg02(**kw, excess_noise_snu=0.0).key_rate_bits_per_symbol  # type: ignore[arg-type]
    k1 = gg02(**kw, excess_noise_snu=1e-12).key_rate_bits_per_symbol  # type: ignore[arg-type]
    # dK/dξ is O(1) bit/SNU here, so a 1e-12 step moves K by ~1e-12.
    assert abs(k0 - k1) < 1e-10
    assert k1 < k0


def test_vectorised_equals_scalar_loop() -> None:
    rng = np.random.default_rng(7)
    n = 200
    t = rng.uniform(1e-3, 1.0, n)
    xi = rng.uniform(0.0, 0.1, n)
    va = rng.uniform(0.1, 100.0, n)
    eta = rng.uniform(0.3, 1.0, n)
    vel = rng.uniform(0.0, 0.2, n)
    beta = rng.uniform(0.8, 1.0, n)
    for det in ("homodyne", "heterodyne"):
        vec = gg02(
            transmittance=t,
            excess_noise_snu=xi,
            modulation_variance_snu=va,
            detector_efficiency=eta,
            electronic_noise_snu=vel,
            reconciliation_efficiency=beta,
            detection=det,
        )  # type: ignore[arg-type]
        loop = [
            gg02(
                transmittance=float(t[i]),
                excess_noise_snu=float(xi[i]),
                modulation_variance_snu=float(va[i]),
                detector_efficiency=float(eta[i]),
                electronic_noise_snu=float(vel[i]),
                reconciliation_efficiency=float(beta[i]),
                detection=det,
            ).key_rate_bits_per_symbol  # type: ignore[arg-type]
            for i in range(n)
        ]
        # equal up to a few ulps: numpy's SIMD (array) and scalar libm paths may differ in the
        # last bit of log/sqrt, and K is a difference of O(1-10) bit terms -> 1e-12 absolute
        np.testing.assert_allclose(vec.key_rate_bits_per_symbol, np.array(loop), rtol=0, atol=1e-12)
    # broadcasting: a (3,1) grid against a (4,) row gives (3, 4)
    r = gg02(
        transmittance=np.array([[0.1], [0.2], [0.3]]),
        excess_noise_snu=0.01,
        modulation_variance_snu=np.array([1.0, 2.0, 4.0, 8.0]),
    )
    assert np.shape(r.key_rate_bits_per_symbol) == (3, 4)
    assert np.shape(r.holevo_bits) == (3, 4)


# ---------------------------------------------------------------- monotonicity (hypothesis)

_params = dict(
    t=st.floats(1e-3, 0.99),
    xi=st.floats(0.0, 0.2),
    va=st.floats(0.5, 50.0),
    eta=st.floats(0.3, 1.0),
    vel=st.floats(0.0, 0.3),
    det=st.sampled_from(["homodyne", "heterodyne"]),
    trusted=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(**_params, dxi=st.floats(1e-4, 0.1))
def test_key_rate_falls_as_excess_noise_grows(t, xi, va, eta, vel, det, trusted, dxi):  # type: ignore[no-untyped-def]
    kw = dict(
        transmittance=t,
        modulation_variance_snu=va,
        detector_efficiency=eta,
        electronic_noise_snu=vel,
        detection=det,
        trusted_detector=trusted,
        reconciliation_efficiency=0.95,
    )
    k0 = gg02(**kw, excess_noise_snu=xi).key_rate_bits_per_symbol
    k1 = gg02(**kw, excess_noise_snu=xi + dxi).key_rate_bits_per_symbol
    # the law holds for the usable rate max(K, 0); below zero the bound carries no meaning
    assert max(k1, 0.0) <= max(k0, 0.0)
    if k0 > 0:
        assert k1 < k0


@settings(max_examples=200, deadline=None)
@given(**_params, factor=st.floats(0.3, 0.999))
def test_key_rate_falls_as_loss_grows(t, xi, va, eta, vel, det, trusted, factor):  # type: ignore[no-untyped-def]
    kw = dict(
        excess_noise_snu=xi,
        modulation_variance_snu=va,
        detector_efficiency=eta,
        electronic_noise_snu=vel,
        detection=det,
        trusted_detector=trusted,
        reconciliation_efficiency=0.95,
    )
    k0 = gg02(**kw, transmittance=t).key_rate_bits_per_symbol
    k1 = gg02(**kw, transmittance=t * factor).key_rate_bits_per_symbol
    assert max(k1, 0.0) <= max(k0, 0.0)
    if k0 > 0:
        assert k1 < k0


def test_ideal_heterodyne_infinite_modulation_closed_form() -> None:
    """Pure loss, ideal heterodyne, V_A → ∞: I_AB → log2(T V/2), S(E) → G(V(1−T)) and the
    conditional eigenvalue → (2 − T)/T, which sum to K∞ = −log2(1 − T)/T − log2 e (derived by
    hand from the covariance matrix; independent of the C, D formulas in the code)."""
    for t in (0.5, 0.1, 0.01):
        want = -np.log2(1.0 - t) / t - np.log2(np.e)
        k = gg02(
            transmittance=t,
            excess_noise_snu=0.0,
            modulation_variance_snu=1e8,
            detection="heterodyne",
        ).key_rate_bits_per_symbol
        # the gap closes as 1/V_A: ~1e-8 relative at V_A = 1e8
        assert k == pytest.approx(want, rel=1e-7)
        assert k < want
