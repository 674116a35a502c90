"""Planning: the operator's questions about a scenario, answered by sweeps over the link model.

* :func:`key_rate_vs_distance` — how the key rate falls with fibre length, with the scenario's
  classical traffic and on dark fibre, against the PLOB bound.
* :func:`channel_frontier` — how many classical channels (and how much total launch power) a
  quantum channel can live with at each length, co- and counter-propagating.
* :func:`quantum_wavelength_scan` — where to put the quantum channel from the O to the L band.
* :func:`protocol_comparison` — CV (GG02) vs decoy-state BB84 vs MDI-QKD on the same fibre,
  with the same classical traffic entering the DV receivers as background counts.

Every point is a full :func:`cvqkd.link.budget.noise_budget` of a modified copy of the
scenario (a few ms each) followed by the vectorised key-rate engine; nothing is interpolated.

Example:
    >>> from cvqkd.scenario import load_scenario
    >>> s = load_scenario("seed-120km")
    >>> sweep = key_rate_vs_distance(s, distances_m=np.array([50e3, 100e3]))
    >>> bool(sweep.key_rate_bits_per_symbol[0] > sweep.key_rate_bits_per_symbol[1])
    True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError
from cvqkd.keyrate.bounds import plob_bits_per_use
from cvqkd.keyrate.dv import background_yield_from_noise, bb84_decoy, mdi_qkd
from cvqkd.keyrate.gaussian import gg02
from cvqkd.keyrate.optimise import optimal_modulation_variance
from cvqkd.link.budget import NoiseBudget, noise_budget
from cvqkd.scenario import Scenario
from cvqkd.units import SPEED_OF_LIGHT_M_S

FloatArray = NDArray[np.float64]


def _key_rate(budget: NoiseBudget, *, excess_noise_snu: FloatArray | float | None = None) -> float:
    xi = budget.excess_noise_snu if excess_noise_snu is None else excess_noise_snu
    rate = gg02(
        transmittance=budget.transmittance,
        excess_noise_snu=xi,
        modulation_variance_snu=budget.modulation_variance_snu,
        detector_efficiency=budget.detector_efficiency,
        electronic_noise_snu=budget.electronic_noise_snu,
        reconciliation_efficiency=budget.reconciliation_efficiency,
        detection=budget.detection,
    )
    return rate.key_rate_bits_per_symbol  # type: ignore[return-value]


def _dark_fibre(scenario: Scenario) -> Scenario:
    return scenario.with_channels(())


def _all_in_direction(scenario: Scenario, direction: str) -> Scenario:
    chans = tuple(dataclasses.replace(c, direction=direction) for c in scenario.wdm.channels)  # type: ignore[arg-type]
    return scenario.with_channels(chans)


# ------------------------------------------------------------------ key rate vs distance


@dataclass(frozen=True)
class DistanceSweep:
    """Key rate against fibre length [bit/symbol]; ``*_bps`` at the scenario's symbol rate."""

    distances_m: FloatArray
    key_rate_bits_per_symbol: FloatArray
    dark_fibre_key_rate_bits_per_symbol: FloatArray
    optimal_modulation_key_rate_bits_per_symbol: FloatArray
    excess_noise_snu: FloatArray
    transmittance: FloatArray
    plob_bits_per_use: FloatArray
    symbol_rate_hz: float

    @property
    def key_rate_bps(self) -> FloatArray:
        """Key rate at the scenario's symbol rate [bit/s] (negative where no key)."""
        return self.key_rate_bits_per_symbol * self.symbol_rate_hz

    @property
    def max_distance_m(self) -> float:
        """Longest swept length with a positive key under the scenario's traffic (0 if none)."""
        ok = self.key_rate_bits_per_symbol > 0
        return float(self.distances_m[ok].max()) if ok.any() else 0.0

    @property
    def dark_fibre_max_distance_m(self) -> float:
        """Longest swept length with a positive key without classical traffic."""
        ok = self.dark_fibre_key_rate_bits_per_symbol > 0
        return float(self.distances_m[ok].max()) if ok.any() else 0.0


def key_rate_vs_distance(scenario: Scenario, *, distances_m: FloatArray) -> DistanceSweep:
    """Asymptotic GG02 key rate of ``scenario`` at each fibre length [m].

    Three curves: with the scenario's classical traffic and modulation variance; the same
    traffic with V_A re-optimised at each length (phase noise, ∝ V_A, is held at the
    scenario's value, a slightly pessimistic choice when V_A drops); and dark fibre (no
    classical channels). PLOB −log2(1 − T) is the repeaterless bound on the same T.
    """
    d = np.asarray(distances_m, dtype=float)
    if d.ndim != 1 or d.size == 0 or np.any(d <= 0):
        raise ConfigError("distances must be a non-empty list of positive lengths")
    dark = _dark_fibre(scenario)
    budgets = [noise_budget(scenario.with_length(length_m=float(x))) for x in d]
    dark_budgets = [noise_budget(dark.with_length(length_m=float(x))) for x in d]
    t = np.array([b.transmittance for b in budgets])
    xi = np.array([b.excess_noise_snu for b in budgets])
    k = np.array([_key_rate(b) for b in budgets])
    k_dark = np.array([_key_rate(b) for b in dark_budgets])
    b0 = budgets[0]
    opt = optimal_modulation_variance(
        transmittance=t,
        excess_noise_snu=xi,
        detector_efficiency=b0.detector_efficiency,
        electronic_noise_snu=b0.electronic_noise_snu,
        reconciliation_efficiency=b0.reconciliation_efficiency,
        detection=b0.detection,
    )
    return DistanceSweep(
        distances_m=d,
        key_rate_bits_per_symbol=k,
        dark_fibre_key_rate_bits_per_symbol=k_dark,
        optimal_modulation_key_rate_bits_per_symbol=np.asarray(
            opt.rate.key_rate_bits_per_symbol, dtype=np.float64
        ),
        excess_noise_snu=xi,
        transmittance=t,
        plob_bits_per_use=np.asarray(plob_bits_per_use(transmittance=t), dtype=float),
        symbol_rate_hz=b0.symbol_rate_hz,
    )


# ------------------------------------------------------------------ channel-density frontier


@dataclass(frozen=True)
class ChannelFrontier:
    """Largest classical load with a positive key at each length, per direction.

    ``max_channels[direction]``: the most channels of the scenario's plan (extended on its own
    grid, same power per channel) with K > 0; −1 where even dark fibre gives no key.
    ``max_total_power_w[direction]``: the scenario's channel plan with every launch power
    scaled by one factor, the largest total launch power [W] with K > 0 (0 where none).
    """

    distances_m: FloatArray
    max_channels: dict[str, NDArray[np.int64]]
    max_total_power_w: dict[str, FloatArray]
    channel_limit: int


def _positive_with_count(scenario: Scenario, count: int) -> bool:
    return _key_rate(noise_budget(scenario.with_channel_count(count))) > 0


def _max_channel_count(scenario: Scenario, limit: int) -> int:
    """Largest n ≤ limit with K > 0 (noise grows monotonically with n: bisection)."""
    if not _positive_with_count(scenario, 0):
        return -1
    if _positive_with_count(scenario, limit):
        return limit
    lo, hi = 0, limit  # K(lo) > 0, K(hi) <= 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _positive_with_count(scenario, mid):
            lo = mid
        else:
            hi = mid
    return lo


#: Power scale factors searched for the total-power frontier (1e-4 … 1e4 of the plan's power).
_POWER_FACTORS = np.logspace(-4.0, 4.0, 801)


def _max_total_power_w(scenario: Scenario) -> float:
    budget = noise_budget(scenario)
    total = scenario.wdm.total_launch_power_w
    if total <= 0:
        return 0.0
    xi = budget.excess_noise_at_power_scale_snu(_POWER_FACTORS)
    k = np.asarray(_key_rate(budget, excess_noise_snu=np.asarray(xi)))
    ok = np.flatnonzero(k > 0)
    return float(_POWER_FACTORS[ok[-1]] * total) if ok.size else 0.0


def channel_frontier(
    scenario: Scenario,
    *,
    distances_m: FloatArray,
    channel_limit: int = 160,
    directions: tuple[str, ...] = ("co", "counter"),
) -> ChannelFrontier:
    """Maximum classical channels and total launch power with a positive key vs length.

    The scenario's channel plan is turned all co- or all counter-propagating; channels are
    added on the plan's own grid (skipping 100 GHz around the quantum channel) up to
    ``channel_limit``. The total-power frontier keeps the plan's channels and scales all
    launch powers together (Raman and crosstalk ∝ P, FWM ∝ P³).
    """
    if not scenario.wdm.channels:
        raise ConfigError(f"scenario {scenario.name!r} has no classical channels to scale")
    if channel_limit < 1:
        raise ConfigError("channel_limit must be at least 1")
    d = np.asarray(distances_m, dtype=float)
    max_ch: dict[str, NDArray[np.int64]] = {}
    max_p: dict[str, FloatArray] = {}
    for direction in directions:
        if direction not in ("co", "counter"):
            raise ConfigError(f"direction must be 'co' or 'counter', got {direction!r}")
        base = _all_in_direction(scenario, direction)
        counts, powers = [], []
        for length in d:
            s = base.with_length(length_m=float(length))
            counts.append(_max_channel_count(s, channel_limit))
            powers.append(_max_total_power_w(s))
        max_ch[direction] = np.array(counts, dtype=np.int64)
        max_p[direction] = np.array(powers)
    return ChannelFrontier(
        distances_m=d, max_channels=max_ch, max_total_power_w=max_p, channel_limit=channel_limit
    )


# ------------------------------------------------------------------ quantum wavelength


@dataclass(frozen=True)
class WavelengthScan:
    """Key rate and excess noise against the quantum channel's wavelength.

    NaN marks wavelengths that were not evaluated: within ``guard_hz`` of a classical channel,
    or outside a user-supplied measured Raman table.
    """

    wavelengths_m: FloatArray
    excess_noise_snu: FloatArray
    key_rate_bits_per_symbol: FloatArray
    transmittance: FloatArray

    @property
    def best_wavelength_m(self) -> float:
        """The wavelength with the highest key rate (NaN if no point has a positive key)."""
        k = np.where(
            np.isfinite(self.key_rate_bits_per_symbol), self.key_rate_bits_per_symbol, -np.inf
        )
        i = int(np.argmax(k))
        return float(self.wavelengths_m[i]) if k[i] > 0 else float("nan")


#: The O to L band (ITU-T G-series band edges: O 1260 nm … L 1625 nm).
O_TO_L_BAND_M = (1260e-9, 1625e-9)


def quantum_wavelength_scan(
    scenario: Scenario,
    *,
    wavelengths_m: FloatArray | None = None,
    guard_hz: float = 100e9,
) -> WavelengthScan:
    """Move the quantum channel across O…L band (default 1 nm steps) with the classical plan
    fixed; every point is a full budget (fibre loss, Raman Stokes/anti-Stokes, FWM,
    crosstalk, ASE band) and key rate at the scenario's modulation variance."""
    lam = (
        np.arange(O_TO_L_BAND_M[0], O_TO_L_BAND_M[1] + 0.5e-9, 1e-9)
        if wavelengths_m is None
        else np.asarray(wavelengths_m, dtype=float)
    )
    f_classical = scenario.wdm.frequencies_hz
    xi = np.full(lam.shape, np.nan)
    k = np.full(lam.shape, np.nan)
    t = np.full(lam.shape, np.nan)
    for i, wl in enumerate(lam):
        f_q = SPEED_OF_LIGHT_M_S / wl
        if f_classical.size and np.min(np.abs(f_classical - f_q)) <= guard_hz:
            continue
        try:
            b = noise_budget(scenario.replace(quantum_wavelength_m=float(wl)))
        except ConfigError:  # outside a measured Raman table
            continue
        xi[i], k[i], t[i] = b.excess_noise_snu, _key_rate(b), b.transmittance
    return WavelengthScan(
        wavelengths_m=lam, excess_noise_snu=xi, key_rate_bits_per_symbol=k, transmittance=t
    )


# ------------------------------------------------------------------ CV vs DV vs MDI


@dataclass(frozen=True)
class DvSystem:
    """A discrete-variable QKD system for the comparison (single-photon detectors).

    Defaults: a GHz-gated InGaAs avalanche photodiode system of the kind used in coexistence
    trials (Patel et al., Phys. Rev. X 2, 041010 (2012): ~1 GHz gating, ~20 % efficiency,
    ~100 ps effective gate by temporal filtering, a narrow spectral filter); misalignment and
    error-correction inefficiency of the GYS set (Ma et al. 2005). MDI uses the same detectors
    at a relay half-way.
    """

    repetition_rate_hz: float = 1e9
    detector_efficiency: float = 0.2
    dark_count_probability: float = 1e-6
    gate_width_s: float = 100e-12
    filter_width_m: float = 0.2e-9
    misalignment_error: float = 0.033
    error_correction_inefficiency: float = 1.22


@dataclass(frozen=True)
class ProtocolComparison:
    """Secret key rates [bit/s] of CV (GG02 at the scenario's symbol rate), decoy BB84 and
    MDI-QKD (at the DV repetition rate) on the same fibre and classical traffic."""

    distances_m: FloatArray
    cv_key_rate_bps: FloatArray
    bb84_key_rate_bps: FloatArray
    mdi_key_rate_bps: FloatArray
    bb84_background_yield: FloatArray
    dv: DvSystem


def _dv_background(budget: NoiseBudget, dv: DvSystem) -> float:
    return float(
        background_yield_from_noise(
            noise_spectral_density_w_per_m=budget.total_noise_spectral_density_w_per_m,
            filter_width_m=dv.filter_width_m,
            wavelength_m=budget.quantum_wavelength_m,
            gate_width_s=dv.gate_width_s,
            dark_count_probability=dv.dark_count_probability,
            detector_efficiency=dv.detector_efficiency,
        )
    )


def protocol_comparison(
    scenario: Scenario, *, distances_m: FloatArray, dv: DvSystem | None = None
) -> ProtocolComparison:
    """CV vs decoy BB84 (infinite decoys, μ optimised) vs MDI-QKD on the same link.

    The classical channels' noise light at the receiver (Raman, FWM, leakage: the budget's
    optical spectral density, both polarisations) passes the DV filter and enters BB84 as
    background yield Y0 (PHYSICS.md: a DV receiver sees P(Δλ)·Δt_gate/(hν), no coherent
    mode selection). For MDI, the relay sits half-way: each detector sees the noise of a
    half-length link (the scenario's traffic over L/2), an approximation that ignores
    traffic entering from the far arm.
    """
    dv = DvSystem() if dv is None else dv
    d = np.asarray(distances_m, dtype=float)
    cv, y0, t = [], [], []
    p_relay = []
    for length in d:
        b = noise_budget(scenario.with_length(length_m=float(length)))
        cv.append(_key_rate(b) * b.symbol_rate_hz)
        y0.append(_dv_background(b, dv))
        t.append(b.transmittance)
        p_relay.append(
            _dv_background(noise_budget(scenario.with_length(length_m=float(length) / 2)), dv)
        )
    t_arr = np.array(t)
    bb84 = bb84_decoy(
        transmittance=t_arr,
        detector_efficiency=dv.detector_efficiency,
        background_yield=np.array(y0),
        misalignment_error=dv.misalignment_error,
        error_correction_inefficiency=dv.error_correction_inefficiency,
    )
    mdi = mdi_qkd(
        transmittance=t_arr,
        detector_efficiency=dv.detector_efficiency,
        dark_count_probability=np.array(p_relay),
        misalignment_error=dv.misalignment_error,
        error_correction_inefficiency=dv.error_correction_inefficiency,
    )
    return ProtocolComparison(
        distances_m=d,
        cv_key_rate_bps=np.array(cv),
        bb84_key_rate_bps=np.asarray(bb84.key_rate_bits_per_pulse, dtype=float)
        * dv.repetition_rate_hz,
        mdi_key_rate_bps=np.asarray(mdi.key_rate_bits_per_pulse, dtype=float)
        * dv.repetition_rate_hz,
        bb84_background_yield=np.array(y0),
        dv=dv,
    )


__all__ = [
    "O_TO_L_BAND_M",
    "ChannelFrontier",
    "DistanceSweep",
    "DvSystem",
    "ProtocolComparison",
    "WavelengthScan",
    "channel_frontier",
    "key_rate_vs_distance",
    "protocol_comparison",
    "quantum_wavelength_scan",
]
