"""The run report of ``cvqkd run``: one JSON-ready dict, human tables and PNG plots.

:func:`build_report` joins the scenario's noise budget and the pipeline's
:class:`~cvqkd.pipeline.BlockReport` (never key material) into a plain dict;
:func:`render_tables` prints it with rich; :func:`write_outputs` writes ``report.json`` and the
plots (``stages.png``: bits left after each stage; ``key_length.png``: every term of ℓ;
``noise_budget.png``: excess noise per source). Pure functions draw on a given matplotlib ``ax``.

Example:
    >>> rep = {"bits_after_stage": {"slots_sent": 100, "delivered_bits": 3}}
    >>> stage_rows(rep)[0]
    ('slots_sent', 100)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from cvqkd.cli.output import to_jsonable

#: What the report says when the key material came from deterministic test randomness.
INSECURE_LABEL = "deterministic test randomness — NOT secure"

#: The label of a key from assumed (model) parameters (same text as cvqkd.pipeline.MODEL_LABEL;
#: kept here so that the report imports no pipeline code).
MODEL_LABEL = (
    "asymptotic, assumed (model) parameters — not secure against an adversary who changes the "
    "channel"
)


def _sym(n: Any) -> str:
    """A symbol count for the report: ``1.2e+11`` or ``none ≤ 1e16``."""
    return f"{float(n):.2g}" if n is not None else "none ≤ 1e16"


def budget_dict(budget: Any) -> dict[str, Any]:
    """The noise budget as JSON-ready numbers (SNU at the channel input)."""
    sources = {str(k): float(v) for k, v in dict(budget.sources_snu).items()}
    return {
        "transmittance": float(budget.transmittance),
        "detector_efficiency": float(budget.detector_efficiency),
        "electronic_noise_snu": float(budget.electronic_noise_snu),
        "detection": str(budget.detection),
        "modulation_variance_snu": float(budget.modulation_variance_snu),
        "symbol_rate_hz": float(budget.symbol_rate_hz),
        "sources_snu": sources,
        "total_snu": float(sum(sources.values())),
    }


def build_report(
    block: Any, *, scenario: str, budget: Any | None, config: Any, wall_time_s: float
) -> dict[str, Any]:
    """Everything ``cvqkd run`` reports, as a JSON-ready dict (no key material).

    ``randomness`` names the source of the key material (:mod:`cvqkd.randomness`); when it was
    deterministic test randomness the security statement starts by saying the key is NOT secret.
    ``parameters`` says where χ_BE's T and ξ came from (``estimated``: this block; ``model``:
    the link model, assumed — :data:`cvqkd.pipeline.MODEL_LABEL`, never finite-size).
    """
    rep: dict[str, Any] = to_jsonable(block)
    used = rep["key_length"]["used"]
    level = used["level"]
    model = rep.get("parameters") == "model"
    secure = bool(used["finite_size_secure"]) and not model
    rep["scenario"] = scenario
    rep["noise_budget"] = budget_dict(budget) if budget is not None else None
    rep["config"] = {
        "n_symbols": config.n_symbols,
        "disclosed_fraction": config.disclosed_fraction,
        "level_requested": config.level,
        "beta_target": config.beta,
        "frame_length": config.frame_length,
        "max_iterations": config.max_iterations,
        "security": dataclasses.asdict(config.security),
        "parameters": getattr(config, "parameters", "estimated"),
    }
    rep["security_statement"] = (
        f"{level}: ε = {used['epsilon_total']:.3g} ({used['reference']})"
        if secure
        else (
            f"{MODEL_LABEL}: NOT finite-size or composably secure; T = "
            f"{rep['parameters_used']['transmittance']:.4g} and ξ = "
            f"{rep['parameters_used']['excess_noise_snu']:.4g} SNU assumed from the "
            f"{rep['parameters_used']['assumed_from']}, consistent with this block's intervals; "
            f"a finite-size key needs ≈ {_sym(rep['min_symbols_finite_size'])} symbols, a "
            f"composable one ≈ {_sym(rep['min_symbols_composable'])} (at the model's T, ξ and "
            "this block's β and FER)"
        )
        if model
        else (
            "asymptotic only: NOT finite-size or composably secure "
            f"(finite-size needs ≈ {rep['min_symbols_finite_size']} symbols, composable "
            f"≈ {rep['min_symbols_composable']}, at this block's estimates, β and FER)"
        )
    )
    if not rep.get("randomness_secure", True):
        rep["security_statement"] = (
            f"{rep.get('randomness') or INSECURE_LABEL} — key material is reproducible, the key "
            "is NOT secret; " + rep["security_statement"]
        )
    if rep.get("net_key_bits", 0) <= 0:
        rep["security_statement"] += (
            f"; the block did not pay for its own authentication (net {rep['net_key_bits']} bits:"
            " the pre-shared pool shrank)"
        )
    rep["wall_time_s"] = wall_time_s
    return rep


def stage_rows(rep: dict[str, Any]) -> list[tuple[str, int]]:
    """(stage, bits or symbols left) in pipeline order."""
    return [(k, int(v)) for k, v in rep["bits_after_stage"].items()]


def render_budget(nb: dict[str, Any] | None, scenario: str) -> None:
    """Print the noise budget (SNU at the channel input, per source) as a table."""
    from cvqkd.cli.output import print_table

    if not nb:
        return
    rows = [(k, v) for k, v in nb["sources_snu"].items()] + [("total ξ", nb["total_snu"])]
    print_table(
        f"Noise budget ({scenario}): T = {nb['transmittance']:.4g}, {nb['detection']}, "
        f"η = {nb['detector_efficiency']}, v_el = {nb['electronic_noise_snu']} SNU",
        ["source", "ξ (SNU, input)"],
        rows,
    )


def render_tables(rep: dict[str, Any]) -> None:
    """Print the report as rich tables on stdout."""
    from cvqkd.cli.output import console, print_table

    render_budget(rep.get("noise_budget"), rep["scenario"])
    e = rep["estimates"]
    print_table(
        f"Parameter estimation (ε_PE = {e['epsilon_pe']:g}, {e['n_disclosed_symbols']} symbols "
        "disclosed)",
        ["quantity", "estimate", "low", "high"],
        [
            ("transmittance T", e["transmittance"], *e["transmittance_interval"]),
            ("excess noise ξ (SNU)", e["excess_noise_snu"], *e["excess_noise_interval_snu"]),
            ("SNR (per real dimension)", e["snr"], *e["snr_interval"]),
            ("worst-case T", e["worst_case_transmittance"], "", ""),
            ("worst-case ξ (SNU)", e["worst_case_excess_noise_snu"], "", ""),
        ],
    )
    pu = rep.get("parameters_used") or {}
    if rep.get("parameters") == "model":
        mc = rep.get("model_consistency") or {}
        print_table(
            "Parameters used for χ_BE: ASSUMED from the link model (not this block's estimates)",
            ["quantity", "model", "inside this block's interval"],
            [
                ("transmittance T", pu["transmittance"], mc.get("transmittance_in_interval")),
                (
                    "excess noise ξ (SNU)",
                    pu["excess_noise_snu"],
                    mc.get("excess_noise_in_interval"),
                ),
                ("source", pu.get("assumed_from", ""), ""),
            ],
        )
    r = rep["reconciliation"]
    kept = f"{r['frames_tried'] - r['frames_failed']}/{r['frames_tried']}"
    if r.get("scheme") == "sliced":
        print_table(
            "Reconciliation (reverse, sliced + multistage LDPC decoding, verified by hash)",
            ["quantity", "value"],
            [
                ("SNR", r["snr"]),
                (
                    "bits per sample (disclosed levels)",
                    (f"{r['discretisation_bits']} ({', '.join(map(str, r['disclosed_levels']))})"),
                ),
                ("β (quantiser's ideal β)", f"{r['beta']:.4f} ({r['ideal_beta']:.4f})"),
                ("FER", r["fer"]),
                ("frames kept / tried", kept),
                (
                    "mean decoder iterations per coded level",
                    ", ".join(f"{v:.1f}" for v in r["mean_iterations_per_level"]),
                ),
            ],
        )
    else:
        print_table(
            "Reconciliation (reverse, multidimensional + LDPC, verified by hash)",
            ["quantity", "value"],
            [
                ("SNR", r["snr"]),
                ("code rate", r["rate"]),
                ("β", r["beta"]),
                ("FER", r["fer"]),
                ("frames kept / tried", kept),
                (
                    "kept after disclosure (bits disclosed, with round counts)",
                    f"{r.get('frames_with_disclosure', 0)} ({r.get('disclosed_bits', 0)})",
                ),
                ("MDR dimension", r["dimension"]),
                ("mean decoder iterations", r["mean_iterations"]),
            ],
        )
    print_table("Bits left after each stage", ["stage", "count"], stage_rows(rep))
    used = rep["key_length"]["used"]
    print_table(
        f"Key length at the {used['level']} level (ℓ = {used['length_bits']} bits)",
        ["term", "bits"],
        list(used["terms"].items()),
    )
    print_table(
        "Secret key",
        ["quantity", "value"],
        [
            ("key delivered, both parties (bits)", rep["delivered_bits"]),
            ("net of authentication key used (bits)", rep.get("net_key_bits")),
            ("keys identical (constant-time check)", rep["keys_identical"]),
            ("key rate (bit/symbol)", rep["key_rate_bits_per_symbol"]),
            (f"projected at {rep['symbol_rate_hz']:.3g} Bd (bit/s)", rep["key_rate_bps"]),
            ("block ID", rep["block_id"]),
            ("key-material randomness", rep.get("randomness", "")),
            ("parameters for χ_BE", rep.get("parameters", "estimated")),
        ],
    )
    console.print(f"Security: {rep['security_statement']}")


def plot_stages(rep: dict[str, Any], ax: Any) -> Any:
    """Bar chart (log scale) of what is left after each stage."""
    rows = stage_rows(rep)
    ax.barh([r[0] for r in rows][::-1], [max(r[1], 0.5) for r in rows][::-1], color="tab:blue")
    ax.set_xscale("log")
    ax.set_xlabel("symbols or bits")
    ax.set_title("What is left after each stage")
    return ax


def plot_key_terms(rep: dict[str, Any], ax: Any) -> Any:
    """The signed terms of the key length (bits) at the level used."""
    terms = rep["key_length"]["used"]["terms"]
    names = list(terms)
    vals = [terms[n] for n in names]
    ax.bar(names, vals, color=["tab:green" if v >= 0 else "tab:red" for v in vals])
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylabel("bits")
    ax.set_title(f"Key length terms ({rep['key_length']['used']['level']})")
    ax.tick_params(axis="x", rotation=30)
    return ax


def plot_budget(rep: dict[str, Any], ax: Any) -> Any:
    """Excess noise per source (SNU, channel input)."""
    nb = rep.get("noise_budget") or {"sources_snu": {}}
    src = nb["sources_snu"]
    ax.bar(list(src), list(src.values()), color="tab:orange")
    ax.set_ylabel("ξ (SNU, channel input)")
    ax.set_title("Noise budget")
    ax.tick_params(axis="x", rotation=30)
    return ax


def write_outputs(rep: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``report.json`` and the PNG plots into ``out_dir``; return the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "report.json"]
    paths[0].write_text(json.dumps(to_jsonable(rep), indent=2) + "\n", encoding="utf-8")
    for name, fn in (
        ("stages.png", plot_stages),
        ("key_length.png", plot_key_terms),
        ("noise_budget.png", plot_budget),
    ):
        fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
        fn(rep, ax)
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        paths.append(out / name)
    return paths
