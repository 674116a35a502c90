"""The quantum channel: loss, excess noise per source, laser phase noise and frequency offset.

Model (SNU, PHYSICS.md conventions). Alice sends the coherent state with displacement ``a``
(complex, x + i p). At Bob's receiver input the mean field is √T e^{−iφ} a and the field carries,
besides vacuum, Gaussian excess noise of variance T·ξ_s per quadrature for each source s
(ξ_s input-referred, as in :class:`cvqkd.link.budget.NoiseBudget`). The vacuum part (shot
noise, variance 1 after detection whatever T and η are) is added by the detector model, see
:mod:`cvqkd.sim.detection`. φ is the relative phase between the signal and Bob's local
oscillator: zero for a transmitted LO; for a locally generated LO ("LLO") a Wiener process of
variance 2π(Δν_A + Δν_B) per second plus a frequency offset ramp 2πΔf t (Laudenbach et al.,
Adv. Quantum Technol. 1, 1800011 (2018), §8; Marie & Alléaume, PRA 95, 012316 (2017)).

Example:
    >>> p = ChannelParameters(transmittance=0.1, detector_efficiency=0.6,
    ...     electronic_noise_snu=0.05, detection="homodyne",
    ...     excess_noise_sources_snu={"raman_forward": 0.01}, modulation_variance_snu=4.0,
    ...     symbol_rate_hz=1e8)
    >>> p.excess_noise_snu
    0.01
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError

Detection = Literal["homodyne", "heterodyne"]
LocalOscillator = Literal["transmitted", "local"]

#: Budget sources that the simulator models physically for a local LO (not injected as noise).
PHYSICALLY_MODELLED_SOURCES: frozenset[str] = frozenset({"phase"})


@dataclass(frozen=True)
class ChannelParameters:
    """Everything physical between Alice's modulator and Bob's ADC input.

    Attributes:
        transmittance: channel power transmittance T (fibre, connectors, demux), excl. η.
        detector_efficiency: η of Bob's detector (trusted).
        electronic_noise_snu: v_el, electronic noise variance in SNU (trusted).
        detection: "homodyne" or "heterodyne".
        excess_noise_sources_snu: input-referred ξ per source (SNU), injected as Gaussian noise.
        modulation_variance_snu: V_A per quadrature (SNU).
        symbol_rate_hz: symbol rate [Hz].
        local_oscillator: "transmitted" (no relative phase drift) or "local" (LLO).
        linewidth_alice_hz, linewidth_bob_hz: laser linewidths [Hz] (LLO phase noise).
        frequency_offset_hz: Alice-laser minus Bob-LO frequency [Hz] (LLO only).
        pilot_period_slots: one phase pilot every P slots (LLO; None: the session's default).
        pilot_mean_photon_number: photons per pilot at Alice's output, n_p = |p|²/4 (None:
            the session's default, a received pilot of 50 √SNU per quadrature).
        phase_window_pilots: odd averaging window of the pilot phases (None: the session's).
    The pilot fields come from the scenario's receiver section (``from_budget``), so the
    simulated residual phase noise and the budget's ``phase`` entry share their parameters.
    """

    transmittance: float
    detector_efficiency: float
    electronic_noise_snu: float
    detection: Detection
    excess_noise_sources_snu: Mapping[str, float]
    modulation_variance_snu: float
    symbol_rate_hz: float
    local_oscillator: LocalOscillator = "transmitted"
    linewidth_alice_hz: float = 0.0
    linewidth_bob_hz: float = 0.0
    frequency_offset_hz: float = 0.0
    pilot_period_slots: int | None = None
    pilot_mean_photon_number: float | None = None
    phase_window_pilots: int | None = None
    label: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not 0.0 < self.transmittance <= 1.0:
            raise ConfigError(f"transmittance must be in (0, 1], got {self.transmittance}")
        if not 0.0 < self.detector_efficiency <= 1.0:
            raise ConfigError(
                f"detector_efficiency must be in (0, 1], got {self.detector_efficiency}"
            )
        if not self.electronic_noise_snu >= 0.0:
            raise ConfigError(f"electronic_noise_snu must be >= 0, got {self.electronic_noise_snu}")
        if self.detection not in ("homodyne", "heterodyne"):
            raise ConfigError(
                f"detection must be 'homodyne' or 'heterodyne', got {self.detection!r}"
            )
        if self.local_oscillator not in ("transmitted", "local"):
            raise ConfigError(
                f"local_oscillator must be 'transmitted' or 'local', got {self.local_oscillator!r}"
            )
        if not self.modulation_variance_snu > 0.0:
            raise ConfigError(
                f"modulation_variance_snu must be > 0, got {self.modulation_variance_snu}"
            )
        if not self.symbol_rate_hz > 0.0:
            raise ConfigError(f"symbol_rate_hz must be > 0, got {self.symbol_rate_hz}")
        if self.linewidth_alice_hz < 0 or self.linewidth_bob_hz < 0:
            raise ConfigError("laser linewidths must be >= 0 Hz")
        if self.pilot_period_slots is not None and self.pilot_period_slots < 2:
            raise ConfigError(f"pilot_period_slots must be >= 2, got {self.pilot_period_slots}")
        if self.pilot_mean_photon_number is not None and not self.pilot_mean_photon_number > 0:
            raise ConfigError(
                f"pilot_mean_photon_number must be > 0, got {self.pilot_mean_photon_number}"
            )
        w = self.phase_window_pilots
        if w is not None and (w < 1 or w % 2 == 0):
            raise ConfigError(f"phase_window_pilots must be an odd number >= 1, got {w}")
        sources = {str(k): float(v) for k, v in dict(self.excess_noise_sources_snu).items()}
        for k, v in sources.items():
            if not (math.isfinite(v) and v >= 0.0):
                raise ConfigError(f"excess noise source {k!r} must be finite and >= 0, got {v}")
        object.__setattr__(self, "excess_noise_sources_snu", MappingProxyType(sources))

    @property
    def excess_noise_snu(self) -> float:
        """Total injected input-referred excess noise ξ = Σ_s ξ_s [SNU]."""
        return float(sum(self.excess_noise_sources_snu.values()))

    @property
    def phase_noise_variance_per_symbol(self) -> float:
        """Wiener phase-noise variance per symbol 2π(Δν_A + Δν_B)/f_sym [rad²] (0 for a TLO)."""
        if self.local_oscillator != "local":
            return 0.0
        return (
            2.0 * math.pi * (self.linewidth_alice_hz + self.linewidth_bob_hz) / self.symbol_rate_hz
        )

    @property
    def frequency_offset_rad_per_symbol(self) -> float:
        """Phase ramp per symbol 2πΔf/f_sym [rad] (0 for a TLO)."""
        if self.local_oscillator != "local":
            return 0.0
        return 2.0 * math.pi * self.frequency_offset_hz / self.symbol_rate_hz

    @classmethod
    def from_budget(cls, budget: Any, scenario: Any = None, **overrides: Any) -> ChannelParameters:
        """Channel from a :class:`cvqkd.link.budget.NoiseBudget` (and its scenario's receiver).

        Every budget source is injected as Gaussian noise, except the ``phase`` entry when the
        LO is local: the simulator then draws the laser phase noise itself (Wiener process
        from the scenario's linewidths) and recovers it from pilots with the scenario's pilot
        period, pilot photon number and averaging window, so the residual phase error appears
        in the data as it does in a real receiver — and matches the budget's ``phase`` entry,
        computed from the same parameters. ``overrides`` replace fields.
        """
        lo = str(_first_attr(scenario, _LO_PATHS, "transmitted"))
        lo = "local" if lo.lower() in ("local", "llo", "locally_generated") else "transmitted"
        sources = dict(budget.sources_snu)
        if lo == "local":
            sources = {k: v for k, v in sources.items() if k not in PHYSICALLY_MODELLED_SOURCES}
        kwargs: dict[str, Any] = dict(
            transmittance=float(budget.transmittance),
            detector_efficiency=float(budget.detector_efficiency),
            electronic_noise_snu=float(budget.electronic_noise_snu),
            detection=str(budget.detection),
            excess_noise_sources_snu=sources,
            modulation_variance_snu=float(budget.modulation_variance_snu),
            symbol_rate_hz=float(budget.symbol_rate_hz),
            local_oscillator=lo,
            linewidth_alice_hz=float(_first_attr(scenario, _LW_ALICE_PATHS, 0.0)),
            linewidth_bob_hz=float(_first_attr(scenario, _LW_BOB_PATHS, 0.0)),
            frequency_offset_hz=float(_first_attr(scenario, _OFFSET_PATHS, 0.0)),
            label=str(getattr(scenario, "name", "")),
        )
        if lo == "local":
            rx = getattr(scenario, "receiver", None)
            for name in ("pilot_period_slots", "pilot_mean_photon_number", "phase_window_pilots"):
                value = getattr(rx, name, None)
                if value is not None:
                    kwargs[name] = value
        kwargs.update(overrides)
        return cls(**kwargs)


_LO_PATHS = (
    "receiver.local_oscillator",
    "receiver.lo",
    "receiver.lo_type",
    "receiver.local_oscillator_type",
)
_LW_ALICE_PATHS = (
    "transmitter.laser_linewidth_hz",
    "transmitter.linewidth_hz",
    "receiver.alice_linewidth_hz",
)
_LW_BOB_PATHS = (
    "receiver.lo_linewidth_hz",
    "receiver.laser_linewidth_hz",
    "receiver.linewidth_hz",
    "receiver.local_oscillator_linewidth_hz",
)
_OFFSET_PATHS = ("receiver.frequency_offset_hz", "receiver.lo_frequency_offset_hz")


def _first_attr(obj: Any, paths: tuple[str, ...], default: Any) -> Any:
    if obj is None:
        return default
    for path in paths:
        cur = obj
        for part in path.split("."):
            cur = getattr(cur, part, None)
            if cur is None:
                break
        if cur is not None:
            return cur
    return default


def phase_walk(
    n: int,
    *,
    start_rad: float,
    variance_per_symbol_rad2: float,
    ramp_rad_per_symbol: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Relative LO phase φ_k for k = 1..n following ``start_rad`` [rad].

    φ_k = φ_{k−1} + ω + δ_k, δ_k ~ N(0, σ²) i.i.d. (Wiener process sampled at the symbol
    rate, σ² = 2π(Δν_A + Δν_B)/f_sym). The last element is the next call's ``start_rad``.

    >>> phase_walk(3, start_rad=0.0, variance_per_symbol_rad2=0.0, ramp_rad_per_symbol=0.5,
    ...            rng=np.random.default_rng(0)).tolist()
    [0.5, 1.0, 1.5]
    """
    steps = np.full(n, ramp_rad_per_symbol)
    if variance_per_symbol_rad2 > 0:
        steps = steps + rng.standard_normal(n) * math.sqrt(variance_per_symbol_rad2)
    return start_rad + np.cumsum(steps)


def transmit(
    symbols: NDArray[np.complex128],
    *,
    transmittance: float,
    excess_noise_snu: float,
    phase_rad: NDArray[np.float64] | None,
    rng: np.random.Generator,
) -> NDArray[np.complex128]:
    """Field at Bob's receiver input, excluding vacuum: √T e^{−iφ} a + excess noise.

    The excess noise is complex Gaussian with variance T·ξ per quadrature (ξ input-referred,
    the sum of the injected sources). Vacuum/shot noise is added by the detector.

    >>> f = transmit(np.array([2.0 + 0j]), transmittance=0.25, excess_noise_snu=0.0,
    ...              phase_rad=None, rng=np.random.default_rng(0))
    >>> complex(f[0])
    (1+0j)
    """
    field = symbols * math.sqrt(transmittance)
    if phase_rad is not None:
        field = field * np.exp(-1j * phase_rad)
    if excess_noise_snu > 0:
        sd = math.sqrt(transmittance * excess_noise_snu)
        field = field + (rng.standard_normal(2 * symbols.size) * sd).view(np.complex128)
    return field
