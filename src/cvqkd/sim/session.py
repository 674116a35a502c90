"""A simulated CV-QKD transmission, streamed in chunks: Alice → channel → Bob's receiver + DSP.

Slots are grouped in frames of ``pilot_period`` P slots: slot 0 of each frame carries a known
pilot; every other slot is, at random (Bob's private choice, as a real receiver interleaves its
calibrations), a data slot, a shot-noise calibration slot (signal input blocked, LO on) or an
electronic-noise calibration slot (LO blocked). Bob's receiver (see :mod:`cvqkd.sim.detection`)
digitises everything with a gain (ADC codes per √SNU) unknown to the estimator; his DSP
recovers the LO phase from the pilots (:mod:`cvqkd.sim.phase_recovery`) with one chunk of
look-ahead, so the streamed output equals a one-shot run whatever the chunk size.

Memory is bounded by ``chunk_slots`` (a few hundred bytes per slot in flight), so 10^9 symbols
run as a generator of :class:`~cvqkd.dataset.TransmissionBlock` chunks.

Example:
    >>> from cvqkd.sim.channel import ChannelParameters
    >>> ch = ChannelParameters(transmittance=0.5, detector_efficiency=0.6,
    ...     electronic_noise_snu=0.05, detection="homodyne", excess_noise_sources_snu={},
    ...     modulation_variance_snu=4.0, symbol_rate_hz=1e8)
    >>> block = simulate_block(ch, n_symbols=10_000, rng=np.random.default_rng(1))
    >>> block.n_slots
    10000
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cvqkd.dataset import (
    SLOT_DATA,
    SLOT_ELECTRONIC,
    SLOT_PILOT,
    SLOT_SHOT_NOISE,
    BlockMetadata,
    TransmissionBlock,
)
from cvqkd.errors import ConfigError
from cvqkd.link.phase import pilot_residual_phase_variance_rad2
from cvqkd.sim.channel import ChannelParameters, phase_walk, transmit
from cvqkd.sim.detection import Adc, heterodyne, homodyne, receiver_output
from cvqkd.sim.modulation import MODULATIONS, draw_symbols
from cvqkd.sim.phase_recovery import (
    centred_moving_average,
    interpolate_frames,
    pilot_phases,
    unwrap_continuing,
)

#: Received pilot amplitude per quadrature [√SNU] used when none is given (pilot phase-error
#: variance ≈ (1 + v_el)/50² ≈ 4e-4 rad²).
DEFAULT_PILOT_AMPLITUDE_AT_BOB = 50.0


def predicted_phase_error_variance_rad2(
    *,
    pilot_period: int,
    wiener_variance_per_symbol_rad2: float,
    pilot_phase_variance_rad2: float,
    window_pilots: int = 1,
) -> float:
    """Mean residual phase-error variance [rad²] of this DSP (pilots every P slots, centred
    window of W pilots, linear interpolation): the noise budget's formula,
    :func:`cvqkd.link.phase.pilot_residual_phase_variance_rad2`. For W = 1, at fraction
    f = j/P between two pilots: σ_w² P f(1 − f) + σ_n²[(1 − f)² + f²], averaged over j = 0..P−1.

    >>> predicted_phase_error_variance_rad2(pilot_period=2, wiener_variance_per_symbol_rad2=0.0,
    ...     pilot_phase_variance_rad2=1.0)
    0.75
    """
    return pilot_residual_phase_variance_rad2(
        pilot_period_slots=pilot_period,
        window_pilots=window_pilots,
        wiener_variance_per_slot_rad2=wiener_variance_per_symbol_rad2,
        pilot_phase_variance_rad2=pilot_phase_variance_rad2,
    )


@dataclass(frozen=True)
class SessionSettings:
    """Protocol and receiver-DSP choices for a simulated session.

    Attributes:
        modulation: "gaussian" or a constellation name (:data:`MODULATIONS`).
        shaping_nu: ν for probabilistically shaped QAM (None: default).
        pilot_period: P, one pilot every P slots; None: the channel's ``pilot_period_slots``
            (the scenario's), else 10 for a local LO, 0 (none) otherwise.
        pilot_amplitude_snu: |p| of Alice's pilot [√SNU]; None: 2√n_p from the channel's
            ``pilot_mean_photon_number``, else a received amplitude of 50 √SNU.
        phase_window_pilots: W, odd window (pilots) of the phase-estimate average; None: the
            channel's, else 1 (none: best for Wiener phase noise with strong pilots).
        shot_noise_calibration_fraction: share of payload slots used for shot-noise calibration.
        electronic_noise_calibration_fraction: share used for electronic-noise calibration.
        adc_bits: ADC resolution (0: ideal, float samples, no clipping).
        adc_full_scale_snu: ADC rails at ± this many √SNU (None: 8σ of the data or the pilots).
        lo_power_drift_fraction: relative change of the LO power (hence of the shot-noise
            variance) from the first to the last slot — a fault to test the drift gate.
        chunk_slots: slots generated per chunk (memory bound).
    """

    modulation: str = "gaussian"
    shaping_nu: float | None = None
    pilot_period: int | None = None
    pilot_amplitude_snu: float | None = None
    phase_window_pilots: int | None = None
    shot_noise_calibration_fraction: float = 0.1
    electronic_noise_calibration_fraction: float = 0.05
    adc_bits: int = 12
    adc_full_scale_snu: float | None = None
    lo_power_drift_fraction: float = 0.0
    chunk_slots: int = 1 << 19

    def __post_init__(self) -> None:
        if self.modulation not in MODULATIONS:
            raise ConfigError(
                f"unknown modulation {self.modulation!r}; choose one of {', '.join(MODULATIONS)}"
            )
        if self.pilot_period is not None and (self.pilot_period < 0 or self.pilot_period == 1):
            raise ConfigError(
                f"pilot_period must be 0 (no pilots) or >= 2, got {self.pilot_period}"
            )
        w = self.phase_window_pilots
        if w is not None and (w < 1 or w % 2 == 0):
            raise ConfigError(
                f"phase_window_pilots must be an odd number >= 1, got {self.phase_window_pilots}"
            )
        fs, fe = self.shot_noise_calibration_fraction, self.electronic_noise_calibration_fraction
        if not (0 < fs and 0 < fe and fs + fe < 1):
            raise ConfigError(
                f"calibration fractions must be > 0 and sum to < 1, got shot {fs}, electronic {fe}"
            )
        if not 0 <= self.adc_bits <= 16:
            raise ConfigError(f"adc_bits must be in 0..16, got {self.adc_bits}")
        if self.adc_full_scale_snu is not None and not self.adc_full_scale_snu > 0:
            raise ConfigError(f"adc_full_scale_snu must be > 0, got {self.adc_full_scale_snu}")
        if self.lo_power_drift_fraction <= -1:
            raise ConfigError("lo_power_drift_fraction must be > -1")
        if self.chunk_slots < 64:
            raise ConfigError(f"chunk_slots must be >= 64, got {self.chunk_slots}")


@dataclass(frozen=True)
class _Plan:
    period: int
    window: int
    pilot_symbol: complex
    gain: float
    adc: Adc
    metadata: BlockMetadata


def _plan(ch: ChannelParameters, s: SessionSettings) -> _Plan:
    period = s.pilot_period if s.pilot_period is not None else ch.pilot_period_slots
    if period is None:
        period = 10 if ch.local_oscillator == "local" else 0
    window = s.phase_window_pilots or ch.phase_window_pilots or 1
    if ch.local_oscillator == "local" and period == 0:
        raise ConfigError("a local LO needs pilots for phase recovery: set pilot_period >= 2")
    eta_t = ch.detector_efficiency * ch.transmittance
    het = ch.detection == "heterodyne"
    if s.pilot_amplitude_snu is not None:
        pilot_amp = float(s.pilot_amplitude_snu)
    elif ch.pilot_mean_photon_number is not None:
        pilot_amp = 2.0 * math.sqrt(ch.pilot_mean_photon_number)  # n = |p|²/4 (vacuum = 1)
    else:
        pilot_amp = DEFAULT_PILOT_AMPLITUDE_AT_BOB / math.sqrt(eta_t / 2.0)
    pilot_at_bob = math.sqrt(eta_t / 2.0) * pilot_amp if period else 0.0
    k = 0.5 if het else 1.0
    sigma = math.sqrt(
        1 + ch.electronic_noise_snu + k * eta_t * (ch.modulation_variance_snu + ch.excess_noise_snu)
    )
    if s.adc_full_scale_snu is not None:
        fs = float(s.adc_full_scale_snu)
    else:
        fs = max(8.0 * sigma, 1.2 * pilot_at_bob + 6.0 * sigma)
        fs *= math.sqrt(1.0 + max(0.0, s.lo_power_drift_fraction))
    adc = Adc(bits=s.adc_bits)
    gain = 2.0 ** (s.adc_bits - 1) / fs if s.adc_bits else 1.0
    truth = {
        "transmittance": ch.transmittance,
        "detector_efficiency": ch.detector_efficiency,
        "electronic_noise_snu": ch.electronic_noise_snu,
        "excess_noise_snu": ch.excess_noise_snu,
        "modulation_variance_snu": ch.modulation_variance_snu,
        "shot_noise_variance_raw": gain**2,
        "quantisation_noise_snu": (1.0 / 12.0) / gain**2 if s.adc_bits else 0.0,
        "phase_noise_variance_per_symbol_rad2": ch.phase_noise_variance_per_symbol,
        "frequency_offset_hz": ch.frequency_offset_hz if ch.local_oscillator == "local" else 0.0,
        "pilot_amplitude_snu": pilot_amp if period else 0.0,
        "adc_full_scale_snu": fs,
        "lo_power_drift_fraction": s.lo_power_drift_fraction,
    }
    if period:
        # the noise budget's model (cvqkd.link.phase), same pilot parameters
        noise_q = 1 + ch.electronic_noise_snu + eta_t * ch.excess_noise_snu / 2
        v_err = predicted_phase_error_variance_rad2(
            pilot_period=period,
            wiener_variance_per_symbol_rad2=ch.phase_noise_variance_per_symbol,
            pilot_phase_variance_rad2=noise_q / pilot_at_bob**2,
            window_pilots=window,
        )
        # Marie & Alléaume 2017: ξ_phase = 2 V_A (1 − e^{−V_err/2}), input-referred.
        truth["phase_error_variance_rad2_predicted"] = v_err
        truth["phase_noise_snu_predicted"] = (
            -2 * ch.modulation_variance_snu * math.expm1(-v_err / 2)
        )
    truth.update({f"excess_noise_snu.{k}": v for k, v in ch.excess_noise_sources_snu.items()})
    meta = BlockMetadata(
        detection=ch.detection,
        symbol_rate_hz=ch.symbol_rate_hz,
        modulation=s.modulation,
        modulation_variance_snu=ch.modulation_variance_snu,
        detector_efficiency=ch.detector_efficiency,
        pilot_period=period,
        adc_bits=s.adc_bits,
        local_oscillator=ch.local_oscillator,
        source="simulation",
        truth=truth,
    )
    return _Plan(
        period=period,
        window=window,
        pilot_symbol=complex(pilot_amp),
        gain=gain,
        adc=adc,
        metadata=meta,
    )


def count_pilots(n_symbols: int, pilot_period: int) -> int:
    """Number of pilot slots among ``n_symbols`` slots (pilots at 0, P, 2P, …)."""
    return 0 if pilot_period == 0 else -(-n_symbols // pilot_period)


@dataclass
class _Raw:
    start: int
    kind: NDArray[np.uint8]
    alice: NDArray[np.complex64]
    codes: NDArray[np.generic]
    quad: NDArray[np.uint8] | None
    pilot_codes: NDArray[np.generic]
    pilot_phase: NDArray[np.float64]  # unwrapped, one per frame


def _raw_chunks(
    ch: ChannelParameters, s: SessionSettings, plan: _Plan, n_total: int, rng: np.random.Generator
) -> Iterator[_Raw]:
    period = plan.period
    het = ch.detection == "heterodyne"
    fs, fe = s.shot_noise_calibration_fraction, s.electronic_noise_calibration_fraction
    h = plan.window // 2
    if period:
        step = max(h + 2, s.chunk_slots // period) * period
    else:
        step = s.chunk_slots
    phase_state = float(rng.uniform(-np.pi, np.pi)) if ch.local_oscillator == "local" else 0.0
    last_unwrapped: float | None = None
    sqrt_eta = math.sqrt(ch.detector_efficiency)
    for start in range(0, n_total, step):
        n = min(step, n_total - start)
        if period:
            n = -(-n // period) * period  # whole frames; the excess is dropped at the end
        u = rng.random(n)
        kind = np.where(u < fs, SLOT_SHOT_NOISE, np.where(u < fs + fe, SLOT_ELECTRONIC, SLOT_DATA))
        kind = kind.astype(np.uint8)
        if period:
            kind[::period] = SLOT_PILOT
        alice = draw_symbols(
            s.modulation,
            n,
            modulation_variance_snu=ch.modulation_variance_snu,
            rng=rng,
            shaping_nu=s.shaping_nu,
        ).astype(np.complex64)
        pil = np.flatnonzero(kind == SLOT_PILOT)
        alice[pil] = plan.pilot_symbol
        phase = None
        if ch.local_oscillator == "local":
            phase = phase_walk(
                n,
                start_rad=phase_state,
                variance_per_symbol_rad2=ch.phase_noise_variance_per_symbol,
                ramp_rad_per_symbol=ch.frequency_offset_rad_per_symbol,
                rng=rng,
            )
            phase_state = float(phase[-1])
        field = transmit(
            alice.astype(np.complex128),
            transmittance=ch.transmittance,
            excess_noise_snu=ch.excess_noise_snu,
            phase_rad=phase,
            rng=rng,
        )
        signal_on = (kind == SLOT_DATA) | (kind == SLOT_PILOT)
        lo_on = (kind != SLOT_ELECTRONIC).astype(np.float64)
        field_in = field * signal_on
        quad = None
        if het:
            y = heterodyne(field_in, detector_efficiency=ch.detector_efficiency, rng=rng)
            y *= lo_on[:, None]
        else:
            quad = rng.integers(0, 2, size=n, dtype=np.uint8)
            y = homodyne(
                field_in,
                quadrature_angle_rad=quad.astype(np.float64) * (np.pi / 2),
                detector_efficiency=ch.detector_efficiency,
                rng=rng,
            )
            y *= lo_on
        pos = (start + np.arange(n)) / max(1, n_total - 1)
        gain = plan.gain * np.sqrt(1.0 + s.lo_power_drift_fraction * pos)
        g = gain[:, None] if het else gain
        raw = receiver_output(
            y,
            gain=g,
            electronic_gain=plan.gain,
            electronic_noise_snu=ch.electronic_noise_snu,
            rng=rng,
        )
        codes = plan.adc.digitise(raw)
        if het:
            pilot_codes = codes[pil]
        else:
            # Pilots are measured phase-diverse (both quadratures) by the same detector.
            py = np.empty((pil.size, 2))
            py[:, 0] = sqrt_eta * field[pil].real
            py[:, 1] = sqrt_eta * field[pil].imag
            py = py / math.sqrt(2.0) + rng.standard_normal(py.shape)
            praw = receiver_output(
                py,
                gain=gain[pil][:, None],
                electronic_gain=plan.gain,
                electronic_noise_snu=ch.electronic_noise_snu,
                rng=rng,
            )
            pilot_codes = plan.adc.digitise(praw)
            codes[pil] = pilot_codes[:, 0]
        if pil.size:
            wrapped = pilot_phases(pilot_codes, alice[pil])
            unwrapped = unwrap_continuing(wrapped, previous=last_unwrapped)
            last_unwrapped = float(unwrapped[-1])
        else:
            unwrapped = np.zeros(0)
        yield _Raw(start, kind, alice, codes, quad, pilot_codes, unwrapped)


def _finish(
    raw: _Raw,
    before: NDArray[np.float64],
    after: NDArray[np.float64],
    *,
    plan: _Plan,
    window: int,
    n_total: int,
) -> TransmissionBlock:
    n = raw.kind.size
    if plan.period:
        v = np.concatenate((before, raw.pilot_phase, after))
        sm = centred_moving_average(v, window=window)
        own = sm[before.size : before.size + raw.pilot_phase.size]
        nxt = float(sm[before.size + own.size]) if after.size else float(own[-1])
        psi = interpolate_frames(own, nxt, period=plan.period).reshape(-1)
    else:
        psi = np.zeros(n)
    keep = min(n, n_total - raw.start)
    npil = count_pilots(keep, plan.period)
    return TransmissionBlock(
        metadata=plan.metadata,
        start=raw.start,
        slot_kind=raw.kind[:keep],
        alice_symbols=raw.alice[:keep],
        bob_samples=raw.codes[:keep],
        quadrature=None if raw.quad is None else raw.quad[:keep],
        phase_estimate=psi[:keep].astype(np.float32),
        pilot_samples=raw.pilot_codes[:npil],
        total_slots=n_total,
    )


def simulate_stream(
    channel: ChannelParameters,
    *,
    n_symbols: int,
    rng: np.random.Generator,
    settings: SessionSettings | None = None,
) -> Iterator[TransmissionBlock]:
    """Simulate ``n_symbols`` slots (pilots and calibration slots included) chunk by chunk.

    Yields consecutive :class:`~cvqkd.dataset.TransmissionBlock` chunks; memory is bounded by
    ``settings.chunk_slots``. The result does not depend on the chunk size's effect on phase
    recovery (one chunk of look-ahead), but the random draws do depend on the chunk size.
    """
    s = settings or SessionSettings()
    if n_symbols < 1:
        raise ConfigError(f"n_symbols must be >= 1, got {n_symbols}")
    plan = _plan(channel, s)
    h = plan.window // 2
    before = np.zeros(0)
    pending: _Raw | None = None
    for raw in _raw_chunks(channel, s, plan, n_symbols, rng):
        if pending is not None:
            yield _finish(
                pending,
                before,
                raw.pilot_phase[: h + 1],
                plan=plan,
                window=plan.window,
                n_total=n_symbols,
            )
            before = np.concatenate((before, pending.pilot_phase))[-h:] if h else np.zeros(0)
        pending = raw
    assert pending is not None
    yield _finish(pending, before, np.zeros(0), plan=plan, window=plan.window, n_total=n_symbols)


def simulate_block(
    channel: ChannelParameters,
    *,
    n_symbols: int,
    rng: np.random.Generator,
    settings: SessionSettings | None = None,
) -> TransmissionBlock:
    """Simulate ``n_symbols`` slots in memory and return them as one block.

    Use :func:`simulate_stream` (or ``cvqkd simulate``) for long runs.
    """
    return TransmissionBlock.concatenate(
        simulate_stream(channel, n_symbols=n_symbols, rng=rng, settings=settings)
    )


def block_metadata(
    channel: ChannelParameters, settings: SessionSettings | None = None
) -> BlockMetadata:
    """The metadata a simulation with these parameters writes (ground truth included)."""
    return _plan(channel, settings or SessionSettings()).metadata
