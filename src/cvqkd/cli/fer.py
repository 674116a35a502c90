"""``cvqkd fer``: Monte-Carlo frame error rate of MDR + LDPC reconciliation vs SNR, with β."""

from __future__ import annotations

import sys
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add the ``fer`` sub-command to ``app``."""
    app.command("fer")(fer_command)


def _parse_values(text: str, what: str) -> list[float]:
    """``"-15.2,-15.0"`` or ``"start:stop:step"`` (stop included) → floats."""
    from cvqkd.errors import ConfigError

    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] == 0:
                raise ValueError
            start, stop, step = parts
            count = round((stop - start) / step) + 1
            if count < 1 or count > 1000:
                raise ValueError
            return [start + i * step for i in range(count)]
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(
            f"{what} must be a comma-separated list or start:stop:step, got {text!r}"
        ) from None


def fer_report(
    *,
    rate: float | None,
    snr_db: str | None,
    beta: str | None,
    frame_length: int,
    target_errors: int,
    max_frames: int,
    dimension: int,
    max_iterations: int,
    backend: str,
    seed: int,
    schedule: str | None = None,
    code_name: str | None,
    alist: str | None,
    batch_frames: int,
    progress: Any = None,
    disclosure: float = 0.0,
) -> dict[str, Any]:
    """Run the FER sweep and return the ``--json`` object."""

    import numpy as np

    from cvqkd.errors import ConfigError
    from cvqkd.reconciliation.fer import fer_point, resolve_code
    from cvqkd.reconciliation.finite_length import normal_approximation_fer
    from cvqkd.reconciliation.mdr import DIMENSIONS

    if dimension not in DIMENSIONS:
        raise ConfigError(f"--dimension must be 1, 2, 4 or 8, got {dimension}")
    if backend not in ("auto", "numba", "cuda", "reference"):
        raise ConfigError(f"--backend must be auto, numba, cuda or reference, got {backend!r}")
    if schedule not in (None, "layered", "flooding"):
        raise ConfigError(f"--schedule must be layered or flooding, got {schedule!r}")
    if (snr_db is None) == (beta is None):
        raise ConfigError("give exactly one of --snr-db and --beta")
    if target_errors < 1 or max_frames < 1 or frame_length < 1 or max_iterations < 1:
        raise ConfigError("--target-errors, --max-frames, --frame-length, --max-iterations > 0")
    layout = resolve_code(rate=rate, frame_length=frame_length, code_name=code_name, alist=alist)
    if snr_db is not None:
        snrs = [10.0 ** (v / 10.0) for v in _parse_values(snr_db, "--snr-db")]
    else:
        betas = _parse_values(beta or "", "--beta")
        if any(not 0 < b <= 1.2 for b in betas):
            raise ConfigError("--beta values must be in (0, 1.2]")
        snrs = [2.0 ** (2.0 * layout.rate / b) - 1.0 for b in betas]
    if not snrs:
        raise ConfigError("no SNR values given")
    plan = None
    if disclosure:
        from cvqkd.reconciliation.disclosure import plan_for

        plan = plan_for(layout.n_data - layout.code.n_checks, max_fraction=disclosure, rounds=8)
        if plan is None:
            raise ConfigError(f"--disclosure {disclosure} is less than one bit per round here")
        plan = plan.with_caps(max_iterations)  # the pipeline's caps
    rng = np.random.default_rng(seed)
    points = []
    for i, (snr, g) in enumerate(zip(snrs, rng.spawn(len(snrs)), strict=True)):
        cb = None if progress is None else progress(i, snr)
        points.append(
            fer_point(
                layout,
                snr=snr,
                dimension=dimension,
                rng=g,
                target_errors=target_errors,
                max_frames=max_frames,
                max_iterations=max_iterations,
                backend=backend,  # type: ignore[arg-type]
                schedule=schedule,  # type: ignore[arg-type]
                batch_frames=batch_frames,
                progress=cb,
                disclosure=plan,
            )
        )
    return {
        "code": layout.code.name,
        "rate": layout.rate,
        "frame_length": layout.code.n_vars,
        "data_bits_per_frame": layout.n_data,
        "punctured": int(layout.punctured.size),
        "shortened": int(layout.shortened.size),
        "dimension": dimension,
        "max_iterations": max_iterations,
        "schedule": schedule or "default",
        "seed": seed,
        "disclosure": None
        if plan is None
        else {"fraction_of_k": disclosure, "step_bits": plan.step_bits, "max_bits": plan.max_bits},
        "points": [
            {
                "snr": p.snr,
                "snr_db": p.snr_db,
                "beta": p.beta,
                "frames": p.frames,
                "frame_errors": p.frame_errors,
                "undetected_errors": p.undetected_errors,
                "min_undetected_weight": p.min_undetected_weight,
                "fer": p.fer,
                "fer_ci95": [p.fer_low, p.fer_high],
                "fer_bound": normal_approximation_fer(snr=p.snr, n=layout.n_data, rate=layout.rate),
                "effective_beta": p.effective_beta,
                "frames_kept_after_disclosure": p.disclosed_frames,
                "net_beta": p.net_beta,
                "mean_iterations": p.mean_iterations,
                "symbols_per_second": p.symbols_per_second,
                "edges_per_second": p.edges_per_second,
            }
            for p in points
        ],
        "_points": points,
    }


def fer_command(
    rate: float = typer.Option(None, "--rate", help="Code rate R (picks and adapts a code)."),
    snr_db: str = typer.Option(
        None, "--snr-db", help="SNR per real dimension in dB: '-15.3,-15.2' or FROM:TO:STEP."
    ),
    beta: str = typer.Option(
        None, "--beta", help="Instead of --snr-db: efficiencies β (SNR from R and β)."
    ),
    frame_length: int = typer.Option(100_000, "--frame-length", help="Block length n."),
    target_errors: int = typer.Option(20, "--target-errors", help="Stop after K frame errors."),
    max_frames: int = typer.Option(200, "--max-frames", help="Stop after F frames."),
    dimension: int = typer.Option(8, "--dimension", help="MDR dimension d (1, 2, 4, 8)."),
    max_iterations: int = typer.Option(500, "--max-iterations", help="Decoder iteration cap."),
    backend: str = typer.Option("auto", "--backend", help="auto, numba, cuda or reference."),
    schedule: str = typer.Option(
        None, "--schedule", help="layered or flooding (default: layered on CPU, flooding on GPU)."
    ),
    code_name: str = typer.Option(
        None,
        "--code",
        help="Family member to adapt (e.g. rl-r0.02), or a MET ensemble spec (.toml/.json).",
    ),
    alist: str = typer.Option(None, "--alist", help="Use this alist code file instead."),
    disclosure: float = typer.Option(
        0.0,
        "--disclosure",
        help="Incremental disclosure as in the pipeline: a failed frame gets up to this "
        "fraction of k of Bob's core bits in 8 rounds; FER is then what is left and β net "
        "charges the disclosed bits (0: off).",
    ),
    batch_frames: int = typer.Option(4, "--batch-frames", help="Frames decoded together."),
    seed: int = typer.Option(1, "--seed", help="Seed of the simulation."),
    json_output: bool = typer.Option(False, "--json", help="Print one JSON object."),
    plot: str = typer.Option(None, "--plot", help="Write FER vs SNR to this PNG/SVG file."),
) -> None:
    """Monte-Carlo FER of multidimensional reconciliation + LDPC decoding, with β per SNR."""
    from cvqkd.cli.output import print_json, print_table

    progress_bar = None
    make_cb = None
    if sys.stderr.isatty() and not json_output:
        from rich.progress import Progress

        progress_bar = Progress(transient=True)
        progress_bar.start()

        def make_cb(i: int, snr: float) -> Any:
            import math

            task = progress_bar.add_task(f"SNR {10 * math.log10(snr):.2f} dB", total=max_frames)

            def cb(frames: int, errors: int) -> None:
                progress_bar.update(task, completed=frames)

            return cb

    try:
        report = fer_report(
            rate=rate,
            snr_db=snr_db,
            beta=beta,
            frame_length=frame_length,
            target_errors=target_errors,
            max_frames=max_frames,
            dimension=dimension,
            max_iterations=max_iterations,
            backend=backend,
            seed=seed,
            code_name=code_name,
            alist=alist,
            batch_frames=batch_frames,
            schedule=schedule,
            progress=make_cb,
            disclosure=disclosure,
        )
    finally:
        if progress_bar is not None:
            progress_bar.stop()
    points = report.pop("_points")
    if plot:
        import matplotlib

        from cvqkd.errors import ConfigError

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from cvqkd.reconciliation.fer import plot_fer

        fig, ax = plt.subplots(figsize=(6, 4))
        plot_fer(points, ax)
        ax.set_title(f"{report['code']}, d = {dimension}")
        try:
            fig.savefig(plot, dpi=120, bbox_inches="tight")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot write plot {plot!r}: {exc}") from None
        finally:
            plt.close(fig)
        report["plot"] = plot
    if json_output:
        print_json(report)
        return
    disc = report["disclosure"]
    extra_cols = ["kept by disclosure", "β net"] if disc else []
    title = (
        f"FER of {report['code']} (R = {report['rate']:.5g}, n = {report['frame_length']}, "
        f"d = {dimension})"
    )
    if disc:
        title += f", disclosure ≤ {disc['max_bits']} bits in steps of {disc['step_bits']}"
    print_table(
        title,
        [
            "SNR (dB)",
            "SNR",
            "β",
            "frames",
            "errors",
            "undetected",
            "FER",
            "FER bound",
            "(1−FER)β",
            *extra_cols,
            "iterations",
            "symbols/s",
        ],
        [
            (
                p["snr_db"],
                p["snr"],
                p["beta"],
                p["frames"],
                p["frame_errors"],
                p["undetected_errors"],
                p["fer"],
                p["fer_bound"],
                p["effective_beta"],
                *((p["frames_kept_after_disclosure"], p["net_beta"]) if disc else ()),
                p["mean_iterations"],
                p["symbols_per_second"],
            )
            for p in report["points"]
        ],
    )
