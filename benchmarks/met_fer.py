"""Monte-Carlo FER of the MET codes (cvqkd.reconciliation.met) vs efficiency β, BIAWGN.

One command::

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/met_fer.py --code met-r0.02 \
        --n 1000000 --beta 0.93 0.95 --frames 8

Same method as benchmarks/codes_fer.py (the shipped QC family), so the two tables compare:
for each β, SNR = 2^(2R/β) − 1, Bob's bits are BPSK ±1 over real AWGN of variance 1/SNR, the
syndrome is disclosed and Alice decodes with the project's numba syndrome sum-product decoder
(layered, float32, ≤ ``--max-iter`` iterations). A frame fails when the syndrome is not met or
the bits are wrong; "undetected" counts frames that met the syndrome with wrong bits (the hash
catches those). Prints the machine, the git commit, the code build time, then one row per β.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", default="met-r0.02")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--beta", type=float, nargs="+", default=[0.90, 0.93, 0.95])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from cvqkd.reconciliation.decoder import decode
    from cvqkd.reconciliation.design import efficiency, snr_for_efficiency
    from cvqkd.reconciliation.met import ENSEMBLES, load_met_code

    t0 = time.perf_counter()
    code = load_met_code(args.code, n_target=args.n)
    build_s = time.perf_counter() - t0
    rate = code.rate
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"# machine: {platform.platform()} / {platform.processor() or platform.machine()}")
    print(
        f"# commit: {commit}  code: {code.name} n={code.n_vars} m={code.n_checks} "
        f"E={code.n_edges} rate={rate:.5f}  built in {build_s:.1f} s  "
        f"source: {ENSEMBLES[args.code].source}"
    )
    print("beta\tsnr\tsnr_db\tframes\tframe_errors\tundetected\tFER\tmean_iter\tseconds\tMedges_s")
    rng = np.random.default_rng(args.seed)
    for beta in args.beta:
        snr = float(snr_for_efficiency(rate=rate, beta=beta))
        sigma = 1.0 / np.sqrt(snr)
        errors = undetected = done = 0
        iters: list[int] = []
        edge_updates = 0.0
        t1 = time.perf_counter()
        while done < args.frames:
            b = min(args.batch, args.frames - done)
            bits = rng.integers(0, 2, size=(b, code.n_vars), dtype=np.uint8)
            y = (1.0 - 2.0 * bits) + sigma * rng.standard_normal((b, code.n_vars))
            res = decode(
                code,
                2.0 * y / sigma**2,
                code.syndrome(bits),
                max_iterations=args.max_iter,
                backend="numba",
            )
            right = np.all(res.bits == bits, axis=1)
            for c, r, it in zip(
                np.atleast_1d(res.converged), right, np.atleast_1d(res.iterations), strict=True
            ):
                print(
                    f"#   beta={beta}: converged={bool(c)} correct={bool(r)} iter={int(it)}",
                    flush=True,
                )
            errors += int(np.count_nonzero(~(res.converged & right)))
            undetected += int(np.count_nonzero(res.converged & ~right))
            iters.extend(np.atleast_1d(res.iterations).tolist())
            edge_updates += float(np.sum(res.iterations)) * code.n_edges
            done += b
        dt = time.perf_counter() - t1
        print(
            f"{efficiency(rate=rate, snr=snr):.4f}\t{snr:.5f}\t{10 * np.log10(snr):.3f}\t"
            f"{done}\t{errors}\t{undetected}\t{errors / done:.3f}\t{np.mean(iters):.1f}\t"
            f"{dt:.1f}\t{edge_updates / dt / 1e6:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
