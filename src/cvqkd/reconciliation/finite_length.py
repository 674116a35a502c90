"""Finite-length limits of binary reconciliation: the normal approximation.

A code of length ``n`` cannot reach capacity at a frame error rate ``ε``; the best rate any
code (decoded optimally) reaches on a memoryless channel is, to second order,

    R*(n, ε) ≈ C − √(V/n) · Q⁻¹(ε) + log2(n) / (2n)      [bits per channel use]

with ``C`` the capacity and ``V = Var[i(X; Y)]`` the channel dispersion (Polyanskiy, Poor &
Verdú, "Channel coding rate in the finite blocklength regime", IEEE Trans. Inf. Theory 56,
2307 (2010), eq. (1) and Theorem 54; the ½·log n term is their eq. (296) for the binary-input
AWGN channel). Here the channel is the binary-input AWGN channel that multidimensional
reconciliation makes of the quantum channel (``cvqkd.reconciliation.mdr``; at SNR ≪ 1 its
capacity equals the Gaussian one to 10⁻⁵, so β below is against the Gaussian capacity, as
everywhere in cvqkd).

What it tells a user: at n = 10^6 and FER 0.1 no binary code of rate 0.02 can work above
β ≈ 0.985, nor one of rate 0.01 above 0.980; belief propagation on the shipped codes works at
0.945 / 0.92 (docs/met-codes.md). The ``cvqkd fer`` table prints the bound next to every
measured FER.

>>> round(beta_ceiling(rate=0.02, n=1_000_000, fer=0.1), 3)
0.985
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.stats import norm

from cvqkd.errors import ConfigError

__all__ = [
    "beta_ceiling",
    "biawgn_dispersion",
    "normal_approximation_fer",
    "normal_approximation_rate",
]

_LOG2E = 1.0 / math.log(2.0)


@functools.lru_cache(maxsize=1)
def _nodes() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    x, w = np.polynomial.hermite_e.hermegauss(200)
    return x, w / w.sum()


def biawgn_dispersion(*, snr: float) -> tuple[float, float]:
    """Capacity ``C`` (bits per use) and dispersion ``V`` (bits²) of the binary-input AWGN
    channel at ``snr`` (signal power over noise power).

    The information density of BPSK ±1 with noise variance ``1/snr`` is
    ``i = 1 − log2(1 + e^(−L))`` with ``L ~ N(2·snr, 4·snr)`` the LLR given the sent symbol;
    ``C = E[i]``, ``V = Var[i]`` (Polyanskiy, Poor & Verdú 2010, eq. (294)–(295)), here by
    200-point Gauss–Hermite quadrature. At small SNR ``V ≈ snr·log2(e)²``.

    >>> c, v = biawgn_dispersion(snr=1.0)
    >>> round(c, 4), round(v, 4)
    (0.4859, 0.6597)
    """
    if not (snr > 0 and math.isfinite(snr)):
        raise ConfigError(f"SNR must be positive and finite, got {snr}")
    x, w = _nodes()
    llr = 2.0 * snr + 2.0 * math.sqrt(snr) * x
    dens = 1.0 - np.logaddexp(0.0, -llr) * _LOG2E
    c = float(w @ dens)
    return c, float(w @ (dens - c) ** 2)


def _check(n: float, what: str, value: float) -> None:
    if not (n >= 1 and math.isfinite(n)):
        raise ConfigError(f"block length must be >= 1, got {n}")
    if not 0.0 < value < 1.0:
        raise ConfigError(f"{what} must be in (0, 1), got {value}")


def normal_approximation_rate(*, snr: float, n: float, fer: float) -> float:
    """Best rate (bits per use) of a binary code of length ``n`` at frame error rate ``fer``
    on the binary-input AWGN channel at ``snr``: ``C − √(V/n)·Q⁻¹(fer) + log2(n)/(2n)``.

    >>> round(normal_approximation_rate(snr=0.0296, n=1_000_000, fer=0.1), 5)
    0.02074
    """
    _check(n, "FER", fer)
    c, v = biawgn_dispersion(snr=snr)
    return c - math.sqrt(v / n) * float(norm.isf(fer)) + math.log2(n) / (2.0 * n)


def normal_approximation_fer(*, snr: float, n: float, rate: float) -> float:
    """Smallest frame error rate a binary code of length ``n`` and ``rate`` can have at
    ``snr`` (the normal approximation solved for ε): ``Q((C − R + log2(n)/(2n)) / √(V/n))``.

    >>> f"{normal_approximation_fer(snr=0.0296, n=1_000_000, rate=0.02):.1e}"
    '7.4e-06'
    """
    _check(n, "rate", rate)
    c, v = biawgn_dispersion(snr=snr)
    return float(norm.sf((c - rate + math.log2(n) / (2.0 * n)) / math.sqrt(v / n)))


def beta_ceiling(*, rate: float, n: float, fer: float) -> float:
    """Highest reconciliation efficiency β = R / C_AWGN(SNR) at which a binary code of
    ``rate`` and length ``n`` can have frame error rate ``fer`` (normal approximation).

    >>> round(beta_ceiling(rate=0.01, n=1_000_000, fer=0.1), 3)
    0.98
    """
    _check(n, "rate", rate)
    _check(n, "FER", fer)

    def gap(log_snr: float) -> float:
        return normal_approximation_rate(snr=math.exp(log_snr), n=n, fer=fer) - rate

    lo, hi = math.log(1e-6), math.log(1e3)
    if gap(hi) < 0:
        raise ConfigError(f"rate {rate} at n = {n} is out of reach at FER {fer}")
    snr = math.exp(brentq(gap, lo, hi, xtol=1e-12))
    return rate / (0.5 * math.log2(1.0 + snr))
