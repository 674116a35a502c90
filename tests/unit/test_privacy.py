"""Toeplitz hashing (exactness, linearity, tiling) and the key-length accounting."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cvqkd.errors import ConfigError, SecurityAbort
from cvqkd.privacy import (
    FLOAT64_MAX_FFT_LEN,
    ROUNDING_GUARD,
    SecurityParameters,
    float64_error_bound,
    key_length,
    min_symbols_for_key,
    plan_tiles,
    random_seed,
    seed_bits_needed,
    toeplitz_hash,
    toeplitz_hash_reference,
)
from cvqkd.randomness import SecretRandom


def _bits(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.packbits(rng.integers(0, 2, n, dtype=np.uint8))


def _sr(rng: np.random.Generator) -> SecretRandom:
    """Deterministic key-material randomness for a test, seeded from the test's rng."""
    return SecretRandom.insecure_for_tests(int(rng.integers(0, 2**63)))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), frac=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_equals_dense_matrix_product(n: int, frac: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ell = int(frac * n)
    key = _bits(rng, n)
    s = random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    got = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy")
    want = toeplitz_hash_reference(key, seed=s, n_bits=n, out_bits=ell)
    assert np.array_equal(got, want)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 2000), seed=st.integers(0, 2**32 - 1))
def test_hash_is_linear_over_gf2(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ell = max(1, n // 3)
    s = random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    x, y = _bits(rng, n), _bits(rng, n)

    def h(k: np.ndarray) -> np.ndarray:
        return toeplitz_hash(k, seed=s, n_bits=n, out_bits=ell, backend="numpy")

    assert np.array_equal(h(x ^ y), h(x) ^ h(y))


def test_dense_reference_by_hand() -> None:
    # T = [[s2 s1 s0], [s3 s2 s1]] for n = 3, ℓ = 2, seed s0..s3 = 1,0,1,1; x = 1,1,0.
    seed = np.packbits(np.array([1, 0, 1, 1], dtype=np.uint8))
    key = np.packbits(np.array([1, 1, 0], dtype=np.uint8))
    # row 0: s2*1 + s1*1 + s0*0 = 1 + 0 = 1; row 1: s3 + s2 = 2 → 0
    out = toeplitz_hash(key, seed=seed, n_bits=3, out_bits=2, backend="numpy")
    assert np.unpackbits(out, count=2).tolist() == [1, 0]
    assert np.array_equal(out, toeplitz_hash_reference(key, seed=seed, n_bits=3, out_bits=2))


@pytest.mark.parametrize(("n", "ell", "max_len"), [(257, 200, 64), (1000, 999, 256), (777, 5, 16)])
def test_tiled_path_equals_dense(n: int, ell: int, max_len: int) -> None:
    rng = np.random.default_rng(n)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    tiled = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, max_fft_len=max_len)
    assert np.array_equal(tiled, toeplitz_hash_reference(key, seed=s, n_bits=n, out_bits=ell))


def test_exact_across_single_and_tiled_paths_large() -> None:
    # 2^21 input bits: one float64 transform of 2^22 vs tiles of 2^18; both must agree bit for bit.
    n, ell = 2**21, 2**20
    rng = np.random.default_rng(7)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    single = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy")
    tiled = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy", max_fft_len=2**18)
    assert np.array_equal(single, tiled)


def test_error_bound_covers_the_limit_we_rely_on() -> None:
    # At the largest single transform (2^27) with the densest inputs the proven bound must stay
    # far below the rounding guard (1/4) and 1/2; it grows with the length.
    n = FLOAT64_MAX_FFT_LEN // 2
    bound = float64_error_bound(
        n_bits=n, seed_bits=FLOAT64_MAX_FFT_LEN, fft_len=FLOAT64_MAX_FFT_LEN
    )
    assert bound < 1e-4 < ROUNDING_GUARD
    smaller = float64_error_bound(n_bits=n // 2, seed_bits=n, fft_len=n)
    assert smaller < bound


def test_measured_error_is_within_the_bound() -> None:
    import scipy.fft

    n = ell = 2**18
    length = 2**20
    rng = np.random.default_rng(3)
    x = rng.integers(0, 2, n).astype(float)
    s = rng.integers(0, 2, n + ell - 1).astype(float)
    conv = scipy.fft.irfft(scipy.fft.rfft(x, length) * scipy.fft.rfft(s, length), length)
    exact = np.convolve(x.astype(np.int64)[:4096], s.astype(np.int64)[:4096])[:4096]
    # the first 4096 values only depend on the first 4096 entries of both inputs
    assert np.array_equal(np.rint(conv[:4096]).astype(np.int64), exact)
    err = np.abs(conv - np.rint(conv)).max()
    assert err <= float64_error_bound(n_bits=n, seed_bits=n + ell - 1, fft_len=length)


def test_output_padding_is_zero_and_length_is_exact() -> None:
    rng = np.random.default_rng(0)
    out = toeplitz_hash(
        _bits(rng, 100),
        seed=random_seed(n_bits=100, out_bits=13, randomness=_sr(rng)),
        n_bits=100,
        out_bits=13,
    )
    assert out.size == 2
    assert out[-1] & 0b0000_0111 == 0
    assert seed_bits_needed(n_bits=100, out_bits=13) == 112


def test_bad_arguments_raise_config_error() -> None:
    rng = np.random.default_rng(0)
    key = _bits(rng, 64)
    with pytest.raises(ConfigError, match="out_bits"):
        toeplitz_hash(
            key,
            seed=random_seed(n_bits=64, out_bits=64, randomness=_sr(rng)),
            n_bits=64,
            out_bits=65,
        )
    with pytest.raises(ConfigError, match="seed holds"):
        toeplitz_hash(key, seed=np.zeros(2, np.uint8), n_bits=64, out_bits=10)


# ------------------------------------------------------------------ key length accounting


def _kl(**kw):  # type: ignore[no-untyped-def]
    args = dict(
        n_symbols_total=10_000_000,
        n_symbols_disclosed=2_000_000,
        raw_bits_per_symbol=1.0,
        holevo_bits_per_symbol=0.02,
        syndrome_bits=7_900_000,
        verification_hash_bits=64,
    )
    args.update(kw)
    return key_length(**args)


def test_asymptotic_length_is_raw_minus_eve_minus_leak() -> None:
    k = _kl(level="asymptotic")
    assert k.n_key_symbols == 8_000_000
    assert k.length_bits == math.floor(8_000_000 - 8_000_000 * 0.02 - 7_900_000 - 64)
    assert not k.finite_size_secure


def test_every_leaked_bit_costs_exactly_one_output_bit() -> None:
    base = _kl(level="finite-size").length_bits
    assert _kl(level="finite-size", syndrome_bits=7_900_001).length_bits == base - 1
    assert _kl(level="finite-size", verification_hash_bits=96).length_bits == base - 32


def test_finite_size_terms_follow_leverrier_2010() -> None:
    sec = SecurityParameters(eps_smooth=1e-10, eps_pa=1e-10, eps_pe=1e-10)
    k = _kl(level="finite-size", security=sec)
    n = 8_000_000
    want = n - 0.02 * n - 7_900_000 - 64 - 7 * math.sqrt(n * math.log2(2e10)) - 2 * math.log2(1e10)
    assert k.length_bits == math.floor(want)
    assert k.finite_size_secure
    assert k.epsilon_total == pytest.approx(3e-10 + 2.0**-64)


def test_composable_terms_follow_mountogiannakis_2022() -> None:
    k = _kl(level="composable", frame_success_probability=0.9)
    n, es, eh, p = 8_000_000, 1e-10, 1e-10, 0.9
    d_aep = 4 * math.log2(2**0.5 + 2) * math.sqrt(math.log2(18 / (p**2 * es**4)))
    theta = math.log2(p * (1 - es**2 / 3)) + 2 * math.log2(math.sqrt(2) * eh)
    want = n - 0.02 * n - 7_900_000 - 64 - math.sqrt(n) * d_aep + theta
    assert k.length_bits == math.floor(want)


def test_non_positive_length_aborts_with_reason() -> None:
    k = _kl(
        level="finite-size",
        n_symbols_total=100_000,
        n_symbols_disclosed=20_000,
        syndrome_bits=79_000,
    )
    assert k.length_bits <= 0
    with pytest.raises(SecurityAbort, match=r"aep_smoothing|syndrome"):
        k.require_positive()


def test_min_symbols_for_key_is_the_threshold() -> None:
    kw = dict(
        disclosed_fraction=0.5,
        raw_bits_per_symbol=1.0,
        holevo_bits_per_symbol=0.01,
        leak_bits_per_key_symbol=0.98,
        verification_hash_bits=64,
    )
    n_min = min_symbols_for_key(**kw)
    assert n_min is not None

    def ell(total: int) -> int:
        m = round(total * 0.5)
        return key_length(
            n_symbols_total=total,
            n_symbols_disclosed=m,
            raw_bits_per_symbol=1.0,
            holevo_bits_per_symbol=0.01,
            syndrome_bits=math.ceil((total - m) * 0.98),
            verification_hash_bits=64,
        ).length_bits

    assert ell(n_min) > 0
    assert ell(int(n_min * 0.998)) <= 0
    # a key rate that is negative per symbol never becomes positive
    kw["holevo_bits_per_symbol"] = 0.03
    assert min_symbols_for_key(**kw, max_symbols=2**40) is None


@pytest.mark.parametrize(
    ("n", "ell", "fft_len"),
    [(1000, 10, 16), (1000, 100, 128), (999, 1, 2), (4096, 300, 512), (50, 50, 128)],
)
def test_input_tiled_path_equals_dense(n: int, ell: int, fft_len: int) -> None:
    # tiles of b = L − ℓ + 1 input bits, the first one front-padded, spectra summed
    rng = np.random.default_rng(n + ell)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    got = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy", fft_len=fft_len)
    assert np.array_equal(got, toeplitz_hash_reference(key, seed=s, n_bits=n, out_bits=ell))


def test_backends_agree_and_tile_plans_agree() -> None:
    n, ell = 2**20, 2**14
    rng = np.random.default_rng(12)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    ref = toeplitz_hash(
        key, seed=s, n_bits=n, out_bits=ell, backend="numpy", fft_len=2**21
    )  # one transform
    assert plan_tiles(n_bits=n, out_bits=ell) < 2**21  # the planner tiles this product
    backends = ["numpy", "scipy"]
    try:
        import pyfftw  # noqa: F401

        backends.append("fftw")
    except ImportError:
        pass
    for be in backends:
        assert np.array_equal(toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend=be), ref)


@pytest.mark.gpu
@pytest.mark.skipif(importlib.util.find_spec("cupy") is None, reason="needs CuPy and a CUDA GPU")
def test_cupy_backend_equals_cpu() -> None:
    n, ell = 2**22, 2**21
    rng = np.random.default_rng(5)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    cpu = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy")
    assert np.array_equal(toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="cupy"), cpu)


# ---------------------------- agreement with the independent key-rate engine (cvqkd.keyrate)

_LINK = dict(
    transmittance=0.1,
    excess_noise_snu=0.01,
    modulation_variance_snu=4.0,
    detector_efficiency=0.6,
    electronic_noise_snu=0.05,
    detection="homodyne",
)


def _block_terms(big_n: float, frac: float, beta: float) -> tuple[int, int, int, float]:
    """(N, m, syndrome bits, χ_worst) so that raw − leak = n β I_AB exactly (up to 1 bit)."""
    from cvqkd.keyrate import finite_size
    from cvqkd.keyrate.gaussian import holevo_bits, mutual_information_bits

    n_total = int(big_n)
    m = round(frac * n_total)
    n = n_total - m
    info = float(mutual_information_bits(**_LINK))
    t_exp, s2 = finite_size.expected_estimates(
        transmittance=_LINK["transmittance"],
        excess_noise_snu=_LINK["excess_noise_snu"],
        detector_efficiency=_LINK["detector_efficiency"],
        electronic_noise_snu=_LINK["electronic_noise_snu"],
    )
    worst = finite_size.worst_case_parameters(
        t_hat=t_exp,
        sigma_sq_hat=s2,
        estimation_symbols=m,
        modulation_variance_snu=4.0,
        detector_efficiency=0.6,
        electronic_noise_snu=0.05,
        epsilon_pe=1e-10,
    )
    kw = {k: v for k, v in _LINK.items() if k not in ("transmittance", "excess_noise_snu")}
    chi = float(
        holevo_bits(
            transmittance=worst.transmittance_min, excess_noise_snu=worst.excess_noise_max_snu, **kw
        )
    )
    syndrome = round(n * (1.0 - beta * info))
    return n_total, m, syndrome, chi


def test_finite_size_length_agrees_with_keyrate_finite_size_gg02() -> None:
    # Two implementations of LGG 2010: the per-block length here, the rate in keyrate. With the
    # leak set to n(1 − βI_AB) they must agree to the rounding of ℓ and the syndrome (≤ 2 bits).
    from cvqkd.keyrate import finite_size

    big_n, frac, beta = 1e10, 0.5, 0.95
    n_total, m, syndrome, chi = _block_terms(big_n, frac, beta)
    ours = key_length(
        n_symbols_total=n_total,
        n_symbols_disclosed=m,
        raw_bits_per_symbol=1.0,
        holevo_bits_per_symbol=chi,
        syndrome_bits=syndrome,
        verification_hash_bits=0,
        level="finite-size",
    )
    sp = finite_size.SecurityParameters.uniform(1e-10)
    theirs = finite_size.finite_size_gg02(
        block_size=big_n,
        estimation_fraction=frac,
        security=sp,
        reconciliation_efficiency=beta,
        **_LINK,
    )
    assert ours.length_bits > 0
    assert ours.length_bits == pytest.approx(float(theirs.key_rate_bits_per_symbol) * big_n, abs=2)


def test_composable_length_agrees_with_keyrate_composable_gg02() -> None:
    from cvqkd.keyrate import finite_size
    from cvqkd.keyrate.composable import composable_gg02

    big_n, frac, beta, p_ec = 1e10, 0.5, 0.95, 0.9
    n_total, m, syndrome, chi = _block_terms(big_n, frac, beta)
    ours = key_length(
        n_symbols_total=n_total,
        n_symbols_disclosed=m,
        raw_bits_per_symbol=1.0,
        holevo_bits_per_symbol=chi,
        syndrome_bits=syndrome,
        verification_hash_bits=0,
        level="composable",
        frame_success_probability=p_ec,
        discretisation_bits=1,
    )
    sp = finite_size.SecurityParameters.uniform(1e-10)
    theirs = composable_gg02(
        block_size=big_n,
        estimation_fraction=frac,
        security=sp,
        reconciliation_efficiency=beta,
        frame_success_probability=p_ec,
        discretisation_bits=1,
        **_LINK,
    )
    # keyrate's rate is per sent symbol and averages over frames (× p_EC); ours is one block
    # that passed, so ℓ·p_EC/N is the same quantity.
    assert ours.length_bits > 0
    assert ours.length_bits * p_ec == pytest.approx(
        float(theirs.key_rate_bits_per_symbol) * big_n, abs=2
    )


def test_rounding_guard_refuses_inexact_values() -> None:
    from cvqkd.privacy import _round_bits

    ok = np.array([0.0, 1.0 + 1e-9, 2.0 - 1e-7, 7.0, 12.0000001])
    assert _round_bits(np, ok).tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(ArithmeticError, match="not exact"):
        _round_bits(np, np.array([1.0, 2.3]))


def test_gpu_backend_without_cupy_gives_an_install_hint() -> None:
    from cvqkd.errors import MissingExtraError

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    rng = np.random.default_rng(0)
    with pytest.raises(MissingExtraError, match=r"cvqkd\[gpu\]"):
        toeplitz_hash(
            _bits(rng, 64),
            seed=random_seed(n_bits=64, out_bits=8, randomness=_sr(rng)),
            n_bits=64,
            out_bits=8,
            backend="cupy",
        )


@pytest.mark.parametrize(("n", "ell"), [(1, 1), (1, 0), (2, 2), (3, 1)])
def test_tiny_blocks(n: int, ell: int) -> None:
    rng = np.random.default_rng(n)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    got = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell)
    assert np.array_equal(got, toeplitz_hash_reference(key, seed=s, n_bits=n, out_bits=ell))


@pytest.mark.slow
def test_largest_block_two_tilings_agree() -> None:
    # 2^27 input bits (the supported maximum; ≈ 3.5 GB, ≈ 1 min on 2 cores): two different
    # input tilings (2^23- and 2^24-point transforms) must give the same bits.
    n, ell = 2**27, 2**20
    rng = np.random.default_rng(27)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    a = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy", fft_len=2**23)
    b = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy", fft_len=2**24)
    assert np.array_equal(a, b)


# ---------------------------- four-step engine (the default scipy/auto backend)


def test_four_step_shape_is_the_smallest_fast_length() -> None:
    # exact identity against a brute-force search over c·2^k, c ∈ {1, 3, 5}
    from cvqkd.privacy import four_step_shape

    fast = sorted({c << k for c in (1, 3, 5) for k in range(2, 40)})
    for size in [*range(1, 3000), 3 * 2**23 - 1, 2**24 + 2**20 - 1, 2**27]:
        big_n, n1, n2 = four_step_shape(size)
        assert big_n == min(f for f in fast if f >= size)
        assert n1 * n2 == big_n and n1 & (n1 - 1) == 0 and n2 <= 5 * n1
    assert four_step_shape(3 * 2**23 - 1) == (3 * 2**23, 4096, 6144)  # n = 2^24, ℓ = n/2


@settings(max_examples=80, deadline=None)
@given(
    n=st.integers(1, 400),
    frac=st.floats(0.0, 1.0),
    n1=st.integers(2, 24),
    spare=st.integers(0, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_four_step_equals_dense_matrix_product(
    n: int, frac: float, n1: int, spare: int, seed: int
) -> None:
    # any split N = N1·N2 ≥ n + ℓ − 1 (odd and even N1, N2; wrap-around right at the window)
    from cvqkd.privacy import _hash_four_step

    rng = np.random.default_rng(seed)
    ell = max(1, int(frac * n))
    size = n + ell - 1
    n2 = max(2, -(-(size + spare) // n1))
    x = rng.integers(0, 2, n, dtype=np.uint8)
    s = rng.integers(0, 2, size, dtype=np.uint8)
    got = np.packbits(_hash_four_step(x, s, n, ell, (n1 * n2, n1, n2)))
    want = toeplitz_hash_reference(np.packbits(x), seed=np.packbits(s), n_bits=n, out_bits=ell)
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    ("n", "ell"), [(2**20, 2**19), (2**20 + 12345, 2**18 + 7), (2**20 - 49, 50)]
)
def test_four_step_equals_power_of_two_numpy_path(n: int, ell: int) -> None:
    # lengths 3·2^19, 5·2^18 and 2^20 against the independent np.fft power-of-two path
    from cvqkd.privacy import FOUR_STEP_MIN_LEN

    assert n + ell - 1 >= FOUR_STEP_MIN_LEN  # the default backend takes the four-step engine
    rng = np.random.default_rng(n)
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    ref = toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy")
    assert np.array_equal(toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell), ref)


def test_four_step_concurrent_callers_get_their_own_buffers() -> None:
    # Alice and Bob hash in two threads: one gets the kept scratch buffers, the other fresh ones
    import concurrent.futures

    n, ell = 2**19 + 1, 2**19  # 2^20 points: the four-step engine
    rng = np.random.default_rng(99)
    jobs = []
    for _ in range(4):
        key = _bits(rng, n)
        s = random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
        jobs.append((key, s, toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell, backend="numpy")))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        outs = list(
            pool.map(lambda j: toeplitz_hash(j[0], seed=j[1], n_bits=n, out_bits=ell), jobs)
        )
    for (_, _, want), got in zip(jobs, outs, strict=True):
        assert np.array_equal(got, want)


def test_four_step_error_bound_and_guard_are_wired(monkeypatch: pytest.MonkeyPatch) -> None:
    import cvqkd.privacy as privacy

    # the four-step bound (2 extra stages, 4ε twiddles) at the largest length it runs at
    bound = float64_error_bound(
        n_bits=2**26,
        seed_bits=2**27,
        fft_len=2**27,
        twiddle_error=privacy.FOUR_STEP_TWIDDLE_ERROR,
        extra_stages=2,
    )
    assert bound < 1e-5 < ROUNDING_GUARD
    rng = np.random.default_rng(1)
    n, ell = 2**19 + 1, 2**19  # 2^20 points: the four-step engine
    key, s = _bits(rng, n), random_seed(n_bits=n, out_bits=ell, randomness=_sr(rng))
    with monkeypatch.context() as mp:  # a worse twiddle error: the a-priori bound refuses
        mp.setattr(privacy, "FOUR_STEP_TWIDDLE_ERROR", 0.1)
        with pytest.raises(ArithmeticError, match="error bound"):
            toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell)
    with monkeypatch.context() as mp:  # every value "inexact": the a-posteriori guard refuses
        mp.setattr(privacy, "ROUNDING_GUARD", -1.0)
        with pytest.raises(ArithmeticError, match="not exact"):
            toeplitz_hash(key, seed=s, n_bits=n, out_bits=ell)


def test_four_step_twiddles_are_within_the_counted_error() -> None:
    # every ω^m from the two tables against the direct long-double evaluation of exp(−2πi m/N)
    # (64-bit mantissa: its own error, ~2^-63, is negligible next to 4ε = 2^-51)
    from cvqkd.privacy import FOUR_STEP_TWIDDLE_ERROR, _twiddle_tables

    n = 3 * 2**23
    tlo, thi, shift = _twiddle_tables(n)
    m = np.random.default_rng(0).integers(0, n, 200_000)
    w = thi[m >> shift] * tlo[m & ((1 << shift) - 1)]
    ang = 2 * np.longdouble("3.14159265358979323846264338327950288") * m / np.longdouble(n)
    err = np.hypot(
        w.real.astype(np.longdouble) - np.cos(ang), w.imag.astype(np.longdouble) + np.sin(ang)
    )
    assert float(err.max()) <= FOUR_STEP_TWIDDLE_ERROR


def test_four_step_measured_error_is_within_its_bound() -> None:
    # random 0/1 inputs at 3·2^20 points (paired last stage): the rounding error measured in the
    # window (here 0: pocketfft's error stays below the ulp of values ≈ 5e5) within the bound
    from cvqkd.privacy import FOUR_STEP_TWIDDLE_ERROR, _four_step_core, four_step_shape

    n, ell = 2**21, 2**20
    shape = four_step_shape(n + ell - 1)
    assert shape == (3 * 2**20, 1024, 3072)
    rng = np.random.default_rng(21)
    x = rng.integers(0, 2, n, dtype=np.uint8)
    s = rng.integers(0, 2, n + ell - 1, dtype=np.uint8)
    bufs = [np.empty(shape[0], dtype=np.complex128) for _ in range(2)]
    _, worst = _four_step_core(x, s, n, ell, shape, 2, *bufs)
    bound = float64_error_bound(
        n_bits=n,
        seed_bits=n + ell - 1,
        fft_len=shape[0],
        twiddle_error=FOUR_STEP_TWIDDLE_ERROR,
        extra_stages=2,
    )
    assert worst <= bound < ROUNDING_GUARD


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 2000), n1=st.integers(2, 40), seed=st.integers(0, 2**32 - 1))
def test_four_step_is_linear_over_gf2(n: int, n1: int, seed: int) -> None:
    from cvqkd.privacy import _hash_four_step

    rng = np.random.default_rng(seed)
    ell = max(1, n // 3)
    n2 = -(-(n + ell - 1) // n1)
    s = rng.integers(0, 2, n + ell - 1, dtype=np.uint8)
    x, y = rng.integers(0, 2, (2, n), dtype=np.uint8)

    def h(k: np.ndarray) -> np.ndarray:
        return _hash_four_step(k, s, n, ell, (n1 * n2, n1, n2))

    assert np.array_equal(h(x ^ y), h(x) ^ h(y))
