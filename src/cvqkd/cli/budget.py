"""``cvqkd scenarios`` and ``cvqkd budget SCENARIO``: the built-in scenarios, and a scenario's
noise budget (one row per source, SNU at the channel input and at Bob) with its asymptotic
GG02 key rate.

``cvqkd budget --json`` (a stable interface, DESIGN.md): ``sources`` holds one entry per noise
source, each ``{"input_snu", "bob_snu", "trusted"}``. The excess-noise sources (Raman, FWM,
crosstalk, ASE, phase, modulation) are ``"trusted": false`` and ``excess_noise_snu`` is their
sum — the untrusted total attributed to Eve. The ``detector`` entry is the trusted receiver's
electronic noise: ``bob_snu`` = v_el, ``input_snu`` = v_el/(ηT), ``"trusted": true``; it is NOT
part of ``excess_noise_snu`` (PHYSICS.md: the trusted detector stays out of χ_BE's channel).
"""

from __future__ import annotations

from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``scenarios`` and ``budget`` sub-commands to ``app``."""
    app.command("scenarios")(scenarios_command)
    app.command("budget")(budget_command)


def scenarios_command(
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the built-in scenarios with their descriptions."""
    from cvqkd.cli.output import print_json, print_table
    from cvqkd.scenario import builtin_scenario_names, load_scenario

    rows = [(n, load_scenario(n).description) for n in builtin_scenario_names()]
    if json_output:
        print_json(
            {
                "default": rows[0][0] if rows else None,
                "scenarios": [{"name": n, "description": d} for n, d in rows],
            }
        )
        return
    print_table("Built-in scenarios (first: the default)", ["name", "description"], rows)


def budget_report(
    scenario_name: str,
    *,
    length_km: float | None = None,
    channels: int | None = None,
    launch_power_dbm: float | None = None,
    quantum_wavelength_nm: float | None = None,
) -> dict[str, Any]:
    """The ``--json`` object of ``cvqkd budget`` (also used by the human output); the
    keyword arguments override the scenario (``None``: keep)."""
    from cvqkd.errors import ConfigError
    from cvqkd.link.budget import noise_budget
    from cvqkd.scenario import load_scenario
    from cvqkd.units import dbm_to_watt, loss_db_from_transmittance

    scenario = load_scenario(scenario_name)
    if length_km is not None:
        if not length_km > 0:
            raise ConfigError(f"--length-km must be > 0, got {length_km:g}")
        scenario = scenario.with_length(length_m=length_km * 1e3)
    if channels is not None:
        scenario = scenario.with_channel_count(channels)
    if launch_power_dbm is not None:
        scenario = scenario.with_launch_power(launch_power_w=float(dbm_to_watt(launch_power_dbm)))
    if quantum_wavelength_nm is not None:
        if not 1200.0 <= quantum_wavelength_nm <= 1700.0:
            raise ConfigError(
                f"--quantum-wavelength-nm must lie in 1200..1700 nm, got {quantum_wavelength_nm:g}"
            )
        scenario = scenario.replace(quantum_wavelength_m=quantum_wavelength_nm * 1e-9)
    b = noise_budget(scenario)
    rate = b.key_rate()
    k = float(rate.key_rate_bits_per_symbol)
    return {
        "scenario": scenario.name,
        "length_km": scenario.fibre.length_m / 1e3,
        "quantum_wavelength_nm": scenario.quantum_wavelength_m * 1e9,
        "classical_channels": len(scenario.wdm.channels),
        "total_launch_power_w": scenario.wdm.total_launch_power_w,
        "transmittance": b.transmittance,
        "loss_db": float(loss_db_from_transmittance(b.transmittance)),
        "detector_efficiency": b.detector_efficiency,
        "electronic_noise_snu": b.electronic_noise_snu,
        "detection": b.detection,
        "modulation_variance_snu": b.modulation_variance_snu,
        "reconciliation_efficiency": b.reconciliation_efficiency,
        "symbol_rate_hz": b.symbol_rate_hz,
        "sources": {
            **{
                name: {"input_snu": v, "bob_snu": b.at_bob_snu(name), "trusted": False}
                for name, v in b.sources_snu.items()
            },
            "detector": {
                "input_snu": b.electronic_noise_input_referred_snu,
                "bob_snu": b.electronic_noise_snu,
                "trusted": True,
            },
        },
        "excess_noise_snu": b.excess_noise_snu,
        "excess_noise_at_bob_snu": b.excess_noise_at_bob_snu,
        "detector": {
            "trusted": True,
            "electronic_noise_snu": b.electronic_noise_snu,
            "input_referred_snu": b.electronic_noise_input_referred_snu,
        },
        "mutual_information_bits": float(rate.mutual_information_bits),
        "holevo_bits": float(rate.holevo_bits),
        "key_rate_bits_per_symbol": k,
        "key_slot_fraction": b.key_slot_fraction,
        "key_rate_bps": k * b.key_symbol_rate_hz,
    }


def budget_command(
    scenario: str = typer.Argument(
        "seed-120km", help="A built-in scenario name (see `cvqkd scenarios`) or a TOML file."
    ),
    length_km: float | None = typer.Option(
        None, "--length-km", help="Override the fibre length (km)."
    ),
    channels: int | None = typer.Option(
        None, "--channels", help="Use this many classical channels (plan cut or extended)."
    ),
    launch_power_dbm: float | None = typer.Option(
        None, "--launch-power-dbm", help="Launch every classical channel at this power (dBm)."
    ),
    quantum_wavelength_nm: float | None = typer.Option(
        None, "--quantum-wavelength-nm", help="Move the quantum channel (nm)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Noise budget of SCENARIO: excess noise per source (SNU, channel input and Bob) and the
    asymptotic GG02 key rate."""
    from cvqkd.cli.output import print_json, print_table

    rep = budget_report(
        scenario,
        length_km=length_km,
        channels=channels,
        launch_power_dbm=launch_power_dbm,
        quantum_wavelength_nm=quantum_wavelength_nm,
    )
    if json_output:
        print_json(rep)
        return
    rows: list[tuple[Any, ...]] = [
        (name, s["input_snu"], s["bob_snu"])
        for name, s in rep["sources"].items()
        if not s["trusted"]
    ]
    rows.append(("total excess noise", rep["excess_noise_snu"], rep["excess_noise_at_bob_snu"]))
    rows.append(
        (
            "detector (v_el, trusted, not in the total)",
            rep["detector"]["input_referred_snu"],
            rep["electronic_noise_snu"],
        )
    )
    print_table(
        f"Noise budget: {rep['scenario']} ({rep['length_km']:g} km, "
        f"{rep['classical_channels']} classical channels, quantum at "
        f"{rep['quantum_wavelength_nm']:.2f} nm)",
        ["source", "input [SNU]", "at Bob [SNU]"],
        rows,
    )
    print_table(
        "Link and key rate (asymptotic GG02, reverse reconciliation, trusted detector)",
        ["quantity", "value"],
        [
            (label, value)
            for label, value in [
                ("transmittance T", rep["transmittance"]),
                ("loss [dB]", rep["loss_db"]),
                ("detector efficiency η", rep["detector_efficiency"]),
                ("electronic noise v_el [SNU]", rep["electronic_noise_snu"]),
                ("detection", rep["detection"]),
                ("modulation variance V_A [SNU]", rep["modulation_variance_snu"]),
                ("reconciliation efficiency β", rep["reconciliation_efficiency"]),
                ("I_AB [bit/symbol]", rep["mutual_information_bits"]),
                ("χ_BE [bit/symbol]", rep["holevo_bits"]),
                ("key rate [bit/symbol]", rep["key_rate_bits_per_symbol"]),
                ("symbol rate [Hz]", rep["symbol_rate_hz"]),
                ("key-carrying slots (not pilots)", rep["key_slot_fraction"]),
                ("key rate [bit/s]", rep["key_rate_bps"]),
            ]
        ],
    )
