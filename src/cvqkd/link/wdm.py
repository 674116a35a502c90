"""Classical WDM channel plans on the ITU-T G.694.1 grid.

The DWDM grid (ITU-T G.694.1 (10/2020) §6) is anchored at 193.1 THz: ν_n = 193.1 THz + n·Δ for
Δ ∈ {12.5, 25, 50, 100} GHz. Bands (ITU-T Series G Suppl. 39): O 1260–1360 nm,
E 1360–1460, S 1460–1530, C 1530–1565, L 1565–1625 nm.

A channel's ``direction`` is ``"co"`` when it travels with the quantum signal (Alice → Bob)
and ``"counter"`` against it. Powers are in W inside; dBm only in the helpers' argument names.

Example:
    >>> plan = channel_comb(count=4, spacing_hz=100e9, start_frequency_hz=193.1e12,
    ...                     launch_power_dbm=0.0)
    >>> [round(c.frequency_hz / 1e12, 1) for c in plan]
    [193.1, 193.2, 193.3, 193.4]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError
from cvqkd.units import (
    SPEED_OF_LIGHT_M_S,
    dbm_to_watt,
)

Direction = Literal["co", "counter"]

#: G.694.1 anchor frequency [Hz].
GRID_ANCHOR_HZ = 193.1e12
#: Allowed fixed-grid spacings [Hz] (G.694.1).
GRID_SPACINGS_HZ = (12.5e9, 25e9, 50e9, 100e9)
#: Band edges [m] (G Suppl. 39).
BANDS_M: dict[str, tuple[float, float]] = {
    "O": (1260e-9, 1360e-9),
    "E": (1360e-9, 1460e-9),
    "S": (1460e-9, 1530e-9),
    "C": (1530e-9, 1565e-9),
    "L": (1565e-9, 1625e-9),
}


@dataclass(frozen=True)
class ClassicalChannel:
    """One classical carrier: frequency [Hz], launch power [W] at its transmitter-side fibre
    end, and direction relative to the quantum signal."""

    frequency_hz: float
    launch_power_w: float
    direction: Direction = "co"

    @property
    def wavelength_m(self) -> float:
        """Vacuum wavelength c/ν [m]."""
        return SPEED_OF_LIGHT_M_S / self.frequency_hz


@dataclass(frozen=True)
class WdmPlan:
    """The classical traffic in the fibre and what its transmitters leak at the quantum
    frequency.

    ``transmitter_osnr_db``: carrier power over the transmitter's out-of-band noise (side
    lobes, laser spontaneous emission) in 0.1 nm (12.5 GHz), both polarisations, measured at
    the quantum frequency (``inf`` = none). ``booster_gain_db``/``booster_noise_figure_db``:
    an EDFA after the classical transmitters (gain 0 dB = none); its ASE is
    n_sp(G − 1) photons per mode per polarisation. Both are counted only when the quantum
    channel lies inside ``emission_band`` (G Suppl. 39 letters, e.g. "C" or "C+L"): a C-band
    transmitter or EDFA emits nothing in, e.g., the O band. ``mux_isolation_db``: how strongly the
    multiplexer's classical port rejects light at the quantum frequency. ``signal_bandwidth_hz``:
    each classical channel's optical bandwidth (≈ its symbol rate), which spreads FWM products.
    """

    channels: tuple[ClassicalChannel, ...] = ()
    transmitter_osnr_db: float = float("inf")
    booster_gain_db: float = 0.0
    booster_noise_figure_db: float = 5.0
    mux_isolation_db: float = 50.0
    signal_bandwidth_hz: float = 32e9
    emission_band: str = "C"

    @property
    def frequencies_hz(self) -> NDArray[np.float64]:
        """Carrier frequencies [Hz] as an array (vectorised models use these)."""
        return np.array([c.frequency_hz for c in self.channels], dtype=float)

    @property
    def launch_powers_w(self) -> NDArray[np.float64]:
        """Launch powers [W] as an array."""
        return np.array([c.launch_power_w for c in self.channels], dtype=float)

    @property
    def co_propagating(self) -> NDArray[np.bool_]:
        """Mask of the channels travelling with the quantum signal."""
        return np.array([c.direction == "co" for c in self.channels], dtype=bool)

    @property
    def total_launch_power_w(self) -> float:
        """Sum of the launch powers [W]."""
        return float(self.launch_powers_w.sum()) if self.channels else 0.0

    def with_channels(self, channels: Sequence[ClassicalChannel]) -> WdmPlan:
        """A copy with another channel list (for sweeps)."""
        from dataclasses import replace

        return replace(self, channels=tuple(channels))

    def scaled_power(self, *, factor: float) -> WdmPlan:
        """A copy with every launch power multiplied by ``factor``."""
        return self.with_channels(
            [
                ClassicalChannel(c.frequency_hz, c.launch_power_w * factor, c.direction)
                for c in self.channels
            ]
        )


def grid_frequency_hz(
    n: int | NDArray[np.int64], *, spacing_hz: float = 100e9
) -> float | NDArray[np.float64]:
    """ITU-T G.694.1 grid frequency ν = 193.1 THz + n·Δ [Hz].

    >>> grid_frequency_hz(-1, spacing_hz=50e9)
    193050000000000.0
    """
    _check_spacing(spacing_hz)
    out = GRID_ANCHOR_HZ + np.asarray(n) * spacing_hz
    return float(out) if np.ndim(out) == 0 else out


def snap_to_grid_hz(frequency_hz: float, *, spacing_hz: float = 100e9) -> float:
    """The grid frequency nearest to ``frequency_hz`` (G.694.1, spacing ``spacing_hz``)."""
    n = round((frequency_hz - GRID_ANCHOR_HZ) / spacing_hz)
    return float(grid_frequency_hz(n, spacing_hz=spacing_hz))


def _check_spacing(spacing_hz: float) -> None:
    if not any(abs(spacing_hz - s) < 1.0 for s in GRID_SPACINGS_HZ) and spacing_hz % 100e9 != 0:
        raise ConfigError(
            f"channel spacing {spacing_hz / 1e9:g} GHz is not on the ITU-T G.694.1 grid "
            "(12.5, 25, 50, 100 GHz or a multiple of 100 GHz)"
        )


def channel_comb(
    *,
    count: int,
    spacing_hz: float = 100e9,
    start_wavelength_m: float | None = None,
    start_frequency_hz: float | None = None,
    launch_power_dbm: float = 0.0,
    direction: Direction = "co",
) -> tuple[ClassicalChannel, ...]:
    """``count`` channels ``spacing_hz`` apart on the G.694.1 grid.

    The first channel is the grid frequency nearest to ``start_wavelength_m`` (or
    ``start_frequency_hz``); the comb then climbs in frequency if started from a frequency and
    climbs in wavelength (falls in frequency) if started from a wavelength, so
    ``channel_comb(count=40, start_wavelength_m=1530e-9)`` fills the C band upwards from 1530 nm.
    """
    if count < 0:
        raise ConfigError(f"channel count must be >= 0, got {count}")
    _check_spacing(spacing_hz)
    if (start_wavelength_m is None) == (start_frequency_hz is None):
        raise ConfigError("give exactly one of start_wavelength_m / start_frequency_hz")
    if start_wavelength_m is not None:
        f0 = snap_to_grid_hz(SPEED_OF_LIGHT_M_S / start_wavelength_m, spacing_hz=spacing_hz)
        step = -spacing_hz
    else:
        assert start_frequency_hz is not None
        f0 = snap_to_grid_hz(start_frequency_hz, spacing_hz=spacing_hz)
        step = spacing_hz
    p = float(dbm_to_watt(launch_power_dbm))
    return tuple(ClassicalChannel(f0 + i * step, p, direction) for i in range(count))


def band_comb(
    *,
    band: str,
    spacing_hz: float = 100e9,
    launch_power_dbm: float = 0.0,
    direction: Direction = "co",
    exclude_hz: Sequence[float] = (),
    guard_hz: float = 0.0,
) -> tuple[ClassicalChannel, ...]:
    """Every grid channel inside ``band`` ("C", "L", "C+L", or any G Suppl. 39 band letters
    joined by "+"), skipping those within ``guard_hz`` of a frequency in ``exclude_hz`` (e.g.
    the quantum channel)."""
    chans: list[ClassicalChannel] = []
    p = float(dbm_to_watt(launch_power_dbm))
    for b in band.upper().split("+"):
        if b not in BANDS_M:
            raise ConfigError(f"unknown band {b!r}; choose from {', '.join(BANDS_M)} (e.g. 'C+L')")
        lo_m, hi_m = BANDS_M[b]
        f_lo, f_hi = SPEED_OF_LIGHT_M_S / hi_m, SPEED_OF_LIGHT_M_S / lo_m
        _check_spacing(spacing_hz)
        n_lo = int(np.ceil((f_lo - GRID_ANCHOR_HZ) / spacing_hz - 1e-9))
        n_hi = int(np.floor((f_hi - GRID_ANCHOR_HZ) / spacing_hz + 1e-9))
        for n in range(n_lo, n_hi + 1):
            f = GRID_ANCHOR_HZ + n * spacing_hz
            if any(abs(f - x) <= guard_hz for x in exclude_hz):
                continue
            chans.append(ClassicalChannel(f, p, direction))
    uniq = {round(c.frequency_hz): c for c in chans}
    return tuple(uniq[k] for k in sorted(uniq))


def in_band(*, wavelength_m: float, band: str) -> bool:
    """Whether ``wavelength_m`` lies in ``band`` ("C", "C+L", ...; G Suppl. 39 edges).

    >>> in_band(wavelength_m=1550e-9, band="C"), in_band(wavelength_m=1310e-9, band="C+L")
    (True, False)
    """
    for b in band.upper().split("+"):
        if b not in BANDS_M:
            raise ConfigError(f"unknown band {b!r}; choose from {', '.join(BANDS_M)} (e.g. 'C+L')")
        lo_m, hi_m = BANDS_M[b]
        if lo_m <= wavelength_m <= hi_m:
            return True
    return False
