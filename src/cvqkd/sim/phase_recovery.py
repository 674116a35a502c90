"""Local-LO phase recovery from time-multiplexed pilots (Bob's DSP).

With a locally generated LO the relative phase φ(t) between Alice's laser and Bob's LO drifts
(Wiener process plus frequency offset). Alice interleaves a known pilot symbol p every P slots;
Bob measures it with both quadratures (phase diverse) and estimates, per pilot,

    ψ_f = arg(p_f · conj(y_f))           (y_f ≈ A e^{−iφ} p_f ⇒ ψ_f ≈ φ)

then unwraps ψ across pilots, averages it over a centred window of W pilots (reduces the pilot's
shot-noise-limited error, variance ≈ (1 + v_el)/A² per pilot, by ≈ W) and interpolates linearly
between pilots to every slot (Qi et al., PRX 5, 041009 (2015); Soh et al., PRX 5, 041010
(2015); Marie & Alléaume, PRA 95, 012316 (2017)). Bob then uses ψ̂: a heterodyne sample is
rotated y·e^{iψ̂}; for homodyne, the reference value is x = Re(e^{−i(θ+ψ̂)} a). What remains,
φ − ψ̂, is residual phase noise and appears as excess noise ≈ V_A·Var(φ − ψ̂) in the data.

Example:
    >>> unwrap_continuing(np.array([3.0, -3.0]), previous=None).round(3).tolist()
    [3.0, 3.283]
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def pilot_phases(
    pilot_samples: NDArray[np.generic], pilot_symbols: NDArray[np.complexfloating]
) -> NDArray[np.float64]:
    """Per-pilot phase estimate ψ = arg(p · conj(y)) [rad], wrapped to (−π, π].

    ``pilot_samples`` has shape (n, 2) (columns x, p; any units: the angle is scale-free).
    """
    y = pilot_samples[:, 0].astype(np.float64) + 1j * pilot_samples[:, 1].astype(np.float64)
    return np.angle(np.asarray(pilot_symbols, dtype=np.complex128) * np.conj(y))


def unwrap_continuing(
    wrapped: NDArray[np.float64], *, previous: float | None
) -> NDArray[np.float64]:
    """Unwrap ``wrapped`` phases continuing from the last unwrapped value ``previous``.

    Successive differences are wrapped to (−π, π]; with ``previous=None`` the first value is
    kept. Streaming: feeding chunks with ``previous`` = last output equals one-shot unwrapping.
    """
    if wrapped.size == 0:
        return wrapped.astype(np.float64)
    start = wrapped[0] if previous is None else previous
    d = np.diff(np.concatenate(([start], wrapped)))
    d = (d + np.pi) % (2.0 * np.pi) - np.pi
    return start + np.cumsum(d)


def centred_moving_average(values: NDArray[np.float64], *, window: int) -> NDArray[np.float64]:
    """Centred moving average over ``window`` (odd) samples, shrinking at the array's edges.

    >>> centred_moving_average(np.array([0.0, 3.0, 6.0, 9.0]), window=3).tolist()
    [1.5, 3.0, 6.0, 7.5]
    """
    n = values.size
    h = window // 2
    c = np.concatenate(([0.0], np.cumsum(values)))
    i = np.arange(n)
    lo = np.clip(i - h, 0, n)
    hi = np.clip(i + h + 1, 0, n)
    return (c[hi] - c[lo]) / (hi - lo)


def interpolate_frames(
    pilot_phase: NDArray[np.float64], next_phase: float, *, period: int
) -> NDArray[np.float64]:
    """Linear interpolation of per-frame pilot phases to all slots, shape (frames, period).

    Frame f's slot j lies j/period of the way from pilot f to pilot f+1 (``next_phase`` is the
    pilot after the last frame).

    >>> interpolate_frames(np.array([0.0, 1.0]), 2.0, period=2).tolist()
    [[0.0, 0.5], [1.0, 1.5]]
    """
    nxt = np.concatenate((pilot_phase[1:], [next_phase]))
    frac = np.arange(period) / period
    return pilot_phase[:, None] + frac[None, :] * (nxt - pilot_phase)[:, None]
