"""Global search for MET ensembles of the family's shape, scored by density evolution.

The shipped MET codes sit on a narrow ridge (docs/met-codes.md, "Why the failed frames
fail"): near their threshold DE converges only through a long plateau, and the codes of
length 10^6 then fail often well below it. What a better design needs is a *wide tunnel at
the target efficiency*: a Monte-Carlo DE that converges there in few iterations. This module
searches the :class:`~.met.MetShape` space for that, globally:

* the search vector is ``(core, weak fraction, weak degree, mean extension-check degree,
  single checks)`` per ``unit`` variables — the strong core degree follows from the mean
  (so the parameters are nearly independent), and shapes whose precode has
  ``λ₂·ρ'(1) > max_stability`` are rejected (low-weight precode codewords);
* the score of a shape (:func:`score_shape`) is the mean, over fixed DE seeds (common random
  numbers: every candidate sees the same draws), of the DE iterations to converge at the target
  β, or for a run that does not converge ``max_iterations·(1 + log10(residual / target))``, so
  the search is led towards convergence even where nothing converges yet;
* differential evolution (Storn & Price, J. Global Optim. 11, 341 (1997); scipy's
  implementation with integer variables) over those five numbers, its population seeded with a
  starting shape (a shipped code's) so the search can only improve on it; candidates are
  evaluated in parallel and each distinct shape once;
* the best few are re-scored with more seeds (the best of many noisy scores is biased low);
* optionally (``fer_frames``) the finalists are then decoded as real codes — frames of
  length ``fer_length`` through the protocol's MDR (d = 8) at the target β, the same frames
  for every finalist — and the winner is the one with the fewest frame errors. **Use it**:
  the DE score alone misleads across core sizes. The first search at rate 0.02 preferred a
  13-variable core (rate-8/13 precode) whose DE converged 15 % faster than the shipped
  16-variable core, but at n = 10^6, β = 0.95 it failed 17 of 37 frames against 16 of 100: a
  shorter precode has a larger finite-length loss, which DE (infinite length) cannot see.

Everything is seeded: the same arguments give the same result (``cvqkd codes search``).

Example
-------
>>> from cvqkd.reconciliation.met import ENSEMBLES
>>> shape = shape_of(ENSEMBLES["met-r0.02"])
>>> shape.core, shape.weak, shape.weak_degree, shape.strong_degree
(16, 4, 4, 77)
>>> s = score_shape(shape, beta=0.90, seeds=(1,), population=4000, max_iterations=200)
>>> s.iterations[0] is not None and s.score < 200
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.fer import FerPoint, fer_point
from cvqkd.reconciliation.met import MetEnsemble, MetShape, build_met_code, population_de_run
from cvqkd.reconciliation.met_analysis import snr_at_beta

__all__ = [
    "SearchBounds",
    "SearchResult",
    "ShapeScore",
    "ensemble_spec_toml",
    "finite_length_fer",
    "score_shape",
    "search_shapes",
    "shape_from_vector",
    "shape_of",
]

_INFEASIBLE = 1e6
_TARGET_ERROR = 1e-4


@dataclass(frozen=True)
class ShapeScore:
    """A scored shape: DE iterations per seed (None: did not converge), the smallest residual
    error fraction of the runs, and the score (lower is better; see the module docstring)."""

    shape: MetShape
    iterations: tuple[int | None, ...]
    residual: float
    score: float
    precode_stability: float


@dataclass(frozen=True)
class SearchBounds:
    """Bounds of the search vector (per ``unit`` variables)."""

    core: tuple[int, int]
    weak_fraction: tuple[float, float] = (0.0, 0.5)
    weak_degree: tuple[int, int] = (2, 12)
    mean_extension_degree: tuple[float, float] = (1.6, 3.6)
    single_checks: tuple[int, int] = (0, 0)

    def as_list(self) -> list[tuple[float, float]]:
        """scipy bounds, in the order of the search vector."""
        return [
            (float(self.core[0]), float(self.core[1])),
            self.weak_fraction,
            (float(self.weak_degree[0]), float(self.weak_degree[1])),
            self.mean_extension_degree,
            (float(self.single_checks[0]), float(self.single_checks[1])),
        ]


def shape_from_vector(
    x: Sequence[float] | NDArray[np.float64], *, unit: int, info_bits: int
) -> MetShape:
    """The shape of search vector ``x = (core, weak fraction, weak degree, mean extension
    degree, single checks)``; ConfigError if it cannot be built.

    >>> shape_from_vector([16, 0.25, 4, 2.448, 0], unit=400, info_bits=8).strong_degree
    77
    """
    core = round(float(x[0]))
    weak = round(float(x[1]) * core)
    weak_degree = round(float(x[2]))
    single = round(float(x[4]))
    ext = unit - core
    strong = core - weak
    if strong <= 0 or ext <= single:
        raise ConfigError("shape has no strong core variables or no extension checks")
    sockets = x[3] * (ext - single) + single
    strong_degree = round((float(sockets) - weak * weak_degree) / strong)
    if strong_degree < 1:
        raise ConfigError("strong core degree below 1")
    return MetShape(unit, core, weak, weak_degree, strong_degree, info_bits, single)


def shape_of(ensemble: MetEnsemble) -> MetShape:
    """The :class:`MetShape` an ensemble of the family was built from (ConfigError if it is not
    of that shape)."""
    info_bits = round(ensemble.rate * ensemble.unit)
    weak = [(c, d) for c, d in ensemble.var_types if d[0] == 2 and d[2] == 0]
    strong = [(c, d) for c, d in ensemble.var_types if d[0] >= 3 and d[2] == 0]
    single = sum(c for c, d in ensemble.check_types if d == (0, 1, 1))
    if len(strong) != 1 or len(weak) > 1 or len(ensemble.var_types) != 2 + len(weak):
        raise ConfigError(f"{ensemble.name} is not of the MET family's shape")
    w_count, w_deg = weak[0] if weak else (0, (2, 1, 0))
    s_count, s_deg = strong[0]
    shape = MetShape(
        ensemble.unit,
        w_count + s_count,
        w_count,
        w_deg[1],
        s_deg[1],
        info_bits,
        single,
        s_deg[0],
    )
    rebuilt = shape.ensemble(ensemble.name)
    if (rebuilt.var_types, rebuilt.check_types) != (ensemble.var_types, ensemble.check_types):
        raise ConfigError(f"{ensemble.name} is not of the MET family's shape")
    return shape


def score_shape(
    shape: MetShape,
    *,
    beta: float,
    seeds: Sequence[int] = (11, 12),
    population: int = 30_000,
    max_iterations: int = 300,
    max_stability: float = 0.9,
    clt_degree: int | None = 30,
) -> ShapeScore:
    """Score a shape by Monte-Carlo DE at efficiency ``beta`` (lower is better).

    Per seed: the iterations to converge, or ``max_iterations·(1 + log10(residual/1e-4))`` for
    a run that does not. Infeasible shapes (ConfigError from :meth:`MetShape.ensemble`, or a
    precode with ``λ₂·ρ'(1) > max_stability``) score 10^6. Seeds are shared by all shapes.
    """
    try:
        ens = shape.ensemble("candidate")
        stability = shape.precode_stability()
    except ConfigError:
        return ShapeScore(shape, (), 1.0, _INFEASIBLE, math.inf)
    if stability > max_stability:
        return ShapeScore(shape, (), 1.0, _INFEASIBLE, stability)
    snr = snr_at_beta(ens, beta)
    runs = [
        population_de_run(
            ens,
            snr=snr,
            rng=np.random.default_rng([s, round(beta * 100_000)]),
            population=population,
            max_iterations=max_iterations,
            target_error=_TARGET_ERROR,
            clt_degree=clt_degree,
        )
        for s in seeds
    ]
    parts = [
        float(r.iterations)
        if r.iterations is not None
        else max_iterations * (1.0 + math.log10(max(r.residual, _TARGET_ERROR) / _TARGET_ERROR))
        for r in runs
    ]
    return ShapeScore(
        shape,
        tuple(r.iterations for r in runs),
        min(r.residual for r in runs),
        float(np.mean(parts)),
        stability,
    )


@dataclass
class SearchResult:
    """What :func:`search_shapes` found: the winner, the start, the re-scored finalists (in
    the order of the choice), every distinct shape evaluated (with its search score), the best
    search score after each generation, and the finalists' FER when it was measured."""

    best: ShapeScore
    start: ShapeScore | None
    finalists: list[ShapeScore]
    evaluated: dict[MetShape, ShapeScore] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    fer: dict[MetShape, FerPoint] = field(default_factory=dict)


class _CachedMap:
    """A ``workers`` map for scipy's differential evolution: each distinct shape is scored
    once (in a process pool when ``workers > 1``); the scipy-wrapped objective is not used —
    the score of a vector is that of its shape, which is what the objective computes."""

    def __init__(
        self, *, unit: int, info_bits: int, workers: int, score_kw: dict[str, Any]
    ) -> None:
        self.unit, self.info_bits, self.kw = unit, info_bits, score_kw
        self.cache: dict[MetShape, ShapeScore] = {}
        self.pool = ProcessPoolExecutor(workers) if workers > 1 else None

    def shape(self, x: NDArray[np.float64]) -> MetShape | None:
        try:
            return shape_from_vector(x, unit=self.unit, info_bits=self.info_bits)
        except ConfigError:
            return None

    def score_all(self, shapes: Iterable[MetShape]) -> None:
        todo = [s for s in dict.fromkeys(shapes) if s not in self.cache]
        if self.pool is None:
            results = [_score(s, self.kw) for s in todo]
        else:
            results = list(self.pool.map(_score, todo, [self.kw] * len(todo)))
        self.cache.update(zip(todo, results, strict=True))

    def __call__(
        self, func: Callable[..., float], xs: Iterable[NDArray[np.float64]]
    ) -> list[float]:
        shapes = [self.shape(x) for x in xs]
        self.score_all(s for s in shapes if s is not None)
        return [_INFEASIBLE if s is None else self.cache[s].score for s in shapes]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _score(shape: MetShape, kw: dict[str, Any]) -> ShapeScore:
    return score_shape(shape, **kw)


def _objective(x: NDArray[np.float64], *_: Any) -> float:  # pragma: no cover - see _CachedMap
    raise RuntimeError("scored through _CachedMap")


def search_shapes(
    *,
    unit: int,
    info_bits: int,
    beta: float,
    bounds: SearchBounds,
    start: MetShape | None = None,
    generations: int = 10,
    popsize: int = 4,
    seeds: Sequence[int] = (11, 12),
    rescore_seeds: Sequence[int] = (21, 22, 23, 24),
    finalists: int = 3,
    population: int = 30_000,
    max_iterations: int = 300,
    max_stability: float = 0.9,
    workers: int = 1,
    seed: int = 1,
    fer_frames: int = 0,
    fer_length: int = 100_000,
    fer_max_iterations: int = 300,
    progress: Callable[[int, ShapeScore], None] | None = None,
) -> SearchResult:
    """Differential evolution over :class:`~.met.MetShape` (module docstring).

    ``popsize·5`` candidates per generation, ``generations`` generations; ``progress(g, best)``
    after each. The ``finalists`` best distinct shapes (and ``start``) are re-scored with
    ``seeds + rescore_seeds``; without ``fer_frames`` the winner has the lowest re-scored
    mean, with it the fewest frame errors in ``fer_frames`` frames of length ``fer_length``
    (then the fewer mean decoder iterations, then the DE score).
    """
    from scipy.optimize import differential_evolution

    if generations < 1 or popsize < 1:
        raise ConfigError("generations and popsize must be at least 1")
    kw = {
        "beta": beta,
        "seeds": tuple(seeds),
        "population": population,
        "max_iterations": max_iterations,
        "max_stability": max_stability,
    }
    mapper = _CachedMap(unit=unit, info_bits=info_bits, workers=workers, score_kw=kw)
    history: list[float] = []

    def best_now() -> ShapeScore:
        return min(mapper.cache.values(), key=lambda s: s.score)

    def callback(intermediate_result: Any) -> None:
        history.append(float(intermediate_result.fun))
        if progress is not None:
            progress(len(history), best_now())

    x0 = None
    if start is not None:
        x0 = [
            start.core,
            start.weak / start.core,
            start.weak_degree,
            (
                start.weak * start.weak_degree
                + (start.core - start.weak) * start.strong_degree
                - start.single_checks
            )
            / (unit - start.core - start.single_checks),
            start.single_checks,
        ]
        x0 = [min(max(v, lo), hi) for v, (lo, hi) in zip(x0, bounds.as_list(), strict=True)]
    try:
        differential_evolution(
            _objective,
            bounds.as_list(),
            integrality=[True, False, True, False, True],
            popsize=popsize,
            maxiter=generations,
            seed=seed,
            workers=mapper,
            updating="deferred",
            polish=False,
            tol=0.0,
            x0=x0,
            init="latinhypercube",
            callback=callback,
        )
        ranked = sorted(mapper.cache.values(), key=lambda s: s.score)
        top = [s.shape for s in ranked[:finalists] if s.score < _INFEASIBLE]
        if start is not None and start not in top:
            top.append(start)
        rescore_kw = {**kw, "seeds": tuple(seeds) + tuple(rescore_seeds)}
        rescored = (
            [_score(s, rescore_kw) for s in top]
            if mapper.pool is None
            else list(mapper.pool.map(_score, top, [rescore_kw] * len(top)))
        )
    finally:
        mapper.close()
    rescored.sort(key=lambda s: s.score)
    fer: dict[MetShape, FerPoint] = {}
    if fer_frames > 0:
        for s in rescored:
            fer[s.shape] = finite_length_fer(
                s.shape,
                beta=beta,
                frames=fer_frames,
                n_target=fer_length,
                max_iterations=fer_max_iterations,
                seed=seed,
            )
        rescored.sort(
            key=lambda s: (fer[s.shape].frame_errors, fer[s.shape].mean_iterations, s.score)
        )
    start_score = next((s for s in rescored if s.shape == start), None)
    return SearchResult(
        best=rescored[0],
        start=start_score,
        finalists=rescored,
        evaluated=mapper.cache,
        history=history,
        fer=fer,
    )


def finite_length_fer(
    shape: MetShape,
    *,
    beta: float,
    frames: int,
    n_target: int = 100_000,
    max_iterations: int = 300,
    seed: int = 1,
) -> FerPoint:
    """Frame errors of a code of ``shape`` (length nearest ``n_target``, construction seed
    ``seed``) at efficiency ``beta``: ``frames`` frames through MDR (d = 8) and the decoder,
    drawn from ``default_rng([seed, frames])`` so that every shape sees the same channel.

    >>> from cvqkd.reconciliation.met import ENSEMBLES
    >>> p = finite_length_fer(shape_of(ENSEMBLES["met-r0.02"]), beta=0.8, frames=2,
    ...                       n_target=20_000)
    >>> p.frames, p.frame_errors
    (2, 0)
    """
    ens = shape.ensemble("candidate", seed=seed)
    code = build_met_code(ens, n_target=n_target)
    return fer_point(
        code,
        snr=snr_at_beta(ens, beta),
        dimension=8,
        rng=np.random.default_rng([seed, frames]),
        target_errors=frames,
        max_frames=frames,
        max_iterations=max_iterations,
    )


def ensemble_spec_toml(ensemble: MetEnsemble, *, comment: str = "") -> str:
    """The ensemble as a spec file for ``cvqkd codes analyse`` / :func:`~.met_analysis.
    load_ensemble_spec` (TOML).

    >>> from cvqkd.reconciliation.met import regular_ensemble
    >>> print(ensemble_spec_toml(regular_ensemble(var_degree=3, check_degree=6)))
    name = "regular-(3,6)"
    unit = 2
    seed = 0
    var_types = [[2, [3]]]
    check_types = [[1, [6]]]
    <BLANKLINE>
    """

    def types(t: tuple[tuple[int, tuple[int, ...]], ...]) -> str:
        return "[" + ", ".join(f"[{c}, [{', '.join(map(str, d))}]]" for c, d in t) + "]"

    head = "".join(f"# {line}\n" for line in comment.splitlines())
    return (
        f"{head}name = {_toml_str(ensemble.name)}\nunit = {ensemble.unit}\nseed = "
        f"{ensemble.seed}\nvar_types = {types(ensemble.var_types)}\n"
        f"check_types = {types(ensemble.check_types)}\n"
    )


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
