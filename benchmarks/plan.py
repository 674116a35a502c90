"""Benchmark: a 2-D planning sweep (fibre length × classical channel count) on each backend.

Run: ``.venv/bin/python benchmarks/plan.py [--lengths 40] [--counts 20] [--workers 2] [--dask]``.
Every point is a full noise budget of seed-120km at that length with that many classical
channels (the scenario's 100 GHz grid and launch power) plus its GG02 key rate
(:func:`cvqkd.plan.key_rate_grid`).
Prints points per second serially and on a process pool of ``--workers`` (and, with
``--dask``, a Dask LocalCluster of as many worker processes), the speed-up, a check that
every backend gave bit-identical numbers, the machine and the git commit. Each pool is timed
twice: "cold" includes its start-up (what one ``cvqkd plan --workers N`` run pays: new
processes, imports, numba compilation in spawned Dask workers), "warm" is a second sweep on
the same workers (a long sweep's steady state).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from cvqkd import plan
from cvqkd.scenario import load_scenario
from provenance import commit, cpu_model


def _timed(executor: plan.PointExecutor | None, **kw: object) -> tuple[float, plan.GridSweep]:
    t0 = time.perf_counter()
    grid = plan.key_rate_grid(executor=executor, **kw)  # type: ignore[arg-type]
    return time.perf_counter() - t0, grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", type=int, default=40, help="lengths 5..250 km")
    parser.add_argument("--counts", type=int, default=20, help="channel counts 0..95, step 5")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dask", action="store_true", help="also time a Dask LocalCluster")
    args = parser.parse_args()

    kw = dict(
        scenario=load_scenario("seed-120km"),
        distances_m=np.linspace(5e3, 250e3, args.lengths),
        channel_counts=np.arange(args.counts) * 5,
    )
    n = args.lengths * args.counts
    t_serial, ref = _timed(None, **kw)
    rows = [("serial", t_serial, True)]

    def both(name: str, make: object) -> None:
        t0 = time.perf_counter()
        with make() as ex:  # type: ignore[operator]
            _, cold = _timed(ex, **kw)
            t_cold = time.perf_counter() - t0
            t_warm, warm = _timed(ex, **kw)
        for label, t, g in (("cold", t_cold, cold), ("warm", t_warm, warm)):
            same = np.array_equal(ref.key_rate_bits_per_symbol, g.key_rate_bits_per_symbol)
            rows.append((f"{name}, {label}", t, same))

    both(f"process pool, {args.workers} workers", lambda: plan.ProcessExecutor(args.workers))
    if args.dask:
        both(
            f"dask LocalCluster, {args.workers} procs",
            lambda: plan.DaskExecutor("local", workers=args.workers),
        )

    print(f"2-D sweep: {args.lengths} lengths × {args.counts} channel counts = {n} points")
    for name, t, ok in rows:
        print(
            f"  {name:45s} {n / t:8.1f} points/s  ({t:6.2f} s, x{t_serial / t:4.2f}, "
            f"identical: {ok})"
        )
    print(
        f"machine: {platform.system()} {platform.machine()}, {cpu_model()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; Python {platform.python_version()}, "
        f"numpy {np.__version__}; commit {commit()}"
    )


if __name__ == "__main__":
    main()
