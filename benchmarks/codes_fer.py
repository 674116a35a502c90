"""Monte-Carlo check of the shipped codes against their PEXIT thresholds (BIAWGN channel).

One command::

    .venv/bin/python benchmarks/codes_fer.py --code rl-r0.02 --n 100000 --beta 0.90 0.93 \
        --frames 20

For each efficiency β it sets SNR = 2^(2R/β) − 1 (R = the code's rate), draws Bob's bits and
BPSK ±1 over real AWGN of variance 1/SNR (exactly the channel multidimensional reconciliation
produces), discloses the syndrome, and decodes with the project's syndrome sum-product decoder
(layered, float32, numba). A frame fails when the decoder does not satisfy the syndrome within
``--max-iter`` iterations or returns wrong bits. Prints FER, mean iterations, the machine and the
git commit. Seeded: ``--seed``.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", default="rl-r0.02")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--beta", type=float, nargs="+", default=[0.90, 0.93, 0.95])
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--rate", type=float, default=None, help="adapt the code to this rate")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    from cvqkd.reconciliation.codes import adapt, load_code, load_code_data
    from cvqkd.reconciliation.decoder import decode
    from cvqkd.reconciliation.design import efficiency, snr_for_efficiency

    data = load_code_data(args.code)
    if args.rate is None:
        code = load_code(args.code, n_target=args.n)
        rate = code.rate
        llr_map = None
    else:
        ad = adapt(args.code, rate=args.rate, n_target=args.n)
        code, rate, llr_map = ad.code, ad.rate, ad
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"# machine: {platform.platform()} / {platform.processor() or platform.machine()}")
    print(
        f"# commit: {commit}  code: {code.name} n={code.n_vars} m={code.n_checks} "
        f"E={code.n_edges} rate={rate:.5f}  PEXIT beta*={data.beta:.4f}"
    )
    print(
        "beta\tsnr\tsnr_db\tframes\tframe_errors\tundetected\tFER\tmean_iter\tseconds\tMedges_per_s"
    )
    rng = np.random.default_rng(args.seed)
    for beta in args.beta:
        snr = float(snr_for_efficiency(rate=rate, beta=beta))
        sigma = 1.0 / np.sqrt(snr)
        errors = 0
        undetected = 0
        iters = []
        t0 = time.perf_counter()
        edge_updates = 0.0
        done = 0
        while done < args.frames:
            b = min(args.batch, args.frames - done)
            n_data = code.n_vars if llr_map is None else llr_map.n_data
            bits = rng.integers(0, 2, size=(b, n_data), dtype=np.uint8)
            y = (1.0 - 2.0 * bits) + sigma * rng.standard_normal((b, n_data))
            llr = 2.0 * y / sigma**2
            if llr_map is not None:
                word = llr_map.full_bits(bits)
                llr = llr_map.full_llr(llr)
            else:
                word = bits
            res = decode(
                code, llr, code.syndrome(word), max_iterations=args.max_iter, backend="numba"
            )
            right = np.all(res.bits == word, axis=1)
            ok = res.converged & right
            errors += int(np.count_nonzero(~ok))
            undetected += int(np.count_nonzero(res.converged & ~right))
            iters.extend(res.iterations.tolist())
            edge_updates += float(np.sum(res.iterations)) * code.n_edges
            done += b
        dt = time.perf_counter() - t0
        print(
            f"{efficiency(rate=rate, snr=snr):.4f}\t{snr:.5f}\t{10 * np.log10(snr):.3f}\t"
            f"{done}\t{errors}\t{undetected}\t{errors / done:.3f}\t{np.mean(iters):.1f}\t{dt:.1f}\t"
            f"{edge_updates / dt / 1e6:.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
