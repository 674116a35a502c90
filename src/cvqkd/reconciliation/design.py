"""Asymptotic analysis and design of low-rate LDPC ensembles for the binary-input AWGN channel.

Two analyses:

* **Protograph EXIT (PEXIT)**, Liva & Chiani, "Protograph LDPC codes design based on EXIT
  analysis", IEEE GLOBECOM 2007: the Gaussian approximation of density evolution run edge class
  by edge class on a protograph (base matrix with multi-edges, punctured columns). Used to
  optimise and to report the threshold of every shipped ensemble.
* **Discretised density evolution** (Richardson & Urbanke, *Modern Coding Theory*, 2008, §4.5;
  Chung, Forney, Richardson & Urbanke, IEEE Comm. Lett. 5, 58 (2001)) for unstructured
  ``(λ, ρ)`` ensembles: quantised LLR densities, exact check-node rule by a pairwise table. It
  reproduces the textbook threshold of the regular (3, 6) ensemble, σ* = 0.8809, and serves as
  the check on the numerical machinery.

Conventions: BPSK ±1 with real Gaussian noise of variance σ², so ``snr = 1/σ²`` (linear); the
channel LLR is ``2y/σ²`` with mean ``2·snr`` and variance ``4·snr``, i.e. a consistent Gaussian
of parameter ``σ_ch = 2·sqrt(snr)``. Efficiency ``β = R / C(snr)`` with ``C = ½ log2(1 + snr)``
(AWGN capacity per real dimension, RECONCILIATION.md).

Protographs here are *Raptor-like* multi-edge-type structures (Chen, Vakilinia, Divsalar &
Wesel, IEEE Trans. Commun. 63, 1522 (2015); Jouguet, Kunz-Jacques & Leverrier, PRA 84, 062317
(2011) for the MET view): ``n_core`` high-degree "core" columns, ``n_precode`` precode rows on
the core, then extension rows, each with one new degree-one column. Truncating the extension
(dropping trailing rows and their degree-one columns) raises the rate; the design is nested so
that every prefix keeps the ensemble's profile (:func:`interleave_rows`).

Example
-------
>>> import numpy as np
>>> from cvqkd.reconciliation.design import Protograph, pexit_threshold_snr
>>> proto = Protograph.raptor_like(core_rows=np.array([[1, 1, 1, 1]]),
...                                extension_rows=np.array([[2, 1, 0, 1]] * 4))
>>> round(proto.rate, 4)
0.375
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError

__all__ = [
    "DesignResult",
    "J",
    "Protograph",
    "awgn_capacity",
    "biawgn_capacity",
    "de_regular_converges",
    "de_threshold_sigma",
    "efficiency",
    "interleave_rows",
    "inverse_J",
    "optimise_raptor_like",
    "permanent_bound",
    "pexit_converges",
    "pexit_threshold_snr",
    "snr_for_efficiency",
]

# ----------------------------------------------------------------------------- capacities


def awgn_capacity(snr: ArrayLike) -> NDArray[np.float64]:
    """Gaussian channel capacity ``½ log2(1 + snr)`` in bit per real symbol (``snr`` linear).

    >>> float(awgn_capacity(1.0))
    0.5
    """
    return np.asarray(0.5 * np.log2(1.0 + np.asarray(snr, dtype=np.float64)))


def efficiency(*, rate: ArrayLike, snr: ArrayLike) -> NDArray[np.float64]:
    """Reconciliation efficiency ``β = R / C(snr)`` (RECONCILIATION.md; ``snr`` linear).

    >>> round(float(efficiency(rate=0.02, snr=0.02962)), 3)
    0.95
    """
    return np.asarray(np.asarray(rate, dtype=np.float64) / awgn_capacity(snr))


def snr_for_efficiency(*, rate: ArrayLike, beta: ArrayLike) -> NDArray[np.float64]:
    """The SNR (linear) at which a code of ``rate`` runs at efficiency ``beta``: ``2^(2R/β) − 1``.

    >>> round(float(snr_for_efficiency(rate=0.02, beta=0.95)), 5)
    0.02962
    """
    r = np.asarray(rate, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    return np.asarray(np.expm1(2.0 * r / b * math.log(2.0)))


def biawgn_capacity(snr: ArrayLike) -> NDArray[np.float64]:
    """Binary-input AWGN capacity (bit/use) for BPSK ±1 and noise variance ``1/snr``.

    Computed as ``J(2·sqrt(snr))`` (the mutual information of a consistent Gaussian LLR).

    >>> round(float(biawgn_capacity(1.0)), 4)
    0.4859
    """
    return J(2.0 * np.sqrt(np.asarray(snr, dtype=np.float64)))


# ----------------------------------------------------------------------------- J function

_SIGMA_MAX = 80.0


@functools.lru_cache(maxsize=1)
def _j_table() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tabulate ``J(σ)`` exactly (Gauss–Hermite quadrature) on a geometric σ grid."""
    sig = np.concatenate([[0.0], np.geomspace(1e-4, _SIGMA_MAX, 6000)])
    # L ~ N(σ²/2, σ²); J = 1 − E[log2(1 + e^{−L})]. 200-point Gauss–Hermite (probabilists').
    t, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    lval = sig[:, None] ** 2 / 2.0 + sig[:, None] * t[None, :]
    val = 1.0 - (np.logaddexp(0.0, -lval) / math.log(2.0)) @ w
    # quadrature noise at large σ: enforce monotonicity and the upper limit 1
    val = np.clip(np.maximum.accumulate(val), 0.0, 1.0)
    val[0] = 0.0
    return sig, val


def J(sigma: ArrayLike) -> NDArray[np.float64]:
    """Mutual information (bit) between a bit and a consistent Gaussian LLR ``N(σ²/2, σ²)``.

    ``J(σ) = 1 − E[log2(1 + e^{−L})]`` (ten Brink 2001). Tabulated by quadrature and linearly
    interpolated (relative error < 1e-4 on σ ∈ [1e-3, 40]).

    >>> round(float(J(2.0)), 4)
    0.4859
    """
    sig, val = _j_table()
    s = np.asarray(sigma, dtype=np.float64)
    return np.asarray(np.interp(s, sig, val))


def inverse_J(info: ArrayLike) -> NDArray[np.float64]:
    """Inverse of :func:`J`: the σ whose consistent Gaussian LLR carries ``info`` bits.

    >>> round(float(inverse_J(J(3.0))), 3)
    3.0
    """
    sig, val = _j_table()
    i = np.asarray(info, dtype=np.float64)
    # the table saturates at 1 for large σ: invert on the strictly increasing part only
    keep = np.concatenate([[True], np.diff(val) > 0])
    return np.asarray(np.interp(i, val[keep], sig[keep]))


# ----------------------------------------------------------------------------- protographs


@dataclass(frozen=True)
class Protograph:
    """A protograph (base matrix with multi-edges) with punctured columns.

    ``base[i, j]`` is the number of parallel edges between base check ``i`` and base variable
    ``j``. Raptor-like layout (see the module docstring): columns ``0..n_core-1`` are the core,
    column ``n_core + t`` is the degree-one column of row ``n_precode + t``.

    Attributes
    ----------
    base:
        ``int64[m_b, n_b]`` base matrix (read-only).
    punctured:
        ``bool[n_b]``: columns never disclosed (LLR 0 at the decoder).
    n_core, n_precode:
        Raptor-like layout sizes (``0`` when the protograph is not Raptor-like).
    """

    base: NDArray[np.int64]
    punctured: NDArray[np.bool_]
    n_core: int = 0
    n_precode: int = 0
    name: str = field(default="")

    def __post_init__(self) -> None:
        b = np.array(self.base, dtype=np.int64)
        p = np.array(self.punctured, dtype=bool)
        if b.ndim != 2 or p.shape != (b.shape[1],):
            raise ConfigError("protograph: base must be 2-D and punctured one flag per column")
        if np.any(b < 0):
            raise ConfigError("protograph: negative entry in the base matrix")
        b.setflags(write=False)
        p.setflags(write=False)
        object.__setattr__(self, "base", b)
        object.__setattr__(self, "punctured", p)

    @classmethod
    def raptor_like(
        cls,
        *,
        core_rows: ArrayLike,
        extension_rows: ArrayLike,
        punctured_core: ArrayLike | None = None,
        name: str = "",
    ) -> Protograph:
        """Assemble ``[[P, 0], [E, I]]``: precode rows ``P`` on the core, extension rows ``E``
        each with its own degree-one column.

        >>> Protograph.raptor_like(core_rows=[[1, 1]], extension_rows=[[1, 0], [1, 1]]).base
        array([[1, 1, 0, 0],
               [1, 0, 1, 0],
               [1, 1, 0, 1]])
        """
        p = np.atleast_2d(np.asarray(core_rows, dtype=np.int64))
        e = np.atleast_2d(np.asarray(extension_rows, dtype=np.int64))
        n_core = e.shape[1]
        if p.size == 0:
            p = np.zeros((0, n_core), dtype=np.int64)
        if p.shape[1] != n_core:
            raise ConfigError("protograph: precode and extension rows differ in width")
        m_e = e.shape[0]
        top = np.hstack([p, np.zeros((p.shape[0], m_e), dtype=np.int64)])
        bottom = np.hstack([e, np.eye(m_e, dtype=np.int64)])
        punct = np.zeros(n_core + m_e, dtype=bool)
        if punctured_core is not None:
            punct[:n_core] = np.asarray(punctured_core, dtype=bool)
        return cls(
            base=np.vstack([top, bottom]),
            punctured=punct,
            n_core=n_core,
            n_precode=p.shape[0],
            name=name,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(m_b, n_b)``."""
        return (int(self.base.shape[0]), int(self.base.shape[1]))

    @property
    def n_extension(self) -> int:
        """Number of extension rows (= degree-one columns) of a Raptor-like protograph."""
        return self.shape[0] - self.n_precode

    @property
    def rate(self) -> float:
        """Rate ``(n_b − m_b) / (n_b − punctured)`` (syndrome bits per disclosed bit, 1 minus)."""
        m, n = self.shape
        return (n - m) / (n - int(self.punctured.sum()))

    def truncated(self, n_extension: int) -> Protograph:
        """The Raptor-like prefix with the first ``n_extension`` extension rows (higher rate)."""
        if not (0 <= n_extension <= self.n_extension):
            raise ConfigError(f"protograph: cannot keep {n_extension} extension rows")
        m = self.n_precode + n_extension
        n = self.n_core + n_extension
        return Protograph(
            base=self.base[:m, :n],
            punctured=self.punctured[:n],
            n_core=self.n_core,
            n_precode=self.n_precode,
            name=self.name,
        )

    def column_degrees(self) -> NDArray[np.int64]:
        """Degree of each base column (with multi-edges counted)."""
        return np.asarray(self.base.sum(axis=0))

    def row_degrees(self) -> NDArray[np.int64]:
        """Degree of each base row."""
        return np.asarray(self.base.sum(axis=1))


# ----------------------------------------------------------------------------- PEXIT


def _fold(
    base: NDArray[np.int64], punctured: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Reduce a protograph for PEXIT: fold transmitted degree-one columns into their row.

    A transmitted degree-one column only ever sends its channel message; each such column adds a
    constant ``σ_ch²``-term to its check. Identical reduced rows are merged with a weight.
    Returns ``(B, weights, n_deg1_per_row, punct)`` with ``B`` the reduced base (float).
    """
    col_deg = base.sum(axis=0)
    deg1 = (col_deg == 1) & ~punctured
    keep_cols = ~deg1
    # rows that hold a punctured degree-one column carry no information: drop them
    dead = (col_deg == 1) & punctured
    live_rows = ~(base[:, dead].sum(axis=1) > 0)
    b = base[live_rows][:, keep_cols]
    n1 = base[live_rows][:, deg1].sum(axis=1)
    key = np.hstack([b, n1[:, None]])
    uniq, counts = np.unique(key, axis=0, return_counts=True)
    return (
        uniq[:, :-1].astype(np.float64),
        counts.astype(np.float64),
        uniq[:, -1].astype(np.float64),
        punctured[keep_cols],
    )


def pexit_converges(
    protograph: Protograph,
    *,
    snr: ArrayLike,
    max_iterations: int = 4000,
    target_info: float = 1.0 - 1e-6,
) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """Run PEXIT at each ``snr`` (linear, vectorised); return ``(converged, iterations)``.

    Converged means every non-degree-one column reaches a posteriori mutual information
    ``target_info`` within ``max_iterations``; a run stops early when it reaches a fixed point
    (no column's information grows by more than 1e-12 in 50 iterations).
    """
    s = np.atleast_1d(np.asarray(snr, dtype=np.float64))
    b, w, n1, punct = _fold(protograph.base, protograph.punctured)
    nb = s.size
    mask = b > 0
    sig_ch2 = 4.0 * s  # σ_ch² per SNR point
    col_ch2 = np.where(punct[None, :], 0.0, sig_ch2[:, None])  # (nb, n)
    # a transmitted degree-one neighbour contributes J^{-1}(1 − J(σ_ch))² at its check
    deg1_term = inverse_J(1.0 - J(np.sqrt(sig_ch2))) ** 2  # (nb,)
    row_const = n1[None, :] * deg1_term[:, None]  # (nb, m)
    wb = w[:, None] * b  # edge weights for the column sums
    x2 = np.zeros((nb, *b.shape))  # σ² of check→variable messages per edge class
    target_s2 = float(inverse_J(target_info)) ** 2
    done = np.zeros(nb, dtype=bool)
    conv = np.zeros(nb, dtype=bool)
    iters = np.zeros(nb, dtype=np.int64)
    best = np.zeros((nb, b.shape[1]))
    stall = np.zeros(nb, dtype=np.int64)
    for it in range(1, max_iterations + 1):
        act = ~done
        if not act.any():
            break
        xa = x2[act]
        s_col = np.einsum("ij,bij->bj", wb, xa) + col_ch2[act]  # (a, n)
        ev = J(np.sqrt(np.maximum(s_col[:, None, :] - xa, 0.0)))
        y2 = np.where(mask, inverse_J(1.0 - ev) ** 2, 0.0)
        t_row = np.einsum("ij,bij->bi", b, y2) + row_const[act]
        ec = 1.0 - J(np.sqrt(np.maximum(t_row[:, :, None] - y2, 0.0)))
        xa_new = np.where(mask, inverse_J(ec) ** 2, 0.0)
        x2[act] = xa_new
        s_new = np.einsum("ij,bij->bj", wb, xa_new) + col_ch2[act]
        idx = np.flatnonzero(act)
        ok = s_new.min(axis=1) >= target_s2
        conv[idx[ok]] = True
        iters[idx] = it
        grew = (s_new > best[idx] * (1 + 1e-12) + 1e-12).any(axis=1)
        best[idx] = np.maximum(best[idx], s_new)
        stall[idx] = np.where(grew, 0, stall[idx] + 1)
        done[idx[ok | (stall[idx] >= 50)]] = True
    return conv, iters


def pexit_threshold_snr(
    protograph: Protograph,
    *,
    snr_low: float = 1e-4,
    snr_high: float = 10.0,
    rel_tol: float = 1e-3,
    points: int = 8,
    max_iterations: int = 4000,
) -> float:
    """The PEXIT decoding threshold (linear SNR): the least SNR at which PEXIT converges.

    Vectorised bracketing search: ``points`` SNRs (log-spaced) per round until the bracket is
    narrower than ``rel_tol`` (relative). ``β* = R / C(threshold)`` is the asymptotic efficiency.
    Returns ``inf`` if it does not converge at ``snr_high``.
    """
    lo, hi = math.log(snr_low), math.log(snr_high)
    ok, _ = pexit_converges(protograph, snr=[snr_high], max_iterations=max_iterations)
    if not ok[0]:
        return math.inf
    while hi - lo > rel_tol:
        grid = np.linspace(lo, hi, points + 2)[1:-1]
        conv, _ = pexit_converges(protograph, snr=np.exp(grid), max_iterations=max_iterations)
        good = grid[conv]
        bad = grid[~conv]
        new_hi = good.min() if good.size else hi
        new_lo = bad[bad < new_hi].max() if (bad < new_hi).any() else lo
        lo, hi = new_lo, new_hi
    return float(math.exp(hi))


# ----------------------------------------------------------------------------- optimisation


@dataclass(frozen=True)
class DesignResult:
    """Outcome of :func:`optimise_raptor_like`: the protograph and its PEXIT threshold."""

    protograph: Protograph
    threshold_snr: float
    beta: float
    steps: int
    seed: int


def _patterns(n_core: int, max_weight: int, max_entry: int) -> NDArray[np.int64]:
    """All core-connection patterns of an extension row: weights 1..max_weight."""
    import itertools

    pats = [
        v
        for v in itertools.product(range(max_entry + 1), repeat=n_core)
        if 1 <= sum(v) <= max_weight
    ]
    return np.asarray(pats, dtype=np.int64)


def interleave_rows(patterns: NDArray[np.int64], counts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Order extension rows so that every prefix has nearly the full ensemble's proportions.

    Row ``k`` of pattern ``p`` is placed at fractional position ``(k + ½)/counts[p]``
    (a low-discrepancy merge), so truncating the extension keeps the degree profile.

    >>> interleave_rows(np.array([[1, 0], [0, 1]]), np.array([1, 3])).tolist()
    [[0, 1], [1, 0], [0, 1], [0, 1]]
    """
    keys: list[tuple[float, int]] = []
    for p, cnt in enumerate(counts):
        keys.extend(((k + 0.5) / cnt, p) for k in range(int(cnt)))
    keys.sort()
    return np.asarray([patterns[p] for _, p in keys], dtype=np.int64).reshape(-1, patterns.shape[1])


def permanent_bound(matrix: ArrayLike) -> int:
    """Upper bound on the minimum distance of every QC lifting of a base matrix ``B``.

    For each column set ``S`` that touches exactly ``|S| − 1`` rows ``R`` (so the columns
    ``S`` alone carry codewords of the sub-code on ``R``), the bound
    ``Σ_{i∈S} perm(B[R, S∖i])`` holds (Smarandache & Vontobel, IEEE Trans. IT 58, 585 (2012),
    Thm. 8, applied to the sub-matrix; zero sums are skipped). Returns the least such value, or
    ``2**62`` if there is none.

    >>> permanent_bound([[1, 1, 1], [1, 1, 1]])
    6
    >>> permanent_bound([[2, 0, 2, 1], [1, 2, 1, 0], [0, 0, 0, 1]])  # columns 0-2 touch 2 rows
    12
    """
    import itertools

    b = np.asarray(matrix, dtype=np.int64)
    m, n = b.shape
    best = 2**62
    for size in range(2, min(m + 1, n) + 1):
        for cols in itertools.combinations(range(n), size):
            rows = np.flatnonzero(b[:, list(cols)].sum(axis=1) > 0)
            k = rows.size
            if k != size - 1:
                continue
            perms = np.asarray(list(itertools.permutations(range(k))), dtype=np.int64)
            r = np.arange(k)
            total = 0
            for i in cols:
                others = np.asarray([c for c in cols if c != i], dtype=np.int64)
                sub = b[np.ix_(rows, others)]
                total += int(np.prod(sub[r[None, :], perms], axis=1).sum())
            if 0 < total < best:
                best = total
    return best


def _initial_precode(m: int, n: int, bound: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """The sparsest of 100 random precodes (column degrees 2–3, entries <= 2) whose
    :func:`permanent_bound` is at least ``bound``; all-ones if none qualifies."""
    best: NDArray[np.int64] | None = None
    for _ in range(100):
        p = np.zeros((m, n), dtype=np.int64)
        for j in range(n):
            for r in rng.choice(m, size=int(rng.integers(2, 4)), replace=True):
                p[r, j] += 1
        if p.max() > 2 or p.sum(axis=1).min() < 2:
            continue
        if best is not None and p.sum() >= best.sum():
            continue
        b = permanent_bound(p)
        if bound <= b < 2**62:
            best = p
    return best if best is not None else np.ones((m, n), dtype=np.int64)


def optimise_raptor_like(
    *,
    rate: float,
    n_core: int = 8,
    n_precode: int = 4,
    steps: int = 200,
    seed: int = 1,
    max_weight: int = 3,
    max_entry: int = 2,
    min_distance_bound: int = 24,
    n_starts: int = 16,
    min_degree_fraction: float = 0.6,
) -> DesignResult:
    """Optimise a Raptor-like MET protograph of ``rate`` by PEXIT-guided local search.

    Layout ``[[P, 0], [E, I]]`` with ``n_core`` core columns, ``n_precode`` precode rows ``P``
    and ``n_ext = (n_core − n_precode)/rate − n_core`` extension rows (each with its own
    degree-one column; ``rate`` must make that an integer). The search state is ``P`` and the
    multiset of extension-row patterns (weights ``1..max_weight``, entries ``<= max_entry``);
    each step perturbs 1–3 rows or precode entries and keeps the change if the PEXIT threshold
    falls (hill climbing, Richardson–Shokrollahi–Urbanke style differential design reduced to
    a discrete search). Deterministic for a given ``seed``.

    Every codeword restricted to the core is a codeword of the QC precode, whose minimum
    distance is at most :func:`permanent_bound` of ``P`` whatever the lifting
    (Smarandache & Vontobel, IEEE Trans. Inf. Theory 58, 585 (2012)); a codeword of core weight
    ``w`` has total weight ≈ ``w ×`` (extension degree of a core column). A small precode
    (e.g. 2×4 rows of ones: bound 6) gives codewords of weight ≈ 600 at ``n = 10^5``, which
    sum-product decoding converges to at these SNRs. Moves that bring the bound below
    ``min_distance_bound`` are rejected.
    """
    k = n_core - n_precode
    n_ext_f = k / rate - n_core
    n_ext = round(n_ext_f)
    if k <= 0 or n_ext < 1 or abs(n_ext - n_ext_f) > 1e-6:
        raise ConfigError(
            f"rate {rate} is not (n_core − n_precode)/(n_core + n_ext) for an integer n_ext"
        )
    rng = np.random.default_rng(seed)
    pats = _patterns(n_core, max_weight, max_entry)
    starts = [_initial_precode(n_precode, n_core, min_distance_bound, rng) for _ in range(n_starts)]
    counts = np.zeros(len(pats), dtype=np.int64)
    pairs = [i for i, v in enumerate(pats) if v.sum() == 2 and v.max() == 1]
    for t in range(n_ext):
        counts[pairs[t % len(pairs)]] += 1

    def build(core_: NDArray[np.int64], counts_: NDArray[np.int64]) -> Protograph:
        return Protograph.raptor_like(
            core_rows=core_, extension_rows=interleave_rows(pats, counts_)
        )

    cap = float(snr_for_efficiency(rate=rate, beta=1.0))

    def threshold(proto: Protograph, hi: float) -> float:
        return pexit_threshold_snr(
            proto, snr_low=cap, snr_high=hi, rel_tol=5e-4, points=6, max_iterations=3000
        )

    # multi-start: the precode is the hard part; keep the best of the random sparse precodes
    scored = [(threshold(build(c, counts), 10.0), i) for i, c in enumerate(starts)]
    best, i_best = min(scored)
    core = starts[i_best]
    for _ in range(steps):
        c2 = counts.copy()
        core2 = core.copy()
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.75:
                src = int(rng.choice(np.flatnonzero(c2)))
                dst = int(rng.integers(len(pats)))
                c2[src] -= 1
                c2[dst] += 1
            elif rng.random() < 0.5:
                i, j = int(rng.integers(n_precode)), int(rng.integers(n_core))
                core2[i, j] = max(0, core2[i, j] + int(rng.choice([-1, 1])))
            else:  # move one edge of the precode to another entry
                src_i, src_j = np.argwhere(core2 > 0)[int(rng.integers(np.count_nonzero(core2)))]
                core2[src_i, src_j] -= 1
                core2[int(rng.integers(n_precode)), int(rng.integers(n_core))] += 1
        if core2.sum(axis=1).min() < 2 or core2.max() > max_entry:
            continue
        if not np.array_equal(core2, core) and permanent_bound(core2) < min_distance_bound:
            continue
        proto2 = build(core2, c2)
        col_deg = proto2.base[:, :n_core].sum(axis=0)
        if col_deg.min() < max(2.0, min_degree_fraction * col_deg.mean()):
            continue  # a weak core column spreads its low-weight codewords too little
        # cheap screen: a candidate is better only if it converges just below the best
        ok, _ = pexit_converges(proto2, snr=[best * (1 - 5e-4)], max_iterations=3000)
        if not ok[0]:
            continue
        th = threshold(proto2, best)
        if th < best:
            best, counts, core = th, c2, core2
    proto = build(core, counts)
    return DesignResult(
        protograph=proto,
        threshold_snr=best,
        beta=float(efficiency(rate=proto.rate, snr=best)),
        steps=steps,
        seed=seed,
    )


# ----------------------------------------------------------------------------- discretised DE


@functools.lru_cache(maxsize=4)
def _check_table(n_half: int, step: float) -> NDArray[np.int64]:
    """Index table of the quantised check-node rule ``2 atanh(tanh(a/2) tanh(b/2))``."""
    grid = np.arange(-n_half, n_half + 1) * step
    t = np.tanh(grid / 2.0)
    prod = np.clip(t[:, None] * t[None, :], -1 + 1e-16, 1 - 1e-16)
    out = 2.0 * np.arctanh(prod)
    idx = np.rint(out / step).astype(np.int64) + n_half
    return np.asarray(np.clip(idx, 0, 2 * n_half))


def _box(
    p: NDArray[np.float64], q: NDArray[np.float64], table: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Density of the check-node combination of independent quantised LLRs with pmfs p, q."""
    out = np.bincount(table.ravel(), weights=np.outer(p, q).ravel(), minlength=p.size)
    return np.asarray(out, dtype=np.float64)


def de_regular_converges(
    *,
    var_degree: int,
    check_degree: int,
    sigma: float,
    step: float = 0.04,
    llr_max: float = 30.0,
    max_iterations: int = 2000,
    target_error: float = 1e-7,
) -> bool:
    """Discretised density evolution of the ``(dv, dc)``-regular ensemble on BIAWGN(σ).

    LLRs are quantised to ``step`` on ``[−llr_max, llr_max]`` (saturating); the variable node
    convolves pmfs by FFT, the check node uses the exact pairwise table (Chung et al. 2001).
    Returns whether the error probability of the variable-to-check message falls below
    ``target_error``.
    """
    n_half = round(llr_max / step)
    size = 2 * n_half + 1
    grid = np.arange(-n_half, n_half + 1) * step
    mu = 2.0 / sigma**2
    # channel pmf: LLR ~ N(mu, 2 mu), integrated over each bin
    from scipy.special import ndtr

    edges = np.concatenate([[-np.inf], grid[:-1] + step / 2, [np.inf]])
    ch = np.diff(ndtr((edges - mu) / math.sqrt(2 * mu)))
    table = _check_table(n_half, step)
    msg = ch.copy()

    def power_box(p: NDArray[np.float64], k: int) -> NDArray[np.float64]:
        out: NDArray[np.float64] | None = None
        base = p
        while k:
            if k & 1:
                out = base if out is None else _box(out, base, table)
            k >>= 1
            if k:
                base = _box(base, base, table)
        assert out is not None
        return out

    nfft = 1 << math.ceil(math.log2(size * var_degree))
    prev = 1.0
    stall = 0
    for _ in range(max_iterations):
        c = power_box(msg, check_degree - 1)
        spec = np.fft.rfft(ch, nfft) * np.fft.rfft(c, nfft) ** (var_degree - 1)
        full = np.maximum(np.fft.irfft(spec, nfft), 0.0)
        # full[k] is the pmf of grid index k − (var_degree − 1)·n_half: re-centre
        offset = (var_degree - 1) * n_half
        new = full[offset : offset + size].copy()
        new[0] += full[:offset].sum()  # saturate the tails
        new[-1] += full[offset + size :].sum()
        new /= new.sum()
        msg = new
        err = msg[:n_half].sum() + 0.5 * msg[n_half]
        if err < target_error:
            return True
        if err > prev * (1 - 1e-6):
            stall += 1
            if stall >= 20:
                return False
        else:
            stall = 0
        prev = err
    return False


def de_threshold_sigma(
    *, var_degree: int, check_degree: int, rel_tol: float = 2e-3, step: float = 0.04
) -> float:
    """BIAWGN threshold σ* of the regular ensemble by bisection on discretised DE.

    Textbook value for (3, 6): σ* = 0.8809 (Richardson & Urbanke 2008, Table 4.157).
    """
    lo, hi = 0.5, 1.5
    while hi - lo > rel_tol * lo:
        mid = 0.5 * (lo + hi)
        if de_regular_converges(
            var_degree=var_degree, check_degree=check_degree, sigma=mid, step=step
        ):
            lo = mid
        else:
            hi = mid
    return lo
