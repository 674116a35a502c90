"""Throughput and peak memory of the streamed simulation (and estimation) of a scenario.

Usage::

    .venv/bin/python benchmarks/simulate.py [--symbols 100000000] [--scenario seed-120km]
        [--chunk-slots 524288] [--no-estimate] [--out FILE.h5]

Runs with single-threaded BLAS (OPENBLAS_NUM_THREADS=1 unless set). Prints symbols per second
and the peak resident memory (ru_maxrss, includes the interpreter and imported libraries), with
the machine and the git commit. Streams chunk by chunk, so
memory stays bounded whatever --symbols is.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

from provenance import commit, cpu_model


def _peak_rss_mib() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def main() -> None:
    # Single-threaded BLAS: the work is memory-bound numpy; threads only contend on a shared box.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100_000_000)
    ap.add_argument("--scenario", default="seed-120km")
    ap.add_argument("--chunk-slots", type=int, default=1 << 19)
    ap.add_argument("--no-estimate", action="store_true")
    ap.add_argument("--out", default=None, help="also write the HDF5 dataset")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    import numpy as np

    from cvqkd.dataset import DatasetWriter
    from cvqkd.estimation import estimate
    from cvqkd.link.budget import noise_budget
    from cvqkd.scenario import load_scenario
    from cvqkd.sim import ChannelParameters, SessionSettings, simulate_stream
    from cvqkd.sim.session import block_metadata, count_pilots

    sc = load_scenario(a.scenario)
    ch = ChannelParameters.from_budget(noise_budget(sc), sc)
    settings = SessionSettings(chunk_slots=a.chunk_slots)
    rss0 = _peak_rss_mib()
    rng = np.random.default_rng(a.seed)
    stream = simulate_stream(ch, n_symbols=a.symbols, rng=rng, settings=settings)
    writer = None
    if a.out:
        meta = block_metadata(ch, settings)
        writer = DatasetWriter(
            a.out,
            meta,
            total_slots=a.symbols,
            sample_dtype=np.int16,
            n_pilots=count_pilots(a.symbols, meta.pilot_period),
        )

    def tee():  # type: ignore[no-untyped-def]
        for block in stream:
            if writer is not None:
                writer.append(block)
            yield block

    t0 = time.perf_counter()
    est = None
    if a.no_estimate:
        for _ in tee():
            pass
    else:
        est = estimate(
            tee(), disclosed_fraction=0.5, epsilon_pe=1e-10, rng=np.random.default_rng(a.seed + 1)
        )
    elapsed = time.perf_counter() - t0
    if writer is not None:
        writer.close()
    what = "simulate" + ("" if a.no_estimate else " + estimate") + (" + write" if a.out else "")
    print(
        f"benchmark: {what}, scenario {sc.name} ({ch.detection}, {ch.local_oscillator} LO), "
        f"chunk {a.chunk_slots} slots"
    )
    print(f"symbols: {a.symbols:.3g} in {elapsed:.1f} s = {a.symbols / elapsed:.3g} symbols/s")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB (after imports: {rss0:.0f} MiB)")
    if est is not None:
        print(
            f"estimates: T = {est.transmittance.value:.5g} [{est.transmittance.low:.5g}, "
            f"{est.transmittance.high:.5g}] (true {ch.transmittance:.5g}); ξ = "
            f"{est.excess_noise_snu.value:.4g} [{est.excess_noise_snu.low:.4g}, "
            f"{est.excess_noise_snu.high:.4g}] SNU; "
            f"gates {'passed' if est.gates.passed else 'FAILED'}"
        )
    print(
        f"machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
    print(f"commit: {commit()}")


if __name__ == "__main__":
    main()
