"""``cvqkd run [SCENARIO]`` (one block, end to end) and ``cvqkd alice`` / ``cvqkd bob``.

``run`` simulates a block of the scenario, runs Alice and Bob as two threads that talk only
over the authenticated classical channel, stores the keys in both parties' SQLite key stores and
prints the report (``--json``: one JSON object; ``--out DIR``: report.json and PNG plots).
Key material (pre-shared secret, Bob's bits, announced seeds) comes from the OS CSPRNG; with
``--seed S`` both the simulation and the key material are reproducible — deterministic test
randomness, labelled "NOT secure" in the report (:mod:`cvqkd.randomness`).

``--parameters model`` takes χ_BE's T and ξ from the scenario's link model instead of the
block's own estimates (a 10^7-slot block at 120 km knows ξ only to a few SNU): the key is then
labelled "asymptotic, assumed (model) parameters — not secure against an adversary who changes
the channel", never finite-size or composable, and the block aborts if the model's T or ξ lies
outside the block's confidence intervals.

``alice`` and ``bob`` run the same protocol as two processes over loopback TCP: Bob listens,
Alice connects. Both simulate the same transmission from ``--seed`` (the simulated quantum
channel) and keep only their own half; Bob's key material comes from the OS CSPRNG unless
``--private-seed`` makes it reproducible (and insecure). Each reads the pre-shared
authentication secret from ``--psk FILE`` (raw random bytes, ≥ 48, e.g. ``head -c 4096
/dev/urandom``; both parties need the same copy; the file is updated with the replenished
pools after the block, so the next block starts from it). A block that aborts exits with code
3 (security) or 4 (authentication) and stores nothing.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from cvqkd.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add ``run``, ``alice`` and ``bob`` to ``app``."""
    app.command("run")(run_command)
    app.command("alice")(alice_command)
    app.command("bob")(bob_command)


def _code_desc(code: str, frame_length: int) -> dict[str, Any] | None:
    """``family`` (default) | ``regular:N:DV:DC[:SEED]`` | ``alist:PATH``."""
    if code == "family":
        return None
    kind, _, rest = code.partition(":")
    if kind == "regular":
        parts = rest.split(":")
        try:
            n, dv, dc = (int(p) for p in parts[:3])
            seed = int(parts[3]) if len(parts) > 3 else 1
        except ValueError:
            raise ConfigError(f"--code regular:N:DV:DC[:SEED], got {code!r}") from None
        return {
            "source": "regular",
            "n_vars": n,
            "var_degree": dv,
            "check_degree": dc,
            "seed": seed,
        }
    if kind == "alist":
        if not Path(rest).is_file():
            raise ConfigError(f"--code alist: file {rest!r} not found")
        return {"source": "alist", "path": rest}
    raise ConfigError(f"--code must be family, regular:N:DV:DC[:SEED] or alist:PATH, got {code!r}")


def _config(
    *,
    symbols: int,
    disclosed_fraction: float,
    level: str,
    beta: float,
    frame_length: int,
    code: str,
    max_iterations: int,
    epsilon: float,
    disclosure: float = 0.04,
    parameters: str = "estimated",
    budget: Any = None,
    reconciliation: str = "auto",
    slice_planner: str = "density-evolution",
    slice_bits: int = 4,
) -> Any:
    from cvqkd.pipeline import PARAMETER_SOURCES, ModelParameters, PipelineConfig
    from cvqkd.privacy import SecurityParameters

    if parameters not in PARAMETER_SOURCES:
        raise ConfigError(f"--parameters must be estimated or model, got {parameters!r}")
    if parameters == "model" and level not in ("auto", "asymptotic"):
        raise ConfigError(
            f"--parameters model gives an asymptotic key from assumed parameters only; "
            f"--level {level} needs --parameters estimated"
        )
    model = ModelParameters.from_budget(budget) if parameters == "model" else None

    if not 0.0 < epsilon < 1.0:
        raise ConfigError(f"--epsilon must be in (0, 1), got {epsilon:g}")
    return PipelineConfig(
        n_symbols=symbols,
        disclosed_fraction=disclosed_fraction,
        security=SecurityParameters(
            eps_pe=epsilon, eps_smooth=epsilon, eps_pa=epsilon, eps_ent=epsilon
        ),
        level=level,
        beta=beta,
        frame_length=frame_length,
        code=_code_desc(code, frame_length),
        reconciliation=reconciliation,
        slice_planner=slice_planner,
        slice_bits=slice_bits,
        max_iterations=max_iterations,
        disclosure=disclosure,
        parameters=parameters,
        model=model,
    )


def _scenario(scenario: str) -> tuple[Any, Any, Any]:
    from cvqkd.link.budget import noise_budget
    from cvqkd.scenario import load_scenario
    from cvqkd.sim.channel import ChannelParameters

    sc = load_scenario(scenario)
    budget = noise_budget(sc)
    return sc, budget, ChannelParameters.from_budget(budget, sc)


@contextlib.contextmanager
def _stage_progress(enabled: bool) -> Any:
    """Yield an on_stage callback; a rich progress bar when stderr is a terminal."""
    from cvqkd.pipeline import STAGES

    if not (enabled and sys.stderr.isatty()):
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from cvqkd.cli.output import error_console

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=error_console,
        transient=True,
    ) as prog:
        task = prog.add_task("transmission", total=len(STAGES))

        def on_stage(name: str) -> None:
            i = STAGES.index(name) if name in STAGES else 0
            nxt = STAGES[i + 1] if i + 1 < len(STAGES) else "done"
            prog.update(task, completed=i + 1, description=nxt)

        yield on_stage


_COMMON = {
    "symbols": typer.Option(1_000_000, "--symbols", help="Slots to simulate in the block."),
    "disclosed": typer.Option(
        0.5, "--disclosed-fraction", help="Data symbols disclosed for estimation."
    ),
    "level": typer.Option("auto", "--level", help="auto, asymptotic, finite-size or composable."),
    "beta": typer.Option(0.93, "--beta", help="Target reconciliation efficiency (code rate)."),
    "frame": typer.Option(100_000, "--frame-length", help="LDPC frame length target."),
    "code": typer.Option(
        "family", "--code", help="family (shipped codes), regular:N:DV:DC[:SEED] or alist:PATH."
    ),
    "iters": typer.Option(300, "--max-iterations", help="Decoder iterations per frame."),
    "disclosure": typer.Option(
        0.04,
        "--disclosure",
        help="Binary scheme: a frame that does not decode may get up to this fraction of k of "
        "Bob's core bits, in 8 rounds, counted as leakage (0: off; docs/met-codes.md).",
    ),
    "recon": typer.Option(
        "auto",
        "--reconciliation",
        help="binary (multidimensional + one LDPC code), sliced (short links, SNR ≳ 2) or auto "
        "(sliced from SNR̂ 2 when --code is family).",
    ),
    "planner": typer.Option(
        "density-evolution",
        "--slice-planner",
        help="Sliced codes' planner: density-evolution (about a minute per level and party) "
        "or exit (seconds, less accurate).",
    ),
    "slice_bits": typer.Option(
        4, "--slice-bits", help="Sliced reconciliation: quantiser bits per sample (2-6)."
    ),
    "eps": typer.Option(1e-10, "--epsilon", help="ε_PE = ε_smooth = ε_PA = ε_ent."),
    "seed": typer.Option(
        None,
        "--seed",
        help="Seed of the simulated transmission and of deterministic, NOT secure key-material "
        "randomness (reproducible runs); without it, key material is from the OS CSPRNG.",
    ),
    "json": typer.Option(False, "--json", help="Print the report as one JSON object."),
    "parameters": typer.Option(
        "estimated",
        "--parameters",
        help="Where χ_BE's T and ξ come from: 'estimated' (this block) or 'model' (the "
        "scenario's link model, assumed: asymptotic only, NOT secure against an adversary who "
        "changes the channel; the block aborts if the model lies outside its intervals).",
    ),
}


def run_command(
    scenario: str = typer.Argument("seed-120km", help="Built-in scenario name or TOML path."),
    symbols: int = _COMMON["symbols"],
    disclosed_fraction: float = _COMMON["disclosed"],
    level: str = _COMMON["level"],
    beta: float = _COMMON["beta"],
    frame_length: int = _COMMON["frame"],
    code: str = _COMMON["code"],
    max_iterations: int = _COMMON["iters"],
    disclosure: float = _COMMON["disclosure"],
    reconciliation: str = _COMMON["recon"],
    slice_planner: str = _COMMON["planner"],
    slice_bits: int = _COMMON["slice_bits"],
    epsilon: float = _COMMON["eps"],
    seed: int | None = _COMMON["seed"],
    parameters: str = _COMMON["parameters"],
    dataset: str | None = typer.Option(
        None, "--dataset", help="Use this measured/simulated dataset (HDF5) instead of simulating."
    ),
    out: str | None = typer.Option(None, "--out", help="Directory for report.json and plots."),
    store_dir: str | None = typer.Option(
        None, "--store-dir", help="Where the two SQLite key stores go (default: --out or .)."
    ),
    json_out: bool = _COMMON["json"],
) -> None:
    """Generate key end to end on one block: transmission → estimation → reconciliation →
    privacy amplification → both key stores; print the report."""
    from cvqkd.cli.output import error_console, print_json, to_jsonable
    from cvqkd.errors import CvqkdError
    from cvqkd.kms.store import LinkId, open_store
    from cvqkd.pipeline import run_block
    from cvqkd.randomness import SecretRandom
    from cvqkd.report import (
        budget_dict,
        build_report,
        render_budget,
        render_tables,
        write_outputs,
    )

    sc, budget, channel = _scenario(scenario)
    cfg = _config(
        symbols=symbols,
        disclosed_fraction=disclosed_fraction,
        level=level,
        beta=beta,
        frame_length=frame_length,
        code=code,
        max_iterations=max_iterations,
        disclosure=disclosure,
        reconciliation=reconciliation,
        slice_planner=slice_planner,
        slice_bits=slice_bits,
        epsilon=epsilon,
        parameters=parameters,
        budget=budget,
    )
    given = None
    if dataset is not None:
        from cvqkd.dataset import read_dataset

        if not Path(dataset).is_file():
            raise ConfigError(f"--dataset: file {dataset!r} not found")
        given = read_dataset(dataset)
    sdir = Path(store_dir or out or ".")
    sdir.mkdir(parents=True, exist_ok=True)
    link = LinkId("KME_A", "KME_B")
    t0 = time.perf_counter()
    with open_store(sdir / "keys-alice.db") as sa, open_store(sdir / "keys-bob.db") as sb:
        with _stage_progress(not json_out) as on_stage:
            try:
                block = run_block(
                    channel,
                    config=cfg,
                    seed=seed,
                    randomness=(
                        SecretRandom() if seed is None else SecretRandom.insecure_for_tests(seed)
                    ),
                    block=given,
                    stores=(sa, sb),
                    link=link,
                    on_stage=on_stage,
                )
            except CvqkdError as exc:
                partial = getattr(exc, "partial", None)
                aborted = {
                    "aborted": str(exc),
                    "scenario": sc.name,
                    "noise_budget": budget_dict(budget),
                    "partial": partial,
                }
                if out:
                    Path(out).mkdir(parents=True, exist_ok=True)
                    (Path(out) / "report.json").write_text(
                        json.dumps(to_jsonable(aborted), indent=2) + "\n", encoding="utf-8"
                    )
                if json_out and partial is not None:
                    print_json(aborted)
                elif partial is not None:
                    render_budget(aborted["noise_budget"], sc.name)
                    _print_partial(partial)
                raise
    rep = build_report(
        block, scenario=sc.name, budget=budget, config=cfg, wall_time_s=time.perf_counter() - t0
    )
    rep["key_stores"] = [str(sdir / "keys-alice.db"), str(sdir / "keys-bob.db")]
    if out:
        rep["files"] = [str(p) for p in write_outputs(rep, out)]
    if json_out:
        print_json(rep)
    else:
        render_tables(rep)
        error_console.print(f"keys stored in {rep['key_stores'][0]} and {rep['key_stores'][1]}")


def _print_partial(partial: dict[str, Any]) -> None:
    from cvqkd.cli.output import print_table

    est = partial.get("estimates")
    if est:
        print_table(
            "Parameter estimation (aborted block)",
            ["quantity", "value"],
            [
                ("T", est["transmittance"]),
                ("ξ (SNU)", est["excess_noise_snu"]),
                ("SNR", est["snr"]),
                ("worst-case T", est["worst_case_transmittance"]),
                ("worst-case ξ (SNU)", est["worst_case_excess_noise_snu"]),
            ],
        )
    rec = partial.get("reconciliation")
    if rec:
        print_table(
            "Reconciliation (aborted block)",
            ["quantity", "value"],
            [
                ("code rate", rec.get("rate", "sliced")),
                ("β", rec["beta"]),
                ("FER", rec["fer"]),
                ("reconciled bits", rec["key_bits"]),
            ],
        )
    kl = partial.get("key_length")
    if kl:
        print_table(
            "Key length per level (aborted block)",
            ["level", "ℓ (bits)"],
            [(k, v["length_bits"]) for k, v in kl.items()],
        )
    if "min_symbols_finite_size" in partial:
        from cvqkd.cli.output import console

        need_fs = partial["min_symbols_finite_size"]
        need_c = partial.get("min_symbols_composable")
        assumes = partial.get("block_size_hint_assumes", "this block's β and FER")
        if need_fs is None and need_c is None:
            console.print(f"No block size gives a finite-size key at these estimates ({assumes}).")
        else:
            console.print(
                f"A block would need ≈ {need_fs} symbols for a finite-size key, ≈ {need_c} "
                f"for a composable one ({assumes})."
            )


# ------------------------------------------------------------------ two processes over TCP


def _host_port(value: str, flag: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise ConfigError(f"{flag} must be HOST:PORT, got {value!r}") from None


def _party(
    role: str,
    *,
    scenario: str,
    address: str,
    psk: str,
    store: str | None,
    key_out: str | None,
    seed: int,
    private_seed: int | None,
    cfg: Any,
    json_out: bool,
    timeout_s: float,
) -> None:
    import numpy as np

    from cvqkd.classical.auth import AuthenticatedChannel, PresharedKey
    from cvqkd.classical.transport import TcpTransport
    from cvqkd.cli.output import print_json, print_table
    from cvqkd.kms.store import LinkId, open_store
    from cvqkd.pipeline import run_alice, run_bob, simulate, split_block
    from cvqkd.randomness import SecretRandom

    psk_path = Path(psk)
    if not psk_path.is_file():
        raise ConfigError(f"--psk: file {psk!r} not found (create it with ≥ 48 random bytes)")
    try:
        secret = PresharedKey.load(psk_path.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"--psk {psk!r}: {exc}") from None
    host, port = _host_port(address, "--listen" if role == "bob" else "--connect")
    sc, _budget, channel = _scenario(scenario)
    sim_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[1])
    block = simulate(channel, config=cfg, rng=sim_rng)
    alice_data, bob_data = split_block(block)
    del block
    t0 = time.perf_counter()
    if role == "bob":
        transport = TcpTransport.listen(host, port, timeout_s=timeout_s)
    else:
        transport = TcpTransport.connect(host, port, timeout_s=timeout_s)
    ch = AuthenticatedChannel(transport, role=role, psk=secret, timeout_s=timeout_s)
    link = LinkId("KME_A", "KME_B")
    randomness = (
        SecretRandom() if private_seed is None else SecretRandom.insecure_for_tests(private_seed)
    )
    st = open_store(store) if store else None
    try:
        if role == "bob":
            res = run_bob(
                ch,
                bob_data,
                config=cfg,
                randomness=randomness,
                store=st,
                link=link,
            )
        else:
            res = run_alice(ch, alice_data, config=cfg, store=st, link=link)
    finally:
        transport.close()
        if st is not None:
            st.close()
    psk_path.write_bytes(secret.dump())  # the replenished pools for the next block
    if key_out:
        Path(key_out).write_bytes(res.key)
    summary = {
        "role": role,
        "scenario": sc.name,
        "block_id": res.block_id,
        "level": res.level,
        "parameters": cfg.parameters,
        "key_bits": res.key_bits,
        "stages": {k: v for k, v in res.stages.items() if isinstance(v, (int, float, str))},
        "authentication": res.auth,
        "reconciliation": {
            k: v
            for k, v in (res.stages.get("reconciliation") or {}).items()
            if isinstance(v, (int, float, str, bool))
        },
        "wall_time_s": time.perf_counter() - t0,
    }
    if role == "bob":
        summary["randomness"] = randomness.label
        summary["randomness_secure"] = randomness.secure
        summary["reconciliation_scheme"] = res.stages["reconciliation"]["scheme"]
    if json_out:
        print_json(summary)
    else:
        print_table(
            f"cvqkd {role}",
            ["quantity", "value"],
            [
                ("block ID", res.block_id),
                ("security level", res.level),
                ("parameters for χ_BE", cfg.parameters),
                ("key bits stored", res.key_bits),
            ],
        )


def alice_command(
    scenario: str = typer.Argument("seed-120km", help="Built-in scenario name or TOML path."),
    connect: str = typer.Option("127.0.0.1:7471", "--connect", help="Bob's HOST:PORT."),
    psk: str = typer.Option(..., "--psk", help="Pre-shared authentication secret file."),
    store: str | None = typer.Option(None, "--store", help="Alice's SQLite key store."),
    key_out: str | None = typer.Option(None, "--key-out", help="Also write the key here."),
    seed: int = typer.Option(..., "--seed", help="Seed of the simulated transmission (= Bob's)."),
    symbols: int = _COMMON["symbols"],
    disclosed_fraction: float = _COMMON["disclosed"],
    level: str = _COMMON["level"],
    beta: float = _COMMON["beta"],
    frame_length: int = _COMMON["frame"],
    code: str = _COMMON["code"],
    max_iterations: int = _COMMON["iters"],
    disclosure: float = _COMMON["disclosure"],
    reconciliation: str = _COMMON["recon"],
    slice_planner: str = _COMMON["planner"],
    slice_bits: int = _COMMON["slice_bits"],
    epsilon: float = _COMMON["eps"],
    timeout_s: float = typer.Option(600.0, "--timeout", help="Seconds to wait for Bob."),
    parameters: str = _COMMON["parameters"],
    json_out: bool = _COMMON["json"],
) -> None:
    """Run Alice's side of one block, connecting to Bob over TCP."""
    cfg = _config(
        parameters=parameters,
        budget=_scenario(scenario)[1] if parameters == "model" else None,
        symbols=symbols,
        disclosed_fraction=disclosed_fraction,
        level=level,
        beta=beta,
        frame_length=frame_length,
        code=code,
        max_iterations=max_iterations,
        disclosure=disclosure,
        reconciliation=reconciliation,
        slice_planner=slice_planner,
        slice_bits=slice_bits,
        epsilon=epsilon,
    )
    _party(
        "alice",
        scenario=scenario,
        address=connect,
        psk=psk,
        store=store,
        key_out=key_out,
        seed=seed,
        private_seed=None,
        cfg=cfg,
        json_out=json_out,
        timeout_s=timeout_s,
    )


def bob_command(
    scenario: str = typer.Argument("seed-120km", help="Built-in scenario name or TOML path."),
    listen: str = typer.Option("127.0.0.1:7471", "--listen", help="HOST:PORT to listen on."),
    psk: str = typer.Option(..., "--psk", help="Pre-shared authentication secret file."),
    store: str | None = typer.Option(None, "--store", help="Bob's SQLite key store."),
    key_out: str | None = typer.Option(None, "--key-out", help="Also write the key here."),
    seed: int = typer.Option(..., "--seed", help="Seed of the simulated transmission (= Alice's)."),
    private_seed: int | None = typer.Option(
        None,
        "--private-seed",
        help="Seed of Bob's key material: deterministic, NOT secure (default: the OS CSPRNG).",
    ),
    symbols: int = _COMMON["symbols"],
    disclosed_fraction: float = _COMMON["disclosed"],
    level: str = _COMMON["level"],
    beta: float = _COMMON["beta"],
    frame_length: int = _COMMON["frame"],
    code: str = _COMMON["code"],
    max_iterations: int = _COMMON["iters"],
    disclosure: float = _COMMON["disclosure"],
    reconciliation: str = _COMMON["recon"],
    slice_planner: str = _COMMON["planner"],
    slice_bits: int = _COMMON["slice_bits"],
    epsilon: float = _COMMON["eps"],
    timeout_s: float = typer.Option(600.0, "--timeout", help="Seconds to wait for Alice."),
    parameters: str = _COMMON["parameters"],
    json_out: bool = _COMMON["json"],
) -> None:
    """Run Bob's side of one block, listening for Alice over TCP."""
    cfg = _config(
        parameters=parameters,
        budget=_scenario(scenario)[1] if parameters == "model" else None,
        symbols=symbols,
        disclosed_fraction=disclosed_fraction,
        level=level,
        beta=beta,
        frame_length=frame_length,
        code=code,
        max_iterations=max_iterations,
        disclosure=disclosure,
        reconciliation=reconciliation,
        slice_planner=slice_planner,
        slice_bits=slice_bits,
        epsilon=epsilon,
    )
    _party(
        "bob",
        scenario=scenario,
        address=listen,
        psk=psk,
        store=store,
        key_out=key_out,
        seed=seed,
        private_seed=private_seed,
        cfg=cfg,
        json_out=json_out,
        timeout_s=timeout_s,
    )
