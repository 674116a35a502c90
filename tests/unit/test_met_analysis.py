"""Tests for cvqkd.reconciliation.met_analysis: specs, DE threshold bracket, DE iterations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.met import (
    ENSEMBLES,
    population_de_converges,
    population_de_run,
    regular_ensemble,
)
from cvqkd.reconciliation.met_analysis import (
    de_iterations,
    de_threshold_beta,
    ensemble_from_spec,
    load_ensemble_spec,
    snr_at_beta,
)


def test_spec_round_trip_of_a_shipped_ensemble(tmp_path: Path) -> None:
    ens = ENSEMBLES["met-r0.02"]
    spec = {
        "name": ens.name,
        "unit": ens.unit,
        "var_types": [[c, list(d)] for c, d in ens.var_types],
        "check_types": [[c, list(d)] for c, d in ens.check_types],
        "seed": ens.seed,
    }
    path = tmp_path / "e.json"
    path.write_text(json.dumps(spec))
    back = load_ensemble_spec(path)
    assert back.var_types == ens.var_types and back.check_types == ens.check_types
    assert back.rate == ens.rate and back.seed == ens.seed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"var_types": [[2, [3]]], "check_types": [[1, [6]]]}, "missing 'unit'"),
        ({"unit": "x", "var_types": [[2, [3]]], "check_types": [[1, [6]]]}, "'unit'"),
        ({"unit": 2, "var_types": [[2, 3]], "check_types": [[1, [6]]]}, "var_types\\[0\\]"),
        ({"unit": 2, "var_types": [[2, [3]]], "check_types": []}, "'check_types'"),
        ({"unit": 2, "var_types": [[2, [-3]]], "check_types": [[1, [6]]]}, "degrees >= 0"),
        ({"unit": 3, "var_types": [[2, [3]]], "check_types": [[1, [6]]]}, "unit=3"),
    ],
)
def test_bad_specs_name_what_is_wrong(spec: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        ensemble_from_spec(spec)


def test_unreadable_spec_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_ensemble_spec(tmp_path / "missing.json")
    broken = tmp_path / "b.toml"
    broken.write_text("unit = = 2")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_ensemble_spec(broken)


def test_snr_at_beta_inverts_the_efficiency() -> None:
    ens = ENSEMBLES["met-r0.01"]
    for beta in (0.9, 0.95, 1.0):
        snr = snr_at_beta(ens, beta)
        assert ens.rate / (0.5 * math.log2(1 + snr)) == pytest.approx(beta, rel=1e-12)
    with pytest.raises(ConfigError, match="beta"):
        snr_at_beta(ens, 0.0)


def test_iterations_and_converges_share_one_random_stream() -> None:
    # population_de_converges is population_de_run(...).iterations is not None, draw for draw;
    # the residual is at most the target when it converged, above it when it did not
    ens = regular_ensemble(var_degree=3, check_degree=6)
    for snr in (1 / 0.8**2, 1 / 0.95**2):
        run = population_de_run(ens, snr=snr, rng=np.random.default_rng(5), population=3000)
        ok = population_de_converges(ens, snr=snr, rng=np.random.default_rng(5), population=3000)
        assert ok == (run.iterations is not None)
        assert (run.residual < 1e-4) == ok
    assert population_de_run(
        ens, snr=1 / 0.8**2, rng=np.random.default_rng(5), population=3000
    ) == population_de_run(ens, snr=1 / 0.8**2, rng=np.random.default_rng(5), population=3000)


def test_threshold_bracket_of_the_3_6_ensemble() -> None:
    # σ* = 0.8809 (Richardson & Urbanke, Modern Coding Theory, Table 4.116) ↔ β* = 0.837 in
    # the package's convention β = R / (½ log2(1 + SNR)); 6 000 samples scatter ≈ ±0.02
    ens = regular_ensemble(var_degree=3, check_degree=6)
    beta_star = 0.5 / (0.5 * math.log2(1 + 1 / 0.8809**2))
    b = de_threshold_beta(ens, lo=0.7, hi=0.95, resolution=0.01, population=6000)
    assert b.fails_at is not None and b.fails_at - b.converges_at == pytest.approx(0.01)
    assert beta_star - 0.03 < b.converges_at < b.fails_at < beta_star + 0.03
    with pytest.raises(ConfigError, match="does not converge even"):
        de_threshold_beta(ens, lo=0.95, hi=0.99, resolution=0.01, population=3000)


def test_iterations_grow_towards_the_threshold() -> None:
    # the farther below the threshold, the wider the tunnel: fewer DE iterations
    ens = regular_ensemble(var_degree=3, check_degree=6)
    its = [de_iterations(ens, beta=b, seeds=(1, 2), population=4000) for b in (0.5, 0.7, 0.8)]
    assert all(i is not None for row in its for i in row)
    means = [sum(row) / 2 for row in its]  # type: ignore[arg-type]
    assert means[0] < means[1] < means[2]
    # above capacity it cannot converge
    assert de_iterations(ens, beta=1.05, seeds=(1,), population=4000, max_iterations=200) == (None,)
