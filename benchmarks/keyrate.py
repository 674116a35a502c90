"""Benchmark: vectorised GG02 sweep (10^6 points, one call) vs the scalar Python loop.

Run: ``.venv/bin/python benchmarks/keyrate.py [--points 1000000] [--loop-points 20000]``.
Prints points per second for both, the speed-up, the machine and the git commit. The scalar
loop calls the same function once per point with Python floats (what a sweep written as a
``for`` loop does); its rate is measured on ``--loop-points`` points and does not depend on the
sweep size. Both paths are checked to give identical numbers on the loop's points.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from cvqkd.keyrate.gaussian import gg02
from provenance import commit, cpu_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--loop-points", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    n = args.points
    t = 10.0 ** (-rng.uniform(0.0, 4.0, n))  # 0-40 dB
    xi = rng.uniform(0.0, 0.05, n)
    va = rng.uniform(1.0, 50.0, n)
    kw = dict(detector_efficiency=0.6, electronic_noise_snu=0.05, reconciliation_efficiency=0.95)

    best_vec = np.inf
    for _ in range(args.repeats):
        start = time.perf_counter()
        vec = gg02(transmittance=t, excess_noise_snu=xi, modulation_variance_snu=va, **kw)
        best_vec = min(best_vec, time.perf_counter() - start)

    m = min(args.loop_points, n)
    start = time.perf_counter()
    loop = [
        gg02(
            transmittance=float(t[i]),
            excess_noise_snu=float(xi[i]),
            modulation_variance_snu=float(va[i]),
            **kw,
        ).key_rate_bits_per_symbol
        for i in range(m)
    ]
    loop_s = time.perf_counter() - start
    # same numbers up to a few ulps (numpy's SIMD and scalar libm paths differ in the last bit)
    np.testing.assert_allclose(
        np.asarray(vec.key_rate_bits_per_symbol)[:m], np.array(loop), rtol=0, atol=1e-12
    )

    vec_rate = n / best_vec
    loop_rate = m / loop_s
    print(f"GG02 homodyne key rate, {n} points (T 0-40 dB, xi, V_A random; eta, v_el, beta fixed)")
    print(
        f"vectorised (one call, best of {args.repeats}): "
        f"{best_vec:.3f} s -> {vec_rate:,.0f} points/s"
    )
    print(f"scalar Python loop ({m} points):           {loop_s:.3f} s -> {loop_rate:,.0f} points/s")
    print(f"speed-up: {vec_rate / loop_rate:,.0f}x")
    print(
        f"machine: {platform.platform()}, {cpu_model()}, python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )
    print(f"commit: {commit()}")


if __name__ == "__main__":
    main()
