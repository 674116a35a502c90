"""The noise budget of a coexistence link: transmittance, receiver, and excess noise per source.

:func:`noise_budget` turns a :class:`~cvqkd.scenario.Scenario` into a :class:`NoiseBudget`.
Every source is kept apart, referred to the channel INPUT in SNU (PHYSICS.md conventions):
a source that puts N photons per LO mode on Bob's detector adds ξ_bob = 2N there and
ξ_in = ξ_bob/(η T) at the input (Kumar 2015, ξ_bob = η T ξ_in).

Sources (keys of ``sources_snu``):

- ``raman_forward`` / ``raman_backward``: spontaneous Raman from co/counter-propagating
  classical channels (:mod:`cvqkd.link.raman`);
- ``fwm``: four-wave mixing among co-propagating channels (:mod:`cvqkd.link.fwm`);
- ``crosstalk``: classical transmitters' out-of-band light at the quantum frequency through
  the multiplexer's finite isolation; ``ase``: booster-amplifier ASE the same way
  (:mod:`cvqkd.link.leakage`);
- ``phase``: residual phase noise 2V_A(1 − e^{−V_err/2}) (Marie & Alléaume, PRA 95, 012316
  (2017)) (:mod:`cvqkd.link.phase`); for a local LO V_err is the pilot-aided recovery's
  residual (laser drift between pilots + pilot estimation error at Bob's pilot SNR), the
  same DSP and parameters the simulator uses, so the two agree;
- ``modulation``: Alice's modulation noise (DAC, RIN) as given in the scenario.

Unpolarised noise (Raman, transmitter floor, ASE) reaches the single-polarisation LO with the
factor ``scenario.raman.lo_polarisation_factor`` (½, Kumar 2015; 1 is Laudenbach 2018's
conservative choice); FWM products are taken aligned with the LO (factor 1, worst case).

The trusted detector (η, v_el) is NOT a source here; it is kept in ``detector_efficiency`` and
``electronic_noise_snu``.

Transmittance T (Alice's output → Bob's receiver input, detector efficiency excluded):
T = T_mux · e^{−α_q L} · T_lumped · T_demux. Noise generated in the fibre passes the lumped
losses (connectors, splices, margin, treated as sitting after the span) and the demux.

Example:
    >>> from cvqkd.scenario import load_scenario
    >>> b = noise_budget(load_scenario("kumar2015-25km"))
    >>> b.excess_noise_snu == sum(b.sources_snu.values())
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike

from cvqkd.link.fwm import fwm_photons_per_mode
from cvqkd.link.leakage import ase_photons_per_mode, crosstalk_photons_per_mode
from cvqkd.link.phase import (
    phase_error_variance_rad2,
    phase_noise_snu,
    pilot_phase_variance_rad2,
    pilot_residual_phase_variance_rad2,
    wiener_variance_per_slot_rad2,
)
from cvqkd.link.raman import raman_photons_per_mode
from cvqkd.link.wdm import in_band
from cvqkd.units import PLANCK_J_S, SPEED_OF_LIGHT_M_S, FloatOrArray

if TYPE_CHECKING:
    from cvqkd.keyrate.gaussian import GG02Rate
    from cvqkd.scenario import Scenario

#: The source names, in display order.
SOURCE_NAMES: tuple[str, ...] = (
    "raman_forward",
    "raman_backward",
    "fwm",
    "crosstalk",
    "ase",
    "phase",
    "modulation",
)


#: Sources proportional to the classical launch power.
_LINEAR_IN_POWER = ("raman_forward", "raman_backward", "crosstalk")


@dataclass(frozen=True)
class NoiseBudget:
    """Transmittance, trusted receiver and input-referred excess noise per source [SNU].

    ``transmittance``: Alice → Bob's receiver input (fibre, connectors, splices, margin,
    mux/demux insertion), NOT including η. ``sources_snu``: input-referred ξ per source (the
    trusted detector is not among them). ``reconciliation_efficiency`` (β) rides along so the
    budget alone gives the key rate (:meth:`key_rate`).

    >>> b = NoiseBudget(transmittance=0.1, detector_efficiency=0.5, electronic_noise_snu=0.01,
    ...     detection="homodyne", sources_snu={"raman_forward": 0.01},
    ...     modulation_variance_snu=4.0, symbol_rate_hz=1e8)
    >>> round(b.at_bob_snu("raman_forward"), 6)
    0.0005
    """

    transmittance: float
    detector_efficiency: float
    electronic_noise_snu: float
    detection: Literal["homodyne", "heterodyne"]
    sources_snu: Mapping[str, float]
    modulation_variance_snu: float
    symbol_rate_hz: float
    reconciliation_efficiency: float = 1.0
    scenario_name: str = ""
    photons_per_mode_at_bob: Mapping[str, float] = field(default_factory=dict)
    noise_spectral_density_w_per_m: Mapping[str, float] = field(default_factory=dict)
    quantum_wavelength_m: float = 0.0
    key_slot_fraction: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources_snu", MappingProxyType(dict(self.sources_snu)))
        object.__setattr__(
            self, "photons_per_mode_at_bob", MappingProxyType(dict(self.photons_per_mode_at_bob))
        )
        object.__setattr__(
            self,
            "noise_spectral_density_w_per_m",
            MappingProxyType(dict(self.noise_spectral_density_w_per_m)),
        )

    @property
    def total_noise_spectral_density_w_per_m(self) -> float:
        """Sum of the optical noise spectral densities at Bob's receiver input [W/m], both
        polarisations: what a DV receiver (no LO mode selection) sees through its filter.
        Pass it to ``cvqkd.keyrate.dv.background_yield_from_noise`` with the filter width."""
        return float(sum(self.noise_spectral_density_w_per_m.values()))

    @property
    def excess_noise_snu(self) -> float:
        """Total input-referred excess noise ξ = Σ sources [SNU]."""
        return float(sum(self.sources_snu.values()))

    def at_bob_snu(self, source: str) -> float:
        """Output-referred noise of ``source`` at Bob's detector: ξ_in · T · η [SNU]."""
        return float(self.sources_snu[source]) * self.transmittance * self.detector_efficiency

    @property
    def excess_noise_at_bob_snu(self) -> float:
        """Total output-referred excess noise ξ · T · η [SNU]."""
        return self.excess_noise_snu * self.transmittance * self.detector_efficiency

    @property
    def electronic_noise_input_referred_snu(self) -> float:
        """v_el/(η T): the trusted detector noise as if it were at the channel input [SNU]."""
        return self.electronic_noise_snu / (self.detector_efficiency * self.transmittance)

    def excess_noise_at_power_scale_snu(self, factor: ArrayLike) -> FloatOrArray:
        """Total ξ [SNU] if every classical launch power were multiplied by ``factor``
        (vectorised): Raman and crosstalk scale as P, FWM as P³ (P_i P_j P_k), ASE, phase and
        modulation noise not at all (the booster's ASE is set by its gain, not its input).

        For capacity sweeps (how much classical power before the key vanishes) without
        recomputing the budget. ``factor=1`` gives :attr:`excess_noise_snu`.
        """
        x = np.asarray(factor, dtype=float)
        src = self.sources_snu
        linear = sum(src.get(k, 0.0) for k in _LINEAR_IN_POWER)
        rest = sum(v for k, v in src.items() if k not in _LINEAR_IN_POWER and k != "fwm")
        out = rest + linear * x + src.get("fwm", 0.0) * x**3
        return float(out) if np.ndim(out) == 0 else out

    def key_rate(self, *, trusted_detector: bool = True) -> GG02Rate:
        """Asymptotic GG02 rate (reverse reconciliation, collective attacks) of this budget."""
        from cvqkd.keyrate.gaussian import gg02

        return gg02(
            transmittance=self.transmittance,
            excess_noise_snu=self.excess_noise_snu,
            modulation_variance_snu=self.modulation_variance_snu,
            detector_efficiency=self.detector_efficiency,
            electronic_noise_snu=self.electronic_noise_snu,
            reconciliation_efficiency=self.reconciliation_efficiency,
            detection=self.detection,
            trusted_detector=trusted_detector,
        )

    @property
    def key_symbol_rate_hz(self) -> float:
        """Rate of key-carrying symbols [Hz]: the slot rate times :attr:`key_slot_fraction`
        (``1 − 1/pilot_period_slots`` with a local LO's time-multiplexed pilots, else 1)."""
        return self.symbol_rate_hz * self.key_slot_fraction

    def key_rate_bps(self, *, trusted_detector: bool = True) -> float:
        """Asymptotic key rate [bit/s] = f_key · K, K per key-carrying symbol
        (:attr:`key_symbol_rate_hz`: pilot slots carry no key)."""
        k = float(self.key_rate(trusted_detector=trusted_detector).key_rate_bits_per_symbol)
        return self.key_symbol_rate_hz * k


def noise_budget(scenario: Scenario) -> NoiseBudget:
    """Assemble the :class:`NoiseBudget` of ``scenario`` (see the module doc for the model)."""
    fibre, wdm, tx, rx = scenario.fibre, scenario.wdm, scenario.transmitter, scenario.receiver
    lam_q, nu_q = scenario.quantum_wavelength_m, scenario.quantum_frequency_hz
    length = fibre.length_m
    alpha_q = float(fibre.attenuation_per_m(wavelength_m=lam_q))
    t_span = float(np.exp(-alpha_q * length))
    t_post = fibre.lumped_transmittance * rx.demux_transmittance
    t_total = tx.mux_transmittance * t_span * t_post
    eta = rx.detector_efficiency
    pol = scenario.raman.lo_polarisation_factor

    # photons per LO mode at the fibre output (co) or at Bob's demux input (counter)
    n_out: dict[str, float] = dict.fromkeys(
        ("raman_forward", "raman_backward", "fwm", "crosstalk", "ase"), 0.0
    )
    if wdm.channels:
        freqs, powers, co = wdm.frequencies_hz, wdm.launch_powers_w, wdm.co_propagating
        alpha_c = np.asarray(fibre.attenuation_per_m(wavelength_m=wdm_wavelengths(freqs)))
        beta = np.asarray(
            scenario.raman.coefficient_per_m2(
                classical_frequency_hz=freqs, quantum_frequency_hz=nu_q
            )
        )
        n_ram = np.asarray(
            raman_photons_per_mode(
                launch_power_w=powers,
                coefficient_per_m2=beta,
                length_m=length,
                classical_attenuation_per_m=alpha_c,
                quantum_attenuation_per_m=alpha_q,
                quantum_wavelength_m=lam_q,
                counter_propagating=~co,
                lo_polarisation_factor=pol,
            )
        )
        n_out["raman_forward"] = float(n_ram[co].sum())
        n_out["raman_backward"] = float(n_ram[~co].sum())
        if co.any():
            n_out["fwm"] = float(
                fwm_photons_per_mode(
                    frequencies_hz=freqs[co],
                    launch_powers_w=powers[co],
                    quantum_frequency_hz=nu_q,
                    fibre=fibre,
                    signal_bandwidth_hz=wdm.signal_bandwidth_hz,
                )
            )
        # Transmitters and boosters emit broadband noise only inside their emission band
        # (e.g. C): nothing at an O-band quantum channel.
        emits_here = in_band(wavelength_m=lam_q, band=wdm.emission_band)
        # co transmitters' leakage crosses the fibre; counter ones reach Bob's quantum port
        # through his multiplexer's directivity.
        path = np.where(co, t_span, rx.demux_directivity)
        if emits_here:
            n_out["crosstalk"] = float(
                np.sum(
                    np.asarray(
                        crosstalk_photons_per_mode(
                            launch_power_w=powers,
                            osnr_db=wdm.transmitter_osnr_db,
                            isolation_db=wdm.mux_isolation_db,
                            quantum_frequency_hz=nu_q,
                            lo_polarisation_factor=pol,
                        )
                    )
                    * path
                )
            )
        for direction_mask, path_t in ((co, t_span), (~co, rx.demux_directivity)):
            if emits_here and direction_mask.any():
                n_out["ase"] += path_t * float(
                    ase_photons_per_mode(
                        gain_db=wdm.booster_gain_db,
                        noise_figure_db=wdm.booster_noise_figure_db,
                        isolation_db=wdm.mux_isolation_db,
                        lo_polarisation_factor=pol,
                    )
                )

    sources: dict[str, float] = {}
    photons_bob: dict[str, float] = {}
    density: dict[str, float] = {}
    photon_j = PLANCK_J_S * nu_q
    for name, n in n_out.items():
        n_det = n * t_post * eta
        photons_bob[name] = n_det
        sources[name] = 2.0 * n_det / (eta * t_total)
        # back to the unpolarised density at the receiver input: S_ν = N hν / p (FWM: the
        # product was taken aligned with the LO, p = 1), then S_λ = S_ν c/λ².
        pfac = 1.0 if name == "fwm" else pol
        density[name] = n * t_post * photon_j / pfac * SPEED_OF_LIGHT_M_S / lam_q**2
    v_err = phase_error_variance_rad2(
        lo=rx.lo,
        transmitter_linewidth_hz=tx.laser_linewidth_hz,
        lo_linewidth_hz=rx.lo_linewidth_hz,
        delay_s=rx.phase_reference_delay_s,
        residual_rad2=rx.residual_phase_noise_rad2,
    )
    if rx.lo == "local":
        # Pilot-aided recovery. The pilots' own excess noise (η T ξ/2 per quadrature, ~1e-4
        # of the vacuum at 120 km) is left out of their SNR so that the phase entry does not
        # depend on the classical power (excess_noise_at_power_scale_snu stays exact).
        v_err += pilot_residual_phase_variance_rad2(
            pilot_period_slots=rx.pilot_period_slots,
            window_pilots=rx.phase_window_pilots,
            wiener_variance_per_slot_rad2=wiener_variance_per_slot_rad2(
                transmitter_linewidth_hz=tx.laser_linewidth_hz,
                lo_linewidth_hz=rx.lo_linewidth_hz,
                symbol_rate_hz=tx.symbol_rate_hz,
            ),
            pilot_phase_variance_rad2=pilot_phase_variance_rad2(
                pilot_mean_photon_number=rx.pilot_mean_photon_number,
                transmittance=t_total,
                detector_efficiency=eta,
                electronic_noise_snu=rx.electronic_noise_snu,
            ),
        )
    sources["phase"] = float(
        phase_noise_snu(
            modulation_variance_snu=tx.modulation_variance_snu, phase_error_variance_rad2=v_err
        )
    )
    sources["modulation"] = tx.modulation_noise_snu
    return NoiseBudget(
        transmittance=t_total,
        detector_efficiency=eta,
        electronic_noise_snu=rx.electronic_noise_snu,
        detection=rx.detection,
        sources_snu={k: sources[k] for k in SOURCE_NAMES},
        modulation_variance_snu=tx.modulation_variance_snu,
        symbol_rate_hz=tx.symbol_rate_hz,
        reconciliation_efficiency=scenario.reconciliation_efficiency,
        scenario_name=scenario.name,
        photons_per_mode_at_bob=photons_bob,
        noise_spectral_density_w_per_m=density,
        quantum_wavelength_m=lam_q,
        key_slot_fraction=1.0 - 1.0 / rx.pilot_period_slots if rx.lo == "local" else 1.0,
    )


def wdm_wavelengths(frequencies_hz: np.ndarray) -> np.ndarray:
    """Vacuum wavelengths [m] of carrier frequencies [Hz]."""
    return SPEED_OF_LIGHT_M_S / np.asarray(frequencies_hz, dtype=float)
