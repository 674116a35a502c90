"""``cvqkd plan SCENARIO``: the operator's questions as tables, PNG plots and ``--json``.

Key rate vs distance; the channel-density frontier (co- and counter-propagating); the best
quantum wavelength from the O to the L band; CV vs decoy BB84 vs MDI on the same fibre; and,
with ``--refresh-traffic-gbps``, whether the key rate can refresh that traffic's keys.

The sweeps' points are independent: ``--workers N`` runs them on N local processes,
``--dask-scheduler ADDRESS|local`` on a Dask cluster (the ``[dask]`` extra; a missing extra
exits 2 with the install command). The answers are the same on every backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cvqkd.cli.output import console, print_json, print_table
from cvqkd.errors import ConfigError


def _plots(out_dir: Path, results: dict[str, Any], scenario_name: str) -> list[str]:
    """Write the four PNG plots; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from cvqkd import plot

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))

    sweep = results["distance"]
    km = sweep.distances_m / 1e3
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot.key_rate_vs_distance(
        {
            "with classical traffic": sweep.key_rate_bits_per_symbol,
            "traffic, V_A optimised": sweep.optimal_modulation_key_rate_bits_per_symbol,
            "dark fibre": sweep.dark_fibre_key_rate_bits_per_symbol,
            "PLOB bound": sweep.plob_bits_per_use,
        },
        km,
        ax,
    )
    ax.set_title(f"{scenario_name}: asymptotic GG02 key rate")
    save(fig, "key_rate_vs_distance.png")

    front = results["frontier"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.5))
    plot.channel_frontier(
        {f"{d}-propagating": np.maximum(v, 0) for d, v in front.max_channels.items()},
        front.distances_m / 1e3,
        ax1,
        ylabel=f"max classical channels (search limit {front.channel_limit})",
    )
    plot.channel_frontier(
        {
            f"{d}-propagating": 10 * np.log10(np.maximum(v, 1e-12) / 1e-3)
            for d, v in front.max_total_power_w.items()
        },
        front.distances_m / 1e3,
        ax2,
        ylabel="max total classical launch power [dBm]",
    )
    fig.suptitle(f"{scenario_name}: classical load with a positive key")
    save(fig, "channel_frontier.png")

    scan = results["wavelength"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    plot.noise_vs_wavelength(
        scan.wavelengths_m * 1e9,
        scan.excess_noise_snu,
        scan.key_rate_bits_per_symbol,
        ax,
        classical_wavelengths_nm=results["classical_wavelengths_nm"],
    )
    ax.set_title(f"{scenario_name}: where to put the quantum channel")
    save(fig, "quantum_wavelength.png")

    cmp = results["protocols"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot.key_rate_vs_distance(
        {
            "CV (GG02)": cmp.cv_key_rate_bps,
            "decoy BB84": cmp.bb84_key_rate_bps,
            "MDI-QKD": cmp.mdi_key_rate_bps,
        },
        cmp.distances_m / 1e3,
        ax,
        ylabel="secret key rate [bit/s]",
    )
    ax.set_title(f"{scenario_name}: CV vs DV on the same fibre and traffic")
    save(fig, "protocol_comparison.png")

    fig, ax = plt.subplots(figsize=(7, 3.5))
    plot.noise_budget_bars(results["budget_sources_snu"], ax)
    ax.set_title(f"{scenario_name}: noise budget at the scenario's length")
    save(fig, "noise_budget.png")
    return written


def register(app: typer.Typer) -> None:
    """Add ``cvqkd plan`` to ``app``."""

    @app.command("plan")
    def plan_command(
        scenario: str = typer.Argument(
            "seed-120km", help="Built-in scenario name or path to a scenario TOML file."
        ),
        out: Path = typer.Option(Path("plan-output"), "--out", help="Folder for the PNG plots."),
        max_distance_km: float = typer.Option(
            250.0, "--max-distance-km", help="Longest fibre length in the sweeps (km)."
        ),
        points: int = typer.Option(50, "--points", help="Lengths in the distance sweeps."),
        frontier_points: int = typer.Option(
            15, "--frontier-points", help="Lengths in the channel-frontier sweep."
        ),
        channel_limit: int = typer.Option(
            160, "--channel-limit", help="Most classical channels tried in the frontier."
        ),
        refresh_traffic_gbps: float | None = typer.Option(
            None,
            "--refresh-traffic-gbps",
            help="Traffic (Gbit/s) whose AES-256 keys the link should refresh.",
        ),
        refresh_interval_s: float = typer.Option(
            1.0, "--refresh-interval-s", help="Rekey interval for --refresh-traffic-gbps (s)."
        ),
        workers: int | None = typer.Option(
            None,
            "--workers",
            help="Run the sweep points on N local processes (default: serial); with "
            "--dask-scheduler local, the number of Dask workers.",
        ),
        dask_scheduler: str | None = typer.Option(
            None,
            "--dask-scheduler",
            help="Run the sweep points on Dask: a scheduler address (tcp://host:8786) or "
            "'local' (needs the \\[dask] extra).",
        ),
        no_plots: bool = typer.Option(False, "--no-plots", help="Tables only, no PNG files."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Plan a link: key rate vs distance, channel frontier, best wavelength, CV vs DV."""
        import numpy as np

        from cvqkd import plan
        from cvqkd.link.budget import noise_budget
        from cvqkd.scenario import load_scenario

        if max_distance_km <= 0 or points < 2 or frontier_points < 1:
            raise ConfigError(
                "need --max-distance-km > 0, --points >= 2 and --frontier-points >= 1"
            )
        sc = load_scenario(scenario)
        budget = noise_budget(sc)
        distances = np.linspace(max_distance_km / points, max_distance_km, points) * 1e3
        frontier_distances = (
            np.linspace(max_distance_km / frontier_points, max_distance_km, frontier_points) * 1e3
        )
        with plan.make_executor(workers=workers, dask_scheduler=dask_scheduler) as ex:
            results: dict[str, Any] = {
                "distance": plan.key_rate_vs_distance(sc, distances_m=distances, executor=ex),
                "wavelength": plan.quantum_wavelength_scan(sc, executor=ex),
                "protocols": plan.protocol_comparison(sc, distances_m=distances, executor=ex),
                "classical_wavelengths_nm": 299_792_458.0 / sc.wdm.frequencies_hz * 1e9,
                "budget_sources_snu": dict(budget.sources_snu),
            }
            results["frontier"] = (
                plan.channel_frontier(
                    sc,
                    distances_m=frontier_distances,
                    channel_limit=channel_limit,
                    executor=ex,
                )
                if sc.wdm.channels
                else None
            )
            backend = ex.name
        key_bps = budget.key_rate_bps()
        refresh = None
        if refresh_traffic_gbps is not None:
            from cvqkd.apps.refresh import assess_refresh

            refresh = assess_refresh(
                key_rate_bps=max(key_bps, 0.0),
                traffic_gbps=refresh_traffic_gbps,
                rekey_interval_s=refresh_interval_s,
            )
        plots: list[str] = []
        if not no_plots and results["frontier"] is not None:
            plots = _plots(out, results, sc.name)

        sweep, scan, cmp, front = (
            results["distance"],
            results["wavelength"],
            results["protocols"],
            results["frontier"],
        )
        if json_out:
            print_json(
                {
                    "scenario": sc.name,
                    "key_rate_bits_per_symbol": float(budget.key_rate().key_rate_bits_per_symbol),
                    "key_rate_bps": key_bps,
                    "distance_sweep": {
                        "distances_km": sweep.distances_m / 1e3,
                        "key_rate_bits_per_symbol": sweep.key_rate_bits_per_symbol,
                        "optimal_modulation_key_rate_bits_per_symbol": (
                            sweep.optimal_modulation_key_rate_bits_per_symbol
                        ),
                        "dark_fibre_key_rate_bits_per_symbol": (
                            sweep.dark_fibre_key_rate_bits_per_symbol
                        ),
                        "excess_noise_snu": sweep.excess_noise_snu,
                        "plob_bits_per_use": sweep.plob_bits_per_use,
                        "max_distance_km": sweep.max_distance_m / 1e3,
                        "dark_fibre_max_distance_km": sweep.dark_fibre_max_distance_m / 1e3,
                    },
                    "channel_frontier": None
                    if front is None
                    else {
                        "distances_km": front.distances_m / 1e3,
                        "max_channels": front.max_channels,
                        "max_total_launch_power_w": front.max_total_power_w,
                        "channel_limit": front.channel_limit,
                    },
                    "wavelength_scan": {
                        "wavelengths_nm": scan.wavelengths_m * 1e9,
                        "excess_noise_snu": scan.excess_noise_snu,
                        "key_rate_bits_per_symbol": scan.key_rate_bits_per_symbol,
                        "best_wavelength_nm": scan.best_wavelength_m * 1e9,
                    },
                    "protocol_comparison": {
                        "distances_km": cmp.distances_m / 1e3,
                        "cv_key_rate_bps": cmp.cv_key_rate_bps,
                        "bb84_decoy_key_rate_bps": cmp.bb84_key_rate_bps,
                        "mdi_key_rate_bps": cmp.mdi_key_rate_bps,
                        "dv_system": cmp.dv,
                    },
                    "refresh": None if refresh is None else refresh.as_dict(),
                    "plots": plots,
                    "executor": backend,
                }
            )
            return

        console.print(f"[bold]{sc.name}[/bold]: {sc.description}")
        console.print(
            f"At {sc.fibre.length_m / 1e3:g} km: ξ = {budget.excess_noise_snu:.4g} SNU (input), "
            f"K = {float(budget.key_rate().key_rate_bits_per_symbol):.4g} bit/symbol = "
            f"{key_bps:.4g} bit/s (asymptotic)."
        )
        step = max(1, len(sweep.distances_m) // 10)
        print_table(
            "Key rate vs distance (asymptotic GG02)",
            ["length [km]", "ξ [SNU]", "K [bit/sym]", "K, V_A opt", "K dark fibre", "PLOB"],
            [
                (
                    sweep.distances_m[i] / 1e3,
                    sweep.excess_noise_snu[i],
                    _rate(sweep.key_rate_bits_per_symbol[i]),
                    _rate(sweep.optimal_modulation_key_rate_bits_per_symbol[i]),
                    _rate(sweep.dark_fibre_key_rate_bits_per_symbol[i]),
                    sweep.plob_bits_per_use[i],
                )
                for i in range(0, len(sweep.distances_m), step)
            ],
        )
        console.print(
            f"Positive key up to {sweep.max_distance_m / 1e3:g} km with this traffic, "
            f"{sweep.dark_fibre_max_distance_m / 1e3:g} km on dark fibre (swept lengths)."
        )
        if front is not None:
            print_table(
                "Channel-density frontier: most classical channels (and total launch power) "
                "with a positive key",
                [
                    "length [km]",
                    "co: channels",
                    "co: total [dBm]",
                    "counter: channels",
                    "counter: total [dBm]",
                ],
                [
                    (
                        front.distances_m[i] / 1e3,
                        _count(front.max_channels["co"][i], front.channel_limit),
                        _dbm(front.max_total_power_w["co"][i]),
                        _count(front.max_channels["counter"][i], front.channel_limit),
                        _dbm(front.max_total_power_w["counter"][i]),
                    )
                    for i in range(len(front.distances_m))
                ],
            )
        finite = np.isfinite(scan.key_rate_bits_per_symbol)
        best = scan.best_wavelength_m
        console.print(
            "Best quantum wavelength (O to L band, 1 nm steps): "
            + (f"{best * 1e9:.0f} nm" if np.isfinite(best) else "none with a positive key")
            + f"; now at {sc.quantum_wavelength_m * 1e9:.2f} nm "
            f"({int(finite.sum())} wavelengths evaluated)."
        )
        print_table(
            "CV vs DV on the same fibre and traffic [bit/s]",
            ["length [km]", "CV (GG02)", "decoy BB84", "MDI-QKD"],
            [
                (
                    cmp.distances_m[i] / 1e3,
                    _rate(cmp.cv_key_rate_bps[i]),
                    _rate(cmp.bb84_key_rate_bps[i]),
                    _rate(cmp.mdi_key_rate_bps[i]),
                )
                for i in range(0, len(cmp.distances_m), step)
            ],
        )
        if refresh is not None:
            verdict = "keeps up" if refresh.keeps_up else "does NOT keep up"
            console.print(
                f"Key refresh: {refresh_traffic_gbps:g} Gbit/s rekeyed every "
                f"{refresh.effective_rekey_interval_s:.3g} s needs "
                f"{refresh.required_key_rate_bps:.4g} bit/s of QKD key; the link makes "
                f"{max(key_bps, 0.0):.4g} bit/s: it {verdict} (margin {refresh.margin:.3g}×)."
            )
        if plots:
            console.print("Plots: " + ", ".join(plots))


def _rate(value: float) -> float | str:
    """A rate for the table: non-positive means no key."""
    return value if value > 0 else "no key"


def _count(value: int, limit: int) -> str:
    if value < 0:
        return "no key"
    return f"≥{limit}" if value >= limit else str(int(value))


def _dbm(watt: float) -> str:
    import math

    return "no key" if watt <= 0 else f"{10 * math.log10(watt / 1e-3):.1f}"
