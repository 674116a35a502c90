"""Syndrome-based belief-propagation (sum-product) decoding of LDPC codes.

Alice knows noisy log-likelihood ratios ``L_v = log P(b_v = 0 | data) / P(b_v = 1 | data)`` of
Bob's bits ``b`` and Bob's syndrome ``s = H·b``. Sum-product decoding on the Tanner graph with
the syndrome folded into the check rule (Liveris, Xiong, Georghiades, IEEE Commun. Lett. 6, 440
(2002)): a check ``c`` with syndrome bit ``s_c`` sends to variable ``v``

    R_cv = (−1)^{s_c} · 2 atanh( ∏_{v' ∈ N(c)∖v} tanh(Q_v'c / 2) ),

and the posterior is ``A_v = L_v + Σ_c R_cv``, ``Q_vc = A_v − R_cv``. Hard decision: ``b̂_v = 1``
iff ``A_v < 0``. Decoding stops early for a frame as soon as ``H·b̂ = s`` (checked before each
iteration, so a frame that the channel decisions already satisfy takes 0 iterations).

Two schedules:

* ``"layered"`` (serial-C, default): checks are processed one after another in index order,
  each using and immediately updating the posteriors; converges in about half the iterations
  of flooding (Hocevar, SiPS 2004). Reordering checks that share no variable does not change
  the result; the CUDA layered schedule walks the first-fit layers of ``check_layers``, a
  different serial order than index order (same algorithm, slightly different iterates; the
  reference takes ``check_order`` to reproduce it).
* ``"flooding"``: all checks, then all variables, per iteration.

Backends share this one entry point, :func:`decode`:

* ``"reference"``: float64 pure numpy/python, one check at a time, with the product over the
  *other* edges formed directly. Slow and obviously correct: the oracle for the others.
* ``"numba"``: float32, compiled; frames of a batch run in parallel (``prange``), the loops
  within a frame are tight (forward-backward products, no division, so punctured bits with
  ``L = 0`` are safe).
* ``"cuda"``: float32 CuPy RawKernels for batches of frames on an NVIDIA GPU (``[gpu]``
  extra); flooding (default there) or layered over check layers that share no variable
  (:func:`~cvqkd.reconciliation.decoder_numba.check_layers`, one kernel launch per layer).
* ``"auto"``: ``"cuda"`` when CuPy and a GPU are present, otherwise ``"numba"``.

All backends clamp ``|∏ tanh|`` to ``1 − 2⁻²³`` (so ``|R| ≤ ln(2²⁴ − 1) ≈ 16.6``), which keeps
float32 finite; the reference applies the same clamp so that the backends agree.

Example
-------
>>> import numpy as np
>>> from cvqkd.reconciliation.ldpc import random_regular
>>> rng = np.random.default_rng(0)
>>> code = random_regular(n_vars=1200, var_degree=3, check_degree=6, rng=rng)
>>> bits = rng.integers(0, 2, code.n_vars, dtype=np.uint8)
>>> sigma = 0.6  # BPSK over AWGN at 4.4 dB, well above the (3,6) threshold
>>> y = (1.0 - 2.0 * bits) + sigma * rng.standard_normal(code.n_vars)
>>> res = decode(code, 2 * y / sigma**2, code.syndrome(bits), max_iterations=50)
>>> bool(res.converged), bool(np.array_equal(res.bits, bits))
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.ldpc import LdpcCode

__all__ = [
    "KNOWN_LLR",
    "MAX_TANH",
    "DecodeResult",
    "available_backends",
    "decode",
    "decode_reference",
    "resolve_backend",
]

Backend = Literal["auto", "reference", "numba", "cuda"]
Schedule = Literal["layered", "flooding"]

#: LLR given to a bit the decoder knows (shortened, or disclosed by Bob): certain in float32
#: sum-product (tanh saturates), finite so sums stay finite.
KNOWN_LLR = 1.0e3

#: Largest |∏ tanh| used before atanh: 1 − 2⁻²³, exactly representable in float32.
MAX_TANH = 1.0 - 2.0**-23


@dataclass(frozen=True)
class DecodeResult:
    """What a decoder returns, for one frame (1-D input) or a batch (2-D input).

    Attributes
    ----------
    bits:
        Hard decisions, ``uint8[n]`` or ``uint8[frames, n]``.
    converged:
        Whether ``H·bits = syndrome`` (per frame; a 0-d array for a single frame). Converged
        does NOT mean correct: verify with a hash (:mod:`cvqkd.reconciliation.verification`).
    iterations:
        Iterations run (per frame).
    posterior_llr:
        Final posteriors ``A_v`` (float32 for the fast backends, float64 for the reference).
    """

    bits: NDArray[np.uint8]
    converged: NDArray[np.bool_]
    iterations: NDArray[np.int64]
    posterior_llr: NDArray[np.floating]


def _check_inputs(
    code: LdpcCode, llr: ArrayLike, syndrome: ArrayLike, max_iterations: int
) -> tuple[NDArray[np.float32], NDArray[np.uint8], bool]:
    lam = np.asarray(llr, dtype=np.float32)
    syn = np.asarray(syndrome)
    single = lam.ndim == 1
    lam2 = np.atleast_2d(lam)
    syn2 = np.atleast_2d(syn).astype(np.uint8) & 1
    if lam2.ndim != 2 or lam2.shape[1] != code.n_vars:
        raise DataFormatError(f"llr has shape {lam.shape}; the code needs [frames, {code.n_vars}]")
    if syn2.shape != (lam2.shape[0], code.n_checks):
        raise DataFormatError(
            f"syndrome has shape {syn.shape}; expected [{lam2.shape[0]}, {code.n_checks}]"
        )
    if not np.all(np.isfinite(lam2)):
        raise DataFormatError("llr contains NaN or infinity")
    if max_iterations < 0:
        raise ConfigError(f"max_iterations must be >= 0, got {max_iterations}")
    return np.ascontiguousarray(lam2), np.ascontiguousarray(syn2), single


def _finish(
    bits: NDArray[np.uint8],
    converged: NDArray[np.bool_],
    iterations: NDArray[np.int64],
    post: NDArray[np.floating],
    single: bool,
) -> DecodeResult:
    if single:
        return DecodeResult(bits[0], converged[0, ...], iterations[0, ...], post[0])
    return DecodeResult(bits, converged, iterations, post)


# ---------------------------------------------------------------------------- reference
def _check_rule_reference(q: NDArray[np.float64], sign: float) -> NDArray[np.float64]:
    """R_k = sign · 2 atanh(∏_{j≠k} tanh(q_j / 2)), each product formed directly."""
    t = np.tanh(q / 2.0)
    out = np.empty_like(q)
    for k in range(q.size):
        p = sign * float(np.prod(np.delete(t, k)))
        p = min(max(p, -MAX_TANH), MAX_TANH)
        out[k] = 2.0 * math.atanh(p)
    return out


def decode_reference(
    code: LdpcCode,
    llr: ArrayLike,
    syndrome: ArrayLike,
    *,
    max_iterations: int,
    schedule: Schedule = "layered",
    check_order: ArrayLike | None = None,
) -> DecodeResult:
    """Slow, obviously correct float64 syndrome sum-product decoder (the oracle).

    Same semantics as :func:`decode`; use it on small codes (it loops over checks in Python).
    ``check_order`` (layered only) is the order in which checks are processed (default index
    order); the CUDA layered schedule equals the order of
    :func:`~cvqkd.reconciliation.decoder_numba.check_layers`.
    """
    lam, syn, single = _check_inputs(code, llr, syndrome, max_iterations)
    frames = lam.shape[0]
    bits = np.zeros((frames, code.n_vars), dtype=np.uint8)
    converged = np.zeros(frames, dtype=np.bool_)
    iterations = np.zeros(frames, dtype=np.int64)
    post = np.zeros((frames, code.n_vars), dtype=np.float64)
    ptr, cv = code.check_ptr, code.check_vars
    order = (
        np.arange(code.n_checks)
        if check_order is None
        else np.asarray(check_order, dtype=np.int64).ravel()
    )
    if not np.array_equal(np.sort(order), np.arange(code.n_checks)):
        raise ConfigError("check_order must be a permutation of the checks")
    for f in range(frames):
        channel = lam[f].astype(np.float64)
        app = channel.copy()
        r = np.zeros(code.n_edges, dtype=np.float64)
        signs = 1.0 - 2.0 * syn[f].astype(np.float64)
        it = 0
        while True:
            hard = (app < 0).astype(np.uint8)
            if np.array_equal(code.syndrome(hard), syn[f]):
                converged[f] = True
                break
            if it == max_iterations:
                break
            if schedule == "layered":
                for c_layered in order.tolist():
                    e = slice(ptr[c_layered], ptr[c_layered + 1])
                    vs = cv[e]
                    q = app[vs] - r[e]
                    r[e] = _check_rule_reference(q, signs[c_layered])
                    app[vs] = q + r[e]
            elif schedule == "flooding":
                new_r = np.empty_like(r)
                for c in range(code.n_checks):
                    e = slice(ptr[c], ptr[c + 1])
                    q = app[cv[e]] - r[e]
                    new_r[e] = _check_rule_reference(q, signs[c])
                r = new_r
                app = channel + np.bincount(cv, weights=r, minlength=code.n_vars)
            else:
                raise ConfigError(f"unknown schedule {schedule!r}: use 'layered' or 'flooding'")
            it += 1
        iterations[f] = it
        bits[f] = (app < 0).astype(np.uint8)
        post[f] = app
    return _finish(bits, converged, iterations, post, single)


# ---------------------------------------------------------------------------- dispatch
@lru_cache(maxsize=1)
def resolve_backend(backend: Backend) -> Backend:
    """The backend ``auto`` stands for here: ``cuda`` when a GPU is usable, else ``numba``."""
    if backend == "auto":
        return "cuda" if _cuda_available() else "numba"
    return backend


def _cuda_available() -> bool:
    try:
        from cvqkd.reconciliation import decoder_cuda
    except ImportError:  # pragma: no cover - depends on the machine
        return False
    return decoder_cuda.gpu_present()


def available_backends() -> tuple[str, ...]:
    """The backends usable on this machine, fastest first."""
    names = ["numba", "reference"]
    if _cuda_available():
        names.insert(0, "cuda")
    return tuple(names)


def decode(
    code: LdpcCode,
    llr: ArrayLike,
    syndrome: ArrayLike,
    *,
    max_iterations: int,
    backend: Backend = "auto",
    schedule: Schedule | None = None,
    state: NDArray[np.float32] | None = None,
    warm: bool = False,
) -> DecodeResult:
    """Decode one frame (``llr`` of shape ``[n]``) or a batch (``[frames, n]``) given syndromes.

    Parameters
    ----------
    code:
        The LDPC code.
    llr:
        Channel log-likelihood ratios ``log P(0)/P(1)`` (0 for punctured bits, ±large for
        shortened ones).
    syndrome:
        ``H·b mod 2`` of the bits to recover, ``[m]`` or ``[frames, m]``.
    max_iterations:
        Iteration cap (200–500 is normal at rates ≤ 0.05).
    backend:
        ``"auto"`` | ``"reference"`` | ``"numba"`` | ``"cuda"``.
    schedule:
        ``"layered"`` or ``"flooding"``; default layered on CPU, flooding on the GPU. The CUDA
        layered schedule walks the checks layer by layer, i.e. in the order of
        ``check_layers`` rather than index order (same algorithm, different serial order).
    state, warm:
        numba backend, layered schedule only: a ``float32[frames, E]`` buffer that receives
        the check-to-variable messages at the end; with ``warm=True`` decoding resumes from
        the messages in it (after some LLRs changed, e.g. bits disclosed:
        :mod:`cvqkd.reconciliation.disclosure`).

    Returns
    -------
    DecodeResult
        Bits, per-frame ``converged`` and ``iterations``, posteriors.
    """
    backend = resolve_backend(backend)
    if state is not None and (backend != "numba" or (schedule or "layered") != "layered"):
        raise ConfigError("a decoder state (warm start) needs the numba backend, layered")
    if backend == "reference":
        return decode_reference(
            code, llr, syndrome, max_iterations=max_iterations, schedule=schedule or "layered"
        )
    if backend == "numba":
        from cvqkd.reconciliation import decoder_numba

        lam, syn, single = _check_inputs(code, llr, syndrome, max_iterations)
        sched = schedule or "layered"
        if sched not in ("layered", "flooding"):
            raise ConfigError(f"unknown schedule {sched!r}: use 'layered' or 'flooding'")
        if state is not None and state.shape != (lam.shape[0], code.n_edges):
            raise ConfigError(
                f"decoder state must have shape {(lam.shape[0], code.n_edges)}, got {state.shape}"
            )
        bits, conv, its, post = decoder_numba.decode_batch(
            code,
            lam,
            syn,
            max_iterations=max_iterations,
            layered=sched == "layered",
            state=state,
            warm=warm,
        )
        return _finish(bits, conv, its, post, single)
    if backend == "cuda":
        from cvqkd.reconciliation import decoder_cuda

        if schedule not in (None, "flooding", "layered"):
            raise ConfigError(f"unknown schedule {schedule!r}: use 'layered' or 'flooding'")
        lam, syn, single = _check_inputs(code, llr, syndrome, max_iterations)
        bits, conv, its, post = decoder_cuda.decode_batch(
            code, lam, syn, max_iterations=max_iterations, layered=schedule == "layered"
        )
        return _finish(bits, conv, its, post, single)
    raise ConfigError(f"unknown decoder backend {backend!r}: use auto, reference, numba or cuda")
