"""Sliced reconciliation at short-link SNRs: quantiser ideal β, achieved β, FER, binary ceiling.

One command::

    .venv/bin/python benchmarks/slice_fer.py                    # SNR 1, 3, 10; n = 10^5; 20 frames
    .venv/bin/python benchmarks/slice_fer.py --snr 3 --bits 4 --frames 40 --margin 0.01

Per SNR (linear, per real dimension): a Gaussian source ``x ~ N(0, Σ)`` (Σ = SNR, N = 1,
gain 1), ``y = x + z``; :func:`cvqkd.reconciliation.slicing.design_slices` (optimised
quantiser, natural labelling, level codes planned by density evolution on each level's own
channel, ``--margin`` bits added to each threshold; ``--planner exit`` for the fast proxy),
then Bob's and Alice's steps exactly as the library runs them (numba syndrome sum-product,
layered, ≤ ``--max-iter`` iterations, hash check). Frame
``i`` draws its samples from ``default_rng([seed, round(100·SNR), i])``.

Columns: the quantiser's ideal β = I(X;Q(Y))/I(X;Y) (perfect codes at every level); β of the
design = (H(Q) − disclosed − 61/n)/I(X;Y) (what each kept frame achieves, tag included); FER
with its 95 % Wilson interval; β·(1 − FER) (the key actually kept); the binary (MDR) ceiling
C_BIAWGN/C_AWGN that :mod:`cvqkd.reconciliation.reconcile` cannot exceed; the levels' syndrome
lengths; seconds. Then the machine and the git commit.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cvqkd.reconciliation.fer import wilson_interval
from cvqkd.reconciliation.reconcile import binary_beta_ceiling
from cvqkd.reconciliation.slicing import (
    design_slices,
    slice_reconcile_alice,
    slice_reconcile_bob,
)
from provenance import commit, machine

#: Bits per sample used at each benchmark SNR unless --bits is given.
DEFAULT_BITS = {1.0: 4, 3.0: 4, 10.0: 5}


def run(snr: float, bits: int, args: argparse.Namespace) -> dict[str, object]:
    t0 = time.perf_counter()
    design = design_slices(
        snr=snr,
        bits=bits,
        frame_length=args.n,
        margin_bits=args.margin,
        seed=args.seed,
        planner=args.planner,
    )
    t_design = time.perf_counter() - t0
    ok = 0
    stats = None
    t1 = time.perf_counter()
    for i in range(args.frames):
        rng = np.random.default_rng([args.seed, round(100 * snr), i])
        x = rng.standard_normal(args.n) * math.sqrt(snr)
        y = x + rng.standard_normal(args.n)
        key, msg = slice_reconcile_bob(y, design=design, rng=rng, y_std=math.sqrt(1.0 + snr))
        res = slice_reconcile_alice(
            x,
            msg,
            design=design,
            gain=1.0,
            noise_variance=1.0,
            signal_variance=snr,
            max_iterations=args.max_iter,
        )
        ok += int(res.frame_ok.sum())
        if res.frame_ok.all():
            assert np.array_equal(res.key_bits, key)
        stats = res.stats
        print(
            f"#   snr={snr:g} frame={i} ok={bool(res.frame_ok[0])} "
            f"iterations={[round(v) for v in res.stats.mean_iterations]}",
            flush=True,
        )
    assert stats is not None
    fails = args.frames - ok
    lo, hi = wilson_interval(fails, args.frames)
    return {
        "snr": snr,
        "bits": bits,
        "ideal": design.info.ideal_beta,
        "beta": stats.beta,
        "fer": fails / args.frames,
        "fer_ci": (lo, hi),
        "kept_beta": stats.beta * ok / args.frames,
        "ceiling": float(binary_beta_ceiling(snr=snr)),
        "checks": design.level_checks,
        "t_design": t_design,
        "t_frames": time.perf_counter() - t1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--snr", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    ap.add_argument("--bits", type=int, default=None, help="bits per sample (default per SNR)")
    ap.add_argument("--n", type=int, default=100_000, help="samples per frame")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument(
        "--margin",
        type=float,
        default=None,
        help="bits added per coded level (default: the planner's, 0.01 / 0.015)",
    )
    ap.add_argument("--planner", choices=["exit", "density-evolution"], default="density-evolution")
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rows = []
    for snr in args.snr:
        bits = args.bits or DEFAULT_BITS.get(snr, 4)
        rows.append(run(snr, bits, args))
    margin = "default" if args.margin is None else f"{args.margin}"
    print(
        f"\nsliced reconciliation, n = {args.n}, {args.frames} frames per SNR, margin "
        f"{margin} bit, planner {args.planner}, <= {args.max_iter} iterations "
        "(numba, layered, 1 thread)"
    )
    print(
        "| SNR | bits | ideal β (quantiser) | β per kept frame | FER [95 % CI] | β·(1−FER) "
        "| binary ceiling | syndrome bits per level | design s | decode s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["fer_ci"]  # type: ignore[misc]
        print(
            f"| {r['snr']:g} | {r['bits']} | {r['ideal']:.4f} | {r['beta']:.4f} | "
            f"{r['fer']:.2f} [{lo:.2f}, {hi:.2f}] | {r['kept_beta']:.4f} | {r['ceiling']:.4f} | "
            f"{r['checks']} | {r['t_design']:.1f} | {r['t_frames']:.1f} |"
        )
    print(f"\nmachine: {machine()}\ncommit: {commit()}")


if __name__ == "__main__":
    main()
