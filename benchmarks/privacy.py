"""Privacy-amplification throughput: Mbit/s of input for Toeplitz hashing, side by side.

Run:  .venv/bin/python benchmarks/privacy.py [--log2-bits 24] [--ratio 0.5] [--repeats 3]

Compares, on the same input and seed, cvqkd.privacy.toeplitz_hash (numpy/scipy.fft backend, the
pyFFTW backend if installed, CuPy if a GPU is present) with a plain numpy FFT implementation
(np.fft, one thread) and, if installed, the ``cryptomite`` package's Toeplitz extractor (never a
cvqkd dependency: ``pip install cryptomite`` into the venv to include it). Target on 2 cores:
≥ 20 Mbit/s at 2^24 input bits. Prints the figures, the machine and the git commit.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from cvqkd.privacy import random_seed, toeplitz_hash
from cvqkd.randomness import SecretRandom
from provenance import commit, machine


def plain_numpy_hash(key_bits: np.ndarray, seed_bits: np.ndarray, ell: int) -> np.ndarray:
    """The textbook version: np.fft (single thread), power-of-two length, round, mod 2."""
    n = key_bits.size
    length = 1 << (n + ell - 2).bit_length()
    conv = np.fft.irfft(
        np.fft.rfft(key_bits.astype(float), length) * np.fft.rfft(seed_bits.astype(float), length),
        length,
    )
    return (np.rint(conv[n - 1 : n - 1 + ell]).astype(np.int64) & 1).astype(np.uint8)


def _best(fn: Callable[[], object], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log2-bits", type=int, default=24)
    ap.add_argument("--ratio", type=float, default=0.5, help="output bits / input bits")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-cryptomite", action="store_true")
    args = ap.parse_args()
    n = 1 << args.log2_bits
    ell = int(n * args.ratio)
    rng = np.random.default_rng(2026)
    key = np.packbits(rng.integers(0, 2, n, dtype=np.uint8))
    seed = random_seed(n_bits=n, out_bits=ell, randomness=SecretRandom())
    print(f"machine: {machine()}")
    print(f"commit:  {commit()}")
    print(f"input n = 2^{args.log2_bits} = {n} bits, output ℓ = {ell} bits (ratio {args.ratio})")
    rows: list[tuple[str, float, str]] = []
    ref = toeplitz_hash(key, seed=seed, n_bits=n, out_bits=ell, backend="numpy")
    backends = ["numpy", "scipy"]
    try:
        import pyfftw  # noqa: F401

        backends.append("fftw")
    except ImportError:
        print("note: pyFFTW not installed; the fftw backend is skipped")
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            backends.append("cupy")
    except Exception:  # no CuPy or no device
        print("note: no CuPy/GPU; the cupy backend is skipped")
    kb = np.unpackbits(key, count=n)
    sb = np.unpackbits(seed, count=n + ell - 1)
    impls: dict[str, Callable[[], object]] = {}
    checks: dict[str, str] = {}
    for be in backends:
        name = f"cvqkd toeplitz_hash [{be}]"
        impls[name] = lambda be=be: toeplitz_hash(
            key, seed=seed, n_bits=n, out_bits=ell, backend=be
        )
        out = impls[name]()  # warm-up (plans, caches) and check
        checks[name] = "identical" if np.array_equal(out, ref) else "DIFFERS"
    name = "plain numpy FFT (np.fft, 1 thread)"
    impls[name] = lambda: plain_numpy_hash(kb, sb, ell)
    checks[name] = "identical" if np.array_equal(np.packbits(impls[name]()), ref) else "DIFFERS"
    # interleaved rounds, best of each: the machine is shared, so load drifts between runs
    best = dict.fromkeys(impls, float("inf"))
    for _ in range(args.repeats):
        for name, fn in impls.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    rows.extend((name, best[name], checks[name]) for name in impls)
    if not args.no_cryptomite:
        try:
            import cryptomite

            ext = cryptomite.Toeplitz(n, ell)
            k_list, s_list = kb.tolist(), sb.tolist()
            t = _best(lambda: ext.extract(k_list, s_list), 1)
            rows.append(("cryptomite.Toeplitz (lists in, lists out)", t, "other matrix convention"))
        except ImportError:
            print("note: cryptomite not installed (pip install cryptomite into the venv); skipped")
    print(f"{'implementation':45s} {'time [s]':>9s} {'Mbit/s':>9s}  output")
    for name, t, same in rows:
        print(f"{name:45s} {t:9.3f} {n / t / 1e6:9.2f}  {same}")


if __name__ == "__main__":
    main()
