"""Bob's coherent receiver: homodyne or heterodyne, detector efficiency, electronic noise, ADC.

In SNU, for an input field b (mean field plus excess noise, see :mod:`cvqkd.sim.channel`):

- homodyne along angle θ:  y = √η Re(e^{−iθ} b) + n,           n ~ N(0, 1)
- heterodyne:             (y_x, y_p) = √(η/2) (Re b, Im b) + (n_x, n_p),  n ~ N(0, 1) each

so that Var(y) = ηT V_A + ηTξ + 1 (homodyne) and ηT V_A/2 + ηTξ/2 + 1 per heterodyne quadrature
before electronic noise (Laudenbach et al. 2018, Eqs. for V_B; the vacuum terms of the channel
and of the detector's inefficiency add up to exactly one shot-noise unit). The physical output
is ``raw = g(t)·y + g₀ √v_el n_el``: the optical part scales with the LO power (gain g, in ADC
codes per √SNU), the electronic noise does not. The ADC rounds to integer codes and clips at its
rails; quantisation noise (≈ Δ²/12) then sits in every record, calibrations included.

Example:
    >>> adc = Adc(bits=8)
    >>> adc.digitise(np.array([0.0, 3.2, 300.0])).tolist()
    [0, 3, 127]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


def homodyne(
    field: NDArray[np.complex128],
    *,
    quadrature_angle_rad: NDArray[np.float64],
    detector_efficiency: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Homodyne outcome in SNU (shot noise included, electronic noise not).

    >>> y = homodyne(np.zeros(200_000, complex), quadrature_angle_rad=np.zeros(200_000),
    ...              detector_efficiency=0.5, rng=np.random.default_rng(0))
    >>> abs(float(y.var()) - 1.0) < 0.02
    True
    """
    proj = (field * np.exp(-1j * quadrature_angle_rad)).real
    return math.sqrt(detector_efficiency) * proj + rng.standard_normal(field.size)


def heterodyne(
    field: NDArray[np.complex128], *, detector_efficiency: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Heterodyne outcome, shape (n, 2) columns (x, p), in SNU (shot noise included)."""
    out = np.empty((field.size, 2))
    g = math.sqrt(detector_efficiency / 2.0)
    out[:, 0] = g * field.real
    out[:, 1] = g * field.imag
    out += rng.standard_normal(out.shape)
    return out


@dataclass(frozen=True)
class Adc:
    """An ideal-linearity ADC of ``bits`` resolution whose input is expressed in codes.

    Codes are integers in [−2^(bits−1), 2^(bits−1) − 1] (the receiver gain absorbs volts per
    code). ``bits = 0`` means no quantisation (float samples, no rails).
    """

    bits: int

    @property
    def min_code(self) -> int:
        """Lowest code (the negative rail)."""
        return -(2 ** (self.bits - 1)) if self.bits else 0

    @property
    def max_code(self) -> int:
        """Highest code (the positive rail)."""
        return 2 ** (self.bits - 1) - 1 if self.bits else 0

    @property
    def dtype(self) -> type[np.generic]:
        """Storage dtype of the codes."""
        if self.bits == 0:
            return np.float64
        return np.int16 if self.bits <= 16 else np.int32

    def digitise(self, raw: NDArray[np.float64]) -> NDArray[np.generic]:
        """Round to the nearest code and clip at the rails (float passthrough if bits = 0)."""
        if self.bits == 0:
            return np.asarray(raw, dtype=np.float64)
        codes = np.rint(raw)
        np.clip(codes, self.min_code, self.max_code, out=codes)
        return codes.astype(self.dtype)


def receiver_output(
    optical_snu: NDArray[np.float64],
    *,
    gain: NDArray[np.float64] | float,
    electronic_gain: float,
    electronic_noise_snu: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Analogue output before the ADC: gain·y + g₀ √v_el n_el (units: ADC codes)."""
    out = optical_snu * gain
    if electronic_noise_snu > 0:
        out = out + rng.standard_normal(optical_snu.shape) * (
            electronic_gain * math.sqrt(electronic_noise_snu)
        )
    return out
