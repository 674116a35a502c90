"""Phase noise: the excess noise left by imperfect phase recovery between Alice and Bob's LO.

ξ_phase = 2 V_A (1 − e^{−V_err/2})  [SNU, input-referred] (Marie & Alléaume, PRA 95, 012316
(2017), phase-noise contribution; ≈ V_A V_err for small V_err). V_err [rad²] is the variance
of the residual phase error φ − ψ̂ after Bob's phase correction.

Transmitted LO: only Alice's laser drifts over the LO/signal path mismatch τ,
V_err = 2π Δν_A τ (Wiener phase noise of a Lorentzian laser; Laudenbach et al., Adv. Quantum
Technol. 1, 1800011 (2018) §8) — :func:`phase_error_variance_rad2`.

Local LO ("generating the LO locally", Qi et al., PRX 5, 041009 (2015); Soh et al., PRX 5,
041010 (2015); Marie & Alléaume 2017): Alice interleaves a strong pilot every P symbol slots;
Bob measures each pilot phase-diverse, averages the unwrapped pilot phases over a centred
window of W pilots and interpolates linearly to the slots in between (the DSP of
:mod:`cvqkd.sim.phase_recovery`). Two terms remain — :func:`pilot_residual_phase_variance_rad2`:

- laser drift between the pilots: the relative phase is a Wiener process with variance
  σ_w² = 2π(Δν_A + Δν_B)/f_sym per slot (Laudenbach 2018 §8); the estimate at slot j of a
  frame is a weighted mean of the pilot phases, so the error is a weighted sum of Wiener
  increments with variance σ_w² Σ_{s,t} c_s c_t ℓ(s, t), ℓ the overlap of [t_s, j] and
  [t_t, j] (zero for pilots on opposite sides of j). For W = 1 this is the Brownian bridge
  σ_w² P f(1 − f), f = j/P.
- pilot estimation error: each pilot phase has variance σ_n² = N/A² (N the per-quadrature
  noise, A the pilot amplitude per quadrature at Bob; first order in 1/SNR, Marie & Alléaume
  2017 Eq. for the reference-pulse phase estimate). Phase-diverse detection splits the pilot
  in two, A² = η T |p|²/2 = 2 η T n_p (n_p = |p|²/4 pilot photons at Alice, SNU convention
  vacuum = 1), N = 1 + v_el + η T ξ/2. The interpolated, window-averaged error has variance
  σ_n² [(W − 1) + (1 − f)² + f²]/W².

Both are averaged over the P slots of a frame (the pilot slot itself included: f = 0), a
derivation for this DSP that is exact for Gaussian pilot errors and a discrete Wiener phase
(tests compare it with a Monte-Carlo of the simulator's own DSP functions). A linear frequency
offset is removed exactly by a centred window and linear interpolation and adds nothing.

What a receiver measures: with a residual error ε ~ N(0, V) the regression of Bob's data on
Alice's sees T̂ = T e^{−V} and an input-referred excess V_A(e^{V} − 1); Marie & Alléaume's
2V_A(1 − e^{−V/2}) (T held at its true value) agrees to first order, V_A V, and differs by
≈ 3V/4 relative (0.1 % at seed-120km's V ≈ 1.2e-3 rad²).

Example:
    >>> round(phase_noise_snu(modulation_variance_snu=4.0, phase_error_variance_rad2=1e-3), 6)
    0.003999
    >>> v = pilot_residual_phase_variance_rad2(pilot_period_slots=2, window_pilots=1,
    ...     wiener_variance_per_slot_rad2=0.0, pilot_phase_variance_rad2=1.0)
    >>> v  # f = 0 and 1/2: mean of 1 and ½
    0.75
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from cvqkd.units import FloatOrArray


def phase_error_variance_rad2(
    *,
    lo: Literal["local", "transmitted"],
    transmitter_linewidth_hz: float,
    lo_linewidth_hz: float,
    delay_s: float,
    residual_rad2: float = 0.0,
) -> float:
    """V_err [rad²]: laser drift 2π Δν τ over ``delay_s`` plus a residual estimation error.

    Δν = Δν_A for a transmitted LO, Δν_A + Δν_B for a local one (Laudenbach 2018 §8).

    >>> round(phase_error_variance_rad2(lo="local", transmitter_linewidth_hz=1e3,
    ...     lo_linewidth_hz=1e3, delay_s=1e-6), 6)
    0.012566
    """
    linewidth = transmitter_linewidth_hz + (lo_linewidth_hz if lo == "local" else 0.0)
    return 2.0 * np.pi * linewidth * delay_s + residual_rad2


def wiener_variance_per_slot_rad2(
    *, transmitter_linewidth_hz: float, lo_linewidth_hz: float, symbol_rate_hz: float
) -> float:
    """σ_w² = 2π(Δν_A + Δν_B)/f_sym [rad²]: relative phase diffusion of two free-running
    Lorentzian lasers per symbol slot (Laudenbach 2018 §8).

    >>> round(wiener_variance_per_slot_rad2(transmitter_linewidth_hz=1e3, lo_linewidth_hz=1e3,
    ...     symbol_rate_hz=1e8), 9)
    0.000125664
    """
    return 2.0 * np.pi * (transmitter_linewidth_hz + lo_linewidth_hz) / symbol_rate_hz


def pilot_phase_variance_rad2(
    *,
    pilot_mean_photon_number: float,
    transmittance: float,
    detector_efficiency: float,
    electronic_noise_snu: float,
    excess_noise_snu: float = 0.0,
) -> float:
    """σ_n² = N/A² [rad²]: one pilot's phase-estimate variance (phase-diverse detection).

    A² = 2 η T n_p (the pilot |p| = 2√n_p √SNU split over two quadratures), N = 1 + v_el +
    η T ξ/2 (vacuum, electronic noise, excess noise per quadrature). First order in 1/SNR.

    >>> pilot_phase_variance_rad2(pilot_mean_photon_number=1e4, transmittance=0.5,
    ...     detector_efficiency=1.0, electronic_noise_snu=0.0)
    0.0001
    """
    eta_t = detector_efficiency * transmittance
    noise = 1.0 + electronic_noise_snu + eta_t * excess_noise_snu / 2.0
    return noise / (2.0 * eta_t * pilot_mean_photon_number)


def pilot_residual_phase_variance_rad2(
    *,
    pilot_period_slots: int,
    window_pilots: int,
    wiener_variance_per_slot_rad2: float,
    pilot_phase_variance_rad2: float,
) -> float:
    """Mean residual phase-error variance V_err [rad²] of pilot-aided phase recovery.

    Pilots every ``pilot_period_slots`` (P ≥ 2) slots, centred moving average over
    ``window_pilots`` (odd W) pilots, linear interpolation in between (module doc). Averaged
    over the P slots of a frame.

    >>> round(pilot_residual_phase_variance_rad2(pilot_period_slots=10, window_pilots=1,
    ...     wiener_variance_per_slot_rad2=1e-4, pilot_phase_variance_rad2=0.0), 8)
    0.000165
    """
    p, w = int(pilot_period_slots), int(window_pilots)
    if p < 2:
        raise ValueError(f"pilot_period_slots must be >= 2, got {p}")
    if w < 1 or w % 2 == 0:
        raise ValueError(f"window_pilots must be an odd number >= 1, got {w}")
    h = w // 2
    # pilot indices i = −h .. h+1 (relative to the frame's own pilot), at slot times i·P
    idx = np.arange(-h, h + 2)
    t_pil = idx * p
    in_left = (idx >= -h) & (idx <= h)  # averaged into this frame's estimate
    in_right = (idx >= -h + 1) & (idx <= h + 1)  # into the next frame's estimate
    total = 0.0
    for j in range(p):
        f = j / p
        c = ((1.0 - f) * in_left + f * in_right) / w  # weights of each pilot phase, Σ c = 1
        # Cov(B_j − B_s, B_j − B_t) for a random walk: overlap of the two intervals to slot j
        d = j - t_pil  # > 0: pilot before slot j
        same_side = np.sign(d)[:, None] * np.sign(d)[None, :] > 0
        overlap = np.where(same_side, np.minimum(np.abs(d)[:, None], np.abs(d)[None, :]), 0)
        drift = wiener_variance_per_slot_rad2 * float(c @ overlap @ c)
        noise = pilot_phase_variance_rad2 * float(c @ c)
        total += drift + noise
    return total / p


def phase_noise_snu(
    *, modulation_variance_snu: ArrayLike, phase_error_variance_rad2: ArrayLike
) -> FloatOrArray:
    """ξ_phase = 2 V_A (1 − e^{−V_err/2}) [SNU] (Marie & Alléaume 2017); vectorised."""
    va = np.asarray(modulation_variance_snu, dtype=float)
    v = np.asarray(phase_error_variance_rad2, dtype=float)
    out = -2.0 * va * np.expm1(-v / 2.0)
    return float(out) if out.ndim == 0 else out
