"""Sliced reconciliation in the pipeline: ``auto`` switches to it on a short link (SNR̂ ≥ 2),
both parties agree on the design, and privacy amplification counts the coded levels' entropy.

The EXIT planner and 20 000-sample frames keep a block to a few seconds (the default planner,
density evolution, takes about a minute per coded level and party)."""

from __future__ import annotations

import math

import pytest

from cvqkd.errors import ConfigError
from cvqkd.pipeline import SLICED_FROM_SNR, PipelineConfig, run_block
from cvqkd.randomness import SecretRandom
from cvqkd.sim.channel import ChannelParameters

# T = 0.8, η = 0.9, V_A = 4: SNR ≈ 2.8 per real sample, where binary reconciliation is capped
# at C_BIAWGN/C_AWGN ≈ 0.85
CHANNEL = ChannelParameters(
    transmittance=0.8,
    detector_efficiency=0.9,
    electronic_noise_snu=0.01,
    detection="homodyne",
    excess_noise_sources_snu={"test": 0.01},
    modulation_variance_snu=4.0,
    symbol_rate_hz=1e8,
)


def _run(**kw):  # type: ignore[no-untyped-def]
    cfg = PipelineConfig(
        **{
            "n_symbols": 120_000,
            "level": "asymptotic",
            "frame_length": 20_000,
            "slice_planner": "exit",
            **kw,
        }
    )
    return run_block(CHANNEL, config=cfg, seed=5, randomness=SecretRandom.insecure_for_tests(5))


@pytest.fixture(scope="module")
def sliced():  # type: ignore[no-untyped-def]
    return _run()


def test_auto_uses_sliced_reconciliation_on_a_short_link(sliced) -> None:  # type: ignore[no-untyped-def]
    rec = sliced.reconciliation
    assert sliced.estimates["snr"] >= SLICED_FROM_SNR
    assert rec["scheme"] == "sliced" and rec["code"]["source"] == "sliced"
    assert sliced.keys_identical and sliced.delivered_bits > 0
    # the lowest levels are disclosed, the coded ones carry the key
    assert rec["disclosed_levels"] == [0, 1] and rec["key_bits_per_sample"] == 2
    assert 0.8 < rec["beta"] <= rec["ideal_beta"] < 1.0


def test_privacy_amplification_counts_the_coded_levels_entropy(sliced) -> None:  # type: ignore[no-untyped-def]
    rec = sliced.reconciliation
    terms = sliced.key_length["used"]["terms"]
    n_ok = rec["frames_tried"] - rec["frames_failed"]
    samples = rec["key_bits"] // rec["key_bits_per_sample"]  # homodyne: one sample per symbol
    assert samples == n_ok * rec["n_data_per_frame"]
    # raw entropy H(coded | disclosed) per sample < the 2 key bits per sample
    assert terms["raw_bits"] == round(samples * rec["key_entropy_bits_per_sample"])
    assert rec["key_entropy_bits_per_sample"] < rec["key_bits_per_sample"]
    assert -terms["syndrome_leak"] == n_ok * sum(rec["level_checks"]) == rec["syndrome_bits"]
    assert sliced.bits_after_stage["reconciled_bits"] == rec["key_bits"]


def test_sliced_beats_binary_with_the_shipped_codes_here(sliced) -> None:  # type: ignore[no-untyped-def]
    binary = _run(reconciliation="binary")
    assert binary.reconciliation["scheme"] == "binary"
    assert binary.reconciliation["code"]["source"] == "family"
    assert binary.keys_identical
    assert sliced.delivered_bits > 1.5 * binary.delivered_bits
    assert sliced.reconciliation["beta"] > binary.reconciliation["beta"] + 0.2


def test_bad_reconciliation_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="reconciliation"):
        PipelineConfig(reconciliation="ternary")
    with pytest.raises(ConfigError, match="drop 'code'"):
        PipelineConfig(
            reconciliation="sliced",
            code={"source": "regular", "n_vars": 2000, "var_degree": 3, "check_degree": 8},
        )
    with pytest.raises(ConfigError, match="slice_bits"):
        PipelineConfig(slice_bits=9)
    with pytest.raises(ConfigError, match="slice_planner"):
        PipelineConfig(slice_planner="guess")


def test_sliced_threshold_is_where_binary_loses() -> None:
    # the binary ceiling C_BIAWGN/C_AWGN at the switch-over SNR is below the sliced scheme's
    # measured β ≈ 0.90 (docs/slice-reconciliation.md)
    from cvqkd.reconciliation.design import biawgn_capacity

    ceiling = float(biawgn_capacity(SLICED_FROM_SNR)) / (0.5 * math.log2(1 + SLICED_FROM_SNR))
    assert 0.88 < ceiling < 0.93
