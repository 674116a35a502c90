"""CUDA backend of the syndrome sum-product decoder: CuPy RawKernels, batches of frames.

Needs the ``[gpu]`` extra (CuPy) and an NVIDIA GPU; this module imports without CuPy, and
:func:`gpu_present` says whether the backend can run. Flooding schedule, float32 messages, one
thread per (check, frame) for check updates and per (variable, frame) for variable updates,
device arrays frame-minor (``[node][frame]``, so a warp's loads coalesce across frames), the
same update rules and clamp as :mod:`cvqkd.reconciliation.decoder` (check products by
"total product / own factor" with exact zeros counted, so punctured bits with LLR 0 are safe).
Frames stop updating as soon as their syndrome is satisfied; the host polls for "all frames
done" every few iterations. The flooding check update also forms the syndrome of the
posteriors it reads, so an iteration is two passes over the graph (checks, variables); the
layered schedule checks the syndrome in a pass of its own after each sweep.

Measured on one NVIDIA H200 (``benchmarks/gpu_check.sh``, results in the README).
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cvqkd.errors import MissingExtraError
from cvqkd.reconciliation.ldpc import LdpcCode

__all__ = ["KERNEL_SOURCE", "decode_batch", "gpu_present", "run_flooding", "run_layered"]

KERNEL_SOURCE = r"""
#define MAX_TANH (1.0f - 1.0f / 8388608.0f)

// Layouts are frame-minor so that the 32 threads of a warp (consecutive frames, same node)
// touch consecutive addresses: app/llr [n][F], r [E][F], signs [m][F]; idx = node*F + f.
// Pointers are __restrict__ (no array aliases another), so the compiler may keep several
// independent loads of a thread in flight.

__device__ inline bool split_index(long long idx, long long total, int frames, int* node,
                                   int* f)
{
    // node = idx / frames, f = idx % frames; 32-bit division whenever the grid fits in it
    if (idx >= total) return false;
    if (total <= 4294967295LL) {
        const unsigned int u = (unsigned int)idx, q = u / (unsigned int)frames;
        *node = (int)q;
        *f = (int)(u - q * (unsigned int)frames);
    } else {
        *node = (int)(idx / frames);
        *f = (int)(idx - (long long)(*node) * frames);
    }
    return true;
}

__device__ inline float check_message(float t, float prod, int zeros)
{
    // 2·atanh(∏_{j≠k} t_j): "total product / own factor", exact zeros counted
    float x;
    if (t == 0.0f) { x = (zeros == 1) ? prod : 0.0f; }
    else { x = (zeros == 0) ? prod / t : 0.0f; }
    x = fminf(fmaxf(x, -MAX_TANH), MAX_TANH);
    return logf((1.0f + x) / (1.0f - x));
}

extern "C" __global__ void syndrome_check(
    const long long* __restrict__ check_ptr, const int* __restrict__ check_vars,
    const float* __restrict__ signs, const float* __restrict__ app, int* __restrict__ unsat,
    const int* __restrict__ active, const int m, const int frames)
{
    int c, f;
    if (!split_index((long long)blockIdx.x * blockDim.x + threadIdx.x, (long long)m * frames,
                     frames, &c, &f)) return;
    if (!active[f]) return;
    int parity = signs[(long long)c * frames + f] < 0.0f;
    for (long long e = check_ptr[c]; e < check_ptr[c + 1]; ++e) {
        parity ^= (app[(long long)check_vars[e] * frames + f] < 0.0f);
    }
    if (parity) unsat[f] = 1;
}

extern "C" __global__ void check_update(
    const long long* __restrict__ check_ptr, const int* __restrict__ check_vars,
    const float* __restrict__ signs, const float* __restrict__ app, float* __restrict__ r,
    int* __restrict__ unsat, const int* __restrict__ active, const int m, const int frames)
{
    // Flooding check update fused with the syndrome check of the same posteriors: one pass
    // over the graph per iteration instead of two. Pass 1 forms the parity and the product of
    // t = tanh((A − R_old)/2); pass 2 recomputes each t from the same (cached) A and R_old
    // and writes R_new, so no t is stored.
    int c, f;
    if (!split_index((long long)blockIdx.x * blockDim.x + threadIdx.x, (long long)m * frames,
                     frames, &c, &f)) return;
    if (!active[f]) return;
    const long long e0 = check_ptr[c], e1 = check_ptr[c + 1];
    const float sign = signs[(long long)c * frames + f];
    float prod = sign;
    int parity = sign < 0.0f;
    int zeros = 0;
    for (long long e = e0; e < e1; ++e) {
        const float a = app[(long long)check_vars[e] * frames + f];
        parity ^= (a < 0.0f);
        const float t = tanhf(0.5f * (a - r[e * frames + f]));
        if (t == 0.0f) { ++zeros; } else { prod *= t; }
    }
    if (parity) unsat[f] = 1;
    for (long long e = e0; e < e1; ++e) {
        const long long re = e * frames + f;
        const float t = tanhf(0.5f * (app[(long long)check_vars[e] * frames + f] - r[re]));
        r[re] = check_message(t, prod, zeros);
    }
}

extern "C" __global__ void layer_update(
    const long long* __restrict__ check_ptr, const int* __restrict__ check_vars,
    const int* __restrict__ order, const long long start, const int size,
    const float* __restrict__ signs, float* __restrict__ app, float* __restrict__ r,
    const int* __restrict__ active, const int frames)
{
    // Layered schedule: the checks order[start : start+size] share no variable, so each
    // thread owns its variables' posteriors: Q = A − R_old, R_new = f(Q), A = Q + R_new.
    int i, f;
    if (!split_index((long long)blockIdx.x * blockDim.x + threadIdx.x, (long long)size * frames,
                     frames, &i, &f)) return;
    if (!active[f]) return;
    const int c = order[start + i];
    const long long e0 = check_ptr[c], e1 = check_ptr[c + 1];
    float prod = signs[(long long)c * frames + f];
    int zeros = 0;
    for (long long e = e0; e < e1; ++e) {
        const long long re = e * frames + f;
        const float q = app[(long long)check_vars[e] * frames + f] - r[re];
        r[re] = q;
        const float t = tanhf(0.5f * q);
        if (t == 0.0f) { ++zeros; } else { prod *= t; }
    }
    for (long long e = e0; e < e1; ++e) {
        const long long re = e * frames + f;
        const float q = r[re];
        const float rn = check_message(tanhf(0.5f * q), prod, zeros);
        r[re] = rn;
        app[(long long)check_vars[e] * frames + f] = q + rn;
    }
}

extern "C" __global__ void var_update(
    const long long* __restrict__ var_ptr, const long long* __restrict__ var_edges,
    const float* __restrict__ llr, const float* __restrict__ r, float* __restrict__ app,
    const int* __restrict__ active, const int n, const int frames)
{
    int v, f;
    if (!split_index((long long)blockIdx.x * blockDim.x + threadIdx.x, (long long)n * frames,
                     frames, &v, &f)) return;
    if (!active[f]) return;
    const long long p0 = var_ptr[v], p1 = var_ptr[v + 1];
    float acc = llr[(long long)v * frames + f];
#pragma unroll 4
    for (long long p = p0; p < p1; ++p) acc += r[var_edges[p] * frames + f];
    app[(long long)v * frames + f] = acc;
}
"""

_THREADS = 256
_POLL_EVERY = 8
_module_cache: dict[int, Any] = {}
_graph_cache: weakref.WeakKeyDictionary[LdpcCode, tuple[Any, ...]] = weakref.WeakKeyDictionary()
_layer_cache: weakref.WeakKeyDictionary[LdpcCode, tuple[Any, ...]] = weakref.WeakKeyDictionary()


def gpu_present() -> bool:
    """True when CuPy imports and at least one CUDA device is visible."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # CUDA driver missing or broken: treat as no GPU
        return False


def _kernels() -> Any:
    import cupy

    dev = int(cupy.cuda.runtime.getDevice())
    if dev not in _module_cache:
        _module_cache[dev] = cupy.RawModule(code=KERNEL_SOURCE, options=("--use_fast_math",))
    return _module_cache[dev]


def _graph(code: LdpcCode) -> tuple[Any, ...]:
    import cupy

    g = _graph_cache.get(code)
    if g is None:
        g = (
            cupy.asarray(code.check_ptr, dtype=cupy.int64),
            cupy.asarray(code.check_vars, dtype=cupy.int32),
            cupy.asarray(code.var_ptr, dtype=cupy.int64),
            cupy.asarray(code.var_edges, dtype=cupy.int64),
        )
        _graph_cache[code] = g
    return g


def decode_batch(
    code: LdpcCode,
    llr: NDArray[np.float32],
    syndrome: NDArray[np.uint8],
    *,
    max_iterations: int,
    layered: bool = False,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64], NDArray[np.float32]]:
    """Decode ``[frames, n]`` LLRs on the GPU (flooding, or layered over
    :func:`~cvqkd.reconciliation.decoder_numba.check_layers`); returns host arrays
    ``(bits, converged, iterations, posteriors)``. Accepts CuPy or numpy inputs."""
    try:
        import cupy
    except ImportError:
        raise MissingExtraError.for_extra("gpu", "cupy-cuda12x") from None
    mod = _kernels()

    def launch(name: str, grid: tuple[int], block: tuple[int], args: tuple[Any, ...]) -> None:
        mod.get_function(name)(grid, block, args)

    if layered:
        return run_layered(
            cupy, launch, _layers(code), code, llr, syndrome, max_iterations=max_iterations
        )
    return run_flooding(
        cupy, launch, _graph(code), code, llr, syndrome, max_iterations=max_iterations
    )


class _Frames:
    """Per-frame state of the host loops (device arrays): ``active`` frames are still decoded,
    ``conv`` converged, ``iters`` counts the iterations each frame was updated."""

    def __init__(self, xp: Any, frames: int) -> None:
        self.active = xp.ones(frames, dtype=xp.int32)
        self.conv = xp.zeros(frames, dtype=xp.int32)
        self.iters = xp.zeros(frames, dtype=xp.int64)
        self.unsat = xp.zeros(frames, dtype=xp.int32)

    def converged_now(self, it: int, max_iterations: int) -> bool:
        """After ``syndrome_check`` filled ``unsat``: retire the frames whose syndrome is met;
        False when the loop must end (cap reached, or no frame left at a poll)."""
        newly = self.active * (1 - self.unsat)
        self.conv += newly
        self.active -= newly
        if it == max_iterations:
            return False
        return not (it % _POLL_EVERY == 0 and not bool(self.active.any()))

    def results(
        self, xp: Any, d_app: Any
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64], NDArray[np.float32]]:
        """Host ``(bits, converged, iterations, posteriors)`` from the frame-minor ``d_app``.
        The transpose to ``[frames][n]`` and the hard decisions run on the device (a host
        transpose of 64 frames of 10^6 costs more than their decoding)."""
        to_host = getattr(xp, "asnumpy", np.asarray)
        d_post = xp.ascontiguousarray(d_app.T)
        bits = np.asarray(to_host((d_post < 0).astype(xp.uint8)), dtype=np.uint8)
        post = np.asarray(to_host(d_post), dtype=np.float32)
        conv = to_host(self.conv).astype(np.bool_)
        return bits, conv, to_host(self.iters).astype(np.int64), post


def _signs(xp: Any, syndrome: Any) -> Any:
    """Frame-minor ``±1.0`` check signs on the device. The syndrome travels as it comes
    (``uint8`` from :func:`~cvqkd.reconciliation.decoder.decode`, a quarter of the float32 it
    becomes) and is converted there."""
    d_syn = xp.asarray(syndrome)
    return xp.ascontiguousarray((1.0 - 2.0 * d_syn.astype(xp.float32)).astype(xp.float32).T)


def _layers(code: LdpcCode) -> tuple[Any, ...]:
    import cupy

    g = _layer_cache.get(code)
    if g is None:
        from cvqkd.reconciliation.decoder_numba import check_layers

        order, layer_ptr = check_layers(code)
        g = (
            cupy.asarray(code.check_ptr, dtype=cupy.int64),
            cupy.asarray(code.check_vars, dtype=cupy.int32),
            cupy.asarray(order, dtype=cupy.int32),
            layer_ptr,
        )
        _layer_cache[code] = g
    return g


def run_layered(
    xp: Any,
    launch: Any,
    graph: tuple[Any, ...],
    code: LdpcCode,
    llr: Any,
    syndrome: Any,
    *,
    max_iterations: int,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64], NDArray[np.float32]]:
    """Layered host loop (one ``layer_update`` launch per layer of
    :func:`~cvqkd.reconciliation.decoder_numba.check_layers`); ``graph`` is
    ``(check_ptr, check_vars, order, layer_ptr)`` with ``layer_ptr`` a host array. Generic over
    ``xp``/``launch`` like :func:`run_flooding`."""
    check_ptr, check_vars, order, layer_ptr = graph
    frames = int(llr.shape[0])
    m = code.n_checks
    d_app = xp.ascontiguousarray(xp.asarray(llr, dtype=xp.float32).T)
    d_signs = _signs(xp, syndrome)
    d_r = xp.zeros((code.n_edges, frames), dtype=xp.float32)
    st = _Frames(xp, frames)
    active, unsat = st.active, st.unsat
    grid_c = ((m * frames + _THREADS - 1) // _THREADS,)
    block = (_THREADS,)
    layers = [
        (int(layer_ptr[i]), int(layer_ptr[i + 1] - layer_ptr[i])) for i in range(len(layer_ptr) - 1)
    ]
    i32, i64 = np.int32, np.int64
    it = 0
    while True:
        unsat.fill(0)
        if m:
            launch(
                "syndrome_check",
                grid_c,
                block,
                (check_ptr, check_vars, d_signs, d_app, unsat, active, i32(m), i32(frames)),
            )
        if not st.converged_now(it, max_iterations):
            break
        for start, size in layers:
            launch(
                "layer_update",
                ((size * frames + _THREADS - 1) // _THREADS,),
                block,
                (
                    check_ptr,
                    check_vars,
                    order,
                    i64(start),
                    i32(size),
                    d_signs,
                    d_app,
                    d_r,
                    active,
                    i32(frames),
                ),
            )
        st.iters += active
        it += 1
    return st.results(xp, d_app)


def run_flooding(
    xp: Any,
    launch: Any,
    graph: tuple[Any, ...],
    code: LdpcCode,
    llr: Any,
    syndrome: Any,
    *,
    max_iterations: int,
) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.int64], NDArray[np.float32]]:
    """The host loop, generic over the array module ``xp`` and the kernel ``launch(name, grid,
    block, args)`` — CuPy and RawKernels here; numpy and a CPU build of :data:`KERNEL_SOURCE` in the
    tests, so the kernels are checked against the reference decoder without a GPU."""
    check_ptr, check_vars, var_ptr, var_edges = graph
    frames = int(llr.shape[0])
    n, m, n_edges = code.n_vars, code.n_checks, code.n_edges
    # frame-minor device layouts (see the kernel source)
    d_llr = xp.ascontiguousarray(xp.asarray(llr, dtype=xp.float32).T)
    d_signs = _signs(xp, syndrome)
    d_app = d_llr.copy()
    d_r = xp.zeros((n_edges, frames), dtype=xp.float32)
    st = _Frames(xp, frames)
    active, unsat = st.active, st.unsat
    grid_c = ((m * frames + _THREADS - 1) // _THREADS,)
    grid_v = ((n * frames + _THREADS - 1) // _THREADS,)
    block = (_THREADS,)
    i32 = np.int32
    it = 0
    while True:
        unsat.fill(0)
        if m and it == max_iterations:  # last look: the syndrome only, no update
            launch(
                "syndrome_check",
                grid_c,
                block,
                (check_ptr, check_vars, d_signs, d_app, unsat, active, i32(m), i32(frames)),
            )
        elif m:  # syndrome of the current posteriors and the check messages, in one pass
            launch(
                "check_update",
                grid_c,
                block,
                (check_ptr, check_vars, d_signs, d_app, d_r, unsat, active, i32(m), i32(frames)),
            )
        # frames whose syndrome is met retire before the variable update, so their
        # posteriors stay those that met it (the extra check messages are never read)
        if not st.converged_now(it, max_iterations):
            break
        launch(
            "var_update",
            grid_v,
            block,
            (var_ptr, var_edges, d_llr, d_r, d_app, active, i32(n), i32(frames)),
        )
        st.iters += active
        it += 1
    return st.results(xp, d_app)
