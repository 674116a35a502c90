"""Monte-Carlo frame-error-rate (FER) harness for multidimensional reconciliation + LDPC.

For each SNR (per real dimension) frames are simulated end to end as the protocol runs them:
Alice's ``x ~ N(0, 1)``, Bob's ``y = x + z`` with ``z ~ N(0, 1/SNR)``, Bob's MDR encoding and
syndrome, Alice's LLRs and syndrome decoding. A frame is in error when the decoder does not
converge or converges to a word other than Bob's (an *undetected* error, which the hash of
:mod:`~cvqkd.reconciliation.verification` would catch; counted separately here because the
harness knows the truth). Frames run in batches until ``target_errors`` frame errors or
``max_frames`` frames. Report β only with FER: ``β = R/C_AWGN(SNR)``.

FER confidence interval: Wilson score interval at 95 %.

Example
-------
>>> import numpy as np
>>> from cvqkd.reconciliation.ldpc import random_regular
>>> code = random_regular(n_vars=1200, var_degree=3, check_degree=6,
...                       rng=np.random.default_rng(0))
>>> p = fer_point(code, snr=3.0, dimension=8, rng=np.random.default_rng(1),
...               target_errors=5, max_frames=20)
>>> p.frames, p.frame_errors, round(p.beta, 3)
(20, 0, 0.5)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.decoder import KNOWN_LLR, Backend, Schedule
from cvqkd.reconciliation.disclosure import decode_frames_with_disclosure
from cvqkd.reconciliation.mdr import alice_llr, awgn_capacity, bob_encode
from cvqkd.reconciliation.reconcile import FrameLayout

__all__ = ["FerPoint", "fer_curve", "fer_point", "plot_fer", "resolve_code", "wilson_interval"]


def wilson_interval(errors: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (default 95 %).

    >>> [round(v, 4) for v in wilson_interval(0, 10)]
    [0.0, 0.2775]
    """
    if trials <= 0:
        return (0.0, 1.0)
    p = errors / trials
    den = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / den
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class FerPoint:
    """One SNR point of a FER run (SNR linear per real dimension; rates per data bit).

    ``min_undetected_weight`` is the smallest Hamming distance between Bob's word and a wrong
    word the decoder converged to (a codeword-weight witness: low values mean an error floor
    from low-weight codewords of the code); ``-1`` when there was no undetected error.
    """

    snr: float
    snr_db: float
    rate: float
    beta: float
    frames: int
    frame_errors: int
    undetected_errors: int
    min_undetected_weight: int
    fer: float
    fer_low: float
    fer_high: float
    mean_iterations: float
    frame_length: int
    dimension: int
    decode_seconds: float
    symbols_per_second: float
    edges_per_second: float
    info_bits: int = 0
    disclosed_frames: int = 0
    disclosure_leak_per_kept_frame: float = 0.0

    @property
    def effective_beta(self) -> float:
        """``(1 − FER)·β`` — the efficiency the key actually sees."""
        return (1.0 - self.fer) * self.beta

    @property
    def net_beta(self) -> float:
        """β after the leakage of incremental disclosure (``disclosure=`` of
        :func:`fer_point`): ``β·(1 − mean disclosure leakage of a kept frame / k)``; β
        without disclosure."""
        if not self.info_bits:
            return self.beta
        return self.beta * (1.0 - self.disclosure_leak_per_kept_frame / self.info_bits)


def fer_point(
    code: Any,
    *,
    snr: float,
    dimension: int,
    rng: np.random.Generator,
    target_errors: int = 20,
    max_frames: int = 1000,
    batch_frames: int = 4,
    max_iterations: int = 500,
    backend: Backend = "auto",
    schedule: Schedule | None = None,
    progress: Callable[[int, int], None] | None = None,
    disclosure: Any = None,
) -> FerPoint:
    """Simulate frames at one ``snr`` until ``target_errors`` errors or ``max_frames`` frames.

    ``code`` is an :class:`LdpcCode`, a :class:`FrameLayout` or an adapted code.
    ``progress(frames_done, errors)`` is called after each batch. Throughput counts decoding
    only: ``symbols_per_second`` = data bits (= real symbols) decoded per second and
    ``edges_per_second`` = ``E × iterations`` per second.

    With ``disclosure`` (a :class:`~cvqkd.reconciliation.disclosure.DisclosurePlan`) a frame
    that fails is retried with Bob's core data bits disclosed in the pipeline's public order,
    in rounds over the failed frames of each batch, as the pipeline does
    (:func:`~cvqkd.reconciliation.disclosure.decode_frames_with_disclosure`, with the first
    attempt capped at ``disclosure.first_iterations``); the FER is then what is left, and
    :attr:`FerPoint.net_beta` charges the disclosed bits. A frame that meets the syndrome
    with wrong bits (what the pipeline's hash catches) counts as undetected and, with
    disclosure, is retried like an unconverged one.
    """
    if not (snr > 0 and math.isfinite(snr)):
        raise ConfigError(f"SNR must be positive, got {snr}")
    if target_errors < 1 or max_frames < 1:
        raise ConfigError("target_errors and max_frames must be >= 1")
    lay = FrameLayout.of(code)
    n_data = lay.n_data
    if n_data % dimension:
        raise ConfigError(f"the frame's {n_data} data bits are not a multiple of d = {dimension}")
    noise = 1.0 / snr
    data_pos = lay.data_positions
    frames = errors = undetected = 0
    disclosed_frames = 0
    leak_kept = 0
    order: Any = None  # code positions in the public disclosure order
    if disclosure is not None:
        from cvqkd.reconciliation.disclosure import DISCLOSURE_SEED, frame_disclosure_order

        order = np.asarray(data_pos)[
            frame_disclosure_order(
                lay.code.n_vars, lay.code.var_degrees, data_pos, seed=DISCLOSURE_SEED
            )
        ]
    min_weight = -1
    it_total = 0
    t_decode = 0.0
    while frames < max_frames and errors < target_errors:
        f = min(batch_frames, max_frames - frames)
        x = rng.standard_normal((f, n_data))
        y = x + math.sqrt(noise) * rng.standard_normal((f, n_data))
        bits, rot, norms = bob_encode(y, dimension=dimension, rng=rng)
        bits = bits.reshape(f, n_data)
        word = np.zeros((f, lay.code.n_vars), dtype=np.uint8)
        word[:, data_pos] = bits
        if lay.punctured.size:
            word[:, lay.punctured] = rng.integers(0, 2, (f, lay.punctured.size), dtype=np.uint8)
        syn = lay.code.syndrome(word)
        llr = alice_llr(x, rot, dimension=dimension, gain=1.0, noise_variance=noise, y_norm=norms)
        full = np.zeros((f, lay.code.n_vars), dtype=np.float32)
        full[:, data_pos] = llr.reshape(f, n_data)
        full[:, lay.shortened] = KNOWN_LLR

        def correct(fi: int, w: NDArray[np.uint8], truth: NDArray[np.uint8] = word) -> bool:
            # what the pipeline's hash decides (a perfect hash: ε_cor ≈ 1e-14 per frame);
            # the whole word first (contiguous, cheap), the data bits where punctured differ
            t = truth[fi]
            return bool(np.array_equal(w, t) or np.array_equal(w[data_pos], t[data_pos]))

        def bob(fs: NDArray[np.int64], start: int, truth: NDArray[np.uint8] = word) -> Any:
            # Bob's side of a disclosure round: his bits at the next public positions
            return truth[fs][:, order[start : start + disclosure.step_bits]]

        t0 = time.perf_counter()
        out = decode_frames_with_disclosure(
            lay.code,
            full,
            syn,
            plan=disclosure,
            order=order,
            request=bob,
            max_iterations=max_iterations,
            backend=backend,
            schedule=schedule,
            batch_frames=batch_frames,
            accept=correct,
        )
        t_decode += time.perf_counter() - t0
        it_total += int(out.iterations.sum())
        kept = out.converged
        if disclosure is not None:
            disclosed_frames += int(np.count_nonzero(out.revealed[kept]))
            leak_kept += sum(disclosure.leak_bits(int(r)) for r in out.revealed[kept])
        errors += int((~kept).sum())
        undetected += int(out.rejected.sum())
        for fi in np.flatnonzero(out.rejected):
            w = int(np.count_nonzero(out.bits[fi] != word[fi]))
            min_weight = w if min_weight < 0 else min(min_weight, w)
        frames += f
        if progress is not None:
            progress(frames, errors)
    fer = errors / frames
    lo, hi = wilson_interval(errors, frames)
    rate = lay.rate
    return FerPoint(
        snr=float(snr),
        snr_db=10.0 * math.log10(snr),
        rate=rate,
        beta=rate / float(awgn_capacity(snr=snr)),
        frames=frames,
        frame_errors=errors,
        undetected_errors=undetected,
        min_undetected_weight=min_weight,
        fer=fer,
        fer_low=lo,
        fer_high=hi,
        mean_iterations=it_total / frames,
        frame_length=lay.code.n_vars,
        dimension=dimension,
        decode_seconds=t_decode,
        symbols_per_second=frames * n_data / t_decode if t_decode > 0 else math.inf,
        edges_per_second=lay.code.n_edges * it_total / t_decode if t_decode > 0 else math.inf,
        info_bits=n_data - lay.code.n_checks if disclosure is not None else 0,
        disclosed_frames=disclosed_frames,
        disclosure_leak_per_kept_frame=leak_kept / (frames - errors)
        if frames > errors
        else math.nan,
    )


def fer_curve(
    code: Any,
    *,
    snrs: Sequence[float],
    dimension: int,
    rng: np.random.Generator,
    **kwargs: Any,
) -> list[FerPoint]:
    """:func:`fer_point` at each SNR; each point gets its own stream (``SeedSequence.spawn``)."""
    streams = rng.spawn(len(snrs))
    return [
        fer_point(code, snr=s, dimension=dimension, rng=g, **kwargs)
        for s, g in zip(snrs, streams, strict=True)
    ]


def plot_fer(points: Sequence[FerPoint], ax: Any) -> Any:
    """Draw FER (with 95 % intervals) against SNR in dB, each point labelled with β; returns ax."""
    xs = [p.snr_db for p in points]
    ys = [max(p.fer, 1e-300) for p in points]
    lo = [p.fer - p.fer_low for p in points]
    hi = [p.fer_high - p.fer for p in points]
    ax.errorbar(
        xs,
        ys,
        yerr=[lo, hi],
        marker="o",
        capsize=3,
        label=f"R = {points[0].rate:.4g}, n = {points[0].frame_length}" if points else "",
    )
    for p in points:
        ax.annotate(
            f"β={p.beta:.3f}",
            (p.snr_db, max(p.fer, p.fer_high / 10, 1e-4)),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    ax.set_yscale("log")
    ax.set_xlabel("SNR per real dimension (dB)")
    ax.set_ylabel("frame error rate")
    ax.grid(True, which="both", alpha=0.3)
    if points:
        ax.legend()
    return ax


def resolve_code(
    *,
    rate: float | None,
    frame_length: int,
    code_name: str | None = None,
    alist: str | None = None,
) -> FrameLayout:
    """The code a FER run uses: an alist file, or a shipped code adapted to ``rate`` at the
    block length nearest ``frame_length``.

    With ``code_name`` that member (either family) is adapted — or, for a ``.toml``/``.json``
    MET ensemble spec, a code of that ensemble is built; otherwise the member and its
    adaptation are chosen by :func:`cvqkd.reconciliation.codes.code_for_rate` (the MET family
    up to rate ≈ 0.02, the QC family above), the same rule the pipeline uses.
    """
    from cvqkd.reconciliation.ldpc import LdpcCode

    if alist is not None:
        code = LdpcCode.read_alist(alist)
        lay = FrameLayout.of(code)
        if rate is not None and abs(lay.rate - rate) > 1e-3 * max(rate, 1e-3):
            raise ConfigError(f"{alist} has rate {lay.rate:.5g}, not the requested {rate:g}")
        return lay
    try:
        from cvqkd.reconciliation import codes
    except ImportError:  # pragma: no cover - the family ships with cvqkd
        raise ConfigError("no LDPC code family is installed; pass an alist file") from None
    if rate is not None and not 0.0 < rate < 1.0:
        raise ConfigError(f"rate must be in (0, 1), got {rate:g}")
    if code_name is not None and code_name.endswith((".toml", ".json")):
        # a MET ensemble spec (cvqkd codes search --out, docs/met-codes.md), built at its seed
        from cvqkd.reconciliation.met import build_met_code
        from cvqkd.reconciliation.met_analysis import load_ensemble_spec

        ens = load_ensemble_spec(code_name)
        if rate is not None and abs(ens.rate - rate) > 1e-9:
            raise ConfigError(f"{code_name} has rate {ens.rate:.5g}, not the requested {rate:g}")
        return FrameLayout.of(build_met_code(ens, n_target=frame_length))
    if code_name is not None:
        if rate is None or abs(rate / codes.code_rate(code_name) - 1.0) < 1e-9:
            return FrameLayout.of(codes.load_code(code_name, n_target=frame_length))
        adapted = codes.adapt(code_name, rate=rate, n_target=frame_length)
        return FrameLayout.of(codes.align_data(adapted, multiple=8))
    if rate is None:
        raise ConfigError("give a rate, a code name or an alist file")
    return FrameLayout.of(codes.code_for_rate(rate=rate, n_target=frame_length))
