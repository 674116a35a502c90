"""Numba CPU backend of the syndrome sum-product decoder (float32, compiled, parallel frames).

Called through :func:`cvqkd.reconciliation.decoder.decode` (``backend="numba"``); see there
for the update rules. The layered kernel skips the exp/log of degree-one variables (a third of
the edges of MET / Raptor-like codes) without changing the algorithm (see ``_layered_frame``).
Check updates use forward–backward products of ``tanh(Q/2)`` (the
"exclusion" without division, so a zero factor from a punctured bit is harmless) and
``2 atanh(x) = ln((1 + x)/(1 − x))``. Frames of a batch are decoded in parallel (``prange``);
a single frame with the flooding schedule is parallelised over checks and variables instead.
Internally the variables are relabelled in first-touch order (``_Graph``), which makes the
check walk read memory almost sequentially; results are unchanged.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

from cvqkd.reconciliation.ldpc import LdpcCode, first_touch_order

__all__ = ["check_layers", "decode_batch"]

_MAX_TANH = np.float32(1.0 - 2.0**-23)


@nb.njit(cache=True, nogil=True, fastmath=True)
def _syndrome_ok(check_ptr, check_vars, signs, app):
    m = check_ptr.shape[0] - 1
    for c in range(m):
        parity = signs[c] < 0
        for e in range(check_ptr[c], check_ptr[c + 1]):
            if app[check_vars[e]] < 0:
                parity = not parity
        if parity:
            return False
    return True


@nb.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _tanh_half(q):
    """tanh(q/2) in float32."""
    if abs(q) < np.float32(0.2):
        # odd Taylor series of tanh(h), h = q/2 < 0.1: next term 17h⁷/315 < 6e-8 relative;
        # avoids the cancellation in 1 − 2/(e^q + 1) for the tiny LLRs of low SNR
        h = np.float32(0.5) * q
        h2 = h * h
        return h * (np.float32(1.0) - h2 * (np.float32(1.0 / 3.0) - h2 * np.float32(2.0 / 15.0)))
    # tanh(q/2) = 1 − 2/(e^q + 1): one expf (3× cheaper than tanhf); saturates to ±1
    return np.float32(1.0) - np.float32(2.0) / (np.float32(np.exp(q)) + np.float32(1.0))


@nb.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _clamp(x):
    if x > _MAX_TANH:
        return _MAX_TANH
    if x < -_MAX_TANH:
        return -_MAX_TANH
    return x


@nb.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _two_atanh(x):
    """2 atanh(x) in float32 for |x| ≤ MAX_TANH."""
    if abs(x) < np.float32(0.1):
        # 2 atanh(x) = 2x(1 + x²/3 + x⁴/5 + x⁶/7 + …): next term x⁸/9 < 1.2e-9 relative,
        # where the log form would lose up to 1e-7/|x| relative to rounding of (1+x)/(1−x)
        x2 = x * x
        return (np.float32(2.0) * x) * (
            np.float32(1.0)
            + x2 * (np.float32(1.0 / 3.0) + x2 * (np.float32(0.2) + x2 * np.float32(1.0 / 7.0)))
        )
    return np.float32(np.log((np.float32(1.0) + x) / (np.float32(1.0) - x)))


@nb.njit(cache=True, nogil=True, fastmath=True)
def _check_update(d, sign, q, out, t, pre):
    """out[k] = sign·2 atanh(∏_{j≠k} tanh(q_j/2)) for k < d; ``out`` may alias ``q``."""
    for k in range(d):
        t[k] = _tanh_half(q[k])
    p = sign
    for k in range(d):
        pre[k] = p
        p = p * t[k]
    p = np.float32(1.0)
    for k in range(d - 1, -1, -1):
        x = _clamp(pre[k] * p)
        p = p * t[k]
        out[k] = _two_atanh(x)


@nb.njit(cache=True, nogil=True, fastmath=True)
def _layered_frame(
    check_ptr,
    check_vars,
    var_ptr,
    var_edges,
    deg1,
    llr,
    signs,
    max_iter,
    r,
    app,
    tconst,
    qbuf,
    tbuf,
    warm,
):
    """Layered (serial-C) sum-product for one frame.

    ``warm``: resume from the check-to-variable messages already in ``r`` (those a previous
    call left there) with the current ``llr`` — a warm start after some LLRs changed.

    Degree-one variables (``deg1``) are special-cased without changing the algorithm: their
    message to their only check is always the channel LLR, so ``tanh(L/2)`` is computed once;
    and the check's message back, ``R = 2 atanh(x)``, only matters for their hard decision,
    ``sign(L + R) = sign(tanh(L/2) + x)``. So during the iterations ``r`` holds ``x`` on such
    edges and ``app`` holds ``tanh(L/2) + x`` (same sign as the posterior): no exp, no log.
    The true posteriors ``L + 2 atanh(x)`` are restored at the end.
    """
    m = check_ptr.shape[0] - 1
    n = llr.shape[0]
    if warm:
        for v in range(n):
            if deg1[v]:
                tconst[v] = _tanh_half(llr[v])
                app[v] = tconst[v] + r[var_edges[var_ptr[v]]]
            else:
                acc = llr[v]
                for j in range(var_ptr[v], var_ptr[v + 1]):
                    acc += r[var_edges[j]]
                app[v] = acc
    else:
        for v in range(n):
            if deg1[v]:
                tconst[v] = _tanh_half(llr[v])
                app[v] = tconst[v]
            else:
                app[v] = llr[v]
        r[:] = 0.0
    it = 0
    ok = False
    pre = tbuf[qbuf.shape[0] // 2 :]
    while True:
        if _syndrome_ok(check_ptr, check_vars, signs, app):
            ok = True
            break
        if it == max_iter:
            break
        for c in range(m):
            s = check_ptr[c]
            d = check_ptr[c + 1] - s
            for k in range(d):
                v = check_vars[s + k]
                if deg1[v]:
                    tbuf[k] = tconst[v]
                else:
                    q = app[v] - r[s + k]
                    qbuf[k] = q
                    tbuf[k] = _tanh_half(q)
            p = signs[c]
            for k in range(d):
                pre[k] = p
                p = p * tbuf[k]
            p = np.float32(1.0)
            for k in range(d - 1, -1, -1):
                x = _clamp(pre[k] * p)
                p = p * tbuf[k]
                v = check_vars[s + k]
                if deg1[v]:
                    r[s + k] = x
                    app[v] = tbuf[k] + x
                else:
                    rk = _two_atanh(x)
                    r[s + k] = rk
                    app[v] = qbuf[k] + rk
        it += 1
    for v in range(n):
        if deg1[v]:
            app[v] = llr[v] + _two_atanh(r[var_edges[var_ptr[v]]])
    return it, ok


@nb.njit(cache=True, nogil=True, fastmath=True)
def _flooding_frame(check_ptr, check_vars, var_ptr, var_edges, llr, signs, max_iter, r, app, qbuf):
    m = check_ptr.shape[0] - 1
    n = var_ptr.shape[0] - 1
    app[:] = llr
    r[:] = 0.0
    it = 0
    while True:
        if _syndrome_ok(check_ptr, check_vars, signs, app):
            return it, True
        if it == max_iter:
            return it, False
        for c in range(m):
            s = check_ptr[c]
            e_end = check_ptr[c + 1]
            for k in range(e_end - s):
                r[s + k] = app[check_vars[s + k]] - r[s + k]
            _check_update(e_end - s, signs[c], r[s:e_end], r[s:e_end], qbuf, qbuf[e_end - s :])
        for v in range(n):
            acc = llr[v]
            for p in range(var_ptr[v], var_ptr[v + 1]):
                acc += r[var_edges[p]]
            app[v] = acc
        it += 1


@nb.njit(cache=True, parallel=True, fastmath=True)
def _flooding_single_parallel(
    check_ptr, check_vars, var_ptr, var_edges, llr, signs, max_iter, r, app, max_deg
):
    """One frame, flooding, parallel over checks and variables (for a lone large frame)."""
    m = check_ptr.shape[0] - 1
    n = var_ptr.shape[0] - 1
    app[:] = llr
    r[:] = 0.0
    it = 0
    n_chunks = 64
    while True:
        if _syndrome_ok(check_ptr, check_vars, signs, app):
            return it, True
        if it == max_iter:
            return it, False
        for chunk in nb.prange(n_chunks):
            qbuf = np.empty(2 * max_deg, dtype=np.float32)
            c0 = chunk * m // n_chunks
            c1 = (chunk + 1) * m // n_chunks
            for c in range(c0, c1):
                s = check_ptr[c]
                e_end = check_ptr[c + 1]
                for k in range(e_end - s):
                    r[s + k] = app[check_vars[s + k]] - r[s + k]
                _check_update(e_end - s, signs[c], r[s:e_end], r[s:e_end], qbuf, qbuf[e_end - s :])
        for v in nb.prange(n):
            acc = llr[v]
            for p in range(var_ptr[v], var_ptr[v + 1]):
                acc += r[var_edges[p]]
            app[v] = acc
        it += 1


@nb.njit(cache=True, parallel=True)
def _decode_frames(
    check_ptr,
    check_vars,
    var_ptr,
    var_edges,
    deg1,
    llr,
    signs,
    max_iter,
    layered,
    max_deg,
    post,
    state,
    warm,
):
    frames = llr.shape[0]
    n_edges = check_vars.shape[0]
    iters = np.zeros(frames, dtype=np.int64)
    conv = np.zeros(frames, dtype=np.bool_)
    keep = state.shape[0] == frames
    for f in nb.prange(frames):
        r = state[f] if keep else np.empty(n_edges, dtype=np.float32)
        qbuf = np.empty(2 * max_deg, dtype=np.float32)
        tbuf = np.empty(2 * max_deg, dtype=np.float32)
        tconst = np.empty(llr.shape[1] if layered else 0, dtype=np.float32)
        if layered:
            it, ok = _layered_frame(
                check_ptr,
                check_vars,
                var_ptr,
                var_edges,
                deg1,
                llr[f],
                signs[f],
                max_iter,
                r,
                post[f],
                tconst,
                qbuf,
                tbuf,
                warm,
            )
        else:
            it, ok = _flooding_frame(
                check_ptr,
                check_vars,
                var_ptr,
                var_edges,
                llr[f],
                signs[f],
                max_iter,
                r,
                post[f],
                qbuf,
            )
        iters[f] = it
        conv[f] = ok
    return iters, conv


@dataclass(frozen=True)
class _Graph:
    """The code's graph with its variables relabelled in first-touch order
    (:func:`~cvqkd.reconciliation.ldpc.first_touch_order`): the same checks, edges and edge
    order, so decoding is bit-identical, but a check walk reads the per-variable arrays
    (posteriors, LLRs) almost sequentially. ``order[new] = old``, ``inverse[old] = new``."""

    order: NDArray[np.int64]
    inverse: NDArray[np.int64]
    check_vars: NDArray[np.int32]
    var_ptr: NDArray[np.int64]
    var_edges: NDArray[np.int64]
    deg1: NDArray[np.bool_]

    @classmethod
    def of(cls, code: LdpcCode) -> _Graph:
        g = _GRAPHS.get(code)
        if g is None:
            order = first_touch_order(code)
            inverse = np.empty_like(order)
            inverse[order] = np.arange(order.size)
            check_vars = inverse[code.check_vars].astype(np.int32)
            degrees = code.var_degrees[order]
            var_ptr = np.zeros(code.n_vars + 1, dtype=np.int64)
            np.cumsum(degrees, out=var_ptr[1:])
            # CSC of the new labels, edges ascending within a variable (as in LdpcCode)
            var_edges = np.argsort(check_vars, kind="stable").astype(np.int64)
            g = cls(order, inverse, check_vars, var_ptr, var_edges, degrees == 1)
            _GRAPHS[code] = g
        return g


_GRAPHS: weakref.WeakKeyDictionary[LdpcCode, _Graph] = weakref.WeakKeyDictionary()


def decode_batch(
    code: LdpcCode,
    llr: NDArray[np.float32],
    syndrome: NDArray[np.uint8],
    *,
    max_iterations: int,
    layered: bool,
    state: NDArray[np.float32] | None = None,
    warm: bool = False,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64], NDArray[np.float32]]:
    """Decode ``[frames, n]`` float32 LLRs with ``[frames, m]`` syndromes; returns
    ``(bits, converged, iterations, posteriors)``.

    ``state`` (layered only): a ``float32[frames, E]`` buffer that receives the final
    check-to-variable messages; with ``warm`` decoding resumes from the messages in it."""
    frames = llr.shape[0]
    g = _Graph.of(code)
    llr = np.ascontiguousarray(llr[:, g.order])  # the decoder's labels (see _Graph)
    signs = (1.0 - 2.0 * syndrome.astype(np.float32)).astype(np.float32)
    post = np.empty((frames, code.n_vars), dtype=np.float32)
    max_deg = int(code.check_degrees.max()) if code.n_checks else 1
    if state is not None and (not layered or state.shape != (frames, code.n_edges)):
        raise ValueError("decoder state needs the layered schedule and shape [frames, E]")
    if frames == 1 and not layered and nb.get_num_threads() > 1:
        r = np.empty(code.n_edges, dtype=np.float32)
        it, ok = _flooding_single_parallel(
            code.check_ptr,
            g.check_vars,
            g.var_ptr,
            g.var_edges,
            llr[0],
            signs[0],
            max_iterations,
            r,
            post[0],
            max_deg,
        )
        iters = np.array([it], dtype=np.int64)
        conv = np.array([ok], dtype=np.bool_)
    else:
        # one frame per work item (dynamic scheduling): a frame that fails takes up to
        # max_iterations, 5-10x a converging one; with the default static chunks the other
        # threads would idle until it ends
        with nb.parallel_chunksize(1):
            iters, conv = _decode_frames(
                code.check_ptr,
                g.check_vars,
                g.var_ptr,
                g.var_edges,
                g.deg1,
                llr,
                signs,
                max_iterations,
                layered,
                max(max_deg, 1),
                post,
                state if state is not None else np.empty((0, 0), dtype=np.float32),
                bool(warm and state is not None),
            )
    post = np.ascontiguousarray(post[:, g.inverse])  # back to the code's labels
    bits = (post < 0).astype(np.uint8)
    return bits, conv, iters, post


@nb.njit(cache=True)
def _greedy_layers(check_ptr, check_vars, n_vars):
    m = check_ptr.shape[0] - 1
    stamp = np.full(n_vars, -1, dtype=np.int64)
    layer = np.full(m, -1, dtype=np.int64)
    remaining = np.arange(m)
    n_rem = m
    n_layers = 0
    while n_rem > 0:
        k = 0
        for i in range(n_rem):
            c = remaining[i]
            free = True
            for e in range(check_ptr[c], check_ptr[c + 1]):
                if stamp[check_vars[e]] == n_layers:
                    free = False
                    break
            if free:
                layer[c] = n_layers
                for e in range(check_ptr[c], check_ptr[c + 1]):
                    stamp[check_vars[e]] = n_layers
            else:
                remaining[k] = c
                k += 1
        n_rem = k
        n_layers += 1
    return layer, n_layers


def check_layers(code: LdpcCode) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """Partition the checks into layers whose checks share no variable (first fit, in index
    order): returns ``(order, layer_ptr)`` — layer ``i`` is ``order[layer_ptr[i]:layer_ptr[i+1]]``.

    Within a layer the checks can be updated in parallel with the same result as one after
    another, so a layered decoder that walks ``order`` serially equals one that runs each layer
    in parallel (the CUDA layered schedule). For a QC code the layers are (unions of) circulant
    rows; at least ``max variable degree`` layers are needed.
    """
    layer, n_layers = _greedy_layers(code.check_ptr, code.check_vars, code.n_vars)
    order = np.argsort(layer, kind="stable").astype(np.int32)
    layer_ptr = np.zeros(int(n_layers) + 1, dtype=np.int64)
    layer_ptr[1:] = np.cumsum(np.bincount(layer, minlength=int(n_layers)))
    return order, layer_ptr
