"""``cvqkd codes``: list, show, design and select the shipped low-rate LDPC codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cvqkd.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Attach the ``codes`` command group to the root app."""
    codes = typer.Typer(
        help=(
            "Low-rate LDPC codes (MET and QC Raptor-like): list, show, design (QC), "
            "analyse (MET), select."
        ),
        no_args_is_help=True,
    )

    @codes.command("list")
    def list_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """List the shipped codes (MET and QC families) with their thresholds."""
        from cvqkd.cli.output import print_json, print_table
        from cvqkd.reconciliation.codes import available_codes

        rows = [_summary(name) for name in available_codes()]
        if as_json:
            print_json({"codes": rows})
            return
        print_table(
            "Shipped codes (BIAWGN thresholds: PEXIT for QC, EXIT for MET — optimistic there)",
            ["name", "family", "rate", "structure", "n", "SNR* (dB)", "β*"],
            [
                [
                    r["name"],
                    r["family"],
                    r["rate"],
                    r["structure"],
                    ", ".join(str(n) for n in r["block_lengths"])
                    if r["block_lengths"]
                    else f"k × {r['unit']}",
                    r["threshold_snr_db"],
                    r["threshold_beta"],
                ]
                for r in rows
            ],
        )

    @codes.command("show")
    def show_cmd(
        name: str = typer.Argument(
            ..., help="Code name, e.g. met-r0.02 or rl-r0.2 (see `cvqkd codes list`)."
        ),
        check: bool = typer.Option(
            False, "--check", help="Recompute the threshold and count 4-cycles (n = 10^5)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Show one code: its degree structure, block lengths and threshold."""
        from cvqkd.cli.output import console, print_json, print_table
        from cvqkd.reconciliation.codes import code_family

        if code_family(name) == "met":
            info = _met_details(name, check=check)
        else:
            info = _qc_details(name, check=check)
        if as_json:
            print_json(info)
            return
        print_table(f"{name}", ["field", "value"], [[k, json.dumps(v)] for k, v in info.items()])
        if "generator" in info:
            console.print(f"regenerate: {info['generator']}")

    @codes.command("design")
    def design_cmd(
        name: str = typer.Option(None, "--name", help="Family member to (re)design."),
        all_: bool = typer.Option(False, "--all", help="Design every family member."),
        steps: int = typer.Option(
            None, "--steps", min=0, help="Override the number of search steps (default: spec)."
        ),
        starts: int = typer.Option(
            None, "--starts", min=1, help="Override the number of random precode starts (16)."
        ),
        relift: bool = typer.Option(
            False, "--relift", help="Keep the shipped protograph; recompute only the shifts."
        ),
        out: Path = typer.Option(
            None, "--out", help="Output folder (default: the package's code_data/)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Regenerate code data reproducibly (PEXIT search + 4-cycle-free QC lifting)."""
        from cvqkd.cli.output import print_json, print_table
        from cvqkd.reconciliation.codes import CODE_DATA_DIR, FAMILY, design_code

        specs = {s.name: s for s in FAMILY}
        if all_:
            chosen = list(FAMILY)
        elif name is not None:
            if name not in specs:
                raise ConfigError(f"--name {name!r} is not in the family: {', '.join(specs)}")
            chosen = [specs[name]]
        else:
            raise ConfigError("give --name NAME or --all")
        folder = out if out is not None else CODE_DATA_DIR
        folder.mkdir(parents=True, exist_ok=True)
        results = []
        for spec in chosen:
            reuse = None
            if relift:
                from cvqkd.reconciliation.codes import load_code_data

                reuse = load_code_data(spec.name)
            data = design_code(spec, steps=steps, starts=starts, reuse=reuse)
            path = folder / f"{spec.name}.json"
            path.write_text(json.dumps(data.to_json(), separators=(",", ":")) + "\n")
            results.append(
                {
                    "name": spec.name,
                    "rate": data.rate,
                    "pexit_threshold_snr": data.threshold_snr,
                    "pexit_beta": data.beta,
                    "path": str(path),
                }
            )
        if as_json:
            print_json({"designed": results})
        else:
            print_table(
                "Designed codes",
                ["name", "rate", "SNR*", "β*", "file"],
                [
                    [r["name"], r["rate"], r["pexit_threshold_snr"], r["pexit_beta"], r["path"]]
                    for r in results
                ],
            )

    @codes.command("analyse")
    def analyse_cmd(
        ensemble: str = typer.Argument(
            ..., help="A shipped MET code (e.g. met-r0.02) or an ensemble spec file (.json/.toml)."
        ),
        beta: list[float] = typer.Option(
            [], "--beta", help="Also count DE iterations to converge at this β (repeatable)."
        ),
        threshold: bool = typer.Option(
            True, "--threshold/--no-threshold", help="Bisect the Monte-Carlo DE threshold in β."
        ),
        lo: float = typer.Option(0.85, "--lo", help="Lower end of the β bisection."),
        resolution: float = typer.Option(0.0025, "--resolution", help="β step of the bisection."),
        population: int = typer.Option(50_000, "--population", min=1000, help="DE samples."),
        seed: int = typer.Option(11, "--seed", help="Seed of the Monte-Carlo DE."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Density evolution of a MET ensemble: EXIT and Monte-Carlo thresholds in β, and the
        DE iterations it needs at given β (few = a wide decoding tunnel; docs/met-codes.md)."""
        from cvqkd.cli.output import print_json, print_table
        from cvqkd.reconciliation.met import ENSEMBLES, exit_threshold_snr, threshold_beta
        from cvqkd.reconciliation.met_analysis import (
            de_iterations,
            de_threshold_beta,
            load_ensemble_spec,
        )

        if ensemble in ENSEMBLES:
            ens = ENSEMBLES[ensemble]
        elif Path(ensemble).suffix in (".json", ".toml"):
            ens = load_ensemble_spec(ensemble)
        else:
            raise ConfigError(
                f"{ensemble!r} is neither a MET code ({', '.join(sorted(ENSEMBLES))}) nor a "
                ".json/.toml ensemble spec"
            )
        try:
            exit_beta: float | None = threshold_beta(ens, exit_threshold_snr(ens))
        except ConfigError:
            exit_beta = None
        out: dict[str, Any] = {
            "name": ens.name,
            "rate": ens.rate,
            "unit": ens.unit,
            "exit_beta": exit_beta,
            "population": population,
            "seed": seed,
        }
        if threshold:
            br = de_threshold_beta(
                ens, lo=lo, resolution=resolution, seed=seed, population=population
            )
            out["de_converges_at"] = br.converges_at
            out["de_fails_at"] = br.fails_at
        seeds = (seed, seed + 1)
        out["de_iterations"] = {
            f"{b:g}": list(de_iterations(ens, beta=b, seeds=seeds, population=population))
            for b in beta
        }
        if as_json:
            print_json(out)
            return
        rows = [
            ["rate", out["rate"]],
            ["EXIT β* (Gaussian approximation, optimistic)", exit_beta],
        ]
        if threshold:
            rows.append(["Monte-Carlo DE converges at β", out["de_converges_at"]])
            rows.append(["Monte-Carlo DE fails at β", out["de_fails_at"]])
        for b, its in out["de_iterations"].items():
            rows.append(
                [f"DE iterations at β = {b}", ", ".join("—" if i is None else str(i) for i in its)]
            )
        print_table(f"{ens.name}: density evolution", ["quantity", "value"], rows)

    @codes.command("search")
    def search_cmd(
        rate: float = typer.Option(..., "--rate", help="Code rate of the ensemble, e.g. 0.02."),
        beta: float = typer.Option(0.95, "--beta", help="Target efficiency β of the DE score."),
        unit: int = typer.Option(
            None, "--unit", min=2, help="Variables per unit (default: the shipped member's)."
        ),
        start: str = typer.Option(
            None, "--start", help="Shipped MET code seeding the search (default: same rate)."
        ),
        core_min: int = typer.Option(
            None, "--core-min", help="Smallest core per unit (default: the start's core)."
        ),
        core_max: int = typer.Option(None, "--core-max", help="Largest core per unit."),
        max_single: int = typer.Option(
            0, "--max-single", min=0, help="Most extension checks with a single core edge."
        ),
        generations: int = typer.Option(10, "--generations", min=1),
        popsize: int = typer.Option(5, "--popsize", min=1, help="Candidates = 5 × popsize."),
        population: int = typer.Option(30_000, "--population", min=1000, help="DE samples."),
        max_iterations: int = typer.Option(300, "--max-iterations", min=10),
        max_stability: float = typer.Option(
            0.9, "--max-stability", help="Largest precode λ₂·ρ'(1) allowed."
        ),
        workers: int = typer.Option(1, "--workers", min=1, help="Processes scoring candidates."),
        seed: int = typer.Option(1, "--seed", help="Seed of the differential evolution."),
        fer_frames: int = typer.Option(
            0,
            "--fer-frames",
            min=0,
            help="Choose among the finalists by FER over this many frames.",
        ),
        fer_length: int = typer.Option(
            100_000, "--fer-length", min=1000, help="Frame length of the FER check."
        ),
        name: str = typer.Option(None, "--name", help="Name of the found ensemble."),
        out: Path = typer.Option(None, "--out", help="Write the best ensemble spec (.toml/.json)."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Search MET ensembles of the family's shape globally (differential evolution), scored
        by the Monte-Carlo DE iterations to converge at β (docs/met-codes.md)."""
        from cvqkd.cli.output import error_console, print_json, print_table
        from cvqkd.reconciliation.met import ENSEMBLES, MetShape
        from cvqkd.reconciliation.met_search import (
            SearchBounds,
            ShapeScore,
            ensemble_spec_toml,
            search_shapes,
            shape_of,
        )

        if not 0.0 < rate < 0.5:
            raise ConfigError(f"--rate must be in (0, 0.5), got {rate}")
        if start is None:
            start = next((k for k, e in ENSEMBLES.items() if abs(e.rate - rate) < 1e-12), None)
        elif start not in ENSEMBLES:
            raise ConfigError(f"--start {start!r} is not a MET code: {', '.join(ENSEMBLES)}")
        start_shape: MetShape | None = shape_of(ENSEMBLES[start]) if start is not None else None
        if start_shape is not None and abs(start_shape.rate - rate) > 1e-12:
            raise ConfigError(f"--start {start} has rate {start_shape.rate}, not {rate}")
        if unit is None:
            unit = start_shape.unit if start_shape is not None else round(8 / rate)
        info_bits = round(rate * unit)
        if abs(info_bits - rate * unit) > 1e-9 or info_bits < 1:
            raise ConfigError(f"--rate {rate} × --unit {unit} must be a positive integer")
        if start_shape is not None and start_shape.unit != unit:
            start_shape = None
        # a smaller core than the start's is a shorter precode: faster DE, but a larger
        # finite-length loss (docs/met-codes.md, "Global shape search"); opt in with --core-min
        lo = (
            core_min
            if core_min is not None
            else (start_shape.core if start_shape is not None else info_bits + 2)
        )
        hi = core_max if core_max is not None else 5 * info_bits
        if not info_bits < lo <= hi < unit:
            raise ConfigError(f"need {info_bits} < --core-min <= --core-max < {unit}")
        bounds = SearchBounds(core=(lo, hi), single_checks=(0, max_single))

        def progress(generation: int, best: ShapeScore) -> None:
            error_console.print(
                f"generation {generation}/{generations}: best score {best.score:.1f} "
                f"(DE iterations {list(best.iterations)}) {best.shape}"
            )

        result = search_shapes(
            unit=unit,
            info_bits=info_bits,
            beta=beta,
            bounds=bounds,
            start=start_shape,
            generations=generations,
            popsize=popsize,
            population=population,
            max_iterations=max_iterations,
            max_stability=max_stability,
            workers=workers,
            seed=seed,
            fer_frames=fer_frames,
            fer_length=fer_length,
            fer_max_iterations=max_iterations,
            progress=progress,
        )
        label = name or f"search-r{rate:g}-b{beta:g}"
        best_ens = result.best.shape.ensemble(label, seed=seed)
        if out is not None:
            import shlex
            import sys

            comment = (
                f"found by: cvqkd {shlex.join(sys.argv[1:])}\n"
                f"score {result.best.score:.1f} (mean DE iterations at beta {beta}, "
                f"seeds-wise {list(result.best.iterations)}), {result.best.shape}"
            )
            if out.suffix == ".json":
                spec = {
                    "name": best_ens.name,
                    "unit": best_ens.unit,
                    "seed": best_ens.seed,
                    "var_types": best_ens.var_types,
                    "check_types": best_ens.check_types,
                    "source": comment,
                }
                out.write_text(json.dumps(spec, indent=1) + "\n")
            elif out.suffix == ".toml":
                out.write_text(ensemble_spec_toml(best_ens, comment=comment))
            else:
                raise ConfigError(f"--out {out}: use a .toml or .json file name")

        def row(s: ShapeScore) -> dict[str, Any]:
            f = result.fer.get(s.shape)
            return {
                "shape": s.shape,
                "score": s.score,
                "de_iterations": list(s.iterations),
                "precode_stability": s.precode_stability,
                "is_start": s.shape == start_shape,
                "fer": None
                if f is None
                else {"frames": f.frames, "errors": f.frame_errors, "length": f.frame_length},
            }

        def fer_cell(s: ShapeScore) -> str:
            f = result.fer.get(s.shape)
            return "" if f is None else f"{f.frame_errors}/{f.frames}"

        if as_json:
            print_json(
                {
                    "rate": rate,
                    "beta": beta,
                    "unit": unit,
                    "start": start,
                    "evaluated": len(result.evaluated),
                    "history": result.history,
                    "best": row(result.best),
                    "finalists": [row(s) for s in result.finalists],
                    "spec": str(out) if out is not None else None,
                }
            )
            return
        print_table(
            f"MET shape search, rate {rate:g}, β {beta:g} ({len(result.evaluated)} shapes scored;"
            f" finalists re-scored with {len(result.best.iterations)} DE seeds)",
            [
                "core",
                "weak",
                "weak deg",
                "strong deg",
                "single",
                "λ₂ρ'",
                "DE its",
                "score",
                f"FER (n = {fer_length})" if fer_frames else "",
                "",
            ],
            [
                [
                    s.shape.core,
                    s.shape.weak,
                    s.shape.weak_degree,
                    s.shape.strong_degree,
                    s.shape.single_checks,
                    s.precode_stability,
                    ", ".join("—" if i is None else str(i) for i in s.iterations),
                    s.score,
                    fer_cell(s),
                    "start" if s.shape == start_shape else "",
                ]
                for s in result.finalists
            ],
        )
        if out is not None:
            error_console.print(f"best ensemble written to {out} (cvqkd codes analyse {out})")

    @codes.command("select")
    def select_cmd(
        snr_db: float = typer.Option(..., "--snr-db", help="Measured SNR in dB."),
        beta: float = typer.Option(0.95, "--beta", help="Target efficiency β."),
        n: int = typer.Option(1_000_000, "--n", help="Target block length."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Choose the code and rate adaptation for a measured SNR and target β."""
        from cvqkd.cli.output import print_json, print_table
        from cvqkd.reconciliation.codes import code_family, select_code

        if not 0 < beta <= 1:
            raise ConfigError(f"--beta must be in (0, 1], got {beta}")
        a = select_code(snr=10 ** (snr_db / 10), beta=beta, n_target=n)
        info = {
            "mother": a.mother,
            "family": code_family(a.mother),
            "lifting": a.lifting,
            "rate": a.rate,
            "n_vars": a.code.n_vars,
            "n_checks": a.code.n_checks,
            "n_data": a.n_data,
            "shortened": int(a.shortened.size),
            "punctured": int(a.punctured.size),
            "leak_bits": a.leak_bits,
        }
        if as_json:
            print_json(info)
        else:
            print_table("Selected code", ["field", "value"], list(info.items()))

    app.add_typer(codes, name="codes")


def _summary(name: str) -> dict[str, Any]:
    """One row of ``codes list`` for either family."""
    import math

    from cvqkd.reconciliation.codes import code_family, load_code_data

    if code_family(name) == "met":
        from cvqkd.reconciliation.met import ENSEMBLES, exit_threshold_snr, threshold_beta

        ens = ENSEMBLES[name]
        thr = exit_threshold_snr(ens)
        return {
            "name": name,
            "family": "met",
            "rate": ens.rate,
            "structure": f"MET, {ens.n_edge_types} edge types",
            "unit": ens.unit,
            "block_lengths": [],
            "threshold_method": "EXIT",
            "threshold_snr": thr,
            "threshold_snr_db": 10 * math.log10(thr),
            "threshold_beta": threshold_beta(ens, thr),
        }
    d = load_code_data(name)
    return {
        "name": name,
        "family": "qc",
        "rate": d.rate,
        "structure": "base {}×{}".format(*d.protograph.shape),
        "unit": None,
        "block_lengths": [d.n_vars(z) for z in d.liftings],
        "threshold_method": "PEXIT",
        "threshold_snr": d.threshold_snr,
        "threshold_snr_db": 10 * math.log10(d.threshold_snr),
        "threshold_beta": d.beta,
    }


def _met_details(name: str, *, check: bool) -> dict[str, Any]:
    from cvqkd.reconciliation.met import ENSEMBLES, count_four_cycles, load_met_code

    ens = ENSEMBLES[name]
    info = _summary(name)
    info.update(
        {
            "variable_types": [{"count": c, "degrees": list(d)} for c, d in ens.var_types],
            "check_types": [{"count": c, "degrees": list(d)} for c, d in ens.check_types],
            "edges_per_unit": ens.edges_per_unit.tolist(),
            "seed": ens.seed,
            "source": ens.source,
        }
    )
    if check:
        code = load_met_code(name, n_target=100_000)
        info["checked_n"] = code.n_vars
        info["four_cycles"] = count_four_cycles(code)
    return info


def _qc_details(name: str, *, check: bool) -> dict[str, Any]:
    import numpy as np

    from cvqkd.reconciliation.codes import load_code_data

    d = load_code_data(name)
    p = d.protograph
    ext = p.base[p.n_precode :, : p.n_core]
    pats, counts = np.unique(ext, axis=0, return_counts=True)
    info: dict[str, Any] = {
        "name": d.name,
        "family": "qc",
        "rate": d.rate,
        "base_shape": list(p.shape),
        "n_core": p.n_core,
        "n_precode": p.n_precode,
        "precode_rows": p.base[: p.n_precode, : p.n_core].tolist(),
        "core_column_degrees": p.column_degrees()[: p.n_core].tolist(),
        "extension_patterns": [
            {"core_edges": pat.tolist(), "rows": int(c)}
            for pat, c in zip(pats, counts, strict=True)
        ],
        "liftings": {str(z): d.n_vars(z) for z in d.liftings},
        "pexit_threshold_snr": d.threshold_snr,
        "pexit_beta": d.beta,
        "generator": d.generator,
    }
    if check:
        from cvqkd.reconciliation.construction import count_4cycles_base
        from cvqkd.reconciliation.design import efficiency, pexit_threshold_snr

        thr = pexit_threshold_snr(p)
        info["recomputed_threshold_snr"] = thr
        info["recomputed_beta"] = float(efficiency(rate=p.rate, snr=thr))
        info["four_cycles"] = {
            str(z): count_4cycles_base(p.base, s, lifting=z) for z, s in d.shifts.items()
        }
    return info
