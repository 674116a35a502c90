"""``cvqkd keyrate``: one key-rate point from flags (GG02, discrete modulation, decoy BB84, MDI).

Example::

    cvqkd keyrate --transmittance 0.302 --modulation-variance-snu 18.5 --excess-noise-snu 0.005 \\
        --detector-efficiency 0.606 --electronic-noise-snu 0.041 \\
        --reconciliation-efficiency 0.898 --detection homodyne --json

The ``--json`` object always holds ``transmittance``, ``excess_noise_snu``,
``mutual_information_bits``, ``holevo_bits``, ``key_rate_bits_per_symbol``, ``plob_bits_per_use``
(DESIGN.md stable interface; for DV protocols the CV-only ones are ``null`` and the rate is per
pulse), plus ``key_rate_bps`` when ``--symbol-rate-hz`` is given and ``security``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

if TYPE_CHECKING:
    from cvqkd.keyrate.dv import DecoyScheme
    from cvqkd.keyrate.finite_size import SecurityParameters
    from cvqkd.keyrate.gaussian import Detection


class Protocol(StrEnum):
    gg02 = "gg02"
    bb84_decoy = "bb84-decoy"
    mdi = "mdi"


class Security(StrEnum):
    asymptotic = "asymptotic"
    finite_size = "finite-size"
    composable = "composable"


class DetectionChoice(StrEnum):
    homodyne = "homodyne"
    heterodyne = "heterodyne"


class Modulation(StrEnum):
    gaussian = "gaussian"
    qpsk = "qpsk"
    psk8 = "psk8"
    qam16 = "qam16"
    qam64 = "qam64"
    qam256 = "qam256"


class Decoy(StrEnum):
    infinite = "infinite"
    vacuum_weak = "vacuum+weak"


def register(app: typer.Typer) -> None:
    """Add the ``keyrate`` sub-command to ``app``."""
    app.command("keyrate")(keyrate_command)


def keyrate_command(
    protocol: Annotated[
        Protocol, typer.Option("--protocol", help="gg02 | bb84-decoy | mdi")
    ] = Protocol.gg02,
    transmittance: float | None = typer.Option(
        None, "--transmittance", help="Channel transmittance T in (0, 1] (or --distance-km)."
    ),
    distance_km: float | None = typer.Option(None, "--distance-km", help="Fibre length [km]."),
    loss_db_per_km: float | None = typer.Option(
        None, "--loss-db-per-km", help="Fibre loss with --distance-km [dB/km] (default 0.2)."
    ),
    excess_noise_snu: float | None = typer.Option(
        None, "--excess-noise-snu", help="Excess noise ξ at the channel input [SNU] (CV)."
    ),
    modulation_variance: str = typer.Option(
        "optimal", "--modulation-variance-snu", help="V_A [SNU] or 'optimal' (CV)."
    ),
    detector_efficiency: float | None = typer.Option(
        None, "--detector-efficiency", help="Detector efficiency η (CV default 1; DV required)."
    ),
    electronic_noise_snu: float = typer.Option(
        0.0, "--electronic-noise-snu", help="Electronic noise v_el [SNU] (CV)."
    ),
    reconciliation_efficiency: float = typer.Option(
        0.95, "--reconciliation-efficiency", help="Reconciliation efficiency β (CV)."
    ),
    detection: Annotated[
        DetectionChoice | None,
        typer.Option(
            "--detection", help="homodyne | heterodyne (default homodyne; discrete: het)."
        ),
    ] = None,
    untrusted_detector: bool = typer.Option(
        False, "--untrusted-detector", help="Attribute η and v_el to Eve in the Holevo bound."
    ),
    modulation: Annotated[
        Modulation,
        typer.Option("--modulation", help="gaussian | qpsk | psk8 | qam16 | qam64 | qam256"),
    ] = Modulation.gaussian,
    probabilistic_shaping: bool = typer.Option(
        False, "--probabilistic-shaping", help="QAM with discrete-Gaussian weights."
    ),
    security: Annotated[
        Security, typer.Option("--security", help="asymptotic | finite-size | composable")
    ] = Security.asymptotic,
    block_size: float | None = typer.Option(None, "--block-size", help="Block size N [symbols]."),
    estimation_fraction: float | None = typer.Option(
        None, "--estimation-fraction", help="Fraction of the block disclosed (default 0.5)."
    ),
    epsilon: float | None = typer.Option(None, "--epsilon", help="One value for every ε."),
    epsilon_pe: float | None = typer.Option(None, "--epsilon-pe", help="ε_PE."),
    epsilon_smooth: float | None = typer.Option(None, "--epsilon-smooth", help="ε_smooth (ε̄)."),
    epsilon_pa: float | None = typer.Option(None, "--epsilon-pa", help="ε_PA (hashing, ε_h)."),
    epsilon_cor: float | None = typer.Option(None, "--epsilon-cor", help="ε_cor."),
    epsilon_ent: float | None = typer.Option(None, "--epsilon-ent", help="ε_ent (composable)."),
    frame_error_rate: float | None = typer.Option(
        None, "--frame-error-rate", help="Composable: FER, p_EC = 1 − FER (default 0)."
    ),
    discretisation_bits: int | None = typer.Option(
        None, "--discretisation-bits", help="Composable: bits per key symbol d (default 5)."
    ),
    symbol_rate_hz: float | None = typer.Option(
        None, "--symbol-rate-hz", help="Symbol (or pulse) rate [Hz] for key_rate_bps."
    ),
    background_yield: float | None = typer.Option(
        None,
        "--background-yield",
        help="DV: BB84 background yield Y0; MDI: per-detector dark-click probability.",
    ),
    misalignment_error: float | None = typer.Option(
        None, "--misalignment-error", help="DV: misalignment error e_d."
    ),
    error_correction_inefficiency: float = typer.Option(
        1.16, "--error-correction-inefficiency", help="DV: error-correction inefficiency f."
    ),
    mean_photon_number: float | None = typer.Option(
        None, "--mean-photon-number", help="DV: signal intensity μ (optimised if omitted)."
    ),
    decoy: Annotated[
        Decoy, typer.Option("--decoy", help="DV decoys: infinite | vacuum+weak")
    ] = Decoy.infinite,
    weak_decoy_photon_number: float | None = typer.Option(
        None, "--weak-decoy-photon-number", help="DV vacuum+weak: ν (default min(1e-3, 0.99 μ))."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Compute one key-rate point (bit/symbol; bit/s with --symbol-rate-hz)."""
    report = keyrate_report(
        protocol=protocol.value,
        transmittance=transmittance,
        distance_km=distance_km,
        loss_db_per_km=loss_db_per_km,
        excess_noise_snu=excess_noise_snu,
        modulation_variance=modulation_variance,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        reconciliation_efficiency=reconciliation_efficiency,
        detection=None if detection is None else detection.value,
        trusted_detector=not untrusted_detector,
        modulation=modulation.value,
        probabilistic_shaping=probabilistic_shaping,
        security=security.value,
        block_size=block_size,
        estimation_fraction=estimation_fraction,
        epsilons={
            "all": epsilon,
            "epsilon_pe": epsilon_pe,
            "epsilon_smooth": epsilon_smooth,
            "epsilon_pa": epsilon_pa,
            "epsilon_cor": epsilon_cor,
            "epsilon_ent": epsilon_ent,
        },
        frame_error_rate=frame_error_rate,
        discretisation_bits=discretisation_bits,
        symbol_rate_hz=symbol_rate_hz,
        background_yield=background_yield,
        misalignment_error=misalignment_error,
        error_correction_inefficiency=error_correction_inefficiency,
        mean_photon_number=mean_photon_number,
        decoy=decoy.value,
        weak_decoy_photon_number=weak_decoy_photon_number,
    )
    from cvqkd.cli.output import print_json, print_table

    if json_output:
        print_json(report)
        return
    rows = [(k, v) for k, v in report.items() if not isinstance(v, dict) and v is not None]
    print_table(
        f"Key rate ({report['protocol']}, {report['security']})", ["quantity", "value"], rows
    )


def _check_range(name: str, value: float, lo: float, hi: float, *, lo_open: bool = True) -> None:
    from cvqkd.errors import ConfigError

    ok = (value > lo if lo_open else value >= lo) and value <= hi
    if not ok:
        bracket = "(" if lo_open else "["
        raise ConfigError(f"{name} must lie in {bracket}{lo:g}, {hi:g}], got {value:g}")


def _resolve_transmittance(
    transmittance: float | None, distance_km: float | None, loss_db_per_km: float | None
) -> tuple[float, float | None]:
    from cvqkd.errors import ConfigError
    from cvqkd.units import transmittance_from_loss_db

    if transmittance is not None and distance_km is not None:
        raise ConfigError("give either --transmittance or --distance-km, not both")
    if transmittance is None and distance_km is None:
        raise ConfigError("missing --transmittance (or --distance-km with --loss-db-per-km)")
    if distance_km is None:
        if loss_db_per_km is not None:
            raise ConfigError("--loss-db-per-km needs --distance-km")
        assert transmittance is not None
        _check_range("--transmittance", transmittance, 0.0, 1.0)
        return transmittance, None
    if distance_km < 0:
        raise ConfigError(f"--distance-km must be >= 0, got {distance_km:g}")
    loss = 0.2 if loss_db_per_km is None else loss_db_per_km
    if loss < 0:
        raise ConfigError(f"--loss-db-per-km must be >= 0, got {loss:g}")
    return float(transmittance_from_loss_db(loss * distance_km)), loss


def _security_parameters(epsilons: dict[str, float | None]) -> SecurityParameters:
    from cvqkd.keyrate.finite_size import SecurityParameters

    base = epsilons.get("all")
    base = 1e-10 if base is None else base
    values = {k: (base if v is None else v) for k, v in epsilons.items() if k != "all"}
    for k, v in values.items():
        _check_range("--" + k.replace("_", "-"), v, 0.0, 1.0)
        if v >= 1.0:
            from cvqkd.errors import ConfigError

            raise ConfigError(f"--{k.replace('_', '-')} must be < 1, got {v:g}")
    return SecurityParameters(**values)


def keyrate_report(
    *,
    protocol: str = "gg02",
    transmittance: float | None = None,
    distance_km: float | None = None,
    loss_db_per_km: float | None = None,
    excess_noise_snu: float | None = None,
    modulation_variance: str = "optimal",
    detector_efficiency: float | None = None,
    electronic_noise_snu: float = 0.0,
    reconciliation_efficiency: float = 0.95,
    detection: str | None = None,
    trusted_detector: bool = True,
    modulation: str = "gaussian",
    probabilistic_shaping: bool = False,
    security: str = "asymptotic",
    block_size: float | None = None,
    estimation_fraction: float | None = None,
    epsilons: dict[str, float | None] | None = None,
    frame_error_rate: float | None = None,
    discretisation_bits: int | None = None,
    symbol_rate_hz: float | None = None,
    background_yield: float | None = None,
    misalignment_error: float | None = None,
    error_correction_inefficiency: float = 1.16,
    mean_photon_number: float | None = None,
    decoy: str = "infinite",
    weak_decoy_photon_number: float | None = None,
) -> dict[str, Any]:
    """The ``--json`` object of ``cvqkd keyrate`` (validates the flags; ConfigError on misuse)."""
    from cvqkd.errors import ConfigError
    from cvqkd.keyrate.bounds import plob_bits_per_use

    t, loss = _resolve_transmittance(transmittance, distance_km, loss_db_per_km)
    if symbol_rate_hz is not None and not symbol_rate_hz > 0:
        raise ConfigError(f"--symbol-rate-hz must be > 0, got {symbol_rate_hz:g}")
    report: dict[str, Any] = {
        "protocol": protocol,
        "security": security,
        "transmittance": t,
        "distance_km": distance_km,
        "loss_db_per_km": loss,
    }
    if protocol in ("bb84-decoy", "mdi"):
        report.update(
            _dv_report(
                protocol=protocol,
                transmittance=t,
                detector_efficiency=detector_efficiency,
                background_yield=background_yield,
                misalignment_error=misalignment_error,
                error_correction_inefficiency=error_correction_inefficiency,
                mean_photon_number=mean_photon_number,
                decoy=decoy,
                weak_decoy_photon_number=weak_decoy_photon_number,
                security=security,
                excess_noise_snu=excess_noise_snu,
                modulation=modulation,
            )
        )
    elif protocol == "gg02":
        if background_yield is not None or misalignment_error is not None:
            raise ConfigError("--background-yield/--misalignment-error apply to DV protocols only")
        if mean_photon_number is not None:
            raise ConfigError("--mean-photon-number applies to DV protocols; use V_A for gg02")
        report.update(
            _cv_report(
                transmittance=t,
                excess_noise_snu=excess_noise_snu,
                modulation_variance=modulation_variance,
                detector_efficiency=1.0 if detector_efficiency is None else detector_efficiency,
                electronic_noise_snu=electronic_noise_snu,
                reconciliation_efficiency=reconciliation_efficiency,
                detection=detection,
                trusted_detector=trusted_detector,
                modulation=modulation,
                probabilistic_shaping=probabilistic_shaping,
                security=security,
                block_size=block_size,
                estimation_fraction=estimation_fraction,
                epsilons=epsilons or {},
                frame_error_rate=frame_error_rate,
                discretisation_bits=discretisation_bits,
            )
        )
    else:
        raise ConfigError(f"unknown --protocol {protocol!r} (gg02 | bb84-decoy | mdi)")
    report["plob_bits_per_use"] = float(plob_bits_per_use(transmittance=t))
    if symbol_rate_hz is not None:
        report["symbol_rate_hz"] = symbol_rate_hz
        report["key_rate_bps"] = report["key_rate_bits_per_symbol"] * symbol_rate_hz
    return report


def _dv_report(
    *,
    protocol: str,
    transmittance: float,
    detector_efficiency: float | None,
    background_yield: float | None,
    misalignment_error: float | None,
    error_correction_inefficiency: float,
    mean_photon_number: float | None,
    decoy: str,
    weak_decoy_photon_number: float | None,
    security: str,
    excess_noise_snu: float | None,
    modulation: str,
) -> dict[str, Any]:
    from cvqkd.errors import ConfigError
    from cvqkd.keyrate.dv import bb84_decoy, mdi_qkd

    if security != "asymptotic":
        raise ConfigError(f"--security {security} is implemented for gg02 only")
    if excess_noise_snu is not None or modulation != "gaussian":
        raise ConfigError("--excess-noise-snu/--modulation apply to gg02 only")
    missing = [
        flag
        for flag, v in (
            ("--detector-efficiency", detector_efficiency),
            ("--background-yield", background_yield),
            ("--misalignment-error", misalignment_error),
        )
        if v is None
    ]
    if missing:
        raise ConfigError(f"--protocol {protocol} needs {', '.join(missing)}")
    assert detector_efficiency is not None and background_yield is not None
    assert misalignment_error is not None
    _check_range("--detector-efficiency", detector_efficiency, 0.0, 1.0)
    _check_range("--background-yield", background_yield, 0.0, 1.0, lo_open=False)
    _check_range("--misalignment-error", misalignment_error, 0.0, 0.5, lo_open=False)
    if error_correction_inefficiency < 1.0:
        raise ConfigError(
            f"--error-correction-inefficiency must be >= 1, got {error_correction_inefficiency:g}"
        )
    if mean_photon_number is not None:
        _check_range("--mean-photon-number", mean_photon_number, 0.0, 10.0)
    out: dict[str, Any] = {
        "excess_noise_snu": None,
        "mutual_information_bits": None,
        "holevo_bits": None,
        "detector_efficiency": detector_efficiency,
        "misalignment_error": misalignment_error,
        "error_correction_inefficiency": error_correction_inefficiency,
    }
    if protocol == "bb84-decoy":
        if weak_decoy_photon_number is not None and decoy != "vacuum+weak":
            raise ConfigError("--weak-decoy-photon-number needs --decoy vacuum+weak")
        r = bb84_decoy(
            transmittance=transmittance,
            detector_efficiency=detector_efficiency,
            background_yield=background_yield,
            misalignment_error=misalignment_error,
            error_correction_inefficiency=error_correction_inefficiency,
            mean_photon_number=mean_photon_number,
            decoy=cast("DecoyScheme", decoy),
            weak_decoy_photon_number=weak_decoy_photon_number,
        )
        out.update(
            background_yield=background_yield,
            decoy=decoy,
            mean_photon_number=r.mean_photon_number,
            gain=r.gain,
            qber=r.qber,
            single_photon_gain=r.single_photon_gain,
            single_photon_error=r.single_photon_error,
            key_rate_bits_per_pulse=r.key_rate_bits_per_pulse,
            key_rate_bits_per_symbol=r.key_rate_bits_per_pulse,
        )
    else:
        if weak_decoy_photon_number is not None and decoy != "vacuum+weak":
            raise ConfigError("--weak-decoy-photon-number needs --decoy vacuum+weak")
        m = mdi_qkd(
            transmittance=transmittance,
            detector_efficiency=detector_efficiency,
            dark_count_probability=background_yield,
            misalignment_error=misalignment_error,
            error_correction_inefficiency=error_correction_inefficiency,
            mean_photon_number=mean_photon_number,
            decoy=cast("DecoyScheme", decoy),
            weak_decoy_photon_number=weak_decoy_photon_number,
        )
        out.update(
            dark_count_probability=background_yield,
            decoy=decoy,
            mean_photon_number=m.mean_photon_number,
            gain=m.gain_z,
            qber=m.qber_z,
            yield_11=m.yield_11,
            error_11_x=m.error_11_x,
            key_rate_bits_per_pulse=m.key_rate_bits_per_pulse,
            key_rate_bits_per_symbol=m.key_rate_bits_per_pulse,
        )
    return out


def _cv_report(
    *,
    transmittance: float,
    excess_noise_snu: float | None,
    modulation_variance: str,
    detector_efficiency: float,
    electronic_noise_snu: float,
    reconciliation_efficiency: float,
    detection: str | None,
    trusted_detector: bool,
    modulation: str,
    probabilistic_shaping: bool,
    security: str,
    block_size: float | None,
    estimation_fraction: float | None,
    epsilons: dict[str, float | None],
    frame_error_rate: float | None,
    discretisation_bits: int | None,
) -> dict[str, Any]:
    import numpy as np

    from cvqkd.errors import ConfigError
    from cvqkd.keyrate.optimise import maximise_scalar

    if excess_noise_snu is None:
        raise ConfigError("--protocol gg02 needs --excess-noise-snu")
    if excess_noise_snu < 0:
        raise ConfigError(f"--excess-noise-snu must be >= 0, got {excess_noise_snu:g}")
    _check_range("--detector-efficiency", detector_efficiency, 0.0, 1.0)
    _check_range("--reconciliation-efficiency", reconciliation_efficiency, 0.0, 1.0)
    if electronic_noise_snu < 0:
        raise ConfigError(f"--electronic-noise-snu must be >= 0, got {electronic_noise_snu:g}")
    discrete = modulation != "gaussian"
    if discrete:
        if detection == "homodyne":
            raise ConfigError(f"--modulation {modulation} is analysed with heterodyne detection")
        if security != "asymptotic":
            raise ConfigError(f"--modulation {modulation} supports --security asymptotic only")
        detection = "heterodyne"
    elif probabilistic_shaping:
        raise ConfigError("--probabilistic-shaping needs a QAM --modulation")
    detection = detection or "homodyne"
    if probabilistic_shaping and not modulation.startswith("qam"):
        raise ConfigError("--probabilistic-shaping applies to QAM constellations only")
    if security == "asymptotic":
        given = [
            flag
            for flag, v in (
                ("--block-size", block_size),
                ("--estimation-fraction", estimation_fraction),
                *(("--" + k.replace("_", "-"), v) for k, v in epsilons.items() if k != "all"),
                ("--epsilon", epsilons.get("all")),
            )
            if v is not None
        ]
        if given:
            raise ConfigError(f"{', '.join(given)} need --security finite-size or composable")
    else:
        estimation_fraction = 0.5 if estimation_fraction is None else estimation_fraction
        if block_size is None:
            raise ConfigError(f"--security {security} needs --block-size")
        if not block_size > 1:
            raise ConfigError(f"--block-size must be > 1, got {block_size:g}")
        _check_range("--estimation-fraction", estimation_fraction, 0.0, 1.0)
        if estimation_fraction >= 1.0:
            raise ConfigError("--estimation-fraction must be < 1")
    if security != "composable" and (frame_error_rate, discretisation_bits) != (None, None):
        raise ConfigError("--frame-error-rate/--discretisation-bits need --security composable")
    frame_error_rate = 0.0 if frame_error_rate is None else frame_error_rate
    discretisation_bits = 5 if discretisation_bits is None else discretisation_bits
    if security == "composable":
        _check_range("--frame-error-rate", frame_error_rate, 0.0, 1.0, lo_open=False)
        if frame_error_rate >= 1.0:
            raise ConfigError("--frame-error-rate must be < 1")
        if discretisation_bits < 1:
            raise ConfigError("--discretisation-bits must be >= 1")
    sec = _security_parameters(epsilons)
    det = cast("Detection", detection)
    frac = 0.5 if estimation_fraction is None else estimation_fraction
    n_block = 0.0 if block_size is None else block_size

    common = dict(
        transmittance=transmittance,
        excess_noise_snu=excess_noise_snu,
        detector_efficiency=detector_efficiency,
        electronic_noise_snu=electronic_noise_snu,
        reconciliation_efficiency=reconciliation_efficiency,
    )

    def evaluate(va: float, *, final: bool) -> dict[str, Any]:
        if discrete:
            from cvqkd.keyrate.discrete import constellation, discrete_modulation_rate

            c = constellation(
                modulation,
                modulation_variance_snu=va,
                shaping="discrete-gaussian" if probabilistic_shaping else "uniform",
            )
            d = discrete_modulation_rate(
                constellation=c,
                trusted_detector=trusted_detector,
                mutual_information="constellation" if final else "gaussian",
                transmittance=transmittance,
                excess_noise_snu=excess_noise_snu,
                detector_efficiency=detector_efficiency,
                electronic_noise_snu=electronic_noise_snu,
                reconciliation_efficiency=reconciliation_efficiency,
            )
            return {
                "mutual_information_bits": d.mutual_information_bits,
                "holevo_bits": d.holevo_bits,
                "key_rate_bits_per_symbol": d.key_rate_bits_per_symbol,
                "non_gaussianity_w": d.non_gaussianity_w,
                "constellation": c.name,
            }
        if security == "asymptotic":
            from cvqkd.keyrate.gaussian import gg02

            r = gg02(
                modulation_variance_snu=va,
                detection=det,
                trusted_detector=trusted_detector,
                **common,
            )
            return {
                "mutual_information_bits": r.mutual_information_bits,
                "holevo_bits": r.holevo_bits,
                "key_rate_bits_per_symbol": r.key_rate_bits_per_symbol,
            }
        if security == "finite-size":
            from cvqkd.keyrate.finite_size import finite_size_gg02

            f = finite_size_gg02(
                modulation_variance_snu=va,
                block_size=n_block,
                estimation_fraction=frac,
                security=sec,
                detection=det,
                trusted_detector=trusted_detector,
                **common,
            )
            return {
                "mutual_information_bits": f.mutual_information_bits,
                "holevo_bits": f.holevo_worst_bits,
                "key_rate_bits_per_symbol": f.key_rate_bits_per_symbol,
                "transmittance_worst_case": f.transmittance_min,
                "excess_noise_worst_case_snu": f.excess_noise_max_snu,
                "delta_bits": f.delta_bits,
                "epsilon_total": f.epsilon_total,
            }
        from cvqkd.keyrate.composable import composable_gg02

        c2 = composable_gg02(
            modulation_variance_snu=va,
            block_size=n_block,
            estimation_fraction=frac,
            security=sec,
            frame_success_probability=1.0 - frame_error_rate,
            discretisation_bits=discretisation_bits,
            detection=det,
            trusted_detector=trusted_detector,
            **common,
        )
        return {
            "mutual_information_bits": c2.mutual_information_bits,
            "holevo_bits": c2.holevo_worst_bits,
            "key_rate_bits_per_symbol": c2.key_rate_bits_per_symbol,
            "transmittance_worst_case": c2.transmittance_min,
            "excess_noise_worst_case_snu": c2.excess_noise_max_snu,
            "delta_aep_bits": c2.delta_aep_bits,
            "theta_bits": c2.theta_bits,
            "epsilon_total": c2.epsilon_total,
        }

    if modulation_variance.strip().lower() == "optimal":
        hi = 50.0 if discrete else 1e3

        def objective(va_arr: Any) -> Any:
            flat = np.asarray(va_arr, dtype=float).ravel()
            vals = [
                float(evaluate(float(v), final=False)["key_rate_bits_per_symbol"]) for v in flat
            ]
            return np.asarray(vals).reshape(np.shape(va_arr))

        va_best, _ = maximise_scalar(
            objective,
            lower=0.01,
            upper=hi,
            grid_points=17 if discrete else 33,
            iterations=25 if discrete else 60,
        )
        va = float(va_best)
        optimised = True
    else:
        try:
            va = float(modulation_variance)
        except ValueError:
            raise ConfigError(
                "--modulation-variance-snu must be a number or 'optimal', "
                f"got {modulation_variance!r}"
            ) from None
        if not va > 0:
            raise ConfigError(f"--modulation-variance-snu must be > 0, got {va:g}")
        optimised = False
    result = evaluate(va, final=True)
    out: dict[str, Any] = {
        "excess_noise_snu": excess_noise_snu,
        "modulation": modulation,
        "modulation_variance_snu": va,
        "modulation_variance_optimised": optimised,
        "detection": detection,
        "trusted_detector": trusted_detector,
        "detector_efficiency": detector_efficiency,
        "electronic_noise_snu": electronic_noise_snu,
        "reconciliation_efficiency": reconciliation_efficiency,
    }
    if security != "asymptotic":
        out.update(block_size=block_size, estimation_fraction=frac)
        out.update(
            {
                k: getattr(sec, k)
                for k in (
                    "epsilon_pe",
                    "epsilon_smooth",
                    "epsilon_pa",
                    "epsilon_cor",
                    "epsilon_ent",
                )
            }
        )
    if security == "composable":
        out.update(frame_error_rate=frame_error_rate, discretisation_bits=discretisation_bits)
    out.update(
        {
            k: (float(v) if isinstance(v, (int, float, np.floating)) else v)
            for k, v in result.items()
        }
    )
    return out
