"""Key material of a block: OS CSPRNG by default (fresh keys), reproducible only when asked.

Four blocks on the same simulated transmission (``seed=11``): two with the default OS CSPRNG,
two with ``SecretRandom.insecure_for_tests(7)``. The simulation is identical in all four, so
any difference between keys comes from the key-material randomness alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cvqkd.kms.store import LinkId, open_store
from cvqkd.pipeline import BlockReport, PipelineConfig, run_block
from cvqkd.randomness import OS_LABEL, SecretRandom
from cvqkd.report import build_report
from cvqkd.sim.channel import ChannelParameters

LINK = LinkId("KME_A", "KME_B")
CHANNEL = ChannelParameters(
    transmittance=0.8,
    detector_efficiency=0.9,
    electronic_noise_snu=0.01,
    detection="homodyne",
    excess_noise_sources_snu={"test": 0.01},
    modulation_variance_snu=4.0,
    symbol_rate_hz=1e8,
)
CONFIG = PipelineConfig(
    n_symbols=60_000,
    code={"source": "regular", "n_vars": 2000, "var_degree": 3, "check_degree": 8, "seed": 1},
    level="asymptotic",
)


def _first_key(tmp: Path, rep: BlockReport) -> tuple[bytes, bytes]:
    """The first 512 key bits as Alice's KME hands them out and as Bob's KME delivers them."""
    with open_store(tmp / "a.db") as sa, open_store(tmp / "b.db") as sb:
        [(res, key_a)] = sa.reserve(
            LINK, number=1, size_bits=512, master_sae_id="SAE_A", slave_sae_ids=["SAE_B"]
        )
        sb.accept_reservations([res])
        [got] = sb.retrieve([res.key_id], master_sae_id="SAE_A", slave_sae_id="SAE_B")
    return key_a, got.key


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out: dict[str, Any] = {"spy": []}
    import cvqkd.estimation
    import cvqkd.reconciliation.reconcile as rec

    real_bob, real_est = rec.bob_reconcile, cvqkd.estimation.estimate

    def spy_bob(*a: Any, **kw: Any) -> Any:
        out["spy"].append(("bob_reconcile", type(kw["rng"]).__name__))
        return real_bob(*a, **kw)

    def spy_est(*a: Any, **kw: Any) -> Any:
        out["spy"].append(("estimate", kw.get("rng"), kw.get("disclosure_key") is not None))
        return real_est(*a, **kw)

    for name in ("os1", "os2", "det1", "det2"):
        tmp = tmp_path_factory.mktemp(name)
        sr = SecretRandom() if name.startswith("os") else SecretRandom.insecure_for_tests(7)
        with open_store(tmp / "a.db") as sa, open_store(tmp / "b.db") as sb:
            with pytest.MonkeyPatch.context() as mp:
                if name == "det1":
                    mp.setattr(rec, "bob_reconcile", spy_bob)
                    mp.setattr(cvqkd.estimation, "estimate", spy_est)
                rep = run_block(
                    CHANNEL, config=CONFIG, seed=11, randomness=sr, stores=(sa, sb), link=LINK
                )
        out[name] = (rep, _first_key(tmp, rep), sr)
    return out


def test_os_csprng_keys_match_between_parties_and_differ_between_runs(
    runs: dict[str, Any],
) -> None:
    (r1, (a1, b1), _), (r2, (a2, b2), _) = runs["os1"], runs["os2"]
    assert r1.keys_identical and r2.keys_identical
    assert a1 == b1 and a2 == b2 and len(a1) == 64
    assert a1 != a2  # same transmission, fresh key material: 2^-512 chance of equality
    assert r1.block_id != r2.block_id
    assert r1.randomness == OS_LABEL and r1.randomness_secure


def test_insecure_test_randomness_reproduces_the_block(runs: dict[str, Any]) -> None:
    (r1, (a1, b1), _), (r2, (a2, b2), _) = runs["det1"], runs["det2"]
    assert a1 == b1 == a2 == b2
    assert r1.block_id == r2.block_id
    assert r1.bits_after_stage == r2.bits_after_stage
    assert not r1.randomness_secure and "NOT secure" in r1.randomness
    assert a1 != runs["os1"][1][0]


def test_report_labels_the_randomness(runs: dict[str, Any]) -> None:
    det = build_report(runs["det1"][0], scenario="t", budget=None, config=CONFIG, wall_time_s=0)
    os_ = build_report(runs["os1"][0], scenario="t", budget=None, config=CONFIG, wall_time_s=0)
    assert det["security_statement"].startswith("deterministic test randomness — NOT secure")
    assert det["randomness_secure"] is False
    assert "NOT secure" not in os_["security_statement"]
    assert os_["randomness"] == OS_LABEL and os_["randomness_secure"] is True


def test_bob_draws_all_key_material_from_secret_random(runs: dict[str, Any]) -> None:
    rep, _, sr = runs["det1"]
    # what the pipeline handed to reconciliation and estimation
    assert ("bob_reconcile", "SecretRandom") in runs["spy"]
    assert ("estimate", None, True) in runs["spy"]  # announced key, no rng
    # a lower bound on what Bob must have drawn from it: the pre-shared secret, his MDR bits
    # for every frame tried, the Toeplitz seed, the block ID (plus hash seeds, disclosure key)
    rec = rep.reconciliation
    b = rep.bits_after_stage
    need = (
        4096
        + rec["frames_tried"] * rec["n_data_per_frame"] // 8
        + (b["reconciled_bits"] + b["privacy_amplified_bits"] - 1) // 8
        + 16
    )
    assert sr.bytes_drawn >= need
