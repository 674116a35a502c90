"""Reconciliation benchmark: decoder speed, and per rate β / FER / throughput end to end.

One command::

    .venv/bin/python benchmarks/reconcile.py [--n 1000000] [--rates 0.01 0.02] \
        [--beta 0.93 0.95] [--frames 20] [--target-errors 10] [--backend auto] [--quick]

1. Decoder speed: sum-product (float32) on a random (3,6)-regular code and on the shipped
   rate-0.02 codes (MET and QC), ``--n`` bits, 2 frames in parallel, 20 iterations (below
   threshold, so all iterations run): million edge updates per second of wall time, per
   CPU-second (which stays meaningful when other jobs share the machine; ×cores estimates an
   idle machine), and of the iterations alone (wall time less that of the same call with 0
   iterations: input checks, GPU transfers and layouts).
2. For each rate: the shipped code :func:`cvqkd.reconciliation.codes.code_for_rate` picks
   (MET up to rate 0.02, QC above), adapted to it, at each β
   (SNR = 2^(2R/β) − 1): Monte-Carlo through the full MDR (d = 8) + syndrome decoding path
   (:func:`cvqkd.reconciliation.fer.fer_point`) until ``--target-errors`` frame errors or
   ``--frames`` frames. Prints β, FER (95 % Wilson interval), mean iterations, input bit/s
   (data bits = real symbols decoded per second) and edges/s.

   With ``--reveal-step S`` (incremental disclosure, :mod:`cvqkd.reconciliation.disclosure`,
   as the pipeline runs it: rounds over the failed frames of each batch, first attempt
   capped at ``--first-iter``, warm-started retries at ``--retry-iter``): FER is what is
   left after up to ``--max-reveal`` disclosed bits, and two more columns give the mean
   disclosed bits per kept frame and β net = β·(1 − leak/k).

3. With ``--compare-ir PYTHON``: the same rates and β through the public `information-
   reconciliation` package, run by ``benchmarks/ir_compare.py`` in its own venv (GPL; never a
   cvqkd dependency), side by side in the same run.

Prints the machine (platform, CPU, load average before and after), the numba thread count,
the GPU if the CUDA backend is used, and the git commit.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from provenance import commit


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.platform()}, {cpu}, {os.cpu_count()} logical CPUs"


def load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def load_ir_code(pcm_dir: str, rate: float):  # type: ignore[no-untyped-def]
    """The `information-reconciliation` package's default rate-adaptive code, truncated to
    ``rate`` the way its ``Decoder.set_rate`` does (keep k = n − m, drop trailing extension
    checks and their degree-one bits), as an LdpcCode — read from the package's installed PCM
    files at run time (GPL data: used for comparison only, never shipped)."""
    from cvqkd.reconciliation.ldpc import LdpcCode

    d = Path(pcm_dir)
    name = "R_0p2_R_0p01_RA_SPPCOM_2"
    deg = np.array((d / f"CN_degrees_{name}.txt").read_text().split(), dtype=np.int64)
    con = np.array((d / f"VN_connections_{name}.txt").read_text().split(), dtype=np.int64)
    max_deg, degrees = int(deg[0]), deg[1:]
    n_vars, slots = int(con[0]), con[1:].reshape(-1, max_deg)
    m = degrees.size
    k = n_vars - m
    n_new = round(k / rate)
    m_new = n_new - k
    rows = np.repeat(np.arange(m_new), max_deg)
    cols = slots[:m_new].ravel()
    keep = cols > 0
    code = LdpcCode.from_edges(n_new, m_new, rows[keep], cols[keep] - 1, name=f"IR-{name}")
    assert np.array_equal(code.check_degrees, degrees[:m_new])
    return code


def decoder_speed(code, *, snr: float, backend: str, frames: int = 2) -> None:  # type: ignore[no-untyped-def]
    from cvqkd.reconciliation.decoder import decode

    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2, (frames, code.n_vars), dtype=np.uint8)
    sigma = 1.0 / math.sqrt(snr)
    y = (1.0 - 2.0 * bits) + sigma * rng.standard_normal(bits.shape)
    llr = (2.0 * y / sigma**2).astype(np.float32)
    syn = code.syndrome(bits)
    schedules = ["layered", "flooding"]
    for sched in schedules:
        # warm-up (compilation; a GPU's memory pool sized for the batch), then the same call
        # with 0 iterations: what a call costs besides iterating (input checks, transfers to
        # and from a GPU, layouts), so that the iterations' own rate can be told apart
        decode(code, llr, syn, max_iterations=1, backend=backend, schedule=sched)
        t0 = time.perf_counter()
        decode(code, llr, syn, max_iterations=0, backend=backend, schedule=sched)
        fixed = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        res = decode(code, llr, syn, max_iterations=20, backend=backend, schedule=sched)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        upd = code.n_edges * float(res.iterations.sum())
        print(
            f"{code.name}\tn={code.n_vars}\tE={code.n_edges}\t{sched}\tframes={frames}\t"
            f"iters={int(res.iterations.max())}\t{upd / wall / 1e6:.1f} Medges/s wall\t"
            f"{upd / cpu / 1e6:.1f} Medges/CPU-s\t"
            f"{upd / max(wall - fixed, 1e-9) / 1e6:.1f} Medges/s iterating "
            f"(fixed cost {fixed * 1e3:.0f} ms per call)",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="frame length (block length)")
    ap.add_argument("--rates", type=float, nargs="*", default=[0.01, 0.02, 0.05, 0.1])
    ap.add_argument("--beta", type=float, nargs="+", default=[0.93, 0.95])
    ap.add_argument("--frames", type=int, default=20, help="max frames per point")
    ap.add_argument("--target-errors", type=int, default=10)
    ap.add_argument(
        "--batch", type=int, default=None, help="frames decoded together (2 CPU, 64 GPU)"
    )
    ap.add_argument("--dimension", type=int, default=8)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--schedule", default=None, choices=["layered", "flooding"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--reveal-step", type=int, default=0, help="incremental disclosure: bits per round"
    )
    ap.add_argument("--max-reveal", type=int, default=800, help="most bits disclosed per frame")
    ap.add_argument("--first-iter", type=int, default=None, help="cap of the first attempt")
    ap.add_argument("--retry-iter", type=int, default=None, help="cap after each disclosure")
    ap.add_argument("--skip-speed", action="store_true", help="skip the decoder-speed part")
    ap.add_argument("--skip-family", action="store_true", help="skip the shipped-code part")
    ap.add_argument("--quick", action="store_true", help="n = 100 000, 4 frames, rate 0.02")
    ap.add_argument(
        "--ir-code",
        metavar="PCM_DIR",
        default=None,
        help="also run OUR decoder on information-reconciliation's code (its PCM directory)",
    )
    ap.add_argument("--ir-frames", type=int, default=None, help="frames per point for --compare-ir")
    ap.add_argument(
        "--ir-beta", type=float, nargs="+", default=None, help="β for --compare-ir (default --beta)"
    )
    ap.add_argument(
        "--compare-ir",
        metavar="PYTHON",
        default=None,
        help="python of a separate venv with information-reconciliation (see ir_compare.py)",
    )
    args = ap.parse_args()
    if args.quick:
        args.n, args.frames, args.rates, args.target_errors = 100_000, 4, [0.02], 2

    import numba

    from cvqkd.reconciliation import codes
    from cvqkd.reconciliation.decoder import _cuda_available
    from cvqkd.reconciliation.fer import fer_point, resolve_code
    from cvqkd.reconciliation.ldpc import random_regular

    backend = args.backend
    if backend == "auto":
        backend = "cuda" if _cuda_available() else "numba"
    print(f"# machine: {machine()}")
    print(f"# commit: {commit()}   numba threads: {numba.get_num_threads()}   backend: {backend}")
    if backend == "cuda":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.runtime.getDevice())
        print(f"# GPU: {props['name'].decode()}")
    print(f"# load average at start: {load()}")
    batch = args.batch or (64 if backend == "cuda" else 2)

    if not args.skip_speed:
        print("## decoder speed (sum-product, float32, 20 iterations)")
        reg = random_regular(
            n_vars=args.n, var_degree=3, check_degree=6, rng=np.random.default_rng(0)
        )
        decoder_speed(reg, snr=1.0 / 0.95**2, backend=backend, frames=batch)
        for name in ("met-r0.02", "rl-r0.02"):
            if name in codes.available_codes():
                decoder_speed(
                    codes.load_code(name, n_target=args.n), snr=0.02, backend=backend, frames=batch
                )

    print(f"## MDR + LDPC end to end (d = {args.dimension})")
    print(
        "rate\tcode\tn\tbeta\tsnr_db\tframes\terrors\tundetected(min weight)\tFER\tFER95\t"
        "mean_iter\tinput_bit_per_s\tMedges_per_s\tdisclosed_per_kept\tbeta_net"
    )
    plan = None
    if args.reveal_step:
        from cvqkd.reconciliation.disclosure import DisclosurePlan

        plan = DisclosurePlan(
            step_bits=args.reveal_step,
            max_bits=args.max_reveal,
            first_iterations=args.first_iter,
            retry_iterations=args.retry_iter,
        )
        print(f"# disclosure: {plan}")
    rng = np.random.default_rng(args.seed)

    def warm_up(source) -> None:  # type: ignore[no-untyped-def]
        """GPU only: compile the kernels and upload the code's graph (and layers) before the
        clock runs, so the first batch is not charged for one-off set-up."""
        if backend != "cuda":
            return
        from cvqkd.reconciliation.decoder import decode
        from cvqkd.reconciliation.reconcile import FrameLayout

        code = FrameLayout.of(source).code
        for sched in ("flooding", "layered"):
            decode(
                code,
                np.ones((1, code.n_vars), dtype=np.float32),
                np.zeros((1, code.n_checks), dtype=np.uint8),
                max_iterations=1,
                backend="cuda",
                schedule=sched,
            )

    def measure(source, *, rate: float, name: str, n_vars: int) -> None:  # type: ignore[no-untyped-def]
        """One row per β: Monte-Carlo through MDR + decoding of ``source`` (code or layout)."""
        warm_up(source)
        for beta in args.beta:
            p = fer_point(
                source,
                snr=2.0 ** (2.0 * rate / beta) - 1.0,
                dimension=args.dimension,
                rng=rng.spawn(1)[0],
                target_errors=args.target_errors,
                max_frames=args.frames,
                batch_frames=batch,
                max_iterations=args.max_iter,
                backend=backend,  # type: ignore[arg-type]
                schedule=args.schedule,
                disclosure=plan,
            )
            leak = p.disclosure_leak_per_kept_frame if plan else 0.0
            print(
                f"{rate:.5f}\t{name}\t{n_vars}\t{p.beta:.4f}\t"
                f"{p.snr_db:.3f}\t{p.frames}\t{p.frame_errors}\t"
                f"{p.undetected_errors}({p.min_undetected_weight})\t"
                f"{p.fer:.3f}\t[{p.fer_low:.3f},{p.fer_high:.3f}]\t{p.mean_iterations:.1f}\t"
                f"{p.symbols_per_second:.0f}\t{p.edges_per_second / 1e6:.1f}\t"
                f"{leak:.1f}\t{p.net_beta:.4f}",
                flush=True,
            )

    for rate in [] if args.skip_family else args.rates:
        lay = resolve_code(rate=rate, frame_length=args.n)
        measure(lay, rate=lay.rate, name=lay.code.name, n_vars=lay.code.n_vars)
    if args.ir_code:
        print("## cvqkd MDR + decoder on information-reconciliation's code (same code, d = 8)")
        for rate in args.rates:
            ir_code = load_ir_code(args.ir_code, rate)
            measure(ir_code, rate=ir_code.rate, name=ir_code.name, n_vars=ir_code.n_vars)
    if args.compare_ir:
        print("## information-reconciliation (GPL; separate venv; same channel, d = 8)")
        driver = Path(__file__).with_name("ir_compare.py")
        for rate in args.rates:
            subprocess.run(
                [
                    args.compare_ir,
                    str(driver),
                    "--rate",
                    str(rate),
                    "--frames",
                    str(args.ir_frames or args.frames),
                    "--beta",
                    *map(str, args.ir_beta or args.beta),
                ],
                check=False,
            )
    print(f"# load average at end: {load()}")


if __name__ == "__main__":
    main()
