"""Sliced (multilevel) reverse reconciliation for short, high-SNR links (SNR ≈ 1–30).

The binary schemes of :mod:`~cvqkd.reconciliation.reconcile` (one bit per real dimension) are
capped at ``C_BIAWGN/C_AWGN`` (0.85 at SNR 3, 0.58 at SNR 10). Sliced error correction
(Van Assche, Cardinal & Cerf, IEEE Trans. Inf. Theory 50, 394 (2004); Bloch et al., "LDPC-based
Gaussian key reconciliation", ITW 2006; Jouguet, Kunz-Jacques & Leverrier, PRA 84, 062317
(2011), multilevel coding with multistage decoding) extracts several bits per sample:

1. Bob quantises each real sample ``y`` into ``2^m`` intervals (boundaries ``T_k = t_k·σ_Y``,
   equiprobable or chosen to maximise ``I(X; Q(Y))``) and labels interval ``k`` with ``m`` bits
   (natural binary or Gray); *level* ``i`` is bit ``i`` of the label, level 0 the least
   significant.
2. Levels are processed from 0 up. A level whose bits are nearly independent of Alice's data
   given the lower levels is *disclosed* (sent in clear, 1 bit per sample). Every other level is
   *coded*: Bob sends the syndrome ``H_i·b_i`` of an LDPC code of rate ``R_i`` chosen from the
   level's conditional entropy ``h_i = H(B_i | X, B_0..B_{i−1})``.
3. Alice, with ``x`` and the already known lower levels ``c``, computes the exact LLR of level
   ``i`` from ``y | x ~ N(g·x, N)``:

       P(Q = k | x) = Φ((T_{k+1} − g x)/√N) − Φ((T_k − g x)/√N),
       L_i = log Σ_{k ∈ K(c, 0)} P(k|x) − log Σ_{k ∈ K(c, 1)} P(k|x),

   ``K(c, b)`` the intervals whose label has lower bits ``c`` and bit ``i`` equal to ``b``
   (computed in the log domain, :func:`interval_log_probs`) and decodes the syndrome with
   :func:`~cvqkd.reconciliation.decoder.decode`. A frame whose level fails to converge fails.
4. The key of a frame is the coded levels' bits; Bob's polynomial hash tag
   (:mod:`~cvqkd.reconciliation.verification`) over them is checked by Alice; failed frames are
   dropped on both sides.

Accounting (reverse reconciliation, per sample, entropies in bits)::

    I(X;Y) = ½ log2(1 + SNR)                                   (Gaussian channel)
    I(X;Q) = Σ_i I_i,  I_i = H(B_i | B_<i) − H(B_i | X, B_<i)   (chain rule)
    β_ideal = I(X;Q) / I(X;Y)                                   (quantisation loss only)
    β       = (H(Q) − disclosed) / I(X;Y),  disclosed = #disclosed levels + Σ_coded m_i/n
                                                                 (+ tag bits / n)

The ideal β is what perfect codes at every level would reach; the gap between it and β is the
codes' loss. ``H(Q) = Σ_i H(B_i | B_<i)``; for an equiprobable quantiser it is ``m`` bits.

Entropies given ``X`` are integrals over ``x ~ N(0, Σ)``; they are computed on a uniform grid
in ``x/√Σ`` over ±10 (the trapezoid rule converges geometrically for these smooth, Gaussian-
weighted integrands; :func:`level_information`).

Example
-------
>>> q = equiprobable_quantiser(bits=4)
>>> info = level_information(q, snr=3.0)
>>> round(info.ideal_beta, 3), [round(v, 3) for v in info.level_conditional_entropy_bits]
(0.96, [0.974, 0.932, 0.813, 0.321])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr, logsumexp, ndtr

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.decoder import Backend, decode
from cvqkd.reconciliation.ldpc import LdpcCode
from cvqkd.reconciliation.reconcile import FrameCounts
from cvqkd.reconciliation.verification import FrameTag, collision_probability, make_tag, verify

__all__ = [
    "PROFILES",
    "LevelInformation",
    "SliceAliceResult",
    "SliceBobMessage",
    "SliceDesign",
    "SliceQuantiser",
    "SliceStats",
    "density_evolution_converges",
    "design_slices",
    "equiprobable_quantiser",
    "interval_log_probs",
    "level_channel_samples",
    "level_code",
    "level_information",
    "level_llr",
    "optimised_quantiser",
    "plan_level_code",
    "plan_level_code_de",
    "slice_reconcile_alice",
    "slice_reconcile_bob",
]

Labelling = Literal["natural", "gray"]

#: |LLR| cap handed to the decoder (a bit this sure is certain in float32 anyway).
LLR_CAP = 100.0

_LN2 = math.log(2.0)


# ----------------------------------------------------------------------------- quantiser
@dataclass(frozen=True, eq=False)
class SliceQuantiser:
    """A ``2^bits``-interval quantiser of Bob's sample with a bit labelling.

    Attributes
    ----------
    bits:
        ``m``, bits per sample (levels), 1–6.
    thresholds:
        ``float64[2^m − 1]``: interior boundaries, ascending, in units of Bob's standard
        deviation ``σ_Y`` (so one quantiser serves any signal power).
    labelling:
        ``"natural"`` (label = interval index) or ``"gray"`` (``k ^ (k >> 1)``).
    """

    bits: int
    thresholds: NDArray[np.float64]
    labelling: Labelling = "natural"

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 6:
            raise ConfigError(f"a slice quantiser has 1–6 bits per sample, got {self.bits}")
        t = np.asarray(self.thresholds, dtype=np.float64)
        if t.shape != (2**self.bits - 1,):
            raise ConfigError(f"{self.bits} bits need {2**self.bits - 1} thresholds, got {t.size}")
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise ConfigError("quantiser thresholds must be finite and strictly increasing")
        if self.labelling not in ("natural", "gray"):
            raise ConfigError(f"labelling must be 'natural' or 'gray', got {self.labelling!r}")
        t.setflags(write=False)
        object.__setattr__(self, "thresholds", t)

    @property
    def intervals(self) -> int:
        """Number of intervals ``2^m``."""
        return 2**self.bits

    @property
    def labels(self) -> NDArray[np.int64]:
        """``int64[2^m]``: the label of each interval (bit ``i`` = level ``i``)."""
        k = np.arange(self.intervals, dtype=np.int64)
        return k if self.labelling == "natural" else k ^ (k >> 1)

    @property
    def label_bits(self) -> NDArray[np.uint8]:
        """``uint8[2^m, m]``: bit ``i`` of each interval's label."""
        return ((self.labels[:, None] >> np.arange(self.bits)) & 1).astype(np.uint8)

    def boundaries(self, *, y_std: float) -> NDArray[np.float64]:
        """``float64[2^m + 1]``: absolute boundaries ``[−∞, t·σ_Y, +∞]`` (SNU)."""
        return np.concatenate([[-np.inf], self.thresholds * float(y_std), [np.inf]])

    def quantise(self, y: ArrayLike, *, y_std: float) -> NDArray[np.int64]:
        """Interval index of each sample (``T_k ≤ y < T_{k+1}``)."""
        yy = np.asarray(y, dtype=np.float64)
        return np.asarray(np.searchsorted(self.thresholds * float(y_std), yy, side="right"))

    def level_bits(self, y: ArrayLike, *, y_std: float) -> NDArray[np.uint8]:
        """``uint8[m, *y.shape]``: the bits of every level for each sample."""
        lab = self.labels[self.quantise(y, y_std=y_std)]
        shifts = np.arange(self.bits).reshape((self.bits,) + (1,) * lab.ndim)
        return ((lab[None, ...] >> shifts) & 1).astype(np.uint8)


def equiprobable_quantiser(*, bits: int, labelling: Labelling = "natural") -> SliceQuantiser:
    """Boundaries at the Gaussian quantiles ``Φ⁻¹(k/2^m)``: every interval has probability 2^−m.

    >>> [round(float(t), 4) for t in equiprobable_quantiser(bits=2).thresholds]
    [-0.6745, 0.0, 0.6745]
    """
    from scipy.special import ndtri

    if not 1 <= bits <= 6:
        raise ConfigError(f"a slice quantiser has 1–6 bits per sample, got {bits}")
    k = np.arange(1, 2**bits)
    return SliceQuantiser(bits=bits, thresholds=ndtri(k / 2**bits), labelling=labelling)


# ----------------------------------------------------------------------------- probabilities
def _log1mexp(z: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(1 − e^z)`` for ``z ≤ 0``, accurate at both ends (Mächler 2012)."""
    with np.errstate(divide="ignore"):
        return np.where(z > -_LN2, np.log(-np.expm1(z)), np.log1p(-np.exp(z)))


def _log_gauss_interval(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(Φ(b) − Φ(a))`` for ``a < b`` (either may be infinite), stable in both tails."""
    right = a > 0  # both ends in the right tail: Φ(b) − Φ(a) = Φ(−a) − Φ(−b)
    hi = np.where(right, log_ndtr(-a), log_ndtr(b))
    lo = np.where(right, log_ndtr(-b), log_ndtr(a))
    return np.asarray(hi + _log1mexp(lo - hi))


def interval_log_probs(
    x: ArrayLike,
    *,
    boundaries: ArrayLike,
    gain: float,
    noise_variance: float,
) -> NDArray[np.float64]:
    """``log P(Q = k | x)`` for ``y = g·x + z``, ``z ~ N(0, N)``: ``float64[*x.shape, 2^m]``.

    ``P(Q = k | x) = Φ((T_{k+1} − g x)/√N) − Φ((T_k − g x)/√N)`` with the absolute boundaries
    ``T`` (:meth:`SliceQuantiser.boundaries`); exact, in the log domain (no underflow far in the
    tails).

    >>> lp = interval_log_probs([0.0], boundaries=[-np.inf, 0.0, np.inf], gain=1.0,
    ...                         noise_variance=1.0)
    >>> np.exp(lp).round(3).tolist()
    [[0.5, 0.5]]
    """
    if noise_variance <= 0:
        raise ConfigError(f"noise_variance must be > 0, got {noise_variance}")
    t = np.asarray(boundaries, dtype=np.float64)
    mu = float(gain) * np.asarray(x, dtype=np.float64)[..., None]
    s = math.sqrt(noise_variance)
    return _log_gauss_interval((t[:-1] - mu) / s, (t[1:] - mu) / s)


def level_llr(
    log_probs: NDArray[np.float64],
    *,
    quantiser: SliceQuantiser,
    level: int,
    lower_bits: NDArray[np.uint8] | None,
) -> NDArray[np.float64]:
    """Alice's LLR ``log P(b_i = 0 | x, b_<i) / P(b_i = 1 | x, b_<i)`` of level ``i``.

    ``log_probs`` from :func:`interval_log_probs` (``[..., 2^m]``); ``lower_bits``
    ``uint8[i, ...]`` are the known bits of levels ``0..i−1`` (``None`` for level 0).
    Intervals whose label disagrees with them are excluded; the sums run in the log domain.
    Capped at ``±LLR_CAP``.
    """
    lab = quantiser.labels
    if not 0 <= level < quantiser.bits:
        raise ConfigError(f"level {level} outside 0..{quantiser.bits - 1}")
    mask = (1 << level) - 1
    bit = (lab >> level) & 1
    if level == 0 or lower_bits is None:
        consistent = np.ones(log_probs.shape, dtype=bool)
    else:
        lb = np.asarray(lower_bits, dtype=np.int64)
        if lb.shape[0] != level:
            raise ConfigError(f"level {level} needs the bits of {level} lower levels")
        c = np.zeros(lb.shape[1:], dtype=np.int64)
        for j in range(level):
            c |= lb[j] << j
        consistent = (lab & mask) == c[..., None]
    l0 = logsumexp(np.where(consistent & (bit == 0), log_probs, -np.inf), axis=-1)
    l1 = logsumexp(np.where(consistent & (bit == 1), log_probs, -np.inf), axis=-1)
    return np.asarray(np.clip(l0 - l1, -LLR_CAP, LLR_CAP))


# ----------------------------------------------------------------------------- information
@dataclass(frozen=True)
class LevelInformation:
    """Per-level information of a quantiser at one SNR (bits per sample).

    ``level_entropy_bits[i] = H(B_i | B_<i)``, ``level_conditional_entropy_bits[i] =
    H(B_i | X, B_<i)`` (what a perfect code at level ``i`` must disclose),
    ``level_information_bits[i] = I_i`` their difference; ``quantised_information_bits`` =
    ``I(X; Q(Y))`` computed directly (not by the chain rule); ``mutual_information_bits`` =
    ``½ log2(1 + SNR)``; ``ideal_beta = I(X;Q)/I(X;Y)``.
    """

    snr: float
    level_entropy_bits: tuple[float, ...]
    level_conditional_entropy_bits: tuple[float, ...]
    level_information_bits: tuple[float, ...]
    quantiser_entropy_bits: float
    quantised_information_bits: float
    mutual_information_bits: float

    @property
    def ideal_beta(self) -> float:
        """``I(X; Q(Y)) / I(X; Y)``: the β of perfect codes at every level."""
        return self.quantised_information_bits / self.mutual_information_bits


def _grid(points: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Uniform grid in ``ξ = x/√Σ`` on ±10 with trapezoid × φ(ξ) weights summing to 1."""
    xi = np.linspace(-10.0, 10.0, points)
    w = np.exp(-(xi**2) / 2.0)
    w[[0, -1]] *= 0.5
    return xi, w / w.sum()


def _entropy_rows(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Entropy (bits) of each row of a probability matrix (0·log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(p > 0, -p * np.log2(p), 0.0)
    return np.asarray(t.sum(axis=-1))


def _group_sum(p: NDArray[np.float64], groups: NDArray[np.int64], n_groups: int) -> NDArray:
    out = np.zeros((*p.shape[:-1], n_groups))
    for g in range(n_groups):
        out[..., g] = p[..., groups == g].sum(axis=-1)
    return out


def _cond_probs(q: SliceQuantiser, snr: float, xi: NDArray[np.float64]) -> NDArray:
    """``P(Q = k | ξ)`` in the normalised model: ``u = √snr·ξ + n``, thresholds × √(1+snr)."""
    t = np.concatenate([[-np.inf], q.thresholds * math.sqrt(1.0 + snr), [np.inf]])
    mu = math.sqrt(snr) * xi[:, None]
    return np.asarray(np.diff(ndtr(t[None, :] - mu), axis=1).clip(0.0, 1.0))


def level_information(
    q: SliceQuantiser, *, snr: float, grid_points: int = 4001
) -> LevelInformation:
    """Per-level entropies and informations of quantiser ``q`` at ``snr`` (linear).

    Model: ``X ~ N(0, Σ)``, ``Y = gX + Z``, ``SNR = g²Σ/N``; only ``snr`` matters once the
    thresholds are in units of ``σ_Y``. ``H(B_≤i | X)`` is ``E_x`` of the entropy of the
    label-prefix distribution; level terms follow by differences (chain rule).
    ``quantised_information_bits`` is ``H(Q) − H(Q | X)`` formed directly.
    """
    if not snr > 0:
        raise ConfigError(f"snr must be > 0, got {snr}")
    xi, w = _grid(grid_points)
    pk = _cond_probs(q, snr, xi)  # [G, K]
    pm = np.diff(ndtr(np.concatenate([[-np.inf], q.thresholds, [np.inf]])))
    lab = q.labels
    h_prefix = [0.0]  # H(B_<i)
    hc_prefix = [0.0]  # H(B_<i | X)
    for i in range(q.bits):
        groups = lab & ((1 << (i + 1)) - 1)
        n_g = 1 << (i + 1)
        h_prefix.append(float(_entropy_rows(_group_sum(pm[None, :], groups, n_g))[0]))
        hc_prefix.append(float(_entropy_rows(_group_sum(pk, groups, n_g)) @ w))
    h = np.diff(h_prefix)
    hc = np.diff(hc_prefix)
    hq = float(_entropy_rows(pm[None, :])[0])
    hq_x = float(_entropy_rows(pk) @ w)
    return LevelInformation(
        snr=float(snr),
        level_entropy_bits=tuple(float(v) for v in h),
        level_conditional_entropy_bits=tuple(float(v) for v in hc),
        level_information_bits=tuple(float(v) for v in h - hc),
        quantiser_entropy_bits=hq,
        quantised_information_bits=hq - hq_x,
        mutual_information_bits=0.5 * math.log2(1.0 + snr),
    )


def optimised_quantiser(
    *, bits: int, snr: float, labelling: Labelling = "natural"
) -> SliceQuantiser:
    """Symmetric thresholds maximising ``I(X; Q(Y))`` at ``snr`` (Van Assche et al. 2004 §V).

    Parametrised by the log-widths of the ``2^(m−1) − 1`` positive inner gaps (the middle
    threshold is 0); L-BFGS-B from the equiprobable quantiser. Never worse than equiprobable.
    """
    from scipy.optimize import minimize

    start = equiprobable_quantiser(bits=bits, labelling=labelling)
    if bits == 1:
        return start
    half = start.thresholds[2 ** (bits - 1) :]  # positive thresholds
    xi, w = _grid(1201)

    def thresholds(p: NDArray[np.float64]) -> NDArray[np.float64]:
        pos = np.cumsum(np.exp(p))
        return np.concatenate([-pos[::-1], [0.0], pos])

    def neg_info(p: NDArray[np.float64]) -> float:
        t = thresholds(p)
        tt = np.concatenate([[-np.inf], t * math.sqrt(1.0 + snr), [np.inf]])
        pk = np.diff(ndtr(tt[None, :] - math.sqrt(snr) * xi[:, None]), axis=1).clip(0, 1)
        pm = np.diff(ndtr(np.concatenate([[-np.inf], t, [np.inf]])))
        return -float(_entropy_rows(pm[None, :])[0] - _entropy_rows(pk) @ w)

    p0 = np.log(np.diff(np.concatenate([[0.0], half])))
    res = minimize(neg_info, p0, method="L-BFGS-B")
    best = res.x if res.fun < neg_info(p0) else p0
    return SliceQuantiser(bits=bits, thresholds=thresholds(best), labelling=labelling)


# ----------------------------------------------------------------------------- level codes
#: Candidate variable-degree profiles for a level code: ``(α, d_high, f_high)`` = degree-2
#: variables ``α·m`` (kept below m/2 so that they form a forest: no low-weight codewords made
#: of degree-2 variables), a fraction ``f_high`` of degree ``d_high``, the rest degree 3.
#: Check degrees are concentrated (two consecutive values). :func:`plan_level_code` picks one
#: per level by EXIT analysis. Kept to the profiles that decoded the SNR-3 levels at
#: n = 10^5 (docs/slice-reconciliation.md); others with better EXIT thresholds on the BIAWGN
#: proxy, e.g. (0.5, 12, 0.15), did not decode the level channels at all.
PROFILES: tuple[tuple[float, int, float], ...] = (
    (0.4, 20, 0.06),
    (0.3, 20, 0.15),
    (0.0, 3, 0.0),
)

#: Above this check degree a level code is built without 4-cycle removal (memory: the removal
#: forms every pair of sockets of a check).
MAX_CYCLE_FREE_CHECK_DEGREE = 24


def _var_counts(
    n_vars: int, n_checks: int, profile: tuple[float, int, float]
) -> tuple[tuple[int, int], ...]:
    """``((degree, count), …)`` of a profile at ``(n, m)`` (counts sum to ``n``)."""
    alpha, d_high, f_high = profile
    n2 = min(int(alpha * n_checks), n_vars)
    nh = min(round(f_high * n_vars), n_vars - n2) if d_high != 3 else 0
    n3 = n_vars - n2 - nh
    return tuple((d, c) for d, c in ((2, n2), (3, n3), (d_high, nh)) if c > 0)


def _check_degrees(n_edges: int, n_checks: int) -> tuple[tuple[int, int], ...]:
    lo = n_edges // n_checks
    n_hi = n_edges - lo * n_checks
    return tuple((d, c) for d, c in ((lo, n_checks - n_hi), (lo + 1, n_hi)) if c > 0)


def _ensemble(n_vars: int, n_checks: int, profile: tuple[float, int, float]) -> object:
    from cvqkd.reconciliation.met import MetEnsemble

    vc = _var_counts(n_vars, n_checks, profile)
    edges = sum(d * c for d, c in vc)
    return MetEnsemble(
        name=f"slice-level-{profile}",
        unit=n_vars,
        var_types=tuple((c, (d,)) for d, c in vc),
        check_types=tuple((c, (d,)) for d, c in _check_degrees(edges, n_checks)),
    )


def _threshold_checks(h_target: float, profile: tuple[float, int, float], unit: int) -> int:
    """Fewest checks per ``unit`` variables for which the profile's EXIT analysis (Gaussian
    approximation, BIAWGN channel of conditional entropy ``h_target``) converges."""
    from cvqkd.reconciliation.design import inverse_J
    from cvqkd.reconciliation.met import exit_converges

    sigma = float(inverse_J(1.0 - h_target))
    snr_eq = (sigma / 2.0) ** 2
    lo = max(1, math.ceil(h_target * unit)) - 1  # fails (below the entropy)
    hi = unit - 1
    if not exit_converges(_ensemble(unit, hi, profile), snr=snr_eq, max_iterations=1500):  # type: ignore[arg-type]
        return unit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if exit_converges(_ensemble(unit, mid, profile), snr=snr_eq, max_iterations=1500):  # type: ignore[arg-type]
            hi = mid
        else:
            lo = mid
    return hi


def plan_level_code(
    *, conditional_entropy_bits: float, margin_bits: float, n_vars: int, unit: int = 2000
) -> tuple[int, tuple[float, int, float]]:
    """Syndrome length and profile for a level of conditional entropy ``h`` (bits/sample).

    For every profile in :data:`PROFILES` the smallest check fraction whose EXIT analysis
    converges on the binary-input AWGN channel with conditional entropy ``h + margin`` (the
    level channel replaced by the BIAWGN channel of equal capacity: the Gaussian
    approximation of EXIT charts, ten Brink 2001); the profile needing the fewest checks wins.
    ``margin_bits`` covers the finite block length and the approximation. Returns
    ``(n_checks, profile)`` for ``n_vars`` variables.
    """
    h_t = min(conditional_entropy_bits + margin_bits, 1.0 - 1e-9)
    best: tuple[int, tuple[float, int, float]] | None = None
    for p in PROFILES:
        m = _threshold_checks(h_t, p, unit)
        if best is None or m < best[0]:
            best = (m, p)
    assert best is not None
    return max(1, math.ceil(best[0] / unit * n_vars)), best[1]


def level_channel_samples(
    q: SliceQuantiser, *, snr: float, level: int, size: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Samples of level ``i``'s LLR seen through the all-zero word: ``L_i·(1 − 2 b_i)``.

    Simulated ``x ~ N(0, snr)``, ``y = x + z`` with the true lower levels known. Syndrome
    decoding of ``b`` with LLRs ``L`` behaves as decoding the all-zero word with ``L·(1 − 2b)``
    (BP commutes with the coset shift), so these samples are the channel for density evolution.
    """
    x = rng.standard_normal(size) * math.sqrt(snr)
    y = x + rng.standard_normal(size)
    sy = math.sqrt(1.0 + snr)
    lv = q.level_bits(y, y_std=sy)
    lp = interval_log_probs(x, boundaries=q.boundaries(y_std=sy), gain=1.0, noise_variance=1.0)
    llr = level_llr(lp, quantiser=q, level=level, lower_bits=lv[:level] if level else None)
    return np.asarray(llr * (1.0 - 2.0 * lv[level]))


def density_evolution_converges(
    profile: tuple[float, int, float],
    *,
    check_fraction: float,
    channel: NDArray[np.float64],
    rng: np.random.Generator,
    population: int = 20_000,
    max_iterations: int = 300,
    target_entropy_bits: float = 1e-5,
) -> bool:
    """Monte-Carlo density evolution of a level code on the level's own channel.

    Population dynamics (Richardson & Urbanke, *Modern Coding Theory* §4.5, as
    :func:`cvqkd.reconciliation.met.population_de_converges` but with the channel LLRs drawn
    from ``channel`` — :func:`level_channel_samples` — instead of a Gaussian): variable
    messages = channel sample + ``d − 1`` check messages, check messages = ``2 atanh ∏ tanh``
    over ``d_c − 1`` variable messages, degrees drawn with their edge-perspective weights.
    Converged when the mean entropy ``E[log2(1 + e^{−v})]`` of the variable messages falls
    below ``target_entropy_bits``; not converged when it stops falling for 30 iterations.
    """
    unit = 10_000
    m = max(1, min(unit - 1, round(check_fraction * unit)))
    vc = _var_counts(unit, m, profile)
    edges = sum(d * c for d, c in vc)
    cd = _check_degrees(edges, m)
    vdeg = np.array([d for d, _ in vc])
    vw = np.array([d * c for d, c in vc], dtype=np.float64) / edges
    cdeg = np.array([d for d, _ in cd])
    cw = np.array([d * c for d, c in cd], dtype=np.float64) / edges
    p = population
    cv = np.zeros(p)
    best = math.inf
    stall = 0
    for _ in range(max_iterations):
        kind = rng.choice(vdeg.size, size=p, p=vw)
        v = channel[rng.integers(0, channel.size, size=p)].copy()
        for j, d in enumerate(vdeg.tolist()):
            idx = np.flatnonzero(kind == j)
            if idx.size and d > 1:
                v[idx] += cv[rng.integers(0, p, size=(idx.size, d - 1))].sum(axis=1)
        ent = float(np.mean(np.logaddexp(0.0, -v)) / _LN2)
        if ent < target_entropy_bits:
            return True
        if ent < best * (1.0 - 1e-3):
            best, stall = ent, 0
        else:
            stall += 1
            if stall >= 30:
                return False
        th = np.tanh(np.clip(v, -60.0, 60.0) / 2.0)
        kind = rng.choice(cdeg.size, size=p, p=cw)
        out = np.empty(p)
        for j, d in enumerate(cdeg.tolist()):
            idx = np.flatnonzero(kind == j)
            if idx.size:
                prod = th[rng.integers(0, p, size=(idx.size, d - 1))].prod(axis=1)
                out[idx] = 2.0 * np.arctanh(np.clip(prod, -1 + 1e-15, 1 - 1e-15))
        cv = out
    return False


def plan_level_code_de(
    q: SliceQuantiser,
    *,
    snr: float,
    level: int,
    margin_bits: float,
    n_vars: int,
    seed: int = 0,
    resolution: float = 0.002,
) -> tuple[int, tuple[float, int, float]]:
    """Like :func:`plan_level_code`, but with density evolution on the level's true channel.

    For each profile, bisection of the check fraction between ``h_i`` and the EXIT plan + 0.03
    to ``resolution`` with :func:`density_evolution_converges` (seeded: the plan is
    reproducible); the profile needing the fewest checks wins; ``margin_bits`` is added to its
    threshold fraction (finite length). Slow: ~10 s per profile and level.
    """
    rng = np.random.default_rng([seed, level, round(1000 * snr)])
    channel = level_channel_samples(q, snr=snr, level=level, size=200_000, rng=rng)
    h = level_information(q, snr=snr).level_conditional_entropy_bits[level]
    best: tuple[float, tuple[float, int, float]] | None = None
    for p in PROFILES:
        hi = min(1.0 - 1e-4, _threshold_checks(min(h, 1 - 1e-9), p, 2000) / 2000 + 0.03)
        lo = h
        if not density_evolution_converges(
            p, check_fraction=hi, channel=channel, rng=np.random.default_rng([seed, level, 1])
        ):
            continue
        while hi - lo > resolution:
            mid = 0.5 * (lo + hi)
            if density_evolution_converges(
                p, check_fraction=mid, channel=channel, rng=np.random.default_rng([seed, level, 1])
            ):
                hi = mid
            else:
                lo = mid
        if best is None or hi < best[0]:
            best = (hi, p)
    if best is None:
        return n_vars, PROFILES[0]
    return min(n_vars, math.ceil((best[0] + margin_bits) * n_vars)), best[1]


def level_code(
    *, n_vars: int, n_checks: int, profile: tuple[float, int, float], seed: int
) -> LdpcCode:
    """The LDPC code of one level: a random code of the profile, reproducible from its arguments.

    Sockets matched by a seeded permutation (``rng = default_rng([seed, n, m])``); multi-edges,
    4-cycles and cycles among degree-2 variables removed by degree-preserving swaps
    (:func:`cvqkd.reconciliation.met.construct`), except above
    :data:`MAX_CYCLE_FREE_CHECK_DEGREE`, where only multi-edges are removed.

    >>> code = level_code(n_vars=2000, n_checks=500, profile=(0.4, 8, 0.12), seed=1)
    >>> code.n_vars, code.n_checks, round(code.rate, 3)
    (2000, 500, 0.75)
    """
    from cvqkd.reconciliation.met import _degree_two_cycles, construct

    if not 0 < n_checks < n_vars:
        raise ConfigError(f"a level code needs 0 < n_checks < n_vars, got {n_checks}, {n_vars}")
    rng = np.random.default_rng([seed, n_vars, n_checks])
    vc = _var_counts(n_vars, n_checks, profile)
    edges = sum(d * c for d, c in vc)
    name = f"slice-n{n_vars}-m{n_checks}"
    if -(-edges // n_checks) <= MAX_CYCLE_FREE_CHECK_DEGREE:
        ens = _ensemble(n_vars, n_checks, profile)
        try:
            code, rep = construct(ens, n_vars=n_vars, rng=rng, max_rounds=30)  # type: ignore[arg-type]
        except DataFormatError:  # construct's last swaps re-created a multi-edge
            code, rep = None, None
        if rep is not None and not (rep.multi_edges or rep.four_cycles or rep.precode_cycles):
            assert code is not None
            return LdpcCode.from_edges(
                code.n_vars, code.n_checks, code.edge_checks, code.check_vars, name=name
            )
    # dense checks (or a 4-cycle-free graph not found): remove multi-edges and cycles of
    # degree-2 variables only, by degree-preserving swaps of socket ends
    var_of = np.repeat(np.arange(n_vars, dtype=np.int64), [d for d, c in vc for _ in range(c)])
    cd = _check_degrees(edges, n_checks)
    check_of = np.repeat(np.arange(n_checks, dtype=np.int64), [d for d, c in cd for _ in range(c)])
    var_at = var_of[rng.permutation(edges)]
    deg = np.repeat([d for d, _ in vc], [c for _, c in vc])
    for _ in range(200):
        key = check_of * n_vars + var_at
        order = np.argsort(key, kind="stable")
        dup = order[1:][key[order][1:] == key[order][:-1]]
        two = np.flatnonzero(deg[var_at] == 2)
        cyc = _degree_two_cycles(two, var_at, check_of, n_checks, rng)
        bad = np.unique(np.concatenate([dup, cyc]))
        if bad.size == 0:
            break
        dst = rng.integers(0, edges, size=bad.size)
        for a, b in zip(bad.tolist(), dst.tolist(), strict=True):
            var_at[a], var_at[b] = var_at[b], var_at[a]
    else:
        raise ConfigError(f"{name}: could not remove multi-edges and degree-2 cycles")
    return LdpcCode.from_edges(n_vars, n_checks, check_of, var_at, name=name)


# ----------------------------------------------------------------------------- design
@dataclass(frozen=True, eq=False)
class SliceDesign:
    """Everything both sides must agree on: quantiser, frame length, per-level syndrome sizes.

    Build with :func:`design_slices`. ``level_checks[i]`` is the syndrome length of level
    ``i`` (0 for a disclosed level); ``level_profiles[i]`` its code profile; the codes are
    rebuilt identically from ``(seed, frame_length, level_checks[i], level_profiles[i])``
    (:func:`level_code`). ``info`` holds the level entropies at the design SNR.
    """

    quantiser: SliceQuantiser
    snr: float
    frame_length: int
    level_checks: tuple[int, ...]
    level_profiles: tuple[tuple[float, int, float] | None, ...]
    seed: int
    info: LevelInformation
    codes: tuple[LdpcCode | None, ...]

    @property
    def disclosed_levels(self) -> tuple[int, ...]:
        """Levels sent in clear."""
        return tuple(i for i, m in enumerate(self.level_checks) if m == 0)

    @property
    def coded_levels(self) -> tuple[int, ...]:
        """Levels corrected with an LDPC syndrome (their bits are the key)."""
        return tuple(i for i, m in enumerate(self.level_checks) if m > 0)

    @property
    def disclosed_bits_per_symbol(self) -> float:
        """Public bits per sample: one per disclosed level plus the syndromes (no tag)."""
        n = self.frame_length
        return len(self.disclosed_levels) + sum(self.level_checks) / n

    @property
    def key_entropy_bits_per_symbol(self) -> float:
        """``H(coded levels | disclosed levels)`` = ``Σ_coded H(B_i | B_<i)`` when the
        disclosed levels are the lowest ones (as :func:`design_slices` makes them)."""
        return float(sum(self.info.level_entropy_bits[i] for i in self.coded_levels))

    @property
    def predicted_beta(self) -> float:
        """``(H(Q) − disclosed)/I(X;Y)`` at the design SNR, tag bits excluded."""
        return (
            self.info.quantiser_entropy_bits - self.disclosed_bits_per_symbol
        ) / self.info.mutual_information_bits

    @property
    def fingerprint(self) -> tuple[object, ...]:
        """What Bob's message carries so that Alice can check she uses the same design."""
        return (
            self.quantiser.bits,
            self.quantiser.labelling,
            tuple(round(float(t), 12) for t in self.quantiser.thresholds),
            self.frame_length,
            self.level_checks,
            self.level_profiles,
            self.seed,
        )


def design_slices(
    *,
    snr: float,
    bits: int = 4,
    frame_length: int,
    quantiser: SliceQuantiser | Literal["optimised", "equiprobable"] = "optimised",
    labelling: Labelling = "natural",
    margin_bits: float | tuple[float, ...] | None = None,
    disclose_below_bits: float = 0.05,
    seed: int = 0,
    planner: Literal["exit", "density-evolution"] = "density-evolution",
) -> SliceDesign:
    """Design sliced reconciliation for ``snr`` (linear, per real dimension).

    Level ``i`` (lowest first) is disclosed while ``1 − H(B_i | X, B_<i) < disclose_below_bits``
    (a code there would save less than its gap) or while its planned code would save less than
    ``disclose_below_bits / 5`` bit per sample; the others get a code planned by

    * ``planner="density-evolution"`` (default; about a minute per coded level):
      :func:`plan_level_code_de`, threshold on the level's own channel + ``margin_bits``
      (default 0.01: FER 0/20 at n = 10^5 for SNR 1, 3, 10, 30 — docs/slice-reconciliation.md);
    * ``planner="exit"`` (seconds): :func:`plan_level_code`, the BIAWGN EXIT proxy at
      ``h_i + margin_bits`` (default 0.015, which gave FER 3/20 at SNR 3: use a larger margin).

    ``margin_bits`` is one value or one per level. Codes are built here (seconds at
    ``frame_length = 10^5``).

    >>> d = design_slices(snr=3.0, bits=4, frame_length=4000, seed=1, planner="exit")
    >>> d.disclosed_levels, d.coded_levels
    ((0, 1), (2, 3))
    """
    if isinstance(quantiser, SliceQuantiser):
        q = quantiser
    elif quantiser == "optimised":
        q = optimised_quantiser(bits=bits, snr=snr, labelling=labelling)
    elif quantiser == "equiprobable":
        q = equiprobable_quantiser(bits=bits, labelling=labelling)
    else:
        raise ConfigError(f"quantiser must be 'optimised' or 'equiprobable', got {quantiser!r}")
    if frame_length < 100:
        raise ConfigError(f"frame_length must be at least 100 samples, got {frame_length}")
    info = level_information(q, snr=snr)
    if margin_bits is None:
        margin_bits = 0.01 if planner == "density-evolution" else 0.015
    margins = (
        tuple(margin_bits) if isinstance(margin_bits, tuple) else (float(margin_bits),) * q.bits
    )
    if len(margins) != q.bits:
        raise ConfigError(f"margin_bits has {len(margins)} entries for {q.bits} levels")
    checks: list[int] = []
    profiles: list[tuple[float, int, float] | None] = []
    codes: list[LdpcCode | None] = []
    disclosing = True
    for i, h in enumerate(info.level_conditional_entropy_bits):
        if disclosing and 1.0 - h < disclose_below_bits:
            checks.append(0)
            profiles.append(None)
            codes.append(None)
            continue
        if planner == "exit":
            m, p = plan_level_code(
                conditional_entropy_bits=h, margin_bits=margins[i], n_vars=frame_length
            )
        elif planner == "density-evolution" and 1.0 - h >= disclose_below_bits:
            m, p = plan_level_code_de(
                q, snr=snr, level=i, margin_bits=margins[i], n_vars=frame_length, seed=seed
            )
        elif planner == "density-evolution":
            m, p = frame_length, PROFILES[0]
        else:
            raise ConfigError(f"planner must be 'exit' or 'density-evolution', got {planner!r}")
        if disclosing and m >= (1.0 - disclose_below_bits / 5) * frame_length:
            checks.append(0)  # the code would save (almost) nothing over disclosure
            profiles.append(None)
            codes.append(None)
            continue
        disclosing = False
        m = min(m, frame_length - 1)
        checks.append(m)
        profiles.append(p)
        codes.append(level_code(n_vars=frame_length, n_checks=m, profile=p, seed=seed + i))
    return SliceDesign(
        quantiser=q,
        snr=float(snr),
        frame_length=int(frame_length),
        level_checks=tuple(checks),
        level_profiles=tuple(profiles),
        seed=int(seed),
        info=info,
        codes=tuple(codes),
    )


# ----------------------------------------------------------------------------- the exchange
@dataclass(frozen=True)
class SliceBobMessage:
    """What Bob sends Alice (all public), for ``frames`` frames.

    ``fingerprint`` (:attr:`SliceDesign.fingerprint`), ``y_std`` (the σ_Y that scales the
    boundaries), ``disclosed`` ``uint8[frames, #disclosed, n]`` (the disclosed levels' bits),
    ``syndromes`` (per coded level, ``uint8[frames, m_i]``), ``tags`` (one per frame, over the
    frame's key bits).
    """

    fingerprint: tuple[object, ...]
    y_std: float
    disclosed: NDArray[np.uint8]
    syndromes: tuple[NDArray[np.uint8], ...]
    tags: tuple[FrameTag, ...]

    @property
    def frames(self) -> int:
        return len(self.tags)

    @property
    def public_bits_per_frame(self) -> int:
        """Disclosed level bits + syndrome bits + tag bits of one frame."""
        tag = self.tags[0].prime_bits if self.tags else 0
        return (
            int(self.disclosed[0].size if self.frames else 0)
            + sum(int(s.shape[1]) for s in self.syndromes)
            + tag
        )


@dataclass(frozen=True)
class SliceStats(FrameCounts):
    """:class:`~cvqkd.reconciliation.reconcile.FrameCounts` of the sliced scheme.

    ``leaked_bits``: syndrome and tag bits of the kept frames (what privacy amplification
    subtracts from the key bits; the disclosed levels are not part of the key).
    ``beta = (H(Q) − disclosed − tag/n)/I(X;Y)`` at the measured ``snr``; ``ideal_beta`` the
    quantiser's ``I(X;Q)/I(X;Y)`` at the design SNR.
    """

    disclosed_bits_per_symbol: float
    snr: float
    beta: float
    ideal_beta: float
    mean_iterations: tuple[float, ...]
    epsilon_cor: float


@dataclass(frozen=True)
class SliceAliceResult:
    """Alice's output: key bits (``[kept frames, #coded·n]``), ``frame_ok``, counts."""

    key_bits: NDArray[np.uint8]
    frame_ok: NDArray[np.bool_]
    stats: SliceStats


def _frames(samples: ArrayLike, n: int, what: str) -> NDArray[np.float64]:
    s = np.asarray(samples, dtype=np.float64).ravel()
    frames = s.size // n
    if frames == 0:
        raise ConfigError(f"{what}: {s.size} samples are fewer than one frame ({n})")
    return s[: frames * n].reshape(frames, n)


def slice_reconcile_bob(
    y: ArrayLike,
    *,
    design: SliceDesign,
    rng: np.random.Generator,
    y_std: float | None = None,
    prime_bits: int = 61,
) -> tuple[NDArray[np.uint8], SliceBobMessage]:
    """Bob: quantise, disclose the low levels, syndromes of the coded ones, a tag per frame.

    ``y`` real samples (SNU); trailing samples that do not fill a frame are unused.
    ``y_std`` (σ_Y, SNU) scales the quantiser; default the RMS of the samples used (one
    public number). Returns ``(key_bits [frames, #coded·n], message)``; keep the key private
    until ``frame_ok`` comes back, then :func:`~cvqkd.reconciliation.reconcile.keep_frames`.
    """
    n = design.frame_length
    yf = _frames(y, n, "y")
    frames = yf.shape[0]
    sy = float(np.sqrt(np.mean(yf**2))) if y_std is None else float(y_std)
    if not sy > 0:
        raise ConfigError(f"y_std must be > 0, got {sy}")
    lv = design.quantiser.level_bits(yf, y_std=sy)  # [m, frames, n]
    coded = design.coded_levels
    key = np.ascontiguousarray(np.transpose(lv[list(coded)], (1, 0, 2)).reshape(frames, -1))
    syndromes = []
    for i in coded:
        code = design.codes[i]
        assert code is not None
        syndromes.append(code.syndrome(lv[i]))
    disclosed = np.ascontiguousarray(np.transpose(lv[list(design.disclosed_levels)], (1, 0, 2)))
    tags = tuple(make_tag(key[f], rng=rng, prime_bits=prime_bits) for f in range(frames))
    msg = SliceBobMessage(
        fingerprint=design.fingerprint,
        y_std=sy,
        disclosed=disclosed.astype(np.uint8),
        syndromes=tuple(syndromes),
        tags=tags,
    )
    return key.astype(np.uint8), msg


def slice_reconcile_alice(
    x: ArrayLike,
    message: SliceBobMessage,
    *,
    design: SliceDesign,
    gain: float,
    noise_variance: float,
    max_iterations: int = 300,
    backend: Backend = "auto",
    batch_frames: int = 4,
    signal_variance: float | None = None,
) -> SliceAliceResult:
    """Alice: multistage decoding, level by level, then the hash check of each frame.

    ``gain``/``noise_variance`` describe ``y = g·x + z`` (SNU). Level ``i``'s LLRs use the
    disclosed and already decoded lower levels (:func:`level_llr`); a frame stops at its
    first level that does not converge. ``signal_variance`` (Σ of x) sets the SNR for β,
    default the mean of x² over the frames used.
    """
    if tuple(message.fingerprint) != design.fingerprint:
        raise DataFormatError("Bob's message was made with a different slice design")
    n = design.frame_length
    xf = _frames(x, n, "x")
    frames = xf.shape[0]
    if message.frames != frames:
        raise DataFormatError(f"Bob's message covers {message.frames} frames, x has {frames}")
    q = design.quantiser
    bnd = q.boundaries(y_std=message.y_std)
    coded = design.coded_levels
    disclosed = design.disclosed_levels
    if message.disclosed.shape != (frames, len(disclosed), n):
        raise DataFormatError(
            f"disclosed levels have shape {message.disclosed.shape}, expected "
            f"{(frames, len(disclosed), n)}"
        )
    if len(message.syndromes) != len(coded) or any(
        s.shape != (frames, design.level_checks[i])
        for s, i in zip(message.syndromes, coded, strict=False)
    ):
        raise DataFormatError("syndrome sizes do not match the slice design")
    if not (math.isfinite(message.y_std) and message.y_std > 0):
        raise DataFormatError(f"y_std must be a positive number, got {message.y_std}")
    bits = np.zeros((frames, q.bits, n), dtype=np.uint8)
    bits[:, list(disclosed)] = message.disclosed
    alive = np.ones(frames, dtype=bool)
    iters = np.zeros((len(coded), frames), dtype=np.int64)
    step = max(1, batch_frames)
    for f0 in range(0, frames, step):
        f1 = min(frames, f0 + step)
        logp = interval_log_probs(
            xf[f0:f1], boundaries=bnd, gain=gain, noise_variance=noise_variance
        )
        for j, lvl in enumerate(coded):
            idx = np.flatnonzero(alive[f0:f1])
            if idx.size == 0:
                break
            lower = np.transpose(bits[f0:f1][idx, :lvl], (1, 0, 2)) if lvl else None
            llr = level_llr(logp[idx], quantiser=q, level=lvl, lower_bits=lower)
            code = design.codes[lvl]
            assert code is not None
            res = decode(
                code,
                llr,
                message.syndromes[j][f0:f1][idx],
                max_iterations=max_iterations,
                backend=backend,
            )
            bits[f0 + idx, lvl] = res.bits
            iters[j, f0 + idx] = res.iterations
            alive[f0 + idx[~np.asarray(res.converged, dtype=bool)]] = False
    converged = alive.copy()
    key = np.ascontiguousarray(bits[:, list(coded)].reshape(frames, -1))
    hash_ok = np.array(
        [bool(converged[f]) and verify(key[f], message.tags[f]) for f in range(frames)], bool
    )
    ok = converged & hash_ok
    tag_bits = message.tags[0].prime_bits if message.tags else 0
    sigma2 = float(np.mean(xf**2)) if signal_variance is None else float(signal_variance)
    snr = gain**2 * sigma2 / noise_variance
    n_ok = int(ok.sum())
    disclosed_per = design.disclosed_bits_per_symbol + tag_bits / n
    stats = SliceStats(
        frames_tried=frames,
        frames_failed=frames - n_ok,
        frames_unconverged=int((~converged).sum()),
        frames_hash_failed=int((converged & ~hash_ok).sum()),
        key_bits=n_ok * key.shape[1],
        leaked_bits=n_ok * (sum(design.level_checks) + tag_bits),
        disclosed_bits_per_symbol=disclosed_per,
        snr=snr,
        beta=(design.info.quantiser_entropy_bits - disclosed_per) / (0.5 * math.log2(1.0 + snr)),
        ideal_beta=design.info.ideal_beta,
        mean_iterations=tuple(float(v) for v in iters.mean(axis=1)),
        epsilon_cor=collision_probability(n_bits=key.shape[1], prime_bits=tag_bits or 61),
    )
    return SliceAliceResult(key_bits=key[ok], frame_ok=ok, stats=stats)
