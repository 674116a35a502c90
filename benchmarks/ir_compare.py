"""Driver for the public reference: the `information-reconciliation` package (GPL, C++).

Run ONLY inside a separate virtual environment that has that package and numpy — it is never
a cvqkd dependency. ``benchmarks/reconcile.py --compare-ir /path/to/venv/bin/python`` calls it:

    python -m venv /tmp/irvenv
    /tmp/irvenv/bin/pip install information-reconciliation numpy
    /tmp/irvenv/bin/python benchmarks/ir_compare.py --rate 0.02 --beta 0.93 0.95 --frames 4

Used as a user would: ``information_reconciliation.reconcile`` on Alice's and Bob's Gaussian
states (x ~ N(0, 1), y = x + z, Var z = 1/SNR, SNR = 2^(2R/β) − 1), its default rate-adaptive
code (n = 10^6), 8-D MDR, layered decoding, 500 iterations. Prints one TSV line per β: β, FER,
frames, mean iterations, seconds (the package's own timer, whole seconds), input bit/s;
then a comment line with the wall time of the whole call.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--beta", type=float, nargs="+", required=True)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import information_reconciliation as ir

    n = 1_000_000
    rng = np.random.default_rng(args.seed)
    for beta in args.beta:
        snr = 2.0 ** (2.0 * args.rate / beta) - 1.0
        var = 1.0 / snr
        x = rng.standard_normal(args.frames * n)
        y = x + math.sqrt(var) * rng.standard_normal(x.size)
        t0 = time.perf_counter()
        st = ir.reconcile(x.tolist(), y.tolist(), args.rate, var, NoI=500, MDR_dim=8)
        wall = time.perf_counter() - t0
        frames = st.get_num_of_decoding_frames()
        # its own timer (whole seconds) around decoding; wall: the whole call, MDR included
        secs = st.get_elapsed_time() or wall
        print(
            f"{args.rate:.5f}\tinformation-reconciliation\t{n}\t{beta:.4f}\t"
            f"{10 * math.log10(snr):.3f}\t{frames}\t"
            f"{round(st.get_frame_error_rate() * frames)}\t-\t{st.get_frame_error_rate():.3f}\t-\t"
            f"{st.get_average_num_of_iterations():.1f}\t{frames * n / secs:.0f}\t-\t-\t"
            f"{beta:.4f}",
            flush=True,
        )
        print(
            f"#   information-reconciliation β={beta}: its timer {st.get_elapsed_time():.0f} s "
            f"(whole seconds), wall {wall:.1f} s for the whole call = "
            f"{frames * n / wall:.0f} symbols/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
