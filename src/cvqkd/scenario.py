"""Scenarios: a CV-QKD link sharing a fibre with classical WDM traffic, from a TOML file.

A scenario file is TOML with ``schema_version = 1``; every key carries its unit in its name
(``length_km``, ``launch_power_dbm``, ``wavelength_nm``); unknown keys are rejected naming the
key and the file. The file is validated with pydantic (the boundary) and turned into the frozen,
SI-unit :class:`Scenario` the library works with. Derive modified copies for sweeps with
:meth:`Scenario.replace` / :func:`dataclasses.replace` (e.g. another length or channel plan).

Built-in scenarios ship in ``cvqkd/scenarios/*.toml``; :func:`builtin_scenario_names` lists
them and :func:`load_scenario` takes a built-in name or a path.

Example:
    >>> s = load_scenario("kumar2015-25km")
    >>> round(s.fibre.length_m)
    25000
    >>> s2 = s.with_length(length_m=50e3)
    >>> round(s2.fibre.length_m)
    50000
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from cvqkd.errors import ConfigError
from cvqkd.link.fibre import Fibre
from cvqkd.link.raman import PER_KM_NM_IN_PER_M2, RamanModel
from cvqkd.link.wdm import BANDS_M, ClassicalChannel, WdmPlan, band_comb, channel_comb
from cvqkd.units import (
    SPEED_OF_LIGHT_M_S,
    dbm_to_watt,
    transmittance_from_loss_db,
)

SCHEMA_VERSION = 1

Detection = Literal["homodyne", "heterodyne"]
LoScheme = Literal["local", "transmitted"]


# ---------------------------------------------------------------- the library-side objects


@dataclass(frozen=True)
class Transmitter:
    """Alice: Gaussian modulation variance V_A [SNU], symbol rate [Hz] (symbols/s), laser
    linewidth [Hz], insertion loss of her multiplexer on the quantum path (as a transmittance),
    and the input-referred modulation noise (DAC quantisation, RIN; Laudenbach 2018 §9) [SNU]."""

    modulation_variance_snu: float
    symbol_rate_hz: float
    laser_linewidth_hz: float = 100e3
    mux_transmittance: float = 1.0
    modulation_noise_snu: float = 0.0


@dataclass(frozen=True)
class Receiver:
    """Bob: detection, efficiency η, electronic noise v_el [SNU], demultiplexer insertion
    (transmittance) and directivity (near-end rejection of counter-propagating transmitters'
    out-of-band light, linear), LO scheme and linewidth, plus a residual phase-error variance
    [rad²] added to the modelled one.

    Phase reference (:mod:`cvqkd.link.phase`): a transmitted LO drifts over the LO/signal
    path mismatch ``phase_reference_delay_s`` [s]; a local LO is corrected from pilots, one
    every ``pilot_period_slots`` symbol slots, each carrying ``pilot_mean_photon_number``
    photons at Alice's output, averaged over ``phase_window_pilots`` (odd) pilots. The
    simulator uses the same pilot parameters (``ChannelParameters.from_budget``).
    """

    detection: Detection = "homodyne"
    detector_efficiency: float = 0.6
    electronic_noise_snu: float = 0.01
    demux_transmittance: float = 1.0
    demux_directivity: float = 10 ** (-5.5)
    lo: LoScheme = "local"
    lo_linewidth_hz: float = 100e3
    phase_reference_delay_s: float = 0.0
    residual_phase_noise_rad2: float = 0.0
    pilot_period_slots: int = 10
    pilot_mean_photon_number: float = 1e6
    phase_window_pilots: int = 1


@dataclass(frozen=True)
class Scenario:
    """One complete link: fibre, classical plan, Alice, Bob, quantum wavelength, β."""

    name: str
    description: str
    fibre: Fibre
    wdm: WdmPlan
    transmitter: Transmitter
    receiver: Receiver
    quantum_wavelength_m: float
    reconciliation_efficiency: float
    raman: RamanModel = field(default_factory=RamanModel)
    source: str = ""

    @property
    def quantum_frequency_hz(self) -> float:
        """ν_q = c/λ_q [Hz]."""
        return SPEED_OF_LIGHT_M_S / self.quantum_wavelength_m

    def replace(self, **changes: Any) -> Scenario:
        """A modified copy (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_length(self, *, length_m: float) -> Scenario:
        """A copy with another fibre length [m]."""
        return self.replace(fibre=dataclasses.replace(self.fibre, length_m=length_m))

    def with_channels(self, channels: tuple[ClassicalChannel, ...]) -> Scenario:
        """A copy with another classical channel list."""
        return self.replace(wdm=self.wdm.with_channels(channels))

    def with_launch_power(self, *, launch_power_w: float) -> Scenario:
        """A copy with every classical channel launched at ``launch_power_w`` [W]."""
        return self.with_channels(
            tuple(dataclasses.replace(c, launch_power_w=launch_power_w) for c in self.wdm.channels)
        )

    def with_channel_count(self, count: int, *, guard_hz: float = 100e9) -> Scenario:
        """A copy with ``count`` classical channels: the first ``count`` of the plan, or the
        plan extended on its own grid (step = last two channels' spacing, power and direction
        of the last channel), skipping frequencies within ``guard_hz`` of the quantum channel.
        Needs at least two channels in the plan to extend it (one to shrink it).
        """
        chans = list(self.wdm.channels)
        if count < 0:
            raise ConfigError(f"channel count must be >= 0, got {count}")
        if count <= len(chans):
            return self.with_channels(tuple(chans[:count]))
        if len(chans) < 2:
            raise ConfigError("extending a channel plan needs at least two channels to copy")
        step = chans[-1].frequency_hz - chans[-2].frequency_hz
        if step == 0:
            raise ConfigError("cannot extend a channel plan whose last two channels coincide")
        last = chans[-1]
        f = last.frequency_hz
        while len(chans) < count:
            f += step
            if abs(f - self.quantum_frequency_hz) <= guard_hz:
                continue
            chans.append(dataclasses.replace(last, frequency_hz=f))
        return self.with_channels(tuple(chans))


# ---------------------------------------------------------------- the file (pydantic)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_band(value: str | None) -> str | None:
    if value is not None:
        for b in value.upper().split("+"):
            if b not in BANDS_M:
                raise ValueError(
                    f"unknown band {b!r}; choose from {', '.join(BANDS_M)} (e.g. 'C+L')"
                )
    return value


class FibreConfig(_Strict):
    length_km: float = Field(gt=0)
    attenuation_model: Literal["smf", "ull", "constant"] = "smf"
    loss_db_per_km: float | None = Field(default=None, ge=0)
    connector_count: int = Field(default=2, ge=0)
    connector_loss_db: float = Field(default=0.25, ge=0)
    splice_count: int = Field(default=0, ge=0)
    splice_loss_db: float = Field(default=0.05, ge=0)
    margin_db: float = Field(default=0.0, ge=0)
    dispersion_ps_per_nm_km: float = 16.7
    dispersion_slope_ps_per_nm2_km: float = 0.056
    dispersion_reference_nm: float = 1550.0
    nonlinear_coefficient_per_w_km: float = Field(default=1.3, ge=0)

    @model_validator(mode="after")
    def _constant_needs_value(self) -> FibreConfig:
        if self.attenuation_model == "constant" and self.loss_db_per_km is None:
            raise ValueError("attenuation_model = 'constant' needs loss_db_per_km")
        if self.attenuation_model != "constant" and self.loss_db_per_km is not None:
            raise ValueError("loss_db_per_km is only used with attenuation_model = 'constant'")
        return self


class ChannelConfig(_Strict):
    wavelength_nm: float | None = Field(default=None, ge=1200, le=1700)
    frequency_thz: float | None = Field(default=None, ge=176, le=250)
    launch_power_dbm: float = 0.0
    direction: Literal["co", "counter"] = "co"

    @model_validator(mode="after")
    def _one_position(self) -> ChannelConfig:
        if (self.wavelength_nm is None) == (self.frequency_thz is None):
            raise ValueError("a channel needs exactly one of wavelength_nm / frequency_thz")
        return self


class CombConfig(_Strict):
    count: int | None = Field(default=None, ge=0)
    band: str | None = None
    spacing_ghz: float = Field(default=100.0, gt=0)
    start_wavelength_nm: float | None = Field(default=None, ge=1200, le=1700)
    start_frequency_thz: float | None = Field(default=None, ge=176, le=250)
    launch_power_dbm: float = 0.0
    direction: Literal["co", "counter"] = "co"
    guard_ghz: float = Field(default=100.0, ge=0)

    _band = field_validator("band")(_check_band)

    @model_validator(mode="after")
    def _count_or_band(self) -> CombConfig:
        if (self.count is None) == (self.band is None):
            raise ValueError("a comb needs exactly one of count (with a start) or band")
        if self.count is not None and (
            (self.start_wavelength_nm is None) == (self.start_frequency_thz is None)
        ):
            raise ValueError(
                "a comb with count needs one of start_wavelength_nm/start_frequency_thz"
            )
        return self


class WdmConfig(_Strict):
    channels: list[ChannelConfig] = Field(default_factory=list)
    combs: list[CombConfig] = Field(default_factory=list)
    transmitter_osnr_db: float | None = None
    booster_gain_db: float = Field(default=0.0, ge=0)
    booster_noise_figure_db: float = Field(default=5.0, ge=3.0)
    mux_isolation_db: float = Field(default=50.0, ge=0)
    signal_bandwidth_ghz: float = Field(default=32.0, gt=0)
    emission_band: str = "C"

    _emission_band = field_validator("emission_band")(_check_band)


class TransmitterConfig(_Strict):
    modulation_variance_snu: float = Field(gt=0)
    symbol_rate_hz: float = Field(gt=0)
    laser_linewidth_hz: float = Field(default=100e3, ge=0)
    mux_insertion_loss_db: float = Field(default=0.0, ge=0)
    modulation_noise_snu: float = Field(default=0.0, ge=0)


class ReceiverConfig(_Strict):
    detection: Detection = "homodyne"
    detector_efficiency: float = Field(default=0.6, gt=0, le=1)
    electronic_noise_snu: float = Field(default=0.01, ge=0)
    demux_insertion_loss_db: float = Field(default=0.0, ge=0)
    demux_directivity_db: float = Field(default=55.0, ge=0)
    lo: LoScheme = "local"
    lo_linewidth_hz: float = Field(default=100e3, ge=0)
    phase_reference_delay_s: float = Field(default=0.0, ge=0)
    residual_phase_noise_rad2: float = Field(default=0.0, ge=0)
    pilot_period_slots: int = Field(default=10, ge=2)
    pilot_mean_photon_number: float = Field(default=1e6, gt=0)
    phase_window_pilots: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _phase_reference(self) -> ReceiverConfig:
        if self.phase_window_pilots % 2 == 0:
            raise ValueError(
                "phase_window_pilots must be odd (a centred window), "
                f"got {self.phase_window_pilots}"
            )
        if self.lo == "local" and self.phase_reference_delay_s > 0:
            raise ValueError(
                "phase_reference_delay_s applies to a transmitted LO; with lo = 'local' the "
                "pilots set the phase error (pilot_period_slots, pilot_mean_photon_number, "
                "phase_window_pilots)"
            )
        return self


class RamanPoint(_Strict):
    offset_ghz: float
    coefficient_per_km_nm: float = Field(ge=0)


class RamanConfig(_Strict):
    temperature_k: float = Field(default=300.0, gt=0)
    coefficient_per_km_nm: float = Field(default=3e-9, ge=0)
    anchor_classical_wavelength_nm: float = 1550.12
    anchor_quantum_wavelength_nm: float = 1531.12
    measured: list[RamanPoint] = Field(default_factory=list)
    lo_polarisation_factor: float = Field(default=0.5, gt=0, le=1)


class ScenarioConfig(_Strict):
    schema_version: int
    name: str
    description: str = ""
    quantum_wavelength_nm: float = Field(ge=1200, le=1700)
    reconciliation_efficiency: float = Field(gt=0, le=1)
    fibre: FibreConfig
    wdm: WdmConfig = Field(default_factory=WdmConfig)
    transmitter: TransmitterConfig
    receiver: ReceiverConfig = Field(default_factory=ReceiverConfig)
    raman: RamanConfig = Field(default_factory=RamanConfig)

    @model_validator(mode="after")
    def _version(self) -> ScenarioConfig:
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {self.schema_version} is not supported (this cvqkd reads "
                f"{SCHEMA_VERSION})"
            )
        return self

    def to_scenario(self, *, source: str = "") -> Scenario:
        """Convert to the SI :class:`Scenario` (dB → linear, nm → m, km → m, dBm → W)."""
        f = self.fibre
        lumped = (
            f.connector_count * f.connector_loss_db
            + f.splice_count * f.splice_loss_db
            + f.margin_db
        )
        fibre = Fibre(
            length_m=f.length_km * 1e3,
            model=f.attenuation_model,
            loss_db_per_km=f.loss_db_per_km if f.loss_db_per_km is not None else 0.2,
            lumped_loss_db=lumped,
            dispersion_s_per_m2=f.dispersion_ps_per_nm_km * 1e-6,
            dispersion_slope_s_per_m3=f.dispersion_slope_ps_per_nm2_km * 1e3,
            dispersion_reference_m=f.dispersion_reference_nm * 1e-9,
            nonlinear_coefficient_per_w_m=f.nonlinear_coefficient_per_w_km * 1e-3,
        )
        nu_q = SPEED_OF_LIGHT_M_S / (self.quantum_wavelength_nm * 1e-9)
        chans: list[ClassicalChannel] = []
        for c in self.wdm.channels:
            freq = (
                c.frequency_thz * 1e12
                if c.frequency_thz is not None
                else SPEED_OF_LIGHT_M_S / (float(c.wavelength_nm or 0.0) * 1e-9)
            )
            chans.append(
                ClassicalChannel(freq, float(dbm_to_watt(c.launch_power_dbm)), c.direction)
            )
        for comb in self.wdm.combs:
            if comb.band is not None:
                chans.extend(
                    band_comb(
                        band=comb.band,
                        spacing_hz=comb.spacing_ghz * 1e9,
                        launch_power_dbm=comb.launch_power_dbm,
                        direction=comb.direction,
                        exclude_hz=(nu_q,),
                        guard_hz=comb.guard_ghz * 1e9,
                    )
                )
            else:
                chans.extend(
                    channel_comb(
                        count=int(comb.count or 0),
                        spacing_hz=comb.spacing_ghz * 1e9,
                        start_wavelength_m=(
                            comb.start_wavelength_nm * 1e-9
                            if comb.start_wavelength_nm is not None
                            else None
                        ),
                        start_frequency_hz=(
                            comb.start_frequency_thz * 1e12
                            if comb.start_frequency_thz is not None
                            else None
                        ),
                        launch_power_dbm=comb.launch_power_dbm,
                        direction=comb.direction,
                    )
                )
        w = self.wdm
        wdm = WdmPlan(
            channels=tuple(chans),
            transmitter_osnr_db=(
                w.transmitter_osnr_db if w.transmitter_osnr_db is not None else float("inf")
            ),
            booster_gain_db=w.booster_gain_db,
            booster_noise_figure_db=w.booster_noise_figure_db,
            mux_isolation_db=w.mux_isolation_db,
            signal_bandwidth_hz=w.signal_bandwidth_ghz * 1e9,
            emission_band=w.emission_band,
        )
        t = self.transmitter
        transmitter = Transmitter(
            modulation_variance_snu=t.modulation_variance_snu,
            symbol_rate_hz=t.symbol_rate_hz,
            laser_linewidth_hz=t.laser_linewidth_hz,
            mux_transmittance=float(transmittance_from_loss_db(t.mux_insertion_loss_db)),
            modulation_noise_snu=t.modulation_noise_snu,
        )
        r = self.receiver
        receiver = Receiver(
            detection=r.detection,
            detector_efficiency=r.detector_efficiency,
            electronic_noise_snu=r.electronic_noise_snu,
            demux_transmittance=float(transmittance_from_loss_db(r.demux_insertion_loss_db)),
            demux_directivity=float(transmittance_from_loss_db(r.demux_directivity_db)),
            lo=r.lo,
            lo_linewidth_hz=r.lo_linewidth_hz,
            phase_reference_delay_s=r.phase_reference_delay_s,
            residual_phase_noise_rad2=r.residual_phase_noise_rad2,
            pilot_period_slots=r.pilot_period_slots,
            pilot_mean_photon_number=r.pilot_mean_photon_number,
            phase_window_pilots=r.phase_window_pilots,
        )
        rm = self.raman
        pts = sorted(rm.measured, key=lambda p: p.offset_ghz)
        raman = RamanModel(
            temperature_k=rm.temperature_k,
            anchor_coefficient_per_m2=rm.coefficient_per_km_nm * PER_KM_NM_IN_PER_M2,
            anchor_classical_wavelength_m=rm.anchor_classical_wavelength_nm * 1e-9,
            anchor_quantum_wavelength_m=rm.anchor_quantum_wavelength_nm * 1e-9,
            measured_offsets_hz=tuple(p.offset_ghz * 1e9 for p in pts),
            measured_coefficients_per_m2=tuple(
                p.coefficient_per_km_nm * PER_KM_NM_IN_PER_M2 for p in pts
            ),
            lo_polarisation_factor=rm.lo_polarisation_factor,
        )
        return Scenario(
            name=self.name,
            description=self.description,
            fibre=fibre,
            wdm=wdm,
            transmitter=transmitter,
            receiver=receiver,
            quantum_wavelength_m=self.quantum_wavelength_nm * 1e-9,
            reconciliation_efficiency=self.reconciliation_efficiency,
            raman=raman,
            source=source,
        )


# ---------------------------------------------------------------- loading


def _error_line(exc: ValidationError, where: str) -> str:
    errors = exc.errors()
    # an unknown key usually explains a "missing" one (a typo): report it first
    err = next((e for e in errors if e.get("type") == "extra_forbidden"), errors[0])
    more = (
        f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        if len(errors) > 1
        else ""
    )
    loc = ".".join(str(p) for p in err.get("loc", ()))
    if err.get("type") == "extra_forbidden":
        return f"{where}: unknown key '{loc}'{more}"
    if err.get("type") == "missing":
        return f"{where}: missing key '{loc}'{more}"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"{where}: {loc + ': ' if loc else ''}{msg}{more}"


def scenario_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> Scenario:
    """Validate a parsed TOML mapping and build the :class:`Scenario`; ConfigError on error."""
    try:
        cfg = ScenarioConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_error_line(exc, source)) from None
    return cfg.to_scenario(source=source)


def _builtin_dir() -> Any:
    return resources.files("cvqkd") / "scenarios"


def builtin_scenario_names() -> list[str]:
    """Names of the scenarios shipped with cvqkd (``seed-120km`` first: the default)."""
    names = sorted(
        p.name.removesuffix(".toml") for p in _builtin_dir().iterdir() if p.name.endswith(".toml")
    )
    if "seed-120km" in names:
        names.remove("seed-120km")
        names.insert(0, "seed-120km")
    return names


def load_scenario(name_or_path: str) -> Scenario:
    """Load a built-in scenario by name (``"seed-120km"``) or a TOML file by path.

    Raises :class:`ConfigError` naming the file and the key for anything wrong.
    """
    if name_or_path in builtin_scenario_names():
        res = _builtin_dir() / f"{name_or_path}.toml"
        text = res.read_text(encoding="utf-8")
        where = f"built-in scenario {name_or_path!r}"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            known = ", ".join(builtin_scenario_names())
            raise ConfigError(
                f"no scenario {name_or_path!r}: not a built-in ({known}) and no such file"
            )
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read scenario file {path}: {exc.strerror}") from None
        where = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    return scenario_from_dict(data, source=where)
