"""Incremental disclosure: a frame that does not decode gets a few of Bob's core bits.

Why. At n = 10^6 and rate 0.02 a frame of the MET codes decodes when its *empirical*
information — the mean information density of its own noise realisation — exceeds about
R/0.96, and fails otherwise (docs/met-codes.md, "Why frames fail: the channel, not the
code"). The realised information of a frame scatters around the capacity by
``√(V/n) ≈ 1 %`` (the channel dispersion), so a fixed rate loses the unlucky ≈ 10–20 % of
frames at β = 0.95. Instead of discarding them, Alice asks for more: Bob discloses the values
of ``step_bits`` further code bits, at positions fixed in advance by a public order over the
core (variables of degree ≥ 2; the lowest degrees first, random within a degree — see
:func:`disclosure_order`), Alice sets them as known and decodes again, up
to ``max_bits`` (measured: 200 bits, 1 % of k, brought back 5 of 6 failed frames whose
information was 0.9–1.9 % below the capacity; the sixth needed 800). Only the unlucky frames
pay, instead of a lower rate for all. This is blind reconciliation (Martinez-Mateo, Elkouss
& Martin, Quantum Inf. Comput. 12, 791 (2012)) with revealed instead of punctured symbols.

Security accounting. The positions are public and independent of the data; the disclosed
values are bits of Bob's (reverse-reconciliation) key string, so each counts one bit of
leakage exactly like a syndrome bit; the number of rounds a frame needed is public and
depends on the data, so it is counted too: ``⌈log2(max_rounds + 1)⌉`` bits per frame
(:meth:`DisclosurePlan.leak_bits`). Every attempt whose word meets the syndrome is checked
with the frame's hash; a rejected word is retried like an unconverged one, so ε_cor is
charged once per attempt (union bound, :func:`decode_frames_with_disclosure`).

>>> plan = DisclosurePlan(step_bits=100, max_bits=1600)
>>> plan.max_rounds, plan.leak_bits(200)
(16, 205)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError, DataFormatError, SecurityAbort
from cvqkd.reconciliation.decoder import KNOWN_LLR, Backend, Schedule, decode, resolve_backend
from cvqkd.reconciliation.ldpc import LdpcCode

__all__ = [
    "DISCLOSURE_SEED",
    "FIRST_ATTEMPT_ITERATIONS",
    "RETRY_ITERATIONS",
    "WARM_STATE_MAX_BYTES",
    "DisclosedBatch",
    "DisclosedDecode",
    "DisclosureLedger",
    "DisclosurePlan",
    "decode_frames_with_disclosure",
    "decode_with_disclosure",
    "disclosure_order",
    "frame_disclosure_order",
    "plan_for",
]

#: Seed of the public disclosure order used by the pipeline and ``cvqkd fer``: fixed, so the
#: positions are known before any data exists.
DISCLOSURE_SEED = 20_261_127

#: Cap of the first decoding attempt when disclosure is on (:meth:`DisclosurePlan.with_caps`;
#: without disclosure a slow frame would be lost, so the cap is the decoder's maximum): of
#: the frames the MET codes decode plainly at their working β, all of met-r0.01's (β 0.93,
#: 79/79) and 95 % of met-r0.02's (β 0.95, 80/84) converge within 150 iterations; a frame
#: still failing there is handed to disclosure instead of burning the maximum first
#: (docs/met-codes.md, "Both at once").
FIRST_ATTEMPT_ITERATIONS = 150

#: Cap of a retry after a disclosure round (warm start): frames brought back by disclosure
#: converged in 50–163 iterations (docs/met-codes.md, "Why frames fail").
RETRY_ITERATIONS = 150

#: Most memory :func:`decode_frames_with_disclosure` spends on warm-start states for the
#: retries (float32 per edge and failed frame: 13.7 MB per met-r0.02 frame at n = 10^6);
#: beyond it retries decode from scratch.
WARM_STATE_MAX_BYTES = 512 * 2**20


@dataclass(frozen=True)
class DisclosurePlan:
    """How much Bob may disclose per frame: ``step_bits`` per round, at most ``max_bits``.

    ``first_iterations`` and ``retry_iterations`` cap the first decoding attempt and the
    attempts after each disclosure (default: the decoder's ``max_iterations``): with
    disclosure a slow frame costs a round, not the frame, so low caps save the iterations a
    stuck attempt would burn (frames brought back by disclosure converged in 67–163).
    """

    step_bits: int = 100
    max_bits: int = 1600
    first_iterations: int | None = None
    retry_iterations: int | None = None

    def __post_init__(self) -> None:
        if self.step_bits < 1 or self.max_bits < 0:
            raise ConfigError(
                f"disclosure step must be >= 1 and maximum >= 0 bits, got "
                f"{self.step_bits} and {self.max_bits}"
            )
        for cap in (self.first_iterations, self.retry_iterations):
            if cap is not None and cap < 1:
                raise ConfigError(f"iteration caps must be >= 1, got {cap}")

    def with_caps(self, max_iterations: int) -> DisclosurePlan:
        """This plan with the iteration caps the pipeline uses (Alice's own choice, never
        announced): :data:`FIRST_ATTEMPT_ITERATIONS` and :data:`RETRY_ITERATIONS`, at most
        ``max_iterations``.

        >>> DisclosurePlan(100, 800).with_caps(500)
        DisclosurePlan(step_bits=100, max_bits=800, first_iterations=150, retry_iterations=150)
        """
        return replace(
            self,
            first_iterations=min(FIRST_ATTEMPT_ITERATIONS, max_iterations),
            retry_iterations=min(RETRY_ITERATIONS, max_iterations),
        )

    @property
    def max_rounds(self) -> int:
        """Disclosure rounds a frame may get."""
        return self.max_bits // self.step_bits

    def leak_bits(self, revealed: int) -> int:
        """Leakage of a frame beyond its syndrome: the disclosed bits plus the public round
        count, ``⌈log2(max_rounds + 1)⌉`` bits."""
        return int(revealed) + math.ceil(math.log2(self.max_rounds + 1))


def _weak_first(
    candidates: NDArray[np.int64], degrees: NDArray[np.int64], *, rng_seed: list[int]
) -> NDArray[np.int64]:
    """``candidates`` in a seeded random order, then stably sorted by degree, lowest first."""
    perm = np.random.default_rng(rng_seed).permutation(candidates.size)
    shuffled = candidates[perm]
    return np.asarray(shuffled[np.argsort(degrees[perm], kind="stable")], dtype=np.int64)


def disclosure_order(code: LdpcCode, *, seed: int) -> NDArray[np.int64]:
    """The public order in which core bits (variables of degree ≥ 2) are disclosed: the
    lowest-degree core variables first, each degree class in a random order drawn from
    ``default_rng([seed, n])`` — the same for Alice and Bob, fixed before any data exists
    (so the positions say nothing about the data; each disclosed value is one bit of leak).

    Why weakest first: a disclosed bit helps most where belief propagation knows least. On
    8 met-r0.02 frames that needed 300–600 bits at β = 0.96 (n = 10^6), disclosing only
    the degree-6 core variables took 2 700 bits and 3 062 iterations in all, a random core
    order (75 % degree-80) 3 400 and 3 737, only the degree-80 ones 4 200 (docs/met-codes.md,
    "Which bits to disclose").

    >>> from cvqkd.reconciliation.met import load_met_code
    >>> code = load_met_code("met-r0.02", n_target=20_000)
    >>> order = disclosure_order(code, seed=1)
    >>> order.size, bool(np.all(order < 800))    # the 800 core variables come first
    (800, True)
    >>> np.unique(code.var_degrees[order[:200]]).tolist()   # the 200 of degree 6 lead
    [6]
    """
    deg = np.asarray(code.var_degrees, dtype=np.int64)
    core = np.flatnonzero(deg >= 2).astype(np.int64)
    if core.size == 0:
        raise ConfigError(f"{code.name}: no variable of degree >= 2 to disclose")
    return _weak_first(core, deg[core], rng_seed=[seed, code.n_vars])


@dataclass(frozen=True)
class DisclosedDecode:
    """Outcome of :func:`decode_with_disclosure` for one frame: Alice's bits, whether the
    syndrome was met (verify with the hash as usual), the bits Bob disclosed, the disclosure
    rounds and the decoder iterations summed over the attempts."""

    bits: NDArray[np.uint8]
    converged: bool
    revealed: int
    rounds: int
    iterations: int


@dataclass(frozen=True)
class DisclosedBatch:
    """Outcome of :func:`decode_frames_with_disclosure`, per frame: hard decisions
    ``uint8[F, n]``, whether the frame was accepted (syndrome met and, with ``accept``,
    verified), whether its last attempt met the syndrome but was rejected by ``accept``,
    decoder iterations summed over the attempts, and the bits Bob disclosed
    (``rounds = revealed // plan.step_bits``)."""

    bits: NDArray[np.uint8]
    converged: NDArray[np.bool_]
    rejected: NDArray[np.bool_]
    iterations: NDArray[np.int64]
    revealed: NDArray[np.int64]


def decode_frames_with_disclosure(
    code: LdpcCode,
    llr: ArrayLike,
    syndromes: ArrayLike,
    *,
    plan: DisclosurePlan | None,
    order: ArrayLike | None,
    request: Callable[[NDArray[np.int64], int], ArrayLike] | None,
    max_iterations: int,
    backend: Backend = "auto",
    schedule: Schedule | None = None,
    batch_frames: int = 16,
    warm_start: bool = True,
    accept: Callable[[int, NDArray[np.uint8]], bool] | None = None,
) -> DisclosedBatch:
    """Decode frames ``batch_frames`` at a time; then, in rounds, the frames still failing ask
    ``request(frames, start)`` for Bob's bits at code positions ``order[start : start +
    plan.step_bits]`` (``uint8[len(frames), step]``), set them as known (LLR ±``KNOWN_LLR``)
    and are decoded again — one request per round for all of them (one network round trip in
    the pipeline), up to ``plan.max_bits``. ``plan=None``: plain decoding.

    ``accept(frame, bits)``, called for each attempt that meets the syndrome, is the
    verification (the pipeline's hash): a frame it rejects — decoded to a wrong word that
    happens to satisfy the syndrome — counts as failed and gets disclosure like an
    unconverged one (its next attempt starts from scratch, so it is not pulled back to the
    same word). Each verified candidate is one more chance of a hash collision: with ``r``
    rounds, ε_cor per frame grows to ``(r + 1)·ε_cor`` (union bound).

    The first attempt runs at most ``plan.first_iterations`` iterations, each retry
    ``plan.retry_iterations`` (default ``max_iterations``). ``warm_start`` (numba backend,
    layered schedule, at most :data:`WARM_STATE_MAX_BYTES` of states): a retry resumes from
    the frame's previous messages instead of from scratch (measured on failed met-r0.02
    frames at n = 10^6: 74 / 50 / 117 iterations against 138 / 109 / 112 cold).

    >>> from cvqkd.reconciliation.met import load_met_code
    >>> code = load_met_code("met-r0.02", n_target=20_000)
    >>> rng = np.random.default_rng(4)
    >>> bob = rng.integers(0, 2, (2, code.n_vars), dtype=np.uint8)
    >>> snr = 0.015                                   # β ≈ 1.9: hopeless without help
    >>> llr = 2 * snr * ((1.0 - 2 * bob) + rng.standard_normal(bob.shape) / snr**0.5)
    >>> order = disclosure_order(code, seed=1)
    >>> ask = lambda frames, start: bob[frames][:, order[start : start + 100]]
    >>> out = decode_frames_with_disclosure(code, llr, code.syndrome(bob),
    ...     plan=DisclosurePlan(step_bits=100, max_bits=800), order=order, request=ask,
    ...     max_iterations=200)
    >>> out.converged.tolist(), bool(np.array_equal(out.bits, bob)), bool(out.revealed.min() > 0)
    ([True, True], True, True)
    """
    # a private copy only when disclosure will write known bits into it
    lam = np.array(llr, dtype=np.float32, ndmin=2) if plan is not None else _as_rows(llr)
    frames = lam.shape[0]
    if lam.ndim != 2 or lam.shape[1] != code.n_vars:
        raise ConfigError(f"llr must have shape (frames, {code.n_vars}), got {lam.shape}")
    syn = np.asarray(syndromes, dtype=np.uint8).reshape(frames, -1)
    if plan is not None:
        if request is None or order is None:
            raise ConfigError("disclosure needs a request callback and the public order")
        pos_all = np.asarray(order, dtype=np.int64)
        if pos_all.size < plan.max_bits:
            raise ConfigError(
                f"the disclosure order has {pos_all.size} positions, fewer than the plan's "
                f"maximum of {plan.max_bits} bits"
            )
    step = max(1, batch_frames)
    bits = np.zeros((frames, code.n_vars), dtype=np.uint8)
    converged = np.zeros(frames, dtype=bool)
    rejected = np.zeros(frames, dtype=bool)
    iterations = np.zeros(frames, dtype=np.int64)
    revealed = np.zeros(frames, dtype=np.int64)
    # warm start: the messages of each failed frame's last attempt (a zero state decodes
    # exactly like a cold start), kept while they fit in WARM_STATE_MAX_BYTES
    state_bytes = 4 * code.n_edges
    warm = (
        plan is not None
        and warm_start
        and resolve_backend(backend) == "numba"
        and (schedule or "layered") == "layered"
        and min(step, frames) * state_bytes <= WARM_STATE_MAX_BYTES
    )
    kept: dict[int, NDArray[np.float32]] = {}

    def attempt(fs: NDArray[np.int64], cap: int) -> None:
        st = None
        if warm:
            st = np.zeros((fs.size, code.n_edges), dtype=np.float32)
            for j, f in enumerate(fs):
                if int(f) in kept:
                    st[j] = kept[int(f)]
        res = decode(
            code, _rows(lam, fs), _rows(syn, fs), max_iterations=cap, backend=backend,
            schedule=schedule, state=st, warm=st is not None,
        )  # fmt: skip
        met = np.asarray(res.converged, dtype=bool)
        ok = met.copy()
        if accept is not None:
            for i in np.flatnonzero(ok):
                ok[i] = bool(accept(int(fs[i]), res.bits[i]))
        bits[fs] = res.bits
        converged[fs] = ok
        rejected[fs] = met & ~ok
        iterations[fs] += res.iterations
        if st is None:
            return
        for j, f in enumerate(int(v) for v in fs):
            if ok[j] or met[j]:  # done, or a rejected word its messages would lead back to
                kept.pop(f, None)
            elif f in kept or (len(kept) + 1) * state_bytes <= WARM_STATE_MAX_BYTES:
                kept[f] = st[j].copy()

    first_cap = (plan.first_iterations if plan else None) or max_iterations
    for f0 in range(0, frames, step):
        attempt(np.arange(f0, min(frames, f0 + step)), first_cap)
    start = 0
    while plan is not None and start + plan.step_bits <= plan.max_bits:
        todo = np.flatnonzero(~converged)
        if todo.size == 0:
            break
        pos = pos_all[start : start + plan.step_bits]
        vals = np.asarray(request(todo, start), dtype=np.uint8)  # type: ignore[misc]
        if vals.shape != (todo.size, pos.size) or np.any(vals > 1):
            raise DataFormatError(
                f"disclosed bits have shape {vals.shape}, expected {(todo.size, pos.size)}"
            )
        lam[np.ix_(todo, pos)] = np.where(vals == 0, KNOWN_LLR, -KNOWN_LLR)
        revealed[todo] += plan.step_bits
        for b0 in range(0, todo.size, step):
            attempt(todo[b0 : b0 + step], plan.retry_iterations or max_iterations)
        start += plan.step_bits
    return DisclosedBatch(bits, converged, rejected, iterations, revealed)


def _as_rows(llr: ArrayLike) -> NDArray[np.float32]:
    lam = np.asarray(llr, dtype=np.float32)
    return lam if lam.ndim >= 2 else lam.reshape(1, -1)


def _rows(a: NDArray[Any], fs: NDArray[np.int64]) -> NDArray[Any]:
    """``a[fs]``, as a view (no copy of 10^6-bit frames) when ``fs`` is a run of rows."""
    if fs.size and int(fs[-1]) - int(fs[0]) + 1 == fs.size and np.all(np.diff(fs) == 1):
        return a[int(fs[0]) : int(fs[-1]) + 1]
    return a[fs]


def decode_with_disclosure(
    code: LdpcCode,
    llr: ArrayLike,
    syndrome: ArrayLike,
    *,
    order: ArrayLike,
    reveal: Callable[[NDArray[np.int64]], ArrayLike],
    plan: DisclosurePlan,
    max_iterations: int,
    backend: Backend = "auto",
    schedule: Schedule | None = None,
    warm_start: bool = True,
    accept: Callable[[NDArray[np.uint8]], bool] | None = None,
) -> DisclosedDecode:
    """One frame through :func:`decode_frames_with_disclosure`: while it fails, ask
    ``reveal(positions)`` (Bob's side: the values of his bits there) for the next
    ``plan.step_bits`` positions of ``order`` and decode again with them known, up to
    ``plan.max_bits``. ``accept(bits)``: the verification (hash) of a word that meets the
    syndrome; a rejected word is retried like an unconverged one.

    >>> from cvqkd.reconciliation.met import load_met_code
    >>> code = load_met_code("met-r0.02", n_target=20_000)
    >>> rng = np.random.default_rng(4)
    >>> bob = rng.integers(0, 2, code.n_vars, dtype=np.uint8)
    >>> snr = 0.015                                   # β ≈ 1.9: hopeless without help
    >>> llr = 2 * snr * ((1.0 - 2 * bob) + rng.standard_normal(code.n_vars) / snr**0.5)
    >>> out = decode_with_disclosure(code, llr, code.syndrome(bob),
    ...     order=disclosure_order(code, seed=1), reveal=lambda pos: bob[pos],
    ...     plan=DisclosurePlan(step_bits=100, max_bits=800), max_iterations=200)
    >>> out.converged, out.revealed > 0, bool(np.array_equal(out.bits, bob))
    (True, True, True)
    """
    lam = np.asarray(llr, dtype=np.float64)
    if lam.ndim != 1 or lam.size != code.n_vars:
        raise ConfigError(f"llr must have shape ({code.n_vars},), got {lam.shape}")
    pos_all = np.asarray(order, dtype=np.int64)

    def ask(frames: NDArray[np.int64], start: int) -> NDArray[np.uint8]:
        got = np.asarray(reveal(pos_all[start : start + plan.step_bits]), dtype=np.uint8)
        return got.reshape(1, -1)

    out = decode_frames_with_disclosure(
        code, lam[None, :], np.asarray(syndrome)[None, :], plan=plan, order=pos_all,
        request=ask, max_iterations=max_iterations, backend=backend, schedule=schedule,
        batch_frames=1, warm_start=warm_start,
        accept=None if accept is None else (lambda _f, word: accept(word)),
    )  # fmt: skip
    return DisclosedDecode(
        bits=out.bits[0],
        converged=bool(out.converged[0]),
        revealed=int(out.revealed[0]),
        rounds=int(out.revealed[0]) // plan.step_bits,
        iterations=int(out.iterations[0]),
    )


def plan_for(info_bits: int, *, max_fraction: float, rounds: int) -> DisclosurePlan | None:
    """The plan for frames of ``info_bits`` (k = n_data − m): at most ``max_fraction·k`` bits
    in ``rounds`` equal steps (None when that is less than one bit per round).

    >>> plan_for(20_000, max_fraction=0.04, rounds=8)
    DisclosurePlan(step_bits=100, max_bits=800, first_iterations=None, retry_iterations=None)
    """
    if not 0.0 <= max_fraction < 1.0 or rounds < 1:
        raise ConfigError(
            f"disclosure needs a fraction in [0, 1) and >= 1 round, got {max_fraction}, {rounds}"
        )
    step = int(max_fraction * info_bits) // rounds
    if step < 1:
        return None
    return DisclosurePlan(step_bits=step, max_bits=step * rounds)


def frame_disclosure_order(
    n_vars: int,
    var_degrees: ArrayLike,
    data_positions: ArrayLike,
    *,
    seed: int,
) -> NDArray[np.int64]:
    """:func:`disclosure_order` for frames whose data bits sit at ``data_positions`` of the
    code (punctured and shortened positions are not data and are never disclosed): the
    order as indices into a frame's data bits.

    >>> frame_disclosure_order(6, [3, 1, 2, 2, 1, 3], [0, 1, 2, 3, 5], seed=1).tolist()
    [2, 3, 4, 0]
    """
    deg = np.asarray(var_degrees, dtype=np.int64)
    data = np.asarray(data_positions, dtype=np.int64)
    core_data = np.flatnonzero(deg[data] >= 2).astype(np.int64)
    if core_data.size == 0:
        raise ConfigError("no data position of degree >= 2 to disclose")
    return _weak_first(core_data, deg[data[core_data]], rng_seed=[seed, n_vars])


class DisclosureLedger:
    """Bob's side of incremental disclosure for one block: answers Alice's requests with his
    bits at the next positions of the public order, enforcing the plan (every requested frame
    at the round it should be at, never beyond ``max_bits``), and counts what was disclosed.

    >>> bits = np.array([[1, 0, 1, 1], [0, 0, 1, 0]], dtype=np.uint8)
    >>> led = DisclosureLedger(bits, order=np.array([2, 0, 3, 1]),
    ...                        plan=DisclosurePlan(step_bits=2, max_bits=4))
    >>> led.answer(np.array([1]), start=0).tolist()
    [[1, 0]]
    >>> led.leak_bits(np.array([True, True]))   # frame 0: 0 + 2 bits, frame 1: 2 + 2 bits
    6
    """

    def __init__(
        self, bits: NDArray[np.uint8], *, order: NDArray[np.int64], plan: DisclosurePlan
    ) -> None:
        if order.size < plan.max_bits:
            raise ConfigError(
                f"the disclosure order has {order.size} positions, fewer than {plan.max_bits}"
            )
        self.bits = bits
        self.order = order
        self.plan = plan
        self.revealed = np.zeros(bits.shape[0], dtype=np.int64)

    def answer(self, frames: ArrayLike, *, start: int) -> NDArray[np.uint8]:
        """Bits ``[len(frames), step]`` of the requested frames at the next positions."""
        f = np.asarray(frames, dtype=np.int64).ravel()
        n = self.bits.shape[0]
        if f.size == 0 or np.any((f < 0) | (f >= n)) or np.unique(f).size != f.size:
            raise SecurityAbort("malformed disclosure request: frame indices")
        if np.any(self.revealed[f] != start):
            raise SecurityAbort("disclosure request out of step with what was disclosed")
        if start + self.plan.step_bits > self.plan.max_bits:
            raise SecurityAbort(
                f"disclosure request beyond the plan's {self.plan.max_bits} bits per frame"
            )
        pos = self.order[start : start + self.plan.step_bits]
        self.revealed[f] += self.plan.step_bits
        out: NDArray[np.uint8] = self.bits[f][:, pos]
        return out

    def leak_bits(self, frame_ok: ArrayLike) -> int:
        """Leakage of the kept frames beyond their syndromes (:meth:`DisclosurePlan.leak_bits`)."""
        ok = np.asarray(frame_ok, dtype=bool)
        return int(sum(self.plan.leak_bits(int(r)) for r in self.revealed[ok]))
