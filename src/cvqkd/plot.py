"""Plotting: pure functions ``(data, ax) -> ax`` with matplotlib, no I/O and no state.

The CLI creates figures, calls these, and saves PNG/SVG. Every axis label carries its unit.

Example:
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> import numpy as np
    >>> fig, ax = plt.subplots()
    >>> ax = key_rate_vs_distance({"GG02": np.array([1e-2, 1e-3])}, np.array([10.0, 50.0]), ax)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from numpy.typing import NDArray


def _positive(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Non-positive rates become NaN so a log axis shows where the key vanishes."""
    v = np.asarray(values, dtype=float)
    return np.where(v > 0, v, np.nan)


def key_rate_vs_distance(
    curves: Mapping[str, NDArray[np.float64]],
    distances_km: NDArray[np.float64],
    ax: Axes,
    *,
    ylabel: str = "secret key rate [bit/symbol]",
) -> Axes:
    """Key rate curves (log scale) against fibre length; one line per label."""
    for label, rates in curves.items():
        ax.semilogy(distances_km, _positive(rates), label=label)
    ax.set_xlabel("fibre length [km]")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return ax


def channel_frontier(
    frontiers: Mapping[str, NDArray[np.float64]],
    distances_km: NDArray[np.float64],
    ax: Axes,
    *,
    ylabel: str = "max classical channels with positive key",
) -> Axes:
    """Largest classical load (channels or total launch power) with a positive key vs length."""
    for label, values in frontiers.items():
        ax.plot(distances_km, values, marker="o", markersize=3, label=label)
    ax.set_xlabel("fibre length [km]")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return ax


def noise_vs_wavelength(
    wavelengths_nm: NDArray[np.float64],
    excess_noise_snu: NDArray[np.float64],
    key_rate_bits_per_symbol: NDArray[np.float64],
    ax: Axes,
    *,
    classical_wavelengths_nm: NDArray[np.float64] | None = None,
) -> Axes:
    """Input-referred excess noise and key rate against the quantum channel's wavelength."""
    ax.semilogy(wavelengths_nm, _positive(excess_noise_snu), color="tab:red", label="ξ (input)")
    ax.set_xlabel("quantum channel wavelength [nm]")
    ax.set_ylabel("excess noise at channel input [SNU]", color="tab:red")
    ax.grid(True, which="both", alpha=0.3)
    if classical_wavelengths_nm is not None and len(classical_wavelengths_nm):
        lo, hi = float(np.min(classical_wavelengths_nm)), float(np.max(classical_wavelengths_nm))
        ax.axvspan(lo, hi, color="grey", alpha=0.2, label="classical channels")
    twin = ax.twinx()
    twin.semilogy(wavelengths_nm, _positive(key_rate_bits_per_symbol), color="tab:blue")
    twin.set_ylabel("key rate [bit/symbol]", color="tab:blue")
    ax.legend(loc="upper left")
    return ax


def noise_budget_bars(sources_snu: Mapping[str, float], ax: Axes) -> Axes:
    """Horizontal bars: each noise source's input-referred excess noise (log scale)."""
    names = list(sources_snu)
    values = np.array([max(float(sources_snu[n]), 1e-12) for n in names])
    ax.barh(names, values, color="tab:orange")
    ax.set_xscale("log")
    ax.set_xlabel("excess noise at channel input [SNU]")
    ax.invert_yaxis()
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return ax
