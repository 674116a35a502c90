"""CUDA decoder backend: agrees with the reference oracle (runs only with a GPU and CuPy)."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.reconciliation import decoder_cuda
from cvqkd.reconciliation.decoder import decode
from tests.unit.test_decoder import bpsk_frames, met_like_code


def test_module_imports_without_gpu() -> None:
    # importable everywhere; gpu_present() is a plain bool (False on CPU-only machines)
    assert isinstance(decoder_cuda.gpu_present(), bool)


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
