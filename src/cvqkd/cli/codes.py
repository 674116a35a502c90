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
        help="Low-rate QC Raptor-like MET-LDPC codes: list, show, design (regenerate), select.",
        no_args_is_help=True,
    )

    @codes.command("list")
    def list_cmd(
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """List the shipped codes with their PEXIT thresholds and asymptotic efficiency."""
        import math

        from cvqkd.cli.output import print_json, print_table
        from cvqkd.reconciliation.codes import available_codes, load_code_data

        rows: list[dict[str, Any]] = []
        for name in available_codes():
            d = load_code_data(name)
            rows.append(
                {
                    "name": name,
                    "rate": d.rate,
                    "base_shape": list(d.protograph.shape),
                    "block_lengths": [d.n_vars(z) for z in d.liftings],
                    "pexit_threshold_snr": d.threshold_snr,
                    "pexit_threshold_snr_db": 10 * math.log10(d.threshold_snr),
                    "pexit_beta": d.beta,
                }
            )
        if as_json:
            print_json({"codes": rows})
            return
        print_table(
            "Shipped codes (PEXIT thresholds, BIAWGN)",
            ["name", "rate", "base m×n", "n", "SNR* (lin)", "SNR* (dB)", "β*"],
            [
                [
                    r["name"],
                    r["rate"],
                    "{}×{}".format(*r["base_shape"]),
                    ", ".join(str(n) for n in r["block_lengths"]),
                    r["pexit_threshold_snr"],
                    r["pexit_threshold_snr_db"],
                    r["pexit_beta"],
                ]
                for r in rows
            ],
        )

    @codes.command("show")
    def show_cmd(
        name: str = typer.Argument(..., help="Code name, e.g. rl-r0.02 (see `cvqkd codes list`)."),
        check: bool = typer.Option(
            False, "--check", help="Recompute the PEXIT threshold and count 4-cycles."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Show one code: precode, extension-row profile, degrees, liftings."""
        import numpy as np

        from cvqkd.cli.output import console, print_json, print_table
        from cvqkd.reconciliation.codes import load_code_data

        d = load_code_data(name)
        p = d.protograph
        ext = p.base[p.n_precode :, : p.n_core]
        pats, counts = np.unique(ext, axis=0, return_counts=True)
        info = {
            "name": d.name,
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
        if as_json:
            print_json(info)
            return
        print_table(f"{d.name}", ["field", "value"], [[k, json.dumps(v)] for k, v in info.items()])
        console.print(f"regenerate: {d.generator}")

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

    @codes.command("select")
    def select_cmd(
        snr_db: float = typer.Option(..., "--snr-db", help="Measured SNR in dB."),
        beta: float = typer.Option(0.95, "--beta", help="Target efficiency β."),
        n: int = typer.Option(1_000_000, "--n", help="Target block length."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    ) -> None:
        """Choose the code and rate adaptation for a measured SNR and target β."""
        from cvqkd.cli.output import print_json, print_table
        from cvqkd.reconciliation.codes import select_code

        if not 0 < beta <= 1:
            raise ConfigError(f"--beta must be in (0, 1], got {beta}")
        a = select_code(snr=10 ** (snr_db / 10), beta=beta, n_target=n)
        info = {
            "mother": a.mother,
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
