"""Parameter estimation from a disclosed random subset, with confidence intervals and gates.

Works the same on simulated and measured data (:class:`cvqkd.dataset.TransmissionBlock`, a
stream of chunks, or a dataset file). Everything is accumulated as sufficient statistics
(counts and sums of moments), so 10^9 symbols stream in bounded memory and a streamed estimate
equals the one-shot estimate up to floating-point summation order.

Estimators (raw ADC units; x = Alice's reference, y = Bob's sample, m real pairs; Leverrier,
Grosshans, Grangier, PRA 81, 062343 (2010), PHYSICS.md):

- shot-noise variance S = ⟨s²⟩ on signal-blocked slots, electronic variance E = ⟨e²⟩ on
  LO-blocked slots; the shot-noise unit is U = S − E and v_el = E/U (quantisation noise of the
  ADC is part of v_el, as on a real receiver).
- t̂ = Σxy/Σx², σ̂² = Σ(y − t̂x)²/(m − 1) (m − 1: unbiased; Leverrier divides by m).
- ηT = κ t̂²/U with κ = 1 (homodyne) or 2 (heterodyne, per-quadrature gain √(ηT/2)); T = ηT/η.
- ξ̂ (input-referred) = (σ̂² − S)/t̂²: σ̂²/U − (1 + v_el) is ηTξ/κ in SNU, and t̂²/U is ηT/κ.
- SNR = t̂² V_x / σ̂² (per real dimension; V_x = Σx²/m is Alice's realised V_A, whose spread
  around the nominal V_A is part of the SNR's interval).

Uncertainties are first-order (delta method) with Var(t̂) = σ̂²/Σx², Var(σ̂²) = (μ₄ − σ⁴)/m,
Var(S) = (⟨s⁴⟩ − S²)/n_s (likewise E); intervals are value ± z·sd with z = √2 erfinv(1 − ε_PE)
(two-sided). Unlike Leverrier 2010, the shot-noise calibration's own uncertainty is included:
at long distance it dominates ξ̂'s interval. Worst-case values for the finite-size and
composable key rates: t_min = t̂ − z sd(t̂), U_max = U + z sd(U), T_min = κ t_min²/(η U_max),
ξ_max = (σ̂² − S + z sd(σ̂² − S))/t_min².

Example:
    >>> from cvqkd.sim import ChannelParameters, simulate_block
    >>> ch = ChannelParameters(transmittance=0.5, detector_efficiency=0.6,
    ...     electronic_noise_snu=0.05, detection="homodyne", excess_noise_sources_snu={},
    ...     modulation_variance_snu=4.0, symbol_rate_hz=1e8)
    >>> b = simulate_block(ch, n_symbols=200_000, rng=np.random.default_rng(2))
    >>> est = estimate(b, disclosed_fraction=0.5, epsilon_pe=1e-3, rng=np.random.default_rng(3))
    >>> est.transmittance.low < 0.5 < est.transmittance.high
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import erfcinv

from cvqkd.dataset import (
    SLOT_DATA,
    SLOT_ELECTRONIC,
    SLOT_SHOT_NOISE,
    BlockMetadata,
    TransmissionBlock,
    iter_dataset,
)
from cvqkd.errors import ConfigError, DataFormatError, SecurityAbort


def z_score(epsilon: float) -> float:
    """Two-sided normal quantile z = √2 erfinv(1 − ε) (PHYSICS.md; ε = 0.05 → 1.95996).

    Computed as √2 erfcinv(ε), which keeps full precision for tiny ε (1 − 1e-10 rounds).
    """
    if not 0.0 < epsilon < 1.0:
        raise ConfigError(f"epsilon must be in (0, 1), got {epsilon}")
    return float(math.sqrt(2.0) * erfcinv(epsilon))


@dataclass(frozen=True)
class Interval:
    """An estimate with its standard error and the interval value ± z·std."""

    value: float
    std: float
    low: float
    high: float

    @classmethod
    def of(cls, value: float, std: float, z: float) -> Interval:
        """Symmetric interval ``value ± z·std``."""
        return cls(float(value), float(std), float(value - z * std), float(value + z * std))

    def contains(self, x: float) -> bool:
        """True if ``low <= x <= high``."""
        return self.low <= x <= self.high


@dataclass(frozen=True)
class GateResult:
    """Outcome of the sanity gates: ``passed`` and one clear reason per failed gate."""

    passed: bool
    reasons: tuple[str, ...] = ()

    def raise_if_failed(self) -> None:
        """Raise :class:`cvqkd.errors.SecurityAbort` naming every failed gate."""
        if not self.passed:
            raise SecurityAbort("parameter estimation gate failed: " + "; ".join(self.reasons))


@dataclass(frozen=True)
class Estimates:
    """Parameter estimates of one block (SNU, input-referred ξ) with intervals at ε_PE.

    ``worst_case_*`` include the shot-noise calibration's uncertainty; ``lgg_worst_case_*`` are
    Leverrier–Grosshans–Grangier 2010 as stated (SNU taken as exact), computed by
    :func:`cvqkd.keyrate.finite_size.worst_case_parameters`.
    ``disclosure_key`` and ``disclosed_fraction`` identify the disclosed slots (public);
    :func:`key_samples` returns the others for reconciliation.
    """

    detection: str
    epsilon_pe: float
    z: float
    disclosed_fraction: float
    disclosure_key: int
    n_slots: int
    n_data_symbols: int
    n_disclosed_symbols: int
    n_key_symbols: int
    n_pairs: int
    n_shot_noise_records: int
    n_electronic_noise_records: int
    detector_efficiency: float
    modulation_variance_snu: float
    shot_noise_raw: Interval
    electronic_noise_snu: Interval
    residual_variance_snu: Interval
    eta_transmittance: Interval
    transmittance: Interval
    excess_noise_snu: Interval
    snr: Interval
    worst_case_transmittance: float
    worst_case_excess_noise_snu: float
    lgg_worst_case_transmittance: float
    lgg_worst_case_excess_noise_snu: float
    residual_mean_z: float
    shot_noise_mean_z: float
    excess_kurtosis: float
    excess_kurtosis_z: float
    clip_fraction: float
    shot_noise_drift_fraction: float
    shot_noise_drift_z: float
    residual_drift_fraction: float
    residual_drift_z: float
    gates: GateResult = field(default_factory=lambda: GateResult(True))

    @property
    def t_hat_snu(self) -> float:
        """t̂ in SNU, √(κηT) with κ = 1 (homodyne) or ½ (heterodyne), for the LGG formulas."""
        kappa = 0.5 if self.detection == "heterodyne" else 1.0
        return math.sqrt(kappa * self.eta_transmittance.value)

    @property
    def sigma_sq_hat_snu(self) -> float:
        """σ̂² in SNU (= 1 + v_el + κηTξ), for the LGG formulas."""
        return self.residual_variance_snu.value

    def require_passed(self) -> None:
        """Raise :class:`cvqkd.errors.SecurityAbort` if a gate failed."""
        self.gates.raise_if_failed()


def enforce_gates(estimates: Estimates) -> Estimates:
    """Return ``estimates`` if every gate passed, else raise :class:`SecurityAbort`."""
    estimates.require_passed()
    return estimates


# ------------------------------------------------------------------ disclosure (public choice)

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_G = np.uint64(0x9E3779B97F4A7C15)


def _uniform_by_index(index: NDArray[np.int64], key: int) -> NDArray[np.float64]:
    """SplitMix64 hash of (key, slot index) → uniform [0, 1): chunking-invariant randomness."""
    with np.errstate(over="ignore"):
        z = index.astype(np.uint64) * _G + np.uint64(key)
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)


#: Disclosure keys are uniform in ``[0, DISCLOSURE_KEY_BOUND)``.
DISCLOSURE_KEY_BOUND = 2**63 - 1


def disclosed_slots(
    *, start: int, slot_kind: NDArray[np.uint8], key: int, fraction: float
) -> NDArray[np.bool_]:
    """Which of the slots ``start, start + 1, …`` (kinds ``slot_kind``) are disclosed.

    A data slot is disclosed when the SplitMix64 hash of (``key``, slot index) is below
    ``fraction``; the choice depends only on public values, so Alice and Bob (and any chunking
    of a long stream) compute the same mask. ``key`` must be unpredictable to Eve until it is
    announced: draw it from :class:`cvqkd.randomness.SecretRandom`.

    >>> kinds = np.full(8, SLOT_DATA, dtype=np.uint8)
    >>> disclosed_slots(start=0, slot_kind=kinds, key=1, fraction=1.0).all()
    np.True_
    """
    idx = int(start) + np.arange(np.asarray(slot_kind).size, dtype=np.int64)
    return (np.asarray(slot_kind) == SLOT_DATA) & (_uniform_by_index(idx, int(key)) < fraction)


def disclosed_mask(block: TransmissionBlock, *, key: int, fraction: float) -> NDArray[np.bool_]:
    """Data slots of ``block`` disclosed for estimation (each with probability ``fraction``)."""
    return disclosed_slots(start=block.start, slot_kind=block.slot_kind, key=key, fraction=fraction)


# ----------------------------------------------------------------------- pairing x with y


def _pairs(block: TransmissionBlock, mask: NDArray[np.bool_]) -> tuple[NDArray[np.float64], ...]:
    """(x, y, u): Alice's reference, Bob's raw sample, position in [0, 1], as real pairs."""
    a = block.alice_symbols[mask].astype(np.complex128)
    psi = block.phase_estimate[mask].astype(np.float64)
    pos = (block.start + np.flatnonzero(mask)) / max(1, block.total_slots - 1)
    if block.metadata.detection == "heterodyne":
        s = block.bob_samples[mask].astype(np.float64)
        yc = (s[:, 0] + 1j * s[:, 1]) * np.exp(1j * psi)
        return (
            np.concatenate((a.real, a.imag)),
            np.concatenate((yc.real, yc.imag)),
            np.concatenate((pos, pos)),
        )
    assert block.quadrature is not None
    theta = block.quadrature[mask] * (np.pi / 2.0) + psi
    x = a.real * np.cos(theta) + a.imag * np.sin(theta)
    return x, block.bob_samples[mask].astype(np.float64), pos


def _reference_and_bob(
    block: TransmissionBlock, mask: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a = block.alice_symbols[mask].astype(np.complex128)
    psi = block.phase_estimate[mask].astype(np.float64)
    if block.metadata.detection == "heterodyne":
        s = block.bob_samples[mask].astype(np.float64)
        yc = (s[:, 0] + 1j * s[:, 1]) * np.exp(1j * psi)
        return np.stack((a.real, a.imag), axis=1), np.stack((yc.real, yc.imag), axis=1)
    assert block.quadrature is not None
    theta = block.quadrature[mask] * (np.pi / 2.0) + psi
    return a.real * np.cos(theta) + a.imag * np.sin(theta), block.bob_samples[mask].astype(
        np.float64
    )


# --------------------------------------------------------------------- sufficient statistics


class _Accumulator:
    """Sums over chunks: data moments Σx^i y^j (i + j ≤ 4), calibration moments, trends."""

    def __init__(self, key: int, fraction: float) -> None:
        self.key, self.fraction = key, fraction
        self.meta: BlockMetadata | None = None
        self.n_slots = 0
        self.total_slots = 0
        self.n_data = 0
        self.n_disclosed = 0
        self.M = np.zeros((5, 5))  # M[i, j] = Σ x^i y^j
        self.U = np.zeros(5)  # Σu, Σu², Σu x², Σu xy, Σu y²
        self.cal = {SLOT_SHOT_NOISE: np.zeros(7), SLOT_ELECTRONIC: np.zeros(7)}
        self.n_clip = 0
        self.n_clip_checked = 0

    def add(self, block: TransmissionBlock) -> None:
        if self.meta is None:
            self.meta = block.metadata
            self.total_slots = block.total_slots
        elif block.metadata != self.meta:
            raise DataFormatError("chunks of one block must share their metadata")
        if block.start != self.n_slots:
            raise DataFormatError(
                f"chunk starts at slot {block.start}, expected {self.n_slots} (chunks out of order)"
            )
        self.n_slots += block.n_slots
        self.n_data += block.count(SLOT_DATA)
        mask = disclosed_mask(block, key=self.key, fraction=self.fraction)
        self.n_disclosed += int(np.count_nonzero(mask))
        x, y, u = _pairs(block, mask)
        X = _powers(x)
        Y = _powers(y)
        self.M += X @ Y.T  # M[i, j] += Σ x^i y^j (the i + j > 4 corner is unused)
        self.U += (u.sum(), u @ u, u @ X[2], u @ (x * y), u @ Y[2])
        rails = block.metadata.adc_rails
        if rails is not None:
            raw = block.bob_samples[mask]
            self.n_clip += int(np.count_nonzero((raw <= rails[0]) | (raw >= rails[1])))
            self.n_clip_checked += raw.size
        for kind, acc in self.cal.items():
            sel = block.slot_kind == kind
            v = block.bob_samples[sel].astype(np.float64)
            pos = (block.start + np.flatnonzero(sel)) / max(1, block.total_slots - 1)
            if v.ndim == 2:
                pos = np.repeat(pos, 2)
                v = v.reshape(-1)
            v2 = v * v
            acc += (v.size, v.sum(), v2.sum(), (v2 * v2).sum(), pos.sum(), pos @ pos, pos @ v2)
            if rails is not None:
                self.n_clip += int(np.count_nonzero((v <= rails[0]) | (v >= rails[1])))
                self.n_clip_checked += v.size


def _powers(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows v⁰ … v⁴."""
    out = np.empty((5, v.size))
    out[0] = 1.0
    out[1] = v
    np.multiply(v, v, out=out[2])
    np.multiply(out[2], v, out=out[3])
    np.multiply(out[2], out[2], out=out[4])
    return out


def _trend(
    n: float, su: float, suu: float, suv: float, sv: float, var_v: float
) -> tuple[float, float]:
    """Slope of v on u (least squares) and its standard error, from sums."""
    sxx = suu - su * su / n
    if sxx <= 0 or n < 3:
        return 0.0, math.inf
    slope = (suv - su * sv / n) / sxx
    return slope, math.sqrt(max(var_v, 0.0) / sxx)


def _finalise(
    acc: _Accumulator, *, epsilon_pe: float, gate_epsilon: float, max_clip_fraction: float
) -> Estimates:
    meta = acc.meta
    if meta is None:
        raise DataFormatError("no data to estimate from (empty block)")
    z = z_score(epsilon_pe)
    zg = z_score(gate_epsilon)
    kappa = 2.0 if meta.detection == "heterodyne" else 1.0
    eta = meta.detector_efficiency
    cs, ce = acc.cal[SLOT_SHOT_NOISE], acc.cal[SLOT_ELECTRONIC]
    if cs[0] < 2:
        raise DataFormatError("the block holds fewer than 2 shot-noise calibration records")
    if ce[0] < 2:
        raise DataFormatError("the block holds fewer than 2 electronic-noise calibration records")
    M = acc.M
    m = M[0, 0]
    if m < 3:
        raise DataFormatError(
            f"only {int(m)} disclosed data values: raise --disclosed-fraction or the block size"
        )
    # calibration
    S, var_s = cs[2] / cs[0], (cs[3] / cs[0] - (cs[2] / cs[0]) ** 2) / cs[0]
    E, var_e = ce[2] / ce[0], (ce[3] / ce[0] - (ce[2] / ce[0]) ** 2) / ce[0]
    U, var_u = S - E, var_s + var_e
    reasons: list[str] = []
    if U <= 0:
        reasons.append("shot-noise calibration variance is not above the electronic noise")
        U = math.nan
    # regression
    sxx, sxy, syy = M[2, 0], M[1, 1], M[0, 2]
    t = sxy / sxx
    rss = syy - 2 * t * sxy + t * t * sxx
    sig2 = rss / (m - 1)
    var_t = sig2 / sxx
    mt = -t
    er1 = (M[0, 1] + mt * M[1, 0]) / m
    er2 = rss / m
    er3 = (M[0, 3] + 3 * mt * M[1, 2] + 3 * mt**2 * M[2, 1] + mt**3 * M[3, 0]) / m
    er4 = (
        M[0, 4] + 4 * mt * M[1, 3] + 6 * mt**2 * M[2, 2] + 4 * mt**3 * M[3, 1] + mt**4 * M[4, 0]
    ) / m
    c2 = er2 - er1**2
    c4 = er4 - 4 * er1 * er3 + 6 * er1**2 * er2 - 3 * er1**4
    var_sig2 = max(c4 - c2 * c2, 0.0) / m
    kurt = c4 / (c2 * c2) - 3.0
    kurt_z = kurt / math.sqrt(24.0 / m)
    mean_z = er1 / math.sqrt(c2 / m)
    shot_mean_z = (cs[1] / cs[0]) / math.sqrt(S / cs[0])
    # physical parameters
    vel = E / U
    var_vel = (S * S * var_e + E * E * var_s) / U**4
    eta_t = kappa * t * t / U
    rel_eta_t = math.sqrt(4 * var_t / (t * t) + var_u / (U * U))
    xi = (sig2 - S) / (t * t)
    var_xi = (var_sig2 + var_s) / t**4 + (2 * xi / t) ** 2 * var_t
    vx = sxx / m
    snr = t * t * vx / sig2
    var_vx = max(M[4, 0] / m - vx * vx, 0.0) / m  # Alice's realised V_A vs the nominal one
    rel_snr = math.sqrt(4 * var_t / (t * t) + var_sig2 / sig2**2 + var_vx / (vx * vx))
    t_min = abs(t) - z * math.sqrt(var_t)
    if t_min > 0:
        wc_t = kappa * t_min**2 / (eta * (U + z * math.sqrt(var_u)))
        wc_xi = (sig2 - S + z * math.sqrt(var_sig2 + var_s)) / t_min**2
    else:
        wc_t, wc_xi = 0.0, math.inf
    # drifts (relative change over the whole block)
    sd_v2 = cs[3] / cs[0] - S * S
    b_s, sb_s = _trend(cs[0], cs[4], cs[5], cs[6], cs[2], sd_v2)
    su, suu, sux2, suxy, suy2 = acc.U
    sur2 = suy2 - 2 * t * suxy + t * t * sux2
    b_r, sb_r = _trend(m, su, suu, sur2, rss, er4 - er2 * er2)
    clip = acc.n_clip / acc.n_clip_checked if acc.n_clip_checked else 0.0
    # gates
    xi_upper = xi + zg * math.sqrt(var_xi)
    if xi_upper < 0:
        reasons.append(
            f"excess noise ξ̂ = {xi:.4g} SNU is significantly below zero (upper bound "
            f"{xi_upper:.4g} at ε = {gate_epsilon:g}): the shot-noise unit is likely biased"
        )
    if abs(mean_z) > zg:
        reasons.append(f"non-Gaussian data: residual mean is {mean_z:.1f} standard errors from 0")
    if abs(shot_mean_z) > zg:
        reasons.append(
            f"non-Gaussian calibration: shot-noise record mean is {shot_mean_z:.1f} standard "
            "errors from 0"
        )
    if abs(kurt_z) > zg:
        reasons.append(
            f"non-Gaussian data: residual excess kurtosis {kurt:.3g} ({kurt_z:.1f} standard "
            "errors from 0)"
        )
    if clip > max_clip_fraction:
        reasons.append(
            f"ADC clipping: {clip:.3g} of the samples sit at the rails "
            f"(limit {max_clip_fraction:g})"
        )
    if abs(b_s / sb_s) > zg:
        reasons.append(
            f"shot noise drifts: the shot-noise variance changes by {b_s / S:+.3g} (relative) "
            f"over the block ({b_s / sb_s:.1f} standard errors)"
        )
    if abs(b_r / sb_r) > zg:
        reasons.append(
            f"shot noise drifts between calibration and data: the residual variance changes by "
            f"{b_r / er2:+.3g} (relative) over the block ({b_r / sb_r:.1f} standard errors)"
        )
    n_pairs = int(m)
    lgg_t, lgg_xi = _lgg_worst_case(
        meta, t=t, sig2=sig2, U=U, vel=vel, m=m, vx=vx, epsilon_pe=epsilon_pe
    )
    return Estimates(
        detection=meta.detection,
        epsilon_pe=epsilon_pe,
        z=z,
        disclosed_fraction=acc.fraction,
        disclosure_key=acc.key,
        n_slots=acc.n_slots,
        n_data_symbols=acc.n_data,
        n_disclosed_symbols=acc.n_disclosed,
        n_key_symbols=acc.n_data - acc.n_disclosed,
        n_pairs=n_pairs,
        n_shot_noise_records=int(cs[0]),
        n_electronic_noise_records=int(ce[0]),
        detector_efficiency=eta,
        modulation_variance_snu=vx,
        shot_noise_raw=Interval.of(U, math.sqrt(var_u), z),
        electronic_noise_snu=Interval.of(vel, math.sqrt(var_vel), z),
        residual_variance_snu=Interval.of(sig2 / U, math.sqrt(var_sig2) / U, z),
        eta_transmittance=Interval.of(eta_t, eta_t * rel_eta_t, z),
        transmittance=Interval.of(eta_t / eta, eta_t * rel_eta_t / eta, z),
        excess_noise_snu=Interval.of(xi, math.sqrt(var_xi), z),
        snr=Interval.of(snr, snr * rel_snr, z),
        worst_case_transmittance=float(wc_t),
        worst_case_excess_noise_snu=float(wc_xi),
        lgg_worst_case_transmittance=lgg_t,
        lgg_worst_case_excess_noise_snu=lgg_xi,
        residual_mean_z=float(mean_z),
        shot_noise_mean_z=float(shot_mean_z),
        excess_kurtosis=float(kurt),
        excess_kurtosis_z=float(kurt_z),
        clip_fraction=float(clip),
        shot_noise_drift_fraction=float(b_s / S),
        shot_noise_drift_z=float(b_s / sb_s),
        residual_drift_fraction=float(b_r / er2),
        residual_drift_z=float(b_r / sb_r),
        gates=GateResult(not reasons, tuple(reasons)),
    )


def _lgg_worst_case(
    meta: BlockMetadata,
    *,
    t: float,
    sig2: float,
    U: float,
    vel: float,
    m: float,
    vx: float,
    epsilon_pe: float,
) -> tuple[float, float]:
    """LGG 2010 worst case from the KEYRATE engineer's implementation (SNU-normalised inputs)."""
    from cvqkd.keyrate.finite_size import worst_case_parameters

    if not (U > 0 and math.isfinite(U)):
        return 0.0, math.inf
    het = meta.detection == "heterodyne"
    wc = worst_case_parameters(
        t_hat=abs(t) / math.sqrt(U),
        sigma_sq_hat=sig2 / U,
        estimation_symbols=m / 2.0 if het else m,
        modulation_variance_snu=vx,
        detector_efficiency=meta.detector_efficiency,
        electronic_noise_snu=vel,
        epsilon_pe=epsilon_pe,
        detection="heterodyne" if het else "homodyne",
    )
    return float(wc.transmittance_min), float(wc.excess_noise_max_snu)


Source = TransmissionBlock | Iterable[TransmissionBlock] | str | Path


def _blocks(source: Source, chunk_slots: int) -> Iterable[TransmissionBlock]:
    if isinstance(source, TransmissionBlock):
        return [source]
    if isinstance(source, (str, Path)):
        return iter_dataset(source, chunk_slots=chunk_slots)
    return source


def estimate(
    source: Source,
    *,
    disclosed_fraction: float,
    epsilon_pe: float,
    rng: np.random.Generator | None = None,
    disclosure_key: int | None = None,
    gate_epsilon: float = 1e-6,
    max_clip_fraction: float = 1e-4,
    chunk_slots: int = 1 << 20,
) -> Estimates:
    """Estimate SNU, v_el, T, ξ and SNR with intervals at ``epsilon_pe``, and run the gates.

    Args:
        source: a block, an iterable of consecutive chunks, or a dataset file path.
        disclosed_fraction: share of data slots disclosed for estimation (0 < f < 1); the
            choice is public and random (a key hashed with the slot index, see
            :func:`disclosed_slots`).
        epsilon_pe: failure probability of each interval (two-sided).
        rng: draws the disclosure key (simulation studies; give exactly one of ``rng`` and
            ``disclosure_key``).
        disclosure_key: the announced key, in ``[0, DISCLOSURE_KEY_BOUND)`` (the key pipeline
            draws it from :class:`cvqkd.randomness.SecretRandom` and sends it to Alice).
        gate_epsilon: false-alarm probability of each statistical gate.
        max_clip_fraction: largest tolerated share of samples at the ADC rails.
    """
    if not 0.0 < disclosed_fraction < 1.0:
        raise ConfigError(f"disclosed_fraction must be in (0, 1), got {disclosed_fraction}")
    z_score(epsilon_pe)
    z_score(gate_epsilon)
    if (rng is None) == (disclosure_key is None):
        raise ConfigError("estimate: give exactly one of rng and disclosure_key")
    if disclosure_key is not None:
        key = int(disclosure_key)
        if not 0 <= key < DISCLOSURE_KEY_BOUND:
            raise ConfigError(f"disclosure_key must be in [0, 2^63 − 1), got {key}")
    else:
        assert rng is not None
        key = int(rng.integers(0, DISCLOSURE_KEY_BOUND))
    acc = _Accumulator(key, float(disclosed_fraction))
    for block in _blocks(source, chunk_slots):
        acc.add(block)
    return _finalise(
        acc, epsilon_pe=epsilon_pe, gate_epsilon=gate_epsilon, max_clip_fraction=max_clip_fraction
    )


@dataclass(frozen=True)
class KeyMaterial:
    """Undisclosed data for reconciliation, in SNU.

    ``alice``: Alice's reference values; ``bob``: Bob's samples (normalised by the estimated
    shot-noise unit, phase-corrected). Shape (n,) for homodyne, (n, 2) (x, p) for heterodyne.
    ``slots``: the slot indices in the transmission.
    """

    alice: NDArray[np.float64]
    bob: NDArray[np.float64]
    slots: NDArray[np.int64]


def key_samples(block: TransmissionBlock, estimates: Estimates) -> KeyMaterial:
    """The undisclosed data slots of ``block`` (use per chunk for long streams).

    >>> # km = key_samples(block, est); km.alice.shape == km.bob.shape
    """
    disclosed = disclosed_mask(
        block, key=estimates.disclosure_key, fraction=estimates.disclosed_fraction
    )
    mask = (block.slot_kind == SLOT_DATA) & ~disclosed
    x, y = _reference_and_bob(block, mask)
    return KeyMaterial(
        alice=x,
        bob=y / math.sqrt(estimates.shot_noise_raw.value),
        slots=block.start + np.flatnonzero(mask).astype(np.int64),
    )


def summary_rows(est: Estimates) -> list[tuple[str, Any, Any, Any]]:
    """Rows (quantity, value, low, high) for a human table."""
    rows: list[tuple[str, Any, Any, Any]] = [
        ("shot-noise unit (raw units²)", *_iv(est.shot_noise_raw)),
        ("electronic noise v_el (SNU)", *_iv(est.electronic_noise_snu)),
        ("ηT", *_iv(est.eta_transmittance)),
        ("transmittance T", *_iv(est.transmittance)),
        ("excess noise ξ (SNU, input)", *_iv(est.excess_noise_snu)),
        ("SNR (per real dimension)", *_iv(est.snr)),
        ("residual variance (SNU)", *_iv(est.residual_variance_snu)),
        ("worst-case T", est.worst_case_transmittance, "", ""),
        ("worst-case ξ (SNU)", est.worst_case_excess_noise_snu, "", ""),
        ("V_A realised (SNU)", est.modulation_variance_snu, "", ""),
    ]
    return rows


def _iv(i: Interval) -> tuple[float, float, float]:
    return i.value, i.low, i.high
