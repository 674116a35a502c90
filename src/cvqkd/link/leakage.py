"""Linear crosstalk and amplifier ASE leaking into the quantum channel's LO mode.

Only light AT the quantum frequency matters: a coherent receiver rejects out-of-band power
(the LO mode is its filter; PHYSICS.md). Two in-band contributions come through the
multiplexer's finite isolation ISO (its classical port's rejection at the quantum frequency):

- crosstalk: each classical transmitter's out-of-band spectral density at ν_q (side lobes,
  laser spontaneous emission), given as an OSNR: S = P · 10^{−OSNR/10} / 12.5 GHz [W/Hz], both
  polarisations, 0.1 nm reference bandwidth (IEC 61280-2-9 OSNR convention). Photons per mode
  in the LO's polarisation: N = p · S · 10^{−ISO/10} / (hν).
- ASE of a booster EDFA after the classical transmitters: n_sp (G − 1) photons per mode and
  per polarisation (Desurvire, Erbium-Doped Fiber Amplifiers (1994)), n_sp from the noise
  figure NF = (1 + 2 n_sp (G − 1))/G; unpolarised, so N = p · 2 n_sp (G − 1) · 10^{−ISO/10}.

``p`` (``lo_polarisation_factor``) is ½ for unpolarised light and a single-polarisation LO, as
for Raman (Kumar 2015); 1 is the conservative choice. The results are photons per mode at the
multiplexer output; the caller applies the path to Bob (fibre for co-propagating traffic, the
demultiplexer's directivity for counter-propagating). Not modelled: the classical carriers'
own leakage through the demux (out of band: rejected), Rayleigh backscatter.

Example:
    >>> round(ase_photons_per_mode(gain_db=20.0, noise_figure_db=5.0, isolation_db=0.0), 1)
    157.6
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from cvqkd.units import PLANCK_J_S, FloatOrArray, db_to_linear

#: OSNR reference bandwidth: 0.1 nm at 1550 nm ≈ 12.5 GHz.
OSNR_REFERENCE_BANDWIDTH_HZ = 12.5e9


def crosstalk_photons_per_mode(
    *,
    launch_power_w: ArrayLike,
    osnr_db: ArrayLike,
    isolation_db: ArrayLike,
    quantum_frequency_hz: float,
    lo_polarisation_factor: float = 0.5,
) -> FloatOrArray:
    """Transmitter out-of-band photons per LO mode after the mux: p S 10^{−ISO/10}/(hν).

    ``osnr_db = inf`` means no out-of-band emission. Vectorised over channels.

    >>> crosstalk_photons_per_mode(launch_power_w=1e-3, osnr_db=float("inf"),
    ...     isolation_db=30.0, quantum_frequency_hz=193.1e12)
    0.0
    """
    p = np.asarray(launch_power_w, dtype=float)
    density = (
        p
        * np.asarray(db_to_linear(-np.asarray(osnr_db, dtype=float)))
        / OSNR_REFERENCE_BANDWIDTH_HZ
    )
    out = (
        lo_polarisation_factor
        * density
        * np.asarray(db_to_linear(-np.asarray(isolation_db, dtype=float)))
        / (PLANCK_J_S * quantum_frequency_hz)
    )
    return float(out) if out.ndim == 0 else out


def spontaneous_emission_factor(*, gain_db: float, noise_figure_db: float) -> float:
    """n_sp from NF = (1 + 2 n_sp (G − 1))/G (G > 1); 0 for G = 1 (no amplifier)."""
    g = float(db_to_linear(gain_db))
    if g <= 1.0:
        return 0.0
    nf = float(db_to_linear(noise_figure_db))
    return max((nf * g - 1.0) / (2.0 * (g - 1.0)), 1.0)


def ase_photons_per_mode(
    *,
    gain_db: float,
    noise_figure_db: float,
    isolation_db: float,
    lo_polarisation_factor: float = 0.5,
) -> float:
    """Booster ASE photons per LO mode after the mux: p · 2 n_sp (G − 1) · 10^{−ISO/10}."""
    g = float(db_to_linear(gain_db))
    nsp = spontaneous_emission_factor(gain_db=gain_db, noise_figure_db=noise_figure_db)
    return (
        lo_polarisation_factor * 2.0 * nsp * max(g - 1.0, 0.0) * float(db_to_linear(-isolation_db))
    )
