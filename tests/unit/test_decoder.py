"""Tests for the syndrome sum-product decoder: backends agree with the reference oracle."""

from __future__ import annotations

import numpy as np
import pytest

from cvqkd.errors import ConfigError, DataFormatError
from cvqkd.reconciliation.decoder import MAX_TANH, available_backends, decode, decode_reference
from cvqkd.reconciliation.ldpc import LdpcCode, random_regular


def met_like_code(
    *, n_core: int, n_a: int, n_b: int, deg_a: int, deg_b: int, rng: np.random.Generator
) -> LdpcCode:
    """A low-rate multi-edge-type-like code H = [[A, 0], [B, I]] built at random (tests only).

    Core variables 0..n_core-1; A has n_a checks of degree deg_a on the core; B has n_b checks
    of degree deg_b on the core, each with its own degree-one variable.
    """
    checks: list[int] = []
    vs: list[int] = []
    for c in range(n_a):
        checks += [c] * deg_a
        vs += rng.choice(n_core, deg_a, replace=False).tolist()
    for j in range(n_b):
        checks += [n_a + j] * (deg_b + 1)
        vs += [*rng.choice(n_core, deg_b, replace=False).tolist(), n_core + j]
    return LdpcCode.from_edges(n_core + n_b, n_a + n_b, checks, vs, name="met-like-test")


def bpsk_frames(
    code: LdpcCode, *, frames: int, snr: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random bits, their BIAWGN channel LLRs at ``snr`` and their syndromes."""
    bits = rng.integers(0, 2, (frames, code.n_vars), dtype=np.uint8)
    sigma = np.sqrt(1.0 / snr)
    y = (1.0 - 2.0 * bits) + sigma * rng.standard_normal(bits.shape)
    return bits, (2.0 * y / sigma**2).astype(np.float32), code.syndrome(bits)


@pytest.fixture(scope="module")
def regular_code() -> LdpcCode:
    return random_regular(n_vars=480, var_degree=3, check_degree=6, rng=np.random.default_rng(11))


@pytest.fixture(scope="module")
def met_code() -> LdpcCode:
    return met_like_code(
        n_core=200, n_a=100, n_b=800, deg_a=12, deg_b=3, rng=np.random.default_rng(12)
    )


@pytest.mark.parametrize("schedule", ["layered", "flooding"])
@pytest.mark.parametrize("which", ["regular", "met"])
def test_numba_matches_reference_after_few_iterations(
    schedule: str, which: str, regular_code: LdpcCode, met_code: LdpcCode
) -> None:
    code = regular_code if which == "regular" else met_code
    snr = 0.9 if which == "regular" else 0.25  # below convergence: messages stay unsaturated
    rng = np.random.default_rng(21)
    _, llr, syn = bpsk_frames(code, frames=3, snr=snr, rng=rng)
    ref = decode(code, llr, syn, max_iterations=4, backend="reference", schedule=schedule)
    fast = decode(code, llr, syn, max_iterations=4, backend="numba", schedule=schedule)
    assert np.array_equal(ref.iterations, fast.iterations)
    # float32 vs float64 over 4 iterations of tanh/log: relative error ~1e-6 per operation,
    # amplified by the atanh near |x| → 1; 1e-3 absolute + 1e-3 relative is ample and still
    # catches any wrong message (a wrong edge or sign changes posteriors by O(0.1..10)).
    np.testing.assert_allclose(fast.posterior_llr, ref.posterior_llr, rtol=1e-3, atol=1e-3)
    assert np.array_equal(fast.bits, ref.bits)
    # a single frame takes the same path as a batch (flooding single frame runs in parallel)
    one = decode(code, llr[1], syn[1], max_iterations=4, backend="numba", schedule=schedule)
    np.testing.assert_allclose(one.posterior_llr, ref.posterior_llr[1], rtol=1e-3, atol=1e-3)
    assert one.bits.shape == (code.n_vars,) and one.converged.shape == ()


@pytest.mark.parametrize("schedule", ["layered", "flooding"])
def test_backends_agree_to_convergence(schedule: str, met_code: LdpcCode) -> None:
    rng = np.random.default_rng(22)
    bits, llr, syn = bpsk_frames(met_code, frames=4, snr=0.5, rng=rng)
    ref = decode(met_code, llr, syn, max_iterations=100, backend="reference", schedule=schedule)
    fast = decode(met_code, llr, syn, max_iterations=100, backend="numba", schedule=schedule)
    assert ref.converged.all() and fast.converged.all()
    assert np.array_equal(ref.iterations, fast.iterations)
    assert np.array_equal(ref.bits, bits) and np.array_equal(fast.bits, bits)


def test_decodes_at_comfortable_margin(met_code: LdpcCode) -> None:
    # R = 0.1 test code at SNR 0.5 (β ≈ 0.34): far above its threshold, every frame decodes.
    rng = np.random.default_rng(23)
    bits, llr, syn = bpsk_frames(met_code, frames=20, snr=0.5, rng=rng)
    res = decode(met_code, llr, syn, max_iterations=200, backend="numba")
    assert res.converged.all()
    assert np.array_equal(res.bits, bits)
    # and the layered schedule needs fewer iterations than flooding on the same frames
    flo = decode(met_code, llr, syn, max_iterations=200, backend="numba", schedule="flooding")
    assert flo.converged.all() and res.iterations.mean() < flo.iterations.mean()


def test_punctured_and_shortened_bits(met_code: LdpcCode) -> None:
    rng = np.random.default_rng(24)
    bits, llr, syn = bpsk_frames(met_code, frames=4, snr=0.6, rng=rng)
    llr = llr.copy()
    punct = rng.choice(200, 10, replace=False)  # 10 core bits never transmitted: LLR 0
    short = rng.choice(np.arange(200, met_code.n_vars), 50, replace=False)  # known bits
    llr[:, punct] = 0.0
    llr[:, short] = np.where(bits[:, short] == 0, 1000.0, -1000.0)
    for backend in ("reference", "numba"):
        res = decode(met_code, llr, syn, max_iterations=200, backend=backend)  # type: ignore[arg-type]
        assert res.converged.all(), backend
        assert np.array_equal(res.bits, bits), backend
        assert np.all(np.isfinite(res.posterior_llr))


def test_zero_iterations_and_channel_already_right(regular_code: LdpcCode) -> None:
    rng = np.random.default_rng(25)
    bits = rng.integers(0, 2, regular_code.n_vars, dtype=np.uint8)
    llr = np.where(bits == 0, 3.0, -3.0)
    res = decode(regular_code, llr, regular_code.syndrome(bits), max_iterations=10)
    assert bool(res.converged) and int(res.iterations) == 0
    assert np.array_equal(res.bits, bits)
    # a wrong syndrome, zero iterations allowed: not converged, decisions are the channel's
    syn = regular_code.syndrome(bits)
    syn[0] ^= 1
    res = decode(regular_code, llr, syn, max_iterations=0, backend="numba")
    assert not bool(res.converged) and int(res.iterations) == 0


def test_check_rule_saturates_finite() -> None:
    # one check of degree 3 with huge inputs: |R| = ln((1+x)/(1-x)) at x = MAX_TANH
    code = LdpcCode.from_dense(np.array([[1, 1, 1]]))
    res = decode(
        code, np.array([1e4, 1e4, -1e-3]), np.array([0]), max_iterations=1, backend="numba"
    )
    bound = np.log((1 + MAX_TANH) / (1 - MAX_TANH))
    assert res.posterior_llr[2] == pytest.approx(-1e-3 + bound, rel=1e-4)
    assert int(res.bits[2]) == 0 and bool(res.converged)


def test_input_errors(regular_code: LdpcCode) -> None:
    llr = np.zeros(regular_code.n_vars)
    syn = np.zeros(regular_code.n_checks, dtype=np.uint8)
    with pytest.raises(DataFormatError, match="llr"):
        decode(regular_code, llr[:-1], syn, max_iterations=1)
    with pytest.raises(DataFormatError, match="syndrome"):
        decode(regular_code, llr, syn[:-1], max_iterations=1)
    with pytest.raises(DataFormatError, match="NaN"):
        decode(regular_code, np.full_like(llr, np.nan), syn, max_iterations=1)
    with pytest.raises(ConfigError, match="backend"):
        decode(regular_code, llr, syn, max_iterations=1, backend="fpga")  # type: ignore[arg-type]
    assert "numba" in available_backends() and "reference" in available_backends()


def test_low_snr_messages_are_precise(met_code: LdpcCode) -> None:
    # At SNR 0.02 the LLRs are ~0.04 and check messages ~1e-4..1e-2, where 1 − 2/(e^q + 1) and
    # ln((1+x)/(1−x)) in float32 would lose up to 1e-7/|x| relative; the series branches keep
    # the float32 decoder within 1e-4 relative of the float64 reference (measured: 1.4e-5).
    rng = np.random.default_rng(26)
    _, llr, syn = bpsk_frames(met_code, frames=3, snr=0.02, rng=rng)
    for its in (1, 10):
        ref = decode(met_code, llr, syn, max_iterations=its, backend="reference")
        fast = decode(met_code, llr, syn, max_iterations=its, backend="numba")
        np.testing.assert_allclose(fast.posterior_llr, ref.posterior_llr, rtol=1e-4, atol=1e-6)


def test_check_layers_partition(met_code: LdpcCode, regular_code: LdpcCode) -> None:
    from cvqkd.reconciliation.decoder_numba import check_layers

    for code in (met_code, regular_code):
        order, ptr = check_layers(code)
        assert np.array_equal(np.sort(order), np.arange(code.n_checks))
        assert ptr[0] == 0 and ptr[-1] == code.n_checks
        h = code.to_dense().astype(np.int64)
        for i in range(len(ptr) - 1):
            rows = h[order[ptr[i] : ptr[i + 1]]]
            assert rows.sum(axis=0).max() <= 1  # no variable twice in a layer
        # at least max-variable-degree layers are necessary; first fit should be close
        assert code.var_degrees.max() <= len(ptr) - 1 <= 2 * code.var_degrees.max() + 2


def test_reference_check_order_layers_are_order_free(met_code: LdpcCode) -> None:
    # Within a layer the order of checks does not matter: reversing each layer gives the
    # same posteriors (exactly the property the CUDA layered kernel relies on).
    from cvqkd.reconciliation.decoder_numba import check_layers

    order, ptr = check_layers(met_code)
    rev = np.concatenate([order[ptr[i] : ptr[i + 1]][::-1] for i in range(len(ptr) - 1)])
    rng = np.random.default_rng(27)
    _, llr, syn = bpsk_frames(met_code, frames=2, snr=0.3, rng=rng)
    a = decode_reference(met_code, llr, syn, max_iterations=3, check_order=order)
    b = decode_reference(met_code, llr, syn, max_iterations=3, check_order=rev)
    np.testing.assert_allclose(a.posterior_llr, b.posterior_llr, rtol=1e-12, atol=1e-12)
    with pytest.raises(ConfigError, match="permutation"):
        decode_reference(met_code, llr, syn, max_iterations=1, check_order=order[:-1])


def test_warm_start_resumes_the_layered_decoder() -> None:
    # decoding 4 iterations, then 4 more from the saved messages = 8 iterations in one go
    from cvqkd.reconciliation.met import load_met_code

    code = load_met_code("met-r0.02", n_target=20_000)
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2, code.n_vars, dtype=np.uint8)
    snr = 0.04
    llr = 2 * snr * ((1.0 - 2 * bits) + rng.standard_normal(code.n_vars) / np.sqrt(snr))
    syn = code.syndrome(bits)
    whole = decode(code, llr, syn, max_iterations=8, backend="numba")
    state = np.zeros((1, code.n_edges), dtype=np.float32)
    decode(code, llr, syn, max_iterations=4, backend="numba", state=state)
    half = decode(code, llr, syn, max_iterations=4, backend="numba", state=state, warm=True)
    np.testing.assert_allclose(half.posterior_llr, whole.posterior_llr, rtol=1e-3, atol=1e-3)
    # a cold call with a state buffer decodes exactly as without one
    again = decode(code, llr, syn, max_iterations=8, backend="numba", state=state)
    np.testing.assert_array_equal(again.posterior_llr, whole.posterior_llr)
    # and a warm start from all-zero messages is exactly a cold start (what the disclosure
    # rounds rely on to mix fresh and resumed frames in one batch)
    zero = decode(
        code, llr, syn, max_iterations=8, backend="numba", state=np.zeros_like(state), warm=True
    )
    np.testing.assert_array_equal(zero.posterior_llr, whole.posterior_llr)
    with pytest.raises(ConfigError, match="warm start"):
        decode(code, llr, syn, max_iterations=4, backend="reference", state=state)
    with pytest.raises(ConfigError, match="shape"):
        decode(code, llr, syn, max_iterations=4, backend="numba", state=state[:, :10])


@pytest.mark.parametrize("schedule,frames", [("layered", 3), ("flooding", 3), ("flooding", 1)])
def test_first_touch_relabelling_is_bit_identical(
    schedule: str, frames: int, met_code: LdpcCode, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the numba backend decodes on its variables relabelled in first-touch order (memory
    # locality); with the labels scrambled, as a MET code's extension bits are, the relabelling
    # is a real permutation and must change nothing: same iterations, same float32 posteriors
    from cvqkd.reconciliation import decoder_numba
    from cvqkd.reconciliation.ldpc import first_touch_order

    rng = np.random.default_rng(40)
    perm = rng.permutation(met_code.n_vars)
    code = LdpcCode.from_edges(
        met_code.n_vars, met_code.n_checks, met_code.edge_checks, perm[met_code.check_vars]
    )
    assert not np.array_equal(first_touch_order(code), np.arange(code.n_vars))
    _, llr, syn = bpsk_frames(code, frames=frames, snr=0.3, rng=rng)
    relabelled = decode(code, llr, syn, max_iterations=40, backend="numba", schedule=schedule)
    monkeypatch.setattr(decoder_numba, "first_touch_order", lambda c: np.arange(c.n_vars))
    monkeypatch.setattr(decoder_numba, "_GRAPHS", type(decoder_numba._GRAPHS)())
    as_is = decode(code, llr, syn, max_iterations=40, backend="numba", schedule=schedule)
    assert np.array_equal(relabelled.iterations, as_is.iterations)
    assert np.array_equal(relabelled.posterior_llr, as_is.posterior_llr)
    assert np.array_equal(relabelled.bits, as_is.bits)
