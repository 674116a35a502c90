"""Standard and ultra-low-loss single-mode fibre: attenuation vs wavelength, lumped losses,
effective length, chromatic dispersion with slope, nonlinear coefficient.

Attenuation model (dB/km, λ in µm)::

    α_dB(λ) = R/λ⁴ + B + A_IR·exp(−λ_IR/λ) + A_OH·exp(−(λ − 1.383)²/(2 w²))

Rayleigh scattering R/λ⁴, a wavelength-independent imperfection floor B, the infrared
(multi-phonon) absorption tail with the exp(−λ_IR/λ) shape and λ_IR = 48.48 µm (Miya et al.,
Electron. Lett. 15, 106 (1979); Walker, J. Lightwave Technol. 4, 1125 (1986)), and the residual
OH (water) peak at 1383 nm. The coefficients are fitted to typical datasheet values, not maxima:

- ``"smf"`` (ITU-T G.652.D, low water peak): fitted through 0.330 dB/km at 1310 nm, 0.187 at
  1550 nm and 0.205 at 1625 nm, giving ≈0.31 at 1383 nm and the minimum ≈0.186 dB/km near
  1567 nm. Anchors: Corning SMF-28 Ultra (PI1424) maxima ≤0.32 (1310), ≤0.18 (1550), ≤0.20
  dB/km (1625), i.e. the loss rises by ≈0.02 dB/km from 1550 to 1625 nm; a cabled/installed
  fibre sits ≈0.005–0.01 above. R = 0.945 dB·µm⁴/km lies in the 0.8–0.95 range reported for
  Ge-doped cores. A_IR = 5.47e11 dB/km (≈0.014 dB/km at 1550, ≈0.060 at 1625 nm) is an
  *effective* long-wavelength term: it carries the silica multi-phonon tail (≈0.01–0.03 dB/km
  at 1.6 µm, Walker 1986) plus the bend/microbend loss that grows with λ in G.652 fibre (the
  reason datasheets give 1625 nm 0.02 dB/km above 1550 nm). An earlier fit put the minimum
  at ≈1600 nm with 1625 nm below 1550 nm, which no G.652.D datasheet shows.
- ``"ull"`` (ITU-T G.654.E pure-silica core, e.g. Sumitomo Z-PLUS / Corning Vascade EX2000
  class): ≈0.154 dB/km at 1550 nm, ≈0.27 at 1310 nm, same long-wavelength term.
- ``"constant"``: the user's dB/km at every wavelength.

Dispersion D(λ) = D_ref + S·(λ − λ_ref), G.652 typical D = 16.7 ps/(nm·km) and
S = 0.056 ps/(nm²·km) at 1550 nm (ITU-T G.652 Table; SMF-28 Ultra datasheet); nonlinear
coefficient γ = 1.3 /(W·km) (Agrawal, Nonlinear Fiber Optics, A_eff ≈ 80 µm², n₂ = 2.6e-20 m²/W).

SI inside: ``dispersion_s_per_m2`` is ps/(nm·km) × 1e-6, ``dispersion_slope_s_per_m3`` is
ps/(nm²·km) × 1e3, ``nonlinear_coefficient_per_w_m`` is /(W·km) × 1e-3.

Example:
    >>> f = Fibre(length_m=25e3)
    >>> round(f.attenuation_db_per_km(wavelength_m=1550e-9), 3)
    0.187
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from cvqkd.units import FloatOrArray, attenuation_db_per_km_to_per_m, transmittance_from_loss_db

AttenuationModel = Literal["smf", "ull", "constant"]

#: Infrared absorption tail constant λ_IR [µm] (Miya 1979 shape).
_IR_LAMBDA_UM = 48.48

#: (R [dB µm⁴/km], B [dB/km], A_IR [dB/km], A_OH [dB/km], OH width σ [µm]) per preset.
_PRESETS: dict[str, tuple[float, float, float, float, float]] = {
    "smf": (0.945, 0.009, 5.47e11, 0.040, 0.013),
    "ull": (0.780, 0.005, 5.47e11, 0.020, 0.013),
}


def attenuation_db_per_km(
    *, wavelength_m: ArrayLike, model: AttenuationModel = "smf", loss_db_per_km: float = 0.2
) -> FloatOrArray:
    """Fibre attenuation [dB/km] at ``wavelength_m`` for a preset ``model`` (see module doc).

    ``loss_db_per_km`` is used only by ``model="constant"``. Vectorised over wavelength.

    >>> round(attenuation_db_per_km(wavelength_m=1310e-9), 2)
    0.33
    """
    lam_um = np.asarray(wavelength_m, dtype=float) * 1e6
    if model == "constant":
        out = np.full_like(lam_um, float(loss_db_per_km))
    else:
        r, b, a_ir, a_oh, w = _PRESETS[model]
        out = (
            r / lam_um**4
            + b
            + a_ir * np.exp(-_IR_LAMBDA_UM / lam_um)
            + a_oh * np.exp(-((lam_um - 1.383) ** 2) / (2.0 * w**2))
        )
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Fibre:
    """A fibre span with its lumped losses; SI units, dB only in names that say so.

    ``length_m``: span length. ``model``/``loss_db_per_km``: attenuation (module doc).
    ``lumped_loss_db``: connectors + splices + margin, applied after the span (the noise
    generated in the fibre sees it too). Dispersion at ``dispersion_reference_m``.
    """

    length_m: float
    model: AttenuationModel = "smf"
    loss_db_per_km: float = 0.2
    lumped_loss_db: float = 0.0
    dispersion_s_per_m2: float = 16.7e-6
    dispersion_slope_s_per_m3: float = 0.056e3
    dispersion_reference_m: float = 1550e-9
    nonlinear_coefficient_per_w_m: float = 1.3e-3

    def attenuation_db_per_km(self, *, wavelength_m: ArrayLike) -> FloatOrArray:
        """Attenuation [dB/km] at ``wavelength_m`` (vectorised)."""
        return attenuation_db_per_km(
            wavelength_m=wavelength_m, model=self.model, loss_db_per_km=self.loss_db_per_km
        )

    def attenuation_per_m(self, *, wavelength_m: ArrayLike) -> FloatOrArray:
        """Power attenuation coefficient α [1/m] (α = α_dB ln10/10 per km)."""
        return attenuation_db_per_km_to_per_m(self.attenuation_db_per_km(wavelength_m=wavelength_m))

    def span_transmittance(self, *, wavelength_m: ArrayLike) -> FloatOrArray:
        """Power transmittance of the span alone, e^{−αL}."""
        return _out(
            np.exp(-np.asarray(self.attenuation_per_m(wavelength_m=wavelength_m)) * self.length_m)
        )

    @property
    def lumped_transmittance(self) -> float:
        """Transmittance of connectors, splices and margin, 10^{−loss/10}."""
        return float(transmittance_from_loss_db(self.lumped_loss_db))

    def transmittance(self, *, wavelength_m: ArrayLike) -> FloatOrArray:
        """Span plus lumped losses: e^{−αL} · 10^{−lumped/10}."""
        return _out(
            np.asarray(self.span_transmittance(wavelength_m=wavelength_m))
            * self.lumped_transmittance
        )

    def effective_length_m(self, *, wavelength_m: ArrayLike) -> FloatOrArray:
        """Nonlinear effective length L_eff = (1 − e^{−αL})/α [m] (→ L as α → 0)."""
        a = np.asarray(self.attenuation_per_m(wavelength_m=wavelength_m), dtype=float)
        x = a * self.length_m
        return _out(
            self.length_m * np.where(x > 1e-12, -np.expm1(-x) / np.where(x > 0, x, 1.0), 1.0)
        )

    def dispersion_s_per_m2_at(self, *, wavelength_m: ArrayLike) -> FloatOrArray:
        """Chromatic dispersion D(λ) = D_ref + S (λ − λ_ref) [s/m²]."""
        lam = np.asarray(wavelength_m, dtype=float)
        return _out(
            self.dispersion_s_per_m2
            + self.dispersion_slope_s_per_m3 * (lam - self.dispersion_reference_m)
        )


def _out(x: np.ndarray) -> FloatOrArray:
    return float(x) if np.ndim(x) == 0 else x
