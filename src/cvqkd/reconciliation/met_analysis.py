"""Density-evolution analysis of MET ensembles: threshold in β and the width of the tunnel.

The tools used to design and judge the MET family (docs/met-codes.md), for shipped members and
for candidate ensembles written as a spec file:

* :func:`ensemble_from_spec` / :func:`load_ensemble_spec`: a :class:`~.met.MetEnsemble` from a
  mapping or a JSON/TOML file (``name``, ``unit``, ``var_types``, ``check_types``);
* :func:`de_threshold_beta`: the Monte-Carlo DE threshold as a bracket in efficiency β
  (bisection; each β point draws from its own seeded stream, so a point does not depend on
  the path of the bisection);
* :func:`de_iterations`: how many DE iterations the ensemble needs at a given β. Near its
  threshold an ensemble can converge only through a narrow *tunnel* (a long plateau of the
  error fraction); the finite-length codes then fail often even well below the threshold
  (met-r0.02 at β = 0.95: DE threshold ≈ 0.974, DE needs 117–266 iterations, FER 0.16 at
  n = 10^6). A good design converges in few iterations at the target β.

Efficiency and SNR: ``β = R / C(SNR)`` with ``C = ½ log2(1 + SNR)`` (the Gaussian-input AWGN
capacity, the convention of the whole reconciliation package), so ``SNR = 2^(2R/β) − 1``.
Monte-Carlo DE: :func:`~.met.population_de_run` (Richardson & Urbanke, *Modern Coding
Theory* §4.5) with the CLT step for high degrees.

Example
-------
>>> from cvqkd.reconciliation.met import regular_ensemble
>>> b = de_threshold_beta(regular_ensemble(var_degree=3, check_degree=6), population=4000,
...                       lo=0.7, resolution=0.02)
>>> 0.78 < b.converges_at < b.fails_at < 0.9   # (3,6): σ* = 0.881 ↔ β* = 0.837
True
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.met import MetEnsemble, population_de_run

__all__ = [
    "DeBracket",
    "de_iterations",
    "de_threshold_beta",
    "ensemble_from_spec",
    "load_ensemble_spec",
    "snr_at_beta",
]


def snr_at_beta(ensemble: MetEnsemble, beta: float) -> float:
    """Linear SNR at which the ensemble's rate is a fraction ``beta`` of ``½ log2(1 + SNR)``.

    >>> from cvqkd.reconciliation.met import ENSEMBLES
    >>> round(10 * math.log10(snr_at_beta(ENSEMBLES["met-r0.02"], 0.95)), 3)
    -15.285
    """
    if not (0.0 < beta <= 2.0):
        raise ConfigError(f"efficiency beta must be in (0, 2], got {beta}")
    return float(2.0 ** (2.0 * ensemble.rate / beta) - 1.0)


def _node_types(spec: Mapping[str, Any], key: str) -> tuple[tuple[int, tuple[int, ...]], ...]:
    raw = spec.get(key)
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise ConfigError(f"ensemble spec: {key!r} must be a list of [count, [degrees...]]")
    out = []
    for i, item in enumerate(raw):
        try:
            count, degrees = item
            entry = (int(count), tuple(int(d) for d in degrees))
        except (TypeError, ValueError):
            raise ConfigError(
                f"ensemble spec: {key}[{i}] = {item!r} is not [count, [degree per edge type]]"
            ) from None
        if entry[0] <= 0 or any(d < 0 for d in entry[1]):
            raise ConfigError(f"ensemble spec: {key}[{i}] needs a positive count, degrees >= 0")
        out.append(entry)
    return tuple(out)


def ensemble_from_spec(spec: Mapping[str, Any]) -> MetEnsemble:
    """A :class:`MetEnsemble` from ``{"name", "unit", "var_types", "check_types"[, "seed"]}``.

    Node types are ``[count per unit, [degree in edge type 1, 2, …]]``; the ensemble checks
    that the counts and sockets add up (:class:`MetEnsemble`).

    >>> e = ensemble_from_spec({"name": "x", "unit": 2, "var_types": [[2, [3]]],
    ...                         "check_types": [[1, [6]]]})
    >>> e.rate
    0.5
    """
    if not isinstance(spec, Mapping):
        raise ConfigError("ensemble spec must be a mapping (JSON object / TOML table)")
    try:
        unit = int(spec["unit"])
    except KeyError:
        raise ConfigError("ensemble spec: missing 'unit'") from None
    except (TypeError, ValueError):
        raise ConfigError(
            f"ensemble spec: 'unit' must be an integer, got {spec['unit']!r}"
        ) from None
    return MetEnsemble(
        name=str(spec.get("name", "ensemble")),
        unit=unit,
        var_types=_node_types(spec, "var_types"),
        check_types=_node_types(spec, "check_types"),
        seed=int(spec.get("seed", 0)),
        source=str(spec.get("source", "ensemble spec")),
    )


def load_ensemble_spec(path: str | Path) -> MetEnsemble:
    """:func:`ensemble_from_spec` of a ``.json`` or ``.toml`` file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read ensemble spec {p}: {exc.strerror or exc}") from None
    try:
        spec = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if p.suffix == ".toml" else "JSON"
        raise ConfigError(f"ensemble spec {p} is not valid {kind}: {exc}") from None
    return ensemble_from_spec(spec)


def _point(
    ensemble: MetEnsemble,
    beta: float,
    seed: int,
    population: int,
    max_iterations: int,
    clt_degree: int | None,
) -> int | None:
    return population_de_run(
        ensemble,
        snr=snr_at_beta(ensemble, beta),
        rng=np.random.default_rng([seed, round(beta * 100_000)]),
        population=population,
        max_iterations=max_iterations,
        clt_degree=clt_degree,
    ).iterations


def de_iterations(
    ensemble: MetEnsemble,
    *,
    beta: float,
    seeds: Sequence[int] = (11, 12),
    population: int = 50_000,
    max_iterations: int = 800,
    clt_degree: int | None = 30,
) -> tuple[int | None, ...]:
    """Monte-Carlo DE iterations to converge at efficiency ``beta``, one per seed (None: did
    not converge in ``max_iterations``). Several seeds show the spread: near the threshold it
    is wide, because escaping the plateau is itself a random event.

    >>> from cvqkd.reconciliation.met import regular_ensemble
    >>> e = regular_ensemble(var_degree=3, check_degree=6)
    >>> fast, slow = (de_iterations(e, beta=b, seeds=(1,), population=4000)[0] for b in (0.6, 0.8))
    >>> fast < slow
    True
    """
    return tuple(_point(ensemble, beta, s, population, max_iterations, clt_degree) for s in seeds)


@dataclass(frozen=True)
class DeBracket:
    """Monte-Carlo DE threshold bracket in efficiency: converges at ``converges_at``, fails at
    ``fails_at`` (None: it converged even at the upper end of the search)."""

    converges_at: float
    fails_at: float | None


def de_threshold_beta(
    ensemble: MetEnsemble,
    *,
    lo: float = 0.85,
    hi: float = 1.0,
    resolution: float = 0.0025,
    seed: int = 11,
    population: int = 50_000,
    max_iterations: int = 800,
    clt_degree: int | None = 30,
) -> DeBracket:
    """Bisect the β at which Monte-Carlo DE stops converging, between ``lo`` and ``hi``.

    Each tested β uses ``default_rng([seed, round(1e5·β)])``. The bracket is statistical: with
    50 000 samples the same point can flip within ≈ 0.005 of the threshold (docs/met-codes.md),
    so a difference of one ``resolution`` step between two ensembles means nothing.
    Raises ConfigError if the ensemble does not converge even at ``lo``.
    """
    if not (0.0 < lo < hi) or resolution <= 0:
        raise ConfigError("need 0 < lo < hi and resolution > 0")

    def ok(beta: float) -> bool:
        return _point(ensemble, beta, seed, population, max_iterations, clt_degree) is not None

    if not ok(lo):
        raise ConfigError(f"{ensemble.name}: density evolution does not converge even at β = {lo}")
    if ok(hi):
        return DeBracket(hi, None)
    while hi - lo > resolution * (1 + 1e-9):
        mid = lo + math.floor((hi - lo) / resolution / 2) * resolution
        mid = round(mid, 10)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return DeBracket(round(lo, 10), round(hi, 10))
