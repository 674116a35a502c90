"""Discrete-variable comparison protocols: decoy-state BB84 and MDI-QKD (asymptotic).

Decoy-state BB84 (Ma, Qi, Zhao, Lo, PRA 72, 012326 (2005), quant-ph/0503005, GLLP rate)::

    η = T η_Bob,   Q_μ = Y0 + 1 − e^{−ημ},   E_μ Q_μ = e0 Y0 + e_d (1 − e^{−ημ}),  e0 = ½
    R = q { −Q_μ f H2(E_μ) + Q1 [1 − H2(e1)] }                       [bit per pulse]

* infinite decoys: ``Y1 = Y0 + η − Y0η``, ``e1 = (e0 Y0 + e_d η)/Y1``, ``Q1 = Y1 μ e^{−μ}``;
* vacuum + weak decoy (their Eqs. (34)-(37)), weak intensity ν < μ:
  ``Y1^L = μ/(μν − ν²) [Q_ν e^ν − Q_μ e^μ ν²/μ² − (μ² − ν²)/μ² Y0]``,
  ``e1^U = (E_ν Q_ν e^ν − e0 Y0)/(Y1^L ν)``, ``Q1^L = Y1^L μ e^{−μ}``.

MDI-QKD, symmetric relay (Lo, Curty, Qi, PRL 108, 130503 (2012); channel model
of Xu, Curty, Qi, Lo, arXiv:1305.6965, App. B; threshold detectors with dark-count probability
p_d each, polarisation misalignment e_d)::

    R = Q11 [1 − H2(e11^X)] − Q^Z f H2(E^Z)                          [bit per pulse pair]
    Y11 = (1 − p_d)² [η_aη_b/2 + (2η_a + 2η_b − 3η_aη_b) p_d + 4(1 − η_a)(1 − η_b) p_d²]
    e11^X Y11 = Y11/2 − (½ − e_d)(1 − p_d)² η_aη_b/2,      Q11 = μ_a μ_b e^{−μ_a−μ_b} Y11
    Q^Z = Q_C + Q_E,  E^Z Q^Z = e_d Q_C + (1 − e_d) Q_E,   μ' = η_aμ_a + η_bμ_b
    Q_C = 2(1 − p_d)² e^{−μ'/2} [1 − (1 − p_d)e^{−η_aμ_a/2}] [1 − (1 − p_d)e^{−η_bμ_b/2}]
    Q_E = 2 p_d (1 − p_d)² e^{−μ'/2} [I0(2x) − (1 − p_d) e^{−μ'/2}],  x = √(η_aμ_a η_bμ_b)/2

Background photons (Raman, leakage) reach single-photon detectors as extra clicks: they enter
only through the background yield ``Y0`` (BB84, error ½) or the dark-count probability ``p_d``
(MDI relay); :func:`background_yield_from_noise` turns a noise power or photon rate into them.

Example:
    >>> r = bb84_decoy(transmittance=1.0, detector_efficiency=0.045, background_yield=1.7e-6,
    ...                misalignment_error=0.033, error_correction_inefficiency=1.22)
    >>> round(r.key_rate_bits_per_pulse * 1e3, 3)       # GYS set at 0 km
    2.555
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import i0e

from cvqkd.errors import ConfigError
from cvqkd.keyrate.optimise import maximise_scalar
from cvqkd.units import PLANCK_J_S, SPEED_OF_LIGHT_M_S, FloatOrArray

__all__ = [
    "BB84Rate",
    "MDIRate",
    "background_yield_from_noise",
    "bb84_decoy",
    "binary_entropy",
    "mdi_qkd",
]

DecoyScheme = Literal["infinite", "vacuum+weak"]


def _out(x: NDArray[np.float64]) -> FloatOrArray:
    return float(x) if np.ndim(x) == 0 else x


def binary_entropy(p: ArrayLike) -> FloatOrArray:
    """``H2(p) = −p log2 p − (1 − p) log2(1 − p)``; 0 at p ∈ {0, 1}; clipped to [0, 1].

    Example: ``binary_entropy(0.5) == 1.0``.
    """
    q = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(q > 0, q * np.log2(q), 0.0) - np.where(q < 1, (1 - q) * np.log2(1 - q), 0.0)
    return _out(h)


@dataclass(frozen=True)
class BB84Rate:
    """Decoy-state BB84 result (per pulse). ``key_rate_bits_per_pulse`` may be negative."""

    key_rate_bits_per_pulse: FloatOrArray
    mean_photon_number: FloatOrArray
    gain: FloatOrArray
    qber: FloatOrArray
    single_photon_gain: FloatOrArray
    single_photon_error: FloatOrArray


def _bb84_terms(
    mu: NDArray[np.float64],
    eta: NDArray[np.float64],
    y0: NDArray[np.float64],
    e_d: NDArray[np.float64],
    f: NDArray[np.float64],
    q: float,
    scheme: DecoyScheme,
    nu: NDArray[np.float64] | None,
) -> tuple[NDArray[np.float64], ...]:
    e0 = 0.5
    q_mu = y0 - np.expm1(-eta * mu)  # Y0 + 1 − e^{−ημ} without cancellation
    eq_mu = e0 * y0 - e_d * np.expm1(-eta * mu)
    e_mu = eq_mu / q_mu
    if scheme == "infinite":
        y1 = y0 + eta - y0 * eta
        e1 = (e0 * y0 + e_d * eta) / y1
    else:
        assert nu is not None
        q_nu = y0 - np.expm1(-eta * nu)
        eq_nu = e0 * y0 - e_d * np.expm1(-eta * nu)
        y1 = (mu / (mu * nu - nu * nu)) * (
            q_nu * np.exp(nu)
            - q_mu * np.exp(mu) * nu * nu / (mu * mu)
            - (mu * mu - nu * nu) / (mu * mu) * y0
        )
        y1 = np.maximum(y1, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            e1 = np.where(y1 > 0, (eq_nu * np.exp(nu) - e0 * y0) / (y1 * nu), 0.5)
        e1 = np.clip(e1, 0.0, 0.5)
    q1 = y1 * mu * np.exp(-mu)
    h_e1 = np.asarray(binary_entropy(e1))
    key = q * (-q_mu * f * np.asarray(binary_entropy(e_mu)) + q1 * (1.0 - h_e1))
    return key, q_mu, e_mu, q1, e1


def bb84_decoy(
    *,
    transmittance: ArrayLike,
    detector_efficiency: ArrayLike,
    background_yield: ArrayLike,
    misalignment_error: ArrayLike,
    error_correction_inefficiency: ArrayLike = 1.22,
    mean_photon_number: ArrayLike | None = None,
    decoy: DecoyScheme = "infinite",
    weak_decoy_photon_number: ArrayLike | None = None,
    sifting_factor: float = 0.5,
) -> BB84Rate:
    """Asymptotic decoy-state BB84 key rate [bit per pulse] (Ma, Qi, Zhao, Lo 2005).

    Args:
        transmittance: channel transmittance (fibre, connectors), excluding Bob's detector.
        detector_efficiency: Bob's detection efficiency ``η_Bob`` (incl. his internal loss).
        background_yield: ``Y0``, click probability per gate without signal (dark counts +
            background photons, all detectors).
        misalignment_error: ``e_d``.
        error_correction_inefficiency: ``f ≥ 1``.
        mean_photon_number: signal intensity ``μ``; optimised (maximising the rate) if None.
        decoy: ``"infinite"`` or ``"vacuum+weak"``.
        weak_decoy_photon_number: ``ν`` for vacuum + weak. If None, ``ν = min(1e-3, 0.99 μ)``:
            the asymptotic bounds tighten monotonically as ν → 0 (Ma et al. 2005, Sec. V), so
            the smallest practical ν is optimal; give ν to model a real weak decoy.
        sifting_factor: ``q`` (½ for standard BB84).

    Example: see the module docstring (GYS set, 0 km: 2.555e-3 bit/pulse).
    """
    eta = np.asarray(transmittance, dtype=float) * np.asarray(detector_efficiency, dtype=float)
    y0 = np.asarray(background_yield, dtype=float)
    e_d = np.asarray(misalignment_error, dtype=float)
    f = np.asarray(error_correction_inefficiency, dtype=float)
    if decoy not in ("infinite", "vacuum+weak"):
        raise ConfigError(f"decoy must be 'infinite' or 'vacuum+weak', got {decoy!r}")
    shape = np.broadcast_shapes(eta.shape, y0.shape, e_d.shape, f.shape)

    def nu_of(mu: NDArray[np.float64]) -> NDArray[np.float64] | None:
        if decoy == "infinite":
            return None
        if weak_decoy_photon_number is not None:
            return np.asarray(weak_decoy_photon_number, dtype=float)
        return np.minimum(1e-3, 0.99 * mu)

    if mean_photon_number is None:

        def key_of_mu(mu: NDArray[np.float64]) -> NDArray[np.float64]:
            return _bb84_terms(mu, eta, y0, e_d, f, sifting_factor, decoy, nu_of(mu))[0]

        mu_arr, _ = maximise_scalar(key_of_mu, lower=1e-3, upper=1.5, shape=shape)
    else:
        mu_arr = np.asarray(mean_photon_number, dtype=float)
        if (
            decoy == "vacuum+weak"
            and weak_decoy_photon_number is not None
            and np.any(np.asarray(weak_decoy_photon_number) >= mu_arr)
        ):
            raise ConfigError("weak_decoy_photon_number must be smaller than mean_photon_number")
    key, q_mu, e_mu, q1, e1 = _bb84_terms(
        mu_arr, eta, y0, e_d, f, sifting_factor, decoy, nu_of(mu_arr)
    )
    return BB84Rate(
        key_rate_bits_per_pulse=_out(key),
        mean_photon_number=_out(np.broadcast_to(mu_arr, np.shape(key)).copy()),
        gain=_out(q_mu),
        qber=_out(e_mu),
        single_photon_gain=_out(q1),
        single_photon_error=_out(np.broadcast_to(e1, np.shape(key)).copy()),
    )


@dataclass(frozen=True)
class MDIRate:
    """Asymptotic MDI-QKD result (per pulse pair sent by Alice and Bob)."""

    key_rate_bits_per_pulse: FloatOrArray
    mean_photon_number: FloatOrArray
    gain_z: FloatOrArray
    qber_z: FloatOrArray
    yield_11: FloatOrArray
    error_11_x: FloatOrArray


def _i0m1(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``I0(x) − 1`` without cancellation: power series below 1, ``e^x i0e(x) − 1`` above."""
    x = np.asarray(x, dtype=float)
    small = x < 1.0
    xs = np.where(small, x, 0.0)
    q = xs * xs / 4.0
    term = q.copy()
    total = q.copy()
    for k in range(2, 14):  # (x²/4)^k/(k!)² < 1e-25 for x < 1 beyond k = 13
        term = term * q / (k * k)
        total = total + term
    return np.where(small, total, np.exp(np.where(small, 0.0, x)) * i0e(x) - 1.0)


def _mdi_z_gain(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    p_d: NDArray[np.float64],
    e_d: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Z-basis gain and error gain ``(Q^Z, E^Z Q^Z)`` for received means ``a = η_aμ_a``,
    ``b = η_bμ_b`` (both Bell states ψ±, averaged over the bit values; Xu et al. App. B).

    Written with ``expm1``/``log1p`` so that tiny gains (vacuum decoys, long fibres) keep their
    relative precision: ``1 − (1 − p_d)e^{−a/2} = −expm1(log1p(−p_d) − a/2)`` and
    ``e^{−μ'/2}I0(2x) − (1 − p_d)e^{−μ'} = e^{−μ'}[expm1(μ'/2) + e^{μ'/2}(I0(2x) − 1) + p_d]``.
    """
    mu_p = a + b
    x = np.sqrt(a * b) / 2.0
    one_m = 1.0 - p_d
    l1m = np.log1p(-p_d)
    q_c = (
        2.0
        * one_m**2
        * np.exp(-mu_p / 2.0)
        * (-np.expm1(l1m - a / 2.0))
        * (-np.expm1(l1m - b / 2.0))
    )
    bracket = np.expm1(mu_p / 2.0) + np.exp(mu_p / 2.0) * _i0m1(2.0 * x) + p_d
    q_e = 2.0 * p_d * one_m**2 * np.exp(-mu_p) * bracket
    return q_c + q_e, e_d * q_c + (1.0 - e_d) * q_e


def _mdi_x_gain(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    p_d: NDArray[np.float64],
    e_d: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """X-basis gain and error gain: ``Q^X = 2y²[1 + 2y² − 4y I0(x) + I0(2x)]``,
    ``E^X Q^X = Q^X/2 − 2(½ − e_d) y² [I0(2x) − 1]``, ``y = (1 − p_d) e^{−μ'/4}``
    (Xu, Curty, Qi, Lo, arXiv:1305.6965, App. B; checked against a click-pattern model).

    The bracket is evaluated as ``2(1 − y)² − 4y(I0(x) − 1) + (I0(2x) − 1)`` with
    ``1 − y = −expm1(log1p(−p_d) − μ'/4)``: the naive form loses all digits when y → 1.
    """
    x = np.sqrt(a * b) / 2.0
    one_m_y = -np.expm1(np.log1p(-p_d) - (a + b) / 4.0)
    y = 1.0 - one_m_y
    i0m1_2x = _i0m1(2.0 * x)
    bracket = 2.0 * one_m_y**2 - 4.0 * y * _i0m1(x) + i0m1_2x
    q = 2.0 * y * y * bracket
    eq = 0.5 * q - 2.0 * (0.5 - e_d) * y * y * i0m1_2x
    return q, eq


def _mdi_terms(
    mu: NDArray[np.float64],
    eta_a: NDArray[np.float64],
    eta_b: NDArray[np.float64],
    p_d: NDArray[np.float64],
    e_d: NDArray[np.float64],
    f: NDArray[np.float64],
    q: float,
    nu: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], ...]:
    """Key rate terms; ``nu=None``: infinite decoys (exact Y11, e11), else vacuum + weak ν."""
    q_z, eq_z = _mdi_z_gain(eta_a * mu, eta_b * mu, p_d, e_d)
    e_z = eq_z / q_z
    if nu is None:
        one_m = 1.0 - p_d
        y11 = one_m**2 * (
            eta_a * eta_b / 2.0
            + (2.0 * eta_a + 2.0 * eta_b - 3.0 * eta_a * eta_b) * p_d
            + 4.0 * (1.0 - eta_a) * (1.0 - eta_b) * p_d**2
        )
        e11 = 0.5 - (0.5 - e_d) * one_m**2 * eta_a * eta_b / 2.0 / y11
    else:
        zero = np.zeros_like(mu)

        def s_z(x: NDArray[np.float64]) -> NDArray[np.float64]:
            # Σ_{n,m≥1} x^{n+m}/(n! m!) Y_nm = Q_xx e^{2x} − Q_x0 e^x − Q_0x e^x + Q_00
            qxx = _mdi_z_gain(eta_a * x, eta_b * x, p_d, e_d)[0]
            qx0 = _mdi_z_gain(eta_a * x, zero, p_d, e_d)[0]
            q0x = _mdi_z_gain(zero, eta_b * x, p_d, e_d)[0]
            q00 = _mdi_z_gain(zero, zero, p_d, e_d)[0]
            return qxx * np.exp(2.0 * x) - (qx0 + q0x) * np.exp(x) + q00

        # Y11 ≥ [μ³ S(ν) − ν³ S(μ)] / (μ² ν² (μ − ν)): the terms n + m ≥ 4 are bounded by
        # (ν/μ)^{n+m−3} ≤ 1 relative to μ (same derivation as Ma et al. 2005, Eq. (34)).
        y11 = (mu**3 * s_z(nu) - nu**3 * s_z(mu)) / (mu**2 * nu**2 * (mu - nu))
        y11 = np.maximum(y11, 0.0)
        ex_nn = _mdi_x_gain(eta_a * nu, eta_b * nu, p_d, e_d)[1]
        ex_n0 = _mdi_x_gain(eta_a * nu, zero, p_d, e_d)[1]
        ex_0n = _mdi_x_gain(zero, eta_b * nu, p_d, e_d)[1]
        ex_00 = _mdi_x_gain(zero, zero, p_d, e_d)[1]
        # e11 Y11 ν² ≤ Σ_{n,m≥1} ν^{n+m}/(n!m!) e_nm Y_nm = E Q combination in the X basis
        t_x = ex_nn * np.exp(2.0 * nu) - (ex_n0 + ex_0n) * np.exp(nu) + ex_00
        with np.errstate(divide="ignore", invalid="ignore"):
            e11 = np.where(y11 > 0, t_x / (nu * nu * y11), 0.5)
        e11 = np.clip(e11, 0.0, 0.5)
    q11 = mu * mu * np.exp(-2.0 * mu) * y11
    key = q * (
        q11 * (1.0 - np.asarray(binary_entropy(e11))) - q_z * f * np.asarray(binary_entropy(e_z))
    )
    return key, q_z, e_z, y11, e11


def mdi_qkd(
    *,
    transmittance: ArrayLike,
    detector_efficiency: ArrayLike,
    dark_count_probability: ArrayLike,
    misalignment_error: ArrayLike,
    error_correction_inefficiency: ArrayLike = 1.16,
    mean_photon_number: ArrayLike | None = None,
    sifting_factor: float = 1.0,
    decoy: DecoyScheme = "infinite",
    weak_decoy_photon_number: ArrayLike | None = None,
) -> MDIRate:
    """Asymptotic MDI-QKD key rate, relay in the middle [bit per pulse pair].

    ``transmittance`` is the total Alice→Bob fibre transmittance; each arm gets ``√T``, so
    ``η_a = η_b = η_det √T``. Both send ``μ_a = μ_b = μ`` (optimised if None).
    ``dark_count_probability`` is per detector per gate and includes background photons at the
    relay. ``sifting_factor`` is 1 for the efficient (asymptotically Z-biased) protocol of Lo,
    Curty, Qi; use ½ for the symmetric-basis version.

    ``decoy="infinite"`` uses the exact single-photon yield and error; ``"vacuum+weak"`` bounds
    them from intensities {μ, ν, 0} on each side: ``Y11 ≥ [μ³S(ν) − ν³S(μ)]/(μ²ν²(μ − ν))`` with
    ``S(x) = Q_xx e^{2x} − Q_x0 e^x − Q_0x e^x + Q_00`` (Z basis) and
    ``e11 ≤ [E_νν Q_νν e^{2ν} − E_ν0 Q_ν0 e^ν − E_0ν Q_0ν e^ν + E_00 Q_00]/(ν² Y11)`` (X basis),
    the two-decoy analogue of Ma et al. 2005 (cf. Xu, Curty, Qi, Lo 2013); ``ν`` defaults to
    ``min(1e-3, 0.99 μ)``, where the bounds are nearly tight.

    Example: ``mdi_qkd(transmittance=0.01, detector_efficiency=0.145, dark_count_probability=3e-6,
    misalignment_error=0.015)`` gives ≈ 4.9e-6 bit per pulse (100 km at 0.2 dB/km).
    """
    t = np.asarray(transmittance, dtype=float)
    eta = np.asarray(detector_efficiency, dtype=float) * np.sqrt(t)
    p_d = np.asarray(dark_count_probability, dtype=float)
    e_d = np.asarray(misalignment_error, dtype=float)
    f = np.asarray(error_correction_inefficiency, dtype=float)
    if decoy not in ("infinite", "vacuum+weak"):
        raise ConfigError(f"decoy must be 'infinite' or 'vacuum+weak', got {decoy!r}")
    if decoy == "infinite" and weak_decoy_photon_number is not None:
        raise ConfigError("weak_decoy_photon_number needs decoy='vacuum+weak'")
    shape = np.broadcast_shapes(eta.shape, p_d.shape, e_d.shape, f.shape)

    def nu_of(mu: NDArray[np.float64]) -> NDArray[np.float64] | None:
        if decoy == "infinite":
            return None
        if weak_decoy_photon_number is not None:
            return np.asarray(weak_decoy_photon_number, dtype=float)
        return np.minimum(1e-3, 0.99 * mu)

    if mean_photon_number is None:

        def key_of_mu(mu: NDArray[np.float64]) -> NDArray[np.float64]:
            return _mdi_terms(mu, eta, eta, p_d, e_d, f, sifting_factor, nu_of(mu))[0]

        lower = 1e-3
        if decoy == "vacuum+weak" and weak_decoy_photon_number is not None:
            lower = max(lower, 1.01 * float(np.max(weak_decoy_photon_number)))
        mu_arr, _ = maximise_scalar(key_of_mu, lower=lower, upper=3.0, shape=shape)
    else:
        mu_arr = np.asarray(mean_photon_number, dtype=float)
        if weak_decoy_photon_number is not None and np.any(
            np.asarray(weak_decoy_photon_number) >= mu_arr
        ):
            raise ConfigError("weak_decoy_photon_number must be smaller than mean_photon_number")
    key, q_z, e_z, y11, e11 = _mdi_terms(
        mu_arr, eta, eta, p_d, e_d, f, sifting_factor, nu_of(mu_arr)
    )
    return MDIRate(
        key_rate_bits_per_pulse=_out(key),
        mean_photon_number=_out(np.broadcast_to(mu_arr, np.shape(key)).copy()),
        gain_z=_out(q_z),
        qber_z=_out(e_z),
        yield_11=_out(np.broadcast_to(y11, np.shape(key)).copy()),
        error_11_x=_out(np.broadcast_to(e11, np.shape(key)).copy()),
    )


def background_yield_from_noise(
    *,
    gate_width_s: ArrayLike,
    dark_count_probability: ArrayLike,
    detector_efficiency: ArrayLike,
    photon_rate_hz: ArrayLike | None = None,
    noise_power_w: ArrayLike | None = None,
    noise_spectral_density_w_per_m: ArrayLike | None = None,
    filter_width_m: ArrayLike | None = None,
    wavelength_m: ArrayLike | None = None,
) -> FloatOrArray:
    """Background click probability per gate ``Y0`` from noise photons at a DV receiver.

    Give exactly one of ``photon_rate_hz`` (noise photons per second reaching the detector,
    after the filter), ``noise_power_w`` (noise power inside the filter band [W], with
    ``wavelength_m``) or a noise power spectral density [W/m] at the receiver with the filter
    width [m] and the wavelength [m]; then ``rate = S Δλ / (h c / λ)`` (PHYSICS.md: a DV
    receiver sees ``N = P(Δλ_filter) Δt_gate / (hν)``; no coherent "built-in filter").
    Photon arrivals are Poissonian, so with ``N = rate · Δt_gate`` and dark-count probability
    ``p_dark``::

        Y0 = 1 − (1 − p_dark) e^{−η_D N}       (≈ p_dark + η_D N when both are small)

    Example: ``background_yield_from_noise(photon_rate_hz=1e6, gate_width_s=1e-9,
    dark_count_probability=1e-6, detector_efficiency=0.1)`` ≈ 1.0e-4.
    """
    given = [v is not None for v in (photon_rate_hz, noise_power_w, noise_spectral_density_w_per_m)]
    if sum(given) != 1:
        raise ConfigError(
            "give exactly one of photon_rate_hz, noise_power_w or noise_spectral_density_w_per_m"
        )
    if noise_power_w is not None:
        if wavelength_m is None:
            raise ConfigError("noise_power_w needs wavelength_m")
        energy = PLANCK_J_S * SPEED_OF_LIGHT_M_S / np.asarray(wavelength_m, dtype=float)
        rate = np.asarray(noise_power_w, dtype=float) / energy
    elif photon_rate_hz is None:
        if filter_width_m is None or wavelength_m is None:
            raise ConfigError(
                "noise_spectral_density_w_per_m needs filter_width_m and wavelength_m"
            )
        energy = PLANCK_J_S * SPEED_OF_LIGHT_M_S / np.asarray(wavelength_m, dtype=float)
        rate = (
            np.asarray(noise_spectral_density_w_per_m, dtype=float)
            * np.asarray(filter_width_m, dtype=float)
            / energy
        )
    else:
        rate = np.asarray(photon_rate_hz, dtype=float)
    n_photons = rate * np.asarray(gate_width_s, dtype=float)
    p_dark = np.asarray(dark_count_probability, dtype=float)
    eta = np.asarray(detector_efficiency, dtype=float)
    return _out(-np.expm1(np.log1p(-p_dark) - eta * n_photons))
