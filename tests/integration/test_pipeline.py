"""End to end: Alice and Bob as two threads over the authenticated in-process channel.

Small blocks and a random (3, d_c)-regular code so each block takes a few seconds; the
physics is a short, clean channel (T = 0.8) where such a code decodes at β ≈ 0.65–0.8.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from cvqkd.errors import AuthenticationError, SecurityAbort
from cvqkd.kms.store import LinkId, open_store
from cvqkd.pipeline import PipelineConfig, run_block
from cvqkd.privacy import SecurityParameters
from cvqkd.randomness import SecretRandom
from cvqkd.sim.channel import ChannelParameters

LINK = LinkId("KME_A", "KME_B")


def _det(seed: int) -> SecretRandom:
    """Reproducible key material: these tests check protocol logic on fixed blocks (the OS
    CSPRNG default is tested in test_pipeline_randomness.py)."""
    return SecretRandom.insecure_for_tests(seed)


def _channel(detection: str = "homodyne", xi: float = 0.01) -> ChannelParameters:
    return ChannelParameters(
        transmittance=0.8,
        detector_efficiency=0.9,
        electronic_noise_snu=0.01,
        detection=detection,  # type: ignore[arg-type]
        excess_noise_sources_snu={"test": xi},
        modulation_variance_snu=4.0,
        symbol_rate_hz=1e8,
    )


def _config(check_degree: int = 8, **kw) -> PipelineConfig:  # type: ignore[no-untyped-def]
    code = {
        "source": "regular",
        "n_vars": 2000,
        "var_degree": 3,
        "check_degree": check_degree,
        "seed": 1,
    }
    return PipelineConfig(**{"n_symbols": 60_000, "code": code, "level": "asymptotic", **kw})


def test_both_parties_store_identical_keys_under_the_same_ids(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sa, sb = open_store(tmp_path / "alice.db"), open_store(tmp_path / "bob.db")
    rep = run_block(
        _channel(), config=_config(), seed=11, randomness=_det(11), stores=(sa, sb), link=LINK
    )
    assert rep.keys_identical and rep.alice_key_bits == rep.bob_key_bits == rep.delivered_bits
    assert rep.delivered_bits > 0
    chunks = rep.delivered_bits // sa.chunk_bits
    assert sa.available_chunks(LINK) == sb.available_chunks(LINK) == chunks
    assert uuid.UUID(rep.block_id).version == 4
    # the same material under the same chunk IDs: a key reserved at Alice's KME (the source)
    # is accepted and delivered by Bob's KME with identical bytes
    [(res, key_a)] = sa.reserve(
        LINK, number=1, size_bits=512, master_sae_id="SAE_A", slave_sae_ids=["SAE_B"]
    )
    sb.accept_reservations([res])
    [delivered] = sb.retrieve([res.key_id], master_sae_id="SAE_A", slave_sae_id="SAE_B")
    assert delivered.key == key_a and len(key_a) == 64


def test_bits_after_each_stage_follow_the_accounting() -> None:
    rep = run_block(_channel(), config=_config(), seed=3, randomness=_det(3))
    b = rep.bits_after_stage
    kl = rep.key_length["used"]
    assert kl["length_bits"] == b["privacy_amplified_bits"]
    assert b["privacy_amplified_bits"] == int(np.floor(sum(kl["terms"].values())))
    assert -kl["terms"]["syndrome_leak"] - kl["terms"]["verification_hash_leak"] == b["leaked_bits"]
    assert kl["terms"]["raw_bits"] == b["reconciled_bits"]
    assert b["final_key_bits"] == 8 * (b["privacy_amplified_bits"] // 8)
    assert b["delivered_bits"] == b["final_key_bits"] - b["auth_replenish_bits"]
    # the block paid back exactly the authentication key its messages consumed
    assert rep.authentication["bob"]["pad_bytes_consumed"] * 8 == b["auth_replenish_bits"]
    assert rep.net_key_bits == b["final_key_bits"] - b["auth_replenish_bits"] > 0
    assert rep.key_rate_bits_per_symbol == b["delivered_bits"] / b["slots_sent"]
    assert not kl["finite_size_secure"]
    # a 60k-symbol block is far too small for finite-size security: the report says how many
    assert rep.min_symbols_finite_size is not None and rep.min_symbols_finite_size > 60_000


def test_heterodyne_block() -> None:
    rep = run_block(
        _channel("heterodyne"),
        config=_config(check_degree=6, n_symbols=120_000),
        seed=2,
        randomness=_det(2),
    )
    assert rep.keys_identical and rep.delivered_bits > 0
    assert rep.estimates["detection"] == "heterodyne"


def test_strict_finite_size_level_aborts_a_small_block_and_says_why(tmp_path) -> None:  # type: ignore[no-untyped-def]
    sa, sb = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    with pytest.raises(SecurityAbort, match=r"≤ 0 at the finite-size level"):
        run_block(
            _channel(),
            config=_config(level="finite-size"),
            seed=4,
            randomness=_det(4),
            stores=(sa, sb),
            link=LINK,
        )
    assert sa.available_chunks(LINK) == sb.available_chunks(LINK) == 0


def test_auto_level_never_claims_finite_size_for_a_small_block() -> None:
    rep = run_block(_channel(), config=_config(level="auto"), seed=5, randomness=_det(5))
    assert rep.level == "asymptotic"
    assert rep.key_length["all_levels"]["finite-size"]["length_bits"] <= 0


@pytest.mark.parametrize("frame_index", [0, 1, 2, 3])
def test_tampered_message_aborts_and_no_key_is_stored(tmp_path, frame_index: int) -> None:  # type: ignore[no-untyped-def]
    sa, sb = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")

    def flip(i: int, data: bytes) -> bytes:
        if i != frame_index:
            return data
        b = bytearray(data)
        b[len(b) // 2] ^= 0x10
        return bytes(b)

    with pytest.raises((AuthenticationError, SecurityAbort)):
        run_block(
            _channel(),
            config=_config(),
            seed=6,
            randomness=_det(6),
            stores=(sa, sb),
            link=LINK,
            tamper=flip,
        )
    assert sa.available_chunks(LINK) == sb.available_chunks(LINK) == 0


def test_dropped_message_aborts() -> None:
    with pytest.raises((AuthenticationError, SecurityAbort)):
        run_block(
            _channel(),
            config=_config(),
            seed=6,
            randomness=_det(6),
            tamper=lambda i, d: None if i == 1 else d,
        )


def test_too_much_excess_noise_gives_no_key() -> None:
    # ξ = 0.5 SNU at T = 0.8: Eve's information exceeds what the code leaves; ℓ ≤ 0 aborts.
    with pytest.raises(SecurityAbort, match=r"key length|gate"):
        run_block(_channel(xi=0.5), config=_config(), seed=8, randomness=_det(8))


def test_epsilons_are_named_and_summed() -> None:
    sec = SecurityParameters(eps_pe=1e-9, eps_smooth=1e-9, eps_pa=1e-9)
    rep = run_block(_channel(), config=_config(security=sec), seed=9, randomness=_det(9))
    fs = rep.key_length["all_levels"]["finite-size"]
    assert set(fs["epsilons"]) == {"eps_pe", "eps_smooth", "eps_pa", "eps_cor", "eps_mac"}
    assert fs["epsilon_total"] == pytest.approx(sum(fs["epsilons"].values()))
    # 61-bit hash: ≤ 2e-16 per check, one check per attempt (first + 8 disclosure rounds)
    assert 0 < fs["epsilons"]["eps_cor"] < 1e-14
    # the Wegman–Carter forgery bounds of all messages of the block, both directions
    auth = rep.authentication
    assert fs["epsilons"]["eps_mac"] == pytest.approx(
        auth["alice"]["forgery_bound"] + auth["bob"]["forgery_bound"]
    )
    assert 0 < fs["epsilons"]["eps_mac"] < 1e-30


@pytest.mark.parametrize("frame_index", [0, 1])
def test_tampered_message_from_alice_aborts(tmp_path, frame_index: int) -> None:  # type: ignore[no-untyped-def]
    sa, sb = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")

    def flip(i: int, data: bytes) -> bytes:
        if i != frame_index:
            return data
        b = bytearray(data)
        b[-1] ^= 0x01  # the tag
        return bytes(b)

    with pytest.raises((AuthenticationError, SecurityAbort)):
        run_block(
            _channel(),
            config=_config(),
            seed=6,
            randomness=_det(6),
            stores=(sa, sb),
            link=LINK,
            tamper_alice=flip,
        )
    assert sa.available_chunks(LINK) == sb.available_chunks(LINK) == 0


def test_tampered_last_message_leaves_nothing_deliverable(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Alice's final "confirmed" is the last word (two generals): if Eve spoils it, Bob aborts
    # and stores nothing while Alice has stored the block. Those chunks can never be handed
    # out: the source KME delivers a key only after the peer KME accepts the same chunk IDs.
    from cvqkd.kms.store import ChunksUnavailableError

    sa, sb = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")

    from cvqkd.classical.auth import TAG_BYTES
    from cvqkd.classical.messages import peek_header

    def flip_last(i: int, data: bytes) -> bytes:
        if peek_header(data[:-TAG_BYTES])["kind"] != "confirmed":
            return data
        return data[:-1] + bytes([data[-1] ^ 1])

    with pytest.raises(AuthenticationError):
        run_block(
            _channel(),
            config=_config(),
            seed=6,
            randomness=_det(6),
            stores=(sa, sb),
            link=LINK,
            tamper_alice=flip_last,
        )
    assert sb.available_chunks(LINK) == 0
    [(res, _key)] = sa.reserve(
        LINK, number=1, size_bits=256, master_sae_id="SAE_A", slave_sae_ids=["SAE_B"]
    )
    with pytest.raises(ChunksUnavailableError):
        sb.accept_reservations([res])


def test_disclosure_turns_a_block_without_key_into_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # a (3,12)-regular code at n = 2000 is too weak for this channel: every frame fails
    with pytest.raises(SecurityAbort, match="no frame passed"):
        run_block(
            _channel(), config=_config(check_degree=12, disclosure=0.0), seed=11,
            randomness=_det(11),
        )  # fmt: skip
    # with up to 20 % of k disclosed in 8 rounds, most frames come through, keys agree, and
    # the disclosed bits (plus the round counts) are charged as leakage
    sa, sb = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    cfg = _config(check_degree=12, disclosure=0.2)
    rep = run_block(
        _channel(), config=cfg, seed=11, randomness=_det(11), stores=(sa, sb), link=LINK
    )
    rec = rep.reconciliation
    assert rep.keys_identical and rep.delivered_bits > 0
    kept = rec["frames_tried"] - rec["frames_failed"]
    assert kept >= 6 and rec["frames_with_disclosure"] >= 6
    k = 2000 - 500  # n − m of the (3,12) code: 6 000 edges, 500 checks
    step = int(0.2 * k) // 8
    # each kept frame: a multiple of the step, at most 8 steps, plus 4 bits of round count
    assert 4 * kept < rec["disclosed_bits"] <= kept * (8 * step + 4)
    assert (rec["disclosed_bits"] - 4 * kept) % step == 0
    assert rep.bits_after_stage["leaked_bits"] == (
        rec["syndrome_bits"] + rec["hash_bits"] + rec["disclosed_bits"]
    )


def test_alice_follows_the_disclosure_bob_announces() -> None:
    from cvqkd.pipeline import _disclosure, layout_for

    cfg = _config(check_degree=12, disclosure=0.2)
    layout = layout_for(cfg.code)  # type: ignore[arg-type]
    bob_plan, order = _disclosure(cfg, layout)
    assert (bob_plan.step_bits, bob_plan.max_bits) == (37, 296)
    # Alice's own setting does not matter: Bob's announcement does
    alice_plan, alice_order = _disclosure(_config(disclosure=0.0), layout, announced=[37, 296])
    assert alice_plan == bob_plan and np.array_equal(alice_order, order)
    assert _disclosure(cfg, layout, announced=[0, 0]) == (None, None)
    for bad in ([0, 10], [50, 10], [10, 10**9]):
        with pytest.raises(SecurityAbort, match="impossible disclosure"):
            _disclosure(cfg, layout, announced=bad)
