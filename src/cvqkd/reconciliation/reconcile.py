"""The per-block reconciliation step: Bob's side and Alice's side, exchanging only messages.

Reverse reconciliation with multidimensional mapping (:mod:`~cvqkd.reconciliation.mdr`), an LDPC
syndrome (:mod:`~cvqkd.reconciliation.decoder`) and a universal-hash check
(:mod:`~cvqkd.reconciliation.verification`)::

    Bob                                               Alice
    y ─► bob_reconcile ── BobMessage (rotations m, ‖y‖, ─► alice_reconcile(x, …)
         (key bits b)      syndromes H·b, seeds+tags)      decode, verify ─► AliceResult
    keep_frames(b, frame_ok) ◄──── frame_ok (one bool per frame) ◄────┘   (key, frame_ok)

Both sides then hold the same key bits for the frames that passed; failed frames are
discarded and counted, never passed on. The messages go over the authenticated classical
channel (the pipeline's job); everything in :class:`BobMessage` is public.

Leakage per kept frame: the ``m`` syndrome bits plus the tag's ``prime_bits``
(``leaked_bits`` in :class:`ReconcileStats`). The MDR rotations and norms leak nothing more
(see :mod:`~cvqkd.reconciliation.mdr`). Frames that fail are independent of the kept ones
(separate samples, separate bits), so their disclosures do not count against the kept key.

Efficiency ``β = R / C_AWGN(SNR)`` with ``R = n_data − m`` over ``n_data`` (per data bit), where
``C_AWGN = ½ log2(1 + SNR)`` per real dimension (Jouguet et al., PRA 84, 062317 (2011)).

Short links (SNR ≳ 1): this binary scheme (one bit per real dimension) cannot reach high β
there even with a perfect code — its ceiling is ``C_BIAWGN(SNR)/C_AWGN(SNR)``
(:func:`binary_beta_ceiling`): 0.97 at SNR 1, 0.85 at SNR 3, 0.58 at SNR 10. There, use the
multilevel scheme of :mod:`cvqkd.reconciliation.slicing` (β ≈ 0.90–0.92 at SNR 3–30).

Example
-------
>>> import numpy as np
>>> from cvqkd.reconciliation.ldpc import random_regular
>>> rng = np.random.default_rng(0)
>>> lay = FrameLayout.of(random_regular(n_vars=1200, var_degree=3, check_degree=6, rng=rng))
>>> x = rng.standard_normal(2400)
>>> y = x + 0.3 * rng.standard_normal(2400)  # SNR ≈ 11
>>> bob_bits, msg = bob_reconcile(y, layout=lay, dimension=8, rng=rng)
>>> res = alice_reconcile(x, msg, layout=lay, gain=1.0, noise_variance=0.09,
...                       max_iterations=100)
>>> res.stats.frames_tried, res.stats.frames_failed
(2, 0)
>>> bool(np.array_equal(res.key_bits, keep_frames(bob_bits, res.frame_ok)))
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.decoder import KNOWN_LLR, Backend, Schedule
from cvqkd.reconciliation.disclosure import decode_frames_with_disclosure
from cvqkd.reconciliation.ldpc import LdpcCode
from cvqkd.reconciliation.mdr import alice_llr, awgn_capacity, biawgn_capacity, bob_encode
from cvqkd.reconciliation.verification import (
    FrameTag,
    collision_probability,
    make_tag,
    verify,
)

__all__ = [
    "AliceResult",
    "BobMessage",
    "FrameLayout",
    "FrameTag",
    "ReconcileStats",
    "alice_reconcile",
    "binary_beta_ceiling",
    "bob_reconcile",
    "keep_frames",
]


def binary_beta_ceiling(*, snr: ArrayLike) -> NDArray[np.float64]:
    """Best β any binary-input scheme (MDR + ideal binary code) reaches: C_BIAWGN/C_AWGN.

    >>> [round(float(binary_beta_ceiling(snr=s)), 2) for s in (0.03, 1.0, 3.0)]
    [1.0, 0.97, 0.85]
    """
    return biawgn_capacity(snr=snr) / awgn_capacity(snr=snr)


@dataclass(frozen=True, eq=False)
class FrameLayout:
    """A code as used for frames: which positions carry data, which are punctured/shortened.

    ``punctured`` positions hold private random bits of Bob (never disclosed; Alice's LLR 0);
    ``shortened`` positions are fixed to 0 and known to both sides (LLR ``+KNOWN_LLR``).
    Build with :meth:`of` from an :class:`LdpcCode` or any object with ``code``,
    ``punctured`` and ``shortened`` attributes (e.g. ``codes.AdaptedCode``).
    """

    code: LdpcCode
    punctured: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    shortened: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def of(cls, source: Any) -> FrameLayout:
        """Layout from an :class:`LdpcCode` (no puncturing/shortening) or an adapted code."""
        if isinstance(source, FrameLayout):
            return source
        if isinstance(source, LdpcCode):
            return cls(code=source)
        try:
            code, punct, short = source.code, source.punctured, source.shortened
        except AttributeError:
            raise ConfigError(
                f"cannot use {type(source).__name__} as a code: need an LdpcCode or an "
                "object with code, punctured and shortened"
            ) from None
        p = np.asarray(punct, dtype=np.int64).ravel()
        s = np.asarray(short, dtype=np.int64).ravel()
        if np.intersect1d(p, s).size:
            raise ConfigError("a position is both punctured and shortened")
        return cls(code=code, punctured=p, shortened=s)

    @property
    def data_positions(self) -> NDArray[np.int64]:
        """Positions carrying Bob's key bits (ascending)."""
        keep = np.ones(self.code.n_vars, dtype=bool)
        keep[self.punctured] = False
        keep[self.shortened] = False
        return np.flatnonzero(keep)

    @property
    def n_data(self) -> int:
        """Key bits per frame (= real samples per frame)."""
        return self.code.n_vars - self.punctured.size - self.shortened.size

    @property
    def rate(self) -> float:
        """Effective rate ``(n_data − m)/n_data``: key bits kept per data bit, before PA."""
        return (self.n_data - self.code.n_checks) / self.n_data


@dataclass(frozen=True)
class BobMessage:
    """What Bob sends Alice (all public): per frame, over the authenticated channel.

    Attributes: ``dimension`` (MDR d), ``rotations`` ``[frames, n_data/d, d]``, ``y_norms``
    ``[frames, n_data/d]``, ``syndromes`` ``uint8[frames, m]``, ``tags`` (one per frame).
    """

    dimension: int
    rotations: NDArray[np.float64]
    y_norms: NDArray[np.float64]
    syndromes: NDArray[np.uint8]
    tags: tuple[FrameTag, ...]

    @property
    def frames(self) -> int:
        return int(self.syndromes.shape[0])


@dataclass(frozen=True)
class FrameCounts:
    """Frame and bit counts of one reconciled block (Alice's view; Bob learns them from
    ``frame_ok``), shared by the binary (:class:`ReconcileStats`) and sliced schemes.

    ``leaked_bits`` counts the syndrome and tag bits of the *kept* frames — what privacy
    amplification must subtract.
    """

    frames_tried: int
    frames_failed: int
    frames_unconverged: int
    frames_hash_failed: int
    key_bits: int
    leaked_bits: int

    @property
    def fer(self) -> float:
        """Frame error rate of the block."""
        return self.frames_failed / self.frames_tried if self.frames_tried else math.nan


@dataclass(frozen=True)
class ReconcileStats(FrameCounts):
    """:class:`FrameCounts` of the binary scheme, with the code ``rate``, the ``snr`` (per real
    dimension), ``beta`` at that SNR, the mean decoder iterations and ε_cor."""

    rate: float
    snr: float
    beta: float
    mean_iterations: float
    epsilon_cor: float
    disclosed_bits: int = 0
    frames_with_disclosure: int = 0


@dataclass(frozen=True)
class AliceResult:
    """Alice's output: key bits of the frames that passed, which frames passed, counts."""

    key_bits: NDArray[np.uint8]
    frame_ok: NDArray[np.bool_]
    stats: ReconcileStats


def _frames_of(samples: ArrayLike, layout: FrameLayout, dimension: int, what: str) -> Any:
    s = np.asarray(samples, dtype=np.float64).ravel()
    n_data = layout.n_data
    if n_data % dimension:
        raise ConfigError(f"the frame's {n_data} data bits are not a multiple of d = {dimension}")
    frames = s.size // n_data
    if frames == 0:
        raise ConfigError(f"{what}: {s.size} samples are fewer than one frame ({n_data})")
    return s[: frames * n_data].reshape(frames, n_data)


def bob_reconcile(
    y: ArrayLike,
    *,
    layout: FrameLayout | LdpcCode | Any,
    dimension: int,
    rng: np.random.Generator,
    prime_bits: int = 61,
) -> tuple[NDArray[np.uint8], BobMessage]:
    """Bob: key bits, MDR rotations, syndromes and hash tags for ``⌊len(y)/n_data⌋`` frames.

    ``y`` are Bob's real samples (SNU; for heterodyne both quadratures, pairs kept adjacent).
    Trailing samples that do not fill a frame are not used. Returns ``(key_bits
    [frames, n_data], message)``; keep the bits private until ``frame_ok`` comes back.
    """
    lay = FrameLayout.of(layout)
    yf = _frames_of(y, lay, dimension, "y")
    frames, n_data = yf.shape
    bits, rot, norms = bob_encode(yf, dimension=dimension, rng=rng)
    bits = bits.reshape(frames, n_data)
    word = np.zeros((frames, lay.code.n_vars), dtype=np.uint8)
    word[:, lay.data_positions] = bits
    if lay.punctured.size:
        word[:, lay.punctured] = rng.integers(0, 2, (frames, lay.punctured.size), dtype=np.uint8)
    syn = lay.code.syndrome(word)
    tags = tuple(make_tag(bits[f], rng=rng, prime_bits=prime_bits) for f in range(frames))
    msg = BobMessage(
        dimension=dimension,
        rotations=rot.reshape(frames, n_data // dimension, dimension),
        y_norms=norms.reshape(frames, n_data // dimension),
        syndromes=syn,
        tags=tags,
    )
    return bits, msg


def alice_reconcile(
    x: ArrayLike,
    message: BobMessage,
    *,
    layout: FrameLayout | LdpcCode | Any,
    gain: float,
    noise_variance: float,
    max_iterations: int = 500,
    backend: Backend = "auto",
    schedule: Schedule | None = None,
    batch_frames: int = 16,
    signal_variance: float | None = None,
    disclosure: Any = None,
    request: Callable[[NDArray[np.int64], int], ArrayLike] | None = None,
    disclosure_order: ArrayLike | None = None,
) -> AliceResult:
    """Alice: LLRs from her samples and Bob's rotations, decode, verify each frame.

    ``gain``/``noise_variance`` describe ``y = gain·x + z`` (see :func:`mdr.alice_llr`);
    ``signal_variance`` (Σ of x, SNU) sets the SNR for β, default the mean of x² over the
    frames used. Frames are decoded ``batch_frames`` at a time.

    Incremental disclosure (:mod:`cvqkd.reconciliation.disclosure`): with a ``disclosure``
    plan, frames that do not decode are retried in rounds; each round asks
    ``request(frames, start)`` for Bob's data bits at positions ``disclosure_order[start :
    start + step]`` of those frames (``uint8[len(frames), step]``), sets them as known and
    decodes those frames again (:func:`~cvqkd.reconciliation.disclosure.
    decode_frames_with_disclosure`). A frame whose decoded word meets the syndrome but fails
    the hash gets disclosure too. ``stats.disclosed_bits`` is the leakage that adds for the
    kept frames (included in ``stats.leaked_bits``); ``stats.epsilon_cor`` allows one hash
    check per round.
    """
    lay = FrameLayout.of(layout)
    d = message.dimension
    xf = _frames_of(x, lay, d, "x")
    frames, n_data = xf.shape
    if message.frames != frames:
        raise DataFormatError(f"Bob's message covers {message.frames} frames, x has {frames}")
    if message.syndromes.shape[1] != lay.code.n_checks:
        raise DataFormatError("syndrome length does not match the code")
    llr = alice_llr(
        xf,
        message.rotations,
        dimension=d,
        gain=gain,
        noise_variance=noise_variance,
        y_norm=message.y_norms,
    ).reshape(frames, n_data)
    full = np.zeros((frames, lay.code.n_vars), dtype=np.float32)
    full[:, lay.data_positions] = llr
    full[:, lay.shortened] = KNOWN_LLR
    data_pos = np.asarray(lay.data_positions, dtype=np.int64)
    out = decode_frames_with_disclosure(
        lay.code,
        full,
        message.syndromes,
        plan=disclosure,
        # the public order indexes the frame's data bits; the decoder needs code positions
        order=None if disclosure_order is None else data_pos[np.asarray(disclosure_order)],
        request=request,
        max_iterations=max_iterations,
        backend=backend,
        schedule=schedule,
        batch_frames=batch_frames,
        # the hash decides: a wrong word that meets the syndrome gets disclosure too
        accept=lambda f, word: verify(word[data_pos], message.tags[f]),
    )
    key = out.bits[:, data_pos]
    ok, iterations, revealed = out.converged, out.iterations, out.revealed
    tag_bits = message.tags[0].prime_bits if message.tags else 0
    sigma2 = float(np.mean(xf**2)) if signal_variance is None else float(signal_variance)
    snr = gain**2 * sigma2 / noise_variance
    rate = lay.rate
    n_ok = int(ok.sum())
    disclosed = int(sum(disclosure.leak_bits(int(r)) for r in revealed[ok])) if disclosure else 0
    stats = ReconcileStats(
        frames_tried=frames,
        frames_failed=frames - n_ok,
        frames_unconverged=int((~ok & ~out.rejected).sum()),
        frames_hash_failed=int(out.rejected.sum()),
        key_bits=n_ok * n_data,
        leaked_bits=n_ok * (lay.code.n_checks + tag_bits) + disclosed,
        rate=rate,
        snr=snr,
        beta=rate / float(awgn_capacity(snr=snr)),
        mean_iterations=float(iterations.mean()),
        # each round may put one more candidate word to the hash (union bound)
        epsilon_cor=collision_probability(n_bits=n_data, prime_bits=tag_bits or 61)
        * (1 + (disclosure.max_rounds if disclosure else 0)),
        disclosed_bits=disclosed,
        frames_with_disclosure=int(np.count_nonzero(revealed[ok])),
    )
    return AliceResult(key_bits=key[ok], frame_ok=ok, stats=stats)


def keep_frames(bob_bits: NDArray[np.uint8], frame_ok: ArrayLike) -> NDArray[np.uint8]:
    """Bob: keep the frames Alice verified (``frame_ok`` from her), drop the others."""
    ok = np.asarray(frame_ok, dtype=bool)
    if ok.shape != (bob_bits.shape[0],):
        raise DataFormatError(f"frame_ok has {ok.size} entries for {bob_bits.shape[0]} frames")
    out: NDArray[np.uint8] = bob_bits[ok]
    return out
