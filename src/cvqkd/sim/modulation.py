"""Alice's modulation: Gaussian and discrete constellations in shot-noise units, and pilots.

Conventions (PHYSICS.md): a coherent state |α⟩ has quadratures x = 2 Re α, p = 2 Im α, so the
vacuum variance is 1 SNU. Alice's symbol is the complex displacement ``a = x + i p`` in SNU; the
modulation variance per quadrature is V_A = E[x²] = E[p²] and the mean photon number is
E|α|² = V_A/2. Every constellation here is scaled so that E[|a|²]/2 = V_A exactly.

Example:
    >>> c = constellation("qpsk", modulation_variance_snu=2.0)
    >>> round(float((c.probabilities * abs(c.points) ** 2).sum() / 2), 12)
    2.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError

#: Modulation names accepted everywhere (CLI, dataset metadata).
MODULATIONS: tuple[str, ...] = (
    "gaussian",
    "qpsk",
    "psk8",
    "qam16",
    "qam64",
    "qam256",
    "psqam16",
    "psqam64",
    "psqam256",
)


@dataclass(frozen=True)
class Constellation:
    """A finite constellation: points in SNU (complex, x + i p) with their probabilities.

    ``points`` are scaled so that Σ p_k |a_k|² / 2 = ``modulation_variance_snu``. The coherent
    amplitudes for the key-rate bound are ``points / 2`` (α = (x + i p)/2).
    """

    name: str
    points: NDArray[np.complex128]
    probabilities: NDArray[np.float64]
    modulation_variance_snu: float

    @property
    def alphas(self) -> NDArray[np.complex128]:
        """Coherent-state amplitudes α_k = a_k / 2 (mean photon number Σ p_k |α_k|² = V_A/2)."""
        return self.points / 2.0

    def draw(self, n: int, *, rng: np.random.Generator) -> NDArray[np.complex128]:
        """Draw ``n`` i.i.d. symbols (complex SNU displacements) from the constellation."""
        m = self.points.size
        if np.allclose(self.probabilities, 1.0 / m):
            idx = rng.integers(0, m, size=n)
        else:
            cdf = np.cumsum(self.probabilities)
            cdf[-1] = 1.0
            idx = np.searchsorted(cdf, rng.random(n), side="right")
        return self.points[idx]


def _qam_levels(order: int) -> NDArray[np.float64]:
    side = round(np.sqrt(order))
    if side * side != order:
        raise ConfigError(f"QAM order {order} is not a square")
    return np.arange(-(side - 1), side, 2, dtype=float)


def default_shaping_nu(order: int) -> float:
    """Default shaping parameter ν for probabilistically shaped QAM on the odd-integer grid.

    Weights p ∝ exp(−ν|a|²) on levels ±1, ±3, …, ±(√M − 1); ν is chosen so that the outermost
    level sits at 3 standard deviations of the per-quadrature Gaussian (σ² = 1/(2ν)), the same
    default as :func:`cvqkd.keyrate.discrete.constellation` (``shaping="discrete-gaussian"``),
    so that simulated data and the key-rate bound describe one constellation.
    """
    edge = np.sqrt(order) - 1.0
    sigma = edge / 3.0
    return float(1.0 / (2.0 * sigma**2))


def constellation(
    name: str, *, modulation_variance_snu: float, shaping_nu: float | None = None
) -> Constellation:
    """Build a discrete constellation by name, scaled to V_A (SNU per quadrature).

    Names: ``qpsk``, ``psk8`` (M-PSK, points e^{i(2πk/M + π/M)}), ``qam16``/``qam64``/``qam256``
    (square QAM, uniform), ``psqam16``/``psqam64``/``psqam256`` (square QAM with discrete-Gaussian
    weights p ∝ exp(−ν|a|²), Denys–Brown–Leverrier, Quantum 5, 540 (2021)); ``shaping_nu`` is ν on
    the odd-integer grid (default :func:`default_shaping_nu`).

    >>> constellation("qam16", modulation_variance_snu=1.0).points.size
    16
    """
    if not modulation_variance_snu > 0:
        raise ConfigError(f"modulation_variance_snu must be > 0, got {modulation_variance_snu}")
    if name == "qpsk" or name == "psk8":
        m = 4 if name == "qpsk" else 8
        k = np.arange(m)
        pts = np.exp(1j * (2 * np.pi * k / m + np.pi / m))
        probs = np.full(m, 1.0 / m)
    elif name in ("qam16", "qam64", "qam256", "psqam16", "psqam64", "psqam256"):
        order = int(name.removeprefix("ps").removeprefix("qam"))
        lv = _qam_levels(order)
        xx, pp = np.meshgrid(lv, lv, indexing="ij")
        pts = (xx + 1j * pp).ravel()
        if name.startswith("ps"):
            nu = default_shaping_nu(order) if shaping_nu is None else float(shaping_nu)
            if not nu >= 0:
                raise ConfigError(f"shaping_nu must be >= 0, got {shaping_nu}")
            w = np.exp(-nu * np.abs(pts) ** 2)
            probs = w / w.sum()
        else:
            probs = np.full(pts.size, 1.0 / pts.size)
    else:
        raise ConfigError(
            f"unknown discrete modulation {name!r}; choose one of {', '.join(MODULATIONS[1:])}"
        )
    power = float(np.sum(probs * np.abs(pts) ** 2))  # = 2 V_A after scaling
    scale = np.sqrt(2.0 * modulation_variance_snu / power)
    return Constellation(
        name=name,
        points=(pts * scale).astype(np.complex128),
        probabilities=probs.astype(np.float64),
        modulation_variance_snu=float(modulation_variance_snu),
    )


def draw_symbols(
    modulation: str,
    n: int,
    *,
    modulation_variance_snu: float,
    rng: np.random.Generator,
    shaping_nu: float | None = None,
) -> NDArray[np.complex128]:
    """Draw ``n`` of Alice's symbols (complex SNU displacements x + i p).

    ``gaussian``: x, p i.i.d. N(0, V_A) (GG02). Otherwise a :func:`constellation`.

    >>> a = draw_symbols("gaussian", 100_000, modulation_variance_snu=4.0,
    ...                  rng=np.random.default_rng(1))
    >>> abs(float(np.mean(a.real ** 2)) - 4.0) < 0.1
    True
    """
    if modulation == "gaussian":
        if not modulation_variance_snu > 0:
            raise ConfigError(f"modulation_variance_snu must be > 0, got {modulation_variance_snu}")
        z = rng.standard_normal(2 * n) * np.sqrt(modulation_variance_snu)
        return z.view(np.complex128)
    c = constellation(
        modulation, modulation_variance_snu=modulation_variance_snu, shaping_nu=shaping_nu
    )
    return c.draw(n, rng=rng)
