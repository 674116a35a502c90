"""CUDA decoder backend: agrees with the reference oracle.

Two levels: (1) without a GPU, the CUDA C kernel source is compiled for the CPU with a small
shim (blockIdx/threadIdx as loop variables) and driven by the backend's own host loop over
numpy arrays — this checks the kernels' index arithmetic, layouts and update rules and the
host logic; (2) with a GPU and CuPy (marked ``gpu``), the real thing.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cvqkd.reconciliation import decoder_cuda
from cvqkd.reconciliation.decoder import decode, decode_reference
from tests.unit.test_decoder import bpsk_frames, met_like_code


def test_module_imports_without_gpu() -> None:
    # importable everywhere; gpu_present() is a plain bool (False on CPU-only machines)
    assert isinstance(decoder_cuda.gpu_present(), bool)


_SHIM = r"""
#include <math.h>
struct Dim { long long x; };
static Dim blockIdx, blockDim, threadIdx;
#define __global__
#define __device__
%s
#define LOOP(call) blockDim.x = bs; \
    for (long long b = 0; b < nb; ++b) { blockIdx.x = b; \
        for (long long t = 0; t < bs; ++t) { threadIdx.x = t; call; } }
extern "C" void run_syndrome_check(long long nb, long long bs, const long long* cp,
    const int* cv, const float* sg, const float* app, int* unsat, const int* act, int m, int f)
{ LOOP(syndrome_check(cp, cv, sg, app, unsat, act, m, f)) }
extern "C" void run_check_update(long long nb, long long bs, const long long* cp,
    const int* cv, const float* sg, const float* app, float* r, int* unsat, const int* act,
    int m, int f)
{ LOOP(check_update(cp, cv, sg, app, r, unsat, act, m, f)) }
extern "C" void run_layer_update(long long nb, long long bs, const long long* cp,
    const int* cv, const int* order, long long start, int size, const float* sg, float* app,
    float* r, const int* act, int f)
{ LOOP(layer_update(cp, cv, order, start, size, sg, app, r, act, f)) }
extern "C" void run_var_update(long long nb, long long bs, const long long* vp,
    const long long* ve, const float* llr, const float* r, float* app, const int* act, int n,
    int f)
{ LOOP(var_update(vp, ve, llr, r, app, act, n, f)) }
"""


@pytest.fixture(scope="module")
def emulated_launch(tmp_path_factory):  # type: ignore[no-untyped-def]
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("needs g++ to build the CPU emulation of the CUDA kernels")
    d: Path = tmp_path_factory.mktemp("cuda_emu")
    src = d / "kernels.cpp"
    src.write_text(_SHIM % decoder_cuda.KERNEL_SOURCE)
    lib_path = d / "kernels.so"
    subprocess.run([gxx, "-O2", "-shared", "-fPIC", "-o", str(lib_path), str(src)], check=True)
    lib = ctypes.CDLL(str(lib_path))

    def launch(name: str, grid: tuple[int], block: tuple[int], args: tuple[Any, ...]) -> None:
        cargs: list[Any] = [ctypes.c_longlong(grid[0]), ctypes.c_longlong(block[0])]
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            elif isinstance(a, np.int64):
                cargs.append(ctypes.c_longlong(int(a)))
            else:
                assert isinstance(a, np.int32)
                cargs.append(ctypes.c_int(int(a)))
        getattr(lib, "run_" + name)(*cargs)

    return launch


def _emulated(code, llr, syn, max_iterations, launch):  # type: ignore[no-untyped-def]
    graph = (code.check_ptr, code.check_vars, code.var_ptr, code.var_edges)
    return decoder_cuda.run_flooding(
        np, launch, graph, code, llr, syn, max_iterations=max_iterations
    )


def test_kernels_match_reference_in_cpu_emulation(emulated_launch) -> None:  # type: ignore[no-untyped-def]
    code = met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )
    rng = np.random.default_rng(33)
    _, llr, syn = bpsk_frames(code, frames=5, snr=0.25, rng=rng)
    llr[:, :5] = 0.0  # punctured bits: the zero-factor path of the check kernel
    ref = decode(code, llr, syn, max_iterations=4, backend="reference", schedule="flooding")
    bits, conv, its, post = _emulated(code, llr, syn, 4, emulated_launch)
    assert np.array_equal(its, ref.iterations) and np.array_equal(conv, ref.converged)
    # float32 tanhf/logf vs float64: same tolerance as the numba comparison (test_decoder.py)
    np.testing.assert_allclose(post, ref.posterior_llr, rtol=1e-3, atol=1e-3)
    assert np.array_equal(bits, ref.bits)


def test_emulated_batch_converges_per_frame(emulated_launch) -> None:  # type: ignore[no-untyped-def]
    code = met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )
    rng = np.random.default_rng(34)
    bits, llr, syn = bpsk_frames(code, frames=6, snr=0.5, rng=rng)
    llr[0] = np.where(bits[0] == 0, 5.0, -5.0)  # frame 0 converges at iteration 0
    syn[5] ^= 1  # frame 5: complemented syndrome, far from the channel word: no convergence
    ref = decode(code, llr, syn, max_iterations=60, backend="reference", schedule="flooding")
    out_bits, conv, its, _ = _emulated(code, llr, syn, 60, emulated_launch)
    assert its[0] == 0 and conv[:5].all() and not conv[5] and its[5] == 60
    assert np.array_equal(its, ref.iterations)
    assert np.array_equal(out_bits[:5], bits[:5])


def test_layered_kernel_matches_reference_in_cpu_emulation(emulated_launch) -> None:  # type: ignore[no-untyped-def]
    from cvqkd.reconciliation.decoder_numba import check_layers

    code = met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )
    order, layer_ptr = check_layers(code)
    rng = np.random.default_rng(35)
    graph = (code.check_ptr, code.check_vars, order, layer_ptr)
    # SNR 0.3 for 3 iterations (messages unsaturated, float32 comparable to float64 at 1e-3);
    # SNR 0.45 to convergence (same iterations and decisions)
    for snr, its in ((0.3, 3), (0.45, 60)):
        _, llr, syn = bpsk_frames(code, frames=3, snr=snr, rng=rng)
        llr[:, :5] = 0.0
        ref = decode_reference(code, llr, syn, max_iterations=its, check_order=order)
        out_bits, conv, iters, post = decoder_cuda.run_layered(
            np, emulated_launch, graph, code, llr, syn, max_iterations=its
        )
        assert np.array_equal(iters, ref.iterations) and np.array_equal(conv, ref.converged)
        if its == 3:
            np.testing.assert_allclose(post, ref.posterior_llr, rtol=1e-3, atol=1e-3)
        else:
            assert conv.all()
        assert np.array_equal(out_bits, ref.bits)


pytestmark_gpu = pytest.mark.skipif(not decoder_cuda.gpu_present(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@pytestmark_gpu
def test_cuda_matches_reference_flooding() -> None:
    code = met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )
    rng = np.random.default_rng(31)
    _, llr, syn = bpsk_frames(code, frames=5, snr=0.25, rng=rng)
    llr[:, :5] = 0.0  # punctured bits exercise the zero-factor path of the check kernel
    ref = decode(code, llr, syn, max_iterations=4, backend="reference", schedule="flooding")
    gpu = decode(code, llr, syn, max_iterations=4, backend="cuda")
    assert np.array_equal(ref.iterations, gpu.iterations)
    # same float32-vs-float64 tolerance as the numba comparison (see test_decoder.py)
    np.testing.assert_allclose(gpu.posterior_llr, ref.posterior_llr, rtol=1e-3, atol=1e-3)
    assert np.array_equal(gpu.bits, ref.bits)


@pytest.mark.gpu
@pytestmark_gpu
def test_cuda_batch_converges_like_reference() -> None:
    code = met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )
    rng = np.random.default_rng(32)
    bits, llr, syn = bpsk_frames(code, frames=9, snr=0.5, rng=rng)
    ref = decode(code, llr, syn, max_iterations=100, backend="reference", schedule="flooding")
    gpu = decode(code, llr, syn, max_iterations=100, backend="cuda")
    assert gpu.converged.all() and ref.converged.all()
    assert np.array_equal(gpu.iterations, ref.iterations)
    assert np.array_equal(gpu.bits, bits)


@pytest.mark.gpu
@pytestmark_gpu
def test_cuda_layered_matches_reference() -> None:
    from cvqkd.reconciliation.decoder_numba import check_layers

    code = met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )
    order, _ = check_layers(code)
    rng = np.random.default_rng(36)
    bits, llr, syn = bpsk_frames(code, frames=7, snr=0.45, rng=rng)
    ref = decode_reference(code, llr, syn, max_iterations=60, check_order=order)
    gpu = decode(code, llr, syn, max_iterations=60, backend="cuda", schedule="layered")
    assert gpu.converged.all() and np.array_equal(gpu.iterations, ref.iterations)
    assert np.array_equal(gpu.bits, bits)
