"""Monte-Carlo FER of the MET codes (cvqkd.reconciliation.met) vs efficiency β, BIAWGN.

One command::

    .venv/bin/python benchmarks/met_fer.py --code met-r0.02 --n 1000000 \
        --beta 0.95 --frames 100 --workers 2 --seed 7

Same method as benchmarks/codes_fer.py (the shipped QC family), so the two tables compare:
for each β, SNR = 2^(2R/β) − 1, Bob's bits are BPSK ±1 over real AWGN of variance 1/SNR, the
syndrome is disclosed and Alice decodes with the project's numba syndrome sum-product decoder
(layered, float32, ≤ ``--max-iter`` iterations). A frame fails when the syndrome is not met or
the bits are wrong; "undetected" counts frames that met the syndrome with wrong bits (the hash
catches those). With ``--reveal-step`` such a word is retried with disclosure, as the
pipeline does after its hash check fails.

Reproducible and resumable: frame ``i`` at efficiency ``β`` draws its bits and noise from
``default_rng([seed, round(1e4·β), i])`` only, so ``--first-frame`` extends a run and
``--frame-ids`` re-decodes chosen frames (e.g. the failures, with a larger ``--max-iter``)
bit-for-bit. ``--workers W`` decodes W frames at once in forked processes (the code is built
once, before the fork; ``NUMBA_NUM_THREADS=1`` is set before numba is imported).
``--summarize LOG…`` recomputes the summary rows from the per-frame lines of earlier logs
(one row per code/β; frames counted once per (code, n, β, seed, index, max-iter)).

Output: the machine, the git commit and the met.py blob, the code build time, one ``#   beta=``
line per frame (in completion order), then one row per β: FER with its 95 % Wilson score
interval (Wilson 1927) and the two-sided 95 % Clopper–Pearson upper bound (exact binomial),
undetected errors, mean/median/p95/max iterations of the successful frames, wall seconds and
decoder throughput (edge updates summed over workers / wall time).
"""

from __future__ import annotations

import os

# Before anything can import numba: one thread per process (the parallelism is over frames).
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse
import math
import multiprocessing as mp
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

_CODE: Any = None  # the LdpcCode, set in the parent before the workers fork
_SIGMA: dict[float, float] = {}
_PLAN: Any = None  # a DisclosurePlan with --reveal-step, and its public order
_ORDER: Any = None


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    beta: float
    index: int
    converged: bool
    correct: bool
    iterations: int
    unsatisfied: int
    seconds: float
    revealed: int = 0


def frame_rng(seed: int, beta: float, index: int) -> np.random.Generator:
    """The generator of frame ``index`` at efficiency ``beta`` (independent of everything else)."""
    return np.random.default_rng([seed, round(beta * 10_000), index])


def _decode_frame(task: tuple[float, int, int, int]) -> Frame:
    beta, index, seed, max_iter = task
    from cvqkd.reconciliation.decoder import decode

    code = _CODE
    sigma = _SIGMA[beta]
    rng = frame_rng(seed, beta, index)
    bits = rng.integers(0, 2, size=code.n_vars, dtype=np.uint8)
    y = (1.0 - 2.0 * bits) + sigma * rng.standard_normal(code.n_vars)
    syn = code.syndrome(bits)
    t0 = time.perf_counter()
    revealed = 0
    if _PLAN is None:
        res = decode(code, 2.0 * y / sigma**2, syn, max_iterations=max_iter, backend="numba")
    else:
        from cvqkd.reconciliation.disclosure import decode_with_disclosure

        res = decode_with_disclosure(
            code,
            2.0 * y / sigma**2,
            syn,
            order=_ORDER,
            reveal=lambda pos: bits[pos],  # Bob's side: his bits at the public positions
            plan=_PLAN,
            max_iterations=max_iter,
            backend="numba",
            # the pipeline's hash: a wrong word that meets the syndrome gets disclosure too
            accept=lambda word: bool(np.array_equal(word, bits)),
        )
        revealed = res.revealed
    dt = time.perf_counter() - t0
    unsat = int(np.count_nonzero(code.syndrome(res.bits) != syn))
    return Frame(
        beta=beta,
        index=index,
        converged=bool(res.converged),
        correct=bool(np.array_equal(res.bits, bits)),
        iterations=int(res.iterations),
        unsatisfied=unsat,
        seconds=dt,
        revealed=revealed,
    )


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a binomial proportion ``k/n`` (Wilson, JASA 22, 1927).

    >>> [round(x, 4) for x in wilson_interval(0, 100)]
    [0.0, 0.037]
    """
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    den = 1.0 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def clopper_pearson_upper(k: int, n: int, alpha: float = 0.05) -> float:
    """Upper end of the two-sided ``1 − alpha`` Clopper–Pearson interval (Biometrika 26, 1934).

    >>> round(clopper_pearson_upper(0, 100), 4)   # = 1 − 0.025^(1/100)
    0.0362
    """
    from scipy.stats import beta as beta_dist

    if n == 0 or k >= n:
        return 1.0
    return float(beta_dist.ppf(1 - alpha / 2, k + 1, n - k))


def frame_line(f: Frame) -> str:
    line = (
        f"#   beta={f.beta}: frame={f.index} converged={f.converged} correct={f.correct} "
        f"iter={f.iterations} seconds={f.seconds:.1f}"
    )
    if _PLAN is not None or f.revealed:
        line += f" revealed={f.revealed}"
    if not (f.converged and f.correct):
        line += f" unsat={f.unsatisfied}"
    return line


HEADER = (
    "beta\tsnr\tsnr_db\tframes\tframe_errors\tundetected\tFER\twilson95_lo\twilson95_hi\t"
    "cp95_hi\tmean_iter\tmedian_iter\tp95_iter\tmax_iter\tseconds\tMedges_s\t"
    "mean_revealed\tbeta_net"
)


def summary_row(
    *,
    beta_eff: float,
    snr: float,
    frames: list[Frame],
    wall_s: float,
    n_edges: int,
    info_bits: float = float("nan"),
    reveal_leak: int | None = None,
) -> str:
    """One tab-separated summary row (see HEADER); iteration stats over successful frames.

    With incremental disclosure (``reveal_leak``: the public round-count bits per frame),
    ``mean_revealed`` is the mean of the disclosed bits over the kept frames and
    ``beta_net = β·(1 − (mean_revealed + reveal_leak)/k)``, the efficiency after that extra
    leakage; without, 0 and β."""
    n = len(frames)
    errors = sum(not (f.converged and f.correct) for f in frames)
    undetected = sum(f.converged and not f.correct for f in frames)
    lo, hi = wilson_interval(errors, n)
    ok = np.array([f.iterations for f in frames if f.converged and f.correct], dtype=float)
    if ok.size:
        stats = f"{ok.mean():.1f}\t{np.median(ok):.0f}\t{np.percentile(ok, 95):.0f}\t{ok.max():.0f}"
    else:
        stats = "nan\tnan\tnan\tnan"
    edge_updates = sum(f.iterations for f in frames) * float(n_edges)
    medges = edge_updates / wall_s / 1e6 if wall_s > 0 else float("nan")
    kept = [f.revealed for f in frames if f.converged and f.correct]
    mean_rev = float(np.mean(kept)) if kept else float("nan")
    beta_net = beta_eff
    if reveal_leak is not None:
        beta_net = beta_eff * (1.0 - (mean_rev + reveal_leak) / info_bits)
    return (
        f"{beta_eff:.4f}\t{snr:.5f}\t{10 * np.log10(snr):.3f}\t{n}\t{errors}\t{undetected}\t"
        f"{errors / max(n, 1):.3f}\t{lo:.3f}\t{hi:.3f}\t{clopper_pearson_upper(errors, n):.3f}\t"
        f"{stats}\t{wall_s:.1f}\t{medges:.1f}\t{mean_rev:.1f}\t{beta_net:.4f}"
    )


_LINE = re.compile(
    r"#\s+beta=(?P<beta>[0-9.]+): frame=(?P<i>\d+) converged=(?P<c>\w+) correct=(?P<r>\w+) "
    r"iter=(?P<it>\d+) seconds=(?P<s>[0-9.]+)(?: revealed=(?P<rv>\d+))?(?: unsat=(?P<u>\d+))?"
)
_RUN = re.compile(
    r"# run: code=(?P<code>\S+) n=(?P<n>\d+) seed=(?P<seed>\d+) max_iter=(?P<mi>\d+)"
    r"(?: reveal=(?P<step>\d+)/(?P<max>\d+))?"
    r"(?: first_iter=(?P<fi>\d+))?(?: retry_iter=(?P<ri>\d+))?(?: order=(?P<order>\S+))?"
)


def summarize(paths: list[str], plot: str | None = None, min_frames: int = 20) -> None:
    """Summary rows recomputed from the per-frame lines of ``paths`` (logs of this script);
    with ``plot``, also FER vs β with 95 % Wilson intervals per code (points of at least
    ``min_frames`` frames, so re-decodes of chosen frames stay out) saved to that file."""
    from cvqkd.reconciliation.design import snr_for_efficiency

    groups: dict[tuple[str, int, float, int, str], dict[tuple[int, int], Frame]] = {}
    seconds: dict[tuple[str, int, float, int, str], float] = {}
    meta: dict[tuple[str, int], tuple[float, int]] = {}
    for path in paths:
        run = None
        code_meta = (float("nan"), 0)
        with open(path, encoding="utf-8") as fh:
            for raw in fh:
                mm = re.search(r"E=(\d+) rate=([0-9.]+)", raw)
                if mm:
                    code_meta = (float(mm[2]), int(mm[1]))
                    continue
                m = _RUN.match(raw)
                if m:
                    plan = f"{m['step']}/{m['max']}" if m["step"] else ""
                    if plan and (m["fi"] or m["ri"]):  # caps: runs with other caps stay apart
                        plan += f":{m['fi'] or '-'}/{m['ri'] or '-'}"
                    if plan:  # logs before session 6 disclosed in a uniform random order
                        plan += f":{m['order'] or 'random'}"
                    run = (m["code"], int(m["n"]), int(m["seed"]), int(m["mi"]), plan)
                    meta[(run[0], run[1])] = code_meta
                    continue
                m = _LINE.match(raw)
                if m and run:
                    f = Frame(
                        beta=float(m["beta"]),
                        index=int(m["i"]),
                        converged=m["c"] == "True",
                        correct=m["r"] == "True",
                        iterations=int(m["it"]),
                        unsatisfied=int(m["u"] or 0),
                        seconds=float(m["s"]),
                        revealed=int(m["rv"] or 0),
                    )
                    key = (run[0], run[1], f.beta, run[3], run[4])
                    groups.setdefault(key, {})[(run[2], f.index)] = f
                    seconds[key] = seconds.get(key, 0.0) + f.seconds
    print(
        "# code\tn\tmax_iter\treveal\t" + HEADER + "  (seconds = sum of per-frame decode seconds)"
    )
    points: dict[str, list[tuple[float, int, int, int]]] = {}
    for key in sorted(groups):
        code, n, beta, mi, plan = key
        rate, n_edges = meta[(code, n)]
        snr = float(snr_for_efficiency(rate=rate, beta=beta))
        frames = list(groups[key].values())
        row = summary_row(
            beta_eff=beta,
            snr=snr,
            frames=frames,
            wall_s=seconds[key],
            n_edges=n_edges,
            info_bits=rate * n,
            reveal_leak=_round_bits(plan),
        )
        print(f"{code}\t{n}\t{mi}\t{plan or '-'}\t{row}")
        if len(frames) >= min_frames:
            bad = sum(not (f.converged and f.correct) for f in frames)
            points.setdefault(f"{code} (n = {n:.0e})", []).append((beta, bad, len(frames), mi))
    if plot:
        _plot_fer(points, plot)


def _round_bits(plan: str) -> int | None:
    """Public round-count bits per frame of a ``step/max`` disclosure plan (None: no plan)."""
    if not plan:
        return None
    step, most = (int(x) for x in plan.split(":")[0].split("/"))
    return math.ceil(math.log2(most // step + 1))


def _plot_fer(points: dict[str, list[tuple[float, int, int, int]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, pts in sorted(points.items()):
        pts.sort()
        beta = [p[0] for p in pts]
        fer = [p[1] / p[2] for p in pts]
        lo_hi = [wilson_interval(p[1], p[2]) for p in pts]
        err = [
            [f - lo for f, (lo, _) in zip(fer, lo_hi, strict=True)],
            [hi - f for f, (_, hi) in zip(fer, lo_hi, strict=True)],
        ]
        line = ax.errorbar(beta, fer, yerr=err, marker="o", capsize=3, label=label)
        for b, f, p in zip(beta, fer, pts, strict=True):
            ax.annotate(
                f"{p[1]}/{p[2]}" + ("" if p[3] == 500 else f" (≤{p[3]} it.)"),
                (b, f),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=7,
                color=line[0].get_color(),
            )
    ax.axhline(0.1, color="grey", linestyle=":", linewidth=1)
    x0, x1 = ax.get_xlim()
    ax.text(
        (x0 + x1) / 2, 0.1, "FER target 0.1", ha="center", va="bottom", fontsize=7, color="grey"
    )
    ax.set_xlabel("reconciliation efficiency β")
    ax.set_ylabel("frame error rate (95 % Wilson)")
    ax.set_title("MET codes at n = 10^6, BIAWGN, numba layered sum-product", fontsize=9)
    ax.set_ylim(0, None)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"# plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--code", default="met-r0.02", help="shipped MET code, or an ensemble spec .toml/.json"
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--beta", type=float, nargs="+", default=[0.90, 0.93, 0.95])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--first-frame", type=int, default=0, help="index of the first frame")
    ap.add_argument("--frame-ids", type=int, nargs="+", help="decode exactly these frames")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--max-iter", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--reveal-step",
        type=int,
        default=0,
        help="incremental disclosure (cvqkd.reconciliation.disclosure): bits per round",
    )
    ap.add_argument("--max-reveal", type=int, default=1600, help="most bits disclosed per frame")
    ap.add_argument(
        "--first-iter", type=int, default=None, help="with --reveal-step: cap of the first attempt"
    )
    ap.add_argument(
        "--retry-iter", type=int, default=None, help="with --reveal-step: cap after each round"
    )
    ap.add_argument(
        "--reveal-order",
        choices=["weak-first", "random", "strong-first"],
        default="weak-first",
        help="order of the disclosed core bits: the shipped one (lowest degree first), "
        "uniform over the core (before session 6), or highest degree first",
    )
    ap.add_argument("--summarize", nargs="+", metavar="LOG", help="summarise earlier logs")
    ap.add_argument("--plot", metavar="PNG", help="with --summarize: FER vs β plot")
    args = ap.parse_args()
    if args.summarize:
        summarize(args.summarize, plot=args.plot)
        return

    global _CODE, _PLAN, _ORDER
    import cvqkd
    from cvqkd.reconciliation.design import efficiency, snr_for_efficiency
    from cvqkd.reconciliation.met import ENSEMBLES, build_met_code
    from cvqkd.reconciliation.met_analysis import load_ensemble_spec

    t0 = time.perf_counter()
    if args.code in ENSEMBLES:
        ensemble = ENSEMBLES[args.code]
    else:
        ensemble = load_ensemble_spec(args.code)
    code = build_met_code(ensemble, n_target=args.n)
    build_s = time.perf_counter() - t0
    _CODE = code
    rate = code.rate
    plan_tag = ""
    if args.reveal_step:
        from cvqkd.reconciliation.disclosure import DisclosurePlan, disclosure_order

        _PLAN = DisclosurePlan(
            step_bits=args.reveal_step,
            max_bits=args.max_reveal,
            first_iterations=args.first_iter,
            retry_iterations=args.retry_iter,
        )
        _ORDER = disclosure_order(code, seed=args.seed)
        if args.reveal_order != "weak-first":
            # the same seeded draw as disclosure_order, before its sort by degree
            core = np.flatnonzero(code.var_degrees >= 2)
            _ORDER = core[np.random.default_rng([args.seed, code.n_vars]).permutation(core.size)]
            if args.reveal_order == "strong-first":
                deg = code.var_degrees[_ORDER]
                _ORDER = _ORDER[np.argsort(-deg, kind="stable")]
        plan_tag = f" reveal={args.reveal_step}/{args.max_reveal}"
    here = os.path.dirname(os.path.abspath(cvqkd.__file__))

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", *cmd], capture_output=True, text=True, check=False)
        return out.stdout.strip()

    met_py = os.path.join(here, "reconciliation", "met.py")
    print(f"# machine: {platform.platform()} / {platform.processor() or platform.machine()}")
    print(
        f"# cpus: {os.cpu_count()}  load: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
        f"workers: {args.workers}  NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}  "
        f"python {sys.version.split()[0]}"
    )
    print(
        f"# commit: {git('rev-parse', '--short', 'HEAD')}  met.py blob: "
        f"{git('hash-object', met_py)[:7]}  cvqkd from {here}"
    )
    print(
        f"# code: {code.name} n={code.n_vars} m={code.n_checks} "
        f"E={code.n_edges} rate={rate:.5f}  built in {build_s:.1f} s  "
        f"source: {ensemble.source}"
    )
    print(
        f"# run: code={args.code} n={code.n_vars} seed={args.seed} max_iter={args.max_iter}"
        + plan_tag
        + (f" first_iter={args.first_iter}" if args.reveal_step and args.first_iter else "")
        + (f" retry_iter={args.retry_iter}" if args.reveal_step and args.retry_iter else "")
        + (f" order={args.reveal_order}" if args.reveal_step else "")
    )
    ids = args.frame_ids or list(range(args.first_frame, args.first_frame + args.frames))
    print(f"# frames: {ids[0]}..{ids[-1]} ({len(ids)})" if ids else "# frames: none", flush=True)
    results: list[tuple[float, float, list[Frame], float]] = []
    ctx = mp.get_context("fork")
    for beta in args.beta:
        snr = float(snr_for_efficiency(rate=rate, beta=beta))
        _SIGMA[beta] = 1.0 / math.sqrt(snr)
        tasks = [(beta, i, args.seed, args.max_iter) for i in ids]
        frames: list[Frame] = []
        t1 = time.perf_counter()
        if args.workers > 1:
            with ctx.Pool(args.workers) as pool:
                for f in pool.imap_unordered(_decode_frame, tasks, chunksize=1):
                    frames.append(f)
                    print(frame_line(f), flush=True)
        else:
            for t in tasks:
                f = _decode_frame(t)
                frames.append(f)
                print(frame_line(f), flush=True)
        dt = time.perf_counter() - t1
        beta_eff = float(efficiency(rate=rate, snr=snr))
        results.append((beta_eff, snr, frames, dt))
        extra = dict(
            info_bits=float(code.n_vars - code.n_checks),
            reveal_leak=None if _PLAN is None else _PLAN.leak_bits(0),
        )
        print(HEADER)
        print(
            summary_row(
                beta_eff=beta_eff,
                snr=snr,
                frames=frames,
                wall_s=dt,
                n_edges=code.n_edges,
                **extra,  # type: ignore[arg-type]
            )
        )
        failed = sorted(f.index for f in frames if not (f.converged and f.correct))
        print(f"# failed frames at beta={beta}: {' '.join(map(str, failed)) or 'none'}", flush=True)
    if len(results) > 1:
        print("# all β:")
        print(HEADER)
        for beta_eff, snr, frames, dt in results:
            row = summary_row(
                beta_eff=beta_eff,
                snr=snr,
                frames=frames,
                wall_s=dt,
                n_edges=code.n_edges,
                **extra,  # type: ignore[arg-type]
            )
            print(row)


if __name__ == "__main__":
    main()
