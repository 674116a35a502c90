"""Whole-pipeline throughput: secret bits per second and the time spent in each stage.

Run:  .venv/bin/python benchmarks/pipeline.py [--symbols 1e6]
      [--scenarios seed-120km metro-25km-80ch] [--code family|regular:N:DV:DC] [--beta 0.93]
      [--parameters estimated|model] [--disclosed-fraction 0.5]

The demo's figure (``make demo``): ``--scenarios seed-120km --symbols 2e7 --beta 0.875
--max-iterations 500 --frame-length 1000000 --disclosed-fraction 0.2 --parameters model``.

For each scenario one block is simulated and taken through estimation, reconciliation,
privacy amplification, confirmation and both key stores (in memory), Alice and Bob as two
threads over the authenticated in-process channel. Prints delivered secret bits, wall time,
secret bit/s, the security level, and seconds per stage; a block that aborts is reported with
its reason and the stages it completed. ``short-1km-homodyne`` (built into this script) with
``--code regular:2000:3:8`` shows the pipeline's own overhead with a code that decodes.
Prints the machine (with load) and the git commit.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import tempfile
import time

from cvqkd.cli.run import _code_desc, _scenario
from cvqkd.errors import CvqkdError
from cvqkd.kms.store import LinkId, open_store
from cvqkd.pipeline import STAGES, ModelParameters, PipelineConfig, run_block

#: A short dark-fibre homodyne link where a random regular code decodes (see --code regular).
SHORT_LINK_TOML = """
schema_version = 1
name = "short-1km-homodyne"
description = "1 km dark fibre, homodyne; benchmark of the pipeline with a fast code"
quantum_wavelength_nm = 1550.0
reconciliation_efficiency = 0.9
[fibre]
length_km = 1.0
attenuation_model = "constant"
loss_db_per_km = 0.2
connector_count = 0
[transmitter]
modulation_variance_snu = 4.0
symbol_rate_hz = 1e8
laser_linewidth_hz = 0.0
modulation_noise_snu = 0.005
[receiver]
detection = "homodyne"
detector_efficiency = 0.9
electronic_noise_snu = 0.01
lo = "transmitted"
"""


def _scenario_path(name: str, tmp: str) -> str:
    if name != "short-1km-homodyne":
        return name
    path = os.path.join(tmp, "short-1km-homodyne.toml")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(SHORT_LINK_TOML)
    return path


def _machine() -> str:
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu
            )
    except OSError:
        pass
    load = f", load avg {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return f"{platform.platform()}, {cpu}, {os.cpu_count()} CPUs{load}"


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=float, default=1e6)
    ap.add_argument("--scenarios", nargs="+", default=["seed-120km", "metro-25km-80ch"])
    ap.add_argument("--code", default="family")
    ap.add_argument("--beta", type=float, default=0.93)
    ap.add_argument("--frame-length", type=int, default=100_000)
    ap.add_argument("--max-iterations", type=int, default=300)
    ap.add_argument("--level", default="auto")
    ap.add_argument("--seed", type=int, default=1, help="seed of the simulated transmission")
    ap.add_argument("--parameters", choices=("estimated", "model"), default="estimated")
    ap.add_argument("--disclosed-fraction", type=float, default=0.5)
    args = ap.parse_args()
    print(f"machine: {_machine()}")
    print(f"commit:  {_commit()}")
    link = LinkId("KME_A", "KME_B")
    tmp = tempfile.mkdtemp()
    for name in args.scenarios:
        _sc, budget, channel = _scenario(_scenario_path(name, tmp))
        cfg = PipelineConfig(
            n_symbols=int(args.symbols),
            beta=args.beta,
            frame_length=args.frame_length,
            code=_code_desc(args.code, args.frame_length),
            max_iterations=args.max_iterations,
            level=args.level,
            disclosed_fraction=args.disclosed_fraction,
            parameters=args.parameters,
            model=ModelParameters.from_budget(budget) if args.parameters == "model" else None,
        )
        t0 = time.perf_counter()
        try:
            with open_store(":memory:") as sa, open_store(":memory:") as sb:
                rep = run_block(channel, config=cfg, seed=args.seed, stores=(sa, sb), link=link)
        except CvqkdError as exc:
            wall = time.perf_counter() - t0
            part = getattr(exc, "partial", {}) or {}
            times = {"transmission": part.get("transmission_s", 0.0), **part.get("timings_s", {})}
            rec = part.get("reconciliation", {})
            print(f"\n{name}: {int(args.symbols)} symbols, ABORTED after {wall:.1f} s: {exc}")
            if rec:
                print(f"  code rate {rec['rate']:.4g}, β {rec['beta']:.4f}, FER {rec['fer']:.3f}")
            for st in STAGES:
                if st in times:
                    print(f"  {st:15s} {times[st]:8.2f} s")
            continue
        wall = time.perf_counter() - t0
        r = rep.reconciliation
        print(
            f"\n{name}: {int(args.symbols)} symbols, level {rep.level} "
            f"({rep.parameters} parameters), frames {r['frames_tried']}, "
            f"code rate {r['rate']:.4g}, β {r['beta']:.4f}, FER {r['fer']:.3f}"
        )
        print(
            f"  delivered {rep.delivered_bits} secret bits in {wall:.1f} s "
            f"= {rep.delivered_bits / wall:.1f} secret bit/s "
            f"(key rate {rep.key_rate_bits_per_symbol:.3g} bit/symbol)"
        )
        for st in STAGES:
            print(f"  {st:15s} {rep.timings_s.get(st, 0.0):8.2f} s")


if __name__ == "__main__":
    main()
