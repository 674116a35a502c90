"""Multi-edge-type (MET) LDPC codes for low-rate reconciliation: ensembles, analysis, construction.

A MET ensemble (Richardson & Urbanke, *Multi-edge type LDPC codes*, 2004; Modern Coding
Theory §7) is given by node types: a variable type has a degree in each edge type, a check
type likewise. The CV-QKD ensembles of Jouguet, Kunz-Jacques & Leverrier (PRA 84, 062317
(2011)) have three edge types:

* type 1: a rate-½ *precode* among a small set of core variables (degree 2–3 there);
* type 2: the same core variables with very high degree (≈ 57 at rate 0.02) into the
  extension checks;
* type 3: one degree-one variable per extension check, so ``H = [[A, 0], [B, I]]``.

The precode here is itself a long random code (sockets matched by a random permutation), so
there is no protograph permanent bound on the minimum distance (cf. docs/codes.md).

Contents: :class:`MetEnsemble` (node counts per ``unit`` variables, exact integers),
:func:`exit_threshold_snr` (Gaussian-approximation density evolution on mutual information,
ten Brink 2001 / Chung et al. 2001, with the exact ``J`` of :mod:`~.design`),
:func:`population_de_run` / :func:`population_de_converges` (Monte-Carlo density evolution,
no Gaussian assumption),
:func:`construct` (seeded socket permutation per edge type with removal of multi-edges and
4-cycles by random socket swaps; vectorised, an ``n = 10^6`` code in seconds), and
:func:`load_met_code`.

Example
-------
>>> from cvqkd.reconciliation.met import ENSEMBLES, load_met_code
>>> ENSEMBLES["met-r0.02"].rate
0.02
>>> code = load_met_code("met-r0.02", n_target=100_000)
>>> code.n_vars, round(code.rate, 4)
(100000, 0.02)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.codes import AdaptedCode
from cvqkd.reconciliation.design import J, awgn_capacity, inverse_J
from cvqkd.reconciliation.ldpc import LdpcCode

__all__ = [
    "ENSEMBLES",
    "ConstructionReport",
    "DeRun",
    "MetEnsemble",
    "MetShape",
    "adapt_met",
    "build_met_code",
    "construct",
    "count_four_cycles",
    "designed_ensemble",
    "exit_converges",
    "exit_threshold_snr",
    "load_met_code",
    "population_de_converges",
    "population_de_run",
    "regular_ensemble",
    "threshold_beta",
]


@dataclass(frozen=True)
class MetEnsemble:
    """A MET ensemble with integer node counts per ``unit`` variable nodes.

    Attributes
    ----------
    name:
        Label, e.g. ``"met-r0.02"``.
    unit:
        Block lengths are multiples of ``unit``; every node count below is per ``unit``
        variables (so node fractions are ``count / unit``, exactly).
    var_types:
        ``((count, (d_1, …, d_T)), …)``: how many variable nodes of each type, and their degree
        in each edge type. All variables are transmitted (no punctured type).
    check_types:
        Same for check nodes.
    seed:
        Seed of the shipped construction (:func:`load_met_code`).
    source:
        Where the degree distribution comes from.
    """

    name: str
    unit: int
    var_types: tuple[tuple[int, tuple[int, ...]], ...]
    check_types: tuple[tuple[int, tuple[int, ...]], ...]
    seed: int = 0
    source: str = ""

    def __post_init__(self) -> None:
        t = {len(d) for _, d in self.var_types} | {len(d) for _, d in self.check_types}
        if len(t) != 1:
            raise ConfigError(f"{self.name}: node types disagree on the number of edge types")
        if sum(c for c, _ in self.var_types) != self.unit:
            raise ConfigError(f"{self.name}: variable counts do not add up to unit={self.unit}")
        ev = self.var_matrix[1].T @ self.var_matrix[0]
        ec = self.check_matrix[1].T @ self.check_matrix[0]
        if not np.array_equal(ev, ec):
            raise ConfigError(
                f"{self.name}: edge sockets per type differ (variables {ev.tolist()}, "
                f"checks {ec.tolist()})"
            )

    @property
    def n_edge_types(self) -> int:
        """Number of edge types ``T``."""
        return len(self.var_types[0][1])

    @property
    def var_matrix(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(counts[V], degrees[V, T])`` of the variable types."""
        return (
            np.array([c for c, _ in self.var_types], dtype=np.int64),
            np.array([d for _, d in self.var_types], dtype=np.int64),
        )

    @property
    def check_matrix(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(counts[C], degrees[C, T])`` of the check types."""
        return (
            np.array([c for c, _ in self.check_types], dtype=np.int64),
            np.array([d for _, d in self.check_types], dtype=np.int64),
        )

    @property
    def rate(self) -> float:
        """Design rate ``1 − m/n`` (exact: counts are integers per ``unit``)."""
        return round(1.0 - sum(c for c, _ in self.check_types) / self.unit, 12)

    @property
    def edges_per_unit(self) -> NDArray[np.int64]:
        """Edges of each type per ``unit`` variables."""
        cnt, deg = self.var_matrix
        return np.asarray(deg.T @ cnt, dtype=np.int64)


def regular_ensemble(*, var_degree: int, check_degree: int) -> MetEnsemble:
    """The ``(var_degree, check_degree)`` regular ensemble as a one-edge-type MET ensemble.

    >>> regular_ensemble(var_degree=3, check_degree=6).rate
    0.5
    """
    g = math.gcd(var_degree, check_degree)
    unit = check_degree // g
    return MetEnsemble(
        name=f"regular-({var_degree},{check_degree})",
        unit=unit,
        var_types=((unit, (var_degree,)),),
        check_types=((unit * var_degree // check_degree, (check_degree,)),),
    )


@dataclass(frozen=True)
class MetShape:
    """The three-edge-type shape of the family, per ``unit`` variables (docs/met-codes.md).

    * ``core`` core variables: ``weak`` of them of type (precode degree 2, extension degree
      ``weak_degree``), the rest of type (``strong_precode_degree``, ``strong_degree``);
    * ``core − rate·unit`` precode checks (so the rate is exactly ``rate``), their degrees the
      two integers around the mean that the sockets fix;
    * ``unit − core`` degree-one variables, each alone on an extension check; ``single_checks``
      of those checks have one core edge, the others the two integers around the mean the
      type-2 sockets leave.

    :meth:`ensemble` builds it; :func:`designed_ensemble` is the shipped special case (a
    quarter of the core weak, no single checks).
    """

    unit: int
    core: int
    weak: int
    weak_degree: int
    strong_degree: int
    info_bits: int
    single_checks: int = 0
    strong_precode_degree: int = 3

    @property
    def rate(self) -> float:
        """Design rate ``info_bits / unit``."""
        return self.info_bits / self.unit

    def precode_stability(self) -> float:
        """``λ₂·ρ'(1)`` of the precode (edge perspective): below 1 the degree-2 precode
        variables form a forest plus O(1) cycles, so no low-weight precode codewords are made
        of them (docs/met-codes.md, "Lesson: the precode's degree-2 variables").

        >>> round(MetShape(400, 16, 4, 4, 77, 8).precode_stability(), 3)
        0.826
        """
        sockets = 2 * self.weak + self.strong_precode_degree * (self.core - self.weak)
        checks = self._precode_checks()
        rho1 = sum(c * d * (d - 1) for c, d in checks) / sockets
        return 2 * self.weak / sockets * rho1

    def _precode_checks(self) -> list[tuple[int, int]]:
        n_checks = self.core - self.info_bits
        sockets = 2 * self.weak + self.strong_precode_degree * (self.core - self.weak)
        return _split_degrees(sockets, n_checks, what="precode")

    def ensemble(self, name: str, *, seed: int = 0, source: str = "") -> MetEnsemble:
        """The :class:`MetEnsemble` of this shape (ConfigError if the numbers do not fit).

        >>> e = MetShape(400, 16, 4, 4, 77, 8).ensemble("x")
        >>> e.rate, e.check_types
        (0.02, ((4, (5, 0, 0)), (4, (6, 0, 0)), (212, (0, 2, 1)), (172, (0, 3, 1))))
        """
        if not (0 < self.info_bits < self.core < self.unit) or not (0 <= self.weak <= self.core):
            raise ConfigError(
                f"{name}: need 0 < info bits ({self.info_bits}) < core ({self.core}) < unit "
                f"({self.unit}) and 0 <= weak ({self.weak}) <= core"
            )
        ext = self.unit - self.core
        if not (0 <= self.single_checks < ext):
            raise ConfigError(f"{name}: single_checks must be in [0, {ext})")
        e2 = self.weak * self.weak_degree + (self.core - self.weak) * self.strong_degree
        rest = _split_degrees(e2 - self.single_checks, ext - self.single_checks, what="extension")
        ext_deg: dict[int, int] = {}
        for c, d in [(self.single_checks, 1), *rest]:
            if c:
                ext_deg[d] = ext_deg.get(d, 0) + c
        var_types = [
            (self.weak, (2, self.weak_degree, 0)),
            (self.core - self.weak, (self.strong_precode_degree, self.strong_degree, 0)),
            (ext, (0, 0, 1)),
        ]
        return MetEnsemble(
            name=name,
            unit=self.unit,
            var_types=tuple((c, d) for c, d in var_types if c),
            check_types=(
                *((c, (d, 0, 0)) for c, d in self._precode_checks() if c),
                *((ext_deg[d], (0, d, 1)) for d in sorted(ext_deg)),
            ),
            seed=seed,
            source=source or f"MET shape {self}",
        )


def _split_degrees(sockets: int, checks: int, *, what: str) -> list[tuple[int, int]]:
    """``[(count, degree), (count, degree + 1)]``: ``checks`` checks carrying ``sockets``."""
    if checks <= 0:
        raise ConfigError(f"{what}: no checks to carry {sockets} sockets")
    lo = sockets // checks
    if lo < 1:
        raise ConfigError(f"{what}: {sockets} sockets cannot give each of {checks} checks an edge")
    hi = sockets - lo * checks
    return [(checks - hi, lo), (hi, lo + 1)]


def designed_ensemble(
    name: str, *, unit: int, core: int, core_degrees: tuple[int, int], seed: int = 0
) -> MetEnsemble:
    """A three-edge-type ensemble of the Jouguet et al. (2011) shape, rate ``core / (2·unit)``.

    Per ``unit`` variables: ``core`` core variables, 1/4 of them of type-1 degree 2 and
    type-2 degree ``core_degrees[0]``, 3/4 of type-1 degree 3 and type-2 degree
    ``core_degrees[1]``; ``core/2`` precode checks (half of degree 5, half of degree 6: a
    rate-½ precode on the core); ``unit − core`` degree-one variables, each alone on an
    extension check that has 2 or 3 type-2 edges (1 and 2 if the core degrees are too small
    for that), the mix fixed by the socket count (:class:`MetShape` with ``weak = core/4``).

    The precode keeps ``λ₂·ρ'(1) = (8/44)·(200/44) = 0.83 < 1``: the degree-2 precode
    variables then form a forest plus O(1) cycles (which :func:`construct` removes), so the
    precode has no low-weight codewords made of degree-2 variables. (A first design with 9/16
    of the core at degree 2, ``λ₂·ρ'(1) = 1.8``, had a better EXIT threshold but converged to
    wrong codewords at n = 10^6 — see docs/met-codes.md.) The two core degrees are the design
    parameters, chosen by :func:`exit_threshold_snr`.

    >>> e = designed_ensemble("x", unit=400, core=16, core_degrees=(4, 77))
    >>> e.rate, e.check_types[2:]
    (0.02, ((212, (0, 2, 1)), (172, (0, 3, 1))))
    """
    if core % 16:
        raise ConfigError("core size must be a multiple of 16")
    da, db = core_degrees
    shape = MetShape(unit, core, core // 4, da, db, info_bits=core // 2)
    return shape.ensemble(
        name,
        seed=seed,
        source=(
            f"designed here (EXIT DE hill-climb over the core degrees {core_degrees}, precode "
            "lambda2*rho'(1) < 1) on the three-edge-type shape of Jouguet, Kunz-Jacques & "
            "Leverrier, PRA 84, 062317 (2011)"
        ),
    )


#: The MET family (see docs/met-codes.md for the design and the thresholds).
ENSEMBLES: dict[str, MetEnsemble] = {
    "met-r0.02": designed_ensemble("met-r0.02", unit=400, core=16, core_degrees=(4, 77), seed=2002),
    "met-r0.01": designed_ensemble(
        "met-r0.01", unit=800, core=16, core_degrees=(4, 159), seed=2001
    ),
    "met-r0.005": designed_ensemble(
        "met-r0.005", unit=1600, core=16, core_degrees=(4, 322), seed=2005
    ),
    "met-r0.015": designed_ensemble(
        "met-r0.015", unit=1600, core=48, core_degrees=(4, 104), seed=2015
    ),
}


# ----------------------------------------------------------------------------- EXIT / GA-DE
def _edge_weights(counts: NDArray[np.int64], degrees: NDArray[np.int64]) -> NDArray[np.float64]:
    """``w[j, t]``: fraction of the type-``t`` edges that sit on node type ``j``."""
    e = counts[:, None] * degrees
    tot = e.sum(axis=0)
    return np.asarray(e / np.where(tot > 0, tot, 1), dtype=np.float64)


def exit_converges(
    ensemble: MetEnsemble, *, snr: float, max_iterations: int = 4000, target: float = 1 - 1e-6
) -> bool:
    """Whether EXIT (Gaussian-approximation) density evolution of the ensemble converges.

    Messages of each edge type are consistent Gaussians tracked by their mutual information
    (ten Brink, IEEE Trans. Commun. 49, 1727 (2001); MET form as in Liva & Chiani 2007):
    variable ``σ² = σ_ch² + Σ_s (d_s − δ_st)·J⁻¹(I_cv,s)²``; check (duality approximation)
    ``1 − I_vc = J(√Σ_s (d_s − δ_st)·J⁻¹(1 − I_v→c,s)²)``. BPSK ±1 with noise variance
    ``1/snr`` gives ``σ_ch = 2√snr``. Converged when the a-posteriori MI of every variable
    type of degree ≥ 2 exceeds ``target`` (degree-one variables then follow from their check);
    stops early when that MI no longer grows.

    >>> ens = regular_ensemble(var_degree=3, check_degree=6)
    >>> exit_converges(ens, snr=1 / 0.86**2), exit_converges(ens, snr=1 / 0.90**2)
    (True, False)
    """
    vc, vd = ensemble.var_matrix
    cc, cd = ensemble.check_matrix
    wv = _edge_weights(vc, vd)
    wc = _edge_weights(cc, cd)
    sch2 = 4.0 * snr
    i_cv = np.zeros(ensemble.n_edge_types)
    core = vd.sum(axis=1) >= 2
    prev = -1.0
    stall = 0
    for _ in range(max_iterations):
        m_cv = inverse_J(i_cv) ** 2
        tot = sch2 + vd @ m_cv  # [V]
        worst = float(J(np.sqrt(tot[core])).min()) if core.any() else 1.0
        if worst >= target:
            return True
        s2 = np.maximum(tot[:, None] - m_cv[None, :], 0.0)  # [V, T]
        i_vc = np.sum(wv * J(np.sqrt(s2)), axis=0)
        m_vc = inverse_J(1.0 - i_vc) ** 2
        ctot = cd @ m_vc
        c2 = np.maximum(ctot[:, None] - m_vc[None, :], 0.0)
        i_cv = np.sum(wc * (1.0 - J(np.sqrt(c2))), axis=0)
        if worst <= prev + 1e-10:
            stall += 1
            if stall > 20:
                return False
        else:
            stall = 0
        prev = worst
    return False


def exit_threshold_snr(
    ensemble: MetEnsemble, *, lo: float = 1e-3, hi: float = 10.0, rel_tol: float = 1e-4
) -> float:
    """Smallest SNR (linear) at which :func:`exit_converges`, by bisection in log SNR.

    The asymptotic efficiency is ``β* = R / (½ log2(1 + SNR*))``.

    >>> ens = regular_ensemble(var_degree=3, check_degree=6)
    >>> round(1 / math.sqrt(exit_threshold_snr(ens)), 3)  # σ*, DE: 0.8809
    0.881
    """
    if not exit_converges(ensemble, snr=hi):
        raise ConfigError(f"{ensemble.name}: EXIT analysis does not converge even at SNR {hi}")
    while hi / lo > 1 + rel_tol:
        mid = math.sqrt(lo * hi)
        if exit_converges(ensemble, snr=mid):
            hi = mid
        else:
            lo = mid
    return hi


def threshold_beta(ensemble: MetEnsemble, snr: float) -> float:
    """Efficiency ``R / C_AWGN(snr)`` of the ensemble at ``snr`` (linear)."""
    return float(ensemble.rate / awgn_capacity(snr))


# ----------------------------------------------------------------------------- Monte-Carlo DE
@dataclass(frozen=True)
class DeRun:
    """Outcome of one Monte-Carlo DE run: ``iterations`` to converge (None: it did not), and
    ``residual``, the smallest error fraction reached (worst watched edge type) — how close a
    run that did not converge came (``target_error`` or less when it converged)."""

    iterations: int | None
    residual: float


def population_de_run(
    ensemble: MetEnsemble,
    *,
    snr: float,
    rng: np.random.Generator,
    population: int = 20_000,
    max_iterations: int = 400,
    target_error: float = 1e-4,
    clt_degree: int | None = None,
    known_fraction: float = 0.0,
    edge_survival: tuple[float, ...] | None = None,
) -> DeRun:
    """Monte-Carlo ("population dynamics") density evolution, without Gaussian approximation:
    the iterations it needs to converge and the smallest error fraction it reached.

    Each edge type keeps ``population`` samples of its check-to-variable LLR; a variable (check)
    message of type ``t`` is formed from a node type drawn with its edge-perspective weight and
    the exact sum (tanh) rule over randomly drawn incoming samples (Richardson & Urbanke, Modern
    Coding Theory §4.5; all-zero word, BPSK ±1, noise variance ``1/snr``). Converged when the
    fraction of negative variable-to-check samples falls below ``target_error`` on every edge
    type that reaches a variable of degree ≥ 2. Statistical: bisect only well away from the
    threshold.

    Options (all off by default; then the random stream is exactly that of the plain method):

    * ``clt_degree``: a variable sums more than ``clt_degree`` incoming samples of one edge
      type as one Gaussian draw with the exact mean and variance of that sum under the current
      population (central limit theorem; the check messages of the extension are bounded by the
      weak degree-one LLR, so light-tailed). Needed at rates ≤ 0.01: the plain method sums
      ~300 draws from a finite population, its sampling noise then moves the threshold by more
      than the 0.3 dB between β = 0.93 and 1 (it "converged" at β = 1.0 for met-r0.005 with
      10 000 samples); with the CLT step a population of 10⁶ costs little.
    * ``known_fraction``: this fraction of the core variables (degree ≥ 2) is shortened —
      known to the decoder, infinite LLR — uniformly over the core types (as :func:`adapt_met`
      shortens).
    * ``edge_survival``: per edge type, the fraction of the checks of that edge type kept, the
      checks dropped whole and at random (truncation by :func:`adapt_met` keeps each extension
      check with probability ``n'/n``): a variable then has ``Binomial(d − δ, p)`` incoming
      messages of that type instead of ``d − δ``; check degrees do not change.

    >>> ens = regular_ensemble(var_degree=3, check_degree=6)
    >>> run = population_de_run(ens, snr=1 / 0.95**2, rng=np.random.default_rng(1))
    >>> run.iterations is None, 0.01 < run.residual < 0.2   # σ = 0.95 > σ* = 0.881
    (True, True)
    """
    vc, vd = ensemble.var_matrix
    cc, cd = ensemble.check_matrix
    wv = _edge_weights(vc, vd)
    wc = _edge_weights(cc, cd)
    t_types = ensemble.n_edge_types
    mu = 2.0 * snr
    sd = 2.0 * math.sqrt(snr)
    n = population
    cv = [np.zeros(n) for _ in range(t_types)]
    # edge types that reach a variable of degree >= 2 (degree-one variables only ever send
    # their channel LLR, which never becomes reliable)
    watch = [t for t in range(t_types) if np.any(vd[vd.sum(axis=1) >= 2, t] > 0)]
    residual = 1.0
    for done in range(max_iterations):  # done = check updates so far
        vcm: list[NDArray[np.float64]] = []
        for t in range(t_types):
            out = np.empty(n)
            if wv[:, t].sum() == 0:
                vcm.append(np.full(n, 50.0))
                continue
            kind = rng.choice(len(vc), size=n, p=wv[:, t])
            for j in range(len(vc)):
                idx = np.flatnonzero(kind == j)
                if idx.size == 0:
                    continue
                acc = mu + sd * rng.standard_normal(idx.size)
                for s in range(t_types):
                    k = int(vd[j, s]) - (1 if s == t else 0)
                    if k <= 0:
                        continue
                    if edge_survival is None and (clt_degree is None or k <= clt_degree):
                        acc += cv[s][rng.integers(0, n, size=(idx.size, k))].sum(axis=1)
                    else:
                        acc += _sum_of_draws(
                            cv[s],
                            k,
                            idx.size,
                            1.0 if edge_survival is None else edge_survival[s],
                            clt_degree,
                            rng,
                        )
                if known_fraction > 0.0 and vd[j].sum() >= 2:
                    acc[rng.random(idx.size) < known_fraction] = 50.0
                out[idx] = acc
            vcm.append(out)
        err = max(float(np.mean(vcm[t] < 0)) for t in watch) if watch else 0.0
        residual = min(residual, err)
        if err < target_error:
            return DeRun(done, residual)
        th = [np.tanh(np.clip(v, -40.0, 40.0) / 2.0) for v in vcm]
        for t in range(t_types):
            if wc[:, t].sum() == 0:
                continue
            out = np.empty(n)
            kind = rng.choice(len(cc), size=n, p=wc[:, t])
            for i in range(len(cc)):
                idx = np.flatnonzero(kind == i)
                if idx.size == 0:
                    continue
                prod = np.ones(idx.size)
                for s in range(t_types):
                    k = int(cd[i, s]) - (1 if s == t else 0)
                    if k > 0:
                        prod *= th[s][rng.integers(0, n, size=(idx.size, k))].prod(axis=1)
                out[idx] = 2.0 * np.arctanh(np.clip(prod, -1 + 1e-15, 1 - 1e-15))
            cv[t] = out
    return DeRun(None, residual)


def population_de_converges(
    ensemble: MetEnsemble,
    *,
    snr: float,
    rng: np.random.Generator,
    population: int = 20_000,
    max_iterations: int = 400,
    target_error: float = 1e-4,
    clt_degree: int | None = None,
    known_fraction: float = 0.0,
    edge_survival: tuple[float, ...] | None = None,
) -> bool:
    """Whether Monte-Carlo density evolution converges: the ``iterations`` of
    :func:`population_de_run` are not None (same arguments, same random stream).

    >>> ens = regular_ensemble(var_degree=3, check_degree=6)
    >>> population_de_converges(ens, snr=1 / 0.84**2, rng=np.random.default_rng(1))
    True
    """
    run = population_de_run(
        ensemble,
        snr=snr,
        rng=rng,
        population=population,
        max_iterations=max_iterations,
        target_error=target_error,
        clt_degree=clt_degree,
        known_fraction=known_fraction,
        edge_survival=edge_survival,
    )
    return run.iterations is not None


def _sum_of_draws(
    pop: NDArray[np.float64],
    k: int,
    size: int,
    survival: float,
    clt_degree: int | None,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """``size`` sums of ``K`` draws from ``pop``, ``K = k`` or ``Binomial(k, survival)``; sums
    of more than ``clt_degree`` draws as a Gaussian of the exact mean ``K·E`` and variance
    ``K·Var`` (central limit theorem)."""
    ks = np.full(size, k) if survival >= 1.0 else rng.binomial(k, survival, size=size)
    out = np.zeros(size)
    big = ks > clt_degree if clt_degree is not None else np.zeros(size, dtype=bool)
    if big.any():
        kb = ks[big].astype(np.float64)
        out[big] = kb * pop.mean() + np.sqrt(kb * pop.var()) * rng.standard_normal(kb.size)
    small = np.flatnonzero(~big & (ks > 0))
    if small.size:
        kmax = int(ks[small].max())
        draws = pop[rng.integers(0, pop.size, size=(small.size, kmax))]
        draws[np.arange(kmax)[None, :] >= ks[small][:, None]] = 0.0
        out[small] = draws.sum(axis=1)
    return out


# ----------------------------------------------------------------------------- construction
@dataclass(frozen=True)
class ConstructionReport:
    """What :func:`construct` did: swap rounds, swaps, and the defects left (all should be 0):
    multi-edges, 4-cycles, and precode components with a cycle of degree-2 variables."""

    rounds: int
    swaps: int
    multi_edges: int
    four_cycles: int
    precode_cycles: int = 0


def _pairs_in_checks(
    check_of_socket: NDArray[np.int64], max_deg: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Socket pairs ``(i, j)``, ``i < j``, that belong to the same check (sockets contiguous
    per check)."""
    ia, ib = [], []
    for off in range(1, max_deg):
        i = np.flatnonzero(check_of_socket[off:] == check_of_socket[:-off])
        ia.append(i)
        ib.append(i + off)
    return np.concatenate(ia), np.concatenate(ib)


def count_four_cycles(code: LdpcCode) -> int:
    """Number of 4-cycles, ``Σ_{variable pairs} C(shared checks, 2)``, vectorised.

    >>> import numpy as np
    >>> count_four_cycles(LdpcCode.from_dense(np.array([[1, 1, 0], [1, 1, 1]])))
    1
    """
    deg = code.var_degrees
    keep = deg[code.check_vars] >= 2
    c = code.edge_checks.astype(np.int64)[keep]
    v = code.check_vars.astype(np.int64)[keep]
    if c.size == 0:
        return 0
    ia, ib = _pairs_in_checks(c, int(np.bincount(c).max()))  # CSR order: grouped by check
    a, b = v[ia], v[ib]
    pk = np.minimum(a, b) * code.n_vars + np.maximum(a, b)
    _, mult = np.unique(pk, return_counts=True)
    return int(np.sum(mult * (mult - 1) // 2))


def _degree_two_cycles(
    pos: NDArray[np.int64],
    var_at: NDArray[np.int64],
    sock_check: NDArray[np.int64],
    n_checks: int,
    rng: np.random.Generator,
) -> NDArray[np.int64]:
    """Sockets to re-wire so that the degree-2 variables at check sockets ``pos`` (each
    appears twice) form a forest on the checks: one socket per connected component that has
    as many edges as nodes or more (i.e. contains a cycle)."""
    if pos.size == 0:
        return np.zeros(0, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    order = pos[np.argsort(var_at[pos], kind="stable")]
    u = sock_check[order[0::2]]
    v = sock_check[order[1::2]]
    g = coo_matrix((np.ones(u.size), (u, v)), shape=(n_checks, n_checks))
    _, label = connected_components(g, directed=False)
    edges = np.bincount(label[u], minlength=label.max() + 1)
    nodes = np.bincount(label, minlength=label.max() + 1)
    cyclic = edges >= nodes
    hit = np.flatnonzero(cyclic[label[u]])
    if hit.size == 0:
        return np.zeros(0, dtype=np.int64)
    # one edge per cyclic component, at random
    perm = hit[rng.permutation(hit.size)]
    _, first = np.unique(label[u[perm]], return_index=True)
    return np.asarray(order[0::2][perm[first]], dtype=np.int64)


def _precode_types(cd: NDArray[np.int64], deg1_types: list[int]) -> list[int]:
    """Edge types carried only by checks without a degree-one variable (the precode)."""
    ext = cd[:, deg1_types].sum(axis=1) > 0 if deg1_types else np.zeros(len(cd), dtype=bool)
    return [t for t in range(cd.shape[1]) if np.any(cd[:, t] > 0) and not np.any(cd[ext, t] > 0)]


def _ring_types(vd: NDArray[np.int64], cd: NDArray[np.int64], deg1_types: list[int]) -> list[int]:
    """Precode edge types that every check carrying them carries exactly twice, every
    variable carrying them exactly twice and on no other precode type: their degree-2
    variables form a 2-regular graph on those checks — a union of cycles, short ones being
    low-weight precode codewords — so :func:`construct` lays them out as one long cycle."""
    pre = _precode_types(cd, deg1_types)
    out = []
    for t in pre:
        on_v, on_c = vd[:, t] > 0, cd[:, t] > 0
        others = [s for s in pre if s != t]
        if (
            np.all(vd[on_v, t] == 2)
            and np.all(cd[on_c, t] == 2)
            and (not others or np.all(vd[on_v][:, others] == 0))
        ):
            out.append(t)
    return out


def _ring(
    pos: NDArray[np.int64], variables: NDArray[np.int64], rng: np.random.Generator
) -> NDArray[np.int64]:
    """Variables for the sockets ``pos`` (two per check, contiguous) of a ring type: checks in
    a random cyclic order ``c_0 … c_{m−1}``, variable ``j`` (in random order) on the second
    socket of ``c_j`` and the first of ``c_{j+1 mod m}`` — one cycle through every check."""
    m = pos.size // 2
    order = rng.permutation(m)
    vs = variables[rng.permutation(variables.size)]
    out = np.empty(pos.size, dtype=np.int64)
    out[2 * order + 1] = vs
    out[2 * np.roll(order, -1)] = vs
    return out


def construct(
    ensemble: MetEnsemble,
    *,
    n_vars: int,
    rng: np.random.Generator,
    max_rounds: int = 200,
) -> tuple[LdpcCode, ConstructionReport]:
    """A random code of the ensemble, ``n_vars`` a multiple of ``ensemble.unit``.

    Per edge type, the variable sockets are matched to the check sockets by a random
    permutation (the configuration model). Multi-edges and 4-cycles are then removed by
    swapping the variable end of one offending edge with that of a uniformly drawn edge of the
    same type, repeated until none is left (or ``max_rounds``): swaps keep every node's
    degree in every edge type, so the code has exactly the ensemble's degree distribution.
    The check sockets stay in check order, so each round needs one sort (of the variable
    pairs that share a check), no sort of the edges. Variables are ordered by type (core
    first, degree-one last), checks by type (precode first).

    Precode (edge types carried only by checks without a degree-one variable): the variables
    of precode degree 2 are kept a forest on the precode checks (a cycle of them is a
    low-weight codeword), also when the precode checks carry several edge types (weak and
    strong sockets split, e.g. 2 + 3 per check). A *ring* type — every check carrying it has
    exactly two of its sockets and its variables exactly two and no other precode edge — is
    2-regular, so a forest is impossible: it is laid out as one cycle through all its checks
    (weight ≈ the whole ring) and its sockets are never re-wired.

    Example
    -------
    >>> code, rep = construct(ENSEMBLES["met-r0.02"], n_vars=40_000, rng=np.random.default_rng(1))
    >>> code.n_checks, rep.multi_edges, rep.four_cycles
    (39200, 0, 0)
    """
    if n_vars <= 0 or n_vars % ensemble.unit:
        raise ConfigError(f"n_vars={n_vars} must be a positive multiple of {ensemble.unit}")
    scale = n_vars // ensemble.unit
    vc, vd = ensemble.var_matrix
    cc, cd = ensemble.check_matrix
    n_types = vd.shape[1]
    vdeg = np.repeat(vd, vc * scale, axis=0)  # [n, T]
    cdeg = np.repeat(cd, cc * scale, axis=0)  # [m, T]
    n_checks = cdeg.shape[0]
    # check sockets, contiguous per check, in edge-type order within a check
    per_check = cdeg.sum(axis=1)
    sock_check = np.repeat(np.arange(n_checks, dtype=np.int64), per_check)
    sock_type = np.repeat(np.tile(np.arange(n_types), n_checks), cdeg.ravel())
    var_at = np.empty(sock_check.size, dtype=np.int64)
    ids = np.arange(n_vars, dtype=np.int64)
    # only sockets of variables of degree >= 2 can close a 2- or 4-cycle; degree-one
    # variables sit on type(s) where every variable has degree one: pairs of the other types
    deg1_types = [t for t in range(n_types) if np.all(vdeg[vdeg[:, t] > 0].sum(axis=1) == 1)]
    rings = _ring_types(vd, cd, deg1_types)
    pos_of_type = []
    for t in range(n_types):
        pos = np.flatnonzero(sock_type == t)
        vs = np.repeat(ids, vdeg[:, t])
        if t in rings:
            var_at[pos] = _ring(pos, vs[0::2], rng)
        else:
            var_at[pos] = vs[rng.permutation(vs.size)]
        pos_of_type.append(pos)
    protected = np.isin(sock_type, rings)
    core_sock = ~np.isin(sock_type, deg1_types)
    ia, ib = _pairs_in_checks(sock_check, int(per_check.max()))
    keep = core_sock[ia] & core_sock[ib]
    ia, ib = ia[keep], ib[keep]
    same_type = sock_type[ia] == sock_type[ib]
    # edge types whose checks carry only that type (the precode): cycles of variables of
    # degree 2 there are low-weight precode codewords (weight = cycle length, times the core's
    # extension degree in the code), so they are removed too
    # (and, by the same argument, those of the precode edge types that share their checks; a
    # ring type is one long cycle by construction and never re-wired)
    pure = [
        t
        for t in range(n_types)
        if np.any(cd[:, t] > 0) and np.all(cd[cd[:, t] > 0].sum(axis=1) == cd[cd[:, t] > 0, t])
    ]
    shared = [t for t in _precode_types(cd, deg1_types) if t not in pure and t not in rings]
    groups = [[t] for t in pure] + ([shared] if shared else [])

    def degree_two_sockets(types: list[int]) -> NDArray[np.int64]:
        pos = np.concatenate([pos_of_type[t] for t in types])
        return pos[vdeg[:, types].sum(axis=1)[var_at[pos]] == 2]

    rounds = swaps = 0
    left_multi = left_cyc = left_cyc2 = 0
    clean = False
    while rounds < max_rounds:
        rounds += 1
        a, b = var_at[ia], var_at[ib]
        multi = a == b
        left_multi = int(np.count_nonzero(multi))
        pk = np.minimum(a, b) * n_vars + np.maximum(a, b)
        order = np.argsort(pk)
        dup = np.flatnonzero(pk[order][1:] == pk[order][:-1]) + 1
        left_cyc = int(dup.size)
        sel = order[dup]
        # re-wire: for a multi-edge the second socket; for a 4-cycle one socket of the pair
        # (the other one where the first is a protected ring socket)
        first = np.concatenate(
            [
                ib[multi & same_type],
                ib[multi & ~same_type],
                np.where(sel % 2 == 0, ia[sel], ib[sel]),
            ]
        )
        other = np.concatenate(
            [
                ia[multi & same_type],
                ia[multi & ~same_type],
                np.where(sel % 2 == 0, ib[sel], ia[sel]),
            ]
        )
        bad = np.where(protected[first], other, first)
        cyc2 = [
            _degree_two_cycles(degree_two_sockets(g), var_at, sock_check, n_checks, rng)
            for g in groups
        ]
        left_cyc2 = sum(int(c.size) for c in cyc2)
        bad = np.unique(np.concatenate([bad, *cyc2]))
        if bad.size == 0:
            clean = True
            break
        bad_type = sock_type[bad]
        for tt in np.unique(bad_type).tolist():
            src = bad[bad_type == tt]
            pool = pos_of_type[tt]
            dst = pool[rng.integers(0, pool.size, size=src.size)]
            for x, y in zip(src.tolist(), dst.tolist(), strict=True):
                var_at[x], var_at[y] = var_at[y], var_at[x]
        swaps += int(bad.size)
    if not clean:
        # max_rounds ran out after a round of swaps: the counts above describe the graph
        # before those swaps, which may have closed new multi-edges or cycles; count again
        a, b = var_at[ia], var_at[ib]
        left_multi = int(np.count_nonzero(a == b))
        pk = np.sort(np.minimum(a, b) * n_vars + np.maximum(a, b))
        left_cyc = int(np.count_nonzero(pk[1:] == pk[:-1]))
        left_cyc2 = sum(
            int(_degree_two_cycles(degree_two_sockets(g), var_at, sock_check, n_checks, rng).size)
            for g in groups
        )
    name = f"{ensemble.name}-n{n_vars}"
    if left_multi:  # only when max_rounds ran out: drop duplicates so H is well defined
        key = sock_check * n_vars + var_at
        _, first = np.unique(key, return_index=True)
        code = LdpcCode.from_edges(n_vars, n_checks, sock_check[first], var_at[first], name=name)
    else:
        code = LdpcCode.from_edges(n_vars, n_checks, sock_check, var_at, name=name)
    return code, ConstructionReport(rounds, swaps, left_multi, left_cyc, left_cyc2)


@functools.lru_cache(maxsize=4)
def load_met_code(name: str, *, n_target: int = 1_000_000) -> LdpcCode:
    """The shipped MET code ``name`` at the block length nearest ``n_target``.

    Built deterministically at load time from the ensemble and its seed
    (``rng = default_rng([seed, n])``); nothing is stored. ``n`` is ``n_target`` rounded to a
    multiple of the ensemble's ``unit``. About 2–4 s for ``n = 10^6``. Cached (4 codes).

    >>> load_met_code("met-r0.02", n_target=100_000).n_checks
    98000
    """
    if name not in ENSEMBLES:
        raise ConfigError(f"unknown MET code {name!r}; known: {', '.join(sorted(ENSEMBLES))}")
    return build_met_code(ENSEMBLES[name], n_target=n_target)


def build_met_code(ensemble: MetEnsemble, *, n_target: int = 1_000_000) -> LdpcCode:
    """A code of ``ensemble`` (shipped or a candidate spec) at the block length nearest
    ``n_target``, built with ``rng = default_rng([ensemble.seed, n])``; ConfigError if the
    construction leaves multi-edges, 4-cycles or degree-2 precode cycles.

    >>> build_met_code(ENSEMBLES["met-r0.02"], n_target=40_000).n_vars
    40000
    """
    ens = ensemble
    n = max(1, round(n_target / ens.unit)) * ens.unit
    code, rep = construct(ens, n_vars=n, rng=np.random.default_rng([ens.seed, n]))
    if rep.multi_edges or rep.four_cycles or rep.precode_cycles:
        raise ConfigError(
            f"{ens.name} at n={n}: construction left {rep.multi_edges} multi-edges, "
            f"{rep.four_cycles} 4-cycles and {rep.precode_cycles} precode degree-2 cycles"
        )
    return code


def adapt_met(name: str, *, rate: float, n_target: int = 1_000_000) -> AdaptedCode:
    """Adapt the MET code ``name`` to ``rate``: truncation (higher rate) or shortening (lower).

    * **Truncation** keeps ``k = n − m`` and drops ``n − ⌈k/rate⌉`` extension checks, each with
      its degree-one variable, chosen uniformly at random (seeded by the ensemble's seed), so
      the remaining graph is again a random MET code of the same shape (core type-2 degrees
      scale by ``n'/n``). The shipped QC family truncates the same way (docs/codes.md).
    * **Shortening** fixes ``s = ⌈(k − rate·n)/(1 − rate)⌉`` random core bits to 0, known to
      both sides (decoder LLR ``+known``): rate ``(k − s)/(n − s)``.

    Returns the :class:`~cvqkd.reconciliation.codes.AdaptedCode` container (``lifting`` is 0:
    the code is not lifted). The achieved rate is at most the request, within one bit.

    >>> a = adapt_met("met-r0.02", rate=0.025, n_target=100_000)
    >>> round(a.rate, 4), a.code.n_vars - a.code.n_checks
    (0.025, 2000)
    """
    mother = load_met_code(name, n_target=n_target)
    ens = ENSEMBLES[name]
    n, m = mother.n_vars, mother.n_checks
    k = n - m
    empty = np.zeros(0, dtype=np.int64)
    if not (0.0 < rate < 1.0):
        raise ConfigError(f"rate must be in (0, 1), got {rate}")
    rng = np.random.default_rng([ens.seed, n, 1])
    deg = mother.var_degrees
    if rate >= mother.rate:
        n_new = math.ceil(k / rate)
        drop_vars = np.flatnonzero(deg == 1)
        if n - n_new > drop_vars.size:
            raise ConfigError(f"rate {rate} is too high for code {name!r}")
        drop = np.sort(rng.choice(drop_vars, size=n - n_new, replace=False))
        if drop.size == 0:
            return AdaptedCode(mother, empty, empty, mother.rate, name, 0)
        # the check of each dropped degree-one variable
        pos = mother.var_ptr[drop]
        drop_checks = mother.var_checks[pos].astype(np.int64)
        keep_c = np.ones(m, dtype=bool)
        keep_c[drop_checks] = False
        keep_v = np.ones(n, dtype=bool)
        keep_v[drop] = False
        new_c = np.cumsum(keep_c) - 1
        new_v = np.cumsum(keep_v) - 1
        ec = mother.edge_checks.astype(np.int64)
        ev = mother.check_vars.astype(np.int64)
        sel = keep_c[ec]
        code = LdpcCode.from_edges(
            int(keep_v.sum()),
            int(keep_c.sum()),
            new_c[ec[sel]],
            new_v[ev[sel]],
            name=f"{mother.name}-R{rate:g}",
        )
        return AdaptedCode(code, empty, empty, (code.n_vars - code.n_checks) / code.n_vars, name, 0)
    s = math.ceil((k - rate * n) / (1.0 - rate))
    core = np.flatnonzero(deg >= 2)
    if s >= k or s > core.size:
        raise ConfigError(f"rate {rate} is too low for code {name!r} (rate {mother.rate:.4g})")
    pos = np.sort(rng.choice(core, size=s, replace=False)).astype(np.int64)
    return AdaptedCode(mother, empty, pos, (k - s) / (n - s), name, 0)
