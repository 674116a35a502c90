"""Phase noise: the excess noise left by imperfect phase recovery between Alice and Bob's LO.

ξ_phase = 2 V_A (1 − e^{−V_err/2})  [SNU, input-referred] (Marie & Alléaume, PRA 95, 012316
(2017), Eq. for the phase-noise contribution; ≈ V_A V_err for small V_err). V_err [rad²] is the
variance of the residual phase error: for a local LO (LLO) the two free-running lasers drift
by V_drift = 2π(Δν_A + Δν_B)·τ between the phase reference and the signal it corrects
(Laudenbach et al. 2018 §8; Lorentzian lasers: Wiener phase noise); for a transmitted LO only
Alice's laser drifts over the LO/signal path mismatch, V_drift = 2π Δν_A τ. A residual
estimation error (pilot SNR) adds to either.

Example:
    >>> round(phase_noise_snu(modulation_variance_snu=4.0, phase_error_variance_rad2=1e-3), 6)
    0.003999
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
    """V_err [rad²]: laser drift over ``delay_s`` plus the residual estimation error.

    >>> round(phase_error_variance_rad2(lo="local", transmitter_linewidth_hz=1e3,
    ...     lo_linewidth_hz=1e3, delay_s=1e-6), 6)
    0.012566
    """
    linewidth = transmitter_linewidth_hz + (lo_linewidth_hz if lo == "local" else 0.0)
    return 2.0 * np.pi * linewidth * delay_s + residual_rad2


def phase_noise_snu(
    *, modulation_variance_snu: ArrayLike, phase_error_variance_rad2: ArrayLike
) -> FloatOrArray:
    """ξ_phase = 2 V_A (1 − e^{−V_err/2}) [SNU] (Marie & Alléaume 2017); vectorised."""
    va = np.asarray(modulation_variance_snu, dtype=float)
    v = np.asarray(phase_error_variance_rad2, dtype=float)
    out = -2.0 * va * np.expm1(-v / 2.0)
    return float(out) if out.ndim == 0 else out
