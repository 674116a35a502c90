"""Tests for the FER harness: Wilson interval, error counting, β, code resolution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.fer import fer_curve, fer_point, plot_fer, resolve_code, wilson_interval
from cvqkd.reconciliation.ldpc import random_regular
from cvqkd.reconciliation.mdr import awgn_capacity
from tests.unit.test_decoder import met_like_code


def test_wilson_interval_known_values() -> None:
    # Wilson (1927) 95 % interval: 0/10 → [0, 0.2775]; 5/10 → [0.2366, 0.7634] (standard table)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))


@pytest.fixture(scope="module")
def code():  # type: ignore[no-untyped-def]
    return met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )


def test_easy_and_hopeless_points(code) -> None:  # type: ignore[no-untyped-def]
    easy = fer_point(
        code,
        snr=0.6,
        dimension=8,
        rng=np.random.default_rng(1),
        target_errors=3,
        max_frames=12,
        max_iterations=200,
    )
    assert (easy.frames, easy.frame_errors) == (12, 0)
    assert easy.beta == pytest.approx(0.1 / float(awgn_capacity(snr=0.6)))
    assert easy.snr_db == pytest.approx(10 * math.log10(0.6))
    # below capacity of the rate (β > 1): every frame fails; the run stops at target_errors
    bad = fer_point(
        code,
        snr=0.05,
        dimension=8,
        rng=np.random.default_rng(2),
        target_errors=3,
        max_frames=50,
        max_iterations=20,
        batch_frames=2,
    )
    assert bad.frame_errors >= 3 and bad.frames == 4 and bad.fer == 1.0
    assert bad.beta > 1.0 and bad.effective_beta == 0.0


def test_curve_is_reproducible_and_monotone(code) -> None:  # type: ignore[no-untyped-def]
    kw = dict(dimension=4, target_errors=4, max_frames=8, max_iterations=100)
    a = fer_curve(code, snrs=[0.2, 0.6], rng=np.random.default_rng(5), **kw)
    b = fer_curve(code, snrs=[0.2, 0.6], rng=np.random.default_rng(5), **kw)
    assert [p.frame_errors for p in a] == [p.frame_errors for p in b]
    assert a[0].fer >= a[1].fer


def test_plot(code, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = fer_curve(
        code,
        snrs=[0.3, 0.6],
        dimension=8,
        rng=np.random.default_rng(6),
        target_errors=2,
        max_frames=4,
    )
    fig, ax = plt.subplots()
    assert plot_fer(pts, ax) is ax and ax.get_yscale() == "log"
    fig.savefig(tmp_path / "f.png")
    plt.close(fig)
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_resolve_code_from_alist(tmp_path) -> None:  # type: ignore[no-untyped-def]
    c = random_regular(n_vars=120, var_degree=3, check_degree=6, rng=np.random.default_rng(0))
    path = tmp_path / "c.alist"
    c.write_alist(path)
    lay = resolve_code(rate=None, frame_length=0, alist=str(path))
    assert lay.code.n_vars == 120 and lay.rate == pytest.approx(c.rate)
    with pytest.raises(ConfigError, match="rate"):
        resolve_code(rate=0.2, frame_length=0, alist=str(path))
    with pytest.raises(ConfigError):
        fer_point(c, snr=-1.0, dimension=1, rng=np.random.default_rng(0))


def test_undetected_weight_is_a_codeword_weight() -> None:
    # On a tiny, bad code the decoder often converges to a wrong word; the difference from
    # Bob's word is then a non-zero codeword, so the reported weight must be one of the
    # code's codeword weights (enumerated exhaustively here).
    import itertools

    from cvqkd.reconciliation.ldpc import LdpcCode

    h = np.array([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0], [1, 1, 0, 0, 1, 1]], dtype=np.uint8)
    code = LdpcCode.from_dense(h)
    words = np.array(list(itertools.product([0, 1], repeat=6)), dtype=np.uint8)
    weights = {int(w.sum()) for w in words if w.any() and not code.syndrome(w).any()}
    found = -1
    for seed in range(40):
        p = fer_point(
            code,
            snr=0.3,
            dimension=2,
            rng=np.random.default_rng(seed),
            target_errors=1,
            max_frames=5,
            max_iterations=20,
        )
        if p.undetected_errors:
            found = p.min_undetected_weight
            break
    assert found in weights
