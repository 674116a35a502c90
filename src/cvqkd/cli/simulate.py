"""``cvqkd simulate SCENARIO --symbols N --out FILE`` and ``cvqkd estimate FILE``.

``simulate`` streams a simulated transmission of a scenario (its noise budget, receiver and
lasers) into an HDF5 dataset (docs/dataset-format.md) in bounded memory. ``estimate`` reads a
dataset — simulated or measured — chunk by chunk and prints the parameter estimates with their
confidence intervals and the sanity gates; a failed gate exits with code 3 after printing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` and ``estimate`` sub-commands to ``app``."""
    app.command("simulate")(simulate_command)
    app.command("estimate")(estimate_command)


def _progress(total: int, label: str) -> Any:
    """A rich progress bar on a terminal, else a no-op context."""
    import contextlib

    if not sys.stderr.isatty():
        return contextlib.nullcontext(None)
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from cvqkd.cli.output import error_console

    prog = Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
        console=error_console,
        transient=True,
    )
    return prog


def simulate_command(
    scenario: str = typer.Argument("seed-120km", help="Built-in scenario name or TOML path."),
    symbols: int = typer.Option(..., "--symbols", help="Number of slots (symbols) to simulate."),
    out_path: str = typer.Option(..., "--out", help="Output HDF5 dataset file."),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the random generator."),
    modulation: str = typer.Option(
        "gaussian",
        "--modulation",
        help="gaussian, qpsk, psk8, qam16, qam64, qam256, psqam16, psqam64, psqam256.",
    ),
    detection: str | None = typer.Option(
        None, "--detection", help="Override the scenario's detection: homodyne or heterodyne."
    ),
    length_km: float | None = typer.Option(
        None, "--length-km", help="Override the scenario's fibre length, in km."
    ),
    pilot_period: int | None = typer.Option(
        None, "--pilot-period", help="One pilot every P slots (default 10 for a local LO)."
    ),
    adc_bits: int = typer.Option(12, "--adc-bits", help="ADC resolution (0: ideal float)."),
    adc_full_scale_snu: float | None = typer.Option(
        None,
        "--adc-full-scale-snu",
        help="ADC rails at ± this many shot-noise standard deviations (default: automatic).",
    ),
    frequency_offset_hz: float = typer.Option(
        0.0, "--frequency-offset-hz", help="Alice-laser minus LO frequency, local LO only (Hz)."
    ),
    lo_power_drift_fraction: float = typer.Option(
        0.0,
        "--lo-power-drift-fraction",
        help="Fault injection: relative LO power change over the run (shot-noise drift).",
    ),
    shot_fraction: float = typer.Option(
        0.1, "--shot-noise-fraction", help="Share of slots for shot-noise calibration."
    ),
    electronic_fraction: float = typer.Option(
        0.05, "--electronic-noise-fraction", help="Share of slots for electronic calibration."
    ),
    chunk_slots: int = typer.Option(1 << 19, "--chunk-slots", help="Slots per chunk (memory)."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Simulate a transmission over SCENARIO and write it as an HDF5 dataset."""
    import numpy as np

    from cvqkd.dataset import DatasetWriter
    from cvqkd.errors import ConfigError
    from cvqkd.link.budget import noise_budget
    from cvqkd.scenario import load_scenario
    from cvqkd.sim.channel import ChannelParameters
    from cvqkd.sim.session import SessionSettings, block_metadata, count_pilots, simulate_stream

    out = Path(out_path)
    if symbols < 1:
        raise ConfigError(f"--symbols must be >= 1, got {symbols}")
    if detection is not None and detection not in ("homodyne", "heterodyne"):
        raise ConfigError(f"--detection must be homodyne or heterodyne, got {detection!r}")
    if out.parent and not out.parent.exists():
        raise ConfigError(f"--out: directory {str(out.parent)!r} does not exist")
    sc = load_scenario(scenario)
    if length_km is not None:
        if not length_km > 0:
            raise ConfigError(f"--length-km must be > 0, got {length_km:g}")
        sc = sc.with_length(length_m=length_km * 1e3)
    budget = noise_budget(sc)
    overrides: dict[str, Any] = {"detection": detection} if detection else {}
    if frequency_offset_hz:
        overrides["frequency_offset_hz"] = frequency_offset_hz
    channel = ChannelParameters.from_budget(budget, sc, **overrides)
    settings = SessionSettings(
        modulation=modulation,
        pilot_period=pilot_period,
        adc_bits=adc_bits,
        adc_full_scale_snu=adc_full_scale_snu,
        lo_power_drift_fraction=lo_power_drift_fraction,
        shot_noise_calibration_fraction=shot_fraction,
        electronic_noise_calibration_fraction=electronic_fraction,
        chunk_slots=chunk_slots,
    )
    meta = block_metadata(channel, settings)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    sample_dtype = np.float64 if adc_bits == 0 else (np.int16 if adc_bits <= 16 else np.int32)
    with (
        DatasetWriter(
            out,
            meta,
            total_slots=symbols,
            sample_dtype=sample_dtype,
            n_pilots=count_pilots(symbols, meta.pilot_period),
            attrs={
                "scenario": sc.name,
                "length_km": sc.fibre.length_m / 1e3,
                "seed": -1 if seed is None else seed,
            },
        ) as writer,
        _progress(symbols, "simulate") as prog,
    ):
        task = prog.add_task("simulate", total=symbols) if prog else None
        for block in simulate_stream(channel, n_symbols=symbols, rng=rng, settings=settings):
            writer.append(block)
            if prog:
                prog.update(task, advance=block.n_slots)
    elapsed = time.perf_counter() - t0
    report = {
        "scenario": sc.name,
        "length_km": sc.fibre.length_m / 1e3,
        "out": str(out),
        "symbols": symbols,
        "detection": channel.detection,
        "modulation": modulation,
        "local_oscillator": channel.local_oscillator,
        "pilot_period": meta.pilot_period,
        "elapsed_s": elapsed,
        "symbols_per_second": symbols / elapsed if elapsed > 0 else None,
        "file_bytes": out.stat().st_size,
        "truth": dict(meta.truth),
    }
    if json_output:
        from cvqkd.cli.output import print_json

        print_json(report)
        return
    from cvqkd.cli.output import print_table

    rows = [(k, v) for k, v in report.items() if k != "truth"]
    rows += [(f"truth: {k}", v) for k, v in meta.truth.items()]
    print_table(f"Simulated {sc.name} → {out}", ["quantity", "value"], rows)


def estimate_command(
    file_path: str = typer.Argument(..., help="HDF5 dataset (simulated or measured)."),
    disclosed_fraction: float = typer.Option(
        0.5, "--disclosed-fraction", help="Share of data symbols disclosed for estimation."
    ),
    epsilon_pe: float = typer.Option(
        1e-10, "--epsilon-pe", help="Failure probability of each confidence interval."
    ),
    gate_epsilon: float = typer.Option(
        1e-6, "--gate-epsilon", help="False-alarm probability of each statistical gate."
    ),
    max_clip_fraction: float = typer.Option(
        1e-4, "--max-clip-fraction", help="Largest tolerated share of clipped samples."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Seed of the disclosure choice."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Estimate SNU, v_el, T, ξ and SNR with intervals from FILE, and check the gates."""
    import numpy as np

    from cvqkd.dataset import read_metadata
    from cvqkd.errors import SecurityAbort
    from cvqkd.estimation import estimate, summary_rows

    file = Path(file_path)
    meta, _ = read_metadata(file)
    est = estimate(
        file,
        disclosed_fraction=disclosed_fraction,
        epsilon_pe=epsilon_pe,
        rng=np.random.default_rng(seed),
        gate_epsilon=gate_epsilon,
        max_clip_fraction=max_clip_fraction,
    )
    if json_output:
        from cvqkd.cli.output import print_json

        print_json(
            {
                "file": str(file),
                "metadata": meta,
                "estimates": est,
                "passed": est.gates.passed,
                "reasons": list(est.gates.reasons),
            }
        )
    else:
        from cvqkd.cli.output import console, print_table

        truth = meta.truth
        tmap: dict[str, Any] = {}
        if truth:
            # simulated ξ: injected sources + the predicted residual phase noise (local LO)
            xi_sim = truth["excess_noise_snu"] + truth.get("phase_noise_snu_predicted", 0.0)
            tmap = {
                "shot-noise unit (raw units²)": truth.get("shot_noise_variance_raw"),
                "electronic noise v_el (SNU)": truth["electronic_noise_snu"]
                + truth.get("quantisation_noise_snu", 0.0),
                "ηT": truth["transmittance"] * truth["detector_efficiency"],
                "transmittance T": truth["transmittance"],
                "excess noise ξ (SNU, input)": xi_sim,
            }
        cols = ["quantity", "estimate", "low", "high"] + (["simulated"] if truth else [])
        rows = [(*r, *([tmap.get(r[0], "")] if truth else [])) for r in summary_rows(est)]
        print_table(
            f"Parameter estimation: {file} ({meta.detection}, {est.n_disclosed_symbols} of "
            f"{est.n_data_symbols} data symbols disclosed, ε_PE = {epsilon_pe:g})",
            cols,
            rows,
        )
        console.print("gates: " + ("passed" if est.gates.passed else "FAILED"))
        for r in est.gates.reasons:
            console.print(f"  - {r}")
    if not est.gates.passed:
        raise SecurityAbort("parameter estimation gates failed: " + "; ".join(est.gates.reasons))
