"""Tests of cvqkd.reconciliation.disclosure: incremental disclosure of Bob's core bits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cvqkd.errors import ConfigError
from cvqkd.reconciliation.decoder import decode
from cvqkd.reconciliation.disclosure import (
    DisclosurePlan,
    decode_with_disclosure,
    disclosure_order,
)
from cvqkd.reconciliation.met import load_met_code

N = 40_000  # met-r0.02: core 1 600, k = 800


@pytest.fixture(scope="module")
def code():  # type: ignore[no-untyped-def]
    return load_met_code("met-r0.02", n_target=N)


def _frame(code, snr: float, seed: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    bob = rng.integers(0, 2, code.n_vars, dtype=np.uint8)
    y = (1.0 - 2.0 * bob) + rng.standard_normal(code.n_vars) / math.sqrt(snr)
    return bob, 2.0 * snr * y


def test_order_is_a_public_permutation_of_the_core(code) -> None:  # type: ignore[no-untyped-def]
    order = disclosure_order(code, seed=5)
    core = np.flatnonzero(code.var_degrees >= 2)
    assert np.array_equal(np.sort(order), core)
    assert np.array_equal(order, disclosure_order(code, seed=5))
    # the weakest core bits first: degrees never decrease along the order
    assert np.all(np.diff(code.var_degrees[order]) >= 0)
    assert not np.array_equal(order, disclosure_order(code, seed=6))


def test_plan_accounting() -> None:
    plan = DisclosurePlan(step_bits=50, max_bits=400)
    assert plan.max_rounds == 8
    # the public round count (0..8: 9 values) costs 4 bits on top of what was disclosed
    assert plan.leak_bits(0) == 4 and plan.leak_bits(150) == 154
    for bad in (
        dict(step_bits=0),
        dict(max_bits=-1),
        dict(first_iterations=0),
        dict(retry_iterations=0),
    ):
        with pytest.raises(ConfigError):
            DisclosurePlan(**bad)  # type: ignore[arg-type]


def test_disclosure_rescues_frames_plain_decoding_loses(code) -> None:  # type: ignore[no-untyped-def]
    # β = 1.0 at n = 4·10^4 (SNR where the rate equals the capacity): plain decoding fails
    snr = 2.0 ** (2 * 0.02 / 1.0) - 1.0
    order = disclosure_order(code, seed=1)
    plan = DisclosurePlan(step_bits=40, max_bits=800)
    asked: list[np.ndarray] = []
    rescued = 0
    for seed in range(3):
        bob, llr = _frame(code, snr, seed)
        syn = code.syndrome(bob)
        plain = decode(code, llr, syn, max_iterations=200, backend="numba")
        assert not bool(plain.converged)

        def reveal(pos: np.ndarray, bob: np.ndarray = bob) -> np.ndarray:
            asked.append(pos.copy())
            return bob[pos]

        out = decode_with_disclosure(
            code, llr, syn, order=order, reveal=reveal, plan=plan, max_iterations=200,
            backend="numba",
        )  # fmt: skip
        assert out.revealed == plan.step_bits * out.rounds <= plan.max_bits
        if out.converged:
            rescued += 1
            assert np.array_equal(out.bits, bob)
            assert out.revealed > 0
            assert out.iterations > 200  # the failed first attempt counts
    assert rescued >= 2
    # Bob was only ever asked for consecutive slices of the public order, from its start
    assert asked
    expect = 0
    for a in asked:
        k = int(np.flatnonzero(order == a[0])[0])
        assert k in (0, expect)  # a new frame starts again at 0
        assert a.size == plan.step_bits and np.array_equal(order[k : k + a.size], a)
        expect = k + a.size


def test_a_hopeless_frame_stops_at_the_maximum(code) -> None:  # type: ignore[no-untyped-def]
    bob, llr = _frame(code, 0.005, 9)  # β ≈ 4: far beyond reach
    plan = DisclosurePlan(step_bits=100, max_bits=300, first_iterations=20, retry_iterations=25)
    out = decode_with_disclosure(
        code, llr, code.syndrome(bob), order=disclosure_order(code, seed=1),
        reveal=lambda pos: bob[pos], plan=plan, max_iterations=30, backend="numba",
    )  # fmt: skip
    assert not out.converged
    assert out.revealed == 300 and out.rounds == 3
    assert out.iterations == 20 + 3 * 25  # the first attempt's cap, then the retries' cap


def test_an_easy_frame_discloses_nothing(code) -> None:  # type: ignore[no-untyped-def]
    bob, llr = _frame(code, 0.05, 2)  # β ≈ 0.57
    out = decode_with_disclosure(
        code, llr, code.syndrome(bob), order=disclosure_order(code, seed=1),
        reveal=lambda pos: pytest.fail("asked to disclose for an easy frame"),
        plan=DisclosurePlan(), max_iterations=200, backend="numba",
    )  # fmt: skip
    assert out.converged and out.revealed == 0 and out.rounds == 0
    assert np.array_equal(out.bits, bob)


def test_bad_input(code) -> None:  # type: ignore[no-untyped-def]
    bob, llr = _frame(code, 0.05, 2)
    order = disclosure_order(code, seed=1)
    syn = code.syndrome(bob)
    with pytest.raises(ConfigError, match="shape"):
        decode_with_disclosure(
            code, llr[:10], syn, order=order, reveal=lambda p: bob[p],
            plan=DisclosurePlan(), max_iterations=10,
        )  # fmt: skip
    with pytest.raises(ConfigError, match="fewer than"):
        decode_with_disclosure(
            code, llr, syn, order=order[:10], reveal=lambda p: bob[p],
            plan=DisclosurePlan(max_bits=100), max_iterations=10,
        )  # fmt: skip


def test_plan_for_scales_with_k() -> None:
    from cvqkd.reconciliation.disclosure import plan_for

    assert plan_for(20_000, max_fraction=0.04, rounds=8) == DisclosurePlan(100, 800)
    assert plan_for(1_000, max_fraction=0.04, rounds=8) == DisclosurePlan(5, 40)
    assert plan_for(100, max_fraction=0.04, rounds=8) is None  # less than a bit per round
    assert plan_for(100, max_fraction=0.0, rounds=8) is None
    with pytest.raises(ConfigError):
        plan_for(100, max_fraction=1.5, rounds=8)


def test_frame_order_skips_punctured_and_degree_one_positions() -> None:
    from cvqkd.reconciliation.disclosure import frame_disclosure_order

    deg = np.array([3, 1, 2, 2, 1, 3, 2])
    data = np.array([0, 1, 2, 4, 5, 6])  # position 3 punctured
    order = frame_disclosure_order(7, deg, data, seed=3)
    # indices into the data bits whose code position has degree >= 2: 0, 2, 4, 5
    assert sorted(order.tolist()) == [0, 2, 4, 5]
    # those of degree 2 (data indices 2 and 5) first, then those of degree 3
    assert sorted(order[:2].tolist()) == [2, 5]


def test_ledger_answers_only_what_the_plan_allows() -> None:
    from cvqkd.errors import SecurityAbort
    from cvqkd.reconciliation.disclosure import DisclosureLedger

    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, (3, 50), dtype=np.uint8)
    order = rng.permutation(50)
    led = DisclosureLedger(bits, order=order, plan=DisclosurePlan(step_bits=5, max_bits=10))
    got = led.answer(np.array([0, 2]), start=0)
    assert np.array_equal(got, bits[[0, 2]][:, order[:5]])
    assert np.array_equal(led.answer(np.array([2]), start=5), bits[[2]][:, order[5:10]])
    for frames, start, what in [
        ([2], 10, "beyond the plan"),  # frame 2 has had its 10 bits
        ([0], 0, "out of step"),  # frame 0 is at 5, not 0
        ([1, 1], 0, "frame indices"),
        ([7], 0, "frame indices"),
        ([], 0, "frame indices"),
    ]:
        with pytest.raises(SecurityAbort, match=what):
            led.answer(np.array(frames, dtype=np.int64), start=start)
    # kept frames 0 and 2: 5 + 10 disclosed bits, plus 2 round-count bits each (0..2 rounds)
    assert led.leak_bits(np.array([True, False, True])) == 5 + 10 + 2 * 2


def test_alice_reconcile_with_disclosure_agrees_with_bob() -> None:
    from cvqkd.reconciliation.disclosure import DisclosureLedger, frame_disclosure_order
    from cvqkd.reconciliation.reconcile import (
        FrameLayout,
        alice_reconcile,
        bob_reconcile,
        keep_frames,
    )

    code = load_met_code("met-r0.02", n_target=N)
    lay = FrameLayout.of(code)
    rng = np.random.default_rng(8)
    frames, snr = 4, 2.0 ** (2 * 0.02 / 1.0) - 1.0  # β = 1: plain decoding fails
    x = rng.standard_normal(frames * N)
    y = x + rng.standard_normal(x.size) / math.sqrt(snr)
    bits, msg = bob_reconcile(y, layout=lay, dimension=8, rng=np.random.default_rng(2))
    plain = alice_reconcile(x, msg, layout=lay, gain=1.0, noise_variance=1 / snr)
    assert plain.stats.frames_failed >= 3
    plan = DisclosurePlan(step_bits=40, max_bits=800)
    order = frame_disclosure_order(code.n_vars, code.var_degrees, lay.data_positions, seed=1)
    ledger = DisclosureLedger(bits, order=order, plan=plan)
    res = alice_reconcile(
        x, msg, layout=lay, gain=1.0, noise_variance=1 / snr, disclosure=plan,
        request=lambda f, start: ledger.answer(f, start=start), disclosure_order=order,
    )  # fmt: skip
    st = res.stats
    # the first pass is the plain decoding; every frame kept beyond it needed disclosure
    assert st.frames_failed < plain.stats.frames_failed
    assert st.frames_with_disclosure == plain.stats.frames_failed - st.frames_failed
    assert np.array_equal(res.key_bits, keep_frames(bits, res.frame_ok))
    assert st.disclosed_bits == ledger.leak_bits(res.frame_ok)
    assert st.leaked_bits == (frames - st.frames_failed) * (code.n_checks + 61) + st.disclosed_bits


def test_batch_rounds_match_single_frames_and_rescue_hash_rejected_words(code) -> None:  # type: ignore[no-untyped-def]
    from cvqkd.reconciliation.disclosure import decode_frames_with_disclosure

    snr = 2.0 ** (2 * 0.02 / 1.0) - 1.0  # β = 1: plain decoding fails
    order = disclosure_order(code, seed=1)
    plan = DisclosurePlan(step_bits=40, max_bits=800, first_iterations=150, retry_iterations=80)
    frames = [_frame(code, snr, seed) for seed in (0, 1)] + [_frame(code, 0.05, 2)]  # + easy
    bob = np.array([f[0] for f in frames])
    llr = np.array([f[1] for f in frames])
    syn = code.syndrome(bob)
    calls: list[tuple[list[int], int]] = []

    def request(fs: np.ndarray, start: int) -> np.ndarray:
        calls.append((fs.tolist(), start))
        return bob[fs][:, order[start : start + plan.step_bits]]

    # the easy frame 2 decodes at once but its first word is "rejected by the hash"
    verdicts = {2: [False]}

    def accept(f: int, word: np.ndarray) -> bool:
        if verdicts.get(f):
            return verdicts[f].pop(0)
        return bool(np.array_equal(word, bob[f]))

    out = decode_frames_with_disclosure(
        code, llr, syn, plan=plan, order=order, request=request, max_iterations=200,
        backend="numba", batch_frames=2, accept=accept,
    )  # fmt: skip
    # one request per round, for all frames still failing, in order from the start
    assert [start for _, start in calls] == list(range(0, 40 * len(calls), 40))
    assert 2 in calls[0][0]  # the rejected word asks in the first round
    assert out.converged[2] and out.revealed[2] == 40 and not out.rejected.any()
    for f in range(3):
        if out.converged[f]:
            assert np.array_equal(out.bits[f], bob[f])
        # each frame gets exactly what a single-frame run with the same plan gets
        one = decode_with_disclosure(
            code, llr[f], syn[f], order=order, reveal=lambda pos, f=f: bob[f][pos], plan=plan,
            max_iterations=200, backend="numba",
        )  # fmt: skip
        if f != 2:
            assert (one.converged, one.revealed) == (out.converged[f], out.revealed[f])
    assert out.converged[:2].sum() >= 1
    # a word the hash never accepts: every round is used, and it ends rejected, not kept
    never = decode_frames_with_disclosure(
        code, llr[2:], syn[2:], plan=DisclosurePlan(step_bits=40, max_bits=80),
        order=order, request=lambda fs, start: request(fs + 2, start), max_iterations=200,
        backend="numba", accept=lambda f, w: False,
    )  # fmt: skip
    assert not never.converged[0] and never.rejected[0] and never.revealed[0] == 80
