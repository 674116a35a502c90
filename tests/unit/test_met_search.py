"""MET shape parametrisation and the differential-evolution search (met_search)."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.met import ENSEMBLES, MetShape
from cvqkd.reconciliation.met_analysis import load_ensemble_spec
from cvqkd.reconciliation.met_search import (
    SearchBounds,
    ensemble_spec_toml,
    score_shape,
    search_shapes,
    shape_from_vector,
    shape_of,
)

TINY = {"population": 2000, "max_iterations": 60}


@pytest.mark.parametrize("name", sorted(ENSEMBLES))
def test_shipped_ensembles_are_shapes(name: str) -> None:
    ens = ENSEMBLES[name]
    shape = shape_of(ens)
    rebuilt = shape.ensemble(name, seed=ens.seed)
    assert (rebuilt.var_types, rebuilt.check_types) == (ens.var_types, ens.check_types)
    assert shape.rate == pytest.approx(ens.rate, abs=1e-12)


@pytest.mark.parametrize(
    "shape",
    [
        MetShape(400, 21, 8, 6, 59, 8, 13),
        MetShape(400, 30, 0, 2, 40, 8, 0),
        MetShape(800, 24, 9, 3, 90, 8, 40, 4),
    ],
)
def test_shape_ensemble_is_consistent(shape: MetShape) -> None:
    ens = shape.ensemble("x")  # MetEnsemble checks that sockets of every edge type match
    assert ens.rate == pytest.approx(shape.info_bits / shape.unit, abs=1e-12)
    # at least the requested single-edge checks (more when the mean degree is below 2)
    singles = sum(c for c, d in ens.check_types if d == (0, 1, 1))
    assert singles >= shape.single_checks
    ext = [d[1] for _, d in ens.check_types if d[0] == 0]
    assert max(ext) - min(d for d in ext if d > 1 or len(ext) == 1) <= 1
    # precode checks: two consecutive degrees, as many as core − info bits
    pre = [(c, d[0]) for c, d in ens.check_types if d[0] > 0]
    assert sum(c for c, _ in pre) == shape.core - shape.info_bits
    assert max(d for _, d in pre) - min(d for _, d in pre) <= 1


def test_precode_stability_formula() -> None:
    # met-r0.02: 4 degree-2 + 12 degree-3 precode variables → 44 sockets on 4 + 4 checks of
    # degree 5 and 6: λ₂ = 8/44, ρ'(1) = (4·5·4 + 4·6·5)/44 = 200/44
    assert shape_of(ENSEMBLES["met-r0.02"]).precode_stability() == pytest.approx(
        (8 / 44) * (200 / 44)
    )


def test_shape_errors_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        MetShape(400, 8, 2, 4, 77, 8).ensemble("x")  # no precode checks
    with pytest.raises(ConfigError):
        MetShape(400, 16, 4, 4, 0, 8).ensemble("x")  # extension checks without a core edge
    with pytest.raises(ConfigError):
        shape_from_vector([16, 1.0, 4, 2.4, 0], unit=400, info_bits=8)  # no strong variables


def test_vector_of_shipped_shape_maps_back() -> None:
    s = shape_of(ENSEMBLES["met-r0.02"])
    mean_ext = (s.weak * s.weak_degree + (s.core - s.weak) * s.strong_degree) / (s.unit - s.core)
    assert shape_from_vector([16, 0.25, 4, mean_ext, 0], unit=400, info_bits=8) == s


def test_score_orders_easy_and_hard_points() -> None:
    shape = shape_of(ENSEMBLES["met-r0.02"])
    easy = score_shape(shape, beta=0.85, seeds=(1,), **TINY)
    hard = score_shape(shape, beta=1.05, seeds=(1,), **TINY)
    assert easy.iterations[0] is not None and easy.score == easy.iterations[0]
    # beyond capacity DE cannot converge: the score is past the cap and grows with the residual
    assert hard.iterations == (None,) and hard.score > TINY["max_iterations"]
    assert hard.residual > 1e-3


def test_infeasible_and_unstable_shapes_score_high() -> None:
    bad = score_shape(MetShape(400, 16, 4, 4, 0, 8), beta=0.9, **TINY)
    assert bad.score >= 1e6 and bad.iterations == ()
    # all of the core at precode degree 2: λ₂·ρ'(1) well above 1
    unstable = MetShape(400, 16, 16, 20, 20, 8)
    assert unstable.precode_stability() > 1
    assert score_shape(unstable, beta=0.9, **TINY).score >= 1e6


def test_search_is_seeded_and_never_worse_than_its_start() -> None:
    start = shape_of(ENSEMBLES["met-r0.02"])
    kw = {
        "unit": 400,
        "info_bits": 8,
        "beta": 0.9,
        "bounds": SearchBounds(core=(12, 24), single_checks=(0, 8)),
        "start": start,
        "generations": 1,
        "popsize": 1,
        "seeds": (1,),
        "rescore_seeds": (2,),
        **TINY,
    }
    a = search_shapes(**kw, seed=3)  # type: ignore[arg-type]
    b = search_shapes(**kw, seed=3)  # type: ignore[arg-type]
    assert a.best == b.best and a.history == b.history
    assert a.start is not None and a.best.score <= a.start.score
    assert [f.score for f in a.finalists] == sorted(f.score for f in a.finalists)
    assert all(len(f.iterations) == 2 for f in a.finalists)  # re-scored with both seeds
    assert len(a.evaluated) >= 2 and np.isfinite(a.history).all()


def test_spec_toml_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ens = MetShape(400, 21, 8, 6, 59, 8, 13).ensemble("found", seed=5)
    p = tmp_path / "found.toml"
    p.write_text(ensemble_spec_toml(ens, comment="found by: test\nscore 1"))
    back = load_ensemble_spec(p)
    assert (back.name, back.unit, back.seed) == ("found", 400, 5)
    assert (back.var_types, back.check_types) == (ens.var_types, ens.check_types)


def test_fer_stage_orders_finalists_by_frame_errors() -> None:
    res = search_shapes(
        unit=400,
        info_bits=8,
        beta=0.93,
        bounds=SearchBounds(core=(12, 20)),
        start=shape_of(ENSEMBLES["met-r0.02"]),
        generations=1,
        popsize=1,
        seeds=(1,),
        rescore_seeds=(),
        finalists=2,
        fer_frames=2,
        fer_length=20_000,
        fer_max_iterations=40,
        **TINY,
    )
    assert set(res.fer) == {f.shape for f in res.finalists}
    keys = [
        (res.fer[f.shape].frame_errors, res.fer[f.shape].mean_iterations) for f in res.finalists
    ]
    assert keys == sorted(keys)
    assert all(p.frames == 2 and p.frame_length == 20_000 for p in res.fer.values())
