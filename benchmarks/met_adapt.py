"""FER of rate-adapted MET codes (``adapt_met``: shortening / truncation) vs efficiency β.

One command::

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/met_adapt.py --code met-r0.01 \
        --rate 0.008 0.011 --n 1000000 --beta 0.93 0.95 --frames 8

The method of benchmarks/met_fer.py, on ``adapt_met(code, rate=R, n_target=n)``: for each β,
SNR = 2^(2R'/β) − 1 with R' the achieved rate; Bob's ``n_data`` data bits are BPSK ±1 over
real AWGN of variance 1/SNR; the decoder sees ``AdaptedCode.full_llr`` (shortened bits at
LLR ``+known_llr`` = 1000, i.e. certain zeros) and the syndrome of ``AdaptedCode.full_bits``;
numba layered sum-product, float32, ≤ ``--max-iter`` iterations. Frame ``i`` at β draws from
``default_rng([seed, round(1e4·β), i])`` only (as met_fer). A frame fails when the syndrome is
not met or the bits are wrong; "undetected" = syndrome met, bits wrong.

Prints the machine, load, git commit and met.py blob, then one ``#`` line per frame and one
row per (rate, β): frames, failures, undetected, FER with the two-sided 95 % Clopper–Pearson
upper bound, mean iterations of the successful frames, wall seconds.

``--de`` instead predicts the cost without decoding: Monte-Carlo density evolution of the
adapted ensemble (``population_de_converges`` with ``clt_degree=30``; shortening as
``known_fraction`` of the core, truncation as ``edge_survival`` of the extension checks),
bisected over β from 0.925 in ``--de-steps`` steps (0.05, halved each step; one run per step,
so the bracket is statistical at its last step)::

    .venv/bin/python benchmarks/met_adapt.py --de --code met-r0.01 --rate 0.01 0.009 0.011
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse
import math
import platform
import subprocess
import sys
import time

import numpy as np


def clopper_pearson_upper(k: int, n: int, alpha: float = 0.05) -> float:
    """Upper end of the two-sided ``1 − alpha`` Clopper–Pearson interval (exact binomial)."""
    from scipy.stats import beta as beta_dist

    if n == 0 or k >= n:
        return 1.0
    return float(beta_dist.ppf(1 - alpha / 2, k + 1, n - k))


def de_bisect(args: argparse.Namespace) -> None:
    """Bracket the CLT population-DE threshold β of each adapted ensemble (see docstring)."""
    from cvqkd.reconciliation.design import snr_for_efficiency
    from cvqkd.reconciliation.met import ENSEMBLES, population_de_converges

    ens = ENSEMBLES[args.code]
    r0 = ens.rate
    vc, vd = ens.var_matrix
    core = float(vc[vd.sum(axis=1) >= 2].sum()) / ens.unit  # core fraction, = 2·r0 here
    print(f"# machine: {platform.platform()}  population={args.population}  seed={args.seed}")
    print("code\trate\trate/mother\tknown_fraction\tsurvival\tconverges_at\tfails_at")
    for rate in args.rate:
        known, surv = 0.0, None
        if rate < r0:  # shortening: s/n = (r0 − R)/(1 − R) core bits
            known = (r0 - rate) / (1 - rate) / core
        elif rate > r0:  # truncation: n'/n = r0/R, the dropped checks are extension checks
            p = 1 - (1 - r0 / rate) / (1 - core)
            surv = tuple(1.0 if t == 0 else p for t in range(vd.shape[1]))
        lo = hi = float("nan")
        beta, step = 0.925, 0.05
        for it in range(args.de_steps):
            snr = float(snr_for_efficiency(rate=rate, beta=beta))
            ok = population_de_converges(
                ens,
                snr=snr,
                rng=np.random.default_rng([args.seed, it]),
                population=args.population,
                max_iterations=600,
                clt_degree=30,
                known_fraction=known,
                edge_survival=surv,
            )
            print(f"#   R={rate} beta={beta:.4f} converges={ok}", flush=True)
            if ok:
                lo, beta = beta, beta + step
            else:
                hi, beta = beta, beta - step
            step /= 2
        p_txt = "1" if surv is None else f"{surv[1]:.4f}"
        print(
            f"{args.code}\t{rate}\t{rate / r0:.3f}\t{known:.4f}\t{p_txt}\t{lo:.4f}\t{hi:.4f}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--code", default="met-r0.01")
    ap.add_argument("--rate", type=float, nargs="+", required=True)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--beta", type=float, nargs="+", default=[0.93, 0.95])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--de", action="store_true", help="density evolution instead of decoding")
    ap.add_argument("--de-steps", type=int, default=4)
    ap.add_argument("--population", type=int, default=50_000)
    args = ap.parse_args()
    if args.de:
        de_bisect(args)
        return

    import cvqkd
    from cvqkd.reconciliation.decoder import decode
    from cvqkd.reconciliation.design import efficiency, snr_for_efficiency
    from cvqkd.reconciliation.met import ENSEMBLES, adapt_met

    here = os.path.dirname(os.path.abspath(cvqkd.__file__))

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    print(f"# machine: {platform.platform()} / {platform.processor() or platform.machine()}")
    print(
        f"# cpus: {os.cpu_count()}  load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
        f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}  python {sys.version.split()[0]}"
    )
    met_py = os.path.join(here, "reconciliation", "met.py")
    print(
        f"# commit: {git('rev-parse', '--short', 'HEAD')}  met.py blob: "
        f"{git('hash-object', met_py)[:7]}  seed={args.seed} max_iter={args.max_iter}",
        flush=True,
    )
    rows = []
    for rate in args.rate:
        t0 = time.perf_counter()
        ad = adapt_met(args.code, rate=rate, n_target=args.n)
        code = ad.code
        print(
            f"# adapted: {args.code} -> rate {ad.rate:.6f} (asked {rate}): code n={code.n_vars} "
            f"m={code.n_checks} E={code.n_edges}, shortened {ad.shortened.size}, "
            f"n_data={ad.n_data}, built in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        for beta in args.beta:
            snr = float(snr_for_efficiency(rate=ad.rate, beta=beta))
            sigma = 1.0 / math.sqrt(snr)
            fails = undetected = 0
            iters: list[int] = []
            t1 = time.perf_counter()
            for i in range(args.frames):
                rng = np.random.default_rng([args.seed, round(beta * 10_000), i])
                bits = rng.integers(0, 2, size=ad.n_data, dtype=np.uint8)
                y = (1.0 - 2.0 * bits) + sigma * rng.standard_normal(ad.n_data)
                word = ad.full_bits(bits)
                t2 = time.perf_counter()
                res = decode(
                    code,
                    ad.full_llr(2.0 * y / sigma**2, known_llr=1e3),
                    code.syndrome(word),
                    max_iterations=args.max_iter,
                    backend="numba",
                )
                ok_syn = bool(res.converged)
                right = bool(np.array_equal(res.bits, word))
                fails += int(not (ok_syn and right))
                undetected += int(ok_syn and not right)
                if ok_syn and right:
                    iters.append(int(res.iterations))
                print(
                    f"#   rate={ad.rate:.6f} beta={beta}: frame={i} converged={ok_syn} "
                    f"correct={right} iter={int(res.iterations)} "
                    f"seconds={time.perf_counter() - t2:.1f}",
                    flush=True,
                )
            beta_eff = float(efficiency(rate=ad.rate, snr=snr))
            rows.append(
                f"{args.code}\t{ad.rate:.6f}\t{ad.rate / ENSEMBLES[args.code].rate:.3f}\t"
                f"{beta_eff:.4f}\t{10 * math.log10(snr):.3f}\t{args.frames}\t{fails}\t"
                f"{undetected}\t{fails / args.frames:.3f}\t"
                f"{clopper_pearson_upper(fails, args.frames):.3f}\t"
                f"{np.mean(iters) if iters else float('nan'):.1f}\t"
                f"{time.perf_counter() - t1:.0f}"
            )
            print(rows[-1], flush=True)
    print(
        "code\trate\trate/mother\tbeta\tsnr_db\tframes\tfailed\tundetected\tFER\tFER_cp95\t"
        "mean_iter_ok\tseconds"
    )
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
